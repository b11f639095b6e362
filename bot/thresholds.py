"""Every number that turns scores into decisions, in one place.

Scores are in 0..1. They were chosen on the CLINC150 *validation* split (in-scope
`val` and `oos_val`), never on test data or on the golden questions; see the
README's "Matching quality" section for how and with what results.
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


LEXICAL = Thresholds(answer=0.50, margin=0.10, decline=0.30, clarify_window=0.15, sure=0.85)
SEMANTIC = Thresholds(answer=0.55, margin=0.08, decline=0.40, clarify_window=0.12, sure=0.85)

MAX_QUERY_CHARS = 1000
"""Longer questions are cut here (and the answer says so): matching time stays bounded."""
MAX_CANDIDATES = 5
MAX_CHOICES = 3
