"""Relevance: does the response address the prompt?

Similarity between prompt and response alone rewards answers on the right
topic that do not answer ("How do I update my billing address?" -> "Billing
addresses are important for invoices."), so the score combines three signals:

1. **Focus similarity.** The cosine between prompt and response, plus how much
   closer the response is to the whole question than to the question's topic
   words without its focus (the verb of a how-to question, the noun of a
   what/which question). An answer that only talks about the topic gains
   nothing over the topic; one that addresses what was asked does. This is
   mapped to [0, 1] with a logistic curve.
2. **Answer form.** The question's type says what form an answer takes: a
   how-to question wants steps or instructions, "when" a time, "how many" a
   number, "who" a name, "why" a reason, a yes/no question a yes or no. A
   response without that form loses a share of its score set per form
   (:data:`~llmvigil.evaluators.questions.FORM_WEIGHT`): more for forms a real
   answer nearly always shows, less for ones often left implicit.
3. **Echo and topic description.** A response whose content words all come
   from the question restates it without answering; one that opens with
   "<the question's topic> is a ..." describes the topic instead of answering
   what was asked about it.

A terse response of the expected form ("Eight." to "How many legs...") is
direct by definition and keeps a high score even though one word shares
little meaning with a whole question.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llmvigil.evaluators.answers import answer_forms, describes_topic
from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.questions import AUXILIARIES, FORM_WEIGHT, Question, analyse_question
from llmvigil.evaluators.registry import register
from llmvigil.evaluators.text import content_words, stem, word_count
from llmvigil.evaluators.vectors import shared_vectors

#: Weight of the question-over-topic surplus in the focus similarity.
FOCUS_WEIGHT = 0.5
#: Logistic calibration of the focus similarity: midpoint and scale. Unrelated
#: text sits near 0 on all-MiniLM-L6-v2, direct answers above 0.6.
MIDPOINT = 0.40
SCALE = 0.08
#: How far the midpoint moves down when the response has the expected form.
FORM_SHIFT = 0.15
#: Share of the score kept by a response that only restates the question.
ECHO_FACTOR = 0.4
#: A response of at most this many words with the expected form counts as direct.
TERSE_WORDS = 6
TERSE_FLOOR = 0.75
#: Forms that a terse answer can carry on its own ("Eight.", "Yes.", "At 9 pm.").
TERSE_FORMS = frozenset({"quantity", "time", "duration", "yesno", "person", "place"})
#: Share kept by a response that opens by describing the question's topic.
#: Below half, so such a response fails the 0.5 threshold however close it is
#: in meaning: describing what was asked about is not answering it.
TOPIC_DESCRIPTION_FACTOR = 0.45

METHOD = "all-MiniLM-L6-v2 focus similarity + answer form"


def topic_text(question: str, analysis: Question) -> str:
    """The question's content words without its focus: what it is about, not what it asks."""
    words = [w for w in content_words(question) if w not in AUXILIARIES]
    focus = stem(analysis.focus) if analysis.focus else None
    topic = [w for w in words if stem(w) != focus]
    return " ".join(topic or words) or question


def calibrate(similarity: float, form_found: bool = False) -> float:
    """Map a focus similarity to [0, 1].

    With ``form_found`` (the response has the form the question asks for) the
    curve shifts by :data:`FORM_SHIFT`: the form is evidence of an answer in
    its own right, for answers worded far from the question.
    """
    midpoint = MIDPOINT - (FORM_SHIFT if form_found else 0.0)
    return 1.0 / (1.0 + math.exp(-(similarity - midpoint) / SCALE))


@register
class Relevance(Evaluator):
    """Scores how directly a response addresses its prompt, in [0, 1] (higher is better).

    ``details`` gives the raw cosine, the cosine to the question's topic, the
    focus similarity and its calibrated value, the expected answer form and
    whether the response has it, and whether it only echoes the question.
    """

    name = "relevance"
    # 2: a response describing the topic instead of answering fails whatever its
    # similarity; steps listed with commas read as instructions.
    version = "2"
    needs = frozenset({"input", "output"})
    threshold = 0.5

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
            analyses = [analyse_question(batch[i].input or "") for i in todo]
            topics = [
                topic_text(batch[i].input or "", a) for i, a in zip(todo, analyses, strict=True)
            ]
            n = len(todo)
            texts = [batch[i].input or "" for i in todo] + [batch[i].output or "" for i in todo]
            vectors = shared_vectors().encode(texts + topics)
            q, a, t = vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
            cos_question = (q * a).sum(axis=1)
            cos_topic = (t * a).sum(axis=1)
            for k, i in enumerate(todo):
                scores[i] = self._score(
                    batch[i], analyses[k], float(cos_question[k]), float(cos_topic[k]), topics[k]
                )
        return [s for s in scores if s is not None]

    def _score(
        self, item: EvalItem, analysis: Question, cos_q: float, cos_t: float, topic: str
    ) -> Score:
        question, response = item.input or "", item.output or ""
        expected = analysis.expects
        forms = answer_forms(response, question)
        found = expected is None or bool(analysis.accepts & forms)
        focus_similarity = cos_q + FOCUS_WEIGHT * (cos_q - cos_t)
        calibrated = calibrate(focus_similarity, expected is not None and found)
        terse = word_count(response) <= TERSE_WORDS
        score = calibrated
        if expected in TERSE_FORMS and found and terse:
            score = max(score, TERSE_FLOOR)
        if not found:
            score *= 1.0 - FORM_WEIGHT[expected]
        question_stems = {stem(w) for w in content_words(question)}
        response_stems = {stem(w) for w in content_words(response)}
        echo = bool(response_stems) and response_stems <= question_stems
        if echo:
            score *= ECHO_FACTOR
        describes = analysis.kind not in {"definition", "explanation", "other"} and describes_topic(
            response, question, analysis.focus, focus_allowed=analysis.kind == "choice"
        )
        if describes:
            score *= TOPIC_DESCRIPTION_FACTOR
        details = {
            "similarity": round(cos_q, 4),
            "topic": topic,
            "topic_similarity": round(cos_t, 4),
            "focus": analysis.focus,
            "focus_similarity": round(focus_similarity, 4),
            "calibrated": round(calibrated, 4),
            "question_type": analysis.kind,
            "expected_form": expected,
            "accepted_forms": sorted(analysis.accepts),
            "expected_form_found": found if expected is not None else None,
            "forms_found": sorted(forms),
            "echo": echo,
            "describes_topic_instead": describes,
        }
        return self.make_score(item.id, round(float(score), 4), METHOD, details)
