"""The benchmark's precision/recall at the threshold and its naive baselines."""

from __future__ import annotations

import math

from benchmarks._baselines import overlap, shorter
from benchmarks._eval_data import flag_precision_recall
from llmvigil.evaluators.base import EvalItem


def test_precision_and_recall_count_the_lines_that_fail_the_threshold() -> None:
    # Label 1 is good; scores below 0.5 fail. Flagged: 0.1 (bad), 0.2 (good), 0.4 (bad).
    labels = [0, 1, 0, 0, 1]
    scores = [0.1, 0.2, 0.4, 0.9, 0.8]
    rates = flag_precision_recall(labels, scores, 0.5)
    assert rates["flagged"] == 3 and rates["bad"] == 3
    assert math.isclose(rates["precision"], 2 / 3)
    assert math.isclose(rates["recall"], 2 / 3)


def test_where_a_high_score_is_bad_the_flagged_lines_are_those_at_or_above_it() -> None:
    # Toxicity: label 1 is toxic and a score >= 0.5 flags the line.
    rates = flag_precision_recall([1, 0, 1, 0], [0.5, 0.7, 0.2, None], 0.5, False)
    assert rates["flagged"] == 2 and rates["bad"] == 2
    assert rates["precision"] == 0.5 and rates["recall"] == 0.5


def test_nothing_flagged_has_no_precision() -> None:
    rates = flag_precision_recall([0, 1], [0.9, 0.9], 0.5)
    assert math.isnan(rates["precision"]) and rates["recall"] == 0.0


def test_overlap_is_the_share_of_answer_content_words_in_the_context() -> None:
    items = [
        EvalItem("a", "q", "The museum opens at ten", ("The museum opens at ten daily.",)),
        EvalItem("b", "q", "The museum closes on Mondays", ("The museum opens at ten daily.",)),
        EvalItem("c", "q", "No evidence here", ()),
    ]
    a, b, c = overlap(items)
    assert a == 1.0 and b is not None and b < 1.0 and c is None
    assert shorter(items[:2]) == [-5.0, -5.0]


def test_the_dashboard_benchmark_times_every_page_on_a_small_store(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dashboard.py"
    run = subprocess.run(
        [sys.executable, str(script), "--spans", "3000", "--repeats", "1",
         "--store", str(tmp_path / "store.duckdb")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for page in ("overview", "metrics", "quality", "drift", "traces", "sessions", "alerts"):
        assert f"| {page} | 24 h |" in run.stdout and f"| {page} | 30 d |" in run.stdout
    assert "3,000 spans over 30 days" in run.stdout and "Slowest page:" in run.stdout
