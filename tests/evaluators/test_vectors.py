"""Shared sentence vectors: the ONNX Runtime and torch backends give the same unit vectors."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

import numpy as np
import pytest

from llmvigil.errors import EvaluatorError
from llmvigil.evaluators import vectors
from llmvigil.evaluators.vectors import (
    DIMENSIONS,
    LAYER_DIMENSIONS,
    LAYERS,
    TextVectors,
    default_model_path,
)

SENTENCES = [
    "How do I update my billing address?",
    "Go to Settings, open Billing, and edit the address field, then save.",
    "The museum's dinosaur wing reopens next spring after renovation.",
    "x",
    "Café crème, naïve résumé — accents and dashes.",
    " ".join(["A long passage that goes past the 256-token window of the model."] * 40),
]


def needs_onnx() -> None:
    """Skip without ONNX Runtime and onnx; found without importing them (onnx's native
    bindings would otherwise share this process's shutdown with DuckDB's)."""
    for name in ("onnxruntime", "onnx"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed")


@contextlib.contextmanager
def passes_of(model) -> Iterator[list[list[str]]]:
    """The texts of each pass ``model.encode`` makes inside the block, one list a pass."""
    calls: list[list[str]] = []
    original = model.encode

    def counting(texts, **kwargs):
        calls.append(list(texts))
        return original(texts, **kwargs)

    model.encode = counting
    try:
        yield calls
    finally:
        model.encode = original


def test_unknown_backend_is_refused():
    with pytest.raises(EvaluatorError, match="unknown"):
        TextVectors(backend="tensorflow")


def test_backend_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(vectors.BACKEND_ENV, "torch")
    assert TextVectors().requested_backend == "torch"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(vectors.CACHE_ENV, str(tmp_path))
    assert vectors.cache_dir() == tmp_path
    assert vectors._onnx_file(default_model_path()).is_relative_to(tmp_path)


def test_missing_model_folder_is_an_evaluator_error(tmp_path):
    with pytest.raises(EvaluatorError, match="not found"):
        TextVectors(model_path=tmp_path / "nowhere", backend="torch").encode(["hello"])


def test_empty_input_needs_no_model():
    out = TextVectors(model_path=None).encode([])
    assert out.shape == (0, DIMENSIONS)
    assert out.dtype == np.float32


@pytest.fixture(scope="module")
def torch_vectors() -> TextVectors:
    return TextVectors(backend="torch")


@pytest.fixture(scope="module")
def onnx_vectors() -> TextVectors:
    needs_onnx()
    return TextVectors(backend="onnx")


@pytest.mark.slow
def test_torch_rows_are_unit_float32(torch_vectors):
    out = torch_vectors.encode(SENTENCES)
    assert out.shape == (len(SENTENCES), DIMENSIONS)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert torch_vectors.backend == "torch"


@pytest.mark.slow
def test_onnx_matches_torch(onnx_vectors, torch_vectors):
    a = torch_vectors.encode(SENTENCES)
    b = onnx_vectors.encode(SENTENCES)
    assert onnx_vectors.backend == "onnx"
    assert float(np.abs(a - b).max()) < 1e-4
    assert float((a * b).sum(axis=1).min()) > 0.9999


@pytest.mark.slow
def test_torch_backend_matches_sentence_transformers(torch_vectors):
    """Our torch module computes what the library computes for this model."""
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(default_model_path()), device="cpu")
    expected = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(torch_vectors.encode(SENTENCES), expected, atol=1e-5)


@pytest.mark.slow
def test_layer_profiles_hold_one_unit_block_per_layer(torch_vectors):
    profiles = torch_vectors.encode_layers(SENTENCES)
    assert profiles.shape == (len(SENTENCES), LAYER_DIMENSIONS) and profiles.dtype == np.float32
    blocks = profiles.reshape(len(SENTENCES), LAYERS, DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=2), 1.0, atol=1e-5)
    # The last layer's block is the sentence vector; earlier layers differ from it.
    np.testing.assert_allclose(blocks[:, -1], torch_vectors.encode(SENTENCES), atol=1e-6)
    assert float(np.abs(blocks[:, 0] - blocks[:, -1]).max()) > 0.1


@pytest.mark.slow
def test_onnx_layer_profiles_match_torch(onnx_vectors, torch_vectors):
    a = torch_vectors.encode_layers(SENTENCES)
    b = onnx_vectors.encode_layers(SENTENCES)
    assert float(np.abs(a - b).max()) < 1e-4


@pytest.mark.slow
def test_onnx_batches_and_single_texts_agree(onnx_vectors):
    together = onnx_vectors.model.encode(SENTENCES, batch_size=64)
    alone = [onnx_vectors.model.encode([s]) for s in SENTENCES]
    for i in range(2):  # sentence vectors, then layer profiles
        np.testing.assert_allclose(together[i], np.concatenate([a[i] for a in alone]), atol=1e-5)


@pytest.mark.slow
def test_similar_texts_are_closer_than_unrelated(onnx_vectors):
    q, good, off = onnx_vectors.encode(SENTENCES[:3])
    assert float(q @ good) > float(q @ off) + 0.3


@pytest.mark.slow
def test_repeated_texts_are_embedded_once(torch_vectors):
    with passes_of(torch_vectors.model) as calls:
        fresh = ["a sentence never seen before 7f3a", "another unseen sentence 7f3a"]
        first = torch_vectors.encode(fresh + fresh)
        second = torch_vectors.encode(list(reversed(fresh)))
    assert calls == [fresh]
    np.testing.assert_array_equal(first[0], second[1])
    np.testing.assert_array_equal(first[0], first[2])


@pytest.mark.slow
def test_layer_profiles_come_from_the_same_pass_and_a_bounded_cache(torch_vectors):
    vectors = TextVectors(backend="torch", layer_cache_size=2)
    vectors._model = torch_vectors.model  # share the loaded model, count its passes
    vectors._backend = "torch"
    with passes_of(vectors._model) as calls:
        texts = ["first unseen text 91c2", "second unseen text 91c2", "third unseen text 91c2"]
        vectors.encode(texts[:2])
        profiles = vectors.encode_layers(texts[:2])  # read from the pass above
        vectors.encode_layers(texts[2:])  # evicts the oldest profile
        again = vectors.encode_layers(texts[:1])  # so this one is embedded again
    assert calls == [texts[:2], texts[2:], texts[:1]]
    np.testing.assert_allclose(again[0], profiles[0], atol=1e-5)  # other batch, other padding
    assert len(vectors._layer_cache) == 2 and len(vectors._cache) == 3


@pytest.mark.slow
def test_export_is_written_checked_and_reused(monkeypatch, tmp_path):
    needs_onnx()
    monkeypatch.setenv(vectors.CACHE_ENV, str(tmp_path))
    target = vectors._onnx_file(default_model_path())
    assert not target.exists()
    first = TextVectors(backend="onnx")
    a = first.encode(SENTENCES[:2])
    assert target.exists() and target.stat().st_size > 10_000_000
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]  # no temporary left
    mtime = target.stat().st_mtime_ns
    b = TextVectors(backend="onnx").encode(SENTENCES[:2])
    assert target.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_auto_falls_back_to_torch_without_onnxruntime(monkeypatch):
    def unavailable(path):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(vectors, "_load_onnx", unavailable)
    tv = TextVectors(backend="auto")
    assert tv.encode(["hello"]).shape == (1, DIMENSIONS)
    assert tv.backend == "torch"


def test_onnx_requested_but_unavailable_is_an_error(monkeypatch):
    def unavailable(path):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(vectors, "_load_onnx", unavailable)
    with pytest.raises(EvaluatorError, match="ONNX embedding backend unavailable"):
        TextVectors(backend="onnx").encode(["hello"])


@pytest.mark.slow
def test_token_states_match_between_runtimes_and_come_from_the_same_pass(
    onnx_vectors, torch_vectors
):
    a = torch_vectors.encode_tokens(SENTENCES)
    b = onnx_vectors.encode_tokens(SENTENCES)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.ids, y.ids)
        assert x.vectors.dtype == np.float16 and x.vectors.shape == (len(x.ids), DIMENSIONS)
        assert float(np.abs(x.vectors.astype(np.float32) - y.vectors).max()) < 2e-3
        np.testing.assert_allclose(
            np.linalg.norm(x.vectors.astype(np.float32), axis=1), 1, atol=2e-3
        )
    # [CLS] and [SEP] are left out: "x" is one word piece.
    assert len(torch_vectors.encode_tokens(["x"])[0].ids) == 1
    with passes_of(onnx_vectors.model) as calls:
        fresh = "a text no test embedded before 5d1e"
        onnx_vectors.encode([fresh])
        onnx_vectors.encode_tokens([fresh])  # kept from the pass above
    assert calls == [[fresh]]
