"""The first calibration's answer and margin lines, kept to be measured beside today's.

The first pass (docs/matching.md, "Before and after") chose the answer and margin lines that
answered the most of a catalogue's own needs right with at most 2% confidently wrong over a
mix of 70% needs, 25% background and 5% needs asked without their offering, or no more than
the built-in lines took on the same questions. That lowered the lines where the catalogue's
own questions allowed it, and on the benchmarks gave more confidently wrong answers; today's
rule (`bot.matching.calibration`) never lowers them. The decline line and the lead are the
same in both, so the two rows differ only in the answer and margin lines.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bot.catalogue.models import Catalog
from bot.matching.calibration import (
    ANSWER_GRID,
    MARGIN_GRID,
    SelfTest,
    _Sample,
    derive_rule,
)
from bot.matching.thresholds import LEXICAL, SEMANTIC, DecisionRule, Thresholds

MAX_WRONG = 0.02
MAX_OOS_ANSWERED = 0.03
WEIGHTS = (0.7, 0.25, 0.05)


def first_pass_rule(test: SelfTest, mode: str, catalog: Catalog) -> DecisionRule:
    """Today's rule with the first pass's answer and margin lines."""
    rule = derive_rule(test, mode, catalog)
    if rule.estimate is None:  # too small: the built-in lines, as then
        return rule
    own = _Sample.of([a.probe for a in test.needs], [a.offering for a in test.needs])
    background = _Sample.of(list(test.background), [-1] * len(test.background))
    near = _Sample.of([a.probe.without(a.offering) for a in test.needs],
                      [-1] * len(test.needs))
    t = rule.thresholds
    base = SEMANTIC if mode == "semantic" else LEXICAL
    today_wrong, today_oos = _risk(own, background, near, base)
    answer, margin = _answer_lines(own, background, near, decline=t.decline,
                                   max_wrong=max(MAX_WRONG, today_wrong),
                                   max_oos=max(MAX_OOS_ANSWERED, today_oos),
                                   fallback=(base.answer, base.margin))
    return replace(rule, thresholds=replace(t, answer=answer, margin=margin),
                   reason="The first pass's answer and margin lines.")


def _smoothed(count: np.ndarray | float, n: int) -> np.ndarray:
    return (np.asarray(count, dtype=np.float64) + 1.0) / (n + 2.0)


def _risk(own: _Sample, background: _Sample, near: _Sample,
          t: Thresholds) -> tuple[float, float]:
    def answered(s: _Sample) -> np.ndarray:
        return (s.strength >= t.decline) & (
            (s.strength >= t.sure) | ((s.strength >= t.answer) & (s.margin >= t.margin)))

    oos = float(answered(background).sum())
    wrong = (WEIGHTS[0] * _smoothed(float((answered(own) & ~own.right).sum()), len(own))
             + WEIGHTS[1] * _smoothed(oos, len(background))
             + WEIGHTS[2] * _smoothed(float(answered(near).sum()), len(near)))
    return float(wrong), float(_smoothed(oos, len(background)))


def _answer_lines(own: _Sample, background: _Sample, near: _Sample, *, decline: float,
                  max_wrong: float, max_oos: float,
                  fallback: tuple[float, float]) -> tuple[float, float]:
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
