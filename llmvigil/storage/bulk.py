"""Each engine's own bulk path for appending span batches, idempotent by ``span_id``.

DuckDB reads the Arrow table in place (no row-by-row conversion); PostgreSQL
receives it through ``COPY`` into a temporary table and an ``INSERT ... ON
CONFLICT DO NOTHING`` from there, so a resent batch inserts nothing twice and
a batch is committed whole or not at all.
"""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa

from llmvigil.storage.schema import SPAN_COLUMNS

_COLUMN_LIST = ", ".join(f'"{c}"' for c in SPAN_COLUMNS)


def append_duckdb(cursor, table: pa.Table) -> int:
    """Insert ``table`` into ``spans`` through DuckDB's Arrow scan; return rows inserted."""
    name = "_llmvigil_span_batch"
    cursor.register(name, table)
    try:
        cursor.execute("BEGIN TRANSACTION")
        try:
            inserted = cursor.execute(
                f"INSERT OR IGNORE INTO spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {name}"
            ).fetchone()[0]
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    finally:
        cursor.unregister(name)
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
