"""Group commit: the spans of requests that arrive together are stored in one transaction.

A store transaction has a fixed cost (DuckDB: about 15 ms a commit, whatever
its size), so 100 spans per request, one transaction each, caps ingest near
6,000 spans/s, where one append of 10,000 takes 30,000/s. Requests hand
their rows to one writer thread and wait; the writer takes everything queued
at that moment (no added delay: under light load a group is one request) and
appends it at once. Each request is answered only after its rows are
committed, so an answered request is durable, exactly as before.

A group the store refuses (a row either engine rejects) is appended again
request by request, so only the request that holds the bad row fails.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from llmvigil.errors import IngestError
from llmvigil.storage import schema

log = logging.getLogger("llmvigil.server")

Rows = Sequence[Mapping[str, Any]]
#: At most this many spans in one group (a bounded transaction, a bounded wait).
MAX_GROUP_SPANS = 50_000


class _Request:
    __slots__ = ("future", "loop", "rows")

    def __init__(self, rows: Rows, loop: asyncio.AbstractEventLoop) -> None:
        self.rows = rows
        self.loop = loop
        self.future: asyncio.Future[int] = loop.create_future()

    def answer(self, result: int | BaseException) -> None:
        def settle() -> None:
            if self.future.done():  # the client went away
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(settle)


class GroupWriter:
    """Appends rows for many requests at once; :meth:`append` is awaited by each request."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="llmvigil-writer", daemon=True)
        self._thread.start()

    async def append(self, rows: Rows) -> int:
        """Store ``rows`` (with the rows of the requests beside it); how many were new.

        Raises :class:`IngestError` if the store refuses one of these rows (none of them is
        stored then) and :class:`StoreError` if the store fails.
        """
        request = _Request(rows, asyncio.get_running_loop())
        self._queue.put(request)
        return await request.future

    def close(self) -> None:
        """Finish the groups queued and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, size, stop = [first], len(first.rows), False
            while size < MAX_GROUP_SPANS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
                size += len(more.rows)
            self._store_group(group)
            if stop:
                return

    def _store_group(self, group: list[_Request]) -> None:
        if len(group) == 1:
            self._store_alone(group[0])
            return
        rows = [row for request in group for row in request.rows]
        try:
            inserted = self.store.append_spans(rows)
        except IngestError:  # one request holds a row the store refuses: find which
            for request in group:
                self._store_alone(request)
            return
        except Exception as exc:
            for request in group:
                request.answer(exc)
            return
        if inserted == len(rows):
            for request in group:
                request.answer(len(request.rows))
            return
        try:
            new = self._new_ids(rows) if inserted else set()
        except Exception as exc:  # stored, but who sent what is unknown: say all stored
            log.warning("llmvigil: could not tell which spans were new (%s)", exc)
            new = {row["span_id"] for row in rows}
        for request in group:
            request.answer(sum(1 for row in request.rows if row["span_id"] in new))

    def _store_alone(self, request: _Request) -> None:
        try:
            request.answer(self.store.append_spans(request.rows))
        except Exception as exc:
            request.answer(exc)

    def _new_ids(self, rows: Rows) -> set[str]:
        """The ids of ``rows`` stored by the group just appended: those stamped last (one
        append stamps all its rows with one ``ingested_at``, later than any before it)."""
        s = schema.spans
        ids = list({row["span_id"] for row in rows})
        query = sa.select(s.c.span_id, s.c.ingested_at).where(s.c.span_id.in_(ids))
        with self.store.engine.connect() as conn:
            found = conn.execute(query).all()
        newest = max(stamp for _, stamp in found)
        return {span_id for span_id, stamp in found if stamp == newest}
