"""Retraining hooks get the alert and a JSONL export of the breaching spans; a process killed
between firing and delivery notifies once, with the same idempotency key, after restart."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from llmvigil.alerts.check import check_alerts
from llmvigil.config import Settings
from llmvigil.storage import schema
from llmvigil.storage.store import Store
from tests.alerts.receivers import Receiver
from tests.alerts.test_check import minute, spans

REPO = Path(__file__).resolve().parents[2]


def _scored(store, passed_share: float) -> None:
    rows = spans(0, 10, "gpt-4o", 500)
    for i, row in enumerate(rows):
        row["output_text"] = f"answer {i}"
        turns = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": row["input_text"]},
        ]
        row["metadata"] = {"messages": turns}
    store.append_spans(rows)
    failing = int(len(rows) * (1 - passed_share))
    store.write_evaluations(
        [
            {"span_id": r["span_id"], "evaluator": "relevance", "evaluator_version": "2",
             "score": 0.1 if i < failing else 0.9, "passed": i >= failing, "method": "test"}
            for i, r in enumerate(rows)
        ]
    )  # fmt: skip


def _settings(tmp_path: Path, hooks: dict, **rule) -> Settings:
    return Settings.model_validate(
        {
            "alerting": {"export_dir": str(tmp_path / "exports")},
            "hooks": hooks,
            "alerts": [
                {"name": "bad-answers", "metric": "relevance.fail_rate", "window": "10m",
                 "op": ">", "threshold": 0.3, "hooks": list(hooks), **rule}
            ],
        }
    )  # fmt: skip


def test_a_command_hook_gets_the_payload_and_the_failed_spans(tmp_path) -> None:
    seen = tmp_path / "seen.json"
    script = f"import sys, pathlib; pathlib.Path({str(seen)!r}).write_text(sys.stdin.read())"
    config = _settings(
        tmp_path, {"retrain": {"type": "command", "command": [sys.executable, "-c", script]}}
    )
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        _scored(store, passed_share=0.5)
        report = check_alerts(store, config, at=minute(10))
        assert report.hooks == 1
        with store.engine.connect() as conn:
            (run,) = conn.execute(sa.select(schema.alert_hook_runs)).all()
        again = check_alerts(store, config, at=minute(10.5))  # still firing: no second run
        assert again.hooks == 0
    payload = json.loads(seen.read_text())
    for key in ("rule", "state", "group", "value", "threshold", "window", "fired_at"):
        assert key in payload, key
    assert payload["state"] == "firing" and payload["value"] == 0.5
    assert run.status == "ok" and run.exit_code == 0 and run.export_path == payload["export_path"]
    lines = [json.loads(x) for x in Path(payload["export_path"]).read_text().splitlines()]
    assert len(lines) == 10  # the 10 of 20 spans that failed relevance
    assert all(line["scores"]["relevance"]["passed"] is False for line in lines)
    first = lines[0]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert first["messages"][-1]["role"] == "assistant" and first["output"].startswith("answer")
    assert {"span_id", "trace_id", "input", "output", "context", "reference", "feedback"} <= set(
        first
    )


def test_a_hanging_hook_is_killed_and_a_python_hook_is_called(tmp_path, monkeypatch) -> None:
    out = tmp_path / "python-hook.jsonl"
    monkeypatch.setenv("LLMVIGIL_TEST_HOOK_OUT", str(out))
    monkeypatch.syspath_prepend(str(REPO))
    hooks = {
        "hang": {"type": "command", "command": ["sleep", "30"], "timeout_s": 0.5},
        "record": {"type": "python", "callable": "tests.alerts.hook_target:record"},
    }
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        _scored(store, passed_share=0.2)
        check_alerts(store, _settings(tmp_path, hooks), at=minute(10))
        with store.engine.connect() as conn:
            runs = {r.hook: r for r in conn.execute(sa.select(schema.alert_hook_runs))}
    assert runs["hang"].status == "timeout" and runs["hang"].seconds < 5
    assert runs["record"].status == "ok" and runs["record"].output_tail == "recorded"
    (given,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert given["rule"] == "bad-answers" and Path(given["export_path"]).exists()


def test_killed_between_firing_and_delivery_the_notice_goes_out_once(tmp_path) -> None:
    store_url = f"duckdb:///{tmp_path / 's.duckdb'}"
    with Store(store_url) as store:
        store.append_spans(spans(0, 30, "gpt-4o", 3000))
    with Receiver() as receiver:
        config = {
            "channels": {"ops": {"type": "webhook", "url": receiver.url}},
            "alerts": [{"name": "slow", "metric": "latency_ms.p95", "threshold": 1500,
                        "channels": ["ops"]}],
        }  # fmt: skip
        child = textwrap.dedent(
            f"""
            import os, signal
            from datetime import datetime
            import llmvigil.alerts.deliver as deliver
            from llmvigil.alerts.check import check_alerts
            from llmvigil.config import Settings
            from llmvigil.storage.store import Store

            # Killed right after the firing is committed, before anything is sent.
            deliver.deliver_pending = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
            with Store({store_url!r}) as store:
                check_alerts(store, Settings.model_validate({config!r}),
                             at=datetime(2026, 12, 1, 9, 10))
            """
        )
        done = subprocess.run([sys.executable, "-c", child], cwd=REPO, check=False)
        assert done.returncode == -9
        assert receiver.requests == []
        with Store(store_url) as store:
            with store.engine.connect() as conn:
                (pending,) = conn.execute(sa.select(schema.alert_deliveries)).all()
            assert pending.status == "pending"
            settings = Settings.model_validate(config)
            report = check_alerts(store, settings, at=minute(11))
            assert [r.state for r in report.results] == ["firing"]
            check_alerts(store, settings, at=minute(12))
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["headers"]["Idempotency-Key"] == pending.idempotency_key


def test_the_scheduled_check_leaves_a_long_hook_running_and_records_it_later(tmp_path) -> None:
    import time

    from llmvigil.storage.store import utc_now

    hooks = {"retrain": {"type": "command", "command": ["sleep", "2"], "timeout_s": 30}}
    config = _settings(tmp_path, hooks)
    h = schema.alert_hook_runs
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        _scored(store, passed_share=0.2)
        started = time.monotonic()
        report = check_alerts(store, config, at=minute(10), wait_for_hooks=False)
        assert report.hooks == 1 and time.monotonic() - started < 1.5  # not held for 2 s
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(h.c.status)).scalar() == "running"
        # The next check starts nothing again while it runs.
        assert check_alerts(store, config, at=minute(10.5), wait_for_hooks=False).hooks == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                (run,) = conn.execute(sa.select(h)).all()
            if run.status != "running":
                break
            time.sleep(0.2)
        assert run.status == "ok" and run.seconds >= 2 and run.started_at <= run.finished_at
        # A run left running by a process that died is marked, not started twice.
        with store.engine.begin() as conn:
            conn.execute(
                h.update().values(status="running", started_at=utc_now().replace(year=2000))
            )
        check_alerts(store, config, at=minute(11), wait_for_hooks=False)
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(h.c.status)).scalar() == "interrupted"
