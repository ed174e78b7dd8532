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

import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from llmvigil.config import Settings
from llmvigil.errors import ConfigError, StoreError
from llmvigil.hosts import is_loopback
from llmvigil.server.auth import load_keys
from llmvigil.server.listen import claim, listen_path, release, running_owner
from llmvigil.server.prometheus import IngestCounters, make_registry
from llmvigil.storage.store import Store

log = logging.getLogger("llmvigil.server")


#: What ``llmvigil up --role`` runs: ``all`` of it, or one part, on PostgreSQL.
ROLES = ("all", "ingest", "evaluate", "scheduler")
#: How often the owner brings the dashboard's rollups up to date (a refresh with nothing new
#: costs ~20 ms at ten million spans; five minutes of traffic ~0.3 s).
ROLLUP_INTERVAL_S = 30.0
#: Jobs that must not run in two processes at once (see llmvigil.storage.locks).
_ONE_AT_A_TIME = ("drift", "alerts", "retention")


def _jobs(
    store: Store, settings: Settings, evaluate: bool, counted: IngestCounters, role: str = "all"
) -> list[tuple[Callable, float, str]]:
    from llmvigil.collector.spool import ingest_spool
    from llmvigil.evaluators.drift import drift_job

    spool = Path(settings.collector.spool_dir)

    def ingest() -> None:
        if spool.exists():
            report = ingest_spool(store, spool)
            counted.count(
                "spool",
                stored=report.inserted,
                duplicates=report.duplicates,
                refused=report.bad_rows,
            )
            if report.rows:
                log.info("ingested %d spans from %s", report.rows, spool)

    jobs = []
    if role in ("all", "ingest"):
        jobs.append((ingest, settings.server.ingest_interval_s, "ingest"))
    if evaluate and role in ("all", "evaluate"):
        from llmvigil.evaluators.suite import runner_from_settings

        runner = runner_from_settings(settings, with_judge=settings.judge is not None)
        # Several evaluate processes on PostgreSQL share the spans by claims (Runner.run).
        jobs.append((lambda: runner.run(store), settings.evaluators.interval_s, "evaluate"))
    if evaluate and role in ("all", "scheduler"):
        jobs.append((drift_job(store, settings.drift), settings.drift.interval_s, "drift"))
    if settings.alerts and role in ("all", "scheduler"):
        from llmvigil.alerts.check import alerts_job

        jobs.append((alerts_job(store, settings), settings.alerting.interval_s, "alerts"))
    if role in ("all", "scheduler"):
        from llmvigil.storage.rollups import refresh_score_rollups, refresh_span_rollups

        def rollups() -> None:  # kept current as spans and scores arrive, for the dashboard
            refresh_span_rollups(store)
            refresh_score_rollups(store)

        jobs.append((rollups, ROLLUP_INTERVAL_S, "rollups"))
    if settings.retention.configured and role in ("all", "scheduler"):
        from llmvigil.storage.retention import RetentionJob

        retention = RetentionJob(store, settings.retention.policy(), log.info)
        jobs.append((retention, settings.retention.interval_s, "retention"))
    return [
        (_one_at_a_time(store, job, name) if name in _ONE_AT_A_TIME else job, interval, name)
        for job, interval, name in jobs
    ]


def _one_at_a_time(store: Store, job: Callable[[], object], name: str) -> Callable[[], None]:
    from llmvigil.storage.locks import exclusive

    def run() -> None:
        with exclusive(store, name) as mine:
            if mine:
                job()
            else:
                log.debug("%s runs in another process this time", name)

    run.stop = getattr(job, "stop", None)  # type: ignore[attr-defined]  # see stop_jobs
    return run


def _start_dashboard(
    settings: Settings, url: str, where: tuple[str, int], announce: Callable[[str], None]
):
    from llmvigil.dashboard import launch

    app_process = launch.start(settings, url, *where)

    def announce_when_ready() -> None:  # the API serves meanwhile: the app reads through it
        if app_process.wait_ready():
            announce(f"llmvigil dashboard: {app_process.url}/overview")
        elif app_process.process.poll() is not None:  # ingest goes on without it
            log.error("the dashboard did not start (exit %s)", app_process.process.poll())

    threading.Thread(target=announce_when_ready, name="llmvigil-dashboard", daemon=True).start()
    return app_process


def run_up(
    settings: Settings,
    store_url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    insecure: bool = False,
    evaluate: bool = True,
    role: str = "all",
    announce: Callable[[str], None] = print,
    dashboard: tuple[str, int] | None = None,
    jobs: bool = True,
) -> None:
    """Own the store and serve until SIGTERM or Ctrl-C (``role``: all of it, or one part).

    ``dashboard`` (host, port) serves the Streamlit app too, in a child process that reads
    through this one. ``jobs=False`` runs no scheduled job (the API alone: ``llmvigil
    dashboard`` over a DuckDB file no owner holds).
    """
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

    url = store_url or settings.store.url
    duckdb = url.startswith("duckdb")
    if role not in ROLES:
        raise ConfigError(f"--role {role!r}: choose one of {', '.join(ROLES)}")
    if role != "all" and duckdb:
        raise ConfigError(
            f"--role {role} needs a PostgreSQL store: a DuckDB file belongs to one process, "
            "so run `llmvigil up` (every role) over it, or point --store at PostgreSQL"
        )
    serves = role in ("all", "ingest")
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    keys = load_keys(settings.server.api_keys_env, None)
    if serves and not is_loopback(host) and not keys.configured and not insecure:
        raise ConfigError(
            f"--host {host} listens beyond this machine and no API key is configured; set "
            f"${settings.server.api_keys_env} (KEY, ingest:KEY or read:KEY, comma-separated), "
            "or pass --insecure to serve without keys"
        )
    # A DuckDB file has one owner, found by its listen file; PostgreSQL takes many processes.
    where = listen_path(settings, url) if duckdb else None
    current = running_owner(where) if where is not None else None
    if current is not None:  # before opening: the store would only say it is locked
        raise StoreError(
            f"llmvigil up already runs for this store (pid {current.pid}, {current.url}); "
            "stop it first, or point this one at another store with --store"
        )
    sock = None
    if serves:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))  # port 0: a free one; the listen file says which
        sock.listen(2048)  # from here connections wait in the backlog until the server takes them
    with Store(url) as store:
        store.prefer_steady_appends()
        mark_owner()
        address = None
        entry = None
        if sock is not None:
            bound = sock.getsockname()[1]
            address = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"
            if where is not None:
                entry = claim(where, address, store.display_url)
                keys = load_keys(settings.server.api_keys_env, entry.token)
        scheduler = BackgroundScheduler(timezone="UTC")
        metrics = make_registry(store, Path(settings.collector.spool_dir))
        scheduled = _jobs(store, settings, evaluate, metrics[1], role) if jobs else []
        for job, interval, name in scheduled:
            add_interval_job(scheduler, job, interval, name)
        app = server = None
        if sock is not None:
            app = create_app(
                store, settings, keys, ready=lambda: scheduler.running, metrics=metrics
            )
            config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
            server = uvicorn.Server(config)
        stop = threading.Event()

        # uvicorn stops on SIGINT and SIGTERM, then raises the signal again to the handler
        # it found: with the default one, the process would die before the jobs finish and
        # the listen file is removed. This one lets the shutdown below run instead, and
        # stops the server too when a signal comes before uvicorn has set up its own.
        def stopping(signum: int, frame: object) -> None:
            log.info("llmvigil up: stopping (signal %d)", signum)
            stop.set()
            if server is not None:
                server.should_exit = True

        previous = {
            signum: signal.signal(signum, stopping) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        # Everything loaded so far (the web stack, the price data, the schemas) lives as long
        # as the process: out of the collector's sight, a full collection no longer walks
        # it, which stalled requests ~100 ms each time (p99).
        gc.freeze()
        # A young collection every 50,000 allocations, not 700: a request's parsing and rows
        # allocate thousands of objects that die young without cycles, and the default
        # threshold ran the collector several times per request (measured: 12 % of the
        # owner's CPU per span on /v1/spans).
        gc.set_threshold(50_000, 20, 10)
        scheduler.start()
        doing = f"listening on {address}" if address else f"role {role}, no HTTP API"
        announce(f"llmvigil up: {doing}, owning {store.display_url}")
        app_process = None
        try:
            if dashboard is not None:
                app_process = _start_dashboard(settings, url, dashboard, announce)
            if server is not None:
                server.run(sockets=[sock])
            else:
                stop.wait()
        finally:
            if app is not None:
                app.state.writer.close()
            if app_process is not None:
                app_process.stop()
            stop_jobs(scheduled)  # a long retention run ends after its batch, not at its end
            scheduler.shutdown(wait=True)  # the jobs in hand finish before the store closes
            if entry is not None:
                release(where, entry)
            if sock is not None:
                sock.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    announce("llmvigil up: stopped")
