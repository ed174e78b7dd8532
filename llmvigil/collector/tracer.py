"""The hot path: ``@observe``, ``span()``, ``context()`` and ``attach()``.

On the calling thread the decorator only reads the clock, builds a small tuple
and puts it on the buffer; everything else (text extraction, redaction,
tokens, cost, serialising, I/O) happens on the flush thread
(:mod:`llmvigil.collector.pipeline`). The current span lives in one
ContextVar, so nesting is right across threads and asyncio tasks.

A raw record is the tuple ``(spec_index, span_n, parent_frame, frame,
t_start, t_end, ttft, args, kwargs, result, error, context_values,
stream_items)`` with the indices named below; span numbers become string ids
on the flush thread. Arguments and results are kept by reference until then,
which is why the hot path is cheap, except lists and dicts (a chat loop's
``messages``, a request dict), which are copied two levels deep before the
call (:func:`snapshot`): the conversation is recorded as the model saw it,
not as it looks after the caller appended the reply.

A decorated call's record holds no object of ours that the garbage collector
tracks: the spec is an index into :data:`SPECS`, a frame is a tuple of two
ints, an empty ``kwargs`` is stored as None and a stream's items as a tuple
(CPython never untracks a tuple holding a dict or a list, even an empty
one), and what :func:`attach` adds waits in a side table. So when the call's own arguments
and result are plain (strings, numbers), CPython stops tracking the record at
its first collection, and a burst of queued records does not make every later
full collection slower.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Literal, TypeVar, overload

from llmvigil.collector.runtime import BUFFER as buffer
from llmvigil.collector.runtime import prepare

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["llm", "retrieval", "tool", "chain", "embedding", "agent", "other"]
KINDS = ("llm", "retrieval", "tool", "chain", "embedding", "agent", "other")

# Record layout (indices into the raw tuple).
SPEC, SPAN_N, PARENT, FRAME, T_START, T_END, TTFT, ARGS, KWARGS, RESULT, ERROR, CTX, ITEMS = range(
    13
)
# Frame layout: (span number, trace number).
F_N, F_TRACE = range(2)

_current: ContextVar[tuple[int, int] | None] = ContextVar("llmvigil_current_span", default=None)
_context_values: ContextVar[dict | None] = ContextVar("llmvigil_context", default=None)

_ids = itertools.count(1)
_next_id = _ids.__next__
#: (first span number, id prefix) of this process and the processes it was forked from,
#: oldest first. A forked child keeps counting where its parent was, so the numbers it
#: inherits (the spans open at the fork: its parents) keep their parent's ids, and its own
#: spans get ids of its own: ids stay unique and a child's spans point at their real parents.
_epochs: list[tuple[int, str]] = [(0, os.urandom(8).hex())]


def span_id(number: int) -> str:
    """The 32-hex-digit id of span ``number`` of this process (unique across processes)."""
    first, prefix = _epochs[-1]
    if number < first:
        prefix = next(p for f, p in reversed(_epochs) if number >= f)
    return f"{prefix}{number:016x}"


#: Argument types copied when a call is recorded: a conversation appended to after the call
#: must be stored as it was when the call was made.
_CONTAINERS = frozenset((list, dict))


def _copied(value: Any) -> Any:
    if type(value) is dict:
        return dict(value)
    if type(value) is list:
        return list(value)
    return value


def snapshot(value: Any) -> Any:
    """A list or dict as it is now, two levels deep (a list of message dicts, a request whose
    ``messages`` is a list); any other value as it is."""
    if type(value) is list:
        return [_copied(v) for v in value]
    if type(value) is dict:
        return {k: _copied(v) for k, v in value.items()}
    return value


def snapshot_arguments(args: tuple, kwargs: dict | None) -> tuple[tuple, dict | None]:
    """``args`` and ``kwargs`` with their lists and dicts copied by :func:`snapshot`."""
    return (
        tuple(snapshot(a) for a in args),
        {k: snapshot(v) for k, v in kwargs.items()} if kwargs else None,
    )


#: Every Spec ever made, by index (records refer to them by index; see the module docstring).
SPECS: list[Spec] = []
_specs_lock = threading.Lock()
#: What attach() added to running spans, by span number, until the flush thread takes it.
_extras: dict[int, dict[str, Any]] = {}


def take_extras(span_number: int) -> dict[str, Any]:
    """Remove and return what :func:`attach` added to span ``span_number`` (flush thread)."""
    return _extras.pop(span_number, None) or {}


#: The clock of the hot path (nanoseconds, monotonic) and its offset to wall-clock time.
_clock: Callable[[], int] = time.perf_counter_ns
_wall_offset_ns: int = time.time_ns() - time.perf_counter_ns()


def wall_time_ns(clock_ns: int) -> int:
    """Wall-clock nanoseconds since the epoch of a reading of the hot path's clock."""
    return clock_ns + _wall_offset_ns


def use_clock(
    clock_ns: Callable[[], int] | None = None, wall_at_zero_ns: int | None = None
) -> None:
    """Replace the monotonic clock the decorator reads (for simulations and tests).

    ``clock_ns`` returns nanoseconds; ``wall_at_zero_ns`` is the wall-clock time
    (ns since the epoch) that a reading of 0 stands for. ``use_clock()`` restores
    the real clock.
    """
    global _clock, _wall_offset_ns
    if clock_ns is None:
        _clock = time.perf_counter_ns
        _wall_offset_ns = time.time_ns() - time.perf_counter_ns()
    else:
        _clock = clock_ns
        _wall_offset_ns = time.time_ns() if wall_at_zero_ns is None else wall_at_zero_ns


def _reset_after_fork() -> None:
    global _specs_lock
    _epochs.append((_next_id(), os.urandom(8).hex()))
    _specs_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def as_tags(tags: Any) -> tuple[Any, ...]:
    """``tags`` as a tuple: one string is one tag, any other iterable its items, anything else
    itself (the pipeline makes text of each). Never raises."""
    if not tags:
        return ()
    if isinstance(tags, str | bytes):
        return (tags,)
    try:
        return tuple(tags)
    except Exception:
        return (tags,)


def as_metadata(metadata: Any) -> dict[Any, Any]:
    """``metadata`` as a dict: a mapping's items, anything else under the key ``"value"``.
    Never raises."""
    if not metadata:
        return {}
    try:
        return dict(metadata.items()) if isinstance(metadata, Mapping) else {"value": metadata}
    except Exception:
        return {"value": metadata}


class Spec:
    """What one ``@observe`` (or ``span()``) declared; built once per decorated function."""

    __slots__ = (
        "app",
        "capture_input",
        "capture_output",
        "context_arg",
        "func",
        "index",
        "kind",
        "metadata",
        "model",
        "name",
        "positional_names",
        "prompt_version",
        "reference_arg",
        "signature",
        "tags",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        app: str | None,
        model: str | None,
        prompt_version: str | None,
        tags: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
        capture_input: bool | None,
        capture_output: bool | None,
        context_arg: str | None,
        reference_arg: str | None,
        func: Callable[..., Any] | None,
    ) -> None:
        self.name = name
        self.kind = kind if kind in KINDS else "other"
        self.app = app
        self.model = model
        self.prompt_version = prompt_version
        self.tags = as_tags(tags)
        self.metadata = as_metadata(metadata) or None
        self.capture_input = capture_input
        self.capture_output = capture_output
        self.context_arg = context_arg
        self.reference_arg = reference_arg
        self.func = func
        self.signature: inspect.Signature | bool | None = None  # resolved on the flush thread
        self.positional_names: tuple[str, ...] | None = None
        self.index: int | None = None

    def register(self) -> int:
        """Give this spec an index in :data:`SPECS` (once per decorated function)."""
        with _specs_lock:
            if self.index is None:
                self.index = len(SPECS)
                SPECS.append(self)
        return self.index


def spec_of(record: tuple) -> Spec:
    """The Spec of a raw record: an index for decorated functions, the object for span()."""
    ref = record[SPEC]
    return SPECS[ref] if isinstance(ref, int) else ref


@overload
def observe(func: F) -> F: ...


@overload
def observe(
    func: None = None,
    *,
    name: str | None = None,
    kind: Kind = "llm",
    app: str | None = None,
    model: str | None = None,
    prompt_version: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    capture_input: bool | None = None,
    capture_output: bool | None = None,
    context_arg: str | None = None,
    reference_arg: str | None = None,
) -> Callable[[F], F]: ...


def observe(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    kind: Kind = "llm",
    app: str | None = None,
    model: str | None = None,
    prompt_version: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    capture_input: bool | None = None,
    capture_output: bool | None = None,
    context_arg: str | None = None,
    reference_arg: str | None = None,
) -> Any:
    """Record every call of the decorated function as a span.

    ``kind`` defaults to ``"llm"``: a bare ``@observe`` records a model call, which counts
    in the health table's ``TotalCalls`` and ``Latency``, gets estimated tokens and is
    scored by the evaluators. Give every other function its kind (``"chain"``,
    ``"retrieval"``, ``"tool"``, ``"embedding"``, ``"agent"``, ``"other"``).

    Works bare (``@observe``) or with arguments, on sync and async functions,
    generators and async generators (their output is the joined stream, and
    ``ttft_ms`` the time to the first item). Exceptions are recorded and
    re-raised unchanged. ``context_arg`` / ``reference_arg`` name the
    parameters holding retrieved passages and an expected answer; inside the
    function :func:`attach` does the same. ``capture_input`` /
    ``capture_output`` default to the ``[collector]`` settings.

    Example::

        @observe(kind="llm", model="gpt-4o-mini", context_arg="passages")
        def answer(question: str, passages: list[str]) -> str:
            ...
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = Spec(
            name or getattr(fn, "__qualname__", None) or repr(fn),
            kind,
            app,
            model,
            prompt_version,
            tags,
            metadata,
            capture_input,
            capture_output,
            context_arg,
            reference_arg,
            fn,
        )
        prepare()  # the flush thread loads what it needs now, not under the first calls
        if inspect.isasyncgenfunction(fn):
            return _wrap_async_generator(fn, spec)
        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(fn, spec)
        if inspect.iscoroutinefunction(fn):
            return _wrap_coroutine(fn, spec)
        return _wrap_function(fn, spec)

    return decorate if func is None else decorate(func)


def _wrap_function(fn: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    current, push, ctx, spec_id = _current, buffer.push, _context_values, spec.register()
    containers = _CONTAINERS

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        parent = current.get()
        n = _next_id()
        frame = (n, n if parent is None else parent[1])
        seen, seen_kw = args, kwargs or None  # what is recorded: lists and dicts as they are now
        for a in args:
            if type(a) in containers:
                seen, seen_kw = snapshot_arguments(args, kwargs)
                break
        else:
            if kwargs:
                for a in kwargs.values():
                    if type(a) in containers:
                        seen, seen_kw = snapshot_arguments(args, kwargs)
                        break
        token = current.set(frame)
        t0 = _clock()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            t1 = _clock()
            current.reset(token)
            push(
                (
                    spec_id,
                    n,
                    parent,
                    frame,
                    t0,
                    t1,
                    None,
                    seen,
                    seen_kw,
                    None,
                    exc,
                    ctx.get(),
                    None,
                )
            )
            raise
        t1 = _clock()
        current.reset(token)
        push(
            (
                spec_id,
                n,
                parent,
                frame,
                t0,
                t1,
                None,
                seen,
                seen_kw,
                snapshot(result) if type(result) in containers else result,
                None,
                ctx.get(),
                None,
            )
        )
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    current, push, ctx, spec_id = _current, buffer.push, _context_values, spec.register()
    containers = _CONTAINERS

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        parent = current.get()
        n = _next_id()
        frame = (n, n if parent is None else parent[1])
        seen, seen_kw = args, kwargs or None  # what is recorded: lists and dicts as they are now
        for a in args:
            if type(a) in containers:
                seen, seen_kw = snapshot_arguments(args, kwargs)
                break
        else:
            if kwargs:
                for a in kwargs.values():
                    if type(a) in containers:
                        seen, seen_kw = snapshot_arguments(args, kwargs)
                        break
        token = current.set(frame)
        t0 = _clock()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            t1 = _clock()
            current.reset(token)
            push(
                (
                    spec_id,
                    n,
                    parent,
                    frame,
                    t0,
                    t1,
                    None,
                    seen,
                    seen_kw,
                    None,
                    exc,
                    ctx.get(),
                    None,
                )
            )
            raise
        t1 = _clock()
        current.reset(token)
        push(
            (
                spec_id,
                n,
                parent,
                frame,
                t0,
                t1,
                None,
                seen,
                seen_kw,
                snapshot(result) if type(result) in containers else result,
                None,
                ctx.get(),
                None,
            )
        )
        return result

    return wrapper


def _wrap_generator(fn: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    current, push, ctx, spec_id = _current, buffer.push, _context_values, spec.register()
    containers = _CONTAINERS

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        parent = current.get()
        n = _next_id()
        frame = (n, n if parent is None else parent[1])
        seen, seen_kw = args, kwargs or None  # what is recorded: lists and dicts as they are now
        for a in args:
            if type(a) in containers:
                seen, seen_kw = snapshot_arguments(args, kwargs)
                break
        else:
            if kwargs:
                for a in kwargs.values():
                    if type(a) in containers:
                        seen, seen_kw = snapshot_arguments(args, kwargs)
                        break
        context_values = ctx.get()
        items: list[Any] = []
        ttft = None
        error: BaseException | None = None
        result = None
        t0 = _clock()
        token = current.set(frame)
        try:
            inner = fn(*args, **kwargs)
        finally:
            current.reset(token)
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = current.set(frame)
                try:
                    if to_throw is not None:
                        thrown, to_throw = to_throw, None
                        item = inner.throw(thrown)
                    else:
                        item = inner.send(to_send)
                except StopIteration as stop:
                    result = stop.value
                    return result
                finally:
                    current.reset(token)
                if ttft is None:
                    ttft = _clock()
                items.append(item)
                try:
                    to_send = yield item
                except GeneratorExit:
                    inner.close()
                    raise
                except BaseException as exc:  # thrown in by the consumer: pass it on
                    to_throw = exc
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            push(
                (spec_id, n, parent, frame, t0, _clock(), ttft, seen, seen_kw, result,
                 error, context_values, tuple(items))
            )  # fmt: skip

    return wrapper


def _wrap_async_generator(fn: Callable[..., Any], spec: Spec) -> Callable[..., Any]:
    current, push, ctx, spec_id = _current, buffer.push, _context_values, spec.register()
    containers = _CONTAINERS

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        parent = current.get()
        n = _next_id()
        frame = (n, n if parent is None else parent[1])
        seen, seen_kw = args, kwargs or None  # what is recorded: lists and dicts as they are now
        for a in args:
            if type(a) in containers:
                seen, seen_kw = snapshot_arguments(args, kwargs)
                break
        else:
            if kwargs:
                for a in kwargs.values():
                    if type(a) in containers:
                        seen, seen_kw = snapshot_arguments(args, kwargs)
                        break
        context_values = ctx.get()
        items: list[Any] = []
        ttft = None
        error: BaseException | None = None
        t0 = _clock()
        token = current.set(frame)
        try:
            inner = fn(*args, **kwargs)
        finally:
            current.reset(token)
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = current.set(frame)
                try:
                    if to_throw is not None:
                        thrown, to_throw = to_throw, None
                        item = await inner.athrow(thrown)
                    else:
                        item = await inner.asend(to_send)
                except StopAsyncIteration:
                    return
                finally:
                    current.reset(token)
                if ttft is None:
                    ttft = _clock()
                items.append(item)
                try:
                    to_send = yield item
                except GeneratorExit:
                    await inner.aclose()
                    raise
                except BaseException as exc:
                    to_throw = exc
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            push(
                (spec_id, n, parent, frame, t0, _clock(), ttft, seen, seen_kw, None,
                 error, context_values, tuple(items))
            )  # fmt: skip

    return wrapper
