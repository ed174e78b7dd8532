"""Send the pending notifications, each channel on its own thread, and record every attempt.

A failed attempt is tried again at a later check, after ``[alerting]
retry_base_s`` doubling each time (at most an hour), or after the pause a
429's ``Retry-After`` asks for; after ``max_attempts`` the delivery is marked
failed. A channel that is down (or slow, up to its ``timeout_s``) holds up
neither the other channels nor the next check.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from llmvigil.alerts.channels import DeliveryError, send
from llmvigil.config import Settings
from llmvigil.storage import schema

log = logging.getLogger("llmvigil.alerts")
_MAX_BACKOFF_S = 3600.0


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def deliver_pending(store, settings: Settings) -> tuple[int, int]:
    """Send every pending delivery that is due; return (sent, failed for good) counts."""
    d = schema.alert_deliveries
    with store.engine.connect() as conn:
        due = conn.execute(
            sa.select(d)
            .where(d.c.status == "pending", d.c.next_attempt_at <= _now())
            .order_by(d.c.created_at)
        ).all()
    if not due:
        return 0, 0
    by_channel: dict[str, list[Any]] = defaultdict(list)
    for row in due:
        by_channel[row.channel].append(row)
    with ThreadPoolExecutor(max_workers=min(8, len(by_channel))) as pool:
        outcomes = list(pool.map(lambda rows: _send_all(settings, rows), by_channel.values()))
    sent = failed = 0
    with store.engine.begin() as conn:
        for results in outcomes:
            for row, update in results:
                conn.execute(d.update().where(d.c.delivery_id == row.delivery_id).values(**update))
                sent += update["status"] == "sent"
                failed += update["status"] == "failed"
    return sent, failed


def _send_all(settings: Settings, rows: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
    """One channel's due deliveries, in order; after a failure the rest wait (the channel is
    down, and asking it again now would only spend their timeouts)."""
    results = []
    down: DeliveryError | None = None
    for row in rows:
        attempts = row.attempts + 1
        channel = settings.channels.get(row.channel)
        if channel is None:
            error = DeliveryError(f"channel {row.channel!r} is no longer configured")
            results.append((row, {**_failed(settings, row, attempts, error), "status": "failed"}))
            continue
        if down is not None:
            results.append((row, _failed(settings, row, row.attempts, down, tried=False)))
            continue
        try:
            outcome = send(row.channel, channel, dict(row.payload), row.idempotency_key)
        except DeliveryError as exc:
            log.warning("alert delivery to %s failed (attempt %d): %s", row.channel, attempts, exc)
            down = exc
            results.append((row, _failed(settings, row, attempts, exc)))
            continue
        except Exception as exc:  # a bug in a sender: record it like a failed attempt
            log.exception("alert delivery to %s failed", row.channel)
            down = DeliveryError(f"{type(exc).__name__}: {exc}")
            results.append((row, _failed(settings, row, attempts, down)))
            continue
        entry = {"attempt": attempts, "at": _now().isoformat(), "ok": True,
                 "status": outcome.status, "error": None}  # fmt: skip
        results.append(
            (row, {"status": "sent", "attempts": attempts, "sent_at": _now(),
                   "response_status": outcome.status, "last_error": None,
                   "attempt_log": [*(row.attempt_log or []), entry]})
        )  # fmt: skip
    return results


def _failed(
    settings: Settings, row: Any, attempts: int, error: DeliveryError, tried: bool = True
) -> dict[str, Any]:
    """The update for a failed (or, ``tried=False``, skipped) attempt: when to try again."""
    base = settings.alerting.retry_base_s
    pause = min(base * 2 ** max(attempts - 1, 0), _MAX_BACKOFF_S)
    if error.retry_after is not None:
        pause = max(pause, min(error.retry_after, _MAX_BACKOFF_S))
    final = tried and attempts >= settings.alerting.max_attempts
    update: dict[str, Any] = {
        "status": "failed" if final else "pending",
        "attempts": attempts,
        "last_error": str(error)[:2000] if tried else f"not tried: the channel failed ({error})",
        "response_status": error.status,
        "next_attempt_at": _now() + timedelta(seconds=pause),
    }
    if tried:
        entry = {"attempt": attempts, "at": _now().isoformat(), "ok": False,
                 "status": error.status, "error": str(error)[:500]}  # fmt: skip
        update["attempt_log"] = [*(row.attempt_log or []), entry]
    return update
