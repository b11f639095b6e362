"""Word-by-word German → English reading of a question, for English-only catalogues
and an English-only embedding model.

A German question is scored twice, as written and as read through the glossary
(`bot/matching/data/glossary-de-en.tsv`), and the reading that fits the catalogue better
wins; the answer says when it used the translation. English questions are left
alone: a question counts as German only on clear German evidence.

How a word is read, first rule that applies:
1. the glossary, as typed (so the noun "Suche" and the verb "suche", or "drücken" and
   "drucken", stay apart when typed so), then in lower case, then folded:
   `zurücksetzen`, `zuruecksetzen` and `zurucksetzen` read alike;
2. an inflected form of a glossary word: endings stripped, verb forms taken back to
   the infinitive (`gesperrt`, `eingerichtet`, `freizuschalten`);
3. a compound of glossary words, German order kept because English puts the head
   last too (`Netzlaufwerk` → "network drive"), with linking -s-/-es-/-n- elements;
4. otherwise the word stays as written (names, brands, product codes).
Glossary phrases of two or three words (`geht nicht` → "does not work") are read
before single words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from bot.matching.text import fold

GLOSSARY_FILE = "glossary-de-en.tsv"
DROP = "-"
"""The gloss of a word that carries no meaning in English (modal particles, greetings)."""

# German function words that are not also English words ("die", "was", "will", "also",
# "man", "bin", "war", "hell" are left out on purpose): each is German evidence.
GERMAN_MARKERS = frozenset("""
    ich mich mir mein meine meinen meinem meiner meines du dich dir dein deine deinen deinem
    wir uns unser unsere unseren unserem unserer euch euer eure ihr ihre ihren ihrem ihnen
    sie sich ist sind bist habe hast haben hatte hatten hätte hätten kann kannst können könnt
    könnte könnten konnte muss musst müssen müsste sollte soll sollen darf dürfen dürfte
    möchte möchten möchtest brauche brauchst braucht brauchen benötige benötigen geht gehen
    ging funktioniert funktionieren nicht nichts kein keine keinen keinem keiner und oder aber
    wenn dass weil damit obwohl ob bitte danke dank einen einem einer eines ein eine der das
    dem den des für mit auf bei nach von vom zum zur über unter ohne gegen durch seit bis
    zwischen wie wo wer wen wem wann warum wieso weshalb welche welcher welches welchen wohin
    woher womit wofür wieviel wurde wurden würde würden werden wird noch schon auch mehr immer
    gibt jemand etwas nicht hier jetzt heute gestern morgen leider vielleicht gerne gern sehr
    ganz wieder doch denn eigentlich hallo servus moin grüezi tschüss dieser diese dieses
    diesen diesem bekomme bekommen kriege kriegen geht's gibt's nein ja
""".split())

# English words, and German words spelt like English ones: never German evidence on their
# own, whatever the glossary says they mean in German.
ENGLISH_WORDS = frozenset("""
    a an the and or but if so as at by for from in into of off on onto out to up with about
    i me my you your we us our they them their he him his she her it its this that these those
    is are was were be been am do does did have has had can could will would shall should may
    might must not no yes please need want get how what where when why who which there here
    also man die will war bin hell gift rock fast see rat kind arm alt art bad brief chef hose
    list mist rot tag top elf um bald fern hut boot dose fee lied gut hat taste made fall bank
    post plan film ring hand name problem stand park sport start link code team chat mail bus
    bar gas tank wind warm hier mode real global digital normal total modern intern extern
    super laptop tablet server monitor computer software hardware internet online offline
    login admin update backup ticket support service system test account drive desk just
    pass land ton funk lager auto regal labor praxis muster dank stark spare hole sage
    plane nerve fest alter gross mobile private palette symbol handy kilometer
""".split())

# A word whose gloss is only these carries grammar, not meaning: it is no compound part.
_ENGLISH_FUNCTION_WORDS = frozenset("""
    a an the and or but if so as at by for from in into of off on onto out to up with about
    over under after before since until through against without between around near
    i me my mine you your we us our they them their he him his she her it its this that these
    those is are was were be been am do does did have has had can could will would shall should
    may might must not no never yes there here what who whom whose where when why how which
    some any all each every very too also still already only just again yet more most less
    than then now once other same such own myself yourself ourselves themselves itself one
""".split())

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?(?:-[^\W_]+(?:['’][^\W_]+)?)*")
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:!?)])")
_LEADING_PUNCT = re.compile(r"^[\s,.;:]+")
_CLAUSE_END = re.compile(r"[,.;:!?()\n]")
_SENTENCE_END = re.compile(r"[.;:!?\n]")
_CLAUSE_START = frozenset("und oder aber sondern denn weil dass wenn ob damit als bevor".split())

# Separable verb prefixes: "ein|gerichtet", "frei|zu|schalten".
_SEPARABLE = ("zurück", "zuruck", "zurueck", "zusammen", "weiter", "wieder", "heraus",
              "herunter", "hoch", "fest", "frei", "hin", "her", "los", "weg", "vor", "nach",
              "mit", "aus", "auf", "an", "ab", "ein", "bei", "um", "zu", "durch", "runter",
              "rein", "raus", "dazu", "kaputt", "still", "statt", "teil")
_LINKS = ("s", "es", "en", "n", "e", "")
_MIN_PART = 3
_MAX_PARTS = 4
_MIN_NAMED_TAIL = 6


def _transliterated(word: str) -> str:
    """The spelling typed on a keyboard without umlauts: ä → ae, ß → ss."""
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        word = word.replace(umlaut, plain).replace(umlaut.upper(), plain.capitalize())
    return word


def _spellings(word: str) -> tuple[str, ...]:
    """Every folded spelling of a German word: umlauts dropped (ä → a) and written out (ae)."""
    return tuple(dict.fromkeys((fold(word), fold(_transliterated(word)))))


@dataclass(frozen=True)
class GlossaryEntry:
    german: str
    english: str
    line: int


def read_glossary_file() -> list[GlossaryEntry]:
    """The glossary's entries in file order, as written (German spelling, gloss)."""
    text = (resources.files("bot.matching") / "data" / GLOSSARY_FILE).read_text(encoding="utf-8")
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        german, _, english = line.partition("\t")
        entries.append(GlossaryEntry(" ".join(german.split()), english.strip(), number))
    return entries


@dataclass(frozen=True)
class _Tables:
    typed: dict[str, str]
    """Spelling as listed, letter case and umlauts kept → gloss ("" drops the word)."""
    lower: dict[str, str]
    """Lower-cased spelling, umlauts kept → gloss; the first entry in the file wins."""
    folded: dict[str, str]
    """Every folded spelling → gloss; the first entry in the file wins a folding clash."""
    phrase_lengths: tuple[int, ...]
    """Word counts of the multi-word entries, longest first."""
    parts: frozenset[str]
    """Folded words that may stand in a compound: content words of three letters or more."""
    english: frozenset[str]
    """Words that read as English: never evidence of German."""


@cache
def _tables() -> _Tables:
    typed: dict[str, str] = {}
    lower: dict[str, str] = {}
    folded: dict[str, str] = {}
    gloss_words: set[str] = set()
    for entry in read_glossary_file():
        gloss = "" if entry.english == DROP else entry.english
        typed.setdefault(entry.german, gloss)
        lower.setdefault(entry.german.lower(), gloss)
        for spelling in _spellings(entry.german):
            folded.setdefault(spelling, gloss)
        gloss_words.update(fold(gloss).split())
    phrase_lengths = sorted({k.count(" ") + 1 for k in folded if " " in k}, reverse=True)
    parts = frozenset(
        k for k, v in folded.items()
        if len(k) >= _MIN_PART and " " not in k and v
        and not set(fold(v).split()) <= _ENGLISH_FUNCTION_WORDS
    )
    english = ENGLISH_WORDS | {k for k, v in folded.items() if k == fold(v)} | (
        gloss_words - {w for spelling in GERMAN_MARKERS for w in _spellings(spelling)})
    return _Tables(typed, lower, folded, tuple(phrase_lengths), parts, frozenset(english))


def glossary() -> dict[str, str]:
    """Folded German word or phrase → short English gloss ("" for a word read as nothing)."""
    return dict(_tables().folded)


@cache
def _markers() -> frozenset[str]:
    return frozenset(s for w in GERMAN_MARKERS for s in _spellings(w))


def is_german(text: str) -> bool:
    """Whether the text reads as German: German function words or umlauts outweigh
    English function words, or, with no English function word at all, German
    glossary words make up at least half of the question ("Drucker kaputt")."""
    tables = _tables()
    markers = _markers()
    german = english = content = neutral = 0
    tokens = [t for token in _WORD.findall(text) for t in token.split("-") if t]
    for token in tokens:
        word = fold(token)
        if word in markers or any(ch in token for ch in "äöüÄÖÜß"):
            german += 1
        elif word in _ENGLISH_FUNCTION_WORDS:
            # "in", "so", "was", "will" are German words too: no evidence either way.
            english += word not in tables.folded
        elif word in tables.english:
            neutral += 1  # loanwords and false friends: "Laptop", "fast"
        elif _read_word(word) is not None:
            content += 1
    if german >= 1 and english == 0:
        return True
    if german >= 2 and german > english:
        return True
    return english == 0 and content >= 1 and 2 * content >= len(tokens) - neutral


def to_english(text: str) -> str | None:
    """The word-by-word English reading of a German question; None if not German
    or if the glossary changes nothing."""
    if not is_german(text):
        return None
    tables = _tables()
    tokens = list(_WORD.finditer(text))
    joined = _separable_verbs(text, tokens)
    pieces: list[str] = []
    position = 0
    i = 0
    while i < len(tokens):
        span = None if i in joined else _phrase_at(tables, tokens, i)
        if span is not None:
            length, gloss = span
            pieces.append(text[position:tokens[i].start()])
            pieces.append(gloss)
            position = tokens[i + length - 1].end()
            i += length
            continue
        token = tokens[i]
        before = text[position:token.start()]
        pieces.append(before)
        initial = i == 0 or _SENTENCE_END.search(before) is not None
        pieces.append(joined[i] if i in joined else _read_token(token.group(), initial))
        position = token.end()
        i += 1
    pieces.append(text[position:])
    reading = "".join(pieces)
    reading = _LEADING_PUNCT.sub("", _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", reading)))
    reading = reading.strip()
    return reading if reading != text.strip() else None


def is_german_word(word: str) -> bool:
    """Whether a (folded) word is German as the glossary knows German: listed, an inflected
    form or a compound of listed words, or a function word. Such a word in a German question
    is a word, not a typo of some catalogue word ("laut" is loud, not "last")."""
    return word in _markers() or bool(_read_word(word))


def word_readings(text: str) -> list[tuple[str, str]]:
    """The German words of a question with their English gloss, as `to_english` reads them
    one by one (`Drucker` → "printer"): what an answer can show of a reading, word by word,
    where the whole word-by-word sentence reads oddly ("the printer print not")."""
    found: list[tuple[str, str]] = []
    for i, token in enumerate(_WORD.finditer(text)):
        gloss = _read_typed(token.group(), i == 0)
        if gloss and fold(gloss) != fold(token.group()):
            found.append((token.group(), gloss))
    return found


def _separable_verbs(text: str, tokens: list[re.Match[str]]) -> dict[int, str]:
    """Readings of verbs whose prefix stands at the end of the clause, as German puts it:
    "Wie richte ich die Weiterleitung ein?" reads "richte … ein" as "set up".
    Token index → gloss; the prefix itself reads as nothing."""
    table = _tables().folded
    joined: dict[int, str] = {}
    start = 0
    for end in range(len(tokens)):
        last = end == len(tokens) - 1
        if not (last or _CLAUSE_END.search(text, tokens[end].end(), tokens[end + 1].start())
                or fold(tokens[end + 1].group()) in _CLAUSE_START):
            continue
        prefix = fold(tokens[end].group())
        if prefix in _SEPARABLE and end > start:
            for i in range(start, end):
                gloss = table.get(prefix + fold(tokens[i].group()))
                if gloss is not None:
                    joined[i] = gloss
                    joined[end] = ""
                    break
        start = end + 1
    return joined


def _phrase_at(tables: _Tables, tokens: list[re.Match[str]], i: int) -> tuple[int, str] | None:
    for length in tables.phrase_lengths:
        if i + length > len(tokens):
            continue
        key = " ".join(fold(t.group()) for t in tokens[i:i + length])
        gloss = tables.folded.get(key)
        if gloss is not None:
            return length, gloss
    return None


def _read_token(token: str, initial: bool = False) -> str:
    """A token's reading; a hyphenated token is read whole, else in the longest
    hyphenated pieces the glossary knows (E-Mail-Postfach → E-Mail + Postfach)."""
    gloss = _read_typed(token, initial)
    if gloss is not None:
        return gloss
    if "-" not in token:
        return _read_named_compound(token) or token
    parts = token.split("-")
    readings: list[str] = []
    known = False
    start = 0
    while start < len(parts):
        for end in range(len(parts), start, -1):
            piece = "-".join(parts[start:end])
            gloss = _read_typed(piece, initial and start == 0)
            if gloss is not None or end == start + 1:
                known = known or gloss is not None
                readings.append(piece if gloss is None else gloss)
                start = end
                break
    return " ".join(r for r in readings if r) if known else token


def _read_typed(token: str, initial: bool = False) -> str | None:
    """A word's gloss ("" when dropped), or None when the glossary cannot read it."""
    tables = _tables()
    word = fold(token)
    # A sentence's first word is capitalised whatever it is: "Bitte" there is "please".
    gloss = None if initial and word in _markers() else tables.typed.get(token)
    if gloss is None:
        gloss = tables.lower.get(token.lower())
    if gloss is None:
        gloss = _read_word(word)
    if gloss is None:
        return None
    # A loanword read as itself keeps the writer's spelling ("Teams", not "teams").
    return token if fold(gloss) == word else gloss


def _read_named_compound(token: str) -> str | None:
    """A compound of an unknown first part and a known, long last part, such as a brand
    or team name and a noun (Outlookkalender → "Outlook calendar"); the first part is
    kept as written. The last part must be long so that names are not read as words."""
    for cut in range(_MIN_PART, len(token) - _MIN_NAMED_TAIL + 1):
        gloss = _inflected(fold(token[cut:]), _tables().parts)
        if gloss:
            return f"{token[:cut]} {gloss}"
    return None


@lru_cache(maxsize=65536)
def _read_word(word: str) -> str | None:
    """A folded word's gloss: as listed, inflected, or as a compound."""
    tables = _tables()
    gloss = tables.folded.get(word)
    if gloss is not None or any(ch.isdigit() for ch in word):
        return gloss
    # Only content words take endings: "Wien" is not an inflected "wie".
    gloss = _inflected(word, tables.parts)
    if gloss is not None:
        return gloss
    parts = _compound(word)
    return None if parts is None else " ".join(parts)


def _inflected(word: str, table: dict[str, str] | frozenset[str]) -> str | None:
    """The gloss of the word or of the first base form it can be an inflection of."""
    tables = _tables()
    for candidate in _base_forms(word):
        if candidate in table:
            return tables.folded[candidate]
    return None


def _base_forms(word: str) -> Iterator[str]:
    """The word, then the forms it may be an inflection of, most likely first."""
    yield word
    # -n before -en: "Kollegen" is Kollege-n; "Geräten" is the plural Geräte-n.
    for ending in ("n", "es", "s", "en", "e", "er", "em"):
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_PART:
            yield word[: -len(ending)]
    yield from _infinitives(word)
    for prefix in _SEPARABLE:
        if word.startswith(prefix) and len(word) > len(prefix) + 4:
            rest = word[len(prefix):]
            if rest.startswith("zu"):  # freizuschalten
                yield prefix + rest[2:]
            if rest.startswith("ge"):  # eingerichtet, abgeschlossen
                for infinitive in _infinitives(rest):
                    yield prefix + infinitive


def _infinitives(word: str) -> Iterator[str]:
    """Infinitives a verb form may belong to: brauche, braucht, gesperrt, druckte."""
    if word.startswith("ge") and len(word) > 5:
        core = word[2:]
        if core.endswith("et"):
            yield core[:-2] + "en"
        if core.endswith("t"):
            yield core[:-1] + "en"
        if core.endswith("en"):
            yield core
    for ending in ("enden", "endes", "ender", "ende", "end"):  # funktionierend(en)
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_PART:
            yield word[: -len(ending)] + "en"
    for ending in ("test", "ten", "tet", "te", "est", "et", "st", "t", "e"):
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_PART:
            yield word[: -len(ending)] + "en"
    if word.endswith("e"):
        yield word + "n"
    if word.endswith("n") and not word.endswith("en"):  # sammeln, ändern: "sammle"
        yield word


def _compound(word: str) -> list[str] | None:
    """Glosses of the fewest glossary words that make up the word, in German order."""
    tables = _tables()
    size = len(word)
    if size < 2 * _MIN_PART:
        return None
    memo: dict[tuple[int, int], list[str] | None] = {}

    def rest(start: int, budget: int) -> list[str] | None:
        if (start, budget) in memo:
            return memo[start, budget]
        tail = _inflected(word[start:], tables.parts) if size - start >= _MIN_PART else None
        best: list[str] | None = None if tail is None else [tail]
        if best is None and budget > 1:
            # Longest first part first; at each cut, a linking element before a bare
            # head: Etage-n-drucker is "floor printer", not "floors printer".
            for cut in range(size - _MIN_PART, start + _MIN_PART - 1, -1):
                for link in _LINKS:
                    end = cut - len(link)
                    if end - start < _MIN_PART or word[end:cut] != link:
                        continue
                    head = _compound_head(word[start:end])
                    if head is None:
                        continue
                    following = rest(cut, budget - 1)
                    if following is not None and (best is None or len(following) + 1 < len(best)):
                        best = [head, *following]
                    break
                if best is not None and len(best) == 2:
                    break
        memo[start, budget] = best
        return best

    parts = rest(0, _MAX_PARTS)
    return parts if parts is not None and len(parts) > 1 else None


def _compound_head(head: str) -> str | None:
    """The gloss of a compound's first part: a word, or a noun or verb stem
    ("Sprach-" of Sprache, "Such-" of suchen)."""
    tables = _tables()
    for candidate in (head, head + "e", head + "en", head + "n"):
        if candidate in tables.parts:
            return tables.folded[candidate]
    return None
