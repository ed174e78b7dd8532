"""Where the flush thread writes batches: a store in this process, the spool folder, or a
running ``llmvigil up`` over HTTP.

A sink writes one Arrow batch at a time and raises when it cannot; the runtime
then keeps the batch and tries again. A :class:`DirectSink` whose store fails,
or cannot even be opened, writes to the spool folder instead from the first
batch on, so a batch reaches disk while the store is down; once the store
answers again the sink loads the segments it spooled itself (and ``llmvigil
ingest`` loads any that are left).
"""

from __future__ import annotations

import contextlib
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

    def write_feedback(self, entries: list[dict], timeout_s: float | None = None) -> None:
        """Write feedback entries as a file the owner's ingest loads."""
        from llmvigil.collector.spool import write_feedback

        write_feedback(self.folder, entries)

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

    def write_feedback(self, entries: list[dict], timeout_s: float | None = None) -> None:
        """Store feedback entries and drop reports (:mod:`.feedback`); raises when the store
        cannot be reached (then spooled)."""
        from llmvigil.collector.feedback import store_entry
        from llmvigil.errors import IngestError

        store = self._usable_store()
        if store is None:
            raise self._open_error or RuntimeError("the store is unavailable")
        for entry in entries:
            try:
                store_entry(store, entry)
            except IngestError as exc:  # this entry is bad, not the store
                log.error("llmvigil: feedback not stored (%s)", exc)

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


#: The media type of a batch posted to ``llmvigil up``: an Arrow IPC stream.
ARROW_STREAM = "application/vnd.apache.arrow.stream"


#: What :meth:`HttpSink._post` says of a batch of several spans the server answers 413.
_TOO_LARGE = "too large"


class HttpSink:
    """Posts each batch to a running ``llmvigil up``; while it cannot, spools the batch.

    A batch goes as an Arrow IPC stream to ``{endpoint}/v1/spans``. When the
    server is down, refuses the connection, answers 5xx or 429, or times out,
    the batch is written to the spool folder and the server is tried again
    after :data:`RETRY_STORE_S` seconds; once it answers, the segments spooled
    meanwhile are posted, oldest first. A 413 says the batch is over the server's
    limits (``[server] max_batch_spans``, ``max_body_bytes``): it is sent again in
    halves, down to single spans. A 400, 415 or 422 (or a 413 for one span) says the
    batch itself is bad: it is logged and moved aside (the spool's ``bad/`` folder),
    not retried for ever. A 401 or 403 is a key to fix: the batch is spooled and
    kept. The app's thread is never involved: this runs on the flush thread.
    """

    def __init__(
        self,
        endpoint: str,
        fallback: SpoolSink,
        api_key: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.fallback = fallback
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.spooled = 0
        self._failed_at: float | None = None
        # Segments may wait in the spool from an earlier run that ended while the server was
        # down: they are sent after the first batch that goes through.
        self._replay_due = True
        self._outage = False

    def write(self, table: pa.Table) -> None:
        failed = self._failed_at
        if failed is not None and time.monotonic() - failed < RETRY_STORE_S:
            self._spool(table, "the server did not answer a moment ago")
            return
        outcome = self._deliver(table)
        if outcome == "ok":
            self._failed_at = None
            self._replay()
        else:
            self._failed_at = time.monotonic()
            self._spool(table, outcome)

    def write_feedback(self, entries: list[dict], timeout_s: float | None = None) -> None:
        """``POST /v1/feedback`` each entry (a drop report: ``/v1/collector/dropped``), each
        waiting at most ``timeout_s`` (default: the sink's timeout); raises when the server
        cannot take them (then spooled, and loaded by the owner if it shares the folder, or
        sent by a later run)."""
        import json as json_module
        import urllib.error
        import urllib.request

        from llmvigil.collector.runtime import DROPPED

        for entry in entries:
            route, body = "/v1/feedback", entry
            if entry.get("kind") == DROPPED:
                route, body = (
                    "/v1/collector/dropped",
                    {k: v for k, v in entry.items() if k != "kind"},
                )
            request = urllib.request.Request(
                f"{self.endpoint}{route}", data=json_module.dumps(body).encode(), method="POST"
            )
            request.add_header("Content-Type", "application/json")
            if self.api_key:
                request.add_header("Authorization", f"Bearer {self.api_key}")
            try:
                with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as r:
                    r.read()
            except urllib.error.HTTPError as exc:
                if exc.code != 422:
                    raise
                log.error("llmvigil: the server refused feedback %s", exc.read(300))

    def _deliver(self, table: pa.Table, timeout_s: float | None = None) -> str:
        """``ok`` once the server stored ``table`` (or the part of it it calls bad is set
        aside), else why it could not be sent: the caller spools all of it, and what the
        server already took is stored once when it comes again (spans are idempotent)."""
        outcome = self._post(table, timeout_s)
        if outcome == "bad":
            self._set_aside(table)
        elif outcome == _TOO_LARGE:
            half = table.num_rows // 2
            for part in (table.slice(0, half), table.slice(half)):
                outcome = self._deliver(part, timeout_s)
                if outcome != "ok":
                    return outcome
        return "ok" if outcome in ("ok", "bad") else outcome

    def _post(self, table: pa.Table, timeout_s: float | None = None) -> str:
        """``ok``, ``bad`` (the server refuses this batch), :data:`_TOO_LARGE` (over its
        limits, and more than one span), or why it could not be sent."""
        import urllib.error
        import urllib.request

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        request = urllib.request.Request(
            f"{self.endpoint}/v1/spans", data=sink.getvalue().to_pybytes(), method="POST"
        )
        request.add_header("Content-Type", ARROW_STREAM)
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as response:
                response.read()
            return "ok"
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace")
            if exc.code == 413 and table.num_rows > 1:
                log.debug("llmvigil: %d spans are over the server's limits (%s)", table.num_rows,
                          detail)  # fmt: skip
                return _TOO_LARGE
            if exc.code in (400, 413, 415, 422):
                log.error(
                    "llmvigil: %s refused a batch of %d spans (HTTP %d: %s); it is set aside",
                    self.endpoint, table.num_rows, exc.code, detail,
                )  # fmt: skip
                return "bad"
            return f"HTTP {exc.code} from {self.endpoint}: {detail}"
        except (urllib.error.URLError, OSError) as exc:
            return f"{self.endpoint} cannot be reached ({getattr(exc, 'reason', exc)})"

    def _spool(self, table: pa.Table, problem: str) -> None:
        self.fallback.write(table)
        self.spooled += table.num_rows
        self._replay_due = True
        if not self._outage:  # once per outage: an app sends a batch every second
            self._outage = True
            log.warning(
                "llmvigil: %s; spooling batches to %s until it answers, then sending them, "
                "oldest first",
                problem, self.fallback.folder,
            )  # fmt: skip

    def _set_aside(self, table: pa.Table) -> None:
        from llmvigil.collector.spool import BAD_FOLDER

        write_segment(self.fallback.folder / BAD_FOLDER, table)

    def _replay(self, timeout_s: float | None = None) -> None:
        """Send the segments waiting in the spool, oldest first, each removed once taken.

        Every segment in the folder is sent, this process's or not (another run of the
        app left it): processes sharing the folder may send one twice, which the server
        stores once (spans are idempotent by id).
        """
        from llmvigil.collector.spool import read_segment, segments

        if not self._replay_due:
            return
        sent = 0
        for path in segments(self.fallback.folder):
            try:
                table = read_segment(path)
            except Exception as exc:  # taken meanwhile (another process, an owner here)
                log.debug("llmvigil: cannot read %s (%s)", path, exc)
                continue
            if self._deliver(table, timeout_s) != "ok":
                self._failed_at = time.monotonic()
                return  # still down: later, in order
            path.unlink(missing_ok=True)
            sent += table.num_rows
        self._send_spooled_feedback(timeout_s)
        self._replay_due = False
        if self._outage or sent:
            log.info("llmvigil: %s answers; sent %d spans from the spool", self.endpoint, sent)
        self._outage = False

    def _send_spooled_feedback(self, timeout_s: float | None) -> None:
        import json as json_module

        from llmvigil.collector.spool import FEEDBACK_GLOB

        for path in sorted(self.fallback.folder.glob(FEEDBACK_GLOB)):
            try:
                entries = [json_module.loads(x) for x in path.read_text().splitlines() if x]
            except (OSError, ValueError):  # taken meanwhile, or not ours to read
                continue
            try:
                self.write_feedback(entries, timeout_s)
            except Exception:  # the server is down again: the file waits for the next replay
                return
            path.unlink(missing_ok=True)

    def for_forked_child(self) -> HttpSink:
        """The sink a forked child uses: its own, posting to the same server."""
        return HttpSink(self.endpoint, self.fallback, self.api_key, self.timeout_s)

    def close(self) -> None:
        """At shutdown: send what waits in the spool if the server answers now (briefly: a
        process ending must not hang on a server that does not answer)."""
        if self._replay_due:
            with contextlib.suppress(Exception):
                self._replay(timeout_s=min(self.timeout_s, 2.0))

    def __repr__(self) -> str:
        return f"HttpSink({self.endpoint!r})"
