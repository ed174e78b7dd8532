"""A process that stored spans in DuckDB and imported torch ends without DuckDB's leak report.

`python -c "import duckdb_engine; import torch"` alone makes DuckDB print "nanobind: leaked
N instances!" at exit (see llmvigil.storage.duckdb_exit); with llmvigil imported it must not,
and the collector's exit flush, which runs before the release, must still store every call.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmvigil.storage import Store

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed"
)


def run(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "store.duckdb")],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_report_is_what_duckdb_and_torch_print_without_llmvigil(tmp_path) -> None:
    # The premise: if this stops printing, a duckdb or torch upgrade fixed it upstream and
    # llmvigil.storage.duckdb_exit can go.
    result = run(tmp_path, "import duckdb_engine; import torch")
    assert "nanobind: leaked" in result.stderr


def test_an_app_on_a_duckdb_store_that_imports_torch_exits_quietly_with_its_spans(
    tmp_path,
) -> None:
    result = run(
        tmp_path,
        """
        import sys
        import llmvigil

        llmvigil.configure(sink="direct", store=f"duckdb:///{sys.argv[1]}")

        @llmvigil.observe(model="gpt-4o")
        def answer(i):
            return f"answer {i}"

        answer(0)
        llmvigil.flush()          # the store (and DuckDB's dialect) is open from here on
        import torch              # after DuckDB's dialect: the order that made the report
        for i in range(1, 50):
            answer(i)             # left for the exit flush
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "nanobind" not in result.stderr
    with Store(f"duckdb:///{tmp_path / 'store.duckdb'}") as store:
        outputs = sorted(row["output_text"] for row in store.spans(limit=None))
    assert outputs == sorted(f"answer {i}" for i in range(50))
