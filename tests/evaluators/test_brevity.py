"""Brevity: needed length is free, padding, filler and repetition are not. No model involved."""

from __future__ import annotations

import pytest

from llmvigil.evaluators import get
from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.brevity import Brevity, budget_for, repeated_phrase_share
from llmvigil.evaluators.questions import analyse_question

PADDED = (
    "That's a wonderful arithmetic question, and I'm so glad you asked! Addition is the "
    "process of combining numbers. When we combine 7 and 8, we start at 7 and count up eight "
    "more. Doing that, we reach 15. So, 7 plus 8 equals 15. Yes, 15 is the answer. I hope "
    "this thorough explanation helps you with your maths!"
)
NEEDED_LONG = (
    "Two keys can hash to the same bucket. With separate chaining, each bucket holds a small "
    "list and a lookup scans it. With open addressing, the table probes other slots (linear, "
    "quadratic or double hashing) until it finds the key or an empty slot. Either way, keeping "
    "the load factor low by resizing keeps operations close to constant time."
)


def score(question: str, response: str):
    return Brevity().evaluate([EvalItem("x", input=question, output=response)])[0]


def test_registered_and_deterministic():
    assert get("brevity") is Brevity
    a, b = score("What is 7 plus 8?", PADDED), score("What is 7 plus 8?", PADDED)
    assert a.score == b.score and a.details == b.details
    assert a.method.startswith("rules")


def test_short_direct_answer_is_perfect():
    s = score("What is 7 plus 8?", "15.")
    assert s.score == 1.0 and s.passed
    assert s.details["reasons"] == []


def test_padded_answer_loses_and_says_why():
    s = score("What is 7 plus 8?", PADDED)
    assert s.score < 0.5 and not s.passed
    assert s.details["words"] > s.details["budget"]
    markers = [f["marker"] for f in s.details["filler"]]
    assert any("question" in m for m in markers)
    assert any("hope" in m.lower() for m in markers)
    assert any("budget" in r for r in s.details["reasons"])


def test_needed_long_answer_keeps_full_score():
    s = score("Explain how a hash table handles collisions.", NEEDED_LONG)
    assert s.details["elaborate"] is True
    assert s.score == 1.0


def test_long_needed_answer_beats_short_padded_one():
    long_good = score("Explain how a hash table handles collisions.", NEEDED_LONG)
    short_padded = score(
        "What day comes after Monday?",
        "Oh, great question, I love this one! It's Tuesday, of course! Let me know if you need "
        "anything else at all!",
    )
    assert short_padded.details["words"] < long_good.details["words"]
    assert long_good.score > short_padded.score
    assert not short_padded.passed


def test_restatements_are_counted():
    s = score(
        "Is Mars bigger than Earth?",
        "No, Mars is about half Earth's diameter. Mars is smaller than Earth. Mars is smaller.",
    )
    assert "Mars is smaller." in s.details["redundant_sentences"]
    assert s.score < 1.0


def test_repeated_phrasing_is_measured():
    tokens = [
        "we",
        "accept",
        "visa",
        "we",
        "accept",
        "mastercard",
        "we",
        "accept",
        "amex",
        "we",
        "accept",
        "cash",
    ]
    assert repeated_phrase_share(tokens) > 0.0
    assert repeated_phrase_share(["one", "two", "three", "four", "five", "six", "seven"]) == 0.0


def test_budget_grows_with_parts_and_elaboration():
    one = budget_for(analyse_question("What is the check-in time?"))
    two = budget_for(analyse_question("What is the check-in time and the check-out time?"))
    explain = budget_for(analyse_question("Explain how vaccines work."))
    steps = budget_for(analyse_question("What are the steps to apply for a passport?"))
    assert one < two < explain
    assert steps >= explain


@pytest.mark.parametrize(
    "response",
    [
        "Thank you so much for reaching out! Yes, we have lockers. Have a great day!",
        "Great question! Yes, we have lockers. I hope this helps!",
        "Yes, we have lockers! Let me know if there's anything else!",
    ],
)
def test_filler_costs_points(response):
    plain = score("Does the gym have lockers?", "Yes, we have lockers.")
    padded = score("Does the gym have lockers?", response)
    assert padded.score < plain.score
    assert padded.details["filler"]


def test_empty_response_is_not_scored():
    s = score("Anything?", "   ")
    assert s.score is None and s.details["reason"] == "empty response"
