"""``llmvigil alerts check|list|history|test`` and ``llmvigil export`` as real processes."""

from __future__ import annotations

import json
import sys

from llmvigil.storage.store import Store
from tests.alerts.receivers import Receiver
from tests.alerts.test_check import spans
from tests.test_cli import run

CONFIG = """
[store]
url = "duckdb:///alerts.duckdb"

[alerting]
export_dir = "exports"

[[alerts]]
name = "slow"
metric = "latency_ms.p95"
window = "10m"
threshold = 1500
group_by = ["model"]
channels = ["ops"]
hooks = ["retrain"]

[channels.ops]
type = "webhook"
url = "{url}"

[hooks.retrain]
type = "command"
command = ["{python}", "-c", "import sys; sys.stdin.read()"]
"""


def _setup(tmp_path, receiver: Receiver) -> None:
    (tmp_path / "llmvigil.toml").write_text(CONFIG.format(url=receiver.url, python=sys.executable))
    with Store(f"duckdb:///{tmp_path / 'alerts.duckdb'}") as store:
        rows = spans(0, 30, "gpt-4o", 3000) + spans(0, 30, "gpt-4o-mini", 300)
        for i, row in enumerate(rows):
            row["output_text"] = f"answer {i}"
        store.append_spans(rows)
        store.write_evaluations(
            [{"span_id": r["span_id"], "evaluator": "relevance", "evaluator_version": "2",
              "score": 0.2, "passed": False, "method": "test"} for r in rows[:4]]
        )  # fmt: skip


def test_check_list_history_and_test_through_the_command_line(tmp_path) -> None:
    with Receiver() as receiver:
        _setup(tmp_path, receiver)
        checked = run("alerts", "check", "--at", "2026-12-01T09:10", cwd=tmp_path)
        assert checked.returncode == 0, checked.stderr
        assert "firing" in checked.stdout and "model=gpt-4o " in checked.stdout + " "
        assert "1 notifications sent" in checked.stdout and "1 hook runs" in checked.stdout
        assert len(receiver.requests) == 1
        again = run("alerts", "check", "--at", "2026-12-01T09:11", "--format", "json", cwd=tmp_path)
        states = {r["group_key"]: r["state"] for r in json.loads(again.stdout)}
        assert states == {"model=gpt-4o": "firing", "model=gpt-4o-mini": "ok"}
        assert len(receiver.requests) == 1

        listed = run("alerts", "list", cwd=tmp_path)
        assert listed.returncode == 0 and "model=gpt-4o: firing" in listed.stdout
        history = run("alerts", "history", cwd=tmp_path)
        assert history.returncode == 0, history.stderr
        for part in ("Alert events", "Deliveries", "Hook runs", "sent", "retrain", "ok"):
            assert part in history.stdout, part

        tested = run("alerts", "test", "slow", cwd=tmp_path)
        assert tested.returncode == 0 and "ops: sent" in tested.stdout
        assert receiver.requests[-1]["body"]["state"] == "test"
        missing = run("alerts", "test", "nope", cwd=tmp_path)
        assert missing.returncode == 2 and "no [[alerts]] rule is named 'nope'" in missing.stderr
    down = run("alerts", "test", "slow", cwd=tmp_path)  # the receiver is gone
    assert down.returncode == 1 and "ops: failed" in down.stdout


def test_export_writes_the_failed_spans_or_a_rule_s_breaching_spans(tmp_path) -> None:
    with Receiver() as receiver:
        _setup(tmp_path, receiver)
    out = tmp_path / "bad.jsonl"
    done = run(
        "export", "--since", "2026-12-01T08:00", "--until", "2026-12-01T10:00",
        "--evaluator", "relevance", "--failed", "--output", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 4 and all(x["scores"]["relevance"]["passed"] is False for x in lines)
    tuned = tmp_path / "tune.jsonl"
    run(
        "export", "--since", "2026-12-01T08:00", "--until", "2026-12-01T10:00",
        "--format", "openai", "--output", str(tuned), cwd=tmp_path,
    )  # fmt: skip
    first = json.loads(tuned.read_text().splitlines()[0])
    assert list(first) == ["messages"] and first["messages"][-1]["role"] == "assistant"
    slow = tmp_path / "slow.csv"
    done = run(
        "export", "--rule", "slow", "--until", "2026-12-01T09:10", "--format", "csv",
        "--output", str(slow), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = slow.read_text().splitlines()
    assert rows[0].startswith("span_id,") and len(rows) == 1 + 40  # both models' 10 minutes
    table_path = tmp_path / "bad.parquet"
    done = run(
        "export", "--since", "2026-12-01T08:00", "--until", "2026-12-01T10:00",
        "--evaluator", "relevance", "--failed", "--format", "parquet",
        "--output", str(table_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(table_path)
    assert table.num_rows == 4 and {"span_id", "messages", "scores"} <= set(table.column_names)
    assert json.loads(table["scores"][0].as_py())["relevance"]["passed"] is False
    bad = run("export", "--failed", "--output", str(out), cwd=tmp_path)
    assert bad.returncode == 2 and "--failed needs --evaluator" in bad.stderr
