"""Alerts: one ``check`` of 100 rules over a store of 1,000,000 spans with scores.

The store holds ``bench_ingest``'s synthetic day of spans (apps, five models,
long-tailed latencies, tokens, costs, errors; times over 24 hours) and a
relevance score for every model call. 100 rules mix the metrics (latency
percentiles, error rate, calls, cost and token sums, time to first token,
relevance mean and fail rate) over windows from 5 minutes to 6 hours, every
one grouped by model; thresholds are set so that some groups fire. No
channels: the figure is the check itself (measuring, states, events).

Timed as of the day's last minute: the first check (every state new, many
groups firing at once, each fetching its example spans), then the median of 5
steady checks. Beside it, in the same run: the 100 rules' aggregates run one
query per rule with no state kept, which is what the check would cost without
sharing one query among the rules that read the same rows.

Usage::

    python benchmarks/bench_alerts.py [--spans 1000000] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from _report import header, load_average, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HEADING = "## Alerts"
METRICS = [
    ("latency_ms.p95", ">", 4000), ("latency_ms.p50", ">", 900), ("error_rate", ">", 0.02),
    ("calls", "<", 50), ("cost_usd.sum", ">", 0.5), ("tokens.sum", ">", 50_000),
    ("ttft_ms.p95", ">", 1500), ("relevance.mean", "<", 0.7), ("relevance.fail_rate", ">", 0.2),
    ("completion_tokens.sum", ">", 20_000),
]  # fmt: skip
WINDOWS = ["5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h", "20m", "45m"]


def rules() -> list[dict]:
    return [
        {
            "name": f"rule-{i:03d}",
            "metric": METRICS[i % len(METRICS)][0],
            "op": METRICS[i % len(METRICS)][1],
            "threshold": METRICS[i % len(METRICS)][2] * (1 + (i // 10) * 0.05),
            "window": WINDOWS[(i // len(METRICS)) % len(WINDOWS)],
            "group_by": ["model"],
            "min_samples": 10,
        }
        for i in range(100)
    ]


def build(path: Path, spans: int) -> datetime:
    """The store of ``spans`` spans and their relevance scores; the last span's time."""
    from bench_ingest import make_batches

    from llmvigil.storage.store import Store

    last = None
    rng = np.random.default_rng(3)
    with Store(f"duckdb:///{path}") as store:
        for table in make_batches(spans, 100_000):
            store.append_spans(table)
            llm = table.filter(pa.compute.equal(table["kind"], "llm"))
            score = rng.beta(6, 2, llm.num_rows)
            scores = pa.table(
                {
                    "span_id": llm["span_id"],
                    "evaluator": pa.array(["relevance"] * llm.num_rows),
                    "evaluator_version": pa.array(["2"] * llm.num_rows),
                    "score": pa.array(score),
                    "label": pa.nulls(llm.num_rows, pa.string()),
                    "passed": pa.array(score >= 0.5),
                    "method": pa.array(["bench"] * llm.num_rows),
                    "details": pa.nulls(llm.num_rows, pa.string()),
                    "evaluated_at": pa.array(
                        [datetime(2026, 11, 24)] * llm.num_rows, pa.timestamp("us")
                    ),
                }
            )
            raw = store.engine.raw_connection()
            try:
                raw.driver_connection.register("scores_batch", scores)
                raw.driver_connection.execute("INSERT INTO evaluations SELECT * FROM scores_batch")
                raw.driver_connection.unregister("scores_batch")
                raw.commit()
            finally:
                raw.close()
            end = table["start_time"].to_numpy().max()
            last = end if last is None else max(last, end)
    return datetime.fromtimestamp(last.astype("datetime64[us]").astype(int) / 1e6, UTC).replace(
        tzinfo=None
    )


def floor_seconds(path: Path, settings, at: datetime) -> float:
    """The 100 rules' aggregates one query per rule: no states, no events, no sharing."""
    from llmvigil.alerts.check import seconds
    from llmvigil.alerts.metrics import measure, parse_metric
    from llmvigil.storage.store import Store

    with Store(f"duckdb:///{path}") as store:
        started = time.perf_counter()
        for rule in settings.alerts:
            window = timedelta(seconds=seconds(rule.window))
            measure(store, parse_metric(rule.metric), at - window, at, rule.group_by, rule.where)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from llmvigil.alerts.check import check_alerts
    from llmvigil.config import Settings
    from llmvigil.storage.store import Store

    load = [load_average(), None]
    settings = Settings.model_validate({"alerts": rules()})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "alerts.duckdb"
        t = time.perf_counter()
        last = build(path, args.spans)
        print(f"built {args.spans:,} spans in {time.perf_counter() - t:.0f} s", flush=True)
        at = last - timedelta(minutes=1)
        with Store(f"duckdb:///{path}") as store:
            started = time.perf_counter()
            first = check_alerts(store, settings, at=at)
            first_s = time.perf_counter() - started
            steady = []
            for k in range(5):
                started = time.perf_counter()
                report = check_alerts(store, settings, at=at + timedelta(seconds=k + 1))
                steady.append(time.perf_counter() - started)
        floor = statistics.median(floor_seconds(path, settings, at) for _ in range(3))
    load[1] = load_average()
    groups = len(first.results)
    firing = sum(r.state == "firing" for r in report.results)
    median = statistics.median(steady)
    met = "met" if median < 1 else "**not met**"
    lines = header(HEADING, f"python benchmarks/bench_alerts.py --spans {args.spans}",
                   ["llmvigil", "duckdb", "sqlalchemy"], tuple(load))  # fmt: skip
    lines += [
        "",
        f"{args.spans:,} spans over a day (bench_ingest's data) with a relevance score for "
        f"each model call; 100 rules over ten metrics and windows of 5 minutes to 6 hours, all "
        f"grouped by model: {groups} rule-groups, {firing} firing. No channels: the check "
        "itself (one aggregate per rule, the states and events written).",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| first check (all states new) | {first_s:.2f} |",
        f"| steady check (median of 5) | **{median:.2f}** |",
        f"| the 100 aggregates alone, one query per rule | {floor:.2f} |",
        "",
        f"- One check of 100 rules: **{median:.2f} s** (target < 1 s: {met}); "
        f"{median / floor:.2f}x the rules' aggregates run one query each (no states), timed "
        "in the same run: rules over the same rows share one query.",
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, body)


if __name__ == "__main__":
    main()
