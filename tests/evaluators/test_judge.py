"""The LLM judge: real ragas and the real openai client against a fake judge on 127.0.0.1.

The fake judge (tests/evaluators/judge_server.py) answers ragas' prompts by a
simple rule: a statement is supported when its words are in the context; the
question a response "answers" is made of the response's words. So a faithful
answer scores 1, a made-up one 0, an on-topic answer shares words with the
question and an unrelated one none.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from llmvigil.config import JudgeSettings
from llmvigil.errors import EvaluatorError
from llmvigil.evaluators import registry
from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.judge import (
    CONCURRENCY,
    JUDGE_ERROR,
    MAX_FAILURES_IN_A_ROW,
    NO_EVIDENCE,
    PLACEHOLDER_KEY,
    FactualityJudge,
    RelevanceJudge,
    judge_evaluators,
)
from tests.evaluators.judge_server import FAIL_MARKER, JudgeServer

KEY_VAR = "JUDGE_TEST_API_KEY"
MODEL = "judge-model"
CONTEXT = (
    "The Golden Gate Bridge opened to traffic in 1937.",
    "It is 2.7 kilometres long and painted international orange.",
)
QUESTION = "When did the Golden Gate Bridge open to traffic?"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="module")
def server():
    with JudgeServer(hang_s=30) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server, monkeypatch):
    server.reset()
    monkeypatch.setenv(KEY_VAR, "sk-test-123")
    for var in PROXY_VARS:  # the requests must go straight to 127.0.0.1
        monkeypatch.delenv(var, raising=False)
    yield
    server.reset()  # releases hanging requests


def settings(server: JudgeServer, timeout_s: float = 10.0) -> JudgeSettings:
    return JudgeSettings(
        base_url=server.base_url,
        model=MODEL,
        embedding_model="judge-embedding",
        api_key_env=KEY_VAR,
        timeout_s=timeout_s,
    )


def facts(output: str, context=CONTEXT, reference=None, id="x", question=QUESTION) -> EvalItem:
    return EvalItem(id, input=question, output=output, context=tuple(context), reference=reference)


class TestSetup:
    def test_importing_the_module_turns_ragas_tracking_off_without_importing_ragas(self):
        env = {k: v for k, v in os.environ.items() if k != "RAGAS_DO_NOT_TRACK"}
        code = (
            "import os, sys, llmvigil.evaluators.judge; "
            "print(os.environ.get('RAGAS_DO_NOT_TRACK'), 'ragas' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["true", "False"]

    def test_ragas_sees_tracking_off_in_this_process(self, server):
        RelevanceJudge(settings(server))  # imports ragas
        from ragas._analytics import do_not_track

        assert os.environ["RAGAS_DO_NOT_TRACK"] == "true"
        assert do_not_track() is True

    def test_judge_evaluators_builds_both_and_registers_neither(self, server):
        relevance, factuality = judge_evaluators(settings(server))
        assert (relevance.name, factuality.name) == ("relevance_judge", "factuality_judge")
        assert relevance.needs == {"input", "output"} and factuality.needs == {"output"}
        assert relevance.threshold == factuality.threshold == 0.5
        assert {"relevance_judge", "factuality_judge"}.isdisjoint(registry.available())
        assert server.requests == []  # building a judge sends nothing

    def test_a_missing_key_for_a_remote_endpoint_names_the_variable(self, monkeypatch):
        monkeypatch.delenv(KEY_VAR)
        remote = JudgeSettings(base_url="https://judge.example.com/v1", model=MODEL)
        remote = remote.model_copy(update={"api_key_env": KEY_VAR})
        with pytest.raises(EvaluatorError, match=KEY_VAR):
            FactualityJudge(remote)

    def test_a_local_endpoint_without_a_key_gets_the_placeholder(self, server, monkeypatch):
        monkeypatch.delenv(KEY_VAR)
        [result] = FactualityJudge(settings(server)).evaluate([facts(CONTEXT[0])])
        assert result.score == 1.0
        assert {r["headers"]["Authorization"] for r in server.requests} == {
            f"Bearer {PLACEHOLDER_KEY}"
        }

    def test_the_key_comes_from_the_named_variable(self, server):
        FactualityJudge(settings(server)).evaluate([facts(CONTEXT[0])])
        assert {r["headers"]["Authorization"] for r in server.requests} == {"Bearer sk-test-123"}

    @pytest.mark.parametrize("url", ["localhost:8000/v1", "ftp://host/v1", "http:///v1"])
    def test_a_base_url_that_is_not_http_is_refused(self, server, url):
        with pytest.raises(EvaluatorError, match="base_url"):
            RelevanceJudge(settings(server).model_copy(update={"base_url": url}))


class TestFactuality:
    def test_a_faithful_answer_scores_higher_than_an_unfaithful_one(self, server):
        judge = FactualityJudge(settings(server))
        faithful = facts(
            "The Golden Gate Bridge opened in 1937. It is 2.7 kilometres long.", id="a"
        )
        half = facts("The Golden Gate Bridge opened in 1937. It is painted blue.", id="b")
        made_up = facts("The Golden Gate Bridge opened in 1995. It is painted blue.", id="c")

        scores = judge.evaluate([faithful, half, made_up])

        assert [s.id for s in scores] == ["a", "b", "c"]
        assert [s.score for s in scores] == [1.0, 0.5, 0.0]
        assert [s.passed for s in scores] == [True, True, False]
        assert [s.label for s in scores] == ["supported", "supported", "unsupported"]
        assert {s.method for s in scores} == {f"ragas:faithfulness:{MODEL}"}
        details = scores[2].details
        assert details["model"] == MODEL and details["evidence"] == 2
        assert (details["supported"], details["total"]) == (0, 2)
        first = details["statements"][0]
        assert first["statement"] == "The Golden Gate Bridge opened in 1995."
        assert first["verdict"] == 0 and "1995" in first["reason"]
        # Two chat calls per item (statements, then verdicts), nothing else, only on 127.0.0.1.
        assert server.paths() == ["/v1/chat/completions"] * 6
        assert {r["client"] for r in server.requests} == {"127.0.0.1"}
        assert {r["body"]["model"] for r in server.requests} == {MODEL}
        assert all(r["body"]["response_format"] == {"type": "json_object"} for r in server.requests)

    def test_the_reference_answer_is_evidence_too(self, server):
        reference = "Refunds are paid within 14 days of receiving the returned item."
        item = facts("Refunds are paid within 14 days.", context=(), reference=reference)
        [result] = FactualityJudge(settings(server)).evaluate([item])
        assert result.score == 1.0 and result.details["evidence"] == 1

    def test_without_evidence_there_is_no_score_and_no_request(self, server):
        judge = FactualityJudge(settings(server))
        scores = judge.evaluate(
            [facts("It opened in 1937.", context=()), facts("It opened.", context=("", " "))]
        )
        for result in scores:
            assert result.score is None and result.passed is None and result.label is None
            assert result.details == {"reason": NO_EVIDENCE}
        assert server.requests == []

    def test_a_missing_question_is_not_a_failure(self, server):
        [result] = FactualityJudge(settings(server)).evaluate([facts(CONTEXT[0], question=None)])
        assert result.score == 1.0


class TestRelevance:
    def test_a_relevant_answer_scores_higher_than_an_irrelevant_one(self, server):
        judge = RelevanceJudge(settings(server))
        relevant = EvalItem(
            "r", input=QUESTION, output="The Golden Gate Bridge opened to traffic in 1937."
        )
        irrelevant = EvalItem("i", input=QUESTION, output="Bananas are rich in potassium.")

        good, bad = judge.evaluate([relevant, irrelevant])

        assert good.score > 0.5 > bad.score
        assert bad.score == pytest.approx(0.0, abs=1e-6)
        assert (good.passed, bad.passed) == (True, False)
        assert (good.label, bad.label) == ("relevant", "irrelevant")
        assert good.method == f"ragas:answer_relevancy:{MODEL}"
        assert (
            good.details["questions"] == ["What about golden gate bridge opened traffic 1937?"] * 3
        )
        assert good.details["noncommittal"] == [False] * 3
        assert good.details["embedding_model"] == "judge-embedding"
        # Per item: three questions, then the user's question and the three embedded.
        paths = server.paths()
        assert paths.count("/v1/chat/completions") == 6 and paths.count("/v1/embeddings") == 4
        assert {r["client"] for r in server.requests} == {"127.0.0.1"}

    def test_a_noncommittal_answer_scores_zero(self, server):
        item = EvalItem(
            "n", input=QUESTION, output="I don't know when the Golden Gate Bridge opened."
        )
        [result] = RelevanceJudge(settings(server)).evaluate([item])
        assert result.score == 0.0 and result.label == "noncommittal"

    def test_a_missing_question_is_not_sent(self, server):
        [result] = RelevanceJudge(settings(server)).evaluate([EvalItem("q", output="Paris.")])
        assert result.score is None and result.details == {"reason": "no input to judge"}
        assert server.requests == []


class TestFailures:
    def test_server_errors_become_judge_errors_without_raising(self, server):
        server.mode = "error"
        judge = FactualityJudge(settings(server, timeout_s=5))
        started = time.monotonic()
        scores = judge.evaluate([facts(CONTEXT[0], id="a"), facts(CONTEXT[1], id="b")])
        assert time.monotonic() - started < 5
        for result, id in zip(scores, "ab", strict=True):
            assert result.id == id and result.score is None and result.passed is None
            assert result.label == JUDGE_ERROR
            assert result.details["error"].startswith("InternalServerError: ")
        assert server.requests and {r["client"] for r in server.requests} == {"127.0.0.1"}

    def test_one_failing_item_leaves_the_others_scored(self, server):
        judge = RelevanceJudge(settings(server))
        items = [
            EvalItem("ok", input=QUESTION, output="The Golden Gate Bridge opened in 1937."),
            EvalItem("bad", input=QUESTION, output=f"It opened in 1937. {FAIL_MARKER}"),
        ]
        ok, bad = judge.evaluate(items)
        assert ok.score > 0.5 and ok.label == "relevant"
        assert bad.score is None and bad.label == JUDGE_ERROR

    def test_a_hung_endpoint_times_out_per_item(self, server):
        server.mode = "hang"
        judge = RelevanceJudge(settings(server, timeout_s=1))
        started = time.monotonic()
        scores = judge.evaluate(
            [EvalItem(str(i), input=QUESTION, output="It opened in 1937.") for i in range(3)]
        )
        assert time.monotonic() - started < 3
        for result in scores:
            assert result.score is None and result.label == JUDGE_ERROR
            assert result.details["error"] == ("TimeoutError: no answer from the judge within 1 s")

    def test_a_hung_endpoint_does_not_stall_a_large_batch(self, server):
        server.mode = "hang"
        judge = FactualityJudge(settings(server, timeout_s=1))
        items = [facts("It opened in 1937.", id=str(i)) for i in range(24)]
        started = time.monotonic()
        scores = judge.evaluate(items)
        # 24 items, 4 at a time, would take 6 s; after 8 failures in a row the rest are skipped.
        assert time.monotonic() - started < 4
        assert [s.id for s in scores] == [str(i) for i in range(24)]
        errors = [s.details["error"] for s in scores]
        assert all(s.label == JUDGE_ERROR for s in scores)
        timeouts = sum(e.startswith("TimeoutError") for e in errors)
        # Items already sent when the breaker opens are not cancelled: up to
        # CONCURRENCY - 1 of them time out after the one that opened it.
        assert MAX_FAILURES_IN_A_ROW <= timeouts <= MAX_FAILURES_IN_A_ROW + CONCURRENCY - 1
        assert sum(e.startswith("JudgeUnavailable") for e in errors) == 24 - timeouts

    def test_replies_of_the_wrong_shape_become_judge_errors(self, server):
        server.mode = "malformed"
        [result] = FactualityJudge(settings(server)).evaluate([facts(CONTEXT[0])])
        assert result.label == JUDGE_ERROR and result.score is None
        assert "statements" in result.details["error"]  # the field ragas wanted

    def test_an_unreachable_endpoint_becomes_judge_errors(self, server):
        closed = JudgeServer().start()
        url = closed.base_url
        closed.stop()
        judge = FactualityJudge(settings(server, timeout_s=5).model_copy(update={"base_url": url}))
        [result] = judge.evaluate([facts(CONTEXT[0])])
        assert result.label == JUDGE_ERROR
        assert result.details["error"].startswith("APIConnectionError")


def test_evaluate_works_when_called_from_async_code(server):
    judge = FactualityJudge(settings(server))

    async def inside_a_running_loop():
        return judge.evaluate([facts(CONTEXT[0])])

    [result] = asyncio.run(inside_a_running_loop())
    assert result.score == 1.0
