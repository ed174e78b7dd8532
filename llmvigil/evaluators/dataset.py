"""Score a JSONL dataset without touching the store, and measure evaluators against its labels.

A line holds ``id``, ``input``, ``output``, ``context`` (a list of passages),
``reference`` and optionally ``labels`` (evaluator name -> 0 or 1; 1 is good,
except for toxicity where 1 is toxic: in both cases 1 is what a high score
predicts). Teams use it to test a new prompt or model before it ships and to
calibrate pass thresholds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.runner import Runner


@dataclass(frozen=True)
class DatasetLine:
    """One valid line of a dataset."""

    number: int
    item: EvalItem
    labels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """A line that was skipped, and why."""

    number: int
    message: str


def _text(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{key!r} must be a string or null, not {type(value).__name__}")


def parse_line(number: int, text: str) -> DatasetLine:
    """One dataset line; raises ValueError naming the field that is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("a line must be a JSON object")
    if "id" not in data or not isinstance(data["id"], str | int):
        raise ValueError("'id' is missing or not a string")
    context = data.get("context") or []
    if isinstance(context, str):
        context = [context]
    if not isinstance(context, list) or not all(isinstance(p, str) for p in context):
        raise ValueError("'context' must be a list of strings")
    labels = data.get("labels") or {}
    if not isinstance(labels, dict) or not all(v in (0, 1) for v in labels.values()):
        raise ValueError("'labels' must map evaluator names to 0 or 1")
    item = EvalItem(
        str(data["id"]),
        _text(data.get("input"), "input"),
        _text(data.get("output"), "output"),
        tuple(context),
        _text(data.get("reference"), "reference"),
    )
    return DatasetLine(number, item, labels)


def read_dataset(path: str | os.PathLike[str]) -> tuple[list[DatasetLine], list[Problem]]:
    """The valid lines of ``path`` and the problems of the others (by line number)."""
    lines: list[DatasetLine] = []
    problems: list[Problem] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                lines.append(parse_line(number, text))
            except ValueError as exc:
                problems.append(Problem(number, str(exc)))
    return lines, problems


def score_lines(
    runner: Runner,
    lines: Sequence[DatasetLine],
    on_batch: Callable[[int], object] | None = None,
) -> dict[str, list[Score]]:
    """Every evaluator's score of every line, in line order, a batch at a time."""
    out: dict[str, list[Score]] = {e.name: [] for e in runner.evaluators}
    for start in range(0, len(lines), runner.batch_size):
        batch = [line.item for line in lines[start : start + runner.batch_size]]
        for name, pairs in runner.score(batch).items():
            out[name].extend(score for _, score in pairs)
        if on_batch is not None:
            on_batch(len(batch))
    return out


def output_records(
    lines: Sequence[DatasetLine], scores: Mapping[str, list[Score]]
) -> Iterator[dict]:
    """One JSON-ready record per line: its id, a score per evaluator, and the explanations."""
    for i, line in enumerate(lines):
        record: dict[str, Any] = {"id": line.item.id}
        details: dict[str, Any] = {}
        for name, column in scores.items():
            record[name] = column[i].score
            details[name] = {
                "method": column[i].method,
                "passed": column[i].passed,
                **column[i].details,
            }
        record["details"] = details
        yield record


@dataclass(frozen=True)
class Quality:
    """How well one evaluator's scores predict the lines' labels."""

    evaluator: str
    labelled: int
    roc_auc: float | None
    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None


def measure(
    evaluators: Sequence[Evaluator], lines: Sequence[DatasetLine], scores: Mapping[str, list[Score]]
) -> list[Quality]:
    """ROC AUC, and precision, recall and F1 at the pass threshold, per labelled evaluator.

    The positive class is label 1, predicted by ``score >= threshold``. An
    evaluator scored by another evaluator's labels (``prompt_toxicity``) is not
    measured; lines it could not score are left out of its figures.
    """
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    report = []
    for evaluator in evaluators:
        pairs = [
            (line.labels[evaluator.name], score.score)
            for line, score in zip(lines, scores[evaluator.name], strict=True)
            if evaluator.name in line.labels and score.score is not None
        ]
        if not pairs:
            continue
        labels = [label for label, _ in pairs]
        values = [value for _, value in pairs]
        auc = roc_auc_score(labels, values) if len(set(labels)) == 2 else None
        predicted = [int(v >= evaluator.threshold) for v in values]
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, average="binary", zero_division=0
        )
        report.append(
            Quality(
                evaluator.name,
                len(pairs),
                None if auc is None else float(auc),
                evaluator.threshold,
                float(precision),
                float(recall),
                float(f1),
            )
        )
    return report


def write_records(path: str | os.PathLike[str], records: Iterator[dict]) -> int:
    """Write records as JSONL (to a temporary name, then renamed); return how many."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    count = 0
    with open(temporary, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    os.replace(temporary, path)
    return count
