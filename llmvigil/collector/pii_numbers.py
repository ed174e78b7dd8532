"""Which runs of digits are PII: phone numbers, payment cards, SSNs, IBANs, IP addresses.

A run of digit groups (found by the scan in :mod:`.redact`, whose
alternatives :data:`NUMBERS_ONLY` holds) is read once and each window of
consecutive groups is asked, longest first, whether its digits, grouping,
checksum and surroundings make it one of these kinds. Dates, years,
prices, versions, order and invoice numbers fit none of them and stay
readable. Findings are ``(start, end, kind)`` byte offsets.
"""

from __future__ import annotations

import ipaddress
import re

import re2

Finding = tuple[int, int, str]


def _re2(pattern: bytes) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    options.never_capture = True
    return re2.compile(pattern, options)


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
#: The numbers' alternatives, without IPv6 addresses and with them.
NUMBERS_ONLY = {ip: _re2(_NUMBERS + (b"|" + _IPV6 if ip else b"")) for ip in (False, True)}

_DIGITS = re.compile(r"\d+")
IBAN_SHAPE = re.compile(rb"[A-Z]{2}[0-9]{2}[A-Z0-9 \-]+")
_PHONE_WORDS = re.compile(
    r"(?i)(?:phone|\btel\b|\bcall|mobile|\bcell|fax|whatsapp|\bsms\b|\bdial|telefon|tél|"
    r"teléfono|portable|celular|\bhandy|電話|携帯)"
)
_SSN_WORDS = re.compile(r"(?i)(?:\bssn|social security|soc\.? ?sec)")
_VERSION_WORDS = re.compile(r"(?i)(?:version|\bver\.?|release|build|firmware)\W{0,3}$")
_VERSION_AFTER = re.compile(rb"(?i)[ \t]*(?:release|version|build|update|patch|beta|rc)\b")
_MAX_GROUPS = 7  # "+49 (0) 30 123 456 78": no number we redact has more digit groups
_CARD_GROUPS = ((4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 4, 4, 2))


def _is_word_byte(byte: int) -> bool:
    # ASCII letters, digits and '_'; a non-ASCII byte (Chinese, Japanese...) separates words
    # there, where scripts put no space before a number.
    return byte < 0x80 and (chr(byte).isalnum() or byte == 0x5F)


def numbers_in(data: bytes, start: int, end: int, ip: bool) -> list[Finding]:
    found = []
    for match in NUMBERS_ONLY[ip].finditer(data, start, end):
        a, b = match.span()
        piece = data[a:b]
        if not piece.translate(None, b"0123456789 ./-()+"):
            found.extend(number(data, a, b, ip))
        elif b":" in piece:
            if bounded(data, a, b) and is_ip(piece.decode("ascii")):
                found.append((a, b, "ip"))
        elif bounded(data, a, b):
            iban = iban_at(data, a, b)
            if iban:
                found.append(iban)
    return found


def bounded(data: bytes, start: int, end: int) -> bool:
    """True unless the piece is part of a longer word (INV2024000123, x4111...)."""
    if start and _is_word_byte(data[start - 1]):
        return False
    return not (end < len(data) and _is_word_byte(data[end]))


_ISO_DATE = re.compile(rb"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])")


def number(data: bytes, start: int, end: int, ip: bool) -> list[Finding]:
    """The PII in the run of digit groups ``data[start:end]`` (see :func:`_number_kinds`)."""
    if not bounded(data, start, end):
        return []
    piece = data[start:end]
    # Most digit runs in prose are short numbers and dates: no PII kind has fewer than 7
    # digits but an IPv4 address (three dots), and a lone ISO date is a date. Deciding those
    # here, before a run is read group by group, keeps number-heavy text cheap.
    digits = len(piece) - len(piece.translate(None, b"0123456789"))
    if (digits < 7 and piece.count(b".") < 3) or _ISO_DATE.fullmatch(piece):
        return []
    if piece[:1] == b"+" and b"." not in piece and b"/" not in piece:
        # The common case, "+1 415 555 2671": one international number, its groups split by
        # spaces, dashes or parentheses; read without trying each window.
        groups = piece.count(b" ") + piece.count(b"-") + 1
        tail = _tail(data, start, piece.decode("ascii"))
        if 7 <= digits <= 15 and groups <= _MAX_GROUPS and tail[:1] not in _NOT_AFTER:
            return [(start, end, "phone")]
    return _number_kinds(data, start, end, ip)


def _number_kinds(data: bytes, start: int, end: int, ip: bool) -> list[Finding]:
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
                found.append((start + first, start + run.spans[j][1], kind))
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
        self.sizes = [b - a for a, b in spans]
        self.seps = [text[spans[k][1] : spans[k + 1][0]] for k in range(len(spans) - 1)]
        self.lead = text[: spans[0][0]]
        dated = len(spans) > 2 and any(s in ("-", ".", "/") for s in self.seps)
        self.blocked = _dates(text, spans) if dated else None
        self._context: str | None = None

    def context(self, i: int) -> str:
        """Up to 32 bytes before the run (where "phone:" or "SSN" would be written)."""
        if self._context is None:
            at = self.start + self.spans[i][0]
            before = self.data[max(0, at - 32) : at].rsplit(b"\x00", 1)[-1]  # not another text's
            self._context = before.decode("utf-8", "ignore")
        return self._context

    def kind(self, i: int, j: int) -> str | None:
        sizes = self.sizes[i : j + 1]
        count = sum(sizes)
        if count < 4 or count > 19 or (self.blocked and True in self.blocked[i : j + 1]):
            return None
        seps = self.seps[i:j]
        lead = self.lead if i == 0 else ""
        dotted_quad = len(sizes) == 4 and seps == [".", ".", "."] and not lead
        if count < 7 and not dotted_quad:
            return None
        # What surrounds the window: a dash, dot or slash joining more digits means the
        # window is only part of a longer number (2024-000123, 1.2.3.4.5).
        before = self.seps[i - 1] if i else _byte_str(self.data, self.start - 1)
        after = self.seps[j] if j < len(self.seps) else _tail(self.data, self.start, self.text)
        if before[-1:] in _NOT_BEFORE or after[:1] in _NOT_AFTER:
            return None
        if dotted_quad:
            written = self.text[self.spans[i][0] : self.spans[j][1]]
            if not (self.ip and max(sizes) <= 3 and is_ip(written)):
                return None
            version = _VERSION_WORDS.search(self.context(i)) or _VERSION_AFTER.match(
                self.data, self.start + self.spans[j][1]
            )
            return None if version else "ip"
        if self.continues(i, j):
            return None
        digits = "".join(self.groups[i : j + 1])
        shape = tuple(sizes)
        plus = "+" in lead
        if not plus and count >= 13 and _is_card(digits, shape, seps):
            return "card"
        if not plus and count == 9 and _is_ssn(digits, shape, seps, self.context(i)):
            return "ssn"
        if _is_phone(digits, shape, seps, plus):
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
        return len(set(seps)) == 1 and self.sizes[j + 1] == self.sizes[j]


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


def is_ip(text: str) -> bool:
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


def iban_at(data: bytes, start: int, end: int) -> Finding | None:
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
    return (start, start + stop, "iban") if iban_valid(compact) else None
