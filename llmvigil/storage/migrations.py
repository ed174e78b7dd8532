"""Forward-only schema migrations, recorded in ``schema_version``.

Each migration is a function of a connection inside a transaction, appended to
:data:`MIGRATIONS` and never edited once released. A store written by a newer
llmvigil (a version above the last one known here) is refused rather than
guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from llmvigil.errors import StoreError
from llmvigil.storage import schema


def _create_v1_tables(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, checkfirst=True)


def _add_drift_tables(conn: sa.Connection) -> None:
    # A store created at version 1 has drift_results without these columns (nothing wrote
    # to it before drift existed); one created now has them from step 1's create_all.
    # (duckdb-engine's inspector cannot list columns: it queries a catalogue DuckDB lacks.)
    present = set(conn.execute(sa.text("SELECT * FROM drift_results LIMIT 0")).keys())
    for column in schema.drift_results.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE drift_results ADD COLUMN {column.name} {kind}"))
    schema.metadata.create_all(
        conn, tables=[schema.span_vectors, schema.drift_baselines], checkfirst=True
    )
    if conn.dialect.name == "postgresql":  # create_all above skips tables that exist
        for index in schema.drift_results.indexes:
            index.create(conn, checkfirst=True)


def _widen_duckdb_floats(conn: sa.Connection) -> None:
    # SQLAlchemy's Float is DuckDB's 32-bit FLOAT (7 digits: a p-value of 1e-160 became 0,
    # costs summed over millions of calls drifted); PostgreSQL's FLOAT was always 64-bit.
    if conn.dialect.name != "duckdb":
        return
    # The tables of versions 1 and 2 only: later ones are created with DOUBLE, by later steps.
    for table in (
        schema.spans, schema.evaluations, schema.feedback, schema.drift_results,
        schema.alert_events,
    ):  # fmt: skip
        for column in table.columns:
            if isinstance(column.type, sa.Double):
                conn.execute(
                    sa.text(f"ALTER TABLE {table.name} ALTER COLUMN {column.name} TYPE DOUBLE")
                )


def _add_alert_tables(conn: sa.Connection) -> None:
    schema.metadata.create_all(
        conn,
        tables=[schema.alert_state, schema.alert_deliveries, schema.alert_hook_runs],
        checkfirst=True,
    )


def _index_arrival_times(conn: sa.Connection) -> None:
    # PostgreSQL only (DuckDB's zone maps serve these range scans): /metrics reads what
    # arrived since its last scrape, which without an index is a scan of every span.
    if conn.dialect.name != "postgresql":
        return
    for index in (*schema.spans.indexes, *schema.evaluations.indexes):
        if index.name in ("ix_spans_ingested_at", "ix_evaluations_evaluated_at"):
            index.create(conn, checkfirst=True)


def _add_evaluation_leases(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.evaluation_leases], checkfirst=True)


def _add_hook_start_times(conn: sa.Connection) -> None:
    present = set(conn.execute(sa.text("SELECT * FROM alert_hook_runs LIMIT 0")).keys())
    if "started_at" not in present:  # a store created at this version has it already
        kind = sa.DateTime().compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE alert_hook_runs ADD COLUMN started_at {kind}"))


def _add_rollups(conn: sa.Connection) -> None:
    present = set(conn.execute(sa.text("SELECT * FROM evaluations LIMIT 0")).keys())
    missing = {k: v for k, v in schema.SPAN_COPIES.items() if k not in present}
    if missing:  # a store created at this version has them already
        for name in missing:
            kind = schema.evaluations.c[name].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE evaluations ADD COLUMN {name} {kind}"))
        copies = ", ".join(f"{name} = spans.{column}" for name, column in missing.items())
        conn.execute(
            sa.text(
                f"UPDATE evaluations SET {copies} FROM spans "
                "WHERE spans.span_id = evaluations.span_id"
            )
        )
    if conn.dialect.name == "postgresql":
        for index in schema.evaluations.indexes:
            if index.name == "ix_evaluations_span_start":
                index.create(conn, checkfirst=True)
    # Rollups start empty with no mark: the first refresh reads every evaluation (or span).
    schema.metadata.create_all(
        conn,
        tables=[schema.score_rollups, schema.span_rollups, schema.rollup_marks],
        checkfirst=True,
    )


def _add_collector_drops(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.collector_drops], checkfirst=True)


#: (version, description, step). Append only.
MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "spans, evaluations, feedback, drift_results, alert_events", _create_v1_tables),
    (
        2,
        "drift: run, filter and counts on drift_results; span_vectors; drift_baselines",
        _add_drift_tables,
    ),
    (3, "DuckDB: FLOAT columns widened to DOUBLE", _widen_duckdb_floats),
    (4, "alerts: alert_state, alert_deliveries, alert_hook_runs", _add_alert_tables),
    (5, "PostgreSQL: spans.ingested_at and evaluations.evaluated_at indexed", _index_arrival_times),
    (6, "evaluation_leases: spans claimed by an evaluate worker", _add_evaluation_leases),
    (7, "alert_hook_runs.started_at: hooks run in the background", _add_hook_start_times),
    (
        8,
        "evaluations copy their span's start and filters; score_rollups, span_rollups, "
        "rollup_marks",
        _add_rollups,
    ),
    (9, "collector_drops: the spans collectors dropped, as they report them", _add_collector_drops),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: sa.Connection) -> int:
    """The schema version recorded in the database (0 for an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(value or 0)


def migrate(engine: sa.Engine) -> int:
    """Bring the database up to :data:`LATEST`; return the version it is at."""
    with engine.begin() as conn:
        version = current_version(conn)
        if version > LATEST:
            raise StoreError(
                f"the store is at schema version {version}, newer than this llmvigil knows "
                f"({LATEST}); upgrade llmvigil (pip install -U llmvigil) to open it"
            )
        for number, description, step in MIGRATIONS:
            if number <= version:
                continue
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=number,
                    description=description,
                    applied_at=datetime.now(UTC).replace(tzinfo=None),
                )
            )
            version = number
    return version
