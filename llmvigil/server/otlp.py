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
import json
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

#: OTLP/JSON ids are hex; protobuf's JSON mapping expects base64 for bytes fields.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def decode(body: bytes, content_type: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """The request in ``body``; ``ValueError`` naming what could not be read."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError as exc:
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
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind) if kind else None


def _attributes(pairs) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _text_of(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            p.get("content") or p.get("text")
            for p in content
            if isinstance(p, dict) and isinstance(p.get("content") or p.get("text"), str)
        ]
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


def _conversation(span, attributes: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(input messages, output messages) in whichever convention the span uses."""
    given = _messages(attributes.get("gen_ai.input.messages") or [])
    answer = _messages(attributes.get("gen_ai.output.messages") or [])
    given = given or _indexed(attributes, "gen_ai.prompt")
    answer = answer or _indexed(attributes, "gen_ai.completion")
    for event in span.events:
        fields = _attributes(event.attributes)
        if event.name == "gen_ai.content.prompt" and not given:
            given = _messages(fields.get("gen_ai.prompt") or [])
        elif event.name == "gen_ai.content.completion" and not answer:
            answer = _messages(fields.get("gen_ai.completion") or [])
        elif event.name in ("gen_ai.system.message", "gen_ai.user.message"):
            role = event.name.split(".")[1]
            given.append({"role": role, "content": _text_of(fields.get("content"))})
        elif event.name == "gen_ai.choice":
            message = fields.get("message")
            if isinstance(message, str):
                message = _messages(message)[0] if _messages(message) else None
            if isinstance(message, dict):
                answer.append({"role": "assistant", "content": _text_of(message.get("content"))})
    return given, answer


def _kind(name: str, attributes: dict[str, Any]) -> str:
    operation = str(attributes.get("gen_ai.operation.name", ""))
    if operation == "embeddings":
        return "embedding"
    if operation == "execute_tool" or "gen_ai.tool.name" in attributes or "tool.name" in attributes:
        return "tool"
    if operation or any(
        k in attributes for k in ("gen_ai.system", "gen_ai.provider.name", "gen_ai.request.model")
    ):
        return "llm"
    if "db.system" in attributes or "retrieval.documents" in attributes or "retriev" in name:
        return "retrieval"
    return "chain"


def _time(nanos: int) -> datetime:
    # A datetime, not its ISO text: validation takes it as it is, where text is parsed back.
    return datetime.fromtimestamp(nanos / 1e9, UTC)


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """The request's spans as ``POST /v1/spans`` objects (:class:`.spans_api.SpanIn`)."""
    out = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        app = resource.get("service.name") or "default"
        environment = (
            resource.get("deployment.environment.name")
            or resource.get("deployment.environment")
            or "production"
        )
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(_span(span, str(app), str(environment)))
    return out


def _span(span, app: str, environment: str) -> dict[str, Any]:
    attributes = _attributes(span.attributes)
    kind = _kind(span.name, attributes)
    row: dict[str, Any] = {
        "span_id": span.span_id.hex(),
        "trace_id": span.trace_id.hex() or None,
        "parent_id": span.parent_span_id.hex() or None,
        "name": span.name or "span",
        "kind": kind,
        "app": app,
        "environment": environment,
        "start_time": _time(span.start_time_unix_nano),
        "end_time": _time(max(span.end_time_unix_nano, span.start_time_unix_nano)),
    }
    if span.status.code == 2:  # STATUS_CODE_ERROR
        row["status"] = "error"
        row["error_type"] = str(attributes.get("error.type") or "error")
        row["error_message"] = span.status.message or None
    if kind in ("llm", "embedding"):
        model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
        row["model"] = str(model) if model else None
        prompt = attributes.get(
            "gen_ai.usage.input_tokens", attributes.get("gen_ai.usage.prompt_tokens")
        )
        completion = attributes.get(
            "gen_ai.usage.output_tokens", attributes.get("gen_ai.usage.completion_tokens")
        )
        row["prompt_tokens"] = int(prompt) if prompt is not None else None
        row["completion_tokens"] = int(completion) if completion is not None else None
        given, answer = _conversation(span, attributes)
        users = [m["content"] for m in given if m["role"] == "user" and m["content"]]
        said = [m["content"] for m in answer if m["content"]]
        row["input_text"] = users[-1] if users else None
        row["output_text"] = "\n".join(said) or None
        row["metadata"] = {"messages": given} if given else {}
    kept = {k: v for k, v in attributes.items() if not k.startswith("gen_ai.")}
    if kept:
        row.setdefault("metadata", {})["attributes"] = kept
    return row
