"""From a question to a `Decision`: answer, clarify or none, with its explanation.

Scores come from the lexical index, and from the semantic index when one is
given; the combination and the decision rule are the same in both modes, only
the thresholds differ (see `bot.thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.lexical import FloatArray, LexicalIndex, LexicalScores
from bot.models import Candidate, Catalog, Decision, DecisionKind, Evidence, Offering
from bot.semantic import SemanticIndex, SemanticScores
from bot.text import content_words
from bot.thresholds import LEXICAL, MAX_CANDIDATES, MAX_CHOICES, MAX_QUERY_CHARS, SEMANTIC, Thresholds

# Weight of the nearest example against the whole-offering score.
LEXICAL_NEAREST_WEIGHT = 0.6
# In hybrid mode, the share of the semantic score.
SEMANTIC_WEIGHT = 0.7


@dataclass(frozen=True, slots=True)
class Scored:
    """All offerings' combined scores for one question, plus what explains them."""

    combined: FloatArray
    lexical: LexicalScores
    semantic: SemanticScores | None


class Matcher:
    """Matches needs against one catalogue. Build once per catalogue; `decide` is thread-safe."""

    def __init__(self, catalog: Catalog, *, semantic: SemanticIndex | None = None,
                 thresholds: Thresholds | None = None) -> None:
        self.catalog = catalog
        self.lexical = LexicalIndex(catalog)
        self.semantic = semantic
        self.thresholds = thresholds or (SEMANTIC if semantic else LEXICAL)
        self._offerings = catalog.offerings
        self._redirect = self._build_redirects(catalog)

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

    def score(self, query: str) -> Scored:
        lex = self.lexical.score(query)
        lexical = (LEXICAL_NEAREST_WEIGHT * lex.nearest
                   + (1 - LEXICAL_NEAREST_WEIGHT) * lex.whole)
        if self.semantic is None:
            return Scored(lexical, lex, None)
        sem = self.semantic.score(query)
        combined = SEMANTIC_WEIGHT * sem.combined + (1 - SEMANTIC_WEIGHT) * lexical
        return Scored(combined, lex, sem)

    def decide(self, query: str) -> Decision:
        text = " ".join(query.split())
        truncated = len(text) > MAX_QUERY_CHARS
        if truncated:
            text = text[:MAX_QUERY_CHARS]
        if not content_words(text) or not self._offerings:
            why = "The question has no words to match." if not text else (
                "Nothing in the question matches the catalogue.")
            return Decision(query, DecisionKind.NONE, 0.0, (), why)
        scored = self.score(text)
        candidates = self._candidates(scored)
        decision = self._decide(query, candidates)
        if truncated:
            note = f" (Only the first {MAX_QUERY_CHARS} characters were read.)"
            decision = Decision(decision.query, decision.kind, decision.confidence,
                                decision.candidates, decision.why + note,
                                decision.offering, decision.retired)
        return decision

    def _candidates(self, scored: Scored) -> list[tuple[Candidate, Offering | None]]:
        """Best offerings first, retired ones folded into their replacement."""
        scores = scored.combined
        k = min(len(scores), MAX_CANDIDATES * 3)
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        out: list[tuple[Candidate, Offering | None]] = []
        seen: set[int] = set()
        for i in (int(x) for x in top):
            if scores[i] <= 0:
                break
            target = self._redirect.get(i, i)
            if target in seen:
                continue
            seen.add(target)
            retired = self._offerings[i] if target != i else None
            if retired is None and self._offerings[i].is_retired:
                continue  # retired with no live replacement: nothing to sell
            evidence = self._evidence(scored, i)
            out.append((Candidate(self._offerings[target], float(scores[i]), evidence), retired))
            if len(out) == MAX_CANDIDATES:
                break
        return out

    def _evidence(self, scored: Scored, i: int) -> Evidence:
        sem = scored.semantic
        lex = scored.lexical
        if sem is not None and sem.nearest_example[i] >= 0:
            ex = self.semantic.examples[int(sem.nearest_example[i])] if self.semantic else None
            if ex is not None:
                return Evidence(ex.field, ex.text)
        j = int(lex.nearest_example[i])
        if j >= 0:
            ex = self.lexical.examples[j]
            return Evidence(ex.field, ex.text)
        return Evidence("name", self._offerings[i].name)

    def _decide(self, query: str, ranked: list[tuple[Candidate, Offering | None]]) -> Decision:
        t = self.thresholds
        candidates = tuple(c for c, _ in ranked)
        if not candidates or candidates[0].score < t.decline:
            best = (f" The closest was {candidates[0].offering.name} "
                    f"({candidates[0].evidence.describe()}), too far to be sure."
                    if candidates else "")
            return Decision(query, DecisionKind.NONE, _confidence(candidates, t), candidates,
                            "Nothing in the catalogue fits this need." + best)
        top, retired = ranked[0]
        s1 = top.score
        s2 = candidates[1].score if len(candidates) > 1 else 0.0
        if s1 >= t.sure or (s1 >= t.answer and s1 - s2 >= t.margin):
            why = f"Matched {top.evidence.describe()} of {top.offering.name}."
            if retired is not None:
                why += f" {retired.name} is retired; {top.offering.name} replaces it."
            return Decision(query, DecisionKind.ANSWER, _confidence(candidates, t), candidates,
                            why, offering=top.offering, retired=retired)
        close = [c for c in candidates[:MAX_CHOICES] if s1 - c.score <= t.clarify_window]
        if len(close) < 2:
            close = list(candidates[:2])
        choices = tuple(close) + tuple(c for c in candidates if c not in close)
        names = ", ".join(f"{c.offering.name} ({c.evidence.describe()})" for c in close)
        return Decision(query, DecisionKind.CLARIFY, _confidence(candidates, t), choices,
                        f"Several offerings could fit: {names}.")


def _confidence(candidates: tuple[Candidate, ...], t: Thresholds) -> float:
    """A 0..1 confidence: where the top score sits between declining and being sure,
    discounted when the runner-up is close."""
    if not candidates:
        return 0.0
    s1 = candidates[0].score
    s2 = candidates[1].score if len(candidates) > 1 else 0.0
    level = (s1 - t.decline) / max(t.answer - t.decline, 1e-9)
    lead = min((s1 - s2) / max(t.margin, 1e-9), 1.0)
    value = 0.5 * min(max(level, 0.0), 2.0) * (0.5 + 0.5 * max(lead, 0.0))
    return round(min(max(value, 0.0), 1.0), 3)
