"""A direct sink whose store is unavailable from the start spools every batch, and loads them
into the store once it answers: nothing lost, nothing counted as written that was not."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import llmvigil
from llmvigil.collector import sinks
from llmvigil.collector.spool import ingest_spool
from llmvigil.storage import Store


@llmvigil.observe
def work(i: int) -> str:
    return f"result {i}"


def hold(path) -> subprocess.Popen:
    """Another process that opens the DuckDB file and keeps it (and its lock)."""
    script = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r})
        print("holding", flush=True)
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_duckdb_file_held_by_another_process_spools_from_the_first_batch(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(sinks, "RETRY_STORE_S", 0.0)  # try the store again on every batch
    path = tmp_path / "held.duckdb"
    Store(f"duckdb:///{path}").close()
    holder = hold(path)
    spool = tmp_path / "spool"
    try:
        llmvigil.configure(sink="direct", store=f"duckdb:///{path}", spool_dir=str(spool))
        dropped = llmvigil.stats()["dropped"]
        for i in range(10):
            work(i)
        assert llmvigil.flush()
        stats = llmvigil.stats()
        assert stats["spooled"] == 10 and stats["dropped"] == dropped and stats["pending"] == 0
        assert len(list(spool.glob("spans-*.parquet"))) >= 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    try:
        # The file is free again: the next batch goes to the store, and the spooled ones follow.
        for i in range(10, 15):
            work(i)
        assert llmvigil.flush()
    finally:
        llmvigil.shutdown()
    with Store(f"duckdb:///{path}") as store:
        assert sorted(r["output_text"] for r in store.spans(limit=None)) == sorted(
            f"result {i}" for i in range(15)
        )
    assert not list(spool.glob("spans-*.parquet"))


def test_an_unreachable_postgresql_spools_every_span(tmp_path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://nobody:pw@127.0.0.1:{port}/none?connect_timeout=2"
    spool = tmp_path / "spool"
    llmvigil.configure(sink="direct", store=url, spool_dir=str(spool))
    dropped = llmvigil.stats()["dropped"]
    try:
        for i in range(20):
            work(i)
        assert llmvigil.flush(timeout=30)
        stats = llmvigil.stats()
        assert stats["spooled"] == 20 and stats["dropped"] == dropped
    finally:
        llmvigil.shutdown()
    with Store(f"duckdb:///{tmp_path / 'recovered.duckdb'}") as store:
        assert ingest_spool(store, spool).inserted == 20


def test_a_batch_the_pipeline_cannot_process_is_spilled_not_counted_as_written(
    tmp_path, monkeypatch
) -> None:
    from llmvigil.collector import pipeline

    def broken(self, records, late):
        raise RuntimeError("a bug in a step")

    monkeypatch.setattr(pipeline.Pipeline, "rows_until", broken)
    spool = tmp_path / "spool"
    llmvigil.configure(sink="spool", spool_dir=str(spool))
    before = llmvigil.stats()
    try:
        for i in range(7):
            work(i)
        assert llmvigil.flush()
        after = llmvigil.stats()
        assert after["spilled"] - before["spilled"] == 7 and after["dropped"] == before["dropped"]
    finally:
        llmvigil.shutdown()
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        assert ingest_spool(store, spool).inserted == 7
    assert not list(spool.glob("spans-*.parquet"))
