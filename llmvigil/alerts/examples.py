"""The spans that show what an alert is about: the worst of its window, for the message.

For a score rule, the spans of the group with the lowest scores (or the
highest, for a rule that fires above its threshold, such as toxicity); for
a span column, the largest values (or smallest); for errors, the error
spans; otherwise the latest spans. Prompts and responses are cut to
``chars`` characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from llmvigil.alerts.metrics import SPAN_COLUMNS, newest_version_query, parse_metric
from llmvigil.config import AlertRule
from llmvigil.storage import schema


def _upward(rule: AlertRule) -> bool:
    """Whether the rule fires on high values (then the highest values are the worst)."""
    if rule.op == "change_pct":
        return rule.threshold >= 0
    return rule.op in (">", ">=")


def breaching_query(
    rule: AlertRule,
    group: Mapping[str, str | None],
    start: datetime,
    end: datetime,
    failed_only: bool = False,
) -> sa.Select[Any]:
    """The window's spans of ``group`` ordered worst first, with the value that breached.

    ``failed_only``: for a score rule, only the spans that failed the evaluator (what a
    retraining hook is handed).
    """
    metric = parse_metric(rule.metric)
    s = schema.spans.c
    where = dict(rule.where)
    filters = [s.start_time >= start, s.start_time < end, s.kind == where.pop("kind", "llm")]
    filters += [s[f] == v for f, v in {**where, **group}.items()]
    columns = [s.span_id, s.trace_id, s.input_text, s.output_text, s.context, s.reference]
    upward = _upward(rule)
    if metric.source == "scores":
        e = schema.evaluations.c
        value = e.score
        query = (
            sa.select(*columns, value.label("value"))
            .select_from(schema.spans.join(schema.evaluations, e.span_id == s.span_id))
            .where(
                *filters,
                e.evaluator == metric.column,
                e.score.is_not(None),
                e.evaluator_version == newest_version_query(str(metric.column)),
            )
        )
        if metric.aggregate == "fail_rate" or failed_only:
            query = query.where(e.passed.is_(False))
            upward = False  # the failed spans, lowest score first
    elif metric.source == "spans" and metric.column is not None:
        value = SPAN_COLUMNS[metric.column](s)
        query = sa.select(*columns, value.label("value")).where(*filters, value.is_not(None))
    elif metric.aggregate in ("errors", "error_rate"):
        query = sa.select(*columns, sa.null().label("value")).where(*filters, s.status == "error")
        value, upward = s.start_time, True
    else:
        query = sa.select(*columns, sa.null().label("value")).where(*filters)
        value, upward = s.start_time, True
    return query.order_by(value.desc() if upward else value.asc(), s.span_id)


def breaching_spans(
    store, rule: AlertRule, group: Mapping[str, str | None], at: datetime, limit: int = 5,
    chars: int = 300,
) -> list[dict[str, Any]]:  # fmt: skip
    """Up to ``limit`` example spans for a notification about ``rule`` and ``group``."""
    from llmvigil.alerts.check import seconds

    start = at - timedelta(seconds=seconds(rule.window))
    query = breaching_query(rule, group, start, at).limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "span_id": row.span_id,
            "trace_id": row.trace_id,
            "input": (row.input_text or "")[:chars],
            "output": (row.output_text or "")[:chars],
            "value": None if row.value is None else float(row.value),
        }
        for row in rows
    ]
