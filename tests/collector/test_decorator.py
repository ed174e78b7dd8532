"""@observe, span(), context() and attach(): what each records, on every kind of callable."""

from __future__ import annotations

import asyncio
import threading
import traceback

import pytest

import llmvigil
from llmvigil.storage import Store


def recorded(store: Store) -> list[dict]:
    assert llmvigil.flush(timeout=10)
    return store.spans(limit=None)


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def test_bare_decorator_records_prompt_response_latency_and_size(collect: Store) -> None:
    @llmvigil.observe
    def answer(question: str) -> str:
        return "Paris is the capital of France, é."

    assert answer("What is the capital of France?") == "Paris is the capital of France, é."
    (row,) = recorded(collect)
    assert row["name"].endswith("answer")
    assert row["kind"] == "llm" and row["status"] == "ok"
    assert row["input_text"] == "What is the capital of France?"
    assert row["output_text"] == "Paris is the capital of France, é."
    assert row["latency_ms"] > 0 and row["end_time"] >= row["start_time"]
    assert (
        row["bytes_in"] == 30 and row["bytes_out"] == len("Paris is the capital of France, é.") + 1
    )
    assert row["trace_id"] == row["span_id"] and row["parent_id"] is None


def test_decorator_arguments_are_stored(collect: Store) -> None:
    @llmvigil.observe(
        name="support.answer",
        kind="chain",
        app="helpdesk",
        model="gpt-4o",
        prompt_version="p7",
        tags=["beta"],
        metadata={"team": "cx"},
    )
    def answer(question: str) -> str:
        return "ok"

    answer("hi")
    (row,) = recorded(collect)
    assert (row["name"], row["kind"], row["app"], row["model"], row["prompt_version"]) == (
        "support.answer",
        "chain",
        "helpdesk",
        "gpt-4o",
        "p7",
    )
    assert row["tags"] == ["beta"] and row["metadata"] == {"team": "cx"}


def test_capture_flags_keep_text_out(collect: Store) -> None:
    @llmvigil.observe(capture_input=False, capture_output=False)
    def secret(password: str) -> str:
        return "token-123"

    secret("hunter2")
    (row,) = recorded(collect)
    assert row["input_text"] is None and row["output_text"] is None


def test_async_function(collect: Store) -> None:
    @llmvigil.observe
    async def answer(question: str) -> str:
        await asyncio.sleep(0.01)
        return question.upper()

    assert asyncio.run(answer("abc")) == "ABC"
    (row,) = recorded(collect)
    assert row["output_text"] == "ABC" and row["latency_ms"] >= 10


def test_generator_output_is_the_joined_stream_and_ttft_is_first_item(collect: Store) -> None:
    import time

    @llmvigil.observe
    def stream(question: str):
        time.sleep(0.02)
        yield "Hello"
        time.sleep(0.05)
        yield ", world"

    assert list(stream("hi")) == ["Hello", ", world"]
    (row,) = recorded(collect)
    assert row["output_text"] == "Hello, world"
    assert 20 <= row["ttft_ms"] < row["latency_ms"]
    assert row["latency_ms"] >= 70


def test_generator_send_throw_and_return_value_pass_through(collect: Store) -> None:
    @llmvigil.observe
    def echo():
        received = yield "first"
        try:
            yield f"got {received}"
        except KeyError:
            yield "caught"
        return "done"

    gen = echo()
    assert next(gen) == "first"
    assert gen.send("x") == "got x"
    assert gen.throw(KeyError("k")) == "caught"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    (row,) = recorded(collect)
    assert row["output_text"] == "firstgot xcaught" and row["status"] == "ok"


def test_generator_closed_early_is_still_recorded(collect: Store) -> None:
    @llmvigil.observe
    def stream():
        yield from ("a", "b", "c")

    gen = stream()
    next(gen)
    gen.close()
    (row,) = recorded(collect)
    assert row["output_text"] == "a" and row["status"] == "ok"


def test_async_generator(collect: Store) -> None:
    @llmvigil.observe
    async def stream(question: str):
        for word in ("one ", "two"):
            await asyncio.sleep(0.005)
            yield word

    async def consume() -> list[str]:
        return [w async for w in stream("q")]

    assert asyncio.run(consume()) == ["one ", "two"]
    (row,) = recorded(collect)
    assert row["output_text"] == "one two" and 0 < row["ttft_ms"] < row["latency_ms"]


def test_exceptions_are_recorded_and_reraised_with_their_traceback(collect: Store) -> None:
    class QuotaExceeded(RuntimeError):
        pass

    original = QuotaExceeded("quota exceeded for key ending 42")

    @llmvigil.observe
    def call_model() -> str:
        raise original

    with pytest.raises(QuotaExceeded) as caught:
        call_model()
    assert caught.value is original
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "call_model"
    (row,) = recorded(collect)
    assert row["status"] == "error"
    assert row["error_type"].endswith("QuotaExceeded")
    assert row["error_message"] == "quota exceeded for key ending 42"


def test_errors_in_async_generators_are_recorded(collect: Store) -> None:
    @llmvigil.observe
    async def stream():
        yield "partial"
        raise ValueError("stream broke")

    async def consume():
        return [w async for w in stream()]

    with pytest.raises(ValueError, match="stream broke"):
        asyncio.run(consume())
    (row,) = recorded(collect)
    assert row["status"] == "error" and row["output_text"] == "partial"


def test_nested_calls_form_a_tree(collect: Store) -> None:
    @llmvigil.observe(kind="retrieval")
    def retrieve(q: str) -> list[str]:
        return ["doc"]

    @llmvigil.observe(kind="llm")
    def generate(q: str) -> str:
        return "answer"

    @llmvigil.observe(kind="chain")
    def pipeline(q: str) -> str:
        retrieve(q)
        with llmvigil.span("rerank", kind="tool", input=q) as s:
            s.output = "ranked"
            generate(q)
        return "answer"

    pipeline("q")
    rows = by_name(recorded(collect))
    root = next(r for name, r in rows.items() if name.endswith("pipeline"))
    retrieve_row = next(r for name, r in rows.items() if name.endswith("retrieve"))
    generate_row = next(r for name, r in rows.items() if name.endswith("generate"))
    rerank = rows["rerank"]
    assert root["parent_id"] is None
    assert retrieve_row["parent_id"] == root["span_id"]
    assert rerank["parent_id"] == root["span_id"]
    assert generate_row["parent_id"] == rerank["span_id"]
    assert {r["trace_id"] for r in rows.values()} == {root["span_id"]}
    assert rerank["input_text"] == "q" and rerank["output_text"] == "ranked"


def test_trees_are_right_across_threads_and_asyncio_tasks(collect: Store) -> None:
    @llmvigil.observe
    def leaf(i: int) -> int:
        return i

    @llmvigil.observe
    def root_sync(i: int) -> int:
        return leaf(i)

    @llmvigil.observe
    async def aleaf(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    @llmvigil.observe
    async def root_async(i: int) -> int:
        return await aleaf(i)

    threads = [
        threading.Thread(target=lambda i=i: [root_sync(i) for _ in range(50)]) for i in range(8)
    ]
    for t in threads:
        t.start()

    async def many() -> None:
        await asyncio.gather(*(root_async(i) for i in range(200)))

    asyncio.run(many())
    for t in threads:
        t.join()
    rows = recorded(collect)
    assert len(rows) == 2 * (8 * 50 + 200)
    ids = {r["span_id"]: r for r in rows}
    assert len(ids) == len(rows)
    for row in rows:
        if row["name"].endswith(("leaf", "aleaf")):
            parent = ids[row["parent_id"]]
            assert parent["name"].endswith(("root_sync", "root_async"))
            assert row["input_text"] == parent["input_text"]
            assert row["trace_id"] == parent["span_id"]
        else:
            assert row["parent_id"] is None


def test_context_sets_user_session_metadata_and_trace(collect: Store) -> None:
    @llmvigil.observe
    def answer(q: str) -> str:
        return "a"

    with llmvigil.context(user_id="u-1", session_id="s-9", metadata={"plan": "pro"}):
        with llmvigil.context(metadata={"region": "eu"}, trace_id="req-77", tags=["vip"]):
            answer("x")
        answer("y")
    answer("z")
    rows = {r["input_text"]: r for r in recorded(collect)}
    assert rows["x"]["user_id"] == "u-1" and rows["x"]["session_id"] == "s-9"
    assert rows["x"]["metadata"] == {"plan": "pro", "region": "eu"}
    assert rows["x"]["trace_id"] == "req-77" and rows["x"]["tags"] == ["vip"]
    assert rows["y"]["metadata"] == {"plan": "pro"} and rows["y"]["trace_id"] != "req-77"
    assert rows["z"]["user_id"] is None


def test_rag_context_and_reference_by_argument_or_attach(collect: Store) -> None:
    @llmvigil.observe(context_arg="passages", reference_arg="expected")
    def answer(question: str, passages: list, expected: str | None = None) -> str:
        return "Paris"

    @llmvigil.observe
    def answer_attached(question: str) -> str:
        llmvigil.attach(
            context=["Paris is in France."],
            reference="Paris",
            metadata={"retriever": "bm25"},
            model="gpt-4o-mini",
        )
        return "Paris"

    answer("capital?", [{"page_content": "Doc about Paris."}, "Another passage."], "Paris")
    answer_attached("capital of France?")
    llmvigil.attach(context=["outside any span: ignored"])
    rows = {r["input_text"]: r for r in recorded(collect)}
    by_arg = next(r for k, r in rows.items() if "capital?" in k)
    assert by_arg["context"] == ["Doc about Paris.", "Another passage."]
    assert by_arg["reference"] == "Paris"
    attached = rows["capital of France?"]
    assert attached["context"] == ["Paris is in France."] and attached["reference"] == "Paris"
    assert attached["metadata"] == {"retriever": "bm25"} and attached["model"] == "gpt-4o-mini"


def test_methods_record_arguments_without_self(collect: Store) -> None:
    class Bot:
        @llmvigil.observe
        def reply(self, question: str, temperature: float = 0.2) -> str:
            return "ok"

    Bot().reply("why?", temperature=0.7)
    (row,) = recorded(collect)
    assert row["input_text"] == "why?"


def test_span_records_errors_and_reraises(collect: Store) -> None:
    with pytest.raises(KeyError), llmvigil.span("lookup", kind="tool", input="k"):
        raise KeyError("k")
    (row,) = recorded(collect)
    assert row["status"] == "error" and row["error_type"] == "KeyError" and row["kind"] == "tool"


def test_decorated_function_keeps_its_name_and_doc() -> None:
    @llmvigil.observe
    def documented(x: int) -> int:
        """Doc."""
        return x

    assert documented.__name__ == "documented" and documented.__doc__ == "Doc."
