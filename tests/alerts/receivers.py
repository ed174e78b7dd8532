"""Real receivers on 127.0.0.1 for the alert channels: a signed-webhook endpoint and a Slack
incoming webhook, each answering as scripted (200, 500, 429 with Retry-After, a slow reply)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import Any

from tests.local_http import LocalHTTPServer, QuietJSONHandler


class _Handler(QuietJSONHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, headers, answer = self.server.owner.receive(self.path, dict(self.headers), body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class Receiver(LocalHTTPServer):
    """Records every request; ``script`` holds the answers to give, in order, then 200s.

    An answer is a status code, ``(429, seconds)`` for a Retry-After, or ``("slow", s)``
    to wait ``s`` seconds before answering 200.
    """

    handler = _Handler

    def __init__(self, secret: str | None = None, ok_body: bytes = b"") -> None:
        super().__init__()
        self.secret = secret
        self.ok_body = ok_body
        self.script: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def receive(self, path: str, headers: dict[str, str], body: bytes):
        with self.lock:
            answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, tuple) and answer[0] == "slow":
            time.sleep(answer[1])
            answer = 200
        try:
            parsed: Any = json.loads(body)
        except ValueError:  # not JSON (an Arrow batch): kept as bytes
            parsed = body
        record = {"path": path, "headers": headers, "body": parsed, "answer": answer}
        if self.secret is not None:
            stamp = headers.get("X-Llmvigil-Timestamp", "")
            expected = (
                "sha256="
                + hmac.new(
                    self.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
                ).hexdigest()
            )
            record["signed"] = hmac.compare_digest(
                expected, headers.get("X-Llmvigil-Signature", "")
            )
        with self.lock:
            self.requests.append(record)
        if isinstance(answer, tuple):  # (429, seconds)
            return answer[0], {"Retry-After": str(answer[1])}, b"rate limited"
        if answer != 200:
            return answer, {}, b"server error"
        return 200, {"Content-Type": "text/plain"}, self.ok_body

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies of requests answered 200."""
        with self.lock:
            return [r["body"] for r in self.requests if r["answer"] == 200]
