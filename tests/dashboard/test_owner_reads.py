"""The dashboard's reads through a running `llmvigil up`: the Arrow answers, the read scope,
the errors; and the source the dashboard picks by itself."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import pyarrow as pa
import pytest

from llmvigil.config import load_settings
from llmvigil.dashboard.source import OwnerSource, StoreSource, open_source
from llmvigil.dashboard.view import View
from llmvigil.server.listen import listen_path, read_listening
from llmvigil.storage.store import Store, utc_now
from tests.dashboard.fixture_store import fill
from tests.server.test_up import INGEST_KEY, READ_KEY, Owner


def _ask(url: str, name: str, body: dict, key: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{url}/v1/dashboard/{name}", data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def keyed_owner(tmp_path):
    with Store(f"duckdb:///{tmp_path / 'owned.duckdb'}") as store:
        fill(store)
    keys = f"read:{READ_KEY},ingest:{INGEST_KEY}"
    running = Owner(tmp_path, env={"LLMVIGIL_API_KEYS": keys})
    yield running
    running.stop()


def test_the_owner_answers_dashboard_queries_in_arrow_for_a_read_key(keyed_owner):
    now = utc_now()
    view = View(now - timedelta(days=1), now + timedelta(minutes=1)).as_json()
    status, raw = _ask(keyed_owner.url, "overview_totals", {"view": view}, READ_KEY)
    assert status == 200
    rows = pa.ipc.open_stream(raw).read_all().to_pylist()
    assert rows[0]["calls"] == 119
    assert _ask(keyed_owner.url, "overview_totals", {"view": view}, None)[0] == 401
    assert _ask(keyed_owner.url, "overview_totals", {"view": view}, INGEST_KEY)[0] == 403
    assert _ask(keyed_owner.url, "no_such", {"view": view}, READ_KEY)[0] == 404
    status, raw = _ask(
        keyed_owner.url, "search_spans", {"view": view, "params": {"limit": "lots"}}, READ_KEY
    )
    assert status == 422 and b"limit" in raw
    status, raw = _ask(keyed_owner.url, "sessions", {"view": {"since": "yesterday"}}, READ_KEY)
    assert status == 422 and b"ISO 8601" in raw


def test_the_dashboard_reads_through_the_owner_while_it_holds_the_file(tmp_path, monkeypatch):
    url = f"duckdb:///{tmp_path / 'owned.duckdb'}"
    with Store(url) as store:
        fill(store)
    monkeypatch.setenv("LLMVIGIL_STORE_URL", url)
    settings = load_settings()
    running = Owner(tmp_path)
    try:
        source = open_source(settings)
        assert isinstance(source, OwnerSource)
        now = utc_now()
        view = View(now - timedelta(days=1), now + timedelta(minutes=1))
        assert source.query("overview_totals", view).to_pylist()[0]["calls"] == 119
        feedback_id = source.rate("span0003", None, score=1.0, label="good", source="dashboard")
        entry = read_listening(listen_path(settings, url))
        assert entry is not None and feedback_id
    finally:
        running.stop()
    source = open_source(settings)  # no owner now: the file itself
    try:
        assert isinstance(source, StoreSource)
        assert [f["label"] for f in source.store.feedback() if f["source"] == "dashboard"] == [
            "good"
        ]
    finally:
        source.store.close()


def test_the_dashboard_follows_an_owner_that_restarted(tmp_path, monkeypatch):
    url = f"duckdb:///{tmp_path / 'owned.duckdb'}"
    with Store(url) as store:
        fill(store)
    monkeypatch.setenv("LLMVIGIL_STORE_URL", url)
    now = utc_now()
    view = View(now - timedelta(days=1), now + timedelta(minutes=1))
    first = Owner(tmp_path)
    try:
        source = open_source(load_settings())
        assert source.query("overview_totals", view).num_rows == 1
    finally:
        first.stop()
    second = Owner(tmp_path)  # another port and token
    try:
        assert source.query("overview_totals", view).to_pylist()[0]["calls"] == 119
        assert source.token == read_listening(listen_path(load_settings(), url)).token
    finally:
        second.stop()
