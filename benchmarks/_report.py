"""What every benchmark writes with its figures: the machine, how busy it was, and its own
section of RESULTS.md (replaced in place, the other benchmarks' sections kept)."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def load_average() -> float | None:
    """The 1-minute load average, or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def busy(load: tuple[float | None, float | None]) -> str:
    """The 1-minute load average around the run: other work on the machine skews timings."""
    if None in load:
        return ""
    return f"1-minute load average at start / end: {load[0]:.1f} / {load[1]:.1f}."


def header(
    heading: str,
    command: str,
    packages: Sequence[str],
    load: tuple[float | None, float | None],
) -> list[str]:
    """The opening lines of a results section: heading, command and date, machine, load."""
    busy_line = busy(load)
    return [
        heading,
        "",
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine(packages)}." + (f" {busy_line}" if busy_line else ""),
    ]


def machine(packages: Sequence[str]) -> str:
    """CPU model, cores, Python, and the installed versions of ``packages``."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        usable = os.cpu_count() or 0
    libraries = []
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            libraries.append(f"{package} {version(package)}")
    return (
        f"{cpu}, {usable} cores usable ({os.cpu_count()} online), "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
        + ", ".join(libraries)
    )


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the section starting at ``heading`` in ``path`` (or append it); keep the rest."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        before = "\n".join(lines[:start]).rstrip("\n")
        after = "\n".join(lines[end:]).strip("\n")
        new = (before + "\n\n" if before else "") + body.rstrip("\n") + "\n"
        if after:
            new += "\n" + after + "\n"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(new, encoding="utf-8")
    os.replace(temporary, path)
