"""The overview's traffic queries and the sidebar's options over a long range read span
rollups and give the raw aggregate's numbers (percentiles within the stated bound), on
DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from llmvigil.dashboard import queries
from llmvigil.dashboard.view import View
from llmvigil.storage import Store, schema
from llmvigil.storage.rollups import PERCENTILE_ERROR, refresh_span_rollups
from tests.storage.spans_factory import ROLLUP_END, Clock, spread

END = ROLLUP_END
#: Both longer than the raw-only ranges, and cut at odd minutes.
VIEWS = [
    View(END - timedelta(hours=30, minutes=2, seconds=9), END - timedelta(minutes=11)),
    View(END - timedelta(days=1, hours=9), END - timedelta(seconds=1), app="support"),
]


@pytest.fixture
def filled(store: Store, monkeypatch) -> Store:
    """Spans over three days, rolled up, then more that arrived after the refresh."""
    clock = Clock().install(monkeypatch)
    store.append_spans(spread(900))
    clock.advance(60)
    refresh_span_rollups(store)
    store.append_spans(spread(60, seed=4))
    # The queries' own refresh would read the late spans into the rollups: kept out, so the
    # rollup path's reading of what a refresh has not reached yet is tested too.
    monkeypatch.setattr(queries, "_fresh_rollups", lambda store: None)
    return store


def both(store: Store, monkeypatch, name: str, view: View, **params) -> tuple[list, list]:
    """(from rollups, raw) rows of query ``name``."""
    rolled = queries.run_query(store, name, view, params).to_pylist()
    with monkeypatch.context() as patch:
        patch.setattr(queries, "ROLLUP_FROM_S", 10**9)
        raw = queries.run_query(store, name, view, params).to_pylist()
    return rolled, raw


def assert_matches(rolled: dict, raw: dict) -> None:
    for name, value in raw.items():
        if name in ("p50", "p95", "p99"):
            assert abs(rolled[name] - value) <= PERCENTILE_ERROR * value * (1 + 1e-9), name
        elif isinstance(value, float):
            assert rolled[name] == pytest.approx(value, rel=1e-9), name
        else:
            assert rolled[name] == value, name


@pytest.mark.parametrize("view", VIEWS)
def test_overview_totals_from_rollups_match_the_raw_ones(filled, monkeypatch, view) -> None:
    rolled, raw = both(filled, monkeypatch, "overview_totals", view)
    assert {r["period"] for r in raw} == {"current", "previous"}
    by_period = {r["period"]: r for r in rolled}
    assert len(by_period) == len(rolled) == 2
    for row in raw:
        assert_matches(by_period[row["period"]], row)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("bucket_s", [None, 300, 3600])
def test_overview_series_from_rollups_matches_the_raw_one(
    filled, monkeypatch, view, bucket_s
) -> None:
    rolled, raw = both(filled, monkeypatch, "overview_series", view, bucket_s=bucket_s)
    assert [r["bucket"] for r in rolled] == [r["bucket"] for r in raw] and len(raw) > 5
    for a, b in zip(rolled, raw, strict=True):
        assert_matches(a, b)


@pytest.mark.parametrize("view", VIEWS)
def test_filter_options_from_rollups_are_the_raw_ones(filled, monkeypatch, view) -> None:
    rolled, raw = both(filled, monkeypatch, "filter_options", view)
    as_set = lambda rows: {tuple(r.values()) for r in rows}  # noqa: E731
    assert len(rolled) == len(as_set(rolled)) and as_set(rolled) == as_set(raw)
    assert (None, "m1", "test", "v1") in as_set(raw)


def test_a_long_range_reads_the_rollups_and_a_short_one_the_spans(filled) -> None:
    # Spans gone from the table without retention (which would drop their buckets too):
    # the rollups still count them, the raw aggregate does not.
    with filled.engine.begin() as conn:
        gone = conn.execute(
            sa.delete(schema.spans).where(schema.spans.c.start_time < END - timedelta(hours=7))
        ).rowcount
    assert gone
    long = View(END - timedelta(days=3), END)
    short = View(END - timedelta(hours=6), END)
    every = {"kind": None}
    calls = lambda view: sum(  # noqa: E731
        r["calls"] for r in queries.run_query(filled, "overview_series", view, every).to_pylist()
    )
    assert calls(long) > filled.count_spans(long.since, long.until)
    assert calls(short) == filled.count_spans(short.since, short.until)


def all_sessions(store: Store, view: View, user_id: str | None = None) -> list[dict]:
    """Every session of the view, latest first, grouped over all its spans at once."""
    s = schema.spans.c
    where = [*view.span_where(), s.session_id.is_not(None)]
    if user_id:
        where.append(s.user_id == user_id)
    last = sa.func.max(s.start_time)
    q = (
        sa.select(s.session_id, sa.func.count().label("spans"), last.label("last"),
                  sa.func.min(s.start_time).label("first"),
                  sa.func.sum(s.total_tokens).label("total_tokens"))
        .where(*where)
        .group_by(s.session_id)
        .order_by(last.desc(), s.session_id)
    )  # fmt: skip
    return store.fetch_arrow(q).to_pylist()


@pytest.mark.parametrize("user_id", [None, "u1"])
def test_sessions_pages_are_those_of_grouping_every_session(store: Store, user_id) -> None:
    rows = spread(700)
    for i, row in enumerate(rows):
        # Long sessions and short ones; the newest hours hold few, so the search widens.
        row["session_id"] = f"s{i % 40}" if i % 2 else f"t{i // 3}"
        if row["start_time"] > END - timedelta(hours=5) and i % 5:
            row["session_id"] = None
    store.append_spans(rows)
    view = View(END - timedelta(days=2, hours=3), END - timedelta(minutes=1))
    expected = all_sessions(store, view, user_id)
    assert len(expected) > 60
    for offset in (0, 7, 50):
        params = {"limit": 20, "offset": offset, "user_id": user_id}
        found = queries.run_query(store, "sessions", view, params).to_pylist()
        keys = ("session_id", "spans", "last", "first", "total_tokens")
        assert [{k: r[k] for k in keys} for r in found] == expected[offset : offset + 20]


def test_text_search_ignores_case_and_takes_wildcards_literally(store: Store) -> None:
    texts = ["Reset My PASSWORD", "100% sure", "100 percent sure", "snake_case", "snakeXcase"]
    rows = spread(len(texts))
    for row, text in zip(rows, texts, strict=True):
        row["input_text"], row["output_text"] = text, "ok"
    store.append_spans(rows)
    view = View(END - timedelta(days=4), END)

    def found(text: str) -> list[str]:
        table = queries.run_query(store, "search_spans", view, {"text": text})
        return sorted(table["input_text"].to_pylist())

    assert found("my password") == ["Reset My PASSWORD"]
    assert found("100%") == ["100% sure"]
    assert found("snake_") == ["snake_case"]
    assert found("zzz") == []


def test_session_scores_are_the_means_of_each_sessions_scored_spans(store: Store) -> None:
    rows = spread(300)
    for i, row in enumerate(rows):
        row["session_id"] = f"s{i % 9}"
    store.append_spans(rows)
    store.write_evaluations(
        {"span_id": r["span_id"], "evaluator": name, "evaluator_version": "1",
         "score": (i % 10) / 10 if name == "relevance" or i % 2 else None, "method": "test"}
        for i, r in enumerate(rows) for name in ("relevance", "brevity")
    )  # fmt: skip
    view = View(END - timedelta(days=2), END - timedelta(hours=3))
    asked = ["s1", "s4", "s8", "nobody"]
    found = queries.run_query(store, "session_scores", view, {"session_ids": asked}).to_pylist()
    expected = {}
    for i, row in enumerate(rows):
        if row["session_id"] in asked and view.since <= row["start_time"] < view.until:
            for name in ("relevance", "brevity"):
                if name == "relevance" or i % 2:
                    expected.setdefault((row["session_id"], name), []).append((i % 10) / 10)
    means = {(r["session_id"], r["evaluator"]): r["mean"] for r in found}
    assert means.keys() == expected.keys() and len(means) == 6
    for key, scores in expected.items():
        assert means[key] == pytest.approx(sum(scores) / len(scores))
    assert queries.run_query(store, "session_scores", view, {"session_ids": ["x"]}).num_rows == 0
