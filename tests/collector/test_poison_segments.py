"""A segment with rows the store refuses blocks nothing: its good rows are stored, its bad rows
kept aside with the reason and the file named, and the segments after it loaded. A store that is
down stops the run and keeps every segment for the next one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from llmvigil.cli import main
from llmvigil.collector.spool import BAD_FOLDER, ingest_spool, segments, write_segment
from llmvigil.errors import StoreError
from llmvigil.storage import Store
from llmvigil.storage.bulk import REASON_COLUMN
from tests.storage.spans_factory import make_span, segment_table, with_raw_bytes


def poisoned_spool(spool: Path) -> tuple[set[str], set[str]]:
    """Three segments, the middle one holding four rows some store refuses.

    Returns the span ids that should be stored and those that should be set aside.
    """
    first = [make_span(i) for i in range(5)]
    middle = [make_span(10 + i) for i in range(8)]
    middle[1] = make_span(11, metadata='{"region": "eu", ')  # malformed JSON
    middle[3] = make_span(13, user_id="u\x00")  # PostgreSQL refuses NUL
    middle[5] = make_span(15, trace_id="request-" + "9" * 80)  # over String(64)
    last = [make_span(20 + i) for i in range(4)]
    table = with_raw_bytes(segment_table(middle), "input_text", 6, b"\xff\xfe not UTF-8")
    write_segment(spool, segment_table(first))
    write_segment(spool, table)
    write_segment(spool, segment_table(last))
    bad = {middle[i]["span_id"] for i in (1, 3, 5, 6)}
    good = {r["span_id"] for r in first + middle + last} - bad
    return good, bad


def test_a_poison_segment_stores_its_good_rows_and_sets_aside_the_bad(
    store: Store, tmp_path, caplog
) -> None:
    spool = tmp_path / "spool"
    good, bad = poisoned_spool(spool)
    poisoned = segments(spool)[1]
    with caplog.at_level(logging.WARNING, logger="llmvigil.ingest"):
        report = ingest_spool(store, spool)
    assert {r["span_id"] for r in store.spans(limit=None)} == good
    assert segments(spool) == []  # the segments after the poisoned one were loaded too
    assert report.segments == 3 and report.bad == []
    assert report.rows == report.inserted == len(good)
    assert report.bad_rows == 4
    (kept,) = report.bad_row_files
    assert Path(kept).parent == spool / BAD_FOLDER and poisoned.stem in Path(kept).name
    aside = pq.read_table(kept)
    assert set(aside.column("span_id").to_pylist()) == bad
    reasons = aside.column(REASON_COLUMN).to_pylist()
    assert {reason.split(" ")[0] for reason in reasons} == {
        "metadata",
        "user_id",
        "trace_id",
        "input_text",
    }
    # The refused rows are kept as they were, bytes included.
    raw = aside.column("input_text").cast(pa.binary()).to_pylist()
    assert b"\xff\xfe not UTF-8" in raw
    # One log line names the source segment, the file kept aside and each reason.
    assert poisoned.name in caplog.text and Path(kept).name in caplog.text
    assert "is not valid JSON" in caplog.text and "not valid UTF-8" in caplog.text
    # Nothing is left to block the next run.
    again = ingest_spool(store, spool)
    assert again.segments == 0 and again.bad_rows == 0


def test_every_row_refused_sets_the_rows_aside_and_deletes_the_segment(store: Store, tmp_path):
    spool = tmp_path / "spool"
    write_segment(spool, segment_table([make_span(i, metadata="{") for i in range(3)]))
    write_segment(spool, segment_table([make_span(9)]))
    report = ingest_spool(store, spool)
    assert report.bad_rows == 3 and report.inserted == 1 and store.count_spans() == 1
    assert segments(spool) == []


def test_a_store_that_is_down_stops_the_run_and_keeps_every_segment(
    postgres_server_url: str, tmp_path
) -> None:
    spool = tmp_path / "spool"
    poisoned_spool(spool)
    before = segments(spool)
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text('CREATE DATABASE "going_away"'))
    url = sa.engine.make_url(postgres_server_url).set(database="going_away")
    store = Store(url.render_as_string(hide_password=False))
    with admin.connect() as conn:  # the server drops the database under the open store
        conn.execute(sa.text('DROP DATABASE "going_away" WITH (FORCE)'))
    admin.dispose()
    with pytest.raises(StoreError):
        ingest_spool(store, spool)
    store.close()
    assert segments(spool) == before
    assert not (spool / BAD_FOLDER).exists()


@pytest.mark.postgres
def test_a_poison_segment_from_an_older_collector_loads_into_postgres(
    postgres_url: str, tmp_path
) -> None:
    # What the collector wrote before it shortened ids and cleaned NULs.
    spool = tmp_path / "spool"
    rows = [make_span(i) for i in range(6)]
    rows[2] = make_span(2, trace_id="req-" + "a" * 100)
    rows[4] = make_span(4, user_id="user\x00id", session_id="s\x00")
    write_segment(spool, segment_table(rows))
    write_segment(spool, segment_table([make_span(50)]))
    with Store(postgres_url) as store:
        report = ingest_spool(store, spool)
        assert store.count_spans() == 5
    assert report.bad_rows == 2 and segments(spool) == []


def test_a_broken_store_is_not_taken_for_bad_rows(tmp_path) -> None:
    spool = tmp_path / "spool"
    write_segment(spool, segment_table([make_span(0)]))
    store = Store(f"duckdb:///{tmp_path / 's.duckdb'}")
    store._duck.execute("DROP TABLE spans")
    with pytest.raises(StoreError):
        ingest_spool(store, spool)
    store.close()
    assert len(segments(spool)) == 1 and not (spool / BAD_FOLDER).exists()


def test_llmvigil_ingest_prints_the_rows_set_aside_and_their_file(tmp_path, capsys) -> None:
    spool = tmp_path / "spool"
    good, _ = poisoned_spool(spool)
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    assert main(["ingest", "--spool", str(spool), "--store", url]) == 1
    out, err = capsys.readouterr()
    assert f"{len(good)} spans, {len(good)} new" in out
    assert "4 spans set aside" in err and f"{spool / BAD_FOLDER}" in err.replace("\n", "")
    assert main(["ingest", "--spool", str(spool), "--store", url]) == 0
