"""The package as an app sees it: what ``import llmvigil`` costs the app's thread, and the
names the README's snippets reach through it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pyarrow", "sqlalchemy", "numpy", "duckdb", "pandas")


def python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_leaves_pyarrow_sqlalchemy_and_numpy_to_the_warm_up_thread(tmp_path) -> None:
    # The warm-up thread imports what the flush thread needs at once, in the background;
    # the app's own thread must not wait for any of it.
    result = python(
        f"""
        import sys, threading
        HEAVY = {HEAVY!r}
        by_thread = {{}}
        class Watch:
            def find_spec(self, name, path=None, target=None):
                if name in HEAVY:
                    by_thread.setdefault(name, set()).add(threading.current_thread().name)
        sys.meta_path.insert(0, Watch())
        import llmvigil
        on_main = sorted(n for n, threads in by_thread.items() if "MainThread" in threads)
        print("main", ",".join(on_main) or "-")
        from llmvigil.collector import runtime
        assert runtime._warmed.wait(60)
        print("warm-up", ",".join(sorted(by_thread)) or "-")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    main, warm = result.stdout.split("\n")[:2]
    assert main == "main -"
    assert "pyarrow" in warm  # the warm-up still loads it, off the app's thread


def test_integrations_and_the_store_resolve_after_a_plain_import(tmp_path) -> None:
    result = python(
        """
        import llmvigil
        print(llmvigil.integrations.openai.instrument.__name__)
        print(llmvigil.Store.__name__, llmvigil.open_store.__name__, llmvigil.MetricRow.__name__)
        from llmvigil.storage import Store
        assert Store is llmvigil.Store
        try:
            llmvigil.integrations.nothing
        except AttributeError as exc:
            print("missing:", exc)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["instrument", "Store open_store MetricRow"]
    assert "has no attribute 'nothing'" in lines[2]


def test_the_readme_layout_names_only_folders_and_files_that_exist() -> None:
    import re

    text = (REPO / "README.md").read_text()
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in layout.splitlines() if line.startswith("| ") and "`llmvigil" in line]
    assert len(rows) >= 7
    for row in rows:
        _, _, packages, holds, _ = row.split("|")
        places = re.findall(r"`(llmvigil[\w/.]*)`", packages)
        folders = [REPO / p for p in places if p.endswith("/")]
        for place in places:
            assert (REPO / place).exists(), place
        for name in re.findall(r"`([\w/]+\.py)`", holds):
            # `drift/`: run.py ... lists a subfolder's files too.
            assert any(any(folder.rglob(name)) for folder in folders), (name, row[:60])


#: Import names of extras whose distribution name differs.
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "alt-profanity-check": "profanity_check",
    "apscheduler": "apscheduler",
    "opentelemetry-proto": "opentelemetry",
    "opentelemetry-sdk": "opentelemetry",
    "opentelemetry-exporter-otlp-proto-http": "opentelemetry",
}


def extras_only() -> list[str]:
    """Import names of what only the extras install (pyproject.toml: extras less core)."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def name(requirement: str) -> str:
        return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()

    core = {name(r) for r in project["dependencies"]}
    extras = {
        name(r)
        for group, requirements in project["optional-dependencies"].items()
        for r in requirements
        if group != "all"
    }
    return sorted({IMPORT_NAMES.get(n, n.replace("-", "_")) for n in extras - core})


def test_the_core_install_records_ingests_and_summarises_without_the_extras(tmp_path) -> None:
    # `pip install -e .` (the README's "decorator alone"): an import of any extra fails here.
    assert {"torch", "evidently", "tqdm", "sklearn"} <= set(extras_only())
    result = python(
        f"""
        import sys
        BLOCKED = {extras_only()!r}
        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, NotInstalled())
        import llmvigil

        @llmvigil.observe(model="gpt-4o-mini")
        def answer(question):
            return "Open Settings, then Billing."

        for i in range(5):
            answer(f"How do I change my address? {{i}}")
        assert llmvigil.flush()
        from llmvigil.cli import main
        assert main(["ingest"]) == 0
        assert main(["metrics", "--since", "all", "--grain", "1h"]) == 0
        print("stats", llmvigil.stats()["dropped"])
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "5 spans, 5 new" in result.stdout and "stats 0" in result.stdout
    assert "Traceback" not in result.stderr
