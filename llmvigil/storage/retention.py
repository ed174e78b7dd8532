"""Retention: delete spans past their age, with the rows that belong to them.

A span goes when its ``start_time`` is older than its app's retention (``apps``,
else ``spans_days``); with it go its ``evaluations``, its ``span_vectors`` and
its ``feedback``, and the feedback given to its trace once no span of that
trace is left. The collectors' drop reports (``collector_drops``) of an app go
at the same age as its spans, by when they were reported: they count spans
that never reached the store, and would otherwise outlive every span of their
time. The other tables are not per span and stay: ``drift_results``
are aggregates of windows (the history of what drifted outlives the spans it
was computed from, as a cloud monitor's metrics outlive its logs),
``drift_baselines`` are window bounds, and the ``alert_*`` tables record
episodes, deliveries and hook runs, which name rules and groups, not spans.

Spans are deleted app by app, oldest first, in batches of ``batch_size``: each
batch is one transaction that deletes the batch's spans and every dependent row
together, so a process killed mid-way leaves a consistent store and the next run
goes on from there. A dry run counts the same rows with aggregates and deletes
nothing.

On DuckDB (``benchmarks/bench_retention.py``: 200,000 spans, each with 3
evaluations, a quarter with vectors, a tenth with feedback; batches of 5,000; 2
cores busy with other work) deleting 100,000 spans with their 440,000 rows takes
6 to 11 s as the load varies, the dry run 0.1 to 0.7 s. Nearly all of it is
DuckDB taking each row out of its table's primary-key index at commit (about 13
us a row; the same delete from a table without a key commits in a millisecond),
so a bigger batch is no faster per span; it only holds its transaction longer.

Example::

    policy = RetentionPolicy(spans_days=30, apps={"checkout": 7})
    report = store.delete_expired(policy, dry_run=True)
    report.totals    # {'spans': 1200, 'evaluations': 3600, 'span_vectors': 300, ...}
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from llmvigil.storage import schema
from llmvigil.storage.rollups import delete_rollups_before

if TYPE_CHECKING:
    import duckdb

#: The tables retention deletes from, in the order a report lists them.
TABLES = ("spans", "evaluations", "span_vectors", "feedback", "collector_drops")


@dataclass(frozen=True)
class RetentionPolicy:
    """How long spans are kept: ``spans_days`` for every app, ``apps`` for some; 0 is for ever.

    ``batch_size`` bounds the spans (and their rows) deleted in one transaction.
    """

    spans_days: int = 0
    apps: Mapping[str, int] = field(default_factory=dict)
    batch_size: int = 5_000

    @property
    def deletes_anything(self) -> bool:
        """True when some app's spans are ever deleted."""
        return self.spans_days > 0 or any(days > 0 for days in self.apps.values())

    def rules(
        self, now: datetime, app: sa.Column = schema.spans.c.app
    ) -> list[tuple[sa.ColumnElement[bool], datetime]]:
        """``(which spans, cutoff)`` pairs: spans matching one and older than its cutoff go
        (``app``: the app column of another table the same rules apply to)."""
        rules = [
            (app == name, now - timedelta(days=days))
            for name, days in sorted(self.apps.items())
            if days > 0
        ]
        if self.spans_days > 0:
            others = sa.or_(app.is_(None), app.not_in(list(self.apps))) if self.apps else sa.true()
            rules.append((others, now - timedelta(days=self.spans_days)))
        return rules

    def cutoff(self, app: str | None, now: datetime) -> datetime | None:
        """The moment before which ``app``'s spans go, or None when they are kept for ever."""
        days = self.apps.get(app, self.spans_days) if app is not None else self.spans_days
        return now - timedelta(days=days) if days > 0 else None


@dataclass
class RetentionReport:
    """What one retention run deleted (or, for a dry run, would delete), per app and table."""

    dry_run: bool
    #: The moment ages were measured from (UTC, no zone).
    now: datetime
    #: Per app (None: spans with no app): rows per table of :data:`TABLES`.
    deleted: dict[str | None, dict[str, int]] = field(default_factory=dict)
    #: Per app with old spans: the moment before which its spans go.
    cutoffs: dict[str | None, datetime] = field(default_factory=dict)
    #: Transactions committed (0 for a dry run).
    batches: int = 0
    seconds: float = 0.0
    #: True when the run was stopped before it deleted everything due.
    stopped: bool = False
    #: Rows per table whose span was already gone (see :func:`_sweep_orphans`).
    orphans: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))

    @property
    def totals(self) -> dict[str, int]:
        """Rows per table over every app, with the orphans."""
        return {
            t: sum(counts.get(t, 0) for counts in self.deleted.values()) + self.orphans[t]
            for t in TABLES
        }

    def add(self, app: str | None, counts: Mapping[str, int]) -> None:
        """Count ``counts`` (rows per table) as deleted for ``app``."""
        mine = self.deleted.setdefault(app, dict.fromkeys(TABLES, 0))
        for table, rows in counts.items():
            mine[table] += rows


def _app_is(app: str | None) -> sa.ColumnElement[bool]:
    column = schema.spans.c.app
    return column.is_(None) if app is None else column == app


def _apps_with_old_rows(
    conn: sa.Connection,
    policy: RetentionPolicy,
    now: datetime,
    table: sa.Table = schema.spans,
    stamp: str = "start_time",
) -> list:
    """Every app holding a row of ``table`` (spans by default) whose ``stamp`` is past its
    app's cutoff: overrides by name, the others from the store."""
    apps: list[str | None] = []
    for condition, cutoff in policy.rules(now, table.c.app):
        query = sa.select(table.c.app).where(condition, table.c[stamp] < cutoff).distinct()
        apps.extend(row[0] for row in conn.execute(query))
    # The order deletion goes in; a dry run attributes a trace's feedback by it (None last).
    return sorted(set(apps), key=lambda a: (a is None, a or ""))


def run_retention(
    engine: sa.Engine,
    policy: RetentionPolicy,
    *,
    now: datetime,
    dry_run: bool = False,
    duck: duckdb.DuckDBPyConnection | None = None,
    stop: Callable[[], bool] | None = None,
    orphans_since: datetime | None = None,
) -> RetentionReport:
    """Delete (or with ``dry_run`` count) what ``policy`` says is past its age, as of ``now``,
    then the evaluations and vectors written since ``orphans_since`` (None: ever) for spans
    already gone.

    ``duck`` is the store's DuckDB connection, when it has one. ``stop`` is asked between
    batches; when it says True the run ends there (the next one continues).
    """
    started = time.perf_counter()
    report = RetentionReport(dry_run=dry_run, now=now)
    if not policy.deletes_anything:
        return report
    with engine.connect() as conn:
        apps = _apps_with_old_rows(conn, policy, now)
    for app in apps:
        cutoff = policy.cutoff(app, now)
        if cutoff is None:  # cannot happen: only apps under a rule were found
            continue
        report.cutoffs[app] = cutoff
        if dry_run:
            with engine.connect() as conn:
                report.add(app, _count(conn, policy, now, apps, app, cutoff))
            continue
        if not _delete_app(engine, duck, app, cutoff, policy.batch_size, report, stop):
            report.stopped = True
            break
    if not report.stopped and not _delete_drops(engine, duck, policy, now, report, stop, dry_run):
        report.stopped = True
    if not report.stopped:
        _sweep_orphans(engine, duck, orphans_since, policy.batch_size, report, stop, dry_run)
    report.seconds = time.perf_counter() - started
    return report


# -- deleting -------------------------------------------------------------------------------


def _delete_app(
    engine: sa.Engine,
    duck: duckdb.DuckDBPyConnection | None,
    app: str | None,
    cutoff: datetime,
    batch_size: int,
    report: RetentionReport,
    stop: Callable[[], bool] | None,
) -> bool:
    """Delete ``app``'s spans before ``cutoff`` batch by batch; False if stopped first."""
    while True:
        if stop is not None and stop():
            return False
        with engine.begin() as conn:
            counts, selected = _delete_batch(conn, duck, app, cutoff, batch_size)
        if selected:
            report.batches += 1
            report.add(app, counts)
        # Fewer than a batch: nothing older is left. None deleted: the rows went under this
        # run's feet (another process deleted them). Either way this app is done.
        if selected < batch_size or counts["spans"] == 0:
            with engine.begin() as conn:  # its score rollups go with it (whole buckets)
                delete_rollups_before(conn, cutoff, app or "")
            return True


def _delete_drops(
    engine: sa.Engine,
    duck: duckdb.DuckDBPyConnection | None,
    policy: RetentionPolicy,
    now: datetime,
    report: RetentionReport,
    stop: Callable[[], bool] | None,
    dry_run: bool,
) -> bool:
    """Delete (or count) the drop reports past their app's age, app by app, oldest first, in
    batches of ``policy.batch_size``; False if stopped first."""
    d = schema.collector_drops
    with engine.connect() as conn:
        apps = _apps_with_old_rows(conn, policy, now, d, "reported_at")
    for app in apps:
        cutoff = policy.cutoff(app, now)
        if cutoff is None:  # cannot happen: only apps under a rule were found
            continue
        report.cutoffs.setdefault(app, cutoff)
        old = sa.and_(d.c.app == app, d.c.reported_at < cutoff)
        if dry_run:
            with engine.connect() as conn:
                count = sa.select(sa.func.count()).select_from(d).where(old)
                report.add(app, {"collector_drops": _scalar(conn, count)})
            continue
        while True:
            if stop is not None and stop():
                return False
            with engine.begin() as conn:
                query = sa.select(d.c.report_id).where(old).order_by(d.c.reported_at)
                ids = [row[0] for row in conn.execute(query.limit(policy.batch_size))]
                deleted = _delete_ids(conn, duck, d.c.report_id, ids) if ids else 0
            if ids:
                report.batches += 1
                report.add(app, {"collector_drops": deleted})
            if len(ids) < policy.batch_size or not deleted:
                break
    return True


#: Tables only the evaluators write, for spans they read from the store, and the column each
#: stamps when the row is written.
_SCORED = ((schema.evaluations, "evaluated_at"), (schema.span_vectors, "created_at"))


def _sweep_orphans(
    engine: sa.Engine,
    duck: duckdb.DuckDBPyConnection | None,
    since: datetime | None,
    batch_size: int,
    report: RetentionReport,
    stop: Callable[[], bool] | None,
    dry_run: bool,
) -> None:
    """Delete the evaluations and vectors written since ``since`` whose span is gone.

    An evaluator that read a span just before a batch deleted it writes its scores after
    (in ``llmvigil up`` both jobs start together, oldest spans first): rows no later run
    would find, their span being gone. They are stamped when written, so a run that sweeps
    what was written since the previous run began finds them all. Feedback is not swept:
    it may come before its span does.
    """
    s = schema.spans
    for table, stamp in _SCORED:
        orphan = [~sa.exists().where(s.c.span_id == table.c.span_id)]
        if since is not None:
            orphan.append(table.c[stamp] >= since)
        if dry_run:
            with engine.connect() as conn:
                count = sa.select(sa.func.count()).select_from(table).where(*orphan)
                report.orphans[table.name] += _scalar(conn, count)
            continue
        while not (stop is not None and stop()):
            with engine.begin() as conn:
                query = sa.select(table.c.span_id).where(*orphan).distinct().limit(batch_size)
                ids = [row[0] for row in conn.execute(query)]
                deleted = _delete_ids(conn, duck, table.c.span_id, ids) if ids else 0
            report.orphans[table.name] += deleted
            if len(ids) < batch_size or not deleted:
                break


def _delete_batch(
    conn: sa.Connection,
    duck: duckdb.DuckDBPyConnection | None,
    app: str | None,
    cutoff: datetime,
    batch_size: int,
) -> tuple[dict[str, int], int]:
    """Delete up to ``batch_size`` of ``app``'s oldest spans before ``cutoff`` and their rows,
    in the caller's transaction; return the rows deleted per table and the spans selected."""
    s, f = schema.spans, schema.feedback
    rows = conn.execute(
        sa.select(s.c.span_id, s.c.trace_id)
        .where(_app_is(app), s.c.start_time < cutoff)
        .order_by(s.c.start_time, s.c.span_id)
        .limit(batch_size)
    ).all()
    if not rows:
        return dict.fromkeys(TABLES, 0), 0
    ids = [r[0] for r in rows]
    counts = {
        "evaluations": _delete_ids(conn, duck, schema.evaluations.c.span_id, ids),
        "span_vectors": _delete_ids(conn, duck, schema.span_vectors.c.span_id, ids),
        "feedback": _delete_ids(conn, duck, f.c.span_id, ids),
        "spans": _delete_ids(conn, duck, s.c.span_id, ids),
    }
    counts["feedback"] += _delete_trace_feedback(conn, duck, {r[1] for r in rows})
    return counts, len(rows)


def _delete_trace_feedback(
    conn: sa.Connection, duck: duckdb.DuckDBPyConnection | None, traces: set[str]
) -> int:
    """Delete the feedback given to a trace of ``traces`` (not to one of its spans) when no
    span of that trace is left."""
    s, f = schema.spans, schema.feedback
    given_to_trace = sa.select(f.c.feedback_id, f.c.trace_id).where(f.c.span_id.is_(None))
    rated = _select_in(conn, duck, given_to_trace, f.c.trace_id, sorted(traces))
    if not rated:
        return 0
    rated_traces = sorted({trace for _, trace in rated})
    left = _select_in(conn, duck, sa.select(s.c.trace_id).distinct(), s.c.trace_id, rated_traces)
    alive = {row[0] for row in left}
    gone = [feedback_id for feedback_id, trace in rated if trace not in alive]
    return _delete_ids(conn, duck, f.c.feedback_id, gone) if gone else 0


_BATCH_TABLE = "_llmvigil_retention_ids"


def _delete_ids(
    conn: sa.Connection,
    duck: duckdb.DuckDBPyConnection | None,
    column: sa.Column,
    ids: list[str],
) -> int:
    """Delete the rows of ``column.table`` whose ``column`` is one of ``ids``; return how many.

    On DuckDB the ids go in as an Arrow table joined on (a hash semi-join): bound as
    5,000 parameters of an ``IN`` list, the benchmark's run took 1.6 to 1.7 times as
    long (13 s against 8, 18 against 11). PostgreSQL takes the ids as one array
    parameter (``= ANY``), which its primary key and span_id indexes look up.
    """
    if duck is not None:
        return _with_ids_table(
            conn, ids,
            f"DELETE FROM {column.table.name} WHERE {column.name} IN "
            f"(SELECT id FROM {_BATCH_TABLE})",
        )  # fmt: skip
    statement = sa.delete(column.table).where(column == sa.any_(_array(ids)))
    return int(conn.execute(statement).rowcount or 0)


def _select_in(
    conn: sa.Connection,
    duck: duckdb.DuckDBPyConnection | None,
    query: sa.Select,
    column: sa.Column,
    ids: list[str],
) -> list[tuple]:
    """The rows of ``query`` whose ``column`` is one of ``ids`` (see :func:`_delete_ids`)."""
    if duck is not None:
        subquery = sa.select(sa.column("id")).select_from(sa.table(_BATCH_TABLE))
        compiled = query.where(column.in_(subquery)).compile(
            dialect=conn.dialect, compile_kwargs={"literal_binds": True}
        )
        return _with_ids_table(conn, ids, str(compiled), fetch=True)
    return [tuple(r) for r in conn.execute(query.where(column == sa.any_(_array(ids))))]


def _array(ids: list[str]) -> sa.BindParameter:
    return sa.bindparam("ids", ids, type_=ARRAY(sa.String))


def _with_ids_table(conn: sa.Connection, ids: list[str], sql: str, fetch: bool = False):
    # The SQLAlchemy connection's own DuckDB cursor, so the statement runs in its transaction.
    cursor = conn.connection.driver_connection
    table = pa.table({"id": pa.array(ids, pa.string())})
    cursor.register(_BATCH_TABLE, table)
    try:
        result = cursor.execute(sql)
        return [tuple(r) for r in result.fetchall()] if fetch else int(result.fetchone()[0])
    finally:
        cursor.unregister(_BATCH_TABLE)


# -- counting (dry run) -------------------------------------------------------------------


def _count(
    conn: sa.Connection,
    policy: RetentionPolicy,
    now: datetime,
    order: list[str | None],
    app: str | None,
    cutoff: datetime,
) -> dict[str, int]:
    """What deleting ``app``'s spans before ``cutoff`` would delete, per table, without doing it.

    Trace feedback is counted where the run deletes it: with the app whose spans of that
    trace go last in ``order``, and only when no span of the trace stays.
    """
    s, f = schema.spans, schema.feedback
    going = sa.and_(_app_is(app), s.c.start_time < cutoff)
    counts = {"spans": _scalar(conn, sa.select(sa.func.count()).where(going))}
    for name, table in (
        ("evaluations", schema.evaluations),
        ("span_vectors", schema.span_vectors),
        ("feedback", f),
    ):
        joined = table.join(s, s.c.span_id == table.c.span_id)
        counts[name] = _scalar(conn, sa.select(sa.func.count()).select_from(joined).where(going))
    other = s.alias("other")
    goes = sa.or_(
        *[_on(other, sa.and_(rule, s.c.start_time < cut)) for rule, cut in policy.rules(now)]
    )
    rank = {a: i for i, a in enumerate(order)}
    later = [a for a in order if rank[a] > rank[app]]
    trace_rows = sa.select(sa.func.count()).where(
        f.c.span_id.is_(None),
        f.c.trace_id.in_(sa.select(s.c.trace_id).where(going)),
        ~sa.exists().where(other.c.trace_id == f.c.trace_id, sa.not_(goes)),
        ~sa.exists().where(other.c.trace_id == f.c.trace_id, goes, _app_in(other, later)),
    )
    counts["feedback"] += _scalar(conn, trace_rows)
    return counts


def _on(alias: sa.Alias, condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """``condition`` over ``spans`` rewritten to read ``alias``'s columns."""
    from sqlalchemy.sql.util import ClauseAdapter

    return ClauseAdapter(alias).traverse(condition)


def _app_in(alias: sa.Alias, apps: list[str | None]) -> sa.ColumnElement[bool]:
    named = [a for a in apps if a is not None]
    parts = [alias.c.app.in_(named)] if named else []
    if None in apps:
        parts.append(alias.c.app.is_(None))
    return sa.or_(*parts) if parts else sa.false()


def _scalar(conn: sa.Connection, query: sa.Select) -> int:
    return int(conn.execute(query).scalar() or 0)


# -- the scheduled job ---------------------------------------------------------------------


class RetentionJob:
    """A scheduler job: each call deletes what ``policy`` says is past its age from ``store``.

    :meth:`stop` ends a run in hand after its current batch, so an owner shutting down
    does not wait for a long first run over years of spans.
    """

    def __init__(self, store, policy: RetentionPolicy, log: Callable[[str], None]) -> None:
        self.store = store
        self.policy = policy
        self.log = log
        self._stopping = threading.Event()
        # Orphans are looked for among the rows written since the last whole run began;
        # the first run of a process looks at all of them.
        self._swept_since: datetime | None = None

    def __call__(self) -> RetentionReport:
        started = datetime.now(UTC).replace(tzinfo=None)
        report = self.store.delete_expired(
            self.policy, stop=self._stopping.is_set, orphans_since=self._swept_since
        )
        if not report.stopped:
            self._swept_since = started
        if any(report.totals.values()):
            self.log(describe(report))
        return report

    def stop(self) -> None:
        """Let a run in hand end after its batch; later runs do nothing."""
        self._stopping.set()


def describe(report: RetentionReport) -> str:
    """One line saying what a run deleted (or would delete), for logs."""
    totals = report.totals
    verb = "would delete" if report.dry_run else "deleted"
    apps = ", ".join(
        f"{app or '(no app)'} {counts['spans']}" for app, counts in report.deleted.items()
    )
    orphans = report.orphans["evaluations"] + report.orphans["span_vectors"]
    return (
        f"retention {verb} {totals['spans']} spans ({apps or 'none'}), "
        f"{totals['evaluations']} evaluations, {totals['span_vectors']} vectors, "
        f"{totals['feedback']} feedback, {totals['collector_drops']} drop reports in "
        f"{report.batches} batches, {report.seconds:.1f} s"
        + (f"; {orphans} of those rows were of spans already gone" if orphans else "")
        + ("; stopped before the end" if report.stopped else "")
    )
