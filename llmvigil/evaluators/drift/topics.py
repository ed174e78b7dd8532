"""What is new in a window that drifted: the current texts unlike anything in the reference.

A drifted ``input_embedding`` says *that* prompts changed; a team needs to read
*what* users now ask. A current span is novel when its vector's nearest
reference vector is less similar than the reference's own nearest neighbours
are to each other in all but 5% of cases (the ``expected_share``): with no
drift about 5% of the current window is novel by construction, and a new kind
of question shows as a share well above that. The novel spans are grouped by
average-linkage clustering on cosine distance (SciPy), each group labelled by the words that are
most frequent in it and least in the reference (TF-IDF), and shown with the
spans nearest its centre so the examples read as the topic, not its edge.

Example::

    found = novel_topics(reference_vectors, current_vectors, current_ids, current_texts,
                         reference_texts)
    for topic in found["topics"]:
        print(f"{topic['share']:.0%}", topic["label"], topic["examples"][0]["text"])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Share of a window's spans that are novel against the reference when nothing drifted.
EXPECTED_SHARE = 0.05
#: Reference vectors used to learn the similarity threshold (a leave-one-out pass is n^2).
_THRESHOLD_SAMPLE = 2_000
#: A novel group smaller than this share of the window (and than 3 spans) is noise, not a topic.
_MIN_TOPIC_SHARE = 0.02
#: How far (cosine distance, average linkage) spans of one topic may be from each other:
#: the tightest that gathers at least half the novel spans into topics is used.
_TOPIC_DISTANCES = (0.55, 0.7, 0.85, 1.0)
#: Novel spans clustered at most (average linkage is quadratic in memory).
_CLUSTER_LIMIT = 3_000
#: How sure the tests must be that a window holds more novel spans, or a topic more spans,
#: than chance gives.
_EXCESS_P = 0.01


def novel_topics(
    reference: np.ndarray,
    current: np.ndarray,
    current_ids: Sequence[str],
    current_texts: Sequence[str],
    reference_texts: Sequence[str] | None = None,
    *,
    max_topics: int = 5,
    examples: int = 3,
    text_chars: int = 200,
) -> dict[str, Any]:
    """The topics of the current window that the reference lacks, largest first.

    ``reference`` and ``current`` are L2-normalised vectors, one row per span;
    ``current_ids`` and ``current_texts`` belong to the rows of ``current``.
    ``reference_texts`` sharpens the labels (words common in the reference are
    not named). Returns a JSON-safe dict: ``novel_share``, ``expected_share``,
    ``similarity_threshold`` and ``topics`` (each ``label``, ``share`` of the
    current window, ``count``, ``examples`` of ``span_id`` and ``text``), or a
    ``reason`` when there is too little to compare.
    """
    current = np.asarray(current, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if len(current_ids) != len(current) or len(current_texts) != len(current):
        raise ValueError(
            f"current_ids ({len(current_ids)}) and current_texts ({len(current_texts)}) "
            f"must have one entry per current vector ({len(current)})"
        )
    if reference_texts is not None and len(reference_texts) != len(reference):
        raise ValueError(
            f"reference_texts ({len(reference_texts)}) must have one entry per reference "
            f"vector ({len(reference)})"
        )
    out: dict[str, Any] = {"expected_share": EXPECTED_SHARE, "topics": []}
    if len(reference) < 2 or len(current) == 0:
        out["reason"] = (
            f"too few vectors to find new topics ({len(reference)} reference, "
            f"{len(current)} current)"
        )
        return out

    threshold = _similarity_threshold(reference)
    nearest = _nearest_similarity(current, reference)
    novel = np.flatnonzero(nearest < threshold)
    out["similarity_threshold"] = round(threshold, 4)
    out["novel_share"] = round(len(novel) / len(current), 4)
    if not _exceeds_expected(len(novel), len(current)):
        out["reason"] = (
            f"{len(novel)} of {len(current)} spans unlike the reference, "
            f"no more than the {EXPECTED_SHARE:.0%} expected with no drift"
        )
        return out

    groups = _topic_groups(current, reference, novel)
    background = list(reference_texts) if reference_texts is not None else []
    for members in groups[:max_topics]:
        centre = current[members].mean(axis=0)
        closest = _distinct(members[np.argsort(-(current[members] @ centre))], current_texts)
        out["topics"].append(
            {
                "label": _label([current_texts[i] for i in members], background),
                "share": round(len(members) / len(current), 4),
                "count": len(members),
                "examples": [
                    {"span_id": str(current_ids[i]), "text": str(current_texts[i])[:text_chars]}
                    for i in closest[:examples]
                ],
            }
        )
    return out


def _distinct(order: np.ndarray, texts: Sequence[str]) -> list[int]:
    """``order`` with each text's later repeats left out (a common wording would fill them)."""
    seen: set[str] = set()
    kept = []
    for i in order:
        if texts[i] not in seen:
            seen.add(texts[i])
            kept.append(int(i))
    return kept


def _similarity_threshold(reference: np.ndarray) -> float:
    """The 5% quantile of the reference's nearest-neighbour similarity, leaving each out.

    Above ``_THRESHOLD_SAMPLE`` rows an even subsample is compared with the whole
    reference, so each row's neighbours are drawn from as many vectors as a
    current row's are.
    """
    picked = np.arange(len(reference))
    if len(reference) > _THRESHOLD_SAMPLE:
        picked = np.linspace(0, len(reference) - 1, _THRESHOLD_SAMPLE).astype(int)
    rows = reference[picked]
    best = np.full(len(rows), -np.inf, dtype=np.float32)
    for start in range(0, len(rows), 1_000):
        block = rows[start : start + 1_000] @ reference.T
        # A vector is its own nearest neighbour: leave it out.
        block[np.arange(len(block)), picked[start : start + 1_000]] = -np.inf
        best[start : start + 1_000] = block.max(axis=1)
    return float(np.quantile(best, EXPECTED_SHARE))


def _nearest_similarity(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each current row's cosine similarity to its nearest reference row."""
    best = np.empty(len(current), dtype=np.float32)
    for start in range(0, len(current), 1_000):
        best[start : start + 1_000] = (current[start : start + 1_000] @ reference.T).max(axis=1)
    return best


def _exceeds_expected(novel: int, total: int) -> bool:
    """Whether ``novel`` of ``total`` is surely more than the expected share (binomial test)."""
    from scipy.stats import binomtest

    if novel <= EXPECTED_SHARE * total:
        return False
    return binomtest(novel, total, EXPECTED_SHARE, alternative="greater").pvalue < _EXCESS_P


def _denser_than_reference(members: np.ndarray, current: np.ndarray, reference: np.ndarray) -> bool:
    """Whether the current window surely holds more spans around a group than the reference.

    A few novel spans can sit together at the edge of a topic the reference has
    plenty of (an odd wording of a common question); a new topic has next to
    no reference spans around it. Around means as near the group's centre as
    its farthest member. Of all spans around it, the current window's share
    must exceed its share of both windows' spans (binomial test, p < 0.01).
    """
    from scipy.stats import binomtest

    centre = current[members].mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    similarity = current @ centre
    # From the same products, so every member counts as near (a second product can round
    # differently and leave the farthest member out).
    radius = float(similarity[members].min())
    near_current = int((similarity >= radius).sum())
    near_reference = int(((reference @ centre) >= radius).sum())
    expected = len(current) / (len(current) + len(reference))
    test = binomtest(near_current, near_current + near_reference, expected, alternative="greater")
    return test.pvalue < _EXCESS_P


def _topic_groups(
    current: np.ndarray, reference: np.ndarray, novel: np.ndarray
) -> list[np.ndarray]:
    """The novel rows grouped into topics, each denser in the current window than the reference.

    One average-linkage tree (cosine distance) is cut at widening distances,
    keeping the finest cut whose groups hold at least half the novel spans: a
    new question asked in many words (a product crash) stays its own topic, and
    novel texts with more spread (remarks about many different people) are
    gathered until a group is large enough to be told from chance.
    """
    if len(novel) > _CLUSTER_LIMIT:
        novel = novel[np.linspace(0, len(novel) - 1, _CLUSTER_LIMIT).astype(int)]
    smallest = max(3, math.ceil(_MIN_TOPIC_SHARE * len(current)))
    if len(novel) < smallest:
        return []
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(current[novel].astype(np.float64), method="average", metric="cosine")
    groups: list[np.ndarray] = []
    for distance in _TOPIC_DISTANCES:
        labels = fcluster(tree, t=distance, criterion="distance")
        groups = [
            members
            for label in np.unique(labels)
            if len(members := novel[labels == label]) >= smallest
            and _denser_than_reference(members, current, reference)
        ]
        if sum(map(len, groups)) >= len(novel) / 2:
            break
    return sorted(groups, key=len, reverse=True)


def _label(texts: Sequence[str], background: Sequence[str], words: int = 4) -> str:
    """The words most typical of ``texts`` against ``background`` (TF-IDF), joined by ', '."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b")
    try:
        matrix = vectorizer.fit_transform([*texts, *background])
    except ValueError:  # only stop words, numbers or empty texts
        return "(no words)"
    ours = np.asarray(matrix[: len(texts)].mean(axis=0)).ravel()
    if background:
        ours = ours - np.asarray(matrix[len(texts) :].mean(axis=0)).ravel()
    vocabulary = vectorizer.get_feature_names_out()
    top = [vocabulary[i] for i in np.argsort(-ours)[:words] if ours[i] > 0]
    return ", ".join(top) or "(no words)"
