"""What the head-training scripts share: set-up, the logistic fit, choosing ``C``, the weights file.

The four scripts (``train_relevance_head.py``, ``train_completeness_head.py``,
``train_framing_head.py``, ``train_toxicity_head.py``) each keep their own
data and features; this module holds the rest:

- :func:`setup`: offline model loading (``HF_HUB_OFFLINE=1``) and the
  repository root on ``sys.path`` (so ``benchmarks`` and an uninstalled
  ``llmvigil`` import);
- :func:`parser`: the ``--out`` / ``--no-write`` command line;
- :func:`fit_logistic`: the L2 logistic regression every head is (seeded,
  lbfgs, deterministic);
- :func:`grouped_decisions`, :func:`smallest_c_within`: held-out decision
  values by group (a question, a ToxiGen group) and the ``C`` rule;
- :func:`weights_payload`, :func:`write_weights`: the JSON weights file;
- :func:`train_question_head`: the whole recipe of the relevance and
  completeness heads (labelled lines of some files, ``C`` by
  leave-one-question-out cross-validation, weights written).

Import it from a script after putting the repository root on ``sys.path``::

    ROOT = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(ROOT))
    from scripts._heads import ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: Every fit and fold is seeded with this.
SEED = 0
#: The ``C`` grid of the question-grouped heads (relevance, completeness).
GRID_C = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
#: The smallest ``C`` whose estimate is within this of the best is chosen.
TOLERANCE = 0.002


def setup() -> Path:
    """Load models offline and put the repository root on ``sys.path``; returns the root."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return ROOT


setup()


def parser(doc: str | None, default_out: Path) -> argparse.ArgumentParser:
    """The scripts' command line: ``--out FILE`` and ``--no-write`` (add more to it)."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    p.add_argument("--out", type=Path, default=default_out, help="weights file to write")
    p.add_argument("--no-write", action="store_true", help="measure only")
    return p


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    c: float,
    sample_weight: np.ndarray | None = None,
    class_weight: str | None = None,
) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of an L2 logistic regression (lbfgs, seeded)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        C=c, max_iter=10_000, class_weight=class_weight, random_state=SEED
    ).fit(x, y, sample_weight=sample_weight)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def grouped_decisions(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    fit: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, float]],
    held_out: Sequence[Any] | None = None,
) -> np.ndarray:
    """Decision values of every row of ``held_out`` groups (default all) from a head fit
    without its group's rows; ``fit(x, y, groups)`` fits one head. Other rows stay 0."""
    out = np.zeros(len(y))
    for group in np.unique(groups) if held_out is None else held_out:
        held = groups == group
        w, b = fit(x[~held], y[~held], groups[~held])
        out[held] = x[held] @ w + b
    return out


def leave_one_question_out(x: np.ndarray, y: np.ndarray, questions: np.ndarray, c: float):
    """Decision values of every line from a head trained without its question's lines."""
    return grouped_decisions(x, y, questions, lambda xs, ys, _: fit_logistic(xs, ys, c))


def smallest_c_within(estimates: dict[float, float], tolerance: float = TOLERANCE) -> float:
    """The smallest ``C`` whose estimate is within ``tolerance`` of the best.

    Weaker regularisation buys nothing measurable on a hundred lines and
    saturates the probabilities that teams threshold.
    """
    top = max(estimates.values())
    return min(c for c, v in estimates.items() if v >= top - tolerance)


def weights_payload(
    weights_format: str,
    version: str,
    metadata: dict[str, Any],
    script: str,
    coef: np.ndarray,
    intercept: float,
) -> dict[str, Any]:
    """A head's weights file: format and version, ``metadata`` (in its order), the
    scikit-learn version and seed, the script, then intercept and coefficients."""
    import sklearn

    return {
        "format": weights_format,
        "version": version,
        **metadata,
        "trained_with": {"scikit-learn": sklearn.__version__, "seed": SEED},
        "script": script,
        "intercept": round(float(intercept), 8),
        "coef": [round(float(v), 8) for v in coef],
    }


def write_weights(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as the weights file ``path`` (one-space indented JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def labelled_lines(files: Sequence[str], label: str):
    """Items, labels, question keys and file names of the ``label`` lines of ``files``."""
    from benchmarks._eval_data import labelled, load_rows

    items, labels, questions, sources = [], [], [], []
    for name in files:
        file_items, file_labels = labelled(load_rows(name), label)
        items += file_items
        labels += file_labels
        questions += [f"{name}:{item.input}" for item in file_items]
        sources += [name] * len(file_items)
    return items, np.array(labels), np.array(questions), np.array(sources)


def train_question_head(
    *,
    doc: str | None,
    default_out: Path,
    files: Sequence[str],
    label: str,
    positive: str,
    feature_names: Sequence[str],
    features: Callable[[list], np.ndarray],
    baseline: Callable[[list, np.ndarray, np.ndarray], str],
    weights_format: str,
    version: str,
    script: str,
    grid: Sequence[float] = GRID_C,
    tolerance: float = TOLERANCE,
    by_log_loss: bool = False,
    argv: Sequence[str] | None = None,
) -> int:
    """Train, measure and write a head over per-line features of question/response pairs.

    ``features(items)`` gives one row per item in ``feature_names`` order;
    ``baseline(items, x, y)`` a sentence comparing a simpler signal on the same
    lines. ``C`` is chosen from ``grid`` by leave-one-question-out
    cross-validation (every response to one question held out together), the
    smallest within ``tolerance`` of the best; its estimate is printed and
    written. With ``by_log_loss``, the ``C`` of the lowest cross-validated log
    loss instead: for features spanning a few tenths, the ROC AUC is flat over
    ``C`` and its smallest ``C`` keeps every probability near even odds, which
    no threshold can use. Returns the exit status.
    """
    from benchmarks._eval_data import roc_auc

    args = parser(doc, default_out).parse_args(argv)
    items, y, q, src = labelled_lines(files, label)
    x = features(items)
    print(f"data: {len(y)} lines ({y.sum()} {positive}), {len(set(q.tolist()))} questions")

    print("leave-one-question-out ROC AUC by C (all lines / per file):")
    estimates, losses = {}, {}
    for c in grid:
        oof = leave_one_question_out(x, y, q, c)
        per_file = ", ".join(
            f"{name} {roc_auc(y[src == name].tolist(), oof[src == name].tolist()):.3f}"
            for name in files
        )
        estimates[c] = roc_auc(y.tolist(), oof.tolist())
        losses[c] = log_loss(y, oof)
        print(f"  C={c:<5g} {estimates[c]:.4f}  ({per_file}; log loss {losses[c]:.4f})")
    if by_log_loss:
        best_c = min(losses, key=losses.get)
        how = "log loss"
    else:
        best_c = smallest_c_within(estimates, tolerance)
        how = "ROC AUC"
    best_auc = estimates[best_c]
    print(
        f"chosen C={best_c:g} by {how} (cross-validated ROC AUC {best_auc:.4f}); "
        f"{baseline(items, x, y)}"
    )
    w, b = fit_logistic(x, y, best_c)
    print("weights: " + ", ".join(f"{n} {v:+.3f}" for n, v in zip(feature_names, w, strict=True)))
    print(f"intercept {b:+.3f}")
    if args.no_write:
        return 0
    metadata = {
        "features": list(feature_names),
        "classifier": f"logistic regression, L2, C={best_c:g} chosen by leave-one-question-out "
        f"cross-validation ({how}); probability = sigmoid(features . coef + intercept)",
        "training_data": [
            {
                "file": name,
                "lines": int((src == name).sum()),
                positive: int(y[src == name].sum()),
                "source": "written for llmvigil",
                "licence": "same as llmvigil",
            }
            for name in files
        ],
        "cross_validated_roc_auc": round(best_auc, 4),
    }
    write_weights(args.out, weights_payload(weights_format, version, metadata, script, w, b))
    return 0


def log_loss(y: np.ndarray, decisions: np.ndarray) -> float:
    """Mean log loss of the probabilities ``sigmoid(decisions)`` against the labels ``y``."""
    # log(1 + e^-z) for the positives, log(1 + e^z) for the negatives, without overflow.
    signed = np.where(y == 1, decisions, -decisions)
    return float(np.mean(np.logaddexp(0.0, -signed)))


def roc_auc_of(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of ``scores`` against ``y`` (the benchmarks' implementation)."""
    from benchmarks._eval_data import roc_auc

    return roc_auc(np.asarray(y).tolist(), np.asarray(scores).tolist())
