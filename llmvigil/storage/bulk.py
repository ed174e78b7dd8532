"""Each engine's own bulk path for appending span batches, idempotent by ``span_id``.

DuckDB reads the Arrow table in place (no row-by-row conversion); PostgreSQL
receives it through ``COPY`` into a temporary table and an ``INSERT ... ON
CONFLICT DO NOTHING`` from there, so a resent batch inserts nothing twice and
a batch is committed whole or not at all.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from llmvigil.storage.schema import SPAN_COLUMNS

_COLUMN_LIST = ", ".join(f'"{c}"' for c in SPAN_COLUMNS)


def append_duckdb(cursor: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert ``table`` into ``spans`` through DuckDB's Arrow scan; return rows inserted.

    The fast path skips spans already stored with an anti-join over the
    batch's own time range (a resent span keeps its start time, and zone maps
    let DuckDB read only that part of the table), then inserts plainly: about
    a third faster than ``INSERT OR IGNORE``. If that still meets the key (an
    id reused with another start time, or a span twice in one batch), the
    batch is rolled back and appended with ``INSERT OR IGNORE``.
    """
    name = "_llmvigil_span_batch"
    cursor.register(name, table)
    try:
        try:
            return _in_transaction(cursor, _FAST_INSERT.format(batch=name))
        except duckdb.ConstraintException:
            return _in_transaction(cursor, _IGNORING_INSERT.format(batch=name))
    finally:
        cursor.unregister(name)


_FAST_INSERT = (
    f"INSERT INTO spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {{batch}} AS b "
    "WHERE NOT EXISTS (SELECT 1 FROM spans AS s WHERE s.span_id = b.span_id "
    "AND s.start_time BETWEEN (SELECT min(start_time) FROM {batch}) "
    "AND (SELECT max(start_time) FROM {batch}))"
)
_IGNORING_INSERT = (
    f"INSERT OR IGNORE INTO spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {{batch}}"
)


def _in_transaction(cursor: duckdb.DuckDBPyConnection, statement: str) -> int:
    cursor.execute("BEGIN TRANSACTION")
    try:
        inserted = cursor.execute(statement).fetchone()[0]
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    return int(inserted)


def append_postgres(conn: sa.Connection, table: pa.Table) -> int:
    """Insert ``table`` into ``spans`` through COPY; the caller owns the transaction."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _llmvigil_span_batch "
            "(LIKE spans INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        columns = table.column_names
        with cur.copy(f"COPY _llmvigil_span_batch ({', '.join(columns)}) FROM STDIN") as copy:
            for row in zip(*(table.column(c).to_pylist() for c in columns), strict=True):
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "
            "FROM _llmvigil_span_batch ON CONFLICT (span_id) DO NOTHING"
        )
        inserted = cur.rowcount
        cur.execute("TRUNCATE _llmvigil_span_batch")
    return int(inserted)
