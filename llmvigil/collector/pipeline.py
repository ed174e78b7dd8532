"""The flush thread's pipeline: record -> row -> tokens -> cost -> redaction -> truncation -> Arrow.

Each step is a plain function of a row (a dict with the ``spans`` columns)
and the pipeline's settings, easy to test alone and to reorder. Tokens and
cost are computed before redaction and truncation so they describe what the
model really saw.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from llmvigil.collector import extract, tracer
from llmvigil.collector.pricing import PriceBook, estimate_tokens
from llmvigil.collector.redact import make_redactor
from llmvigil.config import CollectorSettings
from llmvigil.storage.schema import SPAN_ARROW_SCHEMA, SPAN_JSON_COLUMNS

log = logging.getLogger("llmvigil.collector")

#: The Arrow schema of a batch the collector writes (the store stamps ``ingested_at``).
BATCH_SCHEMA = SPAN_ARROW_SCHEMA.remove(SPAN_ARROW_SCHEMA.get_field_index("ingested_at"))
TEXT_FIELDS = ("input_text", "output_text", "reference", "error_message")

Row = dict[str, Any]
Step = Callable[[Row, "Pipeline"], None]

_prefix = os.urandom(8).hex()


def _new_prefix() -> None:
    global _prefix
    _prefix = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_prefix)


def span_id(number: int) -> str:
    """The 32-hex-digit id of this process's span ``number`` (unique across processes)."""
    return f"{_prefix}{number:016x}"


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC).replace(tzinfo=None)


def _passages(value: Any) -> list[str] | None:
    """Retrieved passages as a list of strings (LangChain documents and dicts included)."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        value = [value]
    if not isinstance(value, Sequence) and not hasattr(value, "__iter__"):
        value = [value]
    passages = []
    for item in list(value)[:1_000]:
        text = item if isinstance(item, str) else None
        for key in ("page_content", "text", "content"):
            if text is None:
                found = item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
                text = found if isinstance(found, str) else None
        passages.append(extract.clean_text(text) if text is not None else extract.to_text(item))
    return passages


def build_row(record: tuple, settings: CollectorSettings) -> Row:
    """The ``spans`` row of a raw record from the hot path (see :mod:`.tracer`)."""
    (_, n, parent, frame, t0, t1, ttft, args, kwargs, result, error, ctx, items) = record
    spec = tracer.spec_of(record)
    extras = tracer.take_extras(n)
    ctx = ctx or {}
    limit = settings.max_text_bytes
    capture_in = settings.capture_input if spec.capture_input is None else spec.capture_input
    capture_out = settings.capture_output if spec.capture_output is None else spec.capture_output

    if spec.func is not None and spec.signature is None:
        try:
            spec.signature = inspect.signature(spec.func)
            spec.positional_names = extract.plain_positional_names(spec.signature)
        except (TypeError, ValueError):
            spec.signature = False
    arguments = extract.bound_arguments(
        spec.signature or None, args or (), kwargs, spec.positional_names
    )

    metadata: dict[str, Any] = {}
    for source in (spec.metadata, ctx.get("metadata"), extras.get("metadata")):
        if source:
            metadata.update(source)
    input_text = None
    bytes_in = 0
    if capture_in:
        if "input" in extras:
            prompt = extras["input"]
        else:  # the passages and the reference are stored in their own columns
            asked = {
                k: v
                for k, v in arguments.items()
                if k != spec.context_arg and k != spec.reference_arg
            }
            prompt = extract.prompt_from_arguments(asked)
        input_text = extract.to_text(prompt, limit)
        messages = arguments.get("messages")
        if isinstance(messages, Sequence) and not isinstance(messages, str) and len(messages) > 1:
            metadata["messages"] = messages
            # The model read the whole conversation, not just the last question.
            bytes_in = sum(
                _utf8_size(extract.content_text(extract.get_field(m, "content"))) for m in messages
            )
        bytes_in = bytes_in or _utf8_size(input_text)
    output_text = None
    if capture_out:
        if "output" in extras:
            output_text = extract.to_text(extras["output"], limit)
        elif items is not None:
            output_text = extract.stream_text(items)
        elif error is None:
            output_text = extract.to_text(extract.output_text(result), limit)

    if "usage" in extras:
        usage = extract.usage_of({"usage": extras["usage"]})
    elif items is not None:
        usage = extract.stream_usage(items)
    else:
        usage = extract.usage_of(result)
    model = extras.get("model") or spec.model
    if model is None:
        model = extract.model_of(items[0] if items else None) if items else extract.model_of(result)

    context = extras.get("context")
    if context is None and spec.context_arg:
        context = arguments.get(spec.context_arg)
    reference = extras.get("reference")
    if reference is None and spec.reference_arg:
        reference = arguments.get(spec.reference_arg)

    status = "error" if error is not None else "ok"
    return {
        "span_id": span_id(n),
        "trace_id": ctx.get("trace_id") or span_id(frame[tracer.F_TRACE]),
        "parent_id": None if parent is None else span_id(parent[tracer.F_N]),
        "name": extract.clean_text(spec.name),
        "kind": spec.kind,
        "app": spec.app or settings.app,
        "environment": settings.environment,
        "model": model,
        "prompt_version": spec.prompt_version,
        "user_id": ctx.get("user_id"),
        "session_id": ctx.get("session_id"),
        "start_time": _utc(tracer.wall_time_ns(t0)),
        "end_time": _utc(tracer.wall_time_ns(t1)),
        "latency_ms": (t1 - t0) / 1e6,
        "ttft_ms": None if ttft is None else (ttft - t0) / 1e6,
        "status": status,
        "error_type": None if error is None else type(error).__qualname__,
        "error_message": None if error is None else extract.to_text(_message(error), limit),
        "input_text": input_text,
        "output_text": output_text,
        "context": _passages(context),
        "reference": extract.to_text(reference, limit),
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": usage[2],
        "tokens_estimated": False,
        "cost_usd": None,
        "bytes_in": bytes_in,
        "bytes_out": _utf8_size(output_text),
        "tags": [str(t) for t in (*spec.tags, *ctx.get("tags", ()), *extras.get("tags", ()))],
        "metadata": metadata,
        "truncated": False,
    }


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__} with an unprintable message>"


def _utf8_size(text: str | None) -> int:
    return len(text.encode("utf-8")) if text else 0


def fallback_row(record: tuple, problem: Exception) -> Row:
    """A minimal row for a record whose details could not be read, so the call is still counted."""
    _, n, parent, frame, t0, t1 = record[:6]
    spec = tracer.spec_of(record)
    tracer.take_extras(n)
    return {
        "span_id": span_id(n),
        "trace_id": span_id(frame[tracer.F_TRACE]),
        "parent_id": None if parent is None else span_id(parent[tracer.F_N]),
        "name": str(getattr(spec, "name", "unknown")),
        "kind": str(getattr(spec, "kind", "other")),
        "start_time": _utc(tracer.wall_time_ns(t0)),
        "end_time": _utc(tracer.wall_time_ns(t1)),
        "latency_ms": (t1 - t0) / 1e6,
        "status": "error" if record[tracer.ERROR] is not None else "ok",
        "tokens_estimated": False,
        "bytes_in": 0,
        "bytes_out": 0,
        "truncated": False,
        "metadata": {"llmvigil_error": f"details not recorded: {type(problem).__name__}"},
    }


# -- steps --------------------------------------------------------------------------


def count_tokens(row: Row, pipeline: Pipeline) -> None:
    """Estimate tokens of a model call whose successful response reported none; mark them.

    A failed call reported nothing and was not billed, and a chain, tool or
    retrieval span holds no tokens of its own (its model calls are its
    children): their tokens stay unknown, so totals do not count twice.
    """
    if row["status"] == "error" or row["kind"] != "llm":
        return
    if row.get("prompt_tokens") is None and row.get("completion_tokens") is None:
        row["prompt_tokens"] = estimate_tokens(row.get("input_text"))
        row["completion_tokens"] = estimate_tokens(row.get("output_text"))
        row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
        row["tokens_estimated"] = True


def price(row: Row, pipeline: Pipeline) -> None:
    """Cost in USD from the model's price, when the model and the tokens are known."""
    if row.get("prompt_tokens") is None and row.get("completion_tokens") is None:
        return
    row["cost_usd"] = pipeline.prices.cost(
        row.get("model"), row.get("prompt_tokens"), row.get("completion_tokens")
    )


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string inside its dicts and lists."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, change) for v in value]
    return value


def redact(row: Row, pipeline: Pipeline) -> None:
    """Replace PII in every stored text, the captured conversation included."""
    redactor = pipeline.redactor
    if redactor is None:
        return
    for field in TEXT_FIELDS:
        if row.get(field):
            row[field] = redactor(row[field])
    if row.get("context"):
        row["context"] = [redactor(p) for p in row["context"]]
    if "messages" in row["metadata"]:
        row["metadata"]["messages"] = _map_strings(row["metadata"]["messages"], redactor)


def truncate(row: Row, pipeline: Pipeline) -> None:
    """Cut texts longer than ``max_text_bytes`` (UTF-8 safe) and flag the row."""
    cap = pipeline.settings.max_text_bytes

    def cut(text: str) -> str:
        # Only a text of more than cap/4 characters can exceed cap bytes.
        if len(text) * 4 <= cap:
            return text
        raw = text.encode("utf-8")
        if len(raw) <= cap:
            return text
        row["truncated"] = True
        return raw[:cap].decode("utf-8", "ignore")

    for field in TEXT_FIELDS:
        if row.get(field):
            row[field] = cut(row[field])
    if row.get("context"):
        row["context"] = [cut(p) for p in row["context"]]
    if "messages" in row["metadata"]:
        row["metadata"]["messages"] = _map_strings(row["metadata"]["messages"], cut)


DEFAULT_STEPS: tuple[Step, ...] = (count_tokens, price, redact, truncate)


def _json_column(value: Any) -> str | None:
    if value is None:
        return None
    if not value and isinstance(value, dict | list):  # most spans: no tags, no metadata
        return "{}" if isinstance(value, dict) else "[]"
    return extract.to_json(value)


class Pipeline:
    """Turns raw records into an Arrow batch, running :data:`DEFAULT_STEPS` on each row."""

    def __init__(
        self,
        settings: CollectorSettings,
        prices: PriceBook | None = None,
        steps: Sequence[Step] = DEFAULT_STEPS,
    ) -> None:
        self.settings = settings
        self.prices = prices or PriceBook()
        self.steps = tuple(steps)
        self.redactor = make_redactor(settings.redact_patterns, pii=settings.redact_pii)
        self.failures = 0

    def rows(self, records: Sequence[tuple]) -> list[Row]:
        """One row per record; a record that cannot be read becomes a minimal row, never lost."""
        rows = []
        for record in records:
            try:
                row = build_row(record, self.settings)
                for step in self.steps:
                    step(row, self)
            except Exception as exc:
                self.failures += 1
                log.warning("llmvigil: span details not recorded (%s: %s)", type(exc).__name__, exc)
                try:
                    row = fallback_row(record, exc)
                except Exception:
                    continue
            rows.append(row)
        return rows

    def table(self, rows: Sequence[Row]) -> pa.Table:
        """Rows as an Arrow table of :data:`BATCH_SCHEMA` (JSON columns as text)."""
        columns = {}
        for field in BATCH_SCHEMA:
            values = [row.get(field.name) for row in rows]
            if field.name in SPAN_JSON_COLUMNS:
                values = [_json_column(v) for v in values]
            columns[field.name] = pa.array(values, type=field.type)
        return pa.Table.from_pydict(columns, schema=BATCH_SCHEMA)

    def __call__(self, records: Sequence[tuple]) -> pa.Table:
        return self.table(self.rows(records))
