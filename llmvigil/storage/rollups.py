"""Rollups: scores and spans summed per 5-minute bucket, kept up to date as rows arrive.

The dashboard charts quality and traffic over a time range and the sidebar's
filters (app, model, environment, prompt version). Over raw rows at ten
million spans on a 2-core machine that is 1.1 s (one day) to 3.3 s (thirty)
for scores joined to spans, and 0.6-1 s for thirty days of traffic. Two
rollups keep those sums instead, one row per bucket and filter value:

- ``score_rollups``, from evaluations by ``evaluated_at``: counts, score sums
  and a 10-bin score histogram per evaluator, version and method. Failed
  scorings (``evaluator_error``, ``judge_error``) are left out: the runner
  deletes them to score those spans again, and the new rows are counted then.
- ``span_rollups``, from spans by ``ingested_at``: calls, errors, and the sum,
  count, minimum and maximum of latency, tokens, cost and bytes, with a
  log-spaced latency histogram from which :func:`latency_percentiles` reads
  p50/p95/p99 within 4.4%.

A refresh (:func:`refresh_score_rollups`, :func:`refresh_span_rollups`) adds
the rows written since its mark in ``rollup_marks`` (read a few seconds
behind, as ``/metrics`` reads them), in one transaction with the mark, so a
refresh that fails adds nothing and the next one reads the same rows again.
Retention deletes the rollup rows of the buckets it deletes spans from.

:func:`span_traffic` and :func:`span_filter_values` read exactly the spans of
a range, at any moment: whole buckets from ``span_rollups``, and from raw spans
the partial buckets at the range's ends and the spans that arrived after the
last refresh.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from llmvigil.storage import schema

#: How far behind the newest rows a refresh reads: an evaluation's ``evaluated_at`` (a
#: span's ``ingested_at``) is set before its transaction commits, so a refresh must not
#: pass rows still in flight.
SETTLE_S = 5.0
#: Labels of scorings that failed and are deleted to be tried again (evaluators.runner).
_RETRIED_LABELS = ("evaluator_error", "judge_error")
_DIMENSIONS = schema.ROLLUP_DIMENSIONS
_SCORE_SUMMED = ("scored", "unscored", "score_sum", "passed", "failed")
_SCORE_SUMMED += tuple(f"b{i}" for i in range(schema.SCORE_BINS))
_LATENCY_BINS = tuple(f"l{i}" for i in range(schema.LATENCY_BINS))
_SPAN_SUMMED = ("calls", "errors")
_SPAN_SUMMED += tuple(f"{m}_{part}" for m in schema.SPAN_MEASURES for part in ("sum", "count"))
_SPAN_SUMMED += _LATENCY_BINS
#: The relative error bound of a percentile read from the latency histogram: half a bin
#: (a factor of 2^(1/16)) either side, for latencies from 1 ms to 2^20 ms.
PERCENTILE_ERROR = 2 ** (1 / (2 * schema.LATENCY_BINS_PER_OCTAVE)) - 1


def _bucket(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    width = schema.ROLLUP_SECONDS
    epoch = sa.extract("epoch", column)
    return sa.cast(sa.func.floor(epoch / width) * width, sa.BigInteger)


def _epoch(moment: datetime) -> int:
    return math.floor((moment - datetime(1970, 1, 1)).total_seconds())


# -- what each rollup reads -------------------------------------------------------------------


def _new_scores(since: datetime | None, until: datetime) -> sa.Select:
    e, s = schema.evaluations.c, schema.spans.c
    scored = e.score.is_not(None)
    # Scores are in [0, 1]; one above 1 counts in the top bin, below 0 in the bottom one.
    position = sa.func.least(
        sa.func.greatest(sa.cast(sa.func.floor(e.score * schema.SCORE_BINS), sa.Integer), 0),
        schema.SCORE_BINS - 1,
    )
    bucket = _bucket(s.start_time).label("bucket")
    keys = [bucket, *(sa.func.coalesce(s[name], "").label(name) for name in _DIMENSIONS)]
    keys += [e.evaluator, e.evaluator_version, e.method]
    counts = [
        sa.func.count(e.score).label("scored"),
        (sa.func.count() - sa.func.count(e.score)).label("unscored"),
        sa.func.coalesce(sa.func.sum(e.score), 0.0).label("score_sum"),
        sa.func.count(sa.case((e.passed.is_(True), 1))).label("passed"),
        sa.func.count(sa.case((e.passed.is_(False), 1))).label("failed"),
        *(
            sa.func.count(sa.case((sa.and_(scored, position == i), 1))).label(f"b{i}")
            for i in range(schema.SCORE_BINS)
        ),
    ]
    where = [
        e.evaluated_at <= until,
        sa.or_(e.label.is_(None), e.label.not_in(_RETRIED_LABELS)),
    ]
    if since is not None:
        where.append(e.evaluated_at > since)
    return (
        sa.select(*keys, *counts)
        .select_from(schema.evaluations.join(schema.spans, s.span_id == e.span_id))
        .where(*where)
        .group_by(*keys)
    )


def _latency_bin(latency: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    per_octave = schema.LATENCY_BINS_PER_OCTAVE
    top = 2.0**schema.LATENCY_OCTAVES
    inside = sa.func.least(
        sa.cast(sa.func.floor(sa.func.ln(latency) * (per_octave / math.log(2))), sa.Integer) + 1,
        schema.LATENCY_BINS - 2,
    )
    # NaN sorts above every number in both engines: it lands in the top bin, never in ln().
    return sa.case((latency >= top, schema.LATENCY_BINS - 1), (latency >= 1.0, inside), else_=0)


def _span_aggregates(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select:
    """Rollup rows (the columns of ``span_rollups``) of the spans matching ``where``."""
    s = schema.spans.c
    inner = (
        sa.select(
            _bucket(s.start_time).label("bucket"),
            *(sa.func.coalesce(s[name], "").label(name) for name in _DIMENSIONS),
            s.status,
            *(s[m] for m in schema.SPAN_MEASURES),
            _latency_bin(s.latency_ms).label("position"),
        )
        .where(*where)
        .subquery()
    )
    keys = [inner.c.bucket, *(inner.c[name] for name in _DIMENSIONS)]
    columns: list[Any] = [
        sa.func.count().label("calls"),
        sa.func.count(sa.case((inner.c.status == "error", 1))).label("errors"),
    ]
    for name, kind in schema.SPAN_MEASURES.items():
        value = inner.c[name]
        zero = 0.0 if kind is sa.Double else 0
        columns += [
            sa.cast(sa.func.coalesce(sa.func.sum(value), zero), kind()).label(f"{name}_sum"),
            sa.func.count(value).label(f"{name}_count"),
            sa.func.min(value).label(f"{name}_min"),
            sa.func.max(value).label(f"{name}_max"),
        ]
    columns += [
        sa.func.count(sa.case((inner.c.position == i, 1))).label(f"l{i}")
        for i in range(schema.LATENCY_BINS)
    ]
    return sa.select(*keys, *columns).group_by(*keys)


def _new_spans(since: datetime | None, until: datetime) -> sa.Select:
    s = schema.spans.c
    where = [s.ingested_at <= until]
    if since is not None:
        where.append(s.ingested_at > since)
    return _span_aggregates(where)


# -- refreshing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rollup:
    """A rollup table, the mark it keeps in ``rollup_marks``, and how it reads new rows."""

    mark: str
    table: sa.Table
    new_rows: Callable[[datetime | None, datetime], sa.Select]
    #: The source's arrival stamp, to see cheaply whether anything arrived at all.
    arrival: sa.Column[Any]
    summed: tuple[str, ...]
    lowest: tuple[str, ...] = ()
    highest: tuple[str, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def upsert(self, since: datetime | None, until: datetime) -> sa.Executable:
        table = self.table
        statement = pg_insert(table).from_select(
            [c.name for c in table.columns], self.new_rows(since, until)
        )
        new = statement.excluded
        update = {name: table.c[name] + new[name] for name in self.summed}
        update |= {name: sa.func.least(table.c[name], new[name]) for name in self.lowest}
        update |= {name: sa.func.greatest(table.c[name], new[name]) for name in self.highest}
        statement = statement.on_conflict_do_update(
            index_elements=[c.name for c in table.primary_key.columns], set_=update
        )
        # SQLAlchemy keeps an INSERT's row count only when asked (it counts UPDATEs alone).
        return statement.execution_options(preserve_rowcount=True)


_SCORES = _Rollup(
    "scores",
    schema.score_rollups,
    _new_scores,
    schema.evaluations.c.evaluated_at,
    _SCORE_SUMMED,
)
_SPANS = _Rollup(
    "spans",
    schema.span_rollups,
    _new_spans,
    schema.spans.c.ingested_at,
    _SPAN_SUMMED,
    lowest=tuple(f"{m}_min" for m in schema.SPAN_MEASURES),
    highest=tuple(f"{m}_max" for m in schema.SPAN_MEASURES),
)


def _refresh(store: Any, rollup: _Rollup, now: datetime | None) -> int:
    from llmvigil.storage.locks import exclusive
    from llmvigil.storage.store import utc_now

    until = (now or utc_now()) - timedelta(seconds=SETTLE_S)
    marks = schema.rollup_marks
    with rollup.lock, exclusive(store, f"rollups-{rollup.mark}") as mine:
        if not mine:  # another process refreshes it now
            return 0
        with store.engine.begin() as conn:
            since = conn.execute(
                sa.select(marks.c.upto).where(marks.c.name == rollup.mark)
            ).scalar()
            if since is not None and since >= until:
                return 0
            arrived = [rollup.arrival <= until]
            if since is not None:
                arrived.append(rollup.arrival > since)
            written = 0
            # Planning the upsert (hundreds of aggregates) costs more than finding nothing new.
            if conn.execute(sa.select(sa.literal(1)).where(*arrived).limit(1)).first():
                written = int(conn.execute(rollup.upsert(since, until)).rowcount or 0)
            mark = pg_insert(marks).values(name=rollup.mark, upto=until)
            conn.execute(mark.on_conflict_do_update(index_elements=["name"], set_={"upto": until}))
        return max(written, 0)


def refresh_score_rollups(store: Any, now: datetime | None = None) -> int:
    """Add the evaluations written since the last refresh to ``score_rollups``; return how
    many rollup rows were written or updated. One refresh at a time per process (and, on
    PostgreSQL, per database: an advisory lock)."""
    return _refresh(store, _SCORES, now)


def refresh_span_rollups(store: Any, now: datetime | None = None) -> int:
    """Add the spans ingested since the last refresh to ``span_rollups``; return how many
    rollup rows were written or updated. One refresh at a time, as for scores."""
    return _refresh(store, _SPANS, now)


def delete_rollups_before(conn: sa.Connection, cutoff: datetime, app: str | None = None) -> int:
    """Delete the score and span rollup buckets that start before ``cutoff``, of one ``app``
    ("" for spans with none) or of every app; return how many rows went."""
    deleted = 0
    for table in (schema.score_rollups, schema.span_rollups):
        statement = sa.delete(table).where(table.c.bucket < _epoch(cutoff))
        if app is not None:
            statement = statement.where(table.c.app == app)
        deleted += int(conn.execute(statement).rowcount or 0)
    return deleted


# -- reading span rollups ---------------------------------------------------------------------


def _split(
    since: datetime, until: datetime, filters: Mapping[str, str], kind: str | None
) -> tuple[list[sa.ColumnElement[bool]] | None, list[list[sa.ColumnElement[bool]]]]:
    """Where the spans of ``[since, until)`` matching the filters are: (conditions on
    ``span_rollups`` for the whole buckets, or None where there is none; conditions on
    ``spans`` for each raw part: the partial buckets at the ends, and the spans of the whole
    buckets that arrived after the last refresh)."""
    s, r = schema.spans.c, schema.span_rollups.c
    wanted = {**filters, **({"kind": kind} if kind else {})}
    on_spans = [s[name] == value for name, value in wanted.items()]
    step = schema.ROLLUP_SECONDS
    first = -(-_epoch(since) // step) * step  # the first whole bucket
    last = _epoch(until) // step * step  # where the last whole bucket ends
    if first >= last:
        return None, [[s.start_time >= since, s.start_time < until, *on_spans]]
    epoch = datetime(1970, 1, 1)
    head, tail = epoch + timedelta(seconds=first), epoch + timedelta(seconds=last)
    mark = (
        sa.select(schema.rollup_marks.c.upto)
        .where(schema.rollup_marks.c.name == _SPANS.mark)
        .scalar_subquery()
    )
    late = s.ingested_at > sa.func.coalesce(mark, datetime(1, 1, 1))
    raw = [[s.start_time >= head, s.start_time < tail, late, *on_spans]]
    if since < head:
        raw.append([s.start_time >= since, s.start_time < head, *on_spans])
    if tail < until:
        raw.append([s.start_time >= tail, s.start_time < until, *on_spans])
    rolled = [r.bucket >= first, r.bucket < last, *(r[k] == v for k, v in wanted.items())]
    return rolled, raw


def _grouped(bucket: sa.ColumnElement[Any], size: int | None) -> list[sa.ColumnElement[Any]]:
    """The chart bucket of a rollup bucket, to group by; none for one row per period (a
    constant in GROUP BY would name a column by position)."""
    if size is None:
        return []
    return [sa.cast(sa.func.floor(bucket / size) * size, sa.BigInteger)]


def _bucket_of(chart: list[sa.ColumnElement[Any]]) -> sa.Label[Any]:
    return (chart[0] if chart else sa.literal_column("0", sa.BigInteger)).label("bucket")


def span_traffic(
    store: Any,
    periods: Sequence[tuple[datetime, datetime]],
    filters: Mapping[str, str],
    kind: str | None = None,
    bucket_s: int | None = None,
    measures: Sequence[str] = tuple(schema.SPAN_MEASURES),
) -> pa.Table:
    """Traffic of the spans that started in each of ``periods`` and match ``filters``
    (column: value) and ``kind``, from span rollups and the raw spans they do not hold yet:
    one row per period (``period``: its index) and, with ``bucket_s`` (a multiple of 5
    minutes), per ``bucket`` (epoch seconds); none where no span is. Columns ``calls``,
    ``errors``, per measure ``{m}_sum`` (NULL where no span had a value, as SQL's SUM),
    ``{m}_count``, ``{m}_min``, ``{m}_max``, and ``p50``, ``p95``, ``p99`` of latency.

    Counts, sums, minimums and maximums are those of the spans (float sums up to rounding);
    percentiles are read from the latency histogram (see :func:`latency_percentiles`). The
    reads share one snapshot, so a refresh committing meanwhile is seen whole or not at all.
    """
    if bucket_s is not None and bucket_s % schema.ROLLUP_SECONDS:
        raise ValueError(f"bucket_s must be a multiple of {schema.ROLLUP_SECONDS}")
    totals, *histograms = store.fetch_arrows(
        _traffic_queries(periods, filters, kind, bucket_s, measures)
    )
    if "latency_ms" not in measures:
        return totals
    keys = zip(totals["period"].to_pylist(), totals["bucket"].to_pylist(), strict=True)
    at = {key: i for i, key in enumerate(keys)}
    counts = np.zeros((totals.num_rows, schema.LATENCY_BINS), np.int64)
    raw, *rolled = histograms
    for period, bucket, position, spans in zip(
        *(raw[c].to_pylist() for c in ("period", "bucket", "position", "spans")), strict=True
    ):
        counts[at[(period, bucket)], position] += spans
    if rolled and rolled[0].num_rows:
        # Every rollup row holds a call, so each of its buckets is a row of the totals.
        bins = rolled[0]
        keys = zip(bins["period"].to_pylist(), bins["bucket"].to_pylist(), strict=True)
        rows = np.array([at[key] for key in keys], np.int64)
        matrix = np.column_stack([bins[b].to_numpy(zero_copy_only=False) for b in _LATENCY_BINS])
        np.add.at(counts, rows, matrix.astype(np.int64))
    low = totals["latency_ms_min"].to_numpy(zero_copy_only=False).astype(float)
    high = totals["latency_ms_max"].to_numpy(zero_copy_only=False).astype(float)
    for q, values in latency_percentiles(counts, low, high).items():
        totals = totals.append_column(f"p{round(q * 100)}", values)
    return totals


def _traffic_queries(
    periods: Sequence[tuple[datetime, datetime]],
    filters: Mapping[str, str],
    kind: str | None,
    bucket_s: int | None,
    measures: Sequence[str],
) -> list[sa.Select]:
    """The reads of :func:`span_traffic`: the totals; the raw spans' latency histogram, by
    bin (``position``); the rollups' histogram, in columns, if any bucket is whole.

    The histogram stays out of the union of rollup and raw rows: binning raw spans into 162
    columns costs more to plan than to run on the few rows they are.
    """
    s, r = schema.spans.c, schema.span_rollups.c
    spans_bucket = _bucket(s.start_time)
    parts = ("sum", "count", "min", "max")
    values, rolled_bins, raw_bins = [], [], []
    for index, (since, until) in enumerate(periods):
        period = sa.literal_column(str(index), sa.Integer).label("period")
        rolled, raw = _split(since, until, filters, kind)
        if rolled is not None:
            own = [r.calls, r.errors, *(r[f"{m}_{part}"] for m in measures for part in parts)]
            values.append(sa.select(period, r.bucket, *own).where(*rolled))
            chart = _grouped(r.bucket, bucket_s)
            bins = [sa.func.sum(r[b]).label(b) for b in _LATENCY_BINS]
            rolled_bins.append(
                sa.select(period, _bucket_of(chart), *bins)
                .where(*rolled)
                .group_by(*chart)
                .having(sa.func.count() > 0)  # no row, not one of NULLs, where no bucket is
            )
        position = _latency_bin(s.latency_ms)
        chart = _grouped(spans_bucket, bucket_s)
        for where in raw:
            values.append(_span_measures(period, spans_bucket, where, measures))
            count = sa.func.count().label("spans")
            raw_bins.append(
                sa.select(period, _bucket_of(chart), position.label("position"), count)
                .where(*where)
                .group_by(*chart, position)
            )
    rows = sa.union_all(*values).subquery("span_rows")
    chart = _grouped(rows.c.bucket, bucket_s)
    totals = (
        sa.select(rows.c.period, _bucket_of(chart), *summed(rows, measures))
        .group_by(rows.c.period, *chart)
        .having(sa.func.sum(rows.c.calls) > 0)
        .order_by(rows.c.period, *chart)
    )
    if "latency_ms" not in measures:
        return [totals]
    return [totals, sa.union_all(*raw_bins), *([sa.union_all(*rolled_bins)] if rolled_bins else [])]


def _span_measures(
    period: sa.ColumnElement[Any],
    bucket: sa.ColumnElement[Any],
    where: Sequence[sa.ColumnElement[bool]],
    measures: Sequence[str],
) -> sa.Select:
    """The rollup columns of ``measures`` (no histogram) of the spans matching ``where``."""
    s = schema.spans.c
    columns: list[Any] = [
        sa.func.count().label("calls"),
        sa.func.count(sa.case((s.status == "error", 1))).label("errors"),
    ]
    for name in measures:
        columns += [
            sa.func.sum(s[name]).label(f"{name}_sum"),
            sa.func.count(s[name]).label(f"{name}_count"),
            sa.func.min(s[name]).label(f"{name}_min"),
            sa.func.max(s[name]).label(f"{name}_max"),
        ]
    return sa.select(period, bucket.label("bucket"), *columns).where(*where).group_by(bucket)


def span_filter_values(since: datetime, until: datetime, limit: int = 1000) -> sa.Select:
    """The distinct (app, model, environment, prompt_version) of the spans that started in
    ``[since, until)``, from span rollups and the raw spans they do not hold yet; up to
    ``limit``. A missing value is NULL, as in ``spans``."""
    names = ("app", "model", "environment", "prompt_version")
    rolled, raw = _split(since, until, {}, None)
    s, r = schema.spans.c, schema.span_rollups.c
    parts = [sa.select(*(sa.func.coalesce(s[n], "").label(n) for n in names)).where(*w)
             for w in raw]  # fmt: skip
    if rolled is not None:
        parts.append(sa.select(*(r[n] for n in names)).where(*rolled))
    rows = sa.union(*parts).subquery("values")
    # Rollups key a missing value as "": shown as missing, as the raw spans have it.
    return sa.select(*(sa.func.nullif(rows.c[n], "").label(n) for n in names)).limit(limit)


def summed(rows: sa.Subquery, measures: Sequence[str] = tuple(schema.SPAN_MEASURES)) -> list[Any]:
    """Aggregates over rollup rows: ``calls``, ``errors``, and per measure ``{m}_sum`` (NULL
    where no span had a value, as SQL's SUM), ``{m}_count``, ``{m}_min``, ``{m}_max``."""
    c = rows.c
    columns: list[Any] = [
        sa.cast(sa.func.sum(c.calls), sa.BigInteger).label("calls"),
        sa.cast(sa.func.sum(c.errors), sa.BigInteger).label("errors"),
    ]
    for name in measures:
        kind = schema.SPAN_MEASURES[name]
        count = sa.func.sum(c[f"{name}_count"])
        total = sa.case((count > 0, sa.cast(sa.func.sum(c[f"{name}_sum"]), kind())), else_=None)
        columns += [
            total.label(f"{name}_sum"),
            sa.cast(count, sa.BigInteger).label(f"{name}_count"),
            sa.func.min(c[f"{name}_min"]).label(f"{name}_min"),
            sa.func.max(c[f"{name}_max"]).label(f"{name}_max"),
        ]
    return columns


def _midpoints() -> np.ndarray:
    per_octave = schema.LATENCY_BINS_PER_OCTAVE
    inside = 2.0 ** ((np.arange(1, schema.LATENCY_BINS - 1) - 0.5) / per_octave)
    return np.concatenate([[0.0], inside, [0.0]])  # the open ends take the range's min, max


def latency_percentiles(
    counts: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    quantiles: Sequence[float] = (0.5, 0.95, 0.99),
) -> dict[float, pa.Array]:
    """Latency percentiles per row of a histogram ``counts`` (rows x
    :data:`~llmvigil.storage.schema.LATENCY_BINS`) whose latencies run from ``low`` to
    ``high``, by quantile.

    Each is what ``percentile_cont`` over the spans gives, within a relative error of
    :data:`PERCENTILE_ERROR` (2^(1/16) - 1, under 4.5%) for latencies from 1 ms to 2^20 ms
    (17.5 minutes): the two order statistics it interpolates between are each read as the
    geometric middle of their bin, at most half a bin (a factor 2^(1/16)) from the true
    value, and so is their interpolation. A percentile in the bin under 1 ms is off by less
    than 1 ms; one in the top bin reads the range's maximum. Every estimate is clamped to
    the row's minimum and maximum. None where a row holds no latency.
    """
    counts = np.asarray(counts, np.int64).reshape(-1, schema.LATENCY_BINS)
    low, high = np.asarray(low, float), np.asarray(high, float)
    middles = np.tile(_midpoints(), (counts.shape[0], 1))
    middles[:, 0], middles[:, -1] = low, high
    total = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    rows = np.arange(counts.shape[0])
    found: dict[float, pa.Array] = {}
    for q in quantiles:
        rank = q * np.maximum(total - 1, 0)
        below = np.floor(rank).astype(np.int64)
        fraction = rank - below
        above = np.minimum(below + 1, np.maximum(total - 1, 0))
        lower = middles[rows, (cumulative > below[:, None]).argmax(axis=1)]
        upper = middles[rows, (cumulative > above[:, None]).argmax(axis=1)]
        estimate = np.clip((1 - fraction) * lower + fraction * upper, low, high)
        found[q] = pa.array(estimate, pa.float64(), mask=total == 0)
    return found
