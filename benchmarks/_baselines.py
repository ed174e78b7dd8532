"""The naive baselines each evaluator must beat, computed on the same lines in the same run.

Each is what a user could write in a line or two, scored so that a higher
value means the label-1 side (a good answer, or for toxicity a toxic text):

- ``overlap``: the share of the response's content words found in the
  context (or the reference), for factuality;
- ``shorter``: minus the response's word count (shorter is better), and
  ``longer``: the word count;
- ``cosine``: all-MiniLM-L6-v2 cosine between prompt and response (the shared
  vectors the evaluators use);
- ``profanity-check``: alt-profanity-check's probability for the response;
- ``logreg``: a logistic regression on the response's sentence vector, trained
  on ``toxigen_dev.jsonl`` (scikit-learn defaults, balanced classes).

Example::

    items, labels = labelled(load_rows("halueval_qa_dev.jsonl"), "factuality")
    roc_auc(labels, overlap(items))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.text import content_words, word_count

__all__ = ["BASELINES", "cosine", "logreg", "longer", "overlap", "profanity", "shorter"]


def overlap(items: Sequence[EvalItem]) -> list[float | None]:
    """Share of each response's content words that appear in its context or reference."""
    out: list[float | None] = []
    for item in items:
        evidence = " ".join([*item.context, item.reference or ""])
        answer = content_words(item.output or "")
        if not answer or not evidence.strip():
            out.append(None)
            continue
        known = set(content_words(evidence))
        out.append(sum(w in known for w in answer) / len(answer))
    return out


def shorter(items: Sequence[EvalItem]) -> list[float | None]:
    """Minus the response's word count."""
    return [-float(word_count(item.output or "")) for item in items]


def longer(items: Sequence[EvalItem]) -> list[float | None]:
    """The response's word count."""
    return [float(word_count(item.output or "")) for item in items]


def cosine(items: Sequence[EvalItem]) -> list[float | None]:
    """Cosine of the prompt's and the response's shared sentence vectors."""
    from llmvigil.evaluators.vectors import shared_vectors

    vectors = shared_vectors()
    q = vectors.encode([item.input or "" for item in items])
    a = vectors.encode([item.output or "" for item in items])
    return [float(v) for v in np.sum(q * a, axis=1)]


def profanity(items: Sequence[EvalItem]) -> list[float | None]:
    """alt-profanity-check's probability for each response, as a user would call it."""
    from profanity_check import predict_prob

    return [float(p) for p in predict_prob([item.output or "" for item in items])]


_logreg_model: list = []


def logreg(items: Sequence[EvalItem]) -> list[float | None]:
    """A logistic regression on the sentence vector, trained on toxigen_dev.jsonl."""
    from sklearn.linear_model import LogisticRegression

    from benchmarks._eval_data import labelled, load_rows
    from llmvigil.evaluators.vectors import shared_vectors

    vectors = shared_vectors()
    if not _logreg_model:
        train, labels = labelled(load_rows("toxigen_dev.jsonl"), "toxicity")
        x = vectors.encode([item.output or "" for item in train])
        model = LogisticRegression(max_iter=2000, class_weight="balanced")
        _logreg_model.append(model.fit(x, labels))
    x = vectors.encode([item.output or "" for item in items])
    return [float(p) for p in _logreg_model[0].predict_proba(x)[:, 1]]


#: The baselines shown beside each evaluator, by evaluator name.
BASELINES: dict[str, dict[str, Callable[[Sequence[EvalItem]], list[float | None]]]] = {
    "relevance": {"MiniLM cosine(question, answer)": cosine, "shorter is better": shorter},
    "completeness": {"MiniLM cosine(question, answer)": cosine, "longer is better": longer},
    "brevity": {"shorter is better": shorter},
    "factuality": {
        "share of content words found in the context": overlap,
        "shorter is better": shorter,
    },
    "toxicity": {
        "alt-profanity-check": profanity,
        "logistic regression on the sentence vector (trained on toxigen_dev)": logreg,
    },
}
