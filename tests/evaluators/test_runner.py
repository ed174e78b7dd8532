"""The runner: incremental, exactly once (also across SIGKILL), sampling, failures, plug-ins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from llmvigil.evaluators import EvalItem, Evaluator, registry
from llmvigil.evaluators.dataset import measure, read_dataset, score_lines
from llmvigil.evaluators.runner import Runner, build_evaluators, sampled
from llmvigil.storage import Store, schema
from tests.storage.spans_factory import make_span

REPO = Path(__file__).resolve().parents[2]
PLUGIN = Path(__file__).parent / "plugin_pkg"


class Length(Evaluator):
    """A plain third-party-style evaluator: longer outputs score higher."""

    name = "length"
    version = "1"
    needs = frozenset({"output"})

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def evaluate(self, batch):
        self.calls.append([i.id for i in batch])
        return [self.make_score(i.id, min(len(i.output) / 100, 1.0), "chars") for i in batch]


class Fragile(Evaluator):
    """Fails on any output containing 'boom'."""

    name = "fragile"
    needs = frozenset({"output"})

    def evaluate(self, batch):
        if any("boom" in i.output for i in batch):
            raise RuntimeError("cannot handle boom")
        return [self.make_score(i.id, 1.0, "fragile") for i in batch]


def stored(store: Store) -> list[dict]:
    return store.evaluations()


def test_each_span_is_scored_once_in_committed_batches(store: Store) -> None:
    store.append_spans([make_span(i, output_text="x" * (i + 1)) for i in range(25)])
    length = Length()
    report = Runner([length], batch_size=10).run(store)
    assert report.spans == 25 and report.batches == 3 and report.scored["length"] == 25
    assert [len(c) for c in length.calls] == [10, 10, 5]
    assert Runner([length], batch_size=10).run(store).spans == 0
    rows = stored(store)
    assert len(rows) == 25 and {r["method"] for r in rows} == {"chars"}
    store.append_spans([make_span(100, output_text="new")])
    assert Runner([Length()]).run(store).spans == 1


def test_a_new_evaluator_version_rescores(store: Store) -> None:
    store.append_spans([make_span(i) for i in range(5)])
    Runner([Length()]).run(store)

    class LengthV2(Length):
        version = "2"

    assert Runner([LengthV2()]).run(store).scored["length"] == 5
    versions = sorted(r["evaluator_version"] for r in stored(store))
    assert versions == ["1"] * 5 + ["2"] * 5


def test_an_added_evaluator_scores_only_what_it_lacks(store: Store) -> None:
    store.append_spans([make_span(i) for i in range(6)])
    Runner([Length()]).run(store)
    length = Length()
    report = Runner([length, Fragile()]).run(store)
    assert report.scored["fragile"] == 6 and report.scored["length"] == 0
    assert length.calls == []


def test_spans_without_the_needed_fields_get_a_reason_not_a_score(store: Store) -> None:
    store.append_spans([make_span(0, output_text=None, status="error")])
    report = Runner([Length()]).run(store)
    (row,) = stored(store)
    assert row["score"] is None and row["label"] == "skipped"
    assert "no output_text" in row["details"]["reason"] or "no output" in row["details"]["reason"]
    assert report.skipped["length"] == 1


def test_a_failing_item_is_isolated_and_recorded(store: Store) -> None:
    store.append_spans([make_span(i, output_text="boom" if i == 3 else "fine") for i in range(6)])
    report = Runner([Fragile()], batch_size=6).run(store)
    assert report.scored["fragile"] == 5 and report.failed["fragile"] == 1
    failed = [r for r in stored(store) if r["label"] == "evaluator_error"]
    assert len(failed) == 1 and "cannot handle boom" in failed[0]["details"]["error"]


def test_failures_can_be_forgotten_and_retried(store: Store) -> None:
    store.append_spans([make_span(i, output_text="boom" if i == 0 else "fine") for i in range(3)])
    Runner([Fragile()]).run(store)
    assert store.forget_failed_evaluations([("fragile", "1")], ["evaluator_error"]) == 1
    assert store.forget_failed_evaluations([("fragile", "1")], ["evaluator_error"]) == 0
    assert Runner([Fragile()]).run(store).spans == 1


def test_sampling_is_deterministic_and_marks_what_it_leaves_out(store: Store) -> None:
    rows = [make_span(i) for i in range(400)]
    store.append_spans(rows)
    report = Runner([Length()], batch_size=100, sampling={"length": 0.25}).run(store)
    assert 60 < report.scored["length"] < 140
    assert report.scored["length"] + report.skipped["length"] == 400
    chosen = {r["span_id"] for r in rows if sampled(r["span_id"], "length", 0.25)}
    scored = {r["span_id"] for r in stored(store) if r["score"] is not None}
    assert scored == chosen
    assert {r["label"] for r in stored(store) if r["score"] is None} == {"not_sampled"}
    assert Runner([Length()], sampling={"length": 0.25}).run(store).spans == 0


def test_only_configured_span_kinds_are_scored(store: Store) -> None:
    store.append_spans([make_span(0, kind="retrieval"), make_span(1, kind="chain")])
    assert Runner([Length()], kinds=["llm", "chain"]).run(store).spans == 1


def test_sampling_must_name_an_enabled_evaluator() -> None:
    with pytest.raises(Exception, match="not enabled"):
        Runner([Length()], sampling={"lenght": 0.5})


KILLABLE_RUN = """
import sys, time
from llmvigil.evaluators import Evaluator
from llmvigil.evaluators.runner import Runner
from llmvigil.storage import Store

class Slow(Evaluator):
    name = "slow"
    needs = frozenset({"output"})
    def evaluate(self, batch):
        time.sleep(0.05)
        return [self.make_score(i.id, 0.5, "slow") for i in batch]

store = Store(sys.argv[1])
print("started", flush=True)
Runner([Slow()], batch_size=20).run(store, on_batch=lambda n: print("batch", flush=True))
"""


@pytest.mark.slow
def test_a_run_killed_with_sigkill_and_restarted_scores_everything_once(tmp_path) -> None:
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    with Store(url) as store:
        store.append_spans([make_span(i) for i in range(1_000)])
    script = tmp_path / "run.py"
    script.write_text(KILLABLE_RUN)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = 0
    while True:
        runs += 1
        proc = subprocess.Popen(
            [sys.executable, str(script), url], stdout=subprocess.PIPE, text=True, env=env
        )
        batches = 0
        for line in proc.stdout:
            batches += line.strip() == "batch"
            if batches == 7:  # kill it mid-run, somewhere inside the eighth batch
                time.sleep(0.02)
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        if batches < 7 or runs == 10:
            break
    assert runs >= 2
    with Store(url) as store:
        with store.engine.connect() as conn:
            counts = conn.execute(
                sa.select(schema.evaluations.c.span_id, sa.func.count()).group_by(
                    schema.evaluations.c.span_id
                )
            ).all()
        assert len(counts) == 1_000 and {c for _, c in counts} == {1}


@pytest.mark.slow
def test_a_plugin_installed_with_pip_runs_like_a_builtin(tmp_path, monkeypatch, duckdb_url) -> None:
    store = Store(duckdb_url)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        timeout=300,
    )
    registry.available()  # built-ins register on first import: load them before the swap
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    politeness = registry.get("politeness")
    assert politeness.__module__ == "llmvigil_politeness"
    assert {"relevance", "toxicity", "factuality", "politeness"} <= set(registry.available())
    store.append_spans(
        [make_span(0, output_text="Thank you for asking."), make_span(1, output_text="No.")]
    )
    report = Runner(build_evaluators(["politeness"])).run(store)
    assert report.scored["politeness"] == 2
    scores = {r["span_id"]: r["score"] for r in stored(store)}
    assert sorted(scores.values()) == [0.0, 1.0]
    store.close()


def test_dataset_lines_are_scored_and_malformed_ones_reported(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    good = {"id": "a", "input": "q", "output": "x" * 80, "labels": {"length": 1}}
    short = {"id": "b", "input": "q", "output": "x", "labels": {"length": 0}}
    path.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                json.dumps({"input": "no id"}),
                json.dumps({"id": "c", "context": "a single passage", "output": "xx"}),
                json.dumps({"id": "d", "labels": {"length": 7}}),
                "",
                json.dumps(short),
            ]
        )
    )
    lines, problems = read_dataset(path)
    assert [line.item.id for line in lines] == ["a", "c", "b"]
    assert [(p.number, p.message.split(" ")[0]) for p in problems] == [
        (2, "not"),
        (3, "'id'"),
        (5, "'labels'"),
    ]
    assert lines[1].item.context == ("a single passage",)
    runner = Runner([Length()], batch_size=2)
    scores = score_lines(runner, lines)
    assert [s.score for s in scores["length"]] == [0.8, 0.02, 0.01]
    (quality,) = measure(runner.evaluators, lines, scores)
    assert quality.roc_auc == 1.0 and quality.labelled == 2
    assert (quality.precision, quality.recall) == (1.0, 1.0)


def test_items_are_given_to_evaluators_as_eval_items() -> None:
    items = [EvalItem("1", "q", "out")]
    length = Length()
    assert Runner([length]).score(items)["length"][0][1].score == 0.03


def test_redaction_placeholders_read_as_typical_values() -> None:
    from llmvigil.evaluators.runner import item_of, readable

    assert readable("Call [PHONE] or write to [EMAIL].") == (
        "Call +1 555 0100 or write to someone@example.com."
    )
    assert readable(None) is None and readable("no brackets") == "no brackets"
    span = make_span(0, output_text="Call [PHONE].", context=["Support: [PHONE]"])
    item = item_of(span)
    assert item.output == "Call +1 555 0100." and item.context == ("Support: +1 555 0100",)


@pytest.mark.slow
def test_a_redacted_answer_still_answers_the_question(store: Store) -> None:
    store.append_spans(
        [
            make_span(
                0,
                input_text="What is your phone support number?",
                output_text="Call [PHONE], from 8am to 6pm.",
            )
        ]
    )
    Runner(build_evaluators(["relevance"])).run(store)
    (row,) = stored(store)
    assert row["passed"] is True, row["details"]


def test_choosing_detoxify_is_a_new_toxicity_version() -> None:
    from llmvigil.evaluators.toxicity import ToxicityEvaluator

    default = ToxicityEvaluator()
    detoxify = ToxicityEvaluator(detoxify_checkpoint="/models/toxic_original.ckpt")
    assert default.version == ToxicityEvaluator.version
    assert detoxify.version.startswith(f"{default.version}+detoxify-")
    assert len(detoxify.version) <= 32
    assert Runner([detoxify]).wanted == [("toxicity", detoxify.version)]
