"""Completeness: every part of the question, and every point of a reference, covered."""

from __future__ import annotations

import pytest

from llmvigil.evaluators import get
from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.completeness import Completeness, response_units
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
    ],
)
def test_split_parts(question, parts):
    assert split_parts(question) == parts


def test_coordinated_parts_share_a_group_and_clauses_do_not():
    coordinated = analyse_question("What time is check-in and check-out?").parts
    assert coordinated[0].group == coordinated[1].group
    clauses = analyse_question("Where do I park, and how much does it cost?").parts
    assert clauses[0].group != clauses[1].group
    assert [p.kind for p in clauses] == ["place", "quantity"]


def test_key_terms_keep_hyphenated_words_whole():
    assert "check-in" in key_terms("What time is check-in?")
    assert "check-out" not in key_terms("What time is check-in?")


def test_response_units_split_clauses():
    assert response_units("Check-in is from 3 pm and check-out is by 11 am.") == [
        "Check-in is from 3 pm",
        "check-out is by 11 am.",
    ]
    assert response_units("It comes in S, M, L and XL, and yes, it is waterproof.") == [
        "It comes in S, M, L and XL",
        "yes, it is waterproof.",
    ]
    assert response_units("Download it, then sign in.") == ["Download it", "sign in."]


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


@pytest.mark.slow
@pytest.mark.parametrize("k", range(len(PAIRS)))
def test_full_answer_beats_partial(pair_scores, k):
    full, partial = pair_scores[f"{k}-full"], pair_scores[f"{k}-partial"]
    assert full.score > partial.score + 0.1
    assert full.passed and not partial.passed


@pytest.mark.slow
@pytest.mark.parametrize("k", range(len(PAIRS)))
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
