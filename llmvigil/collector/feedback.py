"""``llmvigil.feedback(...)``: a user's thumbs up or down on an answer, recorded from the app.

Feedback takes the collector's road: queued on the caller's thread (never
raising, never waiting), sent by the flush thread through the configured
sink (the store, ``llmvigil up``'s ``POST /v1/feedback``, or the spool,
whose owner loads it), and spooled when the sink fails. Each entry carries
its own id, so sending it twice stores it once.

The collector's own drop counts (:func:`.runtime.report_dropped`) travel the same road as
entries of kind ``dropped`` (``POST /v1/collector/dropped`` on the ``http``
sink): a count cannot be lost to the very outage that made the collector drop.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime
from typing import Any

from llmvigil.collector import runtime, tracer
from llmvigil.collector.runtime import DROPPED
from llmvigil.collector.spans import _context_values, _current

log = logging.getLogger("llmvigil.collector")


def current_ids() -> tuple[str, str] | None:
    """``(span_id, trace_id)`` of the span running now (the innermost ``@observe`` or
    ``span``), or None outside one: what an app hands its front end, to rate the answer later.

    Example::

        @llmvigil.observe(model="gpt-4o-mini")
        def answer(question):
            reply = generate(question)
            return {"text": reply, "ids": llmvigil.current_ids()}
    """
    frame = _current.get()
    if frame is None:
        return None
    given = (_context_values.get() or {}).get("trace_id")
    trace = given if isinstance(given, str) and given else tracer.span_id(frame[tracer.F_TRACE])
    return tracer.span_id(frame[tracer.F_N]), trace


def feedback(
    score: float | None = None,
    *,
    label: str | None = None,
    comment: str | None = None,
    span_id: str | None = None,
    trace_id: str | None = None,
    name: str = "rating",
    source: str = "app",
    author: str | None = None,
) -> str | None:
    """Record a verdict on a span or a whole trace (the running span when neither is given);
    return the feedback's id, or None when there was nothing to record. Never raises.

    Example::

        llmvigil.feedback(1.0, span_id=ids[0], comment="solved it", author="user-42")
        llmvigil.feedback(label="wrong", trace_id=request_id, name="thumbs")
    """
    try:
        if span_id is None and trace_id is None:
            ids = current_ids()
            if ids is None:
                log.warning("llmvigil: feedback names no span_id or trace_id and no span runs")
                return None
            span_id = ids[0]
        if score is not None:
            score = float(score)
            if not math.isfinite(score):
                log.warning("llmvigil: feedback score %r is not a finite number; dropped", score)
                return None
        if score is None and label is None and comment is None:
            log.warning("llmvigil: feedback needs a score, a label or a comment; dropped")
            return None
        entry = {
            "feedback_id": uuid.uuid4().hex,
            "span_id": None if span_id is None else str(span_id),
            "trace_id": None if trace_id is None else str(trace_id),
            "name": str(name),
            "score": score,
            "label": None if label is None else str(label),
            "comment": None if comment is None else str(comment),
            "source": str(source),
            "author": None if author is None else str(author),
        }
        runtime.queue_feedback(entry)
        return entry["feedback_id"]
    except Exception as exc:  # the collector never raises into the caller
        log.warning("llmvigil: feedback not recorded (%s)", exc)
        return None


def as_store_arguments(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as :meth:`~llmvigil.storage.store.Store.add_feedback` takes it."""
    keys = ("feedback_id", "span_id", "trace_id", "name", "score", "label", "comment", "source",
            "author")  # fmt: skip
    return {key: entry.get(key) for key in keys if key in entry}


def store_entry(store: Any, entry: dict[str, Any]) -> None:
    """Store one entry of the feedback road (feedback, or a drop report) in ``store``.

    Raises :class:`~llmvigil.errors.IngestError` when the entry itself is bad.
    """
    if entry.get("kind") == DROPPED:
        store.add_collector_drops(**drop_arguments(entry))
    else:
        store.add_feedback(**as_store_arguments(entry))


def drop_arguments(entry: dict[str, Any]) -> dict[str, Any]:
    """A drop report as :meth:`~llmvigil.storage.store.Store.add_collector_drops` takes it."""
    reported = entry.get("reported_at")
    return {
        "report_id": entry["report_id"],
        "dropped": entry["dropped"],
        "app": entry.get("app") or "default",
        "environment": entry.get("environment") or "production",
        "reported_at": datetime.fromisoformat(reported) if isinstance(reported, str) else None,
    }
