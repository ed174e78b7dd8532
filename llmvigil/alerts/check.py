"""One check of every alert rule: measure, move each group's state, record, deliver.

States follow Prometheus and Grafana: a group whose condition holds is
PENDING until it has held for the rule's ``for``, then FIRING; when the
condition stops holding it is RESOLVED (and OK from the next check). A
window with fewer than ``min_samples`` samples gives no verdict: a PENDING
or FIRING group stays as it is, any other becomes NO_DATA.

A transition and the notifications it causes are written in one
transaction (the deliveries as pending rows, with their idempotency keys),
and sent after: a process killed between the two sends them on its next
check, once, with the same keys. A firing group notifies once, then again
only after the rule's ``repeat``.

Example::

    report = check_alerts(store, load_settings())
    for result in report.results:
        print(result.rule, result.group_key, result.state, result.value)
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from llmvigil.alerts.metrics import Measure, Request, measure_many, parse_metric
from llmvigil.config import AlertRule, Settings
from llmvigil.storage import schema
from llmvigil.storage.metrics import _span_seconds

log = logging.getLogger("llmvigil.alerts")

OK, PENDING, FIRING, RESOLVED, NO_DATA = "ok", "pending", "firing", "resolved", "no_data"
_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass
class RuleResult:
    """Where one rule and group stands after a check."""

    at: datetime
    rule: str
    group_key: str
    state: str
    value: float | None
    samples: int
    threshold: float
    #: What this check changed: "pending", "firing", "resolved", "repeat", or None.
    transition: str | None = None


@dataclass
class CheckReport:
    """One check: every rule and group, and the deliveries it made."""

    at: datetime
    results: list[RuleResult] = field(default_factory=list)
    delivered: int = 0
    failed: int = 0
    hooks: int = 0


def seconds(duration: str | None) -> int:
    """Seconds in ``10m``, ``0m``, ``4h`` (0 for None)."""
    return 0 if duration is None else int(_span_seconds(duration) or 0)


def group_key(fields: Sequence[str], values: Sequence[str | None]) -> str:
    """``model=gpt-4o,app=support`` (empty without group_by)."""
    return ",".join(
        f"{f}={'(none)' if v is None else v}" for f, v in zip(fields, values, strict=True)
    )


def _utc_naive(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def holds(rule: AlertRule, value: float | None) -> bool:
    """Whether ``value`` breaches ``rule`` (a change rule's value is the change in percent)."""
    if value is None:
        return False
    if rule.op == "change_pct":
        return value >= rule.threshold if rule.threshold >= 0 else value <= rule.threshold
    return _COMPARE[rule.op](value, rule.threshold)


def _requests(rule: AlertRule, at: datetime) -> list[Request]:
    """What ``rule`` measures as of ``at``: its window, and for a change rule the baseline's."""
    metric = parse_metric(rule.metric)
    window = timedelta(seconds=seconds(rule.window))
    where = tuple(sorted(rule.where.items()))
    wanted = [Request(metric, at - window, at, tuple(rule.group_by), where)]
    if rule.op == "change_pct":
        back = timedelta(seconds=seconds(rule.baseline))
        wanted.append(Request(metric, at - back - window, at - back, tuple(rule.group_by), where))
    return wanted


def _rule_measures(rule: AlertRule, found: list[dict[tuple, Measure]]) -> dict[tuple, Measure]:
    """The rule's value per group (for a change rule: the change in percent)."""
    if rule.op != "change_pct":
        return found[0]
    current, before = found
    changes = {}
    for key, now in current.items():
        then = before.get(key)
        if then is None or then.value in (None, 0) or now.value is None:
            changes[key] = Measure(None, 0)
        else:
            change = (now.value - then.value) / abs(then.value) * 100
            changes[key] = Measure(change, min(now.samples, then.samples))
    return changes


def measure_rule(store, rule: AlertRule, at: datetime) -> dict[tuple, Measure]:
    """The rule's value per group as of ``at`` (for change rules: the change in percent)."""
    return _rule_measures(rule, measure_many(store, _requests(rule, at)))


def check_alerts(
    store,
    settings: Settings,
    at: datetime | None = None,
    deliver: bool = True,
    wait_for_hooks: bool = True,
) -> CheckReport:
    """Evaluate every ``[[alerts]]`` rule as of ``at`` (default now), then send what is due
    and run the retraining hooks of what fired (``deliver=False``: record only;
    ``wait_for_hooks=False``: the hooks run on in the background)."""
    from llmvigil.alerts.deliver import deliver_pending
    from llmvigil.alerts.examples import breaching_spans
    from llmvigil.alerts.hooks import run_pending_hooks

    moment = _utc_naive(at)
    report = CheckReport(moment)
    measures = _measure_rules(store, settings.alerts, moment)
    st = schema.alert_state
    with store.engine.connect() as conn:
        known: dict[str, dict[str, Any]] = {}
        for row in conn.execute(sa.select(st)):
            known.setdefault(row.rule, {})[row.group_key] = row
    writes: list[tuple[str, dict[str, Any]]] = []
    for rule in settings.alerts:
        if rule.name not in measures:
            continue  # it failed to measure (logged): its state stays as it was
        try:
            results, changes = _check_rule(
                store, settings, rule, moment, measures[rule.name], known.get(rule.name, {}),
                breaching_spans,
            )  # fmt: skip
        except Exception:  # one broken rule must not stop the others
            log.exception("alert rule %r could not be checked", rule.name)
            continue
        report.results += results
        writes += changes
    if writes:
        # Every transition of the check and the deliveries and hook runs it causes, at once.
        with store.engine.begin() as conn:
            _write_all(conn, writes)
    if deliver:
        report.delivered, report.failed = deliver_pending(store, settings)
        report.hooks = run_pending_hooks(store, settings, wait=wait_for_hooks)
    return report


def _measure_rules(
    store, rules: Sequence[AlertRule], at: datetime
) -> dict[str, dict[tuple, Measure]]:
    """Every rule's measures, the rules that read the same rows sharing one query; a rule
    whose query fails is measured alone, so it fails alone."""
    wanted = {rule.name: _requests(rule, at) for rule in rules}
    flat = [request for requests in wanted.values() for request in requests]
    try:
        found = measure_many(store, flat)
    except Exception:
        log.warning("the alert rules' shared queries failed; measuring each rule alone")
        out = {}
        for rule in rules:
            try:
                out[rule.name] = measure_rule(store, rule, at)
            except Exception:
                log.exception("alert rule %r could not be measured", rule.name)
        return out
    out, position = {}, 0
    for rule in rules:
        count = len(wanted[rule.name])
        out[rule.name] = _rule_measures(rule, found[position : position + count])
        position += count
    return out


def _check_rule(
    store, settings: Settings, rule: AlertRule, at: datetime, measures, known, examples
) -> tuple[list[RuleResult], list[tuple[str, dict[str, Any]]]]:
    by_key = {group_key(rule.group_by, key): (key, m) for key, m in measures.items()}
    results: list[RuleResult] = []
    writes: list[tuple[str, dict[str, Any]]] = []
    for key in sorted(set(by_key) | set(known)):
        values, found = by_key.get(key, (None, Measure(None, 0)))
        result, changes = _next(
            settings, rule, key, values, found, known.get(key), at, examples, store
        )
        results.append(result)
        writes += changes
    return results, writes


def _next(settings, rule, key, values, found: Measure, previous, at, examples, store):
    """The group's next state and the rows that record it."""
    was = previous.state if previous is not None else OK
    enough = found.value is not None and found.samples >= max(rule.min_samples, 1)
    breach = enough and holds(rule, found.value)
    state, transition, since = was, None, previous.since if previous is not None else at
    event_id = previous.event_id if previous is not None else None
    notified = previous.notified_at if previous is not None else None
    writes: list[tuple[str, dict[str, Any]]] = []
    if not enough:
        if was not in (PENDING, FIRING):
            state = NO_DATA
    elif breach:
        if was == FIRING:
            repeat = seconds(rule.repeat)
            if repeat and notified is not None and (at - notified).total_seconds() >= repeat:
                transition, notified = "repeat", at
        elif was == PENDING and (at - since).total_seconds() >= seconds(rule.for_):
            state, transition = FIRING, "firing"
        elif was != PENDING:
            if seconds(rule.for_) == 0:
                state, transition = FIRING, "firing"
            else:
                state, transition = PENDING, "pending"
    else:
        state, transition = OK, ("resolved" if was == FIRING else None)
    if state != was:  # `since` is when the current state began (a firing's: when it fired)
        since = at
    if transition == "firing":
        event_id, notified = uuid.uuid4().hex, at
        writes.append(("event", _event_row(rule, key, event_id, found, at)))
    if transition in ("firing", "repeat", "resolved") and event_id is not None:
        group = dict(zip(rule.group_by, values or (None,) * len(rule.group_by), strict=True))
        payload = _payload(rule, key, group, transition, found, at, event_id, previous)
        if transition != "resolved" and settings.alerting.examples:
            payload["examples"] = examples(store, rule, group, at, settings.alerting.examples)
        writes += _deliveries(settings, rule, event_id, transition, payload, at)
        if transition == "resolved":
            writes.append(("resolve", {"event_id": event_id, "resolved_at": at}))
            event_id = None
        if transition == "firing":
            writes += [
                ("hook", {"event_id": event_id, "rule": rule.name, "hook": h, "payload": payload})
                for h in rule.hooks
            ]
    row = {
        "rule": rule.name,
        "group_key": key,
        "state": state,
        "since": since,
        "value": found.value,
        "samples": found.samples,
        "checked_at": at,
        "event_id": event_id if state in (PENDING, FIRING) else None,
        "notified_at": notified if state == FIRING else None,
    }
    writes.append(("state", row))
    shown = RESOLVED if transition == "resolved" else state
    result = RuleResult(
        at, rule.name, key, shown, found.value, found.samples, rule.threshold, transition
    )
    return result, writes


def _event_row(rule: AlertRule, key: str, event_id: str, found: Measure, at: datetime) -> dict:
    return {
        "event_id": event_id,
        "rule": rule.name,
        "group_key": key,
        "state": FIRING,
        "value": found.value,
        "threshold": rule.threshold,
        "window_s": float(seconds(rule.window)),
        "started_at": at,
        "created_at": datetime.now(UTC).replace(tzinfo=None),
    }


def _payload(rule, key, group, transition, found, at, event_id, previous) -> dict[str, Any]:
    fired = at if transition == "firing" else None
    if fired is None and previous is not None:
        fired = previous.since
    return {
        "rule": rule.name,
        "state": "resolved" if transition == "resolved" else "firing",
        "repeat": transition == "repeat",
        "event_id": event_id,
        "group": group,
        "group_key": key,
        "metric": rule.metric,
        "op": rule.op,
        "value": found.value,
        "samples": found.samples,
        "threshold": rule.threshold,
        "window": rule.window,
        "severity": rule.severity,
        "fired_at": fired.isoformat() if fired else None,
        "resolved_at": at.isoformat() if transition == "resolved" else None,
        "checked_at": at.isoformat(),
        "examples": [],
    }


def _deliveries(settings, rule, event_id, transition, payload, at) -> list:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for name in rule.channels:
        channel = settings.channels[name]
        if transition == "resolved" and not channel.send_resolved:
            continue
        # One key per event, kind and moment: a repeat is a new notice, a retry is not.
        suffix = f"-{at:%Y%m%dT%H%M%S}" if transition == "repeat" else ""
        rows.append(
            (
                "delivery",
                {
                    "delivery_id": uuid.uuid4().hex,
                    "event_id": event_id,
                    "rule": rule.name,
                    "channel": name,
                    "kind": transition,
                    "idempotency_key": f"llmvigil-{event_id}-{transition}{suffix}-{name}",
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                },
            )
        )
    return rows


def _write_all(conn: sa.Connection, writes: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Apply one check's writes: states replaced in bulk, the rest row by row (few)."""
    st = schema.alert_state
    states = [row for action, row in writes if action == "state"]
    if states:
        conn.execute(st.delete().where(st.c.rule.in_(sorted({row["rule"] for row in states}))))
        conn.execute(st.insert(), states)
    now = datetime.now(UTC).replace(tzinfo=None)
    for action, row in writes:
        if action == "event":
            conn.execute(schema.alert_events.insert().values(**row))
        elif action == "resolve":
            ev = schema.alert_events
            conn.execute(
                ev.update()
                .where(ev.c.event_id == row["event_id"])
                .values(state=RESOLVED, resolved_at=row["resolved_at"])
            )
        elif action == "delivery":
            conn.execute(schema.alert_deliveries.insert().values(**row))
        elif action == "hook":
            conn.execute(
                schema.alert_hook_runs.insert().values(
                    run_id=uuid.uuid4().hex, status="pending", created_at=now, **row
                )
            )
        elif action != "state":
            raise AssertionError(action)


def backfill(
    store, settings: Settings, since: datetime, until: datetime, step: timedelta
) -> list[RuleResult]:
    """Check every rule at each ``step`` from ``since`` to ``until``, as if live; return the
    transitions in time order (what would have been notified, and when)."""
    changes: list[RuleResult] = []
    moment = _utc_naive(since)
    while moment <= _utc_naive(until):
        report = check_alerts(store, settings, at=moment)
        changes += [r for r in report.results if r.transition in ("firing", "resolved")]
        moment += step
    return changes


def alerts_job(store, settings: Settings) -> Callable[[], CheckReport]:
    """The scheduled check: every ``[alerting] interval_s``, as of now.

    Given to APScheduler by ``llmvigil evaluate --watch`` and the long-running process.
    """

    def job() -> CheckReport:
        # A retraining hook may run for an hour: the next checks must not wait for it.
        report = check_alerts(store, settings, wait_for_hooks=False)
        firing = [f"{r.rule} {r.group_key}".strip() for r in report.results if r.state == FIRING]
        log.info("alerts: %s", ", ".join(firing) or "none firing")
        return report

    return job
