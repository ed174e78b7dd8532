"""Completeness: does the response cover every part of the question (and the reference's points)?

The question is split into the things it asks (separate questions,
coordinated clauses, "the weight limit and the size limit", "..., and
when?"; see :func:`~llmvigil.evaluators.questions.analyse_question`), and the
response into pieces: its sentences, and the clauses those split into at
commas, semicolons, colons, dashes and "and" (:func:`response_pieces`). Every
part and piece goes through the shared all-MiniLM-L6-v2 pass once.

What says a part is answered is not how close some piece is to it (a
partial answer stays on the question's topic, so its pieces are close to
every part) but whether some piece answers *this* part rather than the
others: a part's **specificity** is the best margin, over the pieces, of a
measure of the part and the piece over the largest value of that measure for
another part and the same piece (for a question of one part, over 0). A part
the answer leaves out has no piece leaning its way, however long the answer is.

Two measures are read that way (:data:`FEATURES`, for the weakest part):

1. the cosine of the part's and the piece's sentence vectors;
2. the relevance head's probability that the piece answers the part
   (:func:`~llmvigil.evaluators.relevance.pair_signals`: similarity, the
   question word's token alignment with the piece, the answer form the part
   asks for, echo). "Jupiter, with about 95 known moons." leans to "how many
   moons does it have?" through its number, where its sentence vector is
   close to both parts.

Two more are read off the whole answer: the **share** of the pieces that lean
to the part (by the sum of the two), as a complete answer gives some of its
pieces to every part and a partial one, however long, gives them all to the
parts it answers; and the whole response's **lean**, its cosine to the part
less its largest cosine to any part, as a partial answer's sentence vector
sits by the parts it answers.

Version 5 weighs the four with a logistic regression learned on labelled answers
(``scripts/train_completeness_head.py``, weights in
``llmvigil/evaluators/weights/completeness_head.json``). Each part's own
coverage in ``details`` is the same head over that part's measures (never
below the score, as every weight is positive), so the parts below
:data:`COVERED` are the ones the answer leaves out. Version 4 weighed the
cosine's specificity over pieces and over five-word windows, and the best
cosine: 0.965 ROC AUC on ``benchmarks/data/completeness_heldout.jsonl`` and
0.839 on ``completeness_heldout_2.jsonl``; up to version 3 the measures were
hand-written coverage rules (0.895 and 0.775).
With a reference, the head's probability is averaged with the mean coverage
of the reference's points. ``details`` lists the parts and points not covered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.heads import LogisticHead
from llmvigil.evaluators.questions import analyse_question, key_terms
from llmvigil.evaluators.registry import register
from llmvigil.evaluators.relevance import FEATURES as RELEVANCE_FEATURES
from llmvigil.evaluators.relevance import pair_signals
from llmvigil.evaluators.relevance import shipped_head as relevance_head
from llmvigil.evaluators.text import split_sentences
from llmvigil.evaluators.vectors import TextVectors, TokenStates, shared_vectors

METHOD = "all-MiniLM-L6-v2 part specificity by cosine and relevance head, learned weights"
#: The learned weights (coefficients over :data:`FEATURES`, intercept, provenance).
WEIGHTS_PATH = Path(__file__).parent / "weights" / "completeness_head.json"
WEIGHTS_FORMAT = "llmvigil-completeness-head"
#: What the head weighs, in the order of its coefficients (all in ``details``): the
#: weakest part's specificity over the response's pieces by cosine and by the
#: relevance head's probability that the piece answers the part, the smallest
#: share of the pieces that lean to one part (by the sum of the two measures), and
#: how far the whole response's vector leans away from the part.
FEATURES = (
    "weakest_part_specificity",
    "weakest_part_answer_specificity",
    "weakest_part_share",
    "weakest_part_response_lean",
)
#: Calibration against reference points: only near-paraphrases count as
#: covering a point by meaning alone (any on-topic clause is close to a
#: reference sentence about the same topic).
REFERENCE_MIDPOINT = 0.7
REFERENCE_SCALE = 0.07
#: A part (or reference point) counts as covered in ``details`` from this coverage on.
COVERED = 0.5
#: Weight of the reference's points against the question's parts, when there is a reference.
REFERENCE_WEIGHT = 0.5

# Where a response sentence splits into pieces: punctuation inside it, a dash
# between spaces, and "and".
_PIECE_SPLIT = re.compile(r"\s*[;:,]\s+|\s+[-–—]\s+|\s+and\s+", re.IGNORECASE)


def response_pieces(response: str) -> list[str]:
    """The sentences of ``response``, then the pieces they split into (each once)."""
    sentences = split_sentences(response)
    pieces = [p.strip(" ,;.") for s in sentences for p in _PIECE_SPLIT.split(s)]
    out = list(dict.fromkeys([*sentences, *(p for p in pieces if re.search(r"\w", p))]))
    return out or ([response.strip()] if response.strip() else [])


def specificity(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each part's best margin over the other parts, and the piece that gives it.

    ``similarity`` is parts x pieces (cosines). A part's margin at a piece is
    its cosine minus the largest cosine of another part to that piece (0 when
    the question has one part).
    """
    n_parts = similarity.shape[0]
    margins = np.empty_like(similarity)
    for k in range(n_parts):
        others = np.delete(similarity, k, axis=0)
        rival = others.max(axis=0) if len(others) else np.zeros(similarity.shape[1])
        margins[k] = similarity[k] - rival
    return margins.max(axis=1), margins.argmax(axis=1)


def answer_probability(
    texts: Sequence[str],
    tokens: Sequence[TokenStates],
    sentence: np.ndarray,
    pairs: np.ndarray,
    vectors: TextVectors,
) -> np.ndarray:
    """The relevance head's probability that each piece answers each part, per pair.

    ``pairs`` holds (part, piece) positions in ``texts``, ``tokens`` and ``sentence``
    (their token states and sentence vectors). All pairs of a batch go in one call, so
    what depends on one text alone is worked out once for the batch, however many
    answers repeat it.
    """
    if not len(pairs):
        return np.zeros(0)
    parts, pieces = pairs[:, 0], pairs[:, 1]
    rows = pair_signals(
        [texts[k] for k in parts],
        [texts[k] for k in pieces],
        [tokens[k] for k in parts],
        [tokens[k] for k in pieces],
        sentence[parts],
        sentence[pieces],
        vectors,
    )
    x = np.array([[float(r[name]) for name in RELEVANCE_FEATURES] for r in rows])
    return relevance_head().probability(x)


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


@register
class Completeness(Evaluator):
    """Scores how much of what was asked (and of the reference) the response covers, in [0, 1].

    ``details`` has one entry per question part (its text, coverage and the
    response piece that leans its way most), the parts and reference points
    not covered, and the weakest part's measures the head weighs.
    """

    name = "completeness"
    # 2: steps listed with commas ("Open Settings, choose ...") read as instructions.
    # 3: a learned head over the coverage measures scores.
    # 4: the head weighs each part's specificity (a piece of the answer closer to it
    # than to the other parts) instead of hand-written coverage rules. The pass
    # threshold is 0.5: the head is a calibrated probability of a complete answer, and
    # below even odds is what fails (0.7 failed most complete answers in other words).
    # 5: the relevance head's probability that a piece answers a part, read as a
    # specificity beside the cosine's, the part's share of the pieces and the whole
    # response's lean replace the windows and the best cosine.
    version = "5"
    needs = frozenset({"input", "output"})
    threshold = 0.5

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
        """Score every item; all parts, pieces and points of the batch go through one model pass."""
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
            parts = [p.text for p in analyse_question(item.input or "").parts]
            parts = parts or [(item.input or "").strip()]
            pieces = response_pieces(item.output or "")
            points = split_sentences(item.reference or "") if item.reference else []
            plans.append((i, parts, pieces, points, len(texts)))
            texts.extend([*parts, *pieces, *points])
        vectors = shared_vectors()
        tokens = vectors.encode_tokens(texts)  # the one pass; encode() reads its cache
        sentence = vectors.encode(texts) if texts else np.zeros((0, 0), np.float32)
        # The whole responses need only their sentence vectors, which relevance has
        # usually computed already: asking for their token states too would run the
        # model again for any the token cache has dropped, on the batch's longest texts.
        responses = vectors.encode([batch[plan[0]].output or "" for plan in plans])
        # Every part against every piece of its own answer, for the whole batch at once.
        pairs = [
            (offset + k, offset + len(parts) + j)
            for _, parts, pieces, _, offset in plans
            for k in range(len(parts))
            for j in range(len(pieces))
        ]
        answers = answer_probability(texts, tokens, sentence, np.array(pairs, int), vectors)
        start = 0
        for (i, parts, pieces, points, offset), response_vec in zip(plans, responses, strict=True):
            bounds = np.cumsum([offset, len(parts), len(pieces), len(points)])
            part_vecs, piece_vecs, point_vecs = (sentence[a:b] for a, b in pairwise(bounds))
            size = len(parts) * len(pieces)
            item_answers = answers[start : start + size].reshape(len(parts), len(pieces))
            start += size
            vecs = (part_vecs, piece_vecs, point_vecs, response_vec)
            scores[i] = self._score(batch[i], parts, pieces, points, vecs, item_answers)
        return [s for s in scores if s is not None]

    def _score(
        self,
        item: EvalItem,
        parts: list[str],
        pieces: list[str],
        points: list[str],
        vecs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        answers: np.ndarray,
    ) -> Score:
        part_vecs, piece_vecs, point_vecs, response_vec = vecs
        similarity = part_vecs @ piece_vecs.T  # parts x pieces, cosines
        specific, best_piece = specificity(similarity)
        answer_specific, _ = specificity(answers)
        # A complete answer gives some of its pieces to every part; a partial one,
        # however long, gives them all to the parts it answers.
        leaning = (similarity + answers).argmax(axis=0)
        share = np.bincount(leaning, minlength=len(parts)) / len(pieces)
        # A partial answer as a whole leans to the parts it answers: each part's cosine
        # to the whole response less the largest cosine of any part to it (0 for the nearest).
        whole = part_vecs @ response_vec
        lean = whole - whole.max()
        measures = np.c_[specific, answer_specific, share, lean]  # parts x FEATURES
        coverage = self.head.probability(measures)
        weakest = measures.min(axis=0)
        details: dict = {
            "parts": [
                {
                    "part": part,
                    "coverage": round(float(coverage[k]), 3),
                    "specificity": round(float(specific[k]), 4),
                    "answer_specificity": round(float(answer_specific[k]), 4),
                    "share": round(float(share[k]), 4),
                    "response_lean": round(float(lean[k]), 4),
                    "covered_by": pieces[best_piece[k]],
                }
                for k, part in enumerate(parts)
            ],
        }
        details["not_covered"] = [r["part"] for r in details["parts"] if r["coverage"] < COVERED]
        details.update(
            {name: round(float(v), 4) for name, v in zip(FEATURES, weakest, strict=True)}
        )
        details["response_pieces"] = len(pieces)
        head_probability = float(self.head.probability(weakest[None, :])[0])
        details["head_probability"] = round(head_probability, 4)
        score = head_probability

        if points:
            reference_coverage = self._reference(item, pieces, points, piece_vecs, point_vecs)
            details["reference_points"] = reference_coverage
            details["reference_not_covered"] = [
                r["point"] for r in reference_coverage if r["coverage"] < COVERED
            ]
            mean = float(np.mean([r["coverage"] for r in reference_coverage]))
            details["reference_coverage"] = round(mean, 4)
            score = (1 - REFERENCE_WEIGHT) * head_probability + REFERENCE_WEIGHT * mean
        score = min(1.0, max(0.0, score))
        if math.isnan(score):
            score = 0.0
        return self.make_score(item.id, round(score, 4), METHOD, details)

    @staticmethod
    def _reference(
        item: EvalItem,
        pieces: list[str],
        points: list[str],
        piece_vecs: np.ndarray,
        point_vecs: np.ndarray,
    ) -> list[dict]:
        """Each reference point's coverage: its own words named, or a near-paraphrase."""
        asked = set(key_terms(item.input or ""))
        response_terms = set().union(*(key_terms(p) for p in pieces))
        cos = point_vecs @ piece_vecs.T
        semantic = 1.0 / (1.0 + np.exp(-(cos.max(axis=1) - REFERENCE_MIDPOINT) / REFERENCE_SCALE))
        rows = []
        for k, point in enumerate(points):
            # A point's own content is what it adds to the question.
            point_terms = set(key_terms(point)) - asked
            lexical = len(point_terms & response_terms) / len(point_terms) if point_terms else 0.0
            rows.append({"point": point, "coverage": round(max(lexical, float(semantic[k])), 3)})
        return rows
