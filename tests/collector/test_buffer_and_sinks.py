"""The queue's bound, the sinks' failures, and that nothing is lost or raised into the app."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import sqlalchemy as sa

import llmvigil
from llmvigil.collector.spool import ingest_spool
from llmvigil.storage import Store


@llmvigil.observe
def work(i: int) -> str:
    return f"result {i}"


def test_a_full_queue_drops_the_oldest_and_counts_them(tmp_path, caplog) -> None:
    store = Store(f"duckdb:///{tmp_path / 's.duckdb'}")
    # The flush thread stays asleep (long interval, batch larger than the queue) until flush().
    llmvigil.configure(store=store, queue_size=100, batch_size=10_000, flush_interval_s=3600)
    try:
        work(-1)  # starts the flush thread, which then sleeps
        assert llmvigil.flush()
        before = llmvigil.stats()["dropped"]
        for i in range(1_000):
            work(i)
        assert llmvigil.stats()["dropped"] - before == 900
        assert llmvigil.stats()["queued"] == 100
        with caplog.at_level(logging.WARNING, logger="llmvigil.collector"):
            assert llmvigil.flush()
        assert "dropped" in caplog.text and "queue_size" in caplog.text
        kept = sorted(int(r["output_text"].split()[1]) for r in store.spans(limit=None))
        assert kept == [-1, *range(900, 1_000)]
    finally:
        llmvigil.shutdown()
        store.close()


@pytest.mark.postgres
def test_slow_storage_never_blocks_the_app_past_the_bound(postgres_url) -> None:
    store = Store(postgres_url)
    locker = sa.create_engine(postgres_url)
    llmvigil.configure(
        store=store, queue_size=50, batch_size=10, flush_interval_s=0.01, max_block_ms=200
    )
    try:
        work(0)
        assert llmvigil.flush()
        with locker.connect() as conn:
            conn.execute(sa.text("LOCK TABLE spans IN ACCESS EXCLUSIVE MODE"))  # writes now hang
            dropped = llmvigil.stats()["dropped"]
            # One batch is written (and hangs), the flush thread builds the next and waits for
            # that write; the rest fill the queue up.
            for i in range(70):
                work(i)
            waits = []
            for i in range(5):
                started = time.perf_counter()
                work(1_000 + i)
                waits.append(time.perf_counter() - started)
            # Each call past a full queue waits for room up to the bound, then drops the oldest.
            assert all(0.19 <= w < 0.2 + 0.25 for w in waits), waits
            assert llmvigil.stats()["dropped"] > dropped
            conn.rollback()  # release the lock
        assert llmvigil.flush(timeout=30)
        assert store.count_spans() > 1
    finally:
        llmvigil.shutdown()
        store.close()
        locker.dispose()


@pytest.mark.postgres
def test_a_store_that_goes_down_falls_back_to_the_spool(postgres_server_url, tmp_path) -> None:
    name = "going_down"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(postgres_server_url).set(database=name)
    store = Store(url.render_as_string(hide_password=False))
    llmvigil.configure(store=store, spool_dir=str(tmp_path / "spool"))
    try:
        for i in range(10):
            work(i)
        assert llmvigil.flush()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        for i in range(10, 30):
            work(i)
        assert llmvigil.flush()
        assert llmvigil.stats()["pending"] == 0
    finally:
        llmvigil.shutdown()
        store.close()
        admin.dispose()
    with Store(f"duckdb:///{tmp_path / 'recovered.duckdb'}") as recovered:
        report = ingest_spool(recovered, tmp_path / "spool")
        assert report.rows == 20 and not report.bad
        outputs = {r["output_text"] for r in recovered.spans(limit=None)}
        assert outputs == {f"result {i}" for i in range(10, 30)}


def test_an_unwritable_spool_keeps_spans_until_it_is_writable_again(tmp_path) -> None:
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the spool folder should be")
    llmvigil.configure(sink="spool", spool_dir=str(blocker / "inner"))
    try:
        for i in range(25):
            work(i)
        assert llmvigil.flush() is False
        stats = llmvigil.stats()
        assert stats["pending"] == 25 and stats["write_failures"] >= 1
        assert "spool" in stats["last_error"] or "Errno" in stats["last_error"]
        blocker.unlink()
        assert llmvigil.flush() is True
        assert llmvigil.stats()["pending"] == 0
    finally:
        llmvigil.shutdown()
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        assert ingest_spool(store, blocker / "inner").rows == 25


def test_concurrent_threads_lose_nothing(collect: Store) -> None:
    def burst(offset: int) -> None:
        for i in range(2_000):
            work(offset + i)

    dropped_before = llmvigil.stats()["dropped"]
    threads = [threading.Thread(target=burst, args=(k * 10_000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert llmvigil.flush(timeout=60)
    assert collect.count_spans() == 16_000
    assert llmvigil.stats()["dropped"] == dropped_before


def test_configure_rejects_bad_values_with_the_key_name() -> None:
    with pytest.raises(llmvigil.ConfigError, match="queue_size"):
        llmvigil.configure(queue_size=0)
    with pytest.raises(llmvigil.ConfigError, match="sink"):
        llmvigil.configure(sink="carrier-pigeon")


def test_a_batch_the_flush_thread_never_finishes_is_spilled_at_stop(caplog) -> None:
    from llmvigil.collector.buffer import Buffer

    never = threading.Event()
    spilled: list[tuple] = []
    buffer = Buffer(lambda batch: never.wait(), spill=spilled.extend, interval_s=0.01)
    buffer.push(("a",))
    buffer.push(("b",))
    deadline = time.monotonic() + 5
    while buffer.stats()["queued"] and time.monotonic() < deadline:  # the thread took them
        time.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="llmvigil"):
        assert buffer.stop(timeout=0.2)
    assert spilled == [("a",), ("b",)]
    assert "flush thread is stuck" in caplog.text and "test_buffer_and_sinks.py" in caplog.text
    stats = buffer.stats()
    assert (stats["spilled"], stats["dropped"]) == (2, 0)
    never.set()
