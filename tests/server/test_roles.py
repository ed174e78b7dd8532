"""``llmvigil up --role``: each part in its own process over one PostgreSQL store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from llmvigil.storage import Store
from llmvigil.storage.locks import exclusive
from tests.server.test_up import REPO, post, spans_body


def up(folder, *args: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "llmvigil.cli", "up", *args],
        cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    if "llmvigil up:" not in line:
        process.kill()
        raise AssertionError(line + process.stderr.read())
    process.first_line = line
    return process


@pytest.mark.postgres
def test_ingest_evaluate_and_scheduler_roles_share_one_postgres_store(
    tmp_path, postgres_url
) -> None:
    (tmp_path / "llmvigil.toml").write_text(
        '[evaluators]\nenabled = ["brevity"]\ninterval_s = 0.5\n'
    )
    ingest = up(tmp_path, "--role", "ingest", "--port", "0", "--store", postgres_url)
    workers = [up(tmp_path, "--role", "evaluate", "--store", postgres_url) for _ in range(2)]
    scheduler = up(tmp_path, "--role", "scheduler", "--store", postgres_url)
    processes = [ingest, *workers, scheduler]
    try:
        assert "no HTTP API" in workers[0].first_line
        url = ingest.first_line.split("listening on ")[1].split(",")[0]
        assert post(f"{url}/v1/spans", spans_body(300))[0] == 200
        with Store(postgres_url) as store:
            deadline = time.monotonic() + 120
            while len(store.evaluations()) < 300 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert len(store.evaluations()) == 300
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in processes]
    assert codes == [0, 0, 0, 0], [p.stderr.read() for p in processes]


def test_a_part_alone_needs_postgres(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmvigil.cli", "up", "--role", "evaluate",
         "--store", f"duckdb:///{tmp_path / 's.duckdb'}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "needs a PostgreSQL store" in done.stderr


@pytest.mark.postgres
def test_one_process_at_a_time_runs_a_scheduled_job(postgres_url) -> None:
    with Store(postgres_url) as first, Store(postgres_url) as second:
        with exclusive(first, "drift") as mine:
            assert mine
            with exclusive(second, "drift") as theirs, exclusive(second, "alerts") as other:
                assert not theirs and other  # another job's lock is free
        with exclusive(second, "drift") as now_mine:
            assert now_mine  # let go at the end of the block
