"""``llmvigil up``: the one process that owns the store, serves the API and runs the jobs.

On its own threads: the HTTP API (uvicorn), and APScheduler's jobs, one run of
each at a time: the spool ingester every ``[server] ingest_interval_s``, the
evaluators every ``[evaluators] interval_s``, drift every ``[drift]
interval_s``, the alert check every ``[alerting] interval_s`` and retention
every ``[retention] interval_s``. SIGTERM and Ctrl-C stop taking requests, let
the jobs in hand finish (retention after its current batch), then release the
listen file and close the store.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from llmvigil.config import Settings
from llmvigil.errors import ConfigError, StoreError
from llmvigil.server.auth import load_keys
from llmvigil.server.listen import claim, listen_path, release, running_owner
from llmvigil.storage.store import Store

log = logging.getLogger("llmvigil.server")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _jobs(store: Store, settings: Settings, evaluate: bool) -> list[tuple[Callable, float, str]]:
    from llmvigil.collector.spool import ingest_spool
    from llmvigil.evaluators.drift import drift_job

    spool = Path(settings.collector.spool_dir)

    def ingest() -> None:
        if spool.exists():
            report = ingest_spool(store, spool)
            if report.rows:
                log.info("ingested %d spans from %s", report.rows, spool)

    jobs = [(ingest, settings.server.ingest_interval_s, "ingest")]
    if evaluate:
        from llmvigil.evaluators.suite import runner_from_settings

        runner = runner_from_settings(settings, with_judge=settings.judge is not None)
        jobs.append((lambda: runner.run(store), settings.evaluators.interval_s, "evaluate"))
        jobs.append((drift_job(store, settings.drift), settings.drift.interval_s, "drift"))
    if settings.alerts:
        from llmvigil.alerts.check import alerts_job

        jobs.append((alerts_job(store, settings), settings.alerting.interval_s, "alerts"))
    if settings.retention.configured:
        from llmvigil.storage.retention import RetentionJob

        retention = RetentionJob(store, settings.retention.policy(), log.info)
        jobs.append((retention, settings.retention.interval_s, "retention"))
    return jobs


def run_up(
    settings: Settings,
    store_url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    insecure: bool = False,
    evaluate: bool = True,
    announce: Callable[[str], None] = print,
) -> None:
    """Own the store and serve until SIGTERM or Ctrl-C."""
    try:
        import uvicorn
        from apscheduler.schedulers.background import BackgroundScheduler
    except ImportError as exc:
        raise ConfigError(
            f'llmvigil up needs its server packages ({exc}): pip install "llmvigil[server]"'
        ) from None

    from llmvigil.evaluators.schedule import add_interval_job, stop_jobs
    from llmvigil.server.app import create_app
    from llmvigil.server.commands import mark_owner

    host = host or settings.server.host
    port = settings.server.port if port is None else port
    keys = load_keys(settings.server.api_keys_env, None)
    if not _loopback(host) and not keys.configured and not insecure:
        raise ConfigError(
            f"--host {host} listens beyond this machine and no API key is configured; set "
            f"${settings.server.api_keys_env} (KEY, ingest:KEY or read:KEY, comma-separated), "
            "or pass --insecure to serve without keys"
        )
    url = store_url or settings.store.url
    where = listen_path(settings, url)
    current = running_owner(where)  # before opening: the store would only say it is locked
    if current is not None:
        raise StoreError(
            f"llmvigil up already runs for this store (pid {current.pid}, {current.url}); "
            "stop it first, or point this one at another store with --store"
        )
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # port 0: a free one; the listen file says which
    sock.listen(2048)  # from here connections wait in the backlog until the server takes them
    address = f"http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}"
    with Store(url) as store:
        mark_owner()
        entry = claim(where, address, store.display_url)
        keys = load_keys(settings.server.api_keys_env, entry.token)
        scheduler = BackgroundScheduler(timezone="UTC")
        jobs = _jobs(store, settings, evaluate)
        for job, interval, name in jobs:
            add_interval_job(scheduler, job, interval, name)
        app = create_app(store, settings, keys, ready=lambda: scheduler.running)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)

        # uvicorn stops on SIGINT and SIGTERM, then raises the signal again to the handler
        # it found: with the default one, the process would die before the jobs finish and
        # the listen file is removed. This one lets the shutdown below run instead, and
        # stops the server too when a signal comes before uvicorn has set up its own.
        def stopping(signum: int, frame: object) -> None:
            log.info("llmvigil up: stopping (signal %d)", signum)
            server.should_exit = True

        previous = {
            signum: signal.signal(signum, stopping) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        scheduler.start()
        announce(f"llmvigil up: listening on {address}, owning {store.display_url}")
        try:
            server.run(sockets=[sock])
        finally:
            stop_jobs(jobs)  # a long retention run ends after its batch, not at its end
            scheduler.shutdown(wait=True)  # the jobs in hand finish before the store closes
            release(where, entry)
            sock.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    announce("llmvigil up: stopped")
