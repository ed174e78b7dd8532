"""Where notifications go: log, webhook, Slack, e-mail and Apprise, one send per call.

Each sender takes a channel's settings, the payload and the delivery's
idempotency key, and returns a :class:`Sent` or raises :class:`DeliveryError`
(with ``retry_after`` when the receiver asked for a pause). Retrying,
backoff and recording are :mod:`.deliver`'s job, so a sender does one
attempt within the channel's ``timeout_s``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from llmvigil.config import ChannelSettings
from llmvigil.errors import LlmvigilError

log = logging.getLogger("llmvigil.alerts")

#: Slack refuses a section's text over 3,000 characters.
_SLACK_TEXT = 2_900


class DeliveryError(LlmvigilError):
    """One attempt to deliver failed; ``retry_after`` is the receiver's requested pause."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Sent:
    """A delivered notification: the receiver's status code, if it has one."""

    status: int | None = None


def summary(payload: dict[str, Any]) -> str:
    """One line: ``FIRING slow-answers (model=gpt-4o): latency_ms.p95 = 2,310 > 1,500 over 10m``."""
    group = f" ({payload['group_key']})" if payload.get("group_key") else ""
    value = payload.get("value")
    shown = "no value" if value is None else f"{value:,.4g}"
    op = "change" if payload.get("op") == "change_pct" else payload.get("op")
    return (
        f"{payload['state'].upper()} {payload['rule']}{group}: {payload['metric']} = {shown} "
        f"{op} {payload['threshold']:,.4g} over {payload['window']} [{payload['severity']}]"
    )


def _example_lines(payload: dict[str, Any]) -> list[str]:
    lines = []
    for example in payload.get("examples") or []:
        score = f" ({example['value']:.3g})" if example.get("value") is not None else ""
        lines.append(f"- {example['span_id']}{score}: {example.get('input') or ''}")
        if example.get("output"):
            lines.append(f"  -> {example['output']}")
    return lines


def plain_text(payload: dict[str, Any]) -> str:
    """The notification as plain text: summary, times, example spans."""
    lines = [summary(payload)]
    if payload.get("fired_at"):
        lines.append(f"fired at {payload['fired_at']} UTC")
    if payload.get("resolved_at"):
        lines.append(f"resolved at {payload['resolved_at']} UTC")
    examples = _example_lines(payload)
    if examples:
        lines += ["", "Example spans:", *examples]
    return "\n".join(lines)


def send(name: str, channel: ChannelSettings, payload: dict[str, Any], key: str) -> Sent:
    """Deliver ``payload`` once through the channel ``name``."""
    sender = {
        "log": _log,
        "webhook": _webhook,
        "slack": _slack,
        "email": _email,
        "apprise": _apprise,
    }[channel.type]
    return sender(name, channel, payload, key)


def _log(name: str, channel: ChannelSettings, payload: dict[str, Any], key: str) -> Sent:
    level = logging.INFO if payload["state"] == "resolved" else logging.WARNING
    # One line a notice, as log collectors want; the examples by span id only.
    shown = [e["span_id"] for e in payload.get("examples") or []]
    log.log(level, "alert %s%s", summary(payload), f" (spans {', '.join(shown)})" if shown else "")
    return Sent()


def _env(channel: str, variable: str | None) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise DeliveryError(f"channel {channel!r}: the environment variable {variable} is unset")
    return value


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST ``body``; the status and the start of the answer, or :class:`DeliveryError`."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(65_536)
    except urllib.error.HTTPError as exc:
        retry = exc.headers.get("Retry-After") if exc.headers else None
        detail = exc.read(500).decode("utf-8", "replace").strip()
        raise DeliveryError(
            f"HTTP {exc.code} from {url}" + (f": {detail}" if detail else ""),
            status=exc.code,
            retry_after=_seconds(retry),
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"could not reach {url}: {reason}") from None


def _seconds(retry_after: str | None) -> float | None:
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:  # an HTTP date
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature: ``sha256=`` and the HMAC-SHA256 of ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _webhook(name: str, channel: ChannelSettings, payload: dict[str, Any], key: str) -> Sent:
    body = json.dumps({**payload, "idempotency_key": key}, default=str).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Llmvigil-Timestamp": timestamp,
        "User-Agent": "llmvigil",
    }
    secret = _env(name, channel.secret_env)
    if secret is not None:
        headers["X-Llmvigil-Signature"] = sign(secret, timestamp, body)
    status, _ = post(str(channel.url), body, headers, channel.timeout_s)
    return Sent(status)


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit blocks and a plain ``text`` fallback."""
    icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}.get(
        payload["state"], ":bell:"
    )
    head = summary(payload)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(f"{icon} {head}")}}
    ]
    times = [f"fired {payload['fired_at']} UTC"] if payload.get("fired_at") else []
    if payload.get("resolved_at"):
        times.append(f"resolved {payload['resolved_at']} UTC")
    if times:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(times)}]}
        )
    examples = _example_lines(payload)
    if examples:
        text = _slack_escape("\n".join(examples))[:_SLACK_TEXT]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {"text": head, "blocks": blocks}


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(name: str, channel: ChannelSettings, payload: dict[str, Any], key: str) -> Sent:
    url = channel.webhook_url or _env(name, channel.webhook_url_env)
    body = json.dumps(slack_message(payload)).encode()
    status, answer = post(str(url), body, {"Content-Type": "application/json"}, channel.timeout_s)
    if answer.strip() not in (b"ok", b""):
        raise DeliveryError(f"Slack answered {answer[:200]!r}", status=status)
    return Sent(status)


def email_message(channel: ChannelSettings, payload: dict[str, Any]) -> EmailMessage:
    """A multipart text + HTML message; prompt and response text escaped, never rendered."""
    message = EmailMessage()
    message["Subject"] = summary(payload)[:200]
    message["From"] = str(channel.from_)
    message["To"] = ", ".join(channel.to)
    text = plain_text(payload)
    message.set_content(text)
    rows = "".join(
        f"<li><code>{html.escape(e['span_id'])}</code>: {html.escape(e.get('input') or '')}"
        f"<br>&rarr; {html.escape(e.get('output') or '')}</li>"
        for e in payload.get("examples") or []
    )
    body = f"<p><strong>{html.escape(summary(payload))}</strong></p>"
    if rows:
        body += f"<p>Example spans:</p><ul>{rows}</ul>"
    message.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    return message


def _email(name: str, channel: ChannelSettings, payload: dict[str, Any], key: str) -> Sent:
    message = email_message(channel, payload)
    message["Message-ID"] = f"<{key}@llmvigil>"
    user = _env(name, channel.username_env)
    password = _env(name, channel.password_env)
    # Certificates are verified (smtplib's own default would take any): a password goes over it.
    context = ssl.create_default_context(cafile=channel.ca_file)
    try:
        if channel.ssl:
            smtp = smtplib.SMTP_SSL(
                str(channel.host), channel.port, timeout=channel.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(str(channel.host), channel.port, timeout=channel.timeout_s)
        with smtp:
            if channel.starttls and not channel.ssl:
                smtp.starttls(context=context)
            if user is not None:
                smtp.login(user, password or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {channel.host}:{channel.port}: {exc}") from None
    return Sent(250)


def _apprise(name: str, channel: ChannelSettings, payload: dict[str, Any], key: str) -> Sent:
    try:
        import apprise
    except ImportError:
        raise DeliveryError(
            f"channel {name!r} is of type apprise, which needs the apprise package: "
            'pip install "llmvigil[apprise]"'
        ) from None
    notifier = apprise.Apprise()
    for url in channel.urls:
        notifier.add(url)
    if not notifier.notify(title=summary(payload), body=plain_text(payload)):
        raise DeliveryError(f"apprise could not notify {len(channel.urls)} URL(s)")
    return Sent()
