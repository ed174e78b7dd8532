"""Which forms of answer a response shows: steps, a time, a number, a name, a yes or no...

:mod:`llmvigil.evaluators.questions` says what form of answer a question
wants; this module finds the forms present in a response (:func:`answer_forms`)
with the same kind of surface rules (clause starts, bare verbs, dates and
numbers, capitalised names, locative and causal phrases).

Example::

    >>> "instructions" in answer_forms("Go to Settings and click Billing.")
    True
"""

from __future__ import annotations

import re

from llmvigil.evaluators.questions import _STOP_VERBS, AUXILIARIES, _set, _tokens, classify
from llmvigil.evaluators.text import (
    STOP_WORDS,
    capitalised_names,
    dates,
    fold,
    numbers,
    split_sentences,
    stem,
    words,
)

__all__ = [
    "LOCATIVE",
    "answer_forms",
    "clauses",
    "explicit_yes_no",
    "is_imperative",
    "named_forms",
    "names_someone",
    "text_forms",
]


_TIME_WORDS = _set(
    "today tomorrow yesterday tonight noon midnight weekend weekends weekday weekdays ago "
    "daily weekly monthly yearly annually hourly nightly now soon later overnight"
)
# Parts of the day or year name a time only with a pointer: "in the evening",
# "every spring", "on Sunday morning" (not "evening daylight").
_TIME_PHRASE = re.compile(
    r"\b(?:in the|this|that|every|each|on|at|by|until|till|before|after|next|last|early|late|"
    r"tomorrow|tonight|yesterday|(?:mon|tues|wednes|thurs|fri|satur|sun)day)\s+"
    r"(?:morning|afternoon|evening|night|spring|summer|autumn|fall|winter|dawn|dusk|"
    r"century|decade|year|month|week|day)s?\b"
)
# An amount of time: "12 weeks", "an hour", "a few days", "two years".
_DURATION = re.compile(
    r"\b(?:\d+(?:[.,]\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"fifteen|twenty|thirty|forty|fifty|sixty|ninety|hundred|few|several|couple of|half an?|"
    r"many)(?:\s*-\s*|\s+)(?:\w+\s+)?(?:seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|"
    r"months?|years?|decades?|centuries|century|nights?|fortnights?)\b"
)
_QUANTIFIERS = frozenset(
    ["dozen", "half", "double", "twice", "triple", "none", "free", "unlimited"]
)
# Vague amounts count only with a unit: "a few days", "several hours".
_VAGUE_AMOUNT = re.compile(
    r"\b(?:a few|few|several|many|a couple of|dozens of|hundreds of|thousands of)\s+"
    r"(?:\w+\s+)?(?:seconds|minutes|hours|days|weeks|months|years|times|people|metres|meters|"
    r"miles|kilometres|kilometers|pounds|dollars|euros)\b"
)
_REASON = re.compile(
    r"\b(because|since|due to|owing to|caused by|causes?|causing|as a result|so that|"
    r"in order to|therefore|thus|hence|which is why|that is why|leads? to|results? in|"
    r"the reason|means that|so \w+ that|creat(?:es|ing)|produc(?:es|ing)|triggers?)\b"
    # "..., so blue light reaches us": a consequence drawn from what came before.
    r"|,\s+so\s+(?!far\b|much\b|many\b)\w"
)
_YES_NO = _set(
    "yes yeah yep no nope sure certainly absolutely definitely correct indeed unfortunately nah"
)
_YOU_MODAL = re.compile(
    r"\byou(?:'ll|'d| will| can| could| should| need| must| have to| may| might| just| only"
    r"| then| first)\b"
)
# Sequence words count only where a clause starts ("..., then", "First,"),
# not inside a statement ("was first adopted").
_SEQUENCE = re.compile(
    r"(?:^|[.;:,(]\s*|\band\s+)(?:first(?:ly)?,|then|next,|finally,|afterwards|after that|"
    r"once you)\b|\bstep \d|\bto do (?:this|so|that)\b|\bby \w+ing\b"
)
_MENU_PATH = re.compile(r"\w\s*(?:>|→|->)\s*\w")
_CLOCK = re.compile(
    r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock|h\b)|\b\d{1,2}:\d{2}\b", re.IGNORECASE
)
#: A locative phrase: "in the lobby", "next to the bank", "behind building B".
LOCATIVE = re.compile(
    r"\b(?:in|at|on|near|behind|beside|inside|outside|under|above|below|next to|opposite|"
    r"across from|between|along|upstairs|downstairs|north|south|east|west)\s+"
    r"(?:the\s+|a\s+|an\s+|your\s+|our\s+|their\s+)?(?!\d)[A-Za-z]",
)
# Clause openers after which an instruction may follow ("In Settings, choose ...").
_LEAD_INS = _set(
    "in on at to if when once after before for from under within first next finally then "
    "otherwise alternatively instead also"
)

_FULL_NAME = re.compile(
    r"\b[A-Z][a-z]+(?: (?:[A-Z]\.|[A-Z][a-z]+|de|van|von|da|del|di|le|la|bin|al))* [A-Z][a-z]+\b"
)
_PRONOUN_SUBJECT = re.compile(r"(?:^|[,;:]\s*|\b(?:and|but)\s+)(?:we|you|they|he|she)\s+\w")
_PRONOUN_IS = frozenset({"it's", "that's", "there's", "he's", "she's", "what's", "here's"})
_CALENDAR = _set(
    "monday tuesday wednesday thursday friday saturday sunday january february march april "
    "may june july august september october november december"
)


_CLAUSE_BREAK = re.compile(r"\s*(?:[;:]|,\s*then\b|\bthen\b|,\s*and then\b|\band then\b)\s*")


def clauses(sentence: str) -> list[str]:
    """Split a sentence at semicolons, colons and "then" into the clauses that may each instruct."""
    return [c for c in _CLAUSE_BREAK.split(sentence) if c and c.strip()]


def is_imperative(clause: str) -> bool:
    """Whether ``clause`` reads as an instruction ("Open Settings", "In Billing, edit the address").

    An instruction opens with a bare verb: not a function word, a number, a
    plural or third-person form ("Tomatoes grow", "Kettles come"), a
    participle or an acronym, and no auxiliary follows within three words (as
    in "Billing addresses are ..."). A leading phrase such as "In Settings,"
    or "If it fails," is skipped first.
    """
    raw = words(clause)
    if not raw:
        return False
    low = [fold(t).replace("’", "'") for t in raw]
    if low[0] in _LEAD_INS and "," in clause:
        # "In Contacts, select all": judge the clause after the lead-in.
        return is_imperative(clause.split(",", 1)[1])
    if low[0] in {"please", "just", "simply", "always", "never", "also"} and len(low) > 1:
        raw, low = raw[1:], low[1:]
    if low[0] in {"don't", "do"} and len(low) > 1 and low[1] in {"not", "n't"} | {"forget"}:
        return True
    if low[0] == "don't":
        return True
    if len(low) < 2:
        return False
    head = low[0]
    if head in STOP_WORDS and head not in _STOP_VERBS:
        return False
    if head.isdigit() or numbers(raw[0]) or not head.isalpha():
        return False
    if raw[0].isupper() and len(raw[0]) > 1:
        return False
    if head.endswith(("ing", "ed")) or (head.endswith("s") and not head.endswith(("ss", "us"))):
        return False
    window = low[1:5]
    if any(w in AUXILIARIES or w in _PRONOUN_IS for w in window):
        return False
    compound = re.match(r"^\W*(?:please\s+)?[^\W\d_]+-[^\W\d_]+\s+([a-z]+)", clause)
    if compound and compound.group(1).endswith("s") and not compound.group(1).endswith("ss"):
        return False  # "Check-in starts at 3 pm"; "Double-click the icon" passes
    # "Cast iron pans hold heat": a plural noun then a bare word is a subject
    # and its verb ("Remove apps you don't use", "Pack snacks and water" differ),
    # unless a comma parts them: "Open Security settings, choose 2FA" is a list of steps.
    for i in range(1, min(4, len(low) - 1)):
        plural, nxt = low[i], low[i + 1]
        if (
            not re.search(rf"\b{re.escape(raw[i])}\s*,\s*{re.escape(raw[i + 1])}\b", clause)
            and plural.endswith("s")
            and not plural.endswith(("ss", "us", "is"))
            and raw[i].islower()
            and raw[i + 1].islower()
            and nxt.isalpha()
            and nxt not in STOP_WORDS
            and not nxt.endswith(("ly", "ing", "ed", "s"))
        ):
            return False
    # "Green tea originated in China": a past-tense verb after the opening noun
    # (followed by a function word, not by a noun as in "unused programs").
    for i in (1, 2):
        past = i < len(low) and low[i].endswith("ed") and len(low[i]) > 4
        if past and (i + 1 >= len(low) or low[i + 1] in STOP_WORDS):
            return False
    return True


def _has_instructions(text: str, low: str) -> bool:
    if _YOU_MODAL.search(low) or _SEQUENCE.search(low) or _MENU_PATH.search(text):
        return True
    if re.search(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+", text):
        return True
    for sentence in split_sentences(text):
        if any(is_imperative(c) for c in clauses(sentence)):
            return True
    return False


def _has_time(text: str, low: str, tokens: list[str]) -> bool:
    if dates(text) or _CLOCK.search(text) or _TIME_PHRASE.search(low) or _DURATION.search(low):
        return True
    return any(t in _TIME_WORDS for t in tokens)


_DATE_OR_CLOCK = re.compile(
    r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"[a-z]*\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}"
    r"(?:st|nd|rd|th)?\b|\b(?:in|since|from|until|by|of)\s+(?:1[0-9]|20)\d\d\b",
    re.IGNORECASE,
)


def _has_quantity(text: str, tokens: list[str]) -> bool:
    # A date or a clock time holds numbers but is not an amount.
    text = _CLOCK.sub(" ", _DATE_OR_CLOCK.sub(" ", text))
    if numbers(text) or any(t in _QUANTIFIERS for t in _tokens(text)):
        return True
    return bool(re.search(r"[$£€¥%]", text) or _VAGUE_AMOUNT.search(fold(text)))


def explicit_yes_no(text: str) -> bool:
    """Whether ``text`` opens with an explicit yes or no ("Yes, ...", "No.", "Of course").

    A bare "no" before a noun ("No refunds are given") counts too: it denies.
    """
    low = fold(text or "").lstrip()
    return any(t in _YES_NO for t in _tokens(text or "")[:3]) or low.startswith(
        ("of course", "not ")
    )


def _has_yes_no(tokens: list[str], low: str) -> bool:
    head = tokens[:3]
    if any(t in _YES_NO for t in head) or low.startswith(("of course", "not ")):
        return True
    # "You can ...", "It is not ...", "They don't": a direct affirmation or denial.
    return bool(
        re.match(
            r"^(?:you|it|they|we|this|that|there|he|she)(?:'s| is| are| can| cannot| can't"
            r"| do| does| don't| doesn't| will| won't| should| shouldn't| must| may)\b",
            low,
        )
    )


def names_someone(text: str, question: str | None = None) -> bool:
    """Whether ``text`` names a person or organisation not already named in ``question``.

    Two or more capitalised words in a row count ("Jane Austen", not
    "Windows, Office"), and so does a capitalised word leading a terse reply
    ("Arsenal won 2-1.", "Shakespeare.").
    """
    asked = set(_tokens(question or ""))
    for match in _FULL_NAME.finditer(text):
        if not set(_tokens(match.group(0))) <= asked:
            return True
    raw = words(text)
    if 0 < len(raw) <= 5 and _is_new_name(raw[0], asked):
        return True
    # "Who won the match?" -> "Arsenal won after ...": a new capitalised word
    # right before the question's own verb names who did it.
    kind, verb = classify(question) if question else ("other", None)
    if kind == "person" and verb:
        target = stem(verb)
        for i, token in enumerate(raw[:-1]):
            if _is_new_name(token, asked) and target in {stem(t) for t in raw[i + 1 : i + 3]}:
                return True
    return False


def _is_new_name(token: str, asked: set[str]) -> bool:
    low = fold(token)
    return (
        token[:1].isupper()
        and token.isalpha()
        and low not in STOP_WORDS
        and low not in _YES_NO
        and low not in asked
        and low not in _CALENDAR
        and not numbers(token)
    )


def answer_forms(text: str, question: str | None = None) -> set[str]:
    """The answer forms present in ``text``.

    A subset of :data:`~llmvigil.evaluators.questions.FORMS`. With
    ``question``, names and places already in the question do not count as an
    answer (restating "Pride and Prejudice" does not name its author).
    """
    return text_forms(text) | named_forms(text, question)


def text_forms(text: str) -> set[str]:
    """The forms of :func:`answer_forms` that do not depend on the question.

    For callers that ask about one text against several questions (completeness
    asks whether each piece of an answer answers each part): work them out once.
    """
    low = fold(text or "")
    tokens = _tokens(text or "")
    forms: set[str] = set()
    if _has_instructions(text or "", low):
        forms.add("instructions")
    if _has_time(text or "", low, tokens):
        forms.add("time")
    if _DURATION.search(low) or re.search(r"\b(?:overnight|all day|all night)\b", low):
        forms.add("duration")
    if _has_quantity(text or "", tokens):
        forms.add("quantity")
    if _PRONOUN_SUBJECT.search(low):
        forms.add("person")  # "we pay the shipping", "you do"
    if LOCATIVE.search(text or ""):
        forms.add("place")
    if re.search(
        r"\b(?:he|she|someone|person|team|staff|department|manager|agent|support|"
        r"contact us|call us|email us)\b",
        low,
    ):
        forms.add("person")
    if _has_yes_no(tokens, low):
        forms.add("yesno")
    if _REASON.search(low):
        forms.add("reason")
    return forms


def named_forms(text: str, question: str | None = None) -> set[str]:
    """The forms of :func:`answer_forms` read from names ``question`` does not hold."""
    forms: set[str] = set()
    asked = set(_tokens(question or ""))
    new_names = [
        n
        for n in capitalised_names(text or "")
        if not set(_tokens(n)) <= asked and not set(_tokens(n)) & _CALENDAR
    ]
    if new_names:
        forms.add("place")
    # A person is named by two or more capitalised words in a row ("Jane
    # Austen", not "Windows, Office"), or by a capitalised word standing
    # almost alone ("Shakespeare.").
    if names_someone(text or "", question):
        forms.update({"person", "place"})
    return forms
