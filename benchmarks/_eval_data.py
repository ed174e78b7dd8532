"""Loading the labelled dataset files and scoring evaluators against them.

Shared by the evaluator benchmark (``benchmarks/bench_evaluators.py``), the
toxicity training script and the tests, so that every number reported for an
evaluator is computed the same way: the same files, the same length-matched
subset, the same ROC AUC.

The files and their licences are in the repository's ``datasets/`` folder
(``datasets/README.md`` describes them); set ``LLMVIGIL_DATASETS`` to read
another folder of files with the same names.

Example::

    rows = load_rows("halueval_qa_dev.jsonl")
    items, labels = labelled(rows, "factuality")
    scores = [s.score for s in FactualityEvaluator().evaluate(items)]
    print(roc_auc(labels, scores))
    keep = length_matched_ids(rows)
    print(roc_auc(*subset(items, labels, scores, keep)))
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llmvigil.evaluators.base import EvalItem, Evaluator
from llmvigil.evaluators.text import word_count

__all__ = [
    "DATASETS_DIR",
    "DEFAULT_DATASETS_DIR",
    "dataset_path",
    "evaluate_file",
    "flag_precision_recall",
    "labelled",
    "length_matched_ids",
    "load_rows",
    "roc_auc",
    "subset",
    "to_item",
    "use_datasets_dir",
]

# Relative to this file, so a fresh clone finds its data wherever it lies.
DEFAULT_DATASETS_DIR = Path(__file__).resolve().parent.parent / "datasets"
DATASETS_DIR = Path(os.environ.get("LLMVIGIL_DATASETS") or DEFAULT_DATASETS_DIR)


def use_datasets_dir(folder: str | Path) -> Path:
    """Read dataset files by name from ``folder`` from now on; returns it resolved.

    For the benchmark's and the training script's ``--datasets`` option.
    Raises :class:`FileNotFoundError` when ``folder`` is not a directory.
    """
    global DATASETS_DIR
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"datasets folder {str(folder)!r} is not a directory; pass the folder holding "
            f"eval_dev.jsonl (default {DEFAULT_DATASETS_DIR})"
        )
    DATASETS_DIR = path
    return path


def dataset_path(name: str | Path) -> Path:
    """Path of a dataset file: ``name`` as given if it exists, else inside :data:`DATASETS_DIR`."""
    path = Path(name)
    if path.exists():
        return path
    candidate = DATASETS_DIR / path
    if not candidate.exists():
        raise FileNotFoundError(
            f"dataset {name!r} not found (looked in {DATASETS_DIR}); set LLMVIGIL_DATASETS"
        )
    return candidate


def load_rows(name: str | Path) -> list[dict[str, Any]]:
    """All lines of a JSONL dataset file as dicts, in file order."""
    with dataset_path(name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def to_item(row: dict[str, Any]) -> EvalItem:
    """The :class:`EvalItem` an evaluator sees for one dataset line."""
    return EvalItem(
        id=str(row["id"]),
        input=row.get("input"),
        output=row.get("output"),
        context=tuple(row.get("context") or ()),
        reference=row.get("reference"),
    )


def labelled(rows: Iterable[dict[str, Any]], label: str) -> tuple[list[EvalItem], list[int]]:
    """Items carrying ``label`` (e.g. ``"toxicity"``) and their 0/1 labels, in file order."""
    items: list[EvalItem] = []
    labels: list[int] = []
    for row in rows:
        if label in row.get("labels", {}):
            items.append(to_item(row))
            labels.append(int(row["labels"][label]))
    return items, labels


def length_matched_ids(
    rows: Iterable[dict[str, Any]], label: str = "factuality", max_diff: int = 1
) -> set[str]:
    """Ids of the items on which length alone cannot separate good from bad.

    For each prompt, every pair of a good (1) and a bad (0) response whose word
    counts differ by at most ``max_diff`` words; the ids of all responses in at
    least one such pair. ROC AUC over these items measures a factuality score
    with the "shorter is better" shortcut of HaluEval taken away.
    """
    by_prompt: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for row in rows:
        if label in row.get("labels", {}):
            n = word_count(row.get("output") or "")
            by_prompt[row.get("input") or ""].append((str(row["id"]), int(row["labels"][label]), n))
    keep: set[str] = set()
    for answers in by_prompt.values():
        for good_id, good, good_n in answers:
            if good != 1:
                continue
            for bad_id, bad, bad_n in answers:
                if bad == 0 and abs(good_n - bad_n) <= max_diff:
                    keep.update((good_id, bad_id))
    return keep


def subset(
    items: Sequence[EvalItem],
    labels: Sequence[int],
    scores: Sequence[float | None],
    ids: set[str],
) -> tuple[list[int], list[float | None]]:
    """Labels and scores of the items whose id is in ``ids`` (e.g. :func:`length_matched_ids`)."""
    pairs = [(y, s) for item, y, s in zip(items, labels, scores, strict=True) if item.id in ids]
    return [y for y, _ in pairs], [s for _, s in pairs]


def roc_auc(labels: Sequence[int], scores: Sequence[float | None]) -> float:
    """ROC AUC of ``scores`` against 0/1 ``labels`` (label 1 should score higher).

    Items without a score (``None`` or NaN) are left out. Returns NaN when the
    remaining labels are all one class, where AUC is undefined.
    """
    from sklearn.metrics import roc_auc_score

    pairs = [
        (y, float(s))
        for y, s in zip(labels, scores, strict=True)
        if s is not None and not math.isnan(float(s))
    ]
    if len({y for y, _ in pairs}) < 2:
        return math.nan
    return float(roc_auc_score([y for y, _ in pairs], [s for _, s in pairs]))


def flag_precision_recall(
    labels: Sequence[int],
    scores: Sequence[float | None],
    threshold: float,
    higher_is_better: bool = True,
) -> dict[str, float | int]:
    """Precision and recall of the lines an evaluator flags at its shipped ``threshold``.

    A line is flagged when it fails the threshold (``score < threshold``, or
    ``score >= threshold`` where a high score is bad, as for toxicity) and bad
    when its label says so (0, or 1 where a high score is bad): what an alert on
    failing scores would catch. Precision is NaN when nothing is flagged, recall
    when no line is bad. Unscored lines are left out.
    """
    bad_label = 0 if higher_is_better else 1
    flagged = bad = hits = 0
    for y, s in zip(labels, scores, strict=True):
        if s is None or math.isnan(float(s)):
            continue
        fails = float(s) < threshold if higher_is_better else float(s) >= threshold
        is_bad = int(y) == bad_label
        flagged += fails
        bad += is_bad
        hits += fails and is_bad
    return {
        "precision": hits / flagged if flagged else math.nan,
        "recall": hits / bad if bad else math.nan,
        "flagged": flagged,
        "bad": bad,
    }


def evaluate_file(
    evaluator: Evaluator, name: str | Path, label: str, batch_size: int = 64
) -> dict[str, Any]:
    """Run ``evaluator`` over the lines of a dataset file carrying ``label``; ROC AUC and speed.

    Returns ``{"file", "label", "items", "scored", "roc_auc", "seconds",
    "items_per_s", "precision", "recall", "flagged", "bad", "labels",
    "scores"}`` (precision and recall of the lines flagged at the evaluator's
    threshold, :func:`flag_precision_recall`), plus ``"length_matched_roc_auc"`` and
    ``"length_matched_items"`` for factuality. Batches of ``batch_size``, as
    the scheduler sends them; the time includes whatever embedding the batch
    needs that is not cached yet.
    """
    rows = load_rows(name)
    items, labels = labelled(rows, label)
    started = time.perf_counter()
    scores: list[float | None] = []
    for start in range(0, len(items), batch_size):
        scores += [s.score for s in evaluator.evaluate(items[start : start + batch_size])]
    seconds = time.perf_counter() - started
    report: dict[str, Any] = {
        "file": str(name),
        "label": label,
        "items": len(items),
        "scored": sum(s is not None for s in scores),
        "roc_auc": roc_auc(labels, scores),
        "seconds": seconds,
        "items_per_s": len(items) / seconds if seconds > 0 else math.inf,
        **flag_precision_recall(labels, scores, evaluator.threshold, evaluator.higher_is_better),
        "labels": labels,
        "scores": scores,
    }
    if label == "factuality":
        matched = length_matched_ids(rows, label)
        report["length_matched_items"] = len(matched)
        sub_labels, sub_scores = subset(items, labels, scores, matched)
        report["length_matched_roc_auc"] = roc_auc(sub_labels, sub_scores)
        rates = flag_precision_recall(
            sub_labels, sub_scores, evaluator.threshold, evaluator.higher_is_better
        )
        report["length_matched_precision"] = rates["precision"]
        report["length_matched_recall"] = rates["recall"]
    return report
