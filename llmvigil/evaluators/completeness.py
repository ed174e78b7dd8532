"""Completeness: does the response cover every part of the question (and the reference's points)?

The question is split into the things it asks (separate questions,
coordinated clauses, "the weight limit and the size limit"; see
:func:`~llmvigil.evaluators.questions.split_parts`), and the reference, when
there is one, into its sentences. The response is split into clauses. A part
is covered by a clause when the clause

- names the part's own key terms (those the other parts do not share), or is
  close to it in meaning (shared vectors, calibrated), and
- has the form of answer the part asks for (a time for "when", a number for
  "how many", ...), and
- is not plainly about a sibling part: when parts come from one coordinated
  question ("the weight limit and the size limit"), a clause that names the
  other part's key terms and none of this part's ("The weight limit is 8 kg"
  against "what is the size limit?") does not count for it.

Each clause answers at most one part (an optimal assignment), except that a
clause naming a part's own terms may serve several, and other reuse counts
at a discount: one number cannot be both the weight and the size limit.

Version 3 scores with a logistic regression learned on labelled answers
(``scripts/train_completeness_head.py``, weights in
``llmvigil/evaluators/weights/completeness_head.json``) over what the above
measures (:data:`FEATURES`): the weakest part's coverage, the
weakest part's best raw similarity to any clause, the mean similarity of an
optimal one-clause-per-part assignment, and whether there are as many clauses
as parts. Up to version 2 the score was the mean part coverage, whose
hand-set calibration fitted the dev lines (ROC AUC 1.0) but not complete
answers worded otherwise (0.695 on ``benchmarks/data/completeness_heldout.jsonl``).
With a reference, the head's probability is averaged with the mean coverage
of the reference's points. ``details`` lists the parts and points not covered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from llmvigil.evaluators.answers import LOCATIVE, answer_forms, explicit_yes_no, names_someone
from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.heads import LogisticHead
from llmvigil.evaluators.questions import (
    FORM_WEIGHT,
    Question,
    QuestionPart,
    analyse_question,
    key_terms,
)
from llmvigil.evaluators.registry import register
from llmvigil.evaluators.text import split_sentences, word_count
from llmvigil.evaluators.vectors import shared_vectors

METHOD = "all-MiniLM-L6-v2 part coverage + key terms, learned weights"
#: The learned weights (coefficients over :data:`FEATURES`, intercept, provenance).
WEIGHTS_PATH = Path(__file__).parent / "weights" / "completeness_head.json"
WEIGHTS_FORMAT = "llmvigil-completeness-head"
#: What the head weighs, in the order of its coefficients (all in ``details``).
# The mean part coverage (version 2's score) is left out: beside the weakest
# part's it took a negative weight and lowered the cross-validated ROC AUC
# (0.875 against 0.882, scripts/train_completeness_head.py's lines).
FEATURES = (
    "weakest_part_coverage",
    "weakest_part_similarity",
    "assigned_similarity",
    "clauses_for_every_part",
)

#: Logistic calibration of the cosine between a question part (or reference
#: point) and a response clause.
MIDPOINT = 0.45
SCALE = 0.08
#: Calibration against reference points. Stricter than for question parts:
#: any on-topic clause is close to a reference sentence about the same topic,
#: so only near-paraphrases count as covering a point by meaning alone.
REFERENCE_MIDPOINT = 0.7
REFERENCE_SCALE = 0.07
LEXICAL_EXPONENT = 0.75
#: A part counts as covered in ``details`` from this coverage on.
COVERED = 0.5
#: Share of coverage kept when a clause names another part's terms and none of this part's.
OTHER_PART_FACTOR = 0.3
#: Share of coverage kept when a clause already answering one part is reused for another.
SHARED_FACTOR = 0.5
#: A clause of at most this many words that has the asked form is a bare answer ("8 kg").
TERSE_WORDS = 8
TERSE_FLOOR = 0.85
TERSE_FORMS = frozenset({"quantity", "time", "duration", "yesno", "person", "place"})
#: Weight of the reference's points against the question's parts, when there is a reference.
REFERENCE_WEIGHT = 0.5


def _set(words: str) -> frozenset[str]:
    """A frozen set of the space-separated words in ``words``."""
    return frozenset(words.split())


# Words that phrase a question rather than name what it is about; an answer
# need not repeat them ("How long is the warranty?" -> "Two years.").
_QUESTION_WORDS = _set(
    "long much many old far big tall high often fast tim need want like know tell pleas "
    "explain describ"
)

# Clause boundaries inside a response sentence: semicolons, colons, and a
# comma or "and"/"but" that starts a new clause.
_CLAUSE_SPLIT = re.compile(
    r"\s*;\s*|:\s+|,\s*(?:and|but|while|whereas|so|plus)\s+|,\s+(?=(?:yes|no)\b)"
    r"|,?\s+(?:and\s+)?then\s+"
    # "... and costs $450", "... and has a projector": a verb with its object.
    r"|\s+and\s+(?=[a-z]+s\s+(?:\$|\d|(?:a|an|the|up|about|around|over|under|at|from|only|"
    r"no|free|for|in|on|to|by|until|within)\b))"
    r"|\s+(?:and|but)\s+(?=(?:it|its|it's|you|your|they|their|we|our|there|this|that|he|she|"
    r"yes|no|[^\W\d_]+(?:-[^\W\d_]+)*\s+(?:is|are|was|were|costs?|takes?|lasts?|starts?|"
    r"ends?|closes?|opens?|runs?))\b)",
    re.IGNORECASE,
)


def response_units(response: str) -> list[str]:
    """The clauses of ``response``: sentences split at semicolons, colons and clause joins."""
    units: list[str] = []
    for sentence in split_sentences(response):
        pieces = [p.strip(" ,;") for p in _CLAUSE_SPLIT.split(sentence)]
        units.extend(p for p in pieces if p and re.search(r"\w", p))
    return units or ([response.strip()] if response.strip() else [])


def _calibrate(cos: np.ndarray, midpoint: float = MIDPOINT, scale: float = SCALE) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(cos - midpoint) / scale))


class CompletenessHead(LogisticHead):
    """Logistic-regression weights over :data:`FEATURES`: the probability of a complete response."""

    @classmethod
    def load(cls, path: Path | str = WEIGHTS_PATH) -> CompletenessHead:
        """Read a weights file; raises :class:`EvaluatorError` when missing or malformed."""
        return cls.read(
            path, "completeness", WEIGHTS_FORMAT, "scripts/train_completeness_head.py", FEATURES
        )


@lru_cache(maxsize=1)
def shipped_head() -> CompletenessHead:
    """The head shipped with the package, loaded once per process."""
    return CompletenessHead.load()


def _answer_terms(part: QuestionPart) -> set[str]:
    return {t for t in part.terms if t not in _QUESTION_WORDS}


@register
class Completeness(Evaluator):
    """Scores how much of what was asked (and of the reference) the response covers, in [0, 1].

    ``details`` has one entry per question part (its text, coverage and the
    response clause that covers it best), the parts and reference points not
    covered, and the two coverage means.
    """

    name = "completeness"
    # 2: steps listed with commas ("Open Settings, choose ...") read as instructions.
    # 3: a learned head over the coverage measures scores. The pass threshold stays
    # 0.7: alerts set on it keep their meaning of "most of what was asked".
    version = "3"
    needs = frozenset({"input", "output"})
    threshold = 0.7

    def __init__(self, head: CompletenessHead | None = None) -> None:
        """Score with ``head`` (default: the weights shipped in the package)."""
        self._head = head

    @property
    def head(self) -> CompletenessHead:
        """The weights in use, loaded on first use."""
        if self._head is None:
            self._head = shipped_head()
        return self._head

    def evaluate(self, batch: Sequence[EvalItem]) -> list[Score]:
        """Score every item; all parts, points and clauses of the batch are embedded in one call."""
        scores: list[Score | None] = [None] * len(batch)
        plans = []
        texts: list[str] = []
        for i, item in enumerate(batch):
            if not (item.input or "").strip():
                scores[i] = self.make_score(item.id, None, METHOD, {"reason": "no input"})
                continue
            if not (item.output or "").strip():
                scores[i] = self.make_score(item.id, 0.0, METHOD, {"reason": "empty response"})
                continue
            analysis = analyse_question(item.input or "")
            parts = list(analysis.parts) or [
                QuestionPart(item.input or "", analysis.kind, key_terms(item.input or ""))
            ]
            units = response_units(item.output or "")
            points = split_sentences(item.reference or "") if item.reference else []
            plans.append((i, analysis, parts, units, points, len(texts)))
            texts.extend(p.text for p in parts)
            texts.extend(units)
            texts.extend(points)
        vectors = shared_vectors().encode(texts) if texts else np.zeros((0, 0), np.float32)
        for i, analysis, parts, units, points, offset in plans:
            n_p, n_u = len(parts), len(units)
            part_vecs = vectors[offset : offset + n_p]
            unit_vecs = vectors[offset + n_p : offset + n_p + n_u]
            point_vecs = vectors[offset + n_p + n_u : offset + n_p + n_u + len(points)]
            scores[i] = self._score(
                batch[i], analysis, parts, units, points, part_vecs, unit_vecs, point_vecs
            )
        return [s for s in scores if s is not None]

    def _score(
        self,
        item: EvalItem,
        analysis: Question,
        parts: list[QuestionPart],
        units: list[str],
        points: list[str],
        part_vecs: np.ndarray,
        unit_vecs: np.ndarray,
        point_vecs: np.ndarray,
    ) -> Score:
        unit_terms = [set(key_terms(u)) for u in units]
        unit_forms = [answer_forms(u, item.input) for u in units]
        unit_words = [word_count(u) for u in units]
        semantic = _calibrate(part_vecs @ unit_vecs.T)  # parts x units

        terms = [_answer_terms(p) for p in parts]
        # Key terms of a part: its terms that no other part shares.
        own = []
        for k, t in enumerate(terms):
            others = set().union(*(terms[j] for j in range(len(parts)) if j != k))
            own.append(t - others)

        n_p, n_u = len(parts), len(units)
        # Parts split from one coordinated phrase ("the weight limit and the
        # size limit for bags") differ only in their own terms, so a clause
        # naming one sibling's terms and none of another's is about the first.
        siblings = [
            [j for j in range(n_p) if j != k and parts[j].group == parts[k].group]
            for k in range(n_p)
        ]
        value = np.zeros((n_p, n_u))
        lexical_hit = np.zeros((n_p, n_u), dtype=bool)
        for k, part in enumerate(parts):
            expected = _expected_form(part)
            for u in range(n_u):
                has_form = expected is None or bool(part.accepts & unit_forms[u])
                found = own[k] & unit_terms[u]
                # Concave: one of two key terms named is more than half the evidence.
                lexical = (len(found) / len(own[k])) ** LEXICAL_EXPONENT if found else 0.0
                v = max(lexical, float(semantic[k, u]))
                if has_form and _bare_answer(expected, units[u], unit_words[u], item.input or ""):
                    v = max(v, TERSE_FLOOR)  # a bare value of the asked form: "8 kg", "3 pm"
                if not has_form:
                    v *= 1.0 - FORM_WEIGHT[expected]
                if not found and any(own[j] & unit_terms[u] for j in siblings[k]):
                    v *= OTHER_PART_FACTOR
                value[k, u] = v
                lexical_hit[k, u] = bool(found)
        # Each clause answers one part; a clause naming a part's own terms may
        # serve several (a list answer), and any other reuse counts at a discount.
        rows, cols = linear_sum_assignment(value, maximize=True)
        assigned = np.zeros(n_p)
        best_unit: list[int | None] = [None] * n_p
        for k, u in zip(rows, cols, strict=True):
            assigned[k], best_unit[k] = value[k, u], int(u)
        coverage = assigned.copy()
        expected = [_expected_form(p) for p in parts]
        for k in range(n_p):
            # Reuse is free when the clause names this part's terms, or holds
            # this part's form besides the form of the part it answers
            # ("Arsenal won 2-1": a name for who won, a score for the score).
            free = lexical_hit[k].copy()
            for j, u in zip(rows, cols, strict=True):
                if j != k and expected[k] and expected[j] and expected[k] != expected[j]:
                    free[u] |= bool(parts[k].accepts & unit_forms[u])
            shared = np.where(free, value[k], SHARED_FACTOR * value[k])
            if n_u and shared.max() > coverage[k]:
                coverage[k], best_unit[k] = float(shared.max()), int(shared.argmax())
        part_rows = [
            {
                "part": part.text,
                "kind": part.kind,
                "coverage": round(float(coverage[k]), 3),
                "covered_by": units[best_unit[k]] if best_unit[k] is not None else None,
            }
            for k, part in enumerate(parts)
        ]
        question_coverage = float(coverage.mean()) if len(parts) else 0.0

        similarity = part_vecs @ unit_vecs.T  # parts x units, raw cosines
        if n_p and n_u:
            sim_rows, sim_cols = linear_sum_assignment(similarity, maximize=True)
            assigned_similarity = float(similarity[sim_rows, sim_cols].sum() / n_p)
            weakest_similarity = float(similarity.max(axis=1).min())
        else:
            assigned_similarity = weakest_similarity = 0.0
        details = {
            "parts": part_rows,
            "not_covered": [r["part"] for r in part_rows if r["coverage"] < COVERED],
            "question_coverage": round(question_coverage, 4),
            "weakest_part_coverage": round(float(coverage.min()) if n_p else 0.0, 4),
            "weakest_part_similarity": round(weakest_similarity, 4),
            "assigned_similarity": round(assigned_similarity, 4),
            "response_clauses": len(units),
            "clauses_for_every_part": n_u >= n_p,
        }
        row = np.array([[float(details[name]) for name in FEATURES]])
        head_probability = float(self.head.probability(row)[0])
        details["head_probability"] = round(head_probability, 4)

        point_rows = []
        reference_coverage = None
        if points:
            asked = set(key_terms(item.input or ""))
            response_terms = set().union(*unit_terms) if unit_terms else set()
            point_sem = _calibrate(
                point_vecs @ unit_vecs.T, REFERENCE_MIDPOINT, REFERENCE_SCALE
            ).max(axis=1)
            values = []
            for k, point in enumerate(points):
                # A point's own content is what it adds to the question.
                point_terms = set(key_terms(point)) - asked
                lexical = (
                    len(point_terms & response_terms) / len(point_terms) if point_terms else 0.0
                )
                value = max(lexical, float(point_sem[k]))
                values.append(value)
                point_rows.append({"point": point, "coverage": round(value, 3)})
            reference_coverage = float(np.mean(values))
            reference_part = REFERENCE_WEIGHT * reference_coverage
            score = (1 - REFERENCE_WEIGHT) * head_probability + reference_part
        else:
            score = head_probability

        if points:
            details["reference_points"] = point_rows
            details["reference_not_covered"] = [
                r["point"] for r in point_rows if r["coverage"] < COVERED
            ]
            details["reference_coverage"] = round(float(reference_coverage or 0.0), 4)
        score = min(1.0, max(0.0, score))
        if math.isnan(score):
            score = 0.0
        return self.make_score(item.id, round(score, 4), METHOD, details)


def _bare_answer(expected: str | None, unit: str, n_words: int, question: str) -> bool:
    """Whether a short clause with the expected form is a bare answer ("8 kg", "Yes, it is")."""
    if expected not in TERSE_FORMS or n_words > TERSE_WORDS:
        return False
    # "we will confirm by email" is no answer to "can I bring wine?", nor "you
    # have 30 days" to "who pays?": a short clause needs an explicit yes or no,
    # or a name, to count as a bare answer to such a part.
    if expected == "yesno":
        return explicit_yes_no(unit)
    if expected == "person":
        return names_someone(unit, question)
    if expected == "place":
        # A place needs a locative phrase or a real name, not any capital ("Guest2024").
        return bool(LOCATIVE.search(unit)) or names_someone(unit, question)
    return True


def _expected_form(part: QuestionPart) -> str | None:
    return part.kind if part.kind in FORM_WEIGHT else None
