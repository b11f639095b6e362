"""A decision rule for each catalogue, learnt from the catalogue itself when it loads.

How well a right question fits depends on the catalogue (how many needs it has, how they
are worded, how close its offerings sit), so the answer, margin and decline lines are
drawn for each catalogue from two kinds of question it can be asked about itself:

    in scope     each need, asked in its own words of the catalogue without it (and
                 without the needs of its offering that say nearly the same, which a
                 real question would not repeat word for word): five folds, each
                 leaving out a fifth of every offering's needs
    out of scope the background questions that ship with Concierge (everyday questions
                 no IT catalogue answers, `data/background/`), asked of the whole catalogue

From what the rule would do with them it chooses:
- the decline line where declining costs least: a need declined counts `DECLINE_COST`
  times a background question let through;
- the answer and margin lines giving the most right outright answers with at most
  `MAX_WRONG` answered wrongly (a mix of the needs, the background and the needs asked
  of the catalogue without their offering, which stand for near-domain questions) and at
  most `MAX_OOS_ANSWERED` of the background answered. A need asked without its own words
  is a harder question than most real ones (many catalogues write each need for one
  case), so where the catalogue's own questions cannot show that bound is met, the rule
  takes no more risk on them than the built-in lines do.

Every rate is estimated with one error added on each side (a small catalogue cannot claim
a clean record), the search is a fixed grid, and nothing is random: the same catalogue
gets the same lines. A catalogue too small to learn from keeps the built-in lines of
`bot.matching.thresholds`. The asked questions are cached on disk with the embeddings
(keyed by the catalogue's text, the model and this code), so a restart does not ask
them again; `bot.matching.quality` reads them for the catalogue owners' report.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from itertools import chain

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
MAX_WRONG = 0.02
MAX_OOS_ANSWERED = 0.03
MAX_IN_SCOPE_DECLINED = 0.03
DECLINE_COST = 1.5
# How the confidently-wrong estimate weighs the three kinds of question: the catalogue's
# own needs, the background, and the needs asked without their offering (near-domain).
WEIGHTS = (0.7, 0.25, 0.05)
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
    key = _digest(m)
    stored = disk.read(key)
    if isinstance(stored, SelfTest):
        return stored
    result = _ask(m)
    disk.write(key, result)
    return result


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
    today = _rates(own, background, near, base)
    # Where the catalogue's own questions cannot show the bounds are met (they are harder
    # than real questions when every need says something of its own), take no more risk
    # than the built-in lines take on the same questions.
    max_wrong = max(MAX_WRONG, today.wrong)
    max_oos = max(MAX_OOS_ANSWERED, today.out_of_scope_answered)
    answer, margin = _answer_lines(own, background, near, decline=decline,
                                   max_wrong=max_wrong, max_oos=max_oos,
                                   fallback=(base.answer, base.margin))
    chosen = replace(base, answer=answer, margin=margin, decline=decline, lead=lead)
    estimate = _rates(own, background, near, chosen)
    bound = ("at most 2% confidently wrong and 3% of out-of-scope questions answered"
             if max_wrong == MAX_WRONG and max_oos == MAX_OOS_ANSWERED else
             "no more risk than the built-in lines take on the same questions")
    reason = (f"Learnt from {len(test.needs)} of its needs asked without their own words and "
              f"{len(test.background)} everyday out-of-scope questions: the most outright "
              f"answers with {bound}.")
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


def _smoothed(count: np.ndarray, n: int) -> np.ndarray:
    """Rates with one event added on each side: a handful of questions never shows 0%."""
    return (count + 1.0) / (n + 2.0)


def _smoothed_one(count: float, n: int) -> float:
    return (count + 1.0) / (n + 2.0)


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
        return (DECLINE_COST * float(np.mean(_declined(own, decline, lead)))
                + 1.0 - float(np.mean(_declined(background, decline, lead))))

    never = float(LEAD_GRID[-1]) + 1.0
    decline = float(min(DECLINE_GRID, key=lambda d: cost(float(d), never)))
    if decline > base.decline and (
            float(np.mean(_declined(own, decline, never))) > MAX_IN_SCOPE_DECLINED):
        decline = base.decline
    lead = min(LEAD_GRID, key=lambda m: cost(float(decline), float(m)))
    # A lead that rescues nothing is no lead: keep the built-in "never".
    if cost(float(decline), float(lead)) >= cost(float(decline), never):
        return float(decline), SEMANTIC.lead
    return float(decline), float(lead)


def _answer_lines(own: _Sample, background: _Sample, near: _Sample, *, decline: float,
                  max_wrong: float, max_oos: float,
                  fallback: tuple[float, float]) -> tuple[float, float]:
    """The answer and margin lines (at or above the decline line) that answer the most
    needs right within the bounds; `fallback` when none does."""
    w_own, w_background, w_near = WEIGHTS
    best: tuple[int, float, float] | None = None
    margins = MARGIN_GRID[None, :]
    for answer in ANSWER_GRID[decline <= ANSWER_GRID]:
        own_answered = (own.strength[:, None] >= answer) & (own.margin[:, None] >= margins)
        right = (own_answered & own.right[:, None]).sum(axis=0)
        wrong_own = (own_answered & ~own.right[:, None]).sum(axis=0)
        oos = ((background.strength[:, None] >= answer)
               & (background.margin[:, None] >= margins)).sum(axis=0)
        near_answered = ((near.strength[:, None] >= answer)
                         & (near.margin[:, None] >= margins)).sum(axis=0)
        wrong = (w_own * _smoothed(wrong_own, len(own))
                 + w_background * _smoothed(oos, len(background))
                 + w_near * _smoothed(near_answered, len(near)))
        ok = (wrong <= max_wrong + 1e-12) & (_smoothed(oos, len(background)) <= max_oos + 1e-12)
        if not ok.any():
            continue
        j = int(np.argmax(np.where(ok, right, -1)))
        if best is None or int(right[j]) > best[0]:
            best = (int(right[j]), float(answer), float(MARGIN_GRID[j]))
    return (best[1], best[2]) if best is not None else fallback


def _rates(own: _Sample, background: _Sample, near: _Sample, t: Thresholds) -> Estimate:
    def answered(s: _Sample) -> np.ndarray:
        return (s.strength >= t.decline) & (
            (s.strength >= t.sure) | ((s.strength >= t.answer) & (s.margin >= t.margin)))

    own_answered, oos_answered = answered(own), answered(background)
    w_own, w_background, w_near = WEIGHTS
    wrong = (w_own * _smoothed_one(float((own_answered & ~own.right).sum()), len(own))
             + w_background * _smoothed_one(float(oos_answered.sum()), len(background))
             + w_near * _smoothed_one(float(answered(near).sum()), len(near)))
    return Estimate(
        direct=float(np.mean(own_answered & own.right)),
        wrong=float(wrong),
        in_scope_declined=float(np.mean(_declined(own, t.decline, t.lead))),
        out_of_scope_declined=float(np.mean(_declined(background, t.decline, t.lead))),
        out_of_scope_answered=_smoothed_one(float(oos_answered.sum()), len(background)))


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
