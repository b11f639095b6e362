"""The lexical index's shortcuts give the numbers of the plain computations they replace."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from bot.lexical import EXAMPLE_FIELDS, Example, LexicalIndex, Vocabulary, offering_texts
from bot.loader import load_catalog
from bot.models import Catalog
from bot.settings import repo_root
from bot.text import content_words

SAMPLE = repo_root() / "knowledge"


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


def test_nearest_is_each_offerings_best_example_over_all_examples(sample: Catalog) -> None:
    index = LexicalIndex(sample)
    for question in _questions(sample):
        scores = index.score(question)
        assert np.array_equal(scores.nearest, index._spans.best_per_offering(
            scores.example_scores)), question


def test_examples_are_the_needs_keywords_names_and_summaries_with_words(
        sample: Catalog) -> None:
    expected = [Example(k, field, text) for k, offering in enumerate(sample)
                for field, text in offering_texts(offering)
                if field in EXAMPLE_FIELDS and content_words(text)]
    examples = LexicalIndex(sample).examples
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
    script = ("import hashlib, sys; from bot.lexical import LexicalIndex; "
              "from bot.loader import load_catalog; "
              "from tests.test_lexical_index import SAMPLE, _fingerprint; "
              "i = LexicalIndex(load_catalog(SAMPLE, cache=False)); "
              "print(hashlib.sha256(_fingerprint(i)).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, cwd=repo_root(),
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(digests) == 1
