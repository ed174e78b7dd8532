"""The bounded queue between the hot path and the flush thread.

``push`` is the only part that runs on the caller's thread: a length check and
a deque append. When the queue is full, the oldest record is dropped and
counted (or, with ``max_block_ms`` set, the caller waits at most that long for
room first). The flush thread drains the queue in batches and hands each batch
to the processor (the pipeline and the sink); nothing it does can raise into
the caller.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("llmvigil.collector")

Processor = Callable[[list[tuple]], None]
Hook = Callable[[], None]


class Buffer:
    """A bounded queue of raw records and the thread that drains it."""

    def __init__(
        self,
        processor: Processor,
        after_drain: Hook | None = None,
        capacity: int = 100_000,
        batch_size: int = 2_000,
        interval_s: float = 1.0,
        max_block_ms: float = 0.0,
    ) -> None:
        self.processor = processor
        self.after_drain = after_drain
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_block_ms = max_block_ms
        self._queue: deque[tuple] = deque()
        self._append = self._queue.append
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._room = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._dropped = 0
        self._dropped_logged = 0
        self._processed = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._start_lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    # -- caller's side ------------------------------------------------------------

    def push(self, record: tuple) -> None:
        """Queue a record (the decorator's only I/O-free step on the caller's thread)."""
        queued = len(self._queue)
        if queued >= self.capacity:
            self._overflow(record)
        else:
            self._append(record)
            if queued + 1 == self.batch_size:
                self._wake.set()
        if self._thread is None:
            self._start()

    def _overflow(self, record: tuple) -> None:
        try:
            if self.max_block_ms > 0:
                self._wake.set()
                deadline = time.monotonic() + self.max_block_ms / 1000
                with self._room:
                    while len(self._queue) >= self.capacity:
                        left = deadline - time.monotonic()
                        if left <= 0 or not self._room.wait(left):
                            break
            while len(self._queue) >= self.capacity:
                try:
                    self._queue.popleft()
                except IndexError:  # the flush thread emptied it meanwhile
                    break
                self._dropped += 1
            self._append(record)
        except Exception:  # the collector never raises into the caller
            self._dropped += 1

    # -- flush thread ---------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            self._stopping = False
            thread = threading.Thread(target=self._run, name="llmvigil-flush", daemon=True)
            thread.start()
            self._thread = thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            requested = self._requested
            self.drain()
            with self._done:
                self._completed = max(self._completed, requested)
                self._done.notify_all()
            if self._stopping:
                return

    def drain(self) -> None:
        """Process everything queued now, in batches, then call ``after_drain``.

        Runs on the flush thread, or on the caller's thread when no flush thread runs.
        """
        queue = self._queue
        while queue:
            batch: list[tuple] = []
            pop = queue.popleft
            try:
                for _ in range(self.batch_size):
                    batch.append(pop())
            except IndexError:
                pass
            with self._room:
                self._room.notify_all()
            try:
                self.processor(batch)
            except Exception:  # a bug in a processor must not kill the thread
                log.exception("llmvigil: a batch of %d spans could not be processed", len(batch))
            self._processed += len(batch)
        if self.after_drain is not None:
            try:
                self.after_drain()
            except Exception:
                log.exception("llmvigil: retrying buffered batches failed")
        if self._dropped > self._dropped_logged:
            log.warning(
                "llmvigil: the span queue was full; %d spans dropped so far (queue_size=%d). "
                "Raise [collector] queue_size or check that the sink is writable.",
                self._dropped,
                self.capacity,
            )
            self._dropped_logged = self._dropped

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued before this call is processed; False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            self.drain()
            return True
        with self._done:
            self._requested += 1
            target = self._requested
            self._wake.set()
            return self._done.wait_for(lambda: self._completed >= target, timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        """Flush and end the flush thread (it starts again on the next record)."""
        thread = self._thread
        if thread is None:
            self.drain()
            return True
        self._stopping = True
        flushed = self.flush(timeout)
        thread.join(timeout)
        self._thread = None
        return flushed

    def count_dropped(self, spans: int) -> None:
        """Count spans lost after leaving the queue (batches a failing sink could not take)."""
        self._dropped += spans

    def stats(self) -> dict[str, Any]:
        """Counters: ``queued`` now, ``processed`` and ``dropped`` since start, ``capacity``."""
        return {
            "queued": len(self._queue),
            "processed": self._processed,
            "dropped": self._dropped,
            "capacity": self.capacity,
        }

    def _after_fork(self) -> None:
        # The child inherits a copy of the parent's queue: the parent writes those records.
        self._queue.clear()
        self._thread = None
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._room = threading.Condition()
        self._start_lock = threading.Lock()
        self._requested = self._completed = 0
