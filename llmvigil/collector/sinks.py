"""Where the flush thread writes batches: a store in this process, or the spool folder.

A sink writes one Arrow batch at a time and raises when it cannot; the runtime
then keeps the batch and tries again. A :class:`DirectSink` whose store fails
falls back to the spool folder, so a batch reaches disk even while the store
is down, and ``llmvigil ingest`` loads it later.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from llmvigil.collector.spool import write_segment
from llmvigil.storage.store import Store

log = logging.getLogger("llmvigil.collector")


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

    def write(self, table: pa.Table) -> None:
        write_segment(self.folder, table)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"SpoolSink({str(self.folder)!r})"


class DirectSink:
    """Appends each batch to a :class:`Store`; on failure, writes it to the spool instead."""

    def __init__(
        self,
        store: Store,
        fallback: SpoolSink | None = None,
        owns_store: bool = False,
    ) -> None:
        self.store = store
        self.fallback = fallback
        self.owns_store = owns_store

    def write(self, table: pa.Table) -> None:
        try:
            self.store.append_spans(table)
        except Exception as exc:
            if self.fallback is None:
                raise
            log.warning(
                "llmvigil: the store refused a batch of %d spans (%s); spooled to %s instead",
                table.num_rows,
                exc,
                self.fallback.folder,
            )
            self.fallback.write(table)

    def close(self) -> None:
        if self.owns_store:
            self.store.close()

    def __repr__(self) -> str:
        return f"DirectSink({self.store.display_url!r})"
