"""How long ``import llmvigil`` keeps an app's thread, against a bare interpreter.

An app that only decorates its model calls pays this at start-up. Each run is
a fresh ``python`` process (nothing cached in memory but the OS's file cache),
timed in turns with ``python -c pass`` so both see the same machine load:

- *import returns*: ``time.perf_counter()`` around ``import llmvigil`` inside
  the process, the time the app's thread waits;
- *process*: the whole ``python -c "import llmvigil"`` run, start to exit, which
  also includes the warm-up thread finishing its background imports (pyarrow,
  the redactor, the price data) before the interpreter exits;
- the heavy modules (pyarrow, SQLAlchemy, numpy, DuckDB, pandas) the app's
  thread imported itself, recorded by an import hook that notes the thread of
  each import (``-X importtime`` mixes the warm-up thread's imports in).

Usage::

    python benchmarks/bench_import.py [--runs 15] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import header, load_average, write_section

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Import time: `import llmvigil`"
HEAVY = ("pyarrow", "sqlalchemy", "numpy", "duckdb", "pandas")

#: Run in the child: time the import on the main thread and list the heavy modules that
#: thread imported (the warm-up thread's own imports are not the app's wait).
CHILD = f"""
import sys, threading, time
HEAVY = {HEAVY!r}
mine = set()
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY and threading.current_thread() is threading.main_thread():
            mine.add(name)
        return None
sys.meta_path.insert(0, Watch())
started = time.perf_counter()
import llmvigil
took = time.perf_counter() - started
print(took, ",".join(sorted(mine)) or "-")
"""


def _environ() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _process(code: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_environ(), check=True
    )
    return time.perf_counter() - started, done.stdout


def measure(runs: int) -> dict[str, object]:
    """Medians over ``runs`` fresh processes of each kind, taken in turns."""
    bare, whole, returns = [], [], []
    heavy: set[str] = set()
    _process("import llmvigil")  # the first run fills the OS's file cache
    for _ in range(runs):
        bare.append(_process("pass")[0])
        whole.append(_process("import llmvigil")[0])
        out = _process(CHILD)[1]
        took, imported = out.split()
        returns.append(float(took))
        heavy |= set() if imported == "-" else set(imported.split(","))
    return {
        "bare": statistics.median(bare),
        "whole": statistics.median(whole),
        "returns": statistics.median(returns),
        "heavy": sorted(heavy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15, help="processes of each kind")
    parser.add_argument("--write", action="store_true", help="replace the RESULTS.md section")
    args = parser.parse_args()
    load = [load_average(), None]
    figures = measure(args.runs)
    load[1] = load_average()
    bare, whole, returns = figures["bare"], figures["whole"], figures["returns"]
    heavy = ", ".join(figures["heavy"]) or "none"
    lines = header(HEADING, f"python benchmarks/bench_import.py --runs {args.runs}",
                   ["llmvigil", "pydantic", "pyarrow", "sqlalchemy"], tuple(load))  # fmt: skip
    lines += [
        "",
        f"Medians of {args.runs} fresh processes of each kind, run in turns.",
        "",
        "| | seconds | against `python -c pass` |",
        "|---|---:|---:|",
        f"| `python -c pass` | {bare:.3f} | 1.0x |",
        f"| `import llmvigil` returns (the app's thread waits) | **{returns:.3f}** | "
        f"{(bare + returns) / bare:.1f}x (interpreter start included) |",
        f'| `python -c "import llmvigil"`, start to exit | {whole:.3f} | {whole / bare:.1f}x |',
        "",
        f"- Heavy modules the app's thread imported itself: {heavy} (pyarrow, SQLAlchemy, "
        "numpy and DuckDB load on the collector's warm-up thread, in the background, or when "
        "a store is opened).",
        "- The process figure includes the warm-up thread finishing before the interpreter "
        "exits (a process that ends at once waits for it rather than abort inside a native "
        "import).",
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, body)


if __name__ == "__main__":
    main()
