"""API keys, tokens and passwords in a text: detect-secrets' formats, checked where they can be.

The token formats come from detect-secrets' plugins (``denylist`` of each
regex-based plugin: AWS, GitHub, GitLab, OpenAI, Slack, Stripe, Twilio,
SendGrid, JWT, npm, PyPI, Azure, IBM, ...), so a new detect-secrets release
brings its new formats. Its keyword list (``password``, ``api_key``,
``secret``, ...) drives the ``key = value`` rule and its Base64 entropy
limit the high-entropy rule. Added here, for what a prompt holds and a
source file rarely does: OpenAI keys of every generation (``sk-proj-``...),
GitHub fine-grained tokens, Google and Hugging Face keys, ``Bearer`` and
``Basic`` credentials, and whole private-key blocks.

Finding them costs one automaton pass, shared with the numbers
(:data:`SCAN`): every token format is a run of 16 or more token characters,
so the pass looks only for such runs, ``key = value`` pairs and
``Bearer ...``; the exact formats (40-odd patterns, whose counted
repetitions would blow up a combined automaton's states on unusual text)
are then asked, as one re2 set, about the few bytes around each run.

The patterns are built on first use (importing detect-secrets takes about
0.3 s), on the flush thread; :func:`load` builds them ahead of time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import re2

log = logging.getLogger("llmvigil.collector")

#: Plugins whose kind is found another way: IP addresses, URL passwords and the keyword,
#: entropy and private-key rules below (built from those plugins' own lists and limits).
_FOUND_ELSEWHERE = {
    "IPPublicDetector",
    "BasicAuthDetector",
    "KeywordDetector",
    "Base64HighEntropyString",
    "HexHighEntropyString",
    "PrivateKeyDetector",
}
#: Token formats detect-secrets 1.5 lacks.
_OWN_TOKENS = (
    rb"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}",  # OpenAI (all), Anthropic
    rb"\bgithub_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained personal access token
    rb"\bAIza[0-9A-Za-z_\-]{35}",  # Google API key
    rb"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face
)
_CREDENTIAL = rb"(?i)(?:bearer|basic|token)[ \t]+([A-Za-z0-9\-._~+/]{8,}=*)"
_HIGH_ENTROPY = rb"[A-Za-z0-9+/_\-]{32,}={0,2}"
#: A run of token characters as long as the shortest token format (an AWS key id has 20).
_TOKEN_RUN = rb"[A-Za-z0-9+/_\-.=:]{16,}"
# key = value: the key holds one of detect-secrets' keywords (or "token"); the value is
# checked in Python (:func:`_keyword_value`), so "the secret is patience" stays readable.
_ASSIGNMENT = (
    rb"[\"'\]]{0,2}[ \t]*(?:=>|:=|==|=|:|[ \t](?:is|was|to)[ \t])[ \t]*"
    rb"(?:\"([^\"\r\n]{1,200})\"|'([^'\r\n]{1,200})'|`([^`\r\n]{1,200})`|([^\s\"'`,;<>]{3,}))"
)
#: Where a private-key block starts, for the scan (:func:`private_keys` takes it from there).
PRIVATE_KEY_HEAD = rb"(?:-----)?BEGIN [A-Z0-9 ]*PRIVATE KEY|PuTTY-User-Key-File"
#: Bytes either side of a token run that a format's context can take ("aws_secret = '...'").
_AROUND = 96

_ready = threading.Lock()
_rules: list[tuple[re2._Regexp, str, Callable[[Any], tuple[int, int] | None]]] = []
_which: re2.Set | None = None
_private_key: re2._Regexp | None = None
_entropy: Callable[[str], float] | None = None
_entropy_limit = 4.5
_loaded = False
#: The scan's alternatives (see :func:`scan_sources`), once loaded.
SCAN: list[bytes] = []


def _options(capture: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    options.never_capture = not capture
    return options


def to_re2(pattern: re.Pattern[str]) -> bytes | None:
    """detect-secrets' Python regex as re2 source, or None when re2 cannot express it.

    Lookarounds only sharpen where a match starts or stops, so they are dropped
    (a few more candidates, each still checked); a lazy tail is made greedy and
    long upper bounds are dropped, so a whole token is redacted, not its first
    50 characters.
    """
    source = pattern.pattern
    if pattern.flags & re.VERBOSE and re.search(r"\s|#", source):
        return None  # a pattern laid out over lines: not worth translating
    source = source.replace("(?:(?<=\\W)|(?<=^))", "").replace("(?!\\w)", "")
    source = re.sub(r"\{(\d{2,}),\d+\}", r"{\1,}", source)
    if source.endswith(("*?", "+?")):
        source = source[:-1]
    if "(?<" in source or "(?=" in source or "(?!" in source:
        return None
    if pattern.flags & re.IGNORECASE:
        source = "(?i)" + source
    encoded = source.encode("utf-8")
    try:
        re2.compile(encoded, _options(True))
    except re2.error:
        return None
    return encoded


def _plugin_patterns() -> list[bytes]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    found = []
    for plugin in get_mapping_from_secret_type_to_class().values():
        if plugin.__name__ in _FOUND_ELSEWHERE:
            continue
        denylist = getattr(plugin, "denylist", ())
        if not isinstance(denylist, list | tuple):
            continue
        for regex in denylist:
            source = to_re2(regex)
            if source is None:
                log.debug("llmvigil: %s pattern not usable with re2, skipped", plugin.__name__)
            else:
                found.append(source)
    return found


def _keywords() -> bytes:
    from detect_secrets.plugins.keyword import DENYLIST

    # detect-secrets writes api_?key; HTTP headers and environment names write API-Key too.
    words = [w.replace("_?", "[_-]?").encode("utf-8") for w in (*DENYLIST, "token", "passphrase")]
    return rb"(?i)[\w.\-]*(?:" + b"|".join(words) + rb")[\w.\-]*" + _ASSIGNMENT


def _private_key_block() -> bytes:
    from detect_secrets.plugins.private_key import PrivateKeyDetector

    heads = b"|".join(re2.escape(r.pattern).encode() for r in PrivateKeyDetector.denylist)
    return (
        rb"(?:-----)?(?:" + heads + rb")[^\x00]*?"
        rb"(?:-----END[A-Z0-9 ]*-----|Private-MAC: [0-9a-f]+|\x00|\z)"
    )


def load() -> None:
    """Build the patterns now (they are built on first use otherwise)."""
    global _loaded, _which, _entropy, _entropy_limit, _private_key
    with _ready:
        if _loaded:
            return
        from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

        checker = Base64HighEntropyString()
        _entropy, _entropy_limit = checker.calculate_shannon_entropy, checker.entropy_limit
        keywords = _keywords()
        rules = [(p, "secret", _token) for p in (*_OWN_TOKENS, *_plugin_patterns())]
        rules += [
            (_CREDENTIAL, "secret", _credential),
            (keywords, "", _keyword_value),
            (_HIGH_ENTROPY, "secret", _high_entropy),
        ]
        which = re2.Set.SearchSet(_options(False))
        for source, _kind, _check in rules:
            which.Add(source)
        which.Compile()
        _rules[:] = [(re2.compile(s, _options(True)), k, c) for s, k, c in rules]
        _which = which
        _private_key = re2.compile(_private_key_block(), _options(False))
        SCAN[:] = [_CREDENTIAL, keywords, _TOKEN_RUN]
        _loaded = True


def scan_sources() -> list[bytes]:
    """The alternatives a scan needs to find every candidate :func:`check` decides on."""
    if not _loaded:
        load()
    return list(SCAN)


def check(data: bytes, start: int, end: int) -> tuple[int, int, str] | None:
    """``(start, end, kind)`` of the key, token or password at ``data[start:end]``, if any.

    ``data[start:end]`` is a match of :func:`scan_sources`. Which exact rules
    match around it is asked of an re2 set, and each such rule's own check
    decides; the first (most specific) that accepts wins.
    """
    if not _loaded:
        load()
    low, high = max(0, start - _AROUND), min(len(data), end + _AROUND)
    for index in sorted(_which.Match(data[low:high]) or ()):
        regex, kind, accept = _rules[index]
        for match in regex.finditer(data, low, high):
            if match.end() <= start or match.start() >= end:
                continue
            span = accept(match)
            if span:
                return (*span, kind or _keyword_kind(match))
    return None


def private_keys(data: bytes, start: int = 0) -> list[tuple[int, int, str]]:
    """The private-key block (PEM, OpenSSH, PGP, PuTTY) that starts at ``data[start:]``,
    header to footer (to the end of the text when its footer is missing)."""
    if not _loaded:
        load()
    match = _private_key.match(data, start)
    return [(*match.span(), "secret")] if match else []


# -- what a rule's match must also satisfy -------------------------------------------------


def _token(match: Any) -> tuple[int, int] | None:
    """The token of a format's match: its first group of 8+ characters, else all of it.

    detect-secrets' groups are sometimes the value (``aws ... = "<key>"``) and
    sometimes only a prefix (``(ghp|gho)_...``). Delimiters its patterns
    include (quotes, ``=``, spaces) are trimmed.
    """
    start, end = match.span()
    for group in range(1, match.re.groups + 1):
        g_start, g_end = match.span(group)
        if g_start >= 0 and g_end - g_start >= 8:
            start, end = g_start, g_end
            break
    text = match.string
    while start < end and text[start] in b" \t\r\n\"'=:":
        start += 1
    while end > start and text[end - 1] in b" \t\r\n\"'":
        end -= 1
    piece = text[start:end]
    # Random tokens hold a digit; an upper-case word such as APACHEKAFKA does not.
    return (start, end) if any(48 <= b <= 57 for b in piece) else None


def _credential(match: Any) -> tuple[int, int] | None:
    value = match.group(1).decode("utf-8", "replace")
    return match.span(1) if looks_random(value) else None


def _high_entropy(match: Any) -> tuple[int, int] | None:
    piece = match.group(0).decode("ascii")
    if not any(c.isdigit() for c in piece) or not any(c.isalpha() for c in piece):
        return None
    return match.span() if _entropy(piece) > _entropy_limit else None


_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*[.!?]?")
_MASKED = re.compile(r"[*xX•.\-_#]+|<[^>]*>?|\$\{.*|\{\{.*|%\(.*|null|none|true|false", re.I)


def looks_random(value: str) -> bool:
    """True if ``value`` reads as a generated credential: 8+ characters with a digit,
    a symbol or an upper-case letter after the first (not "instructions", not "Settings")."""
    if len(value) < 8:
        return False
    inner = value[1:]
    return (
        any(c.isdigit() for c in value)
        or any(not c.isalnum() for c in value)
        or (any(c.isupper() for c in inner) and any(c.islower() for c in inner))
    )


def _keyword_value(match: Any) -> tuple[int, int] | None:
    key = _key_of(match)
    name = key.rstrip(b"\"'] \t=:")
    for word in (b" is", b" was", b" to"):
        name = name.removesuffix(word).rstrip()
    credential = (b"pass", b"pwd", b"secret", b"key", b"contrase")
    if b"token" in key and not name.endswith(b"token") and not any(w in key for w in credential):
        return None  # max_tokens, tokenizer: counts and names, not credentials
    group = next(g for g in (1, 2, 3, 4) if match.start(g) >= 0)
    value = match.group(group).decode("utf-8", "replace")
    if _MASKED.fullmatch(value.strip()):
        return None
    operator = key.rstrip(b" \t")
    prose = operator.endswith((b":", b" is", b" was", b" to"))
    password = _keyword_kind(match) == "password"
    if group < 4:  # quoted
        keep = len(value.strip()) < 4
    elif prose:  # "Password: Reset it in Settings" is a sentence, not a password
        keep = _PLAIN_WORD.fullmatch(value) is not None or not (
            looks_random(value) or (password and len(value) >= 4)
        )
    else:  # key=value, as in code, configuration and URLs
        keep = len(value) < (3 if password else 6)
    return None if keep else match.span(group)


def _key_of(match: Any) -> bytes:
    """What precedes the value in a ``key = value`` match: the key and the operator."""
    first = min(match.start(g) for g in (1, 2, 3, 4) if match.start(g) >= 0)
    text = match.group(0)[: first - match.start()]
    return text.lower().rstrip(b"\"'`")


def _keyword_kind(match: Any) -> str:
    key = _key_of(match)
    if any(word in key for word in (b"pass", b"pwd", b"contrase")):
        return "password"
    return "secret"
