"""The Store's drift tables: results, pinned baselines and the spans' stored sentence vectors.

A mixin of :class:`llmvigil.storage.Store`, kept apart so the spans and
evaluations code stays readable. A drift run writes all of its rows in one
transaction (:meth:`DriftTables.write_drift_results`), so a reader never sees
half a run; the alerts and the dashboard read :meth:`DriftTables.latest_drift`
and :meth:`DriftTables.drift_history`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from llmvigil.errors import StoreError
from llmvigil.storage import schema

if TYPE_CHECKING:
    import duckdb

#: The filter columns a drift run may be narrowed by, in the order keys are built.
DRIFT_FILTERS = ("app", "model", "environment", "prompt_version", "kind")


def filter_key(filters: Mapping[str, str | None]) -> str:
    """A stable text key for a drift filter (``{"app": "bot", "kind": "llm"}``)."""
    return json.dumps({k: filters.get(k) for k in DRIFT_FILTERS}, sort_keys=True)


def _utc(moment: datetime) -> datetime:
    from llmvigil.storage.store import utc_naive

    value = utc_naive(moment)
    assert value is not None
    return value


class DriftTables:
    """Methods of :class:`~llmvigil.storage.Store` for drift (see the module docstring)."""

    engine: sa.Engine
    display_url: str
    _duck: duckdb.DuckDBPyConnection | None

    if TYPE_CHECKING:

        def _fetch(self, query: sa.Select) -> list[dict[str, Any]]: ...

    # -- reading columns fast -------------------------------------------------------

    def fetch_arrow(self, query: sa.Select) -> pa.Table:
        """Run ``query`` and return its rows as an Arrow table.

        On DuckDB the rows never become Python objects (100,000 rows of a few numeric
        columns in milliseconds); on PostgreSQL they are fetched and converted.
        """
        try:
            if self._duck is not None:
                cursor = self._duck.cursor()
                try:
                    return self._duck_arrow(cursor, query)
                finally:
                    cursor.close()
            with self.engine.connect() as conn:
                return _rows_arrow(conn.execute(query))
        except Exception as exc:
            raise StoreError(f"query failed on {self.display_url}: {exc}") from exc

    def fetch_arrows(self, queries: Sequence[sa.Select]) -> list[pa.Table]:
        """Run ``queries`` in one transaction that sees one snapshot of the store (DuckDB's
        MVCC; REPEATABLE READ on PostgreSQL), so a write committed meanwhile is seen by all
        of them or none; their rows as Arrow tables, in order."""
        try:
            if self._duck is not None:
                cursor = self._duck.cursor()
                try:
                    cursor.begin()
                    tables = [self._duck_arrow(cursor, query) for query in queries]
                    cursor.commit()
                    return tables
                finally:
                    cursor.close()
            snapshot = self.engine.connect().execution_options(isolation_level="REPEATABLE READ")
            with snapshot as conn:
                tables = [_rows_arrow(conn.execute(query)) for query in queries]
                conn.rollback()
                return tables
        except Exception as exc:
            raise StoreError(f"query failed on {self.display_url}: {exc}") from exc

    def _duck_arrow(self, cursor: duckdb.DuckDBPyConnection, query: sa.Select) -> pa.Table:
        compiled = query.compile(
            dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        return cursor.sql(compiled.string, params=params).to_arrow_table()

    # -- results -----------------------------------------------------------------------

    def write_drift_results(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """Store one drift run's rows in one transaction; return the run's id."""
        run_id = uuid.uuid4().hex
        values = [{**row, "drift_id": uuid.uuid4().hex, "run_id": run_id} for row in rows]
        if not values:
            return run_id
        try:
            with self.engine.begin() as conn:
                conn.execute(schema.drift_results.insert(), values)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not write drift results to {self.display_url}: {exc}") from exc
        return run_id

    def _drift_filters(self, filters: Mapping[str, str | None]) -> list[sa.ColumnElement[bool]]:
        d = schema.drift_results.c
        unknown = set(filters) - set(DRIFT_FILTERS)
        if unknown:
            raise StoreError(f"unknown drift filter {sorted(unknown)}; use {DRIFT_FILTERS}")
        return [
            d[name].is_(None) if value is None else d[name] == value
            for name, value in filters.items()
        ]

    def drift_history(
        self,
        feature: str | None = None,
        since: datetime | None = None,
        limit: int | None = 500,
        **filters: str | None,
    ) -> list[dict[str, Any]]:
        """Stored drift rows, newest run first (features in name order within a run).

        ``filters`` (``app="bot"``) narrow to runs made with that filter; a filter left out
        matches runs made with any value of it.
        """
        d = schema.drift_results
        query = sa.select(d).where(*self._drift_filters(filters))
        if feature is not None:
            query = query.where(d.c.feature == feature)
        if since is not None:
            query = query.where(d.c.computed_at >= _utc(since))
        query = query.order_by(d.c.computed_at.desc(), d.c.run_id, d.c.feature)
        if limit is not None:
            query = query.limit(limit)
        return self._fetch(query)

    def latest_drift(self, **filters: str | None) -> list[dict[str, Any]]:
        """The rows of the newest drift run matching ``filters`` (empty if none ran)."""
        d = schema.drift_results
        newest = (
            sa.select(d.c.run_id)
            .where(*self._drift_filters(filters))
            .order_by(d.c.computed_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        return self._fetch(sa.select(d).where(d.c.run_id == newest).order_by(d.c.feature))

    # -- baselines ---------------------------------------------------------------------

    def pin_baseline(
        self, filters: Mapping[str, str | None], start: datetime, end: datetime
    ) -> None:
        """Make ``[start, end)`` the reference window of every later drift run with ``filters``."""
        from llmvigil.storage.store import utc_now

        b = schema.drift_baselines
        row = {
            "filter_key": filter_key(filters),
            "reference_start": _utc(start),
            "reference_end": _utc(end),
            "pinned_at": utc_now(),
        }
        statement = pg_insert(b).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=[b.c.filter_key],
            set_={
                k: statement.excluded[k] for k in ("reference_start", "reference_end", "pinned_at")
            },
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(statement)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not pin the baseline on {self.display_url}: {exc}") from exc

    def baseline(self, filters: Mapping[str, str | None]) -> tuple[datetime, datetime] | None:
        """The pinned reference window for ``filters``, or None."""
        b = schema.drift_baselines
        rows = self._fetch(sa.select(b).where(b.c.filter_key == filter_key(filters)))
        if not rows:
            return None
        return rows[0]["reference_start"], rows[0]["reference_end"]

    # -- vectors -----------------------------------------------------------------------

    def stored_vectors(
        self, span_ids: Sequence[str]
    ) -> dict[str, tuple[bytes | None, bytes | None]]:
        """The stored (input, output) vectors of ``span_ids`` that have any, by span id."""
        v = schema.span_vectors
        found: dict[str, tuple[bytes | None, bytes | None]] = {}
        ids = list(dict.fromkeys(span_ids))
        for start in range(0, len(ids), 5_000):
            chunk = ids[start : start + 5_000]
            query = sa.select(v.c.span_id, v.c.input_vector, v.c.output_vector).where(
                v.c.span_id.in_(chunk)
            )
            table = self.fetch_arrow(query)
            for span_id, vin, vout in zip(
                table["span_id"].to_pylist(),
                table["input_vector"].to_pylist(),
                table["output_vector"].to_pylist(),
                strict=True,
            ):
                found[span_id] = (vin, vout)
        return found

    def write_vectors(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store span vectors (``span_id``, ``model``, ``input_vector``, ``output_vector``).

        A span that already has a vector keeps it; a missing half is filled in. Returns
        the number of rows given.
        """
        from llmvigil.storage.store import utc_now

        now = utc_now()
        # One row per span: DuckDB refuses to update a row twice in one statement.
        merged: dict[str, dict[str, Any]] = {}
        for r in rows:
            row = merged.setdefault(
                r["span_id"],
                {"span_id": r["span_id"], "model": r["model"], "input_vector": None,
                 "output_vector": None, "created_at": now},
            )  # fmt: skip
            for half in ("input_vector", "output_vector"):
                if row[half] is None:
                    row[half] = r.get(half)
        values = list(merged.values())
        if not values:
            return 0
        v = schema.span_vectors
        try:
            if self._duck is not None:
                self._write_vectors_duckdb(values)
            else:
                statement = pg_insert(v)
                statement = statement.on_conflict_do_update(
                    index_elements=[v.c.span_id],
                    set_={
                        name: sa.func.coalesce(v.c[name], statement.excluded[name])
                        for name in ("input_vector", "output_vector")
                    },
                )
                with self.engine.begin() as conn:
                    conn.execute(statement, values)
        except Exception as exc:
            raise StoreError(f"could not write span vectors to {self.display_url}: {exc}") from exc
        return len(values)

    def _write_vectors_duckdb(self, values: list[dict[str, Any]]) -> None:
        # One statement over an Arrow table: DuckDB's executemany runs row by row.
        assert self._duck is not None
        table = pa.Table.from_pylist(
            values,
            schema=pa.schema(
                [
                    ("span_id", pa.string()),
                    ("model", pa.string()),
                    ("input_vector", pa.binary()),
                    ("output_vector", pa.binary()),
                    ("created_at", pa.timestamp("us")),
                ]
            ),
        )
        cursor = self._duck.cursor()
        try:
            cursor.register("incoming_vectors", table)
            cursor.execute(
                "INSERT INTO span_vectors SELECT * FROM incoming_vectors "
                "ON CONFLICT (span_id) DO UPDATE SET "
                "input_vector = coalesce(span_vectors.input_vector, excluded.input_vector), "
                "output_vector = coalesce(span_vectors.output_vector, excluded.output_vector)"
            )
        finally:
            cursor.close()


def _rows_arrow(result: sa.CursorResult) -> pa.Table:
    names = list(result.keys())
    columns = list(zip(*result.all(), strict=True)) or [()] * len(names)
    return pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})
