"""Semantic scoring: sentence embeddings of every example, centroid and nearest example.

Two views of the same vectors serve two purposes:
- *ranking* uses offering centroids in a whitened space (within-offering variation
  damped with a shrunk covariance, i.e. a linear discriminant), which separates
  neighbouring offerings better than raw cosine;
- *strength* uses raw cosine (mean of centroid and nearest example), which says
  better whether anything fits at all (in-scope vs out-of-scope).

Optional: the lexical matcher works without it. The model itself is loaded by
`bot.matching.embeddings`; this module only needs L2-normalised vectors.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bot.catalogue.models import Catalog, Offering
from bot.matching.lexical import Example, ExampleSpans, FloatArray, IntArray

F32 = NDArray[np.float32]
# Whatever float width an embedder computes in (float32 in practice).
Vectors = NDArray[np.floating[Any]]

# Shrinkage of the within-offering covariance toward a multiple of the identity:
# 1.0 is plain cosine, 0.0 a full linear discriminant. Chosen on CLINC150 val.
SHRINKAGE = 0.9


class Embedder(Protocol):
    """Turns texts into L2-normalised float vectors, one row per text."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def knows(self, word: str) -> bool:
        """Whether the model has this (lower-case) word in its vocabulary as a whole."""
        ...


@dataclass(frozen=True, slots=True)
class SemanticScores:
    """One question against one index: the ranking of every offering, and on request the
    strength and nearest example of the few offerings a decision looks at."""

    ranking: FloatArray
    question: F32
    index: SemanticIndex

    def strength(self, offerings: IntArray) -> FloatArray:
        return self.index.strength(self.question, offerings)

    def nearest_example(self, offering: int) -> int:
        """The example of `offering` closest to the question; -1 when it has none."""
        return self.index.nearest_example(self.question, offering)


def semantic_texts(offering: Offering) -> list[tuple[str, str]]:
    """The (field, text) pairs embedded for an offering: needs, name with summary, keywords."""
    pairs = [("needs", n) for n in offering.needs]
    pairs.append(("name", f"{offering.name}: {offering.summary}"))
    pairs.extend(("keywords", k) for k in offering.keywords)
    return pairs


def _normalise(m: F32) -> F32:
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return (m / np.where(norms == 0, 1, norms)).astype(np.float32)


class SemanticIndex:
    """Embeddings of a catalogue's examples, grouped by offering."""

    def __init__(self, catalog: Catalog, embedder: Embedder) -> None:
        examples = [Example(k, field, text)
                    for k, offering in enumerate(catalog.offerings)
                    for field, text in semantic_texts(offering)]
        raw = embedder.embed([e.text for e in examples]) if examples else np.zeros((0, 0))
        self._fit(embedder, examples, raw.astype(np.float32), len(catalog.offerings))

    def _fit(self, embedder: Embedder, examples: list[Example], vectors: F32,
             n: int) -> None:
        self.embedder = embedder
        self.examples = examples
        self._owner: IntArray = np.array([e.offering for e in examples], dtype=np.int64)
        dim = vectors.shape[1] if vectors.size else 1
        self._vectors: F32 = vectors.reshape(-1, dim)
        self._spans = ExampleSpans.of(self._owner, n)
        counts = self._spans.counts
        self._has = counts > 0
        sums = np.zeros((n, dim), dtype=np.float64)
        if self._vectors.size:
            # Examples sit offering by offering: one reduceat instead of a scattered add.
            sums[self._has] = np.add.reduceat(self._vectors, self._spans.starts[self._has])
        means = sums / np.maximum(counts, 1)[:, None]
        self._centroids = _normalise(means.astype(np.float32))
        self._mean, self._whiten = self._fit_whitening(means)
        self._white_centroids = _normalise(
            ((means - self._mean) @ self._whiten).astype(np.float32))

    def without(self, dropped: Collection[int]) -> SemanticIndex:
        """The index as if the examples numbered `dropped` had never been written (fitted
        again on the rest, from the vectors at hand: nothing is embedded)."""
        keep = np.ones(len(self.examples), dtype=bool)
        keep[list(dropped)] = False
        index = object.__new__(SemanticIndex)
        index._fit(self.embedder, [e for e, k in zip(self.examples, keep, strict=True) if k],
                   self._vectors[keep], len(self._has))
        return index

    def example_index(self, offering: int, need: int) -> int:
        """Where need number `need` of an offering sits among the examples (each offering's
        needs come first, in order)."""
        return int(self._spans.starts[offering]) + need

    def _fit_whitening(self, means: NDArray[np.float64]) -> tuple[F32, F32]:
        x = self._vectors
        dim = x.shape[1]
        if len(x) < 2:
            return np.zeros(dim, dtype=np.float32), np.eye(dim, dtype=np.float32)
        # float32 for the big product (half the time of float64 at 60,000 examples); the
        # shrinkage below dwarfs its rounding.
        residual = x - means[self._owner].astype(np.float32)
        within = (residual.T @ residual).astype(np.float64) / len(x)
        scale = np.trace(within) / dim or 1.0
        shrunk = (1 - SHRINKAGE) * within + SHRINKAGE * scale * np.eye(dim)
        values, vecs = np.linalg.eigh(shrunk)
        whiten = vecs @ np.diag(1 / np.sqrt(np.maximum(values, 1e-12))) @ vecs.T
        return x.mean(axis=0, dtype=np.float64).astype(np.float32), whiten.astype(np.float32)

    def example_vector(self, example: int) -> F32:
        """The embedding of one of the index's examples."""
        vector: F32 = self._vectors[example]
        return vector

    def score(self, query: str, *, vector: Vectors | None = None) -> SemanticScores:
        """Ranks every offering: one product with the whitened centroids, so the cost per
        question grows with the number of offerings, not of examples. `vector`: the
        question's embedding when the caller has it (a batch embedded at once)."""
        raw = vector if vector is not None else self.embedder.embed([query])[0]
        q = np.asarray(raw, dtype=np.float32)
        if not self._vectors.size:
            return SemanticScores(np.zeros(len(self._has)), q, self)
        qw = _normalise(((q - self._mean) @ self._whiten)[None, :].astype(np.float32))[0]
        ranking = np.clip(self._white_centroids @ qw, 0, 1).astype(np.float64)
        ranking[~self._has] = 0
        return SemanticScores(ranking, q, self)

    def strength(self, question: F32, offerings: IntArray) -> FloatArray:
        """How well the question fits each of `offerings` in raw cosine (the mean of the
        centroid's and the nearest example's), which tells in-scope from out-of-scope
        better than the whitened ranking. Asked for a shortlist, never every offering:
        at 10,000 offerings the products with every example cost more than the rest
        of a question together."""
        out = np.zeros(len(offerings))
        if not self._vectors.size:
            return out
        for slot, k in enumerate(int(o) for o in offerings):
            j, nearest = self._nearest(question, k)
            if j >= 0:
                centroid = float(self._centroids[k] @ question)
                out[slot] = min(max(0.5 * centroid + 0.5 * nearest, 0.0), 1.0)
        return out

    def nearest_example(self, question: F32, offering: int) -> int:
        return self._nearest(question, offering)[0]

    def _nearest(self, question: F32, offering: int) -> tuple[int, float]:
        """The offering's example closest to the question and its cosine; (-1, 0) if none."""
        start, count = int(self._spans.starts[offering]), int(self._spans.counts[offering])
        if count == 0 or not self._vectors.size:
            return -1, 0.0
        sims = self._vectors[start:start + count] @ question
        best = int(np.argmax(sims))
        return start + best, float(sims[best])
