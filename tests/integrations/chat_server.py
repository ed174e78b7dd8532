"""A real local HTTP server that speaks OpenAI's chat-completions protocol, for tests.

``POST /v1/chat/completions`` answers a ``chat.completion`` JSON object, or
with ``"stream": true`` Server-Sent Events (``data: {chunk}`` lines of
``chat.completion.chunk`` objects, a short pause between chunks, a final
usage chunk when ``stream_options.include_usage`` is true, then
``data: [DONE]``), as the OpenAI API does. It can be told to fail: an HTTP
error with OpenAI's error body, or an error event in the middle of a stream.

Example::

    with ChatServer(reply="Paris.") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        server.requests[-1]["body"]["model"]        # "gpt-4o-mini"
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from tests.local_http import LocalHTTPServer, QuietJSONHandler

DEFAULT_REPLY = "The capital of France is Paris, a city on the Seine."


class ChatServer(LocalHTTPServer):
    """An OpenAI-compatible chat-completions endpoint on ``127.0.0.1`` and a free port.

    ``reply`` is the assistant's answer (streamed word by word, ``chunk_delay``
    seconds apart); with ``"n": k`` in the request, answer ``i > 0`` is
    :meth:`answer` ``(i)``. ``usage`` is the token counts it reports.
    ``requests`` lists what was received (path, headers, JSON body). Set
    ``response_model`` to answer with another model name than the one
    requested, ``tool_calls`` (``[{"name": ..., "arguments": "{...}"}]``) to
    answer with tool calls instead of text, :meth:`fail` to answer errors,
    ``stream_error_after`` to break streams after that many words;
    :meth:`reset` undoes all of that.
    """

    def __init__(
        self,
        reply: str = DEFAULT_REPLY,
        *,
        chunk_delay: float = 0.01,
        prompt_tokens: int = 21,
        completion_tokens: int = 12,
    ) -> None:
        self.reply = reply
        self.chunk_delay = chunk_delay
        self.usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        self.requests: list[dict[str, Any]] = []
        self.response_model: str | None = None
        self.tool_calls: list[dict[str, str]] | None = None
        self.error: tuple[int, dict[str, Any]] | None = None
        self.stream_error_after: int | None = None
        self._counter = 0
        self._lock = threading.Lock()
        super().__init__()

    # -- behaviour ------------------------------------------------------------------

    def fail(
        self,
        status: int = 500,
        message: str = "The server had an error while processing your request.",
        type: str = "server_error",
        code: str | None = None,
    ) -> None:
        """Answer every request with HTTP ``status`` and an OpenAI error body (until reset)."""
        self.error = (
            status,
            {"error": {"message": message, "type": type, "param": None, "code": code}},
        )

    def reset(self) -> None:
        """Answer normally again and forget the requests received."""
        self.error = None
        self.stream_error_after = None
        self.response_model = None
        self.tool_calls = None
        self.requests.clear()

    def answer(self, index: int = 0) -> str:
        """The text of choice ``index``: ``reply`` for the first, a variant for the others."""
        return self.reply if index == 0 else f"Option {index + 1}: {self.reply}"

    @property
    def pieces(self) -> list[str]:
        """The reply as the stream sends it: one piece per word, with its trailing space."""
        return split_words(self.reply)

    def next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"chatcmpl-test{self._counter:06d}"


class _Handler(QuietJSONHandler):
    disable_nagle_algorithm = True  # each SSE chunk leaves at once
    timeout = 10

    def do_POST(self) -> None:
        chat: ChatServer = self.server.owner
        body = self.read_json()
        chat.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        request_id = f"req_{len(chat.requests):06d}"

        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, _error_body(f"Unknown path {self.path}", "invalid_request_error"))
            return
        if not isinstance(body, dict):
            self._json(400, _error_body("Invalid JSON body", "invalid_request_error"))
            return
        if chat.error is not None:
            status, error = chat.error
            self._json(status, error, request_id)
            return
        model = chat.response_model or body.get("model") or "unknown"
        n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
        if body.get("stream"):
            options = body.get("stream_options") or {}
            self._stream(chat, model, n, bool(options.get("include_usage")), request_id)
        else:
            self._json(200, _completion(chat, model, n), request_id)

    # -- answers ----------------------------------------------------------------------

    def _json(self, status: int, payload: dict[str, Any], request_id: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if request_id:
            self.send_header("x-request-id", request_id)
        self.end_headers()
        self.wfile.write(data)

    def _stream(
        self, chat: ChatServer, model: str, n: int, include_usage: bool, request_id: str
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", request_id)
        self.end_headers()
        base = {
            "id": chat.next_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_test",
        }
        if include_usage:
            base["usage"] = None

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        # The deltas of each choice, in order, as OpenAI sends them.
        streams: list[list[dict[str, Any]]] = []
        for index in range(n):
            if chat.tool_calls:
                deltas = [{"role": "assistant", "content": None}]
                for i, call in enumerate(chat.tool_calls):
                    opening = {"index": i, "id": f"call_{i}", "type": "function"}
                    opening["function"] = {"name": call["name"], "arguments": ""}
                    deltas.append({"tool_calls": [opening]})
                    for part in split_words(call["arguments"]):
                        deltas.append(
                            {"tool_calls": [{"index": i, "function": {"arguments": part}}]}
                        )
            else:
                deltas = [{"role": "assistant", "content": "", "refusal": None}]
                deltas += [{"content": piece} for piece in split_words(chat.answer(index))]
            streams.append(deltas)
        finish = "tool_calls" if chat.tool_calls else "stop"

        try:
            for step in range(max(len(deltas) for deltas in streams)):
                if step:
                    if chat.stream_error_after is not None and step > chat.stream_error_after:
                        self._event(_error_body("The stream broke.", "server_error"))
                        self._end_stream()
                        return
                    time.sleep(chat.chunk_delay)
                for index, deltas in enumerate(streams):
                    if step < len(deltas):
                        self._event(chunk(index, deltas[step]))
            time.sleep(chat.chunk_delay)
            for index in range(n):
                self._event(chunk(index, {}, finish))
            if include_usage:
                self._event({**base, "choices": [], "usage": dict(chat.usage)})
            self._send_chunk(b"data: [DONE]\n\n")
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError):  # the client closed the stream early
            self.close_connection = True

    def _event(self, payload: dict[str, Any]) -> None:
        self._send_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _completion(chat: ChatServer, model: str, n: int = 1) -> dict[str, Any]:
    choices = []
    for index in range(n):
        message: dict[str, Any] = {"role": "assistant", "content": chat.answer(index)}
        if chat.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": dict(call)}
                for i, call in enumerate(chat.tool_calls)
            ]
        message["refusal"] = None
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if chat.tool_calls else "stop",
            }
        )
    return {
        "id": chat.next_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_test",
        "choices": choices,
        "usage": dict(chat.usage),
    }


def split_words(text: str) -> list[str]:
    """``text`` in stream-sized pieces: one per word, with its trailing spaces."""
    return re.findall(r"\S+\s*", text)


def _error_body(message: str, type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


ChatServer.handler = _Handler
