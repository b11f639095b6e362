"""Semantic mode: the real embedding model where installed, and the on-disk cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.catalogue.models import Catalog, DecisionKind, Kind, Offering, Owner, RequestInfo
from bot.matching.embeddings import CachedEmbedder
from bot.matching.matcher import Matcher
from bot.matching.semantic import SemanticIndex


def offering(oid: str, name: str, summary: str, needs: Sequence[str]) -> Offering:
    return Offering(id=oid, name=name, summary=summary, kind=Kind.SERVICE,
                    owner=Owner("Workplace"), request=RequestInfo(url="https://it.example/x"),
                    needs=tuple(needs))


CATALOG = Catalog((
    offering("laptop-repair", "Laptop repair", "We fix broken company laptops.",
             ["my laptop screen is broken", "the laptop won't switch on"]),
    offering("new-laptop", "New laptop", "A new standard laptop.",
             ["my laptop is old and slow", "I need a new computer"]),
    offering("password-reset", "Password reset", "Reset a forgotten password.",
             ["I forgot my password", "I can't remember my login password"]),
    offering("meeting-recording", "Meeting recording", "Record and store meetings.",
             ["I have to record interviews with customers", "record a webinar"]),
    offering("guest-wifi", "Guest Wi-Fi", "Internet access for visitors.",
             ["a visitor needs internet", "wifi code for guests"]),
))


class CountingEmbedder:
    """Deterministic vectors from a hash of the text; counts what it was asked to embed."""

    name = "counting-test-model"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def knows(self, word: str) -> bool:
        return True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.extend(texts)
        rows = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(t)) % (2**32))
            v = rng.normal(size=8)
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, dtype=np.float32)


def test_cache_embeds_each_text_once_across_restarts(tmp_path: Path) -> None:
    first = CountingEmbedder()
    SemanticIndex(CATALOG, CachedEmbedder(first, tmp_path))
    assert first.calls, "the first build embeds the catalogue"
    assert list(tmp_path.glob("embeddings-*.npz")), "and writes the cache file"

    second = CountingEmbedder()
    SemanticIndex(CATALOG, CachedEmbedder(second, tmp_path))
    assert second.calls == [], "an unchanged catalogue is not embedded again"


def test_cache_embeds_only_new_texts(tmp_path: Path) -> None:
    SemanticIndex(CATALOG, CachedEmbedder(CountingEmbedder(), tmp_path))
    grown = Catalog((*CATALOG.offerings,
                     offering("printer", "Printer", "Printing.", ["the printer jams"])))
    counting = CountingEmbedder()
    SemanticIndex(grown, CachedEmbedder(counting, tmp_path))
    assert sorted(counting.calls) == sorted(["the printer jams", "Printer: Printing."])


def test_cache_returns_the_vectors_it_stored(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    direct = inner.embed(["hello world"])
    cached = CachedEmbedder(CountingEmbedder(), tmp_path)
    cached.embed(["hello world", "other"])
    again = CachedEmbedder(CountingEmbedder(), tmp_path)
    np.testing.assert_allclose(again.embed(["hello world"]), direct, rtol=1e-6)


def test_unreadable_cache_is_ignored_not_fatal(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    path = CachedEmbedder(inner, tmp_path).path
    path.write_bytes(b"not a numpy file")
    counting = CountingEmbedder()
    vectors = CachedEmbedder(counting, tmp_path).embed(["a text"])
    assert vectors.shape == (1, 8)
    assert counting.calls == ["a text"]


@pytest.fixture(scope="module")
def semantic_matcher(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    from bot.matching.embeddings import model_location, open_model

    embedder = CachedEmbedder(open_model(model_location()), tmp_path_factory.mktemp("cache"))
    return Matcher(CATALOG, semantic=SemanticIndex(CATALOG, embedder))


@pytest.mark.parametrize(("question", "expected"), [
    ("the display on my notebook cracked", "laptop-repair"),
    ("can't recall my credentials to sign in", "password-reset"),
    ("we have a guest coming who wants to get online", "guest-wifi"),
    ("I need to tape conversations with our clients", "meeting-recording"),
])
def test_paraphrases_without_shared_words_rank_first(semantic_matcher: Matcher,
                                                     question: str, expected: str) -> None:
    decision = semantic_matcher.decide(question)
    assert decision.candidates[0].offering.id == expected
    assert decision.kind is not DecisionKind.NONE


@pytest.mark.parametrize("question", [
    "what's the weather in Hamburg tomorrow",
    "book me a table at an Italian restaurant",
    "who won the football match yesterday",
])
def test_semantic_mode_declines_out_of_scope(semantic_matcher: Matcher, question: str) -> None:
    assert semantic_matcher.decide(question).kind is DecisionKind.NONE


def test_semantic_mode_reports_its_mode_and_explains(semantic_matcher: Matcher) -> None:
    decision = semantic_matcher.decide("my laptop is ancient")
    assert semantic_matcher.mode == "semantic"
    assert decision.why and ('need "' in decision.why or 'name "' in decision.why)


@pytest.mark.parametrize("question", ["the display on my notebook cracked",
                                      "can't recall my credentials to sign in"])
def test_a_question_pasted_many_times_is_read_once(semantic_matcher: Matcher,
                                                   question: str) -> None:
    # 300 copies were cut to their first 1,000 characters, which the model read as noise.
    once = semantic_matcher.decide(question)
    pasted = semantic_matcher.decide(" ".join([question] * 300))
    assert (pasted.kind, pasted.offering) == (once.kind, once.offering)
    assert [c.offering.id for c in pasted.candidates] == [c.offering.id for c in once.candidates]
    assert "characters were read" not in pasted.why


def test_a_long_question_that_is_not_a_repetition_is_still_cut_and_says_so(
        semantic_matcher: Matcher) -> None:
    question = " ".join(f"word{n}" for n in range(400))
    assert "Only the first 1000 characters were read." in semantic_matcher.decide(question).why
