"""Rows to an Arrow batch: every row kept, whatever its values.

The last step of the flush thread's pipeline (:mod:`.pipeline`): each column
converted whole, a column Arrow refuses rebuilt value by value, a value that
still fails left out of its row (and the row marked), ids longer than the
store holds shortened stably.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from llmvigil.collector import extract
from llmvigil.storage import bulk
from llmvigil.storage.schema import SPAN_ARROW_SCHEMA, SPAN_JSON_COLUMNS

#: The Arrow schema of a batch the collector writes (the store stamps ``ingested_at``).
BATCH_SCHEMA = SPAN_ARROW_SCHEMA.remove(SPAN_ARROW_SCHEMA.get_field_index("ingested_at"))

Row = dict[str, Any]


def to_table(rows: Sequence[Row]) -> pa.Table:
    """Rows as an Arrow table of :data:`BATCH_SCHEMA` (JSON columns as text); every row kept.

    Each column is converted whole; only a column Arrow refuses is rebuilt
    value by value (see :func:`_column`). A value that still cannot be
    converted is left out of its row, which says so in
    ``metadata["llmvigil_error"]``. Ids longer than the store holds get
    their :func:`short_id`.
    """
    dropped: dict[int, list[str]] = {}
    columns: dict[str, pa.Array] = {}
    for field in BATCH_SCHEMA:
        if field.name == "metadata":  # last: it records what the other columns dropped
            continue
        values = [row.get(field.name) for row in rows]
        if field.name in SPAN_JSON_COLUMNS:
            values = [_json_column(v) for v in values]
        array = _column(values, field, dropped)
        if field.name in bulk.TEXT_LIMITS:
            array = _fit_ids(array, field.name, bulk.TEXT_LIMITS[field.name], rows)
        columns[field.name] = array
    for i, fields in dropped.items():
        metadata = _metadata_of(rows[i])
        note = "fields not recorded: " + ", ".join(fields)
        earlier = metadata.get("llmvigil_error")
        metadata["llmvigil_error"] = f"{earlier}; {note}" if earlier else note
    field = BATCH_SCHEMA.field("metadata")
    values = [_json_column(row.get("metadata")) for row in rows]
    columns["metadata"] = _column(values, field, {})
    return pa.Table.from_pydict(
        {f.name: columns[f.name] for f in BATCH_SCHEMA}, schema=BATCH_SCHEMA
    )


def _json_column(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list) and not value:  # most spans: no tags, no metadata
        return "{}" if isinstance(value, dict) else "[]"
    return extract.to_json(value)


#: What a required column holds when its value could not be converted.
_REQUIRED_DEFAULTS: dict[str, Any] = {"name": "unknown", "kind": "other", "status": "ok"}
#: Original ids longer than this are kept cut in ``metadata["llmvigil_ids"]``.
_MAX_KEPT_ID = 4_096


def _column(values: list[Any], field: pa.Field, dropped: dict[int, list[str]]) -> pa.Array:
    """``values`` as an Arrow array of ``field``'s type: converted whole when possible.

    A column Arrow refuses (a lone surrogate, bytes, a number too large) or
    whose text holds a NUL is converted again value by value, text through
    :func:`~.extract.text_of`; a value that still fails is left out, and
    its row and field noted in ``dropped``.
    """
    text = field.type == pa.string()
    try:
        array = pa.array(values, type=field.type)
    except Exception:
        array = None
    if array is not None and text and bulk.holds_nul(array):
        array = None
    if array is None:
        clean = extract.text_of if text else None
        kept = [clean(v) for v in values] if clean else list(values)
        try:
            array = pa.array(kept, type=field.type)
        except Exception:
            fitting = [_fitting(v, field, i, dropped) for i, v in enumerate(kept)]
            array = pa.array(fitting, type=field.type)
    if not field.nullable and array.null_count:
        default = _REQUIRED_DEFAULTS.get(field.name, _default_of(field.type))
        filled = array.to_pylist()
        for i, value in enumerate(filled):
            if value is None:
                filled[i] = default
                dropped.setdefault(i, []).append(f"{field.name} (no value)")
        array = pa.array(filled, type=field.type)
    return array


def _fitting(value: Any, field: pa.Field, row: int, dropped: dict[int, list[str]]) -> Any:
    try:
        pa.array([value], type=field.type)
        return value
    except Exception as exc:
        dropped.setdefault(row, []).append(f"{field.name} ({extract.problem_text(exc)})")
        return None


def _default_of(arrow_type: pa.DataType) -> Any:
    if pa.types.is_timestamp(arrow_type):
        return datetime.now(UTC).replace(tzinfo=None)
    if pa.types.is_boolean(arrow_type):
        return False
    if pa.types.is_string(arrow_type):
        return "unknown"
    return 0


def _fit_ids(array: pa.Array, name: str, limit: int, rows: Sequence[Row]) -> pa.Array:
    """``array`` with each text over ``limit`` characters in its short form (:func:`short_id`),
    the original kept in the row's ``metadata["llmvigil_ids"]``."""
    lengths = pc.utf8_length(array)
    if (pc.max(lengths).as_py() or 0) <= limit:
        return array
    values = array.to_pylist()
    for i, value in enumerate(values):
        if value is not None and len(value) > limit:
            values[i] = short_id(value, limit)
            _metadata_of(rows[i]).setdefault("llmvigil_ids", {})[name] = value[:_MAX_KEPT_ID]
    return pa.array(values, type=array.type)


def short_id(text: str, limit: int = 64) -> str:
    """A stable form of ``text`` in at most ``limit`` characters: its start and a hash of it all.

    The same long id (a request id given to ``context(trace_id=...)``) always
    gives the same short one, so the spans of one trace stay together.

    Example::

        short_id("request-" + "0" * 100)  # 'request-000000000000000000000~9f2c...' (64 chars)
    """
    if len(text) <= limit:
        return text
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
    keep = limit - len(digest) - 1
    return f"{text[:keep]}~{digest}" if keep > 0 else digest[:limit]


def _metadata_of(row: Row) -> dict[str, Any]:
    metadata = row.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {} if metadata is None else {"metadata": metadata}
        row["metadata"] = metadata
    return metadata
