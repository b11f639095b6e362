"""Reference matchers measured beside Concierge: BM25 and a sentence-embedding centroid.

Both only rank offerings. A `RuleMatcher` turns a ranking into a `Decision` with the
simplest rule of the same family as Concierge's (decline below `decline`, answer at or
above `answer` with a lead of `margin` over the runner-up, else offer the first three),
whose numbers `calibrate_rule` chooses on CLINC150 val, never on test.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bot.catalogue.models import Candidate, Catalog, Decision, DecisionKind, Evidence, Offering
from bot.matching.semantic import Embedder

Scores = NDArray[np.float64]
CHOICES = 3
"""A reference that is unsure offers its first three offerings (as many as Concierge may)."""


class Ranker(Protocol):
    """Scores every offering of one catalogue for a question; higher is better."""

    name: str

    def scores(self, question: str) -> Scores: ...

    def scores_many(self, questions: Sequence[str]) -> NDArray[np.float64]:
        """One row per question; may batch (used for calibration, which is not timed)."""
        ...


def bm25_document(offering: Offering) -> str:
    """One document per offering: everything a person could match words against."""
    return " ".join([offering.name, offering.summary, *offering.needs, *offering.keywords])


class BM25Ranker:
    """Okapi BM25 (bm25s defaults: Lucene variant, k1=1.5, b=0.75) over one document
    per offering, with bm25s' English stop words and the Snowball English stemmer."""

    name = "BM25 (reference)"

    def __init__(self, catalog: Catalog) -> None:
        import bm25s
        import snowballstemmer

        self._bm25s: Any = bm25s
        self._stemmer = snowballstemmer.stemmer("english")
        self._size = len(catalog.offerings)
        corpus = [bm25_document(o) for o in catalog.offerings]
        self._index: Any = bm25s.BM25()
        self._index.index(self._tokens(corpus), show_progress=False)

    def _tokens(self, texts: Sequence[str]) -> Any:
        return self._bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer,
                                    show_progress=False)

    def scores(self, question: str) -> Scores:
        words = self._bm25s.tokenize([question], stopwords="en", stemmer=self._stemmer,
                                     show_progress=False, return_ids=False)[0]
        if not words:  # bm25s cannot score an empty query
            return np.zeros(self._size)
        return np.asarray(self._index.get_scores(words), dtype=np.float64)

    def scores_many(self, questions: Sequence[str]) -> NDArray[np.float64]:
        return np.stack([self.scores(q) for q in questions]) if questions else np.zeros((0, 0))


class CentroidRanker:
    """Cosine similarity to the mean of each offering's need embeddings (needs only:
    the plain textbook reference, no names, no whitening, no lexical blend)."""

    name = "MiniLM centroid (reference)"

    def __init__(self, catalog: Catalog, embedder: Embedder) -> None:
        self._embedder = embedder
        owner = np.array([k for k, o in enumerate(catalog.offerings) for _ in o.needs])
        vectors = np.asarray(embedder.embed([n for o in catalog.offerings for n in o.needs]),
                             dtype=np.float64)
        sums = np.zeros((len(catalog.offerings), vectors.shape[1]))
        np.add.at(sums, owner, vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        self._centroids = sums / np.where(norms == 0, 1, norms)

    def scores(self, question: str) -> Scores:
        q = np.asarray(self._embedder.embed([question])[0], dtype=np.float64)
        return np.asarray(self._centroids @ q)

    def scores_many(self, questions: Sequence[str]) -> NDArray[np.float64]:
        vectors = np.asarray(self._embedder.embed(list(questions)), dtype=np.float64)
        return np.asarray(vectors @ self._centroids.T)


@dataclass(frozen=True, slots=True)
class Rule:
    """Decline below `decline`; answer at or above `answer` when the top score leads the
    runner-up by `margin`; otherwise offer the first three offerings as choices."""

    decline: float
    answer: float
    margin: float

    def describe(self) -> str:
        return (f"decline < {self.decline:.3g}, answer ≥ {self.answer:.3g} "
                f"with margin ≥ {self.margin:.3g}")


class RuleMatcher:
    """A ranker plus a rule: `decide` returns the same `Decision` as Concierge's matcher,
    so `bot.matching.evaluate` measures both with the same definitions."""

    def __init__(self, catalog: Catalog, ranker: Ranker, rule: Rule) -> None:
        self.catalog = catalog
        self.ranker = ranker
        self.rule = rule
        self.name = ranker.name
        self._offerings = catalog.offerings

    def decide(self, question: str) -> Decision:
        scores = self.ranker.scores(question)
        order = np.argsort(-scores, kind="stable")[:5]
        candidates = tuple(
            Candidate(self._offerings[i], float(scores[i]), Evidence("reference", self.name))
            for i in (int(x) for x in order))
        top = candidates[0].score if candidates else 0.0
        margin = top - candidates[1].score if len(candidates) > 1 else top
        if not candidates or top < self.rule.decline:
            return Decision(question, DecisionKind.NONE, 0.0, candidates, "below the rule")
        if top >= self.rule.answer and margin >= self.rule.margin:
            return Decision(question, DecisionKind.ANSWER, 1.0, candidates, "rule",
                            offering=candidates[0].offering)
        return Decision(question, DecisionKind.CLARIFY, 0.5, candidates, "rule",
                        choice_count=min(CHOICES, len(candidates)))


@dataclass(frozen=True, slots=True)
class Calibration:
    rule: Rule
    feasible: bool
    """Whether the rule meets both bounds on val; if not, it is the one that misses them least."""
    direct: float
    wrong: float
    oos_declined: float


def top_two(scores: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                   NDArray[np.int64]]:
    """Per row: the top score, its lead over the runner-up, and the top offering's index."""
    best = np.argmax(scores, axis=1)
    top = scores[np.arange(len(scores)), best]
    if scores.shape[1] < 2:
        return top, top, best
    second = np.partition(scores, -2, axis=1)[:, -2]
    return top, top - second, best


def calibrate_rule(scores: NDArray[np.float64], expect: Sequence[frozenset[int]], *,
                   max_wrong: float, min_declined: float, steps: int = 40) -> Calibration:
    """The rule with the most direct answers on these (validation) questions, with at most
    `max_wrong` of all questions answered wrongly and at least `min_declined` of the
    out-of-scope ones (empty `expect`) declined: the objective of `tests.benchmarks.calibrate`.

    Thresholds are searched on quantiles of the observed scores, so the rule works for
    any score scale (BM25 scores are unbounded, cosines are not)."""
    top, margin, best = top_two(scores)
    ok = np.array([int(b) in e for b, e in zip(best, expect, strict=True)])
    ins = np.array([bool(e) for e in expect])
    levels = np.unique(np.quantile(top, np.linspace(0, 1, steps)))
    margins = np.unique(np.concatenate(([0.0], np.quantile(margin, np.linspace(0, 0.9, 20)))))
    ranked: list[tuple[tuple[float, float, float], Calibration]] = []
    for decline, answer, lead in itertools.product(levels, levels, margins):
        if answer < decline:
            continue
        declined = top < decline
        answered = ~declined & (top >= answer) & (margin >= lead)
        wrong = float((answered & ~ok).mean())
        oos = float(declined[~ins].mean()) if (~ins).any() else 1.0
        direct = float((answered & ok)[ins].mean()) if ins.any() else 0.0
        lost = float(declined[ins].mean()) if ins.any() else 0.0
        miss = max(0.0, wrong - max_wrong) + max(0.0, min_declined - oos)
        result = Calibration(Rule(float(decline), float(answer), float(lead)), miss == 0,
                             direct, wrong, oos)
        ranked.append(((miss, -direct, lost), result))
    return min(ranked, key=lambda r: r[0])[1]
