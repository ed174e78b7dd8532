"""A fresh clone is self-contained: it carries the data its tests, benchmarks and scripts read.

The README's ``pytest -q`` must pass in a clone with nothing beside it, so no
source file may reach outside the repository for data, and the dev sets must be
in the repository with their licences.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / "datasets"
DEV_SETS = ("eval_dev.jsonl", "halueval_qa_dev.jsonl", "toxigen_dev.jsonl")
# Built from pieces so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [
            r"(?<![\w.])/" + r"work/",  # an absolute path into this workspace
            r"\.\./" + r"shared",  # a folder beside the clone
            r"""parents?(\[\d\])?\s*/\s*["']""" + r"""shared["']""",
            r"""["']\.\.""" + r"""["']\s*/""",  # a parent-folder segment in a Path
        ]
    )
)
SOURCE_SUFFIXES = {".py", ".toml", ".cfg", ".ini", ".sh"}


def repository_files() -> list[Path]:
    """Files a clone would hold (tracked or new, not ignored), or skip when git is missing."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [REPO / name for name in listed.split("\0") if name and (REPO / name).is_file()]


def test_the_dev_sets_and_their_licences_are_in_the_repository() -> None:
    files = set(repository_files())
    for name in (*DEV_SETS, "README.md", "LICENSES.md"):
        assert DATASETS / name in files, f"datasets/{name} is not in the repository"
    licences = (DATASETS / "LICENSES.md").read_text(encoding="utf-8")
    for name in DEV_SETS:
        assert f"## {name}" in licences, f"datasets/LICENSES.md has no section for {name}"


def test_no_source_file_reads_a_path_outside_the_repository() -> None:
    sources = [
        p
        for p in repository_files()
        if p.suffix in SOURCE_SUFFIXES or p.parent.name == ".ci" or p.name == "conftest.py"
    ]
    assert sources, "no source files found"
    found = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in sources
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def test_the_loaders_default_to_the_repository_datasets_folder() -> None:
    # A child process: LLMVIGIL_DATASETS unset, as in a fresh shell.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks import _eval_data as d;"
        "print(d.DATASETS_DIR); print(d.dataset_path('eval_dev.jsonl'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "LLMVIGIL_DATASETS"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO)],
        cwd=REPO / "tests",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [Path(p) for p in out] == [DATASETS, DATASETS / "eval_dev.jsonl"]


@pytest.mark.parametrize(
    ("script", "extra"),
    [
        ("benchmarks/bench_evaluators.py", ["--skip-throughput"]),
        ("scripts/train_toxicity_head.py", ["--no-write"]),
    ],
)
def test_scripts_refuse_a_datasets_folder_that_does_not_exist(
    script: str, extra: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    run = subprocess.run(
        [sys.executable, str(REPO / script), "--datasets", str(missing), *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert f"--datasets: datasets folder '{missing}' is not a directory" in run.stderr
