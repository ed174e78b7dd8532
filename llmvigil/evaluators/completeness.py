"""Completeness: does the response cover every part of the question (and the reference's points)?

The question is split into the things it asks (separate questions,
coordinated clauses, "the weight limit and the size limit"; see
:func:`~llmvigil.evaluators.questions.analyse_question`), and the response
into pieces: its sentences, the clauses those split into at commas,
semicolons, colons, dashes and "and" (:func:`response_pieces`), and windows
of :data:`WINDOW_WORDS` words (:func:`response_windows`). Every part, piece
and window is embedded once (the shared all-MiniLM-L6-v2 vectors).

What says a part is answered is not how close some piece is to it (a
partial answer stays on the question's topic, so its pieces are close to
every part) but whether some piece is closer to *this* part than to any
other part of the question: a part's **specificity** is the best margin,
over the pieces, of its cosine over the largest cosine of another part to
the same piece (for a question of one part, over 0). A part the answer
leaves out has no piece leaning its way, however long the answer is.

Version 4 scores with a logistic regression learned on labelled answers
(``scripts/train_completeness_head.py``, weights in
``llmvigil/evaluators/weights/completeness_head.json``) over the weakest
part's measures (:data:`FEATURES`): its specificity over the pieces and over
the pieces and windows together, and its best cosine to a piece. Each part's own coverage in
``details`` is the same head over that part's measures (never below the
score, as every weight is positive), so the parts below
:data:`COVERED` are the ones the answer leaves out. Up to version 3 the
measures were hand-written coverage rules (key terms, answer forms, bare
answers, sibling parts, a one-clause-per-part assignment); version 3 scored
0.895 ROC AUC on ``benchmarks/data/completeness_heldout.jsonl``, below
"longer is better" (0.965).
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
from llmvigil.evaluators.text import split_sentences
from llmvigil.evaluators.vectors import shared_vectors

METHOD = "all-MiniLM-L6-v2 part specificity over answer pieces, learned weights"
#: The learned weights (coefficients over :data:`FEATURES`, intercept, provenance).
WEIGHTS_PATH = Path(__file__).parent / "weights" / "completeness_head.json"
WEIGHTS_FORMAT = "llmvigil-completeness-head"
#: What the head weighs, in the order of its coefficients (all in ``details``): the
#: weakest part's specificity over the response's pieces, over its pieces and windows
#: together, and the weakest part's best cosine to a piece.
FEATURES = (
    "weakest_part_specificity",
    "weakest_part_window_specificity",
    "weakest_part_similarity",
)
#: Words per response window, and the step between windows.
WINDOW_WORDS = 5
WINDOW_STEP = 2
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


def response_windows(response: str) -> list[str]:
    """Runs of :data:`WINDOW_WORDS` words of ``response``, every :data:`WINDOW_STEP` words."""
    words = response.split()
    if len(words) <= WINDOW_WORDS:
        return [" ".join(words)] if words else []
    last = len(words) - WINDOW_WORDS
    starts = [*range(0, last, WINDOW_STEP), last]
    return [" ".join(words[i : i + WINDOW_WORDS]) for i in starts]


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
    version = "4"
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
        """Score every item; all parts, pieces and points of the batch are embedded in one call."""
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
            windows = response_windows(item.output or "")
            points = split_sentences(item.reference or "") if item.reference else []
            plans.append((i, parts, pieces, windows, points, len(texts)))
            texts.extend([*parts, *pieces, *windows, *points])
        vectors = shared_vectors().encode(texts) if texts else np.zeros((0, 0), np.float32)
        for i, parts, pieces, windows, points, offset in plans:
            bounds = np.cumsum([offset, len(parts), len(pieces), len(windows), len(points)])
            part_vecs, piece_vecs, window_vecs, point_vecs = (
                vectors[a:b] for a, b in pairwise(bounds)
            )
            scores[i] = self._score(
                batch[i], parts, pieces, points, part_vecs, piece_vecs, window_vecs, point_vecs
            )
        return [s for s in scores if s is not None]

    def _score(
        self,
        item: EvalItem,
        parts: list[str],
        pieces: list[str],
        points: list[str],
        part_vecs: np.ndarray,
        piece_vecs: np.ndarray,
        window_vecs: np.ndarray,
        point_vecs: np.ndarray,
    ) -> Score:
        similarity = part_vecs @ piece_vecs.T  # parts x pieces, cosines
        specific, best_piece = specificity(similarity)
        # Windows beside the pieces: a response of a few words is one window, which
        # cannot lean to one part only, but its pieces can.
        window_specific, _ = specificity(np.c_[similarity, part_vecs @ window_vecs.T])
        measures = np.c_[specific, window_specific, similarity.max(axis=1)]  # parts x FEATURES
        coverage = self.head.probability(measures)
        weakest = measures.min(axis=0)
        details: dict = {
            "parts": [
                {
                    "part": part,
                    "coverage": round(float(coverage[k]), 3),
                    "specificity": round(float(specific[k]), 4),
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
