"""The per-grain health table a cloud monitor shows, computed by one SQL aggregate in the store.

For each time bucket (``TimeGrain``) and metric: ``Total``, ``Count``,
``Maximum``, ``Minimum`` and ``Average`` of the per-call values, as in Azure
Monitor's metrics table, plus latency percentiles. Only the aggregated
buckets leave the database, never the spans themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from llmvigil.errors import LlmvigilError
from llmvigil.storage import schema

#: (metric name, span column or None for one per call, unit)
METRICS: tuple[tuple[str, str | None, str], ...] = (
    ("Latency", "latency_ms", "Milliseconds"),
    ("TotalCalls", None, "Count"),
    ("FailedCalls", "status", "Count"),
    ("ProcessedPromptTokens", "prompt_tokens", "Count"),
    ("GeneratedTokens", "completion_tokens", "Count"),
    ("TokenTransaction", "total_tokens", "Count"),
    ("DataIn", "bytes_in", "Bytes"),
    ("DataOut", "bytes_out", "Bytes"),
)
PERCENTILES = (0.5, 0.95, 0.99)
COLUMNS = (
    "TimeGenerated",
    "MetricName",
    "Total",
    "Count",
    "Maximum",
    "Minimum",
    "Average",
    "TimeGrain",
    "UnitName",
    "P50",
    "P95",
    "P99",
)

_SPAN = re.compile(r"^\s*([0-9]+)\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The widest grain: one bucket per year.
MAX_GRAIN_S = 366 * 86400


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One line of the health table: a metric over one time bucket."""

    TimeGenerated: datetime
    MetricName: str
    Total: float
    Count: int
    Maximum: float | None
    Minimum: float | None
    Average: float | None
    TimeGrain: str
    UnitName: str
    P50: float | None = None
    P95: float | None = None
    P99: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as a plain dict in column order."""
        return asdict(self)


def _span_seconds(text: str) -> int | None:
    """Seconds in ``15m``, ``2h``, ``7d``; None if ``text`` is not of that form."""
    match = _SPAN.match(text)
    if not match:
        return None
    digits, unit = match.groups()
    # More digits than this is past every bound below, and past int()'s digit limit too.
    if len(digits) > 15:
        return 10**15
    return int(digits) * _SECONDS[unit]


def _shown(text: str) -> str:
    # A value pasted by mistake can be thousands of characters; the message shows its start.
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse_grain(grain: str) -> int:
    """Seconds in a grain such as ``1m``, ``5m``, ``1h``; :class:`LlmvigilError` if malformed.

    A grain is from ``1s`` to ``366d``.
    """
    seconds = _span_seconds(grain)
    if not seconds or seconds > MAX_GRAIN_S:
        raise LlmvigilError(
            f"time grain {_shown(grain)} is not understood; use a number and a unit (s, m, h, d) "
            "from 1s to 366d: 1m, 5m, 1h or 1d"
        )
    return seconds


def iso_duration(seconds: int) -> str:
    """``60`` -> ``PT1M``, the TimeGrain notation of cloud monitors."""
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    if seconds % 60 == 0:
        return f"PT{seconds // 60}M"
    return f"PT{seconds}S"


def _aggregates(column: sa.ColumnElement[Any], prefix: str) -> list[sa.Label[Any]]:
    return [
        sa.func.sum(column).label(f"{prefix}_total"),
        sa.func.count(column).label(f"{prefix}_count"),
        sa.func.max(column).label(f"{prefix}_max"),
        sa.func.min(column).label(f"{prefix}_min"),
        sa.func.avg(column).label(f"{prefix}_avg"),
    ]


def health_query(grain_seconds: int | None, filters: list[sa.ColumnElement[bool]]) -> sa.Select:
    """The SQL aggregate behind :func:`health_table`, one row per bucket (``None``: one row
    for every matching span, whatever its time)."""
    s = schema.spans.c
    epoch = sa.extract("epoch", s.start_time)
    if grain_seconds is None:
        bucket = sa.func.min(epoch).label("bucket")
        columns: list[Any] = [bucket, sa.func.count().label("calls")]
    else:
        bucket = (sa.func.floor(epoch / grain_seconds) * grain_seconds).label("bucket")
        columns = [bucket, sa.func.count().label("calls")]
    columns.append(sa.func.sum(sa.case((s.status == "error", 1), else_=0)).label("failed"))
    for name, column, _unit in METRICS:
        if column in (None, "status"):
            continue
        columns.extend(_aggregates(s[column], name))
    for p in PERCENTILES:
        columns.append(
            sa.func.percentile_cont(p).within_group(s.latency_ms).label(f"p{round(p * 100)}")
        )
    query = sa.select(*columns).where(*filters)
    if grain_seconds is None:
        return query
    return query.group_by(bucket).order_by(bucket)


def rollup_health_table(
    store: Any,
    grain: str,
    since: datetime,
    until: datetime,
    filters: Mapping[str, str],
    kind: str | None = "llm",
) -> list[MetricRow]:
    """The health table of :func:`health_table` for spans in ``[since, until)`` matching
    ``filters`` (column: value) and ``kind``, read from ``span_rollups`` (with the raw spans
    they do not hold yet, see :func:`llmvigil.storage.rollups.span_traffic`); ``grain`` must be
    a multiple of the rollups' 5 minutes. Totals, counts, minimums and maximums are those of
    the raw table; averages too, up to floating-point rounding; latency percentiles are read
    from the rollups' histogram, within :data:`~llmvigil.storage.rollups.PERCENTILE_ERROR`.
    Raises :class:`LlmvigilError` for a grain that is not such a multiple."""
    from llmvigil.storage.rollups import span_traffic

    seconds = parse_grain(grain)
    if seconds % schema.ROLLUP_SECONDS:
        raise LlmvigilError(
            f"time grain {_shown(grain)} is not a multiple of the rollups' "
            f"{schema.ROLLUP_SECONDS // 60} minutes; use 5m, 15m, 1h or 1d, or the raw table"
        )
    table = span_traffic(store, [(since, until)], filters, kind, seconds)
    measured = [(name, column) for name, column, _ in METRICS if column not in (None, "status")]
    kept = ["bucket", "calls", "errors"]
    parts = ("sum", "count", "min", "max")
    kept += [f"{column}_{part}" for _, column in measured for part in parts]
    percentiles = {p: table[p].to_pylist() for p in ("p50", "p95", "p99")}
    buckets = []
    for i, row in enumerate(table.select(kept).to_pylist()):
        b = {"bucket": row["bucket"], "calls": row["calls"], "failed": row["errors"]}
        for name, column in measured:
            total, count = row[f"{column}_sum"], row[f"{column}_count"]
            b[f"{name}_total"], b[f"{name}_count"] = total, count
            b[f"{name}_max"], b[f"{name}_min"] = row[f"{column}_max"], row[f"{column}_min"]
            b[f"{name}_avg"] = total / count if count else None
        for p in ("p50", "p95", "p99"):
            b[p] = percentiles[p][i]
        buckets.append(b)
    return _metric_rows(buckets, iso_duration(seconds))


def health_table(
    engine: sa.Engine,
    grain: str = "1m",
    filters: list[sa.ColumnElement[bool]] | None = None,
) -> list[MetricRow]:
    """Aggregate spans matching ``filters`` into :class:`MetricRow` lines, oldest bucket first."""
    seconds = parse_grain(grain)
    with engine.connect() as conn:
        buckets = conn.execute(health_query(seconds, filters or [])).mappings().all()
    return _metric_rows(buckets, iso_duration(seconds))


def window_health(
    engine: sa.Engine, since: datetime, until: datetime, filters: list[sa.ColumnElement[bool]]
) -> list[MetricRow]:
    """The health table's metrics over one window ``[since, until)`` (``filters`` hold its
    bounds), as one bucket stamped ``since``; no rows when no span matches."""
    seconds = max(1, round((until - since).total_seconds()))
    with engine.connect() as conn:
        buckets = conn.execute(health_query(None, filters)).mappings().all()
    stamp = since.replace(tzinfo=UTC).timestamp()
    buckets = [{**b, "bucket": stamp} for b in buckets if b["calls"]]
    return _metric_rows(buckets, iso_duration(seconds))


def _metric_rows(buckets: Sequence[Mapping[str, Any]], grain_name: str) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for b in buckets:
        when = datetime.fromtimestamp(float(b["bucket"]), UTC).replace(tzinfo=None)
        calls = int(b["calls"])
        for name, column, unit in METRICS:
            if column is None:
                rows.append(MetricRow(when, name, calls, calls, 1, 1, 1, grain_name, unit))
                continue
            if column == "status":
                # Per call 1 (failed) or 0, so the Average is the error rate.
                failed = int(b["failed"] or 0)
                rows.append(
                    MetricRow(
                        when,
                        name,
                        failed,
                        calls,
                        1 if failed else 0,
                        1 if failed == calls else 0,
                        failed / calls,
                        grain_name,
                        unit,
                    )
                )
                continue
            percentiles = (
                {"P50": _number(b["p50"]), "P95": _number(b["p95"]), "P99": _number(b["p99"])}
                if name == "Latency"
                else {}
            )
            rows.append(
                MetricRow(
                    when,
                    name,
                    _number(b[f"{name}_total"]) or 0.0,
                    int(b[f"{name}_count"] or 0),
                    _number(b[f"{name}_max"]),
                    _number(b[f"{name}_min"]),
                    _number(b[f"{name}_avg"]),
                    grain_name,
                    unit,
                    **percentiles,
                )
            )
    return rows


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


_MOMENT_FORMS = (
    "use ISO 8601 (2026-11-24T09:00, UTC unless a zone is given) or a span back from now "
    "(15m, 2h, 7d)"
)


def parse_since(
    text: str, now: datetime | None = None, *, option: str = "--since"
) -> datetime | None:
    """A window's start: ``all`` (any case) is ``None``, no lower bound; else :func:`parse_moment`.

    Raises :class:`LlmvigilError` naming ``option`` for anything else it does not read.
    """
    if text.strip().lower() == "all":
        return None
    try:
        return parse_moment(text, now, option=option)
    except LlmvigilError as exc:
        raise LlmvigilError(f"{exc}, or `all` for no lower bound") from None


def parse_moment(text: str, now: datetime | None = None, *, option: str = "time") -> datetime:
    """A time for ``--since``/``--until``, in UTC without a zone.

    ISO 8601 (UTC when no zone is given) or a span back from now (``15m``, ``2h``, ``7d``),
    between the years 1 and 9999 once in UTC. Raises :class:`LlmvigilError` naming
    ``option`` (``"--since"``) otherwise, and for an empty value.

    Example::

        parse_moment("2h")                        # two hours ago
        parse_moment("2026-11-24T09:00+01:00")    # datetime(2026, 11, 24, 8, 0)
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    shown = _shown(text)
    if not text.strip():
        raise LlmvigilError(f"{option} is empty; {_MOMENT_FORMS}")
    seconds = _span_seconds(text)
    if seconds is not None:
        reach = (now - datetime.min).days
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:
            raise LlmvigilError(
                f"{option} {shown} reaches back before the year 1; a span back is at most "
                f"{reach}d, or give an ISO 8601 time"
            ) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LlmvigilError(f"{option} {shown} is not understood; {_MOMENT_FORMS}") from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise LlmvigilError(
                f"{option} {shown} is outside the years 1 to 9999 once turned into UTC; "
                "give a time inside them"
            ) from None
    return moment
