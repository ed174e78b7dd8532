"""PII redaction: what a span stores never holds the personal data or secrets it was given.

Runs on the flush thread, on every text a span stores. Kinds found
(:data:`PLACEHOLDERS`): e-mail addresses; phone numbers (E.164 ``+...``,
``00`` international, North American, and national numbers with a trunk
``0`` as written in the UK, Germany, France, India, Australia, Japan and
most of Europe and Asia, or any 7-15 digits right after a word such as
"phone" or "call"); payment cards (13-19 digits with a card network's
prefix and a valid Luhn checksum); IBANs (country length and mod-97
checksum); US social security numbers; IP addresses (v4 and v6,
switchable); passwords in URLs (any host) and after ``password=``-like
keys; API keys and tokens (every format detect-secrets knows, plus bearer
tokens and long high-entropy strings: :mod:`.secret_patterns`).

Dates, times, years, prices, version numbers, order and invoice numbers
stay readable: a number is redacted only when its digits, grouping and
checksum fit one of these kinds (:mod:`.pii_numbers`).

Speed: one google-re2 automaton (linear time, whatever the text) passes
over the text's UTF-8 bytes and finds the candidates: runs of digit groups,
runs of token characters, ``key = value`` pairs, URLs with a password,
private-key headers. Only those few candidates are checked in Python (and
detect-secrets' exact formats asked about the bytes around a token run).
E-mail addresses are read outwards from each ``@``, so a text without one
costs nothing more. :meth:`Redactor.many` takes all of a span's texts in one
pass.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import re2

from llmvigil.collector import pii_numbers, secret_patterns
from llmvigil.collector.pii_numbers import iban_valid, luhn_valid

__all__ = [
    "KINDS",
    "PLACEHOLDERS",
    "Found",
    "Redactor",
    "iban_valid",
    "luhn_valid",
    "make_redactor",
]

#: What each kind of redacted text becomes in stored spans.
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "ip": "[IP]",
    "password": "[PASSWORD]",
    "secret": "[SECRET]",
    "pattern": "[REDACTED]",
}
#: The kinds :func:`make_redactor` finds with ``pii=True``, most specific first: where two
#: overlap, the earlier kind wins (a URL's password over the e-mail its ``pw@host`` looks like).
KINDS = ("secret", "password", "card", "iban", "email", "ssn", "phone", "ip")
_RANK = {kind: rank for rank, kind in enumerate((*KINDS, "pattern"))}
_JOIN = b"\n\x00\n"
#: Texts :meth:`Redactor.many` remembers: this long or longer, this many characters in all.
_REMEMBER_FROM = 256
_REMEMBER_CHARS = 2_000_000


class Found(NamedTuple):
    """One redacted piece: its kind and its byte offsets in the UTF-8 text."""

    start: int
    end: int
    kind: str


def _re2(pattern: bytes, capture: bool = True) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20  # room for the combined DFAs, so they never fall back to the NFA
    options.never_capture = not capture
    return re2.compile(pattern, options)


# -- e-mail -----------------------------------------------------------------------------

# What an address's local part may hold (any non-ASCII byte: internationalised addresses).
_LOCAL_PART = bytes(
    0x61 if (chr(b).isalnum() and b < 0x80) or b in b"._%+-" or b >= 0x80 else 0x20
    for b in range(256)
)
_DOMAIN = re.compile(
    rb"(?:[A-Za-z0-9\x80-\xff](?:[A-Za-z0-9\-\x80-\xff]{0,61}[A-Za-z0-9\x80-\xff])?\.)+"
    rb"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9\-]{1,59}|[\x80-\xff]{4,})(?![A-Za-z0-9\-])"
)


def _emails(data: bytes) -> list[Found]:
    """E-mail addresses, read outwards from each ``@``: a local part of at most 64 bytes
    before it, a domain of at most 255 after it (far cheaper than scanning the text)."""
    found: list[Found] = []
    at = data.find(b"@")
    while at > 0:
        low = max(0, at - 64)
        start = low + data[low:at].translate(_LOCAL_PART).rfind(b" ") + 1
        while start < at and data[start] == 0x2E:  # a local part starts with no dot
            start += 1
        domain = _DOMAIN.match(data, at + 1, at + 256) if start < at else None
        if domain is not None:
            in_url = start and data[start - 1] == 0x3A and b"://" in _token_before(data, start)
            # git@github.com:acme/app.git is an SSH remote, not an address
            ssh = (
                data[domain.end() : domain.end() + 1] == b":"
                and not data[domain.end() + 1 : domain.end() + 2].isspace()
            )
            if not in_url and not ssh:  # user:password@host in a URL: the URL pass takes it
                found.append(Found(start, domain.end(), "email"))
            at = data.find(b"@", domain.end())
        else:
            at = data.find(b"@", at + 1)
    return found


def _token_before(data: bytes, start: int) -> bytes:
    head = data[max(0, start - 200) : start]
    return head.rsplit(None, 1)[-1] if head.strip() else b""


# -- passwords in URLs (any host, with or without a dot) ----------------------------------

# A password may hold '#' and '@' (unescaped, as people write them); a '/' or '?' ends the
# host part, so "http://host:8080/?to=a@b" has none.
_URL_PASSWORD = rb"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\[\]\"'<>]*:[^\s/?\"'<>]+@"
_URL_PASSWORD_PARTS = _re2(rb"://([^\s:/?#@\[\]\"'<>]*):([^\s/?\"'<>]+)@")


def _url_passwords(data: bytes, start: int, end: int) -> list[Found]:
    """The passwords of the URLs that start in ``data[start:end]`` (they may end after it)."""
    found = []
    for match in _URL_PASSWORD_PARTS.finditer(data, max(0, start - 1), min(len(data), end + 512)):
        if match.start() >= end:
            break
        found.append(Found(*match.span(2), "password"))
    return found


# -- one scan for the secrets' candidates and the numbers ---------------------------

_SCANS: dict[bool, re2._Regexp] = {}


def _scan(ip: bool) -> re2._Regexp:
    """One automaton for the secrets' candidates and the numbers: one pass over each text.

    The secrets come first: where a token and a number start at the same byte
    (a Telegram token's digits), the token is tried.
    """
    scan = _SCANS.get(ip)
    if scan is None:
        sources = [secret_patterns.PRIVATE_KEY_HEAD, _URL_PASSWORD, *secret_patterns.scan_sources()]
        alternatives = [b"(?:" + s + b")" for s in sources]
        alternatives.append(pii_numbers.NUMBERS_ONLY[ip].pattern)
        scan = _SCANS[ip] = _re2(b"|".join(alternatives), False)
    return scan


def _scanned(data: bytes, ip: bool) -> list[Found]:
    """Keys, tokens, cards, IBANs, SSNs, phone numbers and IP addresses in ``data``."""
    found: list[Found] = []
    for match in _scan(ip).finditer(data):
        start, end = match.span()
        piece = data[start:end]
        if not piece.translate(None, b"0123456789 ./-()+"):
            found.extend(Found(*f) for f in pii_numbers.number(data, start, end, ip))
            continue
        if piece.startswith((b"-----BEGIN", b"BEGIN", b"PuTTY")):
            found.extend(Found(*f) for f in secret_patterns.private_keys(data, start))
            continue
        if b"://" in piece:
            passwords = _url_passwords(data, start, end)
            if passwords:
                found.extend(passwords)
                continue
        if pii_numbers.IBAN_SHAPE.fullmatch(piece) and pii_numbers.bounded(data, start, end):
            iban = pii_numbers.iban_at(data, start, end)
            if iban:
                found.append(Found(*iban))
                continue
        secret = secret_patterns.check(data, start, end)
        if secret:
            found.append(Found(*secret))
        else:  # not a token after all (an IPv6 address, "contact-us/call-0612345678")
            found.extend(Found(*f) for f in pii_numbers.numbers_in(data, start, end, ip))
    return found


# -- the redactor --------------------------------------------------------------------------


class Redactor:
    """Replaces PII in texts (``redactor(text)``); see :func:`make_redactor`."""

    def __init__(self, extra_patterns: Sequence[str] = (), pii: bool = True, ip: bool = True):
        self.pii = pii
        self.ip = ip
        self.extras = [_user_pattern(p) for p in extra_patterns]
        # id(text) -> (text, redacted), see many(); holding the text keeps its id unique.
        self._seen: dict[int, tuple[str, str]] = {}
        self._seen_chars = 0

    def find(self, text: str) -> list[tuple[str, str]]:
        """The PII in ``text`` as ``(kind, piece)`` pairs, in order of appearance."""
        data = text.encode("utf-8", "surrogatepass")
        return [(f.kind, _decode(data[f.start : f.end])) for f in self._found(data)]

    def __call__(self, text: str) -> str:
        """``text`` with each piece of PII replaced by its kind's placeholder."""
        return self._replace(text, _placeholder)

    def pseudonym(self, text: str) -> str:
        """``text`` with each piece of PII replaced by ``[KIND:<hash of the piece>]``.

        For identifiers (user and session ids, tags, metadata keys): two users
        whose ids are e-mail addresses must still be two users after redaction,
        or per-user metrics, drift and "sessions of this user" would merge
        everyone into ``[EMAIL]``. The hash (10 hex digits of BLAKE2b) is stable
        across processes and machines, so the same user groups together
        wherever the span was recorded. It hides the value from a reader, not
        from someone who can guess it and hash the guess.
        """
        return self._replace(text, _pseudonym)

    def many(self, texts: Sequence[str], pseudonyms: bool = False) -> list[str]:
        """Each of ``texts`` redacted (as :meth:`__call__`, or :meth:`pseudonym` when
        ``pseudonyms``), in one pass over them all.

        A span holds many texts (its prompt, each retrieved passage, each message of
        the conversation); one pass costs what the longest would, not one call each.
        A chat app sends its whole conversation again with every turn, the same
        string objects each time: a long text met again (the same object, not an
        equal one, so no hashing) is not scanned again.
        """
        placeholder = _pseudonym if pseudonyms else _placeholder
        out = list(texts)
        remember = not pseudonyms and not self.extras
        todo = []
        if self.pii:
            for i, text in enumerate(out):
                if len(text) < 6:
                    continue
                seen = self._seen.get(id(text)) if remember else None
                if seen is not None and seen[0] is text:
                    out[i] = seen[1]
                else:
                    todo.append(i)
        if todo:
            datas = [out[i].encode("utf-8", "surrogatepass") for i in todo]
            # A newline ends every kind's pattern, a NUL a private-key block's: nothing found
            # crosses from one text into the next.
            joined = _JOIN.join(datas)
            starts, at = [], 0
            for data in datas:
                starts.append(at)
                at += len(data) + len(_JOIN)
            per_text: dict[int, list[Found]] = {}
            for f in self._found(joined):
                k = bisect.bisect_right(starts, f.start) - 1
                base, size = starts[k], len(datas[k])
                if f.start - base < size:
                    end = min(f.end, base + size)
                    per_text.setdefault(k, []).append(Found(f.start - base, end - base, f.kind))
            for k, found in per_text.items():
                out[todo[k]] = _spliced(datas[k], found, placeholder)
            if remember:
                for k, i in enumerate(todo):
                    if len(datas[k]) >= _REMEMBER_FROM:
                        self._remember(texts[i], out[i])
        if self.extras:
            out = [self._extras(text, placeholder) for text in out]
        return out

    def _remember(self, text: str, redacted: str) -> None:
        self._seen[id(text)] = (text, redacted)
        self._seen_chars += len(text)
        while self._seen_chars > _REMEMBER_CHARS and self._seen:  # the oldest go first
            try:
                old, _ = self._seen.pop(next(iter(self._seen)))
            except (KeyError, RuntimeError, StopIteration):  # another thread took it first
                break
            self._seen_chars -= len(old)

    def _replace(self, text: str, placeholder: Callable[[str, str], str]) -> str:
        if len(text) < 6:  # shorter than the shortest PII (a@b.co): nothing to find
            return self._extras(text, placeholder) if self.extras else text
        data = text.encode("utf-8", "surrogatepass")
        found = self._found(data)
        if found:
            text = _spliced(data, found, placeholder)
        return self._extras(text, placeholder) if self.extras else text

    def _extras(self, text: str, placeholder: Callable[[str, str], str]) -> str:
        for pattern in self.extras:
            text = pattern.sub(lambda m: _replace_match(m, placeholder), text)
        return text

    def _found(self, data: bytes) -> list[Found]:
        if not self.pii:
            return []
        found = _scanned(data, self.ip)
        if b"@" in data:
            found += _emails(data)
        found = [_whole_characters(data, f) for f in found]
        return _without_overlaps(found) if len(found) > 1 else found


def _whole_characters(data: bytes, piece: Found) -> Found:
    """``piece`` widened to whole UTF-8 characters.

    The patterns read bytes, and one that takes any byte above 0x7f (an
    internationalised domain's last label) can stop inside a character; cut
    there, the text no longer decodes. Widening covers the whole character,
    which is then redacted with the rest.
    """
    start, end = piece.start, piece.end
    while start > 0 and 0x80 <= data[start] <= 0xBF:
        start -= 1
    while end < len(data) and 0x80 <= data[end] <= 0xBF:
        end += 1
    return piece if (start, end) == (piece.start, piece.end) else Found(start, end, piece.kind)


def _without_overlaps(found: list[Found]) -> list[Found]:
    """The pieces to replace, in order: where two overlap, the more specific kind's."""
    # The kept pieces never overlap, so they stay sorted by start and a new piece need only be
    # checked against its two neighbours: linear-logarithmic in the pieces of a text, where
    # checking each against all kept was quadratic (dense contact lists, logs of addresses).
    kept: list[Found] = []
    starts: list[int] = []
    for f in sorted(found, key=lambda f: (_RANK[f.kind], f.start, f.start - f.end)):
        i = bisect.bisect_right(starts, f.start)
        if (i == 0 or kept[i - 1].end <= f.start) and (i == len(kept) or kept[i].start >= f.end):
            kept.insert(i, f)
            starts.insert(i, f.start)
    return kept


def _spliced(data: bytes, found: list[Found], placeholder: Callable[[str, str], str]) -> str:
    pieces, last = [], 0
    for f in found:
        pieces.append(data[last : f.start])
        pieces.append(placeholder(f.kind, _decode(data[f.start : f.end])).encode())
        last = f.end
    pieces.append(data[last:])
    return _decode(b"".join(pieces))


def _replace_match(match: re2._Match, placeholder: Callable[[str, str], str]) -> str:
    """A match of one of your patterns, redacted: the whole match, or only its first group
    when the pattern has one (RE2 has no lookbehind: ``ref ([A-Z0-9]+)`` keeps "ref ")."""
    whole = match.group(0)
    if match.re.groups == 0:
        return placeholder("pattern", whole)
    start, end = match.span(1)
    if start < 0:  # the group took no part in this match
        return whole
    start, end = start - match.start(0), end - match.start(0)
    return whole[:start] + placeholder("pattern", whole[start:end]) + whole[end:]


def _placeholder(kind: str, piece: str) -> str:
    return PLACEHOLDERS[kind]


def _pseudonym(kind: str, piece: str) -> str:
    digest = hashlib.blake2b(
        piece.encode("utf-8", "surrogatepass"), digest_size=5, person=b"llmvigil-pii"
    ).hexdigest()
    return f"{PLACEHOLDERS[kind][:-1]}:{digest}]"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _user_pattern(pattern: str) -> re2._Regexp:
    """Your pattern in RE2: linear time whatever the text (the settings refuse what RE2
    cannot compile, see :class:`~llmvigil.config.CollectorSettings`)."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise ValueError(
            f"pattern {pattern!r} is not a valid RE2 regular expression ({exc}): no lookarounds "
            "or backreferences; put the part to redact in a group instead"
        ) from None


def make_redactor(
    extra_patterns: Sequence[str] = (), pii: bool = True, ip: bool = True
) -> Redactor | None:
    """A function that redacts PII (when ``pii``) and ``extra_patterns`` (as ``[REDACTED]``).

    None when there is nothing to redact. ``ip`` False leaves IP addresses as they are.

    Example::

        redact = make_redactor([r"ACCT-\\d{8}"])
        redact("mail jo@example.com about ACCT-12345678")
        # 'mail [EMAIL] about [REDACTED]'
    """
    if not pii and not extra_patterns:
        return None
    return Redactor(extra_patterns, pii=pii, ip=ip)
