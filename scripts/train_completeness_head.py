"""Train the completeness head shipped in ``llmvigil/evaluators/weights/completeness_head.json``.

What it trains: a logistic regression over the weakest part's measures the
completeness evaluator computes (``llmvigil.evaluators.completeness.FEATURES``:
how much more some piece of the response is close to that part than to any
other part of the question, by cosine and by the relevance head's
probability that the piece answers the part; the share of the pieces that
lean to it; and how far the whole response's vector leans away from it), read
from the evaluator's own
``details`` so the head is trained on exactly what it scores. Its
probability is the score.

Data (labelled, written for llmvigil, under its licence; both in ``datasets/``):

- the ``completeness`` lines of ``eval_dev.jsonl``;
- ``completeness_pairs_dev.jsonl``: 18 questions of two or three parts, each
  answered completely (some tersely) and only in part (some at length, so that
  length alone does not tell them apart), on subjects the validation sets
  ``benchmarks/data/completeness_heldout.jsonl`` and
  ``completeness_heldout_2.jsonl`` do not touch.

``C`` is chosen by leave-one-question-out cross-validation over these lines
(every response to one question held out together): the ``C`` of the lowest
log loss (the ROC AUC barely moves with ``C`` here, and its smallest ``C`` kept
every probability between 0.3 and 0.7), and its ROC AUC is printed; the
validation sets are scored by ``benchmarks/bench_evaluators.py``, never here.

Usage::

    python scripts/train_completeness_head.py            # measure, then write the weights
    python scripts/train_completeness_head.py --no-write # measure only
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmvigil.evaluators.completeness import (  # noqa: E402
    FEATURES,
    WEIGHTS_FORMAT,
    WEIGHTS_PATH,
    Completeness,
    CompletenessHead,
)
from scripts._heads import roc_auc_of, train_question_head  # noqa: E402

HEAD_VERSION = "5"
FILES = ("eval_dev.jsonl", "completeness_pairs_dev.jsonl")


def _details(items: list) -> list[dict]:
    # Any head will do: the features in ``details`` do not depend on it.
    blank = CompletenessHead(np.zeros(len(FEATURES)), 0.0, "untrained")
    return [s.details for s in Completeness(head=blank).evaluate(items)]


def features(items: list) -> np.ndarray:
    """The head's input rows for ``items``, in :data:`FEATURES` order."""
    return np.array([[float(d[name]) for name in FEATURES] for d in _details(items)])


def baseline(items: list, x: np.ndarray, y: np.ndarray) -> str:
    """The weakest part's specificity alone on the same lines."""
    value = roc_auc_of(y, x[:, FEATURES.index("weakest_part_specificity")])
    return f"the weakest part's specificity alone on the same lines: {value:.4f}"


def main() -> int:
    return train_question_head(
        doc=__doc__,
        default_out=WEIGHTS_PATH,
        files=FILES,
        label="completeness",
        positive="complete",
        feature_names=FEATURES,
        features=features,
        baseline=baseline,
        weights_format=WEIGHTS_FORMAT,
        version=HEAD_VERSION,
        script="scripts/train_completeness_head.py",
        by_log_loss=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
