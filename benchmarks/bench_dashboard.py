"""Dashboard: the time of every query each page runs, at ten million spans.

A DuckDB store of ``--spans`` spans over 30 days (short texts; 3 apps x 3
models x 3 prompt versions, 1 in 50 an error, 8 spans a session) with 5
evaluations each is built (or ``--store PATH`` reuses one built before), and
its score and span rollups refreshed (timed). Then each page's queries, as the
page runs them, for the default 24-hour view and a 30-day view, each page
``--repeats`` times: the median per query and per page (its queries one after
another). Beside them, timed in the same run: a scan of the spans table
(``SELECT sum(latency_ms)``, the floor of any raw aggregate) and the raw
aggregates the rollups replace (the same queries with the rollups turned off),
so figures from a busy machine still compare. Target: every page under 1 s.

Usage::

    python benchmarks/bench_dashboard.py [--spans 10000000] [--store PATH] [--repeats 3]
        [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _report import header, load_average, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HEADING = "## Dashboard queries"
#: The newest span of a built store starts just before this.
BUILT_END = datetime(2026, 12, 3)
EVALUATORS = ("relevance", "completeness", "brevity", "toxicity", "factuality")
#: The longest range the metrics page offers each grain for (llmvigil.dashboard.pages).
GRAIN_LONGEST = {"1m": 6 * 3600, "5m": 3 * 86400, "15m": 7 * 86400, "1h": 62 * 86400}


def build(path: Path, spans: int) -> dict[str, float]:
    """A store of ``spans`` spans over the 30 days before BUILT_END with 5 scores each and
    its rollups refreshed; seconds of each step."""
    from llmvigil.storage import Store
    from llmvigil.storage.rollups import refresh_score_rollups, refresh_span_rollups

    step = 30 * 86400e6 / spans
    seconds: dict[str, float] = {}
    with Store(f"duckdb:///{path}") as store:
        duck = store._duck
        duck.execute("SET enable_progress_bar = false")
        started = time.perf_counter()
        # Arrival order is start order, each span stored 2 s after it started.
        duck.execute(f"""
            INSERT INTO spans (span_id, trace_id, parent_id, name, kind, app, environment, model,
              prompt_version, user_id, session_id, start_time, end_time, latency_ms, ttft_ms,
              status, error_type, error_message, input_text, output_text, prompt_tokens,
              completion_tokens, total_tokens, tokens_estimated, cost_usd, bytes_in, bytes_out,
              truncated, ingested_at)
            SELECT printf('%016x', i), printf('t%015x', i // 2), NULL, 'chat', 'llm',
              ['support', 'search', 'agent'][1 + i % 3], 'prod',
              ['gpt-4o-mini', 'gpt-4o', 'claude-3-haiku'][1 + (i // 7) % 3],
              'v' || (1 + (i // 1000000) % 3), 'u' || (i % 5000), 's' || (i // 8),
              start, start + INTERVAL 1 SECOND, 200 + (hash(i) % 3000)::DOUBLE, NULL,
              CASE WHEN i % 50 = 0 THEN 'error' ELSE 'ok' END, NULL, NULL,
              'How do I reset my password for account ' || (i % 997),
              'Open settings and choose reset, number ' || (i % 31),
              20 + i % 50, 40 + i % 90, 60 + i % 140, false, 0.0001 * (1 + i % 7), 100, 200,
              false, start + INTERVAL 2 SECOND
            FROM (SELECT i, TIMESTAMP '{BUILT_END:%Y-%m-%d %H:%M:%S}'
                    - to_microseconds(CAST(({spans} - i) * {step} AS BIGINT)) AS start
                  FROM range({spans}) r(i))
        """)
        seconds["spans"] = time.perf_counter() - started
        started = time.perf_counter()
        for name in EVALUATORS:
            duck.execute(f"""
                INSERT INTO evaluations (span_id, evaluator, evaluator_version, score, label,
                  passed, method, details, evaluated_at, span_start, span_app, span_model,
                  span_environment, span_prompt_version)
                SELECT span_id, '{name}', '3', (hash(span_id || '{name}') % 1000) / 1000.0, NULL,
                  (hash(span_id || '{name}') % 1000) >= 300, 'embedding', NULL,
                  ingested_at + INTERVAL 1 SECOND, start_time, app, model, environment,
                  prompt_version
                FROM spans
            """)
        seconds["evaluations"] = time.perf_counter() - started
        duck.execute("CHECKPOINT")
        started = time.perf_counter()
        refresh_score_rollups(store)
        seconds["score rollups, first refresh"] = time.perf_counter() - started
        started = time.perf_counter()
        refresh_span_rollups(store)
        seconds["span rollups, first refresh"] = time.perf_counter() - started
        duck.execute("CHECKPOINT")
    return seconds


def refresh_costs(store: Any, end: datetime) -> dict[str, float]:
    """Seconds of a span rollup refresh with nothing new, and with five minutes of new spans
    (the rate of the store) arrived since the last one."""
    import pyarrow as pa
    import sqlalchemy as sa

    from llmvigil.storage import schema
    from llmvigil.storage.rollups import refresh_span_rollups

    costs: dict[str, float] = {}
    refresh_span_rollups(store)  # the first read of a store opened cold is not what is timed
    started = time.perf_counter()
    refresh_span_rollups(store)
    costs["span rollup refresh, nothing new"] = time.perf_counter() - started
    s = schema.spans.c
    recent = store.fetch_arrow(
        sa.select(schema.spans).where(s.start_time >= end - timedelta(minutes=5)).limit(100_000)
    )
    copy = recent.drop_columns(["ingested_at"])
    ids = pa.array([f"new-{i}" for i in range(copy.num_rows)])
    copy = copy.set_column(copy.schema.get_field_index("span_id"), "span_id", ids)
    store.append_spans(copy)
    time.sleep(6)  # past the refresh's settle
    started = time.perf_counter()
    refresh_span_rollups(store)
    label = f"span rollup refresh, {copy.num_rows:,} new spans (5 minutes' worth)"
    costs[label] = time.perf_counter() - started
    with store.engine.begin() as conn:
        conn.execute(sa.delete(schema.spans).where(s.span_id.like("new-%")))
    return costs


def grain_for(seconds: float) -> str:
    """The metrics page's default grain for a range (its second fitting choice)."""
    fitting = [g for g in ("1m", "5m", "15m", "1h", "1d") if seconds <= GRAIN_LONGEST.get(g, 1e18)]
    return fitting[min(1, len(fitting) - 1)]


def pages(store: Any, view: Any) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """Each page's queries, in order, as callables (later ones use earlier results, as the
    page does)."""
    from llmvigil.dashboard.queries import run_query

    def q(name: str, **params: Any) -> Callable[[], Any]:
        return lambda: run_query(store, name, view, params)

    def worst() -> Any:
        summary = run_query(store, "quality_summary", view, {})
        names = sorted(set(summary["evaluator"].to_pylist())) or ["relevance"]
        return run_query(store, "worst_spans", view, {"evaluator": names[0]})

    def session_scores() -> Any:
        listed = run_query(store, "sessions", view, {"limit": 50})
        return run_query(
            store, "session_scores", view, {"session_ids": listed["session_id"].to_pylist()}
        )

    def drift_map() -> Any:
        runs = run_query(store, "drift_runs", view, {})
        if not runs.num_rows:
            return runs
        latest = runs.to_pylist()[0]
        params = {"run_id": latest["run_id"], "feature": latest["feature"]}
        return run_query(store, "embedding_map", view, params)

    grain = grain_for(view.seconds)
    return {
        "overview": [("filter_options", q("filter_options")),
                     ("overview_totals", q("overview_totals")),
                     ("overview_series", q("overview_series"))],
        "metrics": [("filter_options", q("filter_options")),
                    (f"health ({grain})", q("health", grain=grain))],
        "quality": [("filter_options", q("filter_options")),
                    ("quality_summary", q("quality_summary")),
                    ("quality_series", q("quality_series")),
                    ("worst_spans (+ quality_summary)", worst)],
        "drift": [("filter_options", q("filter_options")),
                  ("drift_runs (+ embedding_map)", drift_map)],
        "traces": [("filter_options", q("filter_options")),
                   ("search_spans", q("search_spans", limit=50))],
        "sessions": [("filter_options", q("filter_options")),
                     ("sessions", q("sessions", limit=50)),
                     ("session_scores (+ sessions)", session_scores)],
        "alerts": [("alert_states", q("alert_states")), ("alert_events", q("alert_events")),
                   ("alert_deliveries", q("alert_deliveries")), ("hook_runs", q("hook_runs"))],
    }  # fmt: skip


def extras(store: Any, view: Any) -> list[tuple[str, Callable[[], Any]]]:
    """Queries a user reaches with one more click: the finest grain offered, a text search."""
    from llmvigil.dashboard.queries import run_query

    finest = next(g for g in ("1m", "5m", "15m", "1h") if view.seconds <= GRAIN_LONGEST[g])
    return [
        (f"health ({finest})", lambda: run_query(store, "health", view, {"grain": finest})),
        ("search_spans, text matching nothing",
         lambda: run_query(store, "search_spans", view, {"text": "zzz-no-match", "limit": 50})),
    ]  # fmt: skip


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_views(store: Any, end: datetime, repeats: int) -> dict[str, dict]:
    """Per view: per page the median seconds of each query and of the page."""
    from llmvigil.dashboard.view import View

    found: dict[str, dict] = {}
    for label, days in (("24 h", 1), ("30 d", 30)):
        view = View(end - timedelta(days=days), end)
        per_page: dict[str, dict] = {}
        for page, steps in pages(store, view).items():
            runs = [[timed(fn) for _, fn in steps] for _ in range(repeats)]
            medians = [statistics.median(r[i] for r in runs) for i in range(len(steps))]
            per_page[page] = {
                "queries": {name: m for (name, _), m in zip(steps, medians, strict=True)},
                "page": statistics.median(sum(r) for r in runs),
            }
        more = {name: statistics.median(timed(fn) for _ in range(repeats))
                for name, fn in extras(store, view)}  # fmt: skip
        found[label] = {"pages": per_page, "extras": more, "view": view}
    return found


def raw_figures(store: Any, views: dict[str, dict], repeats: int) -> dict[str, dict[str, float]]:
    """The rollup queries with the rollups off (the raw aggregates), per view that reads
    rollups (longer than ``ROLLUP_FROM_S``)."""
    from llmvigil.dashboard import queries

    saved = queries.ROLLUP_FROM_S
    queries.ROLLUP_FROM_S = 10**12
    try:
        found: dict[str, dict[str, float]] = {}
        for label, result in views.items():
            view = result["view"]
            if view.seconds <= saved:
                continue
            grain = grain_for(view.seconds)
            calls = {
                "filter_options": ("filter_options", {}),
                "overview_totals": ("overview_totals", {}),
                "overview_series": ("overview_series", {}),
            }
            found[label] = {
                name: statistics.median(
                    timed(lambda n=n, p=p, v=view: queries.run_query(store, n, v, p))
                    for _ in range(repeats)
                )
                for name, (n, p) in calls.items()
            }

            def raw_health(view: Any = view, grain: str = grain) -> Any:
                return store.metrics(grain, view.since, view.until)

            found[label][f"health ({grain})"] = statistics.median(
                timed(raw_health) for _ in range(repeats)
            )
        return found
    finally:
        queries.ROLLUP_FROM_S = saved


def scan(store: Any, repeats: int) -> float:
    import sqlalchemy as sa

    from llmvigil.storage import schema

    q = sa.select(sa.func.sum(schema.spans.c.latency_ms).label("total"))
    return statistics.median(timed(lambda: store.fetch_arrow(q)) for _ in range(repeats))


def report(args: argparse.Namespace, built: dict, spans: int, costs: dict, views: dict,
           raw: dict, floor: float, load: tuple) -> str:  # fmt: skip
    command = "python benchmarks/bench_dashboard.py " + " ".join(sys.argv[1:])
    lines = header(HEADING, command.strip(), ["duckdb", "sqlalchemy", "pyarrow"], load)
    lines += ["", f"{spans:,} spans over 30 days, 5 evaluations each."]
    if built:
        lines.append("Built: " + ", ".join(f"{k} {v:.1f} s" for k, v in built.items()) + ".")
    lines.append(", ".join(f"{k}: {v * 1000:.0f} ms" for k, v in costs.items()) + ".")
    lines += ["", f"Floor, timed in the same run: a scan of the spans table "
              f"(`SELECT sum(latency_ms)`) {floor * 1000:.0f} ms. Medians of {args.repeats} runs; "
              "a page's figure is its queries one after another.", ""]  # fmt: skip
    slowest_page = max(
        ((label, page, v["page"]) for label, r in views.items() for page, v in r["pages"].items()),
        key=lambda x: x[2],
    )
    slowest_query = max(
        ((label, name, t) for label, r in views.items() for v in r["pages"].values()
         for name, t in v["queries"].items()),
        key=lambda x: x[2],
    )  # fmt: skip
    lines += ["| page | view | page ms | x scan | queries (ms) |",
              "| --- | --- | ---: | ---: | --- |"]  # fmt: skip
    for page in views["24 h"]["pages"]:
        for label, r in views.items():
            v = r["pages"][page]
            parts = ", ".join(f"{n} {t * 1000:.0f}" for n, t in v["queries"].items())
            lines.append(
                f"| {page} | {label} | {v['page'] * 1000:.0f} | {v['page'] / floor:.1f} | {parts} |"
            )
    lines += ["", "| one more click | view | ms |", "| --- | --- | ---: |"]
    for label, r in views.items():
        for name, t in r["extras"].items():
            lines.append(f"| {name} | {label} | {t * 1000:.0f} |")
    lines += ["", "Rollups against the raw aggregates they replace, for the views that read "
              "rollups (ranges over a day; the 24 h view reads raw spans, faster there). Same "
              "run; the raw figures are what every range read before span rollups:", "",
              "| query | view | raw ms | now ms | raw / now |",
              "| --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for label, figures in raw.items():
        now = {n: t for v in views[label]["pages"].values() for n, t in v["queries"].items()}
        for name, before in figures.items():
            after = now.get(name)
            if after:
                lines.append(
                    f"| {name} | {label} | {before * 1000:.0f} | {after * 1000:.0f} | "
                    f"{before / after:.1f} |"
                )
    lines += ["", f"Slowest page: {slowest_page[1]} ({slowest_page[0]}), "
              f"{slowest_page[2] * 1000:.0f} ms ({slowest_page[2] / floor:.1f}x the scan); "
              f"slowest query: {slowest_query[1]} ({slowest_query[0]}), "
              f"{slowest_query[2] * 1000:.0f} ms. Target: every page under 1,000 ms."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--store", type=Path, help="reuse (or build once at) this DuckDB file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    import sqlalchemy as sa

    from llmvigil.storage import Store, schema

    load = [load_average(), None]
    folder = None
    path = args.store
    if path is None:
        folder = tempfile.TemporaryDirectory(prefix="bench-dashboard-")
        path = Path(folder.name) / "store.duckdb"
    built = build(path, args.spans) if not path.exists() else {}
    try:
        with Store(f"duckdb:///{path}", create=False) as store:
            s = schema.spans.c
            found = store.fetch_arrow(
                sa.select(sa.func.count().label("n"), sa.func.max(s.start_time).label("last"))
            ).to_pylist()[0]
            end = found["last"].replace(microsecond=0) + timedelta(seconds=1)
            costs = refresh_costs(store, end)
            floor = scan(store, args.repeats)
            views = run_views(store, end, args.repeats)
            raw = raw_figures(store, views, args.repeats)
        load[1] = load_average()
    finally:
        if folder is not None:
            folder.cleanup()
    text = report(args, built, found["n"], costs, views, raw, floor, tuple(load))
    print(text)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, text)


if __name__ == "__main__":
    main()
