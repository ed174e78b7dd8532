"""``llmvigil drift``, ``drift baseline`` and ``drift history`` as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from llmvigil.cli import main
from llmvigil.storage import Store
from tests.evaluators.drift_data import Window, fill

COLUMN_FEATURES = "latency_ms,error_rate,model,score.*"


@pytest.fixture
def store_url(tmp_path) -> str:
    """Three hours of spans ending now: slow answers in the last hour."""
    url = f"duckdb:///{tmp_path / 'drift.duckdb'}"
    now = datetime.now(UTC).replace(tzinfo=None)
    hour = timedelta(hours=1)
    with Store(url) as store:
        fill(store, Window(), Window(), count=150, seed=1,
             reference_bounds=(now - 3 * hour, now - 2 * hour),
             current_bounds=(now - 2 * hour, now - hour))  # fmt: skip
        fill(store, Window(), Window(latency=(2500.0, 300.0)), count=150, seed=2,
             reference_bounds=(now - 2 * hour + timedelta(minutes=1), now - hour),
             current_bounds=(now - hour, now))  # fmt: skip
    (tmp_path / "llmvigil.toml").write_text(
        f"[drift]\nfeatures = [{', '.join(json.dumps(f) for f in COLUMN_FEATURES.split(','))}]\n"
    )
    return url


def drift_json(capsys, *args: str) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["drift", *args, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    return {row["feature"]: row for row in rows}


def test_json_holds_every_documented_key_and_the_verdicts(store_url, capsys) -> None:
    rows = drift_json(capsys, "--store", store_url)
    keys = {"feature", "method", "statistic", "p_value", "threshold", "drifted",
            "reference_count", "current_count", "skipped", "details"}  # fmt: skip
    assert set(rows) == {"latency_ms", "error_rate", "model", "score.relevance"}
    for row in rows.values():
        assert keys <= set(row)
    assert rows["latency_ms"]["drifted"] and not rows["model"]["drifted"]
    assert rows["latency_ms"]["reference_source"] == "previous window"


def test_the_table_names_what_changed(store_url, capsys) -> None:
    assert main(["drift", "--store", store_url]) == 0
    out = capsys.readouterr().out
    assert "latency_ms" in out and "median" in out and "previous window" in out
    assert "What changed" in out and "ref n" not in out
    assert main(["drift", "--store", store_url, "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "ref n" in wide and "what changed" in wide and "What changed" not in wide


def test_explicit_windows_and_a_pinned_baseline(store_url, capsys) -> None:
    # The hour two to three hours ago was as fast as the hour after it.
    rows = drift_json(capsys, "--store", store_url, "--since", "2h", "--until", "1h")
    assert not rows["latency_ms"]["drifted"]
    rows = drift_json(capsys, "--store", store_url, "--reference-since", "3h")
    assert rows["latency_ms"]["reference_source"] == "--reference-since/--reference-until"
    assert rows["latency_ms"]["drifted"]

    assert main(["drift", "baseline", "--since", "3h", "--until", "2h", "--store", store_url]) == 0
    rows = drift_json(capsys, "--store", store_url)
    assert rows["latency_ms"]["reference_source"] == "pinned baseline"
    start = datetime.fromisoformat(rows["latency_ms"]["reference_start"])
    assert abs(start - (datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=3))) < timedelta(
        minutes=1
    )
    # A baseline belongs to its filter: another app's runs keep the window before.
    rows = drift_json(capsys, "--store", store_url, "--app", "support")
    assert rows["latency_ms"]["reference_source"] == "previous window"


def test_history_lists_stored_results_by_feature(store_url, capsys) -> None:
    drift_json(capsys, "--store", store_url)
    drift_json(capsys, "--store", store_url, "--since", "2h", "--until", "1h")
    capsys.readouterr()
    assert main(["drift", "history", "--feature", "latency_ms", "--format", "json",
                 "--store", store_url]) == 0  # fmt: skip
    history = json.loads(capsys.readouterr().out)
    assert [r["feature"] for r in history] == ["latency_ms", "latency_ms"]
    assert [r["drifted"] for r in history] == [False, True]  # newest first
    assert main(["drift", "history", "--store", store_url]) == 0
    assert "score.relevance" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not understood"),
        (["--since", "1h", "--until", "2h"], "is not after the start"),
        (["--reference-since", "1h", "--reference-until", "3h"], "is not after the start"),
    ],
)
def test_bad_windows_are_refused_with_a_clear_message(store_url, capsys, args, message) -> None:
    assert main(["drift", *args, "--store", store_url]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_store_is_refused(tmp_path, capsys) -> None:
    assert main(["drift", "--store", f"duckdb:///{tmp_path / 'nothing.duckdb'}"]) == 2
    assert "nothing.duckdb" in capsys.readouterr().err


def test_bad_drift_settings_name_the_key(tmp_path, capsys) -> None:
    cases = [
        ('features = ["latency"]', "'latency' is not a drift feature"),
        ('methods = { latency_ms = "fast" }', "is not one of Evidently's tests"),
        ('methods = { input_embedding = "ks" }', "an embedding takes one of"),
        ('reference_since = "2026-11-01"', "reference_since and reference_until go together"),
        ('window = "an hour"', "is not understood"),
    ]
    for line, message in cases:
        (tmp_path / "llmvigil.toml").write_text(f"[drift]\n{line}\n")
        assert main(["drift"]) == 2, line
        err = capsys.readouterr().err
        assert message in err and "[drift]" in err, (line, err)
