"""Rows either engine would refuse are found before the write, the same on DuckDB and PostgreSQL.

``append_spans`` refuses a batch holding one (nothing stored, the message names
the row, the column and why); ``append_valid_spans`` stores the others and
returns the refused rows with the reason.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from llmvigil.errors import IngestError, StoreError
from llmvigil.storage import Store
from llmvigil.storage.bulk import REASON_COLUMN
from tests.storage.spans_factory import BATCH_SCHEMA, make_span, segment_table, with_raw_bytes

UNFIT = {
    "nul in user_id": ({"user_id": "u\x00"}, "user_id holds a NUL"),
    "nul in input_text": ({"input_text": "a\x00b"}, "input_text holds a NUL"),
    "trace_id over 64": ({"trace_id": "t" * 65}, "trace_id is 65 characters"),
    "parent_id over 64": ({"parent_id": "p" * 200}, "parent_id is 200 characters"),
    "malformed metadata": ({"metadata": '{"region": "eu",'}, "metadata is not valid JSON"),
    "malformed context": ({"context": '["one", "two"'}, "context is not valid JSON"),
    "NaN in metadata": ({"metadata": '{"t": NaN}'}, "metadata is not valid JSON"),
    "escaped NUL in metadata": ({"metadata": '{"k": "\\u0000"}'}, "metadata holds a NUL"),
    "required name missing": ({"name": None}, "name is required"),
}


@pytest.mark.parametrize("case", list(UNFIT))
def test_a_row_either_engine_refuses_is_set_apart_and_the_others_stored(
    store: Store, case: str
) -> None:
    change, reason = UNFIT[case]
    rows = [make_span(i) for i in range(10)]
    rows[4] = make_span(4, **change)
    inserted, refused = store.append_valid_spans(segment_table(rows))
    assert inserted == 9
    stored = {r["span_id"] for r in store.spans(limit=None)}
    assert stored == {r["span_id"] for i, r in enumerate(rows) if i != 4}
    assert refused.num_rows == 1
    assert refused.column("span_id").to_pylist() == [rows[4]["span_id"]]
    assert reason in refused.column(REASON_COLUMN)[0].as_py()
    # The refused row comes back as it was given.
    for column, value in change.items():
        assert refused.column(column)[0].as_py() == value


@pytest.mark.parametrize("case", list(UNFIT))
def test_append_spans_refuses_a_batch_with_an_unfit_row_naming_it(store: Store, case: str) -> None:
    change, reason = UNFIT[case]
    rows = [make_span(i) for i in range(3)]
    rows[1] = make_span(1, **change)
    with pytest.raises(IngestError, match="unfit for the store") as caught:
        store.append_spans(segment_table(rows))
    assert reason in str(caught.value) and rows[1]["span_id"] in str(caught.value)
    assert store.count_spans() == 0


@pytest.mark.parametrize("column", ["output_text", "user_id", "trace_id", "metadata", "tags"])
def test_invalid_utf8_in_a_string_column_refuses_that_row_only(store: Store, column: str) -> None:
    rows = [make_span(i) for i in range(6)]
    table = with_raw_bytes(segment_table(rows), column, 2, b'["caf\xe9 \xff"]')
    inserted, refused = store.append_valid_spans(table)
    assert inserted == 5 and store.count_spans() == 5
    assert refused.column(REASON_COLUMN).to_pylist() == [f"{column} is not valid UTF-8"]
    assert refused.column("span_id").to_pylist() == [rows[2]["span_id"]]


def test_invalid_utf8_is_named_in_append_spans_error(store: Store) -> None:
    with pytest.raises(IngestError, match="output_text is not valid UTF-8"):
        store.append_spans(with_raw_bytes(segment_table([make_span(9)]), "output_text", 0, b"\xc3"))


def test_a_value_of_another_type_refuses_its_row_not_the_batch(store: Store) -> None:
    given = {
        c: segment_table([make_span(i) for i in range(4)]).column(c) for c in BATCH_SCHEMA.names
    }
    given["latency_ms"] = pa.array(["12.5", "fast", "30", "7"])  # text another writer left
    inserted, refused = store.append_valid_spans(pa.table(given))
    assert inserted == 3
    assert sorted(r["latency_ms"] for r in store.spans(limit=None)) == [7.0, 12.5, 30.0]
    (reason,) = refused.column(REASON_COLUMN).to_pylist()
    assert "latency_ms" in reason and "'fast'" in reason


def test_dicts_with_one_bad_value_name_its_row(store: Store) -> None:
    rows = [make_span(0), make_span(1, prompt_tokens="many"), make_span(2)]
    with pytest.raises(IngestError, match=r"row 1 .*prompt_tokens 'many'"):
        store.append_spans(rows)
    nan_metadata = make_span(3, metadata={"temperature": float("nan")})
    with pytest.raises(IngestError, match="metadata cannot be written as JSON"):
        store.append_spans([nan_metadata])
    assert store.count_spans() == 0


def test_many_bad_rows_are_found_in_one_pass(store: Store) -> None:
    rows = [make_span(i, metadata="{oops" if i % 3 == 0 else '{"ok": 1}') for i in range(300)]
    inserted, refused = store.append_valid_spans(segment_table(rows))
    assert inserted == 200 and refused.num_rows == 100
    assert set(refused.column(REASON_COLUMN).to_pylist()) == {
        "metadata is not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))"
    }


def test_good_batches_take_the_fast_path_unchanged(store: Store) -> None:
    rows = [make_span(i, input_text="ünïcode ✓ \U0001f600") for i in range(50)]
    inserted, refused = store.append_valid_spans(segment_table(rows))
    assert inserted == 50 and refused.num_rows == 0
    assert store.append_valid_spans(segment_table(rows))[0] == 0  # idempotent
    assert store.spans(limit=1)[0]["input_text"] == "ünïcode ✓ \U0001f600"


def test_a_store_that_fails_raises_store_error_not_bad_rows(tmp_path) -> None:
    store = Store(f"duckdb:///{tmp_path / 's.duckdb'}")
    store._duck.execute("DROP TABLE spans")  # the store is broken, not the rows
    with pytest.raises(StoreError, match="could not append spans"):
        store.append_valid_spans(segment_table([make_span(0)]))
    store.close()


def test_a_whole_batch_problem_is_still_an_ingest_error(store: Store) -> None:
    table = segment_table([make_span(0)])
    with pytest.raises(IngestError, match="unknown columns"):
        store.append_valid_spans(table.append_column("surprise", pa.array([1])))
    with pytest.raises(IngestError, match="latency_ms"):
        store.append_valid_spans(table.drop_columns(["latency_ms"]))


def test_an_old_time_the_engine_refuses_is_isolated_by_bisection(store: Store) -> None:
    rows = [make_span(i) for i in range(16)]
    table = segment_table(rows)
    # Year 1 is fine for Arrow and DuckDB; PostgreSQL and Python's datetime stop earlier or
    # later: a value only the engine finds. Build a start time before year 1.
    start = table.column("start_time").cast(pa.int64()).to_pylist()
    start[11] = -70_000_000_000_000_000  # about 250 BC
    table = table.set_column(
        table.schema.get_field_index("start_time"),
        "start_time",
        pa.array(start, pa.int64()).cast(pa.timestamp("us")),
    )
    inserted, refused = store.append_valid_spans(table)
    stored = store.count_spans(since=datetime(2000, 1, 1))
    assert inserted + refused.num_rows == 16 and stored >= 15
    if refused.num_rows:
        assert refused.column("span_id").to_pylist() == [rows[11]["span_id"]]
