"""The collector's ``http`` sink: batches posted to ``llmvigil up``, spooled while it is down and
sent oldest first once it answers; a batch the server calls bad is set aside."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow as pa

from llmvigil.collector.sinks import HttpSink, SpoolSink
from llmvigil.storage.store import Store
from tests.alerts.receivers import Receiver
from tests.server.test_up import REPO, Owner
from tests.storage.spans_factory import make_span

APP = """
import sys, time
import llmvigil

@llmvigil.observe(model="gpt-4o-mini")
def answer(question: str) -> str:
    return "Open Settings, then Security."

first, wait, second = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
for i in range(first):
    answer(f"question {i}")
llmvigil.flush()
time.sleep(wait)
for i in range(second):
    answer(f"later question {i}")
llmvigil.flush()
print("stats", llmvigil.stats())
"""


def _app(folder: Path, endpoint: str, first: int, wait: float = 0.0, second: int = 0):
    folder.mkdir(exist_ok=True)
    (folder / "llmvigil.toml").write_text(
        f'[collector]\nsink = "http"\nendpoint = "{endpoint}"\napp = "remote-app"\n'
    )
    (folder / "app.py").write_text(textwrap.dedent(APP))
    return subprocess.run(
        [sys.executable, "app.py", str(first), str(wait), str(second)],
        cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_an_app_on_the_http_sink_reports_to_the_owner(tmp_path) -> None:
    (tmp_path / "owner").mkdir()
    owner = Owner(tmp_path / "owner")
    try:
        done = _app(tmp_path / "app", owner.url, 200)
        assert done.returncode == 0, done.stderr
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        assert store.count_spans() == 200
        assert {s["app"] for s in store.spans(limit=None)} == {"remote-app"}
    assert not list((tmp_path / "app" / ".llmvigil" / "spool").glob("*.parquet"))


def test_batches_wait_in_the_spool_while_the_owner_is_down(tmp_path) -> None:
    with socket.socket() as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "owner").mkdir()
    app_dir = tmp_path / "app"
    spool = app_dir / ".llmvigil" / "spool"
    # The app records 50 calls with the owner down, waits, and records 10 more.
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.update(done=_app(app_dir, f"http://127.0.0.1:{port}", 50, 7.0, 10))
    )
    worker.start()
    deadline = time.monotonic() + 30
    while not list(spool.glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(spool.glob("*.parquet")), "nothing was spooled while the owner was down"
    owner = Owner(tmp_path / "owner", port=port)
    try:
        worker.join(timeout=120)
        done = result["done"]
        assert done.returncode == 0, done.stderr
        assert "'dropped': 0" in done.stdout
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        assert store.count_spans() == 60
    assert not list(spool.glob("*.parquet"))  # replayed, then removed


def test_a_batch_the_server_calls_bad_is_set_aside(tmp_path) -> None:
    batch = pa.Table.from_pylist([{"span_id": make_span(0)["span_id"]}])
    with Receiver() as receiver:
        receiver.script = [422]
        sink = HttpSink(f"http://127.0.0.1:{receiver.port}", SpoolSink(tmp_path / "spool"))
        sink.write(batch)
        assert receiver.requests[0]["headers"]["Content-Type"].startswith(
            "application/vnd.apache.arrow.stream"
        )
        assert len(list((tmp_path / "spool" / "bad").glob("*.parquet"))) == 1
        assert not list((tmp_path / "spool").glob("*.parquet"))
        sink.write(batch)  # the next batch goes through
        assert len(receiver.requests) == 2 and sink.spooled == 0


STEADY_APP = """
import sys, time
import llmvigil

@llmvigil.observe(model="gpt-4o-mini")
def answer(question: str) -> str:
    return "Open Settings, then Security."

for i in range(int(sys.argv[1])):
    answer(f"question {i}")
    time.sleep(0.002)
llmvigil.flush(timeout=60)
print("stats", llmvigil.stats())
"""


def test_the_owner_killed_under_steady_ingest_loses_and_repeats_nothing(tmp_path) -> None:
    # An app sends spans all along; the owner is killed (SIGKILL: no clean exit, DuckDB's
    # WAL unfinished, a batch maybe stored but not answered) and started again meanwhile.
    (tmp_path / "owner").mkdir()
    owner = Owner(tmp_path / "owner")
    port = owner.url.rsplit(":", 1)[1]
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "llmvigil.toml").write_text(
        f'[collector]\nsink = "http"\nendpoint = "{owner.url}"\nflush_interval_s = 0.1\n'
    )
    (app_dir / "app.py").write_text(STEADY_APP)
    calls = 2_500
    app = subprocess.Popen(
        [sys.executable, "app.py", str(calls)],
        cwd=app_dir, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2.0)
        owner.stop(signal.SIGKILL)
        time.sleep(1.5)
        owner = Owner(tmp_path / "owner", port=int(port))
        out, err = app.communicate(timeout=180)
        assert app.returncode == 0, err
        assert "'dropped': 0" in out, out
        spool = app_dir / ".llmvigil" / "spool"
        deadline = time.monotonic() + 60  # what the app spooled while the owner was down
        while list(spool.glob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if app.poll() is None:
            app.kill()
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        texts = [s["input_text"] for s in store.spans(limit=None)]
    assert len(texts) == calls and len(set(texts)) == calls


def test_segments_left_by_an_earlier_run_are_sent_after_the_first_batch(tmp_path) -> None:
    spool = SpoolSink(tmp_path / "spool")
    left = [pa.Table.from_pylist([{"span_id": make_span(i)["span_id"]}]) for i in range(2)]
    for table in left:  # an earlier run ended while the server was down
        spool.write(table)
    with Receiver() as receiver:
        sink = HttpSink(f"http://127.0.0.1:{receiver.port}", spool)
        sink.write(pa.Table.from_pylist([{"span_id": make_span(9)["span_id"]}]))
        assert len(receiver.requests) == 3
        assert not list((tmp_path / "spool").glob("*.parquet"))


def test_a_batch_over_the_servers_limit_is_sent_in_parts(tmp_path) -> None:
    # The owner takes at most 100 spans a request; the app sends batches of up to 1,000.
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "llmvigil.toml").write_text("[server]\nmax_batch_spans = 100\n")
    owner = Owner(tmp_path / "owner")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "llmvigil.toml").write_text(
        f'[collector]\nsink = "http"\nendpoint = "{owner.url}"\nbatch_size = 1000\n'
        "flush_interval_s = 3600\n"
    )
    (app_dir / "app.py").write_text(textwrap.dedent(APP))
    try:
        done = subprocess.run(
            [sys.executable, "app.py", "450", "0", "0"], cwd=app_dir, capture_output=True,
            env={**os.environ, "PYTHONPATH": str(REPO)}, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "refused" not in done.stderr, done.stderr
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        assert store.count_spans() == 450
    spool = app_dir / ".llmvigil" / "spool"
    assert not list(spool.glob("*.parquet")) and not list(spool.glob("bad/*.parquet"))
