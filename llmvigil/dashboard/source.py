"""Where the dashboard reads: the store itself, or the process that owns it.

A DuckDB file admits one process. While ``llmvigil up`` (or ``llmvigil
dashboard`` acting as one) holds it, the dashboard asks that owner over its
API (``POST /v1/dashboard/{query}``, answered in Arrow IPC) with the token
from the owner's listen file, and never opens the file. A PostgreSQL store
takes many readers: the dashboard opens it directly.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from llmvigil.config import Settings
from llmvigil.dashboard.queries import run_query
from llmvigil.dashboard.view import View
from llmvigil.errors import StoreError


class Source(Protocol):
    """What the pages read through and rate spans with."""

    description: str

    def query(self, name: str, view: View, **params: Any) -> pa.Table: ...

    def rate(self, span_id: str, trace_id: str | None, **feedback: Any) -> str: ...


class StoreSource:
    """Reads an open :class:`~llmvigil.storage.Store` in this process."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.description = store.display_url

    def query(self, name: str, view: View, **params: Any) -> pa.Table:
        return run_query(self.store, name, view, params)

    def rate(self, span_id: str, trace_id: str | None, **feedback: Any) -> str:
        return self.store.add_feedback(span_id=span_id, trace_id=trace_id, **feedback)


class OwnerSource:
    """Asks the owner of the store at ``url`` over its API."""

    def __init__(
        self,
        url: str,
        token: str,
        store: str,
        timeout_s: float = 30.0,
        listen_file: Path | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.listen_file = listen_file
        self.description = f"{store} (through llmvigil up)"

    def _post(self, path: str, body: dict[str, Any]) -> bytes:
        try:
            return self._send(path, body)
        except StoreError:
            # The owner restarted (a new port and token in its listen file): follow it once.
            from llmvigil.server.listen import running_owner

            owner = running_owner(self.listen_file) if self.listen_file else None
            if owner is None or (owner.url, owner.token) == (self.url, self.token):
                raise
            self.url, self.token = owner.url.rstrip("/"), owner.token
            return self._send(path, body)

    def _send(self, path: str, body: dict[str, Any]) -> bytes:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body, default=str).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise StoreError(
                f"the store's owner at {self.url} answered {exc.code}: {detail}"
            ) from None
        except OSError as exc:
            raise StoreError(
                f"the store's owner at {self.url} does not answer ({exc}); is llmvigil up "
                "still running?"
            ) from None

    def query(self, name: str, view: View, **params: Any) -> pa.Table:
        raw = self._post(f"/v1/dashboard/{name}", {"view": view.as_json(), "params": params})
        return pa.ipc.open_stream(raw).read_all()

    def rate(self, span_id: str, trace_id: str | None, **feedback: Any) -> str:
        body = {"span_id": span_id, "trace_id": trace_id, "feedback_id": uuid.uuid4().hex}
        body |= {k: v for k, v in feedback.items() if v is not None}
        return json.loads(self._post("/v1/feedback", body))["feedback_id"]


def open_source(settings: Settings) -> Source:
    """The owner's API when one holds the store, else the store opened here (PostgreSQL, or a
    DuckDB file no process holds)."""
    from llmvigil.server.listen import listen_path, running_owner
    from llmvigil.storage.store import open_store

    url = settings.store.url
    if url.startswith("duckdb"):
        where = listen_path(settings, url)
        owner = running_owner(where)
        if owner is not None:
            return OwnerSource(owner.url, owner.token, owner.store, listen_file=where)
    return StoreSource(open_store(url, create=False))
