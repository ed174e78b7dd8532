"""The span objects ``POST /v1/spans`` takes, checked at the edge, and their store rows.

Only ``span_id``, ``start_time`` and ``name`` are required; the other fields are
the columns of ``spans`` (times ISO 8601; naive times are UTC). Unknown fields
and values of the wrong type are refused with the span's index and the field,
before anything is stored. What a span leaves out is filled as the collector
fills it: ``trace_id`` the span's own id, ``end_time`` from ``latency_ms`` (or
the start), ``latency_ms`` from the two times, ``kind`` ``llm``, ``status``
``error`` when an error is named, byte sizes from the texts, and the cost from
the model's price when tokens are given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmvigil.collector.pricing import PriceBook
from llmvigil.collector.tracer import KINDS

_PRICES = PriceBook()


class SpanIn(BaseModel):
    """One span as an app sends it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    span_id: str = Field(min_length=1, max_length=64)
    start_time: datetime
    name: str = Field(min_length=1)
    trace_id: str | None = Field(None, min_length=1, max_length=64)
    parent_id: str | None = Field(None, max_length=64)
    kind: Literal[KINDS] = "llm"  # type: ignore[valid-type]
    app: str = "default"
    environment: str = "production"
    model: str | None = None
    prompt_version: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    end_time: datetime | None = None
    latency_ms: float | None = Field(None, ge=0)
    ttft_ms: float | None = Field(None, ge=0)
    status: Literal["ok", "error"] | None = None
    error_type: str | None = None
    error_message: str | None = None
    input_text: str | None = None
    output_text: str | None = None
    context: list[str] | None = None
    reference: str | None = None
    prompt_tokens: int | None = Field(None, ge=0)
    completion_tokens: int | None = Field(None, ge=0)
    total_tokens: int | None = Field(None, ge=0)
    tokens_estimated: bool = False
    cost_usd: float | None = Field(None, ge=0)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    truncated: bool = False


class SpanBatch(BaseModel):
    """The body of ``POST /v1/spans``."""

    model_config = ConfigDict(extra="forbid")

    spans: list[SpanIn]


#: What a span that names only its required fields holds (the mutable defaults are copied
#: per span by :func:`blank_row`).
_DEFAULTS: dict[str, Any] = {
    name: field.get_default(call_default_factory=True)
    for name, field in SpanIn.model_fields.items()
    if not field.is_required()
}


def blank_row() -> dict[str, Any]:
    """A span's fields at their defaults, for a source whose values are typed already
    (OpenTelemetry's protobuf) to fill in and pass to :func:`fill` without validation."""
    return {**_DEFAULTS, "tags": [], "metadata": {}}


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def to_row(span: SpanIn) -> dict[str, Any]:
    """The store row of ``span``, with what it left out filled in."""
    # Its fields are plain values (no nested models): their dict is what model_dump() would
    # copy out, at a fraction of the cost per span.
    return fill(dict(span.__dict__))


def fill(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` (a :class:`SpanIn`'s fields, valid) as a store row, with what it left out
    filled in: the same dict, changed in place."""
    start = _naive(row["start_time"])
    end = row["end_time"]
    end = _naive(end) if end is not None else None
    latency = row["latency_ms"]
    if end is None:
        end = start + timedelta(milliseconds=latency or 0.0)
    if latency is None:
        latency = max(0.0, (end - start).total_seconds() * 1000)
    prompt, completion = row["prompt_tokens"], row["completion_tokens"]
    total = row["total_tokens"]
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    cost = row["cost_usd"]
    if cost is None and total is not None:
        cost = _PRICES.cost(row["model"], prompt, completion)
    failed = row["error_type"] is not None or row["error_message"] is not None
    row.update(
        trace_id=row["trace_id"] or row["span_id"],
        start_time=start,
        end_time=end,
        latency_ms=latency,
        status=row["status"] or ("error" if failed else "ok"),
        total_tokens=total,
        cost_usd=cost,
        bytes_in=len((row["input_text"] or "").encode("utf-8", "surrogatepass")),
        bytes_out=len((row["output_text"] or "").encode("utf-8", "surrogatepass")),
    )
    return row
