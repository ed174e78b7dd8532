"""One process at a time for a job, across every process on a PostgreSQL store.

``llmvigil up`` processes started on several hosts over one PostgreSQL
database each schedule drift, alerts and retention; running one of those
twice at the same moment would record a drift run twice or send an alert
twice. A session-level advisory lock per job lets one process run it and the
others skip that turn. DuckDB has one owning process: there the lock is
always granted.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa


def lock_key(name: str) -> int:
    """The advisory lock number of job ``name`` (a stable signed 64-bit integer)."""
    digest = hashlib.blake2b(f"llmvigil:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def exclusive(store: Any, name: str) -> Iterator[bool]:
    """True inside if this process holds job ``name``'s lock, False if another one does.

    The lock is held on a connection of its own for the whole block and let go
    at its end (or when the connection dies with its process).
    """
    if getattr(store, "backend", None) != "postgresql":
        yield True
        return
    key = lock_key(name)
    with store.engine.connect() as conn:
        held = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
