"""Word-by-word German → English reading of a question, for English-only catalogues
and an English-only embedding model.

A German question is scored twice, as written and as read through the glossary
(`bot/data/glossary-de-en.tsv`), and the reading that fits the catalogue better
wins; the answer says when it used the translation. English questions are left
alone: a question counts as German only with clear German function words.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from bot.text import fold

# German words that are not also common English words ("die", "was", "will", "also",
# "man" are left out on purpose): any of these marks a question as German.
GERMAN_MARKERS = frozenset(fold(w) for w in """
    ich mich mir mein meine meinen meinem meiner du dich dir dein deine deinen wir uns unser
    unsere unseren ihr euch sie ist sind bin bist habe hast haben hatte hätte kann kannst
    können könnte muss müssen möchte möchten brauche brauchst braucht brauchen geht gehen
    funktioniert nicht kein keine keinen keiner und oder aber wenn dass weil bitte danke
    einen einem einer eines ein eine der das dem den des für mit auf bei nach von vom zum zur
    über unter wie wo warum welche welcher welches neu neue neuen neuer neues wurde wurden
    werden wird noch schon auch mehr immer gibt jemand etwas nichts hallo servus moin grüezi
""".split())

_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


@cache
def glossary() -> dict[str, str]:
    """Folded German word → short English gloss."""
    text = (resources.files("bot") / "data" / "glossary-de-en.tsv").read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or "\t" not in line:
            continue
        german, english = line.split("\t", 1)
        entries.setdefault(fold(german.strip()), english.strip())
    return entries


def is_german(text: str) -> bool:
    words = [fold(w) for w in _WORD.findall(text)]
    markers = sum(w in GERMAN_MARKERS for w in words)
    return markers >= 2 or (markers == 1 and len(words) <= 4)


def to_english(text: str) -> str | None:
    """The word-by-word English reading of a German question; None if not German
    or if the glossary changes nothing."""
    if not is_german(text):
        return None
    table = glossary()
    changed = False

    def gloss(match: re.Match[str]) -> str:
        nonlocal changed
        word = match.group()
        english = table.get(fold(word))
        if english is None:
            return word
        changed = True
        return english

    reading = _WORD.sub(gloss, text)
    return reading if changed else None
