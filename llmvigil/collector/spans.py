"""Spans made by hand, and what code adds to the running span: ``span()``, ``start_span()``,
``context()`` and ``attach()``.

They share the hot path's state (:mod:`llmvigil.collector.tracer`): the
ContextVar of the current span, span numbers, the clock and the buffer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from llmvigil.collector import tracer
from llmvigil.collector.runtime import BUFFER as buffer
from llmvigil.collector.tracer import F_N, F_TRACE, Kind, Spec, _context_values, _current, _extras


class ActiveSpan:
    """A span started by hand and finished later: for wrappers whose call outlives a function
    (a stream handed back to the caller) and for :func:`span`.

    While active (``activate=True`` at start), spans opened in this context
    become its children. :meth:`finish` records it exactly once.

    Example::

        active = start_span("openai.chat", kind="llm", kwargs=request)
        for chunk in stream:
            active.item(chunk)
        active.finish()
    """

    __slots__ = (
        "_done",
        "_frame",
        "_parent",
        "_spec",
        "_t0",
        "_token",
        "args",
        "context_values",
        "input",
        "items",
        "kwargs",
        "output",
        "ttft",
    )

    def __init__(self, spec: Spec, args: tuple, kwargs: dict | None, activate: bool) -> None:
        self._spec = spec
        self._parent = _current.get()
        n = tracer._next_id()
        self._frame = (n, n if self._parent is None else self._parent[F_TRACE])
        # The request as it is now: a caller that appends the reply to its messages list
        # afterwards must not change what is recorded.
        self.args, self.kwargs = tracer.snapshot_arguments(args, kwargs)
        self.context_values = _context_values.get()
        self.items: list[Any] | None = None
        self.ttft: int | None = None
        self.input: Any = None
        self.output: Any = None
        self._done = False
        self._token = _current.set(self._frame) if activate else None
        self._t0 = tracer._clock()

    def attach(self, **values: Any) -> None:
        """Same as :func:`attach`, for this span."""
        _attach_to(self._frame, values)

    def deactivate(self) -> None:
        """Stop being the current span of this context (call in the context that started it)."""
        if self._token is not None:
            token, self._token = self._token, None
            # Reset from another context has nothing of ours to undo there.
            with contextlib.suppress(ValueError):
                _current.reset(token)

    def item(self, value: Any) -> None:
        """Record one streamed item; the first one fixes the time to first token."""
        if self.items is None:
            self.items = []
            self.ttft = tracer._clock()
        self.items.append(value)

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        """End the span and queue it; later calls do nothing. Never raises."""
        if self._done:
            return
        self._done = True
        t1 = tracer._clock()
        self.deactivate()
        if self.output is not None:
            self.attach(output=self.output)
        if self.input is not None:
            self.attach(input=self.input)
        buffer.push(
            (self._spec, self._frame[F_N], self._parent, self._frame, self._t0, t1, self.ttft,
             self.args, self.kwargs, result, error, self.context_values, self.items)
        )  # fmt: skip


def start_span(
    name: str,
    *,
    kind: Kind = "llm",
    args: tuple = (),
    kwargs: Mapping[str, Any] | None = None,
    activate: bool = True,
    app: str | None = None,
    model: str | None = None,
    prompt_version: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    capture_input: bool | None = None,
    capture_output: bool | None = None,
    func: Callable[..., Any] | None = None,
) -> ActiveSpan:
    """Start a span now and return it; call :meth:`ActiveSpan.finish` to record it.

    ``args``/``kwargs`` are the call's arguments (the prompt is read from them
    as for ``@observe``; give ``func`` so they bind to its parameter names).
    """
    spec = Spec(
        name,
        kind,
        app,
        model,
        prompt_version,
        tags,
        metadata,
        capture_input,
        capture_output,
        None,
        None,
        func,
    )
    return ActiveSpan(spec, args, dict(kwargs) if kwargs else None, activate)


@contextmanager
def span(
    name: str,
    *,
    kind: Kind = "chain",
    input: Any = None,
    app: str | None = None,
    model: str | None = None,
    prompt_version: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[ActiveSpan]:
    """Record a block of code that is not a function as a span.

    Spans opened inside (by ``@observe`` or another ``span``) become its
    children. Set ``.output`` (and ``.input``) on the yielded span, or call its
    ``attach``. An exception is recorded and propagates unchanged.

    Example::

        with llmvigil.span("retrieve", kind="retrieval", input=query) as s:
            s.output = search(query)
    """
    active = start_span(
        name,
        kind=kind,
        app=app,
        model=model,
        prompt_version=prompt_version,
        tags=tags,
        metadata=metadata,
    )
    active.input = input
    try:
        yield active
    except BaseException as exc:
        active.finish(error=exc)
        raise
    active.finish()


@contextmanager
def context(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    trace_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
) -> Iterator[None]:
    """Set ``user_id``, ``session_id``, metadata and tags on every span started inside.

    Nested contexts add to the outer one. ``trace_id`` puts the spans started
    inside under your own trace id (for example a request id).

    Example::

        with llmvigil.context(user_id="u-42", session_id=request.session):
            answer(question)
    """
    outer = _context_values.get()
    values = dict(outer) if outer else {}
    # Kept as given: the flush thread makes text of any value (a str() that raises included),
    # so nothing here can raise into the caller.
    for key, value in (("user_id", user_id), ("session_id", session_id), ("trace_id", trace_id)):
        if value is not None:
            values[key] = value
    if metadata:
        values["metadata"] = {**values.get("metadata", {}), **tracer.as_metadata(metadata)}
    if tags:
        values["tags"] = (*values.get("tags", ()), *tracer.as_tags(tags))
    token = _context_values.set(values)
    try:
        yield
    finally:
        _context_values.reset(token)


def attach(
    *,
    context: Sequence[str] | str | None = None,
    reference: str | None = None,
    input: Any = None,
    output: Any = None,
    model: str | None = None,
    usage: Any = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
) -> None:
    """Add facts to the span that is running now (the innermost ``@observe`` or ``span``).

    ``context`` is the retrieved passages, ``reference`` an expected answer,
    ``usage`` token counts (an OpenAI-style usage object or dict). Called with
    no span running, it does nothing. Never raises.

    Example::

        @observe
        def answer(question):
            passages = retrieve(question)
            llmvigil.attach(context=passages)
            return generate(question, passages)
    """
    frame = _current.get()
    if frame is None:
        return
    values = {
        k: v
        for k, v in (
            ("context", context),
            ("reference", reference),
            ("input", input),
            ("output", output),
            ("model", model),
            ("usage", usage),
            ("metadata", metadata),
            ("tags", tags),
        )
        if v is not None
    }
    _attach_to(frame, values)


def _attach_to(frame: tuple[int, int], values: Mapping[str, Any]) -> None:
    extras = _extras.setdefault(frame[F_N], {})
    for key, value in values.items():
        if key == "metadata":
            extras["metadata"] = {**extras.get("metadata", {}), **tracer.as_metadata(value)}
        elif key == "tags":
            extras["tags"] = (*extras.get("tags", ()), *tracer.as_tags(value))
        else:
            extras[key] = tracer.snapshot(value)
