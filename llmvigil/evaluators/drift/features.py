"""The values of each drift feature in one window, read from the store as columns.

One query per window reads the span columns (latency, lengths, tokens, cost,
status, model) and one the evaluators' scores; on DuckDB both come back as
Arrow, so 100,000 spans never become Python objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from llmvigil.config import DRIFT_FEATURES
from llmvigil.storage import schema

#: Features read straight from a span column (or its length), by name.
NUMERIC_COLUMNS = DRIFT_FEATURES[: DRIFT_FEATURES.index("cost_usd") + 1]


def span_filters(
    start: datetime, end: datetime, filters: Mapping[str, str | None]
) -> list[sa.ColumnElement[bool]]:
    """SQL conditions for the spans that started in ``[start, end)`` and match ``filters``."""
    s = schema.spans.c
    conditions: list[sa.ColumnElement[bool]] = [s.start_time >= start, s.start_time < end]
    conditions.extend(s[name] == value for name, value in filters.items() if value is not None)
    return conditions


def window_columns(store, conditions: list[sa.ColumnElement[bool]]) -> pa.Table:
    """One row per matching span: the numeric features, ``is_error`` and ``model``."""
    s = schema.spans.c
    query = sa.select(
        s.latency_ms,
        s.ttft_ms,
        sa.func.length(s.input_text).label("input_length"),
        sa.func.length(s.output_text).label("output_length"),
        s.prompt_tokens,
        s.completion_tokens,
        s.cost_usd,
        sa.case((s.status == "error", 1), else_=0).label("is_error"),
        s.model,
    ).where(*conditions)
    return store.fetch_arrow(query)


def window_scores(
    store, conditions: list[sa.ColumnElement[bool]]
) -> dict[tuple[str, str], np.ndarray]:
    """Scores of the matching spans by (evaluator, version); unscored rows left out."""
    e, s = schema.evaluations, schema.spans
    query = (
        sa.select(e.c.evaluator, e.c.evaluator_version, e.c.score)
        .select_from(e.join(s, s.c.span_id == e.c.span_id))
        .where(*conditions, e.c.score.is_not(None))
    )
    grouped = (
        store.fetch_arrow(query)
        .group_by(["evaluator", "evaluator_version"])
        .aggregate([("score", "list")])
    )
    return {
        (name, version): np.asarray(scores, dtype=np.float64)
        for name, version, scores in zip(
            grouped["evaluator"].to_pylist(),
            grouped["evaluator_version"].to_pylist(),
            grouped["score_list"].to_pylist(),
            strict=True,
        )
    }


def numbers(table: pa.Table, column: str) -> np.ndarray:
    """A column's non-null values as float64."""
    values = table[column].drop_null()
    return values.to_numpy().astype(np.float64) if len(values) else np.zeros(0)


def labels(table: pa.Table, column: str) -> np.ndarray:
    """A category column as strings, a missing value as ``"(none)"``."""
    return np.asarray(table[column].fill_null("(none)").to_pylist(), dtype=object)


def pick_versions(
    reference: Mapping[tuple[str, str], np.ndarray], current: Mapping[tuple[str, str], np.ndarray]
) -> dict[str, tuple[str | None, np.ndarray, np.ndarray]]:
    """Per evaluator, the version to compare and both windows' scores.

    Two versions of an evaluator score differently, so they are never mixed: the one
    compared is the version with the most current scores among those present in both
    windows. An evaluator without such a version gets ``None`` and whatever each
    window has (to say which window lacks scores).
    """
    names = sorted({name for name, _ in (*reference, *current)})
    out: dict[str, tuple[str | None, np.ndarray, np.ndarray]] = {}
    empty = np.zeros(0)
    for name in names:
        shared = [v for (n, v) in current if n == name and (n, v) in reference]
        if shared:
            version = max(shared, key=lambda v: len(current[(name, v)]))
            out[name] = (version, reference[(name, version)], current[(name, version)])
        else:
            ref = [a for (n, _), a in reference.items() if n == name]
            cur = [a for (n, _), a in current.items() if n == name]
            out[name] = (
                None,
                np.concatenate(ref) if ref else empty,
                np.concatenate(cur) if cur else empty,
            )
    return out
