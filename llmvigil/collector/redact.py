"""PII redaction: e-mail addresses, phone numbers, card numbers (Luhn-checked) and your patterns.

Runs on the flush thread, on every text a span stores. A digit run is a card
number only if it has 13 to 19 digits and passes the Luhn check, so order
numbers and timestamps stay readable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by single spaces or dashes.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# International (+44 20 7946 0958) or grouped national (555-867-5309, (555) 867 5309) numbers.
PHONE = re.compile(
    r"(?<![\w+])(?<!\d[\s.-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])"
    r"\d{3,4}[\s.-]?\d{3,4}(?!\w)(?![\s.-]\d)"
)


_DIGIT = re.compile(r"\d")

#: What each kind of redacted text becomes in stored spans.
PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "pattern": "[REDACTED]"}


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


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return PLACEHOLDERS["card"] if luhn_valid(digits) else match.group(0)


def make_redactor(
    extra_patterns: Sequence[str] = (), pii: bool = True
) -> Callable[[str], str] | None:
    """A function that redacts PII (when ``pii``) and ``extra_patterns`` (as ``[REDACTED]``).

    None when there is nothing to redact.

    Example::

        redact = make_redactor([r"ACCT-\\d{8}"])
        redact("mail jo@example.com about ACCT-12345678")
        # 'mail [EMAIL] about [REDACTED]'
    """
    extras = [re.compile(p) for p in extra_patterns]
    if not pii and not extras:
        return None

    def redact(text: str) -> str:
        if pii:
            if "@" in text:
                text = EMAIL.sub(PLACEHOLDERS["email"], text)
            if _DIGIT.search(text):
                text = CARD.sub(_card, text)
                text = PHONE.sub(PLACEHOLDERS["phone"], text)
        for pattern in extras:
            text = pattern.sub(PLACEHOLDERS["pattern"], text)
        return text

    return redact
