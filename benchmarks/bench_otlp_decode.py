"""OTLP decoding: CPU per span of an export turned into store rows, per encoding, in one run.

The exports are the server benchmark's (``bench_server.py``): batches of 100
GenAI chat spans (prompts of ~300 characters, answers, model, tokens). Timed in
this process, CPU time of this thread (``time.thread_time``, so other work on the
machine slows the figures less than it would a wall clock), best of several rounds:

- protobuf: ``otlp.rows_of`` on the protobuf encoding;
- JSON: ``otlp.rows_of`` on the same export as OTLP/JSON (ids in hex), read
  straight into rows by ``otlp_json``;
- JSON through protobuf's mapping: the JSON parsed with ``json_format.ParseDict``
  into the protobuf message and read from there (the path a body the fast reader
  does not take goes).

Usage::

    python benchmarks/bench_otlp_decode.py [--batches 50] [--rounds 7] [--write]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import sys
import time
from pathlib import Path

from _report import header, load_average, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
HEADING = "## OTLP decoding"
PACKAGES = ["llmvigil", "protobuf", "opentelemetry-proto", "orjson"]


def json_body(body: bytes) -> bytes:
    """The protobuf export ``body`` as OTLP/JSON, its ids in hex."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    data = json_format.MessageToDict(ExportTraceServiceRequest.FromString(body))
    for resource in data["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(data).encode()


def best_us_per_span(run, spans: int, rounds: int) -> float:
    run()
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best / spans * 1e6


def measure(batches: int, rounds: int) -> dict[str, float]:
    from bench_server import BATCH, otlp_bodies

    from llmvigil.server import otlp

    protobuf = otlp_bodies(batches, 0)
    as_json = [json_body(body) for body in protobuf]
    spans = batches * BATCH

    def through_mapping(body: bytes) -> None:
        otlp._rows(otlp._spans(otlp._decode_json(otlp._json_of(body))))

    gc.disable()  # a collection landing in one round and not another is noise here
    try:
        return {
            "protobuf": best_us_per_span(
                lambda: [otlp.rows_of(b, "application/x-protobuf") for b in protobuf],
                spans, rounds,
            ),
            "json": best_us_per_span(
                lambda: [otlp.rows_of(b, "application/json") for b in as_json], spans, rounds
            ),
            "mapping": best_us_per_span(
                lambda: [through_mapping(b) for b in as_json], spans, max(2, rounds // 3)
            ),
        }  # fmt: skip
    finally:
        gc.enable()


def section(result: dict[str, float], command: str, load) -> str:
    base = result["protobuf"]
    lines = [
        *header(HEADING, command, PACKAGES, load),
        "",
        "CPU time of the decoding thread per span, exports of 100 GenAI chat spans "
        "(`bench_server.py`'s), best of the rounds, all in one run.",
        "",
        "| Encoding, path | µs per span | x protobuf |",
        "|---|---:|---:|",
        f"| protobuf (`otlp.rows_of`) | {base:.1f} | 1.00 |",
        f"| OTLP/JSON, read straight into rows (`otlp_json`) | {result['json']:.1f} | "
        f"{result['json'] / base:.2f} |",
        f"| OTLP/JSON through protobuf's mapping (`json_format.ParseDict`) | "
        f"{result['mapping']:.1f} | {result['mapping'] / base:.2f} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=50, help="exports of 100 spans")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the best is kept")
    parser.add_argument("--write", action="store_true", help=f"update '{HEADING}' in RESULTS.md")
    args = parser.parse_args()
    load_before = load_average()
    result = measure(args.batches, args.rounds)
    command = (
        f"python benchmarks/bench_otlp_decode.py --batches {args.batches} --rounds {args.rounds}"
    )
    text = section(result, command, (load_before, load_average()))
    print(text)
    if args.write:
        write_section(RESULTS, HEADING, text)
        print(f"updated {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
