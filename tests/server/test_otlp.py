"""OTLP/HTTP into ``llmvigil up``: the real OpenTelemetry SDK and its exporter (protobuf, gzip),
and the JSON encoding with partial success; GenAI spans become llm spans."""

from __future__ import annotations

import base64
import json
import urllib.request

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from llmvigil.storage.store import Store
from tests.server.test_up import Owner


def _export_with_the_sdk(url: str) -> dict[str, str]:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider(
        resource=Resource.create({"service.name": "otel-app", "deployment.environment": "staging"})
    )
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=Compression.Gzip)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    ids = {}
    with tracer.start_as_current_span("handle request") as parent:
        ids["parent"] = format(parent.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
                "gen_ai.input.messages": json.dumps([
                    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                    {"role": "user", "parts": [{"type": "text", "content": "How do I reset?"}]},
                ]),
                "gen_ai.output.messages": json.dumps([
                    {"role": "assistant",
                     "parts": [{"type": "text", "content": "Use Forgot password."}]}
                ]),
            })  # fmt: skip
            ids["chat"] = format(chat.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("completion (old attributes)") as old:
            old.set_attributes({
                "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 30, "gen_ai.usage.completion_tokens": 7,
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Old question?",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "Old answer.",
            })  # fmt: skip
            ids["old"] = format(old.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("chat (events)") as evented:
            evented.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            evented.add_event("gen_ai.user.message", {"content": "Event question?"})
            choice = {"message": json.dumps({"content": "Event answer."})}
            evented.add_event("gen_ai.choice", choice)
            ids["events"] = format(evented.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("search docs") as search:
            search.set_attribute("db.system", "qdrant")
            ids["search"] = format(search.get_span_context().span_id, "016x")
        with tracer.start_as_current_span("lookup_order") as tool:
            tool.set_attribute("gen_ai.tool.name", "lookup_order")
            tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
            ids["tool"] = format(tool.get_span_context().span_id, "016x")
    ids["trace"] = format(parent.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()
    return ids


def test_the_sdk_exporter_reports_genai_spans_as_llm_spans(tmp_path) -> None:
    owner = Owner(tmp_path)
    try:
        ids = _export_with_the_sdk(owner.url)
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        spans = {s["span_id"]: s for s in store.spans(limit=None)}
    assert len(spans) == 6
    chat = spans[ids["chat"]]
    assert chat["kind"] == "llm" and chat["model"] == "gpt-4o-mini" and chat["app"] == "otel-app"
    assert chat["environment"] == "staging" and chat["trace_id"] == ids["trace"]
    assert chat["parent_id"] == ids["parent"]
    assert chat["input_text"] == "How do I reset?" and chat["output_text"] == "Use Forgot password."
    assert chat["prompt_tokens"] == 12 and chat["completion_tokens"] == 5 and chat["cost_usd"] > 0
    assert chat["metadata"]["messages"][0] == {"role": "system", "content": "Be brief."}
    old = spans[ids["old"]]
    assert old["kind"] == "llm" and old["input_text"] == "Old question?"
    assert old["output_text"] == "Old answer." and old["prompt_tokens"] == 30
    evented = spans[ids["events"]]
    assert evented["input_text"] == "Event question?" and evented["output_text"] == "Event answer."
    assert spans[ids["search"]]["kind"] == "retrieval"
    tool = spans[ids["tool"]]
    assert tool["kind"] == "tool" and tool["status"] == "error"
    assert tool["error_message"] == "order service timed out"
    assert spans[ids["parent"]]["kind"] == "chain" and spans[ids["parent"]]["parent_id"] is None


def _json_export(span_ids: list[bytes]) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for span_id in span_ids:
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = b"\x01" * 16, span_id, "chat"
        span.start_time_unix_nano = span.end_time_unix_nano = 1_764_579_600_000_000_000
        attribute = span.attributes.add()
        attribute.key, attribute.value.string_value = "gen_ai.request.model", "gpt-4o"
    data = json_format.MessageToDict(request)
    for span in data["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId"):  # OTLP/JSON carries ids as hex
            if span.get(key):
                span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(data).encode()


def test_json_encoding_and_partial_success(tmp_path) -> None:
    owner = Owner(tmp_path)
    try:
        body = _json_export([b"\x02" * 8, b"\x03" * 8, b""])  # the last has no span id
        request = urllib.request.Request(
            f"{owner.url}/v1/traces", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/json")
        assert answer["partialSuccess"]["rejectedSpans"] == "1"
        assert "span 2" in answer["partialSuccess"]["errorMessage"]
        bad = urllib.request.Request(
            f"{owner.url}/v1/traces", data=b"\xff\x00garbage",
            headers={"Content-Type": "application/x-protobuf"},
        )  # fmt: skip
        try:
            urllib.request.urlopen(bad, timeout=30)
            raise AssertionError("garbage was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        ids = {s["span_id"] for s in store.spans(limit=None)}
    assert ids == {"02" * 8, "03" * 8}
