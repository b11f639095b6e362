"""How well a catalogue can be matched, for the people who write it.

Read from the catalogue's questions about itself (`bot.matching.calibration`: each need
asked as a question of the catalogue without it and the needs of its offering that say
nearly the same): per offering, how often its own needs
find it; and findings, each with what to do about it:

    few-needs         an offering with fewer than `MIN_NEEDS` needs
    duplicate-need    a need written in two offerings (questions with it get both as choices)
    confused-pair     two offerings whose needs, asked without themselves, find each other
                      (two needs or more, or one that would be answered outright)
    weak-offering     an offering that fewer than half of its own needs find
    loose-need        a need that, asked without itself, fits its own offering below the
                      decline line (a question worded like it would be turned away)

Findings are warnings: `concierge check --quality --strict` makes them fail a build.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bot.catalogue.models import Catalog, Offering, SourceRef
from bot.matching.calibration import AskedNeed, SelfTest, self_test
from bot.matching.matcher import Matcher, need_key, shared_needs
from bot.matching.thresholds import DecisionRule, Thresholds

MIN_NEEDS = 3
WEAK_SHARE = 0.5
"""An offering found by fewer than this share of its own needs is weak."""
CONFUSED_NEEDS = 2
"""Two offerings are confused when this many of their needs find the other first."""


class FindingKind(enum.StrEnum):
    FEW_NEEDS = "few-needs"
    DUPLICATE_NEED = "duplicate-need"
    CONFUSED_PAIR = "confused-pair"
    WEAK_OFFERING = "weak-offering"
    LOOSE_NEED = "loose-need"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing in the catalogue that makes matching worse, and what to do about it."""

    kind: FindingKind
    offerings: tuple[str, ...]
    """The offerings concerned (ids), the one to edit first."""
    message: str
    action: str
    needs: tuple[str, ...] = ()
    """The needs concerned, as written."""
    source: SourceRef | None = None

    def render(self) -> str:
        """`path:line: needs: warning: message action`, as `concierge check` prints problems."""
        where = f"{self.source.path}:{self.source.line}" if self.source else self.offerings[0]
        return f"{where}: needs: warning: {self.message} {self.action}"

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind.value, "offerings": list(self.offerings),
                "needs": list(self.needs), "message": self.message, "action": self.action,
                "path": self.source.path if self.source else None,
                "line": self.source.line if self.source else None}


@dataclass(frozen=True, slots=True)
class OfferingRecall:
    """How often an offering's own needs, each asked without itself, find it first."""

    offering: str
    needs: int
    found: int

    @property
    def share(self) -> float:
        return self.found / self.needs if self.needs else 0.0


@dataclass(frozen=True, slots=True)
class QualityReport:
    rule: DecisionRule
    recall: tuple[OfferingRecall, ...]
    findings: tuple[Finding, ...]

    @property
    def needs_found(self) -> tuple[int, int]:
        """(needs that find their offering, needs asked) over the whole catalogue."""
        return (sum(r.found for r in self.recall), sum(r.needs for r in self.recall))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind.value] = out.get(f.kind.value, 0) + 1
        return out

    def summary(self) -> str:
        found, asked = self.needs_found
        share = f"{found} of {asked} needs ({found / asked:.0%})" if asked else "no needs"
        counts = ", ".join(f"{n} {k}" for k, n in self.counts().items()) or "no findings"
        return (f"{share} find their own offering when each is asked as a question of the "
                f"catalogue without it; {counts}")

    def lines(self) -> list[str]:
        """The report as text lines: the rule, the weakest offerings, every finding."""
        out = [f"decision rule: {self.rule.describe()}", self.summary()]
        weak = [r for r in self.recall if r.needs and r.found < r.needs]
        if weak:
            out.append("offerings whose own needs do not all find them (found / asked):")
            out += [f"  {r.offering}: {r.found} / {r.needs}"
                    for r in sorted(weak, key=lambda r: (r.share, r.offering))]
        out += [f.render() for f in self.findings]
        return out

    def as_json(self) -> dict[str, object]:
        found, asked = self.needs_found
        return {"rule": self.rule.as_json(), "needs_asked": asked, "needs_found": found,
                "offerings": [{"id": r.offering, "needs": r.needs, "found": r.found}
                              for r in self.recall],
                "findings": [f.as_json() for f in self.findings], "counts": self.counts()}


def quality_report(m: Matcher) -> QualityReport:
    """The report for the matcher's catalogue, read from its self-test (asked now, or
    read from the disk cache, when the matcher was not calibrated)."""
    catalog = m.catalog
    test = m.self_test if m.self_test is not None else (
        self_test(m) if any(o.needs for o in catalog) else SelfTest((), ()))
    t = m.rule.thresholds
    findings = [*_few_needs(catalog), *_duplicates(catalog), *_confused(catalog, test, t),
                *_weak(catalog, test), *_loose(catalog, test, t.decline)]
    return QualityReport(m.rule, _recall(catalog, test), tuple(findings))


def _live(catalog: Catalog) -> Iterable[Offering]:
    return (o for o in catalog if not o.is_retired)


def _few_needs(catalog: Catalog) -> Iterable[Finding]:
    for o in _live(catalog):
        if len(o.needs) < MIN_NEEDS:
            more = MIN_NEEDS - len(o.needs)
            yield Finding(
                FindingKind.FEW_NEEDS, (o.id,),
                f"{o.name} has {len(o.needs)} need{'s' if len(o.needs) != 1 else ''}, so "
                "questions worded differently have little to match.",
                f"Add at least {more} more, each the way a user would ask for it (a "
                "situation or a symptom, not the product's name).",
                o.needs, o.source)


def _duplicates(catalog: Catalog) -> Iterable[Finding]:
    for key, ks in shared_needs(catalog).items():
        offerings = [catalog.offerings[k] for k in ks]
        text = next(n for n in offerings[0].needs if need_key(n) == key)
        names = " and ".join(o.name for o in offerings)
        yield Finding(
            FindingKind.DUPLICATE_NEED, tuple(o.id for o in offerings),
            f'The need "{text}" is written in {names}: a question with it gets them as '
            "choices, never an answer.",
            "Keep it in the offering it belongs to, or reword each copy to say what is "
            "different about that offering.",
            (text,), offerings[0].source)


def _confused(catalog: Catalog, test: SelfTest, t: Thresholds) -> Iterable[Finding]:
    """Pairs of offerings whose needs find each other: at least `CONFUSED_NEEDS` needs
    across (either way), or one that would be answered outright with the other."""
    across: dict[frozenset[int], list[AskedNeed]] = defaultdict(list)
    for a in test.needs:
        if a.probe.ranked and a.probe.top != a.offering:
            across[frozenset((a.offering, a.probe.top))].append(a)
    for _, needs in sorted(across.items(), key=lambda kv: (-len(kv[1]), sorted(kv[0]))):
        answered = [a for a in needs if not t.declines(a.probe.strength, a.probe.margin)
                    and t.answers(a.probe.strength, a.probe.margin)]
        if len(needs) < CONFUSED_NEEDS and not answered:
            continue
        first = (answered or needs)[0]
        mine, other = catalog.offerings[first.offering], catalog.offerings[first.probe.top]
        quoted = ", ".join(f'"{catalog.offerings[a.offering].needs[a.need]}" '
                           f"({catalog.offerings[a.offering].name})" for a in needs[:3])
        via = first.probe.ranked[0].evidence.describe()
        yield Finding(
            FindingKind.CONFUSED_PAIR, (mine.id, other.id),
            f"{mine.name} and {other.name} are confused: each asked as a question without "
            "itself, "
            f"{len(needs)} need{'s' if len(needs) > 1 else ''} {quoted} "
            f"find{'' if len(needs) > 1 else 's'} the other "
            f"first (e.g. {other.name}'s {via})"
            + (f", {len(answered)} of them answered outright." if answered else "."),
            f"Add a need to {mine.name} that says how it differs from {other.name}, in your "
            "users' words; if they are the same thing, merge them.",
            tuple(catalog.offerings[a.offering].needs[a.need] for a in needs), mine.source)


def _recall(catalog: Catalog, test: SelfTest) -> tuple[OfferingRecall, ...]:
    asked: dict[int, list[AskedNeed]] = defaultdict(list)
    for a in test.needs:
        asked[a.offering].append(a)
    return tuple(OfferingRecall(o.id, len(asked[k]), sum(a.found for a in asked[k]))
                 for k, o in enumerate(catalog.offerings) if k in asked)


def _weak(catalog: Catalog, test: SelfTest) -> Iterable[Finding]:
    for r in _recall(catalog, test):
        if r.needs >= 2 and r.share < WEAK_SHARE:
            o = catalog[r.offering]
            yield Finding(
                FindingKind.WEAK_OFFERING, (o.id,),
                f"Only {r.found} of {r.needs} needs of {o.name} find it when each is asked "
                "as a question without itself: each says something the others do not.",
                "Add needs that say its main uses again in other words (how users describe "
                "the situation), so that a question need not match one need word for word.",
                o.needs, o.source)


def _loose(catalog: Catalog, test: SelfTest, decline: float) -> Iterable[Finding]:
    loose: dict[int, list[AskedNeed]] = defaultdict(list)
    for a in test.needs:
        if a.probe.strength_of(a.offering) < decline:
            loose[a.offering].append(a)
    for k, needs in loose.items():
        o = catalog.offerings[k]
        texts = tuple(o.needs[a.need] for a in needs)
        quoted = ", ".join(f'"{t}"' for t in texts[:3]) + (" …" if len(texts) > 3 else "")
        yield Finding(
            FindingKind.LOOSE_NEED, (o.id,),
            f"{len(texts)} need{'s' if len(texts) > 1 else ''} of {o.name} ({quoted}), each "
            f"asked as a question without itself, fit{'s' if len(texts) == 1 else ''} {o.name} "
            f"below the decline line ({decline:.2f}): a question worded like "
            f"{'it' if len(texts) == 1 else 'them'}, but not word for word, would be turned "
            "away.",
            "Say the same again in another need (other words, a symptom, the task), or put "
            "its key words in the keywords or the summary.",
            texts, o.source)
