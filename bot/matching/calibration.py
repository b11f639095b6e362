"""A decision rule for each catalogue, learnt from the catalogue itself when it loads.

How well a right question fits depends on the catalogue (how many needs it has, how they
are worded, how close its offerings sit), so the decline line is drawn for each catalogue,
and the answer and margin lines are checked against it, from three kinds of question it can
be asked about itself:

    in scope     each need, asked in its own words of the catalogue without it (and
                 without the needs of its offering that say nearly the same, which a
                 real question would not repeat word for word): five folds, each
                 leaving out a fifth of every offering's needs
    near-domain  the same needs, as if their own offering were missing: a question about
                 a neighbouring topic the catalogue does not cover, the out-of-scope
                 question that real traffic is full of
    out of scope the background questions that ship with Concierge (everyday questions
                 no IT catalogue answers, `data/background/`), asked of the whole catalogue

From what the rule would do with them it chooses:
- the decline line where declining costs least: a need declined counts `DECLINE_COST`
  times a background question let through; and the lead that still earns choices below it;
- the answer and margin lines: the built-in ones, raised only where that takes back more than
  `KEPT_ANSWER_WORTH` near-domain answers (background answers counting `BACKGROUND_WORTH`
  of one) for each right answer it turns into a choice. They are never lowered: asked
  of itself, a catalogue cannot show that a lower line is safe (measured: lines lowered on
  that evidence gave more confidently wrong answers on seven benchmark tables of ten and
  fewer on none, docs/matching.md),
  and a confidently wrong answer is the worst outcome there is.

The search is a fixed grid and nothing is random: the same catalogue gets the same lines. A
catalogue too small to learn from keeps the built-in lines of `bot.matching.thresholds`. The
asked questions are cached on disk with the embeddings (keyed by the catalogue's text, the
model and this code), so a restart does not ask them again; `bot.matching.quality` reads them
for the catalogue owners' report.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from importlib import resources
from itertools import chain
from math import lcm

import numpy as np

from bot.catalogue import cache as catalogue_cache
from bot.catalogue.cache import DiskCache
from bot.catalogue.models import Catalog, Evidence
from bot.matching import lexical, matcher, semantic, text, thresholds
from bot.matching.matcher import LeftOut, Matcher, Probe, Probed
from bot.matching.text import content_words, stem
from bot.matching.thresholds import (
    LEAD_REACH,
    LEXICAL,
    SEMANTIC,
    DecisionRule,
    Estimate,
    RuleSource,
    Thresholds,
    default_rule,
)
from bot.settings import cache_dir

log = logging.getLogger(__name__)

MIN_OFFERINGS = 3
MIN_NEEDS = 20
"""Below either, the catalogue keeps the built-in lines: too few questions to learn from."""
FOLDS = 5
MAX_ASKED = 1500
"""Needs asked at most (offerings spread evenly over a larger catalogue)."""
NEAR_DUPLICATE = 0.75
"""Needs of one offering this similar (cosine) are left out together."""
MAX_IN_SCOPE_DECLINED = 0.03
DECLINE_COST = 1.5
KEPT_ANSWER_WORTH = Fraction(2)
"""A right outright answer is worth this many near-domain answers: raising the answer or
margin line must take back more than this many for each right answer it turns into a choice."""
BACKGROUND_WORTH = Fraction(1, 2)
"""An everyday out-of-scope question answered outright, in near-domain answers: those are
fewer in real traffic than near-domain ones, and the decline line already stops most."""
ANSWER_GRID = np.round(np.arange(0.30, 1.06, 0.01), 2)
MARGIN_GRID = np.round(np.arange(0.00, 0.41, 0.01), 2)
DECLINE_GRID = np.round(np.arange(0.15, 0.81, 0.01), 2)
LEAD_GRID = np.round(np.arange(0.05, 0.41, 0.01), 2)
BACKGROUND_FILES = ("clinc150-oos-train.txt", "everyday-workplace.txt")


@dataclass(frozen=True, slots=True)
class AskedNeed:
    """One need asked as a question of the catalogue without it."""

    offering: int
    need: int
    probe: Probe

    @property
    def found(self) -> bool:
        """Its own offering came first."""
        return self.probe.top == self.offering


@dataclass(frozen=True, slots=True)
class SelfTest:
    """The catalogue's questions about itself and what the matcher made of them."""

    needs: tuple[AskedNeed, ...]
    background: tuple[Probe, ...]


def too_small(catalog: Catalog) -> str | None:
    """Why the catalogue is too small to learn a rule from; None when it is not."""
    live = [o for o in catalog if not o.is_retired]
    needs = sum(len(o.needs) for o in live)
    if len(live) < MIN_OFFERINGS or needs < MIN_NEEDS:
        return (f"{len(live)} live offering{'s' if len(live) != 1 else ''} with {needs} "
                f"need{'s' if needs != 1 else ''} are too few to learn from "
                f"(at least {MIN_OFFERINGS} offerings and {MIN_NEEDS} needs); the built-in "
                "lines apply.")
    return None


def background_questions() -> tuple[str, ...]:
    """The shipped out-of-scope questions, in file order."""
    folder = resources.files("bot.matching") / "data" / "background"
    out: list[str] = []
    for name in BACKGROUND_FILES:
        for raw in (folder / name).read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return tuple(out)


# --- asking the catalogue about itself ---------------------------------------------------


def self_test(m: Matcher, *, cache: bool = True) -> SelfTest:
    """Ask the catalogue its own needs and the background questions (from the disk cache
    when this catalogue, model and code were asked before)."""
    if not cache:
        return _ask(m)
    disk = DiskCache(cache_dir(), "selftest", _cache_version(), keep=8,
                     types=(SelfTest, AskedNeed, Probe, Probed, Evidence))
    return disk.read_or_build(_digest(m), SelfTest, lambda: _ask(m))


def _ask(m: Matcher) -> SelfTest:
    folds = _folds(m)
    asked: list[AskedNeed] = []
    for fold in folds:
        held = m.without_needs(fold)
        questions = [(k, n) for k, ns in fold.items() for n in ns]
        vectors = _vectors(m, [m.catalog.offerings[k].needs[n] for k, n in questions])
        for k, n in questions:
            need = m.catalog.offerings[k].needs[n]
            probe = held.probe(need, left_out=LeftOut(k, fold[k]), vectors=vectors)
            asked.append(AskedNeed(k, n, probe))
    asked.sort(key=lambda a: (a.offering, a.need))
    background = background_questions()
    vectors = _vectors(m, background)
    return SelfTest(tuple(asked), tuple(m.probe(q, vectors=vectors) for q in background))


def _vectors(m: Matcher, questions: Sequence[str]) -> Mapping[str, semantic.Vectors]:
    """The embeddings of everything the questions will ask the model, in one batch."""
    if m.semantic is None:
        return {}
    texts = list(dict.fromkeys(chain.from_iterable(m.embedding_texts(q) for q in questions)))
    return dict(zip(texts, m.semantic.embedder.embed(texts), strict=True)) if texts else {}


def _folds(m: Matcher) -> list[dict[int, tuple[int, ...]]]:
    """Which needs each fold leaves out: offering index → need numbers. Needs of an offering
    that say nearly the same go to one fold; offerings are spread evenly when the catalogue
    has more needs than `MAX_ASKED`."""
    offerings = m.catalog.offerings
    live = [k for k, o in enumerate(offerings) if not o.is_retired and o.needs]
    total = sum(len(offerings[k].needs) for k in live)
    step = max(1, -(-total // MAX_ASKED))
    folds: list[dict[int, list[int]]] = [{} for _ in range(FOLDS)]
    for k in live[::step]:
        groups = _near_duplicates(m, k)
        for g, members in enumerate(groups):
            folds[(k + g) % FOLDS].setdefault(k, []).extend(members)
    return [{k: tuple(sorted(ns)) for k, ns in f.items()} for f in folds if f]


def _near_duplicates(m: Matcher, k: int) -> list[list[int]]:
    """An offering's need numbers in groups that say nearly the same, in need order: by
    embedding (cosine at least `NEAR_DUPLICATE` to the group's first need), or, without a
    model, by the same content words."""
    needs = m.catalog.offerings[k].needs
    groups: list[list[int]] = []
    if m.semantic is not None:
        index = m.semantic
        vectors = np.stack([index.example_vector(index.example_index(k, n))
                            for n in range(len(needs))])
        for n in range(len(needs)):
            home = next((g for g in groups if float(vectors[g[0]] @ vectors[n])
                         >= NEAR_DUPLICATE), None)
            home.append(n) if home is not None else groups.append([n])
        return groups
    keys: dict[frozenset[str], list[int]] = {}
    for n, need in enumerate(needs):
        keys.setdefault(frozenset(stem(w) for w in content_words(need)), []).append(n)
    return list(keys.values())


# --- choosing the lines -------------------------------------------------------------------


def derive_rule(test: SelfTest, mode: str, catalog: Catalog) -> DecisionRule:
    """The rule for this catalogue: calibrated from its self-test, or the defaults when it
    is too small."""
    small = too_small(catalog)
    if small is not None or len(test.needs) < MIN_NEEDS:
        return default_rule(mode, small or (
            f"only {len(test.needs)} needs could be asked; the built-in lines apply."))
    base = SEMANTIC if mode == "semantic" else LEXICAL
    own = _Sample.of([a.probe for a in test.needs], [a.offering for a in test.needs])
    background = _Sample.of(list(test.background), [-1] * len(test.background))
    near = _Sample.of([a.probe.without(a.offering) for a in test.needs],
                      [-1] * len(test.needs))
    decline, lead = _decline_lines(own, background, base)
    answer, margin = _answer_lines(own, background, near, base, decline)
    chosen = replace(base, answer=answer, margin=margin, decline=decline, lead=lead)
    estimate = _rates(own, background, near, chosen)
    moved = [f"the {name} line from {was:.2f} to {now:.2f}"
             for name, was, now in (("answer", base.answer, answer),
                                    ("margin", base.margin, margin)) if now != was]
    if not moved:
        lines = (f"the built-in answer and margin lines (raising them would not take back more "
                 f"than {KEPT_ANSWER_WORTH} near-domain answers, an everyday question counting "
                 f"{BACKGROUND_WORTH}, for each right answer it turns into a choice)")
    else:
        before = _rates(own, background, near, replace(chosen, answer=base.answer,
                                                       margin=base.margin))
        lines = (f"raised {' and '.join(moved)}: of its needs asked as if their own offering "
                 f"were missing (a question on a neighbouring topic), "
                 f"{before.near_domain_answered:.1%} were answered outright, now "
                 f"{estimate.near_domain_answered:.1%}; of the everyday questions "
                 f"{before.out_of_scope_answered:.1%}, now {estimate.out_of_scope_answered:.1%}; "
                 f"for {before.direct - estimate.direct:.1%} of its needs offered as a choice "
                 "instead of answered")
    reason = (f"Learnt from {len(test.needs)} of its needs, each asked of the catalogue without "
              f"it, and {len(test.background)} everyday out-of-scope questions: the decline "
              f"line where declining costs least; {lines}.")
    return DecisionRule(chosen, RuleSource.CALIBRATED, reason, len(test.needs),
                        len(test.background), estimate)


@dataclass(frozen=True, slots=True)
class _Sample:
    strength: np.ndarray
    margin: np.ndarray
    right: np.ndarray
    """Whether the first candidate is the question's own offering (never, out of scope)."""

    @classmethod
    def of(cls, probes: Sequence[Probe], own: Sequence[int]) -> _Sample:
        return cls(np.array([p.strength for p in probes], dtype=np.float64),
                   np.array([p.margin for p in probes], dtype=np.float64),
                   np.array([p.top == k and k >= 0 for p, k in zip(probes, own, strict=True)],
                            dtype=bool))

    def __len__(self) -> int:
        return len(self.strength)


def _declined(s: _Sample, decline: float, lead: float) -> np.ndarray:
    return (s.strength < decline) & ((s.margin < lead) | (s.strength < decline - LEAD_REACH))


def _decline_lines(own: _Sample, background: _Sample, base: Thresholds) -> tuple[float, float]:
    """The decline line, then the lead that still earns choices below it: where declining
    costs least, a need declined counting `DECLINE_COST` background questions let through.
    The line rises above the built-in one only when it declines at most
    `MAX_IN_SCOPE_DECLINED` of the catalogue's needs: "I don't know" to a real need is the
    second worst outcome, and where the needs cannot show it is rare, the built-in line
    (chosen on real questions) knows better."""
    def cost(decline: float, lead: float) -> float:
        return (DECLINE_COST * _share(_declined(own, decline, lead))
                + 1.0 - _share(_declined(background, decline, lead)))

    never = float(LEAD_GRID[-1]) + 1.0
    decline = float(min(DECLINE_GRID, key=lambda d: cost(float(d), never)))
    if decline > base.decline and (
            _share(_declined(own, decline, never)) > MAX_IN_SCOPE_DECLINED):
        decline = base.decline
    lead = min(LEAD_GRID, key=lambda m: cost(float(decline), float(m)))
    # A lead that rescues nothing is no lead: keep the built-in "never".
    if cost(float(decline), float(lead)) >= cost(float(decline), never):
        return float(decline), SEMANTIC.lead
    return float(decline), float(lead)


def _share(mask: np.ndarray) -> float:
    """The share of questions for which `mask` holds (none asked: none)."""
    return float(np.mean(mask)) if mask.size else 0.0


def _answered(s: _Sample, answer: np.ndarray, margin: np.ndarray,
              sure: float) -> np.ndarray:
    """Which questions each (answer, margin) pair answers, indexed [question, answer,
    margin]: those at or above both lines, and those at or above the `sure` line whatever
    their margin."""
    return (((s.strength[:, None, None] >= answer[None, :, None])
             & (s.margin[:, None, None] >= margin[None, None, :]))
            | (s.strength >= sure)[:, None, None])


def _answer_lines(own: _Sample, background: _Sample, near: _Sample,
                  base: Thresholds, decline: float) -> tuple[float, float]:
    """The answer and margin lines: the built-in ones, raised where that takes back more
    than `KEPT_ANSWER_WORTH` near-domain answers (a background answer counting
    `BACKGROUND_WORTH`) for each right answer it turns into a choice; never lowered.

    Measured (docs/matching.md): lines lowered where the catalogue's own needs showed it
    safe gave more confidently wrong answers on seven benchmark tables of ten (fewer on
    none), even where they showed no added risk at all; and the catalogue's own
    needs answered wrongly say little (each need of an IT catalogue says something of its
    own, so asked without it, it lands elsewhere far more often than real questions do): the
    built-in lines already bound those. What the catalogue can show is how often a question
    about a neighbouring topic it does not cover would be answered with the nearest offering,
    and where raising the lines stops that cheaply."""
    answers = np.concatenate(([base.answer], ANSWER_GRID[base.answer < ANSWER_GRID]))
    margins = np.concatenate(([base.margin], MARGIN_GRID[base.margin < MARGIN_GRID]))
    # Nothing below the decline line is answered, whatever the answer line.
    reach = np.maximum(answers, decline)
    right = (_answered(own, reach, margins, base.sure)
             & own.right[:, None, None]).sum(axis=0).astype(np.int64)
    near_answered = _answered(near, reach, margins, base.sure).sum(axis=0).astype(np.int64)
    out_answered = _answered(background, reach, margins, base.sure).sum(axis=0).astype(np.int64)
    # near/N + BACKGROUND_WORTH·out/B - KEPT_ANSWER_WORTH·right/O, times a common multiple of
    # the denominators: whole numbers, so an exact trade is a tie, not a rounding error.
    n, b, o = max(len(near), 1), max(len(background), 1), max(len(own), 1)
    scale = lcm(BACKGROUND_WORTH.denominator, KEPT_ANSWER_WORTH.denominator)
    cost = (scale * b * o * near_answered
            + int(BACKGROUND_WORTH * scale) * n * o * out_answered
            - int(KEPT_ANSWER_WORTH * scale) * n * b * right)
    # The first of the cheapest: the loosest lines, the built-in ones on a tie.
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return float(answers[i]), float(margins[j])


def _rates(own: _Sample, background: _Sample, near: _Sample, t: Thresholds) -> Estimate:
    def answered(s: _Sample) -> np.ndarray:
        return (s.strength >= t.decline) & (
            (s.strength >= t.sure) | ((s.strength >= t.answer) & (s.margin >= t.margin)))

    own_answered = answered(own)
    return Estimate(
        direct=_share(own_answered & own.right),
        wrong=_share(own_answered & ~own.right),
        near_domain_answered=_share(answered(near)),
        in_scope_declined=_share(_declined(own, t.decline, t.lead)),
        out_of_scope_declined=_share(_declined(background, t.decline, t.lead)),
        out_of_scope_answered=_share(answered(background)))


# --- pins and the whole ------------------------------------------------------------------


def with_pins(rule: DecisionRule, pins: Mapping[str, float]) -> DecisionRule:
    """The rule with the lines an operator set in configuration."""
    if not pins:
        return rule
    return replace(rule, thresholds=replace(rule.thresholds, **pins),
                   pinned=tuple(k for k in ("answer", "margin", "decline") if k in pins))


def calibrated(m: Matcher, *, enabled: bool = True, pins: Mapping[str, float] | None = None,
               cache: bool = True,
               progress: Callable[[str], None] | None = None) -> tuple[Matcher, SelfTest | None]:
    """The matcher deciding with the rule learnt from its catalogue (and its self-test,
    None when the catalogue is too small or calibration is off)."""
    test: SelfTest | None = None
    small = too_small(m.catalog)
    if not enabled:
        rule = default_rule(m.mode, "Calibration is off (CONCIERGE_CALIBRATION=off); the "
                                    "built-in lines apply.")
    elif m.semantic is None:
        # Measured on the golden questions: words alone tell too little of in-scope from
        # out-of-scope for a few hundred questions to place the lines (the decline line
        # fell until 28% of out-of-scope questions were declined, from 78%).
        rule = default_rule(m.mode, "Lexical mode keeps the built-in lines: words alone "
                                    "tell in-scope from out-of-scope questions too poorly "
                                    "to learn lines from.")
    elif small is not None:
        rule = default_rule(m.mode, small)
    else:
        if progress is not None:
            progress("asking the catalogue its own needs")
        test = self_test(m, cache=cache)
        rule = derive_rule(test, m.mode, m.catalog)
    rule = with_pins(rule, pins or {})
    log.info("decision rule for %d offerings: %s", len(m.catalog), rule.describe())
    return m.with_rule(rule, test), test


def _digest(m: Matcher) -> str:
    embedder = m.semantic.embedder.name if m.semantic is not None else "-"
    return catalogue_cache.digest_of(chain(
        (m.mode.encode(), embedder.encode()),
        (q.encode() for q in background_questions()),
        (f"{o.id}\x1f{o.lifecycle.value}\x1f{o.replaced_by}".encode() for o in m.catalog),
        (f"{f}\x1f{t}".encode() for o in m.catalog for f, t in lexical.offering_texts(o))))[:32]


@cache
def _cache_version() -> str:
    # The answers depend on how questions are scored and ranked, and on this module.
    return catalogue_cache.code_version(
        sys.modules[__name__], matcher, lexical, semantic, text, thresholds, sys.version,
        catalogue_cache.package_version("numpy"))
