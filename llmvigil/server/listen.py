"""The listen file: where a running ``llmvigil up`` listens, and the token local commands use.

A DuckDB store admits one process, so commands run while the owner holds it
ask the owner over HTTP instead (ARCHITECTURE: "Commands while the owner
runs"). The owner writes its address, pid and a fresh token into a small JSON
file beside the store (``<store>.listen.json``; for PostgreSQL or an
in-memory store, ``listen.json`` beside the spool folder), readable by its
user only, and removes it on a clean exit. A file left by a killed owner is
recognised (its process is gone, or its address does not answer) and replaced.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from llmvigil.config import Settings
from llmvigil.errors import StoreError
from llmvigil.storage.store import duckdb_database, is_in_memory


@dataclass(frozen=True)
class Listening:
    """What the listen file holds."""

    url: str
    pid: int
    token: str
    store: str
    started_at: str


def listen_path(settings: Settings, store_url: str | None = None) -> Path:
    """The listen file of the store ``store_url`` (default: ``[store] url``)."""
    url = store_url or settings.store.url
    if url.startswith("duckdb") and not is_in_memory(url):
        database = Path(duckdb_database(url)).resolve()
        return database.with_name(database.name + ".listen.json")
    return Path(settings.collector.spool_dir).resolve().parent / "listen.json"


def read_listening(path: Path) -> Listening | None:
    """The owner's entry, or None when there is no file or it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Listening(**data)
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether an llmvigil owner answers ``/healthz`` at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def running_owner(path: Path) -> Listening | None:
    """The owner the listen file names if it still runs and answers, else None."""
    entry = read_listening(path)
    if entry is None or not _alive(entry.pid) or not answers(entry.url):
        return None
    return entry


def claim(path: Path, url: str, store: str) -> Listening:
    """Write this process's listen file (mode 0600); refuse if a live owner holds it."""
    current = running_owner(path)
    if current is not None and current.pid != os.getpid():
        raise StoreError(
            f"llmvigil up already runs for this store (pid {current.pid}, {current.url}); "
            "stop it first, or point this one at another store with --store"
        )
    entry = Listening(
        url=url,
        pid=os.getpid(),
        token=secrets.token_urlsafe(32),
        store=store,
        started_at=datetime.now(UTC).isoformat(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(entry), handle)
    os.replace(temporary, path)
    return entry


def release(path: Path, entry: Listening) -> None:
    """Remove the listen file if it is still this owner's."""
    current = read_listening(path)
    if current is not None and current.token == entry.token:
        path.unlink(missing_ok=True)
