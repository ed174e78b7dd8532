"""Build realistic span rows for storage tests."""

from __future__ import annotations

import json
import math
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from llmvigil.storage.schema import SPAN_ARROW_SCHEMA, SPAN_JSON_COLUMNS

#: The Arrow schema of a batch as the collector writes it (the store stamps ``ingested_at``).
BATCH_SCHEMA = SPAN_ARROW_SCHEMA.remove(SPAN_ARROW_SCHEMA.get_field_index("ingested_at"))

BASE = datetime(2026, 11, 24, 9, 0, 0)


def make_span(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """One complete span row; ``i`` spreads start times over seconds."""
    start = BASE + timedelta(seconds=i)
    latency = 100.0 + i
    row = {
        "span_id": uuid.uuid4().hex,
        "trace_id": uuid.uuid4().hex,
        "parent_id": None,
        "name": "answer",
        "kind": "llm",
        "app": "support",
        "environment": "test",
        "model": "gpt-4o-mini",
        "prompt_version": "v1",
        "user_id": f"u{i % 3}",
        "session_id": "s1",
        "start_time": start,
        "end_time": start + timedelta(milliseconds=latency),
        "latency_ms": latency,
        "ttft_ms": None,
        "status": "ok",
        "error_type": None,
        "error_message": None,
        "input_text": f"question {i}?",
        "output_text": f"answer {i}.",
        "context": ["passage one", "passage two"],
        "reference": None,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "total_tokens": 30,
        "tokens_estimated": False,
        "cost_usd": 0.001,
        "bytes_in": 12,
        "bytes_out": 9,
        "tags": ["a"],
        "metadata": {"k": i},
        "truncated": False,
    }
    row.update(overrides)
    return row


def segment_table(rows: list[dict]) -> pa.Table:
    """Rows as a segment holds them: JSON columns as text."""
    encoded = [
        {k: json.dumps(v) if k in SPAN_JSON_COLUMNS and not isinstance(v, str) else v
         for k, v in row.items()}
        for row in rows
    ]  # fmt: skip
    return pa.Table.from_pylist(encoded, schema=BATCH_SCHEMA)


def with_raw_bytes(table: pa.Table, column: str, row: int, raw: bytes) -> pa.Table:
    """``table`` with the bytes of one string value replaced by ``raw`` (maybe not UTF-8)."""
    values = [v.encode() if v is not None else None for v in table.column(column).to_pylist()]
    values[row] = raw
    binary = pa.array(values, pa.binary())
    as_string = pa.Array.from_buffers(pa.string(), len(binary), binary.buffers())
    return table.set_column(table.schema.get_field_index(column), column, as_string)


#: spread()'s spans start in the days before this.
ROLLUP_END = datetime(2026, 11, 30, 0, 0)


def spread(count: int, seed: int = 1, days: float = 3.0) -> list[dict]:
    """Spans of two apps (and none), three models, two kinds, some errors and missing
    tokens, latencies from 1 ms to minutes, over ``days`` days before ROLLUP_END."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        start = ROLLUP_END - timedelta(seconds=rng.uniform(0, days * 86400))
        latency = math.exp(rng.uniform(0, math.log(600_000)))
        tokens = None if i % 11 == 0 else rng.randrange(5, 900)
        rows.append(
            make_span(
                i,
                app=(None, "support", "search")[i % 3],
                model=("m1", "m2", "m3")[i % 5 % 3],
                kind="tool" if i % 7 == 0 else "llm",
                prompt_version=("v1", "v2")[i % 2],
                status="error" if i % 13 == 0 else "ok",
                start_time=start,
                end_time=start + timedelta(milliseconds=latency),
                latency_ms=latency,
                prompt_tokens=tokens,
                completion_tokens=None if tokens is None else tokens // 2,
                total_tokens=None if tokens is None else tokens + tokens // 2,
                cost_usd=None if i % 17 == 0 else rng.uniform(0, 0.01),
                bytes_in=rng.randrange(0, 5000),
                bytes_out=rng.randrange(0, 5000),
            )
        )
    return rows


class Clock:
    """The store's clock (what stamps ``ingested_at``, ``evaluated_at`` and a refresh's now),
    moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 60) -> None:
        self.now += timedelta(seconds=seconds)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Clock:
        monkeypatch.setattr("llmvigil.storage.store.utc_now", self)
        return self
