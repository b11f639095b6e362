"""The lexical index's shortcuts give the numbers of the plain computations they replace,
and its on-disk cache gives back the index it stored."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import Catalog
from bot.matching import lexical
from bot.matching.lexical import (
    EXAMPLE_FIELDS,
    Example,
    ExampleSpans,
    LexicalIndex,
    Vocabulary,
    offering_texts,
)
from bot.matching.text import content_words
from bot.settings import repo_root

SAMPLE = repo_root() / "knowledge"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONCIERGE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def sample() -> Catalog:
    return load_catalog(SAMPLE, cache=False)


# Few letters, short words: many words within one or two edits of each other, and many ties.
words = st.text(alphabet="abcde", min_size=1, max_size=9)


@settings(max_examples=300, deadline=None)
@given(vocabulary=st.lists(words, min_size=1, max_size=60, unique=True), word=words,
       limit=st.integers(min_value=0, max_value=3))
def test_closest_word_is_what_a_search_of_every_word_finds(vocabulary: list[str], word: str,
                                                           limit: int) -> None:
    everything = process.extractOne(word, vocabulary, scorer=Levenshtein.distance,
                                    score_cutoff=limit)
    expected = (everything[0], everything[1]) if everything is not None else None
    assert Vocabulary.of(vocabulary).closest(word, limit) == expected


def test_closest_word_prefers_the_first_of_equally_close_words() -> None:
    vocabulary = Vocabulary.of(["printer", "pointer", "painter"])
    assert vocabulary.closest("pxinter", 2) == ("printer", 1)
    assert vocabulary.closest("pginter", 1) == ("printer", 1)
    assert vocabulary.closest("zzzzzzz", 2) is None


def _questions(catalog: Catalog) -> list[str]:
    found = ["", "laptop", "my labtop is ancient and crawls", "mein Konto ist gesperrt",
             "what's the weather in Hamburg?"]
    for offering in catalog:
        found.extend(offering.needs[:1])
        found.append(" ".join(offering.name.split()[:1] + offering.summary.split()[-3:]))
    return found


def _best_per_offering(spans: ExampleSpans, scores: np.ndarray) -> np.ndarray:
    """The plain way: a segment maximum over every example (0 for none)."""
    best = np.zeros(len(spans.counts))
    has = spans.counts > 0
    if scores.size:
        best[has] = np.maximum.reduceat(scores, spans.starts[has])
    return best


def test_nearest_is_each_offerings_best_example_over_all_examples(sample: Catalog) -> None:
    index = LexicalIndex(sample, cache=False)
    for question in _questions(sample):
        scores = index.score(question)
        assert np.array_equal(scores.nearest, _best_per_offering(
            index._spans, scores.example_scores)), question


def test_examples_are_the_needs_keywords_names_and_summaries_with_words(
        sample: Catalog) -> None:
    expected = [Example(k, field, text) for k, offering in enumerate(sample)
                for field, text in offering_texts(offering)
                if field in EXAMPLE_FIELDS and content_words(text)]
    examples = LexicalIndex(sample, cache=False).examples
    assert len(examples) == len(expected)
    assert list(examples) == expected
    assert examples[-1] == expected[-1] and list(examples[2:5]) == expected[2:5]


def _fingerprint(index: LexicalIndex) -> bytes:
    parts = [index._example_postings.weights, index._offering_postings.weights,
             index._example_postings.ids, index._offering_postings.ids]
    return b"".join(p.tobytes() for p in parts) + repr(sorted(index.idf.items())).encode()


def test_the_index_is_the_same_whatever_the_hash_seed() -> None:
    """Term order used to follow set order, which changes with PYTHONHASHSEED: scores then
    differed in the last digit from one process to the next."""
    script = ("import hashlib, sys; from bot.matching.lexical import LexicalIndex; "
              "from bot.catalogue.loader import load_catalog; "
              "from tests.matching.test_lexical import SAMPLE, _fingerprint; "
              "i = LexicalIndex(load_catalog(SAMPLE, cache=False), cache=False); "
              "print(hashlib.sha256(_fingerprint(i)).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, cwd=repo_root(),
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(digests) == 1


class Builds:
    """Counts how often an index is built rather than read from the cache."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        build = lexical._build

        def counting(catalog: Catalog) -> Any:
            self.count += 1
            return build(catalog)

        monkeypatch.setattr(lexical, "_build", counting)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    return Builds(monkeypatch)


def _same_answers(a: LexicalIndex, b: LexicalIndex, catalog: Catalog) -> None:
    for question in _questions(catalog):
        x, y = a.score(question), b.score(question)
        assert (x.query.weights, x.query.corrections) == (y.query.weights, y.query.corrections)
        assert np.array_equal(x.nearest, y.nearest) and np.array_equal(x.whole, y.whole)
        assert np.array_equal(x.example_scores, y.example_scores)


def test_a_cached_index_is_read_back_instead_of_built(sample: Catalog, builds: Builds) -> None:
    built = LexicalIndex(sample, cache=True)
    read = LexicalIndex(sample, cache=True)
    assert builds.count == 1
    assert _fingerprint(built) == _fingerprint(read)
    assert list(built.examples) == list(read.examples)
    _same_answers(built, read, sample)


def test_a_changed_catalogue_is_indexed_again(sample: Catalog, builds: Builds,
                                              new_offering: Callable[..., dict[str, Any]],
                                              write_catalogue: Callable[..., Path]) -> None:
    LexicalIndex(sample, cache=True)
    kdir = write_catalogue([new_offering("printer-toner")]).parent
    for text in ("I need the printer toner", "I need the printer ink"):
        write_catalogue([new_offering("printer-toner", needs=[text])])
        index = LexicalIndex(load_catalog(kdir), cache=True)
        assert index.examples[0].text == text
    assert builds.count == 3


def test_a_corrupt_index_cache_is_rebuilt_with_one_warning(
        sample: Catalog, cache: Path, builds: Builds,
        caplog: pytest.LogCaptureFixture) -> None:
    LexicalIndex(sample, cache=True)
    [stored] = cache.glob("lexical-*.cache")
    stored.write_bytes(stored.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        index = LexicalIndex(sample, cache=True)
    assert len(caplog.records) == 1 and "ignoring unreadable lexical cache" in caplog.text
    assert builds.count == 2
    _same_answers(index, LexicalIndex(sample, cache=False), sample)


def test_small_catalogues_are_not_cached(sample: Catalog, cache: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    LexicalIndex(sample)
    assert not list(cache.glob("lexical-*"))
    monkeypatch.setattr(lexical, "CACHE_MIN_EXAMPLES", 10)
    LexicalIndex(sample)
    assert len(list(cache.glob("lexical-*"))) == 1
