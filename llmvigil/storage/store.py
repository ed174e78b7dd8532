"""The Store: spans, evaluations and feedback in a DuckDB file or a PostgreSQL database.

``open_store("duckdb:///llmvigil.duckdb")`` or ``open_store("postgresql+psycopg://...")``
opens (and migrates) a store. Queries are SQLAlchemy Core and run on both
engines; span batches go through each engine's bulk path (:mod:`.bulk`).

One process owns a DuckDB file (ARCHITECTURE.md): inside it, threads share the
store safely, each query running on its own cursor of one DuckDB connection.

Example::

    with open_store("duckdb:///llmvigil.duckdb") as store:
        store.append_spans(rows)
        store.spans(since=datetime(2026, 11, 24), app="support-bot", limit=10)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from llmvigil.errors import IngestError, LlmvigilError, StoreError
from llmvigil.storage import bulk, schema
from llmvigil.storage.drift import DriftTables
from llmvigil.storage.metrics import MetricRow, health_table, rollup_health_table, window_health
from llmvigil.storage.migrations import migrate
from llmvigil.storage.retention import RetentionPolicy, RetentionReport, run_retention
from llmvigil.storage.schema import (
    EVALUATION_ARROW_SCHEMA,
    SPAN_ARROW_SCHEMA,
    SPAN_JSON_COLUMNS,
)

# Re-exported: the URL checks live apart so the configuration can use them without this module.
from llmvigil.storage.urls import (  # noqa: F401
    DUCKDB_URL_FORMS,
    _is_memory,
    duckdb_database,
    is_in_memory,
)

_REQUIRED_SPAN_COLUMNS = [f.name for f in SPAN_ARROW_SCHEMA if not f.nullable]
#: The span filter columns an evaluation row copies (besides ``span_start``).
_SPAN_LABELS = [name for name in schema.SPAN_COPIES if name != "span_start"]
_EVALUATION_COLUMNS = ", ".join(f'"{f.name}"' for f in EVALUATION_ARROW_SCHEMA)
_INSERT_EVALUATIONS = (
    f"INSERT INTO evaluations ({_EVALUATION_COLUMNS}) SELECT {_EVALUATION_COLUMNS} "
    "FROM incoming_evaluations ON CONFLICT DO NOTHING RETURNING span_id"
)


def _table_from_rows(rows: Sequence[Mapping[str, Any]], refused: dict[int, str]) -> pa.Table:
    """Dicts as a table of the ``spans`` types, column by column; a value that does not fit
    its column refuses its row (recorded in ``refused``) instead of the whole batch."""
    # Rows nearly always share their keys: compare the key views (C speed), merge only when
    # they differ. (Checking each key against a list was a quadratic 10-20 µs per row.)
    known = dict.fromkeys(rows[0]) if rows else {}
    first = known.keys()
    for row in rows:
        if row.keys() != first:
            known.update(dict.fromkeys(row))
    names = list(known)
    unknown = set(names) - set(SPAN_ARROW_SCHEMA.names)
    if unknown:
        raise IngestError(
            f"spans have unknown columns {sorted(unknown)}; "
            f"known: {', '.join(SPAN_ARROW_SCHEMA.names)}"
        )
    columns = {}
    for name in names:
        field = SPAN_ARROW_SCHEMA.field(name)
        values = [row.get(name) for row in rows]
        if name in SPAN_JSON_COLUMNS:
            values = [_json_text(v, name, i, refused) for i, v in enumerate(values)]
        try:
            columns[name] = pa.array(values, field.type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            columns[name] = _array_by_value(values, field, refused)
    return pa.table(columns) if columns else pa.table({})


def _json_text(value: Any, name: str, row: int, refused: dict[int, str]) -> Any:
    if value is None or isinstance(value, str):
        return value
    if not value and type(value) in (list, dict):  # most spans: no tags, no metadata
        return "[]" if type(value) is list else "{}"
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        refused.setdefault(row, f"{name} cannot be written as JSON ({exc})")
        return None


def _array_by_value(values: list[Any], field: pa.Field, refused: dict[int, str]) -> pa.Array:
    kept = []
    for row, value in enumerate(values):
        try:
            pa.array([value], field.type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            refused.setdefault(row, f"{field.name} {_shown(value)} is not {field.type} ({exc})")
            value = None
        kept.append(value)
    return pa.array(kept, field.type)


def _cast_column(
    column: pa.ChunkedArray, field: pa.Field, refused: dict[int, str]
) -> pa.ChunkedArray:
    """``column`` as ``field.type``; a value that does not convert refuses its row only."""
    try:
        return column.cast(field.type)
    except (pa.ArrowException, ValueError):
        pass
    kept = []
    for row in range(len(column)):
        value = column[row : row + 1]
        try:
            kept.append(value.cast(field.type))
        except (pa.ArrowException, ValueError) as exc:
            refused.setdefault(
                row, f"{field.name} {_shown(column[row])} cannot be read as {field.type} ({exc})"
            )
            kept.append(pa.chunked_array([pa.nulls(1, field.type)]))
    return pa.chunked_array([c for part in kept for c in part.chunks], field.type)


def _shown(value: Any) -> str:
    if isinstance(value, pa.Scalar):
        try:
            value = value.as_py()
        except Exception:
            return f"<{value.type}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe_refused(refused: Mapping[int, str], table: pa.Table, shown: int = 5) -> str:
    """``refused`` (row -> reason) as a message naming the first rows and their span ids."""
    ids = table.column("span_id") if "span_id" in table.column_names else None
    parts = []
    for row in sorted(refused)[:shown]:
        span = ids[row].as_py() if ids is not None and row < len(ids) else None
        parts.append(f"row {row}" + (f" (span {span})" if span else "") + f": {refused[row]}")
    more = f"; and {len(refused) - shown} more" if len(refused) > shown else ""
    return (
        f"{len(refused)} of {table.num_rows} spans are unfit for the store: "
        + "; ".join(parts)
        + more
        + ". Fix or drop those rows; Store.append_valid_spans stores the others"
    )


def utc_naive(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC without a zone (how the store keeps times); naive input is taken as UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def utc_now() -> datetime:
    """The current UTC time, without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


#: How to write a DuckDB store URL, for messages.
def _require_existing(url: str, database: str) -> None:
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    if _is_memory(database):
        raise StoreError(
            f"store url {shown} is an in-memory store: it starts empty in every process, so "
            "there is nothing to read. Name the DuckDB file the spans were loaded into, "
            f"{DUCKDB_URL_FORMS}"
        )
    path = Path(database)
    if not path.exists():
        raise StoreError(
            f"no store at {path.absolute()} (store url {shown}): nothing was stored there, "
            "and this command only reads, so it does not create one. Check the URL, "
            f"{DUCKDB_URL_FORMS}, or fill the store first: `llmvigil ingest` loads the spans "
            "your apps spooled, `llmvigil demo` records simulated ones"
        )


def _prepare_folder(path: Path) -> None:
    if path.is_dir():
        raise StoreError(
            f"{path} is a folder; a DuckDB store is a file: name one inside it, for example "
            f"duckdb:///{path / 'llmvigil.duckdb'}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot make the folder {path.parent} for the store {path}: "
            f"{exc.strerror or exc}; choose a path in a folder you can write"
        ) from None


class Store(DriftTables):
    """A migrated database holding llmvigil's tables. Build with :func:`open_store`.

    ``create=False`` opens only a store that exists: a read command given a DuckDB path
    where nothing was ever stored gets a :class:`StoreError` naming the path, rather
    than a new empty file and "no spans". PostgreSQL databases are opened (and migrated)
    either way.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self._duck = None
        self._write_lock = threading.Lock()
        # One retention run at a time in this process: the owner's scheduled run and a
        # `llmvigil retention` it runs for a caller would otherwise delete the same rows.
        self._retention_lock = threading.Lock()
        #: The DuckDB file (``~`` expanded) or ``:memory:``; None on PostgreSQL.
        self.database: str | None = None
        if url.startswith("duckdb"):
            self.database = duckdb_database(url)
            if not create:
                _require_existing(url, self.database)
            self.engine = self._open_duckdb(self.database)
        elif url.startswith("postgresql"):
            self.engine = self._open_postgres(url)
        else:
            raise StoreError(
                f"store url {url!r} names no known backend; use {DUCKDB_URL_FORMS} "
                "or postgresql+psycopg://user:password@host:5432/database"
            )
        self.backend = self.engine.dialect.name if self._duck is None else "duckdb"
        try:
            self.schema_version = migrate(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            self.close()
            raise StoreError(f"could not prepare the store at {self.display_url}: {exc}") from exc

    @property
    def in_memory(self) -> bool:
        """True for ``duckdb:///:memory:``: everything stored is gone when the process ends."""
        return self.database is not None and _is_memory(self.database)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def _open_duckdb(self, database: str) -> sa.Engine:
        import duckdb
        from duckdb_engine import ConnectionWrapper

        if not _is_memory(database):
            _prepare_folder(Path(database))
        try:
            self._duck = duckdb.connect(database)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError(
                    f"{database} is held by another process ({exc}). One process owns a DuckDB "
                    "file: stop it, or send spans to it (spool sink) instead of opening the file"
                ) from None
            raise StoreError(f"cannot open {database}: {exc}") from None
        root = self._duck
        # Every pooled SQLAlchemy connection is a cursor of the one DuckDB connection, so all
        # threads see one database and none shares a cursor with another.
        return sa.create_engine(
            "duckdb://", creator=lambda: ConnectionWrapper(root.cursor()), pool_size=8
        )

    @staticmethod
    def _open_postgres(url: str) -> sa.Engine:
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            return sa.create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # bad URL or missing driver
            raise StoreError(
                f"cannot use {url!r}: {exc}; install the driver with "
                '`pip install "llmvigil[postgres]"`'
            ) from None

    # -- lifecycle -----------------------------------------------------------------

    def prefer_steady_appends(self, checkpoint_threshold: str = "256MB") -> None:
        """DuckDB, a long-running owner: checkpoint less often (default 16 MB of WAL).

        Measured with 500-span appends on a 2-core machine (`benchmarks/RESULTS.md`, "Server
        ingest"): at 16 MB a checkpoint lands every ~20 appends and the p99 append took
        100-150 ms (max 300-390 ms); at 256 MB, 52-56 ms (max 60-70 ms). The price: a
        process killed before its checkpoint replays up to that much WAL when it restarts.
        """
        if self._duck is not None:
            self._duck.execute(f"SET checkpoint_threshold = '{checkpoint_threshold}'")

    def close(self) -> None:
        """Release every connection (and the DuckDB file lock)."""
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.dispose()
        if self._duck is not None:
            self._duck.close()
            self._duck = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- spans ---------------------------------------------------------------------

    def append_spans(self, spans: pa.Table | Sequence[Mapping[str, Any]]) -> int:
        """Append a batch of spans; return how many were new.

        ``spans`` is an Arrow table with the columns of
        :data:`~llmvigil.storage.schema.SPAN_ARROW_SCHEMA` (``ingested_at`` may be
        missing) or a list of dicts with those keys. Spans whose ``span_id`` is
        already stored are skipped, so appending a batch twice is harmless. The
        batch is checked whole before anything is written: on
        :class:`IngestError` (a column unknown or missing, or rows unfit for
        either engine: a required value missing, a value of another type, text
        that is not UTF-8 or holds a NUL, an id over 64 characters, JSON that
        does not parse; the message names the rows, columns and reasons)
        nothing was stored. :class:`StoreError` means the store failed. To
        store the good rows of a batch and get the others back, use
        :meth:`append_valid_spans`.
        """
        _, table, refused = self._conform(spans)
        if refused:
            raise IngestError(_describe_refused(refused, table))
        if table.num_rows == 0:
            return 0
        try:
            return self._append_conformed(table)
        except Exception as exc:
            if not bulk.refused_by_engine(exc):
                raise self._store_error(exc) from exc
            named = bulk.refused_rows_thorough(table)
            detail = _describe_refused(named, table) if named else bulk._first_line(exc)
            raise IngestError(f"the store refused the batch: {detail}") from None

    def append_valid_spans(self, spans: pa.Table) -> tuple[int, pa.Table]:
        """Append the spans of ``spans`` that the store accepts; return ``(inserted, refused)``.

        For batches from elsewhere (spool segments of older versions or other
        writers): a row either engine would refuse does not stop the others.
        ``refused`` holds those rows as they were given, with a
        :data:`~llmvigil.storage.bulk.REASON_COLUMN` column saying why.
        Raises :class:`IngestError` if the batch as a whole is unfit (a column
        unknown or missing: nothing stored), :class:`StoreError` if the store
        fails (the good rows may be partly stored; appending again is safe).
        """
        given, table, refused = self._conform(spans)
        good = np.setdiff1d(np.arange(table.num_rows), np.fromiter(refused, int, len(refused)))
        inserted = 0
        if good.size:
            checked = table.take(pa.array(good)) if refused else table
            try:
                inserted, engine_refused = self._append_isolating(checked, good)
            except Exception as exc:
                raise self._store_error(exc) from exc
            refused.update(engine_refused)
        rows = sorted(refused)
        out = given.take(pa.array(rows, pa.int64()))
        reasons = pa.array([refused[r] for r in rows], pa.string())
        return inserted, out.append_column(bulk.REASON_COLUMN, reasons)

    def _append_isolating(self, table: pa.Table, rows: np.ndarray) -> tuple[int, dict[int, str]]:
        try:
            return self._append_conformed(table), {}
        except Exception as exc:
            if not bulk.refused_by_engine(exc):
                raise
        # Name the rows with bad UTF-8 or JSON in one Python pass before bisecting, so a
        # segment full of them costs one pass, not two appends per row.
        bad = bulk.refused_rows_thorough(table)
        refused = {int(rows[i]): reason for i, reason in bad.items()}
        keep = np.setdiff1d(np.arange(table.num_rows), np.fromiter(bad, int, len(bad)))
        if not keep.size:
            return 0, refused
        rest = table.take(pa.array(keep)) if bad else table
        inserted, more = bulk.append_isolating(self._append_conformed, rest, rows[keep])
        return inserted, {**refused, **more}

    def _append_conformed(self, table: pa.Table) -> int:
        if self._duck is not None:
            cursor = self._duck.cursor()
            try:
                return bulk.append_duckdb(cursor, table)
            finally:
                cursor.close()
        with self.engine.begin() as conn:
            return bulk.append_postgres(conn, table)

    def _store_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, StoreError | IngestError):
            return exc
        if isinstance(exc, sa.exc.SQLAlchemyError | OSError) or type(exc).__module__.startswith(
            ("duckdb", "_duckdb", "psycopg")
        ):
            return StoreError(f"could not append spans to {self.display_url}: {exc}")
        return exc

    @staticmethod
    def _conform(
        spans: pa.Table | Sequence[Mapping[str, Any]],
    ) -> tuple[pa.Table, pa.Table, dict[int, str]]:
        """``(given, conformed, refused)``: the batch as given, as the ``spans`` schema with
        ``ingested_at`` stamped, and the rows either engine would refuse, by row, with the reason.

        Raises :class:`IngestError` only for what concerns the whole batch (unknown or missing
        columns); a value of the wrong type or a missing required value refuses its row.
        """
        refused: dict[int, str] = {}
        given = spans if isinstance(spans, pa.Table) else _table_from_rows(spans, refused)
        if "ingested_at" in given.column_names:
            given = given.drop_columns(["ingested_at"])
        unknown = set(given.column_names) - set(SPAN_ARROW_SCHEMA.names)
        if unknown:
            raise IngestError(
                f"spans have unknown columns {sorted(unknown)}; "
                f"known: {', '.join(SPAN_ARROW_SCHEMA.names)}"
            )
        missing = [
            c for c in _REQUIRED_SPAN_COLUMNS if c not in given.column_names and c != "ingested_at"
        ]
        if missing:
            raise IngestError(f"spans have no column {missing}; each span needs a value there")
        now = pa.scalar(utc_now(), pa.timestamp("us"))
        columns = []
        for field in SPAN_ARROW_SCHEMA:
            if field.name == "ingested_at":
                column = pa.array([now.as_py()] * given.num_rows, now.type)
            elif field.name in given.column_names:
                column = _cast_column(given.column(field.name), field, refused)
                if not field.nullable and column.null_count:
                    empty = pc.is_null(column).to_numpy(zero_copy_only=False)
                    for row in np.flatnonzero(empty):
                        refused.setdefault(int(row), f"{field.name} is required but empty")
            else:
                column = pa.nulls(given.num_rows, field.type)
            columns.append(column)
        table = pa.Table.from_arrays(columns, schema=SPAN_ARROW_SCHEMA.with_metadata(None))
        for row, reason in bulk.refused_rows(table).items():
            refused.setdefault(row, reason)
        return given, table, refused

    def _span_filters(
        self,
        since: datetime | None,
        until: datetime | None,
        app: str | None,
        model: str | None,
        environment: str | None = None,
        kind: str | None = None,
        prompt_version: str | None = None,
    ) -> list[sa.ColumnElement[bool]]:
        c = schema.spans.c
        filters: list[sa.ColumnElement[bool]] = []
        if since is not None:
            filters.append(c.start_time >= utc_naive(since))
        if until is not None:
            filters.append(c.start_time < utc_naive(until))
        if app is not None:
            filters.append(c.app == app)
        if model is not None:
            filters.append(c.model == model)
        if environment is not None:
            filters.append(c.environment == environment)
        if kind is not None:
            filters.append(c.kind == kind)
        if prompt_version is not None:
            filters.append(c.prompt_version == prompt_version)
        return filters

    def spans(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        app: str | None = None,
        model: str | None = None,
        environment: str | None = None,
        trace_id: str | None = None,
        status: str | None = None,
        limit: int | None = 1000,
    ) -> list[dict[str, Any]]:
        """Spans that started in ``[since, until)`` and match the filters, oldest first."""
        filters = self._span_filters(since, until, app, model, environment)
        if trace_id is not None:
            filters.append(schema.spans.c.trace_id == trace_id)
        if status is not None:
            filters.append(schema.spans.c.status == status)
        query = (
            sa.select(schema.spans)
            .where(*filters)
            .order_by(schema.spans.c.start_time, schema.spans.c.span_id)
        )
        if limit is not None:
            query = query.limit(limit)
        return self._fetch(query)

    def count_spans(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        app: str | None = None,
        model: str | None = None,
    ) -> int:
        """How many spans started in ``[since, until)`` and match the filters."""
        query = sa.select(sa.func.count()).select_from(schema.spans)
        query = query.where(*self._span_filters(since, until, app, model))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def spans_without_evaluation(
        self, evaluator: str, version: str, limit: int = 256
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` spans, oldest first, with no score from ``evaluator`` at ``version``."""
        return self.spans_missing_evaluations([(evaluator, version)], limit)

    def metrics(
        self,
        grain: str = "1m",
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        app: str | None = None,
        model: str | None = None,
        environment: str | None = None,
        kind: str | None = "llm",
        prompt_version: str | None = None,
        from_rollups: bool = False,
    ) -> list[MetricRow]:
        """The per-grain health table (see :mod:`llmvigil.storage.metrics`) for matching spans.

        Only model calls (``kind="llm"``) count by default, as in a cloud monitor; their
        chain, tool and retrieval parents would count each request twice. ``kind=None``
        counts every span. ``from_rollups`` reads ``span_rollups`` instead of every span
        (see :func:`~llmvigil.storage.metrics.rollup_health_table`): the same totals, counts,
        minimums and maximums, latency percentiles within 4.5%; it needs ``since``, ``until``
        and a grain of whole 5 minutes.
        """
        if from_rollups:
            if since is None or until is None:
                raise LlmvigilError("a health table from rollups needs since and until")
            given = {"app": app, "model": model, "environment": environment,
                     "prompt_version": prompt_version}  # fmt: skip
            named = {k: v for k, v in given.items() if v is not None}
            return rollup_health_table(self, grain, utc_naive(since), utc_naive(until), named, kind)
        filters = self._span_filters(since, until, app, model, environment, kind, prompt_version)
        try:
            return health_table(self.engine, grain, filters)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"metrics query failed on {self.display_url}: {exc}") from exc

    def window_metrics(
        self,
        since: datetime,
        until: datetime,
        *,
        app: str | None = None,
        kind: str | None = "llm",
    ) -> list[MetricRow]:
        """The health table's metrics over the one window ``[since, until)``, whatever the grain
        would cut it into (the demo's before, during and after); empty when no span matches."""
        filters = self._span_filters(since, until, app, None, None, kind)
        try:
            return window_health(self.engine, utc_naive(since), utc_naive(until), filters)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"metrics query failed on {self.display_url}: {exc}") from exc

    def _missing_filter(
        self, wanted: Sequence[tuple[str, str]], kinds: Sequence[str] | None
    ) -> list[sa.ColumnElement[bool]]:
        s, e = schema.spans, schema.evaluations
        missing = [
            ~sa.exists().where(
                e.c.span_id == s.c.span_id,
                e.c.evaluator == name,
                e.c.evaluator_version == version,
            )
            for name, version in wanted
        ]
        filters = [sa.or_(*missing)]
        if kinds:
            filters.append(s.c.kind.in_(list(kinds)))
        return filters

    def spans_missing_evaluations(
        self,
        wanted: Sequence[tuple[str, str]],
        limit: int = 256,
        kinds: Sequence[str] | None = None,
        only: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` spans, oldest first, lacking a score from at least one of the
        ``(evaluator, version)`` pairs in ``wanted`` (among the ids ``only``, when given);
        each row's ``scored`` is the set of those evaluators that did score it already."""
        if not wanted or (only is not None and not only):
            return []
        s, e = schema.spans, schema.evaluations
        query = (
            sa.select(
                s.c.span_id,
                s.c.kind,
                s.c.start_time,
                s.c.app,
                s.c.model,
                s.c.environment,
                s.c.prompt_version,
                s.c.input_text,
                s.c.output_text,
                s.c.context,
                s.c.reference,
            )
            .where(*self._missing_filter(wanted, kinds))
            .order_by(s.c.start_time, s.c.span_id)
            .limit(limit)
        )
        if only is not None:
            query = query.where(s.c.span_id.in_(list(only)))
        rows = self._fetch(query)
        if not rows:
            return rows
        done = self._fetch(
            sa.select(e.c.span_id, e.c.evaluator, e.c.evaluator_version).where(
                e.c.span_id.in_([r["span_id"] for r in rows])
            )
        )
        pairs = set(wanted)
        scored: dict[str, set[str]] = {}
        for d in done:
            if (d["evaluator"], d["evaluator_version"]) in pairs:
                scored.setdefault(d["span_id"], set()).add(d["evaluator"])
        for row in rows:
            row["scored"] = scored.get(row["span_id"], set())
        return rows

    def claim_spans_missing_evaluations(
        self,
        wanted: Sequence[tuple[str, str]],
        worker: str,
        limit: int = 256,
        kinds: Sequence[str] | None = None,
        lease_s: float = 600.0,
    ) -> list[dict[str, Any]]:
        """PostgreSQL, several evaluate workers: :meth:`spans_missing_evaluations` for spans
        no other worker holds, each claimed for ``worker`` until :meth:`release_claims`
        (or for ``lease_s``: a worker that died lets go).

        The candidates are locked ``FOR UPDATE SKIP LOCKED`` while the claims are written,
        so two workers claiming at once take different spans; a claim meets another's
        only where that one's lease has passed.
        """
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        if not wanted:
            return []
        s, lease = schema.spans, schema.evaluation_leases
        now = utc_now()
        held = sa.exists().where(lease.c.span_id == s.c.span_id, lease.c.leased_until > now)
        candidates = (
            sa.select(s.c.span_id)
            .where(*self._missing_filter(wanted, kinds), ~held)
            .order_by(s.c.start_time, s.c.span_id)
            .limit(limit)
            .with_for_update(of=s, skip_locked=True)
            .cte("candidates")
        )
        until = now + timedelta(seconds=lease_s)
        claim = pg_insert(lease).from_select(
            ["span_id", "worker", "leased_until"],
            sa.select(candidates.c.span_id, sa.literal(worker), sa.literal(until)),
        )
        claim = claim.on_conflict_do_update(
            index_elements=[lease.c.span_id],
            set_={"worker": claim.excluded.worker, "leased_until": claim.excluded.leased_until},
            where=lease.c.leased_until <= now,
        ).returning(lease.c.span_id)
        # A claim can come back empty while work is left (its candidates were read before
        # another worker's claims on them committed), or take a span another worker has just
        # scored and let go (read before that score committed). The second is caught by
        # reading the claimed spans afresh: those already scored are let go at once. Empty
        # means done only when no unheld span lacks a score; otherwise claim again.
        unheld = sa.select(s.c.span_id).where(*self._missing_filter(wanted, kinds), ~held)
        for _ in range(20):
            try:
                with self.engine.begin() as conn:
                    claimed = list(conn.execute(claim).scalars())
                    empty = not claimed and conn.execute(unheld.limit(1)).first() is None
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"could not claim spans on {self.display_url}: {exc}") from exc
            if empty:
                return []
            rows = self.spans_missing_evaluations(wanted, len(claimed) or 1, kinds, only=claimed)
            taken = {row["span_id"] for row in rows}
            self.release_claims(worker, [i for i in claimed if i not in taken])
            if rows:
                return rows
        return []

    def release_claims(self, worker: str, span_ids: Sequence[str]) -> None:
        """Let go of ``worker``'s claims on ``span_ids`` (scored, or given up)."""
        if not span_ids:
            return
        lease = schema.evaluation_leases
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(lease).where(
                    lease.c.worker == worker, lease.c.span_id.in_(list(span_ids))
                )
            )

    def count_spans_missing_evaluations(
        self, wanted: Sequence[tuple[str, str]], kinds: Sequence[str] | None = None
    ) -> int:
        """How many spans :meth:`spans_missing_evaluations` would eventually return."""
        if not wanted:
            return 0
        query = sa.select(sa.func.count()).select_from(schema.spans)
        query = query.where(*self._missing_filter(wanted, kinds))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    # -- evaluations and feedback ----------------------------------------------------

    def write_evaluations(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store scores in one transaction; a score already stored for the same
        (span_id, evaluator, evaluator_version) is left as it is. Returns rows inserted."""
        now = utc_now()
        values = [
            {
                "span_id": r["span_id"],
                "evaluator": r["evaluator"],
                "evaluator_version": str(r["evaluator_version"]),
                "score": r.get("score"),
                "label": r.get("label"),
                "passed": r.get("passed"),
                "method": r["method"],
                "details": r.get("details") or {},
                "evaluated_at": utc_naive(r.get("evaluated_at")) or now,
                "span_start": utc_naive(r.get("span_start")),
                **{name: r.get(name) for name in _SPAN_LABELS},
            }
            for r in rows
        ]
        if not values:
            return 0
        self._copy_span_fields(values)
        if self._duck is not None:
            return self._write_evaluations_duckdb(values)
        return self._insert_ignoring_duplicates(schema.evaluations, values)

    def _write_evaluations_duckdb(self, values: list[dict[str, Any]]) -> int:
        # One statement over an Arrow table: DuckDB binds a many-row VALUES statement value
        # by value, 0.3-0.5 s for a runner batch (256 spans, 1,536 scores) on 2 cores,
        # where this takes 20-50 ms. details is JSON text as SQLAlchemy's JSON type writes
        # it (json.dumps); RETURNING counts the rows really inserted, as on PostgreSQL.
        import duckdb

        assert self._duck is not None
        cursor = self._duck.cursor()
        try:
            columns = {f.name: [v[f.name] for v in values] for f in EVALUATION_ARROW_SCHEMA}
            columns["details"] = [json.dumps(d) for d in columns["details"]]
            cursor.register(
                "incoming_evaluations", pa.table(columns, schema=EVALUATION_ARROW_SCHEMA)
            )
            cursor.execute("BEGIN TRANSACTION")
            try:
                inserted = len(cursor.execute(_INSERT_EVALUATIONS).fetchall())
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            return inserted
        except (duckdb.Error, pa.ArrowException, TypeError, ValueError) as exc:
            raise StoreError(f"could not write evaluations to {self.display_url}: {exc}") from exc
        finally:
            cursor.close()

    def _copy_span_fields(self, values: list[dict[str, Any]]) -> None:
        # Each score carries its span's start and filter columns (schema.SPAN_COPIES). Callers
        # that hold the span (the runner) pass them; the rest are looked up here.
        missing = list({v["span_id"] for v in values if v["span_start"] is None})
        if not missing:
            return
        s = schema.spans.c
        found: dict[str, dict[str, Any]] = {}
        for chunk in range(0, len(missing), 1000):
            query = sa.select(s.span_id, *(s[c] for c in schema.SPAN_COPIES.values())).where(
                s.span_id.in_(missing[chunk : chunk + 1000])
            )
            found.update((r["span_id"], r) for r in self._fetch(query))
        for v in values:
            span = found.get(v["span_id"])
            if v["span_start"] is None and span is not None:
                v.update({name: span[column] for name, column in schema.SPAN_COPIES.items()})

    def evaluations(
        self, span_id: str | None = None, evaluator: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored scores, filtered by span and evaluator."""
        e = schema.evaluations
        query = sa.select(e).order_by(e.c.span_id, e.c.evaluator, e.c.evaluator_version)
        if span_id is not None:
            query = query.where(e.c.span_id == span_id)
        if evaluator is not None:
            query = query.where(e.c.evaluator == evaluator)
        return self._fetch(query)

    def forget_failed_evaluations(
        self, wanted: Sequence[tuple[str, str]], labels: Sequence[str]
    ) -> int:
        """Delete the rows of the ``(evaluator, version)`` pairs whose label is one of ``labels``
        (failures), so the next run scores those spans again; return how many."""
        e = schema.evaluations
        pairs = [sa.and_(e.c.evaluator == n, e.c.evaluator_version == v) for n, v in wanted]
        if not pairs or not labels:
            return 0
        statement = sa.delete(e).where(sa.or_(*pairs), e.c.label.in_(list(labels)))
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(statement).rowcount or 0)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not delete evaluations on {self.display_url}: {exc}") from exc

    def evaluation_summary(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Per evaluator and version: the method that scored, spans scored, mean score, share
        passed, and rows without a score (skipped, not sampled, failed), for spans started in
        the window."""
        e, s = schema.evaluations, schema.spans
        passed = sa.case((e.c.passed.is_(True), 1.0), (e.c.passed.is_(False), 0.0))
        scoring_method = sa.func.max(sa.case((e.c.score.is_not(None), e.c.method)))
        query = (
            sa.select(
                e.c.evaluator,
                e.c.evaluator_version,
                scoring_method.label("method"),
                sa.func.count(e.c.score).label("scored"),
                sa.func.avg(e.c.score).label("mean"),
                sa.func.avg(passed).label("pass_rate"),
                (sa.func.count() - sa.func.count(e.c.score)).label("unscored"),
            )
            .select_from(e.join(s, s.c.span_id == e.c.span_id))
            .where(*self._span_filters(since, until, None, None))
            .group_by(e.c.evaluator, e.c.evaluator_version)
            .order_by(e.c.evaluator, e.c.evaluator_version)
        )
        return self._fetch(query)

    def add_feedback(
        self,
        *,
        span_id: str | None = None,
        trace_id: str | None = None,
        name: str = "rating",
        score: float | None = None,
        label: str | None = None,
        comment: str | None = None,
        source: str = "human",
        author: str | None = None,
        feedback_id: str | None = None,
    ) -> str:
        """Record a rating of a span or a trace; return its id.

        Giving the same ``feedback_id`` twice stores it once.
        """
        # Bad input, not a failing store: IngestError, as for spans.
        if not span_id and not trace_id:
            raise IngestError("feedback needs a span_id or a trace_id to attach to")
        if score is None and label is None and comment is None:
            raise IngestError("feedback needs a score, a label or a comment")
        feedback_id = feedback_id or uuid.uuid4().hex
        self._insert_ignoring_duplicates(
            schema.feedback,
            [
                {
                    "feedback_id": feedback_id,
                    "span_id": span_id,
                    "trace_id": trace_id,
                    "name": name,
                    "score": score,
                    "label": label,
                    "comment": comment,
                    "source": source,
                    "author": author,
                    "created_at": utc_now(),
                }
            ],
        )
        return feedback_id

    def feedback(self, span_id: str | None = None) -> list[dict[str, Any]]:
        """Stored feedback, oldest first, optionally for one span."""
        f = schema.feedback
        query = sa.select(f).order_by(f.c.created_at)
        if span_id is not None:
            query = query.where(f.c.span_id == span_id)
        return self._fetch(query)

    def add_collector_drops(
        self,
        *,
        report_id: str,
        dropped: int,
        app: str = "default",
        environment: str = "production",
        reported_at: datetime | None = None,
    ) -> None:
        """Record that a collector of ``app`` dropped ``dropped`` spans since its previous
        report (the ``collector.dropped`` alert metric sums these). Giving the same
        ``report_id`` twice stores it once. Raises :class:`IngestError` for a count below 1.
        """
        if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 1:
            raise IngestError(
                f"dropped is {dropped!r}: a drop report counts at least 1 span (send none "
                "when nothing was dropped)"
            )
        self._insert_ignoring_duplicates(
            schema.collector_drops,
            [
                {
                    "report_id": report_id,
                    "app": app,
                    "environment": environment,
                    "dropped": dropped,
                    "reported_at": utc_naive(reported_at) or utc_now(),
                }
            ],
        )

    def collector_drops(self) -> list[dict[str, Any]]:
        """The collectors' drop reports, oldest first."""
        c = schema.collector_drops
        return self._fetch(sa.select(c).order_by(c.c.reported_at))

    # -- retention -------------------------------------------------------------------

    def delete_expired(
        self,
        policy: RetentionPolicy,
        *,
        dry_run: bool = False,
        now: datetime | None = None,
        stop: Callable[[], bool] | None = None,
        orphans_since: datetime | None = None,
    ) -> RetentionReport:
        """Delete the spans ``policy`` says are past their age, with their evaluations, vectors
        and feedback, in transactions of ``policy.batch_size`` spans; return what went.

        ``dry_run`` counts the same rows and deletes nothing. Ages are measured from ``now``
        (default: the current UTC time). ``stop`` is asked between batches: True ends the run
        there. Evaluations and vectors written since ``orphans_since`` (default: ever) whose
        span is gone go too: an evaluator that read a span as it was deleted writes them.
        Raises :class:`StoreError` if the store fails; the batches committed before stay
        deleted, and the next run goes on from there.
        """
        moment = utc_naive(now) or utc_now()
        try:
            with self._retention_lock:
                return run_retention(
                    self.engine, policy, now=moment, dry_run=dry_run, duck=self._duck,
                    stop=stop, orphans_since=utc_naive(orphans_since),
                )  # fmt: skip
        except Exception as exc:
            if isinstance(exc, sa.exc.SQLAlchemyError) or type(exc).__module__.startswith(
                ("duckdb", "_duckdb", "psycopg")
            ):
                raise StoreError(
                    f"retention failed on {self.display_url}: {exc}; the batches deleted "
                    "before stay deleted, and the next run continues"
                ) from exc
            raise

    # -- plumbing --------------------------------------------------------------------

    def _insert_ignoring_duplicates(self, table: sa.Table, values: list[dict[str, Any]]) -> int:
        # duckdb-engine derives from the PostgreSQL dialect and DuckDB speaks ON CONFLICT, so
        # one statement serves both engines.
        # RETURNING counts the rows really inserted; executemany's rowcount is not reliable.
        key = next(iter(table.primary_key.columns))
        statement = pg_insert(table).on_conflict_do_nothing().returning(key)
        try:
            with self.engine.begin() as conn:
                return len(conn.execute(statement, values).all())
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not write {table.name} to {self.display_url}: {exc}") from exc

    def _fetch(self, query: sa.Select) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(query)]
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"query failed on {self.display_url}: {exc}") from exc


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the store at ``url``, or the one in ``llmvigil.toml`` / ``LLMVIGIL_STORE_URL``.

    ``create=False`` refuses a DuckDB file that does not exist (see :class:`Store`).
    """
    if url is None:
        from llmvigil.config import load_settings

        url = load_settings().store.url
    return Store(url, create=create)
