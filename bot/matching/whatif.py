"""What if an offering had more needs: the same matcher, rebuilt on a changed catalogue.

Suggested needs are judged by what they would change: the question that prompted them
should then be answered outright, and questions answered today should keep their answers.
Only the catalogue changes; the matcher keeps its mode, its embedding model and its
thresholds, so a difference in a decision comes from the added needs alone. The rebuilt
index is never written to the on-disk cache, which holds the catalogues actually served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from bot.catalogue.models import Catalog
from bot.matching.matcher import Matcher
from bot.matching.semantic import SemanticIndex


def with_needs(catalog: Catalog, additions: Mapping[str, Sequence[str]]) -> Catalog:
    """`catalog` with each offering in `additions` given those needs after its own."""
    unknown = sorted(set(additions) - {o.id for o in catalog})
    if unknown:
        raise KeyError(f"not in the catalogue: {', '.join(unknown)}")
    return Catalog(tuple(
        replace(o, needs=(*o.needs, *additions[o.id])) if additions.get(o.id) else o
        for o in catalog), root=catalog.root)


def rebuilt(matcher: Matcher, catalog: Catalog) -> Matcher:
    """A matcher like `matcher` (mode, model, thresholds) for `catalog`."""
    semantic = (SemanticIndex(catalog, matcher.semantic.embedder)
                if matcher.semantic is not None else None)
    return Matcher(catalog, semantic=semantic, thresholds=matcher.thresholds, cache=False)
