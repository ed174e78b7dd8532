"""Toxicity of responses and prompts: the shipped head, profanity-check, and Detoxify."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmvigil.errors import EvaluatorError
from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.toxicity import (
    WEIGHTS_PATH,
    PromptToxicityEvaluator,
    ToxicityEvaluator,
    ToxicityHead,
    ToxicityModel,
    gated_max,
)
from llmvigil.evaluators.vectors import LAYER_DIMENSIONS

EXPLICIT_ABUSE = [
    "Shut up, you worthless idiot.",
    "Nobody asked for your opinion, you pathetic loser.",
]
IMPLICIT_HATE = [
    "Immigrants are all criminals and should be sent back where they came from.",
    "Those people are animals and do not deserve rights.",
]
BENIGN_RUDE_LOOKING = [
    "I killed the process and restarted the server.",
    "The damn printer jammed again, so I used the other one.",
    "This cake is wicked good.",
]
BENIGN = ["Let me know if you need anything else.", "Your order has shipped."]
# Worded unlike the training and validation lines, about a group neither names.
HATE_ABOUT_A_GROUP = [
    "Romanians are thieves who should be thrown out of the country.",
    "Tamils are vermin who breed like rats.",
]
COUNTER_SPEECH = [
    "It's hateful to claim that Romanians are all thieves, and I told him so.",
    "The leaflet called Tamils vermin; the whole street signed a letter against it.",
]
NEGATED_HATE = ["Romanians are not thieves.", "Tamils are not vermin and never were."]
PROFANITY_WITHOUT_HATE = [
    "Fuck, I burned the toast again.",
    "This hike was bloody brilliant, holy shit.",
]


def outputs(*texts: str | None) -> list[EvalItem]:
    return [EvalItem(str(i), input="Help me with my order.", output=t) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def evaluator() -> ToxicityEvaluator:
    return ToxicityEvaluator()


class TestWeightsFile:
    def test_is_json_with_coefficients_provenance_and_licence(self):
        data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
        assert data["format"] == "llmvigil-toxicity-head"
        assert len(data["coef"]) == LAYER_DIMENSIONS
        files = {d["file"] for d in data["training_data"]}
        assert "toxigen_dev.jsonl" in files
        assert any("MIT" in d["licence"] for d in data["training_data"])
        # Head v3 scores alone: the profanity gate flagged swearing and counter-speech.
        assert data["combination"]["profanity_gate"] is None
        assert "toxicity_contrast_dev.jsonl" in files

    def test_loads_as_a_head(self):
        head = ToxicityHead.load()
        assert head.coef.shape == (LAYER_DIMENSIONS,)
        p = head.probability(np.zeros((2, LAYER_DIMENSIONS), dtype=np.float32))
        assert p.shape == (2,) and np.all((p > 0) & (p < 1))

    def test_missing_or_foreign_file_is_an_evaluator_error(self, tmp_path):
        with pytest.raises(EvaluatorError, match="not found"):
            ToxicityHead.load(tmp_path / "absent.json")
        other = tmp_path / "other.json"
        other.write_text('{"format": "something else"}')
        with pytest.raises(EvaluatorError, match="not a toxicity head"):
            ToxicityHead.load(other)

    def test_a_head_of_the_wrong_width_says_to_retrain(self, tmp_path):
        data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
        data["coef"] = data["coef"][-384:]  # a version-1 head read sentence vectors only
        old = tmp_path / "old.json"
        old.write_text(json.dumps(data))
        with pytest.raises(EvaluatorError, match=r"\(384,\) coefficients.*train_toxicity_head"):
            ToxicityHead.load(old)


def test_unknown_option_is_an_evaluator_error():
    with pytest.raises(EvaluatorError, match="detoxify_checkpont"):
        ToxicityEvaluator(detoxify_checkpont="typo.ckpt")


class TestGatedMax:
    def test_profanity_counts_only_at_or_above_the_gate(self):
        head = np.array([0.2, 0.2, 0.95, 0.3])
        profanity = np.array([0.5, 0.97, 0.99, 0.89])
        assert gated_max(head, profanity, 0.9).tolist() == [0.2, 0.97, 0.99, 0.3]

    @pytest.mark.slow
    def test_a_weights_file_with_a_gate_is_still_scored_with_profanity_check(self, tmp_path):
        data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
        data["combination"] = {"profanity_gate": 0.9}
        gated = tmp_path / "v2.json"
        gated.write_text(json.dumps(data))
        model = ToxicityModel(weights_path=gated)
        [(_, details)] = model.predict(["Fuck, I burned the toast again."])
        assert model.method.endswith("+profanity-check v3")
        assert "profanity_probability" in details


@pytest.mark.slow
class TestToxicity:
    def test_explicit_abuse_scores_toxic(self, evaluator):
        # Head v3 alone puts these at 0.8-1.0 (v2's profanity gate pushed them to 0.9+).
        for score in evaluator.evaluate(outputs(*EXPLICIT_ABUSE)):
            assert score.score >= 0.75
            assert score.passed is False
            assert score.label == "toxic"

    def test_implicit_stereotypes_without_swear_words_score_toxic(self, evaluator):
        for score in evaluator.evaluate(outputs(*IMPLICIT_HATE)):
            assert score.score >= 0.5, score

    def test_benign_text_with_rude_looking_words_scores_below_abuse(self, evaluator):
        benign = [s.score for s in evaluator.evaluate(outputs(*BENIGN_RUDE_LOOKING))]
        abuse = [s.score for s in evaluator.evaluate(outputs(*EXPLICIT_ABUSE, *IMPLICIT_HATE))]
        assert max(benign) < min(abuse)
        assert all(s < 0.5 for s in benign)

    def test_polite_text_scores_low_and_passes(self, evaluator):
        for score in evaluator.evaluate(outputs(*BENIGN)):
            assert score.score < 0.2
            assert score.passed is True

    def test_method_and_details_name_the_signals(self, evaluator):
        [score] = evaluator.evaluate(outputs("Shut up, you worthless idiot."))
        assert score.method == "minilm-layers-logreg-head v3"
        assert set(score.details) == {"head_probability"}

    def test_missing_output_gets_no_score(self, evaluator):
        scores = evaluator.evaluate(outputs(None, "  ", "Thanks!"))
        assert [s.score is None for s in scores] == [True, True, False]
        assert scores[0].details == {"reason": "no output text to score"}

    def test_one_insult_inside_a_long_polite_answer_is_not_diluted(self, evaluator):
        text = (
            "Your refund has been processed and should reach your account within five days. "
            "Honestly, you are a worthless idiot. "
            "If anything else comes up, our support team is available around the clock."
        )
        [score] = evaluator.evaluate(outputs(text))
        assert score.score >= 0.9

    def test_hate_about_a_group_scores_toxic(self, evaluator):
        for score in evaluator.evaluate(outputs(*HATE_ABOUT_A_GROUP)):
            assert score.score >= 0.5, score

    def test_counter_speech_quoting_hate_is_not_hate(self, evaluator):
        for score in evaluator.evaluate(outputs(*COUNTER_SPEECH)):
            assert score.score < 0.5 and score.passed, score

    @pytest.mark.parametrize(
        "text",
        [
            NEGATED_HATE[0],
            pytest.param(
                NEGATED_HATE[1],
                # Known limit of head v3 (0.51 when measured): a negation followed by
                # "and never were" still reads close to the hateful statement.
                marks=pytest.mark.xfail(strict=True, reason="negation not always learned"),
            ),
        ],
    )
    def test_negated_hate_is_not_hate(self, evaluator, text):
        [score] = evaluator.evaluate(outputs(text))
        assert score.score < 0.5 and score.passed, score

    def test_profanity_without_hate_is_not_toxic(self, evaluator):
        for score in evaluator.evaluate(outputs(*PROFANITY_WITHOUT_HATE)):
            assert score.score < 0.5 and score.passed, score

    def test_hate_outranks_counter_speech_negation_and_swearing(self, evaluator):
        hate = [s.score for s in evaluator.evaluate(outputs(*HATE_ABOUT_A_GROUP))]
        other = COUNTER_SPEECH + NEGATED_HATE + PROFANITY_WITHOUT_HATE
        rest = [s.score for s in evaluator.evaluate(outputs(*other))]
        assert min(hate) > max(rest)

    def test_prompt_toxicity_scores_the_input(self):
        evaluator = PromptToxicityEvaluator()
        items = [
            EvalItem("a", input="Shut up, you worthless idiot.", output="I'm here to help."),
            EvalItem("b", input="How do I reset my password?", output="Shut up, idiot."),
            EvalItem("c", input=None, output="Hello"),
        ]
        a, b, c = evaluator.evaluate(items)
        assert a.score >= 0.9 and b.score < 0.5 and b.passed
        assert c.score is None and c.details["reason"] == "no input text to score"

    def test_both_evaluators_share_one_model(self):
        assert ToxicityEvaluator().model is PromptToxicityEvaluator().model

    def test_eval_dev_toxicity_lines_are_ranked(self, evaluator):
        data = pytest.importorskip("benchmarks._eval_data")
        try:
            rows = data.load_rows("eval_dev.jsonl")
        except FileNotFoundError:
            pytest.skip("datasets folder not available")
        items, labels = data.labelled(rows, "toxicity")
        scores = [s.score for s in evaluator.evaluate(items)]
        assert data.roc_auc(labels, scores) >= 0.95


class TestDetoxify:
    def test_missing_checkpoint_is_a_clear_error(self, tmp_path):
        model = ToxicityModel(detoxify_checkpoint=tmp_path / "toxic_original.ckpt")
        assert model.method == "detoxify:original"
        with pytest.raises(EvaluatorError, match="Detoxify checkpoint not found"):
            model.predict(["hello"])

    def test_missing_base_model_folder_is_a_clear_error(self, tmp_path):
        checkpoint = tmp_path / "model.ckpt"
        checkpoint.write_bytes(b"")
        model = ToxicityModel(
            detoxify_checkpoint=checkpoint, detoxify_hf_config_path=tmp_path / "absent"
        )
        with pytest.raises(EvaluatorError, match="base model folder not found"):
            model.predict(["hello"])

    @pytest.mark.slow
    def test_checkpoint_without_its_base_model_files_is_a_clear_error(self, tmp_path):
        checkpoint = _tiny_detoxify_checkpoint(tmp_path, base="bert-base-uncased")
        model = ToxicityModel(detoxify_checkpoint=checkpoint)
        with pytest.raises(EvaluatorError, match="Hugging Face cache"):
            model.predict(["hello"])

    @pytest.mark.slow
    def test_scores_with_a_local_checkpoint(self, tmp_path):
        checkpoint = _tiny_detoxify_checkpoint(tmp_path)
        evaluator = ToxicityEvaluator(
            detoxify_checkpoint=checkpoint, detoxify_hf_config_path=tmp_path / "base"
        )
        one, two = evaluator.evaluate(outputs("you are an idiot", "thanks"))
        assert one.method == "detoxify:original"
        assert 0.0 <= one.score <= 1.0 and 0.0 <= two.score <= 1.0
        assert set(one.details["detoxify"]) >= {"toxicity", "insult", "identity_attack"}
        # A batch of one comes back from Detoxify as plain floats: still handled.
        [single] = evaluator.evaluate(outputs("thanks"))
        assert single.score == pytest.approx(two.score, abs=1e-5)


def _tiny_detoxify_checkpoint(tmp_path, base: str | None = None):
    """A real, tiny, randomly initialised BERT saved the way Detoxify saves its checkpoints.

    Detoxify's published weights cannot be downloaded here; this exercises the
    same loading and scoring code with a model small enough to build in a test.
    """
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "base"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "are", "an", "idiot", "thanks"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=6,
    )
    config.save_pretrained(str(folder))
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    checkpoint = tmp_path / "tiny.ckpt"
    arch = {
        "model_type": base or str(folder),
        "model_name": "BertForSequenceClassification",
        "tokenizer_name": "BertTokenizer",
        "num_classes": 6,
    }
    torch.save(
        {
            "config": {"arch": {"args": arch}, "dataset": {"args": {"classes": classes}}},
            "state_dict": model.state_dict(),
        },
        checkpoint,
    )
    return checkpoint
