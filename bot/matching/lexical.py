"""Lexical scoring: TF-IDF over stems with typo correction, per example and per offering.

Every need, keyword, name and summary of an offering is an *example*. A question
is scored against each example (cosine of TF-IDF vectors: the nearest example
explains the match) and against the offering as a whole (all its text in one
weighted vector: robust when a question mixes words from several needs).

The index is inverted (term → postings as numpy arrays) so scoring touches only
the examples that share a term with the question, and each offering's best example
is taken over those postings alone: no per-question pass over every example. Typo
correction compares a misspelt word only with catalogue words that share enough
letter pairs with it to be that close. Both keep a question's cost growing with what
it touches rather than with the catalogue.

Building the index of a large catalogue takes seconds (tokenising every text), so it
is kept in the app's cache directory keyed by a digest of the indexed text
(`bot.catalogue.cache`) and read back when the catalogue has not changed.
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import overload

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from bot.catalogue import cache as catalog_cache
from bot.catalogue.cache import DiskCache
from bot.catalogue.models import Catalog, Offering
from bot.matching import text as text_rules
from bot.matching.text import STOP_WORDS, content_words, stem
from bot.settings import cache_dir

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
NEEDS_FIELD = EXAMPLE_FIELDS.index("needs")
# From how many examples (about 500 offerings) an index is cached on disk. Building takes
# about 25 µs per example, so below that it is a tenth of a second or less: not worth a
# file per catalogue (the tests alone build hundreds of small ones).
CACHE_MIN_EXAMPLES = 5_000


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


@dataclass(frozen=True, slots=True)
class LeftOutNeeds:
    """Needs taken out of their offering, to ask one of them as a question (leave-one-out)."""

    offering: int
    examples: tuple[int, ...]
    """Their example indices (a need without content words has none)."""
    whole: dict[str, float]
    """The offering's whole-text vector without them."""
    unknown: frozenset[str]
    """Stems that only these needs brought to the catalogue."""


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


@dataclass(frozen=True, slots=True)
class Postings:
    """An inverted index as compressed rows: each term's ids and weights are one slice of
    two flat arrays, so a lookup costs two views and the index is cached as a few arrays."""

    rows: dict[str, tuple[int, int]]
    ids: IntArray
    weights: FloatArray

    @classmethod
    def of(cls, vectors: Sequence[Mapping[str, float]]) -> Postings:
        """Postings of `vectors` (id = position), terms in order of first appearance."""
        ids: dict[str, list[int]] = defaultdict(list)
        weights: dict[str, list[float]] = defaultdict(list)
        for i, vec in enumerate(vectors):
            for t, w in vec.items():
                ids[t].append(i)
                weights[t].append(w)
        rows: dict[str, tuple[int, int]] = {}
        end = 0
        for t, row in ids.items():
            rows[t] = (end, end + len(row))
            end += len(row)
        return cls(rows,
                   np.fromiter(chain.from_iterable(ids.values()), dtype=np.int64, count=end),
                   np.fromiter(chain.from_iterable(weights.values()), dtype=np.float64,
                               count=end))

    def get(self, term: str) -> slice | None:
        """Where `term`'s postings sit in `ids` and `weights`; None for an unknown term."""
        row = self.rows.get(term)
        return slice(*row) if row is not None else None


def _letter_pairs(word: str) -> Counter[str]:
    return Counter(word[i:i + 2] for i in range(len(word) - 1))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The catalogue's words, searchable for the one closest to a misspelling."""

    words: tuple[str, ...]
    lengths: IntArray
    pairs: Postings
    """Letter pairs (bigrams) → the words holding them, weighted by how often."""

    @classmethod
    def of(cls, words: Sequence[str]) -> Vocabulary:
        return cls(tuple(words), np.array([len(w) for w in words], dtype=np.int64),
                   Postings.of([_letter_pairs(w) for w in words]))

    def closest(self, word: str, limit: int) -> tuple[str, int] | None:
        """The word at the smallest Levenshtein distance from `word`, at most `limit`, and
        that distance; the first in catalogue order on a tie.

        The same answer as rapidfuzz's `extractOne` over every word, which costs time in
        proportion to the vocabulary; here only the words that can be that close are
        compared. Words within `k` edits of each other share at least
        `max(len) - 1 - 2k` letter pairs, counted with repeats (each edit breaks at most
        two pairs: the q-gram lemma), and differ in length by at most `k`.
        """
        counts = np.zeros(len(self.words))
        for pair, n in _letter_pairs(word).items():
            at = self.pairs.get(pair)
            if at is not None:
                counts[self.pairs.ids[at]] += np.minimum(self.pairs.weights[at], n)
        need = np.maximum(self.lengths, len(word)) - 1 - 2 * limit
        near = np.flatnonzero((counts >= need) & (np.abs(self.lengths - len(word)) <= limit))
        if not near.size:
            return None
        best = process.extractOne(word, [self.words[i] for i in near],
                                  scorer=Levenshtein.distance, score_cutoff=limit)
        return (best[0], int(best[1])) if best is not None else None


class Examples(Sequence[Example]):
    """The examples of an index, made on demand from the catalogue: the index keeps only
    where each one's text is (offering, field, position), not 100,000 objects."""

    def __init__(self, catalog: Catalog, owners: IntArray, fields: IntArray,
                 positions: IntArray) -> None:
        self._offerings = catalog.offerings
        self.owners = owners
        self._fields = fields
        self._positions = positions

    def __len__(self) -> int:
        return len(self.owners)

    @overload
    def __getitem__(self, j: int) -> Example: ...

    @overload
    def __getitem__(self, j: slice) -> Sequence[Example]: ...

    def __getitem__(self, j: int | slice) -> Example | Sequence[Example]:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        k = int(self.owners[j])
        field = EXAMPLE_FIELDS[int(self._fields[j])]
        return Example(k, field, example_texts(self._offerings[k], field)[int(self._positions[j])])


def example_texts(offering: Offering, field: str) -> tuple[str, ...]:
    """The texts of one example field of an offering."""
    if field == "needs":
        return offering.needs
    if field == "keywords":
        return offering.keywords
    return (offering.name,) if field == "name" else (offering.summary,)


@dataclass(frozen=True, slots=True)
class _Built:
    """Everything an index computes from its catalogue (and caches on disk)."""

    idf: dict[str, float]
    surface: dict[str, str]
    """Each catalogue word → its stem."""
    vocabulary: Vocabulary
    example_owners: IntArray
    example_fields: IntArray
    example_positions: IntArray
    example_postings: Postings
    posting_owners: IntArray
    """The offering of each example posting (aligned with `example_postings.ids`)."""
    offering_postings: Postings


class LexicalIndex:
    """TF-IDF inverted index over a catalogue's examples and offerings.

    `cache`: read and write the built index in the app's cache directory; by default only
    for catalogues with at least `CACHE_MIN_EXAMPLES` examples.
    """

    def __init__(self, catalog: Catalog, *, cache: bool | None = None) -> None:
        self.catalog = catalog
        self._n_offerings = len(catalog.offerings)
        n = max(self._n_offerings, 1)
        self.max_idf = math.log(1 + n)
        built = _load_or_build(catalog, cache)
        self.idf = built.idf
        self._surface = built.surface
        self._vocabulary = built.vocabulary
        self.examples: Sequence[Example] = Examples(
            catalog, built.example_owners, built.example_fields, built.example_positions)
        self._spans = ExampleSpans.of(built.example_owners, self._n_offerings)
        self._positions = built.example_positions
        self._fields = built.example_fields
        # The IDF of a stem found in one offering only: log(1 + n).
        self.max_idf_single = math.log(1 + n) - 1e-9
        self._example_postings = built.example_postings
        self._posting_owners = built.posting_owners
        self._offering_postings = built.offering_postings

    def _vector(self, counts: Mapping[str, float]) -> dict[str, float]:
        return _tf_idf(counts, self.idf)

    def analyse(self, query: str, *,
                is_word: Callable[[str], bool] | None = None,
                unknown: frozenset[str] = frozenset()) -> QueryTerms:
        """Stems of the question, typos corrected against the catalogue's own words.

        `is_word` tells real words from typos when a dictionary is at hand (the
        embedding model's vocabulary): a real word is never "corrected". Stems in
        `unknown` count as words the catalogue does not know (a need left out of the
        catalogue: the words only it brought).
        """
        counts: dict[str, float] = defaultdict(float)
        corrections: list[tuple[str, str]] = []
        total = known = 0.0
        for word in content_words(query):
            s = stem(word)
            if s in unknown:
                total += self.max_idf
                continue
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
        if len(word) < 4 or word.isdigit() or not self._vocabulary.words:
            return []
        limit = 1 if len(word) <= 5 else 2
        best = self._vocabulary.closest(word, limit)
        if best is not None and best[0] not in STOP_WORDS:
            return [(best[0], 0.8 if best[1] == 1 else 0.6)]
        if len(word) >= 8:
            for cut in range(4, len(word) - 3):
                head, tail = word[:cut], word[cut:]
                if head in self._surface and tail in self._surface:
                    return [(head, 0.7), (tail, 0.7)]
        return []

    def score(self, query: str | QueryTerms, *,
              left_out: LeftOutNeeds | None = None) -> LexicalScores:
        """`left_out`: score as if those needs were not in their offering (see `left_out`)."""
        q = self.analyse(query) if isinstance(query, str) else query
        ex_scores = np.zeros(len(self.examples))
        off_scores = np.zeros(self._n_offerings)
        examples, offerings = self._example_postings, self._offering_postings
        touched: list[slice] = []
        for t, w in q.weights.items():
            at = examples.get(t)
            if at is not None:
                ex_scores[examples.ids[at]] += w * examples.weights[at]
                touched.append(at)
            at = offerings.get(t)
            if at is not None:
                off_scores[offerings.ids[at]] += w * offerings.weights[at]
        nearest = self._nearest(ex_scores, touched)
        if left_out is not None:
            k = left_out.offering
            ex_scores[list(left_out.examples)] = 0.0
            start, count = int(self._spans.starts[k]), int(self._spans.counts[k])
            nearest[k] = float(ex_scores[start:start + count].max()) if count else 0.0
            off_scores[k] = sum(w * left_out.whole.get(t, 0.0) for t, w in q.weights.items())
        return LexicalScores(nearest, np.clip(off_scores, 0, 1), q, ex_scores, self._spans)

    def left_out(self, offering: int, needs: Iterable[int]) -> LeftOutNeeds:
        """What scoring needs to ask a need of an offering as a question of the catalogue
        without the needs numbered `needs`: their examples, the offering's whole vector
        without them, and the stems no other text of the catalogue has."""
        o = self.catalog.offerings[offering]
        gone = set(needs)
        # Needs come first in an offering's texts, in order.
        texts = [(f, content_words(t)) for i, (f, t) in enumerate(offering_texts(o))
                 if not (f == "needs" and i in gone)]
        whole = self._vector(_whole_weights((f, [stem(w) for w in words])
                                            for f, words in texts))
        others = {t for _, words in texts for t in map(stem, words)}
        their_stems = {stem(w) for i in gone for w in content_words(o.needs[i])}
        # A stem found in a single offering (document frequency 1) and nowhere else in this
        # one came with the left-out needs.
        lonely = frozenset(t for t in their_stems - others
                           if self.idf.get(t, 0.0) >= self.max_idf_single)
        start, count = int(self._spans.starts[offering]), int(self._spans.counts[offering])
        examples = tuple(j for j in range(start, start + count)
                         if self._fields[j] == NEEDS_FIELD and int(self._positions[j]) in gone)
        return LeftOutNeeds(offering, examples, whole, lonely)

    def _nearest(self, ex_scores: FloatArray, touched: Sequence[slice]) -> FloatArray:
        """Each offering's best example score, over the examples the question touched only.
        The same numbers as a segment maximum over every example (the tests compare):
        scores are never negative, so an untouched example (0) is never the only maximum;
        but that pass grows with the catalogue, and common words touch a small part of it."""
        best = np.zeros(self._n_offerings)
        if touched:
            ids = np.concatenate([self._example_postings.ids[at] for at in touched])
            owners = np.concatenate([self._posting_owners[at] for at in touched])
            np.maximum.at(best, owners, ex_scores[ids])
        return best


def _tf_idf(counts: Mapping[str, float], idf: Mapping[str, float]) -> dict[str, float]:
    """Sublinear TF times IDF, L2-normalised; fractional counts (field weights, corrected
    typos) scale linearly below one."""
    vec = {t: (1 + math.log(c)) * idf[t] if c >= 1 else c * idf[t]
           for t, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {t: v / norm for t, v in vec.items()}


def _whole_weights(fields_stems: Iterable[tuple[str, Sequence[str]]]) -> dict[str, float]:
    """An offering's whole-text term weights: each stem at the weight of the most important
    field it appears in."""
    whole: dict[str, float] = defaultdict(float)
    for field, stems in fields_stems:
        weight = FIELD_WEIGHTS[field]
        # In order of appearance, not set order: the order of a vector's terms is the order
        # its norm is summed in, and a set's order changes with each process's hash seed,
        # which changed scores in the last digit from run to run (and cached vs built).
        for s in dict.fromkeys(stems):
            whole[s] = max(whole[s], weight)
    return whole


def _build(catalog: Catalog) -> _Built:
    owners: list[int] = []
    fields: list[int] = []
    positions: list[int] = []
    example_terms: list[Counter[str]] = []
    offering_terms: list[dict[str, float]] = []
    surface: dict[str, str] = {}
    field_code = {f: i for i, f in enumerate(EXAMPLE_FIELDS)}
    for k, offering in enumerate(catalog.offerings):
        position: Counter[str] = Counter()
        fields_stems: list[tuple[str, list[str]]] = []
        for field, text in offering_texts(offering):
            words = content_words(text)
            stems = [stem(w) for w in words]
            fields_stems.append((field, stems))
            for w, s in zip(words, stems, strict=True):
                surface.setdefault(w, s)
            if field in field_code and stems:
                owners.append(k)
                fields.append(field_code[field])
                positions.append(position[field])
                example_terms.append(Counter(stems))
            position[field] += 1
        offering_terms.append(_whole_weights(fields_stems))
    n = max(len(offering_terms), 1)
    df: Counter[str] = Counter()
    for whole in offering_terms:
        df.update(whole.keys())
    # Smoothed IDF over offerings: a word shared by every offering still counts a little.
    idf = {t: math.log(1 + n / c) for t, c in df.items()}
    example_owners = np.array(owners, dtype=np.int64)
    example_postings = Postings.of([_tf_idf(c, idf) for c in example_terms])
    return _Built(
        idf=idf,
        surface=surface,
        vocabulary=Vocabulary.of(list(surface)),
        example_owners=example_owners,
        example_fields=np.array(fields, dtype=np.int64),
        example_positions=np.array(positions, dtype=np.int64),
        example_postings=example_postings,
        posting_owners=example_owners[example_postings.ids],
        offering_postings=Postings.of([_tf_idf(c, idf) for c in offering_terms]),
    )


def _load_or_build(catalog: Catalog, use_cache: bool | None) -> _Built:
    if use_cache is None:  # about as many examples as the index will have
        use_cache = sum(len(o.needs) + len(o.keywords) + 2
                        for o in catalog.offerings) >= CACHE_MIN_EXAMPLES
    if not use_cache:
        return _build(catalog)
    disk = DiskCache(cache_dir(), "lexical", _cache_version(), keep=4,
                     types=(_Built, Vocabulary, Postings))
    return disk.read_or_build(_catalog_digest(catalog), _Built, lambda: _build(catalog))


def _catalog_digest(catalog: Catalog) -> str:
    """A digest of everything the index is built from: each offering's indexed texts, in
    catalogue order."""
    return catalog_cache.digest_of(chain.from_iterable(
        chain((b"\x00",), (f"{field}\x1f{text}".encode() for field, text in offering_texts(o)))
        for o in catalog.offerings))[:32]


@cache
def _cache_version() -> str:
    # The index depends on this module, on how text becomes terms, and on the libraries
    # that stem words and store the arrays.
    return catalog_cache.code_version(
        sys.modules[__name__], text_rules, sys.version, catalog_cache.package_version("numpy"),
        catalog_cache.package_version("snowballstemmer"))
