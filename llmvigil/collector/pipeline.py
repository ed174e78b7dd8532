"""The flush thread's pipeline: record -> row -> tokens -> cost -> redaction -> truncation -> Arrow.

Each step is a plain function of a row (a dict with the ``spans`` columns)
and the pipeline's settings, easy to test alone and to reorder. Tokens and
cost are computed before redaction and truncation so they describe what the
model really saw.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from llmvigil.collector import extract, tracer
from llmvigil.collector.pricing import PriceBook, estimate_tokens
from llmvigil.collector.redact import make_redactor
from llmvigil.collector.spool import RAW_KEY
from llmvigil.config import CollectorSettings
from llmvigil.storage import bulk
from llmvigil.storage.schema import SPAN_ARROW_SCHEMA, SPAN_JSON_COLUMNS

log = logging.getLogger("llmvigil.collector")

#: The Arrow schema of a batch the collector writes (the store stamps ``ingested_at``).
BATCH_SCHEMA = SPAN_ARROW_SCHEMA.remove(SPAN_ARROW_SCHEMA.get_field_index("ingested_at"))
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
        "metadata": {"llmvigil_error": f"details not recorded: {_problem(problem)}"},
    }
    clean_fields(row)
    return row


def _utc_or_now(clock_ns: int) -> datetime:
    try:
        return _utc(tracer.wall_time_ns(clock_ns))
    except (OverflowError, ValueError, OSError):  # a replaced clock far outside datetime's range
        return datetime.now(UTC).replace(tzinfo=None)


def _problem(exc: BaseException) -> str:
    name = type(exc).__name__
    try:
        return extract.clean_text(f"{name}: {exc}"[:500])
    except Exception:
        return name


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
    label = dict(zip(labels, redactor.many(labels, pseudonyms=True), strict=True))
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
        dropped.setdefault(row, []).append(f"{field.name} ({_problem(exc)})")
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
                log.warning("llmvigil: span details not recorded (%s)", _problem(exc))
                try:
                    row = fallback_row(record, exc)
                except Exception as again:  # not a record of our hot path: say so, go on
                    log.error("llmvigil: a span was lost, its record is unreadable (%s)", again)
                    continue
            rows.append(row)
        return rows

    def table(self, rows: Sequence[Row]) -> pa.Table:
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
