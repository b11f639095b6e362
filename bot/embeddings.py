"""Loading the sentence-embedding model (optional extra `semantic`)."""

from __future__ import annotations

from bot.errors import EmbeddingUnavailable
from bot.semantic import Embedder

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def load_embedder() -> Embedder:
    raise EmbeddingUnavailable("semantic runtime not installed", model=DEFAULT_MODEL)
