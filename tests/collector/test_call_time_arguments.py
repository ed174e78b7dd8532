"""What is recorded is the call as it was made: a conversation appended to afterwards, by the
caller or by the function itself, does not rewrite the spans of earlier turns."""

from __future__ import annotations

import json

import llmvigil
from llmvigil.storage import Store


@llmvigil.observe(model="gpt-4o-mini")
def chat(messages: list[dict]) -> str:
    return f"reply to {messages[-1]['content']}"


@llmvigil.observe(model="gpt-4o-mini")
def chat_keeping_history(messages: list[dict]) -> str:
    reply = f"reply to {messages[-1]['content']}"
    messages.append({"role": "assistant", "content": reply})  # the function itself appends
    return reply


def stored(store: Store) -> list[dict]:
    assert llmvigil.flush()
    return store.spans(limit=None)


def conversation(row: dict) -> list[dict]:
    metadata = row["metadata"]
    metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    return metadata.get("messages", [])


def test_a_chat_loop_records_each_turn_with_its_own_question(collect: Store) -> None:
    messages: list[dict] = [{"role": "system", "content": "Be brief."}]
    for question in ("first question", "second question", "third question"):
        messages.append({"role": "user", "content": question})
        reply = chat(messages)
        messages.append({"role": "assistant", "content": reply})
        messages[1]["content"] = "edited later"  # even a message changed in place
    rows = stored(collect)
    assert [r["input_text"] for r in rows] == [
        "first question",
        "second question",
        "third question",
    ]
    assert [len(conversation(r)) for r in rows] == [2, 4, 6]
    assert conversation(rows[0])[1]["content"] == "first question"


def test_what_the_function_appends_to_its_argument_is_not_its_input(collect: Store) -> None:
    messages = [{"role": "user", "content": "hello"}, {"role": "user", "content": "are you there?"}]
    chat_keeping_history(messages)
    chat_keeping_history(messages=messages)
    first, second = stored(collect)
    assert [m["content"] for m in conversation(first)] == ["hello", "are you there?"]
    assert len(conversation(second)) == 3 and second["input_text"] == "are you there?"


def test_dict_arguments_results_and_attached_passages_are_kept_as_they_were(
    collect: Store,
) -> None:
    @llmvigil.observe(kind="tool")
    def lookup(request: dict) -> list[str]:
        passages = ["passage one"]
        llmvigil.attach(context=passages)
        passages.append("appended after attach")
        return passages

    request = {"query": "refund policy"}
    found = lookup(request)
    request["query"] = "changed"
    found.append("appended by the caller")
    (row,) = stored(collect)
    assert json.loads(row["input_text"]) == {"query": "refund policy"}
    assert json.loads(row["output_text"]) == ["passage one", "appended after attach"]
    context = row["context"]
    assert (json.loads(context) if isinstance(context, str) else context) == ["passage one"]
