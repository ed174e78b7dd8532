"""Collector overhead: the time ``@llmvigil.observe`` adds to a call, beside an OpenTelemetry span.

Measured in one run on one machine, so the figures compare: a trivial function
undecorated, under ``@observe`` (sync, async, generator and async generator
forms) and inside an OpenTelemetry SDK span (``start_as_current_span`` with 6
attributes, ``BatchSpanProcessor``, an exporter that drops everything). Each
form is timed over ``--calls`` calls, ``--repeats`` times; a repeat's figure is
the mean time per call of its loop, and the table gives the median over the
repeats. "Added" is the median of the per-repeat differences against the
undecorated form of the same kind, timed in the same repeat.

The collector spools into a temporary folder. For the forms in the table its
flush thread sleeps through each timed loop (a batch larger than the loop, a
long interval) and turns the loop's records into Parquet segments between
loops, untimed: that is the hot path alone, what the floor (two clock reads,
a ContextVar set and reset, a deque append, timed in the same run) is the
least of. One more row, "flush thread working", runs the plain function with
the default batch size and interval, so the flush thread processes records
during the loop and takes the GIL from it, as in an app; the difference
between the two rows is the flush thread's CPU showing through the GIL, and
it moves from run to run with how the two threads interleave. Both
collectors are flushed, untimed, between loops, so every loop starts from the
same steady state and nothing is dropped. The "GC" column is the time the
cyclic garbage collector ran during the loop (the records waiting in the
queue are containers it has to walk), included in the totals.

Last, the exit case: a child process records 20,000 calls with 10 KB prompts
and exits at once; how long its exit took, how many spans were spilled raw,
and how many reached the store after ``ingest`` (the rest were lost).

Secondary figure: the flush thread's throughput, records turned into spool
segments per second (``--calls`` records queued at once, timed until
``llmvigil.flush()`` returns), and its CPU time per record.

Its own section (:func:`measure_flush_10kb`): the flush thread's throughput
for 10 KB RAG prompts (passages with numbers, dates, a few e-mail addresses
and phone numbers, each prompt different), with redaction on against the
same pipeline with redaction off, timed in turn in the same run; machines
here differ several times in raw speed from day to day, the ratio much less.
``--flush-only`` runs just that part.

Usage::

    python benchmarks/bench_collector.py [--calls 20000] [--repeats 7] [--gc on|freeze|off]
                                         [--flush-spans 10000] [--flush-repeats 3]
                                         [--flush-only] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from _report import header, load_average, write_section

import llmvigil

RESULTS = Path(__file__).with_name("RESULTS.md")
#: Versions recorded with the results.
PACKAGES = ["llmvigil", "opentelemetry-sdk", "pyarrow"]
SECTION = "## Collector overhead"
GC_MODES = {
    "on": "on (as in any app)",
    "freeze": "on after gc.freeze() at start-up",
    "off": "disabled (the floor, not a real setting)",
}
TARGET_ADDED_US = 3.0
TARGET_RATIO = 10.0
TARGET_OF_FLOOR = 6.0
WORKING = "llmvigil @observe, flush thread working"
QUESTION = "How do I reset my password if I no longer have access to my email?"
STREAM = ("Open ", "Settings, ", "then Security.")

# -- the functions under test ------------------------------------------------------------


def answer(question: str) -> str:
    return "Open Settings, then Security."


async def answer_async(question: str) -> str:
    return "Open Settings, then Security."


def answer_stream(question: str):
    yield from STREAM


async def answer_stream_async(question: str):
    for chunk in STREAM:
        yield chunk


_floor_var: ContextVar[int | None] = ContextVar("floor", default=None)
_floor_records: deque[tuple] = deque()


def floor(fn: Callable[[str], str]) -> Callable[[str], str]:
    """The least a tracer can do on the caller's thread: two clock reads, a ContextVar set and
    reset, a deque append. The decorator's bar is a small multiple of this."""
    clock, var, append = time.perf_counter_ns, _floor_var, _floor_records.append

    def floored(question: str) -> str:
        t0 = clock()
        token = var.set(1)
        result = fn(question)
        var.reset(token)
        append((t0, clock(), question, result))
        return result

    return floored


def otel_span(provider_tracer: Any) -> Callable[[str], str]:
    """``answer`` inside an OpenTelemetry span carrying 6 attributes, as instrumentation does."""

    def answer_otel(question: str) -> str:
        attributes = {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "llmvigil.app": "bench",
            "llmvigil.kind": "llm",
            "llmvigil.prompt_version": "v1",
            "input.length": len(question),
        }
        with provider_tracer.start_as_current_span("answer", attributes=attributes):
            return answer(question)

    return answer_otel


def otel_setup() -> tuple[Any, Any]:
    """A TracerProvider with a BatchSpanProcessor whose exporter drops every span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return provider, provider.get_tracer("bench_collector")


# -- timing ------------------------------------------------------------------------------


class GcTimer:
    """Nanoseconds the cyclic garbage collector runs while ``active``."""

    def __init__(self) -> None:
        self.total_ns = 0
        self._started = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        elif self._started:
            self.total_ns += time.perf_counter_ns() - self._started
            self._started = 0


def loop_sync(fn: Callable, n: int) -> int:
    q = QUESTION
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn(q)
    return time.perf_counter_ns() - t0


def loop_generator(fn: Callable, n: int) -> int:
    q = QUESTION
    t0 = time.perf_counter_ns()
    for _ in range(n):
        for _chunk in fn(q):
            pass
    return time.perf_counter_ns() - t0


def make_async_loops(event_loop: asyncio.AbstractEventLoop) -> tuple[Callable, Callable]:
    async def coroutines(fn: Callable, n: int) -> int:
        q = QUESTION
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await fn(q)
        return time.perf_counter_ns() - t0

    async def async_generators(fn: Callable, n: int) -> int:
        q = QUESTION
        t0 = time.perf_counter_ns()
        for _ in range(n):
            async for _chunk in fn(q):
                pass
        return time.perf_counter_ns() - t0

    def loop_async(fn: Callable, n: int) -> int:
        return event_loop.run_until_complete(coroutines(fn, n))

    def loop_async_generator(fn: Callable, n: int) -> int:
        return event_loop.run_until_complete(async_generators(fn, n))

    return loop_async, loop_async_generator


def flush_thread_cpu_s() -> float | None:
    """CPU seconds used so far by llmvigil's flush thread (Linux ``/proc``), or None."""
    for thread in threading.enumerate():
        if thread.name == "llmvigil-flush" and thread.native_id is not None:
            try:
                fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            except OSError:
                return None
            utime, stime = fields.rsplit(")", 1)[1].split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return None


# -- the benchmark -----------------------------------------------------------------------


def run(calls: int, repeats: int, gc_mode: str = "on") -> dict[str, Any]:
    load_before = load_average()
    spool = Path(tempfile.mkdtemp(prefix="llmvigil-bench-spool-"))
    common = {"sink": "spool", "spool_dir": str(spool), "app": "bench"}
    common["queue_size"] = max(100_000, 2 * calls)
    # The hot path alone: the flush thread sleeps through a timed loop (its batch is larger
    # than the loop, its interval longer) and does the loop's records in settle(), untimed.
    # The floor has no background work either, so the two compare.
    quiet = {**common, "batch_size": calls + 1, "flush_interval_s": 3600.0}
    llmvigil.configure(llmvigil.Settings(), **quiet)

    def flush_thread_working(loop: Callable) -> Callable:
        """``loop`` with the default batch size and interval: the flush thread turns records
        into segments during the timed loop, competing with it for the GIL, as in an app."""

        def timed(fn: Callable, n: int) -> int:
            llmvigil.configure(llmvigil.Settings(), **common)
            try:
                return loop(fn, n)
            finally:
                llmvigil.configure(llmvigil.Settings(), **quiet)

        return timed

    provider, otel_tracer = otel_setup()
    event_loop = asyncio.new_event_loop()
    loop_async, loop_async_generator = make_async_loops(event_loop)
    observe = llmvigil.observe(model="gpt-4o-mini")

    # (kind, label, loop, function); the first of each kind is its undecorated baseline.
    forms: list[tuple[str, str, Callable, Callable]] = [
        ("function", "undecorated", loop_sync, answer),
        ("function", "llmvigil @observe", loop_sync, observe(answer)),
        ("function", WORKING, flush_thread_working(loop_sync), observe(answer)),
        ("function", "floor (2 clock reads, ContextVar, deque)", loop_sync, floor(answer)),
        ("function", "OpenTelemetry span", loop_sync, otel_span(otel_tracer)),
        ("async function", "undecorated", loop_async, answer_async),
        ("async function", "llmvigil @observe", loop_async, observe(answer_async)),
        ("generator (3 items)", "undecorated", loop_generator, answer_stream),
        ("generator (3 items)", "llmvigil @observe", loop_generator, observe(answer_stream)),
        ("async generator (3 items)", "undecorated", loop_async_generator, answer_stream_async),
        (
            "async generator (3 items)",
            "llmvigil @observe",
            loop_async_generator,
            observe(answer_stream_async),
        ),
    ]

    def settle() -> None:
        llmvigil.flush(timeout=600)
        provider.force_flush()
        _floor_records.clear()

    for _kind, _label, loop, fn in forms:  # warm up: imports, price book, first segment
        loop(fn, min(calls, 2_000))
    settle()
    if gc_mode == "freeze":  # what an app can do after start-up: older objects never rescanned
        gc.collect()
        gc.freeze()
    elif gc_mode == "off":  # the floor: no collector pauses at all
        gc.disable()

    gc_timer = GcTimer()
    per_call: dict[int, list[float]] = {i: [] for i in range(len(forms))}
    gc_per_call: dict[int, list[float]] = {i: [] for i in range(len(forms))}
    for repeat in range(repeats):
        order = list(range(len(forms)))
        shift = repeat % len(order)  # rotate, so no form always runs right after another
        for i in order[shift:] + order[:shift]:
            _kind, _label, loop, fn = forms[i]
            gc_before = gc_timer.total_ns
            elapsed = loop(fn, calls)
            gc_per_call[i].append((gc_timer.total_ns - gc_before) / calls / 1e3)
            per_call[i].append(elapsed / calls / 1e3)
            settle()
        print(f"  repeat {repeat + 1}/{repeats} done", file=sys.stderr)

    rows = []
    baseline: dict[str, int] = {}
    for i, (kind, label, _loop, _fn) in enumerate(forms):
        if kind not in baseline:
            baseline[kind] = i
        base = baseline[kind]
        added = [a - b for a, b in zip(per_call[i], per_call[base], strict=True)]
        net = [
            (a - ga) - (b - gb)
            for a, ga, b, gb in zip(
                per_call[i], gc_per_call[i], per_call[base], gc_per_call[base], strict=True
            )
        ]
        rows.append(
            {
                "kind": kind,
                "label": label,
                "base_us": statistics.median(per_call[base]),
                "us": statistics.median(per_call[i]),
                "added_us": statistics.median(added) if i != base else None,
                "net_us": statistics.median(net),
                "gc_us": statistics.median(gc_per_call[i]),
            }
        )

    llmvigil.configure(llmvigil.Settings(), **common)
    throughput = measure_flush(observe(answer), calls)
    exit_case = measure_exit(20_000)
    gc.enable()
    gc.unfreeze()
    stats = llmvigil.stats()
    segments = sorted(spool.glob("spans-*.parquet"))
    llmvigil.shutdown()
    provider.shutdown()
    event_loop.close()
    result = {
        "calls": calls,
        "repeats": repeats,
        "gc_mode": gc_mode,
        "load": (load_before, load_average()),
        "rows": rows,
        "dropped": stats["dropped"],
        "processed": stats["processed"],
        "segments": len(segments),
        "segment_mb": sum(p.stat().st_size for p in segments) / 1e6,
        **throughput,
        **exit_case,
    }
    shutil.rmtree(spool, ignore_errors=True)
    return result


def measure_flush(fn: Callable, records: int) -> dict[str, Any]:
    """Records per second from the queue into spool segments, and flush-thread CPU per record."""
    llmvigil.flush(timeout=600)
    processed = llmvigil.stats()["processed"]
    cpu_before = flush_thread_cpu_s()
    t0 = time.perf_counter()
    loop_sync(fn, records)
    llmvigil.flush(timeout=600)
    elapsed = time.perf_counter() - t0
    cpu_after = flush_thread_cpu_s()
    done = llmvigil.stats()["processed"] - processed
    cpu = None
    if cpu_before is not None and cpu_after is not None and done:
        cpu = (cpu_after - cpu_before) / done * 1e6
    return {"flush_records": done, "flush_per_s": done / elapsed, "flush_cpu_us": cpu}


EXIT_APP = """
import atexit, json, sys, time
# Registered before llmvigil's own exit flush, so it runs after it (atexit is last in, first out).
atexit.register(lambda: print(json.dumps({**llmvigil.stats(), "exit_s": time.perf_counter() - T}),
                              file=sys.stderr))
import llmvigil
llmvigil.configure(sink="spool", spool_dir=sys.argv[1], queue_size=100_000)

@llmvigil.observe(model="gpt-4o-mini")
def ask(prompt, i):
    return f"answer {i}"

passage = "Section 4.2, updated 2024-03-01: refunds are paid within 14 days to the card used. "
prompt = ("Write to jo.bloggs@example.com or call +44 20 7946 0958. " + passage * 120)[:10_000]
for i in range(int(sys.argv[2])):
    ask(prompt, i)
T = time.perf_counter()
"""


def measure_exit(spans: int) -> dict[str, Any]:
    """A process records ``spans`` calls with 10 KB prompts and exits at once: how long the exit
    took, how many spans were spilled raw, and how many reached the store (after ingest)."""
    import json
    import subprocess

    from llmvigil.collector.spool import ingest_spool
    from llmvigil.storage import Store

    work = Path(tempfile.mkdtemp(prefix="llmvigil-bench-exit-"))
    try:
        done = subprocess.run(
            [sys.executable, "-c", EXIT_APP, str(work / "spool"), str(spans)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        last = done.stderr.strip().splitlines()[-1]
        stats = json.loads(last)
        with Store(f"duckdb:///{work / 'store.duckdb'}") as store:
            ingest_spool(store, work / "spool")
            stored = store.count_spans()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "exit_spans": spans,
        "exit_s": stats["exit_s"],
        "exit_spilled": stats["spilled"],
        "exit_dropped": stats["dropped"],
        "exit_stored": stored,
    }


FLUSH_SECTION = "## Collector flush throughput, 10 KB prompts"
TARGET_FLUSH_PER_S = 10_000
_TOPIC = """the of and to in is for on with as by at from that this be are was it an or which
policy customer account refund shipping warranty order invoice billing support agent team
product release version service plan contract payment period notice days month year report
data storage region backup latency request limit quota error response"""
_WORDS = tuple(_TOPIC.split())


def rag_prompt(rng: random.Random, size: int = 10_000) -> str:
    """A RAG prompt of ``size`` characters: numbered passages of sentences, some with a
    date, a price, a year, an order number, a time, a version or a percentage, and now and
    then an e-mail address or a phone number, then the question."""
    out = ["Answer the question using only the passages below.\n"]
    length, number = len(out[0]), 0
    while length < size:
        number += 1
        sentences = []
        for _ in range(rng.randint(8, 14)):
            sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 16)))
            kind = rng.random()
            if kind < 0.15:
                sentence += f" on {rng.randint(2015, 2026)}-{rng.randint(1, 12):02d}-"
                sentence += f"{rng.randint(1, 28):02d}"
            elif kind < 0.25:
                sentence += f" costs ${rng.randint(5, 999)}.{rng.randint(0, 99):02d}"
            elif kind < 0.32:
                sentence += f" in {rng.randint(1990, 2026)}"
            elif kind < 0.38:
                sentence += f" (order #{rng.randint(100_000, 9_999_999)})"
            elif kind < 0.42:
                sentence += f" at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
            elif kind < 0.46:
                sentence += f" in version {rng.randint(1, 9)}.{rng.randint(0, 20)}."
                sentence += f"{rng.randint(0, 9)}"
            elif kind < 0.50:
                sentence += f" for {rng.randint(2, 500)} users and {rng.randint(1, 100)}%"
            sentences.append(sentence.capitalize() + ".")
        extra = rng.random()
        if extra < 0.2:
            name = rng.choice(["ana", "li.wei", "j.smith", "support"])
            sentences.append(f"Contact {name}{rng.randint(1, 99)}@example.com for details.")
        elif extra < 0.3:
            sentences.append(f"Call +1 415 555 {rng.randint(1000, 9999)} during office hours.")
        passage = f"[{number}] " + " ".join(sentences) + "\n"
        out.append(passage)
        length += len(passage)
    question = "Question: how long is the refund period for annual plans?"
    return "".join(out)[: size - len(question)] + question


def _flush_rate(prompts: list[str], redact: bool) -> tuple[float, float]:
    """Spans per second and CPU µs per span (all threads) for ``prompts``, queued at once and
    timed until ``llmvigil.flush()`` returns, spooling into a temporary folder."""
    spool = Path(tempfile.mkdtemp(prefix="llmvigil-bench-flush-"))
    llmvigil.configure(
        llmvigil.Settings(),
        sink="spool",
        spool_dir=str(spool),
        app="bench",
        queue_size=len(prompts) + 1_000,
        redact_pii=redact,
    )
    ask = llmvigil.observe(model="gpt-4o-mini")(answer)
    ask(prompts[0])  # start the flush thread and load the pipeline, untimed
    llmvigil.flush(timeout=600)
    processed = llmvigil.stats()["processed"]
    cpu_before = time.process_time()  # every thread: the writes run beside the flush thread
    start = time.perf_counter()
    for prompt in prompts:
        ask(prompt)
    llmvigil.flush(timeout=600)
    elapsed = time.perf_counter() - start
    cpu_after = time.process_time()
    done = llmvigil.stats()["processed"] - processed
    llmvigil.shutdown()
    shutil.rmtree(spool, ignore_errors=True)
    return done / elapsed, (cpu_after - cpu_before) / done * 1e6


def measure_flush_10kb(spans: int, repeats: int) -> dict[str, Any]:
    """Spans per second through the flush thread for 10 KB prompts, redaction on and off.

    A first, untimed-for-the-median pass of ``spans`` calls with redaction on
    runs in the fresh process (its rate is reported as the cold start: the
    process's heap and Arrow's memory pool grow to their working size). Then
    each repeat queues ``spans`` calls (a fresh prompt each) with redaction
    on, then off (the order alternates). Medians over the repeats: the rate a
    long-running app sustains.
    """
    from llmvigil.collector.redact import make_redactor

    rng = random.Random(10)
    prompts = [rag_prompt(rng) for _ in range(spans)]
    redactor = make_redactor()
    redactor(prompts[0])  # its patterns are built on first use
    t0 = time.perf_counter()
    for prompt in prompts[:2_000]:
        redactor(prompt)
    redact_us = (time.perf_counter() - t0) / min(spans, 2_000) * 1e6
    cold, _ = _flush_rate(prompts, True)
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for repeat in range(repeats):
        for redact in (True, False) if repeat % 2 == 0 else (False, True):
            rate, cpu_us = _flush_rate(prompts, redact)
            rates[redact].append(rate)
            cpu[redact].append(cpu_us)
        print(f"  flush repeat {repeat + 1}/{repeats} done", file=sys.stderr)
    return {
        "flush10k_spans": spans,
        "flush10k_repeats": repeats,
        "flush10k_bytes": sum(len(p.encode()) for p in prompts) / spans,
        "flush10k_cold": cold,
        "flush10k_on": statistics.median(rates[True]),
        "flush10k_off": statistics.median(rates[False]),
        "flush10k_cpu_on": statistics.median(cpu[True]),
        "flush10k_cpu_off": statistics.median(cpu[False]),
        "flush10k_redact_us": redact_us,
    }


def flush_section(result: dict[str, Any], command: str) -> str:
    on, off = result["flush10k_on"], result["flush10k_off"]
    verdict = "met" if on >= TARGET_FLUSH_PER_S else "MISSED"
    lines = [
        *header(FLUSH_SECTION, command, PACKAGES, result["load"]),
        "",
        f"{result['flush10k_repeats']} repeats x {result['flush10k_spans']:,} calls, each with "
        f"a different RAG prompt of {result['flush10k_bytes'] / 1000:.1f} KB (passages with "
        "dates, prices, years, order numbers, versions, some e-mail addresses and phone "
        "numbers), queued at once and timed until `llmvigil.flush()` returned, spooling into a "
        "temporary folder (Parquet, the spool's codec) with the default batch size; "
        "redaction on and off in turn in each repeat; medians. Before the repeats, one pass "
        "with redaction on in the fresh process (not in the medians): the cold start.",
        "",
        "| Pipeline | Spans/s | CPU µs/span (all threads) |",
        "|---|---:|---:|",
    ]
    for label, rate, cpu in (
        ("redaction on (default)", on, result["flush10k_cpu_on"]),
        ("redaction off", off, result["flush10k_cpu_off"]),
    ):
        lines.append(f"| {label} | **{rate:,.0f}** | {_maybe(cpu)} |")
    lines += [
        "",
        f"- With redaction on: **{on:,.0f} spans/s** (target >= {TARGET_FLUSH_PER_S:,}: "
        f"{verdict}); **{on / off:.2f}x** the rate with redaction off, timed in the same run.",
        f"- Cold start (the process's first pass, while its heap and Arrow's memory pool grow "
        f"to their working size): {result['flush10k_cold']:,.0f} spans/s with redaction on.",
        f"- Redaction alone: {result['flush10k_redact_us']:.0f} µs per 10 KB prompt "
        "(`make_redactor()` on the same prompts, on this thread).",
    ]
    cpu_on, cpu_off = result["flush10k_cpu_on"], result["flush10k_cpu_off"]
    if cpu_on and cpu_off:
        lines.append(
            f"- Redaction's share of the process's CPU per span: {(cpu_on - cpu_off) / cpu_on:.0%}"
            " (the segment writes run on a writer thread beside the flush thread, so the CPU "
            "is the process's, not one thread's)."
        )
    return "\n".join(lines) + "\n"


def _maybe(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


# -- reporting ---------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [
        "| Call | Instrumentation | Undecorated µs/call | Instrumented µs/call "
        "| Added µs/call (median) | of which GC µs/call | Added excl. GC µs/call |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["added_us"] is None:
            continue
        lines.append(
            f"| {r['kind']} | {r['label']} | {r['base_us']:.3f} | {r['us']:.3f} "
            f"| **{r['added_us']:.2f}** | {r['gc_us']:.2f} | {r['net_us']:.2f} |"
        )
    ours = next(r for r in rows if r["kind"] == "function" and r["label"].startswith("llmvigil"))
    working = next(r for r in rows if r["label"] == WORKING)
    otel = next(r for r in rows if r["label"].startswith("OpenTelemetry"))
    ratio = otel["added_us"] / ours["added_us"] if ours["added_us"] > 0 else float("inf")
    net_ratio = otel["net_us"] / ours["net_us"] if ours["net_us"] > 0 else float("inf")
    worst = max(r["added_us"] for r in rows if r["label"] == "llmvigil @observe")
    verdict = "met" if ours["added_us"] < TARGET_ADDED_US else "MISSED"
    least = next(r for r in rows if r["label"].startswith("floor"))
    of_floor = ours["added_us"] / least["added_us"] if least["added_us"] > 0 else float("inf")
    verdict_floor = "met" if of_floor <= TARGET_OF_FLOOR else "MISSED"
    verdict_ratio = "met" if ratio >= TARGET_RATIO else "MISSED"
    cpu = result["flush_cpu_us"]
    lines += [
        "",
        f"- OpenTelemetry / llmvigil (added time, plain function): **{ratio:.1f}x** "
        f"(target >= {TARGET_RATIO:.0f}x: {verdict_ratio}); excluding GC pauses: "
        f"{net_ratio:.1f}x.",
        f"- llmvigil / floor (added time, plain function, the floor timed in the same run): "
        f"**{of_floor:.1f}x** (target <= {TARGET_OF_FLOOR:.0f}x: {verdict_floor}); the floor "
        f"adds {least['added_us']:.2f} µs. With the flush thread working during the loop "
        f"(default batch size and interval, as in an app): {working['added_us']:.2f} µs added, "
        f"{working['added_us'] / least['added_us']:.1f}x the floor; the difference is the GIL "
        "the flush thread holds while it processes the loop's records (its CPU per record is "
        "below).",
        f"- llmvigil added per call, plain function: **{ours['added_us']:.2f} µs** "
        f"(target < {TARGET_ADDED_US:.0f} µs: {verdict}); excluding GC pauses: "
        f"{ours['net_us']:.2f} µs; worst form: {worst:.2f} µs.",
        f"- Spans dropped (`llmvigil.stats()['dropped']`): **{result['dropped']}** of "
        f"{result['processed']:,} processed, into {result['segments']} spool segments "
        f"({result['segment_mb']:.1f} MB).",
        f"- Flush thread (secondary): **{result['flush_per_s']:,.0f} records/s** from the "
        f"queue into spool segments ({result['flush_records']:,} records queued at once, "
        "timed until `flush()` returned)"
        + (f"; {cpu:.1f} µs of flush-thread CPU per record." if cpu is not None else "."),
        f"- Exit with a full queue: {result['exit_spans']:,} calls with 10 KB prompts, then a "
        f"normal exit (deadline 5 s): **{result['exit_spans'] - result['exit_stored']} spans "
        f"lost** ({result['exit_stored']:,} in the store after `ingest`); the exit took "
        f"{result['exit_s']:.1f} s, {result['exit_spilled']:,} spans were spilled raw and "
        "finished at ingest.",
    ]
    return "\n".join(lines)


def section(result: dict[str, Any], command: str) -> str:
    return "\n".join(
        [
            *header(SECTION, command, PACKAGES, result["load"]),
            "",
            f"{result['repeats']} repeats x {result['calls']:,} calls per form, garbage "
            f"collector {GC_MODES[result['gc_mode']]}; µs/call are "
            "medians over the repeats, 'added' is the median of per-repeat differences against "
            "the undecorated form of the same kind. The collector spools into a temporary "
            "folder; its flush thread processes each loop's records between loops (untimed), "
            "except in the row 'flush thread working', which has the default batch size and "
            "interval so the flush thread works during the loop, as in an app. The floor is "
            "two clock reads, a ContextVar set and reset and a deque append; the OpenTelemetry "
            "span has 6 attributes, a BatchSpanProcessor and an exporter that drops everything "
            "(its export thread works during the loops).",
            "",
            markdown(result),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per timed loop")
    parser.add_argument("--repeats", type=int, default=7, help="timed loops per form")
    parser.add_argument(
        "--gc",
        choices=sorted(GC_MODES),
        default="on",
        help="garbage collector during the timed loops: on (default), frozen start-up heap, off",
    )
    parser.add_argument(
        "--flush-spans", type=int, default=10_000, help="calls per 10 KB-prompt flush repeat"
    )
    parser.add_argument("--flush-repeats", type=int, default=3, help="10 KB-prompt repeats")
    parser.add_argument(
        "--flush-only", action="store_true", help="only the 10 KB-prompt flush throughput"
    )
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in RESULTS.md")
    args = parser.parse_args()
    if not args.flush_only:
        command = (
            f"python benchmarks/bench_collector.py --calls {args.calls} --repeats {args.repeats}"
        )
        if args.gc != "on":
            command += f" --gc {args.gc}"
        result = run(args.calls, args.repeats, args.gc)
        print(section(result, command))
        if args.write:
            write_section(RESULTS, SECTION, section(result, command))
            print(f"updated {RESULTS}", file=sys.stderr)
    load_before = load_average()
    flushed = measure_flush_10kb(args.flush_spans, args.flush_repeats)
    flushed["load"] = (load_before, load_average())
    command = (
        f"python benchmarks/bench_collector.py --flush-only --flush-spans {args.flush_spans} "
        f"--flush-repeats {args.flush_repeats}"
    )
    print(flush_section(flushed, command))
    if args.write:
        write_section(RESULTS, FLUSH_SECTION, flush_section(flushed, command))
        print(f"updated {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
