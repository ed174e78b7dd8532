"""The command line's tables read at 80 columns, every figure in its unit."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console

from llmvigil import tables
from llmvigil.storage import Store
from tests.storage.spans_factory import BASE, make_span


def rendered(table) -> list[str]:
    console = Console(width=80, record=True, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def _store(url: str) -> Store:
    store = Store(url)
    rows = []
    for i in range(600):  # an hour, one call every 6 s; slow and failing from minute 42 to 54
        incident = 420 <= i < 540
        rows.append(
            make_span(
                i * 6,
                latency_ms=(4_800.0 if incident else 700.0) + i,
                status="error" if incident and i % 7 == 0 else "ok",
                prompt_tokens=12_345,
                completion_tokens=321,
                bytes_in=1_500_000,
            )
        )
    store.append_spans(rows)
    return store


def test_the_health_table_fits_80_columns_with_nothing_cut(duckdb_url) -> None:
    with _store(duckdb_url) as store:
        rows = store.metrics("10m", since=BASE, until=BASE + timedelta(hours=1))
    lines = rendered(tables.health(rows, "Model calls per 10 minutes"))
    assert max(map(len, lines)) <= 80
    text = "\n".join(lines)
    assert "…" not in text  # rich marks a cut cell with an ellipsis
    for header in ("time", "calls", "failed", "latency", "p50", "p95", "prompt", "tokens"):
        assert header in text
    assert "2026-11-24 UTC" in text and "09:40" in text  # one day: the date once, times short
    assert "1,234,500" in text  # 100 calls of 12,345 prompt tokens, with separators
    assert "5.29 s" in text and "12 (12.0%)" in text  # the incident's latency and failures


def test_the_wide_form_keeps_every_column_in_its_unit(duckdb_url) -> None:
    with _store(duckdb_url) as store:
        rows = store.metrics("1h", since=BASE)
    console = Console(width=250, record=True, color_system=None)
    console.print(tables.health_wide(rows))
    text = console.export_text()
    for column in ("TimeGenerated", "MetricName", "Maximum", "UnitName", "P99"):
        assert column in text
    assert "900 MB" in text  # DataIn in bytes: 600 calls of 1.5 MB
    assert "3.0%" in text  # FailedCalls' Average is the error rate: 18 of 600


def test_the_incident_and_score_tables_fit_80_columns(duckdb_url) -> None:
    with _store(duckdb_url) as store:
        windows = {
            name: store.window_metrics(BASE + timedelta(minutes=a), BASE + timedelta(minutes=b))
            for name, (a, b) in {"before": (0, 42), "during": (42, 54), "after": (54, 60)}.items()
        }
    lines = rendered(tables.incident(windows, "The incident at a glance"))
    assert max(map(len, lines)) <= 80 and "…" not in "\n".join(lines)
    row = next(line for line in lines if "model calls" in line)
    assert row.split()[-3:] == ["420", "120", "60"]
    failed = next(line for line in lines if "failed" in line)
    assert failed.split()[-3:] == ["0.0%", "15.0%", "0.0%"]
    summary = {  # the longest evaluator name, in three windows
        window: [
            {"evaluator": "prompt_toxicity", "mean": mean, "pass_rate": rate, "unscored": 10},
            {"evaluator": "relevance", "mean": 0.99, "pass_rate": 1.0, "unscored": 1},
        ]
        for window, mean, rate in (("before", 0.01, 1.0), ("during", 0.31, 0.7), ("after", 0, 1))
    }
    thresholds = {"prompt_toxicity": (0.5, False), "relevance": (0.5, True)}
    lines = rendered(tables.scores(summary, thresholds, "Answer scores"))
    text = "\n".join(lines)
    assert max(map(len, lines)) <= 80 and "…" not in text
    assert "< 0.5" in text and "≥ 0.5" in text and "0.31    70%" in text and " 30" in text
    assert "unscored: spans the evaluator skipped" in " ".join(text.split())


def test_numbers_are_shown_in_their_unit() -> None:
    assert tables.milliseconds(756.2) == "756 ms"
    assert tables.milliseconds(2419.0) == "2.42 s"
    assert tables.size(1_536) == "1.54 kB"
    assert tables.count(10386.0) == "10,386" and tables.count(24.375) == "24.4"
    assert tables.share(4, 33) == "12.1%"
    assert datetime(2026, 1, 1).strftime(tables._time_format([datetime(2026, 1, 1)])) == "00:00"
