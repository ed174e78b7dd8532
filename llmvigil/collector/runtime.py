"""The process-wide collector: one buffer, one pipeline, one sink, and how they end.

Nothing needs configuring: on the first batch the flush thread loads
``llmvigil.toml`` (or the defaults: spool into ``./.llmvigil/spool``). A
configuration error found then is logged and the defaults are used, because
the collector never raises into the app; :func:`configure`, called
explicitly, does raise :class:`~llmvigil.errors.ConfigError`.

How a process ends decides whether its last spans arrive, so every way out is
covered:

- a normal exit runs the ``atexit`` flush;
- ``os._exit`` in a forked child (how multiprocessing, PyTorch DataLoader and
  Celery workers leave) flushes first;
- SIGTERM, while its handler is the default (``Pool.terminate()``, ``docker
  stop``, Kubernetes), flushes and then dies of SIGTERM as before.

Each flushes within ``[collector] exit_timeout_s``: what cannot be processed
in time is spilled raw to the spool for the store's owner to finish, and what
is lost all the same is logged with its count.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - see below
import contextlib
import io
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmvigil.collector.buffer import Buffer
from llmvigil.config import CollectorSettings, Settings, load_settings
from llmvigil.errors import ConfigError
from llmvigil.storage import duckdb_exit

log = logging.getLogger("llmvigil.collector")

# The exit flush may be the first Arrow conversion of the process, and pyarrow then imports
# pandas, which imports concurrent.futures.thread, whose import registers a threading exit
# hook: refused once the interpreter is shutting down, which would lose the buffered spans.
# Importing it now (a small stdlib module) makes that registration happen in time.


class _State:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.pipeline: Any = None
        self.sink: Any = None
        self.spool: Any = None
        self.pending: deque[Any] = deque()
        self.write_failures = 0
        self.failures_in_a_row = 0
        self.last_error: str | None = None
        self.last_error_logged = 0.0
        self.next_retry = 0.0
        self.retry_now = False


_state = _State()
_lock = threading.RLock()
# Held while the flush thread imports what it needs. A fork waits for it, because a child
# forked mid-import would inherit a half-initialised module (genai-prices) for its whole life.
_import_lock = threading.Lock()

# Sink I/O happens only on the flush thread's writer (or at shutdown, once it has stopped),
# so a hung store can hold up only the flush thread: never a caller, never stats().
#
# One write is in flight beside the flush thread: a batch's segment is compressed and written
# (native code, without the GIL) while the flush thread builds the next batch, and the flush
# thread waits for it before it touches the pending batches again. Writes stay in order, and
# a drain ends (flush() returns) only once the last one finished.
_in_flight: threading.Thread | None = None


def _process(records: list[tuple]) -> None:
    with _lock:
        state = _ensure_configured()
        rows, late = state.pipeline.rows_until(records, BUFFER.past_processing_time)
        table = state.pipeline.table(rows) if rows else None
        _finish_write()
        if table is not None:
            state.pending.append(table)
        if len(state.pending) == 1 or time.monotonic() >= state.next_retry:
            _start_write(state)
        else:
            _bound_pending(state)
    if late:
        _spill(list(late))


def _start_write(state: _State) -> None:
    global _in_flight
    if not state.pending:
        return
    writer = threading.Thread(
        target=_write_pending, args=(state,), name="llmvigil-write", daemon=True
    )
    try:
        writer.start()
    except RuntimeError:  # interpreter shutting down: no new threads, write here
        _write_pending(state)
        return
    _in_flight = writer


def _finish_write(timeout: float | None = None) -> bool:
    """Wait for the write in flight; False if it is still running after ``timeout``."""
    global _in_flight
    writer = _in_flight
    if writer is None:
        return True
    writer.join(timeout)
    if writer.is_alive():
        return False
    _in_flight = None
    return True


def _spill(records: list[tuple]) -> None:
    """Write ``records`` raw to the spool (rows before redaction and the other steps).

    The path of last resort: at exit, and for a batch that processing failed
    on. It takes the runtime lock only briefly, so a flush thread hung in a
    sink while holding it cannot stop the exit from spilling.
    """
    state = _state
    if (state.pipeline is None or state.spool is None) and _lock.acquire(timeout=1.0):
        try:
            state = _ensure_configured()
        finally:
            _lock.release()
    if state.pipeline is None or state.spool is None:
        raise RuntimeError("the collector is not configured")
    state.spool.write(state.pipeline.raw(records))


def _retry_pending() -> None:
    with _lock:
        _finish_write()
        due = _state.retry_now or time.monotonic() >= _state.next_retry
        if _state.pending and _state.sink is not None and due:
            _state.retry_now = False
            _write_pending(_state)
        report_dropped()
        if _feedback:
            _send_feedback(_ensure_configured())


# Feedback from llmvigil.feedback(), waiting for the flush thread (after each drain), and the
# collector's own drop reports.
_feedback: deque[dict[str, Any]] = deque()

#: The ``kind`` of an entry on the feedback road that reports spans the collector dropped.
DROPPED = "dropped"
# How many of the spans counted in stats()["dropped"] were reported already.
_dropped_reported = 0


def report_dropped() -> None:
    """Queue a report of the spans dropped since the last one, if any (after each drain):
    it travels with the feedback, so the owner's ``collector.dropped`` alert metric and
    Prometheus counter hear of it, through an outage too (spooled, then sent)."""
    global _dropped_reported
    dropped = BUFFER.stats()["dropped"]
    if dropped <= _dropped_reported:
        return
    collector = _ensure_configured().settings.collector
    _feedback.append(
        {
            "kind": DROPPED,
            "report_id": uuid.uuid4().hex,
            "app": collector.app,
            "environment": collector.environment,
            "dropped": dropped - _dropped_reported,
            "reported_at": datetime.now(UTC).isoformat(),
        }
    )
    _dropped_reported = dropped


def queue_feedback(entry: dict[str, Any]) -> None:
    """Queue a feedback entry for the flush thread (:mod:`.feedback`); wakes it."""
    _feedback.append(entry)
    BUFFER.wake()


def _send_feedback(state: _State, timeout_s: float | None = None, sink: bool = True) -> None:
    """Send the queued feedback and drop reports through the sink (each post waiting at most
    ``timeout_s``, or the sink's own timeout), else to the spool; ``sink`` False: straight to
    the spool (a sink that hangs the flush thread must not hang the exit too)."""
    entries = []
    while _feedback:
        entries.append(_feedback.popleft())
    if not entries:
        return
    try:
        if not sink or state.sink is None:
            raise RuntimeError("the sink is not usable at shutdown")
        state.sink.write_feedback(entries, timeout_s=timeout_s)
        return
    except Exception as exc:
        problem = exc
    try:
        state.spool.write_feedback(entries)
        log.warning(
            "llmvigil: could not send %d feedback entries (%s); spooled for the owner",
            len(entries),
            problem,
        )
    except Exception as again:
        log.error("llmvigil: %d feedback entries lost (%s; then %s)", len(entries), problem, again)


def _write_pending(state: _State) -> None:
    while state.pending:
        table = state.pending[0]
        try:
            state.sink.write(table)
        except Exception as exc:
            state.write_failures += 1
            state.failures_in_a_row += 1
            state.last_error = f"{type(exc).__name__}: {exc}"
            # Back off (up to 30 s) while the sink fails: a full disk is not retried 4 times a
            # second, and each batch still joins the queue of pending ones.
            backoff = min(30.0, 0.5 * 2 ** min(state.failures_in_a_row, 6))
            state.next_retry = time.monotonic() + backoff
            if time.monotonic() - state.last_error_logged > 10:
                log.error(
                    "llmvigil: cannot write spans to %r (%s); %d spans kept in memory to retry",
                    state.sink,
                    state.last_error,
                    _pending_rows(state),
                )
                state.last_error_logged = time.monotonic()
            _bound_pending(state)
            return
        if state.pending and state.pending[0] is table:  # shutdown may have spooled it
            state.pending.popleft()
        state.failures_in_a_row = 0
        state.next_retry = 0.0


def _pending_rows(state: _State) -> int:
    return sum(t.num_rows for t in list(state.pending))


def _bound_pending(state: _State) -> None:
    # Batches waiting for a sink count against the same bound as the queue: oldest go first.
    while len(state.pending) > 1 and _pending_rows(state) > BUFFER.capacity:
        BUFFER.count_dropped(state.pending.popleft().num_rows)


def _ensure_configured() -> _State:
    if _state.settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            log.error("llmvigil: %s\nllmvigil: collecting with the default settings instead", exc)
            settings = Settings()
        _install(settings, None)
    return _state


def _build_sinks(settings: Settings, store: Any) -> tuple[Any, Any]:
    """(the sink, the spool) for ``settings``; a direct sink's store opens on its first batch."""
    from llmvigil.collector.sinks import DirectSink, SpoolSink
    from llmvigil.storage.store import Store

    spool = SpoolSink(Path(settings.collector.spool_dir).absolute())
    if isinstance(store, Store):
        return DirectSink(store, fallback=spool), spool
    if isinstance(store, str):
        return DirectSink(store, fallback=spool, owns_store=True), spool
    if settings.collector.sink == "direct":
        return DirectSink(settings.store.url, fallback=spool, owns_store=True), spool
    if settings.collector.sink == "http":
        from llmvigil.collector.sinks import HttpSink

        variable = settings.collector.api_key_env
        key = os.environ.get(variable) if variable else None
        return HttpSink(str(settings.collector.endpoint), spool, api_key=key), spool
    return spool, spool


def _install(settings: Settings, store: Any) -> None:
    from llmvigil.collector.pipeline import Pipeline
    from llmvigil.collector.pricing import PriceBook

    sink, spool = _build_sinks(settings, store)
    with _lock:
        old_sink = _state.sink
        prices = PriceBook(
            {m: (p.input_per_mtok, p.output_per_mtok) for m, p in settings.prices.items()}
        )
        _state.pipeline = Pipeline(settings.collector, prices)
        _state.sink = sink
        _state.spool = spool
        _state.settings = settings
        c = settings.collector
        BUFFER.capacity = c.queue_size
        BUFFER.batch_size = c.batch_size
        BUFFER.interval_s = c.flush_interval_s
        BUFFER.max_block_ms = c.max_block_ms
    if old_sink is not None and old_sink is not sink:
        old_sink.close()


def configure(settings: Settings | None = None, *, store: Any = None, **collector: Any) -> None:
    """Set where and how spans are collected; raises :class:`ConfigError` on a bad value.

    ``settings`` defaults to :func:`~llmvigil.config.load_settings`;
    keyword arguments override ``[collector]`` keys; ``store`` (a
    :class:`~llmvigil.storage.Store` or a URL) makes the sink ``direct`` into it.
    Spans queued before the call are written with the previous settings first.

    Example::

        llmvigil.configure(sink="direct", app="support-bot")
        llmvigil.configure(store="postgresql+psycopg://monitor@db/llmvigil")
    """
    settings = settings or load_settings()
    if collector:
        merged = {**settings.collector.model_dump(), **collector}
        try:
            checked = CollectorSettings.model_validate(merged)
        except Exception as exc:
            raise ConfigError(f"invalid collector setting: {exc}") from None
        settings = settings.model_copy(update={"collector": checked})
    BUFFER.flush()
    _install(settings, store)


def flush(timeout: float = 10.0) -> bool:
    """Write every span recorded so far; True if all of it reached the sink within ``timeout``."""
    _state.retry_now = bool(_state.pending)  # an explicit flush does not wait for the backoff
    return BUFFER.flush(timeout) and not _state.pending


def shutdown(timeout: float = 10.0) -> bool:
    """Flush, stop the flush thread and release the sink; the next span starts afresh.

    Within ``timeout`` what cannot be processed is spilled raw to the spool,
    and batches a failing sink still holds go to the spool too; True if
    nothing was lost. What is lost is counted in ``stats()["dropped"]`` and
    logged with its count.
    """
    done = BUFFER.stop(timeout)
    locked = _lock.acquire(timeout=max(0.1, timeout))
    try:
        unsent = _spool_pending(_state, retry_sink=locked)
        if unsent:
            BUFFER.count_dropped(unsent)
            log.error(
                "llmvigil: %d spans lost at shutdown: neither the sink (%s) nor the spool "
                "would take them",
                unsent,
                _state.last_error,
            )
            done = False
        _report_at_shutdown(locked, timeout)
        if _state.sink is not None:
            with contextlib.suppress(Exception):
                _state.sink.close()
        _state.__init__()
    finally:
        if locked:
            _lock.release()
    return done


def _report_at_shutdown(sink_usable: bool, timeout: float) -> None:
    """Report the spans dropped since the last report (the stop's own spills that failed, the
    batches neither the sink nor the spool took) with the feedback still queued: through the
    sink briefly, else to the spool for the owner or a later run to send."""
    if _state.settings is None and not _feedback:
        return  # nothing was ever collected: nothing was dropped
    with contextlib.suppress(Exception):  # the process may be ending: raise nothing
        report_dropped()
        _send_feedback(_state, timeout_s=max(0.5, min(2.0, timeout)), sink=sink_usable)


def _spool_pending(state: _State, retry_sink: bool) -> int:
    """Give the batches a failing sink holds one last try (unless the sink hangs the flush
    thread: ``retry_sink`` False), then the spool; return rows lost."""
    retry_sink = _finish_write(timeout=1.0) and retry_sink
    if retry_sink and state.pending and state.sink is not None:
        with contextlib.suppress(Exception):
            _write_pending(state)
    lost = 0
    tables = list(state.pending)
    state.pending.clear()
    for table in tables:
        try:
            if state.spool is None or state.spool is state.sink:
                raise OSError("the spool is the sink that failed")
            state.spool.write(table)
        except Exception:
            lost += table.num_rows
    return lost


def stats() -> dict[str, Any]:
    """The collector's counters: ``queued``, ``processed`` (of which ``spilled`` raw to the
    spool at exit or after a processing failure), ``dropped``, ``capacity``, ``pending``
    (spans waiting for a failing sink), ``spooled`` (spans a direct sink wrote to the spool
    because its store failed), ``write_failures``, ``last_error``, ``sink``.

    Example::

        llmvigil.stats()["dropped"]   # spans lost since the process started
    """
    sink = _state.sink
    return {
        **BUFFER.stats(),
        "pending": _pending_rows(_state),
        "spooled": getattr(sink, "spooled", 0),
        "write_failures": _state.write_failures,
        "last_error": _state.last_error,
        "sink": repr(sink) if sink is not None else None,
    }


_warmed = threading.Event()


def _warm_up() -> None:
    """Import what the flush thread needs and load the price data, before the first batch.

    Started in the background when ``llmvigil`` is imported, and run again
    (a no-op by then) first thing on the flush thread. Done later, on the
    first batch, these imports wait for the GIL at every file they stat, and a
    caller in a tight loop holds it: seconds with nothing written while the
    queue overflows.
    """
    if _warmed.is_set():
        return
    with _import_lock:
        if _warmed.is_set():
            return
        # Each file an import stats or reads gives the GIL away, and a busy thread keeps it
        # for a whole switch interval (5 ms): for these imports only, it is asked back sooner.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0002))
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq

            from llmvigil.collector import pipeline, sinks  # noqa: F401
            from llmvigil.collector.spool import SEGMENT_CODEC

            # The first conversion imports pandas (pyarrow checks for Series) and the first
            # Parquet write loads its codecs: both happen here, not on the first batch.
            pq.write_table(
                pa.table({"warm": pa.array(["up"])}), io.BytesIO(), compression=SEGMENT_CODEC
            )
            from llmvigil.collector.pricing import PriceBook
            from llmvigil.collector.redact import make_redactor

            # A first redaction builds whatever the redactor builds lazily (its secret patterns)
            # here, where a fork waits for it, never under a lock a forked child inherits held.
            redact = make_redactor()
            if redact is not None:
                redact("warm-up: jo@example.com +44 20 7946 0958 password=x sk-abc 10.0.0.1")
            PriceBook().unit_price("gpt-4o-mini")  # loads genai-prices' database
        finally:
            sys.setswitchinterval(interval)
        _warmed.set()


_warm_up_thread: threading.Thread | None = None


def warm_up_in_background() -> None:
    """Start :func:`_warm_up` on a short-lived thread (the collector package calls it once)."""
    global _warm_up_thread
    thread = threading.Thread(target=_warm_up_quietly, name="llmvigil-warm-up", daemon=True)
    with contextlib.suppress(RuntimeError):  # interpreter shutting down: the flush thread does it
        thread.start()
        _warm_up_thread = thread


def _warm_up_quietly() -> None:
    try:
        _warm_up()
    except Exception:
        log.exception("llmvigil: preparing the collector failed")


def prepare() -> None:
    """Start the flush thread (it warms up first) and the SIGTERM flush; called on decoration."""
    BUFFER.start()
    _flush_on_sigterm()


def _exit_timeout() -> float:
    settings = _state.settings
    return settings.collector.exit_timeout_s if settings is not None else 5.0


_exit_flushing = False


def _exit_flush() -> None:
    global _exit_flushing
    _exit_flushing = True
    try:
        shutdown(timeout=_exit_timeout())
    except Exception:  # the process is ending: raise nothing, but say what may be lost
        with contextlib.suppress(Exception):
            log.exception("llmvigil: the exit flush failed; spans still queued may be lost")
    finally:
        _exit_flushing = False


def _sigterm(signum: int, frame: Any) -> None:
    if _exit_flushing:
        # The signal landed inside an exit flush (a pool worker told to stop as it leaves
        # through os._exit): a second flush would wait for a lock the interrupted one
        # holds, for ever. The flush under way finishes, and the process ends after it.
        return
    _exit_flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _flush_on_sigterm() -> None:
    # Only where SIGTERM still kills outright: an app's own handler is never replaced.
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(Exception):  # not the main interpreter, or no signals here
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _sigterm)


_os_exit = os._exit


def _flushing_exit(status: int) -> None:
    """``os._exit`` in a forked child: flush the child's spans first (no exit hook runs)."""
    if BUFFER.active or _state.pending:  # a batch may be in the flush thread's hands
        _exit_flush()
    _os_exit(status)


def _before_fork() -> None:
    global _fork_holds_import
    _fork_holds_import = _import_lock.acquire(timeout=10.0)
    # A segment being compressed holds native locks (allocator, codec) that a child would
    # inherit held: the fork waits for the write in flight (a hung store: at most 2 s).
    _finish_write(timeout=2.0)


_fork_holds_import = False


def _after_fork_in_parent() -> None:
    if _fork_holds_import:
        _import_lock.release()


def _after_fork_in_child() -> None:
    global _lock, _import_lock, _in_flight, _dropped_reported
    # Locks held at the fork by threads the child does not have would stay held for ever.
    _lock = threading.RLock()
    _import_lock = threading.Lock()
    _in_flight = None  # the parent's write, and the parent's to finish
    _state.pending.clear()  # the parent writes the batches it holds
    _feedback.clear()  # and sends the feedback it queued
    _dropped_reported = 0  # the child's buffer counts its own drops from 0
    if _state.sink is not None:
        with contextlib.suppress(Exception):
            _state.sink = _state.sink.for_forked_child()
    os._exit = _flushing_exit
    _flush_on_sigterm()


BUFFER = Buffer(_process, _retry_pending, spill=_spill, warm_up=_warm_up)
os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


# Registered before the exit flush, so it runs after it (exit handlers run last-registered
# first): DuckDB's type constants are released only once nothing of ours uses DuckDB.
duckdb_exit.register()


@atexit.register
def _flush_at_exit() -> None:
    # A process that ends within moments of `import llmvigil` (a command that fails fast)
    # would stop the warm-up thread inside a native import, which aborts the interpreter
    # ("FATAL: exception not rethrown", exit status -6): let it finish first.
    thread = _warm_up_thread
    if thread is not None and thread.is_alive():
        thread.join(_exit_timeout())
    _exit_flush()
