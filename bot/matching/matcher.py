"""From a question to a `Decision`: answer, clarify or none, with its explanation.

Scores come from the lexical index, and from the semantic index when one is
given; the combination and the decision rule are the same in both modes, only
the lines differ: the built-in ones of `bot.matching.thresholds`, or those
`bot.matching.calibration` learns from the catalogue.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from bot.catalogue.models import Candidate, Catalog, Decision, DecisionKind, Evidence, Offering
from bot.matching.german import is_german, is_german_word, to_english, word_readings
from bot.matching.lexical import FloatArray, IntArray, LeftOutNeeds, LexicalIndex, LexicalScores
from bot.matching.semantic import SemanticIndex, SemanticScores, Vectors
from bot.matching.text import content_words, fold, once_each, stem
from bot.matching.thresholds import (
    MAX_CANDIDATES,
    MAX_CHOICES,
    MAX_QUERY_CHARS,
    DecisionRule,
    RuleSource,
    Thresholds,
    default_rule,
)

if TYPE_CHECKING:
    from bot.matching.calibration import SelfTest

_WORD = re.compile(r"[^\W_]+")
# Weight of the nearest example against the whole-offering score.
LEXICAL_NEAREST_WEIGHT = 0.6
# In semantic mode, the share of the semantic ranking (the rest is lexical).
SEMANTIC_WEIGHT = 0.9
# In semantic mode, how much the share of the question's words that the catalogue knows adds
# to the fit: the ratio of the two coefficients of a logistic regression of in-scope vs
# out-of-scope on CLINC150 val (similarity 13.3, known share 1.5).
KNOWN_WORDS_WEIGHT = 0.115


@dataclass(frozen=True, slots=True)
class Scored:
    """All offerings' scores for one question, plus what explains them.

    `combined` orders the offerings; `shortlist` is the best of them in that order, and
    `strength` says how well the question fits each of those in absolute terms (lexical
    mode: the combined score). Nothing below the shortlist can be shown or decide.
    """

    combined: FloatArray
    shortlist: IntArray
    strength: FloatArray
    lexical: LexicalScores
    semantic: SemanticScores | None
    reading: str | None = None
    """The English reading of a German question, when that is what was scored."""

    @property
    def best_strength(self) -> float:
        return float(self.strength[0]) if self.strength.size else 0.0


class Matcher:
    """Matches needs against one catalogue. Build once per catalogue; `decide` is thread-safe."""

    def __init__(self, catalog: Catalog, *, semantic: SemanticIndex | None = None,
                 thresholds: Thresholds | None = None, cache: bool | None = None) -> None:
        self.catalog = catalog
        self.lexical = LexicalIndex(catalog, cache=cache)
        self.semantic = semantic
        mode = "semantic" if semantic else "lexical"
        self.rule = (default_rule(mode, "The built-in lines.") if thresholds is None else
                     DecisionRule(thresholds, RuleSource.DEFAULT, "Lines given by the caller."))
        self.self_test: SelfTest | None = None
        """The catalogue's questions about itself, when the rule was learnt from them."""
        self._offerings = catalog.offerings
        self._redirect = self._build_redirects(catalog)
        self._position = {o.id: i for i, o in enumerate(catalog.offerings)}
        self._shared = shared_needs(catalog)

    @property
    def thresholds(self) -> Thresholds:
        return self.rule.thresholds

    def with_rule(self, rule: DecisionRule, self_test: SelfTest | None = None) -> Matcher:
        """The same matcher deciding with another rule (the indexes are shared)."""
        other = copy.copy(self)
        other.rule = rule
        other.self_test = self_test
        return other

    @property
    def mode(self) -> str:
        return "semantic" if self.semantic else "lexical"

    @staticmethod
    def _build_redirects(catalog: Catalog) -> dict[int, int]:
        """Retired offering index → its live replacement's index."""
        position = {o.id: i for i, o in enumerate(catalog.offerings)}
        redirects = {}
        for i, o in enumerate(catalog.offerings):
            if o.is_retired:
                live = catalog.live_replacement(o)
                if live is not None:
                    redirects[i] = position[live.id]
        return redirects

    def score(self, query: str, *, left_out: LeftOut | None = None,
              vectors: Mapping[str, Vectors] | None = None) -> Scored:
        """Scores for the question as written, or for its English reading when it is
        German and that reading fits the catalogue better.

        `left_out`: score as if those needs of an offering were not in the catalogue (the
        question is then one of them: leave-one-out; see `without_needs` for the semantic
        side). `vectors`: embeddings already computed for the texts to embed (a batch),
        looked up before asking the model."""
        held = (self.lexical.left_out(left_out.offering, left_out.needs)
                if left_out is not None else None)
        scored = self._score_text(query, held, vectors)
        reading = to_english(query)
        if reading is not None:
            translated = self._score_text(reading, held, vectors)
            if translated.best_strength > scored.best_strength:
                return replace(translated, reading=reading)
        return scored

    def without_needs(self, needs: Mapping[int, Collection[int]]) -> Matcher:
        """This matcher as if the given needs (offering index → need numbers) had not been
        written: the semantic index fitted again without them. Its lexical side leaves
        a need out per question instead (`score(..., left_out=...)`): words weigh little
        in the ranking, and one index per question would cost more than the rest."""
        held = copy.copy(self)
        if self.semantic is not None:
            held.semantic = self.semantic.without(
                [self.semantic.example_index(k, n) for k, ns in needs.items() for n in ns])
        return held

    def embedding_texts(self, query: str) -> list[str]:
        """The texts `score` would embed for this question (as written, and its English
        reading), so that many questions can be embedded in one batch."""
        if self.semantic is None:
            return []
        texts = []
        reading = to_english(query)
        for text in (query, reading) if reading is not None else (query,):
            lex = self.lexical.score(self.lexical.analyse(text, is_word=self._real_word(text)))
            texts.append(self._embedding_text(text, lex))
        return texts

    def _real_word(self, text: str) -> Callable[[str], bool] | None:
        """What tells real words from typos in `text`: the model's vocabulary, and in a
        German question the German words too. A real word is never "corrected", so a German
        word is not read as the catalogue word it happens to resemble ("laut" as "last")."""
        known = self.semantic.embedder.knows if self.semantic is not None else None
        if not is_german(text):
            return known
        if known is None:
            return is_german_word
        return lambda word: is_german_word(word) or known(word)

    def _score_text(self, query: str, held: LeftOutNeeds | None = None,
                    vectors: Mapping[str, Vectors] | None = None) -> Scored:
        terms = self.lexical.analyse(query, is_word=self._real_word(query),
                                     unknown=held.unknown if held else frozenset())
        lex = self.lexical.score(terms, left_out=held)
        lexical = (LEXICAL_NEAREST_WEIGHT * lex.nearest
                   + (1 - LEXICAL_NEAREST_WEIGHT) * lex.whole)
        if self.semantic is None:
            shortlist = _shortlist(lexical)
            return Scored(lexical, shortlist, lexical[shortlist], lex, None)
        text = self._embedding_text(query, lex)
        vector = vectors.get(text) if vectors is not None else None
        sem = self.semantic.score(text, vector=vector)
        combined = SEMANTIC_WEIGHT * sem.ranking + (1 - SEMANTIC_WEIGHT) * lexical
        shortlist = _shortlist(combined)
        strength = sem.strength(shortlist) + KNOWN_WORDS_WEIGHT * lex.query.known_share
        return Scored(combined, shortlist, strength, lex, sem)

    def _embedding_text(self, query: str, lex: LexicalScores) -> str:
        """The question with misspelt words replaced by the catalogue words they were
        read as, where the model does not know the typed word (it would see noise)."""
        assert self.semantic is not None
        embedder = self.semantic.embedder
        replace: dict[str, list[str]] = {}
        for wrong, right in lex.query.corrections:
            if not embedder.knows(wrong):
                replace.setdefault(wrong, []).append(right)
        if not replace:
            return query
        return _WORD.sub(lambda m: " ".join(replace.get(fold(m.group()), [m.group()])), query)

    def decide(self, query: str) -> Decision:
        text = " ".join(query.split())
        if len(text) > MAX_QUERY_CHARS:
            # A long question is often one phrase pasted many times: read it once, and cut
            # only what is still too long (and say so).
            text = once_each(text[:MAX_QUERY_CHARS * 40])
        truncated = len(text) > MAX_QUERY_CHARS
        if truncated:
            text = text[:MAX_QUERY_CHARS]
        if not content_words(text) or not self._offerings:
            why = "The question has no words to match." if not text else (
                "Nothing in the question matches the catalogue.")
            return Decision(query, DecisionKind.NONE, 0.0, (), why)
        scored = self.score(text)
        ranked, dead_end = self._candidates(scored)
        decision = self._decide(query, ranked, scored, dead_end)
        if truncated:
            note = f" (Only the first {MAX_QUERY_CHARS} characters were read.)"
            decision = replace(decision, why=decision.why + note)
        return decision

    def probe(self, query: str, *, left_out: LeftOut | None = None,
              vectors: Mapping[str, Vectors] | None = None) -> Probe:
        """What the decision rule would see for a question, without deciding: the
        candidates best first, each with its ranking score and strength."""
        text = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not content_words(text) or not self._offerings:
            return Probe(())
        ranked, _ = self._candidates(self.score(text, left_out=left_out, vectors=vectors))
        return Probe(tuple(Probed(self._position[r.candidate.offering.id], r.candidate.score,
                                  r.strength, r.candidate.evidence) for r in ranked))

    def _copies_of(self, candidate: Candidate) -> tuple[Offering, ...]:
        """The other offerings that list the need this candidate matched on, word for word."""
        if candidate.evidence.field != "needs":
            return ()
        offerings = self._shared.get(need_key(candidate.evidence.text), ())
        return tuple(self._offerings[k] for k in offerings
                     if self._offerings[k].id != candidate.offering.id)

    def _choose_between(self, query: str, candidates: tuple[Candidate, ...],
                        copies: tuple[Offering, ...], confidence: float,
                        corrections: str) -> Decision:
        """Offer the matched offering and those that list the same need as choices: an
        answer would pick one of them at random."""
        top = candidates[0]
        # Each copy matched on the same words, so it is as good a match as the first.
        chosen = [top, *(Candidate(o, top.score, top.evidence)
                         for o in copies[:MAX_CHOICES - 1])]
        ids = {c.offering.id for c in chosen}
        rest = tuple(c for c in candidates if c.offering.id not in ids)
        names = " and ".join(c.offering.name for c in chosen)
        verb = "both list" if len(chosen) == 2 else "all list"
        why = f'{names} {verb} the need "{top.evidence.text}": which one do you mean?'
        return Decision(query, DecisionKind.CLARIFY, confidence, (*chosen, *rest),
                        why + corrections, choice_count=len(chosen))

    def _candidates(self, scored: Scored) -> tuple[list[Ranked], Ranked | None]:
        """Best offerings first, retired ones folded into their live replacement.

        Also returns a retired offering with no live replacement when it outranks
        every offering that can be ordered: the employee should hear that it is retired.

        Offerings the ranking gives nothing (no word in common, and on the far side of the
        whitened space) are left out, except that in semantic mode a first candidate alone
        gets the one of them in the shortlist that the question fits best (raw cosine) as its
        runner-up, shown as far behind: in a catalogue of a few offerings a right question
        often ranks only its own, and when it is not sure enough to answer, a choice of two
        serves the asker better than "I don't know". (Measured on five-offering catalogues
        asked long questions: 3.9% of in-scope questions declined that way, their offering
        first in every one.)"""
        scores = scored.combined
        out: list[Ranked] = []
        dead_end: Ranked | None = None
        seen: set[int] = set()
        unranked: list[tuple[int, int]] = []
        for slot, i in enumerate(int(x) for x in scored.shortlist):
            if scores[i] <= 0:
                unranked.append((slot, i))
                continue
            target = self._redirect.get(i, i)
            if target in seen:
                continue
            retired = self._offerings[i] if target != i else None
            if retired is None and self._offerings[i].is_retired:
                if not out and dead_end is None:
                    dead_end = Ranked(Candidate(self._offerings[i], float(scores[i]),
                                                self._evidence(scored, i)),
                                      float(scored.strength[slot]), self._offerings[i])
                continue  # nothing to order
            seen.add(target)
            out.append(self._ranked(scored, slot, i, target, retired))
            if len(out) == MAX_CANDIDATES:
                break
        if len(out) == 1 and scored.semantic is not None:
            targets = [(slot, i, self._redirect.get(i, i)) for slot, i in unranked]
            orderable = [(slot, i, target) for slot, i, target in targets
                         if target not in seen and not self._offerings[target].is_retired]
            if orderable:
                slot, i, target = max(orderable, key=lambda u: float(scored.strength[u[0]]))
                retired = self._offerings[i] if target != i else None
                out.append(self._ranked(scored, slot, i, target, retired))
        return out, dead_end

    def _ranked(self, scored: Scored, slot: int, i: int, target: int,
                retired: Offering | None) -> Ranked:
        """The `slot`-th shortlisted offering (catalogue index `i`) as a candidate, shown as
        `target` (its live replacement when it is retired)."""
        candidate = Candidate(self._offerings[target], max(float(scored.combined[i]), 0.0),
                              self._evidence(scored, i))
        return Ranked(candidate, float(scored.strength[slot]), retired)

    def _evidence(self, scored: Scored, i: int) -> Evidence:
        if scored.semantic is not None and self.semantic is not None:
            j = scored.semantic.nearest_example(i)
            if j >= 0:
                ex = self.semantic.examples[j]
                return Evidence(ex.field, ex.text)
        j = scored.lexical.nearest_example(i)
        if j >= 0:
            ex = self.lexical.examples[j]
            return Evidence(ex.field, ex.text)
        return Evidence("name", self._offerings[i].name)

    def _decide(self, query: str, ranked: list[Ranked], scored: Scored,
                dead_end: Ranked | None) -> Decision:
        t = self.thresholds
        candidates = tuple(r.candidate for r in ranked)
        # The reading as far as it made the match: the evidence of the offering(s) shown.
        corrections = _corrections_note(query, scored, candidates[:1])
        if dead_end is not None and dead_end.strength >= t.decline:
            old = dead_end.candidate.offering
            return Decision(query, DecisionKind.NONE, 0.0, candidates,
                            f"{old.name} would fit ({dead_end.candidate.evidence.describe()}), "
                            "but it is retired and nothing replaces it yet." + corrections)
        strength = ranked[0].strength if ranked else 0.0
        margin = (candidates[0].score - candidates[1].score if len(candidates) > 1
                  else candidates[0].score if candidates else 0.0)
        confidence = _confidence(strength, margin, t)
        led = bool(ranked) and len(candidates) > 1 and not t.declines(strength, margin)
        if not ranked or (strength < t.decline and not led):
            best = (f" The closest was {candidates[0].offering.name} "
                    f"({candidates[0].evidence.describe()}), too far to be sure."
                    if candidates else "")
            return Decision(query, DecisionKind.NONE, min(confidence, BELOW_ANSWER),
                            candidates,
                            "Nothing in the catalogue fits this need." + best + corrections)
        top = ranked[0]
        if strength >= t.decline and t.answers(strength, margin):
            copied = self._copies_of(top.candidate)
            if copied:
                return self._choose_between(query, candidates, copied,
                                            min(confidence, BELOW_ANSWER), corrections)
            offering = top.candidate.offering
            why = f"Matched {top.candidate.evidence.describe()} of {offering.name}."
            if top.retired is not None:
                why += f" {top.retired.name} is retired; {offering.name} replaces it."
            return Decision(query, DecisionKind.ANSWER, max(confidence, ANSWER_CONFIDENCE),
                            candidates, why + corrections, offering=offering,
                            retired=top.retired)
        confidence = min(confidence, BELOW_ANSWER)
        if len(candidates) < 2:
            return Decision(query, DecisionKind.NONE, confidence, candidates,
                            f"Only {candidates[0].offering.name} comes close "
                            f"({candidates[0].evidence.describe()}), and not close enough "
                            "to be sure." + corrections)
        s1 = candidates[0].score
        close = [c for c in candidates[:MAX_CHOICES] if s1 - c.score <= t.clarify_window]
        close = close if len(close) >= 2 else list(candidates[:2])
        names = "; ".join(f"{c.offering.name} ({c.evidence.describe()})" for c in close)
        why = f"Several offerings could fit: {names}."
        if close[1].score <= 0:  # the runner-up a lone first candidate was given
            first, other = close[0], close[1]
            why = (f"{first.offering.name} fits best ({first.evidence.describe()}), but not "
                   f"closely enough to be sure; the next closest, far behind, is "
                   f"{other.offering.name} ({other.evidence.describe()}).")
        return Decision(query, DecisionKind.CLARIFY, confidence, candidates,
                        why + _corrections_note(query, scored, close),
                        choice_count=len(close))


def need_key(text: str) -> tuple[str, ...]:
    """What makes two needs the same need: their content words' stems, in order."""
    return tuple(stem(w) for w in content_words(text))


def shared_needs(catalog: Catalog) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Needs written, word for word up to case, accents and stop words, in more than one
    live offering: need key → those offerings' indices, in catalogue order."""
    where: dict[tuple[str, ...], list[int]] = {}
    for k, o in enumerate(catalog.offerings):
        if o.is_retired:
            continue
        for need in o.needs:
            key = need_key(need)
            if key and k not in where.setdefault(key, []):
                where[key].append(k)
    return {key: tuple(ks) for key, ks in where.items() if len(ks) > 1}


@dataclass(frozen=True, slots=True)
class Probed:
    """One candidate of a probed question."""

    offering: int
    """Its index in the catalogue."""
    score: float
    """Ranking score (comparable within one question)."""
    strength: float
    """How well the question fits it, as the decline and answer lines read it."""
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Probe:
    """The candidates of one question as the decision rule sees them, best first, retired
    offerings folded into their replacements."""

    ranked: tuple[Probed, ...]

    def without(self, offering: int) -> Probe:
        """The same question if that offering were not in the catalogue."""
        return Probe(tuple(r for r in self.ranked if r.offering != offering))

    @property
    def top(self) -> int:
        """The first candidate's offering index; -1 when there is none."""
        return self.ranked[0].offering if self.ranked else -1

    @property
    def strength(self) -> float:
        return self.ranked[0].strength if self.ranked else 0.0

    @property
    def margin(self) -> float:
        """How far the first candidate's ranking score leads the second's (or its own
        score when it is alone), as the decision rule measures it."""
        if len(self.ranked) > 1:
            return self.ranked[0].score - self.ranked[1].score
        return self.ranked[0].score if self.ranked else 0.0

    def strength_of(self, offering: int) -> float:
        """How well the question fits that offering; 0 when it is not a candidate."""
        return next((r.strength for r in self.ranked if r.offering == offering), 0.0)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Needs left out of the `offering`-th offering (by their numbers in it), to ask one
    of them as a question of the catalogue without them."""

    offering: int
    needs: tuple[int, ...]


def _shortlist(scores: FloatArray) -> IntArray:
    """The offerings a decision can look at, best first: room for MAX_CANDIDATES after
    retired offerings fold into their replacements. Ties keep catalogue order."""
    k = min(len(scores), MAX_CANDIDATES * 3)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    ordered: IntArray = top[np.lexsort((top, -scores[top]))]
    return ordered


@dataclass(frozen=True, slots=True)
class Ranked:
    candidate: Candidate
    strength: float
    retired: Offering | None


def _corrections_note(query: str, scored: Scored, shown: Sequence[Candidate]) -> str:
    """How the question was read, as far as it made the match: the German words whose
    English gloss is in the evidence shown (never the whole word-by-word sentence, which
    reads oddly: "the printer print not"), and the typos read as catalogue words."""
    notes = []
    if scored.reading is not None:
        evidence = {stem(w) for c in shown for w in content_words(c.evidence.text)}
        helped = [(german, english) for german, english in word_readings(query)
                  if {stem(w) for w in content_words(english)} & evidence]
        if helped:
            notes.append("Read the German " + ", ".join(
                f'"{german}" as "{english}"' for german, english in helped[:3]) + ".")
    fixes = scored.lexical.query.corrections
    if fixes:
        notes.append("Read " + ", ".join(f'"{w}" as "{r}"' for w, r in fixes[:3]) + ".")
    return f" ({' '.join(notes)})" if notes else ""


# An answer's confidence is at least this, a clarify's or a decline's below it: a "Did you
# mean" reported at 0.998 (a strong best match whose runner-up came just too close) read
# as a near-certain answer to anyone scripting against `ask --json`.
ANSWER_CONFIDENCE = 0.5
BELOW_ANSWER = 0.499


def _confidence(strength: float, margin: float, t: Thresholds) -> float:
    """0..1: how far the fit is between declining and answering, discounted by a close
    runner-up. 0.5 is where an outright answer becomes possible."""
    level = (strength - t.decline) / max(t.answer - t.decline, 1e-9)
    lead = min(max(margin, 0.0) / max(t.margin, 1e-9), 1.0)
    value = 0.5 * min(max(level, 0.0), 2.0) * (0.5 + 0.5 * lead)
    return round(min(max(value, 0.0), 1.0), 3)
