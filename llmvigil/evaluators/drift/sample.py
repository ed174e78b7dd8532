"""The spans whose sentence vectors drift compares, and those vectors, made once and kept.

Each window's sample is its ``[drift] embedding_sample`` spans with the lowest
md5 of their span id: the same spans every time the window is read, on
DuckDB and PostgreSQL alike, and spread evenly over the window. The
evaluators keep the vectors they computed anyway for the spans whose md5
falls in the lowest ``[drift] vector_share`` (:func:`keeps_vector`), which is
the start of that same order, so a busy window's sample is already stored;
whatever a sample still lacks is embedded here once and stored, so no run
embeds a window twice.

Vectors are stored as 384 int8 values, each vector scaled so its largest
component is 127: 768 bytes a span for prompt and response together, and a
cosine to the float32 vector above 0.999, far inside what separates a drift
from none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from llmvigil.storage import schema

#: The model and encoding of stored vectors; a different model's vectors are never mixed in.
VECTOR_MODEL = "all-MiniLM-L6-v2/int8"
FIELDS = ("input", "output")


def sample_key(span_id: str) -> float:
    """Where ``span_id`` falls in the sample order, in [0, 1): its md5's first 32 bits."""
    return int(hashlib.md5(span_id.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) / 2**32


def keeps_vector(span_id: str, share: float) -> bool:
    """Whether the evaluators keep ``span_id``'s vectors at ``[drift] vector_share``."""
    return share >= 1.0 or sample_key(span_id) < share


def pack(vector: np.ndarray) -> bytes:
    """A float vector as int8 bytes (scale dropped: drift compares directions)."""
    peak = float(np.abs(vector).max())
    if peak == 0.0:
        return bytes(len(vector))
    return np.round(vector * (127.0 / peak)).astype(np.int8).tobytes()


def unpack(rows: Sequence[bytes]) -> np.ndarray:
    """Stored vectors as L2-normalised float32 rows."""
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    matrix = np.frombuffer(b"".join(rows), dtype=np.int8).reshape(len(rows), -1)
    matrix = matrix.astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


@dataclass
class SampleVectors:
    """A window's sampled vectors of one field, with the span ids and how they were got."""

    span_ids: list[str]
    vectors: np.ndarray
    stored: int = 0
    embedded: int = 0


def sample_ids(store, filters: Sequence[sa.ColumnElement[bool]], size: int) -> list[str]:
    """The window's ``size`` spans with the lowest md5 of their id (see the module docstring),
    in the order they started.

    The order is the spans', not the hash's: Evidently's classifier test splits its rows
    by position, so rows in md5 order gave the same spans a different statistic whenever
    their ids differed (the demo's, whose id prefix is new in each process, flagged a quiet
    window in one run of three).
    """
    s = schema.spans
    chosen = (
        sa.select(s.c.span_id, s.c.start_time)
        .where(*filters)
        .order_by(sa.func.md5(s.c.span_id))
        .limit(size)
        .subquery()
    )
    query = sa.select(chosen.c.span_id).order_by(chosen.c.start_time, chosen.c.span_id)
    return store.fetch_arrow(query)["span_id"].to_pylist()


def span_texts(store, span_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    """The (prompt, response) the evaluators read of each span, placeholders filled in."""
    from llmvigil.evaluators.runner import readable

    s = schema.spans
    texts: dict[str, tuple[str | None, str | None]] = {}
    ids = list(span_ids)
    for start in range(0, len(ids), 5_000):
        query = sa.select(s.c.span_id, s.c.input_text, s.c.output_text).where(
            s.c.span_id.in_(ids[start : start + 5_000])
        )
        table = store.fetch_arrow(query)
        for span_id, prompt, response in zip(
            *(table[c].to_pylist() for c in ("span_id", "input_text", "output_text")),
            strict=True,
        ):
            texts[span_id] = (readable(prompt), readable(response))
    return texts


def vectors_for(store, span_ids: Sequence[str], encoder) -> dict[str, SampleVectors]:
    """Each field's vectors for ``span_ids``: stored ones read, the rest embedded and stored.

    Spans with no text in a field (an error span has no response) have no vector in it.
    """
    stored = store.stored_vectors(span_ids)
    lacking = [
        i for i in span_ids if i not in stored or stored[i][0] is None or stored[i][1] is None
    ]
    fresh: dict[str, dict[str, bytes]] = {}
    embedded = dict.fromkeys(FIELDS, 0)
    if lacking:
        texts = span_texts(store, lacking)
        for position, field in enumerate(FIELDS):
            todo = [
                (i, texts[i][position])
                for i in lacking
                if i in texts
                and texts[i][position]
                and (i not in stored or stored[i][position] is None)
            ]
            if not todo:
                continue
            matrix = encoder.encode([t for _, t in todo])
            for (span_id, _), vector in zip(todo, matrix, strict=True):
                fresh.setdefault(span_id, {})[f"{field}_vector"] = pack(vector)
            embedded[field] = len(todo)
        store.write_vectors(
            [{"span_id": i, "model": VECTOR_MODEL, **halves} for i, halves in fresh.items()]
        )
    out: dict[str, SampleVectors] = {}
    for position, field in enumerate(FIELDS):
        ids: list[str] = []
        rows: list[bytes] = []
        for span_id in span_ids:
            value = stored.get(span_id, (None, None))[position] or fresh.get(span_id, {}).get(
                f"{field}_vector"
            )
            if value is not None:
                ids.append(span_id)
                rows.append(value)
        out[field] = SampleVectors(
            ids, unpack(rows), stored=len(rows) - embedded[field], embedded=embedded[field]
        )
    return out


def vector_rows(
    span_ids: Sequence[str],
    prompts: Sequence[np.ndarray | None],
    responses: Sequence[np.ndarray | None],
) -> list[Mapping[str, object]]:
    """Rows for ``Store.write_vectors`` from float vectors (None where a text had none)."""
    return [
        {
            "span_id": span_id,
            "model": VECTOR_MODEL,
            "input_vector": None if p is None else pack(p),
            "output_vector": None if r is None else pack(r),
        }
        for span_id, p, r in zip(span_ids, prompts, responses, strict=True)
        if p is not None or r is not None
    ]
