"""``llmvigil alerts check|list|history|test`` and ``llmvigil export``."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from rich.table import Table
from rich.text import Text

from llmvigil.errors import ConfigError
from llmvigil.storage import schema


def add_commands(commands: Any, store_help: str) -> None:
    """Register ``alerts`` and ``export`` on the CLI's sub-parsers."""
    from llmvigil.alerts.export import FORMATS
    from llmvigil.cli import _text, _whole

    alerts = commands.add_parser("alerts", help="check alert rules, list them, see their history")
    actions = alerts.add_subparsers(dest="alerts_action", required=True)
    check = actions.add_parser("check", help="evaluate every rule once and send what is due")
    check.add_argument("--at", type=_text, help="as of this ISO time or span back (default: now)")
    check.add_argument("--format", choices=("table", "json"), default="table")
    check.add_argument("--store", type=_text, help=store_help)
    check.set_defaults(run=cmd_alerts_check)
    listing = actions.add_parser("list", help="the rules and where each group stands")
    listing.add_argument("--store", type=_text, help=store_help)
    listing.set_defaults(run=cmd_alerts_list)
    history = actions.add_parser("history", help="alert events, deliveries and hook runs")
    history.add_argument("--rule", type=_text)
    history.add_argument("--limit", type=_whole(100_000), default=50)
    history.add_argument("--store", type=_text, help=store_help)
    history.set_defaults(run=cmd_alerts_history)
    test = actions.add_parser("test", help="send a test notification through a rule's channels")
    test.add_argument("rule", type=_text)
    test.add_argument("--store", type=_text, help=store_help)
    test.set_defaults(run=cmd_alerts_test)

    export = commands.add_parser("export", help="write spans as records for review or fine-tuning")
    export.add_argument(
        "--since", default="1d", help="ISO time or span back (default 1d); `all` for all time"
    )
    export.add_argument("--until", type=_text, help="ISO time or span back (default: now)")
    export.add_argument("--app", type=_text)
    export.add_argument("--model", type=_text)
    export.add_argument("--evaluator", type=_text, help="only spans this evaluator scored")
    export.add_argument(
        "--failed", action="store_true", help="with --evaluator: only the spans it failed"
    )
    export.add_argument("--rule", type=_text, help="the spans that breach this alert rule")
    export.add_argument("--format", choices=FORMATS, default="jsonl")
    export.add_argument("--output", type=_text, required=True)
    export.add_argument("--store", type=_text, help=store_help)
    export.set_defaults(run=cmd_export)


def _cell(value: float | None) -> str:
    from llmvigil.cli import _cell as cell

    return cell(value)


def cmd_alerts_check(args: argparse.Namespace) -> int:
    from llmvigil.alerts.check import check_alerts
    from llmvigil.cli import _moment, _settings, _store, console

    settings = _settings(args)
    at = _moment(args.at, "--at")
    with _store(args, settings, create=False) as store:
        report = check_alerts(store, settings, at=at)
    if args.format == "json":
        print(json.dumps([r.__dict__ for r in report.results], default=str, indent=2))
        return 0
    table = Table(title=f"Alert rules as of {report.at:%Y-%m-%d %H:%M:%S} UTC")
    for column in ("rule", "group", "state", "value", "threshold", "samples", "changed"):
        table.add_column(column)
    for r in report.results:
        table.add_row(
            r.rule, r.group_key or "(all)", _state(r.state), _cell(r.value), _cell(r.threshold),
            str(r.samples), r.transition or "",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"{len(settings.alerts)} rules; {report.delivered} notifications sent, "
        f"{report.failed} given up; {report.hooks} hook runs"
    )
    return 0


def _state(state: str) -> Text:
    style = {"firing": "bold red", "pending": "yellow", "resolved": "green", "no_data": "dim"}
    return Text(state, style=style.get(state, ""))


def cmd_alerts_list(args: argparse.Namespace) -> int:
    from llmvigil.cli import _settings, _store, console

    settings = _settings(args)
    if not settings.alerts:
        console.print(Text("no [[alerts]] rules in the settings; see the README's Alerts section"))
        return 0
    with _store(args, settings, create=False) as store, store.engine.connect() as conn:
        states = conn.execute(sa.select(schema.alert_state)).all()
    by_rule: dict[str, list[Any]] = {}
    for row in states:
        by_rule.setdefault(row.rule, []).append(row)
    table = Table(title="Alert rules")
    for column in ("rule", "condition", "window", "for", "channels", "hooks", "groups"):
        table.add_column(column)
    for rule in settings.alerts:
        op = f"{rule.op} {rule.threshold:g}"
        if rule.op == "change_pct":
            op = f"changed {rule.threshold:+g}% against {rule.baseline} before"
        groups = ", ".join(
            f"{s.group_key or '(all)'}: {s.state}" for s in by_rule.get(rule.name, [])
        )
        table.add_row(
            rule.name, Text(f"{rule.metric} {op}"), rule.window, rule.for_,
            ", ".join(rule.channels), ", ".join(rule.hooks), Text(groups or "not checked yet"),
        )  # fmt: skip
    console.print(table)
    return 0


def cmd_alerts_history(args: argparse.Namespace) -> int:
    from llmvigil.cli import _settings, _store, console

    settings = _settings(args)
    ev, d, h = schema.alert_events, schema.alert_deliveries, schema.alert_hook_runs
    with _store(args, settings, create=False) as store, store.engine.connect() as conn:
        events = conn.execute(
            sa.select(ev)
            .where(*([ev.c.rule == args.rule] if args.rule else []))
            .order_by(ev.c.started_at.desc())
            .limit(args.limit)
        ).all()
        ids = [e.event_id for e in events]
        deliveries = conn.execute(
            sa.select(d).where(d.c.event_id.in_(ids)).order_by(d.c.created_at)
        ).all()
        runs = conn.execute(
            sa.select(h).where(h.c.event_id.in_(ids)).order_by(h.c.created_at)
        ).all()
    if not events:
        console.print("no alert events stored")
        return 0
    table = Table(title="Alert events, newest first")
    for column in ("rule", "group", "state", "value", "threshold", "fired", "resolved"):
        table.add_column(column)
    for e in events:
        table.add_row(
            e.rule, e.group_key or "(all)", _state(e.state), _cell(e.value), _cell(e.threshold),
            f"{e.started_at:%Y-%m-%d %H:%M:%S}",
            f"{e.resolved_at:%Y-%m-%d %H:%M:%S}" if e.resolved_at else "",
        )  # fmt: skip
    console.print(table)
    if deliveries:
        table = Table(title="Deliveries")
        for column in ("rule", "channel", "kind", "status", "attempts", "sent", "last error"):
            table.add_column(column)
        for x in deliveries:
            table.add_row(
                x.rule, x.channel, x.kind, x.status, str(x.attempts),
                f"{x.sent_at:%H:%M:%S}" if x.sent_at else "", Text(x.last_error or ""),
            )  # fmt: skip
        console.print(table)
    if runs:
        table = Table(title="Hook runs")
        for column in ("rule", "hook", "status", "exit", "seconds", "export", "output"):
            table.add_column(column)
        for r in runs:
            table.add_row(
                r.rule, r.hook, r.status, "" if r.exit_code is None else str(r.exit_code),
                _cell(r.seconds), r.export_path or "", Text((r.output_tail or "")[-200:]),
            )  # fmt: skip
        console.print(table)
    return 0


def cmd_alerts_test(args: argparse.Namespace) -> int:
    """Send a notification marked as a test through the rule's channels, now, recorded."""
    from llmvigil.alerts.deliver import deliver_pending
    from llmvigil.cli import _settings, _store, console

    settings = _settings(args)
    rule = next((r for r in settings.alerts if r.name == args.rule), None)
    if rule is None:
        known = ", ".join(r.name for r in settings.alerts) or "none"
        raise ConfigError(f"no [[alerts]] rule is named {args.rule!r} (rules: {known})")
    if not rule.channels:
        raise ConfigError(f"[[alerts]] {rule.name!r} has no channels to test; add channels = [...]")
    now = datetime.now(UTC).replace(tzinfo=None)
    event = f"test-{uuid.uuid4().hex[:24]}"
    payload = {
        "rule": rule.name, "state": "test", "repeat": False, "event_id": event, "group": {},
        "group_key": "", "metric": rule.metric, "op": rule.op, "value": None, "samples": 0,
        "threshold": rule.threshold, "window": rule.window, "severity": rule.severity,
        "fired_at": now.isoformat(), "resolved_at": None, "checked_at": now.isoformat(),
        "examples": [],
    }  # fmt: skip
    d = schema.alert_deliveries
    with _store(args, settings, create=False) as store:
        with store.engine.begin() as conn:
            for name in rule.channels:
                conn.execute(
                    d.insert().values(
                        delivery_id=uuid.uuid4().hex, event_id=event, rule=rule.name,
                        channel=name, kind="test", idempotency_key=f"llmvigil-{event}-{name}",
                        payload=payload, status="pending", attempts=0, next_attempt_at=now,
                        created_at=now,
                    )
                )  # fmt: skip
        deliver_pending(store, settings)
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(d).where(d.c.event_id == event)).all()
        # A test is tried once: what failed is not retried by later checks.
        with store.engine.begin() as conn:
            unsent = d.update().where(d.c.event_id == event, d.c.status == "pending")
            conn.execute(unsent.values(status="failed"))
    failed = 0
    for row in rows:
        if row.status == "sent":
            console.print(f"{row.channel}: sent")
        else:
            failed += 1
            console.print(Text(f"{row.channel}: failed: {row.last_error}"))
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from llmvigil.alerts.examples import breaching_query
    from llmvigil.alerts.export import records, write_records
    from llmvigil.cli import _moment, _settings, _store, _window, console

    settings = _settings(args)
    # A rule brings its own window, ending at --until; --since bounds only the others.
    since, until = (
        (None, _moment(args.until, "--until")) if args.rule else _window(args.since, args.until)
    )
    until = until or datetime.now(UTC).replace(tzinfo=None)
    if args.failed and not args.evaluator:
        raise ConfigError("--failed needs --evaluator: the spans that evaluator failed")
    s, e = schema.spans.c, schema.evaluations.c
    if args.rule:
        rule = next((r for r in settings.alerts if r.name == args.rule), None)
        if rule is None:
            raise ConfigError(f"no [[alerts]] rule is named {args.rule!r}")
        from llmvigil.alerts.check import seconds

        start = until - timedelta(seconds=seconds(rule.window))
        query = breaching_query(rule, {}, start, until, failed_only=True)
    else:
        query = sa.select(s.span_id).where(s.start_time < until)
        if since is not None:
            query = query.where(s.start_time >= since)
        if args.app:
            query = query.where(s.app == args.app)
        if args.model:
            query = query.where(s.model == args.model)
        if args.evaluator:
            scored = sa.select(e.span_id).where(e.evaluator == args.evaluator)
            if args.failed:
                scored = scored.where(e.passed.is_(False))
            query = query.where(s.span_id.in_(scored))
    with _store(args, settings, create=False) as store:
        written = write_records(records(store, query), args.output, args.format)
    console.print(f"wrote {written} records to {args.output} ({args.format})")
    return 0
