"""Shared fixtures: temporary DuckDB files, a real PostgreSQL server, a configured collector."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import llmvigil
from llmvigil.storage import Store
from tests.pg_server import PostgresCluster

# Our users run offline, and so do the tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch) -> None:
    """Each test runs in its own folder, with no llmvigil settings from the environment."""
    for var in list(os.environ):
        if var.startswith("LLMVIGIL_") and not var.startswith("LLMVIGIL_TEST_"):
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server: ``$LLMVIGIL_TEST_POSTGRES_URL``, or a cluster started for the session.

    Without PostgreSQL installed the PostgreSQL tests are skipped locally and fail on CI.
    """
    given = os.environ.get("LLMVIGIL_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    cluster = PostgresCluster()
    if not cluster.available:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(postgres_server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def duckdb_url(tmp_path) -> str:
    """A DuckDB file that does not exist yet."""
    return f"duckdb:///{tmp_path / 'store.duckdb'}"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request) -> str:
    """The same test against a DuckDB file and against a PostgreSQL database."""
    if request.param == "duckdb":
        return request.getfixturevalue("duckdb_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated store on each backend."""
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def collect(duckdb_url) -> Iterator[Store]:
    """The collector writing directly into a fresh DuckDB store; flushed and stopped after."""
    opened = Store(duckdb_url)
    llmvigil.configure(store=opened)
    yield opened
    llmvigil.shutdown()
    opened.close()
