"""Record every chat completion of an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client.

:func:`instrument` wraps ``client.chat.completions.create`` in place: each
call becomes one span (kind ``llm``) with the model, the prompt (the last user
message; the whole conversation goes in ``metadata["messages"]``), the
response text, the token usage reported by the API, the latency, the error if
the call failed (re-raised unchanged), and the request parameters worth
keeping (``temperature``, ``max_tokens``, ``top_p``, the tools offered...) in
``metadata``.

A streamed call (``stream=True``) returns an :class:`InstrumentedStream` (or
:class:`InstrumentedAsyncStream`): a subclass of the ``openai.Stream`` the call
would have returned that delegates to it, so iteration, ``with``, ``close()``
and ``.response`` behave as before. Its span records the time to the first
chunk (``ttft_ms``) and ends when the stream is exhausted, closed, fails or is
dropped. The token usage of a stream is the API's when the caller asked for it
with ``stream_options={"include_usage": True}``, and estimated otherwise.

Recording never changes what the caller sees: a failure inside llmvigil is
logged and the call goes on as if the client were not instrumented.

Example::

    import openai
    import llmvigil
    from llmvigil.integrations.openai import instrument

    client = instrument(openai.OpenAI(), app="support-bot")

    @llmvigil.observe(kind="chain")
    def answer(question: str) -> str:
        reply = client.chat.completions.create(          # a child span of answer()
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": question}],
            temperature=0.2,
        )
        return reply.choices[0].message.content

    for chunk in client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},           # real token counts for streams
    ):
        ...

Calling :func:`instrument` again on the same client replaces its options and
never records a call twice; :func:`uninstrument` restores the original
method. Copies made with ``client.with_options(...)`` or ``client.copy()``
are instrumented with the same options. Only ``chat.completions.create`` is
recorded (``chat.completions.stream(...)`` uses it and is recorded too).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import openai
from openai import AsyncStream, Stream
from openai.resources.chat import AsyncCompletions, Completions

from llmvigil.collector import spans, tracer
from llmvigil.collector.extract import get_field

__all__ = [
    "DEFAULT_NAME",
    "REQUEST_PARAMS",
    "InstrumentedAsyncStream",
    "InstrumentedStream",
    "instrument",
    "is_instrumented",
    "uninstrument",
]

log = logging.getLogger("llmvigil.integrations")

C = TypeVar("C")
_T = TypeVar("_T")

#: The span name given to each call unless ``instrument(name=...)`` says otherwise.
DEFAULT_NAME = "openai.chat.completions"

#: Request parameters copied as they are into the span's ``metadata`` when the caller gave them.
REQUEST_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
    "verbosity",
    "service_tier",
    "parallel_tool_calls",
    "tool_choice",
    "modalities",
    "stream",
)

_ORIGINAL = "_llmvigil_original"  # on a wrapper: the callable it wraps
_PREVIOUS = "_llmvigil_previous"  # on a wrapper: the instance attribute it replaced, if any
_MISSING = object()
_UNSET = (openai.NotGiven, openai.Omit)
_COPY_METHODS = ("copy", "with_options")


# -- public API ------------------------------------------------------------------------


def instrument(
    client: C,
    *,
    app: str | None = None,
    name: str = DEFAULT_NAME,
    capture_input: bool | None = None,
    capture_output: bool | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> C:
    """Record every ``client.chat.completions.create(...)`` call as an ``llm`` span.

    Returns ``client`` itself, instrumented in place.

    ``client`` is an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` (Azure
    clients included), or its ``chat.completions`` resource. ``app``,
    ``tags`` and ``metadata`` are set on every span; ``capture_input`` /
    ``capture_output`` default to the ``[collector]`` settings. Instrumenting
    an instrumented client again replaces these options; calls are never
    recorded twice. Raises :class:`TypeError` for an object that is not an
    OpenAI client.

    Example::

        client = instrument(openai.OpenAI(), app="support-bot", tags=["prod"])
    """
    completions = _completions_of(client)
    options: dict[str, Any] = {
        "app": app,
        "name": name,
        "capture_input": capture_input,
        "capture_output": capture_output,
        "tags": tuple(tags) if tags else None,
        "metadata": dict(metadata) if metadata else None,
    }
    spec = tracer.Spec(
        name=name,
        kind="llm",
        app=app,
        model=None,  # each call's model comes from its request and response
        prompt_version=None,
        tags=tags,
        metadata=metadata,
        capture_input=capture_input,
        capture_output=capture_output,
        context_arg=None,
        reference_arg=None,
        func=None,
    )
    original, previous = _unwrapped(completions, "create")
    if isinstance(completions, AsyncCompletions):
        wrapper = _async_create(original, spec)
    else:
        wrapper = _sync_create(original, spec)
    _install(completions, "create", wrapper, original, previous)
    if completions is not client:
        for method in _COPY_METHODS:
            if callable(getattr(client, method, None)):
                original, previous = _unwrapped(client, method)
                _install(client, method, _copy_wrapper(original, options), original, previous)
    return client


def uninstrument(client: C) -> C:
    """Undo :func:`instrument`: ``create`` (and ``copy``/``with_options``) are the originals again.

    Does nothing to a client that is not instrumented. Returns ``client``.
    """
    completions = _completions_of(client)
    targets = [(completions, "create")]
    if completions is not client:
        targets += [(client, method) for method in _COPY_METHODS]
    for target, attribute in targets:
        current = vars(target).get(attribute)
        if current is None or not hasattr(current, _ORIGINAL):
            continue
        previous = getattr(current, _PREVIOUS, _MISSING)
        if previous is _MISSING:
            delattr(target, attribute)
        else:
            setattr(target, attribute, previous)
    return client


def is_instrumented(client: Any) -> bool:
    """Whether ``client`` (or its ``chat.completions`` resource) is instrumented by llmvigil."""
    try:
        completions = _completions_of(client)
    except TypeError:
        return False
    return hasattr(vars(completions).get("create"), _ORIGINAL)


# -- installing ------------------------------------------------------------------------


def _completions_of(client: Any) -> Completions | AsyncCompletions:
    if isinstance(client, Completions | AsyncCompletions):
        return client
    chat = getattr(client, "chat", None)
    completions = getattr(chat, "completions", None)
    if isinstance(completions, Completions | AsyncCompletions):
        return completions
    raise TypeError(
        "llmvigil.integrations.openai.instrument() takes an openai.OpenAI or openai.AsyncOpenAI "
        f"client (or its chat.completions), not {type(client).__name__}"
    )


def _unwrapped(target: Any, attribute: str) -> tuple[Callable[..., Any], Any]:
    """The callable to wrap and the instance attribute to restore, ignoring our own wrapper."""
    current = vars(target).get(attribute, _MISSING)
    if current is not _MISSING and hasattr(current, _ORIGINAL):
        return getattr(current, _ORIGINAL), getattr(current, _PREVIOUS, _MISSING)
    return getattr(target, attribute), current


def _install(
    target: Any, attribute: str, wrapper: Any, original: Callable[..., Any], previous: Any
) -> None:
    setattr(wrapper, _ORIGINAL, original)
    setattr(wrapper, _PREVIOUS, previous)
    setattr(target, attribute, wrapper)


def _copy_wrapper(original: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def copy(*args: Any, **kwargs: Any) -> Any:
        new = original(*args, **kwargs)
        try:
            instrument(new, **options)
        except Exception:
            log.warning("llmvigil: could not instrument a copy of the OpenAI client", exc_info=True)
        return new

    return copy


# -- one call ------------------------------------------------------------------------------


def _sync_create(original: Callable[..., Any], spec: tracer.Spec) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        active = _begin(spec, kwargs)
        if active is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            _fail(active, kwargs, exc)
            raise
        return _complete(active, kwargs, result)

    return create


def _async_create(original: Callable[..., Any], spec: tracer.Spec) -> Callable[..., Any]:
    # Not itself a coroutine function, like the original: openai checks the arguments when
    # create() is called (a TypeError then, not when awaited) and returns a coroutine.
    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        return _record_async_call(original(*args, **kwargs), spec, kwargs)

    return create


async def _record_async_call(call: Awaitable[Any], spec: tracer.Spec, kwargs: dict) -> Any:
    active = _begin(spec, kwargs)
    if active is None:
        return await call
    try:
        result = await call
    except BaseException as exc:
        _fail(active, kwargs, exc)
        raise
    return _complete(active, kwargs, result)


def _begin(spec: tracer.Spec, kwargs: dict[str, Any]) -> spans.ActiveSpan | None:
    """Start the call's span (current until the call returns), or None if that failed."""
    try:
        active = spans.ActiveSpan(spec, (), {"messages": kwargs.get("messages")}, True)
    except Exception:
        log.warning("llmvigil: could not start a span for an OpenAI call", exc_info=True)
        return None
    try:
        params = _request_metadata(kwargs)
        if params:
            active.attach(metadata=params)
    except Exception:
        log.warning("llmvigil: could not record an OpenAI call's parameters", exc_info=True)
    return active


def _fail(active: spans.ActiveSpan, kwargs: dict[str, Any], error: BaseException) -> None:
    try:
        model = _request_model(kwargs)
        if model:
            active.attach(model=model)
    except Exception:
        log.warning("llmvigil: could not record a failed OpenAI call", exc_info=True)
    _finish(active, error=error)


def _complete(active: spans.ActiveSpan, kwargs: dict[str, Any], result: Any) -> Any:
    """What ``create`` returns: ``result``, or for a stream a proxy that records its chunks."""
    try:
        if isinstance(result, Stream | AsyncStream):
            recorder = _StreamRecorder(active, _request_model(kwargs))
            if isinstance(result, AsyncStream):
                proxy: Any = InstrumentedAsyncStream(result, recorder)
            else:
                proxy = InstrumentedStream(result, recorder)
            active.deactivate()  # the caller's code after create() is not inside this span
            return proxy
        response = _response_of(result, kwargs)
        if response is None:
            active.attach(metadata={"raw_response": True})
        active.attach(**_facts(response, None, _request_model(kwargs)))
        _finish(active, result=response)
    except Exception:
        log.warning("llmvigil: could not record an OpenAI call", exc_info=True)
        _finish(active)
    return result


def _finish(
    active: spans.ActiveSpan, result: Any = None, error: BaseException | None = None
) -> None:
    try:
        active.finish(result=result, error=error)
    except Exception:
        log.warning("llmvigil: could not record an OpenAI call", exc_info=True)


def _response_of(result: Any, kwargs: dict[str, Any]) -> Any:
    """The ChatCompletion in ``result`` (parsed from a ``with_raw_response`` reply), or None."""
    if isinstance(result, openai.BaseModel):
        return result
    if kwargs.get("stream") is True:
        return None  # a raw streamed reply: its body is the caller's to read
    try:
        from openai._legacy_response import LegacyAPIResponse
    except ImportError:  # pragma: no cover - a future openai without the legacy wrapper
        return None
    if isinstance(result, LegacyAPIResponse):
        # The body is already read; parse() caches, so the caller's parse() gets this object.
        parsed = result.parse()
        return parsed if isinstance(parsed, openai.BaseModel) else None
    return None  # with_streaming_response: the body is not read yet


def _request_model(kwargs: Mapping[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else None


def _request_metadata(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters worth keeping, without the ones the caller did not give."""
    meta = {}
    for key in REQUEST_PARAMS:
        value = kwargs.get(key)
        if value is not None and not isinstance(value, _UNSET):
            meta[key] = value
    for key in ("tools", "functions"):
        listed = kwargs.get(key)
        # Only a real sequence: an iterator given by the caller is for openai to consume.
        if isinstance(listed, Sequence) and not isinstance(listed, str) and listed:
            meta[key] = [_tool_name(tool) for tool in listed]
    response_format = kwargs.get("response_format")
    if isinstance(response_format, Mapping):
        meta["response_format"] = response_format.get("type")
    stream_options = kwargs.get("stream_options")
    if isinstance(stream_options, Mapping) and "include_usage" in stream_options:
        meta["stream_include_usage"] = bool(stream_options["include_usage"])
    return meta


def _tool_name(tool: Any) -> Any:
    if not isinstance(tool, Mapping):
        return type(tool).__name__
    function = tool.get("function")
    if isinstance(function, Mapping) and "name" in function:
        return function["name"]
    return tool.get("name") or tool.get("type")


def _facts(response: Any, chunks: Sequence[Any] | None, request_model: str | None) -> dict:
    """``attach`` arguments from a response or stream: the model, finish reason, response id."""
    meta: dict[str, Any] = {}
    model = None
    if chunks:
        for chunk in chunks[:8]:  # Azure may send a filter-results chunk with no model first
            model = get_field(chunk, "model") or None
            if model:
                break
        response_id = get_field(chunks[0], "id")
        for chunk in reversed(chunks[-4:]):
            choices = get_field(chunk, "choices")
            if choices and get_field(choices[0], "finish_reason"):
                meta["finish_reason"] = get_field(choices[0], "finish_reason")
                break
    else:
        model = get_field(response, "model") if response is not None else None
        response_id = get_field(response, "id") if response is not None else None
        choices = get_field(response, "choices") if response is not None else None
        if choices and get_field(choices[0], "finish_reason"):
            meta["finish_reason"] = get_field(choices[0], "finish_reason")
    if not isinstance(model, str) or not model:
        model = request_model
    elif request_model and model != request_model:
        meta["request_model"] = request_model
    if isinstance(response_id, str) and response_id:
        meta["response_id"] = response_id
    facts: dict[str, Any] = {"metadata": meta} if meta else {}
    if model:
        facts["model"] = model
    return facts


def _streamed_tool_calls(chunks: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The tool calls a stream's first choice made, merged from their deltas; None if it
    answered text (the pipeline joins that) or called no tool."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in get_field(chunk, "choices") or ():
            if get_field(choice, "index") not in (None, 0):
                continue
            delta = get_field(choice, "delta")
            if get_field(delta, "content"):
                return None
            for part in get_field(delta, "tool_calls") or ():
                index = get_field(part, "index")
                call = calls.setdefault(
                    index if isinstance(index, int) else len(calls),
                    {"id": None, "function": {"arguments": "", "name": ""}, "type": "function"},
                )
                if isinstance(get_field(part, "id"), str):
                    call["id"] = get_field(part, "id")
                if isinstance(get_field(part, "type"), str):
                    call["type"] = get_field(part, "type")
                function = get_field(part, "function")
                for key in ("arguments", "name"):
                    piece = get_field(function, key) if function is not None else None
                    if isinstance(piece, str):
                        call["function"][key] += piece
            break
    return [calls[i] for i in sorted(calls)] or None


# -- streams -----------------------------------------------------------------------------


class _StreamRecorder:
    """Feeds a stream's chunks to its span and finishes the span exactly once."""

    __slots__ = ("active", "done", "request_model")

    def __init__(self, active: spans.ActiveSpan, request_model: str | None) -> None:
        self.active = active
        self.request_model = request_model
        self.done = False

    def item(self, chunk: Any) -> None:
        try:
            self.active.item(chunk)
        except Exception:
            log.warning("llmvigil: could not record a streamed chunk", exc_info=True)

    def end(self, error: BaseException | None = None, incomplete: str | None = None) -> None:
        """Finish the span; ``incomplete`` says why the stream ended before its last chunk."""
        if self.done:
            return
        self.done = True
        try:
            items = self.active.items
            facts = _facts(None, items, self.request_model)
            if incomplete is not None and error is None:
                facts.setdefault("metadata", {})["stream_incomplete"] = incomplete
            calls = _streamed_tool_calls(items) if items else None
            if calls:  # as for a call not streamed: the tool calls are the output
                facts["output"] = calls
            self.active.attach(**facts)
        except Exception:
            log.warning("llmvigil: could not record an OpenAI stream", exc_info=True)
        _finish(self.active, error=error)


def _record_chunks(stream: Stream[_T], recorder: _StreamRecorder) -> Any:
    next_chunk = stream.__next__
    try:
        while True:
            try:
                chunk = next_chunk()
            except StopIteration:
                break
            recorder.item(chunk)
            yield chunk
    except GeneratorExit:  # dropped before its end
        recorder.end(incomplete="abandoned")
        raise
    except BaseException as exc:
        recorder.end(error=exc)
        raise
    recorder.end()


async def _record_chunks_async(stream: AsyncStream[_T], recorder: _StreamRecorder) -> Any:
    next_chunk = stream.__anext__
    try:
        while True:
            try:
                chunk = await next_chunk()
            except StopAsyncIteration:
                break
            recorder.item(chunk)
            yield chunk
    except GeneratorExit:
        recorder.end(incomplete="abandoned")
        raise
    except BaseException as exc:
        recorder.end(error=exc)
        raise
    recorder.end()


class _StreamProxy:
    """What both instrumented streams share: every attribute but their own goes to the original.

    ``Stream.__init__`` is never called: it would start a second decoder on
    the same response. ``_iterator`` is what ``Stream``'s iteration methods use.
    """

    _OWN = frozenset({"_iterator", "_llmvigil_stream", "_llmvigil_recorder"})

    def _attach(self, stream: Any, recorder: _StreamRecorder, iterator: Any) -> None:
        own = self.__dict__
        own["_llmvigil_stream"] = stream
        own["_llmvigil_recorder"] = recorder
        own["_iterator"] = iterator

    def __getattr__(self, name: str) -> Any:
        stream = self.__dict__.get("_llmvigil_stream")
        if stream is None:
            raise AttributeError(name)
        return getattr(stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            self.__dict__[name] = value
        else:
            setattr(self.__dict__["_llmvigil_stream"], name, value)

    def __del__(self) -> None:
        recorder = self.__dict__.get("_llmvigil_recorder")
        if recorder is not None:
            recorder.end(incomplete="abandoned")


class InstrumentedStream(_StreamProxy, Stream[_T]):
    """The ``openai.Stream`` a streamed call returned, recording each chunk on the call's span.

    A subclass of ``openai.Stream`` (``isinstance`` checks hold) that
    delegates every attribute to the original stream; iterating it iterates
    the original. The span ends when the stream is exhausted, fails, is
    closed (``close()`` or the end of a ``with`` block; the partial output is
    kept and ``metadata["stream_incomplete"]`` says ``"closed"``) or is
    garbage-collected unfinished (``"abandoned"``).
    """

    def __init__(self, stream: Stream[_T], recorder: _StreamRecorder) -> None:
        self._attach(stream, recorder, _record_chunks(stream, recorder))

    def close(self) -> None:
        """Close the original stream (and its connection) and end the span."""
        try:
            self.__dict__["_llmvigil_stream"].close()
        finally:
            self.__dict__["_llmvigil_recorder"].end(incomplete="closed")


class InstrumentedAsyncStream(_StreamProxy, AsyncStream[_T]):
    """The ``openai.AsyncStream`` a streamed call returned, recording each chunk on its span.

    The asynchronous twin of :class:`InstrumentedStream`: ``async for``,
    ``async with`` and ``await close()`` behave as on the original.
    """

    def __init__(self, stream: AsyncStream[_T], recorder: _StreamRecorder) -> None:
        self._attach(stream, recorder, _record_chunks_async(stream, recorder))

    async def close(self) -> None:
        """Close the original stream (and its connection) and end the span."""
        try:
            await self.__dict__["_llmvigil_stream"].close()
        finally:
            self.__dict__["_llmvigil_recorder"].end(incomplete="closed")
