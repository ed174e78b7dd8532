"""A real HTTP server on 127.0.0.1 and a free port, served from a thread: the base of the
fake third-party endpoints the tests talk to (chat completions, an LLM judge)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


class QuietJSONHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and reads JSON request bodies."""

    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like the real APIs
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # quiet in test output
        pass

    def read_json(self) -> Any:
        """The request body as JSON, or None when it is not valid JSON."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None


class LocalHTTPServer:
    """Subclasses set ``handler`` (whose requests reach this object as ``self.server.owner``)
    and add their behaviour; ``start``/``stop`` or ``with`` run it."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError(f"the {type(self).__name__} is not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        """Listen on a free port and serve from a background thread."""
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        httpd.daemon_threads = True
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
