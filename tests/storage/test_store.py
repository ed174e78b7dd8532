"""The Store, run against a DuckDB file and a real PostgreSQL server alike."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow as pa
import pytest
import sqlalchemy as sa

from llmvigil.errors import IngestError, StoreError
from llmvigil.storage import Store, schema
from llmvigil.storage.migrations import LATEST
from tests.storage.spans_factory import BASE, make_span


def test_opening_creates_every_table_at_the_latest_version(store: Store) -> None:
    names = set(sa.inspect(store.engine).get_table_names())
    assert {
        "spans",
        "evaluations",
        "feedback",
        "drift_results",
        "alert_events",
        "schema_version",
    } <= names
    assert store.schema_version == LATEST


def test_reopening_keeps_data_and_does_not_migrate_twice(store_url: str) -> None:
    with Store(store_url) as first:
        first.append_spans([make_span()])
    with Store(store_url) as second:
        assert second.count_spans() == 1
        with second.engine.connect() as conn:
            versions = conn.execute(sa.select(schema.schema_version.c.version)).scalars().all()
        assert versions == list(range(1, LATEST + 1))


def test_a_store_from_a_newer_llmvigil_is_refused(store_url: str) -> None:
    with Store(store_url) as store, store.engine.begin() as conn:
        conn.execute(
            schema.schema_version.insert().values(
                version=LATEST + 1, description="future", applied_at=datetime.now()
            )
        )
    with pytest.raises(StoreError, match="newer than this llmvigil"):
        Store(store_url)


def test_append_is_idempotent_by_span_id(store: Store) -> None:
    rows = [make_span(i) for i in range(50)]
    assert store.append_spans(rows) == 50
    assert store.append_spans(rows) == 0
    assert store.append_spans([*rows[:10], make_span(99)]) == 1
    assert store.count_spans() == 51


def test_duplicates_inside_one_batch_are_stored_once(store: Store) -> None:
    row = make_span()
    assert store.append_spans([row, dict(row)]) == 1
    assert store.count_spans() == 1


def test_an_id_reused_at_another_time_keeps_the_stored_span(store: Store) -> None:
    first = make_span(0, output_text="original")
    store.append_spans([first])
    reused = make_span(500, span_id=first["span_id"], output_text="impostor")
    assert store.append_spans([reused, make_span(501)]) == 1
    (kept,) = store.spans(trace_id=first["trace_id"])
    assert kept["output_text"] == "original"
    assert store.count_spans() == 2


def test_append_takes_arrow_tables(store: Store) -> None:
    rows = [make_span(i) for i in range(5)]
    for row in rows:
        for key in schema.SPAN_JSON_COLUMNS:
            row[key] = json.dumps(row[key])
    assert store.append_spans(pa.Table.from_pylist(rows)) == 5


def test_values_round_trip(store: Store) -> None:
    row = make_span(3, ttft_ms=12.5, reference="ref", error_message="ünïcode ✓")
    store.append_spans([row])
    (got,) = store.spans()
    for key in ("span_id", "trace_id", "latency_ms", "ttft_ms", "reference", "error_message"):
        assert got[key] == row[key]
    assert got["start_time"] == row["start_time"]
    assert got["context"] == ["passage one", "passage two"]
    assert got["metadata"] == {"k": 3}
    assert got["tags"] == ["a"]
    assert isinstance(got["ingested_at"], datetime)


def test_a_bad_batch_writes_nothing(store: Store) -> None:
    store.append_spans([make_span(0)])
    good = make_span(1)
    broken = make_span(2, latency_ms=None)
    with pytest.raises(IngestError, match="latency_ms"):
        store.append_spans([good, broken])
    with pytest.raises(IngestError, match="unknown columns"):
        store.append_spans([make_span(3, surprise=1)])
    with pytest.raises(IngestError, match="latency_ms"):
        store.append_spans([make_span(4, latency_ms="fast")])
    assert store.count_spans() == 1


def test_windowed_queries_filter_by_time_app_and_model(store: Store) -> None:
    rows = [make_span(i, app="a" if i % 2 else "b") for i in range(10)]
    rows.append(make_span(10, model="gpt-4o"))
    store.append_spans(rows)
    since, until = BASE + timedelta(seconds=2), BASE + timedelta(seconds=6)
    window = store.spans(since, until)
    assert [r["input_text"] for r in window] == [f"question {i}?" for i in range(2, 6)]
    assert store.count_spans(since, until, app="a") == 2
    assert store.count_spans(model="gpt-4o") == 1
    assert len(store.spans(limit=3)) == 3


def test_spans_without_evaluation_and_idempotent_scores(store: Store) -> None:
    rows = [make_span(i) for i in range(6)]
    store.append_spans(rows)
    todo = store.spans_without_evaluation("relevance", "1", limit=4)
    assert [r["span_id"] for r in todo] == [r["span_id"] for r in rows[:4]]
    scores = [
        {
            "span_id": r["span_id"],
            "evaluator": "relevance",
            "evaluator_version": "1",
            "score": 0.9,
            "passed": True,
            "method": "test",
            "details": {"why": "x"},
        }
        for r in todo
    ]
    assert store.write_evaluations(scores) == 4
    assert store.write_evaluations(scores) == 0
    left = store.spans_without_evaluation("relevance", "1", limit=10)
    assert [r["span_id"] for r in left] == [r["span_id"] for r in rows[4:]]
    assert len(store.spans_without_evaluation("relevance", "2", limit=10)) == 6
    (stored,) = store.evaluations(span_id=rows[0]["span_id"])
    assert stored["details"] == {"why": "x"} and stored["method"] == "test"


def test_scores_read_back_as_written_on_both_engines(store: Store) -> None:
    # DuckDB writes a batch of scores as one Arrow table, PostgreSQL as an INSERT: the
    # rows, their details' JSON, the span copies and the count must come out alike.
    rows = [make_span(i, app=f"app{i}") for i in range(3)]
    store.append_spans(rows)
    details = {"parts": [{"part": "when?", "coverage": 0.25}], "note": 'naïve "q"', "n": None}
    first, second, third = (r["span_id"] for r in rows)
    scores = [
        {
            "span_id": first,
            "evaluator": "relevance",
            "evaluator_version": 4,
            "score": 0.1234,
            "label": "failed",
            "passed": False,
            "method": "m",
            "details": details,
        },
        {"span_id": second, "evaluator": "relevance", "evaluator_version": "4", "method": "m"},
    ]
    assert store.write_evaluations([*scores, scores[0]]) == 2  # twice in one batch: once
    assert store.write_evaluations([*scores, {**scores[1], "span_id": third}]) == 1
    got = {r["span_id"]: r for r in store.evaluations(evaluator="relevance")}
    assert got[first]["details"] == details and got[first]["evaluator_version"] == "4"
    assert (got[first]["score"], got[first]["passed"], got[first]["label"]) == (
        0.1234,
        False,
        "failed",
    )
    assert got[second]["score"] is None and got[second]["details"] == {}
    assert [got[i]["span_app"] for i in (first, second, third)] == ["app0", "app1", "app2"]
    assert got[first]["span_start"] == rows[0]["start_time"]


def test_a_duckdb_score_batch_that_cannot_be_written_is_a_store_error(duckdb_url: str) -> None:
    with Store(duckdb_url) as store:
        score = {"span_id": "fine", "evaluator": "relevance", "evaluator_version": "4"}
        unwritable = {**score, "span_id": "other", "method": "m", "details": {"x": object()}}
        with pytest.raises(StoreError, match="could not write evaluations"):
            store.write_evaluations([{**score, "method": "m"}, unwritable])
        with pytest.raises(StoreError, match="NOT NULL"):
            store.write_evaluations(
                [{**score, "method": "m"}, {**unwritable, "details": {}, "method": None}]
            )
        assert not store.evaluations()  # nothing of a failed batch is kept


def test_feedback_is_stored_once_per_id(store: Store) -> None:
    row = make_span()
    store.append_spans([row])
    fid = store.add_feedback(span_id=row["span_id"], score=1.0, comment="good", author="ana")
    store.add_feedback(span_id=row["span_id"], score=1.0, feedback_id=fid)
    (got,) = store.feedback(row["span_id"])
    assert got["comment"] == "good" and got["author"] == "ana"
    with pytest.raises(IngestError, match="span_id or a trace_id"):
        store.add_feedback(score=1.0)
    with pytest.raises(IngestError, match="a score, a label or a comment"):
        store.add_feedback(span_id=row["span_id"])


def test_health_table_is_aggregated_per_grain(store: Store) -> None:
    rows = []
    for minute in range(3):
        for k in range(4):
            start = BASE + timedelta(minutes=minute, seconds=k * 10)
            rows.append(
                make_span(
                    start_time=start,
                    end_time=start,
                    latency_ms=float(100 * (k + 1)),
                    prompt_tokens=10,
                    completion_tokens=5,
                    total_tokens=15,
                    bytes_in=100,
                    bytes_out=50,
                    status="error" if k == 0 else "ok",
                )
            )
    store.append_spans(rows)
    table = store.metrics("1m")
    by = {(r.TimeGenerated, r.MetricName): r for r in table}
    latency = by[(BASE, "Latency")]
    assert (latency.Total, latency.Count, latency.Maximum, latency.Minimum) == (1000, 4, 400, 100)
    assert latency.Average == 250 and latency.TimeGrain == "PT1M"
    assert latency.UnitName == "Milliseconds"
    assert latency.P50 == pytest.approx(250) and latency.P99 == pytest.approx(397)
    assert by[(BASE, "TotalCalls")].Total == 4
    assert by[(BASE, "FailedCalls")].Average == 0.25
    assert by[(BASE, "ProcessedPromptTokens")].Total == 40
    assert by[(BASE, "GeneratedTokens")].Total == 20
    assert by[(BASE, "TokenTransaction")].Total == 60
    assert by[(BASE, "DataIn")].Total == 400 and by[(BASE, "DataIn")].UnitName == "Bytes"
    assert by[(BASE, "DataOut")].Average == 50
    assert len({r.TimeGenerated for r in table}) == 3
    five = store.metrics("5m")
    assert {r.TimeGenerated for r in five} == {BASE} and five[0].TimeGrain == "PT5M"
    assert store.metrics("1m", since=BASE + timedelta(minutes=2))[0].Count == 4
    assert store.metrics("1m", model="none") == []


def test_unknown_backend_is_refused_with_the_fix() -> None:
    with pytest.raises(StoreError, match="duckdb:///"):
        Store("sqlite:///x.db")


def test_a_duckdb_file_held_by_another_process_gives_a_clear_error(duckdb_url: str) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(30)",
            duckdb_url.removeprefix("duckdb:///"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="held by another process"):
            Store(duckdb_url)
    finally:
        holder.kill()
        holder.wait()
