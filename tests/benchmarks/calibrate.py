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

from bot.matching.engine import build_matcher
from tests.benchmarks.datasets import clinc150, to_cases, to_catalog

Features = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def features(mode: str, shots: int) -> Features:
    data = clinc150("val")
    catalog = to_catalog(data, shots)
    matcher = build_matcher(catalog, mode)
    strength, margin, correct, in_top3, in_scope = [], [], [], [], []
    for case in to_cases(data):
        scored = matcher.score(case.question)
        ranked, _ = matcher._candidates(scored)
        s = ranked[0].strength if ranked else 0.0
        m = ranked[0].candidate.score - ranked[1].candidate.score if len(ranked) > 1 else 1.0
        strength.append(s)
        margin.append(m)
        correct.append(bool(ranked) and ranked[0].candidate.offering.id in case.expect)
        in_top3.append(any(r.candidate.offering.id in case.expect for r in ranked[:3]))
        in_scope.append(case.in_scope)
    return (np.array(strength), np.array(margin), np.array(correct), np.array(in_top3),
            np.array(in_scope))


def search(features: Features, *, max_wrong: float, min_declined: float,
           max_oos_answered: float) -> list[tuple[float, ...]]:
    s, m, ok, top3, ins = features
    results = []
    grid_s = np.round(np.arange(0.20, 0.90, 0.01), 2)
    grid_m = np.round(np.arange(0.0, 0.30, 0.01), 2)
    for decline, answer, margin in itertools.product(grid_s, grid_s, grid_m):
        if answer < decline:
            continue
        declined = s < decline
        answered = ~declined & (s >= answer) & (m >= margin)
        wrong = (answered & ~ok).mean()
        oos_declined = declined[~ins].mean()
        oos_answered = answered[~ins].mean()
        if wrong <= max_wrong and oos_declined >= min_declined and (
                oos_answered <= max_oos_answered):
            clarified = ~declined & ~answered
            direct = (answered & ok)[ins].mean()
            resolved = ((answered & ok) | (clarified & top3))[ins].mean()
            results.append((direct + resolved, direct, resolved, decline, answer, margin, wrong,
                            oos_declined))
    results.sort(reverse=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--matcher", default="semantic", choices=("lexical", "semantic"))
    parser.add_argument("--shots", type=int, default=10)
    # The bounds: at most 2% confidently wrong (the IT-catalogue goal, stricter than
    # CLINC150's 5%) and at least 80% of out-of-scope questions declined (CLINC150's goal).
    parser.add_argument("--max-wrong", type=float, default=0.02)
    parser.add_argument("--min-declined", type=float, default=0.80)
    # Answering an out-of-scope question outright is confidently wrong by definition, and on
    # CLINC150 the overall bound is spent almost entirely on in-scope mix-ups: bound it apart.
    parser.add_argument("--max-oos-answered", type=float, default=0.03)
    args = parser.parse_args()
    feats = features(args.matcher, args.shots)
    ok, ins = feats[2], feats[4]
    print(f"top-1 on val: {ok[ins].mean():.3f}")
    for row in search(feats, max_wrong=args.max_wrong, min_declined=args.min_declined,
                      max_oos_answered=args.max_oos_answered)[:10]:
        _, direct, resolved, decline, answer, margin, wrong, oos = row
        print(f"decline={decline:.2f} answer={answer:.2f} margin={margin:.2f}: direct {direct:.3f}"
              f" resolved {resolved:.3f} wrong {wrong:.3f} oos declined {oos:.3f}")


if __name__ == "__main__":
    main()
