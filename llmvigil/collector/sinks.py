"""Where the flush thread writes batches: a store in this process, or the spool folder.

A sink writes one Arrow batch at a time and raises when it cannot; the runtime
then keeps the batch and tries again. A :class:`DirectSink` whose store fails,
or cannot even be opened, writes to the spool folder instead from the first
batch on, so a batch reaches disk while the store is down; once the store
answers again the sink loads the segments it spooled itself (and ``llmvigil
ingest`` loads any that are left).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from llmvigil.collector.spool import ingest_segment, write_segment
from llmvigil.storage.store import Store

log = logging.getLogger("llmvigil.collector")

#: Seconds between attempts to open (or reach again) a store that failed.
RETRY_STORE_S = 5.0


class Sink(Protocol):
    """Anything that durably writes a batch of spans, raising if it could not."""

    def write(self, table: pa.Table) -> None:
        """Write the whole batch or raise."""

    def close(self) -> None:
        """Release what the sink holds."""


class SpoolSink:
    """Writes each batch as a segment file in ``folder`` (see :mod:`.spool`)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def write(self, table: pa.Table) -> Path:
        """Write ``table`` as one segment; return its path."""
        return write_segment(self.folder, table)

    def close(self) -> None:
        pass

    def for_forked_child(self) -> SpoolSink:
        """The sink a forked child uses: this one (segment names carry the process id)."""
        return self

    def __repr__(self) -> str:
        return f"SpoolSink({str(self.folder)!r})"


class DirectSink:
    """Appends each batch to a :class:`Store`; when the store fails, writes to the spool instead.

    ``store`` is an open :class:`Store` or a URL, opened on the first batch
    (and again every :data:`RETRY_STORE_S` seconds while it cannot be).
    """

    def __init__(
        self,
        store: Store | str,
        fallback: SpoolSink | None = None,
        owns_store: bool = False,
    ) -> None:
        self.store: Store | None = store if isinstance(store, Store) else None
        self.url = store.url if isinstance(store, Store) else store
        self.fallback = fallback
        self.owns_store = owns_store or not isinstance(store, Store)
        self.spooled = 0
        self._spooled_segments: list[Path] = []
        self._store_failed_at: float | None = None
        self._open_error: Exception | None = None

    def write(self, table: pa.Table) -> None:
        store = self._usable_store()
        if store is not None:
            try:
                store.append_spans(table)
            except Exception as exc:
                self._store_failed_at = time.monotonic()
                self._spool(table, exc)
                return
            self._store_failed_at = None
            self._replay()
            return
        self._spool(table, self._open_error)

    def _usable_store(self) -> Store | None:
        # After a failure the store is tried again only every RETRY_STORE_S seconds, so a
        # down server costs one timeout per interval, not one per batch.
        failed = self._store_failed_at
        if failed is not None and time.monotonic() - failed < RETRY_STORE_S:
            return None
        if self.store is None:
            try:
                self.store = Store(self.url)
            except Exception as exc:
                self._open_error = exc
                self._store_failed_at = time.monotonic()
                return None
        return self.store

    def _spool(self, table: pa.Table, problem: Exception | None) -> None:
        if self.fallback is None:
            raise problem or RuntimeError("the store is unavailable")
        path = self.fallback.write(table)
        self.spooled += table.num_rows
        self._spooled_segments.append(path)
        log.warning(
            "llmvigil: the store %s cannot take spans (%s); a batch of %d spooled to %s "
            "instead, loaded once the store answers (or by `llmvigil ingest`)",
            self.display_url,
            problem,
            table.num_rows,
            path,
        )

    def _replay(self) -> None:
        while self._spooled_segments:
            path = self._spooled_segments[0]
            if path.exists():
                try:
                    ingest_segment(self.store, path)  # refused rows go to bad/
                except Exception as exc:  # still down, or someone else ingests it: later
                    log.info("llmvigil: replaying %s failed (%s); it stays in the spool", path, exc)
                    return
            self._spooled_segments.pop(0)

    @property
    def display_url(self) -> str:
        """The store's URL, password hidden."""
        if self.store is not None:
            return self.store.display_url
        import sqlalchemy as sa

        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<store>"

    def for_forked_child(self) -> DirectSink | SpoolSink:
        """The sink a forked child uses.

        A DuckDB connection must never be used by two processes, and the file
        belongs to the parent: the child spools. A PostgreSQL pool's connections
        belong to the parent too: the child gets a fresh pool (SQLAlchemy's advice
        for forked processes) and its own sink.
        """
        if self.url.startswith("duckdb"):
            # Without a spool the child opens the file itself, which the parent's lock refuses,
            # so its batches wait in memory rather than corrupt the parent's database.
            return self.fallback or DirectSink(self.url)
        if self.store is not None:
            self.store.engine.dispose(close=False)
        return DirectSink(self.store or self.url, self.fallback, self.owns_store)

    def close(self) -> None:
        if self.owns_store and self.store is not None:
            self.store.close()

    def __repr__(self) -> str:
        return f"DirectSink({self.display_url!r})"
