"""Score and span rollups count every row once, however refreshes and arrivals interleave;
rollup reads give the raw aggregate's numbers (percentiles within the stated bound); retention
drops their buckets; on DuckDB and PostgreSQL."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from llmvigil.storage import Store, schema
from llmvigil.storage.retention import RetentionPolicy
from llmvigil.storage.rollups import (
    PERCENTILE_ERROR,
    SETTLE_S,
    latency_percentiles,
    refresh_score_rollups,
    refresh_span_rollups,
    span_traffic,
)
from tests.storage.spans_factory import ROLLUP_END, Clock, spread

END = ROLLUP_END


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock().install(monkeypatch)


def refresh(store: Store, clock: Clock) -> tuple[int, int]:
    """Both refreshes, once what is stored has settled; the rows each wrote."""
    clock.advance(60)
    return refresh_span_rollups(store), refresh_score_rollups(store)


def rollup_calls(store: Store) -> int:
    r = schema.span_rollups.c
    return int(store.fetch_arrow(sa.select(sa.func.sum(r.calls).label("n")))["n"][0].as_py() or 0)


def scored(store: Store) -> int:
    r = schema.score_rollups.c
    q = sa.select(sa.func.sum(r.scored).label("n"))
    return int(store.fetch_arrow(q)["n"][0].as_py() or 0)


def score(rows: list[dict], value: float = 0.5) -> list[dict]:
    return [{"span_id": r["span_id"], "evaluator": "relevance", "evaluator_version": "1",
             "score": value, "passed": value >= 0.5, "method": "test"} for r in rows]  # fmt: skip


# -- refreshing -------------------------------------------------------------------------------


def test_a_second_refresh_adds_nothing_and_later_rows_count_once(store: Store, clock) -> None:
    first = spread(200)
    store.append_spans(first)
    store.write_evaluations(score(first))
    assert min(refresh(store, clock)) > 0
    assert rollup_calls(store) == 200 and scored(store) == 200
    assert refresh(store, clock) == (0, 0)
    assert rollup_calls(store) == 200 and scored(store) == 200
    # New rows, in buckets that already hold rows and in new ones: each counted once.
    second = spread(50, seed=2) + spread(5, seed=3, days=8)
    store.append_spans(second)
    store.write_evaluations(score(second))
    assert min(refresh(store, clock)) > 0
    assert refresh(store, clock) == (0, 0)
    assert rollup_calls(store) == 255 and scored(store) == 255
    r = schema.span_rollups.c
    bins = sum((r[f"l{i}"] for i in range(schema.LATENCY_BINS)), sa.literal(0))
    assert store.fetch_arrow(sa.select(sa.func.sum(bins).label("n")))["n"][0].as_py() == 255


def test_rows_in_flight_wait_for_a_later_refresh_and_are_not_skipped(store: Store, clock) -> None:
    rows = spread(30)
    store.append_spans(rows)
    store.write_evaluations(score(rows))
    clock.advance(SETTLE_S - 1)
    # Stamped within the settle of this refresh: not read yet (their writer's transaction
    # may still be open) ...
    assert (refresh_span_rollups(store), refresh_score_rollups(store)) == (0, 0)
    assert rollup_calls(store) == 0 and scored(store) == 0
    # ... and read by the next refresh once settled.
    clock.advance(2)
    assert min(refresh_span_rollups(store), refresh_score_rollups(store)) > 0
    assert rollup_calls(store) == 30 and scored(store) == 30


def test_retention_drops_the_rollup_buckets_of_the_spans_it_deletes(store: Store, clock) -> None:
    rows = spread(120, days=10)
    store.append_spans(rows)
    store.write_evaluations(score(rows))
    refresh(store, clock)
    policy = RetentionPolicy(spans_days=5)
    store.delete_expired(policy, now=END)
    cutoff = int((END - timedelta(days=5) - datetime(1970, 1, 1)).total_seconds())
    for table in (schema.span_rollups, schema.score_rollups):
        oldest = store.fetch_arrow(sa.select(sa.func.min(table.c.bucket).label("b")))["b"]
        assert oldest[0].as_py() >= cutoff
    kept = [r for r in rows if r["start_time"] >= END - timedelta(days=5)]
    # The rollups hold what is left, but for the bucket the cutoff cuts in two.
    assert len(kept) - 2 <= rollup_calls(store) <= len(kept)
    assert len(kept) - 2 <= scored(store) <= len(kept)


# -- reading ----------------------------------------------------------------------------------


def totals(store: Store, since: datetime, until: datetime, **filters: str) -> dict:
    kind = filters.pop("kind", None)
    return span_traffic(store, [(since, until)], filters, kind).to_pylist()[0]


def raw_totals(store: Store, since: datetime, until: datetime, **filters: str) -> dict:
    s = schema.spans.c
    columns = [
        sa.func.count().label("calls"),
        sa.func.count(sa.case((s.status == "error", 1))).label("errors"),
    ]
    for m in schema.SPAN_MEASURES:
        columns += [
            sa.func.sum(s[m]).label(f"{m}_sum"),
            sa.func.count(s[m]).label(f"{m}_count"),
            sa.func.min(s[m]).label(f"{m}_min"),
            sa.func.max(s[m]).label(f"{m}_max"),
        ]
    where = [s.start_time >= since, s.start_time < until]
    where += [s[name] == value for name, value in filters.items()]
    return store.fetch_arrow(sa.select(*columns).where(*where)).to_pylist()[0]


def assert_same(rolled: dict, raw: dict) -> None:
    for name, value in raw.items():
        if isinstance(value, float):
            assert rolled[name] == pytest.approx(value, rel=1e-9), name
        else:  # counts, integer sums, and NULL where no span had a value
            assert rolled[name] == value, name


@pytest.mark.parametrize(
    ("since", "until", "filters"),
    [
        (END - timedelta(hours=50, minutes=2, seconds=13), END - timedelta(minutes=7), {}),
        (END - timedelta(days=3), END, {"app": "support", "kind": "llm"}),
        (
            END - timedelta(hours=20, seconds=1),
            END - timedelta(hours=1, minutes=3),
            {"model": "m2"},
        ),
        # Inside one bucket: nothing from the rollups.
        (END - timedelta(minutes=4, seconds=50), END - timedelta(minutes=1), {}),
    ],
)
def test_rollup_rows_sum_to_the_raw_aggregate(store: Store, clock, since, until, filters) -> None:
    store.append_spans(spread(600))
    refresh(store, clock)
    # And spans that arrived after the refresh, read raw.
    store.append_spans(spread(80, seed=5))
    assert_same(totals(store, since, until, **filters), raw_totals(store, since, until, **filters))


def test_a_store_never_refreshed_reads_every_span_raw(store: Store) -> None:
    store.append_spans(spread(100))
    since, until = END - timedelta(days=4), END
    assert_same(totals(store, since, until), raw_totals(store, since, until))


def within_bound(estimate: float | None, exact: float | None) -> bool:
    if exact is None:
        return estimate is None
    return abs(estimate - exact) <= PERCENTILE_ERROR * exact * (1 + 1e-9)


def test_the_health_table_from_rollups_matches_the_raw_one(store: Store, clock) -> None:
    store.append_spans(spread(800))
    refresh(store, clock)
    store.append_spans(spread(40, seed=9))
    since, until = END - timedelta(hours=30, minutes=1, seconds=5), END - timedelta(seconds=17)
    for grain in ("5m", "1h"):
        raw = store.metrics(grain, since, until, app="search")
        rolled = store.metrics(grain, since, until, app="search", from_rollups=True)
        assert len(raw) == len(rolled) > 8
        for a, b in zip(raw, rolled, strict=True):
            key = (a.TimeGenerated, a.MetricName)
            assert (b.TimeGenerated, b.MetricName, b.TimeGrain, b.UnitName) == (
                *key, a.TimeGrain, a.UnitName)  # fmt: skip
            assert (b.Count, b.Maximum, b.Minimum) == (a.Count, a.Maximum, a.Minimum), key
            assert b.Total == pytest.approx(a.Total, rel=1e-9), key
            assert b.Average == pytest.approx(a.Average, rel=1e-9), key
            for p in ("P50", "P95", "P99"):
                assert within_bound(getattr(b, p), getattr(a, p)), (key, p)


def test_a_health_table_from_rollups_needs_whole_five_minutes(store: Store) -> None:
    with pytest.raises(Exception, match="multiple of the rollups' 5 minutes"):
        store.metrics("90s", END - timedelta(days=1), END, from_rollups=True)


# -- the latency histogram --------------------------------------------------------------------


def histogram(latencies: list[float]) -> tuple[list[list[int]], list, list]:
    """The histogram of ``latencies`` binned as the SQL does, with their minimum and maximum."""
    row = [0] * schema.LATENCY_BINS
    for value in latencies:
        if value >= 2.0**schema.LATENCY_OCTAVES:
            position = schema.LATENCY_BINS - 1
        elif value >= 1:
            position = min(math.floor(math.log2(value) * 8) + 1, schema.LATENCY_BINS - 2)
        else:
            position = 0
        row[position] += 1
    return [row], [min(latencies, default=math.nan)], [max(latencies, default=math.nan)]


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def test_percentiles_from_the_histogram_are_within_the_stated_bound() -> None:
    rng = random.Random(3)
    assert 0.043 < PERCENTILE_ERROR < 0.045
    worst = 0.0
    for _ in range(300):
        size = rng.choice((1, 2, 3, 10, 200))
        values = [math.exp(rng.uniform(0, math.log(1_000_000))) for _ in range(size)]
        found = latency_percentiles(*histogram(values), (0.01, 0.5, 0.95, 0.99))
        for q, estimate in found.items():
            truth = exact(values, q)
            worst = max(worst, abs(estimate[0].as_py() - truth) / truth)
    assert worst <= PERCENTILE_ERROR * (1 + 1e-9)
    assert worst > PERCENTILE_ERROR / 4  # the bound is near what happens, not loose


def test_the_open_ended_bins_read_the_minimum_and_maximum() -> None:
    found = latency_percentiles(*histogram([0.2, 0.3, 5e6, 9e6]), (0.0, 1.0))
    assert found[0.0][0].as_py() == 0.2 and found[1.0][0].as_py() == 9e6
    assert latency_percentiles(*histogram([]))[0.5][0].as_py() is None
