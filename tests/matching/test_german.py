"""German questions read word by word into English, English questions left alone.

The sentences here are written for these tests, not taken from the golden questions.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import DecisionKind
from bot.matching.german import (
    DROP,
    glossary,
    is_german,
    is_german_word,
    read_glossary_file,
    to_english,
    word_readings,
)
from bot.matching.matcher import Matcher
from bot.matching.text import fold
from bot.settings import repo_root


def reading(text: str) -> str:
    result = to_english(text)
    assert result is not None, f"no reading for {text!r}"
    return result


def assert_not_listed(word: str) -> None:
    """The word must be read by rule (inflection, compound), not looked up."""
    assert fold(word) not in glossary(), f"{word!r} is listed; the test would prove nothing"


# --- telling German from English -------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Mein Konto ist gesperrt",
    "Ich brauche einen neuen Laptop",
    "Kann ich bitte einen Zugang bekommen?",
    "mein passwort geht nicht",
    "Drucker kaputt, bitte helfen",
    "Drucker kaputt",
    "Passwort vergessen",
    "Laptop gestohlen!",
    "Wo ist der Drucker?",
    "Druckerpatrone leer",
    "Neues Handy?",
    "Bildschirm flackert",
    "WLAN geht nicht",
    "Hilfe, Outlook stürzt ab",
    "Ich bin neu hier",
    "Was kostet ein zweiter Monitor?",
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
    # English words that are German words too: die, will, also, man, hell, bin, gift, ...
    "the recycle bin is full, how do I empty it",
    "my laptop will die soon, the battery is at 3%",
    "I also need a gift card for the war room party",
    "man, the printer is slow today",
    "the screen is too hell bright",
    "fast wifi please",
    "rock solid VPN needed",
    "war room",
    "gift card",
    "the bin",
    "die hard fan of the new headset",
    "I will fast track the order",
    "Müller from sales needs a laptop",
    "can you ask Jürgen about the printer on the 2nd floor",
    "printer broken",
    "Outlook keeps crashing",
])
def test_english_questions_are_not_translated(text: str) -> None:
    assert not is_german(text)
    assert to_english(text) is None


# --- readings --------------------------------------------------------------------------

@pytest.mark.parametrize(("german", "expected"), [
    ("Mein Konto ist gesperrt", ["my", "account", "locked"]),
    ("Ich habe mein Passwort vergessen", ["password", "forgotten"]),
    ("Können Sie mir bitte einen neuen Bildschirm bestellen?", ["new", "screen", "order"]),
    ("Wo beantrage ich Adminrechte für meinen Rechner?", ["request", "admin rights", "computer"]),
    ("Die Heizung im Besprechungsraum ist kaputt", ["heating", "meeting room", "broken"]),
    ("Mein Diensthandy wurde gestohlen", ["work phone", "stolen"]),
    ("Ich bin ab Montag in Elternzeit", ["Monday", "parental leave"]),
    ("Der Gabelstapler im Lager braucht einen neuen Akku", ["forklift", "warehouse", "battery"]),
    ("Wie lange dauert die Reisekostenabrechnung?", ["how long", "travel expenses"]),
    ("Kann mir jemand das Passwort fürs Gäste-WLAN schicken?", ["password", "guest", "wifi"]),
    ("Ich möchte eine Schulung für die neue Software buchen", ["would like", "training", "book"]),
    ("Die Kamera im Konferenzraum zeigt kein Bild", ["camera", "conference room", "picture"]),
])
def test_reading_carries_the_content_words(german: str, expected: list[str]) -> None:
    english = reading(german)
    for word in expected:
        assert word in english, f"{word!r} missing from {english!r}"


def test_reading_replaces_known_words_and_keeps_the_rest() -> None:
    english = reading("Mein Konto XYZ-123 ist gesperrt")
    assert "account" in english
    assert "XYZ-123" in english
    assert "Konto" not in english


def test_unknown_words_are_kept_as_written() -> None:
    english = reading("Frau Schulze-Wendt braucht ein ThinkPad X1 für Kunde ACME")
    for name in ("Schulze-Wendt", "ThinkPad", "X1", "ACME"):
        assert name in english
    assert "needs" in english or "need" in english


@pytest.mark.parametrize(("phrase", "expected"), [
    ("Der Drucker geht nicht", "does not work"),
    ("Mein VPN funktioniert nicht mehr", "no longer works"),
    ("Gibt es einen Drucker im dritten Stock?", "is there"),
])
def test_phrases_are_read_before_words(phrase: str, expected: str) -> None:
    assert expected in reading(phrase)


def test_letter_case_tells_a_noun_from_a_verb_form() -> None:
    assert "search" in reading("Die Suche im Intranet geht nicht")
    assert "look for" in reading("Ich suche den Drucker")
    assert reading("Bitte Zugang freischalten").startswith("please")  # first word, not the noun
    assert "request" in reading("Ich habe eine Bitte")
    assert reading("Zugriff verweigert").startswith("access")  # first word, and a noun


def test_hyphenated_words_are_read_in_the_longest_known_pieces() -> None:
    english = reading("Mein E-Mail-Postfach ist voll")
    assert "email mailbox" in english


def test_function_words_take_no_endings() -> None:
    assert "Wien" in reading("Ich fliege nach Wien")


def test_filler_words_are_dropped() -> None:
    english = reading("Hallo, mein Drucker ist doch mal wieder kaputt. Viele Grüße")
    assert english.startswith("my printer")
    for dropped in ("hallo", "doch", "mal", "grüße", "viele"):
        assert dropped not in english.casefold()


def test_a_separable_verb_is_joined_with_its_prefix_at_the_end_of_the_clause() -> None:
    english = reading("Wie richte ich eine Weiterleitung für mein Postfach ein?")
    assert "set up" in english
    assert english.endswith("mailbox?")
    assert "start" in reading("Mein Kollege fängt am Montag an und braucht einen Laptop")


# --- compounds and inflections ---------------------------------------------------------

@pytest.mark.parametrize(("compound", "expected"), [
    ("Netzlaufwerk", "network drive"),
    ("Druckerpatrone", "printer cartridge"),
    ("Passwortänderung", "password change"),
    ("Bildschirmhalterung", "screen mount"),
    ("Laptoptasche", "laptop bag"),
    ("Mitarbeiterausweisdrucker", "staff badge printer"),
    ("Zugangskartenleser", "access card reader"),
])
def test_compounds_are_read_from_their_parts(compound: str, expected: str) -> None:
    assert_not_listed(compound)
    assert expected in reading(f"Ich brauche ein {compound}")


def test_a_compound_with_an_unknown_last_part_is_kept_whole() -> None:
    assert_not_listed("Druckerschnickschnack")
    assert "Druckerschnickschnack" in reading("Der Druckerschnickschnack ist kaputt")


@pytest.mark.parametrize(("compound", "expected"), [
    ("Stationsrechner", "ward computer"),  # linking -s-
    ("Etagendrucker", "floor printer"),  # linking -n-, singular head
    ("Abteilungsordner", "department folder"),
    ("Kundendaten", "customer data"),
])
def test_compounds_with_linking_elements(compound: str, expected: str) -> None:
    assert_not_listed(compound)
    assert expected in reading(f"Wo finde ich den {compound}?")


def test_an_unknown_first_part_is_kept_before_a_known_long_head() -> None:
    assert_not_listed("Outlookkalender")
    assert "Outlook calendar" in reading("Mein Outlookkalender ist leer")


@pytest.mark.parametrize(("inflected", "expected"), [
    ("Druckers", "printer"),  # genitive -s
    ("Geräten", "device"),  # dative plural -n
    ("Netzlaufwerken", "network drive"),  # inflected compound
    ("angemeldeten", "logged in"),  # participle used as an adjective
    ("freigeschalteten", "unlocked"),
])
def test_inflected_forms_fall_back_to_their_base(inflected: str, expected: str) -> None:
    assert_not_listed(inflected)
    assert expected in reading(f"Es geht um die {inflected} hier")


@pytest.mark.parametrize(("form", "expected"), [
    ("brauche", "need"), ("brauchst", "need"), ("braucht", "need"), ("brauchen", "need"),
    ("kann", "can"), ("können", "can"), ("könnte", "could"),
    ("eingerichtet", "set up"), ("einzurichten", "set up"), ("zurückgesetzt", "reset"),
    ("angemeldet", "logged in"), ("gedruckt", "printed"), ("installiert", "installed"),
])
def test_verb_forms(form: str, expected: str) -> None:
    assert expected in reading(f"ich {form} nicht")


# --- spellings -------------------------------------------------------------------------

@pytest.mark.parametrize("spellings", [
    ("Mein Konto ist gesperrt", "mein konto ist gesperrt", "MEIN KONTO IST GESPERRT"),
    ("Passwort zurücksetzen bitte", "Passwort zuruecksetzen bitte", "Passwort zurucksetzen bitte"),
    ("Schlüssel für die Tür verloren", "Schluessel fuer die Tuer verloren",
     "Schlussel fur die Tur verloren"),
    ("Die Passwortänderung geht nicht", "Die Passwortaenderung geht nicht",
     "Die Passwortanderung geht nicht"),
    ("Der Raum ist zu heiß und die Straße laut", "Der Raum ist zu heiss und die Strasse laut"),
    ("Können Sie mir helfen?", "Koennen Sie mir helfen?", "Konnen Sie mir helfen?"),
])
def test_umlaut_free_spellings_read_alike(spellings: tuple[str, ...]) -> None:
    readings = {reading(s).casefold() for s in spellings}
    assert len(readings) == 1, readings


def test_words_that_differ_only_by_umlauts_read_as_typed() -> None:
    assert "would" in reading("Ich würde gern einen Monitor bestellen")
    assert "was" in reading("Mein Konto wurde gesperrt")
    assert "press" in reading("Welche Taste muss ich drücken?")
    assert "print" in reading("Ich kann nicht drucken")


# --- the glossary file -----------------------------------------------------------------

def test_glossary_file_is_well_formed() -> None:
    entries = read_glossary_file()
    assert len(entries) >= 2000
    glosses: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        where = f"glossary line {entry.line}"
        assert entry.german and entry.english, f"{where}: needs German<TAB>English"
        assert "\t" not in entry.english, f"{where}: one tab only"
        assert entry.english == DROP or not entry.english.startswith(DROP), where
        assert len(entry.english.split()) <= 4, f"{where}: gloss too long: {entry.english!r}"
        assert len(entry.german.split()) <= 4, f"{where}: phrase too long: {entry.german!r}"
        glosses[entry.german].add(entry.english)
    conflicting = {german: g for german, g in glosses.items() if len(g) > 1}
    assert not conflicting, f"listed twice with different glosses: {conflicting}"


def test_glossary_keys_are_folded_and_only_dropped_words_have_no_gloss() -> None:
    entries = glossary()
    assert all(k == fold(k) for k in entries)
    def spellings(word: str) -> set[str]:
        written_out = word.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
        return {fold(word), fold(written_out)}

    dropped = {k for k, v in entries.items() if not v}
    marked = {s for e in read_glossary_file() if e.english == DROP for s in spellings(e.german)}
    assert dropped == marked
    assert all(v.strip() == v for v in entries.values())


def test_glossary_lists_umlaut_words_under_every_spelling() -> None:
    entries = glossary()
    assert entries["zurucksetzen"] == entries["zuruecksetzen"] == "reset"
    assert entries["grusse"] == entries["gruesse"] == ""


# --- what an answer says about how a German question was read --------------------------------


@pytest.fixture(scope="module")
def sample_matcher() -> Matcher:
    return Matcher(load_catalog(repo_root() / "knowledge"))


def test_a_real_german_word_is_not_corrected_into_an_english_one(
        sample_matcher: Matcher) -> None:
    # "laut" (loud) was read as the catalogue's "last" and the answer said so.
    decision = sample_matcher.decide("mein Drucker ist laut")
    assert '"laut"' not in decision.why
    assert all(wrong != "laut" for wrong, _ in
               sample_matcher.score("mein Drucker ist laut").lexical.query.corrections)


def test_a_typo_in_a_german_question_is_still_corrected(sample_matcher: Matcher) -> None:
    corrections = sample_matcher.score("mein Lpatop ist kaputt").lexical.query.corrections
    assert ("lpatop", "laptop") in corrections


def test_the_reading_is_shown_by_the_words_that_made_the_match(
        sample_matcher: Matcher) -> None:
    question = "Mein Benutzerkonto wurde blockiert, können Sie es bitte freischalten?"
    decision = sample_matcher.decide(question)
    assert decision.kind is not DecisionKind.NONE
    # Not the word-by-word sentence ("my user account was blocked, can you it please
    # unlock?"): the German words whose gloss is in the evidence shown, and only those.
    assert 'Read as "' not in decision.why
    assert '"Benutzerkonto" as "user account"' in decision.why
    assert '"wurde"' not in decision.why and '"Mein"' not in decision.why


def test_no_reading_is_shown_when_it_did_not_make_the_match(sample_matcher: Matcher) -> None:
    decision = sample_matcher.decide("wie ist das Wetter morgen in Hamburg")
    assert decision.kind is DecisionKind.NONE
    assert "Read the German" not in decision.why and 'Read as "' not in decision.why


def test_word_readings_pair_each_german_word_with_its_gloss() -> None:
    assert word_readings("Mein Drucker druckt nicht") == [
        ("Mein", "my"), ("Drucker", "printer"), ("druckt", "print"), ("nicht", "not")]
    assert is_german_word("laut") and not is_german_word("lpatop")
