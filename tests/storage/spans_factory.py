"""Build realistic span rows for storage tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

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
