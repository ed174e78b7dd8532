"""Spans as records for review or fine-tuning: JSONL, Parquet, CSV or OpenAI chat format.

Each record holds the span's ``span_id``, ``trace_id``, ``start_time``,
``app``, ``model``, ``input``, ``output``, ``context``, ``reference``, its
``scores`` (evaluator to score, passed and label) and ``feedback``, and a
``messages`` field in the OpenAI chat fine-tuning format (the system and
user turns the span recorded, or its prompt, then the response). The
retraining hooks get such a file of the spans that breached; ``llmvigil
export`` writes one by hand.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from llmvigil.storage import schema

FORMATS = ("jsonl", "parquet", "csv", "openai")
_BATCH = 2_000


def _messages(row: Any) -> list[dict[str, str]]:
    recorded = (row.metadata or {}).get("messages") if isinstance(row.metadata, dict) else None
    messages: list[dict[str, str]] = []
    if isinstance(recorded, list):
        for message in recorded:
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                messages.append(
                    {"role": str(message.get("role", "user")), "content": message["content"]}
                )
    if not messages and row.input_text:
        messages.append({"role": "user", "content": row.input_text})
    if row.output_text:
        messages.append({"role": "assistant", "content": row.output_text})
    return messages


def records(store, query: sa.Select[Any]) -> Iterator[dict[str, Any]]:
    """The export records of the spans ``query`` selects (it must select ``span_id``)."""
    chosen = query.subquery()
    s = schema.spans
    rows_query = sa.select(s).join(chosen, chosen.c.span_id == s.c.span_id)
    with store.engine.connect() as conn:
        rows = conn.execute(rows_query).all()
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        ids = [r.span_id for r in batch]
        scores, feedback = _scores_and_feedback(store, ids)
        for row in batch:
            yield {
                "span_id": row.span_id,
                "trace_id": row.trace_id,
                "start_time": row.start_time.isoformat(),
                "app": row.app,
                "model": row.model,
                "status": row.status,
                "input": row.input_text,
                "output": row.output_text,
                "context": row.context or [],
                "reference": row.reference,
                "scores": scores.get(row.span_id, {}),
                "feedback": feedback.get(row.span_id, []),
                "messages": _messages(row),
            }


def _scores_and_feedback(store, ids: Sequence[str]) -> tuple[dict, dict]:
    e, f = schema.evaluations.c, schema.feedback.c
    scores: dict[str, dict[str, Any]] = {}
    feedback: dict[str, list[dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(
            sa.select(e.span_id, e.evaluator, e.evaluator_version, e.score, e.passed, e.label)
            .where(e.span_id.in_(ids))
            .order_by(e.evaluated_at)
        ):
            scores.setdefault(row.span_id, {})[row.evaluator] = {
                "score": row.score, "passed": row.passed, "label": row.label,
                "version": row.evaluator_version,
            }  # fmt: skip
        for row in conn.execute(
            sa.select(f.span_id, f.name, f.score, f.label, f.comment).where(f.span_id.in_(ids))
        ):
            feedback.setdefault(row.span_id, []).append(
                {"name": row.name, "score": row.score, "label": row.label, "comment": row.comment}
            )
    return scores, feedback


def write_records(rows: Iterator[dict[str, Any]], path: str | os.PathLike[str], form: str) -> int:
    """Write ``rows`` to ``path`` in ``form`` (one of :data:`FORMATS`) whole or not at all;
    return how many were written."""
    if form not in FORMATS:
        raise ValueError(f"format {form!r} is not one of {', '.join(FORMATS)}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    count = 0
    try:
        if form == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            listed = [
                {**r, "scores": json.dumps(r["scores"]), "feedback": json.dumps(r["feedback"]),
                 "messages": json.dumps(r["messages"]), "context": json.dumps(r["context"])}
                for r in rows
            ]  # fmt: skip
            count = len(listed)
            pq.write_table(pa.Table.from_pylist(listed), temporary)
        elif form == "csv":
            with open(temporary, "w", newline="", encoding="utf-8") as out:
                writer: csv.DictWriter | None = None
                for r in rows:
                    flat = {
                        k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()
                    }
                    if writer is None:
                        writer = csv.DictWriter(out, fieldnames=list(flat))
                        writer.writeheader()
                    writer.writerow(flat)
                    count += 1
        else:
            with open(temporary, "w", encoding="utf-8") as out:
                for r in rows:
                    roles = {m["role"] for m in r["messages"]}
                    if form == "openai" and not {"user", "assistant"} <= roles:
                        continue  # a fine-tuning example needs a question and an answer
                    line = {"messages": r["messages"]} if form == "openai" else r
                    out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                    count += 1
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count
