"""Each channel against a real server on 127.0.0.1: SMTP with STARTTLS and login (aiosmtpd),
Slack's incoming-webhook protocol, a signed webhook; failures and recovery."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from llmvigil.alerts.check import check_alerts
from llmvigil.config import Settings
from llmvigil.storage import schema
from llmvigil.storage.store import Store
from tests.alerts.receivers import Receiver
from tests.alerts.test_check import minute, spans

USER, PASSWORD = "alerts", "pa55word"


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made here (no network, no openssl CLI)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


@pytest.fixture
def smtp(tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535

    mailbox = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    yield mailbox, port, cert
    controller.stop()


def _config(slack: Receiver, hook: Receiver, port: int, cert: Path, **channel) -> Settings:
    return Settings.model_validate(
        {
            "alerting": {"retry_base_s": 0.01},
            "channels": {
                "mail": {
                    "type": "email", "host": "127.0.0.1", "port": port, "starttls": True,
                    "ca_file": str(cert), "username_env": "SMTP_USER",
                    "password_env": "SMTP_PASSWORD", "from": "llmvigil@example.com",
                    "to": ["oncall@example.com"], **channel,
                },
                "slack": {"type": "slack", "webhook_url_env": "SLACK_URL"},
                "ops": {"type": "webhook", "url": hook.url, "timeout_s": 0.5},
            },
            "alerts": [
                {"name": "slow", "metric": "latency_ms.p95", "threshold": 1500,
                 "channels": ["mail", "slack", "ops"]}
            ],
        }
    )  # fmt: skip


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)


def _slow_store(path: Path) -> Store:
    store = Store(f"duckdb:///{path}")
    rows = spans(0, 30, "gpt-4o", 3000)
    rows[0]["input_text"] = "<script>alert('x')</script> & why so slow?"
    rows[0]["latency_ms"] = 3500.0  # the slowest: the first example of every message
    store.append_spans(rows)
    return store


def test_email_slack_and_webhook_each_get_one_firing_and_one_resolved(
    tmp_path, smtp, env, monkeypatch
) -> None:
    mailbox, port, cert = smtp
    with Receiver(ok_body=b"ok") as slack, Receiver() as hook:
        monkeypatch.setenv("SLACK_URL", slack.url)
        config = _config(slack, hook, port, cert)
        with _slow_store(tmp_path / "s.duckdb") as store:
            report = check_alerts(store, config, at=minute(10))
            assert report.delivered == 3, report
            check_alerts(store, config, at=minute(11))
            check_alerts(store, config, at=minute(45))  # no spans after 30: no data, firing kept
            store.append_spans(spans(45, 60, "gpt-4o", 100))
            resolved = check_alerts(store, config, at=minute(60))
            assert resolved.delivered == 3
    assert len(mailbox.messages) == 2 and len(slack.requests) == 2 and len(hook.requests) == 2
    first = message_from_bytes(mailbox.messages[0], policy=policy.default)
    assert first["Subject"].startswith("FIRING slow")
    text = first.get_body(("plain",)).get_content()
    page = first.get_body(("html",)).get_content()
    assert "<script>" in text and "<script>" not in page and "&lt;script&gt;" in page
    message = slack.requests[0]["body"]
    assert message["text"].startswith("FIRING slow") and message["blocks"][0]["type"] == "section"
    assert "<script>" not in str(message["blocks"])  # mrkdwn control characters escaped
    assert slack.requests[1]["body"]["text"].startswith("RESOLVED slow")


def test_a_wrong_password_a_refused_connection_and_a_timeout_are_recorded_and_retried(
    tmp_path, smtp, env, monkeypatch
) -> None:
    mailbox, port, cert = smtp
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("SLACK_URL", f"http://127.0.0.1:{closed}/hook")
    with Receiver() as hook:
        hook.script = [("slow", 2)]  # longer than the channel's timeout_s = 0.5
        config = _config(hook, hook, port, cert)
        with _slow_store(tmp_path / "s.duckdb") as store:
            started = time.perf_counter()
            first = check_alerts(store, config, at=minute(10))
            took = time.perf_counter() - started
            assert first.delivered == 0
            assert took < 5  # the channels were tried side by side, none waited on another
            with store.engine.connect() as conn:
                rows = {r.channel: r for r in conn.execute(sa.select(schema.alert_deliveries))}
            assert "535" in rows["mail"].last_error or "auth" in rows["mail"].last_error.lower()
            assert "could not reach" in rows["slack"].last_error
            assert "timed out" in rows["ops"].last_error
            assert all(r.status == "pending" and r.attempts == 1 for r in rows.values())
            # The password is fixed and the others come back: the next check delivers all.
            monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
            with Receiver(ok_body=b"ok") as slack:
                monkeypatch.setenv("SLACK_URL", slack.url)
                time.sleep(0.05)
                again = check_alerts(store, config, at=minute(11))
                assert again.delivered == 3 and len(slack.requests) == 1
    assert len(mailbox.messages) == 1


def test_an_apprise_channel_reaches_its_url(tmp_path) -> None:
    """Apprise's json:// service posts to a real receiver on 127.0.0.1."""
    with Receiver() as receiver:
        config = Settings.model_validate(
            {
                "channels": {
                    "many": {"type": "apprise", "urls": [f"json://127.0.0.1:{receiver.port}/hook"]}
                },
                "alerts": [{"name": "slow", "metric": "latency_ms.p95", "threshold": 1500,
                            "channels": ["many"]}],
            }
        )  # fmt: skip
        with _slow_store(tmp_path / "s.duckdb") as store:
            assert check_alerts(store, config, at=minute(10)).delivered == 1
    (request,) = receiver.requests
    assert request["body"]["title"].startswith("FIRING slow")
    assert "Example spans" in request["body"]["message"]
