"""Semantic scoring: sentence embeddings of every example, nearest example and centroid.

Optional: the lexical matcher works without it. The embedding model is loaded by
`bot.embeddings`; this module only needs something that turns texts into
L2-normalised vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bot.lexical import Example, FloatArray, IntArray
from bot.models import Catalog, Offering

# Share of the nearest example against the offering's centroid.
NEAREST_WEIGHT = 0.5


class Embedder(Protocol):
    """Turns texts into L2-normalised float vectors, one row per text."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> FloatArray: ...


@dataclass(frozen=True, slots=True)
class SemanticScores:
    combined: FloatArray
    nearest: FloatArray
    nearest_example: IntArray
    centroid: FloatArray


def semantic_texts(offering: Offering) -> list[tuple[str, str]]:
    """The (field, text) pairs embedded for an offering: its needs, name and summary."""
    pairs = [("needs", n) for n in offering.needs]
    pairs.append(("name", f"{offering.name}: {offering.summary}"))
    pairs.extend(("keywords", k) for k in offering.keywords)
    return pairs


class SemanticIndex:
    """Embeddings of a catalogue's examples, grouped by offering."""

    def __init__(self, catalog: Catalog, embedder: Embedder) -> None:
        self.embedder = embedder
        self.examples: list[Example] = []
        for k, offering in enumerate(catalog.offerings):
            for field, text in semantic_texts(offering):
                self.examples.append(Example(k, field, text))
        n = len(catalog.offerings)
        self._owner: IntArray = np.array([e.offering for e in self.examples], dtype=np.int64)
        vectors = embedder.embed([e.text for e in self.examples]) if self.examples else (
            np.zeros((0, 1)))
        self._vectors = vectors.astype(np.float32)
        # Examples are contiguous per offering, so reduceat gives per-offering maxima.
        counts = np.bincount(self._owner, minlength=n)
        self._starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self._counts = counts
        need_mask = np.array([e.field == "needs" for e in self.examples], dtype=bool)
        centroids = np.zeros((n, self._vectors.shape[1]), dtype=np.float32)
        np.add.at(centroids, self._owner[need_mask], self._vectors[need_mask])
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        self._centroids = centroids / np.where(norms == 0, 1, norms)

    def score(self, query: str) -> SemanticScores:
        q = self.embedder.embed([query])[0].astype(np.float32)
        sims = self._vectors @ q
        n = len(self._counts)
        nearest = np.zeros(n)
        nearest_example = np.full(n, -1, dtype=np.int64)
        has = self._counts > 0
        if sims.size:
            nearest[has] = np.maximum.reduceat(sims, self._starts[has])
            order = np.argsort(sims, kind="stable")
            nearest_example[self._owner[order]] = order
        centroid = (self._centroids @ q).astype(np.float64)
        nearest = np.clip(nearest, 0, 1)
        combined = NEAREST_WEIGHT * nearest + (1 - NEAREST_WEIGHT) * np.clip(centroid, 0, 1)
        return SemanticScores(combined, nearest, nearest_example, centroid)
