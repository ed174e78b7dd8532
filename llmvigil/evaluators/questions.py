"""What a question asks for: the kind of answer, its focus and its parts.

Relevance, completeness and brevity all start from the prompt: what kind of
answer it wants (steps, a time, a number, a yes or no, a reason...), how many
parts it has, and how long an answer it warrants. This module reads that from
the surface of English questions with a few grammar rules (wh-words, auxiliary
verbs, clause starts), no model and no word list tied to a domain, so it works
the same on any topic. Whether a response has the form asked for is
:mod:`llmvigil.evaluators.answers`.

Example::

    >>> q = analyse_question("How long is the warranty and what does it cover?")
    >>> q.kind, [p.text for p in q.parts]
    ('quantity', ['How long is the warranty?', 'what does it cover?'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llmvigil.evaluators.text import STOP_WORDS, content_words, fold, split_sentences, stem, words

__all__ = [
    "FORMS",
    "Question",
    "QuestionPart",
    "analyse_question",
    "key_terms",
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

#: The answer forms :func:`~llmvigil.evaluators.answers.answer_forms` can recognise.
FORMS = ("instructions", "time", "duration", "quantity", "place", "person", "yesno", "reason")


@dataclass(frozen=True, slots=True)
class QuestionPart:
    """One thing a question asks: its text and what kind of answer it wants."""

    text: str
    kind: str


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
    out: list[str] = []
    for sentence in _question_sentences(question):
        for clause in _split_sentence(sentence):
            for text in _split_coordinated(clause):
                if out and _ELLIPTICAL.match(text):
                    # It asks about what the part before it said: embedded alone, "when?"
                    # is close to nothing in particular.
                    text = f"{text.rstrip('?')} {_without_question_word(out[-1])}"
                out.append(text)
    if not out and question and question.strip():
        out.append(question.strip())
    return out


# A coordinator followed by a new question ("..., and is it waterproof?", "..., and
# in what year was it published?").
_WH = "|".join(sorted(WH_WORDS, key=len, reverse=True))
_PREPOSITION = r"(?:(?:in|at|for|to|from|on|by|with|since|until)\s+)?"
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:,|;)?\s+(?:and|also|plus|or)\s+(?:also\s+)?(?=(?:"
    + "|".join(sorted(WH_WORDS | AUXILIARIES, key=len, reverse=True)).replace("'", "['’]")
    + rf")\b|{_PREPOSITION}(?:{_WH})\b)|\s*[;]\s*(?:also\s+)?|\s*,\s*(?:also\s+)?(?="
    + rf"{_PREPOSITION}(?:{_WH})\b)",
    re.IGNORECASE,
)
# A part that is a question word alone ("..., who first climbed it, and when?").
_ELLIPTICAL = re.compile(rf"^(?:{_WH})(?:\s+(?:much|many|long|often|far|not))?\??$", re.IGNORECASE)
_ALSO = re.compile(r"^(?:also|and|plus|additionally|and also)[,:]?\s+", re.IGNORECASE)


def _split_sentence(sentence: str) -> list[str]:
    sentence = _ALSO.sub("", sentence.strip())
    pieces = [p.strip(" ,;") for p in _CLAUSE_SPLIT.split(sentence) if p and p.strip(" ,;?")]
    for k in range(len(pieces) - 2, -1, -1):
        if len(pieces[k].split()) <= 3 and not _opens_question(pieces[k]):
            # A phrase that asks nothing on its own ("under FOB, who pays ...?") belongs
            # to the question after it.
            pieces[k : k + 2] = [f"{pieces[k]}, {pieces[k + 1]}"]
    out: list[str] = []
    for piece in pieces:
        if not piece.endswith("?") and sentence.endswith("?"):
            piece += "?"
        out.append(piece)
    return out


def _opens_question(text: str) -> bool:
    """Whether ``text`` opens with a question word or an auxiliary ("when ...", "is ...")."""
    opener = _tokens(text)[:1]
    return bool(opener) and opener[0] in WH_WORDS | AUXILIARIES


def _without_question_word(part: str) -> str:
    """``part`` after its question word: "Who first climbed it?" -> "first climbed it?"."""
    return re.sub(rf"^\s*(?:{_WH})\b\s*", "", part, flags=re.IGNORECASE)


# "the weight limit and the size limit", "check-in and check-out", "A, B and C"; not
# "the difference between A and B", which asks one thing.
_NP_LIST = re.compile(
    r"^(?P<head>.*?\b(?:is|are|was|were|of|about|for|does|do|did)\s+)"
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
    for text in split_parts(prompt):
        part_kind, _ = classify(text)
        if part_kind == "other" and not _opens_question(text):
            part_kind = kind  # a fragment such as "check-out?" inherits the question's kind
        parts.append(QuestionPart(text=text, kind=part_kind))
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
