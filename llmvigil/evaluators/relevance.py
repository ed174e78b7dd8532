"""Relevance: does the response address the prompt?

Similarity between prompt and response alone rewards answers on the right
topic that do not answer ("How do I update my billing address?" -> "Billing
addresses are important for invoices."), so the score weighs several signals
read off the shared model pass and the question, with weights learned from
labelled pairs (``scripts/train_relevance_head.py``; the weights file
``llmvigil/evaluators/weights/relevance_head.json`` records the data and the
cross-validated estimate):

1. **Similarity** between prompt and response (the shared sentence vectors).
2. **Answer form.** The question's type says what form an answer takes: a
   how-to question wants steps, "when" a time, "how many" a number, "who" a
   name, "why" a reason, a yes/no question a yes or no; whether the response
   has it, and whether a terse response ("Eight.") is just that.
3. **Echo and topic description**: a response whose content words all come
   from the question restates it; one that opens with "<the question's topic>
   is a ..." describes the topic instead of answering.
4. **Coverage**: the share of the question's content words the response uses.

Up to version 2 these were combined by hand-set factors and a hand-set
logistic curve, which fitted the dev lines but lost to the plain cosine on
question/sentence pairs: a penalty or floor fired on real answers. A logistic
regression now sets how much each signal counts, and its probability is the
score. Version 2's focus surplus (the response's similarity to the question
beyond its similarity to the question's topic words) and its penalty for a
missing form were dropped: the learned head did better without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from llmvigil.evaluators.answers import answer_forms, describes_topic
from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.heads import LogisticHead
from llmvigil.evaluators.questions import Question, analyse_question
from llmvigil.evaluators.registry import register
from llmvigil.evaluators.text import content_words, stem, word_count
from llmvigil.evaluators.vectors import shared_vectors

#: A response of at most this many words with the expected form counts as terse.
TERSE_WORDS = 6
#: Forms that a terse answer can carry on its own ("Eight.", "Yes.", "At 9 pm.").
TERSE_FORMS = frozenset({"quantity", "time", "duration", "yesno", "person", "place"})
#: The learned weights (coefficients over :data:`FEATURES`, intercept, provenance).
WEIGHTS_PATH = Path(__file__).parent / "weights" / "relevance_head.json"
WEIGHTS_FORMAT = "llmvigil-relevance-head"
#: The signals the head weighs, in the order of its coefficients.
# Backward elimination on the training lines' leave-one-question-out ROC AUC
# (scripts/train_relevance_head.py) dropped the focus surplus (0.962 -> 0.970) and
# the missing-form flag (-> 0.972): they cost more than they carried.
FEATURES = (
    "similarity",
    "form_found",
    "echo",
    "describes_topic",
    "question_coverage",
    "terse_form",
)

METHOD = "all-MiniLM-L6-v2 similarity + answer form, learned weights"


class RelevanceHead(LogisticHead):
    """Logistic-regression weights over :data:`FEATURES`: the probability of a relevant response."""

    @classmethod
    def load(cls, path: Path | str = WEIGHTS_PATH) -> RelevanceHead:
        """Read a weights file; raises :class:`EvaluatorError` when missing or malformed."""
        return cls.read(
            path, "relevance", WEIGHTS_FORMAT, "scripts/train_relevance_head.py", FEATURES
        )


@lru_cache(maxsize=1)
def shipped_head() -> RelevanceHead:
    """The head shipped with the package, loaded once per process."""
    return RelevanceHead.load()


@register
class Relevance(Evaluator):
    """Scores how directly a response addresses its prompt, in [0, 1] (higher is better).

    The score is the learned head's probability over :data:`FEATURES`;
    ``details`` gives each signal (the cosine, the expected answer form and
    whether the response has it, echo, topic description, coverage) and the
    head's version.
    """

    name = "relevance"
    # 2: a response describing the topic instead of answering fails whatever its
    # similarity; steps listed with commas read as instructions. 3: learned weights
    # over the signals instead of hand-set factors.
    version = "3"
    needs = frozenset({"input", "output"})
    threshold = 0.5

    def __init__(self, head: RelevanceHead | None = None) -> None:
        """Score with ``head`` (default: the weights shipped in the package)."""
        self._head = head

    @property
    def head(self) -> RelevanceHead:
        """The weights in use, loaded on first use."""
        if self._head is None:
            self._head = shipped_head()
        return self._head

    def evaluate(self, batch: Sequence[EvalItem]) -> list[Score]:
        """Score every item; all texts of the batch are embedded in one call."""
        scores: list[Score | None] = [None] * len(batch)
        todo: list[int] = []
        for i, item in enumerate(batch):
            if not (item.input or "").strip():
                scores[i] = self.make_score(item.id, None, METHOD, {"reason": "no input"})
            elif not (item.output or "").strip():
                scores[i] = self.make_score(item.id, 0.0, METHOD, {"reason": "empty response"})
            else:
                todo.append(i)
        if todo:
            rows = signals([batch[i] for i in todo])
            x = np.array([[float(r[name]) for name in FEATURES] for r in rows])
            probability = self.head.probability(x)
            for k, i in enumerate(todo):
                details = {**rows[k], "head_version": self.head.version}
                score = round(float(probability[k]), 4)
                scores[i] = self.make_score(batch[i].id, score, METHOD, details)
        return [s for s in scores if s is not None]


def signals(items: Sequence[EvalItem]) -> list[dict[str, object]]:
    """The signals of :data:`FEATURES` for each item, with what explains them.

    For the evaluator and for ``scripts/train_relevance_head.py``, so the head is
    trained on exactly what it scores. Every item needs an input and an output.
    """
    analyses = [analyse_question(item.input or "") for item in items]
    n = len(items)
    texts = [item.input or "" for item in items] + [item.output or "" for item in items]
    vectors = shared_vectors().encode(texts)
    cosines = (vectors[:n] * vectors[n:]).sum(axis=1)
    return [
        _signals(item, analysis, float(cos))
        for item, analysis, cos in zip(items, analyses, cosines, strict=True)
    ]


def _signals(item: EvalItem, analysis: Question, cos_q: float) -> dict[str, object]:
    question, response = item.input or "", item.output or ""
    expected = analysis.expects
    forms = answer_forms(response, question)
    found = expected is None or bool(analysis.accepts & forms)
    question_stems = {stem(w) for w in content_words(question)}
    response_stems = {stem(w) for w in content_words(response)}
    echo = bool(response_stems) and response_stems <= question_stems
    describes = analysis.kind not in {"definition", "explanation", "other"} and describes_topic(
        response, question, analysis.focus, focus_allowed=analysis.kind == "choice"
    )
    coverage = len(question_stems & response_stems) / len(question_stems) if question_stems else 0.0
    terse = expected in TERSE_FORMS and found and word_count(response) <= TERSE_WORDS
    return {
        "similarity": round(cos_q, 4),
        "focus": analysis.focus,
        "question_type": analysis.kind,
        "expected_form": expected,
        "accepted_forms": sorted(analysis.accepts),
        "expected_form_found": found if expected is not None else None,
        "forms_found": sorted(forms),
        "form_found": expected is not None and found,
        "echo": echo,
        "describes_topic": describes,
        "question_coverage": round(coverage, 4),
        "terse_form": terse,
    }
