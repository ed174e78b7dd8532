"""Redaction quality: precision and recall per kind of PII on labelled sets of our own.

``benchmarks/data/pii_labelled.jsonl`` (development) and
``benchmarks/data/pii_heldout.jsonl`` (held out) hold one sentence a line,
written for this benchmark (support chats, logs, configuration snippets, RAG
passages): ``{"text": ..., "pii": [{"kind": ..., "value": ...}]}``, where
``value`` is the exact piece of ``text`` that must disappear. Many lines hold
no PII at all and are hard negatives: years, dates, invoice and order
numbers, versions, prices, long non-card numbers, words next to "password"
or "token". The redactor was fixed while looking at the development set's
misses; the held-out set was written afterwards, in other words and formats.

Provider tokens appear in the file as ``{name}`` (``{github}``, ``{stripe}``):
each is expanded here into a made-up token of that provider's format, so the
repository holds nothing a secret scanner would take for a live credential.

Scoring, per kind: a labelled piece is *found* when redaction of that kind
covers all of its characters (a half-redacted key still leaks); a redacted
piece is *correct* when it overlaps a labelled piece of its kind. Recall =
found / labelled; precision = correct / redacted. "Any kind" counts a piece
as found whatever placeholder replaced it, which is what matters for leaks.

Usage::

    python benchmarks/bench_redaction.py [--data FILE ...] [--write]
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _report import header, load_average, write_section

from llmvigil.collector.redact import KINDS, make_redactor

RESULTS = Path(__file__).with_name("RESULTS.md")
DATA = [
    Path(__file__).with_name("data") / "pii_labelled.jsonl",
    Path(__file__).with_name("data") / "pii_heldout.jsonl",
]
PACKAGES = ["llmvigil", "google-re2", "detect-secrets"]
SECTION = "## PII redaction quality"

B62 = string.ascii_letters + string.digits
URLSAFE = B62 + "_-"
HEX = "0123456789abcdef"


def _tokens(seed: int = 17) -> dict[str, str]:
    """A made-up token in each provider's format (same tokens on every run)."""
    rng = random.Random(seed)

    def r(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    key_body = "\n".join(r(B62 + "+/", 70) for _ in range(4))
    return {
        "openai": "sk-" + r(B62, 48),
        "openai_proj": "sk-" + "proj-" + r(URLSAFE, 156),
        "openai_legacy": "sk-" + r(B62, 20) + "T3Blbk" + "FJ" + r(B62, 20),
        "anthropic": "sk-" + "ant-api03-" + r(URLSAFE, 93) + "AA",
        "aws_id": "AK" + "IA" + r(string.ascii_uppercase + string.digits, 16),
        "aws_secret": r(B62 + "/+", 40),
        "github": "gh" + "p_" + r(B62, 36),
        "github_pat": "github" + "_pat_" + r(B62, 22) + "_" + r(B62, 59),
        "gitlab": "gl" + "pat-" + r(URLSAFE, 20),
        "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + r(URLSAFE, 40) + "." + r(URLSAFE, 43),
        "bearer": r(B62, 32),
        "slack": "xo"
        + "xb-"
        + r(string.digits, 12)
        + "-"
        + r(string.digits, 13)
        + "-"
        + r(string.ascii_lowercase + string.digits, 24),
        "slack_hook": "https://hooks.slack.com/services/T"
        + r(B62.upper(), 8)
        + "/B"
        + r(B62.upper(), 8)
        + "/"
        + r(B62, 24),
        "stripe": "sk" + "_live_" + r(B62, 24),
        "sendgrid": "S" + "G." + r(URLSAFE, 22) + "." + r(URLSAFE, 43),
        "pypi": "py" + "pi-AgEIcHlwaS5vcmc" + r(URLSAFE, 80),
        "npm": "np" + "m_" + r(B62, 36),
        "telegram": r(string.digits, 9) + ":" + r(URLSAFE, 35),
        "twilio": "A" + "C" + r(HEX, 32),
        "twilio_secret": r(HEX, 32),
        "google": "AI" + "za" + r(URLSAFE, 35),
        "hf": "h" + "f_" + r(string.ascii_letters, 34),
        "azure": r(B62 + "+/", 86) + "==",
        "client_secret": r(B62, 40),
        "access_token": r(B62, 40),
        "api_key_hex": r(HEX, 32),
        "django": r(string.ascii_lowercase + string.digits + "!@#$%^&*(-_=+)", 50),
        "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + key_body
        + "\n-----END OPENSSH PRIVATE KEY-----",
        "dd": r(HEX, 32),
        "rails": r(HEX, 128),
        "authkey": r(B62, 40),
        "discord": "M" + r(URLSAFE, 23) + "." + r(URLSAFE, 6) + "." + r(URLSAFE, 27),
        "mailchimp": r(HEX, 32) + "-us" + r(string.digits, 2),
    }


def load(path: Path) -> list[dict[str, Any]]:
    """The labelled lines, provider tokens expanded."""
    tokens = _tokens()

    def expand(text: str) -> str:
        for name, value in tokens.items():
            text = text.replace("{" + name + "}", value)
        return text

    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        item = json.loads(raw)
        text = expand(item["text"])
        pieces, cursor = [], 0
        for pii in item["pii"]:
            value = expand(pii["value"])
            start = text.index(value, cursor)
            pieces.append((start, start + len(value), pii["kind"]))
            cursor = start + len(value)
        lines.append({"line": number, "text": text, "pii": pieces})
    return lines


def spans_of(found: list[tuple[str, str]], text: str) -> list[tuple[int, int, str]]:
    """Character spans of the redactor's ``(kind, piece)`` findings, which come in order."""
    spans, cursor = [], 0
    for kind, piece in found:
        start = text.index(piece, cursor)
        spans.append((start, start + len(piece), kind))
        cursor = start + len(piece)
    return spans


def _covered(start: int, end: int, spans: list[tuple[int, int, str]]) -> bool:
    chars = set(range(start, end))
    for a, b, _ in spans:
        chars -= set(range(a, b))
    return not chars


def _overlaps(a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(lines: list[dict[str, Any]]) -> dict[str, Any]:
    redactor = make_redactor()
    labelled, found, redacted, correct = Counter(), Counter(), Counter(), Counter()
    found_any = 0
    misses, false_alarms = [], []
    predictions = [spans_of(redactor.find(line["text"]), line["text"]) for line in lines]
    t0 = time.perf_counter()  # timed again, warm: re2 builds its automata's states on first use
    for line in lines:
        redactor(line["text"])
    elapsed = time.perf_counter() - t0
    negatives_changed = 0
    for line, predicted in zip(lines, predictions, strict=True):
        text = line["text"]
        if not line["pii"] and predicted:
            negatives_changed += 1
        for start, end, kind in line["pii"]:
            labelled[kind] += 1
            same = [p for p in predicted if p[2] == kind]
            if _covered(start, end, same):
                found[kind] += 1
            else:
                misses.append((line["line"], kind, text[start:end], predicted, text))
            found_any += _covered(start, end, predicted)
        for p in predicted:
            redacted[p[2]] += 1
            if any(_overlaps(p, t) and t[2] == p[2] for t in line["pii"]):
                correct[p[2]] += 1
            else:
                false_alarms.append((line["line"], p[2], text[p[0] : p[1]], text))
    return {
        "lines": len(lines),
        "negative_lines": sum(1 for line in lines if not line["pii"]),
        "negatives_changed": negatives_changed,
        "labelled": labelled,
        "found": found,
        "found_any": found_any,
        "redacted": redacted,
        "correct": correct,
        "misses": misses,
        "false_alarms": false_alarms,
        "us_per_line": elapsed / len(lines) * 1e6,
    }


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "—"


def markdown(result: dict[str, Any]) -> str:
    labelled, found, redacted, correct = (
        result["labelled"],
        result["found"],
        result["redacted"],
        result["correct"],
    )
    lines = [
        "| Kind | Labelled | Redacted | Precision | Recall |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        lines.append(
            f"| {kind} | {labelled[kind]} | {redacted[kind]} "
            f"| {_ratio(correct[kind], redacted[kind])} | {_ratio(found[kind], labelled[kind])} |"
        )
    total_l, total_r = sum(labelled.values()), sum(redacted.values())
    total_c, total_f = sum(correct.values()), sum(found.values())
    lines.append(
        f"| **all kinds** | {total_l} | {total_r} | **{_ratio(total_c, total_r)}** "
        f"| **{_ratio(total_f, total_l)}** |"
    )
    lines += [
        "",
        f"- Any kind (a piece counts as removed whatever placeholder replaced it): recall "
        f"**{_ratio(result['found_any'], total_l)}** ({result['found_any']} of {total_l}).",
        f"- Hard negatives (lines with no PII): **{result['negatives_changed']}** of "
        f"{result['negative_lines']} changed by redaction.",
        f"- {result['us_per_line']:.1f} µs per line (one sentence) on average.",
    ]
    if result["misses"]:
        lines += ["", "Missed (labelled piece not fully redacted as its kind):", ""]
        for number, kind, piece, predicted, _text in result["misses"]:
            got = ", ".join(sorted({p[2] for p in predicted})) or "nothing"
            lines.append(f"- line {number}, {kind}: `{_short(piece)}` (redacted: {got})")
    if result["false_alarms"]:
        lines += ["", "Redacted but not labelled as that kind:", ""]
        for number, kind, piece, _text in result["false_alarms"]:
            lines.append(f"- line {number}, as {kind}: `{_short(piece)}`")
    return "\n".join(lines)


def _short(piece: str) -> str:
    piece = piece.replace("\n", "\\n").replace("`", "'")
    return piece if len(piece) <= 40 else piece[:18] + "…" + piece[-12:]


def section(results: list[tuple[Path, dict[str, Any]]], command: str, load_span: tuple) -> str:
    lines = [
        *header(SECTION, command, PACKAGES, load_span),
        "",
        "Default settings (PII and IP redaction on). A labelled piece is found when redaction "
        "of its kind covers all of its characters; a redaction is correct when it overlaps a "
        "labelled piece of its kind. The redactor was fixed while looking at the development "
        "set's misses, so its figures below say little about new text: its first run gave "
        "precision 0.980 and recall 0.970, with 4 of its 138 hard negatives changed. The "
        "held-out set was written after those fixes, in other words and formats; its first "
        "run gave precision 1.000 and recall 0.986 (it missed a `#` in a URL's password, "
        "fixed since). Neither set is large: a few dozen pieces of each kind at most.",
    ]
    for path, result in results:
        lines += [
            "",
            f"### `{path.name}`: {result['lines']} lines, {result['negative_lines']} of them "
            "hard negatives",
            "",
            markdown(result),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, nargs="+", default=DATA, help="labelled JSONL files")
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in RESULTS.md")
    args = parser.parse_args()
    load_before = load_average()
    make_redactor()("warm up: load the patterns")
    results = [(path, score(load(path))) for path in args.data]
    command = "python benchmarks/bench_redaction.py"
    text = section(results, command, (load_before, load_average()))
    print(text)
    if args.write:
        write_section(RESULTS, SECTION, text)
        print(f"updated {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
