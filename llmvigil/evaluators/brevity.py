"""Brevity: is the response as short as the question allows?

Deterministic, no model. Three things cost points, and ``details`` says
which and by how much:

1. **Length over budget.** The budget in words follows from the question:
   a fact, a yes/no, a time or a number warrants a sentence; steps, an
   explanation, a comparison or a list ("explain", "steps", "pros and cons")
   warrant a paragraph, and "what are the <plural>" a list; every extra part
   of a multi-part question adds to it.
   Past the budget the score falls as ``(budget / words) ** LENGTH_EXPONENT``.
2. **Words that carry nothing.** Sentences that repeat what the response or
   the question already said (no new content word), and filler: praise of the
   question, thanks, the speaker's feelings, sign-offs and stock hedges (the
   short generic list in :data:`FILLER_PATTERNS`), plus sentences that end in
   an exclamation and add nothing new. Their share of the words is lost.
3. **Repeated phrasing.** The share of word pairs (other than pairs of stop
   words) that occur earlier in the response ("We accept Visa. We accept
   Mastercard. We also accept Amex.").

A long answer that the question needs loses nothing; a short answer wrapped
in pleasantries loses most of its score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.questions import Question, analyse_question
from llmvigil.evaluators.registry import register
from llmvigil.evaluators.text import (
    STOP_WORDS,
    content_words,
    fold,
    split_sentences,
    stem,
    words,
)

METHOD = "rules: length budget, redundancy, filler"

#: Word budget by the kind of answer the question asks for.
BUDGETS = {
    "yesno": 25,
    "quantity": 25,
    "time": 25,
    "place": 25,
    "person": 25,
    "choice": 30,
    "definition": 45,
    "reason": 80,
    "instructions": 110,
    "explanation": 140,
    "other": 60,
}
#: Budget for what/which questions about a plural noun, which want a list.
LIST_BUDGET = 90
#: Budget for prompts asking to explain, list, compare or give steps.
ELABORATE_BUDGET = 180
#: Each part after the first adds this share of the base budget.
EXTRA_PART_SHARE = 0.7
LENGTH_EXPONENT = 0.8
#: Weight of a filler sentence that also says something new (its other half is content).
MIXED_FILLER_WEIGHT = 0.5
#: Repeated word-pair shares up to this are normal phrasing and cost nothing.
REPETITION_ALLOWANCE = 0.05

#: Generic conversational filler, not tied to any topic: praise of the
#: question, thanks, the speaker's feelings, sign-offs, and stock hedges.
FILLER_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:great|good|excellent|wonderful|fantastic|interesting|fun|fascinating|lovely|"
        r"thoughtful|brilliant|important|such an?|what an?)\b(?:\s+[\w-]+){0,3}\s+question",
        r"\bthanks?\b|\bthank you\b",
        r"\bI(?:'m| am)\s+(?:so\s+|really\s+|very\s+|always\s+)?(?:glad|happy|delighted|thrilled|"
        r"excited|pleased)\b",
        r"\bI\s+(?:really\s+)?(?:love|enjoy)\b",
        r"\b(?:I\s+)?hope\s+(?:this|that|it|you)\b",
        r"\blet me know\b|\bfeel free\b|\bdon't hesitate\b|\banything else\b",
        r"\b(?:any|other|more|further)\s+questions\b",
        r"\bhave a (?:great|nice|good|lovely|wonderful|fantastic)\b",
        r"\b(?:good luck|happy to help|you're welcome|look forward)\b",
        r"^\s*(?:oh|wow|well|sure|absolutely|certainly|of course|great|okay|ok)\b[,!.]",
        r"\b(?:it is|it's) (?:important|worth) (?:to note|noting|mentioning)\b",
        r"\b(?:needless to say|as (?:I|we) (?:mentioned|said)|in conclusion|to sum up|"
        r"basically|honestly|simply put)\b",
    )
)


def budget_for(question: Question) -> int:
    """Words a response to ``question`` may use before it counts as long."""
    base = BUDGETS.get(question.kind, BUDGETS["other"])
    focus = question.focus or ""
    if question.kind == "choice" and focus.endswith("s") and not focus.endswith("ss"):
        # "What are the main causes of ...", "Which documents ...": a list.
        base = max(base, LIST_BUDGET)
    if question.elaborate:
        base = max(base, ELABORATE_BUDGET)
    extra = max(0, len(question.parts) - 1)
    return round(base * (1 + EXTRA_PART_SHARE * extra))


def _filler(sentence: str) -> tuple[str | None, str]:
    """The first filler phrase in ``sentence`` (or None) and the sentence without any filler."""
    first = None
    rest = sentence
    for pattern in FILLER_PATTERNS:
        match = pattern.search(rest)
        if match:
            first = first or match.group(0).strip()
            rest = pattern.sub(" ", rest)
    return first, rest


def repeated_phrase_share(tokens: list[str]) -> float:
    """Share of word pairs in ``tokens`` that already occurred earlier.

    Pairs of stop words only ("of the", "it is") are left out: they recur in
    any text. What is left measures phrasing said again ("we accept ...").
    """
    seen: set[tuple[str, str]] = set()
    repeats = 0
    total = 0
    for pair in pairwise(tokens):
        if pair[0] in STOP_WORDS and pair[1] in STOP_WORDS:
            continue
        total += 1
        if pair in seen:
            repeats += 1
        seen.add(pair)
    return repeats / total if total >= 5 else 0.0


@register
class Brevity(Evaluator):
    """Scores how free of padding a response is for its question, in [0, 1] (higher is better).

    ``details`` gives the word count and budget, the length factor, the
    sentences counted as filler or repetition with their share of the words,
    and the repeated-phrasing share.
    """

    name = "brevity"
    version = "1"
    needs = frozenset({"input", "output"})
    threshold = 0.5

    def evaluate(self, batch: Sequence[EvalItem]) -> list[Score]:
        """Score every item; no model is used."""
        return [self._score(item) for item in batch]

    def _score(self, item: EvalItem) -> Score:
        response = item.output or ""
        if not response.strip():
            return self.make_score(item.id, None, METHOD, {"reason": "empty response"})
        question = analyse_question(item.input or "")
        budget = budget_for(question)
        tokens = [fold(t) for t in words(response)]
        n_words = len(tokens)
        length_factor = 1.0 if n_words <= budget else (budget / n_words) ** LENGTH_EXPONENT

        seen = {stem(w) for w in content_words(item.input or "")}
        wasted = 0.0
        filler_found: list[dict[str, str]] = []
        redundant: list[str] = []
        for sentence in split_sentences(response):
            size = len(words(sentence))
            if not size:
                continue
            stems = [stem(w) for w in content_words(sentence)]
            new = [s for s in stems if s not in seen]
            marker, rest = _filler(sentence)
            # What the sentence adds once its filler phrases are taken out.
            new_content = {stem(w) for w in content_words(rest)} - seen
            seen.update(stems)
            if marker is None and sentence.rstrip().endswith("!") and not new:
                marker = "exclamation adding nothing new"
            if marker is not None:
                weight = MIXED_FILLER_WEIGHT if len(new_content) >= 2 else 1.0
                wasted += weight * size
                filler_found.append({"sentence": sentence, "marker": marker})
            elif stems and not new:
                # Every content word was said before: a restatement.
                wasted += size
                redundant.append(sentence)
        waste_share = min(1.0, wasted / n_words) if n_words else 0.0
        repetition = repeated_phrase_share(tokens)
        repetition_cost = max(0.0, repetition - REPETITION_ALLOWANCE)

        # Squared: a response that is one-third padding keeps under half its score.
        score = length_factor * (1.0 - waste_share) ** 2 * (1.0 - repetition_cost)
        reasons = []
        if length_factor < 1.0:
            reasons.append(f"{n_words} words against a budget of {budget}")
        if filler_found:
            reasons.append(f"{len(filler_found)} filler sentence(s)")
        if redundant:
            reasons.append(f"{len(redundant)} sentence(s) repeating earlier content")
        if repetition_cost > 0:
            reasons.append(f"{repetition:.0%} of word pairs repeated")
        details = {
            "words": n_words,
            "budget": budget,
            "question_type": question.kind,
            "parts": len(question.parts),
            "elaborate": question.elaborate,
            "length_factor": round(length_factor, 4),
            "filler": filler_found,
            "redundant_sentences": redundant,
            "wasted_share": round(waste_share, 4),
            "repetition_ratio": round(repetition, 4),
            "reasons": reasons,
        }
        return self.make_score(item.id, round(max(0.0, min(1.0, score)), 4), METHOD, details)
