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


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def to_row(span: SpanIn) -> dict[str, Any]:
    """The store row of ``span``, with what it left out filled in."""
    # Its fields are plain values (no nested models): their dict is what model_dump() would
    # copy out, at a fraction of the cost per span.
    row = dict(span.__dict__)
    start = _naive(span.start_time)
    end = _naive(span.end_time) if span.end_time is not None else None
    latency = span.latency_ms
    if end is None:
        end = start + timedelta(milliseconds=latency or 0.0)
    if latency is None:
        latency = max(0.0, (end - start).total_seconds() * 1000)
    total = span.total_tokens
    if total is None and (span.prompt_tokens is not None or span.completion_tokens is not None):
        total = (span.prompt_tokens or 0) + (span.completion_tokens or 0)
    cost = span.cost_usd
    if cost is None and total is not None:
        cost = _PRICES.cost(span.model, span.prompt_tokens, span.completion_tokens)
    failed = span.error_type is not None or span.error_message is not None
    row.update(
        trace_id=span.trace_id or span.span_id,
        start_time=start,
        end_time=end,
        latency_ms=latency,
        status=span.status or ("error" if failed else "ok"),
        total_tokens=total,
        cost_usd=cost,
        context=span.context,
        bytes_in=len((span.input_text or "").encode("utf-8", "surrogatepass")),
        bytes_out=len((span.output_text or "").encode("utf-8", "surrogatepass")),
    )
    return row
