"""OpenTelemetry traces (OTLP/HTTP, protobuf or JSON) as llmvigil spans.

How a span becomes a row (the GenAI semantic conventions, the kinds, the app and
environment) is :mod:`.otlp_rows`; this module reads the protobuf encoding, and
:mod:`.otlp_json` the JSON one straight into the same values. A JSON body the fast
reader does not take as it is (another spelling of a field, a value of another
form) is read through protobuf's own JSON mapping instead, which gives the same rows
or the error protobuf gives.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from llmvigil.server import otlp_json
from llmvigil.server.otlp_rows import GENAI_READ, INDEXED, app_of, row

#: OTLP/JSON ids are hex; protobuf's JSON mapping expects base64 for bytes fields.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def decode(body: bytes, content_type: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """The request in ``body``; ``ValueError`` naming what could not be read."""
    if content_type.startswith("application/json"):
        return _decode_json(_json_of(body))
    if content_type.startswith("application/x-protobuf") or not content_type:
        request = trace_service_pb2.ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as exc:  # protobuf's DecodeError
            raise ValueError(f"the body is not an OTLP protobuf trace export: {exc}") from None
        return request
    raise ValueError(
        f"Content-Type {content_type!r}: send application/x-protobuf or application/json"
    )


def _json_of(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None


def _decode_json(data: Any) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    _hex_ids_to_base64(data)
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ValueError(f"the body is not an OTLP trace export: {exc}") from None
    return request


def rows_of(body: bytes, content_type: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """(the store rows of the export in ``body``, why each span left out was refused, how many
    spans it held): OTLP's partial success. Raises ``ValueError`` when the body cannot be read
    at all."""
    if content_type.startswith("application/json"):
        data = _json_of(body)
        try:
            return otlp_json.rows_of(data)
        except otlp_json.NotPlain:  # read through protobuf's mapping: its rows, or its error
            return _rows(_spans(_decode_json(data)))
    return _rows(_spans(decode(body, content_type)))


def _rows(spans) -> tuple[list[dict[str, Any]], list[str], int]:
    rows, problems, index = [], [], 0
    for span, app, environment in spans:
        try:
            rows.append(_row(span, app, environment))
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


def _span_attributes(pairs) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the ``gen_ai.*`` attributes read, the others): unread values are never converted,
    as reading a value out of its protobuf wrapper is most of the cost of a span."""
    genai: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for kv in pairs:
        key = kv.key
        if key in GENAI_READ:
            into = genai
        elif key.startswith("gen_ai."):
            if not key.startswith(INDEXED):
                continue
            into = genai
        else:
            into = kept
        value = kv.value
        kind = value.WhichOneof("value")
        into[key] = getattr(value, kind) if kind in _SCALARS else _value(value)
    return genai, kept


def _spans(request: trace_service_pb2.ExportTraceServiceRequest):
    """(span, app, environment) for each span of ``request``, in order."""
    for resource_spans in request.resource_spans:
        app, environment = app_of(_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield span, app, environment


def _read_event(event) -> tuple[str, Any]:
    return event.name, lambda: _attributes(event.attributes)


def _row(span, app: str, environment: str) -> dict[str, Any]:
    status = span.status
    return row(
        (span.span_id, span.trace_id, span.parent_span_id),
        span.name,
        (span.start_time_unix_nano, span.end_time_unix_nano),
        (status.code, status.message),
        _span_attributes(span.attributes),
        span.events,
        _read_event,
        app,
        environment,
    )
