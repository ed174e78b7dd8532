"""Score a JSONL dataset without touching the store, and measure evaluators against its labels.

A line holds ``id``, ``input``, ``output``, ``context`` (a list of passages),
``reference`` and optionally ``labels`` (evaluator name -> 0 or 1; 1 is good,
except for toxicity where 1 is toxic: in both cases 1 is what a high score
predicts). Teams use it to test a new prompt or model before it ships and to
calibrate pass thresholds. Other keys are read by nothing: :func:`read_dataset`
counts them so the command can name them (a file written with ``question`` and
``answer`` would otherwise score nothing and say nothing).

A line that cannot be read as such an object (not UTF-8, not JSON, nested too
deep, a lone surrogate in a text, a field of the wrong type) is skipped and
reported with its number; the other lines are scored. Bytes are never replaced:
a score of altered text would be reported as the line's.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmvigil.errors import EvaluatorError
from llmvigil.evaluators.base import EvalItem, Evaluator, Score
from llmvigil.evaluators.runner import Runner, missing_fields


@dataclass(frozen=True)
class DatasetLine:
    """One valid line of a dataset."""

    number: int
    item: EvalItem
    labels: Mapping[str, int] = field(default_factory=dict)
    #: Keys of the line that no part of llmvigil reads, in the line's order.
    unknown_keys: tuple[str, ...] = ()


#: The keys a dataset line may hold; the help text and README show the same list.
KEYS = ("id", "input", "output", "context", "reference", "labels")

#: What ``llmvigil evaluate --help`` and the README show of the format.
LINE_FORMAT = """\
One JSON object a line: id (string or number), input (the prompt), output (the
answer to score), context (a list of retrieved passages, or one string),
reference (an expected answer) and labels (evaluator name -> 0 or 1, where 1 is
good, except for toxicity, where 1 is toxic). Only id is required; an
evaluator skips a line that lacks a field it needs. For example:

  {"id": "1", "input": "When do refunds arrive?", "output": "In 5 to 7 days."}
  {"id": "2", "input": "Do you ship to Canada?", "output": "Yes.", "context": ["We ship to CA."]}
  {"id": "3", "input": "Hi", "output": "Go away, idiot.", "labels": {"toxicity": 1}}"""


@dataclass(frozen=True)
class Problem:
    """A line that was skipped, and why."""

    number: int
    message: str


def _text(value: Any, key: str) -> str | None:
    if value is None:
        return value
    if isinstance(value, str):
        return _unicode(value, key)
    raise ValueError(f"{key!r} must be a string or null, not {type(value).__name__}")


def _unicode(value: str, key: str) -> str:
    # JSON can spell a lone surrogate ("\ud800"), which is no text: it cannot be written
    # back as UTF-8, and an evaluator would score something other than what is there.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{key!r} holds a lone surrogate (\\u{ord(value[exc.start]):04x}) at character "
            f"{exc.start + 1}, which is not text"
        ) from None
    return value


def parse_line(number: int, text: str) -> DatasetLine:
    """One dataset line; raises ValueError naming the field that is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON here: nested deeper than the JSON reader goes") from None
    except ValueError as exc:  # an integer past Python's digit limit, for one
        raise ValueError(f"not valid JSON here: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("a line must be a JSON object")
    identifier = data.get("id")
    if isinstance(identifier, bool) or not isinstance(identifier, str | int):
        raise ValueError("'id' is missing or not a string")
    context = data.get("context") or []
    if isinstance(context, str):
        context = [context]
    if not isinstance(context, list) or not all(isinstance(p, str) for p in context):
        raise ValueError("'context' must be a list of strings")
    context = [_unicode(passage, "context") for passage in context]
    labels = data.get("labels") or {}
    if not isinstance(labels, dict) or not all(v in (0, 1) for v in labels.values()):
        raise ValueError("'labels' must map evaluator names to 0 or 1")
    item = EvalItem(
        _unicode(str(identifier), "id"),
        _text(data.get("input"), "input"),
        _text(data.get("output"), "output"),
        tuple(context),
        _text(data.get("reference"), "reference"),
    )
    unknown = tuple(key for key in data if key not in KEYS)
    return DatasetLine(number, item, labels, unknown)


def unknown_keys(lines: Sequence[DatasetLine]) -> dict[str, int]:
    """How many lines hold each key that no part of llmvigil reads, in first-seen order."""
    counts: dict[str, int] = {}
    for line in lines:
        for key in line.unknown_keys:
            counts[key] = counts.get(key, 0) + 1
    return counts


def missing_by_evaluator(
    evaluators: Sequence[Evaluator], lines: Sequence[DatasetLine]
) -> dict[str, dict[str, int]]:
    """Per evaluator, how many lines lack each field it needs (those it cannot score)."""
    report: dict[str, dict[str, int]] = {}
    for evaluator in evaluators:
        counts: dict[str, int] = {}
        for line in lines:
            for name in missing_fields(evaluator, line.item):
                counts[name] = counts.get(name, 0) + 1
        report[evaluator.name] = counts
    return report


def nothing_scored(scores: Mapping[str, Sequence[Score]]) -> bool:
    """True when no evaluator gave any line a score (every score null, or no line at all)."""
    return not any(score.score is not None for column in scores.values() for score in column)


def read_dataset(path: str | os.PathLike[str]) -> tuple[list[DatasetLine], list[Problem]]:
    """The valid lines of ``path`` and the problems of the others (by line number).

    A line that is not UTF-8 is a problem, not read with its bytes replaced: scores of
    altered text would be reported as the line's. Raises :class:`EvaluatorError` when the
    file cannot be read at all (missing, a folder, no permission).
    """
    path = Path(path)
    lines: list[DatasetLine] = []
    problems: list[Problem] = []
    if path.is_dir():
        raise EvaluatorError(
            f"dataset {path} is a folder; --dataset wants a JSONL file, one JSON object a line"
        )
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problems.append(
                        Problem(
                            number,
                            f"not UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} "
                            "of the line; save the file as UTF-8",
                        )
                    )
                    continue
                if not text.strip():
                    continue
                try:
                    lines.append(parse_line(number, text))
                except ValueError as exc:
                    problems.append(Problem(number, str(exc)))
    except FileNotFoundError:
        raise EvaluatorError(f"dataset {path} does not exist; check the --dataset path") from None
    except OSError as exc:
        raise EvaluatorError(f"cannot read the dataset {path}: {exc.strerror or exc}") from None
    return lines, problems


def score_lines(
    runner: Runner,
    lines: Sequence[DatasetLine],
    on_batch: Callable[[int], object] | None = None,
) -> dict[str, list[Score]]:
    """Every evaluator's score of every line, in line order, a batch at a time."""
    out: dict[str, list[Score]] = {e.name: [] for e in runner.evaluators}
    for start in range(0, len(lines), runner.batch_size):
        batch = [line.item for line in lines[start : start + runner.batch_size]]
        for name, pairs in runner.score(batch).items():
            out[name].extend(score for _, score in pairs)
        if on_batch is not None:
            on_batch(len(batch))
    return out


def output_records(
    lines: Sequence[DatasetLine], scores: Mapping[str, list[Score]]
) -> Iterator[dict]:
    """One JSON-ready record per line: its id, a score per evaluator, and the explanations."""
    for i, line in enumerate(lines):
        record: dict[str, Any] = {"id": line.item.id}
        details: dict[str, Any] = {}
        for name, column in scores.items():
            record[name] = column[i].score
            details[name] = {
                "method": column[i].method,
                "passed": column[i].passed,
                **column[i].details,
            }
        record["details"] = details
        yield record


@dataclass(frozen=True)
class Quality:
    """How well one evaluator's scores predict the lines' labels."""

    evaluator: str
    labelled: int
    roc_auc: float | None
    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None


def measure(
    evaluators: Sequence[Evaluator], lines: Sequence[DatasetLine], scores: Mapping[str, list[Score]]
) -> list[Quality]:
    """ROC AUC, and precision, recall and F1 at the pass threshold, per labelled evaluator.

    The positive class is label 1, predicted by ``score >= threshold``. An
    evaluator scored by another evaluator's labels (``prompt_toxicity``) is not
    measured; lines it could not score are left out of its figures.
    """
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    report = []
    for evaluator in evaluators:
        pairs = [
            (line.labels[evaluator.name], score.score)
            for line, score in zip(lines, scores[evaluator.name], strict=True)
            if evaluator.name in line.labels and score.score is not None
        ]
        if not pairs:
            continue
        labels = [label for label, _ in pairs]
        values = [value for _, value in pairs]
        auc = roc_auc_score(labels, values) if len(set(labels)) == 2 else None
        predicted = [int(v >= evaluator.threshold) for v in values]
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, average="binary", zero_division=0
        )
        report.append(
            Quality(
                evaluator.name,
                len(pairs),
                None if auc is None else float(auc),
                evaluator.threshold,
                float(precision),
                float(recall),
                float(f1),
            )
        )
    return report


def check_output(path: str | os.PathLike[str], dataset: str | os.PathLike[str]) -> None:
    """Raise :class:`EvaluatorError` unless :func:`write_records` can write ``path``: its folder
    exists and is writable, it is no folder, and it is not the ``dataset`` being read.

    Called before scoring, so a typo in ``--output`` is found in a second, not after an hour.
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise EvaluatorError(
            f"--output {path} is a folder; name the JSONL file to write, for example "
            f"{path / 'scores.jsonl'}"
        )
    if not folder.exists():
        raise EvaluatorError(
            f"--output {path}: the folder {folder} does not exist; create it or write elsewhere"
        )
    if not folder.is_dir():
        raise EvaluatorError(f"--output {path}: {folder} is not a folder but a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EvaluatorError(f"--output {path}: the folder {folder} is not writable by you")
    if path.exists() and Path(dataset).exists() and path.samefile(dataset):
        raise EvaluatorError(
            f"--output {path} is the dataset itself; writing the scores there would replace it"
        )


def write_records(path: str | os.PathLike[str], records: Iterator[dict]) -> int:
    """Write records as JSONL (to a temporary name, then renamed); return how many.

    Raises :class:`EvaluatorError` if the file cannot be written; no partial file is left.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        os.replace(temporary, path)
    except (OSError, UnicodeError) as exc:
        temporary.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) else exc
        raise EvaluatorError(f"cannot write the scores to {path}: {reason}") from None
    return count
