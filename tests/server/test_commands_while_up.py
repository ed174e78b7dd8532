"""Commands while ``llmvigil up`` owns the DuckDB file: they ask it, and print what they would.

A real owner on a free port; each command runs as its own process, first
while the owner holds the file, then again once it has stopped (opening the
file itself): the output and the exit status must be the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from llmvigil.storage.store import Store
from tests.server.test_up import READ_KEY, REPO, Owner, post, spans_body

SETTINGS = """
[alerting]
interval_s = 3600

[[alerts]]
name = "slow"
metric = "latency_ms.p95"
window = "10m"
threshold = 300
group_by = ["model"]
channels = ["log"]

[channels.log]
type = "log"
"""
WINDOW = ["--since", "2026-12-01T08:00Z", "--until", "2026-12-01T10:00Z"]


def llmvigil(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmvigil.cli", *args],
        cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture
def owned(tmp_path):
    (tmp_path / "llmvigil.toml").write_text(SETTINGS)
    owner = Owner(tmp_path)
    assert post(f"{owner.url}/v1/spans", spans_body(40))[0] == 200
    yield owner
    if owner.process.poll() is None:
        owner.stop()


def test_store_commands_ask_the_owner_and_print_what_they_would_alone(owned) -> None:
    folder, store = owned.folder, f"duckdb:///{owned.store}"
    commands = [
        ("metrics", "--store", store, *WINDOW, "--grain", "1h"),
        ("metrics", "--store", store, *WINDOW, "--format", "json"),
        ("alerts", "list", "--store", store),
        ("drift", "history", "--store", store),
        ("export", "--store", store, *WINDOW, "--output", "out.jsonl"),
    ]
    while_up = [llmvigil(folder, *command) for command in commands]
    exported_while_up = (folder / "out.jsonl").read_text()
    (folder / "out.jsonl").unlink()
    # A spool segment is loaded by the owner when `ingest` asks, not by this process.
    ingest = llmvigil(folder, "ingest", "--store", store)
    assert ingest.returncode == 0, ingest.stderr
    assert owned.stop() == 0

    alone = [llmvigil(folder, *command) for command in commands]
    for command, up, own in zip(commands, while_up, alone, strict=True):
        assert "lock" not in up.stderr.lower(), (command, up.stderr)
        # Paths reach the owner made absolute (it runs elsewhere), and are printed so.
        printed = up.stdout.replace(f"{folder}/", "")
        assert (up.returncode, printed, up.stderr) == (own.returncode, own.stdout, own.stderr)
    assert while_up[0].returncode == 0 and "Health" in while_up[0].stdout
    assert json.loads(while_up[1].stdout)  # the JSON form came through whole
    assert "slow" in while_up[2].stdout
    assert (folder / "out.jsonl").read_text() == exported_while_up
    assert len(exported_while_up.splitlines()) == 40


def test_a_command_s_errors_and_the_owners_scopes(tmp_path) -> None:
    keys = {"LLMVIGIL_API_KEYS": f"read:{READ_KEY}"}
    owner = Owner(tmp_path, env=keys)
    try:
        store = f"duckdb:///{owner.store}"
        # An error is the command's own, with its exit status, as when it runs alone.
        bad = llmvigil(tmp_path, "metrics", "--store", store, "--since", "soon")
        assert bad.returncode == 2 and "--since" in bad.stderr
        # The local token has every scope, so local commands need no key.
        assert llmvigil(tmp_path, "alerts", "check", "--store", store).returncode == 0

        def command(argv: list[str], key: str | None) -> int:
            return post(f"{owner.url}/v1/commands", json.dumps({"argv": argv}).encode(), key)[0]

        assert command(["metrics", "--store", store], None) == 401
        assert command(["metrics", "--store", store], READ_KEY) == 200
        assert command(["alerts", "check", "--store", store], READ_KEY) == 403
        assert command(["export", "--output", "/tmp/x.jsonl"], READ_KEY) == 403
        assert command(["up"], READ_KEY) == 422  # not a command the owner runs for others
        assert command(["metrics", "--store", "duckdb:///elsewhere.duckdb"], READ_KEY) == 200
        _, answer = post(
            f"{owner.url}/v1/commands",
            json.dumps({"argv": ["metrics", "--store", "duckdb:///elsewhere.duckdb"]}).encode(),
            READ_KEY,
        )
        assert answer["exit_code"] == 2 and "owns" in answer["stderr"]
        # `evaluate --dataset` needs no store: it runs where it is asked, beside the owner.
        dataset = tmp_path / "lines.jsonl"
        dataset.write_text(json.dumps({"id": "1", "input": "hi?", "output": "Hello."}) + "\n")
        scored = llmvigil(
            tmp_path, "evaluate", "--dataset", str(dataset), "--evaluators", "brevity"
        )
        assert scored.returncode == 0 and "scored 1 lines" in scored.stdout, scored.stderr
        with urllib.request.urlopen(f"{owner.url}/healthz") as response:
            assert response.status == 200
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        assert store.count_spans() == 0


def _aged_spans(ages: dict[str, list[float]]) -> bytes:
    """A POST /v1/spans body: per app, spans started that many days ago."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    spans = [
        {"span_id": f"{app}-{i}", "name": "answer", "app": app,
         "start_time": (now - timedelta(days=days)).isoformat()}
        for app, all_days in ages.items()
        for i, days in enumerate(all_days)
    ]  # fmt: skip
    return json.dumps({"spans": spans}).encode()


def test_retention_is_run_by_the_owner_for_a_caller(tmp_path) -> None:
    # Once a day: the owner's own run (at start, on an empty store) stays out of the way.
    (tmp_path / "llmvigil.toml").write_text(
        "[retention]\nspans_days = 3\napps = { keep = 0 }\ninterval_s = 86400\n"
    )
    owner = Owner(tmp_path)
    try:
        body = _aged_spans({"checkout": [10, 10, 1], "keep": [10]})
        assert post(f"{owner.url}/v1/spans", body)[0] == 200
        store = f"duckdb:///{owner.store}"
        dry = llmvigil(tmp_path, "retention", "--dry-run", "--store", store)
        assert dry.returncode == 0 and "lock" not in dry.stderr.lower(), dry.stderr
        assert "Would delete (dry run)" in dry.stdout and "checkout" in dry.stdout
        done = llmvigil(tmp_path, "retention", "--store", store)
        assert done.returncode == 0 and "Deleted" in done.stdout, done.stderr
        again = llmvigil(tmp_path, "retention", "--store", store)
        assert "nothing to delete: no span is past its retention" in again.stdout
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as opened:
        assert sorted(r["span_id"] for r in opened.spans(limit=None)) == ["checkout-2", "keep-0"]


def test_the_owner_deletes_old_spans_on_its_schedule(tmp_path) -> None:
    import time

    (tmp_path / "llmvigil.toml").write_text("[retention]\nspans_days = 3\ninterval_s = 0.5\n")
    owner = Owner(tmp_path)
    try:
        body = _aged_spans({"checkout": [10, 5, 1], "support": [30, 0.5]})
        assert post(f"{owner.url}/v1/spans", body)[0] == 200
        deadline = time.monotonic() + 60
        while True:
            dry = llmvigil(
                tmp_path, "retention", "--dry-run", "--store", f"duckdb:///{owner.store}"
            )
            assert dry.returncode == 0, dry.stderr
            if "nothing to delete" in dry.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "nothing to delete: no span is past its retention" in dry.stdout
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as opened:
        assert sorted(r["span_id"] for r in opened.spans(limit=None)) == [
            "checkout-2",
            "support-1",
        ]
