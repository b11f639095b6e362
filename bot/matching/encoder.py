"""A BERT sentence encoder in NumPy: the forward pass of all-MiniLM-L6-v2 and its kin.

Why not sentence-transformers: importing it (and torch) takes about 5 s and 300 MB
before the first question, longer than loading a 10,000-offering catalogue, and
installing it takes 1.4 GB, while a six-layer encoder is a dozen matrix products.
Reading the same weights (`model.safetensors`) and the same tokenizer
(`tokenizer.json`, via the Rust `tokenizers` library) gives the same vectors (tests
compare them with sentence-transformers to 1e-5) in well under a second of start-up.
Per question the cost is the same: both are bound by reading the weights once per
forward pass.

The weights are mapped read-only from the file, not read into memory: the kernel
loads a page when it is first used (most rows of the 30,522-word embedding table
never are) and shares it between every process that maps the file, so gunicorn's
workers, a reload, and a second `concierge` on the same host hold one copy.

Supported: BERT-architecture models with mean or CLS pooling, as sentence-transformers
saves them. Anything else is left to sentence-transformers (`bot.matching.embeddings`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.errors import EmbeddingUnavailable

F32 = NDArray[np.float32]

# Texts per forward pass when embedding a catalogue; sorted by length first, so the
# padding in each batch stays small.
BATCH_SIZE = 64
# A batch this small is a question: one thread, no pool (its matrices are tiny).
SMALL_BATCH = 8
_MASKED = np.float32(-1e9)
# A safetensors header is JSON describing each tensor; a real one is a few kB. A larger
# length prefix means a corrupt or hostile file, not one to read into memory.
MAX_HEADER_BYTES = 100_000_000
# safetensors dtypes (little-endian) that NumPy has. Floats of other widths are converted to
# float32 (a copy); the rest (such as BERT's int64 position ids) are mapped as they are.
_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4",
           "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_weight: F32
    qkv_bias: F32
    attention_out_weight: F32
    attention_out_bias: F32
    attention_norm: tuple[F32, F32]
    inner_weight: F32
    inner_bias: F32
    outer_weight: F32
    outer_bias: F32
    output_norm: tuple[F32, F32]


def is_supported(folder: Path) -> bool:
    """Whether `folder` is a sentence-transformers BERT model this encoder can run."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        pooling = _pooling_mode(folder)
    except (OSError, ValueError):
        return False
    return (config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and pooling in {"mean", "cls"}
            and (folder / "model.safetensors").is_file()
            and (folder / "tokenizer.json").is_file())


def _pooling_mode(folder: Path) -> str:
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(
            k not in {"Transformer", "Pooling", "Normalize"} for k in kinds):
        return "unsupported"  # dense layers and the like are sentence-transformers' job
    pooling_path = next(m.get("path", "") for m in modules if m.get("type", "").endswith("Pooling"))
    config = json.loads((folder / pooling_path / "config.json").read_text(encoding="utf-8"))
    modes = [k.removeprefix("pooling_mode_").removesuffix("_token").removesuffix("_tokens")
             for k, v in config.items() if k.startswith("pooling_mode_") and v]
    return modes[0] if len(modes) == 1 else "unsupported"


class BertEncoder:
    """L2-normalised sentence vectors from a BERT model folder; safe to share across threads
    (it holds only read-only arrays and a tokenizer whose encode calls are independent)."""

    def __init__(self, folder: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingUnavailable(
                "tokenizers is not installed (see docs/development.md to install)",
                model=str(folder)) from exc
        if not is_supported(folder):
            raise EmbeddingUnavailable("not a BERT model with mean or CLS pooling",
                                       model=str(folder))
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            self._pooling = _pooling_mode(folder)
            self._tokenizer: Any = Tokenizer.from_file(str(folder / "tokenizer.json"))
            weights = {k.removeprefix("bert."): v for k, v in
                       map_safetensors(folder / "model.safetensors").items()}
            self._vocab = frozenset(self._tokenizer.get_vocab())
        except Exception as exc:  # a corrupt file raises whatever its parser raises
            raise EmbeddingUnavailable(f"cannot load the model: {exc}", model=str(folder)) from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(_max_length(folder, config))
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._heads = int(config["num_attention_heads"])
        try:
            self._load(weights, int(config["num_hidden_layers"]))
        except KeyError as exc:
            raise EmbeddingUnavailable(f"the weights lack {exc}", model=str(folder)) from exc
        self._threads = max(len(os.sched_getaffinity(0)), 1)
        self._name = folder.name

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> F32:
        return self.encode(texts)

    def _load(self, weights: dict[str, Any], layers: int) -> None:
        def w(name: str) -> F32:
            array: F32 = weights[name]
            return array

        def linear(prefix: str) -> tuple[F32, F32]:
            # (out, in) as stored; `.T` is a view that BLAS reads transposed, not a copy.
            return w(prefix + ".weight").T, w(prefix + ".bias")

        def norm(prefix: str) -> tuple[F32, F32]:
            return w(prefix + ".weight"), w(prefix + ".bias")

        self._word = w("embeddings.word_embeddings.weight")
        self._position = w("embeddings.position_embeddings.weight")
        self._token_type = w("embeddings.token_type_embeddings.weight")
        self._embedding_norm = norm("embeddings.LayerNorm")
        self._layers: list[_Layer] = []
        for i in range(layers):
            p = f"encoder.layer.{i}."
            qkv = [linear(p + f"attention.self.{n}") for n in ("query", "key", "value")]
            # One product for query, key and value: a private copy of 1.7 MB per layer,
            # shared with gunicorn's workers like everything loaded before they fork.
            self._layers.append(_Layer(
                np.ascontiguousarray(np.concatenate([m for m, _ in qkv], axis=1)),
                np.concatenate([b for _, b in qkv]),
                *linear(p + "attention.output.dense"),
                norm(p + "attention.output.LayerNorm"),
                *linear(p + "intermediate.dense"),
                *linear(p + "output.dense"),
                norm(p + "output.LayerNorm")))

    def knows(self, word: str) -> bool:
        return word in self._vocab

    def encode(self, texts: Sequence[str]) -> F32:
        """One row per text, L2-normalised; the same as sentence-transformers' `encode`
        with `normalize_embeddings=True`."""
        if not texts:
            return np.zeros((0, self._word.shape[1]), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [[texts[i] for i in order[s:s + BATCH_SIZE]]
                   for s in range(0, len(order), BATCH_SIZE)]
        if len(texts) <= SMALL_BATCH or self._threads == 1:
            parts = [self._forward(b) for b in batches]
        else:
            # NumPy releases the GIL in matrix products: one batch per core, each on the
            # single BLAS thread bot/__init__ asks for, keeps every core busy without the
            # spinning of a multi-threaded BLAS.
            with ThreadPoolExecutor(self._threads, thread_name_prefix="encoder") as pool:
                parts = list(pool.map(self._forward, batches))
        out = np.empty((len(texts), self._word.shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        return out

    def _forward(self, texts: Sequence[str]) -> F32:
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros((len(texts), width), dtype=np.float32)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = e.ids
            types[row, :len(e.ids)] = e.type_ids
            mask[row, :len(e.ids)] = 1
        batch, hidden = len(texts), self._word.shape[1]
        # Rows are tokens (batch * width, hidden) so that every dense layer is one matrix
        # product; NumPy would loop over the batch for a 3-D operand.
        x = (self._word[ids] + self._position[:width][None] + self._token_type[types])
        x = self._layer_norm(x.reshape(batch * width, hidden), self._embedding_norm)
        bias = ((1 - mask) * _MASKED)[:, None, None, :]
        for layer in self._layers:
            x = self._block(x, bias, layer, batch)
        tokens = x.reshape(batch, width, hidden)
        if self._pooling == "cls":
            pooled = tokens[:, 0]
        else:
            pooled = (tokens * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: F32 = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return vectors

    def _block(self, x: F32, bias: F32, layer: _Layer, batch: int) -> F32:
        rows, hidden = x.shape
        width, heads = rows // batch, self._heads
        size = hidden // heads
        qkv = x @ layer.qkv_weight
        qkv += layer.qkv_bias
        q, k, v = (qkv[:, i * hidden:(i + 1) * hidden].reshape(batch, width, heads, size)
                   .transpose(0, 2, 1, 3) for i in range(3))
        scores = q @ k.transpose(0, 1, 3, 2)
        scores *= np.float32(1 / math.sqrt(size))
        scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(rows, hidden)
        attended = context @ layer.attention_out_weight
        attended += layer.attention_out_bias
        attended += x
        x = self._layer_norm(attended, layer.attention_norm)
        inner = x @ layer.inner_weight
        inner += layer.inner_bias
        out = _gelu(inner) @ layer.outer_weight
        out += layer.outer_bias
        out += x
        return self._layer_norm(out, layer.output_norm)

    def _layer_norm(self, x: F32, norm: tuple[F32, F32]) -> F32:
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        variance = (centred * centred).mean(axis=-1, keepdims=True)
        out: F32 = centred / np.sqrt(variance + np.float32(self._eps)) * norm[0] + norm[1]
        return out


def map_safetensors(path: Path) -> dict[str, NDArray[Any]]:
    """The tensors of a `.safetensors` file as read-only arrays mapped from it: views of the
    mapping (no copy), but for floats other than float32, which are converted to it.

    The format is an 8-byte little-endian header length, a JSON header giving each
    tensor's dtype, shape and byte range, then the bytes. The `safetensors` package reads
    tensors into memory (`load_file`, `safe_open`), which is what mapping avoids.
    """
    with path.open("rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        if not 0 < size <= MAX_HEADER_BYTES:
            raise ValueError(f"implausible header length {size}")
        header = json.loads(fh.read(size))
    # A plain ndarray view of the mapping (np.memmap's subclass would follow every result).
    data = np.asarray(np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size))
    tensors: dict[str, NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{name}: unsupported dtype {info['dtype']}")
        start, end = (int(x) for x in info["data_offsets"])
        if not 0 <= start <= end <= len(data):
            raise ValueError(f"{name}: bytes {start}..{end} lie outside the file")
        array = data[start:end].view(np.dtype(dtype)).reshape(info["shape"])
        floats = array.dtype.kind == "f" and array.dtype != np.float32
        tensors[name] = array.astype(np.float32) if floats else array
    return tensors


def _max_length(folder: Path, config: dict[str, Any]) -> int:
    limit = int(config.get("max_position_embeddings", 512))
    try:
        st = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return min(int(st.get("max_seq_length", limit)), limit)
    except (OSError, ValueError):
        return limit


# Rows per GELU pass: its two dozen element-wise steps run over a block that stays in the
# CPU cache (2.5 times faster than whole-matrix passes, measured on a batch of 64 texts).
GELU_ROWS = 64


def _gelu(x: F32) -> F32:
    out = np.empty_like(x)
    for start in range(0, len(x), GELU_ROWS):
        out[start:start + GELU_ROWS] = _gelu_block(x[start:start + GELU_ROWS])
    return out


def _gelu_block(x: F32) -> F32:
    """BERT's exact GELU, x·Φ(x), with erf from Abramowitz & Stegun 7.1.26 (error
    < 1.5e-7, float32's own rounding at these magnitudes): NumPy has no erf, and SciPy
    would be a large dependency for one function."""
    z = np.abs(x)
    z *= np.float32(1 / math.sqrt(2))
    t = z * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / √2); so 1 + erf(x / √2) is 2 - poly for x ≥ 0, poly below
    out = np.where(x >= 0, 2 - poly, poly)
    out *= x
    out *= np.float32(0.5)
    return out
