"""``llmvigil.integrations.openai`` against a real local chat-completions server.

Every test drives the real ``openai`` package over HTTP (see
:mod:`tests.integrations.chat_server`) and asserts on the rows the collector
really stored in a temporary DuckDB file.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

import llmvigil
from llmvigil.collector import spans
from llmvigil.integrations import openai as vigil_openai
from llmvigil.integrations.openai import (
    InstrumentedAsyncStream,
    InstrumentedStream,
    instrument,
    is_instrumented,
    uninstrument,
)
from llmvigil.storage import Store
from tests.integrations.chat_server import ChatServer

MODEL = "gpt-4o-mini"
QUESTION = "What is the capital of France?"
MESSAGES = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi, how can I help?"},
    {"role": "user", "content": QUESTION},
]


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    with ChatServer(chunk_delay=0.01) as running:
        yield running


@pytest.fixture
def chat(server: ChatServer) -> Iterator[ChatServer]:
    """The module's server, answering normally and with no requests remembered."""
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def spans_store(tmp_path) -> Iterator[Store]:
    """The collector writing directly into a fresh DuckDB file; shut down after the test."""
    store = Store(f"duckdb:///{tmp_path}/t.duckdb")
    llmvigil.configure(store=store)
    yield store
    llmvigil.shutdown()
    store.close()


@pytest.fixture
def client(chat: ChatServer, spans_store: Store) -> Iterator[openai.OpenAI]:
    """A real ``openai.OpenAI`` client pointed at the local server, instrumented."""
    raw = openai.OpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    yield instrument(raw, app="support-bot", tags=["test"], metadata={"team": "search"})
    raw.close()


def stored(store: Store) -> list[dict[str, Any]]:
    """Every span collected so far, oldest first."""
    assert llmvigil.flush()
    return store.spans()


def only_span(store: Store) -> dict[str, Any]:
    rows = stored(store)
    assert len(rows) == 1, rows
    return rows[0]


def async_client(chat: ChatServer, **options: Any) -> openai.AsyncOpenAI:
    raw = openai.AsyncOpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    return instrument(raw, **options)


def chunk_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- plain calls ---------------------------------------------------------------------------


def test_a_chat_loop_records_each_turn_as_it_was_sent(client, spans_store):
    messages = [{"role": "system", "content": "You answer in one sentence."}]
    for question in ("Hello!", QUESTION):
        messages.append({"role": "user", "content": question})
        reply = client.chat.completions.create(model=MODEL, messages=messages)
        # the conversation grows, and the caller keeps the reply as a ChatCompletionMessage
        messages.append(reply.choices[0].message)
    first, second = stored(spans_store)
    assert [first["input_text"], second["input_text"]] == ["Hello!", QUESTION]
    sent = second["metadata"]
    sent = json.loads(sent) if isinstance(sent, str) else sent
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]


def test_sync_call_records_model_prompt_answer_usage_and_cost(client, chat, spans_store):
    reply = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        temperature=0.2,
        max_tokens=64,
        top_p=0.9,
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    )

    assert isinstance(reply, openai.types.chat.ChatCompletion)  # what the caller gets
    assert reply.choices[0].message.content == chat.reply
    assert chat.requests[-1]["body"]["temperature"] == 0.2  # the request went out unchanged
    row = only_span(spans_store)
    assert row["name"] == "openai.chat.completions"
    assert row["kind"] == "llm"
    assert row["app"] == "support-bot"
    assert row["status"] == "ok"
    assert row["model"] == MODEL
    assert row["input_text"] == QUESTION  # the last user message
    assert row["output_text"] == chat.reply
    assert row["prompt_tokens"] == chat.usage["prompt_tokens"]
    assert row["completion_tokens"] == chat.usage["completion_tokens"]
    assert row["total_tokens"] == chat.usage["total_tokens"]
    assert row["tokens_estimated"] is False
    assert row["cost_usd"] > 0
    assert row["latency_ms"] > 0
    assert row["ttft_ms"] is None
    assert row["parent_id"] is None
    assert row["tags"] == ["test"]
    meta = row["metadata"]
    assert meta["team"] == "search"
    assert meta["temperature"] == 0.2
    assert meta["max_tokens"] == 64
    assert meta["top_p"] == 0.9
    assert meta["tools"] == ["lookup"]
    assert meta["finish_reason"] == "stop"
    assert meta["response_id"] == reply.id
    assert meta["messages"] == MESSAGES  # the whole conversation
    assert "stream" not in meta


def test_response_model_is_recorded_and_the_request_model_kept(client, chat, spans_store):
    chat.response_model = "gpt-4o-mini-2024-07-18"
    client.chat.completions.create(model=MODEL, messages=MESSAGES)

    row = only_span(spans_store)
    assert row["model"] == "gpt-4o-mini-2024-07-18"
    assert row["metadata"]["request_model"] == MODEL
    assert row["cost_usd"] > 0


def test_capture_options_leave_texts_out(chat, spans_store):
    raw = openai.OpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    client = instrument(raw, capture_input=False, capture_output=False)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    raw.close()

    row = only_span(spans_store)
    assert row["input_text"] is None
    assert row["output_text"] is None
    assert row["prompt_tokens"] == chat.usage["prompt_tokens"]


def test_with_raw_response_is_recorded_and_still_raw(client, chat, spans_store):
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)

    assert raw.headers["x-request-id"].startswith("req_")
    completion = raw.parse()
    assert completion.choices[0].message.content == chat.reply
    assert raw.parse() is completion
    row = only_span(spans_store)
    assert row["output_text"] == chat.reply
    assert row["prompt_tokens"] == chat.usage["prompt_tokens"]


# -- streams ---------------------------------------------------------------------------------


def test_sync_stream_records_joined_output_ttft_and_usage(client, chat, spans_store):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )

    assert isinstance(stream, openai.Stream)
    assert isinstance(stream, InstrumentedStream)
    assert stream.response.status_code == 200  # attributes reach the original stream
    assert stream.response.headers["x-request-id"].startswith("req_")
    first = next(stream)  # next() works as on openai.Stream
    chunks = [first, *stream]
    assert chunk_text(chunks) == chat.reply
    assert chunks[-1].usage.total_tokens == chat.usage["total_tokens"]

    row = only_span(spans_store)
    assert row["status"] == "ok"
    assert row["model"] == MODEL
    assert row["input_text"] == QUESTION
    assert row["output_text"] == chat.reply
    assert row["prompt_tokens"] == chat.usage["prompt_tokens"]
    assert row["completion_tokens"] == chat.usage["completion_tokens"]
    assert row["total_tokens"] == chat.usage["total_tokens"]
    assert row["tokens_estimated"] is False
    assert row["cost_usd"] > 0
    assert 0 < row["ttft_ms"] < row["latency_ms"]
    # The server pauses before each word: the whole stream takes visibly longer than its start.
    assert row["latency_ms"] - row["ttft_ms"] >= len(chat.pieces) * chat.chunk_delay * 1000 * 0.5
    meta = row["metadata"]
    assert meta["stream"] is True
    assert meta["stream_include_usage"] is True
    assert meta["finish_reason"] == "stop"
    assert "stream_incomplete" not in meta


def test_sync_stream_without_usage_has_estimated_tokens(client, chat, spans_store):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == chat.reply
    assert "stream_options" not in chat.requests[-1]["body"]

    row = only_span(spans_store)
    assert row["output_text"] == chat.reply
    assert row["tokens_estimated"] is True
    assert row["prompt_tokens"] > 0
    assert row["completion_tokens"] > 0
    assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    assert 0 < row["ttft_ms"] < row["latency_ms"]


def test_stream_as_context_manager_closed_early_keeps_partial_output(client, chat, spans_store):
    received = []
    with client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as stream:
        for chunk in stream:
            received.append(chunk)
            if len(received) == 4:  # the role chunk and three words
                break
        assert not stream.response.is_closed
    assert stream.response.is_closed  # __exit__ closed the real stream

    row = only_span(spans_store)
    assert row["status"] == "ok"
    assert row["output_text"] == "".join(chat.pieces[:3]) == chunk_text(received)
    assert row["metadata"]["stream_incomplete"] == "closed"
    assert 0 < row["ttft_ms"] < row["latency_ms"]


def test_stream_closed_by_hand_before_reading_is_recorded(client, chat, spans_store):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    stream.close()

    assert stream.response.is_closed
    row = only_span(spans_store)
    assert row["status"] == "ok"
    assert row["output_text"] is None
    assert row["ttft_ms"] is None
    assert row["metadata"]["stream_incomplete"] == "closed"


def test_stream_dropped_unfinished_is_recorded(client, chat, spans_store):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    response = stream.response
    next(stream)
    next(stream)
    del stream  # neither exhausted nor closed: recorded when garbage-collected
    gc.collect()

    row = only_span(spans_store)
    assert row["output_text"] == chat.pieces[0]
    assert row["metadata"]["stream_incomplete"] == "abandoned"
    response.close()


def test_stream_helper_is_recorded(client, chat, spans_store):
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        for _event in stream:
            pass
        final = stream.get_final_completion()

    assert final.choices[0].message.content == chat.reply
    row = only_span(spans_store)
    assert row["output_text"] == chat.reply
    assert row["ttft_ms"] is not None


def test_span_is_not_current_after_a_stream_is_returned(client, chat, spans_store):
    @llmvigil.observe(kind="chain")
    def step() -> str:
        return "done"

    @llmvigil.observe(kind="chain")
    def outer() -> str:
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        step()  # runs while the stream is open: a sibling of the LLM span, not its child
        return "".join(c.choices[0].delta.content or "" for c in stream)

    assert outer() == chat.reply
    rows = {row["name"]: row for row in stored(spans_store)}
    assert set(rows) == {"openai.chat.completions", f"{outer.__qualname__}", step.__qualname__}
    outer_row = rows[outer.__qualname__]
    assert rows["openai.chat.completions"]["parent_id"] == outer_row["span_id"]
    assert rows[step.__qualname__]["parent_id"] == outer_row["span_id"]


def test_only_the_first_of_several_choices_is_the_output(client, chat, spans_store):
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, n=2)
    assert [c.message.content for c in reply.choices] == [chat.answer(0), chat.answer(1)]
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, n=2, stream=True)
    chunks = list(stream)
    assert {c.choices[0].index for c in chunks} == {0, 1}  # the answers interleave

    plain, streamed = stored(spans_store)
    assert plain["output_text"] == chat.answer(0)
    assert streamed["output_text"] == chat.answer(0)
    assert plain["metadata"]["n"] == streamed["metadata"]["n"] == 2


def test_tool_calls_are_the_output_streamed_or_not(client, chat, spans_store):
    chat.tool_calls = [
        {"name": "lookup", "arguments": '{"city": "Paris", "units": "metric"}'},
        {"name": "clock", "arguments": '{"zone": "Europe/Paris"}'},
    ]
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("lookup", "clock")
    ]
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=tools)
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=tools, stream=True
    )
    assert len(list(stream)) > 4

    plain, streamed = stored(spans_store)
    expected = [call.model_dump() for call in reply.choices[0].message.tool_calls]
    assert json.loads(plain["output_text"]) == expected
    assert json.loads(streamed["output_text"]) == expected
    assert expected[0]["function"]["arguments"] == chat.tool_calls[0]["arguments"]
    for row in (plain, streamed):
        assert row["metadata"]["tools"] == ["lookup", "clock"]
        assert row["metadata"]["finish_reason"] == "tool_calls"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error"),
    ],
)
def test_api_error_is_recorded_and_reraised_unchanged(
    client, chat, spans_store, status, error_class, error_type
):
    chat.fail(status, message="Something is wrong with this request.", type=error_type)

    with pytest.raises(error_class) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.5)

    assert type(caught.value) is error_class
    assert caught.value.status_code == status
    assert caught.value.body["type"] == error_type
    assert caught.value.response.headers["x-request-id"].startswith("req_")
    row = only_span(spans_store)
    assert row["status"] == "error"
    assert row["error_type"] == error_class.__name__
    assert "Something is wrong with this request." in row["error_message"]
    assert row["model"] == MODEL
    assert row["input_text"] == QUESTION
    assert row["output_text"] is None
    assert row["metadata"]["temperature"] == 0.5
    assert row["latency_ms"] > 0


def test_connection_error_is_recorded_and_reraised(spans_store, server):
    raw = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="test", max_retries=0)
    client = instrument(raw)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    raw.close()

    row = only_span(spans_store)
    assert row["status"] == "error"
    assert row["error_type"] == "APIConnectionError"


def test_error_in_the_middle_of_a_stream_is_recorded(client, chat, spans_store):
    chat.stream_error_after = 2
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError, match=r"The stream broke\."):
        for chunk in stream:
            received.append(chunk)

    row = only_span(spans_store)
    assert row["status"] == "error"
    assert row["error_type"] == "APIError"
    assert row["output_text"] == "".join(chat.pieces[:2]) == chunk_text(received)


# -- async ---------------------------------------------------------------------------------


def test_async_call_is_recorded(chat, spans_store):
    async def main() -> Any:
        async with async_client(chat, app="async-bot") as client:
            return await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, max_completion_tokens=32
            )

    reply = asyncio.run(main())

    assert reply.choices[0].message.content == chat.reply
    row = only_span(spans_store)
    assert row["app"] == "async-bot"
    assert row["model"] == MODEL
    assert row["input_text"] == QUESTION
    assert row["output_text"] == chat.reply
    assert row["total_tokens"] == chat.usage["total_tokens"]
    assert row["tokens_estimated"] is False
    assert row["cost_usd"] > 0
    assert row["metadata"]["max_completion_tokens"] == 32


def test_async_stream_is_recorded(chat, spans_store):
    async def main() -> list[Any]:
        async with async_client(chat) as client:
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            assert isinstance(stream, openai.AsyncStream)
            assert isinstance(stream, InstrumentedAsyncStream)
            assert stream.response.status_code == 200
            return [chunk async for chunk in stream]

    chunks = asyncio.run(main())

    assert chunk_text(chunks) == chat.reply
    row = only_span(spans_store)
    assert row["output_text"] == chat.reply
    assert row["prompt_tokens"] == chat.usage["prompt_tokens"]
    assert row["completion_tokens"] == chat.usage["completion_tokens"]
    assert row["tokens_estimated"] is False
    assert 0 < row["ttft_ms"] < row["latency_ms"]
    assert row["metadata"]["finish_reason"] == "stop"


def test_async_stream_without_usage_is_estimated(chat, spans_store):
    async def main() -> str:
        async with async_client(chat) as client:
            stream = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(main()) == chat.reply
    row = only_span(spans_store)
    assert row["output_text"] == chat.reply
    assert row["tokens_estimated"] is True


def test_async_stream_context_manager_closed_early(chat, spans_store):
    async def main() -> list[Any]:
        received = []
        async with async_client(chat) as client:
            stream = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True
            )
            async with stream:
                async for chunk in stream:
                    received.append(chunk)
                    if len(received) == 3:
                        break
            assert stream.response.is_closed
        return received

    received = asyncio.run(main())

    row = only_span(spans_store)
    assert row["status"] == "ok"
    assert row["output_text"] == "".join(chat.pieces[:2]) == chunk_text(received)
    assert row["metadata"]["stream_incomplete"] == "closed"


def test_async_api_error_is_recorded_and_reraised(chat, spans_store):
    chat.fail(500)

    async def main() -> None:
        async with async_client(chat) as client:
            await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    with pytest.raises(openai.InternalServerError):
        asyncio.run(main())
    row = only_span(spans_store)
    assert row["status"] == "error"
    assert row["error_type"] == "InternalServerError"


def test_async_create_checks_its_arguments_when_called_like_openai(chat, spans_store):
    async def attempt(client: openai.AsyncOpenAI) -> str:
        with pytest.raises(TypeError) as caught:
            client.chat.completions.create(model=MODEL)  # no messages: refused before awaiting
        return str(caught.value)

    async def main() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=chat.base_url, api_key="test") as plain:
            expected = await attempt(plain)
        async with async_client(chat) as client:
            return expected, await attempt(client)

    expected, got = asyncio.run(main())
    assert got == expected
    assert chat.requests == []


def test_async_call_nests_under_observe(chat, spans_store):
    @llmvigil.observe(kind="chain")
    async def answer(question: str) -> str:
        async with async_client(chat) as client:
            reply = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": question}]
            )
            return reply.choices[0].message.content

    assert asyncio.run(answer(QUESTION)) == chat.reply
    rows = {row["kind"]: row for row in stored(spans_store)}
    assert rows["llm"]["parent_id"] == rows["chain"]["span_id"]
    assert rows["llm"]["trace_id"] == rows["chain"]["trace_id"]


# -- nesting -------------------------------------------------------------------------------


def test_call_nests_under_observe(client, chat, spans_store):
    @llmvigil.observe(kind="chain", name="answer")
    def answer(question: str) -> str:
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": question}]
        )
        streamed = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": question}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == chat.reply
        return reply.choices[0].message.content

    assert answer(QUESTION) == chat.reply
    rows = stored(spans_store)
    outer = next(r for r in rows if r["name"] == "answer")
    calls = [r for r in rows if r["name"] == "openai.chat.completions"]
    assert len(calls) == 2
    for call in calls:
        assert call["parent_id"] == outer["span_id"]
        assert call["trace_id"] == outer["trace_id"]
    assert outer["parent_id"] is None


def test_concurrent_calls_from_threads_are_separate_spans(client, chat, spans_store):
    def ask(i: int) -> str:
        messages = [{"role": "user", "content": f"question {i}"}]
        if i % 2:
            stream = client.chat.completions.create(model=MODEL, messages=messages, stream=True)
            return chunk_text(list(stream))
        reply = client.chat.completions.create(model=MODEL, messages=messages)
        return reply.choices[0].message.content

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, range(12)))

    assert answers == [chat.reply] * 12
    rows = stored(spans_store)
    assert sorted(row["input_text"] for row in rows) == sorted(f"question {i}" for i in range(12))
    assert len({row["span_id"] for row in rows}) == 12
    assert all(row["parent_id"] is None and row["output_text"] == chat.reply for row in rows)


# -- instrumenting ---------------------------------------------------------------------------


def test_instrument_is_idempotent_and_uninstrument_restores(chat, spans_store):
    raw = openai.OpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    original = raw.chat.completions.create
    assert not is_instrumented(raw)

    assert instrument(raw, app="first") is raw
    assert instrument(raw, app="second") is raw  # replaces the options, does not wrap twice
    assert is_instrumented(raw)
    raw.chat.completions.create(model=MODEL, messages=MESSAGES)
    rows = stored(spans_store)
    assert len(rows) == 1
    assert rows[0]["app"] == "second"

    assert uninstrument(raw) is raw
    assert not is_instrumented(raw)
    assert "create" not in vars(raw.chat.completions)
    assert raw.chat.completions.create == original
    assert "with_options" not in vars(raw)
    uninstrument(raw)  # twice is harmless
    reply = raw.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert reply.choices[0].message.content == chat.reply
    assert len(stored(spans_store)) == 1  # not recorded any more

    instrument(raw)
    raw.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert len(stored(spans_store)) == 2
    raw.close()


def test_copies_of_an_instrumented_client_are_instrumented(client, chat, spans_store):
    copy = client.with_options(timeout=5.0)
    assert copy is not client
    assert is_instrumented(copy)
    copy.chat.completions.create(model=MODEL, messages=MESSAGES)

    row = only_span(spans_store)
    assert row["app"] == "support-bot"
    assert row["metadata"]["team"] == "search"


def test_the_completions_resource_itself_can_be_instrumented(chat, spans_store):
    raw = openai.OpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    completions = instrument(raw.chat.completions)
    assert completions is raw.chat.completions
    raw.chat.completions.create(model=MODEL, messages=MESSAGES)
    raw.close()

    assert only_span(spans_store)["output_text"] == chat.reply


def test_instrument_refuses_what_is_not_an_openai_client():
    with pytest.raises(TypeError, match=r"openai\.OpenAI"):
        instrument(object())


# -- recording never hurts the caller ---------------------------------------------------------


def test_a_failing_span_start_does_not_reach_the_caller(client, chat, spans_store, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in llmvigil")

    monkeypatch.setattr(spans.ActiveSpan, "__init__", broken)
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)

    assert reply.choices[0].message.content == chat.reply
    assert type(stream) is openai.Stream  # not recorded, but exactly what openai returns
    assert chunk_text(list(stream)) == chat.reply
    assert stored(spans_store) == []


def test_failing_recording_steps_do_not_reach_the_caller(client, chat, spans_store, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in llmvigil")

    monkeypatch.setattr(vigil_openai, "_request_metadata", broken)
    monkeypatch.setattr(vigil_openai, "_facts", broken)
    monkeypatch.setattr(spans.ActiveSpan, "item", broken)

    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.1)
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert reply.choices[0].message.content == chat.reply
    assert chunk_text(list(stream)) == chat.reply

    rows = stored(spans_store)
    assert len(rows) == 2  # both calls still counted
    assert all(row["status"] == "ok" for row in rows)
    assert "temperature" not in rows[0]["metadata"]
