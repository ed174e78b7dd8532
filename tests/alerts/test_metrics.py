"""The rules' shared queries give each rule what its own query gives, on DuckDB and PostgreSQL."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest

from llmvigil.alerts.metrics import Request, measure, measure_many, parse_metric
from llmvigil.storage.store import Store
from tests.alerts.test_check import minute
from tests.storage.spans_factory import make_span

METRICS = [
    "calls", "errors", "error_rate", "latency_ms.p95", "latency_ms.mean", "ttft_ms.p50",
    "cost_usd.sum", "tokens.sum", "output_length.max", "relevance.mean", "relevance.p10",
    "relevance.fail_rate", "toxicity.max", "feedback.mean", "feedback.count",
]  # fmt: skip


@pytest.fixture
def store(store_url):
    rng = random.Random(4)
    with Store(store_url) as opened:
        rows = []
        for i in range(600):
            moment = minute(rng.uniform(0, 60))
            rows.append(
                make_span(0, start_time=moment, end_time=moment,
                          latency_ms=rng.lognormvariate(6.5, 0.5),
                          ttft_ms=rng.uniform(50, 400) if i % 3 else None,
                          model=rng.choice(["gpt-4o", "gpt-4o-mini"]),
                          status="error" if rng.random() < 0.05 else "ok",
                          output_text="x" * rng.randint(1, 300), cost_usd=rng.uniform(0, 0.01))
            )  # fmt: skip
        opened.append_spans(rows)
        # Version 1 of relevance first, then version 2 (and toxicity) in a later batch.
        for versions in ((("relevance", "1"),), (("relevance", "2"), ("toxicity", "2"))):
            scores = []
            for row in rows:
                for name, version in versions:
                    value = rng.random() if version == "2" else 0.99
                    scores.append({"span_id": row["span_id"], "evaluator": name,
                                   "evaluator_version": version, "score": value,
                                   "passed": value > 0.3, "method": "test"})  # fmt: skip
            opened.write_evaluations(scores)
            time.sleep(0.01)  # the second batch is scored later
        for row in rows[::7]:
            opened.add_feedback(span_id=row["span_id"], name="thumbs", score=rng.choice([0, 1]))
        yield opened


def test_shared_queries_match_one_query_per_rule(store) -> None:
    end = minute(60)
    requests = [
        Request(parse_metric(m), end - timedelta(minutes=w), end, group, ())
        for m in METRICS
        for w in (5, 20, 60)
        for group in ((), ("model",))
    ]
    together = measure_many(store, requests)
    for request, shared in zip(requests, together, strict=True):
        alone = measure(store, request.metric, request.start, request.end, request.group_by)
        assert shared.keys() == alone.keys(), request
        for key in alone:
            assert shared[key].samples == alone[key].samples, (request, key)
            assert shared[key].value == pytest.approx(alone[key].value), (request, key)
    calls = measure(store, parse_metric("calls"), minute(0), end)[()]
    assert calls.value == 600 and calls.samples == 600
    # Scores are read at the version that scored last: never both versions of relevance.
    relevance = measure(store, parse_metric("relevance.mean"), minute(0), end)[()]
    assert relevance.samples == 600 and relevance.value < 0.7  # version 1 scored 0.99


def test_collector_dropped_sums_the_reports_in_the_window_per_app(store_url) -> None:
    with Store(store_url) as store:
        reports = [("a", "support", 5), ("b", "support", 900), ("c", "search", 7),
                   ("d", "support", 40)]  # fmt: skip
        for (report_id, app, dropped), at in zip(reports, (1, 2, 3, 70), strict=True):
            store.add_collector_drops(
                report_id=report_id, app=app, dropped=dropped, reported_at=minute(at)
            )
        store.add_collector_drops(report_id="b", app="support", dropped=900)  # sent twice
        metric = parse_metric("collector.dropped")
        by_app = measure(store, metric, minute(0), minute(60), group_by=["app"])
        assert {k: m.value for k, m in by_app.items()} == {("support",): 905.0, ("search",): 7.0}
        only = measure(store, metric, minute(0), minute(60), where={"app": "search"})
        assert only[()].value == 7.0
        quiet = measure(store, metric, minute(100), minute(160))
        assert quiet[()].value == 0.0  # nothing dropped is a value: a firing rule resolves
        with pytest.raises(ValueError, match="not model"):
            measure(store, metric, minute(0), minute(60), group_by=["model"])
