"""Spool segments: batches of spans as Parquet files in a folder, and their ingestion into a store.

A segment is written under a temporary name, fsync'd, renamed to its final
name and the folder fsync'd, so a crash leaves whole segments or none. Any
number of processes can spool into one folder without locks: names carry the
time, the process id and a sequence number. :func:`ingest_spool` loads
segments oldest first and deletes each one only after its rows are committed;
a segment that cannot be read is moved to ``bad/`` with a log line, never
lost and never retried forever.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from llmvigil.errors import IngestError, StoreError
from llmvigil.storage.store import Store

log = logging.getLogger("llmvigil.ingest")

SEGMENT_GLOB = "spans-*.parquet"
TEMP_PREFIX = ".tmp-"
BAD_FOLDER = "bad"
_sequence = itertools.count()


def write_segment(folder: str | os.PathLike[str], table: pa.Table) -> Path:
    """Write ``table`` as one whole segment in ``folder``; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"spans-{time.time_ns():020d}-{os.getpid()}-{next(_sequence):08d}.parquet"
    temporary = folder / f"{TEMP_PREFIX}{name}"
    final = folder / name
    with open(temporary, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    _fsync_folder(folder)
    return final


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def segments(folder: str | os.PathLike[str]) -> list[Path]:
    """Complete segments in ``folder``, oldest first."""
    return sorted(Path(folder).glob(SEGMENT_GLOB))


@dataclass
class IngestReport:
    """What one :func:`ingest_spool` run did."""

    segments: int = 0
    rows: int = 0
    inserted: int = 0
    bad: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Rows skipped because their span_id was already stored."""
        return self.rows - self.inserted


def ingest_spool(
    store: Store, folder: str | os.PathLike[str], max_segments: int | None = None
) -> IngestReport:
    """Load spool segments into ``store``, deleting each after its commit.

    A segment that cannot be parsed or whose rows the store refuses as
    malformed is moved to ``folder/bad/`` and named in the report. Raises
    :class:`StoreError` if the store itself fails (the segment then stays for
    the next run).
    """
    folder = Path(folder)
    report = IngestReport()
    _remove_stale_temporaries(folder)
    for path in segments(folder)[:max_segments]:
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            _set_aside(folder, path, f"it cannot be read as Parquet ({exc})", report)
            continue
        try:
            inserted = store.append_spans(table)
        except IngestError as exc:
            _set_aside(folder, path, str(exc), report)
            continue
        except StoreError:
            raise
        report.segments += 1
        report.rows += table.num_rows
        report.inserted += inserted
        path.unlink()
    return report


def _set_aside(folder: Path, path: Path, reason: str, report: IngestReport) -> None:
    bad = folder / BAD_FOLDER
    bad.mkdir(exist_ok=True)
    target = bad / path.name
    os.replace(path, target)
    report.bad.append(str(target))
    log.error("llmvigil ingest: segment %s moved to %s: %s", path.name, target, reason)


def _remove_stale_temporaries(folder: Path, older_than_s: float = 3600) -> None:
    # A temporary file is a segment whose writer died before the rename: never a whole segment.
    now = time.time()
    for temporary in folder.glob(f"{TEMP_PREFIX}*"):
        try:
            if now - temporary.stat().st_mtime > older_than_s:
                temporary.unlink()
        except OSError:
            pass
