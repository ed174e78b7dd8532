"""Run a job every N seconds with APScheduler: ``llmvigil evaluate --watch`` and the owner process.

One run at a time (a slow run is never overlapped by the next), missed runs
coalesced into one, and a failing run logged without stopping the schedule.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger("llmvigil.schedule")


def add_interval_job(
    scheduler: BaseScheduler, job: Callable[[], object], interval_s: float, job_id: str
) -> None:
    """Add ``job`` to ``scheduler``: first run now, then every ``interval_s`` seconds."""

    def guarded() -> None:
        try:
            job()
        except Exception:  # the schedule goes on; the next run retries
            log.exception("scheduled job %s failed", job_id)

    scheduler.add_job(
        guarded,
        "interval",
        seconds=interval_s,
        id=job_id,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
        replace_existing=True,
    )


def run_every(job: Callable[[], object], interval_s: float, job_id: str) -> None:
    """Run ``job`` now and every ``interval_s`` seconds until interrupted (Ctrl-C, SIGTERM).

    Ctrl-C and SIGTERM stop the scheduler from a signal handler rather than as a
    KeyboardInterrupt: APScheduler catches ``BaseException`` while it submits a
    run, so an interrupt landing there was logged and the loop went on for ever.
    """
    scheduler = BlockingScheduler(timezone=UTC)
    add_interval_job(scheduler, job, interval_s, job_id)

    def stop(signum: int, frame: object) -> None:
        if scheduler.running:
            scheduler.shutdown(wait=False)

    previous = {}
    in_main = threading.current_thread() is threading.main_thread()
    for signum in (signal.SIGINT, signal.SIGTERM) if in_main else ():
        previous[signum] = signal.signal(signum, stop)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        if scheduler.running:
            scheduler.shutdown(wait=False)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
