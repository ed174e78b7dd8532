"""The dashboard's queries on a real store: each one's numbers, its filters, its errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from llmvigil.dashboard.queries import QUERIES, run_query
from llmvigil.dashboard.view import View, view_from_query
from llmvigil.errors import ConfigError
from llmvigil.storage.store import utc_now
from tests.dashboard.fixture_store import fill


@pytest.fixture
def filled(store):
    now = utc_now()
    ids = fill(store, now)
    return store, View(now - timedelta(hours=24), now + timedelta(minutes=1)), ids


def test_overview_totals_count_model_calls_and_compare_the_period_before(filled):
    store, view, _ = filled
    rows = {r["period"]: r for r in run_query(store, "overview_totals", view).to_pylist()}
    assert rows["current"]["calls"] == 119  # the one chain span is not a model call
    assert rows["current"]["errors"] == 12
    assert 100 < rows["current"]["p50"] < rows["current"]["p99"] < 220
    assert "previous" not in rows
    half = View(view.until - timedelta(hours=2), view.until)
    rows = {r["period"]: r for r in run_query(store, "overview_totals", half).to_pylist()}
    assert rows["current"]["calls"] + rows["previous"]["calls"] == 119


def test_filters_narrow_every_query(filled):
    store, view, _ = filled
    only = View(view.since, view.until, app="support")
    calls = run_query(store, "overview_series", only).to_pandas()["calls"].sum()
    assert calls == 60
    scored = run_query(store, "quality_summary", only).to_pylist()
    relevance = [
        r for r in scored if r["evaluator"] == "relevance" and r["evaluator_version"] == "3"
    ]
    assert relevance[0]["scored"] == 60
    worst = run_query(store, "worst_spans", only, {"evaluator": "relevance"}).to_pylist()
    assert {r["app"] for r in worst} == {"support"}
    health = run_query(store, "health", only, {"grain": "1h"}).to_pylist()
    calls_rows = [r for r in health if r["MetricName"] == "TotalCalls"]
    assert sum(r["Total"] for r in calls_rows) == 60


def test_quality_keeps_the_judge_apart_and_counts_the_histogram(filled):
    store, view, _ = filled
    rows = run_query(store, "quality_summary", view).to_pylist()
    methods = {(r["evaluator"], r["method"]) for r in rows}
    assert ("relevance", "ragas response_relevancy") in methods
    offline = next(r for r in rows if r["method"] == "all-MiniLM-L6-v2 similarity")
    assert sum(offline[f"b{i}"] for i in range(10)) == offline["scored"] == 120
    assert offline["pass_rate"] == pytest.approx(84 / 120)
    series = run_query(store, "quality_series", view).to_pandas()
    assert set(series["method"]) >= {"ragas response_relevancy", "all-MiniLM-L6-v2 similarity"}


def test_worst_spans_come_lowest_first_and_toxicity_highest_first(filled):
    store, view, _ = filled
    worst = run_query(store, "worst_spans", view, {"evaluator": "relevance", "limit": 5})
    scores = worst["score"].to_pylist()
    assert scores == sorted(scores) and scores[0] == pytest.approx(0.05)
    assert worst["input_text"].to_pylist()[0]
    toxic = run_query(store, "worst_spans", view, {"evaluator": "toxicity", "limit": 1})
    assert toxic.to_pylist()[0]["span_id"] == "span0005"


def test_search_pages_and_matches_text_literally(filled):
    store, view, _ = filled
    first = run_query(store, "search_spans", view, {"limit": 10}).to_pylist()
    second = run_query(store, "search_spans", view, {"limit": 10, "offset": 10}).to_pylist()
    assert len(first) == len(second) == 10
    assert not {r["span_id"] for r in first} & {r["span_id"] for r in second}
    hits = run_query(store, "search_spans", view, {"text": "PASSWORD 1"}).to_pylist()
    assert hits and all("password 1" in r["input_text"] for r in hits)
    # A LIKE wildcard typed by the user is a character, not a wildcard.
    assert run_query(store, "search_spans", view, {"text": "%"}).num_rows == 0
    low = run_query(
        store, "search_spans", view, {"evaluator": "relevance", "max_score": 0.1}
    ).to_pylist()
    assert len(low) == 12 and all(r["status"] in ("ok", "error") for r in low)


def test_a_trace_comes_whole_with_its_scores_and_feedback(filled):
    store, view, ids = filled
    spans = run_query(store, "trace_spans", view, {"trace_id": ids["trace"]}).to_pylist()
    assert [s["span_id"] for s in spans] == ["span0002", "span0001", "span0000"]
    scores = run_query(store, "span_scores", view, {"span_ids": ["span0001"]}).to_pylist()
    assert {s["evaluator"] for s in scores} == {"relevance", "toxicity"}
    feedback = run_query(
        store, "span_feedback", view, {"span_ids": ["span0001"], "trace_id": ids["trace"]}
    ).to_pylist()
    assert feedback[0]["comment"] == "wrong answer"


def test_sessions_drift_and_alerts(filled):
    store, view, ids = filled
    sessions = run_query(store, "sessions", view, {"limit": 5}).to_pylist()
    assert sessions[0]["session_id"] == "sess0" and sessions[0]["spans"] == 4
    means = run_query(store, "session_scores", view, {"session_ids": ["sess0"]}).to_pylist()
    assert {m["evaluator"] for m in means} == {"relevance", "toxicity"}
    runs = run_query(store, "drift_runs", view).to_pylist()
    assert {r["feature"] for r in runs} == {"input_embedding", "latency_ms"}
    points = run_query(store, "embedding_map", view, {"run_id": ids["run"]}).to_pylist()
    assert {p["window"] for p in points} == {"reference", "current"}
    assert all(isinstance(p["x"], float) for p in points)
    assert run_query(store, "alert_events", view).to_pylist()[0]["rule"] == "slow-answers"
    assert run_query(store, "alert_states", view).to_pylist()[0]["state"] == "firing"


def test_bad_names_and_params_are_refused_with_the_fix(filled):
    store, view, _ = filled
    with pytest.raises(ConfigError, match="no dashboard query 'nope'; known:"):
        run_query(store, "nope", view)
    with pytest.raises(ConfigError, match="takes no \\['colour'\\]"):
        run_query(store, "search_spans", view, {"colour": "red"})
    with pytest.raises(ConfigError, match="limit"):
        run_query(store, "search_spans", view, {"limit": "many"})
    with pytest.raises(ConfigError, match="limit must be 1-200"):
        run_query(store, "search_spans", view, {"limit": 10_000})
    assert "sessions" in QUERIES


def test_a_view_round_trips_through_json_and_the_url():
    now = utc_now()
    view = View(now - timedelta(hours=1), now, app="a", model="m")
    assert View.from_json(view.as_json()) == view
    assert view_from_query({"range": "1h", "app": "a", "model": "m"}, now) == view
    custom = view_from_query(
        {"range": "custom", "since": "2026-01-01T00:00:00", "until": "2026-01-02T00:00:00"}
    )
    assert custom.seconds == 86400
    # A range that ends before it starts falls back to the default, never fails the page.
    backwards = {"range": "custom", "since": "2026-01-02T00:00:00", "until": "2026-01-01"}
    assert view_from_query(backwards, now).seconds == 86400
    with pytest.raises(ConfigError, match=r"ends .* before it starts"):
        View(now, now - timedelta(hours=1))
