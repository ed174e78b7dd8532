"""A small store with everything the dashboard shows: two apps, errors, scores, a judge's
scores, feedback, a drift run with a new topic and vectors, alert events, XSS probes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np

from llmvigil.evaluators.drift.sample import VECTOR_MODEL, pack
from llmvigil.storage import schema
from llmvigil.storage.rollups import refresh_score_rollups
from llmvigil.storage.store import Store, utc_now
from tests.storage.spans_factory import make_span

#: Texts that would run script, link or shout if rendered as HTML or Markdown.
PROBES = (
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 2">',
    "[click me](javascript:window.__xss=3)",
    "# Heading injected",
)


def fill(store: Store, now: datetime | None = None, spans: int = 120) -> dict[str, str]:
    """Write the fixture into ``store``; return ids the tests look for."""
    now = now or utc_now()
    rows = []
    trace = "trace-" + uuid.uuid4().hex[:8]
    for i in range(spans):
        start = now - timedelta(minutes=2 * i + 1)
        rows.append(
            make_span(
                i,
                span_id=f"span{i:04d}",
                trace_id=trace if i < 3 else f"t{i:04d}",
                parent_id="span0000" if 0 < i < 3 else None,
                kind="chain" if i == 0 else "llm",
                name="pipeline" if i == 0 else "answer",
                app="support" if i % 2 else "search",
                model="gpt-4o" if i % 3 else "gpt-4o-mini",
                start_time=start,
                end_time=start + timedelta(milliseconds=100 + i),
                status="error" if i % 10 == 9 else "ok",
                session_id=f"sess{i // 4}",
                user_id=f"user{i % 5}",
                input_text=PROBES[i % 4] if i < 8 else f"how do I reset password {i}?",
                output_text=PROBES[(i + 1) % 4] if i < 8 else f"open settings then reset {i}",
            )
        )
    store.append_spans(rows)
    scores = []
    for i, row in enumerate(rows):
        scores.append({"span_id": row["span_id"], "evaluator": "relevance",
                       "evaluator_version": "3", "score": (i % 10) / 10 + 0.05,
                       "passed": i % 10 >= 3, "method": "all-MiniLM-L6-v2 similarity",
                       "details": {"why": f"reason {i}"}})  # fmt: skip
        scores.append({"span_id": row["span_id"], "evaluator": "toxicity",
                       "evaluator_version": "3", "score": 0.9 if i == 5 else 0.01,
                       "passed": i != 5, "method": "minilm-layers-logreg-head v3"})  # fmt: skip
        if i % 4 == 0:
            scores.append({"span_id": row["span_id"], "evaluator": "relevance",
                           "evaluator_version": "3-judge", "score": 0.5, "passed": True,
                           "method": "ragas response_relevancy"})  # fmt: skip
    store.write_evaluations(scores)
    store.add_feedback(span_id="span0001", score=0.0, label="bad", comment="wrong answer")
    run_id = _drift(store, now)
    with store.engine.begin() as conn:
        conn.execute(
            schema.alert_events.insert(),
            [{"event_id": "ev1", "rule": "slow-answers", "group_key": "app=support",
              "state": "firing", "value": 3000.0, "threshold": 2500.0, "window_s": 600.0,
              "started_at": now - timedelta(minutes=30), "created_at": now}],
        )  # fmt: skip
        conn.execute(
            schema.alert_state.insert(),
            [{"rule": "slow-answers", "group_key": "app=support", "state": "firing",
              "since": now - timedelta(minutes=30), "value": 3000.0, "samples": 40,
              "checked_at": now}],
        )  # fmt: skip
    refresh_score_rollups(store, now=now + timedelta(minutes=1))
    return {"trace": trace, "run": run_id}


def _drift(store: Store, now: datetime) -> str:
    ref = (now - timedelta(hours=4), now - timedelta(hours=2))
    cur = (now - timedelta(hours=2), now)
    rng = np.random.default_rng(0)
    spans = store.spans(now - timedelta(hours=5), now, limit=None)
    store.write_vectors(
        [{"span_id": s["span_id"], "model": VECTOR_MODEL,
          "input_vector": pack(rng.normal(size=384)),
          "output_vector": pack(rng.normal(size=384))} for s in spans]
    )  # fmt: skip
    topic = {"topics": [{"label": "android, crash", "share": 0.4,
                         "examples": [{"span_id": "span0003", "text": "<b>app crashes</b>"}]}],
             "summary": "new prompts: android, crash (40%)"}  # fmt: skip
    base = {"computed_at": now - timedelta(minutes=5),
            "reference_start": ref[0], "reference_end": ref[1], "current_start": cur[0],
            "current_end": cur[1], "reference_count": 60, "current_count": 60}  # fmt: skip
    return store.write_drift_results(
        [
            base | {"feature": "input_embedding", "method": "model", "statistic": 0.8,
                    "threshold": 0.55, "drifted": True, "details": topic},
            base | {"feature": "latency_ms", "method": "ks", "statistic": 0.1,
                    "p_value": 0.4, "threshold": 0.01, "drifted": False, "details": {}},
        ]
    )  # fmt: skip
