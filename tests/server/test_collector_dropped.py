"""``collector.dropped``: an app whose queue overflows reports how many spans it dropped, on the
feedback road (spooled while the owner is down, sent once it answers); the owner stores the
count, an alert rule on it fires, and ``/metrics`` counts it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

from llmvigil.storage.store import Store
from tests.server.test_up import REPO, Owner

# The flush thread sleeps (an hour's interval, batches larger than the queue) until flush():
# 1,000 calls into a queue of 100 drop the 900 oldest, and nothing can take them meanwhile.
APP = """
import sys, time
import llmvigil

@llmvigil.observe(model="gpt-4o-mini")
def answer(question: str) -> str:
    return "Open Settings, then Security."

answer("first")
llmvigil.flush()
for i in range(1_000):
    answer(f"question {i}")
llmvigil.flush()  # the owner is down: the spans and the drop report are spooled
time.sleep(float(sys.argv[1]))
answer("after the outage")
llmvigil.flush()  # sent, then what was spooled, the drop report with it
print("stats", llmvigil.stats())
"""

CONFIG = """
[[alerts]]
name = "spans-dropped"
metric = "collector.dropped"
window = "1h"
op = ">"
threshold = 0
group_by = ["app"]
"""


def _run_app(folder: Path, endpoint: str, wait_s: float, result: dict) -> None:
    folder.mkdir()
    (folder / "llmvigil.toml").write_text(
        f'[collector]\nsink = "http"\nendpoint = "{endpoint}"\napp = "busy-app"\n'
        "queue_size = 100\nbatch_size = 10000\nflush_interval_s = 3600\n"
    )
    (folder / "app.py").write_text(textwrap.dedent(APP))
    result["done"] = subprocess.run(
        [sys.executable, "app.py", str(wait_s)],
        cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_an_overflowing_collector_reports_its_drops_and_the_rule_fires(tmp_path) -> None:
    with socket.socket() as probe:  # the owner's port, nobody listening on it yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    owner_dir, app_dir = tmp_path / "owner", tmp_path / "app"
    owner_dir.mkdir()
    (owner_dir / "llmvigil.toml").write_text(CONFIG)
    result: dict = {}
    worker = threading.Thread(
        target=_run_app, args=(app_dir, f"http://127.0.0.1:{port}", 7.0, result)
    )
    worker.start()
    spool = app_dir / ".llmvigil" / "spool"
    deadline = time.monotonic() + 60
    while not list(spool.glob("feedback-*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    spooled = list(spool.glob("feedback-*.jsonl"))
    assert spooled, "the drop report was not spooled while the owner was down"
    (report,) = [json.loads(line) for line in spooled[0].read_text().splitlines()]
    assert (report["kind"], report["dropped"], report["app"]) == ("dropped", 900, "busy-app")

    owner = Owner(owner_dir, port=port)
    try:
        worker.join(timeout=120)
        done = result["done"]
        assert done.returncode == 0, done.stderr
        assert "'dropped': 900" in done.stdout
        assert not list(spool.glob("feedback-*.jsonl"))  # sent, then removed
        store_url = f"duckdb:///{owner.store}"
        checked = subprocess.run(
            [sys.executable, "-m", "llmvigil.cli", "alerts", "check", "--store", store_url,
             "--format", "json"],
            cwd=owner_dir, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        (state,) = json.loads(checked.stdout)
        assert (state["rule"], state["group_key"], state["state"]) == (
            "spans-dropped",
            "app=busy-app",
            "firing",
        )
        assert state["value"] == 900
        with urllib.request.urlopen(f"{owner.url}/metrics", timeout=30) as response:
            scraped = response.read().decode()
        assert (
            'llmvigil_collector_dropped_total{app="busy-app",environment="production"} 900.0'
            in scraped
        )
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        (stored,) = store.collector_drops()
        assert (stored["app"], stored["dropped"]) == ("busy-app", 900)
        assert store.count_spans() == 102  # the first call, the 100 kept, the one after


# The owner refuses request bodies over 1 KiB, smaller than any one of these spans (413: the
# sink sends the batch again in halves down to single spans, each then bad, set aside in the
# spool's bad/ folder, not retried), and the app's spool cannot be written (its folder lies
# under a file): its one batch is lost at shutdown, after the flush thread's last report.
EXITING_APP = """
import atexit

def said():  # registered before llmvigil's exit flush, so it runs after it
    print("stats", llmvigil.stats(), flush=True)

atexit.register(said)
import llmvigil

@llmvigil.observe(model="gpt-4o-mini")
def answer(question: str) -> str:
    return "Open Settings, then Security."

for i in range(50):
    answer(f"question {i}: " + "my password reset mail never arrives. " * 50)
"""


def test_spans_dropped_at_shutdown_are_reported_to_the_owner(tmp_path) -> None:
    owner_dir, app_dir = tmp_path / "owner", tmp_path / "app"
    owner_dir.mkdir()
    app_dir.mkdir()
    (owner_dir / "llmvigil.toml").write_text("[server]\nmax_body_bytes = 1024\n")
    (app_dir / "not-a-folder").write_text("")
    (app_dir / "app.py").write_text(textwrap.dedent(EXITING_APP))
    owner = Owner(owner_dir)
    try:
        (app_dir / "llmvigil.toml").write_text(
            f'[collector]\nsink = "http"\nendpoint = "{owner.url}"\napp = "exiting-app"\n'
            'spool_dir = "not-a-folder/spool"\nbatch_size = 1000\nflush_interval_s = 3600\n'
        )
        done = subprocess.run(
            [sys.executable, "app.py"], cwd=app_dir, env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "'dropped': 50" in done.stdout, done.stdout + done.stderr
        assert "50 spans lost at shutdown" in done.stderr
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        assert [(r["app"], r["dropped"]) for r in store.collector_drops()] == [("exiting-app", 50)]
        assert store.count_spans() == 0
