"""The bounded queue between the hot path and the flush thread.

``push`` is the only part that runs on the caller's thread: a length check and
a deque append. When the queue is full, the oldest record is dropped and
counted (or, with ``max_block_ms`` set, the caller waits at most that long for
room first). The flush thread drains the queue in batches and hands each batch
to the processor (the pipeline and the sink); nothing it does can raise into
the caller.

A batch the processor cannot take is not lost: it goes to ``spill``, the fast
path that writes raw rows to the spool for the store's owner to finish. At
exit (:meth:`Buffer.stop` with a deadline) the flush thread spills instead of
processing as soon as the rest of the queue would not be processed in time,
and whatever the flush thread could not take by the deadline (it hangs in a
sink, or it died) the stopping thread spills itself. Only what even the spill
cannot write is dropped, counted and logged.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("llmvigil.collector")

Processor = Callable[[list[tuple]], None]
Hook = Callable[[], None]

#: Seconds per record assumed for processing before the first batch was timed.
_FIRST_GUESS_S = 50e-6
#: The share of a stop's time kept for spilling what processing did not reach.
SPILL_SHARE = 0.4


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
        spill: Processor | None = None,
        warm_up: Hook | None = None,
    ) -> None:
        self.processor = processor
        self.after_drain = after_drain
        self.spill = spill
        self.warm_up = warm_up
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_block_ms = max_block_ms
        self._queue: deque[tuple] = deque()
        self._append = self._queue.append
        self._dropped = 0
        self._dropped_logged = 0
        self._processed = 0
        self._spilled = 0
        self._reset_threading()
        os.register_at_fork(after_in_child=self._after_fork)

    def _reset_threading(self) -> None:
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._room = threading.Condition()
        self._start_lock = threading.Lock()
        self._requested = 0
        self._completed = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Monotonic time by which a stopping buffer must be empty (None: no hurry).
        self._deadline: float | None = None
        self._budget = 0.0
        self._seconds_per_record = _FIRST_GUESS_S
        #: The batch the flush thread is processing: spilled by stop() if the thread never
        #: finishes it (a lock a forked child inherited held, a hung import).
        self._in_hand: list[tuple] | None = None

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
            self.start()

    def wake(self) -> None:
        """Have the flush thread drain now (starting it if needed): something else is due."""
        if self._thread is None:
            self.start()
        self._wake.set()

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

    def start(self) -> None:
        """Start the flush thread if it is not running (it first runs ``warm_up``)."""
        with self._start_lock:
            if self._thread is not None:
                return
            self._stopping = False
            thread = threading.Thread(target=self._run, name="llmvigil-flush", daemon=True)
            thread.start()
            self._thread = thread

    def _run(self) -> None:
        if self.warm_up is not None:
            try:
                self.warm_up()
            except Exception:
                log.exception("llmvigil: preparing the flush thread failed")
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
        While stopping against a deadline, batches are spilled once processing the
        rest would not finish in time.
        """
        queue = self._queue
        spilling = False
        while queue:
            if self._deadline is not None and time.monotonic() > self._deadline:
                break  # the stopping thread spills the rest itself
            batch = self._take(self.batch_size)
            with self._room:
                self._room.notify_all()
            left = None if spilling else self._processing_time_left()
            if left is not None:
                spilling = (len(queue) + len(batch)) * self._seconds_per_record > left
            if spilling:
                self._spill(batch)
            else:
                self._in_hand = batch
                self._process(batch)
                self._in_hand = None
        if self.after_drain is not None:
            try:
                self.after_drain()
            except Exception:
                log.exception("llmvigil: retrying buffered batches failed")
        self._log_dropped()

    @property
    def active(self) -> bool:
        """True while records are queued or the flush thread runs (it may hold a batch)."""
        thread = self._thread
        return bool(self._queue) or (thread is not None and thread.is_alive())

    def past_processing_time(self) -> bool:
        """True once a stopping buffer must spill rather than process (the processor asks
        between chunks of a batch, so a batch in hand at the deadline does not hold the exit)."""
        left = self._processing_time_left()
        return left is not None and left < 0

    def _processing_time_left(self) -> float | None:
        # A stop keeps SPILL_SHARE of its time for spilling what processing did not reach.
        deadline = self._deadline
        if deadline is None:
            return None
        return deadline - self._budget * SPILL_SHARE - time.monotonic()

    def _take(self, count: int) -> list[tuple]:
        batch: list[tuple] = []
        pop = self._queue.popleft
        try:
            for _ in range(count):
                batch.append(pop())
        except IndexError:
            pass
        return batch

    def _process(self, batch: list[tuple]) -> None:
        started = time.perf_counter()
        try:
            self.processor(batch)
        except Exception:  # a bug or a broken sink must not lose the batch or kill the thread
            log.exception(
                "llmvigil: a batch of %d spans could not be processed; spilling it raw to the "
                "spool instead",
                len(batch),
            )
            self._spill(batch)
            return
        self._processed += len(batch)
        per_record = (time.perf_counter() - started) / len(batch)
        self._seconds_per_record = 0.5 * self._seconds_per_record + 0.5 * per_record

    def _spill(self, batch: list[tuple]) -> None:
        try:
            if self.spill is None:
                raise RuntimeError("no spill path is configured")
            self.spill(batch)
        except Exception as exc:
            self._dropped += len(batch)
            log.error(
                "llmvigil: %d spans lost: they could not even be spilled (%s)", len(batch), exc
            )
            return
        self._processed += len(batch)
        self._spilled += len(batch)

    def _log_dropped(self) -> None:
        if self._dropped > self._dropped_logged:
            log.warning(
                "llmvigil: %d spans dropped so far (queue_size=%d): the queue was full or the "
                "sink and the spool refused them. Raise [collector] queue_size or check that "
                "the sink is writable.",
                self._dropped,
                self.capacity,
            )
            self._dropped_logged = self._dropped

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued before this call is processed; False on timeout."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            self.drain()
            return True
        with self._done:
            self._requested += 1
            target = self._requested
            self._wake.set()
            return self._done.wait_for(lambda: self._completed >= target, timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        """Empty the queue within ``timeout`` seconds and end the flush thread.

        What the flush thread cannot process in time is spilled; what it has
        not taken by the deadline (a hung sink holds it) is spilled by the
        calling thread. True if everything was processed or spilled. The
        thread starts again on the next record.
        """
        self._budget = timeout
        self._deadline = time.monotonic() + timeout
        try:
            thread = self._thread
            if thread is None or not thread.is_alive():
                self.drain()
                done = True
            else:
                self._stopping = True
                done = self.flush(timeout)
                if done:
                    thread.join(max(0.0, self._deadline - time.monotonic()))
            leftover = self._take(len(self._queue))
            if leftover:
                log.warning(
                    "llmvigil: the flush thread did not finish in %.1f s; spilling the %d spans "
                    "it had not reached to the spool",
                    timeout,
                    len(leftover),
                )
                for start in range(0, len(leftover), self.batch_size):
                    self._spill(leftover[start : start + self.batch_size])
                done = True
            if thread is not None and thread.is_alive():
                # The flush thread still finishes the batch in its hands (it is never abandoned
                # inside native code at exit, which aborts the process), unless it hangs.
                thread.join(max(timeout, 5.0))
            if thread is not None and thread.is_alive():
                done = self._spill_stuck(thread)
            self._log_dropped()
            return done
        finally:
            self._thread = None
            self._deadline = None

    def _spill_stuck(self, thread: threading.Thread) -> bool:
        """Spill the batch a flush thread that never finished holds, saying where it is stuck;
        True if it was spilled.

        Should it finish after all, the batch is stored twice, and the store keeps one
        (spans are idempotent by id): a duplicate is recoverable, a lost batch is not.
        """
        batch = self._in_hand
        frame = sys._current_frames().get(thread.ident or -1)
        where = (
            "; ".join(
                f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_stack(frame)[-3:]
            )
            if frame is not None
            else "unknown"
        )
        log.warning(
            "llmvigil: the flush thread is stuck (at %s); spilling the %d spans it holds",
            where,
            len(batch or ()),
        )
        if batch:
            self._in_hand = None
            # On a thread of its own: what stopped the flush thread may stop this too (a value
            # whose text never comes), and the exit must still end, saying what was lost.
            spiller = threading.Thread(target=self._spill, args=(batch,), daemon=True)
            spiller.start()
            spiller.join(max(self._budget, 1.0))
            if spiller.is_alive():
                self._dropped += len(batch)
                return False
        return True

    def count_dropped(self, spans: int) -> None:
        """Count spans lost after leaving the queue (batches a failing sink could not take)."""
        self._dropped += spans

    def stats(self) -> dict[str, Any]:
        """Counters: ``queued`` now, ``processed`` (of which ``spilled`` raw to the spool) and
        ``dropped`` since start, ``capacity``."""
        return {
            "queued": len(self._queue),
            "processed": self._processed,
            "spilled": self._spilled,
            "dropped": self._dropped,
            "capacity": self.capacity,
        }

    def _after_fork(self) -> None:
        # The child inherits a copy of the parent's queue: the parent writes those records.
        # Its locks may have been held by a thread that does not exist here: new ones.
        self._queue.clear()
        self._processed = self._spilled = self._dropped = self._dropped_logged = 0
        self._reset_threading()
