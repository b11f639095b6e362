"""Choose decision thresholds on the CLINC150 validation split (never on test).

For every validation question it records the top candidate's strength, the
ranking margin to the runner-up, and whether the top candidate is right; then it
searches the thresholds that give the most direct answers while keeping
confidently wrong answers and undeclined out-of-scope questions within bounds.

    python -m tests.benchmarks.calibrate [--matcher lexical|semantic] [--shots 10]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from bot.engine import build_matcher
from tests.benchmarks.datasets import clinc150, to_cases, to_catalog


def features(mode: str, shots: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = clinc150("val")
    catalog = to_catalog(data, shots)
    matcher = build_matcher(catalog, mode)
    strength, margin, correct, in_scope = [], [], [], []
    for case in to_cases(data):
        scored = matcher.score(case.question)
        ranked, _ = matcher._candidates(scored)
        s = ranked[0].strength if ranked else 0.0
        m = ranked[0].candidate.score - ranked[1].candidate.score if len(ranked) > 1 else 1.0
        strength.append(s)
        margin.append(m)
        correct.append(bool(ranked) and ranked[0].candidate.offering.id in case.expect)
        in_scope.append(case.in_scope)
    return np.array(strength), np.array(margin), np.array(correct), np.array(in_scope)


def search(s: np.ndarray, m: np.ndarray, ok: np.ndarray, ins: np.ndarray, *,
           max_wrong: float, min_declined: float) -> list[tuple[float, ...]]:
    results = []
    grid_s = np.round(np.arange(0.20, 0.90, 0.02), 2)
    grid_m = np.round(np.arange(0.0, 0.30, 0.01), 2)
    for decline, answer, margin in itertools.product(grid_s, grid_s, grid_m):
        if answer < decline:
            continue
        declined = s < decline
        answered = ~declined & (s >= answer) & (m >= margin)
        wrong = (answered & ~ok).mean()
        oos_declined = declined[~ins].mean()
        if wrong <= max_wrong and oos_declined >= min_declined:
            direct = (answered & ok)[ins].mean()
            resolved_lost = declined[ins].mean()
            results.append((direct, -resolved_lost, decline, answer, margin, wrong, oos_declined))
    results.sort(reverse=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--matcher", default="semantic", choices=("lexical", "semantic"))
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--max-wrong", type=float, default=0.03)
    parser.add_argument("--min-declined", type=float, default=0.85)
    args = parser.parse_args()
    s, m, ok, ins = features(args.matcher, args.shots)
    print(f"top-1 on val: {ok[ins].mean():.3f}")
    for row in search(s, m, ok, ins, max_wrong=args.max_wrong,
                      min_declined=args.min_declined)[:10]:
        direct, neg_lost, decline, answer, margin, wrong, oos = row
        print(f"decline={decline:.2f} answer={answer:.2f} margin={margin:.2f}: direct {direct:.3f}"
              f" in-scope declined {-neg_lost:.3f} wrong {wrong:.3f} oos declined {oos:.3f}")


if __name__ == "__main__":
    main()
