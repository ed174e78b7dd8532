"""The process-wide collector: one buffer, one pipeline, one sink.

Nothing needs configuring: on the first span the flush thread loads
``llmvigil.toml`` (or the defaults: spool into ``./.llmvigil/spool``). A
configuration error found then is logged and the defaults are used, because
the collector never raises into the app; :func:`configure`, called
explicitly, does raise :class:`~llmvigil.errors.ConfigError`.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - see below
import contextlib
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from llmvigil.collector.buffer import Buffer
from llmvigil.config import CollectorSettings, Settings, load_settings
from llmvigil.errors import ConfigError

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
        self.pending: deque[Any] = deque()
        self.write_failures = 0
        self.last_error: str | None = None
        self.last_error_logged = 0.0


_state = _State()
_lock = threading.RLock()


# Sink I/O happens only on the flush thread (or at shutdown, once it has stopped), so a hung
# store can hold up only that thread: never a caller, never stats().


def _process(records: list[tuple]) -> None:
    with _lock:
        state = _ensure_configured()
        state.pending.append(state.pipeline(records))
        _write_pending(state)


def _retry_pending() -> None:
    with _lock:
        if _state.pending and _state.sink is not None:
            _write_pending(_state)


def _write_pending(state: _State) -> None:
    while state.pending:
        table = state.pending[0]
        try:
            state.sink.write(table)
        except Exception as exc:
            state.write_failures += 1
            state.last_error = f"{type(exc).__name__}: {exc}"
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
        state.pending.popleft()


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
        _install(settings, _build_sink(settings, None))
    return _state


def _build_sink(settings: Settings, store: Any) -> Any:
    from llmvigil.collector.sinks import DirectSink, SpoolSink
    from llmvigil.storage.store import Store

    spool = SpoolSink(Path(settings.collector.spool_dir).absolute())
    if isinstance(store, Store):
        return DirectSink(store, fallback=spool)
    if isinstance(store, str):
        return DirectSink(Store(store), fallback=spool, owns_store=True)
    if settings.collector.sink == "direct":
        return DirectSink(Store(settings.store.url), fallback=spool, owns_store=True)
    return spool


def _install(settings: Settings, sink: Any) -> None:
    from llmvigil.collector.pipeline import Pipeline
    from llmvigil.collector.pricing import PriceBook

    with _lock:
        old_sink = _state.sink
        prices = PriceBook(
            {m: (p.input_per_mtok, p.output_per_mtok) for m, p in settings.prices.items()}
        )
        _state.pipeline = Pipeline(settings.collector, prices)
        _state.sink = sink
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
    _install(settings, _build_sink(settings, store))


def flush(timeout: float = 10.0) -> bool:
    """Write every span recorded so far; True if all of it reached the sink within ``timeout``."""
    return BUFFER.flush(timeout) and not _state.pending


def shutdown(timeout: float = 10.0) -> bool:
    """Flush, stop the flush thread and release the sink; the next span starts afresh."""
    done = BUFFER.stop(timeout)
    with _lock:
        done = done and not _state.pending
        if _state.sink is not None:
            _state.sink.close()
        _state.__init__()
    return done


def stats() -> dict[str, Any]:
    """The collector's counters: ``queued``, ``processed``, ``dropped``, ``capacity``,
    ``pending`` (spans waiting for a failing sink), ``write_failures``, ``last_error``, ``sink``.

    Example::

        llmvigil.stats()["dropped"]   # spans lost to a full queue since the process started
    """
    sink = _state.sink
    return {
        **BUFFER.stats(),
        "pending": _pending_rows(_state),
        "write_failures": _state.write_failures,
        "last_error": _state.last_error,
        "sink": repr(sink) if sink is not None else None,
    }


BUFFER = Buffer(_process, _retry_pending)


@atexit.register
def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):  # interpreter shutdown: say nothing, raise nothing
        shutdown(timeout=5.0)
