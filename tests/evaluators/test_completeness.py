"""Completeness: every part of the question, and every point of a reference, covered."""

from __future__ import annotations

import numpy as np
import pytest

from llmvigil.evaluators import get
from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.completeness import (
    Completeness,
    response_pieces,
    specificity,
)
from llmvigil.evaluators.questions import analyse_question, key_terms, split_parts

# --------------------------------------------------------------- no model


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        (
            "How long is the warranty and what does it cover?",
            ["How long is the warranty?", "what does it cover?"],
        ),
        (
            "What time is check-in and check-out?",
            ["What time is check-in?", "What time is check-out?"],
        ),
        (
            "Which sizes does the jacket come in, and is it waterproof?",
            ["Which sizes does the jacket come in?", "is it waterproof?"],
        ),
        (
            "What is the weight limit and the size limit for carry-on bags?",
            [
                "What is the weight limit for carry-on bags?",
                "What is the size limit for carry-on bags?",
            ],
        ),
        (
            "How do I reset my password? Also, how do I change my email address?",
            ["How do I reset my password?", "how do I change my email address?"],
        ),
        (
            "What are the pros and cons of electric cars?",
            ["What are the pros of electric cars?", "What are the cons of electric cars?"],
        ),
        ("What is the capital of Australia?", ["What is the capital of Australia?"]),
        (
            "Explain how a hash table handles collisions.",
            ["Explain how a hash table handles collisions."],
        ),
        ("I moved house. How do I change my address?", ["How do I change my address?"]),
        # A preposition before the second question word.
        (
            "Who wrote Pride and Prejudice, and in what year was it published?",
            ["Who wrote Pride and Prejudice?", "in what year was it published?"],
        ),
        # A question word alone asks about what the part before it said.
        (
            "How tall is Mount Everest, who first climbed it, and when?",
            ["How tall is Mount Everest?", "who first climbed it?", "when first climbed it?"],
        ),
        # A phrase that asks nothing alone belongs to the question after it.
        (
            "What does FOB mean? Also, under FOB, who pays for insurance?",
            ["What does FOB mean?", "under FOB, who pays for insurance?"],
        ),
        # "The difference between A and B" asks one thing, not one per item.
        (
            "What is the difference between a virus and a bacterium, and do antibiotics work?",
            ["What is the difference between a virus and a bacterium?", "do antibiotics work?"],
        ),
    ],
)
def test_split_parts(question, parts):
    assert split_parts(question) == parts


def test_parts_keep_the_kind_each_asks_for():
    parts = analyse_question("Where do I park, and how much does it cost?").parts
    assert [p.kind for p in parts] == ["place", "quantity"]
    coordinated = analyse_question("What time is check-in and check-out?").parts
    assert [p.kind for p in coordinated] == ["time", "time"]


def test_key_terms_keep_hyphenated_words_whole():
    assert "check-in" in key_terms("What time is check-in?")
    assert "check-out" not in key_terms("What time is check-in?")


def test_response_pieces_are_sentences_then_their_clauses():
    assert response_pieces("Check-in is from 3 pm and check-out is by 11 am.") == [
        "Check-in is from 3 pm and check-out is by 11 am.",
        "Check-in is from 3 pm",
        "check-out is by 11 am",
    ]
    assert response_pieces("Eleven a side, over two halves; no extra time.") == [
        "Eleven a side, over two halves; no extra time.",
        "Eleven a side",
        "over two halves",
        "no extra time",
    ]
    assert response_pieces("  ") == []


def test_specificity_is_a_margin_over_the_other_parts():
    # Two parts, three pieces: piece 0 leans to part 0, piece 2 to part 1.
    similarity = np.array([[0.8, 0.5, 0.3], [0.4, 0.5, 0.6]])
    best, piece = specificity(similarity)
    assert np.allclose(best, [0.4, 0.3]) and piece.tolist() == [0, 2]
    # A part no piece leans towards has a negative margin, however close the pieces are.
    best, _ = specificity(np.array([[0.9, 0.8], [0.7, 0.75]]))
    assert best[1] < 0 < best[0]
    # One part: the margin is over nothing, i.e. its best cosine.
    best, _ = specificity(np.array([[0.2, 0.6]]))
    assert np.allclose(best, [0.6])


def test_registered_under_its_name():
    assert get("completeness") is Completeness


def test_items_without_input_or_output_need_no_model():
    scores = Completeness().evaluate(
        [EvalItem("a", input="", output="hi"), EvalItem("b", input="Hi?", output="")]
    )
    assert scores[0].score is None
    assert scores[1].score == 0.0


# ------------------------------------------------------------- real model

PAIRS = [
    (
        "How long is the warranty and what does it cover?",
        "The warranty lasts two years and covers parts and labour for manufacturing defects.",
        "The warranty lasts two years.",
        "what does it cover?",
    ),
    (
        "What time is check-in and check-out?",
        "Check-in is from 3 pm and check-out is by 11 am.",
        "Check-in starts at 3 pm.",
        "What time is check-out?",
    ),
    (
        "Where do I park, and how much does it cost?",
        "Park in the visitor lot behind building B; it costs $2 per hour.",
        "Park in the visitor lot behind building B.",
        "how much does it cost?",
    ),
    (
        "What is the weight limit and the size limit for carry-on bags?",
        "8 kg, and at most 55 x 40 x 20 cm.",
        "The carry-on weight limit is 8 kg. Heavier bags must be checked in for a fee.",
        "What is the size limit for carry-on bags?",
    ),
    (
        "Who won the match and what was the score?",
        "Arsenal won 2-1.",
        "Arsenal won after a tense second half with a late goal from their captain.",
        "what was the score?",
    ),
]


@pytest.fixture(scope="module")
def pair_scores():
    items = []
    for k, (q, full, partial, _) in enumerate(PAIRS):
        items += [EvalItem(f"{k}-full", q, full), EvalItem(f"{k}-partial", q, partial)]
    return {s.id: s for s in Completeness().evaluate(items)}


#: "Arsenal won 2-1." answers both parts in one three-word clause: no piece of it
#: leans to one part more than to the other, so version 4 cannot tell it covers both
#: (versions 1-3 had a rule for bare answers of the asked form). Strict: a fix shows.
ONE_CLAUSE_FOR_TWO_PARTS = pytest.mark.xfail(
    strict=True, reason="one short clause answering two parts has no specificity"
)
PAIR_CASES = [
    pytest.param(k, marks=ONE_CLAUSE_FOR_TWO_PARTS) if k == 4 else k for k in range(len(PAIRS))
]


@pytest.mark.slow
@pytest.mark.parametrize("k", PAIR_CASES)
def test_full_answer_beats_partial(pair_scores, k):
    full, partial = pair_scores[f"{k}-full"], pair_scores[f"{k}-partial"]
    assert full.score > partial.score + 0.1
    assert full.passed and not partial.passed


@pytest.mark.slow
@pytest.mark.parametrize("k", PAIR_CASES)
def test_details_name_the_missing_part(pair_scores, k):
    missing = PAIRS[k][3]
    assert pair_scores[f"{k}-partial"].details["not_covered"] == [missing]
    assert pair_scores[f"{k}-full"].details["not_covered"] == []
    rows = pair_scores[f"{k}-full"].details["parts"]
    assert all(r["covered_by"] for r in rows)


@pytest.mark.slow
def test_reference_points_count():
    reference = (
        "Plants convert light energy into chemical energy. "
        "They take in carbon dioxide and water and produce glucose and oxygen."
    )
    q = "What is photosynthesis?"
    good, poor = Completeness().evaluate(
        [
            EvalItem("g", q, "Plants use sunlight, water and carbon dioxide to make glucose "
                     "and oxygen, turning light energy into chemical energy.", reference=reference),
            EvalItem("p", q, "Photosynthesis is a process that happens in plants.",
                     reference=reference),
        ]
    )  # fmt: skip
    assert good.score > poor.score + 0.2
    assert len(poor.details["reference_not_covered"]) == 2
    assert good.details["reference_not_covered"] == []


@pytest.mark.slow
def test_a_complete_answer_in_other_words_beats_a_partial_one():
    # Neither answer repeats the question's words; only the first answers both parts.
    q = "How much does the museum charge and is it open on public holidays?"
    full = "Adults pay twelve euros, and the doors stay open every day of the year."
    partial = "Adults pay twelve euros, and under-18s get in free with a parent."
    scores = Completeness().evaluate([EvalItem("f", q, full), EvalItem("p", q, partial)])
    assert scores[0].score > scores[1].score
    assert scores[0].details["head_probability"] == scores[0].score


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "full", "partial", "missing"),
    [
        # Neither full answer repeats the question's words for the part the partial one skips.
        (
            "How many players does a rugby union team field, and how long does a game last?",
            "Fifteen a side, over two forty-minute halves.",
            "Each side puts fifteen players on the pitch: eight forwards, who contest the "
            "scrums and line-outs, and seven backs, who do most of the running and kicking, "
            "with up to eight replacements waiting on the bench.",
            "how long does a game last?",
        ),
        (
            "What is the tallest mountain in Africa and which country is it in?",
            "Kilimanjaro, in northern Tanzania.",
            "Kilimanjaro is the highest peak on the continent, a dormant volcano whose "
            "snow-capped summit, Uhuru Peak, rises to 5,895 metres and draws tens of "
            "thousands of climbers each year on routes of five to nine days.",
            "which country is it in?",
        ),
    ],
)
def test_a_long_partial_answer_scores_below_a_short_complete_one(question, full, partial, missing):
    scores = Completeness().evaluate(
        [EvalItem("f", question, full), EvalItem("p", question, partial)]
    )
    assert len(partial.split()) > 5 * len(full.split())
    assert scores[0].score > scores[1].score + 0.1
    assert not scores[1].passed
    assert scores[1].details["not_covered"] == [missing]


@pytest.mark.slow
def test_a_single_part_question_answered_passes():
    q = "What is the capital of Canada?"
    scores = Completeness().evaluate(
        [EvalItem("a", q, "Ottawa, in Ontario."), EvalItem("b", q, "I like turtles a lot.")]
    )
    assert scores[0].passed and scores[0].details["not_covered"] == []
    assert scores[0].score > scores[1].score
