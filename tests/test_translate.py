"""German questions read word by word into English, English questions left alone."""

from __future__ import annotations

import pytest

from bot.translate import glossary, is_german, to_english


@pytest.mark.parametrize("text", [
    "Mein Konto ist gesperrt",
    "Ich brauche einen neuen Laptop",
    "Kann ich bitte einen Zugang bekommen?",
    "mein passwort geht nicht",
    "Drucker kaputt, bitte helfen",
])
def test_german_questions_are_recognised(text: str) -> None:
    assert is_german(text)


@pytest.mark.parametrize("text", [
    "my laptop is 5 years old",
    "I was told to ask here about a new monitor",
    "will the VPN also work from home",
    "the man at the desk said I need a badge",
    "what is the weather",
    "",
])
def test_english_questions_are_not_translated(text: str) -> None:
    assert not is_german(text)
    assert to_english(text) is None


def test_glossary_keys_are_folded_and_glosses_non_empty() -> None:
    entries = glossary()
    assert len(entries) > 3
    assert all(k == k.casefold() and "ä" not in k and "ß" not in k for k in entries)
    assert all(v.strip() for v in entries.values())


def test_reading_replaces_known_words_and_keeps_the_rest() -> None:
    reading = to_english("Mein Konto XYZ-123 ist gesperrt")
    assert reading is not None
    assert "account" in reading
    assert "XYZ-123" in reading
    assert "Konto" not in reading


def test_umlaut_free_spelling_is_read_too() -> None:
    assert to_english("mein konto ist gesperrt") == to_english("Mein Konto ist gesperrt")
