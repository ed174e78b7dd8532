"""OTLP/JSON read straight into rows (llmvigil.server.otlp_json) gives the rows the protobuf
encoding of the same export gives; a form it leaves to protobuf's JSON mapping (proto field
names, base64 ids, a double spelt "NaN", links) is read that way, with the same result."""

from __future__ import annotations

import base64
import copy
import json

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from llmvigil.server import otlp_json
from llmvigil.server.otlp import rows_of

PROTOBUF, JSON = "application/x-protobuf", "application/json"
MESSAGES = json.dumps([
    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
    {"role": "user", "parts": [{"type": "text", "content": "How do I reset?"}]},
])  # fmt: skip


def _export(links: bool = False) -> ExportTraceServiceRequest:
    """Spans of every shape the readers tell apart, made by the real SDK."""
    spans = InMemorySpanExporter()
    resource = Resource.create({"service.name": "shop", "deployment.environment.name": "eu"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test", "1.2")
    with tracer.start_as_current_span("handle", attributes={"http.route": "/chat"}) as parent:
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5, "gen_ai.input.messages": MESSAGES,
                "gen_ai.output.messages": json.dumps({"role": "assistant", "content": "Use it."}),
                "gen_ai.request.temperature": 0.2, "gen_ai.response.finish_reasons": ("stop",),
                "server.port": 443, "retry.delays": (0.5, 1.5), "http.resend": True,
                "ratio": 2.0, "flags": (True, False), "counts": (1, 2**40),
            })  # fmt: skip
        with tracer.start_as_current_span("completion") as old:
            old.set_attributes({
                "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": "30", "gen_ai.usage.completion_tokens": 7,
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Old question?",
                "gen_ai.completion.0.content": "Old answer.",
            })  # fmt: skip
        with tracer.start_as_current_span("chat (events)") as evented:
            evented.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            evented.add_event("gen_ai.user.message", {"content": "Event question?"})
            evented.add_event("gen_ai.choice", {"message": json.dumps({"content": "Answer."})})
            evented.add_event("retry", {"attempt": 2})
        with tracer.start_as_current_span("bad tokens") as bad:
            bad.set_attributes({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": -3})
        with tracer.start_as_current_span("search docs") as search:
            search.set_attribute("db.system", "qdrant")
        linked = [Link(parent.get_span_context())] if links else []
        with tracer.start_as_current_span("lookup_order", links=linked) as tool:
            tool.set_attributes({"gen_ai.tool.name": "lookup_order", "error.type": "Timeout"})
            tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
    provider.shutdown()
    return encode_spans(spans.get_finished_spans())


def _as_json(request: ExportTraceServiceRequest) -> dict:
    """The export as OTLP/JSON: protobuf's JSON mapping with the ids in hex."""
    data = json_format.MessageToDict(request)

    def hex_ids(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId"):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hex_ids(value)
        elif isinstance(node, list):
            for item in node:
                hex_ids(item)

    hex_ids(data)
    return data


def _spans(data: dict) -> list[dict]:
    return [s for r in data["resourceSpans"] for ss in r["scopeSpans"] for s in ss["spans"]]


def test_plain_json_is_read_directly_into_the_rows_protobuf_gives() -> None:
    request = _export()
    expected = rows_of(request.SerializeToString(), PROTOBUF)
    data = _as_json(request)
    assert otlp_json.rows_of(copy.deepcopy(data)) == expected  # no fallback: read directly
    assert rows_of(orjson.dumps(data), JSON) == expected
    rows, problems, total = expected
    assert total == 7 and len(rows) == 6 and "input_tokens is -3" in problems[0]
    chat = next(r for r in rows if r["name"] == "chat gpt-4o-mini")
    assert chat["input_text"] == "How do I reset?" and chat["app"] == "shop"
    assert orjson.loads(chat["metadata"])["attributes"]["counts"] == [1, 2**40]


def test_numbers_where_the_mapping_writes_strings_give_the_same_rows() -> None:
    request = _export()
    expected = rows_of(request.SerializeToString(), PROTOBUF)
    data = _as_json(request)
    for span in _spans(data):  # some exporters send 64-bit integers and enums as numbers
        span["startTimeUnixNano"] = int(span["startTimeUnixNano"])
        span["kind"] = 3
        for kv in span.get("attributes", []):
            if "intValue" in kv["value"]:
                kv["value"]["intValue"] = int(kv["value"]["intValue"])
        if span.get("status", {}).get("code") == "STATUS_CODE_ERROR":
            span["status"]["code"] = 2
    assert otlp_json.rows_of(data) == expected


def _snake_case(data: dict) -> None:
    data["resource_spans"] = data.pop("resourceSpans")


def _base64_ids(data: dict) -> None:
    span = _spans(data)[0]
    span["spanId"] = base64.b64encode(bytes.fromhex(span["spanId"])).decode()


def _nan(data: dict) -> None:
    _spans(data)[0]["attributes"].append({"key": "score", "value": {"doubleValue": "NaN"}})


@pytest.mark.parametrize("change", [_snake_case, _base64_ids, _nan])
def test_other_forms_are_read_through_protobufs_mapping(change) -> None:
    data = _as_json(_export())
    change(data)
    with pytest.raises(otlp_json.NotPlain):
        otlp_json.rows_of(copy.deepcopy(data))
    rows, problems, total = rows_of(orjson.dumps(data), JSON)
    assert total == 7 and len(rows) == 6 and len(problems) == 1


def test_links_are_read_through_protobufs_mapping_with_the_same_rows() -> None:
    request = _export(links=True)
    data = _as_json(request)
    with pytest.raises(otlp_json.NotPlain):
        otlp_json.rows_of(copy.deepcopy(data))
    assert rows_of(orjson.dumps(data), JSON) == rows_of(request.SerializeToString(), PROTOBUF)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", 5), ("startTimeUnixNano", "soon"), ("flags", -1), ("events", {})],
)
def test_a_body_protobufs_mapping_refuses_is_refused_with_its_error(field, value) -> None:
    data = _as_json(_export())
    _spans(data)[1][field] = value
    with pytest.raises(ValueError, match="not an OTLP trace export"):
        rows_of(orjson.dumps(data), JSON)


@pytest.mark.parametrize(("levels", "taken"), [(10, True), (47, True), (48, False)])
def test_nested_values_are_taken_as_deep_as_protobufs_mapping_takes_them(levels, taken) -> None:
    request = _export()
    data = _as_json(request)
    value: dict = {"stringValue": "deep"}
    for _ in range(levels):
        value = {"arrayValue": {"values": [value]}}
    _spans(data)[0]["attributes"].append({"key": "deep", "value": value})
    body = json.dumps(data).encode()  # deeper than orjson writes
    if not taken:  # past the mapping's depth limit (100 messages)
        with pytest.raises(ValueError, match="not an OTLP trace export"):
            rows_of(body, JSON)
        return
    rows, _, _ = rows_of(body, JSON)
    deep = orjson.loads(rows[0]["metadata"])["attributes"]["deep"]
    for _ in range(levels):
        (deep,) = deep
    assert deep == "deep"
