"""``llmvigil.feedback``: a user's verdict reaches the store through every sink, once."""

from __future__ import annotations

import logging

import llmvigil
from llmvigil.collector.spool import ingest_spool
from llmvigil.storage import Store
from tests.server.test_up import Owner


def test_feedback_on_the_running_span_reaches_the_store(duckdb_url) -> None:
    llmvigil.configure(store=duckdb_url)
    seen = {}

    @llmvigil.observe(model="gpt-4o-mini")
    def answer(question: str) -> str:
        seen["ids"] = llmvigil.current_ids()
        seen["id"] = llmvigil.feedback(1.0, comment="solved it", author="u-42")
        return "Open Settings, then Security."

    answer("how do I reset my password?")
    assert llmvigil.flush()
    llmvigil.shutdown()
    span_id, trace_id = seen["ids"]
    with Store(duckdb_url) as store:
        (stored,) = store.feedback(span_id)
        (span,) = store.spans(limit=None)
    assert span["span_id"] == span_id and span["trace_id"] == trace_id
    assert stored["feedback_id"] == seen["id"]
    assert (stored["score"], stored["comment"], stored["author"]) == (1.0, "solved it", "u-42")
    assert stored["source"] == "app"


def test_feedback_with_nothing_to_record_is_refused_without_raising(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="llmvigil"):
        assert llmvigil.feedback(1.0) is None  # no span runs and no id is given
        assert llmvigil.feedback(float("nan"), span_id="s1") is None
        assert llmvigil.feedback(span_id="s1") is None  # no score, label or comment
        assert llmvigil.feedback("not a number", span_id="s1") is None
    assert "no span_id or trace_id" in caplog.text and "finite" in caplog.text


def test_spooled_feedback_is_loaded_by_ingest_once(tmp_path) -> None:
    spool = tmp_path / "spool"
    llmvigil.configure(sink="spool", spool_dir=str(spool))
    first = llmvigil.feedback(label="wrong", trace_id="request-7", name="thumbs")
    llmvigil.feedback(0.0, span_id="span-1")
    llmvigil.shutdown()
    assert len(list(spool.glob("feedback-*.jsonl"))) == 1
    with Store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        report = ingest_spool(store, spool)
        assert report.feedback == 2 and not list(spool.glob("feedback-*.jsonl"))
        rows = store.feedback()
    assert {r["feedback_id"] for r in rows} >= {first}
    assert {(r["trace_id"], r["label"]) for r in rows} >= {("request-7", "wrong")}


def test_feedback_through_the_http_sink_and_again_is_stored_once(tmp_path) -> None:
    owner = Owner(tmp_path)
    try:
        llmvigil.configure(sink="http", endpoint=owner.url, spool_dir=str(tmp_path / "spool"))
        feedback_id = llmvigil.feedback(1.0, span_id="span-9", comment="great")
        assert llmvigil.flush()
        # The same entry sent again (a retry after a lost answer) is stored once.
        from llmvigil.collector import runtime

        runtime._state.sink.write_feedback(
            [{"feedback_id": feedback_id, "span_id": "span-9", "score": 1.0, "name": "rating",
              "source": "app"}]
        )  # fmt: skip
        llmvigil.shutdown()
    finally:
        assert owner.stop() == 0
    with Store(f"duckdb:///{owner.store}") as store:
        (stored,) = store.feedback("span-9")
    assert stored["feedback_id"] == feedback_id and stored["comment"] == "great"
