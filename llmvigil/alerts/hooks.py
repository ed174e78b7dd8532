"""Retraining hooks: when a rule fires, hand its breaching spans to the team's own job.

A hook run is queued in the same transaction as the firing (``alert_hook_runs``,
status ``pending``) and run after, so a process killed in between runs it on
its next check. Each run first writes the export: a JSONL file in
``[alerting] export_dir`` with one :mod:`.export` record per breaching span
(for a score rule the spans that failed the evaluator, otherwise the
window's spans). The hook then gets the alert payload with ``export_path``:

- ``command``: the payload JSON on stdin; killed at ``timeout_s``;
- ``python``: ``callable(payload)`` of ``package.module:function``;
- ``webhook``: the payload POSTed as JSON.

Each run is recorded with its status (``ok``, ``failed``, ``timeout``), exit
code, duration and the tail of its output.
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from llmvigil.alerts.examples import breaching_query
from llmvigil.alerts.export import records, write_records
from llmvigil.config import HookSettings, Settings
from llmvigil.storage import schema

log = logging.getLogger("llmvigil.alerts")
#: Characters of a hook's output kept with its run.
_TAIL = 4_000


def run_pending_hooks(store, settings: Settings, wait: bool = True) -> int:
    """Start every pending hook run (in parallel, each within its timeout); return how many.

    ``wait`` (a one-off ``alerts check``): return once they have finished. Otherwise (the
    scheduled check) they run in the background and record their outcome when done, so a
    retraining job of an hour never holds up the next checks; meanwhile their status is
    ``running``. A run left ``running`` by a process that died is marked ``interrupted``
    once its hook's timeout has passed: it is not started twice.
    """
    h = schema.alert_hook_runs
    _mark_interrupted(store, settings)
    with store.engine.connect() as conn:
        pending = conn.execute(
            sa.select(h).where(h.c.status == "pending").order_by(h.c.created_at)
        ).all()
    if not pending:
        return 0
    if wait:
        with ThreadPoolExecutor(max_workers=min(4, len(pending))) as pool:
            outcomes = list(pool.map(lambda row: _run(store, settings, row), pending))
        for row, update in zip(pending, outcomes, strict=True):
            _record(store, row.run_id, update)
        return len(pending)
    with store.engine.begin() as conn:
        started = datetime.now(UTC).replace(tzinfo=None)
        for row in pending:  # claimed, so the next check does not start it again
            conn.execute(
                h.update()
                .where(h.c.run_id == row.run_id, h.c.status == "pending")
                .values(status="running", started_at=started)
            )
    for row in pending:
        _background().submit(lambda row=row: _record(store, row.run_id, _run(store, settings, row)))
    return len(pending)


_pool: ThreadPoolExecutor | None = None


def _background() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llmvigil-hook")
    return _pool


def _record(store, run_id: str, update: dict[str, Any]) -> None:
    h = schema.alert_hook_runs
    try:
        with store.engine.begin() as conn:
            conn.execute(h.update().where(h.c.run_id == run_id).values(**update))
    except Exception:  # the store closed meanwhile (the owner stopping): said, not raised
        log.exception("alert hook run %s: its outcome could not be recorded", run_id)


def _mark_interrupted(store, settings: Settings) -> None:
    h = schema.alert_hook_runs
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.engine.begin() as conn:
        running = conn.execute(
            sa.select(h.c.run_id, h.c.hook, h.c.started_at).where(h.c.status == "running")
        ).all()
        for run_id, name, since in running:
            hook = settings.hooks.get(name)
            limit = (hook.timeout_s if hook is not None else 0) + 60
            if since is None or now - since > timedelta(seconds=limit):
                conn.execute(
                    h.update()
                    .where(h.c.run_id == run_id)
                    .values(status="interrupted", output_tail="the process running it ended")
                )


def export_breaching(store, settings: Settings, payload: dict[str, Any], run_id: str) -> Path:
    """Write the JSONL export of the spans behind ``payload``'s alert; return its path."""
    from llmvigil.alerts.check import seconds

    rule = next(r for r in settings.alerts if r.name == payload["rule"])
    at = datetime.fromisoformat(payload["checked_at"])
    start = at - timedelta(seconds=seconds(rule.window))
    query = breaching_query(rule, payload["group"], start, at, failed_only=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in rule.name)
    path = Path(settings.alerting.export_dir) / f"{safe}-{at:%Y%m%dT%H%M%S}-{run_id[:8]}.jsonl"
    write_records(records(store, query), path, "jsonl")
    return path.resolve()


def _run(store, settings: Settings, row: Any) -> dict[str, Any]:
    started = time.perf_counter()
    begun = datetime.now(UTC).replace(tzinfo=None)
    hook = settings.hooks.get(row.hook)
    done = lambda status, **more: {  # noqa: E731
        "status": status,
        "started_at": begun,
        "seconds": time.perf_counter() - started,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        **more,
    }
    if hook is None:
        return done("failed", output_tail=f"hook {row.hook!r} is no longer configured")
    try:
        path = export_breaching(store, settings, dict(row.payload), row.run_id)
    except Exception as exc:
        log.exception("alert hook %s: the export failed", row.hook)
        return done("failed", output_tail=f"export failed: {exc}")
    payload = {**row.payload, "export_path": str(path), "hook": row.hook}
    try:
        status, code, output = _call(hook, payload)
    except Exception as exc:  # a hook's own failure is its run's outcome, not the check's
        status, code, output = "failed", None, f"{type(exc).__name__}: {exc}"
    if status != "ok":
        log.warning("alert hook %s for %s: %s (%s)", row.hook, row.rule, status, output[-300:])
    return done(status, exit_code=code, output_tail=output[-_TAIL:], export_path=str(path))


def _call(hook: HookSettings, payload: dict[str, Any]) -> tuple[str, int | None, str]:
    body = json.dumps(payload, default=str)
    if hook.type == "command":
        try:
            done = subprocess.run(
                hook.command,
                input=body,
                capture_output=True,
                text=True,
                timeout=hook.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:  # run() has killed it
            output = (exc.stdout or "") + (exc.stderr or "")
            output = output if isinstance(output, str) else output.decode("utf-8", "replace")
            return "timeout", None, output + f"\nkilled after {hook.timeout_s:g} s"
        except OSError as exc:
            return "failed", None, f"could not start {hook.command[0]!r}: {exc}"
        output = done.stdout + done.stderr
        return ("ok" if done.returncode == 0 else "failed"), done.returncode, output
    if hook.type == "python":
        module, _, name = str(hook.callable).partition(":")
        function = getattr(importlib.import_module(module), name)
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["value"] = function(payload)
            except BaseException as exc:
                result["error"] = exc

        worker = threading.Thread(target=call, name=f"llmvigil-hook-{name}", daemon=True)
        worker.start()
        worker.join(hook.timeout_s)
        if worker.is_alive():  # a thread cannot be killed: it is left, recorded as timed out
            return "timeout", None, f"{hook.callable} still running after {hook.timeout_s:g} s"
        if "error" in result:
            error = result["error"]
            return "failed", None, f"{type(error).__name__}: {error}"
        return "ok", None, "" if result.get("value") is None else str(result["value"])
    from llmvigil.alerts.channels import DeliveryError, post

    try:
        status, answer = post(
            str(hook.url), body.encode(), {"Content-Type": "application/json"}, hook.timeout_s
        )
    except DeliveryError as exc:
        return "failed", exc.status, str(exc)
    return "ok", status, answer.decode("utf-8", "replace")
