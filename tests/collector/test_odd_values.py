"""One odd value never loses a batch: every text field is cleaned the same way, ids fit the store.

A lone surrogate, a NUL, bytes, a number or an unprintable object in any field
of a span is stored converted and cleaned; the rest of its batch is stored as
it was. Ids longer than the store's 64 characters get a stable short form, the
original kept in ``metadata``. What passes the collector, DuckDB and
PostgreSQL both accept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import llmvigil
from llmvigil.collector.spool import segments
from llmvigil.storage import Store

SURROGATE = "lone \ud800 surrogate"
NUL = "nul \x00 byte"
ODD_TEXTS = [SURROGATE, NUL, "\udfff\x00"]
CLEANED = {SURROGATE: "lone \ufffd surrogate", NUL: "nul \ufffd byte", "\udfff\x00": "\ufffd\ufffd"}
CALLS = 30


@pytest.fixture
def collector(store_url: str) -> Iterator[Store]:
    """The collector writing directly into a fresh store of each backend, one batch per flush."""
    store = Store(store_url)
    llmvigil.configure(store=store, batch_size=10_000, flush_interval_s=60)
    yield store
    llmvigil.shutdown()
    store.close()


def stored(store: Store) -> list[dict]:
    dropped = llmvigil.stats()["dropped"]  # counted since the process started
    assert llmvigil.flush(timeout=30)
    assert llmvigil.stats()["dropped"] == dropped
    assert segments(".llmvigil/spool") == [], "the store refused a batch: it went to the spool"
    return store.spans(limit=None)


def plain(i: int) -> str:
    return f"answer {i}"


def call_with(field: str, odd: object) -> Callable[[int], object]:
    """A way to make one call that carries ``odd`` in ``field``."""
    if field in ("user_id", "session_id", "trace_id"):

        def call(i: int) -> object:
            with llmvigil.context(**{field: odd}):
                return llmvigil.observe(name="odd")(plain)(i)

        return call
    if field in ("model", "prompt_version", "app", "name"):
        return llmvigil.observe(**{field: odd})(plain)
    if field == "tag":
        return llmvigil.observe(tags=[odd, "fine"])(plain)
    if field == "context_tag":

        def call(i: int) -> object:
            with llmvigil.context(tags=[odd]):
                return llmvigil.observe(name="odd")(plain)(i)

        return call
    if field in ("metadata_key", "metadata_value"):
        metadata = {odd: "v"} if field == "metadata_key" else {"k": odd}

        def call(i: int) -> object:
            with llmvigil.context(metadata=metadata):
                return llmvigil.observe(name="odd")(plain)(i)

        return call
    if field in ("attached_model", "attached_tag", "passage"):

        @llmvigil.observe(name="odd")
        def attaching(i: int) -> str:
            if field == "attached_model":
                llmvigil.attach(model=odd)
            elif field == "attached_tag":
                llmvigil.attach(tags=[odd])
            else:
                llmvigil.attach(context=[odd, "a fine passage"])
            return plain(i)

        return attaching
    raise AssertionError(field)


FIELDS = [
    "user_id",
    "session_id",
    "trace_id",
    "model",
    "prompt_version",
    "app",
    "name",
    "tag",
    "context_tag",
    "metadata_key",
    "metadata_value",
    "attached_model",
    "attached_tag",
    "passage",
]


def stored_value(row: dict, field: str) -> object:
    if field in ("tag", "context_tag", "attached_tag"):
        return row["tags"][0]
    if field == "metadata_key":
        return next(iter(row["metadata"]))
    if field == "metadata_value":
        return row["metadata"]["k"]
    if field == "attached_model":
        return row["model"]
    if field == "passage":
        return row["context"][0]
    return row[field]


@pytest.mark.parametrize("odd", ODD_TEXTS, ids=["surrogate", "nul", "both"])
@pytest.mark.parametrize("field", FIELDS)
def test_an_odd_text_in_any_field_is_cleaned_and_loses_no_span(
    collector: Store, field: str, odd: str
) -> None:
    odd_call = call_with(field, odd)
    fine = llmvigil.observe(name="fine", model="gpt-4o-mini")(plain)
    for i in range(CALLS):
        fine(i)
        odd_call(i)
    rows = stored(collector)
    assert len(rows) == 2 * CALLS
    assert sorted(r["output_text"] for r in rows if r["name"] == "fine") == sorted(
        plain(i) for i in range(CALLS)
    )
    odd_rows = [r for r in rows if r["name"] != "fine"]
    assert len(odd_rows) == CALLS
    for row in odd_rows:
        assert stored_value(row, field) == CLEANED[odd]
        assert "llmvigil_error" not in row["metadata"]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("model", b"gpt-4o-mini", "gpt-4o-mini"),
        ("model", b"\xff\xfe", "\ufffd\ufffd"),
        ("model", 4, "4"),
        ("prompt_version", 2.5, "2.5"),
        ("app", ("a", "b"), "('a', 'b')"),
        ("name", 12, "12"),
        ("tag", 7, "7"),
        ("tag", Unprintable(), "<Unprintable>"),
        ("attached_model", b"gpt-4o", "gpt-4o"),
        ("attached_tag", Unprintable(), "<Unprintable>"),
        ("metadata_key", 3, "3"),
        ("metadata_key", Unprintable(), "<Unprintable>"),
        ("metadata_value", Unprintable(), "<Unprintable>"),
        ("passage", 42, "42"),
    ],
)
def test_a_value_that_is_not_a_string_is_converted_not_fatal(
    collector: Store, field: str, value: object, expected: str
) -> None:
    odd_call = call_with(field, value)
    fine = llmvigil.observe(name="fine")(plain)
    for i in range(CALLS):
        fine(i)
        odd_call(i)
    rows = stored(collector)
    assert len(rows) == 2 * CALLS
    odd_rows = [r for r in rows if r["name"] != "fine"]
    assert len(odd_rows) == CALLS
    assert {stored_value(r, field) for r in odd_rows} == {expected}


def test_a_number_the_column_cannot_hold_drops_that_field_only_and_marks_the_row(
    collector: Store,
) -> None:
    @llmvigil.observe(name="huge")
    def huge(i: int) -> dict:
        return {"output_text": "ok", "usage": {"prompt_tokens": 10**30, "completion_tokens": 3}}

    fine = llmvigil.observe(name="fine")(plain)
    for i in range(CALLS):
        fine(i)
        huge(i)
    rows = stored(collector)
    assert len(rows) == 2 * CALLS
    for row in (r for r in rows if r["name"] == "huge"):
        assert row["prompt_tokens"] is None and row["completion_tokens"] == 3
        assert "prompt_tokens" in row["metadata"]["llmvigil_error"]
    assert all("llmvigil_error" not in r["metadata"] for r in rows if r["name"] == "fine")


def test_a_trace_id_longer_than_the_store_allows_gets_a_stable_short_form(
    collector: Store,
) -> None:
    request_id = "request-" + "0123456789abcdef" * 12  # 200 characters, as some proxies send

    @llmvigil.observe(kind="llm")
    def child(i: int) -> str:
        return plain(i)

    @llmvigil.observe(kind="chain")
    def parent(i: int) -> str:
        return child(i)

    for i in range(3):
        with llmvigil.context(trace_id=request_id):
            parent(i)
    with llmvigil.context(trace_id="short-request-id"):
        parent(99)
    rows = stored(collector)
    assert len(rows) == 8
    long_ones = [r for r in rows if r["trace_id"] != "short-request-id"]
    assert len(long_ones) == 6
    (short_form,) = {r["trace_id"] for r in long_ones}  # one trace, the same id every time
    assert len(short_form) <= 64 and short_form.startswith("request-")
    assert all(r["metadata"]["llmvigil_ids"]["trace_id"] == request_id for r in long_ones)
    assert len(collector.spans(trace_id=short_form, limit=None)) == 6
    assert len(collector.spans(trace_id="short-request-id", limit=None)) == 2


def test_an_odd_environment_setting_is_cleaned(store_url: str) -> None:
    with Store(store_url) as store:
        llmvigil.configure(store=store, environment=f"staging{NUL}", app=SURROGATE)
        try:
            for i in range(5):
                llmvigil.observe(plain)(i)
            rows = stored(store)
        finally:
            llmvigil.shutdown()
    assert len(rows) == 5
    assert {(r["environment"], r["app"]) for r in rows} == {
        ("staging" + CLEANED[NUL], CLEANED[SURROGATE])
    }


@pytest.mark.parametrize(
    ("tags", "metadata", "stored_tags"),
    [
        ("prod", {"a": 1}, ["prod"]),  # one string is one tag, not its characters
        (5, [1, 2], ["5"]),
        (("x", b"y"), "just text", ["x", "y"]),
    ],
)
def test_odd_tags_and_metadata_never_raise_into_the_caller(
    collect: Store, tags: Any, metadata: Any, stored_tags: list[str]
) -> None:
    @llmvigil.observe(tags=tags, metadata=metadata)
    def decorated() -> str:
        llmvigil.attach(tags=tags, metadata=metadata)
        return "ok"

    with llmvigil.context(tags=tags, metadata=metadata):
        decorated()
    (row,) = stored(collect)
    tags_stored = row["tags"] if isinstance(row["tags"], list) else json.loads(row["tags"])
    assert tags_stored == stored_tags * 3
