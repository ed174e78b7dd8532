"""Storage: spans, scores and feedback in DuckDB (default) or PostgreSQL.

The names below load on first use: the store needs SQLAlchemy, pyarrow and numpy,
which an app that only records calls should not import on its thread at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmvigil.storage.metrics import MetricRow
    from llmvigil.storage.store import Store, open_store

_LAZY = {
    "MetricRow": "llmvigil.storage.metrics",
    "Store": "llmvigil.storage.store",
    "open_store": "llmvigil.storage.store",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'llmvigil.storage' has no attribute {name!r}")


__all__ = ["MetricRow", "Store", "open_store"]
