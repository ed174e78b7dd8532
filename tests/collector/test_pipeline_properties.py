"""Any values in any field of a span: the caller never sees an error, no batch is lost, and every
recorded call arrives in the store exactly once, directly or through a spool segment and ingest.

Values: text with lone surrogates, NUL, control and direction characters, 200,000 characters;
integers beyond 64 bits and beyond Python's digit limit; NaN and infinities; bytes that are not
UTF-8; nested and cyclic lists and dicts; objects whose ``__str__``, ``__repr__``, attributes,
truth or iteration fail. Fields: decorator arguments and results, exceptions, ``context()``,
``attach()``, ``observe()`` and ``span()`` settings (names, models, tags, metadata).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmvigil
from llmvigil.collector.spool import BAD_FOLDER, ingest_spool, segments
from llmvigil.storage import Store


class Unprintable:
    """str() and repr() fail."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # How hypothesis shows a failing example; nothing of llmvigil's calls it.
        printer.text(f"{type(self).__name__}()")


class Hostile(Unprintable):
    """Every attribute, truth test, length and iteration fails too."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")

    def __bool__(self) -> bool:
        raise RuntimeError("no truth")

    def __len__(self) -> int:
        raise RuntimeError("no len")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")


class OddError(Exception):
    """An exception whose message cannot be printed."""

    def __str__(self) -> str:
        raise RuntimeError("no message")


def beyond_the_digit_limit() -> int:
    """An int Python will not even print (more than 4,300 digits)."""
    return 10**5_000


def cyclic_list(items: list) -> list:
    items.append(items)
    return items


def cyclic_dict(items: dict) -> dict:
    items["self"] = items
    return items


SPECIAL_TEXTS = [
    "\ud800",
    "lone \udfff low",
    "\x00",
    "a\x00b\x00",
    "\x1b[31mred\x07\x08",
    "\u202eevil\u202c",
    "\ufeff\ufffe\uffff",
    "\U0010ffff\U0001f600",
    "x" * 200_000,
    "",
]
odd_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(SPECIAL_TEXTS),
)
printable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, -(2**70), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=40),
    odd_text,
)
scalars = st.one_of(
    printable_scalars,
    st.builds(beyond_the_digit_limit),
    st.builds(Unprintable),
    st.builds(Hostile),
)
keys = st.one_of(odd_text, st.integers(), st.none(), st.booleans(), st.builds(Unprintable))


def containers_of(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``leaves`` and nested, cyclic lists, tuples and dicts of them."""
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(keys, inner, max_size=4),
            st.builds(cyclic_list, st.lists(inner, max_size=3)),
            st.builds(cyclic_dict, st.dictionaries(keys, inner, max_size=3)),
        ),
        max_leaves=12,
    )


any_value = containers_of(scalars)
# Values whose str() fails, given to context(), have their own test below.
printable_value = st.recursive(
    printable_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(odd_text, st.integers()), inner, max_size=4),
        st.builds(cyclic_list, st.lists(inner, max_size=3)),
    ),
    max_leaves=8,
)
# What each field's own type allows, plus anything: the hot path must take both.
tags = st.one_of(st.lists(any_value, max_size=4), st.tuples(any_value))
metadata = st.one_of(st.dictionaries(keys, any_value, max_size=4))


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    """One observed call: how it is declared, its context, what it attaches, what it returns."""
    return {
        "observe": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": odd_text,
                    "model": any_value,
                    "prompt_version": any_value,
                    "app": any_value,
                    "tags": tags,
                    "metadata": metadata,
                },
            )
        ),
        "context": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "user_id": printable_value,
                    "session_id": printable_value,
                    "trace_id": printable_value,
                    "metadata": metadata,
                    "tags": tags,
                },
            )
        ),
        "attach": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "context": any_value,
                    "reference": any_value,
                    "input": any_value,
                    "output": any_value,
                    "model": any_value,
                    "usage": any_value,
                    "metadata": metadata,
                    "tags": tags,
                },
            )
        ),
        "args": draw(st.lists(any_value, max_size=3)),
        "kwargs": draw(
            st.dictionaries(
                st.sampled_from(["messages", "prompt", "input", "query", "passages", "x"]),
                any_value,
                max_size=3,
            )
        ),
        "result": draw(any_value),
        "raises": draw(st.booleans()),
        "kind": draw(st.sampled_from(["llm", "chain", "retrieval", "tool", "other"])),
        "span_name": draw(st.one_of(st.none(), odd_text)),
        "span_input": draw(any_value),
    }


def make_call(call: dict[str, Any]) -> int:
    """Make the call as an app would; return how many spans it records."""

    def body(*args: Any, **kwargs: Any) -> Any:
        if call["attach"]:
            llmvigil.attach(**call["attach"])
        if call["raises"]:
            raise OddError()
        return call["result"]

    observed = llmvigil.observe(
        kind=call["kind"], context_arg="passages", reference_arg="x", **call["observe"]
    )(body)
    with llmvigil.context(**call["context"]):
        spans = 1
        if call["span_name"] is not None:
            spans += 1
            with llmvigil.span(call["span_name"], input=call["span_input"]) as block:
                block.output = call["result"]
                with contextlib.suppress(OddError):
                    observed(*call["args"], **call["kwargs"])
        else:
            with contextlib.suppress(OddError):
                observed(*call["args"], **call["kwargs"])
    return spans


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def direct_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"duckdb:///{tmp_path / 'direct.duckdb'}")
    llmvigil.configure(store=store, flush_interval_s=60, spool_dir=str(tmp_path / "fallback"))
    yield store
    llmvigil.shutdown()
    store.close()


@PROPERTY
@given(batch=st.lists(calls(), min_size=1, max_size=4))
def test_any_values_reach_the_store_directly_once_each(
    direct_store: Store, tmp_path: Path, batch: list[dict[str, Any]]
) -> None:
    before = direct_store.count_spans()
    dropped = llmvigil.stats()["dropped"]
    expected = sum(make_call(call) for call in batch)  # raises nothing into the caller
    assert llmvigil.flush(timeout=60)
    assert llmvigil.stats()["dropped"] == dropped
    assert segments(tmp_path / "fallback") == [], "the store refused a batch"
    assert direct_store.count_spans() == before + expected


@pytest.fixture
def spooling(tmp_path: Path) -> Iterator[Path]:
    spool = tmp_path / "spool"
    llmvigil.configure(sink="spool", spool_dir=str(spool), flush_interval_s=60)
    yield spool
    llmvigil.shutdown()


@PROPERTY
@given(batch=st.lists(calls(), min_size=1, max_size=4))
def test_any_values_reach_the_store_through_a_segment_once_each(
    spooling: Path, tmp_path: Path, batch: list[dict[str, Any]]
) -> None:
    expected = sum(make_call(call) for call in batch)
    assert llmvigil.flush(timeout=60)
    with Store(f"duckdb:///{tmp_path / 'ingested.duckdb'}") as store:
        before = store.count_spans()
        report = ingest_spool(store, spooling)
        assert report.bad == [] and report.bad_rows == 0
        assert not (spooling / BAD_FOLDER).exists()
        assert report.inserted == expected == store.count_spans() - before


@pytest.mark.postgres
@settings(PROPERTY, max_examples=60)
@given(batch=st.lists(calls(), min_size=1, max_size=4))
def test_what_the_collector_writes_postgres_accepts_too(
    spooling: Path, postgres_url: str, batch: list[dict[str, Any]]
) -> None:
    expected = sum(make_call(call) for call in batch)
    assert llmvigil.flush(timeout=60)
    with Store(postgres_url) as store:
        before = store.count_spans()
        report = ingest_spool(store, spooling)
        assert report.bad == [] and report.bad_rows == 0
        assert report.inserted == expected == store.count_spans() - before


@pytest.mark.parametrize("field", ["user_id", "session_id", "trace_id"])
@pytest.mark.parametrize("value", [Unprintable(), beyond_the_digit_limit()], ids=["str", "int"])
def test_context_takes_ids_whose_str_fails(collect: Store, field: str, value: Any) -> None:
    with llmvigil.context(**{field: value}):
        llmvigil.observe(lambda: "ok")()
    assert llmvigil.flush(timeout=10)
    (row,) = collect.spans(limit=None)
    assert row[field]
