"""Factuality: claims checked against context passages and reference answers."""

from __future__ import annotations

import pytest

from llmvigil.evaluators.base import EvalItem
from llmvigil.evaluators.factuality import NO_EVIDENCE, FactualityEvaluator, split_claims

BRIDGE = ("The bridge opened to traffic in 1937 and is 2.7 kilometres long.",)
LEAVE = (
    "Employees receive 25 days of paid leave per year.",
    "Unused leave can be carried over up to 5 days.",
)


def score(output: str, context=(), reference=None, question="What do you know?"):
    item = EvalItem("x", input=question, output=output, context=context, reference=reference)
    [result] = FactualityEvaluator().evaluate([item])
    return result


def reasons(result) -> str:
    return " | ".join(r for claim in result.details["unsupported"] for r in claim["reasons"])


class TestSplitClaims:
    def test_sentences_and_clauses(self):
        assert split_claims("It opened in 1937; it is 2.7 km long. Children enter free.") == [
            "It opened in 1937",
            "it is 2.7 km long.",
            "Children enter free.",
        ]

    def test_comma_before_a_conjunction_starts_a_clause(self):
        assert split_claims("It opens at 10 am, and children under 12 get in free.") == [
            "It opens at 10 am",
            "and children under 12 get in free.",
        ]


class TestNoEvidence:
    def test_without_context_or_reference_there_is_no_score(self):
        result = score("The bridge opened in 1937.")
        assert result.score is None and result.passed is None
        assert result.details == {"reason": NO_EVIDENCE}

    def test_blank_passages_are_no_evidence(self):
        assert score("It opened in 1937.", context=("", "  ")).score is None


class TestAgainstContext:
    def test_a_supported_answer_scores_high(self):
        result = score("The bridge opened to traffic in 1937.", context=BRIDGE)
        assert result.score >= 0.95
        assert result.passed is True and result.label == "supported"
        assert result.details["unsupported"] == []

    def test_a_different_year_is_a_contradiction(self):
        result = score("The bridge opened to traffic in 1995.", context=BRIDGE)
        assert result.score < 0.5 and result.passed is False
        assert "number not in the evidence: 1995" in reasons(result)

    def test_a_different_name_is_unsupported(self):
        context = ("The Oberoi Group is a hotel company with its head office in Delhi.",)
        good = score("Its head office is in Delhi.", context=context)
        bad = score("Its head office is in Mumbai.", context=context)
        assert good.score >= 0.95 > 0.5 > bad.score
        assert "Mumbai" in reasons(bad)

    def test_a_short_correct_span_beats_a_fluent_hallucination(self):
        context = ("The Oberoi Group is a hotel company with its head office in Delhi.",)
        question = (
            "The Oberoi family is part of a hotel company that has a head office in what city?"
        )
        short = score("Delhi", context=context, question=question)
        fluent = score(
            "Mumbai, the financial capital of India.", context=context, question=question
        )
        assert short.score > fluent.score
        assert fluent.score < 0.5

    def test_unsupported_claims_are_listed_with_missing_terms(self):
        result = score(
            "Employees receive 25 days of paid leave per year. They also get a free car.",
            context=LEAVE,
        )
        assert result.details["claims"] == 2 and result.details["supported_claims"] == 1
        [claim] = result.details["unsupported"]
        assert claim["claim"] == "They also get a free car."
        assert set(claim["missing_terms"]) == {"free", "car"}
        # One invented claim makes the answer unfaithful: the score is the weakest claim's,
        # however well the others are supported; the mean is kept in the details.
        assert result.score == claim["score"] < 0.4
        assert 0.4 < result.details["mean_support"] < 0.6

    def test_a_month_or_weekday_not_in_the_evidence_is_a_conflict(self):
        context = ("The museum is open Tuesday to Sunday from 10 am to 5 pm.",)
        good = score("It is open Tuesday to Sunday.", context=context)
        bad = score("It is open on Mondays.", context=context)
        assert good.score > 0.9 > 0.5 > bad.score
        assert "date not in the evidence: Monday" in reasons(bad)

    def test_number_words_match_digits(self):
        context = ("Carnes's version spent nine weeks at No. 1.",)
        assert score("It spent 9 weeks at No. 1.", context=context).score >= 0.95
        assert score("It spent ten weeks at No. 1.", context=context).score <= 0.5

    @pytest.mark.slow
    def test_a_negation_the_evidence_does_not_have_lowers_the_score(self):
        context = ("Password resets require the one-time code sent by SMS.", *LEAVE[1:])
        context = (*context, "Codes expire after 10 minutes.")
        affirmed = score("Codes expire after 10 minutes.", context=context)
        negated = score("Codes never expire.", context=context)
        assert affirmed.score > 0.9 > 0.5 >= negated.score
        assert "negation" in reasons(negated)

    @pytest.mark.slow
    def test_a_number_from_another_sentence_is_still_wrong_for_this_claim(self):
        result = score("Unused leave can be carried over up to 25 days.", context=LEAVE)
        assert result.score <= 0.5
        assert "number differs from the evidence sentence: 25" in reasons(result)
        [claim] = result.details["unsupported"]
        assert claim["evidence_sentence"] == LEAVE[1]

    def test_swapped_quantities_are_a_conflict(self):
        context = ("The library lends up to 10 books at a time for 3 weeks.",)
        right = score("Up to 10 books, for 3 weeks.", context=context)
        swapped = score("Only 3 books, for 10 weeks.", context=context)
        assert right.score >= 0.95 and right.details["unsupported"] == []
        assert swapped.score <= 0.5
        assert "3 for 'books' (the evidence: 10)" in reasons(swapped)
        assert "10 for 'weeks' (the evidence: 3)" in reasons(swapped)

    def test_swapped_years_in_one_sentence_are_a_conflict(self):
        context = ("Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",)
        right = score("She won in Physics in 1903 and in Chemistry in 1911.", context=context)
        swapped = score("She won in Chemistry in 1903 and in Physics in 1911.", context=context)
        assert right.score >= 0.95
        assert swapped.score <= 0.5
        assert "1903 for 'Chemistry' (the evidence: 1911)" in reasons(swapped)

    def test_digits_inside_a_name_are_not_a_quantity(self):
        context = ("U2 released the album in 1987.",)
        result = score("U2 released the album in 1987.", context=context)
        assert result.score >= 0.95 and result.details["unsupported"] == []
        assert "something else" not in reasons(score("The U2 album.", context=context))

    def test_a_claim_stitched_from_separate_sentences_scores_lower(self):
        context = (
            "Robert Zemeckis directed the film.",
            "Neil Gaiman wrote the screenplay.",
        )
        stated = score("Robert Zemeckis directed the film.", context=context)
        stitched = score("Neil Gaiman directed the film.", context=context)
        assert stated.score > stitched.score
        assert "spread over several evidence sentences" in reasons(stitched)


class TestAgainstReference:
    def test_question_words_are_given_when_only_a_reference_exists(self):
        question = "In what city is the hotel company's head office?"
        good = score("The head office is in Delhi.", reference="Delhi", question=question)
        bad = score("The head office is in Mumbai.", reference="Delhi", question=question)
        assert good.score >= 0.95 > 0.5 > bad.score
        assert good.details["evidence"] == "reference"

    def test_context_and_reference_are_both_evidence(self):
        result = score(
            "It opened in 1937 and is 2.7 kilometres long.",
            context=("The bridge opened to traffic in 1937.",),
            reference="It is 2.7 kilometres long.",
        )
        assert result.score >= 0.7
        assert result.details["evidence"] == "context + reference"


class TestBatch:
    def test_scores_come_back_in_order_one_per_item(self):
        items = [
            EvalItem("a", output="It opened in 1937.", context=BRIDGE),
            EvalItem("b", output="It opened in 1937."),
            EvalItem("c", output="It opened in 2001.", context=BRIDGE),
        ]
        a, b, c = FactualityEvaluator().evaluate(items)
        assert [a.id, b.id, c.id] == ["a", "b", "c"]
        assert a.score > c.score and b.score is None
        assert a.method == c.method and "claim-check" in a.method


@pytest.fixture(scope="module")
def data():
    """The benchmark's loaders, when the shared datasets folder is beside the repository."""
    data = pytest.importorskip("benchmarks._eval_data")
    try:
        data.dataset_path("halueval_qa_dev.jsonl")
    except FileNotFoundError:
        pytest.skip("datasets folder not available")
    return data


@pytest.mark.slow
class TestDevData:
    """The targets on the development files; the same measurement as the benchmark."""

    def test_halueval_full_and_length_matched(self, data):
        rows = data.load_rows("halueval_qa_dev.jsonl")
        items, labels = data.labelled(rows, "factuality")
        scores = [s.score for s in FactualityEvaluator().evaluate(items)]
        assert data.roc_auc(labels, scores) >= 0.95
        matched = data.length_matched_ids(rows)
        assert data.roc_auc(*data.subset(items, labels, scores, matched)) >= 0.90

    def test_eval_dev_factuality_lines(self, data):
        items, labels = data.labelled(data.load_rows("eval_dev.jsonl"), "factuality")
        scores = [s.score for s in FactualityEvaluator().evaluate(items)]
        assert data.roc_auc(labels, scores) >= 0.90


class TestFraming:
    """Sentences that frame an answer assert nothing and are not unsupported claims."""

    CONTEXT = (
        "The observatory is open from 8 pm to midnight on Fridays.",
        "Tickets cost 6 euros for adults.",
    )

    def score(self, output: str):
        [s] = FactualityEvaluator().evaluate(
            [EvalItem("1", "When can I visit?", output, self.CONTEXT)]
        )
        return s

    def test_a_framing_sentence_does_not_lower_a_supported_answer(self):
        plain = self.score("The observatory is open from 8 pm to midnight on Fridays.")
        framed = self.score(
            "Going by the documents you shared, this is what I can tell you. "
            "The observatory is open from 8 pm to midnight on Fridays. Hope it is useful!"
        )
        assert framed.score == pytest.approx(plain.score)
        assert len(framed.details["framing"]) == 2
        assert framed.details["unsupported"] == []

    def test_a_framing_lead_is_cut_before_the_claim_is_checked(self):
        framed = self.score("As the retrieved text explains, tickets cost 6 euros for adults.")
        assert framed.score >= 0.9 and framed.passed

    def test_a_hallucinated_claim_is_not_excused_as_framing(self):
        framed = self.score(
            "Going by the documents you shared, this is what I can tell you. "
            "The observatory is open every night and entry is free for everyone."
        )
        assert framed.score < 0.6 and not framed.passed
        assert framed.details["unsupported"]

    def test_framing_alone_gets_no_score(self):
        only = self.score("Thanks for your patience, I am glad to help with this.")
        assert only.score is None
        assert only.details["reason"] == "only framing sentences: no claims to check"


@pytest.mark.slow
class TestOtherWords:
    """Version 4: what the passages say in other words is supported; swapped values are not."""

    INN = (
        "Check-in at the Lakeside Inn starts at 3 pm.",
        "Guests can leave their luggage at reception after check-out.",
    )
    TIDES = ("Tides are caused mainly by the gravitational pull of the Moon on the oceans.",)

    def test_a_term_said_in_other_words_counts_as_found(self):
        good, bad = FactualityEvaluator().evaluate(
            [
                EvalItem("a", "When is check-in?", "Check-in begins at 3 pm.", self.INN),
                EvalItem("b", "When is check-in?", "Check-in begins at 2 pm.", self.INN),
            ]
        )
        # "begins" is not in the passage; its token state matches "starts".
        assert good.score == pytest.approx(1.0) and good.details["unsupported"] == []
        # The same wording with a wrong number is not forgiven.
        assert bad.score < 0.5 and not bad.passed
        [claim] = bad.details["unsupported"]
        assert "begins" in claim["missing_terms"] and "paraphrased_terms" not in claim

    def test_alignment_does_not_forgive_a_claim_the_passage_does_not_make(self):
        [s] = FactualityEvaluator().evaluate(
            [EvalItem("c", "When can I visit?", "The inn is open every night.", self.INN)]
        )
        assert not s.passed

    def test_a_possessive_name_is_the_name(self):
        moon, sun = FactualityEvaluator().evaluate(
            [
                EvalItem("m", "Why?", "The Moon's gravitational pull on the oceans causes tides.",
                         self.TIDES),
                EvalItem("s", "Why?", "The Sun's gravitational pull on the oceans causes tides.",
                         self.TIDES),
            ]
        )  # fmt: skip
        assert moon.score == pytest.approx(1.0)
        assert not sun.passed
        assert "name not in the evidence: Sun's" in sun.details["unsupported"][0]["reasons"]

    def test_an_interjection_is_framing_not_an_unknown_name(self):
        context = ("The observatory is open from 8 pm to midnight on Fridays.",)
        plain, framed = FactualityEvaluator().evaluate(
            [
                EvalItem("p", "When?", "The observatory is open from 8 pm to midnight on Fridays.",
                         context),
                EvalItem("f", "When?", "Sure! The observatory is open from 8 pm to midnight on "
                         "Fridays. Certainly!", context),
            ]
        )  # fmt: skip
        assert framed.score == pytest.approx(plain.score) == pytest.approx(1.0)
        assert framed.details["framing"] == ["Sure!", "Certainly!"]
