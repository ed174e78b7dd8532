"""``GET /metrics``: Prometheus text over the store; counters only go up, gauges read it."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from llmvigil.storage import schema
from llmvigil.storage.store import Store, utc_now
from tests.server.test_up import READ_KEY, Owner, post, spans_body
from tests.storage.spans_factory import make_span


def scrape(registry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_counters_add_what_arrived_and_never_fall_and_gauges_read_the_store(tmp_path) -> None:
    from llmvigil.server.prometheus import make_registry

    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "spans-1.parquet").write_bytes(b"x" * 100)  # a segment waiting to be loaded
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        spans = [make_span(i, latency_ms=300.0 * (i + 1)) for i in range(10)]
        spans[0]["status"] = "error"
        spans[1]["app"] = "checkout"
        store.append_spans(spans)
        old = utc_now() - timedelta(hours=3)
        store.write_evaluations(
            [
                {"span_id": s["span_id"], "evaluator": "relevance", "evaluator_version": "1",
                 "score": 0.9, "passed": i < 6, "method": "embedding",
                 "evaluated_at": None if i else old}
                for i, s in enumerate(spans)
            ]
        )  # fmt: skip
        day = datetime(2026, 12, 1)
        store.write_drift_results(
            [
                {"computed_at": day, "reference_start": day, "reference_end": day,
                 "current_start": day, "current_end": day, "feature": feature, "method": "ks",
                 "statistic": 0.4, "p_value": 0.001, "drifted": feature == "latency_ms",
                 "skipped": False}
                for feature in ("latency_ms", "prompt_length")
            ]
        )  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(
                schema.alert_state.insert(),
                [
                    {"rule": "slow", "group_key": "model=gpt-4o-mini", "state": "firing",
                     "since": day, "value": 2100.0, "samples": 9, "checked_at": day},
                    {"rule": "errors", "group_key": "", "state": "ok", "since": day,
                     "value": 0.1, "samples": 10, "checked_at": day},
                ],
            )  # fmt: skip
        registry, counted = make_registry(store, spool, settle_s=0)
        counted.count("spans", stored=7, duplicates=2)

        first = scrape(registry)
        support = {"app": "support", "model": "gpt-4o-mini", "kind": "llm"}
        assert value(first, "llmvigil_calls_total", **support) == 9
        assert value(first, "llmvigil_calls_total", app="checkout", model="gpt-4o-mini",
                     kind="llm") == 1  # fmt: skip
        assert value(first, "llmvigil_call_errors_total", **support) == 1
        # 300 ms, 900 ms...: three within 1 s (the checkout span is the second, 600 ms)
        assert value(first, "llmvigil_call_duration_seconds_bucket", **support, le="1") == 2
        assert value(first, "llmvigil_call_duration_seconds_bucket", **support, le="+Inf") == 9
        assert value(first, "llmvigil_call_duration_seconds_sum", **support) == pytest.approx(
            sum(0.3 * (i + 1) for i in range(10) if i != 1)
        )
        assert value(first, "llmvigil_tokens_total", **support, type="prompt") == sum(
            s["prompt_tokens"] for s in spans if s["app"] == "support"
        )
        assert value(first, "llmvigil_evaluations_total", evaluator="relevance", result="pass") == 6
        assert value(first, "llmvigil_evaluations_total", evaluator="relevance", result="fail") == 4
        # The last hour's scores: the one from three hours ago (a pass) is out of the gauge.
        assert value(first, "llmvigil_evaluator_pass_rate", evaluator="relevance") == 5 / 9
        drifted = {"app": "", "model": ""}
        assert value(first, "llmvigil_drift_detected", feature="latency_ms", **drifted) == 1
        assert value(first, "llmvigil_drift_detected", feature="prompt_length", **drifted) == 0
        assert value(first, "llmvigil_alert_firing", rule="slow", group="model=gpt-4o-mini") == 1
        assert value(first, "llmvigil_alert_firing", rule="errors", group="") == 0
        assert value(first, "llmvigil_spool_segments") == 1
        assert value(first, "llmvigil_spool_bytes") == 100
        assert value(first, "llmvigil_spans_ingested_total", via="spans") == 7
        assert value(first, "llmvigil_spans_duplicate_total", via="spans") == 2

        # New spans add to the totals; deleting old ones (retention) takes nothing away.
        store.append_spans([make_span(100 + i) for i in range(5)])
        with store.engine.begin() as conn:
            conn.execute(sa.delete(schema.spans).where(schema.spans.c.app == "checkout"))
        second = scrape(registry)
        assert value(second, "llmvigil_calls_total", **support) == 14
        assert value(second, "llmvigil_calls_total", app="checkout", model="gpt-4o-mini",
                     kind="llm") == 1  # fmt: skip


def test_the_owner_serves_metrics_to_a_read_key(tmp_path) -> None:
    owner = Owner(tmp_path, env={"LLMVIGIL_API_KEYS": f"read:{READ_KEY},{'k' * 20}"})
    try:
        assert post(f"{owner.url}/v1/spans", spans_body(12), key="k" * 20)[0] == 200
        request = urllib.request.Request(f"{owner.url}/metrics")
        try:
            urllib.request.urlopen(request, timeout=30)
            raise AssertionError("/metrics answered without a key")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        request.add_header("Authorization", f"Bearer {READ_KEY}")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(response.read().decode())
                for s in family.samples
            }
        assert value(samples, "llmvigil_spans_ingested_total", via="spans") == 12
    finally:
        assert owner.stop() == 0
