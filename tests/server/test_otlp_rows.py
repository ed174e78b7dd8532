"""An OTLP export as store rows (llmvigil.server.otlp.rows_of), from spans the real OpenTelemetry
SDK made and its OTLP encoder serialised: typed values are taken as they are, and what the
protobuf types leave open refuses its span alone, naming the attribute."""

from __future__ import annotations

import json

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmvigil.server.otlp import rows_of
from llmvigil.storage.store import Store

PROTOBUF = "application/x-protobuf"


def _export(*attribute_sets: dict) -> bytes:
    spans = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")
    for attributes in attribute_sets:
        with tracer.start_as_current_span("chat") as span:
            span.set_attributes(attributes)
    return encode_spans(spans.get_finished_spans()).SerializeToString()


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 5,
    "gen_ai.input.messages": json.dumps([{"role": "user", "content": "Where is my order?"}]),
}


@pytest.mark.parametrize(
    ("tokens", "said"),
    [("many", "gen_ai.usage.input_tokens is 'many'"), (-3, "gen_ai.usage.input_tokens is -3")],
)
def test_a_span_with_unusable_token_counts_is_refused_alone(tokens, said) -> None:
    rows, problems, total = rows_of(
        _export(CHAT, {**CHAT, "gen_ai.usage.input_tokens": tokens}, CHAT), PROTOBUF
    )
    assert total == 3 and len(rows) == 2
    assert len(problems) == 1 and problems[0].startswith("span 1 (")
    assert said in problems[0]
    assert [r["prompt_tokens"] for r in rows] == [12, 12]


def test_token_counts_sent_as_text_or_the_older_names_are_read() -> None:
    older = {k: v for k, v in CHAT.items() if not k.startswith("gen_ai.usage")}
    older |= {"gen_ai.usage.prompt_tokens": "30", "gen_ai.usage.completion_tokens": 7}
    (row,), problems, _ = rows_of(_export(older), PROTOBUF)
    assert problems == []
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (30, 7, 37)
    assert row["cost_usd"] > 0


def test_other_attributes_are_kept_and_unread_genai_ones_left_out(tmp_path) -> None:
    attributes = {
        **CHAT,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": "api.openai.com",
        "server.port": 443,
        "http.resend": True,
        "retry.delays": (0.5, 1.5),
    }
    rows, problems, _ = rows_of(_export(attributes), PROTOBUF)
    assert problems == []
    metadata = orjson.loads(rows[0]["metadata"])
    assert metadata["attributes"] == {
        "server.address": "api.openai.com",
        "server.port": 443,
        "http.resend": True,
        "retry.delays": [0.5, 1.5],
    }
    assert metadata["messages"] == [{"role": "user", "content": "Where is my order?"}]
    with Store(f"duckdb:///{tmp_path / 'otlp.duckdb'}") as store:
        assert store.append_spans(rows) == 1
        (stored,) = store.spans(limit=None)
    assert stored["metadata"] == metadata and stored["input_text"] == "Where is my order?"
    assert stored["app"] == "shop" and stored["prompt_tokens"] == 12


def test_an_id_longer_than_the_store_holds_refuses_its_span() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(_export(CHAT, CHAT))
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\x07" * 33  # the SDK makes only valid ids: lengthen one after it
    rows, problems, total = rows_of(request.SerializeToString(), PROTOBUF)
    assert total == 2 and len(rows) == 1
    assert "trace_id is 33 bytes, over 32" in problems[0] and problems[0].startswith("span 0 (")
