"""Building a matcher for a catalogue in the configured mode."""

from __future__ import annotations

import logging

from bot.catalogue.models import Catalog
from bot.errors import EmbeddingUnavailable
from bot.matching.calibration import calibrated
from bot.matching.matcher import Matcher
from bot.settings import calibration_enabled, pinned_lines

log = logging.getLogger(__name__)


def build_matcher(catalog: Catalog, mode: str = "auto") -> Matcher:
    """`lexical`, `semantic` (fails if the model cannot load) or `auto` (semantic if it can),
    deciding with the rule learnt from the catalogue (`bot.matching.calibration`) unless
    `CONCIERGE_CALIBRATION=off`, with any lines pinned in the environment."""
    enabled, pins = calibration_enabled(), pinned_lines()
    matcher, _ = calibrated(_plain_matcher(catalog, mode), enabled=enabled, pins=pins)
    return matcher


def _plain_matcher(catalog: Catalog, mode: str) -> Matcher:
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
