"""The ``llmvigil`` command line: it composes the parts and is the only place that prints."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmvigil import __version__, tables
from llmvigil.collector.tracer import KINDS
from llmvigil.config import CONFIG_FILE, STARTER_TOML, Settings, load_settings
from llmvigil.errors import ConfigError, EvaluatorError, IngestError, LlmvigilError, StoreError
from llmvigil.evaluators.dataset import LINE_FORMAT
from llmvigil.evaluators.runner import Runner
from llmvigil.storage import MetricRow, Store
from llmvigil.storage.metrics import COLUMNS, parse_grain, parse_moment, parse_since
from llmvigil.storage.retention import TABLES, RetentionReport
from llmvigil.storage.store import DUCKDB_URL_FORMS, duckdb_database, is_in_memory

# Off a terminal (a pipe, a file, CI logs) the table keeps its full width.
console = Console(width=None if sys.stdout.isatty() else 200)
# Messages carry user text ("[collector] key"): never read as markup, never wrapped.
errors = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _store_url(args: argparse.Namespace, settings: Settings) -> str:
    return getattr(args, "store", None) or settings.store.url


def _store(args: argparse.Namespace, settings: Settings, *, create: bool) -> Store:
    # Commands that only read pass create=False: a mistyped path is an error, not an empty store.
    from llmvigil.server.commands import borrowed_store

    url = _store_url(args, settings)
    # Run by `llmvigil up` for a command sent to it: its own open store, left open.
    return borrowed_store(url) or Store(url, create=create)


def _refuse_in_memory(url: str, what: str) -> None:
    if is_in_memory(url):
        raise IngestError(
            f"{what} would load the spool into {url}, an in-memory store that is gone when "
            "this command ends, and then delete the segments. Name a DuckDB file with --store "
            f"or [store] url: {DUCKDB_URL_FORMS}"
        )


# -- init ---------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.is_dir():
        raise ConfigError(
            f"--path {path} is a folder; name the settings file to write, for example "
            f"{path / CONFIG_FILE}"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"--path {path}: the folder {path.parent} does not exist; create it first"
        )
    if path.exists() and not args.force:
        errors.print(f"{path} already exists; use --force to overwrite it")
        return 1
    try:
        path.write_text(STARTER_TOML, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    console.print(f"wrote {path}: every key is optional and shown with its default")
    return 0


# -- ingest -------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from llmvigil.collector.spool import ingest_spool

    settings = _settings(args)
    _refuse_in_memory(_store_url(args, settings), "ingest")
    folder = Path(args.spool or settings.collector.spool_dir)
    if not folder.is_dir():
        if folder.exists():
            raise IngestError(f"spool folder {folder} is a file; name the folder apps spool into")
        if args.spool:
            raise IngestError(
                f"--spool {folder} does not exist; name the folder your apps spool into "
                f"([collector] spool_dir, here {settings.collector.spool_dir})"
            )
        console.print(f"nothing to ingest: no spool folder at {folder.absolute()} yet")
        return 0
    with _store(args, settings, create=True) as store:
        report = ingest_spool(store, folder)
    console.print(
        f"ingested {report.segments} segments from {folder}: {report.rows} spans, "
        f"{report.inserted} new, {report.duplicates} already stored"
    )
    for bad in report.bad:
        errors.print(f"set aside unreadable segment {bad}", style="red")
    if report.bad_rows:
        errors.print(
            f"{report.bad_rows} spans set aside: the store refused them (each with its reason "
            f"in the llmvigil_reason column) in {', '.join(report.bad_row_files)}",
            style="red",
        )
    return 1 if report.bad or report.bad_rows else 0


# -- metrics ------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.5g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def print_metrics(
    rows: Sequence[MetricRow], fmt: str, title: str | None = None, *, wide: bool = False
) -> None:
    """Print the health table on standard output: as a rich table (a line per bucket that fits
    80 columns, or with ``wide`` a line per bucket and metric with every figure), CSV or JSON
    (every figure, unformatted)."""
    if fmt == "json":
        payload = [{k: _cell(v) if k == "TimeGenerated" else v for k, v in r.as_dict().items()}
                   for r in rows]  # fmt: skip
        sys.stdout.write(json.dumps(payload, indent=1) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([_cell(v) for v in r.as_dict().values()])
        return
    console.print(tables.health_wide(rows, title) if wide else tables.health(rows, title))


def _window(since_text: str, until_text: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` as UTC times; ``--since all`` is no lower bound."""
    since = parse_since(since_text)
    until = None if until_text is None else parse_moment(until_text, option="--until")
    if since is not None and until is not None and until <= since:
        raise LlmvigilError(
            f"--until {until_text!r} ({until:%Y-%m-%dT%H:%M:%S} UTC) is not after --since "
            f"{since_text!r} ({since:%Y-%m-%dT%H:%M:%S} UTC), so the window holds nothing; "
            "swap them or widen the window"
        )
    return since, until


def cmd_metrics(args: argparse.Namespace) -> int:
    settings = _settings(args)
    since, until = _window(args.since, args.until)
    try:
        parse_grain(args.grain)
    except LlmvigilError as exc:
        raise LlmvigilError(f"--grain: {exc}") from None
    with _store(args, settings, create=False) as store:
        kind = None if args.kind == "all" else args.kind
        rows = store.metrics(args.grain, since, until, app=args.app, model=args.model, kind=kind)
    if not rows and args.format == "table":
        errors.print("no spans in that window; widen --since or check --app/--model")
    print_metrics(rows, args.format, wide=args.wide)
    return 0


# -- evaluate -----------------------------------------------------------------------------


def _evaluator_names(text: str) -> list[str]:
    """``--evaluators relevance,brevity`` as names, each a registered evaluator."""
    from llmvigil.evaluators.registry import available

    known = sorted(available())
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise EvaluatorError(
            f"--evaluators {text!r} names no evaluator; give comma-separated names from: "
            f"{', '.join(known)}"
        )
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EvaluatorError(
            f"--evaluators names {', '.join(map(repr, unknown))}, which no evaluator is "
            f"called; known: {', '.join(known)}"
        )
    return names


def _runner(args: argparse.Namespace, settings: Settings) -> Runner:
    from llmvigil.evaluators.suite import evaluators_from_settings

    if args.evaluators is not None:
        names = _evaluator_names(args.evaluators)
        enabled = settings.evaluators.model_copy(update={"enabled": names, "sampling": {}})
        settings = settings.model_copy(update={"evaluators": enabled})
    config = settings.evaluators
    unknown = [kind for kind in config.kinds if kind not in KINDS]
    if unknown:
        raise ConfigError(
            f"[evaluators] kinds has {', '.join(map(repr, unknown))}, which is no span kind, so "
            f"those spans would never be scored; known kinds: {', '.join(KINDS)}"
        )
    runner = Runner(
        evaluators_from_settings(settings, with_judge=not args.no_judge),
        batch_size=args.batch_size or config.batch_size,
        sampling=config.sampling,
        kinds=config.kinds,
    )
    if not runner.evaluators:
        raise EvaluatorError(
            "no evaluator to run: [evaluators] enabled is empty; enable some there or name "
            "them with --evaluators"
        )
    return runner


def _thresholds(names: Sequence[str]) -> dict[str, tuple[float, bool]]:
    """Each registered evaluator's pass threshold and direction, for the score tables."""
    from llmvigil.evaluators.registry import available

    known = available()
    return {
        name: (known[name].threshold, known[name].higher_is_better)
        for name in names
        if name in known
    }


def print_summary(rows: Sequence[dict], title: str) -> None:
    """Print per-evaluator score statistics from :meth:`Store.evaluation_summary`."""
    thresholds = _thresholds([r["evaluator"] for r in rows])
    table = Table(title=title, caption=Text(tables.SCORE_NOTES, justify="left"))
    for column in (
        "evaluator", "version", "method", "scored", "mean", "pass at", "passed", "unscored"
    ):  # fmt: skip
        table.add_column(column, justify="left" if column in ("evaluator", "method") else "right")
    for r in rows:
        threshold, higher = thresholds.get(r["evaluator"], (None, True))
        table.add_row(
            r["evaluator"],
            r["evaluator_version"],
            r["method"] or "",
            str(r["scored"]),
            _cell(None if r["mean"] is None else float(r["mean"])),
            "" if threshold is None else f"{'≥' if higher else '<'} {threshold:g}",
            "" if r["pass_rate"] is None else f"{float(r['pass_rate']):.1%}",
            str(r["unscored"]),
        )
    console.print(table)


def evaluate_store(store: Store, runner: Runner, progress: bool = True) -> None:
    """Score what the store lacks, with a progress bar, and print what was done (if anything,
    without a progress bar)."""
    from tqdm import tqdm

    todo = store.count_spans_missing_evaluations(runner.wanted, kinds=runner.kinds)
    with tqdm(total=todo, unit="span", desc="evaluating", disable=not progress or None) as bar:
        report = runner.run(store, on_batch=bar.update)
    if not progress and not report.spans:
        return
    console.print(
        f"evaluated {report.spans} spans in {report.seconds:.1f} s "
        f"({report.spans_per_second:.0f} spans/s): "
        + ", ".join(
            f"{e.name} {report.scored[e.name]} scored"
            + (f" / {report.skipped[e.name]} skipped" if report.skipped[e.name] else "")
            + (f" / {report.failed[e.name]} failed" if report.failed[e.name] else "")
            for e in runner.evaluators
        )
    )
    if any(report.skipped.values()):
        console.print(
            Text(
                "skipped: spans an evaluator cannot score (a field it needs is missing, such "
                "as the answer of a failed call) or that [evaluators] sampling left out"
            )
        )


def _evaluate_dataset(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from llmvigil.evaluators.dataset import (
        KEYS,
        check_output,
        measure,
        missing_by_evaluator,
        nothing_scored,
        output_records,
        read_dataset,
        score_lines,
        unknown_keys,
        write_records,
    )

    # Every path is checked before the evaluators load and score: a typo costs nothing.
    lines, problems = read_dataset(args.dataset)
    if args.output:
        check_output(args.output, args.dataset)
    for problem in problems:
        errors.print(f"{args.dataset}:{problem.number}: skipped: {problem.message}")
    if not lines:
        raise EvaluatorError(
            f"no line of {args.dataset} could be read ({len(problems)} malformed, the others "
            "empty): each line is one JSON object with an id, input, output and optionally "
            "context, reference and labels"
        )
    unknown = unknown_keys(lines)
    if unknown:
        # A file written with its own names ("question", "answer") scores nothing; say which.
        errors.print(
            f"warning: {args.dataset}: keys llmvigil does not read: "
            + ", ".join(f"{key!r} ({n} line{'s' * (n != 1)})" for key, n in unknown.items())
            + f"; a line's keys are {', '.join(KEYS)} (llmvigil evaluate --help)"
        )
    runner = _runner(args, settings)
    with tqdm(total=len(lines), unit="line", desc="scoring", disable=None) as bar:
        scores = score_lines(runner, lines, on_batch=bar.update)
    if args.output:
        count = write_records(args.output, output_records(lines, scores))
        console.print(f"wrote {count} scored lines to {args.output}")
    if nothing_scored(scores):
        lacking = "; ".join(
            f"{name}: " + ", ".join(f"{n} lines lack {field!r}" for field, n in counts.items())
            for name, counts in missing_by_evaluator(runner.evaluators, lines).items()
            if counts
        )
        raise EvaluatorError(
            f"no line of {args.dataset} got a score from any evaluator"
            + (f" ({lacking})" if lacking else "")
            + f"; a line's keys are {', '.join(KEYS)} (llmvigil evaluate --help)"
        )
    quality = measure(runner.evaluators, lines, scores)
    if quality:
        table = Table(title=f"How the scores predict the labels of {args.dataset}")
        for column in (
            "evaluator",
            "labelled",
            "ROC AUC",
            "threshold",
            "precision",
            "recall",
            "F1",
        ):
            table.add_column(column, justify="left" if column == "evaluator" else "right")
        for q in quality:
            table.add_row(
                q.evaluator,
                str(q.labelled),
                "" if q.roc_auc is None else f"{q.roc_auc:.3f}",
                f"{q.threshold:g}",
                *(f"{v:.3f}" for v in (q.precision, q.recall, q.f1)),
            )
        console.print(table)
    console.print(f"scored {len(lines)} lines; {len(problems)} malformed lines skipped")
    return 0


def _check_evaluate_options(args: argparse.Namespace) -> None:
    # An option the chosen mode does not read would be ignored without a word.
    if args.dataset is not None:
        for option, given in (
            ("--watch", args.watch),
            ("--retry-errors", args.retry_errors),
            ("--store", args.store is not None),
            ("--interval", args.interval is not None),
        ):
            if given:
                raise LlmvigilError(
                    f"{option} does not apply to --dataset, which scores the file without "
                    "the store; leave one of them out"
                )
    elif args.output is not None:
        raise LlmvigilError("--output is where --dataset writes its scores; give --dataset too")
    if args.interval is not None and not args.watch:
        raise LlmvigilError("--interval is how often --watch runs; give --watch too")
    if args.retry_errors and args.watch:
        raise LlmvigilError(
            "--retry-errors runs once; run `llmvigil evaluate --retry-errors` first, then --watch"
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _check_evaluate_options(args)
    if args.dataset is not None:
        return _evaluate_dataset(args, settings)
    runner = _runner(args, settings)
    if args.watch:
        from llmvigil.collector.spool import ingest_spool
        from llmvigil.evaluators.schedule import run_every

        interval = args.interval or settings.evaluators.interval_s
        # It loads what the apps spooled, so it may create the store, as ingest does.
        _refuse_in_memory(_store_url(args, settings), "evaluate --watch")
        store = _store(args, settings, create=True)
        spool = Path(settings.collector.spool_dir)

        def tick() -> None:
            # This process owns the store now, so it also loads what the apps spooled.
            if store.backend == "duckdb" and spool.exists():
                ingest_spool(store, spool)
            evaluate_store(store, runner, progress=False)

        from llmvigil.evaluators.drift import drift_job

        drift_every = settings.drift.interval_s
        retention_every = settings.retention.interval_s
        console.print(
            f"evaluating every {interval:g} s, drift every {drift_every:g} s"
            + (f", alerts every {settings.alerting.interval_s:g} s" if settings.alerts else "")
            + (f", retention every {retention_every:g} s" if settings.retention.configured else "")
            + "; Ctrl-C stops"
        )
        try:
            jobs = [(drift_job(store, settings.drift), drift_every, "drift")]
            if settings.alerts:
                from llmvigil.alerts.check import alerts_job

                jobs.append((alerts_job(store, settings), settings.alerting.interval_s, "alerts"))
            if settings.retention.configured:
                from llmvigil.storage.retention import RetentionJob

                said = lambda line: console.print(Text(line))  # noqa: E731
                retention = RetentionJob(store, settings.retention.policy(), said)
                jobs.append((retention, settings.retention.interval_s, "retention"))
            run_every(tick, interval, "evaluate", jobs)
        finally:
            store.close()
        return 0
    with _store(args, settings, create=False) as store:
        if args.retry_errors:
            from llmvigil.evaluators.runner import FAILURE_LABELS

            forgotten = store.forget_failed_evaluations(runner.wanted, FAILURE_LABELS)
            console.print(f"retrying {forgotten} failed scores")
        evaluate_store(store, runner)
        print_summary(store.evaluation_summary(), "Scores in the store")
    return 0


# -- drift --------------------------------------------------------------------------------


def _moment(text: str | None, option: str) -> datetime | None:
    return None if text is None else parse_moment(text, option=option)


def _drift_start(text: str | None, option: str) -> datetime | None:
    # run_drift reads a missing start as "the default window", so `all` cannot become None.
    if text is not None and text.strip().lower() == "all":
        raise LlmvigilError(
            f"{option} all: drift compares two windows, each with a start; give an ISO time "
            f"or a span back (2h), or leave {option} out for its default"
        )
    return _moment(text, option)


def _drift_filters(args: argparse.Namespace, settings: Settings) -> dict[str, str | None]:
    kind = settings.drift.kind if args.kind is None else args.kind
    return {
        "app": args.app,
        "model": args.model,
        "environment": args.environment,
        "prompt_version": args.prompt_version,
        "kind": None if kind == "all" else kind,
    }


def _drift_json(row: dict) -> dict:
    keys = ("feature", "method", "statistic", "p_value", "threshold", "drifted",
            "reference_count", "current_count", "skipped", "details")  # fmt: skip
    out = {k: row.get(k) for k in keys}
    for bound in ("reference_start", "reference_end", "current_start", "current_end",
                  "computed_at"):  # fmt: skip
        if isinstance(row.get(bound), datetime):
            out[bound] = row[bound].isoformat()
    return out


def print_drift(rows: Sequence[dict], title: str, wide: bool = False) -> None:
    """The drift table and what changed (one table with ``wide``), then each drifted
    embedding's new topics with examples."""
    if wide:
        console.print(tables.drift_wide(rows, title))
    else:
        console.print(tables.drift(rows, title))
        console.print(tables.drift_changes(rows))
    for r in rows:
        for topic in (r["details"] or {}).get("topics", []) if r["drifted"] else []:
            console.print(
                Text(f"{r['feature']}: {topic['label']} ({topic['share']:.0%} of the window)")
            )
            console.print(tables.topic_examples(topic["examples"]))


def cmd_drift(args: argparse.Namespace) -> int:
    from llmvigil.evaluators.drift import run_drift
    from llmvigil.evaluators.drift.windows import describe

    settings = _settings(args)
    filters = _drift_filters(args, settings)
    since, until = _drift_start(args.since, "--since"), _moment(args.until, "--until")
    with _store(args, settings, create=False) as store:
        report = run_drift(
            store,
            settings.drift,
            since=since,
            until=until,
            reference_since=_drift_start(args.reference_since, "--reference-since"),
            reference_until=_moment(args.reference_until, "--reference-until"),
            **filters,
        )
    w = report.windows
    if args.format == "json":
        print(json.dumps([{**_drift_json(r), **w.as_dict()} for r in report.rows], indent=2))
        return 0
    share = "no feature tested" if report.share is None else f"{report.share:.0%} drifted"
    print_drift(
        report.rows,
        f"Drift {w.current_start:%Y-%m-%d %H:%M}-{w.current_end:%H:%M} against "
        f"{w.reference_start:%Y-%m-%d %H:%M}-{w.reference_end:%H:%M} "
        f"({w.reference_source}; {describe(filters)}): {share}",
        wide=args.wide,
    )
    return 0


def cmd_drift_baseline(args: argparse.Namespace) -> int:
    from llmvigil.evaluators.drift.windows import describe

    settings = _settings(args)
    filters = _drift_filters(args, settings)
    since, until = _window(args.since, args.until)
    if since is None:
        raise LlmvigilError("--since all has no start; give the baseline's first moment")
    until = until or datetime.now(UTC).replace(tzinfo=None)
    with _store(args, settings, create=False) as store:
        store.pin_baseline(filters, since, until)
    console.print(
        Text(
            f"drift for {describe(filters)} now compares with {since:%Y-%m-%dT%H:%M:%S} to "
            f"{until:%Y-%m-%dT%H:%M:%S} UTC"
        )
    )
    return 0


def cmd_drift_history(args: argparse.Namespace) -> int:
    settings = _settings(args)
    since = parse_since(args.since)
    with _store(args, settings, create=False) as store:
        rows = store.drift_history(args.feature, since, limit=args.limit)
    if args.format == "json":
        print(json.dumps([_drift_json(r) for r in rows], indent=2))
        return 0
    if not rows:
        errors.print("no drift results stored; run `llmvigil drift` first")
        return 0
    table = Table(title="Drift results, newest first")
    for column in ("computed", "current window", "feature", "method", "statistic", "drifted"):
        table.add_column(column)
    table.add_column("what changed")
    for r in rows:
        details = r["details"] or {}
        table.add_row(
            f"{r['computed_at']:%Y-%m-%d %H:%M}",
            f"{r['current_start']:%m-%d %H:%M}-{r['current_end']:%H:%M}",
            r["feature"], r["method"], _cell(r["statistic"]),
            "skipped" if r["skipped"] else "yes" if r["drifted"] else "no",
            Text(details.get("reason") or details.get("summary") or ""),
        )  # fmt: skip
    console.print(table)
    return 0


# -- retention ----------------------------------------------------------------------------


def _retention_rule(settings: Settings) -> str:
    config = settings.retention

    def kept(days: int) -> str:
        return f"{days} days" if days else "for ever"

    rules = [kept(config.spans_days)]
    rules += [f"{app} {kept(days)}" for app, days in sorted(config.apps.items())]
    return "spans kept " + ", ".join(rules)


def print_retention(report: RetentionReport, rule: str) -> None:
    """What a retention run deleted (or would delete), per app and table, with a total row."""
    if not any(report.totals.values()):
        console.print(Text(f"nothing to delete: no span is past its retention ({rule})"))
        return
    verb = "Would delete (dry run)" if report.dry_run else "Deleted"
    table = Table(title=Text(f"{verb}: {rule}"))
    table.add_column("app")
    table.add_column("started before (UTC)", justify="right")
    for name in TABLES:
        table.add_column(name, justify="right")
    for app, counts in report.deleted.items():
        table.add_row(
            Text(app if app is not None else "(no app)"),
            f"{report.cutoffs[app]:%Y-%m-%d %H:%M}",
            *(f"{counts[t]:,}" for t in TABLES),
        )
    if any(report.orphans.values()):  # scores written for spans as they were deleted
        table.add_row("(span gone)", "", *(f"{report.orphans[t]:,}" for t in TABLES))
    if table.row_count > 1:
        table.add_row("all", "", *(f"{n:,}" for n in report.totals.values()), style="bold")
    console.print(table)
    if report.dry_run:
        return
    console.print(f"in {report.batches} transactions, {report.seconds:.1f} s")


def cmd_retention(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rule = _retention_rule(settings)
    if not settings.retention.configured:
        console.print(
            Text(
                f"nothing to delete: {rule}. Set [retention] spans_days (or apps, per app) to "
                "delete older spans"
            )
        )
        return 0
    with _store(args, settings, create=False) as store:
        report = store.delete_expired(settings.retention.policy(), dry_run=args.dry_run)
    print_retention(report, rule)
    return 0


# -- demo ---------------------------------------------------------------------------------


def _demo_drift(store: Store, settings: Settings, result, with_embeddings: bool) -> None:
    from llmvigil.demo import DEMO_APP
    from llmvigil.evaluators.drift import run_drift

    drift = settings.drift
    if not with_embeddings:  # --no-evaluate: no model loads
        chosen = [f for f in drift.features if not f.endswith("_embedding")]
        drift = drift.model_copy(update={"features": chosen})
    moment = _moment_of
    start, incident, fixed = map(moment, (result.started, result.incident_started,
                                          result.incident_ended))  # fmt: skip
    report = run_drift(
        store, drift, since=incident, until=fixed, reference_since=start,
        reference_until=incident, app=DEMO_APP, now=fixed,
    )  # fmt: skip
    print_drift(
        report.rows,
        "Drift: the incident against the 42 minutes before it (llmvigil drift --since 18m "
        "--until 6m --reference-since 1h --reference-until 18m)",
    )
    # After the fix, as of the hour's end: what alerts see when the incident is over.
    after = run_drift(
        store, drift, since=fixed, until=moment(result.ended), reference_since=start,
        reference_until=incident, app=DEMO_APP, now=moment(result.ended),
    )  # fmt: skip
    console.print(
        f"drift after the fix (the last 6 minutes against the same reference): "
        f"{', '.join(after.drifted) or 'nothing'} drifted"
    )


def _demo_alerts(store: Store, settings: Settings, result) -> None:
    from datetime import timedelta

    from llmvigil.alerts.check import backfill
    from llmvigil.demo import DEMO_ALERTS

    demo = Settings.model_validate({**settings.model_dump(by_alias=True), **DEMO_ALERTS})
    moment = _moment_of
    changes = backfill(
        store, demo, moment(result.started) + timedelta(minutes=5),
        moment(result.ended) + timedelta(seconds=1), timedelta(minutes=1),
    )  # fmt: skip
    table = Table(title="Alert events over the hour (rules checked every minute, log channel)")
    for column in ("time", "rule", "event", "value", "threshold"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            f"{change.at:%H:%M}", change.rule, _demo_state(change.transition),
            _cell(change.value), _cell(change.threshold),
        )  # fmt: skip
    console.print(table)


def _demo_state(transition: str | None) -> Text:
    return Text(str(transition), style="bold red" if transition == "firing" else "green")


#: The demo's own store: its simulated assistant never mixes with an app's spans, and each
#: run starts it afresh.
DEMO_STORE = "duckdb:///llmvigil-demo.duckdb"


def _demo_store(args: argparse.Namespace) -> Store:
    """The store the demo writes: its own (emptied first), or ``--store`` if it holds no other
    app's spans (or ``--mix`` allows it)."""
    from llmvigil.demo import DEMO_APP

    url = args.store or DEMO_STORE
    if args.store is None:
        path = Path(duckdb_database(url))
        if path.exists():
            with Store(url, create=False) as old:
                others = old.count_spans() - old.count_spans(app=DEMO_APP)
            if others:
                raise LlmvigilError(
                    f"{path} holds {others} spans of apps other than the demo's "
                    f"{DEMO_APP!r}, so the demo will not replace it; move it away, or give "
                    "the demo another file with --store duckdb:///demo.duckdb"
                )
            # Last run's hour would pile up under this one: the demo's own file starts afresh.
            for stale in (path, path.with_name(path.name + ".wal")):
                stale.unlink(missing_ok=True)
    store = Store(url, create=True)
    others = store.count_spans() - store.count_spans(app=DEMO_APP)
    if others and not args.mix:
        store.close()
        raise LlmvigilError(
            f"--store {store.display_url} holds {others} spans of other apps; the demo's "
            f"simulated {DEMO_APP!r} would be mixed into their metrics, scores and alerts. "
            f"Leave out --store (the demo's own {DEMO_STORE}) or add --mix"
        )
    return store


def _moment_of(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


def _demo_glance(store: Store, result, evaluated: bool) -> None:
    """The incident at a glance: before, during and after, for calls, errors and latency,
    then (once scored) each evaluator's mean and pass rate."""
    from llmvigil.demo import DEMO_APP

    start, incident, fixed, end = map(
        _moment_of,
        (result.started, result.incident_started, result.incident_ended, result.ended + 1),
    )
    windows = {"before": (start, incident), "during": (incident, fixed), "after": (fixed, end)}
    title = (
        f"The incident at a glance: before ({start:%H:%M}-{incident:%H:%M} UTC), during "
        f"({incident:%H:%M}-{fixed:%H:%M}) and after the fix"
    )
    console.print(tables.incident(
        {name: store.window_metrics(a, b, app=DEMO_APP) for name, (a, b) in windows.items()},
        title,
    ))  # fmt: skip
    if evaluated:
        summaries = {name: store.evaluation_summary(a, b) for name, (a, b) in windows.items()}
        names = [r["evaluator"] for rows in summaries.values() for r in rows]
        console.print(tables.scores(summaries, _thresholds(names), "Answer scores, offline"))


def cmd_demo(args: argparse.Namespace) -> int:
    from llmvigil.demo import DEMO_APP, run_demo

    settings = _settings(args)
    spool = Path(settings.collector.spool_dir) / "demo"
    with _demo_store(args) as store:
        console.print(
            f"[bold]llmvigil demo[/bold]: {args.requests} simulated support requests over the "
            f"last hour, through @observe and the spool, into the demo's store "
            f"{store.display_url}" + (" (its own, not yours)" if args.store is None else "")
        )
        result = run_demo(store, spool, calls=args.requests, seed=args.seed)
        console.print(
            f"recorded {result.report.rows} spans ({result.report.inserted} new) from "
            f"{result.calls} requests (each a chain span around a retrieval and a model "
            "call); an incident (slow answers, errors, new questions) runs from 42 to 54 "
            "minutes in, then the fix ships"
        )
        since = _moment_of(result.started)
        rows = store.metrics("10m", since=since, app=DEMO_APP)
        print_metrics(
            rows, "table", title="Model calls per 10 minutes (llmvigil metrics --grain 10m)"
        )
        if not args.no_evaluate:
            from llmvigil.evaluators.suite import runner_from_settings

            console.print("scoring the answers offline (the embedding model loads once)")
            evaluate_store(store, runner_from_settings(settings, with_judge=False))
        _demo_glance(store, result, evaluated=not args.no_evaluate)
        _demo_drift(store, settings, result, with_embeddings=not args.no_evaluate)
        _demo_alerts(store, settings, result)
        shown = store.display_url
    console.print(
        f"next: [bold]llmvigil dashboard --store {shown}[/bold] opens it all in your browser "
        f"(http://127.0.0.1:8501/overview); [bold]llmvigil metrics --store {shown} --grain 1m "
        "--since 1h[/bold] prints the per-minute table"
    )
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from llmvigil.server.owner import run_up

    settings = _settings(args)
    url = _store_url(args, settings)
    _refuse_in_memory(url, "up")
    run_up(
        settings, url, args.host, args.port, insecure=args.insecure,
        evaluate=not args.no_evaluate, role=args.role,
        announce=lambda line: print(line, flush=True),
        dashboard=_dashboard_bind(args, settings),
    )  # fmt: skip
    return 0


def _dashboard_bind(args: argparse.Namespace, settings: Settings) -> tuple[str, int] | None:
    if not (args.dashboard or settings.dashboard.enabled):
        return None
    from llmvigil.dashboard.launch import check_bind

    check_bind(settings, settings.dashboard.host, args.insecure)
    return settings.dashboard.host, settings.dashboard.port


def cmd_dashboard(args: argparse.Namespace) -> int:
    from llmvigil.dashboard import launch

    if args.hash_password:
        from llmvigil.dashboard.access import hash_password

        if sys.stdin.isatty():
            import getpass

            password = getpass.getpass("Dashboard password: ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        print(hash_password(password))
        return 0
    settings = _settings(args)
    url = _store_url(args, settings)
    if is_in_memory(url):
        raise StoreError(f"{url} is an in-memory store: nothing would be there to show")
    host = args.host or settings.dashboard.host
    port = settings.dashboard.port if args.port is None else args.port
    launch.check_bind(settings, host, args.insecure)
    if url.startswith("duckdb"):
        from llmvigil.server.listen import listen_path, running_owner
        from llmvigil.server.owner import run_up

        if running_owner(listen_path(settings, url)) is None:
            database = duckdb_database(url)
            if not Path(database).expanduser().exists():
                raise StoreError(
                    f"no store at {database}; run `llmvigil demo` for one to look at, or point "
                    "--store (or [store] url) at yours"
                )
            print(
                f"No llmvigil up holds {database}: serving it for the dashboard only (no "
                "ingest, no scheduled jobs). `llmvigil up --dashboard` does both.",
                flush=True,
            )
            run_up(
                settings, url, "127.0.0.1", 0, evaluate=False, jobs=False,
                dashboard=(host, port), announce=lambda line: print(line, flush=True),
            )  # fmt: skip
            return 0
    app = launch.start(settings, url, host, port)
    try:
        if app.wait_ready():
            print(f"llmvigil dashboard: {app.url}/overview", flush=True)
        return app.process.wait()
    finally:
        app.stop()


# -- parser -------------------------------------------------------------------------------


def _text(value: str) -> str:
    """An option value that must say something (``--store ""`` would fall back unseen)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty value; give one, or leave the option out")
    return value


def _whole(limit: int) -> Callable[[str], int]:
    """A whole number from 1 to ``limit``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not 1 <= number <= limit:
            raise argparse.ArgumentTypeError(f"{number} is not a whole number from 1 to {limit:,}")
        return number

    return parse


def _seconds(limit: float) -> Callable[[str], float]:
    """A finite number of seconds above 0 and at most ``limit``."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
        if not (math.isfinite(number) and 0 < number <= limit):
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a number of seconds above 0 and at most {limit:g}"
            )
        return number

    return parse


def _renamed_spans(value: str) -> int:
    raise argparse.ArgumentTypeError(
        "--spans is now --requests: each simulated request records 3 spans (its chain, "
        f"retrieval and model call); use --requests {value}"
    )


def _drift_filter_options(parser: argparse.ArgumentParser, store_help: str) -> None:
    parser.add_argument("--app", type=_text)
    parser.add_argument("--model", type=_text)
    parser.add_argument("--environment", type=_text)
    parser.add_argument("--prompt-version", type=_text)
    parser.add_argument(
        "--kind", choices=(*KINDS, "all"), help="span kind compared (default: [drift] kind, llm)"
    )
    parser.add_argument("--store", type=_text, help=store_help)


#: How a store is named, for every --store option's help.
STORE_HELP = (
    "store URL: duckdb:///relative/file.duckdb (three slashes), duckdb:////abs/file.duckdb "
    "(four) or postgresql+psycopg://user:password@host:5432/database (default: [store] url, "
    "duckdb:///llmvigil.duckdb)"
)


def _command(commands: Any, name: str, summary: str, description: str, **kwargs: Any) -> Any:
    """A subcommand whose --help opens with what it is for (argparse shows no ``help`` there)."""
    # Paragraphs of one line are wrapped here; the dataset format keeps its own lines.
    paragraphs = description.split("\n\n")
    wrapped = [p if "\n" in p else textwrap.fill(p, 79) for p in paragraphs]
    return commands.add_parser(
        name,
        help=summary,
        description="\n\n".join(wrapped),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``llmvigil`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="llmvigil",
        description="Watch LLM applications in production: record calls with @observe, then "
        "load, summarise, score, compare and alert on them here.",
        epilog="Run `llmvigil COMMAND --help` for a command's options. Try `llmvigil demo`.",
    )
    parser.add_argument("--version", action="version", version=f"llmvigil {__version__}")
    parser.add_argument("--config", type=_text, help=f"settings file (default: ./{CONFIG_FILE})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_help = STORE_HELP

    init = _command(
        commands, "init", "write a commented starter llmvigil.toml",
        "Write llmvigil.toml with every setting, its default and what it does; every key is "
        "optional.",
    )  # fmt: skip
    init.add_argument(
        "--path", type=_text, default=CONFIG_FILE, help=f"file to write (default: {CONFIG_FILE})"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(run=cmd_init)

    ingest = _command(
        commands, "ingest", "load spool segments into the store",
        "Load the segment files apps spooled ([collector] sink = \"spool\") into the store, "
        "deleting each once committed. The process that owns a DuckDB file does this (or "
        "`llmvigil up` does it continuously).",
    )  # fmt: skip
    ingest.add_argument("--spool", type=_text, help="spool folder (default: [collector] spool_dir)")
    ingest.add_argument("--store", type=_text, help=store_help)
    ingest.set_defaults(run=cmd_ingest)

    metrics = _command(
        commands, "metrics", "the per-grain health table",
        "Calls, failed calls, latency percentiles and tokens per time bucket, computed in the "
        "store. The table fits 80 columns; --wide (or --format csv/json) gives every figure "
        "of the cloud-monitor form: TimeGenerated, MetricName, Total, Count, Maximum, "
        "Minimum, Average, TimeGrain, UnitName, P50, P95, P99.",
    )  # fmt: skip
    metrics.add_argument(
        "--grain", default="1m", help="bucket size from 1s to 366d: 1m (default), 5m, 1h, 1d"
    )
    metrics.add_argument(
        "--since",
        default="1h",
        help="ISO time (UTC unless zoned) or span back: 15m, 1h (default), 7d; `all` for all time",
    )
    metrics.add_argument("--until", help="ISO time or span back from now (default: no end)")
    metrics.add_argument("--app", type=_text)
    metrics.add_argument("--model", type=_text)
    metrics.add_argument(
        "--kind",
        default="llm",
        choices=(*KINDS, "all"),
        help="span kind to count: llm (default), chain, tool, ... or all",
    )
    metrics.add_argument("--format", choices=("table", "csv", "json"), default="table")
    metrics.add_argument(
        "--wide", action="store_true", help="the table with a line per metric and every figure"
    )
    metrics.add_argument("--store", type=_text, help=store_help)
    metrics.set_defaults(run=cmd_metrics)

    evaluate = _command(
        commands, "evaluate", "score stored spans (or a dataset file) with the evaluators",
        "Score the stored spans that lack a score (a committed batch at a time), or with "
        "--dataset a JSONL file without the store.\n\nThe --dataset file:\n" + LINE_FORMAT,
    )  # fmt: skip
    evaluate.add_argument("--store", type=_text, help=store_help)
    evaluate.add_argument(
        "--evaluators", type=_text, help="comma-separated names (default: [evaluators])"
    )
    evaluate.add_argument(
        "--batch-size", type=_whole(100_000), help="spans per committed batch (1 to 100,000)"
    )
    evaluate.add_argument("--no-judge", action="store_true", help="skip the LLM judge")
    evaluate.add_argument(
        "--retry-errors",
        action="store_true",
        help="score again the spans whose evaluator or judge failed",
    )
    evaluate.add_argument("--watch", action="store_true", help="run again every --interval s")
    evaluate.add_argument(
        "--interval", type=_seconds(86_400), help="seconds, up to a day (default: [evaluators])"
    )
    evaluate.add_argument(
        "--dataset", type=_text, help="score this JSONL file instead of the store"
    )
    evaluate.add_argument(
        "--output", type=_text, help="with --dataset: write the scores here (JSONL)"
    )
    evaluate.set_defaults(run=cmd_evaluate)

    drift = _command(
        commands, "drift", "compare the current window with a reference window, feature by feature",
        "Test whether prompts, answers, latency, tokens, errors, models and scores of the "
        "current window differ from a reference window (Evidently's tests) and store the "
        "results; a drifted embedding lists the new topics with examples.",
    )  # fmt: skip
    _drift_filter_options(drift, store_help)
    drift.add_argument(
        "--since", type=_text, help="current window start (default: the last [drift] window)"
    )
    drift.add_argument("--until", type=_text, help="current window end (default: now)")
    drift.add_argument("--reference-since", type=_text, help="reference window start")
    drift.add_argument(
        "--wide", action="store_true", help="one table with every figure and what changed"
    )
    drift.add_argument("--reference-until", type=_text, help="reference window end")
    drift.add_argument("--format", choices=("table", "json"), default="table")
    drift.set_defaults(run=cmd_drift)
    drift_actions = drift.add_subparsers(dest="drift_action")
    baseline = drift_actions.add_parser(
        "baseline", help="pin the reference window later drift runs compare with"
    )
    _drift_filter_options(baseline, store_help)
    baseline.add_argument("--since", type=_text, required=True, help="ISO time or span back (7d)")
    baseline.add_argument("--until", type=_text, help="ISO time or span back (default: now)")
    baseline.set_defaults(run=cmd_drift_baseline)
    history = drift_actions.add_parser("history", help="list stored drift results")
    history.add_argument("--feature", type=_text, help="one feature (latency_ms, score.relevance)")
    history.add_argument("--since", default="all", help="computed since (default: all)")
    history.add_argument("--limit", type=_whole(1_000_000), default=200)
    history.add_argument("--format", choices=("table", "json"), default="table")
    history.add_argument("--store", type=_text, help=store_help)
    history.set_defaults(run=cmd_drift_history)

    from llmvigil.alerts.commands import add_commands

    add_commands(commands, store_help)

    retention = _command(
        commands, "retention", "delete spans past [retention] spans_days, with their scores",
        "Delete the spans older than their app's retention ([retention] spans_days and apps), "
        "with their evaluations, vectors and feedback, in batches of [retention] batch_size, "
        "each one transaction. --dry-run counts what would go and deletes nothing.",
    )  # fmt: skip
    retention.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )
    retention.add_argument("--store", type=_text, help=store_help)
    retention.set_defaults(run=cmd_retention)

    up = _command(
        commands, "up", "own the store: serve the API, run the scheduled jobs",
        "Own the store: serve the HTTP API (spans, OTLP traces, feedback), ingest the spool, "
        "and run the evaluators, drift and the alert check at their intervals, until Ctrl-C "
        "or SIGTERM.",
    )  # fmt: skip
    up.add_argument("--host", type=_text, help="address to listen on (default: [server] host)")
    up.add_argument("--port", type=int, help="port (default: [server] port, 4319; 0: any free)")
    up.add_argument("--store", type=_text, help=store_help)
    up.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback address with no API key"
    )
    up.add_argument(
        "--no-evaluate", action="store_true", help="ingest and alert only: no evaluators, drift"
    )
    up.add_argument(
        "--role",
        choices=("all", "ingest", "evaluate", "scheduler"),
        default="all",
        help="PostgreSQL: run one part in this process (ingest: the API and the spool; "
        "evaluate: scoring, shared with other evaluate processes; scheduler: drift, alerts)",
    )
    up.add_argument(
        "--dashboard",
        action="store_true",
        help="serve the dashboard too (as [dashboard] enabled; at [dashboard] host and port)",
    )
    up.set_defaults(run=cmd_up)

    dashboard = _command(
        commands, "dashboard", "browse traffic, quality, drift, traces and alerts",
        "Serve the Streamlit dashboard over the store: overview, metrics, quality, drift, "
        "traces, alerts and sessions, at http://HOST:PORT/overview. With a DuckDB store it "
        "reads through `llmvigil up` when that runs, and otherwise serves the file itself "
        "(no ingest, no jobs) until Ctrl-C.",
    )  # fmt: skip
    dashboard.add_argument(
        "--host", type=_text, help="address to serve on (default: [dashboard] host, 127.0.0.1)"
    )
    dashboard.add_argument("--port", type=int, help="port (default: [dashboard] port, 8501)")
    dashboard.add_argument("--store", type=_text, help=store_help)
    dashboard.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback address with no password"
    )
    dashboard.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password (prompt or stdin) and print its hash for [dashboard] "
        "password_hash_env, then exit",
    )
    dashboard.set_defaults(run=cmd_dashboard)

    demo = _command(
        commands, "demo", "simulate an assistant and show what llmvigil sees",
        "Send an hour of simulated support requests through @observe and the spool, with an "
        "incident 42 to 54 minutes in (slow answers, errors, wrong and hostile answers, new "
        f"questions), then show the health table, the scores, drift and alerts. It writes "
        f"its own store, {DEMO_STORE}, replaced on each run, never your llmvigil.duckdb.",
    )  # fmt: skip
    demo.add_argument(
        "--requests",
        type=_whole(100_000),
        default=600,
        help="simulated requests (default 600); each records 3 spans: the request's chain, "
        "its retrieval and its model call",
    )
    demo.add_argument("--spans", type=_renamed_spans, help=argparse.SUPPRESS)
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--no-evaluate", action="store_true", help="skip the evaluators")
    demo.add_argument(
        "--store", type=_text, help=f"{store_help}; default: the demo's own {DEMO_STORE}"
    )
    demo.add_argument("--mix", action="store_true", help="let --store hold other apps' spans too")
    demo.set_defaults(run=cmd_demo)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    # A subcommand's --help shows its description, not the one-line help of the list: those
    # without a longer description open with that line.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if sub.description is None and summaries.get(name):
                    sub.description = summaries[name][0].upper() + summaries[name][1:] + "."
                _describe(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmvigil`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        from llmvigil.server.commands import forward_to_owner

        # While `llmvigil up` holds a DuckDB store, no other process can open it: ask it.
        forwarded = forward_to_owner(args, argv)
        if forwarded is not None:
            return forwarded
        return args.run(args)
    except LlmvigilError as exc:
        errors.print(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `llmvigil metrics | head`: the reader has what it wanted
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
