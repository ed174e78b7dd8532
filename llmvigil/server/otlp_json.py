"""OTLP/JSON straight into store rows, with no protobuf message in between.

Protobuf's JSON mapping (``json_format.ParseDict``) costs about 250 µs a span;
reading the parsed JSON directly costs about what reading the protobuf encoding
does. This reader takes the form OTLP/JSON exporters send: the fields' JSON
names, ids in hex, 64-bit integers as numbers or decimal strings, enums as
numbers or names, and checks each value it meets as protobuf would (the fields a
row leaves out too, so a body protobuf refuses is not taken here). Anything
else (a field by its proto name, an id in base64, a double spelt ``"NaN"``, a
value of another type, links, fields newer than this reader) raises
:class:`NotPlain`, and the caller reads the body through protobuf's mapping
instead, which gives the same rows, or its error.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from llmvigil.server.otlp_rows import GENAI_READ, INDEXED, app_of, row


class NotPlain(Exception):
    """The body uses a form this reader leaves to protobuf's JSON mapping."""


def _json_names(message: Any) -> frozenset[str]:
    return frozenset(field.json_name for field in message.DESCRIPTOR.fields)


_REQUEST = _json_names(trace_service_pb2.ExportTraceServiceRequest)
_RESOURCE_SPANS = _json_names(trace_pb2.ResourceSpans)
_RESOURCE = frozenset(("attributes", "droppedAttributesCount"))  # entityRefs: not plain
_SCOPE_SPANS = _json_names(trace_pb2.ScopeSpans)
_SCOPE = _json_names(common_pb2.InstrumentationScope)
_SPAN = _json_names(trace_pb2.Span)
_EVENT = _json_names(trace_pb2.Span.Event)
_STATUS = _json_names(trace_pb2.Status)
_KEY_VALUE = frozenset(("key", "value"))  # keyStrindex: not plain
_VALUES = frozenset(("values",))
_STATUS_CODES = dict(trace_pb2.Status.StatusCode.items())
_SPAN_KINDS = frozenset(trace_pb2.Span.SpanKind.keys())
assert _RESOURCE <= _json_names(resource_pb2.Resource) and _KEY_VALUE <= _json_names(
    common_pb2.KeyValue
)

_INTEGER = re.compile(r"-?[0-9]+\Z")


def _integer(value: Any, low: int, high: int) -> int:
    """An integer field's value (a JSON number, or a decimal string for 64-bit ones)."""
    if type(value) is str and _INTEGER.match(value):
        value = int(value)
    if type(value) is not int or not low <= value < high:
        raise NotPlain
    return value


def _fixed64(value: Any) -> int:
    return _integer(value, 0, 2**64)


def _uint32(value: Any) -> int:
    return _integer(value, 0, 2**32)


def _enum(value: Any, names: Any) -> None:
    if type(value) is str:
        if value not in names:
            raise NotPlain
    else:
        _integer(value, -(2**31), 2**31)


def _string(value: Any) -> str:
    if type(value) is not str:
        raise NotPlain
    return value


def _list(value: Any) -> list:
    if type(value) is not list:
        raise NotPlain
    return value


def _message(value: Any, fields: frozenset[str]) -> dict[str, Any]:
    if type(value) is not dict or not value.keys() <= fields:
        raise NotPlain
    return value


def _id(value: Any) -> bytes:
    if type(value) is not str:
        raise NotPlain
    try:
        return bytes.fromhex(value)
    except ValueError:  # base64, as some senders send: protobuf's mapping reads it
        raise NotPlain from None


#: Arrays and maps nested deeper are left to protobuf's mapping, which refuses nesting past
#: its depth limit (100 messages: 47 arrays in an attribute of a span, 31 maps).
_MAX_NESTING = 20


def _value(value: Any, depth: int = 0) -> Any:
    """An ``AnyValue`` as the protobuf reader gives it (:func:`.otlp._value`)."""
    if type(value) is not dict:
        raise NotPlain
    if not value:
        return None
    if len(value) != 1:
        raise NotPlain
    ((kind, given),) = value.items()
    if kind == "stringValue":
        return _string(given)
    if kind == "intValue":
        return _integer(given, -(2**63), 2**63)
    if kind == "boolValue":
        if type(given) is not bool:
            raise NotPlain
        return given
    if kind == "doubleValue":
        if type(given) is float:
            return given
        if type(given) is int and -(2**53) <= given <= 2**53:
            return float(given)
        raise NotPlain
    if kind in ("arrayValue", "kvlistValue") and depth >= _MAX_NESTING:
        raise NotPlain
    if kind == "arrayValue":
        return [_value(v, depth + 1) for v in _list(_message(given, _VALUES).get("values", []))]
    if kind == "kvlistValue":
        return _attributes(_message(given, _VALUES).get("values", []), depth + 1)
    raise NotPlain  # bytes (protobuf's mapping normalises their base64), string indexes


def _pair(kv: Any) -> tuple[str, Any]:
    kv = _message(kv, _KEY_VALUE)
    return _string(kv.get("key", "")), kv.get("value", {})


def _attributes(pairs: Any, depth: int = 0) -> dict[str, Any]:
    out = {}
    for kv in _list(pairs):
        key, value = _pair(kv)
        out[key] = _value(value, depth)
    return out


def _span_attributes(pairs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the ``gen_ai.*`` attributes read, the others), as :func:`.otlp._span_attributes`."""
    genai: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for kv in _list(pairs):
        key, value = _pair(kv)
        if key.startswith("gen_ai."):
            if key not in GENAI_READ and not key.startswith(INDEXED):
                _value(value)  # not read, but checked as protobuf's mapping checks it
                continue
            genai[key] = _value(value)
        else:
            kept[key] = _value(value)
    return genai, kept


def _event(event: Any) -> tuple[str, dict[str, Any]]:
    event = _message(event, _EVENT)
    if "timeUnixNano" in event:
        _fixed64(event["timeUnixNano"])
    if "droppedAttributesCount" in event:
        _uint32(event["droppedAttributesCount"])
    return _string(event.get("name", "")), _attributes(event.get("attributes", []))


def _read_event(event: tuple[str, dict[str, Any]]) -> tuple[str, Any]:
    name, attributes = event
    return name, lambda: attributes


def _status(status: Any) -> tuple[int, str]:
    status = _message(status, _STATUS)
    code = status.get("code", 0)
    if type(code) is str:
        if code not in _STATUS_CODES:
            raise NotPlain
        code = _STATUS_CODES[code]
    else:
        code = _integer(code, -(2**31), 2**31)
    return code, _string(status.get("message", ""))


def _check_unread(span: dict[str, Any]) -> None:
    """The span's fields a row leaves out, checked as protobuf's mapping checks them."""
    if "traceState" in span:
        _string(span["traceState"])
    if "flags" in span:
        _integer(span["flags"], 0, 2**32)
    if "kind" in span:
        _enum(span["kind"], _SPAN_KINDS)
    for field in ("droppedAttributesCount", "droppedEventsCount", "droppedLinksCount"):
        if field in span:
            _uint32(span[field])
    if _list(span.get("links", [])):
        raise NotPlain  # links carry ids of their own: left to protobuf's mapping


def _row(span: Any, app: str, environment: str) -> tuple[bytes, dict[str, Any] | ValueError]:
    """(the span's id, its row or why it is refused); :class:`NotPlain` for a form left to
    protobuf's mapping."""
    span = _message(span, _SPAN)
    ids = (_id(span.get("spanId", "")), _id(span.get("traceId", "")))
    ids += (_id(span.get("parentSpanId", "")),)
    name = _string(span.get("name", ""))
    times = (_fixed64(span.get("startTimeUnixNano", 0)), _fixed64(span.get("endTimeUnixNano", 0)))
    status = _status(span["status"]) if "status" in span else (0, "")
    attributes = _span_attributes(span.get("attributes", []))
    events = [_event(event) for event in _list(span.get("events", []))]
    _check_unread(span)
    try:
        return ids[0], row(
            ids, name, times, status, attributes, events, _read_event, app, environment
        )
    except ValueError as exc:
        return ids[0], exc


def _check_scope(scope_spans: dict[str, Any]) -> None:
    if "schemaUrl" in scope_spans:
        _string(scope_spans["schemaUrl"])
    if "scope" in scope_spans:
        scope = _message(scope_spans["scope"], _SCOPE)
        for field in ("name", "version"):
            if field in scope:
                _string(scope[field])
        _attributes(scope.get("attributes", []))
        if "droppedAttributesCount" in scope:
            _uint32(scope["droppedAttributesCount"])


def _resource(resource_spans: dict[str, Any]) -> tuple[str, str]:
    if "schemaUrl" in resource_spans:
        _string(resource_spans["schemaUrl"])
    resource = _message(resource_spans.get("resource", {}), _RESOURCE)
    if "droppedAttributesCount" in resource:
        _uint32(resource["droppedAttributesCount"])
    return app_of(_attributes(resource.get("attributes", [])))


def rows_of(data: Any) -> tuple[list[dict[str, Any]], list[str], int]:
    """(rows, problems, spans) of a parsed OTLP/JSON export, as :func:`.otlp.rows_of` gives
    them; :class:`NotPlain` when the body is to be read through protobuf's mapping."""
    request = _message(data, _REQUEST)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    index = 0
    for resource_spans in _list(request.get("resourceSpans", [])):
        resource_spans = _message(resource_spans, _RESOURCE_SPANS)
        app, environment = _resource(resource_spans)
        for scope_spans in _list(resource_spans.get("scopeSpans", [])):
            scope_spans = _message(scope_spans, _SCOPE_SPANS)
            _check_scope(scope_spans)
            for span in _list(scope_spans.get("spans", [])):
                span_id, made = _row(span, app, environment)
                if isinstance(made, ValueError):
                    problems.append(f"span {index} ({span_id.hex()}): {made}")
                else:
                    rows.append(made)
                index += 1
    return rows, problems, index
