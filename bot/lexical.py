"""Lexical scoring: TF-IDF over stems with typo correction, per example and per offering.

Every need, keyword, name and summary of an offering is an *example*. A question
is scored against each example (cosine of TF-IDF vectors: the nearest example
explains the match) and against the offering as a whole (all its text in one
weighted vector: robust when a question mixes words from several needs).

The index is inverted (term → postings as numpy arrays) so scoring touches only
the examples that share a term with the question; that keeps a 10,000-offering
catalogue fast without a second library.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from bot.models import Catalog, Offering
from bot.text import STOP_WORDS, content_words, stem

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# How much each field counts in the whole-offering vector. Needs are written as
# employees speak, so they count most; descriptions are long and vaguer.
FIELD_WEIGHTS: dict[str, float] = {
    "needs": 1.0,
    "keywords": 1.0,
    "name": 1.0,
    "summary": 0.6,
    "description": 0.3,
}
# Fields whose text is also an example on its own (nearest-example matching).
EXAMPLE_FIELDS = ("needs", "keywords", "name", "summary")


@dataclass(frozen=True, slots=True)
class Example:
    """One piece of an offering's text that a question can match."""

    offering: int
    field: str
    text: str


@dataclass(frozen=True, slots=True)
class QueryTerms:
    """A question as the index sees it."""

    weights: dict[str, float]
    corrections: tuple[tuple[str, str], ...]
    known_share: float
    """Share of the question's content (IDF-weighted) that the catalogue's vocabulary knows."""


@dataclass(frozen=True, slots=True)
class ExampleSpans:
    """Where each offering's examples sit in an index's example arrays: examples are stored
    offering by offering, so each offering owns one contiguous run."""

    starts: IntArray
    counts: IntArray

    @classmethod
    def of(cls, owners: IntArray, n_offerings: int) -> ExampleSpans:
        """`owners` (each example's offering) must be non-decreasing."""
        counts = np.bincount(owners, minlength=n_offerings).astype(np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        return cls(starts, counts)

    def best_per_offering(self, scores: FloatArray) -> FloatArray:
        """Each offering's best example score; 0 for an offering without examples."""
        best = np.zeros(len(self.counts))
        has = self.counts > 0
        if scores.size:
            best[has] = np.maximum.reduceat(scores, self.starts[has])
        return best

    def best_example(self, scores: FloatArray, offering: int, *, positive: bool) -> int:
        """Index of offering's best example, or -1 (none, or none above 0 if `positive`).
        Asked only for the few candidates shown, so no per-question sort of every example."""
        start, count = int(self.starts[offering]), int(self.counts[offering])
        if count == 0:
            return -1
        j = start + int(np.argmax(scores[start:start + count]))
        return j if scores[j] > 0 or not positive else -1


@dataclass(frozen=True, slots=True)
class LexicalScores:
    """Per-offering scores in 0..1 for one question."""

    nearest: FloatArray
    whole: FloatArray
    query: QueryTerms
    example_scores: FloatArray
    spans: ExampleSpans

    def nearest_example(self, offering: int) -> int:
        """The example of `offering` that explains its score; -1 when none shares a word."""
        return self.spans.best_example(self.example_scores, offering, positive=True)


def offering_texts(offering: Offering) -> Iterable[tuple[str, str]]:
    """(field, text) pairs of everything matchable in an offering."""
    for need in offering.needs:
        yield "needs", need
    for keyword in offering.keywords:
        yield "keywords", keyword
    yield "name", offering.name
    yield "summary", offering.summary
    if offering.description:
        yield "description", offering.description


class LexicalIndex:
    """TF-IDF inverted index over a catalogue's examples and offerings."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.examples: list[Example] = []
        example_terms: list[Counter[str]] = []
        offering_terms: list[dict[str, float]] = []
        surface: dict[str, str] = {}
        for k, offering in enumerate(catalog.offerings):
            whole: dict[str, float] = defaultdict(float)
            for field, text in offering_texts(offering):
                words = content_words(text)
                stems = [stem(w) for w in words]
                for w, s in zip(words, stems, strict=True):
                    surface.setdefault(w, s)
                weight = FIELD_WEIGHTS[field]
                for s in set(stems):
                    whole[s] = max(whole[s], weight)
                if field in EXAMPLE_FIELDS and stems:
                    self.examples.append(Example(k, field, text))
                    example_terms.append(Counter(stems))
            offering_terms.append(whole)
        n = max(len(offering_terms), 1)
        df: Counter[str] = Counter()
        for whole in offering_terms:
            df.update(whole.keys())
        # Smoothed IDF over offerings: a word shared by every offering still counts a little.
        self.idf: dict[str, float] = {t: math.log(1 + n / c) for t, c in df.items()}
        self.max_idf = math.log(1 + n)
        self._surface = surface
        self._surface_words = list(surface)
        self._spans = ExampleSpans.of(
            np.array([e.offering for e in self.examples], dtype=np.int64),
            len(catalog.offerings))
        self._example_postings = self._postings(
            [self._vector(c) for c in example_terms])
        self._offering_postings = self._postings(
            [self._vector(c) for c in offering_terms])
        self._n_offerings = len(catalog.offerings)

    def _vector(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Sublinear TF times IDF, L2-normalised; fractional counts (field weights,
        corrected typos) scale linearly below one."""
        vec = {t: (1 + math.log(c)) * self.idf[t] if c >= 1 else c * self.idf[t]
               for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    @staticmethod
    def _postings(vectors: Sequence[dict[str, float]]) -> dict[str, tuple[IntArray, FloatArray]]:
        ids: dict[str, list[int]] = defaultdict(list)
        weights: dict[str, list[float]] = defaultdict(list)
        for i, vec in enumerate(vectors):
            for t, w in vec.items():
                ids[t].append(i)
                weights[t].append(w)
        return {t: (np.array(ids[t], dtype=np.int64), np.array(weights[t], dtype=np.float64))
                for t in ids}

    def analyse(self, query: str, *,
                is_word: Callable[[str], bool] | None = None) -> QueryTerms:
        """Stems of the question, typos corrected against the catalogue's own words.

        `is_word` tells real words from typos when a dictionary is at hand (the
        embedding model's vocabulary): a real word is never "corrected".
        """
        counts: dict[str, float] = defaultdict(float)
        corrections: list[tuple[str, str]] = []
        total = known = 0.0
        for word in content_words(query):
            s = stem(word)
            if s in self.idf:
                counts[s] += 1
                total += self.idf[s]
                known += self.idf[s]
                continue
            fixed = [] if is_word is not None and is_word(word) else self._correct(word)
            total += self.max_idf
            for part, penalty in fixed:
                ps = self._surface[part]
                counts[ps] += penalty
                known += self.idf[ps] * penalty / max(len(fixed), 1)
                corrections.append((word, part))
        return QueryTerms(
            weights=self._vector(counts),
            corrections=tuple(corrections),
            known_share=known / total if total else 0.0,
        )

    def _correct(self, word: str) -> list[tuple[str, float]]:
        """A misspelt word → the closest catalogue word; a compound → its known parts."""
        if len(word) < 4 or word.isdigit() or not self._surface_words:
            return []
        limit = 1 if len(word) <= 5 else 2
        best = process.extractOne(word, self._surface_words, scorer=Levenshtein.distance,
                                  score_cutoff=limit)
        if best is not None and best[0] not in STOP_WORDS:
            return [(best[0], 0.8 if best[1] == 1 else 0.6)]
        if len(word) >= 8:
            for cut in range(4, len(word) - 3):
                head, tail = word[:cut], word[cut:]
                if head in self._surface and tail in self._surface:
                    return [(head, 0.7), (tail, 0.7)]
        return []

    def score(self, query: str | QueryTerms) -> LexicalScores:
        q = self.analyse(query) if isinstance(query, str) else query
        ex_scores = np.zeros(len(self.examples))
        off_scores = np.zeros(self._n_offerings)
        for t, w in q.weights.items():
            hit = self._example_postings.get(t)
            if hit is not None:
                ex_scores[hit[0]] += w * hit[1]
            hit = self._offering_postings.get(t)
            if hit is not None:
                off_scores[hit[0]] += w * hit[1]
        return LexicalScores(self._spans.best_per_offering(ex_scores), np.clip(off_scores, 0, 1),
                             q, ex_scores, self._spans)
