"""An OpenTelemetry span as a store row, read the same way from either OTLP encoding.

Spans that carry the GenAI semantic conventions become ``llm`` spans. They take:
- the model (``gen_ai.response.model``, else ``gen_ai.request.model``);
- the tokens (``gen_ai.usage.input_tokens`` / ``output_tokens``, or the older
  ``prompt_tokens`` / ``completion_tokens``);
- the prompt and the answer, from ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` (v1.37 on), or the older indexed
  ``gen_ai.prompt.N.content`` / ``gen_ai.completion.N.content`` attributes, or
  the older events (``gen_ai.content.prompt`` / ``gen_ai.content.completion``,
  ``gen_ai.user.message`` / ``gen_ai.choice``).

Other spans become ``embedding``, ``tool``, ``retrieval`` or ``chain`` spans
by their attributes. Trace and parent ids are kept as hex. The app is the
resource's ``service.name``, and the environment its
``deployment.environment(.name)``.

:mod:`.otlp` (protobuf) and :mod:`.otlp_json` (OTLP/JSON) read a span's fields and
attributes into plain values and hand them to :func:`row`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import orjson

from llmvigil.server.spans_api import fill

#: The ``gen_ai.*`` attributes a span's row is made of; the others are neither kept nor read.
GENAI_READ = frozenset(
    (
        "gen_ai.operation.name",
        "gen_ai.system",
        "gen_ai.provider.name",
        "gen_ai.tool.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
    )
)
INDEXED = ("gen_ai.prompt.", "gen_ai.completion.")

#: The events a conversation is read from (the older conventions).
EVENTS_READ = frozenset(
    (
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.choice",
    )
)


def app_of(resource: dict[str, Any]) -> tuple[str, str]:
    """(app, environment) of a resource's attributes."""
    app = str(resource.get("service.name") or "default")
    environment = str(
        resource.get("deployment.environment.name")
        or resource.get("deployment.environment")
        or "production"
    )
    return app, environment


def _text_of(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("content") or part.get("text")
                if isinstance(text, str):
                    texts.append(text)
        return "\n".join(texts) or None
    return None


def _messages(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except ValueError:
            return [{"role": "user", "content": raw}]
    if isinstance(raw, dict):
        raw = [raw]
    out = []
    for message in raw if isinstance(raw, list) else ():
        if isinstance(message, dict):
            text = _text_of(message.get("parts")) or _text_of(message.get("content"))
            out.append({"role": str(message.get("role", "user")), "content": text})
    return out


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``gen_ai.prompt.0.role`` / ``.content`` style attributes as messages, in order."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if key.startswith(prefix + "."):
            index, _, field = key[len(prefix) + 1 :].partition(".")
            if index.isdigit() and field in ("role", "content"):
                found.setdefault(int(index), {})[field] = value
    return [
        {"role": str(m.get("role", "user")), "content": m.get("content")}
        for _, m in sorted(found.items())
    ]


#: A span's events as ``(name, its attributes read)``; the attributes are read only for the
#: events a conversation is made of.
Events = Iterable[Any]
EventReader = Callable[[Any], tuple[str, Callable[[], dict[str, Any]]]]


def _conversation(
    genai: dict[str, Any], events: Events, read_event: EventReader
) -> tuple[list[dict], list[dict]]:
    """(input messages, output messages) in whichever convention the span uses."""
    given = _messages(genai.get("gen_ai.input.messages") or ())
    answer = _messages(genai.get("gen_ai.output.messages") or ())
    given = given or _indexed(genai, "gen_ai.prompt")
    answer = answer or _indexed(genai, "gen_ai.completion")
    for event in events:
        name, attributes = read_event(event)
        if name not in EVENTS_READ:
            continue
        fields = attributes()
        if name == "gen_ai.content.prompt" and not given:
            given = _messages(fields.get("gen_ai.prompt") or [])
        elif name == "gen_ai.content.completion" and not answer:
            answer = _messages(fields.get("gen_ai.completion") or [])
        elif name in ("gen_ai.system.message", "gen_ai.user.message"):
            role = name.split(".")[1]
            given.append({"role": role, "content": _text_of(fields.get("content"))})
        elif name == "gen_ai.choice":
            message = fields.get("message")
            if isinstance(message, str):
                message = _messages(message)[0] if _messages(message) else None
            if isinstance(message, dict):
                answer.append({"role": "assistant", "content": _text_of(message.get("content"))})
    return given, answer


def _kind(name: str, genai: dict[str, Any], kept: dict[str, Any]) -> str:
    operation = str(genai.get("gen_ai.operation.name", ""))
    if operation == "embeddings":
        return "embedding"
    if operation == "execute_tool" or "gen_ai.tool.name" in genai or "tool.name" in kept:
        return "tool"
    if (
        operation
        or "gen_ai.system" in genai
        or "gen_ai.provider.name" in genai
        or "gen_ai.request.model" in genai
    ):
        return "llm"
    if "db.system" in kept or "retrieval.documents" in kept or "retriev" in name:
        return "retrieval"
    return "chain"


_EPOCH = datetime(1970, 1, 1)


def _time(nanos: int) -> datetime:
    # Naive UTC, as the store keeps it, rounded to its microseconds in integers (exact, where
    # nanos / 1e9 is not); a datetime, not its ISO text, which would be parsed back.
    return _EPOCH + timedelta(microseconds=(nanos + 500) // 1000)


def check_ids(span_id: bytes, trace_id: bytes, parent_id: bytes) -> None:
    """``ValueError`` naming the id that cannot be stored (none empty, each at most 32 bytes,
    the column's 64 hex digits)."""
    if not span_id:
        raise ValueError("span_id is empty: every OTLP span needs its 8-byte span id")
    for field, raw in (("span_id", span_id), ("trace_id", trace_id), ("parent_span_id", parent_id)):
        if len(raw) > 32:
            raise ValueError(
                f"{field} is {len(raw)} bytes, over 32: send OTLP's 16-byte trace ids and "
                "8-byte span ids"
            )


def _tokens(genai: dict[str, Any], key: str, older: str) -> int | None:
    """The token count under ``key`` (else the ``older`` convention's key), or None."""
    if key not in genai:
        key = older
    value = genai.get(key)
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} is {value!r}: send a whole number of tokens") from None
    if count < 0:
        raise ValueError(f"{key} is {count}: a token count cannot be below 0")
    return count


def row(
    ids: tuple[bytes, bytes, bytes],
    name: str,
    times: tuple[int, int],
    status: tuple[int, str],
    attributes: tuple[dict[str, Any], dict[str, Any]],
    events: Events,
    read_event: EventReader,
    app: str,
    environment: str,
) -> dict[str, Any]:
    """The store row of a span: its ``(span, trace, parent)`` ids, its name, its ``(start,
    end)`` in Unix nanoseconds, its ``(status code, message)``, its ``(gen_ai.* attributes
    read, other attributes)``, its events (``read_event`` reads one), its resource's app and
    environment. The encodings type the values already, so only what their types leave open
    is checked: the ids' lengths and the token counts (``ValueError`` naming the field)."""
    span_id, trace_id, parent_id = ids
    if not span_id or len(span_id) > 32 or len(trace_id) > 32 or len(parent_id) > 32:
        check_ids(span_id, trace_id, parent_id)
    genai, kept = attributes
    kind = _kind(name, genai, kept)
    start, end = times
    started = _time(start)
    code, message = status
    failed = code == 2  # STATUS_CODE_ERROR
    # Every field of spans_api.SpanIn, as fill() expects them.
    span: dict[str, Any] = {
        "span_id": span_id.hex(),
        "start_time": started,
        "name": name or "span",
        "trace_id": trace_id.hex() or None,
        "parent_id": parent_id.hex() or None,
        "kind": kind,
        "app": app,
        "environment": environment,
        "model": None,
        "prompt_version": None,
        "user_id": None,
        "session_id": None,
        "end_time": _time(end) if end > start else started,
        "latency_ms": None,
        "ttft_ms": None,
        "status": "error" if failed else None,
        "error_type": str(kept.get("error.type") or "error") if failed else None,
        "error_message": (message or None) if failed else None,
        "input_text": None,
        "output_text": None,
        "context": None,
        "reference": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "tokens_estimated": False,
        "cost_usd": None,
        "tags": [],
        "metadata": {},
        "truncated": False,
    }
    metadata: dict[str, Any] = {}
    if kind in ("llm", "embedding"):
        model = genai.get("gen_ai.response.model") or genai.get("gen_ai.request.model")
        span["model"] = str(model) if model else None
        span["prompt_tokens"] = _tokens(
            genai, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"
        )
        span["completion_tokens"] = _tokens(
            genai, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"
        )
        given, answer = _conversation(genai, events, read_event)
        users = [m["content"] for m in given if m["role"] == "user" and m["content"]]
        said = [m["content"] for m in answer if m["content"]]
        span["input_text"] = users[-1] if users else None
        span["output_text"] = "\n".join(said) or None
        if given:
            metadata["messages"] = given
    if kept:
        metadata["attributes"] = kept
    if metadata:
        # As JSON text, which the store takes as it is: orjson writes it several times faster
        # than the store's json.dumps on the writer thread, and the encodings' values (valid
        # UTF-8, 64-bit integers, string keys) are all it can write. NaN and infinities become
        # null.
        span["metadata"] = orjson.dumps(metadata).decode()
    return fill(span)
