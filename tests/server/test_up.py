"""``llmvigil up`` as a real process on a free port: span and feedback ingest, limits, keys,
the listen file, the spool ingester, a clean stop on SIGTERM."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from llmvigil.collector.spool import write_segment
from llmvigil.storage.store import Store
from tests.storage.spans_factory import make_span

REPO = Path(__file__).resolve().parents[2]
INGEST_KEY, READ_KEY = "ingest-key-0123456789", "read-key-0123456789ab"


class Owner:
    """A running ``llmvigil up`` and what it said."""

    def __init__(self, folder: Path, *extra: str, env: dict | None = None, port: int = 0) -> None:
        self.folder = folder
        self.store = folder / "owned.duckdb"
        environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmvigil.cli", "up", "--port", str(port), "--no-evaluate",
             "--store", f"duckdb:///{self.store}", *extra],
            cwd=folder, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            raise AssertionError(line + self.process.stderr.read())
        self.url = line.split("listening on ")[1].split(",")[0]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)


def post(url: str, body: bytes, key: str | None = None, **headers: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def spans_body(count: int, start: int = 0, **fields) -> bytes:
    spans = [
        {"span_id": f"{start + i:032x}", "start_time": "2026-12-01T09:00:00Z", "name": "answer",
         "model": "gpt-4o-mini", "input_text": f"question {i}", "output_text": "an answer",
         "latency_ms": 420.0, "prompt_tokens": 100, "completion_tokens": 20, **fields}
        for i in range(count)
    ]  # fmt: skip
    return json.dumps({"spans": spans}).encode()


@pytest.fixture
def owner(tmp_path):
    running = Owner(tmp_path)
    yield running
    if running.process.poll() is None:
        running.stop()


def test_spans_are_stored_once_and_bad_batches_not_at_all(owner) -> None:
    status, answer = post(f"{owner.url}/v1/spans", spans_body(50))
    assert status == 200 and answer == {"received": 50, "stored": 50, "duplicates": 0}
    status, answer = post(f"{owner.url}/v1/spans", spans_body(50))
    assert answer["stored"] == 0 and answer["duplicates"] == 50

    bad = json.loads(spans_body(5, start=1000))
    bad["spans"][3]["latency_ms"] = "slow"
    bad["spans"][4]["colour"] = "blue"
    status, answer = post(f"{owner.url}/v1/spans", json.dumps(bad).encode())
    problems = " | ".join(answer["detail"]["problems"])
    assert status == 422 and "spans[3].latency_ms" in problems and "spans[4].colour" in problems
    del bad["spans"][3]["start_time"]
    status, answer = post(f"{owner.url}/v1/spans", json.dumps(bad).encode())
    assert status == 422 and "spans[3].start_time" in " ".join(answer["detail"]["problems"])
    assert post(f"{owner.url}/v1/spans", b"{not json")[0] == 400
    assert post(f"{owner.url}/v1/spans", spans_body(10_001, start=5000))[0] == 413

    packed = gzip.compress(spans_body(20, start=2000))
    status, answer = post(f"{owner.url}/v1/spans", packed, Content_Encoding="gzip")
    assert status == 200 and answer["stored"] == 20
    bomb = gzip.compress(b" " * (17 * 2**20))  # inflates past max_body_bytes (16 MiB)
    assert post(f"{owner.url}/v1/spans", bomb, Content_Encoding="gzip")[0] == 413

    status, answer = post(
        f"{owner.url}/v1/feedback",
        json.dumps({"span_id": f"{0:032x}", "score": 1, "comment": "thanks"}).encode(),
    )
    assert status == 200 and answer["feedback_id"]
    with urllib.request.urlopen(f"{owner.url}/readyz") as response:
        assert json.loads(response.read())["status"] == "ready"
    with urllib.request.urlopen(f"{owner.url}/openapi.json") as response:
        schema = json.loads(response.read())
    assert "/v1/spans" in schema["paths"] and "/v1/feedback" in schema["paths"]

    assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        assert store.count_spans() == 70  # 50 + 20: nothing of the refused batches
        stored = store.spans(limit=1)[0]
        assert stored["cost_usd"] > 0 and stored["total_tokens"] == 120
        assert len(store.feedback(f"{0:032x}")) == 1


def test_keys_and_scopes(tmp_path) -> None:
    keys = {"LLMVIGIL_API_KEYS": f"ingest:{INGEST_KEY},read:{READ_KEY}"}
    owner = Owner(tmp_path, env=keys)
    try:
        url = f"{owner.url}/v1/spans"
        assert post(url, spans_body(1))[0] == 401
        assert post(url, spans_body(1), key="wrong-key-0123456789")[0] == 401
        assert post(url, spans_body(1), key=READ_KEY)[0] == 403
        assert post(url, spans_body(1), key=INGEST_KEY)[0] == 200
        listen = json.loads(Path(f"{owner.store}.listen.json").read_text())
        assert post(url, spans_body(1, start=9), key=listen["token"])[0] == 200  # local token
        with urllib.request.urlopen(f"{owner.url}/healthz") as response:  # open to probes
            assert response.status == 200
    finally:
        owner.stop()


def test_the_listen_file_a_second_owner_and_a_stale_file(tmp_path) -> None:
    owner = Owner(tmp_path)
    listen = Path(f"{owner.store}.listen.json")
    entry = json.loads(listen.read_text())
    assert entry["url"] == owner.url and entry["pid"] == owner.process.pid
    assert stat.S_IMODE(listen.stat().st_mode) == 0o600
    second = subprocess.run(
        [sys.executable, "-m", "llmvigil.cli", "up", "--port", "0", "--no-evaluate",
         "--store", f"duckdb:///{owner.store}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2 and "already runs for this store" in second.stderr
    owner.stop(signal.SIGKILL)
    assert listen.exists()  # a killed owner leaves it behind
    again = Owner(tmp_path)  # ... and the next one sees it is stale
    try:
        assert json.loads(listen.read_text())["pid"] == again.process.pid
    finally:
        assert again.stop(signal.SIGINT) == 0
    assert not listen.exists()


def test_the_spool_is_loaded_while_it_runs(owner) -> None:
    spool = owner.folder / ".llmvigil" / "spool"
    rows = [make_span(i) for i in range(30)]
    for row in rows:
        for key in ("context", "tags", "metadata"):
            row[key] = json.dumps(row[key])
    import pyarrow as pa

    write_segment(spool, pa.Table.from_pylist(rows))
    deadline = time.monotonic() + 20
    while list(spool.glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(spool.glob("*.parquet")), "the segment was not loaded"
    assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        assert store.count_spans() == 30


def test_a_public_address_needs_a_key(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmvigil.cli", "up", "--host", "0.0.0.0", "--port", "0",
         "--no-evaluate", "--store", f"duckdb:///{tmp_path / 's.duckdb'}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "no API key is configured" in done.stderr
