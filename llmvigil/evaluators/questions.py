"""What a question asks for, and whether a response has that form.

Relevance, completeness and brevity all start from the prompt: what kind of
answer it wants (steps, a time, a number, a yes or no, a reason...), how many
parts it has, and how long an answer it warrants. This module reads that from
the surface of English questions with a few grammar rules (wh-words, auxiliary
verbs, clause starts), no model and no word list tied to a domain, so it works
the same on any topic.

Example::

    >>> q = analyse_question("How long is the warranty and what does it cover?")
    >>> q.kind, [p.text for p in q.parts]
    ('quantity', ['How long is the warranty?', 'what does it cover?'])
    >>> "instructions" in answer_forms("Go to Settings and click Billing.")
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llmvigil.evaluators.text import (
    STOP_WORDS,
    capitalised_names,
    content_words,
    dates,
    fold,
    numbers,
    split_sentences,
    stem,
    words,
)

__all__ = [
    "FORMS",
    "LOCATIVE",
    "Question",
    "QuestionPart",
    "analyse_question",
    "answer_forms",
    "clauses",
    "describes_topic",
    "explicit_yes_no",
    "is_imperative",
    "key_terms",
    "names_someone",
]


def _set(words: str) -> frozenset[str]:
    """A frozen set of the space-separated words in ``words``."""
    return frozenset(words.split())


WH_WORDS = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})
# Auxiliary and modal verbs that open a yes/no question or follow a subject.
AUXILIARIES = _set(
    "is are was were am be been do does did can could will would should shall may might "
    "must has have had isn't aren't wasn't weren't don't doesn't didn't can't couldn't "
    "won't wouldn't shouldn't hasn't haven't"
)
# Subjects that make "how do/can/should ..." a request for instructions.
_ASKER = frozenset({"i", "we", "you", "one", "someone", "people", "users", "customers"})
# Verbs that are also scikit-learn stop words but commonly open an instruction.
_STOP_VERBS = _set("go get put take keep call find fill give move see show do make use try let")
# Adjectives after "how" that ask for a measure ("how tall", "how often").
_MEASURES = _set(
    "many much long old far big tall high often fast heavy deep wide large small early late "
    "soon frequently quickly"
)
# Prompt verbs that ask for a long, structured answer rather than a fact.
_ELABORATE = _set(
    "explain describe discuss compare contrast outline summarise summarize list walk guide "
    "elaborate analyse analyze evaluate detail"
)
_ELABORATE_NOUNS = _set(
    "steps step pros cons advantages disadvantages differences difference ways tips "
    "examples reasons options process procedure overview comparison"
)
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
_TIME_UNITS = _set(
    "second seconds minute minutes min mins hour hours hr hrs day days week weeks month "
    "months year years decade decades century centuries fortnight night nights"
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

#: The answer forms :func:`answer_forms` can recognise.
FORMS = ("instructions", "time", "duration", "quantity", "place", "person", "yesno", "reason")

#: How much a missing expected form costs, per kind of question. Forms that
#: are usually explicit in a real answer (steps, a time, a number) cost more
#: than forms often left implicit ("Is it safe?" -> "Grapes are toxic to dogs.").
FORM_WEIGHT = {
    "instructions": 0.55,
    "time": 0.55,
    "duration": 0.55,
    "quantity": 0.55,
    "place": 0.5,
    "person": 0.5,
    "yesno": 0.15,
    "reason": 0.35,
}


@dataclass(frozen=True, slots=True)
class QuestionPart:
    """One thing a question asks: its text, what form of answer it wants, and its key terms."""

    text: str
    kind: str
    terms: tuple[str, ...] = ()
    #: Answer forms that count as answering this part (empty: any).
    accepts: frozenset[str] = frozenset()
    #: Parts split from one coordinated phrase ("the weight limit and the size
    #: limit") share a group; other parts have groups of their own.
    group: int = 0


@dataclass(frozen=True, slots=True)
class Question:
    """What :func:`analyse_question` reads from a prompt.

    ``kind`` is the answer type of the main question: ``instructions``,
    ``time``, ``quantity``, ``place``, ``person``, ``yesno``, ``reason``,
    ``explanation``, ``choice`` (what/which + noun), ``definition`` or
    ``other`` (``duration`` too: "how long does it take?"). ``expects`` is
    the answer form a response should show (None when any form will do), and
    ``accepts`` every form that counts ("Where should I keep it?" accepts a
    place or instructions). ``elaborate`` is true when the prompt asks for an
    explanation, a list, steps or a comparison.
    """

    text: str
    kind: str
    expects: str | None
    parts: tuple[QuestionPart, ...] = field(default=())
    elaborate: bool = False
    focus: str | None = None
    accepts: frozenset[str] = frozenset()


_WH_IS = re.compile(r"\b(what|who|where|when|how|why|which|that|it|there)['’]s\b", re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    # "What's" is "what is": the wh-word must stand alone to be seen.
    return [fold(t).replace("’", "'") for t in words(_WH_IS.sub(r"\1 is", text))]


def _question_sentences(prompt: str) -> list[str]:
    """Sentences of ``prompt`` that ask something: those ending in '?', else the last one."""
    sentences = split_sentences(prompt)
    asked = [s for s in sentences if s.rstrip().endswith("?")]
    if asked:
        return asked
    return sentences[-1:] if sentences else []


def classify(sentence: str) -> tuple[str, str | None]:
    """The kind of answer ``sentence`` asks for, and its focus noun for what/which questions."""
    tokens = _tokens(sentence)
    if not tokens:
        return "other", None
    # Skip greetings and lead-ins ("Hi, quick question: how do I ..."): the
    # question starts at the first wh-word or auxiliary among the first words.
    start = 0
    for i, token in enumerate(tokens[:6]):
        if token in WH_WORDS or token in AUXILIARIES or token in _ELABORATE:
            start = i
            break
    tokens = tokens[start:]
    first = tokens[0]
    nxt = tokens[1] if len(tokens) > 1 else ""
    after = tokens[2] if len(tokens) > 2 else ""

    if first in {"can", "could", "would", "will"} and nxt == "you" and after in {
        "tell", "explain", "show", "describe", "help", "list", "give",
    }:  # fmt: skip
        # "Can you tell me how ..." asks the embedded question.
        rest = tokens[3:]
        if rest and rest[0] == "me":
            rest = rest[1:]
        if rest and rest[0] in WH_WORDS:
            return classify(" ".join(rest))
        if after in {"explain", "describe", "list"}:
            return "explanation", None
        return "other", None
    if first in {"do", "does"} and nxt in {"you", "anyone"} and after == "know":
        rest = tokens[3:]
        if rest and rest[0] in WH_WORDS:
            return classify(" ".join(rest))

    if first == "how":
        if nxt in {"much", "many"}:
            if after in {"time"}:
                return "time", None
            if after and after not in STOP_WORDS and after not in AUXILIARIES:
                return "quantity", after
            return "quantity", _content_after(tokens, 2)
        if nxt == "long" and after not in _COPULAS:
            return "duration", None  # "how long does it take?", not "how long is the river?"
        if nxt in _MEASURES:
            return "quantity", None
        if nxt == "to":
            return "instructions", _content_after(tokens, 2)
        if nxt in AUXILIARIES and after in _ASKER:
            return "instructions", _content_after(tokens, 3)
        if nxt in _ASKER:  # embedded: "tell me how I reset ..."
            return "instructions", _content_after(tokens, 2)
        return "explanation", None
    if first == "when":
        return "time", None
    if first == "where":
        return "place", None
    if first in {"who", "whom", "whose"}:
        # "Who founded X?": the verb is what is asked about X.
        verb = nxt if nxt and nxt not in AUXILIARIES and nxt not in STOP_WORDS else None
        return "person", verb
    if first == "why":
        return "reason", None
    if first in {"what", "which"}:
        return _classify_what(tokens)
    if first in AUXILIARIES:
        return "yesno", None
    if first in _ELABORATE or first in {"tell", "give", "name", "show", "help"}:
        return "explanation", None
    return "other", None


def _classify_what(tokens: list[str]) -> tuple[str, str | None]:
    """Kind of a what/which question: time, advice, choice (with its focus) or definition."""
    nxt = tokens[1] if len(tokens) > 1 else ""
    rest = tokens[1:]
    if nxt in {"time", "date", "year", "day", "month", "hour", "hours", "century"}:
        return "time", None
    if nxt in {"percentage", "percent", "number", "amount", "price", "cost", "size", "age"}:
        return "quantity", None
    if nxt in {"causes", "caused", "cause", "makes", "made"} and len(rest) > 1:
        return "reason", None  # "What causes thunder?"
    joined = " ".join(rest)
    # "What should I do", "what is the best way to", "what steps do I take".
    if re.match(r"(should|must|can|do) (i|we) do\b", joined):
        return "instructions", None
    way = re.search(r"\b(?:way|ways|steps|process) to\b", joined)
    if way:
        return "instructions", _content_after(joined.split(), len(joined[: way.end()].split()))
    if nxt in {"is", "are", "was", "were", "'s", "s"}:
        body = rest[1:]
        if any(t.isdigit() for t in body):
            return "quantity", None  # "What is 7 plus 8?"
        if body and body[0] in {"the", "your", "my", "our", "its", "their", "his", "her"}:
            # "What is the weight limit for ...": the value of an attribute.
            phrase = _noun_phrase(body[1:])
            noun = phrase[-1] if phrase else None
            if any(t in _TIME_NOUNS for t in phrase):
                return "time", noun
            if any(t in _MEASURE_NOUNS for t in phrase):
                return "quantity", noun
            return "choice", noun
        return "definition", None
    if nxt and nxt not in AUXILIARIES and nxt not in STOP_WORDS:
        return "choice", nxt
    if any(t in _PRICE_VERBS for t in rest):
        return "quantity", None  # "what does the course cost?"
    return "other", None


# Nouns naming a measurable attribute or a point in time: a question asking
# for "the <noun>" wants a number or a time. English vocabulary, no domain.
_MEASURE_NOUNS = _set(
    "limit limits price prices cost costs fee fees rate rates size sizes weight age length "
    "height width depth capacity speed temperature distance duration population number "
    "amount percentage total minimum maximum budget salary score life lifespan range"
)
_PRICE_VERBS = frozenset({"cost", "costs", "weigh", "weighs", "charge", "charges"})
_TIME_NOUNS = _set("deadline date dates time times hours schedule day days year period window")


# Words that end the noun phrase opening a question body.
_NP_BREAK = AUXILIARIES | _set(
    "for of in on at to with from by about and or if when that which than per after before "
    "during into over under i you we they it"
)


def _noun_phrase(tokens: list[str]) -> list[str]:
    """The noun phrase that opens ``tokens`` ("weight limit for bags" -> weight, limit)."""
    phrase = []
    for token in tokens:
        if token in _NP_BREAK:
            break
        phrase.append(token)
    return phrase


def _content_after(tokens: list[str], start: int) -> str | None:
    """The first content word at or after ``start``: the verb or noun a question turns on."""
    for token in tokens[start : start + 4]:
        if token in AUXILIARIES or token in _ASKER or token.endswith("ly"):
            continue
        if token not in STOP_WORDS or token in _STOP_VERBS - {"do"}:
            return token
    return None


_COPULAS = frozenset({"is", "are", "was", "were", "'s", "s"})


def accepted_forms(kind: str, sentence: str) -> frozenset[str]:
    """The answer forms that answer a question of ``kind`` phrased as ``sentence``."""
    form = _EXPECTS.get(kind)
    if form is None:
        return frozenset()
    tokens = _tokens(sentence)
    if kind == "place" and len(tokens) > 2 and tokens[2] in _ASKER:
        # "Where should I store my passwords?" asks for advice as much as a place.
        return frozenset({"place", "instructions"})
    if kind == "quantity" and tokens[:2] == ["how", "long"]:
        return frozenset({"quantity", "duration"})
    return frozenset({form})


_EXPECTS = {
    "instructions": "instructions",
    "time": "time",
    "duration": "duration",
    "quantity": "quantity",
    "place": "place",
    "person": "person",
    "yesno": "yesno",
    "reason": "reason",
}


def key_terms(text: str) -> tuple[str, ...]:
    """Stems of the content words of ``text``, hyphenated words kept whole as well.

    Keeping "check-in" and "check-out" whole matters: split, both are "check"
    plus a stop word, and a question about both would look like one part.
    """
    terms = {stem(w) for w in content_words(text) if w not in AUXILIARIES}
    for compound in re.findall(r"\b[^\W\d_]+(?:-[^\W_]+)+\b", text):
        terms.add(fold(compound))
    return tuple(sorted(terms))


def split_parts(question: str) -> list[str]:
    """Split a prompt into the separate things it asks.

    Separate questions ("...? Also, ...?"), coordinated questions ("How long
    is it and what does it cover?"), coordinated subjects sharing one question
    ("What time is check-in and check-out?" -> one part each) and
    enumerations ("the price, size and colour") each give one part.
    """
    return [text for text, _ in _grouped_parts(question)]


def _grouped_parts(question: str) -> list[tuple[str, int]]:
    """Parts of ``question`` with a group number shared by parts of one coordinated phrase."""
    out: list[tuple[str, int]] = []
    group = 0
    for sentence in _question_sentences(question):
        for clause in _split_sentence(sentence):
            out.extend((text, group) for text in _split_coordinated(clause))
            group += 1
    if not out and question and question.strip():
        out.append((question.strip(), 0))
    return out


# A coordinator followed by a new question ("..., and is it waterproof?").
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:,|;)?\s+(?:and|also|plus|or)\s+(?:also\s+)?(?=(?:"
    + "|".join(sorted(WH_WORDS | AUXILIARIES, key=len, reverse=True)).replace("'", "['’]")
    + r")\b)|\s*[;]\s*(?:also\s+)?|\s*,\s*(?:also\s+)?(?=(?:"
    + "|".join(sorted(WH_WORDS, key=len, reverse=True))
    + r")\b)",
    re.IGNORECASE,
)
_ALSO = re.compile(r"^(?:also|and|plus|additionally|and also)[,:]?\s+", re.IGNORECASE)


def _split_sentence(sentence: str) -> list[str]:
    sentence = _ALSO.sub("", sentence.strip())
    pieces = [p.strip(" ,;") for p in _CLAUSE_SPLIT.split(sentence) if p and p.strip(" ,;?")]
    out: list[str] = []
    for piece in pieces:
        if not piece.endswith("?") and sentence.endswith("?"):
            piece += "?"
        out.append(piece)
    return out


# "the weight limit and the size limit", "check-in and check-out", "A, B and C".
_NP_LIST = re.compile(
    r"^(?P<head>.*?\b(?:is|are|was|were|of|about|for|between|does|do|did)\s+)"
    r"(?P<items>(?:(?:the|a|an|your|its|their|our)\s+)?[\w'’-]+(?:\s+[\w'’-]+)?"
    r"(?:\s*,\s*(?:(?:the|a|an|your|its|their|our)\s+)?[\w'’-]+(?:\s+[\w'’-]+)?)*"
    r"\s*,?\s+and\s+(?:(?:the|a|an|your|its|their|our)\s+)?[\w'’-]+(?:\s+[\w'’-]+)?)"
    r"(?P<tail>(?:\s+(?:for|of|on|in|at|with|to)\b.*)?[?.!]?)$",
    re.IGNORECASE,
)


def _split_coordinated(piece: str) -> list[str]:
    """Expand a question whose subject is a list into one question per item.

    Only short items (one or two words) are taken, so a clause joined by
    "and" inside a longer phrase is not mistaken for a list.
    """
    match = _NP_LIST.match(piece)
    if not match:
        return [piece]
    items = re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", match.group("items"))
    items = [i.strip() for i in items if i.strip()]
    if len(items) < 2 or any(i.lower() in {"it", "they", "them", "this", "that"} for i in items):
        return [piece]
    # Items must be alike: "the weight limit and the size limit" (shared last
    # word) or single words ("check-in and check-out", "price, size and colour").
    head, tail = match.group("head"), match.group("tail")
    # "the pros and cons": the first item's determiner applies to all.
    det = re.match(r"(?:the|a|an|your|its|their|our)\s+", items[0], re.IGNORECASE)
    if det:
        items = [i if re.match(det.group(0), i, re.IGNORECASE) else det.group(0) + i for i in items]
    return [f"{head}{item}{tail}".strip() for item in items]


def analyse_question(prompt: str) -> Question:
    """Read the answer type, parts and wanted length of ``prompt``."""
    sentences = _question_sentences(prompt)
    main = sentences[0] if sentences else (prompt or "")
    kind, focus = classify(main)
    parts = []
    for text, group in _grouped_parts(prompt):
        part_kind, _ = classify(text)
        opener = _tokens(text)[:1]
        if part_kind == "other" and not (opener and opener[0] in WH_WORDS | AUXILIARIES):
            part_kind = kind  # a fragment such as "check-out?" inherits the question's kind
        parts.append(
            QuestionPart(
                text=text,
                kind=part_kind,
                terms=key_terms(text),
                accepts=accepted_forms(part_kind, text),
                group=group,
            )
        )
    tokens = set(_tokens(prompt))
    elaborate = (
        kind in {"explanation", "instructions", "reason"}
        or bool(tokens & _ELABORATE)
        or bool(tokens & _ELABORATE_NOUNS)
    )
    return Question(
        text=prompt,
        kind=kind,
        expects=_EXPECTS.get(kind),
        parts=tuple(parts),
        elaborate=elaborate,
        focus=focus,
        accepts=accepted_forms(kind, main),
    )


# ---------------------------------------------------------------- answer forms


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
    # and its verb ("Remove apps you don't use", "Pack snacks and water" differ).
    for i in range(1, min(4, len(low) - 1)):
        plural, nxt = low[i], low[i + 1]
        if (
            plural.endswith("s")
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
    """The answer forms present in ``text``: a subset of :data:`FORMS`.

    With ``question``, names and places already in the question do not count
    as an answer (restating "Pride and Prejudice" does not name its author).
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


_COPULA = frozenset({"is", "are", "was", "were", "'s"})
_DESCRIPTIVE_SUFFIXES = ("ful", "ous", "ive", "al", "ar", "ic", "ant", "ent", "able", "ible", "ly")


def describes_topic(
    response: str, question: str, focus: str | None = None, focus_allowed: bool = False
) -> bool:
    """Whether ``response`` opens by describing the question's topic instead of answering.

    The pattern is "<words from the question> is/are a ... / is popular ...":
    a subject taken entirely from the question (not its focus), a copula, and
    a description ("Subscriptions are a popular business model", "Eggs are a
    good source of protein"). A copula followed by a value ("The fee is $5",
    "Check-in is from 3 pm", "The capital is Canberra") is an answer, not this.
    With ``focus_allowed`` (what/which questions) the subject may be the focus
    itself: "Programming languages are formal languages ..." defines what was
    to be chosen instead of choosing.
    """
    sentences = split_sentences(response)
    if not sentences:
        return False
    raw = words(sentences[0])
    low = [fold(t).replace("’", "'") for t in raw]
    asked = {stem(w) for w in content_words(question)}
    focus_stem = stem(focus) if focus else None
    copulas = [i for i, token in enumerate(low[:6]) if token in _COPULA]
    if not copulas:
        return False
    i = copulas[0]
    subject = [stem(w) for w in low[:i] if w not in STOP_WORDS]
    if not subject or not set(subject) <= asked:
        return False
    if focus_stem in subject and not focus_allowed:
        return False
    if i + 1 >= len(low):
        return False
    after = low[i + 1]
    if after in {"a", "an", "the", "one", "among", "not", "very", "often", "usually"}:
        return True
    return after.isalpha() and after.endswith(_DESCRIPTIVE_SUFFIXES) and raw[i + 1].islower()
