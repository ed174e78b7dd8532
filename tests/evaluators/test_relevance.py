"""Relevance: on-topic answers that answer, on-topic answers that do not, and off-topic text."""

from __future__ import annotations

import json

import pytest

from llmvigil.errors import EvaluatorError
from llmvigil.evaluators import get
from llmvigil.evaluators.answers import answer_forms, is_imperative
from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.questions import analyse_question
from llmvigil.evaluators.relevance import (
    FEATURES,
    WEIGHTS_PATH,
    Relevance,
    RelevanceHead,
)

# --------------------------------------------------------------- no model


@pytest.mark.parametrize(
    ("question", "kind", "focus"),
    [
        ("How do I update my billing address?", "instructions", "update"),
        ("How can I quickly speed up my laptop?", "instructions", "speed"),
        ("What is a good way to learn Spanish?", "instructions", "learn"),
        ("When was the Declaration of Independence signed?", "time", None),
        ("How many legs does a spider have?", "quantity", "legs"),
        ("How long does delivery take?", "duration", None),
        ("Where is the Eiffel Tower?", "place", None),
        ("Who wrote Pride and Prejudice?", "person", "wrote"),
        ("Why is the sky blue?", "reason", None),
        ("What causes thunder?", "reason", None),
        ("Is it safe to feed grapes to dogs?", "yesno", None),
        ("What documents do I need to rent a car?", "choice", "documents"),
        ("What's the chemical symbol for gold?", "choice", "symbol"),
        ("What is the weight limit for carry-on bags?", "quantity", "limit"),
        ("What is photosynthesis?", "definition", None),
        ("Hi there, quick question: how do I reset my router?", "instructions", "reset"),
        ("Can you tell me how I cancel my order?", "instructions", "cancel"),
    ],
)
def test_question_kind_and_focus(question, kind, focus):
    analysis = analyse_question(question)
    assert (analysis.kind, analysis.focus) == (kind, focus)


def test_where_should_i_accepts_advice():
    assert analyse_question("Where should I store my passwords?").accepts == {
        "place",
        "instructions",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Go to Settings, open Billing, and edit the address field.", True),
        ("Uninstall unused programs and limit start-up apps.", True),
        ("In Contacts, select all and choose Export.", True),
        ("Press Windows + Shift + S to select an area.", True),
        ("Don't leave it plugged in overnight.", True),
        ("Billing addresses are important for invoices.", False),
        ("Tomatoes grow best with six hours of sun.", False),
        ("Our kettles come in four colours.", False),
        ("Green tea originated in China.", False),
        ("Cast iron pans hold heat well.", False),
        ("Check-in starts at 3 pm.", False),
        ("Eight.", False),
    ],
)
def test_imperatives(text, expected):
    assert is_imperative(text) is expected


def test_answer_forms():
    assert "time" in answer_forms("It was signed on 4 July 1776.")
    assert "time" in answer_forms("We close at 9 pm today.")
    assert "time" not in answer_forms("It was introduced to use evening daylight better.")
    assert "quantity" in answer_forms("Eight.")
    assert "quantity" not in answer_forms("Applications close on 31 March.")
    assert "duration" in answer_forms("It runs for 12 weeks.")
    assert "person" in answer_forms("Jane Austen wrote it.", "Who wrote Pride and Prejudice?")
    assert "person" not in answer_forms(
        "Pride and Prejudice is a novel.", "Who wrote Pride and Prejudice?"
    )
    assert "person" not in answer_forms("Microsoft makes Windows, Office and the Xbox.")
    assert "reason" in answer_forms("Because air scatters blue light more.")
    assert "reason" in answer_forms("Air scatters blue light most, so the sky looks blue.")
    assert "reason" not in answer_forms("It opens at 9, so far so good.")
    assert "yesno" in answer_forms("No. Grapes can cause kidney failure.")
    assert "instructions" not in answer_forms("Routers were first sold in the 1990s.")
    # Steps listed with commas: "settings, choose" is no plural subject and its verb.
    assert "instructions" in answer_forms("Open Security settings, choose 2FA, scan the code.")
    assert "instructions" not in answer_forms("Security settings choose the defaults.")


def test_the_shipped_head_weighs_the_signals_as_learned():
    data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    assert tuple(data["features"]) == FEATURES
    head = RelevanceHead.load()
    weight = dict(zip(FEATURES, head.coef, strict=True))
    # What the data taught, not a hand-set factor: similarity and the question word's
    # alignment count for an answer (the alignment most), echoing the question against.
    assert weight["question_word_alignment"] > weight["similarity"] > 0
    assert weight["form_found"] > 0 and weight["echo"] < 0


def test_a_weights_file_for_other_features_says_to_retrain(tmp_path):
    data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-1]
    other = tmp_path / "old.json"
    other.write_text(json.dumps(data))
    with pytest.raises(EvaluatorError, match="train_relevance_head"):
        RelevanceHead.load(other)


def test_registered_under_its_name():
    assert get("relevance") is Relevance


def test_items_without_input_or_output_need_no_model():
    scores = Relevance().evaluate(
        [EvalItem("a", input=None, output="hi"), EvalItem("b", input="Hi?", output="  ")]
    )
    assert scores[0].score is None and scores[0].passed is None
    assert scores[0].details["reason"] == "no input"
    assert scores[1].score == 0.0 and scores[1].passed is False


# ------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def scored():
    cases = {
        "answer": ("How do I update my billing address?", "Go to Settings, open Billing, "
                   "edit the address field and save."),
        "on_topic": ("How do I update my billing address?",
                     "Billing addresses are important for invoices."),
        "off_topic": ("How do I update my billing address?",
                      "The museum's dinosaur wing reopens next spring."),
        "time": ("When does the library open on Saturdays?", "It opens at 10 am on Saturdays."),
        "no_time": ("When does the library open on Saturdays?",
                    "The library has over 200,000 books and a large children's section."),
        "terse": ("How many legs does a spider have?", "Eight."),
        "who": ("Who founded Microsoft?", "Bill Gates and Paul Allen founded it in 1975."),
        "not_who": ("Who founded Microsoft?",
                    "Microsoft makes Windows, Office and the Xbox games console."),
        "echo": ("How do I update my billing address?", "You can update your billing address."),
        # A correct answer in other words than the question's, against a sentence of
        # the same article that repeats the question's words but answers nothing.
        "other_words": ("how many moons does jupiter have",
                        "Astronomers have confirmed 95 natural satellites orbiting the giant "
                        "planet."),
        "same_words": ("how many moons does jupiter have",
                       "Jupiter is the largest planet in the Solar System and is mostly made of "
                       "hydrogen."),
        "date_right": ("when did the suez canal open",
                       "Ships first sailed through it in November 1869."),
        "date_wrong": ("when did the suez canal open",
                       "The Suez Canal connects the Mediterranean Sea with the Red Sea."),
    }  # fmt: skip
    items = [EvalItem(k, input=q, output=a) for k, (q, a) in cases.items()]
    return {s.id: s for s in Relevance().evaluate(items)}


@pytest.mark.slow
def test_answer_beats_on_topic_non_answer_beats_off_topic(scored):
    assert scored["answer"].score > 0.8 and scored["answer"].passed
    assert scored["on_topic"].score < 0.5 and not scored["on_topic"].passed
    assert scored["off_topic"].score < 0.1
    assert scored["answer"].score > scored["on_topic"].score > scored["off_topic"].score


@pytest.mark.slow
def test_the_asked_kind_of_thing_counts(scored):
    assert scored["time"].score > 0.8 > scored["no_time"].score
    assert scored["who"].passed and not scored["not_who"].passed
    assert scored["who"].score > scored["not_who"].score + 0.3
    good = scored["time"].details
    assert good["question_word"] == "when"
    for key in ("similarity", "question_word_alignment"):
        assert isinstance(good[key], float)
    assert good["question_word_alignment"] > scored["no_time"].details["question_word_alignment"]


@pytest.mark.slow
def test_terse_answer_of_the_right_form_passes(scored):
    assert scored["terse"].passed


@pytest.mark.slow
def test_correct_answer_in_other_words_passes_and_beats_same_topic_sentence(scored):
    right, wrong = scored["other_words"], scored["same_words"]
    assert right.details["similarity"] < wrong.details["similarity"]  # the cosine gets it wrong
    assert right.passed and not wrong.passed
    assert right.score > wrong.score + 0.3


@pytest.mark.slow
def test_same_topic_wrong_sentence_scores_below_the_right_one(scored):
    assert scored["date_right"].passed and not scored["date_wrong"].passed
    assert scored["date_right"].score > scored["date_wrong"].score + 0.3


@pytest.mark.slow
def test_echo_is_penalised(scored):
    assert scored["echo"].details["echo"] is True
    assert scored["echo"].score < 0.5


@pytest.mark.slow
def test_scores_in_unit_interval_with_method(scored):
    for s in scored.values():
        assert 0.0 <= s.score <= 1.0
        assert "all-MiniLM-L6-v2" in s.method
