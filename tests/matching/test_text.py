"""Text normalisation shared by catalogue and questions."""

from __future__ import annotations

import pytest

from bot.matching.text import STOP_WORDS, content_words, fold, stem, strip_markup, terms, words


@pytest.mark.parametrize(("raw", "folded"), [
    ("Größe", "grosse"),
    ("Straße", "strasse"),
    ("ÄÖÜ äöü", "aou aou"),
    ("LAPTOP", "laptop"),
    ("Café résumé naïve", "cafe resume naive"),
    ("Ångström Øre", "angstrom øre"),  # ø is a letter of its own, not an accented o
    ("ＶＰＮ", "vpn"),  # full-width letters
    ("MASSE", "masse"),
])
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_fold_makes_umlaut_and_sharp_s_spellings_agree() -> None:
    assert fold("größeren") == fold("GRÖSSEREN") == fold("grösseren") == "grosseren"
    assert fold("Büro") == fold("buro")


def test_slack_user_and_channel_mentions_are_removed() -> None:
    assert words("<@U123ABC> I need a laptop") == ["i", "need", "a", "laptop"]
    assert words("<!here> <!channel> printer broken") == ["printer", "broken"]
    assert "u123" not in words("<@U123> hi")


def test_slack_link_keeps_its_label() -> None:
    assert words("use <https://x.example/form|the order form> today") == [
        "use", "the", "order", "form", "today"]
    assert words("<#C123ABC|it-help> is slow") == ["it", "help", "is", "slow"]


def test_bare_links_and_email_addresses_are_removed() -> None:
    text = "see <https://x.example/a/b> or https://y.example/c or mail bob@example.test"
    assert words(text) == ["see", "or", "or", "mail"]
    assert "example" not in strip_markup(text)


def test_words_drop_apostrophes_and_punctuation() -> None:
    assert words("Don't! can't?? it's...") == ["dont", "cant", "its"]
    assert words("wi-fi_router") == ["wi", "fi", "router"]
    assert words("?!... ---") == []
    assert words("😀🎉") == []


def test_stop_words_and_filler_are_dropped() -> None:
    question = "Hi bot, could you please tell me how I get a new laptop? Thanks!"
    assert content_words(question) == ["get", "new", "laptop"]
    german = "Hallo, ich möchte bitte einen Drucker, danke"
    assert content_words(german) == ["drucker"]
    assert content_words("hello thanks please ok") == []


def test_content_words_keep_digits_and_drop_single_letters() -> None:
    assert content_words("I need a 2nd screen x 4 k") == ["need", "2nd", "screen", "4"]


def test_stop_word_list_is_folded() -> None:
    # Stop words are compared after folding, so the list itself must be folded.
    assert all(w == fold(w) for w in STOP_WORDS)


@pytest.mark.parametrize("family", [("recording", "records", "recorded", "record"),
                                    ("printers", "printer"),
                                    ("connecting", "connection", "connected", "connect")])
def test_stems_join_word_families(family: tuple[str, ...]) -> None:
    assert len({stem(w) for w in family}) == 1


def test_short_words_and_numbers_are_not_stemmed() -> None:
    assert stem("vpn") == "vpn"
    assert stem("2024") == "2024"


def test_terms_are_stems_of_content_words_in_order() -> None:
    assert terms("Please, my printers keep printing blank pages") == [
        stem("printers"), stem("keep"), stem("printing"), stem("blank"), stem("pages")]
    assert terms("Thanks!") == []
