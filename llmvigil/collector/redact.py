"""PII redaction: what a span stores never holds the personal data or secrets it was given.

Runs on the flush thread, on every text a span stores. Kinds found
(:data:`PLACEHOLDERS`): e-mail addresses; phone numbers (E.164 ``+...``,
``00`` international, North American, and national numbers with a trunk
``0`` as written in the UK, Germany, France, India, Australia, Japan and
most of Europe and Asia, or any 7-15 digits right after a word such as
"phone" or "call"); payment cards (13-19 digits with a card network's
prefix and a valid Luhn checksum); IBANs (country length and mod-97
checksum); US social security numbers; IP addresses (v4 and v6,
switchable); passwords in URLs and after ``password=``-like keys; API keys
and tokens (every format detect-secrets knows, see :mod:`.secret_patterns`, plus
bearer tokens and long high-entropy strings).

Dates, times, years, prices, version numbers, order and invoice numbers
stay readable: a number is redacted only when its digits, grouping and
checksum fit one of these kinds.

Speed: every pattern is a google-re2 automaton (linear time, whatever the
text) run over the text's UTF-8 bytes, a pass per family of kinds, skipped
when the family's marker is absent (no ``@``, no e-mail pass). Only the few
candidates re2 finds are checked in Python.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import re2

from llmvigil.collector import secret_patterns

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

_URL_PASSWORD = rb"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\[\]\"'<>]*:[^\s/?#\"'<>]+@"
_URL_PASSWORD_PARTS = _re2(rb"://([^\s:/?#@\[\]\"'<>]*):([^\s/?#\"'<>]+)@")


def _url_passwords(data: bytes, start: int, end: int) -> list[Found]:
    """The passwords of the URLs that start in ``data[start:end]`` (they may end after it)."""
    found = []
    for match in _URL_PASSWORD_PARTS.finditer(data, max(0, start - 1), min(len(data), end + 512)):
        if match.start() >= end:
            break
        found.append(Found(*match.span(2), "password"))
    return found


# -- numbers: phones, cards, SSNs, IBANs, IP addresses --------------------------------------

# Between the digit groups of one number: one space, dot, dash or slash (or " / "), or a
# parenthesis.
_SEP = rb"(?:[ ./\-]|[ .\-]?\( ?|\)[ .\-]?| / )"
_NUMBERS = (
    rb"[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9]){11,}"  # IBAN
    rb"|\+ ?\(?[0-9](?:" + _SEP + rb"?[0-9]){6,}"  # E.164: 7 digits or more after the +
    rb"|\(?[0-9](?:" + _SEP + rb"?[0-9]){8,}"  # national numbers have 9 digits or more
    rb"|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"  # IPv4
)
_IPV6 = rb"[0-9A-Fa-f:]*::[0-9A-Fa-f:.]*[0-9A-Fa-f]|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}"
_NUMBERS_ONLY = {ip: _re2(_NUMBERS + (b"|" + _IPV6 if ip else b""), False) for ip in (False, True)}
_SCANS: dict[bool, re2._Regexp] = {}

_DIGITS = re.compile(r"\d+")
_IBAN_SHAPE = re.compile(rb"[A-Z]{2}[0-9]{2}[A-Z0-9 \-]+")
_PHONE_WORDS = re.compile(
    r"(?i)(?:phone|\btel\b|\bcall|mobile|\bcell|fax|whatsapp|\bsms\b|\bdial|telefon|tél|"
    r"teléfono|portable|celular|\bhandy|電話|携帯)"
)
_SSN_WORDS = re.compile(r"(?i)(?:\bssn|social security|soc\.? ?sec)")
_VERSION_WORDS = re.compile(r"(?i)(?:version|\bver\.?|release|build|firmware)\W{0,3}$")
_VERSION_AFTER = re.compile(rb"(?i)[ \t]*(?:release|version|build|update|patch|beta|rc)\b")
_MAX_GROUPS = 7  # "+49 (0) 30 123 456 78": no number we redact has more digit groups
_CARD_GROUPS = ((4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 4, 4, 2))


def _scan(ip: bool) -> re2._Regexp:
    """One automaton for the secrets' candidates and the numbers: one pass over each text.

    The secrets come first: where a token and a number start at the same byte
    (a Telegram token's digits), the token is tried.
    """
    scan = _SCANS.get(ip)
    if scan is None:
        sources = [secret_patterns.PRIVATE_KEY_HEAD, _URL_PASSWORD, *secret_patterns.scan_sources()]
        alternatives = [b"(?:" + s + b")" for s in sources]
        scan = _SCANS[ip] = _re2(b"|".join([*alternatives, _NUMBERS_ONLY[ip].pattern]), False)
    return scan


def _is_word_byte(byte: int) -> bool:
    # ASCII letters, digits and '_'; a non-ASCII byte (Chinese, Japanese...) separates words
    # there, where scripts put no space before a number.
    return byte < 0x80 and (chr(byte).isalnum() or byte == 0x5F)


def _scanned(data: bytes, ip: bool) -> list[Found]:
    """Keys, tokens, cards, IBANs, SSNs, phone numbers and IP addresses in ``data``."""
    found: list[Found] = []
    for match in _scan(ip).finditer(data):
        start, end = match.span()
        piece = data[start:end]
        if not piece.translate(None, b"0123456789 ./-()+"):
            found.extend(_number(data, start, end, ip))
            continue
        if piece.startswith((b"-----BEGIN", b"BEGIN", b"PuTTY")):
            found.extend(Found(*f) for f in secret_patterns.private_keys(data, start))
            continue
        if b"://" in piece:
            passwords = _url_passwords(data, start, end)
            if passwords:
                found.extend(passwords)
                continue
        if _IBAN_SHAPE.fullmatch(piece) and _bounded(data, start, end):
            iban = _iban(data, start, end)
            if iban:
                found.append(iban)
                continue
        secret = secret_patterns.check(data, start, end)
        if secret:
            found.append(Found(*secret))
        else:  # not a token after all (an IPv6 address, "contact-us/call-0612345678")
            found.extend(_numbers_in(data, start, end, ip))
    return found


def _numbers_in(data: bytes, start: int, end: int, ip: bool) -> list[Found]:
    found = []
    for match in _NUMBERS_ONLY[ip].finditer(data, start, end):
        a, b = match.span()
        piece = data[a:b]
        if not piece.translate(None, b"0123456789 ./-()+"):
            found.extend(_number(data, a, b, ip))
        elif b":" in piece:
            if _bounded(data, a, b) and _is_ip(piece.decode("ascii")):
                found.append(Found(a, b, "ip"))
        elif _bounded(data, a, b):
            iban = _iban(data, a, b)
            if iban:
                found.append(iban)
    return found


def _bounded(data: bytes, start: int, end: int) -> bool:
    """True unless the piece is part of a longer word (INV2024000123, x4111...)."""
    if start and _is_word_byte(data[start - 1]):
        return False
    return not (end < len(data) and _is_word_byte(data[end]))


def _number(data: bytes, start: int, end: int, ip: bool) -> list[Found]:
    return _number_kinds(data, start, end, ip) if _bounded(data, start, end) else []


def _number_kinds(data: bytes, start: int, end: int, ip: bool) -> list[Found]:
    """The PII among one run of digit groups (``data[start:end]``), leftmost-longest first.

    A run can hold several numbers ("the years 1999 2000 2001", "call 0612345678 or
    0698765432"), so each window of consecutive groups is tried, longest first.
    """
    run = _DigitRun(data, start, end, ip)
    found = []
    n = len(run.spans)
    i = 0
    while i < n:
        for j in range(min(n, i + _MAX_GROUPS) - 1, i - 1, -1):
            kind = run.kind(i, j)
            if kind:
                first = 0 if i == 0 else run.spans[i][0]
                found.append(Found(start + first, start + run.spans[j][1], kind))
                i = j
                break
        i += 1
    return found


class _DigitRun:
    """One run of digit groups and separators, read once, asked about each window."""

    def __init__(self, data: bytes, start: int, end: int, ip: bool) -> None:
        self.data, self.start, self.ip = data, start, ip
        text = self.text = data[start:end].decode("ascii")
        spans = self.spans = [m.span() for m in _DIGITS.finditer(text)]
        self.groups = [text[a:b] for a, b in spans]
        self.seps = [text[spans[k][1] : spans[k + 1][0]] for k in range(len(spans) - 1)]
        self.lead = text[: spans[0][0]]
        self.blocked = _dates(text, spans)
        self._context: str | None = None

    def context(self, i: int) -> str:
        """Up to 32 bytes before the run (where "phone:" or "SSN" would be written)."""
        if self._context is None:
            at = self.start + self.spans[i][0]
            self._context = self.data[max(0, at - 32) : at].decode("utf-8", "ignore")
        return self._context

    def kind(self, i: int, j: int) -> str | None:
        sizes = tuple(len(g) for g in self.groups[i : j + 1])
        count = sum(sizes)
        if count < 4 or count > 19 or True in self.blocked[i : j + 1]:
            return None
        seps = self.seps[i:j]
        # What surrounds the window: a dash, dot or slash joining more digits means the
        # window is only part of a longer number (2024-000123, 1.2.3.4.5).
        before = self.seps[i - 1] if i else _byte_str(self.data, self.start - 1)
        after = self.seps[j] if j < len(self.seps) else _tail(self.data, self.start, self.text)
        if before[-1:] in _NOT_BEFORE or after[:1] in _NOT_AFTER:
            return None
        lead = self.lead if i == 0 else ""
        if len(sizes) == 4 and seps == [".", ".", "."] and not lead:
            written = self.text[self.spans[i][0] : self.spans[j][1]]
            if not (self.ip and max(sizes) <= 3 and _is_ip(written)):
                return None
            version = _VERSION_WORDS.search(self.context(i)) or _VERSION_AFTER.match(
                self.data, self.start + self.spans[j][1]
            )
            return None if version else "ip"
        if count < 7 or self.continues(i, j):
            return None
        digits = "".join(self.groups[i : j + 1])
        plus = "+" in lead
        if not plus and count >= 13 and _is_card(digits, sizes, seps):
            return "card"
        if not plus and count == 9 and _is_ssn(digits, sizes, seps, self.context(i)):
            return "ssn"
        if _is_phone(digits, sizes, seps, plus):
            return "phone"
        if count <= 15 and not plus and _PHONE_WORDS.search(self.context(i)):
            return "phone"
        return None

    def continues(self, i: int, j: int) -> bool:
        """True if groups ``i..j`` are the start of a longer run of the same shape
        ("03 12 19 27 35 41": lottery numbers, not a French phone number)."""
        if j - i < 1 or j + 1 >= len(self.groups):
            return False
        seps = self.seps[i : j + 1]
        return len(set(seps)) == 1 and len(self.groups[j + 1]) == len(self.groups[j])


_NOT_BEFORE = ("-", ".", "/", "$", "€", "£", "#")
_NOT_AFTER = ("-", "/", "%", ".", ",")


def _dates(text: str, groups: list[tuple[int, int]]) -> list[bool]:
    """Which groups are a date (2024-03-15, 15.03.2024, 03/15/24), never part of a number."""
    blocked = [False] * len(groups)
    for i in range(len(groups) - 2):
        (a0, a1), (b0, b1), (c0, c1) = groups[i : i + 3]
        sep = text[a1:b0]
        if len(sep) != 1 or sep not in "./-" or text[b1:c0] != sep:
            continue
        if (i and text[groups[i - 1][1] : a0] == sep) or text[c1 : c1 + 1] == sep:
            continue  # more groups joined the same way: 01.23.45.67.89 is a phone number
        x, y, z = text[a0:a1], text[b0:b1], text[c0:c1]
        if _is_date(x, y, z):
            blocked[i : i + 3] = [True] * 3
    return blocked


def _is_date(x: str, y: str, z: str) -> bool:
    if len(x) == 4 and len(y) <= 2 and len(z) <= 2:  # year first
        return 1 <= int(y) <= 12 and 1 <= int(z) <= 31
    if len(x) <= 2 and len(y) <= 2 and len(z) in (2, 4):
        a, b = int(x), int(y)
        return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)
    return False


def _byte_str(data: bytes, at: int) -> str:
    return chr(data[at]) if 0 <= at < len(data) and data[at] < 0x80 else ""


def _tail(data: bytes, base: int, text: str) -> str:
    end = base + len(text)
    nxt = data[end : end + 2]
    # "call 415-555-2671." ends a sentence; "2024-03.5" continues a number.
    if nxt[:1] in (b".", b",") and not nxt[1:2].isdigit():
        return ""
    return nxt.decode("ascii", "replace")


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (digits only) passes the Luhn checksum of card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_card(digits: str, sizes: tuple[int, ...], seps: list[str]) -> bool:
    if seps and (len(set(seps)) != 1 or seps[0] not in (" ", "-") or sizes not in _CARD_GROUPS):
        return False
    # The issuer prefixes (ISO/IEC 7812 major industry identifiers 2-6): Mastercard 2221-2720
    # and 51-55, Amex 34/37, Diners 30/36/38/39, JCB 35, Visa 4, Maestro/Discover/UnionPay 5-6.
    n, head = len(digits), digits[:2]
    if digits[0] == "2":
        ok = 2221 <= int(digits[:4]) <= 2720 and n == 16
    elif digits[0] == "3":
        ok = (head in ("34", "37") and n == 15) or (head in ("30", "35", "36", "38", "39"))
    else:
        ok = digits[0] in "456"
    return ok and luhn_valid(digits)


def _is_ssn(digits: str, sizes: tuple[int, ...], seps: list[str], context: str) -> bool:
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    if area in (0, 666) or area >= 900 or group == 0 or serial == 0:
        return False
    if sizes == (3, 2, 4) and seps == ["-", "-"]:
        return True
    return sizes in ((3, 2, 4), (9,)) and bool(_SSN_WORDS.search(context))


def _is_phone(digits: str, sizes: tuple[int, ...], seps: list[str], plus: bool) -> bool:
    count = len(digits)
    if plus:
        return 7 <= count <= 15
    if len(sizes) > 1 and sizes[-1] == 1:  # ISBN 0-306-40615-2: no phone ends in one digit
        return False
    if digits.startswith("00") and digits[2] != "0":  # 00 44 20 7946 0958: international prefix
        return 10 <= count <= 17 and len(sizes) > 1
    if "/" in seps and not digits.startswith("0"):
        return False
    # North American: (415) 555-2671, 415.555.2671, 1-800-555-0199; area and exchange 2-9xx.
    if sizes == (3, 3, 4) or (sizes == (1, 3, 3, 4) and digits[0] == "1"):
        nanp = digits[-10:]
        if nanp[0] in "23456789" and nanp[3] in "23456789":
            return True
    # A trunk 0 then 9-11 digits: UK 020 7946 0958 / 07700 900123, DE 030 1234567, FR 06 12 34
    # 56 78, IN 022 2345 6789, AU (02) 9876 5432 / 0412 345 678, JP 03-1234-5678, ...
    if digits[0] == "0" and digits[1] != "0" and 9 <= count <= 11:
        return len(sizes) > 1 or count >= 10
    if sizes == (5, 5) and digits[0] in "6789":  # India's mobiles: 98765 43210
        return True
    return sizes == (4, 3, 3) and digits[:4] in ("1300", "1800")  # Australia's 1300 / 1800


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# -- IBAN --------------------------------------------------------------------------------

#: IBAN lengths by country code, from the SWIFT IBAN registry.
IBAN_LENGTHS = {
    **dict.fromkeys(["NO"], 15),
    **dict.fromkeys(["BE"], 16),
    **dict.fromkeys(["DK", "FI", "FO", "GL", "NL", "SD", "FK"], 18),
    **dict.fromkeys(["MK", "SI"], 19),
    **dict.fromkeys(["AT", "BA", "EE", "KZ", "LT", "LU", "XK", "MN"], 20),
    **dict.fromkeys(["CH", "HR", "LI", "LV"], 21),
    **dict.fromkeys(["BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"], 22),
    **dict.fromkeys(["AE", "GI", "IL", "IQ", "TL", "OM", "SO"], 23),
    **dict.fromkeys(["AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"], 24),
    **dict.fromkeys(["LY", "PT", "ST"], 25),
    **dict.fromkeys(["IS", "TR"], 26),
    **dict.fromkeys(["FR", "GR", "IT", "MC", "MR", "SM", "BI", "DJ"], 27),
    **dict.fromkeys(["AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "PL", "SV", "NI"], 28),
    **dict.fromkeys(["BR", "EG", "PS", "QA", "UA"], 29),
    **dict.fromkeys(["JO", "KW", "MU", "YE"], 30),
    **dict.fromkeys(["MT", "SC"], 31),
    **dict.fromkeys(["LC"], 32),
    **dict.fromkeys(["RU"], 33),
}


def iban_valid(iban: str) -> bool:
    """True if ``iban`` (no spaces) has its country's length and a valid mod-97 checksum."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban(data: bytes, start: int, end: int) -> Found | None:
    text = data[start:end].decode("ascii")
    length = IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    kept = 0
    for offset, ch in enumerate(text):
        if ch.isalnum():
            kept += 1
            if kept == length:
                stop = offset + 1
                break
    else:
        return None
    if stop < len(text) and text[stop].isalnum():
        return None  # the IBAN's length ends inside a group: something else
    compact = text[:stop].replace(" ", "").replace("-", "")
    return Found(start, start + stop, "iban") if iban_valid(compact) else None


# -- the redactor --------------------------------------------------------------------------


class Redactor:
    """Replaces PII in texts (``redactor(text)``); see :func:`make_redactor`."""

    def __init__(self, extra_patterns: Sequence[str] = (), pii: bool = True, ip: bool = True):
        self.pii = pii
        self.ip = ip
        self.extras = [_user_pattern(p) for p in extra_patterns]

    def find(self, text: str) -> list[tuple[str, str]]:
        """The PII in ``text`` as ``(kind, piece)`` pairs, in order of appearance."""
        data = text.encode("utf-8", "surrogatepass")
        return [(f.kind, _decode(data[f.start : f.end])) for f in self._found(data)]

    def __call__(self, text: str) -> str:
        """``text`` with each piece of PII replaced by its kind's placeholder."""
        return self._replace(text, lambda kind, piece: PLACEHOLDERS[kind])

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

    def _replace(self, text: str, placeholder: Callable[[str, str], str]) -> str:
        if len(text) < 6:  # shorter than the shortest PII (a@b.co): nothing to find
            return self._extras(text, placeholder) if self.extras else text
        data = text.encode("utf-8", "surrogatepass")
        found = self._found(data)
        if found:
            pieces, last = [], 0
            for f in found:
                pieces.append(data[last : f.start])
                pieces.append(placeholder(f.kind, _decode(data[f.start : f.end])).encode())
                last = f.end
            pieces.append(data[last:])
            text = _decode(b"".join(pieces))
        return self._extras(text, placeholder) if self.extras else text

    def _extras(self, text: str, placeholder: Callable[[str, str], str]) -> str:
        for pattern in self.extras:
            text = pattern.sub(lambda m: placeholder("pattern", m.group(0)), text)
        return text

    def _found(self, data: bytes) -> list[Found]:
        if not self.pii:
            return []
        found = _scanned(data, self.ip)
        if b"@" in data:
            found += _emails(data)
        return _without_overlaps(found) if len(found) > 1 else found


def _without_overlaps(found: list[Found]) -> list[Found]:
    """The pieces to replace, in order: where two overlap, the more specific kind's."""
    kept: list[Found] = []
    for f in sorted(found, key=lambda f: (_RANK[f.kind], f.start, f.start - f.end)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept)


def _pseudonym(kind: str, piece: str) -> str:
    digest = hashlib.blake2b(
        piece.encode("utf-8", "surrogatepass"), digest_size=5, person=b"llmvigil-pii"
    ).hexdigest()
    return f"{PLACEHOLDERS[kind][:-1]}:{digest}]"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _user_pattern(pattern: str) -> re.Pattern[str] | re2._Regexp:
    """Your pattern in re2 (linear time) when re2 can express it, else in Python's ``re``."""
    try:
        options = re2.Options()
        options.log_errors = False
        return re2.compile(pattern, options)
    except re2.error:  # lookarounds, backreferences
        return re.compile(pattern)


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
