"""A real local HTTP server that plays an OpenAI-compatible LLM judge for ragas, for tests.

It listens on ``127.0.0.1`` and a free port and answers the two endpoints
ragas' collections metrics call through the ``openai`` client:

``POST /v1/chat/completions``
    ragas (through instructor's JSON mode, ``response_format: json_object``)
    sends one user message holding its prompt: an instruction, a JSON schema,
    examples, then ``Now perform the same with the following input`` /
    ``input: {...}`` / ``Output:``. The server reads that final input object and
    tells the three prompts apart by its keys:

    * ``{"question", "answer"}``: faithfulness' statement generator. Answer
      ``{"statements": [...]}``: the answer's sentences.
    * ``{"context", "statements"}``: faithfulness' verdicts. Answer
      ``{"statements": [{"statement", "reason", "verdict"}]}``: verdict 1 when
      every content word of the statement (lower-cased words and numbers, minus
      a short stop-word list) occurs in the context, else 0, the reason naming
      the missing words.
    * ``{"response"}``: answer relevancy's question generator (it sees only
      the response, never the original question). Answer ``{"question":
      "What about <content words of the response>?", "noncommittal": 0|1}``,
      noncommittal 1 when the response contains a hedge such as "I don't know".
      An answer that shares content words with the user's question thus yields
      a generated question close to it in the embedding below, an unrelated
      answer one orthogonal to it.

``POST /v1/embeddings``
    A hashed bag of content words, L2-normalised, ``DIMENSIONS`` wide (a text
    without content words gets a fixed vector of its own). Cosine similarity
    is then the overlap of content words. Answers floats, or base64 float32
    when the request asks for ``encoding_format: base64`` (the openai client's
    default).

It can be made to misbehave, for all requests (:attr:`JudgeServer.mode`) or
for those whose text contains a marker (:data:`FAIL_MARKER`,
:data:`HANG_MARKER`, :data:`MALFORMED_MARKER`): ``"error"`` answers HTTP 500
with OpenAI's error body, ``"hang"`` waits ``hang_s`` seconds (or until
:meth:`JudgeServer.stop`) before answering, ``"malformed"`` answers valid JSON
of the wrong shape.

Example::

    with JudgeServer() as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test")
        ...
        server.paths()          # ["/v1/chat/completions", ...]
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
from typing import Any, Literal

from tests.local_http import LocalHTTPServer, QuietJSONHandler

Mode = Literal["ok", "error", "hang", "malformed"]

DIMENSIONS = 512
FAIL_MARKER = "[[judge:error]]"
HANG_MARKER = "[[judge:hang]]"
MALFORMED_MARKER = "[[judge:malformed]]"

#: What separates ragas' examples from the input to judge, in every prompt it sends.
INPUT_HEADER = "Now perform the same with the following input"

STOP_WORDS = frozenset(
    {
        "a",
        "about",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    }
)
HEDGES = ("i don't know", "i do not know", "i'm not sure", "i am not sure", "it depends")

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def content_words(text: str) -> list[str]:
    """Lower-cased words and numbers of ``text``, without stop words, in order."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def split_statements(answer: str) -> list[str]:
    """The fake judge's statements: the answer's sentences."""
    return [s.strip() for s in _SENTENCE_END.split(answer.strip()) if s.strip()]


def verdict(statement: str, context: str) -> tuple[int, str]:
    """1 if every content word of ``statement`` is in ``context``, with the reason."""
    known = set(content_words(context))
    missing = [w for w in content_words(statement) if w not in known]
    if missing:
        return 0, f"the context does not mention: {', '.join(missing)}"
    return 1, "every word of the statement is in the context"


def generated_question(response: str) -> dict[str, Any]:
    """The fake judge's relevancy answer for ``response``."""
    words = content_words(response)
    noncommittal = int(any(h in response.lower().replace("’", "'") for h in HEDGES))
    return {"question": f"What about {' '.join(words) or 'nothing'}?", "noncommittal": noncommittal}


def embed(text: str) -> list[float]:
    """A deterministic unit vector: hashed bag of the content words of ``text``."""
    vector = [0.0] * DIMENSIONS
    words = content_words(text) or ["<empty>"]
    for word in words:
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "little") % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def judge_reply(prompt: str) -> dict[str, Any]:
    """The JSON object the fake judge answers to one of ragas' prompts."""
    data = prompt_input(prompt)
    keys = set(data)
    if keys == {"question", "answer"}:
        return {"statements": split_statements(data["answer"])}
    if keys == {"context", "statements"}:
        verdicts = []
        for statement in data["statements"]:
            value, reason = verdict(statement, data["context"])
            verdicts.append({"statement": statement, "reason": reason, "verdict": value})
        return {"statements": verdicts}
    if keys == {"response"}:
        return generated_question(data["response"])
    raise ValueError(f"no fake answer for a prompt whose input has the keys {sorted(keys)}")


def prompt_input(prompt: str) -> dict[str, Any]:
    """The input object at the end of a ragas prompt (``input: {...}`` then ``Output:``)."""
    if INPUT_HEADER not in prompt:
        raise ValueError("not a ragas prompt: no input section")
    tail = prompt.rsplit(INPUT_HEADER, 1)[1]
    start = tail.index("{")
    end = tail.rindex("}") + 1
    return json.loads(tail[start:end])


class JudgeServer(LocalHTTPServer):
    """The fake judge on ``127.0.0.1`` and a free port; see the module docstring.

    ``requests`` lists what was received (path, headers, JSON body, the client
    address). ``mode`` sets how every request is answered; ``hang_s`` is how
    long a hang lasts. :meth:`reset` restores ``"ok"`` and forgets requests.
    """

    def __init__(self, *, hang_s: float = 30.0) -> None:
        self.mode: Mode = "ok"
        self.hang_s = hang_s
        self.requests: list[dict[str, Any]] = []
        self._released = threading.Event()
        self._counter = 0
        self._lock = threading.Lock()
        super().__init__()

    def start(self) -> JudgeServer:
        self._released.clear()
        return super().start()

    def stop(self) -> None:
        """Release hanging requests, stop serving and free the port."""
        self._released.set()
        super().stop()

    def reset(self) -> None:
        """Answer normally again, release hanging requests and forget the requests received."""
        self.mode = "ok"
        released, self._released = self._released, threading.Event()
        released.set()
        with self._lock:
            self.requests.clear()

    def paths(self) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests]

    def record(self, entry: dict[str, Any]) -> int:
        with self._lock:
            self.requests.append(entry)
            self._counter += 1
            return self._counter

    def hang(self) -> None:
        """Wait ``hang_s`` seconds, or until :meth:`reset` or :meth:`stop`."""
        self._released.wait(self.hang_s)


class _Handler(QuietJSONHandler):
    timeout = 60

    def do_POST(self) -> None:
        judge: JudgeServer = self.server.owner
        body = self.read_json()
        number = judge.record(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "client": self.client_address[0],
            }
        )
        if not isinstance(body, dict):
            self._json(400, _error("Invalid JSON body", "invalid_request_error"))
            return

        text = json.dumps(body)
        mode = judge.mode
        for marker, marked in (
            (FAIL_MARKER, "error"),
            (HANG_MARKER, "hang"),
            (MALFORMED_MARKER, "malformed"),
        ):
            if marker in text:
                mode = marked
        if mode == "hang":
            judge.hang()
            mode = "ok"
        if mode == "error":
            self._json(500, _error("The judge had an error (test mode).", "server_error"))
            return

        path = self.path.rstrip("/")
        try:
            if path == "/v1/chat/completions":
                self._json(200, _completion(body, number, malformed=mode == "malformed"))
            elif path == "/v1/embeddings":
                self._json(200, _embeddings(body))
            else:
                self._json(404, _error(f"Unknown path {self.path}", "invalid_request_error"))
        except (KeyError, TypeError, ValueError) as exc:
            self._json(400, _error(f"{type(exc).__name__}: {exc}", "invalid_request_error"))

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            self.close_connection = True


def _completion(body: dict[str, Any], number: int, *, malformed: bool) -> dict[str, Any]:
    prompt = next(
        m["content"]
        for m in reversed(body["messages"])
        if m.get("role") == "user" and isinstance(m.get("content"), str)
    )
    reply = {"unexpected": "shape"} if malformed else judge_reply(prompt)
    content = json.dumps(reply)
    prompt_tokens = len(prompt.split())
    completion_tokens = len(content.split())
    return {
        "id": f"chatcmpl-judge{number:06d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "unknown"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    texts = body["input"]
    if isinstance(texts, str):
        texts = [texts]
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector: Any = embed(text)
        if as_base64:
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(len(t.split()) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "unknown"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _error(message: str, type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": None, "code": None}}


JudgeServer.handler = _Handler
