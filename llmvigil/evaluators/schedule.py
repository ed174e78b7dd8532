"""Run a job every N seconds with APScheduler: ``llmvigil evaluate --watch`` and the owner process.

One run at a time (a slow run is never overlapped by the next), missed runs
coalesced into one, and a failing run logged without stopping the schedule.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger("llmvigil.schedule")
# A run longer than its interval makes APScheduler warn at every skipped turn (each second for
# the ingest job while it loads a backlog): that is the one-at-a-time rule working, not news.
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


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


def stop_jobs(jobs: Sequence[tuple[Callable[[], object], float, str]]) -> None:
    """Ask each job that can end a run early (one with a ``stop()``, such as retention's) to
    end the run in hand soon, so a shutdown waits for a batch, not for a whole run."""
    for job, _, _ in jobs:
        stop = getattr(job, "stop", None)
        if callable(stop):
            stop()


def run_every(
    job: Callable[[], object],
    interval_s: float,
    job_id: str,
    more: Sequence[tuple[Callable[[], object], float, str]] = (),
) -> None:
    """Run ``job`` now and every ``interval_s`` seconds until interrupted (Ctrl-C, SIGTERM).

    ``more`` holds other (job, interval_s, job_id) to run on the same schedule, each on
    its own interval (``evaluate --watch`` adds the drift job).

    The jobs run on APScheduler's own threads while this thread waits on an event
    that Ctrl-C and SIGTERM set. A handler that stopped the scheduler itself ran
    inside whatever the main thread was doing (APScheduler catches
    ``BaseException`` while it submits a run, so an interrupt landing there was
    swallowed) and could return before a running job ended, leaving the caller
    to close a store the job still wrote to. Here a stop waits for running
    jobs to finish, so when this returns nothing touches the store.
    """
    scheduler = BackgroundScheduler(timezone=UTC)
    jobs = [(job, interval_s, job_id), *more]
    for each, seconds, name in jobs:
        add_interval_job(scheduler, each, seconds, name)
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {}
    in_main = threading.current_thread() is threading.main_thread()
    for signum in (signal.SIGINT, signal.SIGTERM) if in_main else ():
        previous[signum] = signal.signal(signum, stop)
    scheduler.start()
    try:
        while not stopping.wait(0.5):
            pass
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        # Handlers back first: a second Ctrl-C while a long job finishes stops at once.
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        stop_jobs(jobs)
        scheduler.shutdown(wait=True)
