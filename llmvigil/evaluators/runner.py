"""Run evaluators over stored spans incrementally, exactly once, a committed batch at a time.

Each batch is the oldest spans that lack a score from at least one evaluator's
current version; every evaluator scores the items it still owes, all on the
same batch, so the shared sentence vectors are computed once per text; then
all of the batch's scores are written in one transaction. A run killed at any
point loses at most the batch in hand, and the store's key
(span_id, evaluator, evaluator_version) makes a repeated write a no-op, so a
restarted run finishes with no duplicate and no gap. A new evaluator version
re-scores everything.

Spans left out by sampling, and spans lacking a field an evaluator needs (an
error span has no output), get a row with no score and the reason, so they
are not fetched again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmvigil.collector.redact import PLACEHOLDERS
from llmvigil.errors import EvaluatorError
from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.registry import get
from llmvigil.storage import schema

log = logging.getLogger("llmvigil.evaluators")

#: Labels of stored rows that record a failure rather than a verdict (``--retry-errors``).
FAILURE_LABELS = ("evaluator_error", "judge_error")


def span_copies(span: dict[str, Any]) -> dict[str, Any]:
    """The span fields a score row carries (``schema.SPAN_COPIES``), read off the span."""
    return {name: span.get(column) for name, column in schema.SPAN_COPIES.items()}


def sampled(span_id: str, evaluator: str, rate: float) -> bool:
    """Whether ``evaluator`` scores ``span_id`` at sampling ``rate``: the same answer every run."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(f"{evaluator}\x00{span_id}".encode()) / 2**32 < rate


# Stored text was redacted by the collector: "Call [PHONE]" does answer "What is the phone
# number?". Evaluators read a typical value of the same kind instead of each placeholder, the
# same value wherever it occurs, so the answer and its evidence still agree.
_STAND_INS = {
    PLACEHOLDERS["email"]: "someone@example.com",
    PLACEHOLDERS["phone"]: "+1 555 0100",
    PLACEHOLDERS["card"]: "4111 1111 1111 1111",
    PLACEHOLDERS["iban"]: "GB82 WEST 1234 5698 7654 32",
    PLACEHOLDERS["ssn"]: "078-05-1120",
    PLACEHOLDERS["ip"]: "192.0.2.1",
    PLACEHOLDERS["password"]: "example-password",
    PLACEHOLDERS["secret"]: "example-api-key",
}


def readable(text: str | None) -> str | None:
    """``text`` with the collector's redaction placeholders replaced by typical values."""
    if not text or "[" not in text:
        return text
    for placeholder, value in _STAND_INS.items():
        text = text.replace(placeholder, value)
    return text


def item_of(span: Mapping[str, Any]) -> EvalItem:
    """The :class:`EvalItem` an evaluator sees of a stored span."""
    return EvalItem(
        span["span_id"],
        readable(span["input_text"]),
        readable(span["output_text"]),
        tuple(readable(p) or "" for p in span["context"] or ()),
        readable(span["reference"]),
    )


def missing_fields(evaluator: Evaluator, item: EvalItem) -> list[str]:
    """Fields ``evaluator`` needs that ``item`` lacks."""
    lacking = []
    for name in sorted(evaluator.needs):
        value = getattr(item, name)
        if value is None or (isinstance(value, str | tuple) and not value):
            lacking.append(name)
    return lacking


def build_evaluators(
    names: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Evaluator]:
    """Instances of the registered evaluators ``names``, with constructor ``options`` by name."""
    options = options or {}
    return [get(name)(**dict(options.get(name, {}))) for name in names]


@dataclass
class RunReport:
    """What a run did, by evaluator."""

    spans: int = 0
    batches: int = 0
    scored: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def spans_per_second(self) -> float:
        """Spans evaluated per second of the run."""
        return self.spans / self.seconds if self.seconds else 0.0


class Runner:
    """Scores items with evaluators: a store's spans (:meth:`run`) or a list (:meth:`score`)."""

    def __init__(
        self,
        evaluators: Sequence[Evaluator],
        batch_size: int = 256,
        sampling: Mapping[str, float] | None = None,
        kinds: Sequence[str] | None = None,
        vector_share: float = 0.0,
    ) -> None:
        names = [e.name for e in evaluators]
        if len(set(names)) != len(names):
            raise EvaluatorError(f"an evaluator is listed twice: {names}")
        unknown = set(sampling or {}) - set(names)
        if unknown:
            raise EvaluatorError(
                f"[evaluators] sampling names {sorted(unknown)}, which are not enabled ({names})"
            )
        self.evaluators = list(evaluators)
        self.batch_size = batch_size
        self.sampling = dict(sampling or {})
        self.kinds = list(kinds) if kinds else None
        #: Share of spans whose prompt and response vectors are kept for drift.
        self.vector_share = vector_share
        #: This runner's name in the claims it takes on a PostgreSQL store (see run()).
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def wanted(self) -> list[tuple[str, str]]:
        """The (name, version) pairs every span should end up with."""
        return [(e.name, str(e.version)) for e in self.evaluators]

    def score(
        self, items: Sequence[EvalItem], owed: Mapping[str, Sequence[int]] | None = None
    ) -> dict[str, list[tuple[int, Score]]]:
        """Score ``items``; ``owed[name]`` limits an evaluator to those item positions.

        Returns, per evaluator, (position, score) pairs. Never raises for an item: an
        evaluator that fails on a batch is retried item by item, and the items it still
        fails on get a score of None labelled ``evaluator_error``.
        """
        results: dict[str, list[tuple[int, Score]]] = {}
        for evaluator in self.evaluators:
            positions = list(range(len(items))) if owed is None else list(owed[evaluator.name])
            out: list[tuple[int, Score]] = []
            ready: list[int] = []
            for i in positions:
                lacking = missing_fields(evaluator, items[i])
                if lacking:
                    reason = f"the span has no {' and no '.join(lacking)} to evaluate"
                    out.append(
                        (i, Score(items[i].id, None, "none", None, "skipped", {"reason": reason}))
                    )
                else:
                    ready.append(i)
            out.extend(
                zip(ready, self._evaluate(evaluator, [items[i] for i in ready]), strict=True)
            )
            results[evaluator.name] = sorted(out, key=lambda pair: pair[0])
        return results

    def _evaluate(self, evaluator: Evaluator, batch: list[EvalItem]) -> list[Score]:
        if not batch:
            return []
        try:
            scores = evaluator.evaluate(batch)
            if len(scores) != len(batch):
                raise EvaluatorError(
                    f"{evaluator.name} returned {len(scores)} scores for {len(batch)} items"
                )
            return scores
        except Exception as exc:
            log.warning(
                "evaluator %s failed on a batch (%s); retrying item by item", evaluator.name, exc
            )
        scores = []
        for item in batch:
            try:
                (score,) = evaluator.evaluate([item])
            except Exception as exc:
                log.error("evaluator %s failed on %s: %s", evaluator.name, item.id, exc)
                score = Score(
                    item.id,
                    None,
                    "none",
                    None,
                    "evaluator_error",
                    {"error": f"{type(exc).__name__}: {exc}"},
                )
            scores.append(score)
        return scores

    def _keep_vectors(self, store: Any, items: Sequence[EvalItem]) -> None:
        """Store for drift the vectors the evaluators made of this batch's sampled spans."""
        if self.vector_share <= 0:
            return
        from llmvigil.evaluators.drift.sample import keeps_vector, vector_rows
        from llmvigil.evaluators.vectors import shared_vectors

        kept = [item for item in items if keeps_vector(item.id, self.vector_share)]
        if not kept:
            return
        vectors = shared_vectors()
        rows = vector_rows(
            [item.id for item in kept],
            vectors.cached([item.input for item in kept]),
            vectors.cached([item.output for item in kept]),
        )
        try:
            store.write_vectors(rows)
        except Exception as exc:  # drift embeds what is missing; the scores are what matter
            log.warning("could not keep %d span vectors for drift: %s", len(rows), exc)

    def run(
        self,
        store: Any,
        max_spans: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> RunReport:
        """Score every span of ``store`` that lacks a current score, a committed batch at a time."""
        report = RunReport()
        started = time.perf_counter()
        wanted = self.wanted
        versions = dict(wanted)
        while max_spans is None or report.spans < max_spans:
            limit = (
                self.batch_size
                if max_spans is None
                else min(self.batch_size, max_spans - report.spans)
            )
            # On PostgreSQL several workers may share the store: each claims its batch, so no
            # span is scored twice. DuckDB has one process, and one runner in it at a time.
            claiming = getattr(store, "backend", None) == "postgresql"
            if claiming:
                rows = store.claim_spans_missing_evaluations(
                    wanted, self.worker, limit=limit, kinds=self.kinds
                )
            else:
                rows = store.spans_missing_evaluations(wanted, limit=limit, kinds=self.kinds)
            if not rows:
                break
            items = [item_of(r) for r in rows]
            owed: dict[str, list[int]] = {}
            skipped: list[dict[str, Any]] = []
            for evaluator in self.evaluators:
                rate = self.sampling.get(evaluator.name, 1.0)
                owed[evaluator.name] = []
                for i, row in enumerate(rows):
                    if evaluator.name in row["scored"]:
                        continue
                    if sampled(row["span_id"], evaluator.name, rate):
                        owed[evaluator.name].append(i)
                    else:
                        skipped.append(
                            {
                                "span_id": row["span_id"],
                                "evaluator": evaluator.name,
                                "evaluator_version": versions[evaluator.name],
                                "score": None,
                                "label": "not_sampled",
                                "method": "sampling",
                                "details": {"reason": f"left out by sampling at rate {rate}"},
                            }
                        )
                        report.skipped[evaluator.name] += 1
            results = self.score(items, owed)
            copies = {row["span_id"]: span_copies(row) for row in rows}
            for record in skipped:
                record.update(copies[record["span_id"]])
            records = list(skipped)
            for name, pairs in results.items():
                for i, s in pairs:
                    records.append(
                        {
                            "span_id": items[
                                i
                            ].id,  # by position: an evaluator's ids are not trusted
                            "evaluator": name,
                            "evaluator_version": versions[name],
                            "score": s.score,
                            "label": s.label,
                            "passed": s.passed,
                            "method": s.method,
                            "details": s.details,
                        }
                        | copies[items[i].id]
                    )
                    if s.label in FAILURE_LABELS:
                        report.failed[name] += 1
                    elif s.score is None:
                        report.skipped[name] += 1
                    else:
                        report.scored[name] += 1
            store.write_evaluations(records)
            if claiming:
                store.release_claims(self.worker, [r["span_id"] for r in rows])
            self._keep_vectors(store, items)
            report.spans += len(rows)
            report.batches += 1
            if on_batch is not None:
                on_batch(len(rows))
        report.seconds = time.perf_counter() - started
        return report
