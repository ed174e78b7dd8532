"""Collector overhead: the time ``@llmvigil.observe`` adds to a call, beside an OpenTelemetry span.

Measured in one run on one machine, so the figures compare: a trivial function
undecorated, under ``@observe`` (sync, async, generator and async generator
forms) and inside an OpenTelemetry SDK span (``start_as_current_span`` with 6
attributes, ``BatchSpanProcessor``, an exporter that drops everything). Each
form is timed over ``--calls`` calls, ``--repeats`` times; a repeat's figure is
the mean time per call of its loop, and the table gives the median over the
repeats. "Added" is the median of the per-repeat differences against the
undecorated form of the same kind, timed in the same repeat.

The collector runs as an app's would: spooling into a temporary folder with
the default batch size and flush interval, so its flush thread turns records
into Parquet segments in the background, concurrently with the timed loops
(and competing with them for the GIL). Its queue holds a whole loop's records
and both collectors are flushed, untimed, between loops, so every loop starts
from the same steady state and nothing is dropped. The "GC" column is the time
the cyclic garbage collector ran during the loop (the records waiting in the
queue are containers it has to walk), included in the totals.

Secondary figure: the flush thread's throughput, records turned into spool
segments per second (``--calls`` records queued at once, timed until
``llmvigil.flush()`` returns), and its CPU time per record.

Usage::

    python benchmarks/bench_collector.py [--calls 20000] [--repeats 7] [--gc on|freeze|off]
                                         [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
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
    llmvigil.configure(
        llmvigil.Settings(),
        sink="spool",
        spool_dir=str(spool),
        app="bench",
        queue_size=max(100_000, 2 * calls),
    )
    provider, otel_tracer = otel_setup()
    event_loop = asyncio.new_event_loop()
    loop_async, loop_async_generator = make_async_loops(event_loop)
    observe = llmvigil.observe(model="gpt-4o-mini")

    # (kind, label, loop, function); the first of each kind is its undecorated baseline.
    forms: list[tuple[str, str, Callable, Callable]] = [
        ("function", "undecorated", loop_sync, answer),
        ("function", "llmvigil @observe", loop_sync, observe(answer)),
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

    throughput = measure_flush(observe(answer), calls)
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
    otel = next(r for r in rows if r["label"].startswith("OpenTelemetry"))
    ratio = otel["added_us"] / ours["added_us"] if ours["added_us"] > 0 else float("inf")
    net_ratio = otel["net_us"] / ours["net_us"] if ours["net_us"] > 0 else float("inf")
    worst = max(r["added_us"] for r in rows if r["label"].startswith("llmvigil"))
    verdict = "met" if ours["added_us"] < TARGET_ADDED_US else "MISSED"
    verdict_ratio = "met" if ratio >= TARGET_RATIO else "MISSED"
    cpu = result["flush_cpu_us"]
    lines += [
        "",
        f"- OpenTelemetry / llmvigil (added time, plain function): **{ratio:.1f}x** "
        f"(target >= {TARGET_RATIO:.0f}x: {verdict_ratio}); excluding GC pauses: "
        f"{net_ratio:.1f}x.",
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
            "folder with default batch size and flush interval, its flush thread working "
            "concurrently; the OpenTelemetry span has 6 attributes, a BatchSpanProcessor and an "
            "exporter that drops everything.",
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
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in RESULTS.md")
    args = parser.parse_args()
    command = f"python benchmarks/bench_collector.py --calls {args.calls} --repeats {args.repeats}"
    if args.gc != "on":
        command += f" --gc {args.gc}"
    result = run(args.calls, args.repeats, args.gc)
    print(section(result, command))
    if args.write:
        write_section(RESULTS, SECTION, section(result, command))
        print(f"updated {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
