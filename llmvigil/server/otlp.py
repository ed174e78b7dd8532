"""OpenTelemetry traces (OTLP/HTTP, protobuf or JSON) as llmvigil spans.

Spans that carry the GenAI semantic conventions become ``llm`` spans. They take:
- the model (``gen_ai.response.model``, else ``gen_ai.request.model``);
- the tokens (``gen_ai.usage.input_tokens`` / ``output_tokens``, or the older
  ``prompt_tokens`` / ``completion_tokens``);
- the prompt and the answer, from ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` (v1.37 on), or the older indexed
  ``gen_ai.prompt.N.content`` / ``gen_ai.completion.N.content`` attributes, or
  the older events (``gen_ai.content.prompt`` / ``gen_ai.content.completion``,
  ``gen_ai.user.message`` / ``gen_ai.choice``).

Other spans become ``embedding``, ``tool``, ``retrieval`` or ``chain`` spans
by their attributes. Trace and parent ids are kept as hex. The app is the
resource's ``service.name``, and the environment its
``deployment.environment(.name)``.
"""

from __future__ import annotations

import base64
import contextlib
from datetime import datetime, timedelta
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from llmvigil.server.spans_api import blank_row, fill

#: OTLP/JSON ids are hex; protobuf's JSON mapping expects base64 for bytes fields.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def decode(body: bytes, content_type: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """The request in ``body``; ``ValueError`` naming what could not be read."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    if content_type.startswith("application/json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the body is not JSON: {exc}") from None
        _hex_ids_to_base64(data)
        try:
            json_format.ParseDict(data, request, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise ValueError(f"the body is not an OTLP trace export: {exc}") from None
        return request
    if content_type.startswith("application/x-protobuf") or not content_type:
        try:
            request.ParseFromString(body)
        except Exception as exc:  # protobuf's DecodeError
            raise ValueError(f"the body is not an OTLP protobuf trace export: {exc}") from None
        return request
    raise ValueError(
        f"Content-Type {content_type!r}: send application/x-protobuf or application/json"
    )


def rows_of(body: bytes, content_type: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """(the store rows of the export in ``body``, why each span left out was refused, how many
    spans it held): OTLP's partial success. Raises ``ValueError`` when the body cannot be read
    at all."""
    rows, problems, index = [], [], 0
    for span, app, environment in _spans(decode(body, content_type)):
        try:
            rows.append(fill(_row(span, app, environment)))
        except ValueError as exc:
            problems.append(f"span {index} ({span.span_id.hex()}): {exc}")
        index += 1
    return rows, problems, index


def _hex_ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str) and value:
                with contextlib.suppress(ValueError):  # already base64, as some senders send
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def encode_response(rejected: int, message: str, content_type: str) -> tuple[bytes, str]:
    """The OTLP response (partial success when spans were rejected) in the request's encoding."""
    response = trace_service_pb2.ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if content_type.startswith("application/json"):
        return json_format.MessageToJson(response).encode(), "application/json"
    return response.SerializeToString(), "application/x-protobuf"


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value"))


def _attributes(pairs) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


#: The ``gen_ai.*`` attributes a span's row is made of; the others are neither kept nor read.
_GENAI_READ = frozenset(
    (
        "gen_ai.operation.name",
        "gen_ai.system",
        "gen_ai.provider.name",
        "gen_ai.tool.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
    )
)
_INDEXED = ("gen_ai.prompt.", "gen_ai.completion.")


def _span_attributes(pairs) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the ``gen_ai.*`` attributes read, the others): unread values are never converted,
    as reading a value out of its protobuf wrapper is most of the cost of a span."""
    genai: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for kv in pairs:
        key = kv.key
        if key.startswith("gen_ai."):
            if key not in _GENAI_READ and not key.startswith(_INDEXED):
                continue
            into = genai
        else:
            into = kept
        value = kv.value
        kind = value.WhichOneof("value")
        into[key] = getattr(value, kind) if kind in _SCALARS else _value(value)
    return genai, kept


def _text_of(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("content") or part.get("text")
                if isinstance(text, str):
                    texts.append(text)
        return "\n".join(texts) or None
    return None


def _messages(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except ValueError:
            return [{"role": "user", "content": raw}]
    if isinstance(raw, dict):
        raw = [raw]
    out = []
    for message in raw if isinstance(raw, list) else []:
        if isinstance(message, dict):
            text = _text_of(message.get("parts")) or _text_of(message.get("content"))
            out.append({"role": str(message.get("role", "user")), "content": text})
    return out


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``gen_ai.prompt.0.role`` / ``.content`` style attributes as messages, in order."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if key.startswith(prefix + "."):
            index, _, field = key[len(prefix) + 1 :].partition(".")
            if index.isdigit() and field in ("role", "content"):
                found.setdefault(int(index), {})[field] = value
    return [
        {"role": str(m.get("role", "user")), "content": m.get("content")}
        for _, m in sorted(found.items())
    ]


_EVENTS_READ = frozenset(
    (
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.choice",
    )
)


def _conversation(span, genai: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(input messages, output messages) in whichever convention the span uses."""
    given = _messages(genai.get("gen_ai.input.messages") or [])
    answer = _messages(genai.get("gen_ai.output.messages") or [])
    given = given or _indexed(genai, "gen_ai.prompt")
    answer = answer or _indexed(genai, "gen_ai.completion")
    for event in span.events:
        name = event.name
        if name not in _EVENTS_READ:
            continue
        fields = _attributes(event.attributes)
        if name == "gen_ai.content.prompt" and not given:
            given = _messages(fields.get("gen_ai.prompt") or [])
        elif name == "gen_ai.content.completion" and not answer:
            answer = _messages(fields.get("gen_ai.completion") or [])
        elif name in ("gen_ai.system.message", "gen_ai.user.message"):
            role = name.split(".")[1]
            given.append({"role": role, "content": _text_of(fields.get("content"))})
        elif name == "gen_ai.choice":
            message = fields.get("message")
            if isinstance(message, str):
                message = _messages(message)[0] if _messages(message) else None
            if isinstance(message, dict):
                answer.append({"role": "assistant", "content": _text_of(message.get("content"))})
    return given, answer


def _kind(name: str, genai: dict[str, Any], kept: dict[str, Any]) -> str:
    operation = str(genai.get("gen_ai.operation.name", ""))
    if operation == "embeddings":
        return "embedding"
    if operation == "execute_tool" or "gen_ai.tool.name" in genai or "tool.name" in kept:
        return "tool"
    if (
        operation
        or "gen_ai.system" in genai
        or "gen_ai.provider.name" in genai
        or "gen_ai.request.model" in genai
    ):
        return "llm"
    if "db.system" in kept or "retrieval.documents" in kept or "retriev" in name:
        return "retrieval"
    return "chain"


_EPOCH = datetime(1970, 1, 1)


def _time(nanos: int) -> datetime:
    # Naive UTC, as the store keeps it, rounded to its microseconds in integers (exact, where
    # nanos / 1e9 is not); a datetime, not its ISO text, which would be parsed back.
    return _EPOCH + timedelta(microseconds=(nanos + 500) // 1000)


def _spans(request: trace_service_pb2.ExportTraceServiceRequest):
    """(span, app, environment) for each span of ``request``, in order."""
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        app = str(resource.get("service.name") or "default")
        environment = str(
            resource.get("deployment.environment.name")
            or resource.get("deployment.environment")
            or "production"
        )
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield span, app, environment


def _check_ids(span_id: bytes, trace_id: bytes, parent_id: bytes) -> None:
    """``ValueError`` naming the id that cannot be stored (none empty, each at most 32 bytes,
    the column's 64 hex digits)."""
    if not span_id:
        raise ValueError("span_id is empty: every OTLP span needs its 8-byte span id")
    for field, raw in (("span_id", span_id), ("trace_id", trace_id), ("parent_span_id", parent_id)):
        if len(raw) > 32:
            raise ValueError(
                f"{field} is {len(raw)} bytes, over 32: send OTLP's 16-byte trace ids and "
                "8-byte span ids"
            )


def _tokens(genai: dict[str, Any], key: str, older: str) -> int | None:
    """The token count under ``key`` (else the ``older`` convention's key), or None."""
    if key not in genai:
        key = older
    value = genai.get(key)
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} is {value!r}: send a whole number of tokens") from None
    if count < 0:
        raise ValueError(f"{key} is {count}: a token count cannot be below 0")
    return count


def _row(span, app: str, environment: str) -> dict[str, Any]:
    """The span's fields (:class:`.spans_api.SpanIn`'s), not yet filled in. Protobuf types
    them already, so only what its types leave open is checked: the ids' lengths and the
    token counts (``ValueError`` naming the field)."""
    span_id, trace_id, parent_id = span.span_id, span.trace_id, span.parent_span_id
    if not span_id or len(span_id) > 32 or len(trace_id) > 32 or len(parent_id) > 32:
        _check_ids(span_id, trace_id, parent_id)
    genai, kept = _span_attributes(span.attributes)
    name = span.name
    kind = _kind(name, genai, kept)
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    row = blank_row()
    row["span_id"] = span_id.hex()
    row["trace_id"] = trace_id.hex() or None
    row["parent_id"] = parent_id.hex() or None
    row["name"] = name or "span"
    row["kind"] = kind
    row["app"] = app
    row["environment"] = environment
    row["start_time"] = _time(start)
    row["end_time"] = _time(end if end > start else start)
    status = span.status
    if status.code == 2:  # STATUS_CODE_ERROR
        row["status"] = "error"
        row["error_type"] = str(kept.get("error.type") or "error")
        row["error_message"] = status.message or None
    metadata: dict[str, Any] = {}
    if kind in ("llm", "embedding"):
        model = genai.get("gen_ai.response.model") or genai.get("gen_ai.request.model")
        row["model"] = str(model) if model else None
        row["prompt_tokens"] = _tokens(
            genai, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"
        )
        row["completion_tokens"] = _tokens(
            genai, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"
        )
        given, answer = _conversation(span, genai)
        users = [m["content"] for m in given if m["role"] == "user" and m["content"]]
        said = [m["content"] for m in answer if m["content"]]
        row["input_text"] = users[-1] if users else None
        row["output_text"] = "\n".join(said) or None
        if given:
            metadata["messages"] = given
    if kept:
        metadata["attributes"] = kept
    if metadata:
        # As JSON text, which the store takes as it is: orjson writes it several times faster
        # than the store's json.dumps on the writer thread, and protobuf's values (valid UTF-8,
        # 64-bit integers, string keys) are all it can write. NaN and infinities become null.
        row["metadata"] = orjson.dumps(metadata).decode()
    return row
