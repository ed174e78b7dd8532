"""Retention: deleting old spans with their evaluations, vectors and feedback, on DuckDB.

A DuckDB file holds ``--spans`` spans over 20 days, each with 3 evaluations, a
quarter with vectors and a tenth with feedback (on the span, and on its trace
for half of those). Retention keeps 10 days, so half of everything goes, in
batches of ``--batch-size``. Timed: the dry run (counting what would go), then
the run itself, each in a fresh copy of the file. With ``--compare``, the same
run again with the ids bound as an ``IN`` list of parameters instead of the
Arrow table retention joins on (see ``llmvigil.storage.retention._delete_ids``).

Usage::

    python benchmarks/bench_retention.py [--spans 200000] [--batch-size 5000] [--compare]
        [--write]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from _report import header, load_average, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HEADING = "## Retention"
NOW = datetime(2026, 12, 1)


def build(path: Path, spans: int) -> None:
    """A store of ``spans`` spans over the 20 days before NOW, with their rows."""
    from llmvigil.storage import Store
    from tests.storage.spans_factory import BATCH_SCHEMA, make_span

    rng = np.random.default_rng(7)
    with Store(f"duckdb:///{path}") as store:
        template = make_span(0)
        ages = np.sort(rng.uniform(0, 20 * 86400, spans))[::-1]
        ids = [f"s{i:09d}" for i in range(spans)]
        traces = [f"t{i // 4:09d}" for i in range(spans)]
        starts = [NOW - timedelta(seconds=float(a)) for a in ages]
        columns = {}
        for name in BATCH_SCHEMA.names:
            if name == "span_id":
                columns[name] = ids
            elif name == "trace_id":
                columns[name] = traces
            elif name in ("start_time", "end_time"):
                columns[name] = starts
            elif name == "app":
                columns[name] = [("checkout", "support", "internal")[i % 3] for i in range(spans)]
            else:
                value = template[name]
                columns[name] = [
                    json.dumps(value) if isinstance(value, list | dict) else value
                ] * spans
        for start in range(0, spans, 50_000):
            part = {k: v[start : start + 50_000] for k, v in columns.items()}
            store.append_spans(pa.Table.from_pydict(part, schema=BATCH_SCHEMA))
        cursor = store._duck.cursor()
        span_ids = pa.array(ids)
        evaluations = pa.table(
            {
                "span_id": pa.concat_arrays([span_ids] * 3),
                "evaluator": pa.array(["relevance"] * spans + ["brevity"] * spans
                                      + ["toxicity"] * spans),
                "evaluator_version": pa.array(["1"] * (3 * spans)),
                "score": pa.array(rng.random(3 * spans)),
                "label": pa.nulls(3 * spans, pa.string()),
                "passed": pa.array([True] * (3 * spans)),
                "method": pa.array(["bench"] * (3 * spans)),
                "details": pa.array(["{}"] * (3 * spans)),
                "evaluated_at": pa.array([NOW] * (3 * spans), pa.timestamp("us")),
            }
        )  # fmt: skip
        cursor.register("e", evaluations)
        cursor.execute("INSERT INTO evaluations SELECT * FROM e")
        every4 = ids[::4]
        vectors = pa.table(
            {
                "span_id": every4,
                "model": ["m"] * len(every4),
                "input_vector": [b"\x01" * 384] * len(every4),
                "output_vector": [b"\x02" * 384] * len(every4),
                "created_at": pa.array([NOW] * len(every4), pa.timestamp("us")),
            }
        )
        cursor.register("v", vectors)
        cursor.execute("INSERT INTO span_vectors SELECT * FROM v")
        rated = list(range(0, spans, 10))
        feedback = pa.table(
            {
                "feedback_id": [f"f{i}" for i in rated] + [f"g{i}" for i in rated[::2]],
                "span_id": [ids[i] for i in rated] + [None] * len(rated[::2]),
                "trace_id": [None] * len(rated) + [traces[i] for i in rated[::2]],
                "name": ["thumbs"] * (len(rated) + len(rated[::2])),
                "score": [1.0] * (len(rated) + len(rated[::2])),
                "label": pa.nulls(len(rated) + len(rated[::2]), pa.string()),
                "comment": pa.nulls(len(rated) + len(rated[::2]), pa.string()),
                "source": ["human"] * (len(rated) + len(rated[::2])),
                "author": pa.nulls(len(rated) + len(rated[::2]), pa.string()),
                "created_at": pa.array([NOW] * (len(rated) + len(rated[::2])),
                                       pa.timestamp("us")),
            }
        )  # fmt: skip
        cursor.register("f", feedback)
        cursor.execute("INSERT INTO feedback SELECT * FROM f")
        cursor.execute("CHECKPOINT")
        cursor.close()


def timed_run(path: Path, batch_size: int, dry_run: bool) -> tuple[float, dict, int]:
    from llmvigil.storage import Store
    from llmvigil.storage.retention import RetentionPolicy

    policy = RetentionPolicy(spans_days=10, batch_size=batch_size)
    with Store(f"duckdb:///{path}") as store:
        started = time.perf_counter()
        report = store.delete_expired(policy, dry_run=dry_run, now=NOW)
        seconds = time.perf_counter() - started
    return seconds, report.totals, report.batches


def with_in_lists():
    """Retention's DuckDB path replaced by the portable one: ids as bound ``IN`` parameters."""
    import sqlalchemy as sa

    from llmvigil.storage import retention

    def delete_ids(conn, duck, column, ids):
        statement = sa.delete(column.table).where(column.in_(ids))
        return int(conn.execute(statement).rowcount or 0)

    def select_in(conn, duck, query, column, ids):
        return [tuple(r) for r in conn.execute(query.where(column.in_(ids)))]

    retention._delete_ids, retention._select_in = delete_ids, select_in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--compare", action="store_true", help="also time IN-list deletes")
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    load = [load_average(), None]
    folder = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    try:
        source = folder / "source.duckdb"
        started = time.perf_counter()
        build(source, args.spans)
        built = time.perf_counter() - started
        runs = []
        for label, dry in (("dry run (counts only)", True), ("retention", False)):
            copy = folder / "copy.duckdb"
            shutil.copy(source, copy)
            runs.append((label, *timed_run(copy, args.batch_size, dry)))
            copy.unlink()
        if args.compare:
            with_in_lists()
            copy = folder / "copy.duckdb"
            shutil.copy(source, copy)
            runs.append(
                ("retention, ids as IN parameters", *timed_run(copy, args.batch_size, False))
            )
        load[1] = load_average()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    command = "python benchmarks/bench_retention.py " + " ".join(sys.argv[1:])
    lines = header(HEADING, command.strip(), ["duckdb", "sqlalchemy"], tuple(load))
    lines += [
        "",
        f"{args.spans:,} spans over 20 days (3 evaluations each, vectors for a quarter, "
        f"feedback for a tenth and on half of those spans' traces), built in {built:.1f} s; "
        f"spans_days = 10, batch_size = {args.batch_size:,}.",
        "",
        "| run | spans | evaluations | vectors | feedback | batches | seconds | s per 100k spans |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, seconds, totals, batches in runs:
        per = seconds / max(totals["spans"], 1) * 100_000
        lines.append(
            f"| {label} | {totals['spans']:,} | {totals['evaluations']:,} | "
            f"{totals['span_vectors']:,} | {totals['feedback']:,} | {batches} | "
            f"{seconds:.2f} | {per:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, text)


if __name__ == "__main__":
    main()
