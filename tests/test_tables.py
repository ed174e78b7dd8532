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


def _drift_row(feature, method, statistic, threshold, drifted, counts, said, **more) -> dict:
    skipped = method == "none"
    key = "reason" if skipped else "summary"
    return {
        "feature": feature, "method": method, "statistic": statistic, "threshold": threshold,
        "drifted": drifted, "skipped": skipped, "reference_count": counts[0],
        "current_count": counts[1], "details": {key: said, **more},
    }  # fmt: skip


#: The demo's drift rows: its longest names and summaries, a skipped feature, an embedding
#: whose bar is a bootstrap (no threshold), and a store's six-figure span counts.
DEMO_DRIFT = [
    _drift_row("latency_ms", "ks", 3.68e-79, 0.01, True, (420, 120),
               "median 771.4 -> 2,444 (+217%), p95 1,486 -> 4,660"),
    _drift_row("ttft_ms", "none", None, None, False, (0, 0),
               "the reference window has 0 values of ttft_ms, fewer than [drift] min_count = 30"),
    _drift_row("cost_usd", "chisquare", 0.95582, 0.01, False, (104_112, 100_387),
               "median 6.63e-05 -> 6.735e-05 (+2%), p95 0.001303 -> 0.001262"),
    _drift_row("output_embedding", "model", 0.84574, None, True, (411, 106),
               "new responses: version, reinstall, known, problem (32%); colours, fabrics, "
               "collection, features (12%); computer, use, supported, phones (11%)"),
    _drift_row("score.prompt_toxicity", "ks", 0.00089658, 0.01, True, (420, 120),
               "median 0.05991 -> 0.05193 (-13%), p95 0.2781 -> 0.2936"),
]  # fmt: skip


def test_the_drift_table_and_what_changed_fit_80_columns_with_nothing_cut() -> None:
    title = "Drift: the incident against the 42 minutes before it (llmvigil drift --since 18m)"
    lines = rendered(tables.drift(DEMO_DRIFT, title)) + rendered(tables.drift_changes(DEMO_DRIFT))
    text = "\n".join(lines)
    assert max(map(len, lines)) <= 80 and "…" not in text
    row = next(line for line in lines if line.startswith("latency_ms"))
    assert row.split() == ["latency_ms", "ks", "3.68e-79", "0.01", "yes", "420", "→", "120"]
    assert "104,112 → 100,387" in text
    embedding = next(line for line in lines if line.startswith("output_embedding "))
    assert embedding.split()[1:4] == ["model", "0.846", "yes"]  # no threshold: a bootstrap
    assert "skipped" in next(line for line in lines if line.startswith("ttft_ms "))
    flat = " ".join(text.split())  # what changed wraps beside its feature, whole
    for row in DEMO_DRIFT:
        assert " ".join(row["details"].get("summary", row["details"].get("reason")).split()) in flat
    assert "statistic: a p-value test's p" in flat


def test_the_wide_drift_table_keeps_every_figure_in_one_table() -> None:
    console = Console(width=250, record=True, color_system=None)
    console.print(tables.drift_wide(DEMO_DRIFT, "Drift"))
    text = console.export_text()
    for column in ("method", "ref n", "cur n", "what changed"):
        assert column in text
    line = next(x for x in text.splitlines() if "cost_usd" in x)
    assert "104,112" in line and "100,387" in line and "median 6.63e-05" in line


def test_a_topic_s_examples_wrap_beside_their_span_ids() -> None:
    text = "The mobile app crashes every time I open it since the last update."
    examples = [{"span_id": "1c42a266fb3e1b6a0000000000000561", "text": text}]
    lines = rendered(tables.topic_examples(examples * 2))
    assert max(map(len, lines)) <= 80
    assert lines[0].startswith("1c42a266fb3e1b6a0000000000000561    The mobile app")
    assert lines[1].startswith(" " * 36)  # the text's second line, under its first
