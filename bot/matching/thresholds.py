"""Every number that turns scores into decisions, in one place.

Scores are in 0..1. They were chosen on the CLINC150 *validation* split (in-scope
`val` and `oos_val`), never on test data or on the golden questions; see the
"Matching quality" section of docs/matching.md for how and with what results.
"""

from __future__ import annotations

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
