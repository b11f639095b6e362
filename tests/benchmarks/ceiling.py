"""How many outright answers could any answer and margin lines give? A ceiling for calibration.

    python -m tests.benchmarks.ceiling [--split val] [--shots 10] [--max-wrong 0.02]
        [--domains banking,travel] [--matcher semantic|lexical]

A decision rule answers a question outright when its best offering fits well enough
(strength) and leads the runner-up far enough (margin). Calibration can only move those lines;
it cannot make the ranking better. This measures how far moving them could go at all: for each
CLINC150 domain (a catalogue of its 15 intents, K needs each; in scope the domain's questions of
`--split`, out of scope 450 questions of the other domains and all of `oos_<split>`), it tries
every pair of lines on a grid *on the very questions it scores* and reports the most direct
answers with at most `--max-wrong` confidently wrong: an oracle, which no rule learnt before
seeing the questions can beat. Beside it: the built-in lines, and the best single pair of lines
for all domains at once (each domain within the bound).

Run it on `val` (the default): the ceiling is a measurement for deciding what to build, not a
number to tune on, and test data stays for reporting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.matching.calibration import _answered, _Sample
from bot.matching.matcher import Matcher
from bot.matching.semantic import SemanticIndex
from bot.matching.thresholds import LEXICAL, SEMANTIC, Thresholds
from tests.benchmarks.datasets import BENCHMARKS
from tests.benchmarks.quality import BenchEmbedder, domain_benchmarks

ANSWER_GRID = np.round(np.arange(0.30, 1.01, 0.01), 2)
MARGIN_GRID = np.round(np.arange(0.00, 0.41, 0.01), 2)


@dataclass(frozen=True, slots=True)
class Questions:
    """What the decision rule sees of a catalogue's questions, one entry per question."""

    strength: np.ndarray
    margin: np.ndarray
    right: np.ndarray
    """The best offering is an expected one (never, out of scope)."""
    in_scope: np.ndarray


@dataclass(frozen=True, slots=True)
class Outcome:
    direct: float
    """Of the in-scope questions, answered outright with an expected offering."""
    wrong: float
    """Of all questions, answered outright with an offering not expected."""
    answer: float | None = None
    margin: float | None = None


def outcome(q: Questions, answered: np.ndarray) -> Outcome:
    return Outcome(float((answered & q.right).sum() / max(int(q.in_scope.sum()), 1)),
                   float((answered & ~q.right).sum() / max(len(q.right), 1)))


def with_lines(q: Questions, t: Thresholds) -> Outcome:
    """What the lines `t` do (the decline line included, as the matcher applies it)."""
    return outcome(q, (q.strength >= t.decline) & np.array(
        [t.answers(float(s), float(m)) for s, m in zip(q.strength, q.margin, strict=True)],
        dtype=bool))


def _grid(q: Questions, sure: float) -> tuple[np.ndarray, np.ndarray]:
    """Direct and wrong rates for every (answer, margin) pair of the grid, with the `sure`
    line (at or above it, the margin is waived) as the rule has it."""
    answered = _answered(_Sample(q.strength, q.margin, q.right), ANSWER_GRID, MARGIN_GRID,
                         sure)
    direct = (answered & q.right[:, None, None]).sum(axis=0) / max(int(q.in_scope.sum()), 1)
    wrong = (answered & ~q.right[:, None, None]).sum(axis=0) / max(len(q.right), 1)
    return direct, wrong


def oracle(q: Questions, max_wrong: float, *, sure: float = float("inf")) -> Outcome:
    """The most direct answers any pair of lines gives these questions within the bound."""
    direct, wrong = _grid(q, sure)
    allowed = np.where(wrong <= max_wrong + 1e-12, direct, -1.0)
    i, j = np.unravel_index(int(np.argmax(allowed)), allowed.shape)
    return Outcome(float(direct[i, j]), float(wrong[i, j]), float(ANSWER_GRID[i]),
                   float(MARGIN_GRID[j]))


def one_for_all(parts: Sequence[Questions], max_wrong: float, *,
                sure: float = float("inf")) -> Outcome:
    """The pair of lines with the most direct answers on the mean of `parts`, each part
    within the bound; its mean direct and its worst part's wrong."""
    grids = [_grid(q, sure) for q in parts]
    mean_direct = np.mean([d for d, _ in grids], axis=0)
    worst_wrong = np.max([w for _, w in grids], axis=0)
    allowed = np.where(worst_wrong <= max_wrong + 1e-12, mean_direct, -1.0)
    i, j = np.unravel_index(int(np.argmax(allowed)), allowed.shape)
    return Outcome(float(mean_direct[i, j]), float(worst_wrong[i, j]), float(ANSWER_GRID[i]),
                   float(MARGIN_GRID[j]))


def domain_questions(split: str, shots: int, root: Path, domains: Sequence[str] | None,
                     semantic: bool) -> dict[str, Questions]:
    """Each CLINC150 domain's catalogue (as the quality benchmark builds it) asked its
    questions of `split`, as the rule sees them."""
    embedder = None
    if semantic:
        from bot.matching.embeddings import load_embedder

        embedder = BenchEmbedder(load_embedder(cache=False))
        embedder.remember = True
    out = {}
    for bench in domain_benchmarks([shots], root, domains, None, split=split):
        catalog, cases = bench.catalog, bench.cases
        if embedder is not None:
            embedder.embed([c.question for c in cases])  # one batch; no latency is shown
        matcher = Matcher(catalog, semantic=SemanticIndex(catalog, embedder)
                          if embedder is not None else None)
        ids = [o.id for o in catalog.offerings]
        probes = [matcher.probe(c.question) for c in cases]
        out[bench.title.removeprefix("CLINC150 ")] = Questions(
            np.array([p.strength for p in probes]), np.array([p.margin for p in probes]),
            np.array([p.top >= 0 and ids[p.top] in c.expect for p, c in zip(probes, cases,
                                                                              strict=True)]),
            np.array([bool(c.expect) for c in cases]))
    return out


def render(parts: dict[str, Questions], base: Thresholds, max_wrong: float) -> str:
    lines = [f"{'domain':20} {'built-in direct':>16} {'wrong':>6}   "
             f"{'oracle direct':>14} {'wrong':>6}  lines (answer, margin)"]
    built, best = [], []
    for domain, q in parts.items():
        b, o = with_lines(q, base), oracle(q, max_wrong, sure=base.sure)
        built.append(b)
        best.append(o)
        lines.append(f"{domain:20} {b.direct:16.1%} {b.wrong:6.1%}   {o.direct:14.1%} "
                     f"{o.wrong:6.1%}  {o.answer:.2f}, {o.margin:.2f}")
    shared = one_for_all(list(parts.values()), max_wrong, sure=base.sure)
    lines += [
        f"{'mean':20} {np.mean([b.direct for b in built]):16.1%} "
        f"{np.mean([b.wrong for b in built]):6.1%}   {np.mean([o.direct for o in best]):14.1%} "
        f"{np.mean([o.wrong for o in best]):6.1%}",
        f"one pair of lines for every domain (each within {max_wrong:.0%} wrong): direct "
        f"{shared.direct:.1%}, worst wrong {shared.wrong:.1%} at {shared.answer:.2f}, "
        f"{shared.margin:.2f}",
        f"The oracle chooses each domain's lines on the questions it scores (at most "
        f"{max_wrong:.0%} confidently wrong over all of them): no rule learnt beforehand can "
        "give more direct answers.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.ceiling",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--max-wrong", type=float, default=0.02)
    parser.add_argument("--domains", type=lambda s: [d for d in s.split(",") if d])
    parser.add_argument("--matcher", default="semantic", choices=("semantic", "lexical"))
    parser.add_argument("--data", type=Path, default=BENCHMARKS)
    args = parser.parse_args(argv)
    parts = domain_questions(args.split, args.shots, args.data, args.domains,
                             args.matcher == "semantic")
    if not parts:
        print("no such domain", file=sys.stderr)
        return 2
    base = SEMANTIC if args.matcher == "semantic" else LEXICAL
    print(f"CLINC150 {args.split} by domain, K={args.shots}, Concierge {args.matcher}")
    print(render(parts, base, args.max_wrong))
    return 0


if __name__ == "__main__":
    sys.exit(main())
