"""The configured suite: offline evaluators, plus the LLM judge's scores beside them."""

from __future__ import annotations

import pytest

from llmvigil.config import load_settings
from llmvigil.evaluators.runner import FAILURE_LABELS
from llmvigil.evaluators.suite import evaluators_from_settings, runner_from_settings
from llmvigil.storage import Store
from tests.evaluators.judge_server import JudgeServer
from tests.storage.spans_factory import make_span

CONTEXT = ["The Golden Gate Bridge opened to traffic on May 28, 1937."]


def write_config(tmp_path, base_url: str, timeout_s: float = 10.0) -> None:
    (tmp_path / "llmvigil.toml").write_text(
        '[evaluators]\nenabled = ["brevity", "factuality"]\n'
        f'[judge]\nbase_url = "{base_url}"\nmodel = "judge-model"\n'
        f'api_key_env = "LLMVIGIL_TEST_JUDGE_KEY"\ntimeout_s = {timeout_s}\n'
    )


def test_without_a_judge_only_the_offline_evaluators_run(tmp_path) -> None:
    names = [e.name for e in evaluators_from_settings(load_settings(environ={}))]
    assert names == [
        "relevance",
        "completeness",
        "brevity",
        "toxicity",
        "prompt_toxicity",
        "factuality",
    ]


@pytest.mark.slow
def test_judge_scores_are_stored_beside_the_offline_ones(tmp_path, duckdb_url) -> None:
    with JudgeServer() as server, Store(duckdb_url) as store:
        write_config(tmp_path, server.base_url)
        settings = load_settings(environ={})
        runner = runner_from_settings(settings)
        assert [e.name for e in runner.evaluators] == [
            "brevity",
            "factuality",
            "relevance_judge",
            "factuality_judge",
        ]
        store.append_spans(
            [
                make_span(
                    0,
                    input_text="When did the Golden Gate Bridge open?",
                    output_text="It opened to traffic on May 28, 1937.",
                    context=CONTEXT,
                )
            ]
        )
        runner.run(store)
        methods = {r["evaluator"]: r["method"] for r in store.evaluations()}
        assert methods["factuality"].startswith("claim-check")
        assert methods["factuality_judge"] == "ragas:faithfulness:judge-model"
        assert methods["relevance_judge"] == "ragas:answer_relevancy:judge-model"


@pytest.mark.slow
def test_a_failing_judge_leaves_the_offline_scores_and_records_the_failure(
    tmp_path, duckdb_url
) -> None:
    with JudgeServer() as server, Store(duckdb_url) as store:
        server.mode = "error"
        write_config(tmp_path, server.base_url, timeout_s=3)
        runner = runner_from_settings(load_settings(environ={}))
        store.append_spans([make_span(0, output_text="It opened in 1937.", context=CONTEXT)])
        report = runner.run(store)
        rows = {r["evaluator"]: r for r in store.evaluations()}
        assert rows["factuality"]["score"] is not None and rows["brevity"]["score"] is not None
        assert rows["factuality_judge"]["label"] == "judge_error"
        assert "InternalServerError" in rows["factuality_judge"]["details"]["error"]
        assert report.failed["factuality_judge"] == 1
        server.mode = "ok"
        assert store.forget_failed_evaluations(runner.wanted, FAILURE_LABELS) == 2
        runner.run(store)
        rows = {r["evaluator"]: r for r in store.evaluations()}
        assert rows["factuality_judge"]["score"] is not None
