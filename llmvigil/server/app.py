"""The owner's HTTP API (FastAPI): span and feedback ingest, health, readiness.

``POST /v1/spans`` takes ``{"spans": [...]}`` (:class:`.spans_api.SpanIn`),
optionally gzip-compressed. The batch is checked whole before anything is
stored: a body over ``[server] max_body_bytes`` or a batch over
``max_batch_spans`` is refused with 413, bad JSON with 400, a span with an
unknown field or a value of the wrong type with 422 naming its index and
field. Stored spans are idempotent by ``span_id``: sending a batch again
stores nothing twice. The OpenAPI schema is served at ``/openapi.json``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from llmvigil.collector.sinks import ARROW_STREAM
from llmvigil.config import Settings
from llmvigil.errors import ConfigError, IngestError, StoreError
from llmvigil.server.auth import Keys
from llmvigil.server.commands import command_needs, run_in_owner
from llmvigil.server.prometheus import IngestCounters, make_registry
from llmvigil.server.spans_api import SpanBatch, to_row
from llmvigil.server.writer import GroupWriter


class CommandIn(BaseModel):
    """The body of ``POST /v1/commands``: an llmvigil command's arguments, as on its command
    line, and the width to print tables at."""

    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, max_length=200)
    width: int | None = Field(None, ge=20, le=1000)


class CommandOut(BaseModel):
    """What the command printed, and its exit status."""

    exit_code: int
    stdout: str
    stderr: str


class DashboardQueryIn(BaseModel):
    """The body of ``POST /v1/dashboard/{name}``: the view (``since`` and ``until`` in ISO
    8601, and the filters ``app``, ``model``, ``environment``, ``prompt_version``) and the
    query's own params (see :mod:`llmvigil.dashboard.queries`)."""

    model_config = ConfigDict(extra="forbid")

    view: dict[str, str | None]
    params: dict[str, Any] = Field(default_factory=dict)


class FeedbackIn(BaseModel):
    """The body of ``POST /v1/feedback``: a user's verdict on a span or a trace."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    span_id: str | None = Field(None, min_length=1, max_length=64)
    trace_id: str | None = Field(None, min_length=1, max_length=64)
    #: Your id for this feedback: sent again, it is stored once (the collector sets one).
    feedback_id: str | None = Field(None, min_length=1, max_length=64)
    name: str = Field("rating", min_length=1, max_length=64)
    score: float | None = None
    label: str | None = None
    comment: str | None = None
    source: str = Field("api", max_length=32)
    author: str | None = None


class DroppedIn(BaseModel):
    """The body of ``POST /v1/collector/dropped``: spans a collector dropped since its last
    report (its queue was full, or its sink failed past the queue's bound)."""

    model_config = ConfigDict(extra="forbid")

    #: The collector's id for this report: sent again, it is stored once.
    report_id: str = Field(min_length=1, max_length=64)
    #: At most a BIGINT's worth, which the store's column holds.
    dropped: int = Field(ge=1, le=2**62)
    app: str = Field("default", min_length=1)
    environment: str = Field("production", min_length=1)
    reported_at: datetime | None = None


def _inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """The request body, gunzipped if sent so; 413 past ``limit`` bytes either way."""
    if len(raw) > limit:
        raise HTTPException(413, f"the body is {len(raw):,} bytes, over max_body_bytes {limit:,}")
    if encoding == "gzip":
        # Read at most the limit: a small body that inflates past it is refused, not expanded.
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise HTTPException(400, f"the gzip body cannot be read: {exc}") from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise HTTPException(413, f"the body inflates past max_body_bytes {limit:,}")
    elif encoding not in ("", "identity"):
        raise HTTPException(415, f"Content-Encoding {encoding!r}: send gzip or no encoding")
    return raw


def _read_body(raw: bytes, encoding: str, limit: int) -> Any:
    try:
        return orjson.loads(_inflate(raw, encoding, limit))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from None


def _where(error: dict[str, Any]) -> str:
    loc = list(error["loc"])
    if loc[:1] == ["spans"] and len(loc) >= 2:
        rest = ".".join(str(p) for p in loc[2:])
        return f"spans[{loc[1]}]" + (f".{rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "body"


def create_app(
    store,
    settings: Settings,
    keys: Keys,
    ready: Callable[[], bool],
    metrics: tuple[CollectorRegistry, IngestCounters] | None = None,
) -> FastAPI:
    """The API over ``store``; ``ready`` says whether the scheduler runs (``/readyz``);
    ``metrics`` is what ``/metrics`` serves (made here when not given)."""
    server = settings.server
    registry, counted = metrics or make_registry(store, Path(settings.collector.spool_dir))
    writer = GroupWriter(store)
    app = FastAPI(
        title="llmvigil",
        summary="Span, OpenTelemetry and feedback ingest for llmvigil's store",
        version="1",
    )

    def presented(request: Request) -> frozenset[str]:
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else None
        return keys.scopes(key)

    def allow(request: Request, scope: str) -> None:
        if not keys.configured:  # loopback with no key configured: open (see `up`)
            return
        scopes = presented(request)
        if not scopes:
            raise HTTPException(401, "send an API key: Authorization: Bearer KEY")
        if scope not in scopes:
            raise HTTPException(
                403, f"this key may not {scope}; it has {', '.join(sorted(scopes))}"
            )

    @app.get("/healthz", summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The store is writable and the scheduler runs")
    def readyz() -> JSONResponse:
        problems = []
        try:
            store.count_spans()
        except StoreError as exc:
            problems.append(f"store: {exc}")
        if not ready():
            problems.append("scheduler: not running")
        body = {"status": "ready" if not problems else "not ready", "problems": problems}
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.post(
        "/v1/spans",
        summary="Store a batch of spans",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SpanBatch.model_json_schema()}},
            }
        },
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 422: {}},
    )
    async def post_spans(request: Request) -> dict[str, int]:
        allow(request, "ingest")
        raw = await request.body()
        encoding = request.headers.get("content-encoding", "")
        if request.headers.get("content-type", "").startswith(ARROW_STREAM):
            return await _arrow_batch(_inflate(raw, encoding, server.max_body_bytes))
        data = _read_body(raw, encoding, server.max_body_bytes)
        listed = data.get("spans") if isinstance(data, dict) else None
        if isinstance(listed, list) and len(listed) > server.max_batch_spans:
            raise HTTPException(
                413,
                f"{len(listed):,} spans in one batch, over max_batch_spans "
                f"{server.max_batch_spans:,}; send smaller batches",
            )
        try:
            batch = SpanBatch.model_validate(data)
        except ValidationError as exc:
            problems = [f"{_where(e)}: {e['msg']}" for e in exc.errors()[:20]]
            detail = {"message": "nothing was stored", "problems": problems}
            raise HTTPException(422, detail) from None
        rows = [to_row(span) for span in batch.spans]
        try:  # with the rows of the requests beside it, in one transaction (.writer)
            inserted = await writer.append(rows) if rows else 0
        except IngestError as exc:
            counted.count("spans", refused=len(rows))
            detail = {"message": "nothing was stored", "problems": [str(exc)]}
            raise HTTPException(422, detail) from None
        counted.count("spans", stored=inserted, duplicates=len(rows) - inserted)
        return {"received": len(rows), "stored": inserted, "duplicates": len(rows) - inserted}

    async def _arrow_batch(raw: bytes) -> dict[str, int]:
        """The collector's own batches (the ``http`` sink): an Arrow IPC stream of its rows."""
        import pyarrow as pa

        try:
            table = pa.ipc.open_stream(raw).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise HTTPException(400, f"the body is not an Arrow IPC stream: {exc}") from None
        if table.num_rows > server.max_batch_spans:
            raise HTTPException(413, f"{table.num_rows:,} spans, over max_batch_spans")
        try:
            inserted = await run_in_threadpool(store.append_spans, table)
        except IngestError as exc:
            counted.count("http_sink", refused=table.num_rows)
            detail = {"message": "nothing was stored", "problems": [str(exc)]}
            raise HTTPException(422, detail) from None
        total = table.num_rows
        counted.count("http_sink", stored=inserted, duplicates=total - inserted)
        return {"received": total, "stored": inserted, "duplicates": total - inserted}

    @app.post(
        "/v1/traces",
        summary="OTLP/HTTP trace export (protobuf or JSON), GenAI spans as llm spans",
        responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}},
    )
    async def post_traces(request: Request) -> Response:
        from llmvigil.server import otlp

        allow(request, "ingest")
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        raw = _inflate(
            await request.body(), request.headers.get("content-encoding", ""), server.max_body_bytes
        )
        try:
            # On a worker thread: an export of thousands of spans takes its decoding's
            # hundreds of ms, and the loop must meanwhile answer /healthz and the other requests
            # (the GIL still runs one at a time, handing over every few ms). Exports of 100
            # spans decoded on the loop instead did worse (benchmarks/bench_server.py, runs
            # alternated on a loaded 2-core machine: 15 % fewer spans/s, p99 1.3x): the loop's
            # socket work, done without the GIL, no longer overlapped the decoding.
            rows, problems, total = await run_in_threadpool(otlp.rows_of, raw, content_type)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        stored = len(rows)
        if rows:
            try:
                inserted = await writer.append(rows)
                counted.count("otlp", stored=inserted, duplicates=stored - inserted)
            except IngestError as exc:
                problems.append(str(exc))
                stored = 0
        counted.count("otlp", refused=total - stored)
        body, media = otlp.encode_response(total - stored, "; ".join(problems)[:2000], content_type)
        return Response(body, media_type=media)

    @app.get(
        "/metrics",
        summary="Prometheus metrics: calls, errors, latency, tokens, cost, scores, drift, alerts",
        response_class=PlainTextResponse,
    )
    def prometheus_metrics(request: Request) -> Response:
        allow(request, "read")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/commands",
        summary="Run an llmvigil command over the owned store",
        description="What `llmvigil metrics`, `drift`, `alerts list` and the other store "
        "commands send when this process owns their store. Reading commands need the read "
        "scope, commands that change the store a key with every scope, `export` (it writes a "
        "file on this machine) the owner's own token from its listen file.",
        responses={401: {}, 403: {}, 422: {}},
    )
    def post_command(command: CommandIn, request: Request) -> CommandOut:
        try:
            name, needs = command_needs(command.argv)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        scopes = presented(request)
        if not scopes and keys.configured:
            raise HTTPException(401, "send an API key: Authorization: Bearer KEY")
        if not keys.configured and "owner" not in needs:
            scopes = scopes or frozenset({"read", "ingest"})
        if not needs <= scopes:
            raise HTTPException(
                403,
                f"{name} needs {' and '.join(sorted(needs))}; this key has "
                f"{', '.join(sorted(scopes)) or 'nothing'}",
            )
        result = run_in_owner(store, command.argv, command.width)
        return CommandOut(**vars(result))

    @app.post("/v1/feedback", summary="Record a user's feedback on a span or trace")
    def post_feedback(feedback: FeedbackIn, request: Request) -> dict[str, str]:
        allow(request, "ingest")
        if feedback.span_id is None and feedback.trace_id is None:
            raise HTTPException(422, "feedback needs a span_id or a trace_id")
        try:
            feedback_id = store.add_feedback(**feedback.model_dump())
        except (IngestError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        return {"feedback_id": feedback_id}

    @app.post(
        "/v1/dashboard/{name}",
        summary="Run one of the dashboard's read queries over the owned store",
        description="Answers an Arrow IPC stream of the query's rows. Needs the read scope.",
        response_class=Response,
        responses={401: {}, 403: {}, 404: {}, 422: {}},
    )
    def post_dashboard(name: str, body: DashboardQueryIn, request: Request) -> Response:
        import pyarrow as pa

        from llmvigil.dashboard.queries import QUERIES, run_query
        from llmvigil.dashboard.view import View

        allow(request, "read")
        if name not in QUERIES:
            raise HTTPException(404, f"no dashboard query {name!r}")
        try:
            table = run_query(store, name, View.from_json(body.view), body.params)
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)

    @app.post(
        "/v1/collector/dropped",
        summary="Record spans a collector dropped (the collector.dropped alert metric)",
    )
    def post_dropped(report: DroppedIn, request: Request) -> dict[str, str]:
        allow(request, "ingest")
        try:
            store.add_collector_drops(**report.model_dump())
        except (IngestError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        return {"report_id": report.report_id}

    app.state.writer = writer  # closed by the owner once the server has stopped
    return app
