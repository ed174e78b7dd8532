"""New topics in a drifted window, found by the real sentence model in templated and public text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from llmvigil.evaluators.drift.topics import EXPECTED_SHARE, novel_topics
from llmvigil.evaluators.vectors import shared_vectors
from tests.evaluators.drift_data import CRASHES, SUPPORT, phrase

DATASETS = Path(__file__).resolve().parents[2] / "datasets"
PRIVACY = [
    "How do I delete my account and all my personal data?",
    "Please remove every record you hold about me under GDPR.",
    "Can I export everything you store about me?",
    "Who do you share my personal data with?",
]


@pytest.fixture(scope="module")
def encoder():
    return shared_vectors()


def _window(rng: random.Random, count: int, mix: dict[str, float]) -> list[str]:
    pools = {"crash": CRASHES, "privacy": PRIVACY}
    texts = []
    for _ in range(count):
        roll, pool = rng.random(), SUPPORT
        for name, share in mix.items():
            if roll < share:
                pool = pools[name]
                break
            roll -= share
        texts.append(phrase(rng, pool))
    return texts


def _find(encoder, reference: list[str], current: list[str]) -> dict:
    ids = [f"{i:032x}" for i in range(len(current))]
    return novel_topics(encoder.encode(reference), encoder.encode(current), ids, current, reference)


def test_a_new_question_is_named_with_its_share_and_examples(encoder) -> None:
    rng = random.Random(3)
    found = _find(encoder, _window(rng, 400, {}), _window(rng, 400, {"crash": 0.3}))
    top = found["topics"][0]
    assert abs(top["share"] - 0.3) <= 0.08, found
    assert any(word in top["label"] for word in ("app", "crash")), top["label"]
    assert all("app" in e["text"].lower() for e in top["examples"]), top["examples"]
    assert len({e["text"] for e in top["examples"]}) == 3  # three different texts
    assert found["novel_share"] > 0.2 and found["expected_share"] == EXPECTED_SHARE
    json.dumps(found)  # stored in drift_results.details as JSON


def test_two_new_questions_are_two_topics(encoder) -> None:
    rng = random.Random(4)
    found = _find(
        encoder, _window(rng, 500, {}), _window(rng, 500, {"crash": 0.2, "privacy": 0.15})
    )
    labels = [t["label"] for t in found["topics"][:2]]
    assert len(found["topics"]) >= 2, found
    assert any("app" in x or "crash" in x for x in labels), labels
    assert any("data" in x or "personal" in x or "gdpr" in x for x in labels), labels
    for topic in found["topics"][:2]:
        words = ("app", "crash") if "app" in topic["label"] else ("data", "gdpr", "record", "me")
        assert all(any(w in e["text"].lower() for w in words) for e in topic["examples"]), topic


def test_no_topic_is_named_when_nothing_changed(encoder) -> None:
    named = 0
    for seed in range(20):
        rng = random.Random(seed)
        found = _find(encoder, _window(rng, 300, {}), _window(rng, 300, {}))
        named += bool(found["topics"])
        assert found["novel_share"] < 0.15, found
    assert named <= 2  # at most 10% of windows with no change name a topic


def _public_texts() -> tuple[list[str], list[str]]:
    lines = (DATASETS / "halueval_qa_dev.jsonl").read_text().splitlines()
    questions = list(dict.fromkeys(json.loads(line)["input"] for line in lines))
    lines = (DATASETS / "toxigen_dev.jsonl").read_text().splitlines()
    remarks = [json.loads(line)["output"] or json.loads(line)["input"] for line in lines]
    return questions, remarks


def test_on_public_text_a_new_kind_of_message_stands_out_from_trivia_questions(encoder) -> None:
    """HaluEval's multi-hop questions, then 30% of ToxiGen's remarks about groups of people."""
    questions, remarks = _public_texts()
    rng = random.Random(0)
    rng.shuffle(questions)
    current = questions[100:170] + rng.sample(remarks, 30)
    found = _find(encoder, questions[:100], current)
    assert 0.15 <= found["novel_share"] <= 0.45, found
    top = found["topics"][0]
    assert sum(e["text"] in remarks for e in top["examples"]) == len(top["examples"]), top
    alike = _find(encoder, questions[:100], questions[100:200])
    assert alike["novel_share"] <= 0.12 and not alike["topics"], alike


def test_too_few_vectors_give_a_reason_and_mismatched_inputs_an_error() -> None:
    vectors = np.eye(4, dtype=np.float32)
    found = novel_topics(vectors[:1], vectors, list("abcd"), list("abcd"))
    assert found["topics"] == [] and "too few vectors" in found["reason"]
    assert "too few" in novel_topics(vectors, vectors[:0], [], [])["reason"]
    with pytest.raises(ValueError, match="current_texts"):
        novel_topics(vectors, vectors, list("abcd"), ["a"])
    with pytest.raises(ValueError, match="reference_texts"):
        novel_topics(vectors, vectors, list("abcd"), list("abcd"), ["a"])


def test_texts_without_words_are_labelled_plainly() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 8)).astype(np.float32)
    reference[:, 0] = 0.0  # the reference never points where the new spans do
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    current = reference.copy()
    current[:80] = np.eye(8, dtype=np.float32)[0] + rng.normal(scale=0.01, size=(80, 8))
    current /= np.linalg.norm(current, axis=1, keepdims=True)
    texts = ["1234 5678"] * 80 + ["an ordinary question"] * 120
    found = novel_topics(reference, current, [str(i) for i in range(200)], texts, max_topics=1)
    assert len(found["topics"]) == 1 and found["topics"][0]["label"] == "(no words)"
    assert found["topics"][0]["count"] >= 60
