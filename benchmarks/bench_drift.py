"""Drift: one run over 100,000 + 100,000 spans beside Evidently's own Report on the same data.

Speed: a DuckDB file holds a reference hour and a current hour of ``--spans``
model calls each, with relevance scores and, as the evaluators leave them, the
int8 sentence vectors of the spans in ``[drift] vector_share`` (25 %). The
current hour has the shifts of the drift tests: latency up by a third, a new
topic (an app crash) in 30 % of prompts, another model mix, relevance falling.
In a fresh process ``llmvigil``'s :func:`run_drift` runs with the default
settings over every feature (imports, the first run and a second run timed
apart; peak RSS from ``VmHWM``); in another fresh process Evidently's
``Report`` runs ``DataDriftPreset`` over the same ten columns of all spans plus
``EmbeddingsDrift`` over the same 2,000 + 2,000 sampled prompt and response
vectors that llmvigil compares (the frames are read from the store untimed).
The ratio of the two run times is the machine-independent figure.

Detection: ``--pairs`` pairs of windows of ``--pair-spans`` spans with the
shifts above and as many with none, each in its own in-memory store, the
prompts and answers embedded by the real model: the share of runs in which
each shifted feature was flagged, and of (run, feature) results flagged where
nothing changed.

Storage: the bytes per span that ``span_vectors`` adds to a DuckDB file at
``--vector-spans`` (1,000,000) spans, with vectors kept for 25 % of them.

Usage::

    python benchmarks/bench_drift.py [--spans 100000] [--pairs 10] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from _report import header, load_average, write_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The drift tests' texts: the benchmark measures the shifts the tests check.
from tests.evaluators.drift_data import ANSWERS, CLOSERS, CRASHES, OPENERS, SUPPORT  # noqa: E402

HEADING = "## Drift"
NOW = datetime(2026, 12, 1, 12, 0)
HOUR = timedelta(hours=1)
MODELS = np.array(["gpt-4o-mini", "gpt-4o"])
#: The features each shifted window changes (time to first token follows latency, and the
#: crash questions are longer); the others must stay quiet.
SHIFTED = (
    "latency_ms", "ttft_ms", "input_length", "model", "input_embedding", "score.relevance",
)  # fmt: skip
COLUMNS = (
    "latency_ms", "ttft_ms", "input_length", "output_length", "prompt_tokens",
    "completion_tokens", "cost_usd", "error_rate", "model", "score.relevance",
)  # fmt: skip


def window(rng: np.random.Generator, count: int, start: datetime, shifted: bool) -> tuple:
    """``count`` spans over the hour from ``start`` (Arrow) and their relevance score rows."""
    import pyarrow as pa

    from llmvigil.storage.schema import SPAN_ARROW_SCHEMA

    pool = np.array([o + q + c for q in SUPPORT for o in OPENERS for c in CLOSERS], dtype=object)
    crash = np.array([o + q + c for q in CRASHES for o in OPENERS for c in CLOSERS], dtype=object)
    prompts = pool[rng.integers(0, len(pool), count)]
    if shifted:
        new = rng.random(count) < 0.3
        prompts[new] = crash[rng.integers(0, len(crash), new.sum())]
    error = rng.random(count) < 0.02
    answers = np.array(ANSWERS, dtype=object)[rng.integers(0, len(ANSWERS), count)]
    answers[error] = None
    latency = np.maximum(1.0, rng.normal(1100.0 if shifted else 800.0, 200.0, count))
    ttft = latency * rng.uniform(0.1, 0.3, count)
    model = MODELS[(rng.random(count) < (0.7 if shifted else 0.2)).astype(int)]
    prompt_tokens = rng.integers(150, 400, count)
    completion_tokens = rng.integers(20, 80, count)
    begin = np.datetime64(start, "us")
    starts = begin + np.sort(rng.integers(0, 3_600_000_000, count)).astype("timedelta64[us]")
    ids = [rng.bytes(16).hex() for _ in range(count)]
    columns: dict[str, Any] = {
        "span_id": ids,
        "trace_id": ids,
        "name": ["answer"] * count,
        "kind": ["llm"] * count,
        "app": ["support"] * count,
        "environment": ["production"] * count,
        "model": model,
        "prompt_version": ["v1"] * count,
        "start_time": starts,
        "end_time": starts + (latency * 1000).astype("timedelta64[us]"),
        "latency_ms": latency,
        "ttft_ms": ttft,
        "status": np.where(error, "error", "ok"),
        "input_text": prompts,
        "output_text": answers,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "tokens_estimated": np.zeros(count, dtype=bool),
        "cost_usd": prompt_tokens * 2.5e-7 + completion_tokens * 1e-6,
        "bytes_in": np.array([len(p) for p in prompts]),
        "bytes_out": np.array([len(a or "") for a in answers]),
        "truncated": np.zeros(count, dtype=bool),
    }
    fields = [f for f in SPAN_ARROW_SCHEMA if f.name != "ingested_at"]
    table = pa.table(
        {
            f.name: pa.array(columns[f.name], f.type)
            if f.name in columns
            else pa.nulls(count, f.type)
            for f in fields
        },
        schema=pa.schema(fields),
    )
    mean = 0.6 if shifted else 0.85
    score = np.clip(rng.normal(mean, 0.1, count), 0, 1)
    scores = [
        {"span_id": i, "evaluator": "relevance", "evaluator_version": "2", "score": float(s),
         "method": "bench"}
        for i, s, e in zip(ids, score, error, strict=True)
        if not e
    ]  # fmt: skip
    return table, scores


def fill(store, spans: int, seed: int, shifted: bool, vector_share: float) -> dict[str, Any]:
    """Both windows into ``store``, vectors kept for ``vector_share`` of spans; what it took."""
    from llmvigil.evaluators.drift.sample import keeps_vector, vector_rows
    from llmvigil.evaluators.vectors import shared_vectors

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    encoder = shared_vectors()
    kept = 0
    for start, shift in ((NOW - 2 * HOUR, False), (NOW - HOUR, shifted)):
        table, scores = window(rng, spans, start, shift)
        store.append_spans(table)
        store.write_evaluations(scores)
        ids = table["span_id"].to_pylist()
        prompts = table["input_text"].to_pylist()
        answers = table["output_text"].to_pylist()
        keep = [k for k, i in enumerate(ids) if keeps_vector(i, vector_share)]
        unique = sorted({t for k in keep for t in (prompts[k], answers[k]) if t})
        vectors = dict(zip(unique, encoder.encode(unique), strict=True))
        rows = vector_rows(
            [ids[k] for k in keep],
            [vectors.get(prompts[k]) for k in keep],
            [vectors.get(answers[k]) for k in keep],
        )
        for begin in range(0, len(rows), 20_000):
            store.write_vectors(rows[begin : begin + 20_000])
        kept += len(rows)
    return {"seconds": time.perf_counter() - started, "vectors": kept}


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM).

    Not ``getrusage``: Linux carries the parent's peak into a child across fork and
    exec, so a child of the process that built the store reported the builder's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the two sides, each in a fresh process ------------------------------------------------


def part_llmvigil(path: str) -> dict[str, Any]:
    started = time.perf_counter()
    from llmvigil.config import DriftSettings
    from llmvigil.evaluators.drift import run_drift
    from llmvigil.evaluators.drift.stats import _stattests
    from llmvigil.storage.store import Store

    _stattests()  # Evidently's import (about 4 s) is the same for both sides: timed apart
    imports = time.perf_counter() - started
    with Store(f"duckdb:///{path}") as store:
        first = time.perf_counter()
        report = run_drift(store, DriftSettings(), now=NOW)
        first = time.perf_counter() - first
        second = time.perf_counter()
        run_drift(store, DriftSettings(), now=NOW, write=False)
        second = time.perf_counter() - second
    rows = {r["feature"]: r for r in report.rows}
    return {
        "imports": imports,
        "first": first,
        "second": second,
        "rss_mb": peak_rss_mb(),
        "drifted": report.drifted,
        "embedded": sum(
            rows[f]["details"].get("embedded", 0) for f in ("input_embedding", "output_embedding")
        ),
        "counts": [rows["latency_ms"]["reference_count"], rows["latency_ms"]["current_count"]],
        "topics": rows["input_embedding"]["details"].get("topics", [])[:1],
    }


def _frames(path: str) -> tuple:
    """The ten columns of both windows and the sampled vectors, as llmvigil reads them."""
    from llmvigil.config import DriftSettings
    from llmvigil.evaluators.drift import features as F
    from llmvigil.evaluators.drift.sample import sample_ids, unpack
    from llmvigil.storage.store import Store

    size = DriftSettings().embedding_sample
    out = []
    with Store(f"duckdb:///{path}") as store:
        for start in (NOW - 2 * HOUR, NOW - HOUR):
            conditions = F.span_filters(start, start + HOUR, {"kind": "llm"})
            columns = F.window_columns(store, conditions).to_pandas()
            relevance = F.window_scores(store, conditions)[("relevance", "2")]
            frame = columns.rename(columns={"is_error": "error_rate"})
            padded = np.full(len(frame), np.nan)
            padded[: len(relevance)] = relevance  # Evidently leaves the NaN out
            frame["score.relevance"] = padded
            ids = sample_ids(store, conditions, size)
            stored = store.stored_vectors(ids)
            vectors = {}
            for position, half in enumerate(("input", "output")):
                rows = [stored[i][position] for i in ids if i in stored and stored[i][position]]
                vectors[half] = unpack(rows)
            out.append((frame[list(COLUMNS)], vectors))
    return out[0], out[1]


def part_evidently(path: str) -> dict[str, Any]:
    import pandas as pd

    (ref, ref_vectors), (cur, cur_vectors) = _frames(path)
    started = time.perf_counter()
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.presets import DataDriftPreset

    imports = time.perf_counter() - started
    numbers = [c for c in COLUMNS if c not in ("model", "error_rate")]
    definition = DataDefinition(
        numerical_columns=numbers, categorical_columns=["model", "error_rate"]
    )
    run = time.perf_counter()
    columns = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    column_seconds = time.perf_counter() - run

    def embedded(vectors: dict) -> tuple:
        frames, groups = [], {}
        for half, matrix in vectors.items():
            names = [f"{half}_{k}" for k in range(matrix.shape[1])]
            frames.append(pd.DataFrame(matrix, columns=names))
            groups[half] = names
        size = min(len(f) for f in frames)
        return pd.concat([f.iloc[:size] for f in frames], axis=1), groups

    cur_frame, groups = embedded(cur_vectors)
    ref_frame, _ = embedded(ref_vectors)
    definition = DataDefinition(embeddings=groups)
    run = time.perf_counter()
    vectors = Report([EmbeddingsDrift(embeddings_name=name) for name in groups]).run(
        Dataset.from_pandas(cur_frame, data_definition=definition),
        Dataset.from_pandas(ref_frame, data_definition=definition),
    )
    embedding_seconds = time.perf_counter() - run
    values = {}
    for snapshot in (columns, vectors):
        for metric in snapshot.dict()["metrics"]:
            values[metric["metric_name"]] = metric["value"]
    return {
        "imports": imports,
        "columns": column_seconds,
        "embeddings": embedding_seconds,
        "rss_mb": peak_rss_mb(),
        "rows": [len(ref), len(cur)],
        "vector_rows": [len(ref_frame), len(cur_frame)],
        "values": values,
    }


def fresh_process(part: str, path: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--part", part, "--store", path],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{part} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- detection, storage ------------------------------------------------------------------


def detection(pairs: int, spans: int) -> dict[str, Any]:
    from llmvigil.config import DriftSettings
    from llmvigil.evaluators.drift import run_drift
    from llmvigil.storage.store import Store

    flagged = dict.fromkeys(SHIFTED, 0)
    quiet_flags = quiet_tests = null_flags = null_tests = 0
    for seed in range(pairs):
        for shifted in (True, False):
            with Store("duckdb:///:memory:") as store:
                fill(store, spans, seed=1000 + seed, shifted=shifted, vector_share=1.0)
                report = run_drift(store, DriftSettings(), now=NOW)
            for row in report.tested:
                if shifted and row["feature"] in SHIFTED:
                    flagged[row["feature"]] += row["drifted"]
                elif shifted:
                    quiet_tests += 1
                    quiet_flags += row["drifted"]
                else:
                    null_tests += 1
                    null_flags += row["drifted"]
    return {
        "detected": {f: n / pairs for f, n in flagged.items()},
        "quiet_features": (quiet_flags, quiet_tests),
        "null": (null_flags, null_tests),
    }


def vector_storage(spans: int, share: float = 0.25) -> dict[str, float]:
    import duckdb

    from llmvigil.evaluators.drift.sample import VECTOR_MODEL, keeps_vector
    from llmvigil.storage.store import Store

    rng = np.random.default_rng(0)
    ids = [f"{i:032x}" for i in range(spans)]
    kept = [i for i in ids if keeps_vector(i, share)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.duckdb"
        with Store(f"duckdb:///{path}"):
            pass
        empty = path.stat().st_size
        with Store(f"duckdb:///{path}") as store:
            for start in range(0, len(kept), 50_000):
                chunk = kept[start : start + 50_000]
                vectors = rng.integers(-127, 128, (len(chunk), 2, 384), dtype=np.int8)
                store.write_vectors(
                    [
                        {"span_id": i, "model": VECTOR_MODEL, "input_vector": v[0].tobytes(),
                         "output_vector": v[1].tobytes()}
                        for i, v in zip(chunk, vectors, strict=True)
                    ]
                )  # fmt: skip
        connection = duckdb.connect(str(path))
        connection.execute("CHECKPOINT")
        connection.close()
        grown = path.stat().st_size - empty
    return {"spans": spans, "kept": len(kept), "bytes": grown, "per_span": grown / spans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spans", type=int, default=100_000, help="spans per window")
    parser.add_argument("--pairs", type=int, default=10, help="window pairs for detection")
    parser.add_argument("--pair-spans", type=int, default=3_000)
    parser.add_argument("--vector-spans", type=int, default=1_000_000)
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    parser.add_argument("--part", choices=("llmvigil", "evidently"), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        part = part_llmvigil if args.part == "llmvigil" else part_evidently
        print(json.dumps(part(args.store), default=str))
        return

    load = [load_average(), None]
    from llmvigil.storage.store import Store

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "drift.duckdb")
        with Store(f"duckdb:///{path}") as store:
            made = fill(store, args.spans, seed=7, shifted=True, vector_share=0.25)
        print(f"stored {2 * args.spans:,} spans, {made['vectors']:,} vectors in "
              f"{made['seconds']:.1f} s", flush=True)  # fmt: skip
        ours = fresh_process("llmvigil", path)
        print("llmvigil", json.dumps(ours), flush=True)
        theirs = fresh_process("evidently", path)
        print("evidently", json.dumps(theirs), flush=True)
    found = detection(args.pairs, args.pair_spans)
    print("detection", json.dumps(found), flush=True)
    storage = vector_storage(args.vector_spans)
    print("storage", json.dumps(storage), flush=True)
    load[1] = load_average()
    body = report(args, made, ours, theirs, found, storage, tuple(load))
    print(body)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, body)


def report(args, made, ours, theirs, found, storage, load) -> str:
    evidently = theirs["columns"] + theirs["embeddings"]
    ratio = ours["first"] / evidently
    command = f"python benchmarks/bench_drift.py --spans {args.spans} --pairs {args.pairs}"
    lines = header(HEADING, command, ["llmvigil", "evidently", "duckdb", "numpy"], load)
    topic = ours["topics"][0] if ours["topics"] else None
    quiet, null = found["quiet_features"], found["null"]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines += [
        "",
        f"{args.spans:,} reference and {args.spans:,} current spans in a DuckDB file, "
        f"{made['vectors']:,} span vectors stored as the evaluators keep them (25 %); the "
        "current hour has latency up by a third, an app-crash topic in 30 % of prompts, "
        "another model mix and relevance falling. Each side in a fresh process; Evidently "
        "gets the same ten columns of every span and the same 2,000 + 2,000 sampled vectors, "
        "read from the store before its clock starts.",
        "",
        "| | imports s | run s | second run s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        f"| llmvigil `run_drift`, all features, stored | {ours['imports']:.1f} | "
        f"**{ours['first']:.2f}** | {ours['second']:.2f} | {ours['rss_mb']:,.0f} |",
        f"| Evidently `Report(DataDriftPreset)` + `EmbeddingsDrift` x2 | {theirs['imports']:.1f} "
        f"| **{evidently:.2f}** ({theirs['columns']:.2f} + {theirs['embeddings']:.2f}) | | "
        f"{theirs['rss_mb']:,.0f} |",
        "",
        f"- llmvigil / Evidently run time: **{ratio:.2f}x** (target <= 1: {met(ratio <= 1)}); "
        f"the run {ours['first']:.2f} s (target < 5 s: {met(ours['first'] < 5)}), "
        f"peak RSS {ours['rss_mb']:,.0f} MB (target < 1,536: {met(ours['rss_mb'] < 1536)}). "
        f"Against Evidently's `DataDriftPreset` alone (no embeddings): "
        f"{ours['first'] / theirs['columns']:.2f}x; its `EmbeddingsDrift` spends most of its "
        "time on a t-SNE for its chart.",
        f"- Drifted: {', '.join(ours['drifted'])}; texts embedded during the run: "
        f"{ours['embedded']:,}"
        + (" (the whole sample was stored)." if not ours["embedded"] else "."),
    ]
    if topic:
        lines.append(
            f"- Top new topic: '{topic['label']}', {topic['share']:.0%} of the window, e.g. "
            f'"{topic["examples"][0]["text"]}".'
        )
    detected = ", ".join(f"{f} {r:.0%}" for f, r in found["detected"].items())
    lines += [
        f"- Detection over {args.pairs} shifted pairs of {args.pair_spans:,} + "
        f"{args.pair_spans:,} spans (real model): {detected}. Unshifted features flagged in "
        f"those runs: {quiet[0]} of {quiet[1]}; in {args.pairs} pairs with no change: "
        f"**{null[0]} of {null[1]}** (run, feature) results flagged "
        f"({null[0] / max(null[1], 1):.1%}).",
        f"- `span_vectors` at {storage['spans']:,} spans ({storage['kept']:,} kept): "
        f"{storage['bytes'] / 2**20:,.0f} MB, **{storage['per_span']:.0f} bytes per span** "
        f"(target < 1,024: {met(storage['per_span'] < 1024)}).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
