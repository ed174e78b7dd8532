"""Retention deletes spans past their app's age with their evaluations, vectors and feedback,
in bounded transactions, on DuckDB and PostgreSQL; a dry run counts the same and deletes
nothing."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from llmvigil.storage import Store, schema
from llmvigil.storage.retention import (
    TABLES,
    RetentionJob,
    RetentionPolicy,
    RetentionReport,
    describe,
)
from tests.storage.spans_factory import make_span

NOW = datetime(2026, 12, 1, 12, 0)
REPO = Path(__file__).resolve().parents[2]


def span(app: str | None, days: float, i: int = 0, **fields) -> dict:
    start = NOW - timedelta(days=days)
    return make_span(i, app=app, start_time=start, end_time=start + timedelta(seconds=1), **fields)


def fill(store: Store, rows: list[dict]) -> list[dict]:
    """Store ``rows`` with two scores each, vectors for every other, feedback for every third."""
    store.append_spans(rows)
    store.write_evaluations(
        {"span_id": r["span_id"], "evaluator": name, "evaluator_version": "1", "score": 0.5,
         "method": "test"}
        for r in rows for name in ("relevance", "brevity")
    )  # fmt: skip
    store.write_vectors(
        {"span_id": r["span_id"], "model": "m", "input_vector": b"\x01" * 8} for r in rows[::2]
    )
    for r in rows[::3]:
        store.add_feedback(span_id=r["span_id"], score=1.0)
    for i, r in enumerate(rows):  # what each was given, for assert_whole
        r["_given"] = {"vector": i % 2 == 0, "feedback": i % 3 == 0}
    return rows


def column(store: Store, table: sa.Table, name: str = "span_id") -> list:
    return store.fetch_arrow(sa.select(table.c[name])).column(name).to_pylist()


def assert_whole(store: Store, kept: list[dict]) -> None:
    """The store holds exactly the spans ``kept``, each with all of its rows, and no others."""
    ids = {r["span_id"] for r in kept}
    assert set(column(store, schema.spans)) == ids
    assert sorted(column(store, schema.evaluations)) == sorted(2 * list(ids))
    vectors = {r["span_id"] for r in kept if r["_given"]["vector"]}
    assert sorted(column(store, schema.span_vectors)) == sorted(vectors)
    rated = {r["span_id"] for r in kept if r["_given"]["feedback"]}
    assert sorted(f for f in column(store, schema.feedback) if f is not None) == sorted(rated)


def two_apps() -> list[dict]:
    """checkout and support spans at ages 0.5 to 19.5 days, and a few with no app."""
    rows = []
    for i, days in enumerate(d + 0.5 for d in range(20)):
        rows.append(span("checkout", days, i))
        rows.append(span("support", days, i))
    rows += [span(None, 2.5), span(None, 15.5)]
    return rows


def expected(rows: list[dict], keep: dict[str | None, float]) -> tuple[list, list]:
    """(kept, gone) for a retention of ``keep[app]`` days (``keep[None]`` for the others)."""
    kept, gone = [], []
    for r in rows:
        days = keep.get(r["app"], keep[None])
        old = days and r["start_time"] < NOW - timedelta(days=days)
        (gone if old else kept).append(r)
    return kept, gone


def test_old_spans_go_with_their_rows_and_per_app_overrides_hold(store: Store) -> None:
    rows = fill(store, two_apps())
    policy = RetentionPolicy(spans_days=10, apps={"checkout": 3}, batch_size=5)
    report = store.delete_expired(policy, now=NOW)
    kept, gone = expected(rows, {"checkout": 3, None: 10})
    assert_whole(store, kept)
    per_app = {
        app: sum(1 for r in gone if r["app"] == app) for app in ("checkout", "support", None)
    }
    assert {app: counts["spans"] for app, counts in report.deleted.items()} == per_app
    assert per_app == {"checkout": 17, "support": 10, None: 1}
    assert report.totals["evaluations"] == 2 * len(gone)
    assert report.cutoffs == {
        "checkout": NOW - timedelta(days=3),
        "support": NOW - timedelta(days=10),
        None: NOW - timedelta(days=10),
    }
    # Run again: nothing is older any more.
    again = store.delete_expired(policy, now=NOW)
    assert again.totals == dict.fromkeys(TABLES, 0) and again.batches == 0


def test_an_app_kept_for_ever_keeps_everything_and_only_overrides_delete(store: Store) -> None:
    rows = fill(store, two_apps())
    store.delete_expired(RetentionPolicy(spans_days=5, apps={"support": 0}), now=NOW)
    kept, _ = expected(rows, {"support": 0, None: 5})
    assert_whole(store, kept)
    assert sum(1 for r in kept if r["app"] == "support") == 20
    # No default, one override: only that app loses spans.
    store.delete_expired(RetentionPolicy(apps={"checkout": 2}), now=NOW)
    kept, _ = expected(kept, {"checkout": 2, None: 0})
    assert_whole(store, kept)
    assert {r["app"] for r in kept} == {"checkout", "support", None}


def test_nothing_is_deleted_without_a_retention(store: Store) -> None:
    rows = fill(store, two_apps())
    report = store.delete_expired(RetentionPolicy(apps={"checkout": 0}), now=NOW)
    assert report.deleted == {} and report.batches == 0
    assert_whole(store, rows)


def test_batches_are_bounded_and_each_is_committed(store: Store) -> None:
    rows = fill(store, [span("checkout", 30 + i / 10, i) for i in range(50)] + [span("a", 1)])
    seen: list[int] = []

    def stop() -> bool:
        # Asked before every batch: what another connection sees is what was committed.
        seen.append(store.count_spans())
        return False

    report = store.delete_expired(RetentionPolicy(spans_days=7, batch_size=7), now=NOW, stop=stop)
    assert report.totals["spans"] == 50 and report.batches == 8
    steps = [a - b for a, b in itertools.pairwise(seen)]
    # (Asked again by the sweep for scores of deleted spans, when nothing is left to delete.)
    assert seen[0] == 51 and steps[:8] == [*[7] * 7, 1] and max(steps) == 7
    assert store.count_spans() == 1
    assert_whole(store, rows[-1:])


def test_a_stopped_run_leaves_whole_batches_and_the_next_run_goes_on(store: Store) -> None:
    rows = fill(store, [span("checkout", 30 + i / 10, i) for i in range(50)] + [span("a", 1)])
    asked: list[int] = []

    def stop_after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    policy = RetentionPolicy(spans_days=7, batch_size=7)
    first = store.delete_expired(policy, now=NOW, stop=stop_after_two)
    assert first.stopped and first.batches == 2 and first.totals["spans"] == 14
    # The oldest went first; what is left is whole.
    by_age = sorted(rows[:50], key=lambda r: r["start_time"])
    assert_whole(store, [*by_age[14:], rows[-1]])
    rest = store.delete_expired(policy, now=NOW)
    assert not rest.stopped and first.totals["spans"] + rest.totals["spans"] == 50
    assert first.totals["evaluations"] + rest.totals["evaluations"] == 100
    assert_whole(store, rows[-1:])


def _trace_feedback_store(store: Store) -> dict[str, dict]:
    """Traces whose feedback is given to the trace, not a span:

    all_old: two old checkout spans; mixed: an old and a young span; two_apps: old spans of
    checkout and support (different cutoffs); kept_app: an old checkout span and an old
    span of an app kept for ever.
    """
    traces = {
        "all_old": [span("checkout", 20), span("checkout", 21)],
        "mixed": [span("checkout", 20), span("checkout", 0.1)],
        "two_apps": [span("checkout", 20), span("support", 20)],
        "kept_app": [span("checkout", 20), span("archive", 20)],
    }
    for name, spans in traces.items():
        for s in spans:
            s["trace_id"] = name
        fill(store, spans)
        store.add_feedback(trace_id=name, score=0.0, comment=f"trace {name}")
    return traces


def test_a_traces_feedback_goes_with_its_last_span(store: Store) -> None:
    _trace_feedback_store(store)
    policy = RetentionPolicy(spans_days=10, apps={"checkout": 5, "archive": 0}, batch_size=1)
    dry = store.delete_expired(policy, now=NOW, dry_run=True)
    report = store.delete_expired(policy, now=NOW)
    left = {r["trace_id"] for r in store.feedback() if r["span_id"] is None}
    assert left == {"mixed", "kept_app"}
    # Span feedback: one per trace's first span (fill gives every third span one).
    assert report.deleted["checkout"]["feedback"] == 4 + 1  # + all_old's trace feedback
    # two_apps' trace feedback goes with its last span: support's, deleted after checkout's.
    assert report.deleted["support"]["feedback"] == 1
    assert dry.deleted == report.deleted


def test_a_dry_run_deletes_nothing_and_counts_what_the_run_deletes(store: Store) -> None:
    rows = fill(store, two_apps())
    for r in rows[::4]:
        store.add_feedback(trace_id=r["trace_id"], score=1.0)
    policy = RetentionPolicy(spans_days=10, apps={"checkout": 3, "support": 0}, batch_size=4)
    dry = store.delete_expired(policy, now=NOW, dry_run=True)
    assert dry.dry_run and dry.batches == 0
    assert_whole(store, rows)
    assert len(store.feedback()) == len(rows[::3]) + len(rows[::4])
    report = store.delete_expired(policy, now=NOW)
    assert dry.deleted == report.deleted and dry.cutoffs == report.cutoffs
    assert report.totals["feedback"] > 0 and report.totals["span_vectors"] > 0


def test_a_killed_run_leaves_a_consistent_store_and_the_next_finishes(tmp_path) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    with Store(url) as store:
        rows = fill(store, [span("checkout", 30 + i / 1000, i) for i in range(1000)])
    # The child deletes in batches of 20 and is killed with SIGKILL inside its 6th batch.
    child = f"""
import datetime, os, signal, threading
from llmvigil.storage import Store
from llmvigil.storage.retention import RetentionPolicy
store = Store({url!r})
asked = []
def stop():
    asked.append(1)
    if len(asked) == 6:
        threading.Timer(0.005, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return False
store.delete_expired(RetentionPolicy(spans_days=7, batch_size=20), now={NOW!r}, stop=stop)
"""
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", child], env=environ, timeout=120)
    assert done.returncode == -9
    with Store(url) as store:
        left = store.count_spans()
        assert left % 20 == 0 and 0 < left < 1000
        by_age = sorted(rows, key=lambda r: r["start_time"])
        assert_whole(store, by_age[1000 - left :])
        report = store.delete_expired(RetentionPolicy(spans_days=7, batch_size=500), now=NOW)
        assert report.totals["spans"] == left and store.count_spans() == 0
        assert column(store, schema.evaluations) == []


def test_the_report_adds_up_per_table() -> None:
    report = RetentionReport(dry_run=True, now=NOW)
    report.add("a", {"spans": 2, "evaluations": 4})
    report.add(None, {"spans": 1, "feedback": 1})
    assert report.totals == {
        "spans": 3, "evaluations": 4, "span_vectors": 0, "feedback": 1, "collector_drops": 0
    }  # fmt: skip


def test_drop_reports_go_at_their_apps_age_in_bounded_batches(store: Store) -> None:
    ages = {"checkout": [1, 4, 5, 6], "support": [1, 12], "batch": [2, 40, 50]}
    for app, days in ages.items():
        for i, age in enumerate(days):
            store.add_collector_drops(
                report_id=f"{app}-{i}", dropped=10 + i, app=app,
                reported_at=NOW - timedelta(days=age),
            )  # fmt: skip
    store.append_spans([span("checkout", 20)])  # an app with old spans too
    policy = RetentionPolicy(spans_days=10, apps={"checkout": 3, "batch": 0}, batch_size=2)
    dry = store.delete_expired(policy, now=NOW, dry_run=True)
    assert len(store.collector_drops()) == 9
    report = store.delete_expired(policy, now=NOW)
    assert dry.deleted == report.deleted
    assert report.deleted["checkout"]["collector_drops"] == 3  # 4, 5 and 6 days: 2 batches
    assert report.deleted["checkout"]["spans"] == 1
    assert report.deleted["support"] == {**dict.fromkeys(TABLES, 0), "collector_drops": 1}
    assert "batch" not in report.deleted  # kept for ever
    assert report.batches == 1 + 2 + 1
    left = {(d["app"], d["report_id"]) for d in store.collector_drops()}
    assert left == {("checkout", "checkout-0"), ("support", "support-0")} | {
        ("batch", f"batch-{i}") for i in range(3)
    }
    assert "4 drop reports" in describe(report)


def test_the_job_logs_what_it_deleted_and_a_stopped_job_deletes_nothing(store: Store) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    aged = lambda days: make_span(app="a", start_time=now - timedelta(days=days))  # noqa: E731
    fill(store, [aged(20), aged(1)])
    said: list[str] = []
    job = RetentionJob(store, RetentionPolicy(spans_days=7), said.append)
    report = job()
    assert report.totals["spans"] == 1 and said == [describe(report)]
    assert said[0].startswith("retention deleted 1 spans (a 1), 2 evaluations, 1 vectors")
    assert job().totals["spans"] == 0 and len(said) == 1  # nothing deleted: nothing said
    fill(store, [aged(30)])
    job.stop()
    assert job().stopped and store.count_spans() == 2


def test_scores_written_for_a_span_already_deleted_go_at_the_next_run(store: Store) -> None:
    rows = fill(store, [span("a", 20, 0), span("a", 1, 1)])
    policy = RetentionPolicy(spans_days=7)
    first = store.delete_expired(policy, now=NOW)
    assert first.totals["spans"] == 1 and first.orphans == dict.fromkeys(TABLES, 0)
    # An evaluator read the old span before the batch deleted it, and writes after.
    late = datetime.now(UTC).replace(tzinfo=None)
    gone = rows[0]["span_id"]
    store.write_evaluations(
        [{"span_id": gone, "evaluator": "relevance", "evaluator_version": "2", "method": "t"}]
    )
    store.write_vectors([{"span_id": gone, "model": "m", "output_vector": b"\x02"}])
    store.add_feedback(span_id="not-stored-yet", score=1.0)  # feedback may precede its span
    # Looking only at rows written after it: not found.
    later = store.delete_expired(policy, now=NOW, orphans_since=late + timedelta(hours=1))
    assert later.totals == dict.fromkeys(TABLES, 0)
    dry = store.delete_expired(policy, now=NOW, orphans_since=late, dry_run=True)
    report = store.delete_expired(policy, now=NOW, orphans_since=late)
    assert report.orphans == dry.orphans == {
        "spans": 0, "evaluations": 1, "span_vectors": 1, "feedback": 0, "collector_drops": 0
    }  # fmt: skip
    assert report.totals["evaluations"] == 1 and report.deleted == {}
    kept = rows[1]["span_id"]
    assert column(store, schema.evaluations) == [kept, kept]
    assert column(store, schema.span_vectors) == []  # fill gave one to the first span only
    assert [f["span_id"] for f in store.feedback()] == ["not-stored-yet"]
