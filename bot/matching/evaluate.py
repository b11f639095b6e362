"""Golden questions: run them through a matcher and measure what an employee would feel.

Rates (each over the questions it concerns):
- direct hit: answered outright with an expected offering (in-scope questions);
- resolved: a direct hit, or an expected offering among the choices offered (in-scope);
- confidently wrong: answered outright with an offering not expected (all questions);
- declined out of scope: `none` for questions that expect nothing (out-of-scope questions);
- top-1 / top-3: the expected offering ranked first / among the first three (in-scope).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.catalogue.models import Catalog, Decision, DecisionKind, Problem
from bot.errors import KnowledgeError
from bot.matching.matcher import Matcher


@dataclass(frozen=True, slots=True)
class Case:
    """One golden question and the offering ids that would be right (empty: decline)."""

    question: str
    expect: frozenset[str]
    line: int = 0
    known_miss: str | None = None
    """Why this case is known to fail today; it is reported but does not fail the run,
    and it fails the run once it passes (so the mark is removed, as with strict xfail)."""

    @property
    def in_scope(self) -> bool:
        return bool(self.expect)


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    decision: Decision
    seconds: float

    @property
    def direct(self) -> bool:
        d = self.decision
        return d.kind is DecisionKind.ANSWER and d.offering is not None and (
            d.offering.id in self.case.expect)

    @property
    def resolved(self) -> bool:
        if not self.case.in_scope:
            return self.decision.kind is DecisionKind.NONE
        return self.direct or any(o.id in self.case.expect for o in self.decision.choices)

    @property
    def confidently_wrong(self) -> bool:
        d = self.decision
        return d.kind is DecisionKind.ANSWER and d.offering is not None and (
            d.offering.id not in self.case.expect)

    def ranked_within(self, n: int) -> bool:
        return any(c.offering.id in self.case.expect for c in self.decision.candidates[:n])

    @property
    def passed(self) -> bool:
        """What CI gates on: in scope, the right answer or the right choice offered (never a
        wrong outright answer); out of scope, declined."""
        return self.resolved and not self.confidently_wrong


@dataclass(frozen=True, slots=True)
class Report:
    outcomes: tuple[Outcome, ...]

    def _rate(self, hits: Sequence[bool]) -> float:
        return sum(hits) / len(hits) if hits else 0.0

    @property
    def in_scope(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.case.in_scope)

    @property
    def out_of_scope(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.case.in_scope)

    def metrics(self) -> dict[str, float]:
        ins, oos = self.in_scope, self.out_of_scope
        ms = sorted(o.seconds * 1000 for o in self.outcomes) or [0.0]
        return {
            "questions": float(len(self.outcomes)),
            "in_scope": float(len(ins)),
            "out_of_scope": float(len(oos)),
            "top1": self._rate([o.ranked_within(1) for o in ins]),
            "top3": self._rate([o.ranked_within(3) for o in ins]),
            "direct": self._rate([o.direct for o in ins]),
            "resolved": self._rate([o.resolved for o in ins]),
            "confidently_wrong": self._rate([o.confidently_wrong for o in self.outcomes]),
            "oos_declined": self._rate([o.decision.kind is DecisionKind.NONE for o in oos]),
            "ms_median": statistics.median(ms),
            "ms_p99": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))],
        }

    @property
    def misses(self) -> tuple[Outcome, ...]:
        """Every case that did not pass, known or not."""
        return tuple(o for o in self.outcomes if not o.passed)

    @property
    def failures(self) -> tuple[Outcome, ...]:
        """What fails the run: unexpected misses, and known misses that now pass."""
        return tuple(o for o in self.outcomes
                     if o.passed == (o.case.known_miss is not None))


def evaluate(matcher: Matcher, cases: Sequence[Case]) -> Report:
    outcomes = []
    for case in cases:
        start = time.perf_counter()
        decision = matcher.decide(case.question)
        outcomes.append(Outcome(case, decision, time.perf_counter() - start))
    return Report(tuple(outcomes))


def load_cases(path: str | Path, catalog: Catalog | None = None) -> list[Case]:
    """Read a YAML list of `{q: ..., expect: [ids]}`; every problem is reported with its line."""
    where = str(path)
    try:
        node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise KnowledgeError([Problem(where, 0, "cases", f"cannot read: {exc.strerror}")]) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise KnowledgeError([Problem(where, line, "yaml", exc.problem or "invalid YAML")]) from exc
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        raise KnowledgeError([Problem(where, 1, "cases", "must be a list of {q, expect} items")])
    problems: list[Problem] = []
    cases: list[Case] = []
    for item, item_node in zip(data, node.value, strict=True):
        line = item_node.start_mark.line + 1
        if not isinstance(item, dict) or not isinstance(item.get("q"), str):
            problems.append(Problem(where, line, "q", "each case needs `q` (text)"))
            continue
        expect = item.get("expect", [])
        if not isinstance(expect, list) or not all(isinstance(e, str) for e in expect):
            problems.append(Problem(where, line, "expect", "must be a list of offering ids"))
            continue
        known_miss = item.get("known_miss")
        if known_miss is not None and not (isinstance(known_miss, str) and known_miss.strip()):
            problems.append(Problem(where, line, "known_miss", "must be a reason (text)"))
            continue
        unknown = set(item) - {"q", "expect", "note", "known_miss"}
        if unknown:
            problems.append(Problem(where, line, sorted(unknown)[0], "unknown field"))
        if catalog is not None:
            for e in expect:
                if e not in catalog:
                    problems.append(Problem(where, line, "expect", f"unknown offering id {e!r}"))
        cases.append(Case(item["q"], frozenset(expect), line, known_miss))
    if problems:
        raise KnowledgeError(problems)
    return cases
