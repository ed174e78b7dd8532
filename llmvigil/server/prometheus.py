"""``GET /metrics``: the store's calls, errors, latency, tokens, cost, scores, drift and alerts
in the Prometheus text format, so a team's Grafana charts llmvigil with what it already has.

Counters (calls, errors, the latency histogram, tokens, cost, evaluations) are
running totals the owner keeps: each scrape adds what reached the store since
the last one (spans by ``ingested_at``, scores by ``evaluated_at``), so a scrape
costs what arrived meanwhile, not a scan of every span, and the totals never
go down when retention deletes old spans (Prometheus reads a falling counter
as a restart). Rows stamped in the last :data:`SETTLE_S` seconds wait for the
next scrape: a write still committing elsewhere (several PostgreSQL writers)
is not skipped. Gauges (alert states, the latest drift run, pass rates over
the last hour, the spool's backlog) are read as they are at each scrape.
Counters of what the API itself took and refused are kept as it goes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from llmvigil.storage import schema
from llmvigil.storage.store import utc_now

#: Upper bounds of the call-duration histogram, in seconds (LLM calls: 100 ms to minutes).
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Rows stamped this recently are counted at the next scrape, when their commit has surely
#: landed.
SETTLE_S = 5.0
#: The window of the pass-rate gauges.
PASS_RATE_WINDOW = timedelta(hours=1)

_SpanKey = tuple[str, str, str]  # app, model, kind


class _SpanTotals:
    __slots__ = ("buckets", "calls", "completion", "cost", "errors", "prompt", "seconds")

    def __init__(self) -> None:
        self.calls = self.errors = self.prompt = self.completion = 0
        self.seconds = self.cost = 0.0
        self.buckets = [0] * len(LATENCY_BUCKETS_S)


class StoreTotals:
    """Running totals of the store's spans and scores, advanced at each scrape."""

    def __init__(self, store: Any, settle_s: float = SETTLE_S) -> None:
        self.store = store
        self.settle_s = settle_s
        self.spans: dict[_SpanKey, _SpanTotals] = defaultdict(_SpanTotals)
        self.evaluations: dict[tuple[str, str], int] = defaultdict(int)
        self._spans_until: datetime | None = None
        self._scores_until: datetime | None = None
        self._lock = threading.Lock()

    def advance(self) -> None:
        """Add what reached the store since the last call (all of it, the first time)."""
        with self._lock:
            until = utc_now() - timedelta(seconds=self.settle_s)
            with self.store.engine.connect() as conn:
                self._add_spans(conn, self._spans_until, until)
                self._add_scores(conn, self._scores_until, until)
            self._spans_until = self._scores_until = until

    def _add_spans(self, conn: sa.Connection, since: datetime | None, until: datetime) -> None:
        s = schema.spans
        seconds = s.c.latency_ms / 1000.0
        columns = [
            sa.func.count(),
            sa.func.count().filter(s.c.status == "error"),
            sa.func.coalesce(sa.func.sum(seconds), 0.0),
            sa.func.coalesce(sa.func.sum(s.c.prompt_tokens), 0),
            sa.func.coalesce(sa.func.sum(s.c.completion_tokens), 0),
            sa.func.coalesce(sa.func.sum(s.c.cost_usd), 0.0),
            *(sa.func.count().filter(seconds <= bound) for bound in LATENCY_BUCKETS_S),
        ]
        query = sa.select(s.c.app, s.c.model, s.c.kind, *columns).where(s.c.ingested_at <= until)
        if since is not None:
            query = query.where(s.c.ingested_at > since)
        query = query.group_by(s.c.app, s.c.model, s.c.kind)
        for (
            app,
            model,
            kind,
            calls,
            errors,
            secs,
            prompt,
            completion,
            cost,
            *buckets,
        ) in conn.execute(query):
            totals = self.spans[(app or "", model or "", kind or "")]
            totals.calls += calls
            totals.errors += errors
            totals.seconds += float(secs)
            totals.prompt += int(prompt)
            totals.completion += int(completion)
            totals.cost += float(cost)
            for i, count in enumerate(buckets):
                totals.buckets[i] += count

    def _add_scores(self, conn: sa.Connection, since: datetime | None, until: datetime) -> None:
        e = schema.evaluations
        query = sa.select(e.c.evaluator, e.c.passed, sa.func.count()).where(
            e.c.evaluated_at <= until
        )
        if since is not None:
            query = query.where(e.c.evaluated_at > since)
        for evaluator, passed, count in conn.execute(query.group_by(e.c.evaluator, e.c.passed)):
            result = "unscored" if passed is None else "pass" if passed else "fail"
            self.evaluations[(evaluator, result)] += count


class StoreCollector:
    """A Prometheus collector over the owner's store (see the module docstring)."""

    def __init__(self, store: Any, spool: Path, settle_s: float = SETTLE_S) -> None:
        self.totals = StoreTotals(store, settle_s)
        self.store = store
        self.spool = spool

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        self.totals.advance()
        yield from self._span_families()
        yield from self._score_families()
        with self.store.engine.connect() as conn:
            yield from _pass_rates(conn)
            yield from _drift(conn)
            yield from _alerts(conn)
            yield from _collector_drops(conn)
        yield from self._spool_families()

    def _span_families(self) -> Iterator[Metric]:
        labels = ["app", "model", "kind"]
        calls = CounterMetricFamily("llmvigil_calls", "Calls stored (spans)", labels=labels)
        errors = CounterMetricFamily("llmvigil_call_errors", "Calls that failed", labels=labels)
        latency = HistogramMetricFamily(
            "llmvigil_call_duration_seconds", "Call latency", labels=labels
        )
        tokens = CounterMetricFamily("llmvigil_tokens", "Tokens", labels=[*labels, "type"])
        cost = CounterMetricFamily("llmvigil_cost_usd", "Cost in US dollars", labels=labels)
        for key, t in sorted(self.totals.spans.items()):
            values = list(key)
            calls.add_metric(values, t.calls)
            errors.add_metric(values, t.errors)
            buckets = [(_bound(b), n) for b, n in zip(LATENCY_BUCKETS_S, t.buckets, strict=True)]
            latency.add_metric(values, [*buckets, ("+Inf", t.calls)], t.seconds)
            tokens.add_metric([*values, "prompt"], t.prompt)
            tokens.add_metric([*values, "completion"], t.completion)
            cost.add_metric(values, t.cost)
        yield from (calls, errors, latency, tokens, cost)

    def _score_families(self) -> Iterator[Metric]:
        scores = CounterMetricFamily(
            "llmvigil_evaluations",
            "Scores by evaluator and verdict",
            labels=["evaluator", "result"],
        )
        for (evaluator, result), count in sorted(self.totals.evaluations.items()):
            scores.add_metric([evaluator, result], count)
        yield scores

    def _spool_families(self) -> Iterator[Metric]:
        from llmvigil.collector.spool import SEGMENT_GLOB

        sizes = []
        if self.spool.exists():
            for path in self.spool.glob(SEGMENT_GLOB):
                try:
                    sizes.append(path.stat().st_size)
                except OSError:  # loaded and deleted meanwhile
                    continue
        yield GaugeMetricFamily(
            "llmvigil_spool_segments", "Spool segments waiting to be loaded", value=len(sizes)
        )
        yield GaugeMetricFamily(
            "llmvigil_spool_bytes", "Bytes of spool segments waiting", value=sum(sizes)
        )


def _bound(value: float) -> str:
    return f"{value:g}"


def _pass_rates(conn: sa.Connection) -> Iterator[Metric]:
    e = schema.evaluations
    since = utc_now() - PASS_RATE_WINDOW
    query = (
        sa.select(
            e.c.evaluator,
            sa.func.count().filter(e.c.passed.is_(True)),
            sa.func.count().filter(e.c.passed.is_not(None)),
        )
        .where(e.c.evaluated_at > since)
        .group_by(e.c.evaluator)
    )
    rate = GaugeMetricFamily(
        "llmvigil_evaluator_pass_rate",
        "Share of the last hour's scores that passed",
        labels=["evaluator"],
    )
    for evaluator, passed, judged in conn.execute(query):
        if judged:
            rate.add_metric([evaluator], passed / judged)
    yield rate


def _drift(conn: sa.Connection) -> Iterator[Metric]:
    d = schema.drift_results
    latest = sa.select(sa.func.max(d.c.computed_at)).scalar_subquery()
    query = sa.select(
        d.c.feature, d.c.app, d.c.model, d.c.drifted, d.c.statistic, d.c.skipped
    ).where(d.c.computed_at == latest)
    labels = ["feature", "app", "model"]
    drifted = GaugeMetricFamily(
        "llmvigil_drift_detected", "1 if the latest drift run flagged the feature", labels=labels
    )
    statistic = GaugeMetricFamily(
        "llmvigil_drift_statistic", "The latest drift run's statistic", labels=labels
    )
    for feature, app, model, flagged, value, skipped in conn.execute(query):
        if skipped:
            continue
        values = [feature, app or "", model or ""]
        drifted.add_metric(values, 1.0 if flagged else 0.0)
        if value is not None:
            statistic.add_metric(values, float(value))
    yield from (drifted, statistic)


def _collector_drops(conn: sa.Connection) -> Iterator[Metric]:
    # Summed from the reports at each scrape: one row per drain that dropped something, so a
    # small table, and nothing deletes from it (a counter must not go down).
    c = schema.collector_drops.c
    family = CounterMetricFamily(
        "llmvigil_collector_dropped",
        "Spans the collectors dropped (queue full, or a failing sink past the queue's bound), "
        "as they reported them",
        labels=["app", "environment"],
    )
    query = sa.select(c.app, c.environment, sa.func.sum(c.dropped)).group_by(c.app, c.environment)
    for app, environment, dropped in conn.execute(query.order_by(c.app, c.environment)):
        family.add_metric([app, environment], int(dropped))
    yield family


def _alerts(conn: sa.Connection) -> Iterator[Metric]:
    a = schema.alert_state
    firing = GaugeMetricFamily(
        "llmvigil_alert_firing", "1 while the rule fires for the group", labels=["rule", "group"]
    )
    value = GaugeMetricFamily(
        "llmvigil_alert_value", "The rule's value at its last check", labels=["rule", "group"]
    )
    query = sa.select(a.c.rule, a.c.group_key, a.c.state, a.c.value)
    for rule, group, state, measured in conn.execute(query):
        firing.add_metric([rule, group], 1.0 if state == "firing" else 0.0)
        if measured is not None:
            value.add_metric([rule, group], float(measured))
    yield from (firing, value)


class IngestCounters:
    """What the API and the spool ingester took and refused, counted as it happens."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter(
            "llmvigil_spans_ingested",
            "Spans stored by this owner, by the way they came",
            ["via"],
            registry=registry,
        )
        self.duplicates = Counter(
            "llmvigil_spans_duplicate",
            "Spans received again (same span_id) and not stored twice",
            ["via"],
            registry=registry,
        )
        self.refused = Counter(
            "llmvigil_spans_refused", "Spans refused, by the way they came", ["via"],
            registry=registry,
        )  # fmt: skip

    def count(self, via: str, stored: int = 0, duplicates: int = 0, refused: int = 0) -> None:
        """Add one batch's outcome."""
        if stored:
            self.stored.labels(via).inc(stored)
        if duplicates:
            self.duplicates.labels(via).inc(duplicates)
        if refused:
            self.refused.labels(via).inc(refused)


def make_registry(
    store: Any, spool: Path, settle_s: float = SETTLE_S
) -> tuple[CollectorRegistry, IngestCounters]:
    """A registry with the store's metrics and the ingest counters (one per owner)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, spool, settle_s))
    return registry, IngestCounters(registry)
