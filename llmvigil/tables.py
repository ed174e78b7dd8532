"""The rich tables the command line prints: built here, printed by :mod:`llmvigil.cli`.

Each function turns results (metric rows, score summaries) into a :class:`rich.table.Table`
that reads at 80 columns; the cloud monitor's one-metric-a-row form is kept for ``--wide``.
Numbers are shown in their unit (``756 ms``, ``2.4 s``, ``12.1%``, ``10,386``, ``1.5 kB``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from llmvigil.storage.metrics import COLUMNS, MetricRow

#: What the score tables' columns mean, printed under them where they appear.
SCORE_NOTES = (
    "scored: spans given a score. passed: the share of them at or past the evaluator's pass "
    "threshold (pass at; toxicity passes below it). unscored: spans the evaluator skipped "
    "because a field it needs is missing (a failed call has no answer; factuality needs "
    "retrieved context or a reference) or [evaluators] sampling left them out."
)


def milliseconds(value: float | None) -> str:
    """``756.2`` -> ``756 ms``, ``2419.0`` -> ``2.42 s``; empty for no value."""
    if value is None:
        return ""
    if abs(value) < 1000:
        return f"{value:.0f} ms"
    if abs(value) < 60_000:
        return f"{value / 1000:.3g} s"
    return f"{value / 60_000:.1f} min"


def count(value: float | None) -> str:
    """A count with thousands separators; a fractional one (an average) with one decimal."""
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def size(value: float | None) -> str:
    """Bytes in B, kB, MB or GB (powers of 1000)."""
    if value is None:
        return ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def share(part: float, whole: float) -> str:
    """``part`` of ``whole`` as a percentage; empty when ``whole`` is 0."""
    return f"{part / whole:.1%}" if whole else ""


def in_unit(value: float | None, unit: str) -> str:
    """A metric value shown in the health table's ``unit``."""
    if unit == "Milliseconds":
        return milliseconds(value)
    if unit == "Bytes":
        return size(value)
    return count(value)


def _by_time(rows: Sequence[MetricRow]) -> dict[datetime, dict[str, MetricRow]]:
    buckets: dict[datetime, dict[str, MetricRow]] = {}
    for row in rows:
        buckets.setdefault(row.TimeGenerated, {})[row.MetricName] = row
    return buckets


def _time_format(times: Sequence[datetime]) -> str:
    # One day's buckets need only the clock time; the day goes in the title.
    if len({t.date() for t in times}) <= 1:
        return "%H:%M" if all(t.second == 0 for t in times) else "%H:%M:%S"
    return "%m-%d %H:%M"


def health(rows: Sequence[MetricRow], title: str | None = None) -> Table:
    """The health table as one line per time bucket: calls, failed calls, latency p50 and p95,
    prompt and generated tokens. Fits 80 columns; :func:`health_wide` has every figure."""
    buckets = _by_time(rows)
    times = sorted(buckets)
    form = _time_format(times)
    if times and form.startswith("%H"):
        title = f"{title or 'Health'}, {times[0]:%Y-%m-%d} UTC"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("time" if form.startswith("%H") else "time (UTC)", no_wrap=True)
    for name in ("calls", "failed", "latency\np50", "latency\np95", "prompt\ntokens",
                 "output\ntokens"):  # fmt: skip
        table.add_column(name, justify="right", no_wrap=True)
    for when in times:
        metric = buckets[when]
        calls = metric.get("TotalCalls")
        failed = metric.get("FailedCalls")
        latency = metric.get("Latency")
        total = calls.Total if calls else 0
        failed_text = ""
        if failed is not None:
            failed_text = count(failed.Total) + (
                f" ({share(failed.Total, total)})" if failed.Total else ""
            )
        table.add_row(
            when.strftime(form),
            count(total),
            failed_text,
            milliseconds(latency.P50 if latency else None),
            milliseconds(latency.P95 if latency else None),
            count(_total(metric, "ProcessedPromptTokens")),
            count(_total(metric, "GeneratedTokens")),
        )
    return table


def _total(metric: Mapping[str, MetricRow], name: str) -> float | None:
    row = metric.get(name)
    return None if row is None else row.Total


def health_wide(rows: Sequence[MetricRow], title: str | None = None) -> Table:
    """The cloud monitor's form: one line per bucket and metric, every column, in its unit."""
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(
            column, justify="left" if column in ("MetricName", "UnitName") else "right"
        )
    for r in rows:
        cells: list[str] = [r.TimeGenerated.strftime("%Y-%m-%dT%H:%M:%SZ"), r.MetricName]
        if r.MetricName == "FailedCalls":
            figures = [count(r.Total), count(r.Count), count(r.Maximum), count(r.Minimum)]
            figures.append(share(r.Total, r.Count))  # the Average of 0/1 is the error rate
        else:
            figures = [in_unit(r.Total, r.UnitName), count(r.Count)]
            figures += [in_unit(v, r.UnitName) for v in (r.Maximum, r.Minimum, r.Average)]
        cells += [*figures, r.TimeGrain, r.UnitName]
        cells += [in_unit(v, r.UnitName) for v in (r.P50, r.P95, r.P99)]
        table.add_row(*cells)
    return table


def incident(windows: Mapping[str, Sequence[MetricRow]], title: str) -> Table:
    """Before, during and after side by side: calls, error rate, latency p50, p95 and p99."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", no_wrap=True)
    for name in windows:
        table.add_column(name, justify="right", no_wrap=True)
    metrics = {name: {r.MetricName: r for r in rows} for name, rows in windows.items()}

    def line(label: str, cell: Any) -> None:
        table.add_row(label, *(cell(m) for m in metrics.values()))

    def calls(m: Mapping[str, MetricRow]) -> float:
        return m["TotalCalls"].Total if "TotalCalls" in m else 0

    line("model calls", lambda m: count(calls(m)))
    line("failed", lambda m: share(m["FailedCalls"].Total, calls(m)) if "FailedCalls" in m else "")
    for p in ("P50", "P95", "P99"):
        line(
            f"latency {p.lower()}",
            lambda m, p=p: milliseconds(getattr(m["Latency"], p)) if "Latency" in m else "",
        )
    return table


def scores(
    summaries: Mapping[str, Sequence[Mapping[str, Any]]],
    thresholds: Mapping[str, tuple[float, bool]],
    title: str,
) -> Table:
    """Each evaluator's mean score and pass rate per window (before, during, ...), with its pass
    threshold; ``thresholds`` maps an evaluator to (threshold, higher is better)."""
    table = Table(
        title=title, box=box.SIMPLE_HEAD, pad_edge=False, caption=Text(SCORE_NOTES, justify="left")
    )
    table.add_column("evaluator", no_wrap=True)
    table.add_column("pass at", justify="right", no_wrap=True)
    for name in summaries:
        table.add_column(f"{name}\nmean passed", justify="right", no_wrap=True)
    table.add_column("unscored", justify="right", no_wrap=True)
    by_window = {w: {r["evaluator"]: r for r in rows} for w, rows in summaries.items()}
    evaluators = sorted({name for rows in by_window.values() for name in rows})
    for evaluator in evaluators:
        threshold, higher = thresholds.get(evaluator, (None, True))
        cells = [evaluator, "" if threshold is None else f"{'≥' if higher else '<'} {threshold:g}"]
        unscored = 0
        for rows in by_window.values():
            row = rows.get(evaluator)
            if row is None:
                cells.append("")
                continue
            unscored += int(row["unscored"])
            mean = "" if row["mean"] is None else f"{float(row['mean']):.2f}"
            passed = "" if row["pass_rate"] is None else f"{float(row['pass_rate']):.0%}"
            cells.append(f"{mean} {passed:>6}" if mean else "")
        cells.append(count(unscored))
        table.add_row(*cells)
    return table


#: What the drift table's statistic is, printed under it.
DRIFT_NOTES = (
    "statistic: a p-value test's p (ks, chisquare, z: drifted below the threshold) or a "
    "distance (drifted past it); an embedding's is how well a classifier tells the two "
    "windows apart (ROC AUC; no threshold shown when its bar is a bootstrap against chance). "
    "spans: reference → current window."
)


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _verdict(row: Mapping[str, Any]) -> str:
    if row["skipped"]:
        return "skipped"
    return "[bold red]yes[/]" if row["drifted"] else "no"


def drift(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    """The drift table, a line per feature: its test, statistic, threshold, verdict and span
    counts. Fits 80 columns; what changed is :func:`drift_changes`, all in one table
    :func:`drift_wide`."""
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),  # the box's blank divider is the other space between columns
        caption=Text(DRIFT_NOTES, justify="left"),
    )
    # Names fold rather than lose their end when six-figure span counts take the room.
    table.add_column("feature", overflow="fold")
    table.add_column("test", overflow="fold")
    for name in ("statistic", "threshold", "drifted", "spans"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["feature"], r["method"], _figure(r["statistic"]), _figure(r["threshold"]),
            _verdict(r), f"{count(r['reference_count'])} → {count(r['current_count'])}",
        )  # fmt: skip
    return table


def _change(row: Mapping[str, Any]) -> str:
    details = row["details"] or {}
    return (details.get("reason") if row["skipped"] else details.get("summary")) or ""


def drift_changes(rows: Sequence[Mapping[str, Any]]) -> Table:
    """What changed in each feature (or why it was skipped), the text wrapping beside its name."""
    table = Table(title="What changed", box=None, show_header=False, pad_edge=False)
    table.add_column("feature", no_wrap=True, style="bold")
    table.add_column("what changed")
    for r in rows:
        if _change(r):
            table.add_row(r["feature"], Text(_change(r)))
    return table


def drift_wide(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    """Every figure of the drift table and what changed, in one table as wide as they need."""
    table = Table(title=title)
    for column in ("feature", "method", "statistic", "threshold", "drifted", "ref n", "cur n"):
        table.add_column(column, justify="left" if column in ("feature", "method") else "right")
    table.add_column("what changed")
    for r in rows:
        table.add_row(
            r["feature"], r["method"], _figure(r["statistic"]), _figure(r["threshold"]),
            _verdict(r), count(r["reference_count"]), count(r["current_count"]), Text(_change(r)),
        )  # fmt: skip
    return table


def topic_examples(examples: Sequence[Mapping[str, Any]]) -> Table:
    """A new topic's example spans: the span id, and its text wrapping beside it."""
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 0, 0, 4))
    table.add_column("span", no_wrap=True)
    table.add_column("text")
    for example in examples:
        table.add_row(example["span_id"], Text(example["text"]))
    return table
