"""What redaction removes, what it leaves readable, and that every stored field passes it.

Provider tokens are assembled at run time from their parts, so this file holds
no string a secret scanner would take for a live credential.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llmvigil
from llmvigil.collector.redact import iban_valid, luhn_valid, make_redactor
from llmvigil.config import load_settings
from llmvigil.storage import Store

ALNUM = "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xYz"


def token(prefix: str, length: int, alphabet: str = ALNUM) -> str:
    """A made-up token: ``prefix`` then ``length`` characters of ``alphabet``."""
    return prefix + (alphabet * (length // len(alphabet) + 1))[:length]


JWT = ".".join(
    [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvIn0",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ]
)
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2\n"
    "bPxRfiCYEXAMPLEKEYb3JpZ2luYWwgd29yZA==\n-----END RSA PRIVATE KEY-----"
)

# (kind, text, the piece that must disappear); each survived the old redactor.
MUST_GO = [
    ("openai", "use {} for the calls", token("sk-", 48)),
    ("openai project", "OPENAI_API_KEY={}", token("sk-" + "proj-", 120)),
    ("openai legacy", "key: {}", token("sk-", 20) + "T3Blbk" + "FJ" + token("", 20)),
    ("aws key id", "aws_access_key_id = {}", "AKIA" + "IOSFODNN7EXAMPLE"),
    ("aws key id in prose", "the key {} leaked", "ASIA" + "XY7QW2ZK3M4N5P6R"),
    ("aws secret", "aws_secret_access_key = {}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("aws secret quoted", "aws_secret = '{}'", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("github classic", "token {} expired", token("gh" + "p_", 36)),
    ("github fine-grained", "GH_TOKEN={}", token("github" + "_pat_", 82)),
    ("gitlab", "CI uses {}", token("gl" + "pat-", 20)),
    ("jwt", "cookie session={}", JWT),
    ("bearer", "Authorization: Bearer {}", "mF_9.B5f-4.1JqM"),
    ("basic", "Authorization: Basic {}", "dXNlcjpwYXNzd29yZA=="),
    ("slack", "bot {}", "xox" + "b-123456789012-1234567890123-" + token("", 24).lower()),
    ("stripe", "charge with {}", token("sk" + "_live_", 24)),
    ("sendgrid", "mail via {}", "SG." + token("", 22) + "." + token("", 43)),
    ("pypi", "upload with {}", "pypi-" + "AgEIcHlwaS5vcmc" + token("", 80)),
    ("telegram", "bot {} online", "123456789:" + token("AA", 33)),
    ("private key", "key file:\n{}\nend", PRIVATE_KEY),
    ("password in url, host without a dot", "postgresql://admin:{}@db:5432/x", "s3cr3t-pw"),
    ("password in url with @", "redis://:{}@cache:6379/0", "p@ss:w0rd"),
    ("password assignment", "DB_PASSWORD={} ./run", "hunter2"),
    ("password in json", '{{"password": "{}"}}', "correct horse"),
    ("password in prose", "my password is {}, please reset it", "Tr0ub4dor&3"),
    ("api key assignment", "api_key: {}", "a1b2c3d4e5f6g7h8"),
    ("high entropy string", "export TOKEN_X={}", "Zx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0Lz"),
    ("iban de", "pay to {} today", "DE89 3704 0044 0532 0130 00"),
    ("iban gb compact", "IBAN: {}.", "GB29NWBK60161331926819"),
    ("iban fr", "RIB {}", "FR14 2004 1010 0505 0001 3M02 606"),
    ("ssn", "SSN {} on file", "123-45-6789"),
    ("ssn with context", "social security number {}", "123456789"),
    ("e164", "call {} now", "+4915112345678"),
    ("e164 grouped", "call {} now", "+33 6 12 34 56 78"),
    ("fr national", "appelez le {}", "01 23 45 67 89"),
    ("fr dotted", "tél. {}", "06.12.34.56.78"),
    ("in mobile", "whatsapp {}", "98765 43210"),
    ("in with country code", "reach me on {}", "+91-98765-43210"),
    ("au landline", "ring {} after 9", "(02) 9876 5432"),
    ("au mobile", "mobile {}", "0412 345 678"),
    ("uk mobile", "text {} tonight", "07700 900123"),
    ("uk mobile bare", "text {} tonight", "07700900123"),
    ("uk with trunk", "from abroad {}", "+44 (0)20 7946 0958"),
    ("de", "Telefon {}", "030 12345678"),
    ("jp mobile", "携帯 {}", "090-1234-5678"),
    ("international 00", "dial {}", "0044 20 7946 0958"),
    ("phone after a word", "phone: {}", "4155552671"),
    ("ipv4", "login from {} failed", "203.0.113.42"),
    ("ipv4 with port", "connect to {}:5432", "10.0.0.12"),
    ("ipv6", "client {} connected", "2001:db8:85a3::8a2e:370:7334"),
    ("ipv6 full", "peer {}", "fe80:0000:0000:0000:0202:b3ff:fe1e:8329"),
    ("card amex", "amex {}", "3782 822463 10005"),
]


@pytest.mark.parametrize(("kind", "template", "piece"), MUST_GO, ids=[c[0] for c in MUST_GO])
def test_each_kind_is_redacted(kind: str, template: str, piece: str) -> None:
    text = template.format(piece)
    redacted = make_redactor()(text)
    assert piece not in redacted, redacted
    # What surrounds the piece stays as it was.
    before, after = template.split("{}")
    assert redacted.startswith(before.replace("{{", "{")), redacted
    assert redacted.endswith(after.replace("}}", "}")), redacted


def test_a_password_in_a_url_is_replaced_and_the_url_stays_readable() -> None:
    redact = make_redactor()
    assert redact("postgresql://admin:pw@db:5432/x") == "postgresql://admin:[PASSWORD]@db:5432/x"
    assert redact("see https://jo:hunter2@example.com/a?b=c") == (
        "see https://jo:[PASSWORD]@example.com/a?b=c"
    )


def test_placeholders_name_the_kind() -> None:
    redact = make_redactor()
    assert redact("DE89 3704 0044 0532 0130 00 / 123-45-6789 / 203.0.113.42") == (
        "[IBAN] / [SSN] / [IP]"
    )
    assert redact("mail jo@example.com, call +1 415 555 2671, card 4111 1111 1111 1111") == (
        "mail [EMAIL], call [PHONE], card [CARD]"
    )
    assert redact("key " + token("sk-", 40)) == "key [SECRET]"


READABLE = [
    "the years 1999 2000 2001",
    "invoice 2024-000123",
    "invoice INV-2024-000123 and order #88213 of 2024-03-15",
    "on 2026-11-24 at 10:15, total 1,234.56",
    "dates 15.03.2024, 03/15/2024, 2024/03/15, 15-03-24 and 2024-03-15T10:30:00Z",
    "from 2024-03-15 10 people came, on 01/02/2024 12 more",
    "at 10:15:30.250 UTC, 23:59 and 7 pm",
    "version 1.2.3, v2.14.1.3, release 10.0.0.1, python 3.11.7, chrome 120.0.6099.109",
    "prices $1,299.99, €45.00, 1 234 567,89 EUR, ¥12000, 15% off, 3.5x faster",
    "order 4111 1111 1111 1112 shipped",  # a card number's length, but not Luhn-valid
    "order 7992739871312345 and account 1234567890123456",  # Luhn-valid, no card prefix
    "population 8 000 000 000 and 1 234 567 890 and 10 000 000",
    "timestamps 1700000000 and 1731426382000",
    "ISBN 978-3-16-148410-0, ISSN 0317-8471, DOI 10.1000/182",
    "coordinates 48.8566, 2.3522 and -33.8688, 151.2093",
    "uuid 123e4567-e89b-12d3-a456-426614174000 and sha 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "max_tokens=256, prompt_tokens: 1000, tokenizer: cl100k_base, total tokens 1500",
    "Password: Reset it from the Settings page. The secret is patience.",
    "the api_key parameter is required; set password to your own",
    "MAC 00:1A:2B:3C:4D:5E, std::vector<int>, Foo::bar() and 12:30:45",
    "http://localhost:8080/path?id=12345 and https://example.com/docs/getting-started",
    "user@localhost and @mentions and email me at jo [at] example [dot] com",
    "zip 94103-1234, route 66, room 101, 3 x 4 = 12, pi 3.14159265358979",
    "PLACE-APACHEKAFKA-2024 and APPLICATIONS",
    "risk-adjusted-return-on-capital-2024 and task-management-framework-v2",
    "the bearer of this letter and basic instructions",
    "Chapter 12 (pp. 231-245) and sections 1.2.3.4.5",
    "call 911 or 112",
]


@pytest.mark.parametrize("text", READABLE)
def test_numbers_dates_and_words_that_are_not_pii_stay_readable(text: str) -> None:
    assert make_redactor()(text) == text


def test_several_numbers_in_one_run_are_told_apart() -> None:
    redact = make_redactor()
    assert redact("years 1999 2000 2001 4111 1111 1111 1111") == "years 1999 2000 2001 [CARD]"
    assert redact("call 0612345678 or 0698765432") == "call [PHONE] or [PHONE]"
    assert redact("on 2024-03-15 +33 6 12 34 56 78") == "on 2024-03-15 [PHONE]"


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")  # a character short for Germany
    redact = make_redactor()
    assert redact("DE89 3704 0044 0532 0130 01") == "DE89 3704 0044 0532 0130 01"


def test_your_patterns_still_work_with_and_without_pii() -> None:
    # RE2 has no lookbehind: a group says which part of the match to redact.
    redact = make_redactor([r"ACCT-\d{8}", r"ref (\w+)"])
    assert (
        redact("ACCT-12345678 and 555-867-5309, ref Z9") == "[REDACTED] and [PHONE], ref [REDACTED]"
    )
    assert make_redactor([r"id=(\d+)|x"])("id=42 x") == "id=[REDACTED] x"  # group 1 not in "x"
    with pytest.raises(ValueError, match="not a valid RE2"):
        make_redactor([r"(?<=ref )\w+"])
    assert make_redactor([], pii=False) is None
    assert make_redactor(["x+"], pii=False)("a@b.co xx") == "a@b.co [REDACTED]"


def test_the_ip_switch() -> None:
    assert make_redactor(ip=False)("from 203.0.113.42 and ::1") == "from 203.0.113.42 and ::1"
    assert make_redactor()("from 203.0.113.42 and fe80::1") == "from [IP] and [IP]"


def test_identifiers_get_a_distinct_stable_pseudonym() -> None:
    redactor = make_redactor()
    ana, bob = redactor.pseudonym("ana@example.com"), redactor.pseudonym("bob@example.com")
    assert ana.startswith("[EMAIL:") and bob.startswith("[EMAIL:") and ana != bob
    assert make_redactor().pseudonym("ana@example.com") == ana  # stable across redactors
    assert redactor.pseudonym("user-42") == "user-42"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_redacted_without_error_and_without_growing_unboundedly(text: str) -> None:
    redactor = make_redactor(["[0-9]{3}"])
    for redact in (redactor, redactor.pseudonym):
        out = redact(text)
        assert isinstance(out, str)
        assert len(out) <= 20 * len(text) + 20


def test_a_conversation_sent_again_is_not_scanned_again_and_reads_the_same() -> None:
    import llmvigil.collector.redact as redact_module

    redactor = make_redactor()
    history = [f"turn {i}: mail me at ana{i}@example.com " + "filler " * 60 for i in range(30)]
    first = redactor.many(history)
    assert all("[EMAIL]" in text and "example.com" not in text for text in first)
    assert redactor.many(history) == first  # the same objects: remembered
    copies = [text.encode().decode() for text in history]  # equal, other objects
    assert redactor.many(copies) == first
    assert redactor.many(history, pseudonyms=True)[0].count("[EMAIL:") == 1
    limit = redact_module._REMEMBER_CHARS
    assert 0 < redactor._seen_chars <= limit
    redactor.many(["x" * 300_000 + f" {i}@example.com" for i in range(10)])
    assert redactor._seen_chars <= limit  # the oldest were let go


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "4111 1111 1111 1111",
                "a@b.co",
                "+33 6 12 34 56 78",
                " ",
                "2024-03-15",
                "::",
                "sk-",
                "password=",
                ".",
                "-",
                "1",
                "@",
            ]
        ),
        max_size=40,
    )
)
def test_pieces_of_pii_glued_together_never_raise(pieces: list[str]) -> None:
    text = "".join(pieces)
    out = make_redactor()(text)
    assert len(out) <= 20 * len(text) + 20


def test_a_spans_texts_redacted_together_read_as_redacted_alone() -> None:
    redactor = make_redactor([r"ACCT-\d+"])
    texts = [
        "call +33 6 12 34 56 78",
        "x",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA",  # no footer: ends with its text
        "next 4111 1111 1111 1111 ACCT-12",
        "phone",
        "4155552671",  # "phone" ends the previous text: not this one's context
        "ip 10.0.0.1",
    ]
    assert redactor.many(texts) == [redactor(t) for t in texts]
    assert redactor.many(texts)[2:4] == ["[SECRET]", "next [CARD] [REDACTED]"]
    assert redactor.many(texts, pseudonyms=True) == [redactor.pseudonym(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=60)
        | st.sampled_from(["jo@example.com", "+33 6 12 34 56 78", "password=hunter2", "1.2.3.4"]),
        max_size=8,
    )
)
def test_many_texts_at_once_equal_one_at_a_time(texts: list[str]) -> None:
    redactor = make_redactor()
    assert redactor.many(texts) == [redactor(t) for t in texts]


# -- through the collector ---------------------------------------------------------------


def only_row(store: Store) -> dict:
    assert llmvigil.flush(timeout=10)
    (row,) = store.spans(limit=None)
    return row


def test_ids_tags_and_metadata_are_redacted_and_users_stay_apart(collect: Store) -> None:
    @llmvigil.observe(tags=["customer:ana@example.com"], metadata={"phone": "+33 6 12 34 56 78"})
    def ask(q: str) -> str:
        llmvigil.attach(metadata={"ana@example.com": {"card": "4111 1111 1111 1111"}})
        return "ok"

    for user in ("ana@example.com", "bob@example.com"):
        with llmvigil.context(user_id=user, session_id=f"{user}/1", tags=["ip 203.0.113.42"]):
            ask("hi")
    assert llmvigil.flush(timeout=10)
    rows = collect.spans(limit=None)
    assert len(rows) == 2
    users = {r["user_id"] for r in rows}
    assert len(users) == 2 and all(u.startswith("[EMAIL:") for u in users)
    assert all(
        r["session_id"].startswith("[EMAIL:") and r["session_id"].endswith("]/1") for r in rows
    )
    for row in rows:
        stored = repr(row)
        assert "example.com" not in stored and "4111" not in stored and "203.0.113" not in stored
        assert row["metadata"]["phone"] == "[PHONE]"
        (key,) = [k for k in row["metadata"] if k.startswith("[EMAIL:")]
        assert row["metadata"][key] == {"card": "[CARD]"}
        assert row["tags"][0].startswith("customer:[EMAIL:") and row["tags"][1].startswith(
            "ip [IP:"
        )


def test_openai_message_objects_in_the_conversation_are_redacted(collect: Store) -> None:
    from openai.types.chat import ChatCompletionMessage

    @dataclasses.dataclass
    class Turn:
        role: str
        content: str

    @llmvigil.observe
    def chat(messages: list) -> str:
        return "noted"

    reply = ChatCompletionMessage(role="assistant", content="I will call you on +44 20 7946 0958.")
    with llmvigil.context(metadata={"last_reply": reply}):
        chat(
            [
                {"role": "user", "content": "I am ana@example.com"},
                reply,
                Turn("user", "my card is 4111 1111 1111 1111"),
            ]
        )
    metadata = only_row(collect)["metadata"]
    assert metadata["last_reply"]["content"] == "I will call you on [PHONE]."
    messages = metadata["messages"]
    assert messages[0] == {"role": "user", "content": "I am [EMAIL]"}
    assert (
        messages[1]["content"] == "I will call you on [PHONE]."
        and messages[1]["role"] == "assistant"
    )
    assert messages[2] == {"role": "user", "content": "my card is [CARD]"}


def test_every_text_column_is_redacted(collect: Store) -> None:
    @llmvigil.observe(context_arg="docs", reference_arg="expected")
    def ask(q: str, docs: list, expected: str) -> str:
        raise RuntimeError("auth failed for " + token("gh" + "p_", 36))

    with pytest.raises(RuntimeError):
        ask("IBAN DE89 3704 0044 0532 0130 00?", ["SSN 123-45-6789"], "see 203.0.113.42")
    row = only_row(collect)
    assert row["input_text"] == "IBAN [IBAN]?"
    assert row["context"] == ["SSN [SSN]"]
    assert row["reference"] == "see [IP]"
    assert row["error_message"] == "auth failed for [SECRET]"


def test_redact_ip_false_in_the_config_file_keeps_addresses(tmp_path) -> None:
    config = tmp_path / "llmvigil.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [store]
            url = "duckdb:///{tmp_path / "store.duckdb"}"
            [collector]
            sink = "direct"
            redact_ip = false
            """
        )
    )
    settings = load_settings(config)
    assert settings.collector.redact_ip is False
    llmvigil.configure(settings)
    try:

        @llmvigil.observe
        def ask(q: str) -> str:
            return "ok"

        ask("from 203.0.113.42, mail ana@example.com")
        assert llmvigil.flush(timeout=10)
    finally:
        llmvigil.shutdown()
    store = Store(settings.store.url)
    try:
        (row,) = store.spans(limit=None)
    finally:
        store.close()
    assert row["input_text"] == "from 203.0.113.42, mail [EMAIL]"


def test_a_match_that_ends_inside_a_character_redacts_the_whole_character() -> None:
    # Found by hypothesis: the domain's non-ASCII label stopped inside "ࠀ" (3 bytes in UTF-8),
    # and the cut text no longer decoded.
    from llmvigil.collector.redact import make_redactor

    redact = make_redactor()
    assert redact("0@0.\x80ࠀ0") == "[EMAIL]0"
    assert redact("mail jo@例え.テスト, thanks") == "mail [EMAIL], thanks"
