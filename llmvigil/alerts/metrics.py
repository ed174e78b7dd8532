"""What an alert rule measures: one SQL aggregate over the rule's window, per group.

Metric names (:func:`parse_metric`):

- over model calls: ``calls``, ``errors``, ``error_rate``, and
  ``<column>.<aggregate>`` for the columns ``latency_ms``, ``ttft_ms``,
  ``prompt_tokens``, ``completion_tokens``, ``tokens``, ``cost_usd``,
  ``input_length``, ``output_length`` with the aggregates ``mean``, ``min``,
  ``max``, ``sum``, ``p50``, ``p90``, ``p95``, ``p99``;
- over scores: ``<evaluator>.<aggregate>`` with ``mean``, ``min``, ``max``,
  ``p10``, ``p50`` and ``fail_rate`` (the share of scored spans that did not
  pass), for any evaluator, built in or registered;
- over feedback: ``feedback.mean``, ``feedback.count``;
- over drift: ``drift.share`` and ``drift.<feature>`` (1 when the latest run in
  the window flagged the feature, 0 when it did not).

Each measure comes with its sample count (spans, scores, feedback rows, or
features tested), which a rule's ``min_samples`` is held against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from llmvigil.storage import schema

#: Span columns a rule can aggregate, by the name it uses.
SPAN_COLUMNS = {
    "latency_ms": lambda s: s.latency_ms,
    "ttft_ms": lambda s: s.ttft_ms,
    "prompt_tokens": lambda s: s.prompt_tokens,
    "completion_tokens": lambda s: s.completion_tokens,
    "tokens": lambda s: s.total_tokens,
    "cost_usd": lambda s: s.cost_usd,
    "input_length": lambda s: sa.func.length(s.input_text),
    "output_length": lambda s: sa.func.length(s.output_text),
}
SPAN_AGGREGATES = ("mean", "min", "max", "sum", "p50", "p90", "p95", "p99")
SCORE_AGGREGATES = ("mean", "min", "max", "p10", "p50", "fail_rate")
COUNTS = ("calls", "errors", "error_rate")


@dataclass(frozen=True, slots=True)
class Metric:
    """A parsed metric name: where its values come from and how they are aggregated."""

    name: str
    source: str  # "spans", "scores", "feedback", "drift"
    column: str | None
    aggregate: str


@dataclass(frozen=True, slots=True)
class Measure:
    """One group's value over a window, and how many samples it rests on."""

    value: float | None
    samples: int


def parse_metric(name: str) -> Metric:
    """The :class:`Metric` a rule's ``metric`` names; ``ValueError`` listing the valid names."""
    if name in COUNTS:
        return Metric(name, "spans", None, name)
    if name == "collector.dropped":
        raise ValueError(
            "collector.dropped comes with the long-running `llmvigil up`, which receives the "
            "collectors' counts; the store does not hold them yet"
        )
    if name.startswith("drift."):
        from llmvigil.config import DRIFT_FEATURES

        feature = name.removeprefix("drift.")
        if feature == "share":
            return Metric(name, "drift", None, "share")
        if feature in DRIFT_FEATURES or feature.startswith("score."):
            return Metric(name, "drift", feature, "flagged")
        raise ValueError(
            f"{name!r}: drift metrics are drift.share and drift.<feature> "
            f"({', '.join(DRIFT_FEATURES)}, score.<evaluator>)"
        )
    head, _, tail = name.rpartition(".")
    if head == "feedback":
        if tail in ("mean", "count"):
            return Metric(name, "feedback", None, tail)
        raise ValueError(f"{name!r}: feedback metrics are feedback.mean and feedback.count")
    if head in SPAN_COLUMNS:
        if tail in SPAN_AGGREGATES:
            return Metric(name, "spans", head, tail)
        raise ValueError(
            f"{name!r}: {head} takes one of {', '.join(SPAN_AGGREGATES)} ({head}.p95, for one)"
        )
    if head and head.replace("_", "").isalnum() and tail in SCORE_AGGREGATES:
        return Metric(name, "scores", head, tail)
    raise ValueError(
        f"{name!r} is not a metric; use {', '.join(COUNTS)}, <column>.<aggregate> "
        f"(columns {', '.join(SPAN_COLUMNS)}; aggregates {', '.join(SPAN_AGGREGATES)}), "
        f"<evaluator>.<{'|'.join(SCORE_AGGREGATES)}>, feedback.mean, feedback.count, "
        "drift.share or drift.<feature>"
    )


def _aggregate(values: sa.ColumnElement[Any], aggregate: str) -> sa.ColumnElement[Any]:
    if aggregate == "mean":
        return sa.func.avg(values)
    if aggregate in ("min", "max", "sum"):
        return getattr(sa.func, aggregate)(values)
    if aggregate.startswith("p"):
        return sa.func.percentile_cont(int(aggregate[1:]) / 100).within_group(values)
    raise AssertionError(aggregate)


def measure(
    store,
    metric: Metric,
    start: datetime,
    end: datetime,
    group_by: Sequence[str] = (),
    where: Mapping[str, str] | None = None,
) -> dict[tuple[str | None, ...], Measure]:
    """Each group's value of ``metric`` over the spans that started in ``[start, end)``.

    Groups are tuples of the ``group_by`` fields' values (``()`` with none). Model
    calls only (``kind = "llm"``) unless ``where`` names another ``kind``.
    """
    where = dict(where or {})
    if metric.source == "drift":
        return _drift(store, metric, start, end, group_by, where)
    s = schema.spans.c
    filters: list[sa.ColumnElement[bool]] = [s.start_time >= start, s.start_time < end]
    filters.append(s.kind == where.pop("kind", "llm"))
    filters += [s[field] == value for field, value in where.items()]
    groups = [s[field] for field in group_by]
    if metric.source == "spans":
        source = schema.spans
        value = _span_value(metric, s)
        is_error = sa.case((s.status == "error", 1.0), else_=0.0)
        if metric.aggregate == "errors":
            value = sa.func.sum(is_error)
        elif metric.aggregate == "error_rate":
            value = sa.func.avg(is_error)
        samples = (
            sa.func.count(SPAN_COLUMNS[metric.column](s))
            if metric.column is not None
            else sa.func.count()
        )
    elif metric.source == "scores":
        e = schema.evaluations.c
        source = schema.spans.join(schema.evaluations, e.span_id == s.span_id)
        filters += [
            e.evaluator == metric.column,
            e.score.is_not(None),  # not sampled, or not scorable: no verdict either way
            e.evaluator_version == _newest_version(metric.column),
        ]
        if metric.aggregate == "fail_rate":
            value = sa.func.avg(sa.case((e.passed.is_(False), 1.0), else_=0.0))
        else:
            value = _aggregate(e.score, metric.aggregate)
        samples = sa.func.count(e.score)
    else:  # feedback on the window's spans
        f = schema.feedback.c
        source = schema.spans.join(schema.feedback, f.span_id == s.span_id)
        filters.append(f.score.is_not(None))
        value = sa.func.avg(f.score) if metric.aggregate == "mean" else sa.func.count(f.score)
        samples = sa.func.count(f.score)
    query = (
        sa.select(*groups, value.label("value"), samples.label("samples"))
        .select_from(source)
        .where(*filters)
    )
    if groups:
        query = query.group_by(*groups)
    out: dict[tuple[str | None, ...], Measure] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            key = tuple(row[: len(groups)])
            count = int(row.samples or 0)
            value = row.value
            out[key] = Measure(None if value is None or not count else float(value), count)
    return out


def _span_value(metric: Metric, s: Any) -> sa.ColumnElement[Any]:
    if metric.column is None:
        return sa.func.count()
    return _aggregate(SPAN_COLUMNS[metric.column](s), metric.aggregate)


def _newest_version(evaluator: str) -> sa.ScalarSelect[Any]:
    """The version of ``evaluator`` that scored last: two versions score differently."""
    e = schema.evaluations.c
    return (
        sa.select(e.evaluator_version)
        .where(e.evaluator == evaluator)
        .order_by(e.evaluated_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def _drift(
    store,
    metric: Metric,
    start: datetime,
    end: datetime,
    group_by: Sequence[str],
    where: Mapping[str, str],
) -> dict[tuple[str | None, ...], Measure]:
    """The latest drift run of each filter computed in ``(start, end]``."""
    d = schema.drift_results.c
    filters = [d.computed_at > start, d.computed_at <= end]
    filters += [d[field] == value for field, value in where.items() if field in d]
    query = sa.select(
        d.run_id, d.computed_at, d.feature, d.drifted, d.skipped, *(d[g] for g in group_by)
    ).where(*filters)
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(d.computed_at)).all()
    runs: dict[tuple, dict[str, Any]] = {}
    for row in rows:  # oldest first: a later run of the same group replaces an earlier one
        key = tuple(getattr(row, g) for g in group_by)
        run = runs.get(key)
        if run is None or run["run_id"] != row.run_id:
            run = runs[key] = {"run_id": row.run_id, "at": row.computed_at, "features": {}}
        if row.run_id == run["run_id"] and not row.skipped:
            run["features"][row.feature] = bool(row.drifted)
    out: dict[tuple[str | None, ...], Measure] = {}
    for key, run in runs.items():
        tested = run["features"]
        if metric.column is None:
            value = sum(tested.values()) / len(tested) if tested else None
            out[key] = Measure(value, len(tested))
        elif metric.column in tested:
            out[key] = Measure(float(tested[metric.column]), 1)
        else:
            out[key] = Measure(None, 0)
    return out
