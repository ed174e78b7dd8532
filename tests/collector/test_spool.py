"""Spool segments: whole or absent after a crash, ingested once, bad ones set aside."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmvigil.collector.spool import BAD_FOLDER, ingest_spool, segments, write_segment
from llmvigil.storage import Store

REPO = Path(__file__).resolve().parents[2]

SPOOLING_APP = textwrap.dedent(
    """
    import sys
    import llmvigil

    llmvigil.configure(sink="spool", spool_dir=sys.argv[1], batch_size=int(sys.argv[2]),
                       flush_interval_s=0.005)

    @llmvigil.observe(model="gpt-4o-mini")
    def answer(i):
        return {"choices": [{"message": {"content": f"answer {i} " + "x" * 300}}],
                "usage": {"prompt_tokens": i % 50, "completion_tokens": 7}}

    limit = int(sys.argv[3])
    i = 0
    while limit < 0 or i < limit:
        answer(i)
        i += 1
    """
)


def run_app(tmp_path: Path, spool: Path, batch: int, limit: int) -> subprocess.Popen:
    script = tmp_path / "app.py"
    script.write_text(SPOOLING_APP)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(script), str(spool), str(batch), str(limit)], env=env, cwd=tmp_path
    )


def check_complete(rows: list[dict]) -> None:
    for row in rows:
        number = int(row["input_text"])
        assert row["output_text"] == f"answer {number} " + "x" * 300
        assert row["prompt_tokens"] == number % 50 and row["completion_tokens"] == 7


@pytest.mark.slow
def test_a_process_killed_while_spooling_leaves_only_whole_segments(tmp_path) -> None:
    spool = tmp_path / "spool"
    app = run_app(tmp_path, spool, batch=200, limit=-1)
    deadline = time.monotonic() + 60
    while len(segments(spool)) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    app.send_signal(signal.SIGKILL)
    app.wait()
    written = segments(spool)
    assert len(written) >= 20
    expected_rows = sum(pq.read_metadata(p).num_rows for p in written)
    with Store(f"duckdb:///{tmp_path / 'store.duckdb'}") as store:
        report = ingest_spool(store, spool)
        assert report.bad == [] and report.segments == len(written)
        assert report.rows == report.inserted == expected_rows == store.count_spans()
        check_complete(store.spans(limit=None))
    assert segments(spool) == []


def test_spans_buffered_at_exit_are_flushed(tmp_path) -> None:
    spool = tmp_path / "spool"
    app = run_app(tmp_path, spool, batch=10_000, limit=137)
    assert app.wait(timeout=60) == 0
    with Store(f"duckdb:///{tmp_path / 'store.duckdb'}") as store:
        assert ingest_spool(store, spool).rows == 137
        check_complete(store.spans(limit=None))


@pytest.mark.slow
def test_many_processes_spool_into_one_folder(tmp_path) -> None:
    spool = tmp_path / "spool"
    apps = [run_app(tmp_path, spool, batch=50, limit=500) for _ in range(4)]
    assert [a.wait(timeout=120) for a in apps] == [0, 0, 0, 0]
    with Store(f"duckdb:///{tmp_path / 'store.duckdb'}") as store:
        report = ingest_spool(store, spool)
        assert report.inserted == 2_000 == store.count_spans()


def test_ingest_is_idempotent_and_sets_aside_bad_segments(tmp_path, caplog) -> None:
    spool = tmp_path / "spool"
    good = pa.table(
        {
            "span_id": ["a1", "a2"],
            "trace_id": ["a1", "a1"],
            "name": ["n", "n"],
            "kind": ["llm", "llm"],
            "start_time": pa.array([0, 1], pa.timestamp("us")),
            "end_time": pa.array([5, 6], pa.timestamp("us")),
            "latency_ms": [5.0, 5.0],
            "status": ["ok", "ok"],
            "tokens_estimated": [False, False],
            "bytes_in": [0, 0],
            "bytes_out": [0, 0],
            "truncated": [False, False],
        }
    )
    first = write_segment(spool, good)
    write_segment(spool, good)  # the same spans again: inserted once
    (spool / "spans-00000000000000000001-1-00000001.parquet").write_bytes(b"not parquet")
    write_segment(spool, good.drop_columns(["latency_ms"]))  # missing a required column
    (spool / ".tmp-spans-in-progress.parquet").write_bytes(b"PAR1 partial")
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        report = ingest_spool(store, spool)
        assert store.count_spans() == 2
    assert report.segments == 2 and report.rows == 4 and report.inserted == 2
    assert len(report.bad) == 2
    assert sorted(p.name for p in (spool / BAD_FOLDER).iterdir()) == sorted(
        Path(p).name for p in report.bad
    )
    assert "cannot be read as Parquet" in caplog.text and "latency_ms" in caplog.text
    assert segments(spool) == [] and not first.exists()
    assert (spool / ".tmp-spans-in-progress.parquet").exists()  # a live writer's file is left
