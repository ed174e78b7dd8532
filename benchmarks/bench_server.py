"""The owner's ingest API: spans per second and request latency, and a soak with the owner killed.

Throughput: a real ``llmvigil up`` (``--no-evaluate``) over a fresh DuckDB
file on loopback. Several client threads, each on its own keep-alive
connection, post batches of 100 spans (prompts of ~300 characters, answers,
model, tokens, latency): to ``POST /v1/spans`` as JSON, then to ``POST
/v1/traces`` as OTLP protobuf with the GenAI attributes. Each request's time
is recorded (p50, p99). Beside them, in the same run: the same rows appended
with ``Store.append_spans`` in batches of 100 in this process (no HTTP, no
parsing), the floor the API is measured against.

Soak (``--soak-seconds``, default 600): an app on the ``http`` sink calls an
observed function at a steady rate; in the middle the owner is SIGKILLed and
started again 5 s later. At the end every call must be in the store once (0
lost, 0 duplicated), and the app's per-call time during the outage is
compared with before it.

Usage::

    python benchmarks/bench_server.py [--batches 400] [--clients 4] [--soak-seconds 600]
        [--write]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _report import header, load_average, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
HEADING = "## Server ingest"
PACKAGES = ["llmvigil", "fastapi", "uvicorn", "duckdb", "orjson"]
BATCH = 100
TARGET_SPANS_PER_S = 20_000
TARGET_P99_MS = 100.0


class Owner:
    """``llmvigil up`` in a process of its own."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        self.folder = folder
        self.store = folder / "bench.duckdb"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmvigil.cli", "up", "--port", str(port), "--no-evaluate",
             "--store", f"duckdb:///{self.store}"],
            cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            raise SystemExit(f"llmvigil up did not start: {line}")
        self.url = line.split("listening on ")[1].split(",")[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)
        self.process.wait(timeout=60)


def span_rows(count: int, offset: int) -> list[dict[str, Any]]:
    """Rows like a RAG assistant's calls: unique ids, a prompt, an answer, tokens, latency."""
    rows = []
    base = datetime(2026, 12, 1, 9, tzinfo=UTC)
    for i in range(offset, offset + count):
        # Calls come one after another (a store's duplicate check reads the batch's time range).
        moment = (base + timedelta(milliseconds=i % 50_000_000)).isoformat()
        rows.append(
            {
                "span_id": f"{i:032x}",
                "trace_id": f"{i // 4:032x}",
                "start_time": moment,
                "name": "answer",
                "kind": "llm",
                "app": "bench",
                "model": "gpt-4o-mini",
                "input_text": f"Question {i}: how do I reset the password of my account? "
                + "Context: the account page lists the security settings. " * 4,
                "output_text": "Open Settings, then Security, then choose Reset password.",
                "latency_ms": 420.0 + i % 300,
                "prompt_tokens": 120,
                "completion_tokens": 18,
            }
        )
    return rows


def json_bodies(batches: int, offset: int) -> list[bytes]:
    return [
        json.dumps({"spans": span_rows(BATCH, offset + b * BATCH)}).encode() for b in range(batches)
    ]


def otlp_bodies(batches: int, offset: int) -> list[bytes]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def attribute(key: str, value: Any) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    bodies = []
    for b in range(batches):
        spans = []
        for row in span_rows(BATCH, offset + b * BATCH):
            messages_in = json.dumps([{"role": "user", "parts": [
                {"type": "text", "content": row["input_text"]}]}])  # fmt: skip
            messages_out = json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": row["output_text"]}]}])  # fmt: skip
            spans.append(
                Span(
                    trace_id=bytes.fromhex(row["trace_id"]),
                    span_id=bytes.fromhex(row["span_id"][16:]),
                    name="chat gpt-4o-mini",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=_ns(row["start_time"]),
                    end_time_unix_nano=_ns(row["start_time"]) + int(row["latency_ms"] * 1e6),
                    attributes=[
                        attribute("gen_ai.operation.name", "chat"),
                        attribute("gen_ai.provider.name", "openai"),
                        attribute("gen_ai.request.model", "gpt-4o-mini"),
                        attribute("gen_ai.usage.input_tokens", 120),
                        attribute("gen_ai.usage.output_tokens", 18),
                        attribute("gen_ai.input.messages", messages_in),
                        attribute("gen_ai.output.messages", messages_out),
                    ],
                )
            )
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
        )
        bodies.append(request.SerializeToString())
    return bodies


def _ns(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1e9)


def drive(url: str, path: str, bodies: list[bytes], content_type: str, clients: int) -> dict:
    """Post ``bodies`` from ``clients`` threads on keep-alive connections; rate and latencies."""
    parts = urlsplit(url)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    share = [bodies[i::clients] for i in range(clients)]

    def client(mine: list[bytes]) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        times = []
        for body in mine:
            started = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": content_type})
            response = connection.getresponse()
            response.read()
            times.append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    failures.append(f"HTTP {response.status}")
        connection.close()
        with lock:
            latencies.extend(times)

    threads = [threading.Thread(target=client, args=(mine,)) for mine in share]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "spans_per_s": len(bodies) * BATCH / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
        "failures": len(failures),
    }


def direct_rate(folder: Path, batches: int) -> float:
    """Spans per second through ``Store.append_spans`` in this process (the floor)."""
    from llmvigil.server.spans_api import SpanIn, to_row
    from llmvigil.storage.store import Store

    rows = [
        [to_row(SpanIn.model_validate(r)) for r in span_rows(BATCH, 10_000_000 + b * BATCH)]
        for b in range(batches)
    ]
    with Store(f"duckdb:///{folder / 'direct.duckdb'}") as store:
        started = time.perf_counter()
        for batch in rows:
            store.append_spans(batch)
        return batches * BATCH / (time.perf_counter() - started)


def throughput(batches: int, clients: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="llmvigil-bench-server-") as tmp:
        folder = Path(tmp)
        owner = Owner(folder)
        try:
            drive(owner.url, "/v1/spans", json_bodies(20, 50_000_000), "application/json", clients)
            spans = drive(
                owner.url, "/v1/spans", json_bodies(batches, 0), "application/json", clients
            )
            otlp = drive(
                owner.url, "/v1/traces", otlp_bodies(batches, 20_000_000),
                "application/x-protobuf", clients,
            )  # fmt: skip
        finally:
            owner.stop()
        direct = direct_rate(folder, batches)
    return {"spans": spans, "otlp": otlp, "direct": direct, "batches": batches, "clients": clients}


SOAK_APP = """
import sys, time
import llmvigil

@llmvigil.observe(model="gpt-4o-mini")
def answer(question: str) -> str:
    return "Open Settings, then Security."

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
period = 1.0 / rate
timings = []
start = time.monotonic()
i = 0
while time.monotonic() - start < seconds:
    t0 = time.perf_counter()
    answer(f"question {i}")
    timings.append((time.monotonic() - start, time.perf_counter() - t0))
    i += 1
    time.sleep(max(0.0, start + i * period - time.monotonic()))
llmvigil.flush(timeout=120)
print("calls", i)
print("start", start)
print("timings", " ".join(f"{at:.3f}:{took:.7f}" for at, took in timings))
print("stats", llmvigil.stats())
"""


def soak(seconds: float, rate: float) -> dict:
    from llmvigil.storage.store import Store

    with tempfile.TemporaryDirectory(prefix="llmvigil-bench-soak-") as tmp:
        folder = Path(tmp)
        (folder / "owner").mkdir()
        owner = Owner(folder / "owner")
        app_dir = folder / "app"
        app_dir.mkdir()
        (app_dir / "llmvigil.toml").write_text(
            f'[collector]\nsink = "http"\nendpoint = "{owner.url}"\n'
        )
        (app_dir / "app.py").write_text(textwrap.dedent(SOAK_APP))
        app = subprocess.Popen(
            [sys.executable, "app.py", str(rate), str(seconds)],
            cwd=app_dir, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(seconds / 2)
        owner.stop(signal.SIGKILL)
        killed = time.monotonic()  # the clock the app's times are on (one per machine)
        time.sleep(5.0)
        restarted = time.monotonic()
        owner = Owner(folder / "owner", port=owner.port)
        listening = time.monotonic()
        out, err = app.communicate(timeout=seconds + 300)
        spool = app_dir / ".llmvigil" / "spool"
        deadline = time.monotonic() + 120
        while list(spool.glob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.5)
        owner.stop()
        with Store(f"duckdb:///{owner.store}") as store:
            texts = [s["input_text"] for s in store.spans(limit=None)]
    calls = int(next(line for line in out.splitlines() if line.startswith("calls")).split()[1])
    timings = [
        tuple(map(float, pair.split(":")))
        for pair in next(line for line in out.splitlines() if line.startswith("timings")).split()[
            1:
        ]
    ]
    lines = out.splitlines()
    app_start = float(next(line for line in lines if line.startswith("start")).split()[1])
    killed_at, restarted_at = killed - app_start, restarted - app_start
    back_at = listening - app_start
    before = sorted(took for at, took in timings if at < killed_at)
    during = sorted(took for at, took in timings if killed_at <= at < back_at + 5.0)
    # Where a change comes from: the outage itself (the sink spooling), the owner's start (a
    # process importing its stack on a 2-core machine), or the replay once it answers; and a
    # window as long before the kill, for how much the p50 moves with no outage at all.
    phases = {
        "10 s before the kill": (killed_at - 10.0, killed_at),  # the variation without one
        "outage": (killed_at, restarted_at),
        "owner starting": (restarted_at, back_at),
        "5 s after": (back_at, back_at + 5.0),
    }
    by_phase = {
        name: sorted(took for at, took in timings if low <= at < high)
        for name, (low, high) in phases.items()
    }

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1e6 if values else float("nan")

    return {
        "seconds": seconds,
        "rate": rate,
        "calls": calls,
        "stored": len(texts),
        "distinct": len(set(texts)),
        "before_p50_us": pct(before, 0.5),
        "before_p99_us": pct(before, 0.99),
        "during_p50_us": pct(during, 0.5),
        "during_p99_us": pct(during, 0.99),
        "phases_p50_us": {name: pct(values, 0.5) for name, values in by_phase.items()},
        "phases_seconds": {name: high - low for name, (low, high) in phases.items()},
        "app_errors": err.count("Traceback"),
    }


def section(result: dict, command: str) -> str:
    spans, otlp, direct = result["spans"], result["otlp"], result["direct"]
    lines = [
        *header(HEADING, command, PACKAGES, result["load"]),
        "",
        f"{result['batches']} batches of {BATCH} spans per route from {result['clients']} "
        "client threads on keep-alive connections over loopback, into a fresh DuckDB file; "
        "the direct row appends the same kind of rows with `Store.append_spans` in this "
        "process, in the same run.",
        "",
        "| Route | Spans/s | x direct append | p50 ms | p99 ms | failed requests |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in (("`POST /v1/spans` (JSON)", spans), ("`POST /v1/traces` (OTLP)", otlp)):
        lines.append(
            f"| {name} | **{r['spans_per_s']:,.0f}** | {r['spans_per_s'] / direct:.2f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['failures']} |"
        )
    lines.append(f"| `Store.append_spans` (direct) | {direct:,.0f} | 1.00 | | | |")
    ok_spans = spans["spans_per_s"] >= TARGET_SPANS_PER_S
    ok_otlp = otlp["spans_per_s"] >= spans["spans_per_s"] / 2

    def p99(r: dict) -> str:
        verdict = "met" if r["p99_ms"] < TARGET_P99_MS else "MISSED"
        return f"{r['p99_ms']:.0f} ms, {verdict}"

    lines += [
        "",
        f"- `/v1/spans` at least {TARGET_SPANS_PER_S:,} spans/s: "
        f"{'met' if ok_spans else 'MISSED'}; OTLP at least half of it: "
        f"{'met' if ok_otlp else 'MISSED'} ({otlp['spans_per_s'] / spans['spans_per_s']:.2f}x); "
        f"p99 under {TARGET_P99_MS:.0f} ms: `/v1/spans` {p99(spans)}, OTLP {p99(otlp)}.",
    ]
    soaked = result.get("soak")
    if soaked:
        lost = soaked["calls"] - soaked["distinct"]
        repeated = soaked["stored"] - soaked["distinct"]
        lines += [
            "",
            f"Soak: an app on the `http` sink calling {soaked['rate']:.0f} times a second for "
            f"{soaked['seconds']:.0f} s; the owner SIGKILLed half-way and started again 5 s "
            f"later. {soaked['calls']:,} calls, {soaked['stored']:,} spans stored: "
            f"**{lost} lost, {repeated} duplicated**. The app's time per call (the decorator, "
            f"µs) before the kill: p50 {soaked['before_p50_us']:.1f}, p99 "
            f"{soaked['before_p99_us']:.1f}; from the kill until 5 s after the restart: p50 "
            f"{soaked['during_p50_us']:.1f}, p99 {soaked['during_p99_us']:.1f} "
            f"({soaked['during_p50_us'] / soaked['before_p50_us']:.2f}x at p50). By phase, p50: "
            + ", ".join(
                f"{name} ({soaked['phases_seconds'][name]:.1f} s) {p50:.1f} "
                f"({p50 / soaked['before_p50_us']:.2f}x)"
                for name, p50 in soaked["phases_p50_us"].items()
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=400, help="batches of 100 per route")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--soak-seconds", type=float, default=600, help="0: no soak")
    parser.add_argument("--soak-rate", type=float, default=200, help="app calls per second")
    parser.add_argument("--write", action="store_true", help=f"update '{HEADING}' in RESULTS.md")
    args = parser.parse_args()
    load_before = load_average()
    result = throughput(args.batches, args.clients)
    if args.soak_seconds:
        result["soak"] = soak(args.soak_seconds, args.soak_rate)
    result["load"] = (load_before, load_average())
    command = (
        f"python benchmarks/bench_server.py --batches {args.batches} --clients {args.clients} "
        f"--soak-seconds {args.soak_seconds:g} --soak-rate {args.soak_rate:g}"
    )
    text = section(result, command)
    print(text)
    if args.write:
        write_section(RESULTS, HEADING, text)
        print(f"updated {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
