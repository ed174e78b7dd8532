"""Train the relevance head shipped in ``llmvigil/evaluators/weights/relevance_head.json``.

What it trains: a logistic regression over the signals the relevance evaluator
reads (``llmvigil.evaluators.relevance.FEATURES``: all-MiniLM-L6-v2 cosine
between question and response, the question word's token alignment with the
response's new word pieces, whether the response has the answer form the
question asks for, echo), computed by the evaluator's own
``signals`` so the head is trained on exactly what it scores. Its
probability is the score.

Data (labelled, written for llmvigil, under its licence; both in ``datasets/``):

- the ``relevance`` lines of ``eval_dev.jsonl`` (assistant answers, on-topic
  non-answers, off-topic text, echoes, topic descriptions);
- ``relevance_pairs_dev.jsonl``: 28 search questions, each with the sentence
  of an encyclopaedic article that answers it (1) and another sentence of the
  same article that does not (0), on subjects the validation set
  ``benchmarks/data/relevance_question_sentence.jsonl`` does not touch; and
  18 assistant lines: terse answers of the asked form and echoes of the
  question, which no other line shows.

``C`` is chosen by leave-one-question-out cross-validation over these lines
(every response to one question held out together): the smallest ``C`` within
0.002 of the best estimate, which is printed; the validation sets are scored
by ``benchmarks/bench_evaluators.py``, never here.

Usage::

    python scripts/train_relevance_head.py            # measure, then write the weights
    python scripts/train_relevance_head.py --no-write # measure only
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmvigil.evaluators.relevance import (  # noqa: E402
    FEATURES,
    WEIGHTS_FORMAT,
    WEIGHTS_PATH,
    signals,
)
from scripts._heads import roc_auc_of, train_question_head  # noqa: E402

HEAD_VERSION = "4"
FILES = ("eval_dev.jsonl", "relevance_pairs_dev.jsonl")


def features(items: list) -> np.ndarray:
    """The head's input rows for ``items``, in :data:`FEATURES` order."""
    return np.array([[float(r[name]) for name in FEATURES] for r in signals(items)])


def baseline(items: list, x: np.ndarray, y: np.ndarray) -> str:
    """The cosine alone on the same lines."""
    similarity = x[:, FEATURES.index("similarity")]
    return f"the cosine alone on the same lines: {roc_auc_of(y, similarity):.4f}"


def main() -> int:
    return train_question_head(
        doc=__doc__,
        default_out=WEIGHTS_PATH,
        files=FILES,
        label="relevance",
        positive="relevant",
        feature_names=FEATURES,
        features=features,
        baseline=baseline,
        weights_format=WEIGHTS_FORMAT,
        version=HEAD_VERSION,
        script="scripts/train_relevance_head.py",
    )


if __name__ == "__main__":
    raise SystemExit(main())
