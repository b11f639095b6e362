"""Turning free text into comparable terms: folding, tokens, stop words, stems.

The same function runs on catalogue text and on questions, so whatever it does
(folding umlauts, stemming German with an English stemmer) it does to both sides.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

# Slack markup: user/channel mentions and links. A link keeps its label.
_SLACK_LINK = re.compile(r"<(?:[@#!][^>|]*|(?:https?|mailto):[^>|]*)(?:\|([^>]*))?>")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_EMAIL_OR_URL = re.compile(r"\S+@\S+\.\S+|https?://\S+")

# Function words and conversational filler in English and German. Content words
# ("need", "new", "laptop") stay: their weight comes from IDF, not from this list.
STOP_WORDS = frozenset(
    """
    a an the and or but if then so than too very just also only even still really
    i me my mine myself we us our ours you your yours he him his she her it its they them their
    this that these those there here what which who whom whose when where why how
    am is are was were be been being do does did doing done have has had having
    can could would should shall will may might must ought
    to of in on at by for with about from into onto over under up down out off as
    not no nor any some all each every other such own same
    please pls plz thanks thank thx cheers hi hello hey hiya yo dear morning afternoon evening
    bot concierge guys folks anyone somebody someone like want wanted wants
    ok okay yes yeah well um uh hmm oh
    im ive id ill dont doesnt didnt cant cannot couldnt wont isnt arent wasnt
    tell know wondering wonder question quick quickly help
    der die das den dem des ein eine einen einem einer eines und oder aber wenn dann
    ich mich mir mein meine meinen meinem meiner du dich dir dein deine wir uns unser
    sie ihr ihre ihnen er es ihm man
    ist sind war waren bin bist sein habe hast hat haben hatte kann kannst konnen
    konnte mochte mochten will wollen soll sollte muss mussen wurde wurden werden wird
    zu von mit fur auf an in im am aus bei nach uber unter um vom zum zur
    nicht kein keine keinen auch noch schon nur sehr mal bitte danke hallo moin servus
    hi guten tag morgen abend wie was wo wer warum welche welcher welches
    """.split()
)

_EN_STEMMER = snowballstemmer.stemmer("english")


def fold(text: str) -> str:
    """Lower-case, strip accents (ä→a, é→e), ß→ss, normalise width and spacing."""
    if text.isascii():  # most text: nothing to decompose, and casefold is lower
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("ß", "ss")


def strip_markup(text: str) -> str:
    """Remove Slack mentions and URLs; keep a link's visible label."""
    text = _SLACK_LINK.sub(lambda m: f" {m.group(1) or ''} ", text)
    return _EMAIL_OR_URL.sub(" ", text)


def words(text: str) -> list[str]:
    """Folded word tokens, apostrophes removed ("don't" → "dont")."""
    return [w.replace("'", "").replace("’", "") for w in _WORD.findall(fold(strip_markup(text)))]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball English stem; applied to every language alike, so both sides agree."""
    if len(word) <= 3 or word.isdigit():
        return word
    stemmed: str = _EN_STEMMER.stemWord(word)
    return stemmed


def content_words(text: str) -> list[str]:
    """Words that carry meaning: stop words, single letters and filler dropped."""
    return [w for w in words(text) if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())]


def terms(text: str) -> list[str]:
    """Stems of the content words, in order (duplicates kept)."""
    return [stem(w) for w in content_words(text)]


# Longest run of words (a phrase) whose repetitions `once_each` reads once.
MAX_REPEATED_PHRASE = 20
# Greetings and calls for help: answered with how to ask, not matched against the catalogue.
HELP_WORDS = frozenset({"help", "?", "hi", "hello", "hallo"})


def asks_for_help(text: str) -> bool:
    """Whether the question only asks for help or says hello ("help", "hi", "?")."""
    return text.strip().lower() in HELP_WORDS


def once_each(text: str) -> str:
    """`text` with a phrase said again and again in a row said once: "I need a laptop"
    pasted 300 times reads "I need a laptop", not its first thousand characters.

    A phrase is up to `MAX_REPEATED_PHRASE` words, compared as written (case and all); only
    repetitions right after each other collapse, so "the printer prints, the printer jams"
    keeps both."""
    words = text.split()
    kept: list[str] = []
    i = 0
    while i < len(words):
        for size in range(1, min(MAX_REPEATED_PHRASE, (len(words) - i) // 2) + 1):
            phrase = words[i:i + size]
            end = i + size
            while words[end:end + size] == phrase:
                end += size
            if end > i + size:
                kept += phrase
                i = end
                break
        else:
            kept.append(words[i])
            i += 1
    return " ".join(kept)
