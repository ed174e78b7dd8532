"""Storage: spans, scores and feedback in DuckDB (default) or PostgreSQL."""

from llmvigil.storage.metrics import MetricRow
from llmvigil.storage.store import Store, open_store

__all__ = ["MetricRow", "Store", "open_store"]
