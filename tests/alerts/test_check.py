"""A full alert cycle with ``check_alerts(at=...)`` over spans of known times, into a real
webhook receiver on 127.0.0.1 that checks the signature."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from llmvigil.alerts.check import check_alerts
from llmvigil.config import Settings
from llmvigil.storage import schema
from llmvigil.storage.store import Store
from tests.alerts.receivers import Receiver
from tests.storage.spans_factory import make_span

T0 = datetime(2026, 12, 1, 9, 0)
SECRET = "s3cret"


def minute(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def spans(start: float, end: float, model: str, latency: float, every_s: int = 30) -> list:
    out, moment = [], minute(start)
    while moment < minute(end):
        out.append(make_span(0, start_time=moment, end_time=moment, latency_ms=latency,
                             model=model, input_text=f"question at {moment:%H:%M:%S}"))  # fmt: skip
        moment += timedelta(seconds=every_s)
    return out


@pytest.fixture
def store(store_url):
    with Store(store_url) as opened:
        yield opened


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with Receiver(secret=SECRET) as server:
        yield server


def settings(receiver: Receiver, **rule) -> Settings:
    return Settings.model_validate(
        {
            "alerting": {"retry_base_s": 0.01},
            "channels": {
                "ops": {"type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET"}
            },
            "alerts": [
                {
                    "name": "slow-answers",
                    "metric": "latency_ms.p95",
                    "window": "10m",
                    "op": ">",
                    "threshold": 1500,
                    "min_samples": 5,
                    "group_by": ["model"],
                    "channels": ["ops"],
                    **rule,
                }
            ],
        }
    )


def states(report) -> dict[str, tuple[str, str | None]]:
    return {r.group_key: (r.state, r.transition) for r in report.results}


def test_quiet_firing_still_firing_resolved_notify_once_each(store, receiver) -> None:
    store.append_spans(
        spans(0, 40, "gpt-4o-mini", 400)
        + spans(0, 10, "gpt-4o", 500)
        + spans(10, 30, "gpt-4o", 3000)
        + spans(30, 45, "gpt-4o", 450)
    )
    config = settings(receiver)
    quiet = check_alerts(store, config, at=minute(10))
    assert states(quiet) == {"model=gpt-4o": ("ok", None), "model=gpt-4o-mini": ("ok", None)}
    assert receiver.requests == []

    firing = check_alerts(store, config, at=minute(20))
    assert states(firing)["model=gpt-4o"] == ("firing", "firing")
    assert states(firing)["model=gpt-4o-mini"] == ("ok", None)
    assert firing.delivered == 1 and len(receiver.requests) == 1
    request = receiver.requests[0]
    body = request["body"]
    assert request["signed"] and body["state"] == "firing" and body["rule"] == "slow-answers"
    assert body["group"] == {"model": "gpt-4o"} and body["value"] == pytest.approx(3000)
    assert body["threshold"] == 1500 and body["window"] == "10m"
    assert request["headers"]["Idempotency-Key"] == body["idempotency_key"]
    assert 1 <= len(body["examples"]) <= 5
    assert all(e["value"] == pytest.approx(3000) for e in body["examples"])

    still = check_alerts(store, config, at=minute(25))
    assert states(still)["model=gpt-4o"] == ("firing", None)
    assert len(receiver.requests) == 1  # no repeat: nothing new

    resolved = check_alerts(store, config, at=minute(42))
    assert states(resolved)["model=gpt-4o"] == ("resolved", "resolved")
    assert len(receiver.requests) == 2
    assert receiver.requests[1]["body"]["state"] == "resolved"
    assert receiver.requests[1]["body"]["resolved_at"].startswith("2026-12-01T09:42")

    after = check_alerts(store, config, at=minute(43))
    assert states(after)["model=gpt-4o"] == ("ok", None) and len(receiver.requests) == 2
    with store.engine.connect() as conn:
        events = conn.execute(sa.select(schema.alert_events)).all()
        deliveries = conn.execute(sa.select(schema.alert_deliveries)).all()
    assert len(events) == 1 and events[0].state == "resolved"
    assert events[0].started_at == minute(20) and events[0].resolved_at == minute(42)
    assert sorted(d.kind for d in deliveries) == ["firing", "resolved"]
    assert all(d.status == "sent" and d.attempts == 1 for d in deliveries)


def test_pending_until_the_condition_has_held_for_its_duration(store, receiver) -> None:
    store.append_spans(spans(0, 30, "gpt-4o", 3000))
    config = settings(receiver, **{"for": "5m"})
    assert states(check_alerts(store, config, at=minute(10)))["model=gpt-4o"] == (
        "pending",
        "pending",
    )
    assert states(check_alerts(store, config, at=minute(13)))["model=gpt-4o"] == ("pending", None)
    assert receiver.requests == []
    fired = check_alerts(store, config, at=minute(15))
    assert states(fired)["model=gpt-4o"] == ("firing", "firing") and len(receiver.requests) == 1
    # A later notice says when it fired, not when it began pending.
    check_alerts(store, settings(receiver, **{"for": "5m", "repeat": "5m"}), at=minute(21))
    assert receiver.requests[-1]["body"]["repeat"] is True
    assert receiver.requests[-1]["body"]["fired_at"] == minute(15).isoformat()


def test_too_few_samples_give_no_data_and_keep_a_firing_alert(store, receiver) -> None:
    store.append_spans(spans(0, 10, "gpt-4o", 3000) + spans(20, 21, "gpt-4o", 100))
    config = settings(receiver)
    assert states(check_alerts(store, config, at=minute(10)))["model=gpt-4o"][0] == "firing"
    # 10-20: no spans at all; 20-21: two spans, fewer than min_samples = 5.
    for at in (minute(20), minute(21)):
        assert states(check_alerts(store, config, at=at))["model=gpt-4o"] == ("firing", None)
    assert len(receiver.requests) == 1
    quiet = settings(receiver, metric="latency_ms.max", threshold=10_000)
    with Store("duckdb:///:memory:") as empty:
        empty.append_spans(spans(0, 1, "gpt-4o", 100))
        assert states(check_alerts(empty, quiet, at=minute(5)))["model=gpt-4o"][0] == "no_data"


def test_repeat_renotifies_a_rule_still_firing_after_its_interval(store, receiver) -> None:
    store.append_spans(spans(0, 120, "gpt-4o", 3000))
    config = settings(receiver, repeat="30m")
    for at in (10, 20, 30, 40):
        check_alerts(store, config, at=minute(at))
    assert [r["body"]["repeat"] for r in receiver.requests] == [False, True]
    keys = {r["headers"]["Idempotency-Key"] for r in receiver.requests}
    assert len(keys) == 2


def test_a_failing_channel_is_retried_with_backoff_and_honours_retry_after(store, receiver) -> None:
    store.append_spans(spans(0, 30, "gpt-4o", 3000))
    config = settings(receiver)
    receiver.script = [500, (429, 1)]
    first = check_alerts(store, config, at=minute(10))
    assert first.delivered == 0 and len(receiver.requests) == 1
    time.sleep(0.05)  # retry_base_s 0.01: due by now
    again = check_alerts(store, config, at=minute(11))
    assert again.delivered == 0 and len(receiver.requests) == 2
    soon = check_alerts(store, config, at=minute(12))  # Retry-After: 1 s not passed yet
    assert soon.delivered == 0 and len(receiver.requests) == 2
    time.sleep(1.1)
    later = check_alerts(store, config, at=minute(13))
    assert later.delivered == 1 and len(receiver.requests) == 3
    keys = {r["headers"]["Idempotency-Key"] for r in receiver.requests}
    assert len(keys) == 1  # the same notification each time
    with store.engine.connect() as conn:
        (row,) = conn.execute(sa.select(schema.alert_deliveries)).all()
    assert row.status == "sent" and row.attempts == 3
    log = row.attempt_log
    assert [(a["attempt"], a["ok"], a["status"]) for a in log] == [
        (1, False, 500),
        (2, False, 429),
        (3, True, 200),
    ]
    assert "HTTP 500" in log[0]["error"] and log[2]["error"] is None
