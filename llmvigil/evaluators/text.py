"""Plain-text helpers shared by the offline evaluators.

The evaluators compare a response with a question, a context or a reference
word by word as well as by meaning, so they all need the same notion of a
sentence, a word, a content word, a number, a date and a name. Keeping that in
one place means "supported" means the same thing to factuality as "covered"
does to completeness.

Everything here is deterministic, needs no model and works on English text.
The stop-word list is scikit-learn's ``ENGLISH_STOP_WORDS`` rather than one of
our own, so what counts as a content word is a documented, public choice.

Example::

    >>> split_sentences("It opened in 1937. It is 2.7 km long.")
    ['It opened in 1937.', 'It is 2.7 km long.']
    >>> content_words("The bridge opened to traffic in 1937.")
    ['bridge', 'opened', 'traffic', '1937']
    >>> numbers("twenty-five days, $4.99 and 1,200 m")
    [25.0, 4.99, 1200.0]
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

__all__ = [
    "MONTHS",
    "NEGATIONS",
    "STOP_WORDS",
    "WEEKDAYS",
    "capitalised_names",
    "content_words",
    "dates",
    "fold",
    "negations",
    "numbers",
    "split_sentences",
    "stem",
    "stems",
    "unique",
    "word_count",
    "words",
    "years",
]

#: scikit-learn's English stop words (318 words), plus the contraction tails
#: that apostrophes other than ' and ’ leave as separate tokens ("don`t").
STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS) | {"s", "t", "d", "ll", "m", "ve", "re"}

#: Month and weekday names from the C locale via :mod:`calendar`, lower-cased.
MONTHS: dict[str, int] = {
    **{m.lower(): i for i, m in enumerate(calendar.month_name) if m},
    **{m.lower(): i for i, m in enumerate(calendar.month_abbr) if m and m.lower() != "may"},
}
WEEKDAYS: dict[str, int] = {
    **{d.lower(): i for i, d in enumerate(calendar.day_name)},
    **{d.lower(): i for i, d in enumerate(calendar.day_abbr)},
}

#: Words that turn a statement into its opposite. They are stop words, so
#: :func:`content_words` drops them; :func:`negations` counts them instead.
NEGATIONS: frozenset[str] = frozenset(
    "not no never nor neither none nobody nothing nowhere cannot without".split()  # noqa: SIM905
)

# English number words: a grammar table, not data about any entity.
_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "  # noqa: SIM905
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(
        "twenty thirty forty fifty sixty seventy eighty ninety".split(),  # noqa: SIM905
        2,
    )
}
_ORDINALS = {
    w: i
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh "  # noqa: SIM905
        "twelfth".split(),
        1,
    )
}
_AMBIGUOUS_NUMBER_WORDS = frozenset({"one", "first", "second"})
_SCALES = {"hundred": 100, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}

# Titles and Latin abbreviations whose full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs etc eg ie al approx no nos vol fig inc ltd co "  # noqa: SIM905
    "corp dept est gen gov col lt sgt capt rev hon jan feb mar apr jun jul aug sep sept "
    "oct nov dec".split()
)

# A number: 1,234,567 or 2.75 or 42 (a leading $, £, € is punctuation to us).
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_WORD = r"[^\W\d_]+(?:['’][^\W\d_]+)*|[^\W_]+"
# A number may carry a glued unit or suffix ("3rd", "1.5bn", "10km"): one token.
_TOKEN_RE = re.compile(rf"(?:{_NUMBER})[^\W\d_]*|{_WORD}")
_NUMBER_TOKEN_RE = re.compile(rf"^({_NUMBER})([^\W\d_]*)$")
_SUFFIX_SCALES = {"k": 1e3, "bn": 1e9}

# Candidate sentence ends: terminal punctuation, optional closing quotes or
# brackets, then either whitespace or (for passages glued together without a
# space, "century.First") directly a capital followed by a lower-case letter.
_END_RE = re.compile(r"([.!?…]+)([\"'”’)\]]*)(?:\s+|(?=[A-Z][a-z]))")
_BREAK_RE = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*•·]|\d+[.)])\s)|\n(?=\s*[A-Z])")
_BULLET_RE = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s+")


def fold(text: str) -> str:
    """Lower-case ``text`` and strip accents, so "Rhöner" matches "Rhoner" and "Café" "cafe"."""
    if text.isascii():  # the common case, and ten times faster
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, keeping their punctuation.

    Handles decimals ("2.7 km"), initials and common abbreviations ("J. R. R.
    Tolkien", "Dr. Smith", "U.S. Highway"), list items and paragraphs on their
    own lines, and passages concatenated without a space ("...century.First for
    Women..."). Empty input gives an empty list.
    """
    sentences: list[str] = []
    for block in _BREAK_RE.split(text or ""):
        block = _BULLET_RE.sub("", block).strip()
        start = 0
        for match in _END_RE.finditer(block):
            end = match.end()
            if _is_abbreviation(block, match.start(), match.group(1)):
                continue
            if end < len(block) and not _opens_sentence(block[end:]):
                continue
            sentence = block[start:end].strip()
            if sentence:
                sentences.append(sentence)
            start = end
        rest = block[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def _is_abbreviation(block: str, dot: int, punct: str) -> bool:
    """Whether the full stop at ``dot`` closes an abbreviation rather than a sentence."""
    if punct != ".":
        return False
    before = re.search(r"([^\W\d_]+(?:\.[^\W\d_]+)*)$", block[:dot])
    if before is None:
        return False
    word = before.group(1)
    # A single letter ("J.") or a dotted acronym ("U.S.", "e.g.") is an abbreviation.
    if len(word) == 1 or "." in word:
        return True
    return word.lower() in _ABBREVIATIONS


def _opens_sentence(rest: str) -> bool:
    """Whether text after a full stop can start a sentence (not "... 3 p.m. today")."""
    rest = rest.lstrip("\"'“‘([")
    return bool(rest) and (rest[0].isupper() or rest[0].isdigit())


def words(text: str) -> list[str]:
    """Tokens of ``text`` in order, case kept: words (with inner apostrophes) and numbers.

    Punctuation is dropped; hyphenated words come apart ("one-time" gives
    "one", "time"), so that they match the same words written with a space.
    """
    return _TOKEN_RE.findall(text or "")


def word_count(text: str) -> int:
    """Number of :func:`words` in ``text``."""
    return len(words(text))


_CLITIC_RE = re.compile(r"'(?:s|ll|re|ve|d|m)$")


def _normal(token: str) -> str:
    """Folded token without a possessive or clitic ending ("Nixon's" -> "nixon", "we'll" -> "we").

    A negated contraction ("don't") is kept whole: :func:`negations` counts it.
    """
    token = fold(token).replace("’", "'")
    return token if token.endswith("n't") else _CLITIC_RE.sub("", token)


def content_words(text: str) -> list[str]:
    """Folded words of ``text`` that carry meaning: not stop words, numbers kept.

    Order and repeats are kept so callers can count; use ``set()`` for lookups.
    """
    out = []
    for token in words(text):
        norm = _normal(token)
        if norm.endswith("n't"):  # "don't", "isn't": negated function words
            continue
        if norm and norm not in STOP_WORDS and (len(norm) > 1 or norm.isdigit()):
            out.append(norm)
    return out


def stem(word: str) -> str:
    """A light suffix-stripping stem, so "carried", "carries" and "carry" compare equal.

    Deliberately crude (no dictionary): it only has to map inflections of one
    word to the same key on both sides of a comparison. Numbers are unchanged.
    """
    w = _normal(word)
    if len(w) <= 3 or not w.isalpha():
        return w
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("sses", "ss"), ("ing", ""), ("ed", "")):
        if w.endswith(suffix) and len(w) - len(suffix) + len(repl) >= 3:
            w = w[: len(w) - len(suffix)] + repl
            break
    else:
        if w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
    if w.endswith("ly") and len(w) > 5:
        w = w[:-2]
    # "running" -> "runn" -> "run"; "named"/"name" -> "nam".
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def stems(text: str) -> set[str]:
    """The set of stems of the content words of ``text``."""
    return {stem(w) for w in content_words(text)}


def negations(text: str) -> int:
    """How many negation words ("not", "never", "no", "-n't", ...) ``text`` contains."""
    count = 0
    for token in words(text):
        norm = _normal(token)
        if norm in NEGATIONS or norm.endswith("n't"):
            count += 1
    return count


def numbers(text: str, ambiguous: bool = True) -> list[float]:
    """Every quantity in ``text`` as a float, digits and English number words alike.

    "1,200" gives 1200, "2.7" 2.7, "twenty-five" 25, "3 million" 3e6, "1.5bn"
    1.5e9, "third" and "3rd" 3. Years are numbers too (see :func:`years`).

    With ``ambiguous=False`` the words "one", "first" and "second" count only
    before a content word ("one day", "first season"): otherwise they are more
    often a pronoun ("one of the best"), an adverb ("born first") or a unit of
    time than a quantity. Use it on the side of a comparison that must not
    raise false alarms (the claim), and the default on the other (the evidence).
    """
    out: list[float] = []
    current: float | None = None  # a number being built from several words
    pending_scale_ok = False
    tokens = words(text)
    for i, token in enumerate(tokens):
        low = token.lower()
        value: float | None = None
        scale: float | None = None
        if not ambiguous and low in _AMBIGUOUS_NUMBER_WORDS:
            following = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
            if not following or following in STOP_WORDS:
                low = ""
        if m := _NUMBER_TOKEN_RE.match(token):
            # "5m" is more often metres than millions, so only k and bn scale.
            value = float(m.group(1).replace(",", "")) * _SUFFIX_SCALES.get(m.group(2).lower(), 1)
        elif low in _UNITS:
            value = float(_UNITS[low])
        elif low in _TENS:
            value = float(_TENS[low])
        elif low in _ORDINALS:
            value = float(_ORDINALS[low])
        elif low in _SCALES:
            scale = _SCALES[low]
        if scale is not None and current is not None and pending_scale_ok:
            current *= scale
            continue
        if value is not None:
            # "twenty five": a unit right after a tens word joins it.
            if current is not None and current % 100 >= 20 and current % 10 == 0 and value < 10:
                current += value
            else:
                if current is not None:
                    out.append(current)
                current = value
            pending_scale_ok = True
            continue
        if current is not None:
            out.append(current)
            current = None
        pending_scale_ok = False
    if current is not None:
        out.append(current)
    return out


def years(text: str) -> list[int]:
    """Four-digit numbers between 1000 and 2100 written in digits: the likely years in ``text``."""
    return [int(t) for t in words(text) if len(t) == 4 and t.isdigit() and 1000 <= int(t) <= 2100]


def dates(text: str) -> set[str]:
    """Date parts named in ``text``, normalised for comparison.

    Returns keys such as ``"year:1937"``, ``"month:3"`` and ``"weekday:0"``
    (Monday), so "Mar" and "March" compare equal and "Monday" differs from
    "Tuesday". "May" counts as a month only when capitalised mid-sentence or
    next to a number, since "may" is mostly a verb.
    """
    out = {f"year:{y}" for y in years(text)}
    tokens = words(text)
    for i, token in enumerate(tokens):
        low = fold(token)
        if low.endswith("days") and low[:-1] in WEEKDAYS:  # "on Mondays"
            low = low[:-1]
        if low in WEEKDAYS:
            out.add(f"weekday:{WEEKDAYS[low]}")
        elif low in MONTHS and low != "may":
            out.add(f"month:{MONTHS[low]}")
        elif low == "may" and token == "May":
            near = tokens[i - 1 : i] + tokens[i + 1 : i + 2]
            if any(t.isdigit() for t in near):
                out.add("month:5")
    return out


def capitalised_names(text: str) -> list[str]:
    """Runs of capitalised words that look like names ("Richard Nixon", "Super Bowl XLVIII").

    A capitalised word opening a sentence is only taken when another
    capitalised word follows it, or when it is not a stop word and the
    sentence is a single word ("Delhi"); otherwise "The" or "Yes" would pass
    for names. Connectors inside a name ("Bank of America") are kept.
    Returns the names as written, in order.
    """
    names: list[str] = []
    for sentence in split_sentences(text):
        tokens = words(sentence)
        i = 0
        while i < len(tokens):
            if not _is_capitalised(tokens[i]):
                i += 1
                continue
            j = i + 1
            while j < len(tokens):
                if _is_capitalised(tokens[j]):
                    j += 1
                elif (
                    tokens[j].lower() in {"of", "de", "la", "van", "von", "der", "da", "del"}
                    and j + 1 < len(tokens)
                    and _is_capitalised(tokens[j + 1])
                ):
                    j += 2
                else:
                    break
            run = tokens[i:j]
            if i == 0 and len(run) == 1 and len(tokens) > 1:
                run = []
            # Capitalised stop words ("The", "I", "In") are not part of a name.
            while run and fold(run[0]) in STOP_WORDS:
                run = run[1:]
            while run and fold(run[-1]) in STOP_WORDS:
                run = run[:-1]
            if run:
                names.append(" ".join(run))
            i = j
    return names


def _is_capitalised(token: str) -> bool:
    return token[:1].isupper() and not token.isdigit()


def unique(items: Iterable[str]) -> list[str]:
    """``items`` without repeats, first occurrence order kept."""
    return list(dict.fromkeys(items))
