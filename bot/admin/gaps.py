"""Grouping unmet needs by similarity, so that forty ways of asking for a company car
read as one line with a count and examples.

Each need becomes the set of its stemmed content words (the matcher's own
tokenisation, `bot.matching.text`), so "company cars?", "I need a company car" and "how do
I get a company car" share one signature. Two signatures are alike when most
words of the shorter one appear in the longer one (a word one or two typing
errors away counts; swapped letters are one error) and they share at least a
third of all their words. Grouping is greedy, most frequent wording first: a
group is named after its most common phrasing, and a need joins the first group
it is alike to.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from bot.matching.text import content_words, fold, stem, words

# Shares of words that make two needs alike (see the module docstring).
SHORTER_SHARE = 0.6
UNION_SHARE = 1 / 3
EXAMPLES = 3

Signature = frozenset[str]


def signature(text: str) -> Signature:
    """The stems of a need's content words; empty for a need with none."""
    return frozenset(stem(w) for w in content_words(text))


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    shortest = min(len(a), len(b))
    if shortest < 4:
        return False
    return OSA.distance(a, b, score_cutoff=2) <= (1 if shortest < 8 else 2)


def alike(a: Signature, b: Signature) -> bool:
    """Whether two needs ask for the same thing, by their (spelling-corrected) words."""
    if not a or not b:
        return False
    shared = len(a & b)
    return (shared / min(len(a), len(b)) >= SHORTER_SHARE
            and shared / len(a | b) >= UNION_SHARE)


def spelling_map(signatures: Iterable[Signature]) -> dict[str, str]:
    """Each word → the commonest word it is a typo of (itself when none).

    Correcting the vocabulary once keeps grouping a matter of set arithmetic; candidates
    share a word's first or last three letters, since a typo rarely changes both ends.
    """
    counts = Counter(w for sig in signatures for w in sig)
    canonical: dict[str, str] = {}
    by_end: dict[str, list[str]] = defaultdict(list)
    for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        ends = ("<" + word[:3], word[-3:] + ">")
        target = next((c for end in ends for c in by_end.get(end, ())
                       if _same_word(word, c)), word)
        canonical[word] = target
        if target == word:
            for end in ends:
                by_end[end].append(word)
    return canonical


@dataclass(frozen=True, slots=True)
class Need:
    """One unmet need as recorded: its words, why it counts as unmet, the nearest offering."""

    text: str
    reason: str
    """declined, abandoned (a "Did you mean…" left without a choice) or not_helpful."""
    nearest_offering_id: str | None = None
    ref: int | None = None
    """The caller's handle on this need (such as an index), handed back in `NeedGroup.refs`."""


@dataclass(frozen=True, slots=True)
class NeedGroup:
    """Needs that ask for the same thing; `examples` are the commonest wordings."""

    count: int
    examples: tuple[str, ...]
    reasons: tuple[tuple[str, int], ...]
    """(reason, count), commonest first."""
    nearest_offering_id: str | None
    refs: tuple[int, ...] = ()
    """The `ref` of every member that has one, commonest wording first."""


def group_needs(needs: Iterable[Need], *, examples: int = EXAMPLES) -> list[NeedGroup]:
    """Alike needs grouped, largest group first (ties: by the group's first wording)."""
    by_wording: dict[str, list[Need]] = defaultdict(list)
    for need in needs:
        wording = " ".join(words(need.text)) or " ".join(fold(need.text).split())
        by_wording[wording].append(need)
    # Most frequent wording first, so each group is named after its commonest phrasing.
    wordings = sorted(by_wording.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    raw = {wording: signature(wording) for wording, _ in wordings}
    spelling = spelling_map(raw.values())
    frequency = Counter(spelling[w] for sig in raw.values() for w in sig)

    groups: list[list[list[Need]]] = []
    keys: list[Signature] = []
    by_word: dict[str, list[int]] = defaultdict(list)
    by_empty: dict[str, int] = {}
    for wording, members in wordings:
        sig = frozenset(spelling[w] for w in raw[wording])
        found: int | None
        if not sig:
            # No content words ("??", "hello"): only the very same wording groups.
            found = by_empty.get(wording)
            if found is None:
                by_empty[wording] = len(groups)
        else:
            # Alike needs share at least a third of this need's words, so some group word
            # is among its rarest len - ceil(len/3) + 1: look only there, never through
            # the long lists of common words such as "need".
            rarest = sorted(sig, key=lambda w: (frequency[w], w))
            prefix = rarest[:len(sig) - math.ceil(len(sig) * UNION_SHARE) + 1]
            candidates = sorted({g for w in prefix for g in by_word.get(w, ())})
            found = next((g for g in candidates if alike(sig, keys[g])), None)
        if found is None:
            groups.append([members])
            keys.append(sig)
            for w in sig:
                by_word[w].append(len(groups) - 1)
        else:
            groups[found].append(members)
    return sorted((_summarise(g, examples) for g in groups),
                  key=lambda g: (-g.count, g.examples[0].casefold()))


def _summarise(wordings: list[list[Need]], examples: int) -> NeedGroup:
    members = [n for ws in wordings for n in ws]
    # The wording as people typed it most often, per folded form.
    shown = [Counter(n.text.strip() for n in ws).most_common(1)[0][0] for ws in wordings]
    reasons = Counter(n.reason for n in members).most_common()
    nearest = Counter(n.nearest_offering_id for n in members if n.nearest_offering_id)
    return NeedGroup(
        count=len(members), examples=tuple(shown[:examples]),
        reasons=tuple(reasons),
        nearest_offering_id=nearest.most_common(1)[0][0] if nearest else None,
        refs=tuple(n.ref for n in members if n.ref is not None))
