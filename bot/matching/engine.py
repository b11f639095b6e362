"""Building a matcher for a catalogue in the configured mode."""

from __future__ import annotations

import logging

from bot.catalogue.models import Catalog
from bot.errors import EmbeddingUnavailable
from bot.matching.matcher import Matcher

log = logging.getLogger(__name__)


def build_matcher(catalog: Catalog, mode: str = "auto") -> Matcher:
    """`lexical`, `semantic` (fails if the model cannot load) or `auto` (semantic if it can)."""
    if mode == "lexical":
        return Matcher(catalog)
    from bot.matching.embeddings import load_embedder
    from bot.matching.semantic import SemanticIndex

    try:
        embedder = load_embedder()
    except EmbeddingUnavailable as exc:
        if mode == "semantic":
            raise
        log.info("semantic matching unavailable, using lexical: %s", exc)
        return Matcher(catalog)
    return Matcher(catalog, semantic=SemanticIndex(catalog, embedder))
