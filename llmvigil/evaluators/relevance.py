"""Relevance: does the response address the prompt?

Similarity between prompt and response alone rewards sentences on the right
topic that do not answer ("when was penicillin first used on patients" ->
"Penicillin was discovered by Alexander Fleming in 1928."). Version 4 reads
its signals off the one shared model pass and weighs them with a logistic
regression learned from labelled pairs (``scripts/train_relevance_head.py``;
the weights file ``llmvigil/evaluators/weights/relevance_head.json`` records
the data and the cross-validated estimate):

1. **Similarity**: cosine of the prompt's and the response's sentence vectors.
2. **Question-word alignment**: the question word's contextual token vector
   (the prompt's first stop-word piece: "when", "who", "how", "is"...; the
   model has read it in its sentence, so "how" in "how many moons" differs
   from "how" in "how do volcanoes erupt") and its largest cosine with a word
   piece of the response that the prompt does not contain. High when the
   response brings the kind of thing asked for (a number, a name, a date, a
   cause), in whatever words; low when it only repeats the topic.
3. **Answer form**: the question's type (a how-to question wants steps, "when"
   a time, "how many" a number, "who" a name...; ``questions.py``) and whether
   the response has that form (``answers.py``). Kept because it still earns
   its place beside the alignment (without it the first validation set drops
   from 0.992 to 0.985 and the second from 0.871 to 0.856).
4. **Echo**: every content word of the response comes from the prompt (it
   restates the question).

Version 3's topic-description rule (a response opening "<the question's topic>
is a ...") and its terse-answer and coverage signals were dropped: the head
gave the first no weight and the others lost on the validation sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from llmvigil.evaluators.answers import named_forms, text_forms
from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.heads import LogisticHead
from llmvigil.evaluators.questions import Question, analyse_question
from llmvigil.evaluators.registry import register
from llmvigil.evaluators.text import STOP_WORDS, content_words, stem
from llmvigil.evaluators.vectors import TextVectors, TokenStates, shared_vectors

#: The learned weights (coefficients over :data:`FEATURES`, intercept, provenance).
WEIGHTS_PATH = Path(__file__).parent / "weights" / "relevance_head.json"
WEIGHTS_FORMAT = "llmvigil-relevance-head"
#: The signals the head weighs, in the order of its coefficients. Chosen on the
#: training lines' leave-one-question-out ROC AUC and the first validation set
#: (scripts/train_relevance_head.py); version 3's answer-form, topic-description,
#: coverage and terse-answer rules added nothing there once the alignment was in.
FEATURES = ("similarity", "question_word_alignment", "form_found", "echo")

METHOD = "all-MiniLM-L6-v2 similarity + question-word token alignment, learned weights"


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
    ``details`` gives each signal, the question word the alignment was read
    from, the response piece it matched best, the question's type and expected
    answer form, the forms found, and the head's version.
    """

    name = "relevance"
    # 2: a response describing the topic instead of answering fails whatever its
    # similarity; steps listed with commas read as instructions. 3: learned weights
    # over the signals instead of hand-set factors. 4: the question word's token
    # alignment with the response replaces the hand-written question types and forms.
    version = "4"
    needs = frozenset({"input", "output"})
    threshold = 0.5

    def __init__(self, head: RelevanceHead | None = None, vectors: TextVectors | None = None):
        """Score with ``head`` (default: the weights shipped in the package)."""
        self._head = head
        self._vectors = vectors

    @property
    def head(self) -> RelevanceHead:
        """The weights in use, loaded on first use."""
        if self._head is None:
            self._head = shipped_head()
        return self._head

    def evaluate(self, batch: Sequence[EvalItem]) -> list[Score]:
        """Score every item; all texts of the batch are embedded in one model pass."""
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
            rows = signals([batch[i] for i in todo], self._vectors)
            x = np.array([[float(r[name]) for name in FEATURES] for r in rows])
            probability = self.head.probability(x)
            for k, i in enumerate(todo):
                details = {**rows[k], "head_version": self.head.version}
                score = round(float(probability[k]), 4)
                scores[i] = self.make_score(batch[i].id, score, METHOD, details)
        return [s for s in scores if s is not None]


def signals(
    items: Sequence[EvalItem], vectors: TextVectors | None = None
) -> list[dict[str, object]]:
    """The signals of :data:`FEATURES` for each item, with what explains them.

    For the evaluator and for ``scripts/train_relevance_head.py``, so the head is
    trained on exactly what it scores. Every item needs an input and an output.
    One model pass gives both the sentence vectors and the token states.
    """
    vectors = vectors or shared_vectors()
    n = len(items)
    texts = [item.input or "" for item in items] + [item.output or "" for item in items]
    tokens = vectors.encode_tokens(texts)  # the one pass; encode() reads its cache
    sentence = vectors.encode(texts)
    return pair_signals(
        texts[:n], texts[n:], tokens[:n], tokens[n:], sentence[:n], sentence[n:], vectors
    )


def pair_signals(
    questions: Sequence[str],
    responses: Sequence[str],
    question_tokens: Sequence[TokenStates],
    response_tokens: Sequence[TokenStates],
    question_vectors: np.ndarray,
    response_vectors: np.ndarray,
    vectors: TextVectors,
) -> list[dict[str, object]]:
    """:func:`signals` of each (question, response) pair from vectors already computed.

    For evaluators that embed their own texts and ask whether a piece of a
    response answers a part of a question (completeness), without a second pass.
    """
    cosines = (question_vectors * response_vectors).sum(axis=1)
    pieces = vectors.model.tokenizer.id_to_token
    analyses: dict[str, Question] = {}
    # Completeness asks about every part and piece of an answer several times (parts x
    # pieces): what depends on one text alone is worked out once per call.
    stems: dict[str, set[str]] = {}
    question_words: dict[str, int] = {}
    response_forms: dict[str, set[str]] = {}
    out = []
    for k, (question, response) in enumerate(zip(questions, responses, strict=True)):
        if question not in question_words:
            question_words[question] = question_word_at(question_tokens[k], pieces)
        word, match, alignment = _alignment(
            question_tokens[k], question_words[question], response_tokens[k], pieces
        )
        question_stems = _stems(question, stems)
        response_stems = _stems(response, stems)
        if question not in analyses:
            analyses[question] = analyse_question(question)
        analysis = analyses[question]
        if response not in response_forms:
            response_forms[response] = text_forms(response)
        forms = response_forms[response] | named_forms(response, question)
        found = analysis.expects is not None and bool(analysis.accepts & forms)
        out.append(
            {
                "similarity": round(float(cosines[k]), 4),
                "question_word_alignment": round(alignment, 4),
                "form_found": found,
                "echo": bool(response_stems) and response_stems <= question_stems,
                "question_word": word,
                "best_matching_piece": match,
                "question_type": analysis.kind,
                "expected_form": analysis.expects,
                "forms_found": sorted(forms),
            }
        )
    return out


def question_word_alignment(
    question: TokenStates, response: TokenStates, piece=None
) -> tuple[str | None, str | None, float]:
    """The question word's largest cosine with a response piece the question does not hold.

    The question word is the question's first stop-word piece (its first piece
    when it has none). Returns that word, the best-matching response piece (as
    strings when ``piece``, an id-to-string function, is given) and the cosine;
    0.0 when the response brings no piece of its own.
    """
    return _alignment(question, question_word_at(question, piece), response, piece)


def question_word_at(question: TokenStates, piece=None) -> int:
    """Position of the question word among the question's pieces (see
    :func:`question_word_alignment`); 0 without ``piece``."""
    if piece is None:
        return 0
    stop = [piece(int(i)) in STOP_WORDS for i in question.ids]
    return stop.index(True) if True in stop else 0


def _alignment(
    question: TokenStates, at: int, response: TokenStates, piece
) -> tuple[str | None, str | None, float]:
    if not len(question.ids) or not len(response.ids):
        return None, None, 0.0
    # The same mask as ~np.isin(response.ids, question.ids), a tenth of its time on
    # a sentence's few dozen pieces.
    new = ~(response.ids[:, None] == question.ids).any(axis=1)
    if not new.any():
        return _name(piece, question.ids[at]), None, 0.0
    sims = response.vectors[new].astype(np.float32) @ question.vectors[at].astype(np.float32)
    best = int(np.argmax(sims))
    return _name(piece, question.ids[at]), _name(piece, response.ids[new][best]), float(sims[best])


def _stems(text: str, memo: dict[str, set[str]]) -> set[str]:
    """Stems of the content words of ``text``, remembered in ``memo``."""
    if text not in memo:
        memo[text] = {stem(w) for w in content_words(text)}
    return memo[text]


def _name(piece, token_id) -> str | None:
    return piece(int(token_id)) if piece is not None else None
