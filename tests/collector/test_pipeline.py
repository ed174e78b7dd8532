"""What the flush thread derives: tokens, cost, redaction, truncation, and safety on any input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

import llmvigil
from llmvigil.collector.redact import luhn_valid, make_redactor
from llmvigil.storage import Store


def only_row(store: Store) -> dict:
    assert llmvigil.flush(timeout=10)
    (row,) = store.spans(limit=None)
    return row


CHAT_COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there."}}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
}


def test_usage_from_a_chat_completion_dict_and_cost_from_genai_prices(collect: Store) -> None:
    @llmvigil.observe
    def chat(messages: list) -> dict:
        return CHAT_COMPLETION

    chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}])
    row = only_row(collect)
    assert row["input_text"] == "Hi?"
    assert row["metadata"]["messages"][0]["content"] == "Be brief."
    assert row["output_text"] == "Hello there."
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
        1000,
        500,
        1500,
    )
    assert row["tokens_estimated"] is False
    assert row["model"] == "gpt-4o-2024-08-06"
    # gpt-4o: $2.50 in, $10 out per million tokens
    assert row["cost_usd"] == pytest.approx(1000 * 2.5e-6 + 500 * 10e-6)


def test_usage_from_a_responses_api_object(collect: Store) -> None:
    response = SimpleNamespace(
        model="gpt-4o-mini",
        output_text="Forty-two.",
        usage=SimpleNamespace(input_tokens=12, output_tokens=3, total_tokens=15),
    )

    @llmvigil.observe
    def ask(input: str):
        return response

    ask("Meaning of life?")
    row = only_row(collect)
    assert row["output_text"] == "Forty-two."
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (12, 3, 15)
    assert row["cost_usd"] == pytest.approx(12 * 0.15e-6 + 3 * 0.6e-6)


def test_tokens_are_estimated_and_marked_when_not_reported(collect: Store) -> None:
    @llmvigil.observe(model="unknown-local-model")
    def ask(q: str) -> str:
        return "x" * 400

    ask("y" * 40)
    row = only_row(collect)
    assert row["tokens_estimated"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (10, 100)
    assert row["cost_usd"] is None


def test_configured_prices_override_the_database(duckdb_url, tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text(
        '[prices."my-ft-model"]\ninput_per_mtok = 1.0\noutput_per_mtok = 3.0\n'
    )
    store = Store(duckdb_url)
    llmvigil.configure(store=store)
    try:

        @llmvigil.observe(model="my-ft-model")
        def ask(q: str) -> dict:
            return {"usage": {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}}

        ask("q")
        assert only_row(store)["cost_usd"] == pytest.approx(4.0)
    finally:
        llmvigil.shutdown()
        store.close()


def test_failed_calls_get_no_invented_tokens_or_cost(collect: Store) -> None:
    @llmvigil.observe(model="gpt-4o")
    def ask(q: str) -> str:
        raise TimeoutError("upstream timed out")

    with pytest.raises(TimeoutError):
        ask("a question that was never answered")
    row = only_row(collect)
    assert row["prompt_tokens"] is None and row["cost_usd"] is None
    assert row["tokens_estimated"] is False


def test_the_captured_conversation_is_redacted_and_capped_too(duckdb_url) -> None:
    store = Store(duckdb_url)
    llmvigil.configure(store=store, max_text_bytes=256)
    try:

        @llmvigil.observe
        def chat(messages: list) -> str:
            return "ok"

        chat(
            [
                {"role": "system", "content": "x" * 5_000},
                {"role": "user", "content": [{"type": "text", "text": "I am jo@example.com"}]},
                {"role": "user", "content": "call 555-867-5309"},
            ]
        )
        row = only_row(store)
        messages = row["metadata"]["messages"]
        assert len(messages[0]["content"]) == 256 and row["truncated"] is True
        assert messages[1]["content"][0]["text"] == "I am [EMAIL]"
        assert row["input_text"] == "call [PHONE]"
    finally:
        llmvigil.shutdown()
        store.close()


def test_pii_is_redacted_by_default(collect: Store) -> None:
    @llmvigil.observe(context_arg="docs")
    def ask(q: str, docs: list) -> str:
        raise ValueError("could not charge 4111 1111 1111 1111")

    with pytest.raises(ValueError):
        ask("mail me at ana.lima@example.org or call +1 415 555 2671", ["card 5500-0000-0000-0004"])
    row = only_row(collect)
    assert row["input_text"] == "mail me at [EMAIL] or call [PHONE]"
    assert row["error_message"] == "could not charge [CARD]"
    assert row["context"] == ["card [CARD]"]


def test_redactor_rules() -> None:
    redact = make_redactor([r"ACCT-\d{8}"])
    assert redact("order 4111 1111 1111 1112 shipped") == "order 4111 1111 1111 1112 shipped"
    assert (
        redact("on 2026-11-24 at 10:15, total 1,234.56") == "on 2026-11-24 at 10:15, total 1,234.56"
    )
    assert redact("ACCT-12345678 and 555-867-5309") == "[REDACTED] and [PHONE]"
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert make_redactor([], pii=False) is None
    assert make_redactor(["x+"], pii=False)("a@b.co xx") == "a@b.co [REDACTED]"


def test_huge_text_is_truncated_and_flagged(duckdb_url) -> None:
    store = Store(duckdb_url)
    llmvigil.configure(store=store, max_text_bytes=1024)
    try:

        @llmvigil.observe
        def ask(q: str) -> str:
            return "é" * 50_000_000  # 100 MB of UTF-8

        ask("short")
        row = only_row(store)
        assert row["truncated"] is True
        assert len(row["output_text"].encode()) <= 1024 and row["output_text"].startswith("éé")
        assert row["input_text"] == "short"
    finally:
        llmvigil.shutdown()
        store.close()


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str either")


def test_nothing_the_input_holds_raises_into_the_app(collect: Store) -> None:
    cyclic: list = [1]
    cyclic.append(cyclic)
    nested: dict = {}
    node = nested
    for _ in range(5_000):
        node["child"] = {}
        node = node["child"]

    @llmvigil.observe
    def anything(payload):
        return payload

    payloads = [
        cyclic,
        nested,
        b"\xff\xfe\x00not utf-8",
        float("nan"),
        {"x": math.inf, "y": [float("nan")]},
        Unprintable(),
        {Unprintable(): object()},
        "lone surrogate \ud800 and NUL \x00",
        "x" * 10_000_000,
        object(),
        SimpleNamespace(usage="not a usage", choices="nope", model=42),
    ]
    for payload in payloads:
        assert anything(payload) is payload

    @llmvigil.observe
    def raises_bad_str():
        raise BadStr()

    with pytest.raises(BadStr):
        raises_bad_str()
    assert llmvigil.flush(timeout=30)
    rows = collect.spans(limit=None)
    assert len(rows) == len(payloads) + 1
    assert all(r["status"] in ("ok", "error") for r in rows)
    texts = {r["input_text"] for r in rows}
    assert any(t and "not utf-8" in t for t in texts)
    assert any(t and "\ufffd" in t and "NUL" in t for t in texts)


def test_recursion_in_the_decorated_code_itself(collect: Store) -> None:
    @llmvigil.observe
    def fact(n: int) -> int:
        return 1 if n <= 1 else n * fact(n - 1)

    assert fact(200) == math.factorial(200)
    assert llmvigil.flush(timeout=10)
    rows = collect.spans(limit=None)
    assert len(rows) == 200
    depth = {r["span_id"]: r["parent_id"] for r in rows}
    assert sum(1 for p in depth.values() if p is None) == 1
