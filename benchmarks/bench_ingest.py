"""Ingest and metrics: spans per second through ``Store.append_spans`` beside a raw DuckDB append.

Synthetic but realistic span batches (unique 32-hex span ids, traces of a few
spans, apps, models, long-tailed latencies, tokens and costs, prompts and
responses of 200-800 bytes, retrieved passages as JSON, times over 24 hours)
are built with numpy and pyarrow before any timing. Each batch is then appended
to two fresh DuckDB files, alternating which goes first: through
``Store.append_spans`` (checks and casts the batch, stamps ``ingested_at``,
``INSERT OR IGNORE`` into ``spans`` with its primary key on ``span_id``), and
raw (``INSERT INTO spans SELECT * FROM arrow_table`` into a table of the same
columns and types without a key, the batch already holding ``ingested_at``).
Times include the checkpoints DuckDB runs at commit and on close. Then
``Store.metrics`` over all spans at grains 1m, 5m and 1h, and the file sizes.

``--investigate`` then times where the Store's extra cost goes, each variant in
a fresh file on the same batches: its Python-side checks alone, raw appends
into a table with the same primary key (plain ``INSERT`` and ``INSERT OR
IGNORE``), deduplicating by an anti-join without a key, JSON vs VARCHAR
columns, and resending a batch already stored.

Usage::

    python benchmarks/bench_ingest.py [--spans 1000000] [--batch 100000] [--dir PATH]
                                      [--investigate] [--write]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _report import header, load_average, write_section

from llmvigil.storage.schema import SPAN_ARROW_SCHEMA, SPAN_JSON_COLUMNS
from llmvigil.storage.store import Store

RESULTS = Path(__file__).with_name("RESULTS.md")
#: Versions recorded with the results.
PACKAGES = ["duckdb", "pyarrow", "numpy"]
SECTION = "## Ingest and metrics"
TARGET_SHARE = 0.5
TARGET_METRICS_S = 1.0
GRAINS = ("1m", "5m", "1h")
BATCH_SCHEMA = SPAN_ARROW_SCHEMA.remove(SPAN_ARROW_SCHEMA.get_field_index("ingested_at"))
DAY_START_US = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp()) * 1_000_000

# -- synthetic spans ---------------------------------------------------------------------

VOCABULARY = (
    "the to of and a in is it you that for on with as be this are can your have at or not "
    "will from by we an if my do what how all one use they more about which when there so "
    "please answer question order account password reset email refund shipping delivery "
    "policy invoice payment card subscription plan upgrade cancel support customer help "
    "product price return days business working error request response model context "
    "document section page summary according following information provided based user "
    "settings security login access team data report export api key limit rate token time"
)
WORDS = tuple(VOCABULARY.split())
APPS = ("support-bot", "search-assistant", "sales-copilot", "doc-qa", "internal-agent")
APP_P = (0.4, 0.25, 0.15, 0.15, 0.05)
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama-3.1-8b", "mistral-small")
MODEL_P = (0.45, 0.2, 0.15, 0.12, 0.08)
PRICES = np.array([[0.15, 0.6], [2.5, 10.0], [3.0, 15.0], [0.05, 0.08], [0.2, 0.6]]) / 1e6
KINDS = ("llm", "retrieval", "chain", "tool", "embedding")
KIND_P = (0.55, 0.2, 0.12, 0.08, 0.05)
NAMES = (
    ("chat.completions.create", "answer", "summarise", "classify_intent"),
    ("retrieve", "vector_search", "rerank", "keyword_search"),
    ("rag_pipeline", "handle_ticket", "agent_step", "plan"),
    ("lookup_order", "create_refund", "send_email", "calculator"),
    ("embed_query", "embed_documents", "embed_query", "embed_documents"),
)
ERRORS = (
    ("RateLimitError", "Rate limit reached for requests. Please try again in 20s."),
    ("APITimeoutError", "Request timed out."),
    ("BadRequestError", "This model's maximum context length is 128000 tokens."),
    ("InternalServerError", "The server had an error while processing your request."),
)
TAGS = ('["prod"]', '["prod", "beta"]', '["eval"]', "[]", '["prod", "priority"]')
METADATA = tuple(
    f'{{"region": "{region}", "temperature": {temperature}, "retries": {retries}}}'
    for region in ("eu-west-1", "us-east-1", "ap-south-1")
    for temperature in (0.0, 0.2, 0.7)
    for retries in (0, 1)
)


def _corpus(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` bytes of English-like text (Zipf-weighted words), as a uint8 array."""
    vocab = np.frombuffer(" ".join(WORDS).encode() + b" ", dtype=np.uint8)
    ends = np.flatnonzero(vocab == ord(" ")) + 1
    starts = np.concatenate([[0], ends[:-1]])
    lengths = ends - starts
    weights = 1 / np.arange(1, len(WORDS) + 1)
    picks = rng.choice(len(WORDS), size=size // 2, p=weights / weights.sum())
    out_lengths = lengths[picks]
    out_starts = np.cumsum(out_lengths) - out_lengths
    source = np.repeat(starts[picks] - out_starts, out_lengths) + np.arange(out_lengths.sum())
    return vocab[source][:size]


class Texts:
    """Slices of one shared text buffer as Arrow string arrays (no copy per string)."""

    def __init__(self, rng: np.random.Generator, longest_column: int) -> None:
        base = _corpus(rng, 8 << 20)
        copies = -(-longest_column // len(base)) + 1
        self.data = np.tile(base, copies)
        self.buffer = pa.py_buffer(self.data)
        self.rng = rng

    def lengths(self, n: int, low: int, high: int, median: float) -> np.ndarray:
        drawn = self.rng.lognormal(np.log(median), 0.45, n)
        return np.clip(drawn, low, high).astype(np.int32)

    def column(self, lengths: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
        if valid is not None:
            lengths = np.where(valid, lengths, 0).astype(np.int32)
        total = int(lengths.sum())
        start = int(self.rng.integers(0, len(self.data) - total))
        offsets = np.empty(len(lengths) + 1, dtype=np.int32)
        offsets[0] = start
        np.cumsum(lengths, out=offsets[1:])
        offsets[1:] += start
        bitmap = None
        if valid is not None:
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), self.buffer, bitmap)


def hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random 128-bit ids as 32-hex-digit strings."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((n, 32), dtype=np.uint8)
    out[:, 0::2] = digits[raw >> 4]
    out[:, 1::2] = digits[raw & 15]
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


def _pick(rng: np.random.Generator, values: tuple, n: int, p: tuple | None = None) -> pa.Array:
    index = rng.choice(len(values), size=n, p=p)
    return pa.array(values, pa.string()).take(pa.array(index))


def _masked(array: pa.Array, valid: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(valid), array, pa.nulls(len(array), array.type))


def make_batch(
    rng: np.random.Generator, texts: Texts, start_us: np.ndarray, users: pa.Array
) -> pa.Table:
    """One batch of spans (the collector's columns, without ``ingested_at``)."""
    n = len(start_us)
    span_id = hex_ids(rng, n)
    sizes = rng.geometric(0.4, size=n)  # spans per trace: mean 2.5
    trace_of = np.repeat(np.arange(n), sizes)[:n]
    first = np.concatenate([[0], np.flatnonzero(np.diff(trace_of)) + 1])
    root = first[np.searchsorted(first, np.arange(n), side="right") - 1]
    is_root = root == np.arange(n)
    trace_id = hex_ids(rng, n).take(pa.array(root))
    parent_id = _masked(span_id.take(pa.array(root)), ~is_root)

    kind_index = rng.choice(len(KINDS), size=n, p=KIND_P)
    names = pa.array([name for group in NAMES for name in group], pa.string())
    name = names.take(pa.array(kind_index * 4 + rng.integers(0, 4, n)))
    model_index = rng.choice(len(MODELS), size=n, p=MODEL_P)
    has_model = np.isin(kind_index, (0, 4))

    latency = rng.lognormal(np.log(700), 0.8, n)
    tail = rng.random(n) < 0.03
    latency[tail] *= rng.uniform(5, 30, tail.sum())  # timeouts and retries: the long tail
    streaming = (kind_index == 0) & (rng.random(n) < 0.6)
    ttft = latency * rng.uniform(0.05, 0.4, n)
    failed = rng.random(n) < 0.02
    error_index = rng.integers(0, len(ERRORS), n)

    bytes_in = texts.lengths(n, 200, 800, 420)
    bytes_out = np.where(failed, 0, texts.lengths(n, 200, 800, 380)).astype(np.int32)
    has_context = (kind_index <= 1) & (rng.random(n) < 0.5)
    passage_a = texts.column(texts.lengths(n, 150, 400, 250), has_context)
    passage_b = texts.column(texts.lengths(n, 150, 400, 250), has_context)
    context = pc.binary_join_element_wise('["', passage_a, '", "', passage_b, '"]', "")
    has_reference = rng.random(n) < 0.05

    prompt_tokens = bytes_in // 4 + rng.integers(50, 400, n)
    completion_tokens = bytes_out // 4
    price = PRICES[model_index]
    cost = prompt_tokens * price[:, 0] + completion_tokens * price[:, 1]
    start = start_us.astype("datetime64[us]")
    end = (start_us + (latency * 1000).astype(np.int64)).astype("datetime64[us]")

    columns = {
        "span_id": span_id,
        "trace_id": trace_id,
        "parent_id": parent_id,
        "name": name,
        "kind": pa.array(KINDS, pa.string()).take(pa.array(kind_index)),
        "app": _pick(rng, APPS, n, APP_P),
        "environment": _pick(rng, ("production", "staging"), n, (0.9, 0.1)),
        "model": _masked(pa.array(MODELS, pa.string()).take(pa.array(model_index)), has_model),
        "prompt_version": _pick(rng, ("v1", "v2", "v3", "v4"), n),
        "user_id": users.take(pa.array(rng.integers(0, len(users), n))),
        "session_id": hex_ids(rng, 1 + n // 8).take(pa.array(rng.integers(0, 1 + n // 8, n))),
        "start_time": pa.array(start),
        "end_time": pa.array(end),
        "latency_ms": pa.array(latency),
        "ttft_ms": pa.array(np.where(streaming, ttft, np.nan), from_pandas=True),
        "status": pa.array(np.where(failed, "error", "ok")),
        "error_type": _masked(pa.array([e[0] for e in ERRORS]).take(pa.array(error_index)), failed),
        "error_message": _masked(
            pa.array([e[1] for e in ERRORS]).take(pa.array(error_index)), failed
        ),
        "input_text": texts.column(bytes_in),
        "output_text": texts.column(bytes_out, ~failed),
        "context": context,
        "reference": texts.column(texts.lengths(n, 100, 400, 200), has_reference),
        "prompt_tokens": pa.array(prompt_tokens.astype(np.int64)),
        "completion_tokens": pa.array(completion_tokens.astype(np.int64)),
        "total_tokens": pa.array((prompt_tokens + completion_tokens).astype(np.int64)),
        "tokens_estimated": pa.array(rng.random(n) < 0.1),
        "cost_usd": pa.array(cost),
        "bytes_in": pa.array(bytes_in.astype(np.int64)),
        "bytes_out": pa.array(bytes_out.astype(np.int64)),
        "tags": _pick(rng, TAGS, n),
        "metadata": _pick(rng, METADATA, n),
        "truncated": pa.array(rng.random(n) < 0.001),
    }
    return pa.Table.from_pydict(columns, schema=BATCH_SCHEMA)


def make_batches(spans: int, batch: int, seed: int = 7) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    texts = Texts(rng, longest_column=batch * 800)
    users = pa.array([f"user-{i:05d}" for i in range(20_000)])
    start_us = np.sort(DAY_START_US + rng.integers(0, 86_400_000_000, spans))
    return [make_batch(rng, texts, start_us[i : i + batch], users) for i in range(0, spans, batch)]


def with_ingested_at(table: pa.Table) -> pa.Table:
    now = datetime.now(UTC).replace(tzinfo=None)
    stamp = pa.array(np.full(table.num_rows, np.datetime64(now, "us")))
    return table.append_column(SPAN_ARROW_SCHEMA.field("ingested_at"), stamp)


# -- raw DuckDB ----------------------------------------------------------------------------

_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.timestamp("us"): "TIMESTAMP",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
}


def spans_ddl(primary_key: bool = False, json: bool = True) -> str:
    """``CREATE TABLE spans`` with the store's columns and types, with or without its key."""
    columns = []
    for field in SPAN_ARROW_SCHEMA:
        sql_type = "JSON" if json and field.name in SPAN_JSON_COLUMNS else _SQL_TYPES[field.type]
        null = "" if field.nullable else " NOT NULL"
        key = " PRIMARY KEY" if primary_key and field.name == "span_id" else ""
        columns.append(f'"{field.name}" {sql_type}{null}{key}')
    return f"CREATE TABLE spans ({', '.join(columns)})"


class RawTarget:
    """A DuckDB file with a ``spans`` table, appended to by one SQL statement per batch."""

    def __init__(self, path: Path, insert: str, primary_key: bool = False, json: bool = True):
        self.path = path
        self.con = duckdb.connect(str(path))
        self.con.execute(spans_ddl(primary_key, json))
        self.insert = insert

    def append(self, table: pa.Table) -> None:
        params = None
        if "$lo" in self.insert:  # the batch's own time range, for a windowed anti-join
            bounds = pc.min_max(table.column("start_time"))
            params = {"lo": bounds["min"].as_py(), "hi": bounds["max"].as_py()}
        self.con.register("batch", table)
        try:
            self.con.execute(self.insert, params)
        finally:
            self.con.unregister("batch")

    def close(self) -> None:
        self.con.close()


RAW_INSERT = "INSERT INTO spans SELECT * FROM batch"


class StoreTarget:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = Store(f"duckdb:///{path}")
        self.inserted = 0

    def append(self, table: pa.Table) -> None:
        self.inserted += self.store.append_spans(table)

    def close(self) -> None:
        self.store.close()


# -- the benchmark -------------------------------------------------------------------------


def timed(action: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    action()
    return time.perf_counter() - t0


def ingest_side_by_side(
    targets: dict[str, Any], batches: dict[str, list[pa.Table]]
) -> dict[str, dict[str, float]]:
    """Append every batch to every target, rotating which goes first; seconds per target."""
    names = list(targets)
    per_batch: dict[str, list[float]] = {name: [] for name in names}
    for i in range(len(next(iter(batches.values())))):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            table = batches[name][i]
            per_batch[name].append(timed(lambda n=name, t=table: targets[n].append(t)))
    return {
        name: {
            "append": sum(per_batch[name]),
            "close": timed(targets[name].close),
            "batches": per_batch[name],
        }
        for name in names
    }


def time_metrics(path: Path, runs: int = 3) -> dict[str, dict[str, float]]:
    store = Store(f"duckdb:///{path}")
    try:
        out = {}
        for grain in GRAINS:
            times, rows = [], 0
            for _ in range(runs):
                t0 = time.perf_counter()
                rows = len(store.metrics(grain=grain))
                times.append(time.perf_counter() - t0)
            out[grain] = {"first": times[0], "median": statistics.median(times), "rows": rows}
        return out
    finally:
        store.close()


def run(spans: int, batch: int, investigate: bool, where: str | None = None) -> dict[str, Any]:
    load_before = load_average()
    t0 = time.perf_counter()
    plain = make_batches(spans, batch)
    stamped = [with_ingested_at(t) for t in plain]
    build_s = time.perf_counter() - t0
    print(f"  built {spans:,} spans in {len(plain)} batches in {build_s:.1f} s", file=sys.stderr)

    folder = Path(tempfile.mkdtemp(prefix="llmvigil-bench-ingest-", dir=where))
    try:
        store_path, raw_path = folder / "store.duckdb", folder / "raw.duckdb"
        targets = {"store": StoreTarget(store_path), "raw": RawTarget(raw_path, RAW_INSERT)}
        seconds = ingest_side_by_side(targets, {"store": plain, "raw": stamped})
        inserted = targets["store"].inserted
        print("  ingested; timing metrics", file=sys.stderr)
        metrics = time_metrics(store_path)
        result = {
            "spans": spans,
            "batch": batch,
            "batches": len(plain),
            "folder": str(folder.parent),
            "text_mb": sum(
                pc.sum(pc.binary_length(t.column(c))).as_py() or 0
                for t in plain
                for c in ("input_text", "output_text", "context", "reference")
            )
            / 1e6,
            "seconds": seconds,
            "inserted": inserted,
            "store_mb": store_path.stat().st_size / 1e6,
            "raw_mb": raw_path.stat().st_size / 1e6,
            "metrics": metrics,
        }
        result["load"] = (load_before, load_average())
        if investigate:
            result["investigation"] = run_investigation(folder, plain, stamped)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_investigation(
    folder: Path, plain: list[pa.Table], stamped: list[pa.Table]
) -> list[dict[str, Any]]:
    """Seconds to append all batches for each variant, each in a fresh file."""
    print("  investigating", file=sys.stderr)
    out: list[dict[str, Any]] = []
    conform = [timed(lambda t=t: Store._conform(t)) for t in plain]
    out.append(
        {
            "label": "`Store._conform` alone (checks, casts, ingested_at; no SQL)",
            "batches": conform,
            "close": 0.0,
            "mb": None,
        }
    )
    anti_join = (
        "INSERT INTO spans SELECT * FROM batch b "
        "WHERE NOT EXISTS (SELECT 1 FROM spans s WHERE s.span_id = b.span_id{window})"
    )
    variants = [
        ("raw INSERT, no key, JSON columns (the baseline again)", RAW_INSERT, False, True),
        ("raw INSERT, no key, VARCHAR instead of JSON", RAW_INSERT, False, False),
        ("raw INSERT, PRIMARY KEY (span_id)", RAW_INSERT, True, True),
        (
            "raw INSERT OR IGNORE, PRIMARY KEY (span_id) (what the Store runs)",
            "INSERT OR IGNORE INTO spans SELECT * FROM batch",
            True,
            True,
        ),
        (
            "no key, INSERT ... WHERE NOT EXISTS same span_id (anti-join over the table)",
            anti_join.format(window=""),
            False,
            True,
        ),
        (
            "no key, anti-join limited to the batch's start_time range (zone maps)",
            anti_join.format(window=" AND s.start_time BETWEEN $lo AND $hi"),
            False,
            True,
        ),
        (
            "PRIMARY KEY kept, plain INSERT after that windowed anti-join",
            anti_join.format(window=" AND s.start_time BETWEEN $lo AND $hi"),
            True,
            True,
        ),
    ]
    paths = {label: folder / f"variant-{i}.duckdb" for i, (label, *_) in enumerate(variants)}
    targets = {label: RawTarget(paths[label], sql, key, json) for label, sql, key, json in variants}
    seconds = ingest_side_by_side(targets, dict.fromkeys(targets, stamped))
    for label, path in paths.items():
        out.append(
            {
                "label": label,
                "batches": seconds[label]["batches"],
                "close": seconds[label]["close"],
                "mb": path.stat().st_size / 1e6,
            }
        )
        path.unlink()
    store = StoreTarget(folder / "store-again.duckdb")
    for t in plain:
        store.append(t)
    again = [timed(lambda t=t: store.append(t)) for t in plain]
    store.close()
    out.append(
        {
            "label": "`Store.append_spans` of batches already stored (all ignored)",
            "batches": again,
            "close": 0.0,
            "mb": None,
        }
    )
    return out


# -- reporting -----------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    spans = result["spans"]
    s, r = result["seconds"]["store"], result["seconds"]["raw"]
    store_total, raw_total = s["append"] + s["close"], r["append"] + r["close"]
    store_rate, raw_rate = spans / store_total, spans / raw_total
    share = store_rate / raw_rate
    lines = [
        "| Path | Appends s | Close (checkpoint) s | Spans/s | File MB |",
        "|---|---:|---:|---:|---:|",
        "| `Store.append_spans` (key on span_id; anti-join over the batch's time range, "
        f"INSERT OR IGNORE fallback) | {s['append']:.2f} "
        f"| {s['close']:.2f} | **{store_rate:,.0f}** | {result['store_mb']:.0f} |",
        f"| raw DuckDB `INSERT INTO t SELECT * FROM arrow` (no key) | {r['append']:.2f} "
        f"| {r['close']:.2f} | **{raw_rate:,.0f}** | {result['raw_mb']:.0f} |",
        "",
        f"- Store / raw: **{share:.2f}** of the raw rate (target >= {TARGET_SHARE}: "
        f"{'met' if share >= TARGET_SHARE else 'MISSED'}); {result['inserted']:,} of "
        f"{spans:,} spans inserted by the Store.",
        "",
        "| `store.metrics(grain=...)` over all spans | First run s | Median of 3 s | Metric rows |",
        "|---|---:|---:|---:|",
    ]
    worst = 0.0
    for grain, m in result["metrics"].items():
        worst = max(worst, m["median"])
        lines.append(f"| {grain} | {m['first']:.3f} | **{m['median']:.3f}** | {m['rows']:,} |")
    lines += [
        "",
        f"- Slowest grain: {worst:.3f} s (target < {TARGET_METRICS_S:.0f} s: "
        f"{'met' if worst < TARGET_METRICS_S else 'MISSED'}).",
    ]
    if "investigation" in result:
        lines += [
            "",
            "| Where the Store's time goes (same batches, one fresh file each, appended in "
            "turn) | s | Spans/s | First batch s | Last batch s | File MB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for v in result["investigation"]:
            seconds = sum(v["batches"]) + v["close"]
            size = "" if v["mb"] is None else f"{v['mb']:.0f}"
            lines.append(
                f"| {v['label']} | {seconds:.2f} | {spans / seconds:,.0f} "
                f"| {v['batches'][0]:.2f} | {v['batches'][-1]:.2f} | {size} |"
            )
    return "\n".join(lines)


def section(result: dict[str, Any], command: str) -> str:
    return "\n".join(
        [
            *header(SECTION, command, PACKAGES, result["load"]),
            "",
            f"{result['spans']:,} synthetic spans ({result['text_mb']:,.0f} MB of prompt, "
            f"response, context and reference text) in {result['batches']} batches of "
            f"{result['batch']:,}, built before timing; each batch appended to both fresh "
            f"files in `{result['folder']}` in turn (alternating which goes first). Spans/s "
            "counts appends plus the final close, which checkpoints.",
            "",
            markdown(result),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans to append")
    parser.add_argument("--batch", type=int, default=100_000, help="spans per append")
    parser.add_argument("--investigate", action="store_true", help="time the Store's extra cost")
    parser.add_argument(
        "--dir", default=None, help="folder for the DuckDB files (default: the system temp folder)"
    )
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in RESULTS.md")
    args = parser.parse_args()
    command = f"python benchmarks/bench_ingest.py --spans {args.spans} --batch {args.batch}"
    if args.dir:
        command += f" --dir {args.dir}"
    if args.investigate:
        command += " --investigate"
    result = run(args.spans, args.batch, args.investigate, args.dir)
    print(section(result, command))
    if args.write:
        write_section(RESULTS, SECTION, section(result, command))
        print(f"updated {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
