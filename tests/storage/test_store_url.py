"""Store URLs: a DuckDB URL names one file clearly, or says ``:memory:``; read-only opens
never create a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmvigil.config import load_settings
from llmvigil.errors import ConfigError, StoreError
from llmvigil.storage import Store, open_store
from llmvigil.storage.store import duckdb_database
from tests.storage.spans_factory import make_span


def test_two_slashes_are_refused_with_the_three_and_four_slash_forms(tmp_path) -> None:
    with pytest.raises(StoreError) as caught:
        Store("duckdb://file.duckdb")
    message = str(caught.value)
    assert "duckdb:///file.duckdb" in message
    assert f"duckdb:///{tmp_path / 'file.duckdb'}" in message  # the absolute form, four slashes
    assert "host" in message
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("duckdb://data/spans.duckdb", "duckdb:///data/spans.duckdb"),
        ("duckdb://user@server/spans.duckdb", "host"),
        ("duckdb://server:5432/spans.duckdb", "host"),
        ("duckdb://", "duckdb:///:memory:"),
        ("duckdb:///", "duckdb:///:memory:"),
        ("duckdb:///spans.duckdb?access_mode=read_only", "duckdb:///spans.duckdb"),
        ("duckdb:///folder/", "folder"),
        ("duckdb:/spans.duckdb", "duckdb:///"),
        ("duckdb+odd:///spans.duckdb", "duckdb:///"),
    ],
)
def test_urls_that_name_no_file_clearly_are_refused(tmp_path, url, shown) -> None:
    with pytest.raises(StoreError, match="duckdb:///") as caught:
        Store(url)
    assert shown in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_the_config_refuses_the_same_urls_with_the_same_reason(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text('[store]\nurl = "duckdb://file.duckdb"\n')
    with pytest.raises(ConfigError, match=r"\[store\] url = 'duckdb://file.duckdb'") as caught:
        load_settings(environ={})
    assert "duckdb:///file.duckdb" in str(caught.value)
    with pytest.raises(ConfigError, match="LLMVIGIL_STORE_URL"):
        load_settings(environ={"LLMVIGIL_STORE_URL": "duckdb://"})


def test_in_memory_only_when_asked_for(tmp_path) -> None:
    with Store("duckdb:///:memory:") as store:
        assert store.in_memory
        store.append_spans([make_span(1)])
        assert store.count_spans() == 1
    with Store(f"duckdb:///{tmp_path / 'a.duckdb'}") as store:
        assert not store.in_memory
    assert duckdb_database("duckdb:///:memory:") == ":memory:"


def test_a_read_only_open_creates_no_store_and_names_the_path(tmp_path) -> None:
    url = "duckdb:///nothing/here.duckdb"
    with pytest.raises(StoreError) as caught:
        Store(url, create=False)
    message = str(caught.value)
    assert str(tmp_path / "nothing" / "here.duckdb") in message
    assert "llmvigil ingest" in message and "llmvigil demo" in message
    assert "duckdb:////" in message  # how to name an absolute path
    assert not list(tmp_path.iterdir())  # neither the file nor its folder
    with pytest.raises(StoreError, match="memory"):
        Store("duckdb:///:memory:", create=False)


def test_a_read_only_open_reads_an_existing_store(tmp_path) -> None:
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    with open_store(url) as store:
        store.append_spans([make_span(1)])
    with open_store(url, create=False) as store:
        assert store.count_spans() == 1


def test_home_folder_is_expanded(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with Store("duckdb:///~/spans.duckdb") as store:
        store.append_spans([make_span(1)])
    assert (tmp_path / "home" / "spans.duckdb").is_file()
    assert not Path("~").exists()


def test_a_folder_or_a_file_in_the_way_is_a_store_error(tmp_path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(StoreError, match="is a folder"):
        Store(f"duckdb:///{tmp_path / 'folder'}")
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(StoreError, match=r"plain\.txt"):
        Store(f"duckdb:///{tmp_path / 'plain.txt' / 'spans.duckdb'}")
