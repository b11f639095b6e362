"""The NumPy BERT encoder gives sentence-transformers' vectors, for the models it accepts."""

from __future__ import annotations

import json
import mmap
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.errors import EmbeddingUnavailable
from bot.matching.embeddings import load_embedder, model_location, open_model
from bot.matching.encoder import BertEncoder, is_supported, map_safetensors

TEXTS = [
    "I have to record interviews with customers",
    "mein Konto ist gesperrt",
    "laptop is 5 years old",
    "",
    "!!!",
    "😀 ✓ Größe <@U12345> <https://example.com|a link>",
    "vpn",
    "a very long message " * 120,  # beyond the model's 256 tokens: truncated like the reference
    *(f"printer number {i} on floor {i % 7} jams every morning" for i in range(70)),
]


@pytest.fixture(scope="module")
def bundled() -> Path:
    return Path(model_location())


@pytest.fixture(scope="module")
def reference(bundled: Path) -> object:
    pytest.importorskip("sentence_transformers",
                        reason="the reference: the `sentence-transformers` extra")
    from bot.matching.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(str(bundled))


def test_the_bundled_model_runs_on_numpy_not_torch(bundled: Path) -> None:
    assert is_supported(bundled)
    assert isinstance(open_model(str(bundled)), BertEncoder)
    assert isinstance(load_embedder(cache=False), BertEncoder)


def test_vectors_equal_sentence_transformers(bundled: Path, reference: object) -> None:
    ours = BertEncoder(bundled).embed(TEXTS)
    theirs = reference.embed(TEXTS)  # type: ignore[attr-defined]
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)


def test_a_question_alone_gets_the_vector_it_gets_in_a_batch(bundled: Path) -> None:
    encoder = BertEncoder(bundled)
    batch = encoder.embed(TEXTS)
    for i in (0, 3, 7):
        assert np.abs(encoder.embed([TEXTS[i]])[0] - batch[i]).max() < 1e-5


def test_threads_can_share_one_encoder(bundled: Path) -> None:
    encoder = BertEncoder(bundled)
    expected = encoder.embed(TEXTS[:8])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: encoder.embed([TEXTS[i % 8]])[0], range(32)))
    for i, vector in enumerate(results):
        assert np.abs(vector - expected[i % 8]).max() < 1e-5


def test_cls_pooling_follows_the_models_pooling_config(bundled: Path, reference: object,
                                                       tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from bot.matching.embeddings import SentenceTransformerEmbedder

    folder = tmp_path / "cls-model"
    shutil.copytree(bundled, folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config["pooling_mode_mean_tokens"] = False
    config["pooling_mode_cls_token"] = True
    pooling.write_text(json.dumps(config))
    ours = BertEncoder(folder).embed(TEXTS[:10])
    theirs = SentenceTransformerEmbedder(str(folder)).embed(TEXTS[:10])
    assert np.abs(ours - theirs).max() < 1e-5
    mean = reference.embed(TEXTS[:10])  # type: ignore[attr-defined]
    assert np.abs(ours - mean).max() > 1e-2  # the pooling really changed


def test_models_it_cannot_run_are_left_to_sentence_transformers(bundled: Path,
                                                               tmp_path: Path) -> None:
    assert not is_supported(tmp_path)  # empty folder
    other = tmp_path / "other"
    shutil.copytree(bundled, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "xlm-roberta"}))
    assert not is_supported(other)
    dense = tmp_path / "dense"
    shutil.copytree(bundled, dense)
    modules = json.loads((dense / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense",
                       "type": "sentence_transformers.models.Dense"})
    (dense / "modules.json").write_text(json.dumps(modules))
    assert not is_supported(dense)
    with pytest.raises(EmbeddingUnavailable, match="not a BERT model"):
        BertEncoder(dense)


def test_corrupt_weights_are_a_clear_error(bundled: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(bundled, folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(EmbeddingUnavailable, match="cannot load the model") as info:
        BertEncoder(folder)
    assert info.value.model == str(folder)


def test_weights_are_mapped_read_only_from_the_file_not_copied(bundled: Path) -> None:
    """Mapped pages are shared by every process using the model (gunicorn's workers)."""
    weights = map_safetensors(bundled / "model.safetensors")
    word = weights["embeddings.word_embeddings.weight"]
    assert word.dtype == np.float32 and word.shape == (30522, 384)
    assert not word.flags.writeable
    base = word
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    assert isinstance(base, mmap.mmap)


def _safetensors(header: dict[str, object], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def test_other_float_widths_are_converted_and_the_rest_mapped_as_they_are(
        tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    halves = np.array([1.5, -2.0], dtype="<f2").tobytes()
    ids = np.array([7, 8, 9], dtype="<i8").tobytes()
    path.write_bytes(_safetensors({
        "__metadata__": {"format": "pt"},
        "h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
        "ids": {"dtype": "I64", "shape": [3], "data_offsets": [4, 28]}}, halves + ids))
    tensors = map_safetensors(path)
    assert tensors["h"].dtype == np.float32 and tensors["h"].tolist() == [1.5, -2.0]
    assert tensors["ids"].tolist() == [7, 8, 9]


@pytest.mark.parametrize("header, data, message", [
    ({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0", "unsupported"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "outside"),
])
def test_malformed_tensor_files_are_refused(tmp_path: Path, header: dict[str, object],
                                            data: bytes, message: str) -> None:
    path = tmp_path / "t.safetensors"
    path.write_bytes(_safetensors(header, data))
    with pytest.raises(ValueError, match=message):
        map_safetensors(path)


def test_an_absurd_header_length_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="implausible header length"):
        map_safetensors(path)
