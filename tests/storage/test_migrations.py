"""A store written before drift existed (schema version 1) opens at the latest version, kept."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from llmvigil.storage import schema
from llmvigil.storage.migrations import LATEST
from llmvigil.storage.store import Store
from tests.storage.spans_factory import make_span

#: Columns drift_results gained in version 2, and the tables version 2 added.
V2_COLUMNS = {
    "run_id",
    "environment",
    "prompt_version",
    "kind",
    "skipped",
    "reference_count",
    "current_count",
}
#: Tables added after version 1.
LATER_TABLES = {
    "span_vectors",
    "drift_baselines",
    "alert_state",
    "alert_deliveries",
    "alert_hook_runs",
}


def _v1_metadata() -> sa.MetaData:
    """The tables as version 1 made them: 32-bit FLOAT columns, drift_results without run data."""
    old = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name in LATER_TABLES:
            continue
        columns = []
        for column in table.columns:
            if table.name == "drift_results" and column.name in V2_COLUMNS:
                continue
            copy = column._copy()
            if isinstance(copy.type, sa.Double):
                copy.type = sa.Float()
            columns.append(copy)
        sa.Table(table.name, old, *columns)
    return old


def _write_v1_store(url: str) -> dict:
    engine = sa.create_engine(url)
    span = make_span(0, latency_ms=1234.56789, ingested_at=datetime(2026, 1, 1))
    with engine.begin() as conn:
        _v1_metadata().create_all(conn)
        conn.execute(
            schema.schema_version.insert().values(
                version=1, description="v1", applied_at=datetime.now()
            )
        )
        conn.execute(schema.spans.insert(), [span])
        conn.execute(
            sa.text(
                "INSERT INTO drift_results (drift_id, computed_at, reference_start, "
                "reference_end, current_start, current_end, feature, method, drifted) "
                "VALUES ('d1', :t, :t, :t, :t, :t, 'latency_ms', 'ks', false)"
            ),
            {"t": datetime(2026, 1, 1)},
        )
    engine.dispose()
    return span


def test_a_version_1_store_is_migrated_in_place_with_its_data(store_url: str) -> None:
    span = _write_v1_store(store_url)
    with Store(store_url) as store:
        assert store.schema_version == LATEST
        with store.engine.connect() as conn:
            versions = conn.execute(sa.select(schema.schema_version.c.version)).scalars()
            assert sorted(versions) == list(range(1, LATEST + 1))
            columns = set(conn.execute(sa.text("SELECT * FROM drift_results LIMIT 0")).keys())
            assert V2_COLUMNS <= columns
            assert conn.execute(sa.text("SELECT count(*) FROM drift_results")).scalar() == 1
        kept = store.fetch_arrow(sa.select(schema.spans.c.span_id, schema.spans.c.latency_ms))
        assert kept["span_id"].to_pylist() == [span["span_id"]]
        # Drift can use the migrated store: its tables exist and doubles keep 1e-160.
        store.pin_baseline({}, datetime(2026, 1, 1), datetime(2026, 1, 2))
        assert store.baseline({})[0] == datetime(2026, 1, 1)
        run = store.write_drift_results(
            [
                {
                    "computed_at": datetime(2026, 1, 3),
                    "reference_start": datetime(2026, 1, 1),
                    "reference_end": datetime(2026, 1, 2),
                    "current_start": datetime(2026, 1, 2),
                    "current_end": datetime(2026, 1, 3),
                    "feature": "latency_ms",
                    "method": "ks",
                    "p_value": 1e-160,
                    "drifted": True,
                    "skipped": False,
                    "reference_count": 100,
                    "current_count": 100,
                    "details": {},
                }
            ]
        )
        latest = store.drift_history("latency_ms")[0]
        assert latest["run_id"] == run and latest["p_value"] == 1e-160
