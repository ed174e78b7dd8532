"""The tables of ARCHITECTURE.md, defined once with SQLAlchemy Core, and the spans' Arrow schema.

All times are UTC, stored without a zone. JSON columns are JSON in DuckDB and
JSONB in PostgreSQL. The Arrow schema of a span batch (what the collector
produces and spool segments hold) is derived from the ``spans`` table, so the
two cannot drift apart.
"""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ID = sa.String(64)
# The PostgreSQL indexes that make windowed queries fast; DuckDB's zone maps do that job
# without an index, and an ART index would slow its bulk appends.
_PG_ONLY = {"dialect": "postgresql"}

spans = sa.Table(
    "spans",
    metadata,
    sa.Column("span_id", ID, primary_key=True),
    sa.Column("trace_id", ID, nullable=False),
    sa.Column("parent_id", ID),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("app", sa.Text),
    sa.Column("environment", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("prompt_version", sa.Text),
    sa.Column("user_id", sa.Text),
    sa.Column("session_id", sa.Text),
    sa.Column("start_time", sa.DateTime, nullable=False),
    sa.Column("end_time", sa.DateTime, nullable=False),
    sa.Column("latency_ms", sa.Double, nullable=False),
    sa.Column("ttft_ms", sa.Double),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("error_type", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("input_text", sa.Text),
    sa.Column("output_text", sa.Text),
    sa.Column("context", JSON),
    sa.Column("reference", sa.Text),
    sa.Column("prompt_tokens", sa.BigInteger),
    sa.Column("completion_tokens", sa.BigInteger),
    sa.Column("total_tokens", sa.BigInteger),
    sa.Column("tokens_estimated", sa.Boolean, nullable=False),
    sa.Column("cost_usd", sa.Double),
    sa.Column("bytes_in", sa.BigInteger, nullable=False),
    sa.Column("bytes_out", sa.BigInteger, nullable=False),
    sa.Column("tags", JSON),
    sa.Column("metadata", JSON),
    sa.Column("truncated", sa.Boolean, nullable=False),
    sa.Column("ingested_at", sa.DateTime, nullable=False),
)
sa.Index("ix_spans_start_time", spans.c.start_time).ddl_if(**_PG_ONLY)
sa.Index("ix_spans_trace_id", spans.c.trace_id).ddl_if(**_PG_ONLY)
# What arrived since a moment (the Prometheus totals read only that at each scrape).
sa.Index("ix_spans_ingested_at", spans.c.ingested_at).ddl_if(**_PG_ONLY)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("span_id", ID, primary_key=True),
    sa.Column("evaluator", sa.String(64), primary_key=True),
    sa.Column("evaluator_version", sa.String(32), primary_key=True),
    sa.Column("score", sa.Double),
    sa.Column("label", sa.Text),
    sa.Column("passed", sa.Boolean),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("details", JSON),
    sa.Column("evaluated_at", sa.DateTime, nullable=False),
    # The span's start_time and filter columns, copied when the score is written: the
    # dashboard's time-ranged score queries (worst spans, a session's scores) read
    # evaluations alone, without a join to spans that costs seconds at ten million spans.
    sa.Column("span_start", sa.DateTime),
    sa.Column("span_app", sa.Text),
    sa.Column("span_model", sa.Text),
    sa.Column("span_environment", sa.Text),
    sa.Column("span_prompt_version", sa.Text),
)

sa.Index("ix_evaluations_evaluated_at", evaluations.c.evaluated_at).ddl_if(**_PG_ONLY)
sa.Index("ix_evaluations_span_start", evaluations.c.evaluator, evaluations.c.span_start).ddl_if(
    **_PG_ONLY
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_id", ID, primary_key=True),
    sa.Column("span_id", ID),
    sa.Column("trace_id", ID),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("score", sa.Double),
    sa.Column("label", sa.Text),
    sa.Column("comment", sa.Text),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("author", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
sa.Index("ix_feedback_span_id", feedback.c.span_id).ddl_if(**_PG_ONLY)

# What the collectors dropped (their queue full, or the batches waiting for a failing sink
# past its bound): each report is the count since the collector's previous one.
collector_drops = sa.Table(
    "collector_drops",
    metadata,
    sa.Column("report_id", ID, primary_key=True),
    sa.Column("app", sa.Text, nullable=False),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("dropped", sa.BigInteger, nullable=False),
    sa.Column("reported_at", sa.DateTime, nullable=False),
)
sa.Index("ix_collector_drops_reported_at", collector_drops.c.reported_at).ddl_if(**_PG_ONLY)

drift_results = sa.Table(
    "drift_results",
    metadata,
    sa.Column("drift_id", ID, primary_key=True),
    # The rows of one drift run share its run_id and computed_at.
    sa.Column("run_id", ID),
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.Column("reference_start", sa.DateTime, nullable=False),
    sa.Column("reference_end", sa.DateTime, nullable=False),
    sa.Column("current_start", sa.DateTime, nullable=False),
    sa.Column("current_end", sa.DateTime, nullable=False),
    # The filter the run compared (None: every value).
    sa.Column("app", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("environment", sa.Text),
    sa.Column("prompt_version", sa.Text),
    sa.Column("kind", sa.String(16)),
    sa.Column("feature", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    # The number compared with the threshold: a distance, or a p-value (then also p_value).
    sa.Column("statistic", sa.Double),
    sa.Column("p_value", sa.Double),
    sa.Column("threshold", sa.Double),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("skipped", sa.Boolean),
    sa.Column("reference_count", sa.BigInteger),
    sa.Column("current_count", sa.BigInteger),
    sa.Column("details", JSON),
)
sa.Index("ix_drift_results_computed_at", drift_results.c.computed_at).ddl_if(**_PG_ONLY)

#: Spans an evaluate worker has claimed and is scoring (PostgreSQL, several workers): a claim
#: keeps the others off them until it is released or ``leased_until`` passes (a worker that
#: died), so each span is scored once.
evaluation_leases = sa.Table(
    "evaluation_leases",
    metadata,
    sa.Column("span_id", ID, primary_key=True),
    sa.Column("worker", sa.Text, nullable=False),
    sa.Column("leased_until", sa.DateTime, nullable=False),
)

#: Sentence vectors of a span's prompt and response, kept for a deterministic sample of spans
#: so drift never embeds a window twice. Each vector is 384 int8 values (see
#: llmvigil.evaluators.drift.sample): 768 bytes for both, where float32 would take 3 KB.
span_vectors = sa.Table(
    "span_vectors",
    metadata,
    sa.Column("span_id", ID, primary_key=True),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("input_vector", sa.LargeBinary),
    sa.Column("output_vector", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

#: Reference windows pinned with `llmvigil drift baseline`, one per filter.
drift_baselines = sa.Table(
    "drift_baselines",
    metadata,
    sa.Column("filter_key", sa.Text, primary_key=True),
    sa.Column("reference_start", sa.DateTime, nullable=False),
    sa.Column("reference_end", sa.DateTime, nullable=False),
    sa.Column("pinned_at", sa.DateTime, nullable=False),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("threshold", sa.Double),
    sa.Column("window_s", sa.Double),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("resolved_at", sa.DateTime),
    sa.Column("notifications", JSON),
    sa.Column("hook_runs", JSON),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

#: Where each alert rule and group stands, so a restarted process neither re-notifies nor
#: forgets a firing alert.
alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column("rule", sa.Text, primary_key=True),
    sa.Column("group_key", sa.Text, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since", sa.DateTime, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("samples", sa.BigInteger),
    sa.Column("checked_at", sa.DateTime, nullable=False),
    # The firing episode (alert_events.event_id) while PENDING or FIRING.
    sa.Column("event_id", ID),
    sa.Column("notified_at", sa.DateTime),
)

#: Every notification, written in the same transaction as the transition that caused it and
#: sent after: a process killed in between sends it on its next check, with the same key.
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("delivery_id", ID, primary_key=True),
    sa.Column("event_id", ID, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # firing, resolved, repeat, test
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, sent, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("response_status", sa.Integer),
    # Every attempt: [{"attempt", "at", "ok", "status", "error"}].
    sa.Column("attempt_log", JSON),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
)

#: Retraining hook runs: queued with the firing, run after, recorded with their outcome.
alert_hook_runs = sa.Table(
    "alert_hook_runs",
    metadata,
    sa.Column("run_id", ID, primary_key=True),
    sa.Column("event_id", ID, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("hook", sa.Text, nullable=False),
    sa.Column("payload", JSON, nullable=False),
    # pending, running (in the background), ok, failed, timeout, interrupted
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("seconds", sa.Double),
    sa.Column("output_tail", sa.Text),
    sa.Column("export_path", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
)

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

#: Span columns whose values are JSON documents (lists or objects).
SPAN_JSON_COLUMNS = ("context", "tags", "metadata")

_ARROW_TYPES: dict[type[sa.types.TypeEngine], pa.DataType] = {
    sa.String: pa.string(),
    sa.Text: pa.string(),
    sa.DateTime: pa.timestamp("us"),
    sa.Float: pa.float64(),
    sa.BigInteger: pa.int64(),
    sa.Integer: pa.int64(),
    sa.Boolean: pa.bool_(),
}


def _arrow_type(column: sa.Column) -> pa.DataType:
    if column.name in SPAN_JSON_COLUMNS or isinstance(column.type, sa.JSON):
        return pa.string()  # JSON travels as text; each engine parses it on insert
    for sa_type, arrow_type in _ARROW_TYPES.items():
        if isinstance(column.type, sa_type):
            return arrow_type
    raise TypeError(f"no Arrow type for column {column.name} ({column.type})")


#: The Arrow schema of a batch of spans, column for column the ``spans`` table.
SPAN_ARROW_SCHEMA = pa.schema(
    [pa.field(c.name, _arrow_type(c), nullable=c.nullable) for c in spans.columns]
)
SPAN_COLUMNS = tuple(c.name for c in spans.columns)
#: The same for a batch of scores and the ``evaluations`` table (DuckDB's write path).
EVALUATION_ARROW_SCHEMA = pa.schema(
    [pa.field(c.name, _arrow_type(c), nullable=c.nullable) for c in evaluations.columns]
)


#: The span columns copied into each evaluation row, by the evaluation column's name.
SPAN_COPIES = {
    "span_start": "start_time",
    "span_app": "app",
    "span_model": "model",
    "span_environment": "environment",
    "span_prompt_version": "prompt_version",
}

#: Width of a score rollup's time bucket, in seconds.
ROLLUP_SECONDS = 300
#: Score histogram bins in a rollup row: ``b0`` counts scores in [0, 0.1), ``b9`` [0.9, 1].
SCORE_BINS = 10

#: What a rollup row is per, beside its time bucket.
ROLLUP_DIMENSIONS = ("app", "model", "environment", "prompt_version", "kind")


def _rollup_key() -> list[sa.Column]:
    # Text, never NULL: a span without one of these has "" there, so the key holds no NULL.
    return [sa.Column(name, sa.Text, primary_key=True) for name in ROLLUP_DIMENSIONS]


# Scores summed per 5-minute bucket of the spans' start times and per app, model,
# environment, prompt version and kind (an empty string where a span has none, so the key
# holds no NULL), kept up to date from new evaluations (llmvigil.storage.rollups). The
# dashboard's quality charts read these: at ten million spans the same aggregate over
# evaluations joined to spans takes seconds.
score_rollups = sa.Table(
    "score_rollups",
    metadata,
    sa.Column("bucket", sa.BigInteger, primary_key=True),  # epoch seconds of the bucket start
    *_rollup_key(),
    sa.Column("evaluator", sa.String(64), primary_key=True),
    sa.Column("evaluator_version", sa.String(32), primary_key=True),
    sa.Column("method", sa.Text, primary_key=True),
    sa.Column("scored", sa.BigInteger, nullable=False),
    sa.Column("unscored", sa.BigInteger, nullable=False),
    sa.Column("score_sum", sa.Double, nullable=False),
    sa.Column("passed", sa.BigInteger, nullable=False),
    sa.Column("failed", sa.BigInteger, nullable=False),
    *(sa.Column(f"b{i}", sa.BigInteger, nullable=False) for i in range(SCORE_BINS)),
)

#: The span measures a span rollup row sums, counts and bounds, with their column type.
SPAN_MEASURES: dict[str, type[sa.types.TypeEngine]] = {
    "latency_ms": sa.Double,
    "prompt_tokens": sa.BigInteger,
    "completion_tokens": sa.BigInteger,
    "total_tokens": sa.BigInteger,
    "cost_usd": sa.Double,
    "bytes_in": sa.BigInteger,
    "bytes_out": sa.BigInteger,
}
#: Latency histogram of a span rollup row, log-spaced: ``l0`` counts latencies under 1 ms,
#: ``l{i}`` for 1 <= i <= 160 those in [2^((i-1)/8), 2^(i/8)) ms, and ``l161`` those of
#: 2^20 ms (17.5 minutes) or more. Eight bins an octave bound a percentile's error (see
#: llmvigil.storage.rollups.latency_percentiles).
LATENCY_BINS_PER_OCTAVE = 8
LATENCY_OCTAVES = 20
LATENCY_BINS = LATENCY_OCTAVES * LATENCY_BINS_PER_OCTAVE + 2

# Spans summed per 5-minute bucket of their start times and per app, model, environment,
# prompt version and kind ("" where a span has none), kept up to date from new spans by
# ingested_at (llmvigil.storage.rollups): the dashboard's traffic charts and health table
# over days read these instead of aggregating millions of spans.
span_rollups = sa.Table(
    "span_rollups",
    metadata,
    sa.Column("bucket", sa.BigInteger, primary_key=True),  # epoch seconds of the bucket start
    *_rollup_key(),
    sa.Column("calls", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    *(
        column
        for name, kind in SPAN_MEASURES.items()
        for column in (
            sa.Column(f"{name}_sum", kind, nullable=False),  # 0 where none had a value
            sa.Column(f"{name}_count", sa.BigInteger, nullable=False),
            sa.Column(f"{name}_min", kind),
            sa.Column(f"{name}_max", kind),
        )
    ),
    *(sa.Column(f"l{i}", sa.BigInteger, nullable=False) for i in range(LATENCY_BINS)),
)

# How far each rollup has read its source (evaluations by ``evaluated_at``, spans by
# ``ingested_at``).
rollup_marks = sa.Table(
    "rollup_marks",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("upto", sa.DateTime, nullable=False),
)
