"""Each engine's own bulk path for appending span batches, idempotent by ``span_id``, and the
checks that keep a batch to what both engines accept.

DuckDB reads the Arrow table in place (no row-by-row conversion); PostgreSQL
receives it through ``COPY`` into a temporary table and an ``INSERT ... ON
CONFLICT DO NOTHING`` from there, so a resent batch inserts nothing twice and
a batch is committed whole or not at all.

The two engines refuse different things: PostgreSQL a NUL in any text, an id
over 64 characters, ``NaN`` or ``\\u0000`` in JSON, all of which DuckDB takes;
both text that is not UTF-8 and JSON that does not parse. :func:`refused_rows` finds, cheaply and
column-wise, the rows one would take and the other refuse, so a store holds
only what both accept; :func:`refused_rows_thorough` names the rows an engine
refused, so the good rows of a batch never wait for its bad ones. What an
engine still refuses is a :func:`refused_by_engine` error, which the store
isolates by bisecting the batch (:func:`append_isolating`); any other error
means the store itself failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from llmvigil.storage.schema import SPAN_COLUMNS, SPAN_JSON_COLUMNS, spans

_COLUMN_LIST = ", ".join(f'"{c}"' for c in SPAN_COLUMNS)

#: Span columns whose text the schema limits, in characters (ids are ``String(64)``).
TEXT_LIMITS: dict[str, int] = {
    c.name: c.type.length
    for c in spans.columns
    if isinstance(c.type, sa.String) and getattr(c.type, "length", None)
}
#: The column that says why a refused row was refused, in the table of refused rows.
REASON_COLUMN = "llmvigil_reason"


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


# -- what the engines refuse ------------------------------------------------------------


def refused_by_engine(exc: BaseException) -> bool:
    """True if ``exc`` is an engine refusing values of the batch, not the store failing.

    DuckDB: data, constraint and invalid-input errors (malformed JSON, bad
    UTF-8); PostgreSQL: data and integrity errors (class 22 and 23). A value
    that cannot even become a Python object on the way to ``COPY`` counts too.
    Connection, I/O, lock, transaction and schema errors do not: those mean
    the store is unavailable, and the batch must wait for the next attempt.
    """
    if isinstance(exc, duckdb.Error):
        return isinstance(
            exc, duckdb.DataError | duckdb.IntegrityError | duckdb.InvalidInputException
        )
    if isinstance(exc, UnicodeError | OverflowError | ValueError | pa.ArrowInvalid):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        return False
    return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)


def append_isolating(
    append: Callable[[pa.Table], int], table: pa.Table, rows: np.ndarray
) -> tuple[int, dict[int, str]]:
    """Append ``table`` with ``append``; if the engine refuses it, bisect to the refused rows.

    ``rows`` numbers the table's rows (their index in the caller's batch).
    Returns the rows inserted and, by number, each row the engine refused
    alone with its message. A batch with one bad row in 1,000 costs about 20
    appends, each committed on its own (appends are idempotent, so a retry
    after a crash midway stores nothing twice). Errors that are not
    :func:`refused_by_engine` propagate: the store failed.
    """
    try:
        return append(table), {}
    except Exception as exc:
        if not refused_by_engine(exc):
            raise
        if table.num_rows == 1:
            return 0, {int(rows[0]): f"the store refused it: {_first_line(exc)}"}
    middle = table.num_rows // 2
    inserted, refused = append_isolating(append, table.slice(0, middle), rows[:middle])
    more, refused_later = append_isolating(append, table.slice(middle), rows[middle:])
    return inserted + more, {**refused, **refused_later}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def refused_rows(table: pa.Table) -> dict[int, str]:
    """Rows of a conformed batch that DuckDB or PostgreSQL would refuse, each with the reason.

    The cheap checks, run on every batch, for what one engine takes and the
    other refuses: NUL characters in text and the schema's length limits
    (:data:`TEXT_LIMITS`), and ``\\u0000``, ``NaN`` and ``Infinity`` in JSON
    columns. Each runs over whole columns (a good batch of 50,000 spans costs
    a few milliseconds); only a column where one finds something is looked at
    row by row. What both engines refuse (text that is not UTF-8, JSON that
    does not parse) is left to them, and named by :func:`refused_rows_thorough`
    when they do.
    """
    reasons: dict[int, str] = {}
    for field in table.schema:
        if not pa.types.is_string(field.type):
            continue
        column = table.column(field.name)
        if holds_nul(column):
            for row in _matching_rows(column, "\x00"):
                reasons.setdefault(
                    row, f"{field.name} holds a NUL character, which PostgreSQL cannot store"
                )
        limit = TEXT_LIMITS.get(field.name)
        if limit is not None:
            lengths = pc.utf8_length(column)
            if (pc.max(lengths).as_py() or 0) > limit:
                over = pc.fill_null(pc.greater(lengths, limit), False)
                for row in np.flatnonzero(over.to_numpy(zero_copy_only=False)):
                    size = lengths[int(row)].as_py()
                    reasons.setdefault(
                        int(row),
                        f"{field.name} is {size} characters long; the store holds at most {limit}",
                    )
        if field.name in SPAN_JSON_COLUMNS:
            # What DuckDB's JSON accepts and PostgreSQL's refuses.
            for needle in _JSON_ONLY_DUCKDB_ACCEPTS:
                if not _holds_bytes(column, needle.encode()):
                    continue
                for row in _matching_rows(column, needle):
                    reason = _json_problem(column[row])
                    if reason is not None:
                        reasons.setdefault(row, f"{field.name} {reason}")
    return reasons


def refused_rows_thorough(table: pa.Table) -> dict[int, str]:
    """Rows with text that is not UTF-8, or JSON columns that do not parse (strictly: no
    ``NaN``) or hold ``\\u0000``, each with the reason.

    A pass over every value: run only when an engine refused a batch, to name
    its bad rows without bisecting.
    """
    reasons: dict[int, str] = {}
    for field in table.schema:
        if pa.types.is_string(field.type):
            for row in _invalid_utf8_rows(table.column(field.name)):
                reasons.setdefault(row, f"{field.name} is not valid UTF-8")
    for name in SPAN_JSON_COLUMNS:
        if name not in table.column_names:
            continue
        for row, text in enumerate(_texts(table.column(name))):
            if text is not None and row not in reasons:
                reason = _json_problem(text)
                if reason is not None:
                    reasons[row] = f"{name} {reason}"
    return reasons


def _texts(column: pa.ChunkedArray) -> list[str | None]:
    try:
        return column.to_pylist()
    except UnicodeDecodeError:  # those rows are named already; read them with replacement
        raw = column.cast(pa.binary()).to_pylist()
        return [None if v is None else v.decode("utf-8", "replace") for v in raw]


def _json_problem(value: str | pa.Scalar) -> str | None:
    try:
        text = value.as_py() if isinstance(value, pa.Scalar) else value
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # UnicodeDecodeError included
        return f"is not valid JSON ({exc})"
    if _holds_nul(value):
        return "holds a NUL character (\\u0000), which PostgreSQL cannot store"
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _value_bytes(chunk: pa.Array) -> np.ndarray:
    """The bytes of a string chunk's values, without a copy (nulls and slices respected)."""
    if len(chunk) == 0 or chunk.buffers()[2] is None:
        return np.empty(0, dtype=np.uint8)
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)
    first, last = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
    return np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[first:last]


def holds_nul(column: pa.Array | pa.ChunkedArray) -> bool:
    """True if any text of a string column holds a NUL character (PostgreSQL refuses it).

    A vectorised minimum over the values' bytes: about 1 ms per 20 MB.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        data = _value_bytes(chunk)
        if data.size and data.min() == 0:
            return True
    return False


_JSON_ONLY_DUCKDB_ACCEPTS = ("\\u0000", "NaN", "Infinity")


def _holds_bytes(column: pa.ChunkedArray, needle: bytes) -> bool:
    # Candidates where the first byte matches, narrowed byte by byte: a few ms per 10 MB.
    for chunk in column.chunks:
        data = _value_bytes(chunk)
        if data.size < len(needle):
            continue
        found = np.flatnonzero(data[: data.size - len(needle) + 1] == needle[0])
        for k in range(1, len(needle)):
            if not found.size:
                break
            found = found[data[found + k] == needle[k]]
        if found.size:
            return True
    return False


def _matching_rows(column: pa.ChunkedArray, needle: str) -> list[int]:
    found = pc.fill_null(pc.match_substring(column, needle), False)
    return [int(i) for i in np.flatnonzero(found.to_numpy(zero_copy_only=False))]


def _invalid_utf8_rows(column: pa.ChunkedArray) -> list[int]:
    try:
        column.validate(full=True)
        return []
    except pa.ArrowInvalid:
        pass
    rows = []
    for row, raw in enumerate(column.cast(pa.binary()).to_pylist()):
        if raw is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                rows.append(row)
    return rows
