"""Turn whatever a decorated function took and returned into text, tokens and a model name.

Runs on the flush thread. Every function here accepts any object (cyclic,
unserialisable, bytes that are not UTF-8, NaN, huge) and never raises: the
worst case is a placeholder that names the type.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_DEPTH = 12
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_MAX_ITEMS = 1_000
#: Keyword names that hold the prompt, tried in this order.
PROMPT_KEYS = ("messages", "prompt", "input", "query", "question", "text")


def clean_text(text: str) -> str:
    """``text`` without what JSON, Arrow or PostgreSQL refuse: lone surrogates and NUL.

    Each becomes U+FFFD, the replacement character, so a cleaned text keeps
    its length and shows where something was replaced.
    """
    if not text.isascii():  # O(1), and an ASCII text holds no surrogate
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


_SURROGATE = re.compile("[\ud800-\udfff]")


def text_of(value: Any) -> str | None:
    """The text a string column stores for ``value``; never raises.

    None stays None; a string is cleaned (:func:`clean_text`); bytes are
    decoded as UTF-8 with replacement; anything else is its ``str()``, or its
    ``repr()``, or ``<TypeName>`` when both fail. The collector passes every
    string column's value through here, so no field can hold what a store
    refuses.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return clean_text(bytes(value[:_MAX_BYTES]).decode("utf-8", "replace"))
    if type(value) is int:
        return _big_int(value)
    try:
        text = str(value)
        if not isinstance(text, str):
            raise TypeError("__str__ returned a non-string")
    except Exception:
        return _short_repr(value)
    return clean_text(text)


_MAX_BYTES = 65_536
#: Integers beyond this many bits are kept as text: JSON readers lose their precision.
_MAX_INT_BITS = 64


def _plain(value: Any, depth: int, seen: set[int], budget: list[int]) -> Any:
    """A JSON-safe copy of ``value`` (dicts, lists, str, int, float, bool, None)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if value.bit_length() <= _MAX_INT_BITS else _big_int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        budget[0] -= len(value)
        return clean_text(value if budget[0] >= 0 else value[: max(0, len(value) + budget[0])])
    if isinstance(value, bytes | bytearray | memoryview):
        return clean_text(bytes(value[:_MAX_BYTES]).decode("utf-8", "replace"))
    if depth >= _MAX_DEPTH or budget[0] <= 0:
        return f"<{type(value).__name__}>"
    marker = id(value)
    if marker in seen:
        return f"<cycle {type(value).__name__}>"
    seen.add(marker)
    try:
        if isinstance(value, Mapping):
            return {
                _key(k): _plain(v, depth + 1, seen, budget)
                for k, v in list(value.items())[:_MAX_ITEMS]
            }
        if isinstance(value, list | tuple | set | frozenset | deque):
            return [_plain(v, depth + 1, seen, budget) for v in list(value)[:_MAX_ITEMS]]
        dump = getattr(value, "model_dump", None)  # pydantic models, OpenAI responses
        if callable(dump):
            return _plain(dump(), depth + 1, seen, budget)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return _plain(fields, depth + 1, seen, budget)
        return _short_repr(value)
    except Exception:  # a container that fails while read: only this part is lost
        return _short_repr(value)
    finally:
        seen.discard(marker)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return clean_text(key)
    return text_of(key) or "null"


def _big_int(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return f"<int of {value.bit_length()} bits>"


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception:
        return _type_placeholder(value)
    return clean_text(text[:2_000])


def _type_placeholder(value: Any) -> str:
    try:
        return clean_text(f"<{type(value).__name__}>")
    except Exception:
        return "<object>"


def to_json(value: Any, limit: int = 1_000_000) -> str:
    """JSON text for any object; never raises."""
    try:
        return json.dumps(_plain(value, 0, set(), [limit]), ensure_ascii=False, allow_nan=False)
    except Exception:
        return json.dumps(f"<unserialisable {_type_placeholder(value)[1:-1]}>")


def to_text(value: Any, limit: int = 1_000_000) -> str | None:
    """Text for a prompt or a response: strings as they are, anything else as JSON."""
    try:
        if value is None:
            return None
        if isinstance(value, str):
            return clean_text(value[: limit * 4])
        if isinstance(value, bytes | bytearray):
            return clean_text(bytes(value[: limit * 4]).decode("utf-8", "replace"))
        return to_json(value, limit)
    except Exception:
        return f"<unserialisable {type(value).__name__}>"


def get_field(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for objects, None when absent or unreadable."""
    try:
        if isinstance(obj, Mapping):
            return obj.get(key)
        return getattr(obj, key, None)
    except Exception:  # a property or __getattr__ that fails: as if absent
        return None


def messages_to_prompt(messages: Any) -> str | None:
    """The last user message of an OpenAI-style message list (what a question-scorer needs)."""
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes) or not messages:
        return None
    for message in reversed(messages):
        if get_field(message, "role") == "user":
            return content_text(get_field(message, "content"))
    return content_text(get_field(messages[-1], "content"))


def content_text(content: Any) -> str | None:
    """Text of a message ``content``: a string, or a list of parts of which the text parts count."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [get_field(p, "text") for p in content]
        texts = [p for p in parts if isinstance(p, str)]
        if texts:
            return "\n".join(texts)
    return to_text(content)


def output_text(result: Any) -> str | None:
    """The text of a model's answer: chat completion, Responses API object, dict, str, or JSON."""
    if result is None or isinstance(result, str):
        return result
    choices = get_field(result, "choices")
    if isinstance(choices, Sequence) and choices and not isinstance(choices, str):
        message = get_field(choices[0], "message")
        if message is not None:
            text = content_text(get_field(message, "content"))
            if text is None and get_field(message, "tool_calls"):
                return to_json(get_field(message, "tool_calls"))
            return text
        text = get_field(choices[0], "text")  # legacy completions
        if isinstance(text, str):
            return text
    text = get_field(result, "output_text")  # Responses API convenience property
    if isinstance(text, str):
        return text
    output = get_field(result, "output")
    if isinstance(output, Sequence) and not isinstance(output, str):
        pieces = []
        for item in output:
            for part in get_field(item, "content") or ():
                if isinstance(get_field(part, "text"), str):
                    pieces.append(get_field(part, "text"))
        if pieces:
            return "".join(pieces)
    return to_text(result)


def stream_text(items: Sequence[Any]) -> str | None:
    """The joined text of a stream: strings, or chat-completion chunks' ``delta.content``."""
    pieces: list[str] = []
    for item in items:
        if isinstance(item, str):
            pieces.append(item)
            continue
        if isinstance(item, bytes):
            pieces.append(item.decode("utf-8", "replace"))
            continue
        choices = get_field(item, "choices")
        if isinstance(choices, Sequence) and not isinstance(choices, str):
            for choice in choices:
                if get_field(choice, "index") not in (None, 0):
                    continue  # with n > 1 the other answers' chunks interleave with the first's
                delta = get_field(choice, "delta")
                text = (
                    get_field(delta, "content") if delta is not None else get_field(choice, "text")
                )
                if isinstance(text, str):
                    pieces.append(text)
                break
            continue
        delta = get_field(item, "delta")  # Responses API text delta events
        if isinstance(delta, str):
            pieces.append(delta)
            continue
        pieces.append(to_text(item) or "")
    return clean_text("".join(pieces)) if pieces else None


def usage_of(result: Any) -> tuple[int | None, int | None, int | None]:
    """(prompt, completion, total) tokens from an OpenAI-style ``usage``, else Nones."""
    usage = get_field(result, "usage") if result is not None else None
    if usage is None and isinstance(result, Mapping) and "prompt_tokens" in result:
        usage = result
    if usage is None:
        return None, None, None
    prompt = get_field(usage, "prompt_tokens")
    completion = get_field(usage, "completion_tokens")
    if prompt is None and completion is None:  # Responses API and Anthropic shapes
        prompt = get_field(usage, "input_tokens")
        completion = get_field(usage, "output_tokens")
    total = get_field(usage, "total_tokens")
    prompt, completion, total = (_as_int(v) for v in (prompt, completion, total))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return prompt, completion, total


def stream_usage(items: Sequence[Any]) -> tuple[int | None, int | None, int | None]:
    """Token usage of a stream: the last chunk that carries one (OpenAI sends it last)."""
    for item in reversed(items):
        usage = usage_of(item)
        if usage != (None, None, None):
            return usage
        response = get_field(item, "response")  # Responses API completed event
        if response is not None:
            usage = usage_of(response)
            if usage != (None, None, None):
                return usage
    return None, None, None


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def model_of(result: Any) -> str | None:
    """The ``model`` a response says produced it, if any."""
    try:
        model = get_field(result, "model") if result is not None else None
    except Exception:
        return None
    return model if isinstance(model, str) else None


def plain_positional_names(signature: inspect.Signature) -> tuple[str, ...] | None:
    """The parameter names when every parameter is plain positional, else None."""
    params = list(signature.parameters.values())
    if all(p.kind in _POSITIONAL for p in params):
        return tuple(p.name for p in params)
    return None


def bound_arguments(
    signature: inspect.Signature | None,
    args: tuple,
    kwargs: dict | None,
    names: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Call arguments by parameter name, without ``self``/``cls``.

    ``names`` is :func:`plain_positional_names` of the signature, when known.
    Positional names (``arg0``...) when the signature cannot bind them.
    """
    kwargs = kwargs or {}
    if signature is not None:
        # Most calls pass a few positional arguments to plain parameters: zip them with the
        # names, which is many times cheaper than Signature.bind.
        if names is not None and not kwargs and len(args) <= len(names):
            arguments = dict(zip(names, args, strict=False))
            for name in ("self", "cls"):
                arguments.pop(name, None)
            return arguments
        try:
            bound = signature.bind_partial(*args, **kwargs)
            arguments = dict(bound.arguments)
            for name in ("self", "cls"):
                arguments.pop(name, None)
            for name, param in signature.parameters.items():
                if param.kind is inspect.Parameter.VAR_KEYWORD and name in arguments:
                    arguments.update(arguments.pop(name))
            return arguments
        except (TypeError, ValueError):
            pass
    arguments = {f"arg{i}": a for i, a in enumerate(args)}
    arguments.update(kwargs)
    return arguments


def prompt_from_arguments(arguments: Mapping[str, Any]) -> Any:
    """The value that is the prompt: a known prompt keyword, the only argument, or all of them."""
    for key in PROMPT_KEYS:
        if key in arguments:
            value = arguments[key]
            if key == "messages":
                text = messages_to_prompt(value)
                if text is not None:
                    return text
            return value
    if len(arguments) == 1:
        return next(iter(arguments.values()))
    return dict(arguments) if arguments else None


def problem_text(exc: BaseException) -> str:
    """``"Type: message"`` of an exception, short and clean; never raises (a ``__str__`` that
    fails gives the type alone)."""
    name = type(exc).__name__
    try:
        return clean_text(f"{name}: {exc}"[:500])
    except Exception:
        return name
