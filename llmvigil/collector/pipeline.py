"""The flush thread's pipeline: record -> row -> tokens -> cost -> redaction -> truncation -> Arrow.

Each step is a plain function of a row (a dict with the ``spans`` columns)
and the pipeline's settings, easy to test alone and to reorder. Tokens and
cost are computed before redaction and truncation so they describe what the
model really saw.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from llmvigil.collector import extract, tracer
from llmvigil.collector.batch import BATCH_SCHEMA, to_table
from llmvigil.collector.pricing import PriceBook, estimate_tokens
from llmvigil.collector.redact import make_redactor
from llmvigil.collector.spool import RAW_KEY
from llmvigil.config import CollectorSettings
from llmvigil.storage.schema import SPAN_JSON_COLUMNS

log = logging.getLogger("llmvigil.collector")

TEXT_FIELDS = ("input_text", "output_text", "reference", "error_message")

Row = dict[str, Any]
Step = Callable[[Row, "Pipeline"], None]

span_id = tracer.span_id


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
    try:
        items = list(itertools.islice(value, 1_000))  # a generator is read once, never forever
    except Exception:
        return [extract.to_text(value) or ""]
    return [_passage(item) for item in items]


def _passage(item: Any) -> str:
    try:
        text = item if isinstance(item, str) else None
        for key in ("page_content", "text", "content"):
            if text is None:
                found = item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
                text = found if isinstance(found, str) else None
    except Exception:  # an object whose attributes fail to read: its text form instead
        text = None
    return extract.clean_text(text) if text is not None else extract.to_text(item) or ""


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
        if source is None:
            continue
        try:
            metadata.update(source)
        except Exception:  # not a mapping: kept whole rather than lost
            metadata["metadata"] = source
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
            # Plain dicts and lists (pydantic messages, dataclasses...), so every text in them
            # reaches redaction and truncation.
            metadata["messages"] = extract._plain(messages, 0, set(), [1_000_000])
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
    model = _given(extras.get("model"), spec.model)
    if model is None:
        model = extract.model_of(items[0] if items else None) if items else extract.model_of(result)

    context = extras.get("context")
    if context is None and spec.context_arg:
        context = arguments.get(spec.context_arg)
    reference = extras.get("reference")
    if reference is None and spec.reference_arg:
        reference = arguments.get(spec.reference_arg)

    status = "error" if error is not None else "ok"
    row = {
        "span_id": span_id(n),
        "trace_id": _given(ctx.get("trace_id"), span_id(frame[tracer.F_TRACE])),
        "parent_id": None if parent is None else span_id(parent[tracer.F_N]),
        "name": spec.name,
        "kind": spec.kind,
        "app": _given(spec.app, settings.app),
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
        "tags": [*spec.tags, *ctx.get("tags", ()), *extras.get("tags", ())],
        "metadata": metadata,
        "truncated": False,
    }
    clean_fields(row)
    return row


#: The string columns build_row fills with values as given (the others come from to_text).
_GIVEN_TEXT_COLUMNS = tuple(
    f.name
    for f in BATCH_SCHEMA
    if f.type == pa.string() and f.name not in TEXT_FIELDS and f.name not in SPAN_JSON_COLUMNS
)


def clean_fields(row: Row) -> None:
    """Make every string column of ``row`` a clean text (:func:`~.extract.text_of`), tags too.

    Ids, names, models, users and settings arrive as the caller gave them: a
    lone surrogate, a NUL, bytes, a number, an object. The long texts are
    made by :func:`~.extract.to_text`, which cleans the same way. Steps then
    see plain strings (pricing reads the model), and :meth:`Pipeline.table`
    checks again what the steps produced.
    """
    for name in _GIVEN_TEXT_COLUMNS:
        value = row.get(name)
        if value is not None:
            row[name] = extract.text_of(value)
    tags = row.get("tags")
    if tags:
        row["tags"] = [extract.text_of(t) or "" for t in tags]


def _given(value: Any, default: Any) -> Any:
    """``value`` unless it is None or empty text (never asks an odd object for its truth)."""
    return default if value is None or (isinstance(value, str) and not value) else value


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__} with an unprintable message>"


def _utf8_size(text: str | None) -> int:
    return len(text.encode("utf-8")) if text else 0


def fallback_row(record: tuple, problem: Exception) -> Row:
    """A minimal row for a record whose details could not be read, so the call is still counted.

    Reads only what the hot path itself made (numbers, times, the spec); never raises.
    """
    _, n, parent, frame, t0, t1 = record[:6]
    spec = tracer.spec_of(record)
    tracer.take_extras(n)
    try:
        ctx_trace = (record[tracer.CTX] or {}).get("trace_id")
    except Exception:
        ctx_trace = None
    row = {
        "span_id": span_id(n),
        "trace_id": _given(ctx_trace, span_id(frame[tracer.F_TRACE])),
        "parent_id": None if parent is None else span_id(parent[tracer.F_N]),
        "name": _given(getattr(spec, "name", None), "unknown"),
        "kind": _given(getattr(spec, "kind", None), "other"),
        "start_time": _utc_or_now(t0),
        "end_time": _utc_or_now(t1),
        "latency_ms": (t1 - t0) / 1e6,
        "status": "error" if record[tracer.ERROR] is not None else "ok",
        "tokens_estimated": False,
        "bytes_in": 0,
        "bytes_out": 0,
        "truncated": False,
        "metadata": {"llmvigil_error": f"details not recorded: {extract.problem_text(problem)}"},
    }
    clean_fields(row)
    return row


def _utc_or_now(clock_ns: int) -> datetime:
    try:
        return _utc(tracer.wall_time_ns(clock_ns))
    except (OverflowError, ValueError, OSError):  # a replaced clock far outside datetime's range
        return datetime.now(UTC).replace(tzinfo=None)


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


def _map_strings(
    value: Any, change: Callable[[str], str], key: Callable[[str], str] | None = None
) -> Any:
    """``value`` with ``change`` applied to every string inside its dicts and lists
    (and ``key``, when given, to their keys)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        if key is None:
            return {k: _map_strings(v, change) for k, v in value.items()}
        return {
            key(k) if isinstance(k, str) else k: _map_strings(v, change, key)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_map_strings(v, change, key) for v in value]
    return value


def _strings_in(value: Any, texts: list[str], keys: list[str]) -> None:
    """Collect the strings inside ``value``'s dicts and lists: values in ``texts``, keys in
    ``keys``."""
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str):
                keys.append(k)
            _strings_in(v, texts, keys)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings_in(v, texts, keys)


#: Columns that say whose span it is: redacted to a pseudonym that stays distinct per person.
IDENTIFIER_FIELDS = ("user_id", "session_id")


def redact(row: Row, pipeline: Pipeline) -> None:
    """Replace PII in everything a span stores: its texts and passages, the captured
    conversation, user and session ids, tags, and metadata keys and values.

    Texts get placeholders (``[EMAIL]``); ids, tags and metadata keys get pseudonyms
    (``[EMAIL:3f9a1c2b7d]``, see :meth:`~.redact.Redactor.pseudonym`), so spans of
    one user still group together and two users stay two. All the texts of a row
    are redacted in one pass (:meth:`~.redact.Redactor.many`).
    """
    redactor = pipeline.redactor
    if redactor is None:
        return
    fields = [f for f in TEXT_FIELDS if row.get(f)]
    ids = [f for f in IDENTIFIER_FIELDS if row.get(f)]
    texts = [row[f] for f in fields] + list(row.get("context") or ())
    labels = [row[f] for f in ids] + list(row.get("tags") or ())
    metadata = None
    if row.get("metadata"):
        # Plain values first: a pydantic model or a dataclass in metadata holds texts too.
        metadata = extract._plain(row["metadata"], 0, set(), [1_000_000])
        _strings_in(metadata, texts, labels)
    texts, labels = list(dict.fromkeys(texts)), list(dict.fromkeys(labels))
    text = dict(zip(texts, redactor.many(texts), strict=True))
    label = dict(zip(labels, redactor.many(labels, pseudonyms=True), strict=True)) if labels else {}
    for field in fields:
        row[field] = text[row[field]]
    if row.get("context"):
        row["context"] = [text[p] for p in row["context"]]
    for field in ids:
        row[field] = label[row[field]]
    if row.get("tags"):
        row["tags"] = [label[t] for t in row["tags"]]
    if metadata is not None:
        row["metadata"] = _map_strings(metadata, text.__getitem__, label.__getitem__)


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
        self.redactor = make_redactor(
            settings.redact_patterns, pii=settings.redact_pii, ip=settings.redact_ip
        )
        self.failures = 0

    def rows(self, records: Sequence[tuple], steps: Sequence[Step] | None = None) -> list[Row]:
        """One row per record, through ``steps`` (default: the pipeline's); a record that
        cannot be read becomes a minimal row, never lost."""
        rows = []
        for record in records:
            try:
                row = build_row(record, self.settings)
                for step in self.steps if steps is None else steps:
                    step(row, self)
            except Exception as exc:
                self.failures += 1
                log.warning("llmvigil: span details not recorded (%s)", extract.problem_text(exc))
                try:
                    row = fallback_row(record, exc)
                except Exception as again:  # not a record of our hot path: say so, go on
                    log.error("llmvigil: a span was lost, its record is unreadable (%s)", again)
                    continue
            rows.append(row)
        return rows

    def table(self, rows: Sequence[Row]) -> pa.Table:
        """Rows as an Arrow batch (:func:`.batch.to_table`)."""
        return to_table(rows)

    def __call__(self, records: Sequence[tuple]) -> pa.Table:
        return self.table(self.rows(records))

    def rows_until(
        self, records: Sequence[tuple], late: Callable[[], bool], chunk: int = 100
    ) -> tuple[list[Row], Sequence[tuple]]:
        """:meth:`rows` for the records processed before ``late()`` turns true, and the rest.

        A batch taken just before the process starts to exit can take longer
        than the exit's deadline allows; what is left of it is spilled raw.
        """
        rows: list[Row] = []
        for start in range(0, len(records), chunk):
            if late():
                return rows, records[start:]
            rows += self.rows(records[start : start + chunk])
        return rows, ()

    def raw(self, records: Sequence[tuple]) -> pa.Table:
        """Records as rows before the steps, marked raw with this pipeline's settings.

        The exit path's batch: building rows is cheap, the steps (redaction
        first) are not, so a raw segment carries what the store's owner needs
        to run them later (:func:`finish_raw`).
        """
        rows = self.rows(records, steps=())
        recipe = {
            "collector": self.settings.model_dump(mode="json"),
            "prices": self.prices.overrides(),
        }
        table = self.table(rows)
        return table.replace_schema_metadata({RAW_KEY: json.dumps(recipe)})


def finish_raw(table: pa.Table) -> pa.Table:
    """Run the pipeline's steps over a raw batch (:meth:`Pipeline.raw`), with its own settings."""
    recipe: dict[str, Any] = {}
    try:
        recipe = json.loads((table.schema.metadata or {})[RAW_KEY])
        settings = CollectorSettings.model_validate(recipe["collector"])
    except Exception as exc:  # a damaged recipe: the defaults still redact
        log.warning("llmvigil: a raw segment's settings are unreadable (%s); using defaults", exc)
        settings = CollectorSettings()
    prices = PriceBook({m: tuple(p) for m, p in (recipe.get("prices") or {}).items()})
    pipeline = Pipeline(settings, prices)
    rows = table.replace_schema_metadata(None).to_pylist()
    for row in rows:
        for column in SPAN_JSON_COLUMNS:
            if isinstance(row.get(column), str):
                try:
                    row[column] = json.loads(row[column])
                except ValueError:
                    row[column] = None
        if row.get("metadata") is None:
            row["metadata"] = {}
        for step in pipeline.steps:
            try:
                step(row, pipeline)
            except Exception as exc:
                log.warning("llmvigil: step %s failed on a raw span: %s", step.__name__, exc)
    return pipeline.table(rows)
