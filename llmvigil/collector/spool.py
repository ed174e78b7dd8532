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

import contextlib
import itertools
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from llmvigil.errors import IngestError
from llmvigil.storage.bulk import REASON_COLUMN
from llmvigil.storage.store import Store

log = logging.getLogger("llmvigil.ingest")

SEGMENT_GLOB = "spans-*.parquet"
TEMP_PREFIX = ".tmp-"
BAD_FOLDER = "bad"
#: Schema metadata key of a raw segment; its value is the app's collector settings (JSON).
RAW_KEY = b"llmvigil.raw"
#: Parquet codec of the segments the collector writes. Snappy costs the app's writer thread
#: about half what zstd does per 10 KB span (17 against 30-50 µs, measured in
#: ``benchmarks/bench_collector.py``), for segments about 40 % larger; they live only until
#: the owner loads them.
SEGMENT_CODEC = "snappy"
_sequence = itertools.count()


def write_segment(folder: str | os.PathLike[str], table: pa.Table) -> Path:
    """Write ``table`` as one whole segment in ``folder``; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"spans-{time.time_ns():020d}-{os.getpid()}-{next(_sequence):08d}.parquet"
    final = folder / name
    _write_atomically(
        final, lambda handle: pq.write_table(table, handle, compression=SEGMENT_CODEC)
    )
    _fsync_folder(folder)
    return final


FEEDBACK_GLOB = "feedback-*.jsonl"


def write_feedback(folder: str | os.PathLike[str], entries: list[dict]) -> Path:
    """Write feedback entries (:mod:`.feedback`) as one JSON-lines file in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"feedback-{time.time_ns():020d}-{os.getpid()}-{next(_sequence):08d}.jsonl"
    body = "".join(json.dumps(entry) + "\n" for entry in entries).encode()
    _write_atomically(folder / name, lambda handle: handle.write(body))
    _fsync_folder(folder)
    return folder / name


def _ingest_feedback(store: Store, folder: Path, report: IngestReport) -> None:
    """Load the feedback files of ``folder`` (feedback and the collectors' drop reports,
    idempotent by their ids), each deleted after."""
    from llmvigil.collector.feedback import store_entry
    from llmvigil.collector.runtime import DROPPED

    for path in sorted(folder.glob(FEEDBACK_GLOB)):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            _set_aside(folder, path, f"unreadable feedback file: {exc}", report)
            continue
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                store_entry(store, entry)  # a drop report, or feedback
                report.feedback += entry.get("kind") != DROPPED
            except (ValueError, TypeError, KeyError, AttributeError, IngestError) as exc:
                log.error("llmvigil: %s:%d: feedback not stored (%s)", path, number, exc)
        path.unlink(missing_ok=True)


def read_segment(path: str | os.PathLike[str]) -> pa.Table:
    """A segment's spans, ready for the store.

    A segment spilled raw (at exit, when the app had no time to process its
    queue) is finished here, with the app's own collector settings recorded in
    it: tokens, cost, redaction and truncation, exactly as the app would have.
    """
    table = pq.read_table(path)
    if is_raw(table):
        from llmvigil.collector.pipeline import finish_raw

        table = finish_raw(table)
    return table


def is_raw(table: pa.Table) -> bool:
    """True for a batch spilled before the pipeline's steps ran."""
    return (table.schema.metadata or {}).get(RAW_KEY) is not None


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
    """What one :func:`ingest_spool` run did.

    ``rows`` counts the spans the store took (new or already stored);
    ``bad`` lists the segments set aside whole (unreadable, or columns
    unknown or missing), ``bad_rows`` the spans set aside from segments whose
    other rows were stored, kept in the files of ``bad_row_files``.
    """

    segments: int = 0
    rows: int = 0
    inserted: int = 0
    bad: list[str] = field(default_factory=list)
    bad_rows: int = 0
    bad_row_files: list[str] = field(default_factory=list)
    #: Feedback entries stored from the folder's feedback files.
    feedback: int = 0

    @property
    def duplicates(self) -> int:
        """Rows skipped because their span_id was already stored."""
        return self.rows - self.inserted


def ingest_spool(
    store: Store, folder: str | os.PathLike[str], max_segments: int | None = None
) -> IngestReport:
    """Load spool segments into ``store``, oldest first, deleting each after its commit.

    A segment that cannot be read, or whose columns are unknown or missing,
    is moved to ``folder/bad/`` whole. From any other segment the rows the
    store accepts are stored and the rows it refuses (JSON that does not
    parse, text that is not UTF-8 or holds a NUL, an id over 64 characters,
    a value of the wrong type: see :meth:`Store.append_valid_spans`) are
    written to ``folder/bad/<segment>.rows.parquet`` with a
    ``llmvigil_reason`` column, and logged with the segment's name. Either
    way the run goes on with the next segment. Raises :class:`StoreError` if
    the store itself fails: that segment and the later ones stay for the
    next run.
    """
    folder = Path(folder)
    report = IngestReport()
    _remove_stale_temporaries(folder)
    for path in segments(folder)[:max_segments]:
        ingest_segment(store, path, report)
    _ingest_feedback(store, folder, report)
    return report


def ingest_segment(
    store: Store, path: str | os.PathLike[str], report: IngestReport | None = None
) -> IngestReport:
    """Load one segment as :func:`ingest_spool` does, setting aside in its folder's ``bad/``
    what the store refuses, and delete it; add what it did to ``report`` and return that.

    A segment that another loader took meanwhile is skipped. Raises
    :class:`StoreError` if the store fails (the segment stays).
    """
    path = Path(path)
    folder = path.parent
    report = report if report is not None else IngestReport()
    try:
        table = read_segment(path)
    except FileNotFoundError:
        return report
    except (pa.ArrowException, OSError) as exc:
        _set_aside(folder, path, f"it cannot be read as Parquet ({exc})", report)
        return report
    try:
        inserted, refused = store.append_valid_spans(table)
    except IngestError as exc:
        _set_aside(folder, path, str(exc), report)
        return report
    if refused.num_rows:
        _set_rows_aside(folder, path, refused, report)
    report.segments += 1
    report.rows += table.num_rows - refused.num_rows
    report.inserted += inserted
    with contextlib.suppress(FileNotFoundError):  # another loader deleted it meanwhile
        path.unlink()
    return report


def _set_aside(folder: Path, path: Path, reason: str, report: IngestReport) -> None:
    bad = folder / BAD_FOLDER
    bad.mkdir(exist_ok=True)
    target = bad / path.name
    try:
        os.replace(path, target)
    except FileNotFoundError:  # another loader took it meanwhile
        return
    report.bad.append(str(target))
    log.error("llmvigil ingest: segment %s moved to %s: %s", path.name, target, reason)


def _set_rows_aside(folder: Path, path: Path, refused: pa.Table, report: IngestReport) -> None:
    """Keep the rows the store refused in ``bad/<segment>.rows.parquet``, and say why."""
    bad = folder / BAD_FOLDER
    bad.mkdir(exist_ok=True)
    target = bad / f"{path.stem}.rows.parquet"
    # Written before the segment is deleted: a crash between the two leaves the segment,
    # whose good rows are then skipped as already stored and whose bad rows are set aside again.
    _write_atomically(target, lambda handle: pq.write_table(refused, handle, compression="zstd"))
    report.bad_rows += refused.num_rows
    report.bad_row_files.append(str(target))
    reasons = Counter(_kind_of(r) for r in refused.column(REASON_COLUMN).to_pylist())
    log.error(
        "llmvigil ingest: %d of the spans in %s are refused by the store and kept in %s (%s); "
        "its other spans are stored",
        refused.num_rows,
        path.name,
        target,
        "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common()),
    )


def _kind_of(reason: str) -> str:
    # "metadata is not valid JSON (Expecting ...: line 1 column 5)" -> one kind per cause.
    return reason.split(" (", 1)[0]


def _write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write`` into a temporary file beside ``target``, fsync it, rename it to ``target``."""
    temporary = target.with_name(f"{TEMP_PREFIX}{target.name}")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        # A full disk or a kill mid-write: never leave a partial file behind for each retry.
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _remove_stale_temporaries(folder: Path, older_than_s: float = 3600) -> None:
    # A temporary file is a segment whose writer died before the rename: never a whole segment.
    now = time.time()
    for temporary in folder.glob(f"{TEMP_PREFIX}*"):
        try:
            if now - temporary.stat().st_mtime > older_than_s:
                temporary.unlink()
        except OSError:
            pass
