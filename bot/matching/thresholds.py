"""The lines that turn scores into decisions, and the rule that carries them.

Scores are in 0..1. The built-in lines (`SEMANTIC`, `LEXICAL`) were chosen on the CLINC150
*validation* split (in-scope `val` and `oos_val`), never on test data or on the golden
questions; each catalogue normally decides with lines learnt from itself instead
(`bot.matching.calibration`), and the built-in ones serve catalogues too small to learn
from, lexical mode, and `CONCIERGE_CALIBRATION=off`. See docs/matching.md for how and with
what results.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When to answer, when to offer choices, when to decline."""

    answer: float
    """Top score at or above which a single offering may be answered outright."""
    margin: float
    """How far the top score must lead the runner-up for an outright answer."""
    decline: float
    """Top score below which nothing fits."""
    clarify_window: float
    """Runners-up within this distance of the top score are offered as choices."""
    sure: float = 1.01
    """Top score at or above which the margin rule is waived (exact phrase matches)."""
    lead: float = 1.01
    """Below the decline line (by at most `LEAD_REACH`), a best offering that leads the
    runner-up by at least this is still offered as a choice rather than declined."""

    def declines(self, strength: float, margin: float) -> bool:
        """Whether a question whose best offering fits this well, this far ahead, is
        declined."""
        return strength < self.decline and (
            margin < self.lead or strength < self.decline - LEAD_REACH)

    def answers(self, strength: float, margin: float) -> bool:
        """Whether it is answered outright (when not declined)."""
        return strength >= self.sure or (strength >= self.answer and margin >= self.margin)


LEAD_REACH = 0.2
"""How far below the decline line a clear lead still earns choices."""


# `python -m tests.benchmarks.calibrate --matcher semantic` (at most 2% confidently wrong, at
# most 3% of out-of-scope questions answered outright, at least 80% declined): the most direct
# answers plus resolved questions on CLINC150 val. An earlier bound of 90% declined put the
# decline line at the *typical* fit of in-scope questions on IT catalogues (their needs are fewer
# and vaguer than CLINC150's ten examples per intent), turning real needs away; out-of-scope
# fits are alike across catalogues.
SEMANTIC = Thresholds(answer=0.58, margin=0.13, decline=0.45, clarify_window=0.12, sure=1.0)
# `--matcher lexical --min-declined 0.5` (the other bounds as above): words alone cannot tell
# out-of-scope questions apart as well, so fewer are declined rather than turn away real needs.
LEXICAL = Thresholds(answer=0.52, margin=0.23, decline=0.38, clarify_window=0.15, sure=0.90)

MAX_QUERY_CHARS = 1000
"""Longer questions are cut here (and the answer says so): matching time stays bounded."""
MAX_CANDIDATES = 5
MAX_CHOICES = 3


class RuleSource(enum.StrEnum):
    CALIBRATED = "calibrated"
    """Learnt from this catalogue."""
    DEFAULT = "default"
    """The built-in lines (too small a catalogue, or calibration switched off)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a rule does with the catalogue's own questions (rates in 0..1)."""

    direct: float
    """Needs answered outright with their own offering."""
    wrong: float
    """Needs answered outright with another offering."""
    near_domain_answered: float
    """Needs answered outright when asked as if their own offering were missing (a question
    on a neighbouring topic the catalogue does not cover): confidently wrong."""
    in_scope_declined: float
    out_of_scope_declined: float
    out_of_scope_answered: float


@dataclass(frozen=True, slots=True)
class DecisionRule:
    """The lines a matcher decides with, where they came from, and what they do with the
    catalogue's own questions."""

    thresholds: Thresholds
    source: RuleSource
    reason: str
    """One sentence: how the lines were chosen, or why the defaults apply."""
    needs_asked: int = 0
    background_asked: int = 0
    estimate: Estimate | None = None
    pinned: tuple[str, ...] = ()
    """Lines set in configuration (`answer`, `margin`, `decline`), overriding the rest."""

    def describe(self) -> str:
        t = self.thresholds
        pins = (f"; pinned in configuration: {', '.join(self.pinned)}" if self.pinned else "")
        lead = (f", choices from {t.decline - LEAD_REACH:.2f} when {t.lead:.2f} ahead"
                if t.lead <= 1.0 else "")
        return (f"{self.source.value}: decline below {t.decline:.2f}{lead}; answer at "
                f"{t.answer:.2f} or more when {t.margin:.2f} ahead of the runner-up{pins}. "
                f"{self.reason}")

    def as_json(self) -> dict[str, object]:
        t = self.thresholds
        out: dict[str, object] = {
            "source": self.source.value, "answer": t.answer, "margin": t.margin,
            "decline": t.decline, "lead": t.lead if t.lead <= 1.0 else None,
            "pinned": list(self.pinned), "reason": self.reason,
            "needs_asked": self.needs_asked, "background_asked": self.background_asked}
        if self.estimate is not None:
            e = self.estimate
            out["estimate"] = {"direct": round(e.direct, 4), "wrong": round(e.wrong, 4),
                               "near_domain_answered": round(e.near_domain_answered, 4),
                               "in_scope_declined": round(e.in_scope_declined, 4),
                               "out_of_scope_declined": round(e.out_of_scope_declined, 4),
                               "out_of_scope_answered": round(e.out_of_scope_answered, 4)}
        return out


def default_rule(mode: str, reason: str) -> DecisionRule:
    return DecisionRule(SEMANTIC if mode == "semantic" else LEXICAL, RuleSource.DEFAULT, reason)
