"""`llmvigil dashboard` and `llmvigil up --dashboard` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from llmvigil.dashboard.access import verify
from llmvigil.storage.store import Store
from tests.dashboard.fixture_store import fill

REPO = Path(__file__).resolve().parents[2]


def _run(
    *args: str, cwd: Path, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMVIGIL_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "llmvigil.cli", *args], cwd=cwd, env=env, input=stdin,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_a_bind_beyond_the_machine_needs_a_password_or_insecure(tmp_path):
    result = _run("dashboard", "--host", "0.0.0.0", cwd=tmp_path)
    assert result.returncode == 2
    assert "no password is set" in result.stderr and "--insecure" in result.stderr


def test_hash_password_prints_a_hash_that_verifies(tmp_path):
    result = _run("dashboard", "--hash-password", cwd=tmp_path, stdin="s3cret-words\n")
    assert result.returncode == 0 and verify("s3cret-words", result.stdout.strip())
    assert not verify("other-words", result.stdout.strip())
    short = _run("dashboard", "--hash-password", cwd=tmp_path, stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr


def test_a_missing_store_says_how_to_get_one(tmp_path):
    result = _run("dashboard", "--store", f"duckdb:///{tmp_path / 'none.duckdb'}", cwd=tmp_path)
    assert result.returncode == 2 and "llmvigil demo" in result.stderr


def test_up_serves_the_dashboard_reading_through_itself(tmp_path):
    store = tmp_path / "owned.duckdb"
    with Store(f"duckdb:///{store}") as opened:
        fill(opened)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMVIGIL_")}
    env |= {"PYTHONPATH": str(REPO), "LLMVIGIL_DASHBOARD_PORT": "0"}
    owner = subprocess.Popen(
        [sys.executable, "-m", "llmvigil.cli", "up", "--port", "0", "--no-evaluate", "--dashboard",
         "--store", f"duckdb:///{store}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "listening on" in owner.stdout.readline()
        line = owner.stdout.readline()  # said once the app answers
        assert line.startswith("llmvigil dashboard: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        with urllib.request.urlopen(url.replace("/overview", "/_stcore/health"), timeout=10) as r:
            assert r.status == 200
        children = subprocess.run(["pgrep", "-P", str(owner.pid)], capture_output=True, text=True)
        assert children.stdout.split(), "the app runs as the owner's child"
    finally:
        owner.terminate()
        assert owner.wait(30) == 0, owner.stderr.read()
    time.sleep(0.5)
    for pid in children.stdout.split():  # the owner stopped its app on the way out
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
