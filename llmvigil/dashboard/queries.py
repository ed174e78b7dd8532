"""Every read the dashboard makes: a parameterised SQL aggregate or a limited, paged query.

Each query is a function ``(store, view, **params) -> pyarrow.Table`` registered
in :data:`QUERIES` by name. The dashboard runs them on the store it opened, or
sends the name, view and params to the process that owns the store
(``POST /v1/dashboard/{name}``), which runs the same function and answers in
Arrow IPC. No query reads more rows than it returns, except the aggregates,
which the database computes: no page pulls spans into pandas.

Scores over a range (the quality page) read ``score_rollups`` (5-minute
buckets, refreshed at most every :data:`ROLLUP_REFRESH_S` before such a
query); the worst spans read ``evaluations`` by the span's start time they
carry. Traffic over a range longer than :data:`ROLLUP_FROM_S` (the overview's
totals and series, the sidebar's options, and the health table at a grain of
whole 5 minutes) reads ``span_rollups`` with the raw spans they do not hold yet
(:func:`llmvigil.storage.rollups.span_traffic`): the same counts, sums,
minimums and maximums as the raw aggregate, latency percentiles within 4.5%.
Shorter ranges and finer grains aggregate spans directly, percentiles exact.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import typing
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from pydantic import ConfigDict, TypeAdapter, ValidationError

from llmvigil.dashboard.view import FILTERS, View, bucket_seconds
from llmvigil.errors import ConfigError
from llmvigil.storage import schema
from llmvigil.storage.metrics import parse_grain
from llmvigil.storage.rollups import (
    refresh_score_rollups,
    refresh_span_rollups,
    span_filter_values,
    span_traffic,
)

#: Higher is worse for these evaluators (toxicity is a probability of harm).
HIGHER_IS_WORSE = frozenset({"toxicity", "toxicity_input"})
#: A rollup refresh costs ~0.1 s at ten million spans even with nothing new: not per query.
ROLLUP_REFRESH_S = 10.0
#: Ranges longer than this read traffic from span rollups. Up to a day the raw aggregates are
#: faster at ten million spans (18-44 ms against 40-68 ms: rollup reads pay a fixed cost to
#: plan), and their percentiles exact; over thirty days rollups are 6-11x faster.
ROLLUP_FROM_S = 24 * 3600
#: Text columns are cut to this many characters in lists; a trace shows them whole.
SNIPPET = 200
MAX_PAGE = 200

Query = Callable[..., pa.Table]
QUERIES: dict[str, Query] = {}

s, e = schema.spans, schema.evaluations
_refreshed: dict[int, float] = {}
_refresh_lock = threading.Lock()


def query(fn: Query) -> Query:
    """Register ``fn`` under its name."""
    QUERIES[fn.__name__] = fn
    return fn


def run_query(store: Any, name: str, view: View, params: dict[str, Any] | None = None) -> pa.Table:
    """Run the registered query ``name``, its params checked against the function's types
    (a param sent as JSON arrives as JSON); a :class:`ConfigError` names a bad name or param.
    """
    fn = QUERIES.get(name)
    if fn is None:
        raise ConfigError(f"no dashboard query {name!r}; known: {', '.join(sorted(QUERIES))}")
    hints = _param_types(fn)
    given = dict(params or {})
    unknown = set(given) - set(hints)
    if unknown:
        raise ConfigError(f"query {name} takes no {sorted(unknown)}; it takes {sorted(hints)}")
    checked = {}
    for key, value in given.items():
        try:
            checked[key] = hints[key].validate_python(value)
        except ValidationError as exc:
            raise ConfigError(f"query {name}: {key}: {exc.errors()[0]['msg']}") from None
    return fn(store, view, **checked)


@functools.cache
def _param_types(fn: Query) -> dict[str, TypeAdapter]:
    hints = typing.get_type_hints(fn)
    names = list(inspect.signature(fn).parameters)[2:]
    return {n: TypeAdapter(hints[n], config=ConfigDict(strict=False)) for n in names}


def _table(rows: list[dict[str, Any]], columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([r.get(c) for r in rows]) for c in columns})


def _epoch_bucket(column: sa.ColumnElement[Any], size: int) -> sa.ColumnElement[Any]:
    return sa.cast(sa.func.floor(sa.extract("epoch", column) / size) * size, sa.BigInteger)


def _total(column: Any) -> sa.ColumnElement[Any]:
    # A sum typed the same on both engines: PostgreSQL sums integers to NUMERIC (Decimal in
    # Python) and DuckDB to HUGEINT; charts and ratios want plain numbers.
    return sa.cast(sa.func.sum(column), sa.Double)


def _count(column: Any) -> sa.ColumnElement[Any]:
    return sa.cast(sa.func.sum(column), sa.BigInteger)


def _is_error() -> sa.ColumnElement[Any]:
    return sa.case((s.c.status == "error", 1), else_=0)


def _latency_percentiles() -> list[sa.Label[Any]]:
    return [
        sa.func.percentile_cont(p).within_group(s.c.latency_ms).label(f"p{round(p * 100)}")
        for p in (0.5, 0.95, 0.99)
    ]


def _kind_where(kind: str | None) -> list[sa.ColumnElement[bool]]:
    return [s.c.kind == kind] if kind else []


def _clip(column: sa.ColumnElement[Any], length: int = SNIPPET) -> sa.ColumnElement[Any]:
    return sa.func.substr(column, 1, length)


def _newest_in_range(
    q: sa.Select, at: sa.ColumnElement[Any], view: View, limit: int, cap: int = 5000, *then: Any
) -> sa.Select:
    """``q``'s rows with ``at`` in the view's range, newest first, at most ``limit`` (capped)."""
    q = q.where(at >= view.since, at < view.until).order_by(at.desc(), *then)
    return q.limit(min(int(limit), cap))


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= int(limit) <= MAX_PAGE or int(offset) < 0:
        raise ConfigError(f"limit must be 1-{MAX_PAGE} and offset 0 or more")
    return int(limit), int(offset)


# -- the sidebar -----------------------------------------------------------------------------


@query
def filter_options(store: Any, view: View) -> pa.Table:
    """The values each sidebar filter can take (the distinct combinations in the range, up to
    a thousand); from span rollups over a range longer than :data:`ROLLUP_FROM_S`."""
    if _from_rollups(view):
        _fresh_rollups(store)
        return store.fetch_arrow(span_filter_values(view.since, view.until))
    columns = [s.c[name] for name in FILTERS]
    q = (
        sa.select(*columns)
        .where(s.c.start_time >= view.since, s.c.start_time < view.until)
        .distinct()
        .limit(1000)
    )
    return store.fetch_arrow(q)


# -- overview ----------------------------------------------------------------------------------


def _fresh_rollups(store: Any) -> None:
    """Refresh the score and span rollups, at most every ROLLUP_REFRESH_S per store."""
    with _refresh_lock:
        last = _refreshed.get(id(store), 0.0)
        if time.monotonic() - last < ROLLUP_REFRESH_S:
            return
        _refreshed[id(store)] = time.monotonic()
    refresh_score_rollups(store)
    refresh_span_rollups(store)


def _from_rollups(view: View, bucket_s: int = schema.ROLLUP_SECONDS) -> bool:
    return view.seconds > ROLLUP_FROM_S and bucket_s % schema.ROLLUP_SECONDS == 0


def _traffic(table: pa.Table, columns: list[str]) -> pa.Table:
    """The columns of a raw traffic query from :func:`span_traffic`'s: measures by name
    (their sums)."""
    return pa.table({c: table[f"{c}_sum" if c in schema.SPAN_MEASURES else c] for c in columns})


_TOTALS = ["period", "calls", "errors", "p50", "p95", "p99", "prompt_tokens",
           "completion_tokens", "total_tokens", "cost_usd"]  # fmt: skip
_SERIES = ["bucket", "calls", "errors", "p50", "p95", "p99", "total_tokens", "cost_usd"]


@query
def overview_totals(store: Any, view: View, kind: str | None = "llm") -> pa.Table:
    """Calls, errors, latency percentiles, tokens and cost in the range and in the one before;
    from span rollups over a range longer than :data:`ROLLUP_FROM_S`."""
    previous = view.previous()
    if _from_rollups(view):
        _fresh_rollups(store)
        table = span_traffic(store, [(view.since, view.until), (previous.since, previous.until)],
                             view.filters(), kind)  # fmt: skip
        labels = pa.array(["current", "previous"]).take(table["period"])
        return _traffic(table.set_column(0, "period", labels), _TOTALS)
    period = sa.case((s.c.start_time >= view.since, "current"), else_="previous").label("period")
    q = (
        sa.select(
            period,
            sa.func.count().label("calls"),
            _count(_is_error()).label("errors"),
            *_latency_percentiles(),
            _count(s.c.prompt_tokens).label("prompt_tokens"),
            _count(s.c.completion_tokens).label("completion_tokens"),
            _count(s.c.total_tokens).label("total_tokens"),
            _total(s.c.cost_usd).label("cost_usd"),
        )
        .where(*previous.span_where()[:1], *view.span_where()[1:], *_kind_where(kind))
        .group_by(period)
    )
    return store.fetch_arrow(q)


@query
def overview_series(
    store: Any, view: View, kind: str | None = "llm", bucket_s: int | None = None
) -> pa.Table:
    """Per time bucket: calls, errors, latency p50/p95/p99, tokens and cost; from span
    rollups over a range longer than :data:`ROLLUP_FROM_S` in buckets of whole 5 minutes."""
    size = bucket_s or bucket_seconds(view)
    if _from_rollups(view, size):
        _fresh_rollups(store)
        measures = ("latency_ms", "total_tokens", "cost_usd")
        period = [(view.since, view.until)]
        table = span_traffic(store, period, view.filters(), kind, size, measures)
        return _traffic(table, _SERIES)
    bucket = _epoch_bucket(s.c.start_time, size).label("bucket")
    q = (
        sa.select(
            bucket,
            sa.func.count().label("calls"),
            _count(_is_error()).label("errors"),
            *_latency_percentiles(),
            _count(s.c.total_tokens).label("total_tokens"),
            _total(s.c.cost_usd).label("cost_usd"),
        )
        .where(*view.span_where(), *_kind_where(kind))
        .group_by(bucket)
        .order_by(bucket)
    )
    return store.fetch_arrow(q)


# -- metrics (the per-grain health table) -----------------------------------------------------


@query
def health(store: Any, view: View, grain: str = "1m", kind: str | None = "llm") -> pa.Table:
    """The health table at ``grain``, the columns of a cloud monitor (llmvigil metrics): from
    span rollups over a range longer than :data:`ROLLUP_FROM_S` at a grain of whole 5
    minutes (latency percentiles within 4.5%), from the raw spans otherwise."""
    rolled = _from_rollups(view, parse_grain(grain))
    if rolled:
        _fresh_rollups(store)
    rows = store.metrics(
        grain, view.since, view.until, kind=kind, from_rollups=rolled, **view.filters()
    )
    names = ["TimeGenerated", "MetricName", "Total", "Count", "Maximum", "Minimum", "Average",
             "TimeGrain", "UnitName"]  # fmt: skip
    return _table([r.as_dict() for r in rows], names)


# -- quality -----------------------------------------------------------------------------------


@query
def quality_series(store: Any, view: View, bucket_s: int | None = None) -> pa.Table:
    """Per bucket, evaluator and method: spans scored, mean score, pass rate."""
    _fresh_rollups(store)
    r = schema.score_rollups.c
    size = max(bucket_s or bucket_seconds(view), schema.ROLLUP_SECONDS)
    bucket = sa.cast(sa.func.floor(r.bucket / size) * size, sa.BigInteger).label("bucket")
    scored = _count(r.scored)
    judged = _count(r.passed) + _count(r.failed)
    q = (
        sa.select(
            bucket,
            r.evaluator,
            r.method,
            scored.label("scored"),
            (_total(r.score_sum) / sa.func.nullif(scored, 0)).label("mean"),
            (_total(r.passed) / sa.func.nullif(sa.cast(judged, sa.Double), 0)).label("pass_rate"),
        )
        .where(*view.rollup_where())
        .group_by(bucket, r.evaluator, r.method)
        .order_by(bucket, r.evaluator, r.method)
    )
    return store.fetch_arrow(q)


@query
def quality_summary(store: Any, view: View) -> pa.Table:
    """Per evaluator, version and method over the range: counts, mean, pass rate and the
    score histogram (``b0`` .. ``b9``, tenths of the score range)."""
    _fresh_rollups(store)
    r = schema.score_rollups.c
    bins = [_count(r[f"b{i}"]).label(f"b{i}") for i in range(schema.SCORE_BINS)]
    scored = _count(r.scored)
    judged = _count(r.passed) + _count(r.failed)
    q = (
        sa.select(
            r.evaluator,
            r.evaluator_version,
            r.method,
            scored.label("scored"),
            _count(r.unscored).label("unscored"),
            (_total(r.score_sum) / sa.func.nullif(scored, 0)).label("mean"),
            (_total(r.passed) / sa.func.nullif(sa.cast(judged, sa.Double), 0)).label("pass_rate"),
            *bins,
        )
        .where(*view.rollup_where())
        .group_by(r.evaluator, r.evaluator_version, r.method)
        .order_by(r.evaluator, r.method)
    )
    return store.fetch_arrow(q)


def _score_where(view: View, evaluator: str) -> list[sa.ColumnElement[bool]]:
    """Conditions on evaluations of ``evaluator`` for spans in the view (the copied columns)."""
    where = [e.c.evaluator == evaluator, e.c.span_start >= view.since, e.c.span_start < view.until]
    where += [e.c[f"span_{name}"] == value for name, value in view.filters().items()]
    return where


@query
def worst_spans(
    store: Any, view: View, evaluator: str = "relevance", method: str | None = None, limit: int = 20
) -> pa.Table:
    """The worst-scored spans of ``evaluator`` in the range (lowest, or highest where higher
    is worse), with their texts and the evaluator's ``details``."""
    limit, _ = _page(limit, 0)
    order = e.c.score.desc() if evaluator in HIGHER_IS_WORSE else e.c.score.asc()
    where = [*_score_where(view, evaluator), e.c.score.is_not(None)]
    if method:
        where.append(e.c.method == method)
    worst = (
        sa.select(
            e.c.span_id,
            e.c.score,
            e.c.label,
            e.c.method,
            e.c.evaluator_version,
            sa.cast(e.c.details, sa.Text).label("details"),
        )
        .where(*where)
        .order_by(order, e.c.span_id)
        .limit(limit)
    )
    scores = store.fetch_arrow(worst)
    spans = store.fetch_arrow(
        sa.select(
            s.c.span_id,
            s.c.trace_id,
            s.c.start_time,
            s.c.app,
            s.c.model,
            _clip(s.c.input_text, 2000).label("input_text"),
            _clip(s.c.output_text, 2000).label("output_text"),
        ).where(s.c.span_id.in_(scores["span_id"].to_pylist()))
    )
    found = {row["span_id"]: row for row in spans.to_pylist()}
    rows = [found.get(r["span_id"], {}) | r for r in scores.to_pylist()]
    columns = scores.column_names + [c for c in spans.column_names if c != "span_id"]
    return _table(rows, columns)


# -- drift ------------------------------------------------------------------------------------


@query
def drift_runs(store: Any, view: View, limit: int = 5000) -> pa.Table:
    """Stored drift results computed in the range, newest first."""
    d = schema.drift_results.c
    q = sa.select(
        d.run_id,
        d.computed_at,
        d.feature,
        d.method,
        d.statistic,
        d.p_value,
        d.threshold,
        d.drifted,
        d.skipped,
        d.reference_start,
        d.reference_end,
        d.current_start,
        d.current_end,
        d.reference_count,
        d.current_count,
        d.app,
        d.model,
        sa.cast(d.details, sa.Text).label("details"),
    )
    return store.fetch_arrow(_newest_in_range(q, d.computed_at, view, limit, 20_000, d.feature))


@query
def embedding_map(
    store: Any, view: View, run_id: str, feature: str = "input_embedding", per_window: int = 400
) -> pa.Table:
    """Stored prompt (or response) vectors of a drift run's reference and current windows
    (the same md5-first sample drift reads), projected to two dimensions together (PCA)."""
    import numpy as np

    from llmvigil.evaluators.drift.sample import unpack

    d = schema.drift_results.c
    runs = store.fetch_arrow(
        sa.select(d.reference_start, d.reference_end, d.current_start, d.current_end)
        .where(d.run_id == run_id)
        .limit(1)
    ).to_pylist()
    columns = ["window", "span_id", "x", "y", "text"]
    if not runs:
        return _table([], columns)
    run = runs[0]
    v = schema.span_vectors.c
    vector = v.output_vector if feature.startswith("output") else v.input_vector
    text = s.c.output_text if feature.startswith("output") else s.c.input_text
    rows: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for window in ("reference", "current"):
        q = (
            sa.select(s.c.span_id, vector.label("vector"), _clip(text, 120).label("text"))
            .select_from(schema.span_vectors.join(s, s.c.span_id == v.span_id))
            .where(
                s.c.start_time >= run[f"{window}_start"],
                s.c.start_time < run[f"{window}_end"],
                vector.is_not(None),
            )
            .order_by(sa.func.md5(s.c.span_id))
            .limit(min(int(per_window), 2000))
        )
        for row in store.fetch_arrow(q).to_pylist():
            rows.append({"window": window, "span_id": row["span_id"], "text": row["text"]})
            blobs.append(row["vector"])
    if len(rows) < 3:
        return _table([], columns)
    matrix = unpack(blobs)
    centred = matrix - matrix.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    points = centred @ axes[:2].T
    for row, (x, y) in zip(rows, points, strict=True):
        row["x"], row["y"] = float(x), float(y)
    return _table(rows, columns)


# -- traces -----------------------------------------------------------------------------------


@query
def search_spans(
    store: Any,
    view: View,
    text: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    evaluator: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> pa.Table:
    """Spans in the range matching the filters, newest first, a page at a time; ``text``
    matches prompt or response (case-insensitive); a score range needs ``evaluator``."""
    limit, offset = _page(limit, offset)
    where = view.span_where()
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # lower() LIKE, not ILIKE: DuckDB's ILIKE took twice as long (0.21 s against 0.10 s
        # over thirty days at ten million spans, text matching nothing).
        where.append(
            sa.or_(
                sa.func.lower(s.c.input_text).like(pattern.lower(), escape="\\"),
                sa.func.lower(s.c.output_text).like(pattern.lower(), escape="\\"),
            )
        )
    for column, value in (("status", status), ("kind", kind), ("user_id", user_id),
                          ("session_id", session_id)):  # fmt: skip
        if value:
            where.append(s.c[column] == value)
    if evaluator and (min_score is not None or max_score is not None):
        scored = [e.c.evaluator == evaluator, e.c.span_start >= view.since,
                  e.c.span_start < view.until]  # fmt: skip
        if min_score is not None:
            scored.append(e.c.score >= float(min_score))
        if max_score is not None:
            scored.append(e.c.score <= float(max_score))
        where.append(s.c.span_id.in_(sa.select(e.c.span_id).where(*scored)))
    q = (
        sa.select(
            s.c.span_id,
            s.c.trace_id,
            s.c.parent_id,
            s.c.start_time,
            s.c.name,
            s.c.kind,
            s.c.app,
            s.c.model,
            s.c.status,
            s.c.latency_ms,
            s.c.total_tokens,
            s.c.cost_usd,
            s.c.user_id,
            s.c.session_id,
            _clip(s.c.input_text).label("input_text"),
            _clip(s.c.output_text).label("output_text"),
        )
        .where(*where)
        .order_by(s.c.start_time.desc(), s.c.span_id)
        .limit(limit)
        .offset(offset)
    )
    return store.fetch_arrow(q)


_SPAN_COLUMNS = [c for c in s.c if c.name not in ("context", "tags", "metadata")]


def _span_rows(where: sa.ColumnElement[bool], limit: int = 2000) -> sa.Select:
    return (
        sa.select(
            *_SPAN_COLUMNS,
            sa.cast(s.c.context, sa.Text).label("context"),
            sa.cast(s.c.metadata, sa.Text).label("metadata"),
        )
        .where(where)
        .order_by(s.c.start_time, s.c.span_id)
        .limit(limit)
    )


@query
def trace_spans(store: Any, view: View, trace_id: str) -> pa.Table:
    """Every span of one trace (up to 2,000), whole, oldest first; not limited by the range."""
    return store.fetch_arrow(_span_rows(s.c.trace_id == trace_id))


def _of_spans(ids: list[str]) -> list[str]:
    return [str(i) for i in ids][:2000]


@query
def span_scores(store: Any, view: View, span_ids: list[str]) -> pa.Table:
    """The evaluations of the given spans."""
    q = sa.select(
        e.c.span_id, e.c.evaluator, e.c.evaluator_version, e.c.score, e.c.label, e.c.passed,
        e.c.method, sa.cast(e.c.details, sa.Text).label("details"), e.c.evaluated_at,
    ).where(e.c.span_id.in_(_of_spans(span_ids)))  # fmt: skip
    return store.fetch_arrow(q.order_by(e.c.span_id, e.c.evaluator))


@query
def span_feedback(
    store: Any, view: View, span_ids: list[str], trace_id: str | None = None
) -> pa.Table:
    """Feedback on the given spans (and on their trace)."""
    f = schema.feedback.c
    on = f.span_id.in_(_of_spans(span_ids))
    if trace_id:
        on = sa.or_(on, f.trace_id == trace_id)
    q = sa.select(
        f.feedback_id, f.span_id, f.trace_id, f.name, f.score, f.label, f.comment, f.source,
        f.author, f.created_at,
    ).where(on)  # fmt: skip
    return store.fetch_arrow(q.order_by(f.created_at))


# -- sessions ---------------------------------------------------------------------------------


@query
def sessions(
    store: Any, view: View, user_id: str | None = None, limit: int = 50, offset: int = 0
) -> pa.Table:
    """Conversations in the range, latest first: their user, calls, errors, time, tokens and
    cost (every span of the session in the range counts).

    The page's sessions are found in the newest stretch of the range that holds enough of
    them (a session whose last span is in it is ranked by that span; one absent from it
    ended before every session found), widened fourfold until it does; then only those
    sessions' spans are summed. Grouping every session of thirty days at ten million spans
    took 0.55 s.
    """
    limit, offset = _page(limit, offset)
    where = [*view.span_where(), s.c.session_id.is_not(None)]
    if user_id:
        where.append(s.c.user_id == user_id)
    wanted = offset + limit
    last = sa.func.max(s.c.start_time)
    stretch = view.seconds / 256
    while True:
        since = max(view.since, view.until - timedelta(seconds=stretch))
        latest = (
            sa.select(s.c.session_id)
            .where(*where, s.c.start_time >= since)
            .group_by(s.c.session_id)
            .order_by(last.desc(), s.c.session_id)
            .limit(wanted)
        )
        ids = store.fetch_arrow(latest)["session_id"].to_pylist()
        if len(ids) == wanted or since == view.since:
            break
        stretch *= 4
    ids = ids[offset:]
    q = (
        sa.select(
            s.c.session_id,
            sa.func.max(s.c.user_id).label("user_id"),
            sa.func.count().label("spans"),
            _count(_is_error()).label("errors"),
            sa.func.min(s.c.start_time).label("first"),
            last.label("last"),
            _count(s.c.total_tokens).label("total_tokens"),
            _total(s.c.cost_usd).label("cost_usd"),
        )
        .where(*where, s.c.session_id.in_(ids))
        .group_by(s.c.session_id)
        .order_by(last.desc(), s.c.session_id)
    )
    return store.fetch_arrow(q)


@query
def session_scores(store: Any, view: View, session_ids: list[str]) -> pa.Table:
    """Each session's mean score per evaluator, over its scored spans in the range.

    The sessions' spans are first bounded in time, so that only the evaluations of spans
    started then are joined (0.9 s -> 0.02 s for fifty sessions over thirty days at ten
    million spans: the evaluations' span start times prune most of their rows unread).
    """
    ids = [str(i) for i in session_ids][:MAX_PAGE]
    theirs = [s.c.session_id.in_(ids), *view.span_where()[:2]]
    bounds = sa.select(
        sa.func.min(s.c.start_time).label("first"), sa.func.max(s.c.start_time).label("last")
    ).where(*theirs)
    first, last = store.fetch_arrow(bounds).to_pylist()[0].values()
    if first is None:
        first, last = view.since, view.since  # no span: the query below finds nothing
    q = (
        sa.select(s.c.session_id, e.c.evaluator, sa.func.avg(e.c.score).label("mean"))
        .select_from(e.join(s, s.c.span_id == e.c.span_id))
        .where(
            *theirs,
            e.c.span_start >= first,
            e.c.span_start <= last,
            e.c.score.is_not(None),
        )
        .group_by(s.c.session_id, e.c.evaluator)
    )
    return store.fetch_arrow(q)


@query
def session_spans(store: Any, view: View, session_id: str) -> pa.Table:
    """Every span of one session (up to 2,000), whole, oldest first."""
    return store.fetch_arrow(_span_rows(s.c.session_id == session_id))


# -- alerts -----------------------------------------------------------------------------------


@query
def alert_states(store: Any, view: View) -> pa.Table:
    """Each rule and group's current state (OK, FIRING), value and when it was checked."""
    a = schema.alert_state.c
    q = sa.select(a.rule, a.group_key, a.state, a.since, a.value, a.samples, a.checked_at)
    return store.fetch_arrow(q.order_by(a.rule, a.group_key))


@query
def alert_events(store: Any, view: View, limit: int = 200) -> pa.Table:
    """Alert events that started in the range, newest first."""
    a = schema.alert_events.c
    q = sa.select(
        a.event_id,
        a.rule,
        a.group_key,
        a.state,
        a.value,
        a.threshold,
        a.window_s,
        a.started_at,
        a.resolved_at,
    )
    return store.fetch_arrow(_newest_in_range(q, a.started_at, view, limit))


@query
def alert_deliveries(store: Any, view: View, limit: int = 200) -> pa.Table:
    """Notifications sent (or being retried) for events of the range, newest first."""
    d, a = schema.alert_deliveries.c, schema.alert_events.c
    q = sa.select(
        d.delivery_id,
        d.rule,
        d.channel,
        d.kind,
        d.status,
        d.attempts,
        d.response_status,
        d.last_error,
        a.started_at,
    ).select_from(schema.alert_deliveries.join(schema.alert_events, a.event_id == d.event_id))
    return store.fetch_arrow(_newest_in_range(q, a.started_at, view, limit, 5000, d.channel))


@query
def hook_runs(store: Any, view: View, limit: int = 200) -> pa.Table:
    """Retraining hook runs created in the range, newest first."""
    h = schema.alert_hook_runs.c
    q = sa.select(
        h.run_id,
        h.rule,
        h.hook,
        h.status,
        h.exit_code,
        h.seconds,
        h.export_path,
        h.output_tail,
        h.created_at,
        h.finished_at,
    )
    return store.fetch_arrow(_newest_in_range(q, h.created_at, view, limit))
