"""``llmvigil evaluate``: over the store, on a schedule, and over a dataset file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from llmvigil.collector.spool import write_segment
from llmvigil.storage import Store
from tests.storage.spans_factory import make_span

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "datasets"


def cli(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "llmvigil.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def spool_spans(folder: Path, count: int, offset: int) -> None:
    rows = [make_span(offset + i, output_text="A short answer.") for i in range(count)]
    for row in rows:
        for key in ("context", "tags", "metadata"):
            row[key] = json.dumps(row[key])
    write_segment(folder, pa.Table.from_pylist(rows))


@pytest.mark.slow
def test_watch_ingests_and_scores_new_spans_on_a_schedule(tmp_path) -> None:
    spool = tmp_path / ".llmvigil" / "spool"
    spool_spans(spool, 20, 0)
    watch = cli("evaluate", "--watch", "--interval", "1", "--evaluators", "brevity", cwd=tmp_path)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        for line in watch.stdout:
            seen.append(line)
            if "evaluated 20 spans" in line:
                spool_spans(spool, 7, 100)
            if "evaluated 7 spans" in line or time.monotonic() > deadline:
                break
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
    assert any("evaluated 7 spans" in line for line in seen), "".join(seen)
    with Store(f"duckdb:///{tmp_path / 'llmvigil.duckdb'}") as store:
        assert store.count_spans() == 27
        assert len(store.evaluations(evaluator="brevity")) == 27


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_watch_stops_cleanly_on_every_interrupt_however_often_it_runs(tmp_path, signum) -> None:
    # A run every 50 ms: the interrupt lands while the scheduler submits a run as often as
    # between runs (APScheduler swallows a KeyboardInterrupt raised there).
    watch = cli(
        "evaluate", "--watch", "--interval", "0.05", "--evaluators", "brevity", cwd=tmp_path
    )
    try:
        assert "every" in watch.stdout.readline()
        time.sleep(1.5)
        watch.send_signal(signum)
        assert watch.wait(timeout=30) == 0
    finally:
        watch.kill()


def test_dataset_mode_writes_scores_and_prints_label_metrics(tmp_path) -> None:
    lines = (DATASETS / "eval_dev.jsonl").read_text().splitlines()
    brevity = [line for line in lines if '"brevity"' in line]
    (tmp_path / "d.jsonl").write_text("\n".join([*brevity, "{broken", *brevity[:2]]) + "\n")
    run = cli(
        "evaluate",
        "--dataset",
        "d.jsonl",
        "--output",
        "scores.jsonl",
        "--evaluators",
        "brevity",
        cwd=tmp_path,
    )
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 0, out
    assert f"d.jsonl:{len(brevity) + 1}: skipped: not valid JSON" in out
    assert "ROC AUC" in out and "brevity" in out
    scored = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(scored) == len(brevity) + 2
    assert all(isinstance(r["brevity"], float) and "details" in r for r in scored)
    assert scored[0]["id"] == json.loads(brevity[0])["id"]


@pytest.mark.slow
def test_watch_checks_the_alert_rules_too(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text(
        '[alerting]\ninterval_s = 1\n\n[channels.log]\ntype = "log"\n\n'
        '[[alerts]]\nname = "traffic"\nmetric = "calls"\nwindow = "30d"\nop = ">"\n'
        'threshold = 0\nchannels = ["log"]\n'
    )
    spool_spans(tmp_path / ".llmvigil" / "spool", 5, 0)
    watch = cli("evaluate", "--watch", "--interval", "1", "--evaluators", "brevity", cwd=tmp_path)
    seen: list[str] = []
    try:
        assert "alerts every 1 s" in watch.stdout.readline()
        deadline = time.monotonic() + 60
        for line in watch.stdout:
            seen.append(line)
            if "alert FIRING traffic" in line or time.monotonic() > deadline:
                break
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
    assert any("alert FIRING traffic" in line for line in seen), "".join(seen)
