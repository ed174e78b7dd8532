"""The command line refuses what it cannot do well with one clear line, never a traceback and
never a silent wrong result (an empty store, nothing scored, a value quietly ignored)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pytest

from llmvigil.cli import main
from llmvigil.collector.spool import write_segment
from llmvigil.collector.tracer import KINDS
from llmvigil.storage import Store
from tests.storage.spans_factory import make_span
from tests.test_cli import run


def refused(result: subprocess.CompletedProcess) -> str:
    """The one error line of a refused command (exit status 2, no traceback)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") or "error: argument" in result.stderr
    return result.stderr


def spool_segment(folder: Path, count: int = 10) -> None:
    rows = [make_span(i) for i in range(count)]
    for row in rows:
        for key in ("context", "tags", "metadata"):
            row[key] = json.dumps(row[key])
    write_segment(folder, pa.Table.from_pylist(rows))


def stored(tmp_path: Path, count: int = 6) -> str:
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    with Store(url) as store:
        store.append_spans([make_span(i) for i in range(count)])
    return url


# -- point 6: store URLs ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["duckdb://spans.duckdb", "duckdb:///:memory:"])
def test_ingest_refuses_a_store_that_would_not_keep_the_segments(tmp_path, url) -> None:
    spool = tmp_path / ".llmvigil" / "spool"
    spool_segment(spool)
    message = refused(run("ingest", "--store", url, cwd=tmp_path))
    assert "duckdb:///spans.duckdb" in message or "memory" in message
    assert len(list(spool.glob("*.parquet"))) == 1  # nothing deleted
    assert not (tmp_path / "spans.duckdb").exists()


def test_a_two_slash_url_in_the_config_is_refused_by_every_command(tmp_path) -> None:
    (tmp_path / "llmvigil.toml").write_text('[store]\nurl = "duckdb://file.duckdb"\n')
    message = refused(run("ingest", cwd=tmp_path))
    assert "duckdb:///file.duckdb" in message and "[store] url" in message


@pytest.mark.parametrize("command", [["metrics"], ["evaluate", "--evaluators", "brevity"]])
def test_read_commands_do_not_create_a_missing_store(tmp_path, command) -> None:
    message = refused(run(*command, "--store", "duckdb:///typo.duckdb", cwd=tmp_path))
    assert str(tmp_path / "typo.duckdb") in message
    assert "llmvigil ingest" in message and "llmvigil demo" in message
    assert "no spans" not in message
    assert not (tmp_path / "typo.duckdb").exists()


def test_read_commands_refuse_the_default_store_when_there_is_none(tmp_path, capsys) -> None:
    assert main(["metrics"]) == 2
    assert "llmvigil.duckdb" in capsys.readouterr().err
    assert not (tmp_path / "llmvigil.duckdb").exists()


def test_evaluate_watch_refuses_an_in_memory_store(tmp_path) -> None:
    spool_segment(tmp_path / ".llmvigil" / "spool")
    args = ["evaluate", "--watch", "--store", "duckdb:///:memory:", "--evaluators", "brevity"]
    assert "memory" in refused(run(*args, cwd=tmp_path, timeout=60))
    assert len(list((tmp_path / ".llmvigil" / "spool").glob("*.parquet"))) == 1


def test_ingest_with_an_explicit_missing_spool_folder_is_refused(tmp_path, capsys) -> None:
    assert main(["ingest", "--spool", "no-such-spool"]) == 2
    assert "no-such-spool" in capsys.readouterr().err
    assert not (tmp_path / "llmvigil.duckdb").exists()


# -- point 10: metrics options ------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--since", "99999999d", "--since"),
        ("--since", "0001-01-01T00:00+01:00", "years 1 to 9999"),
        ("--since", "", "empty"),
        ("--since", " ", "empty"),
        ("--until", "9999-12-31T23:59-01:00", "--until"),
        pytest.param("--since", "9" * 5000 + "d", "--since", id="--since-5000-digits"),
    ],
)
def test_metrics_times_out_of_range_or_empty_are_clear_errors(tmp_path, option, value, expected):
    url = stored(tmp_path)
    message = refused(run("metrics", "--store", url, option, value, cwd=tmp_path))
    assert expected in message and "OverflowError" not in message


def test_metrics_refuses_an_empty_window_and_an_unknown_grain_before_opening(
    tmp_path, capsys
) -> None:
    url = stored(tmp_path)
    args = ["metrics", "--store", url]
    assert main([*args, "--since", "2026-11-24T10:00", "--until", "2026-11-24T09:00"]) == 2
    assert "--until" in capsys.readouterr().err
    assert main([*args, "--grain", "0m"]) == 2
    assert "--grain" in capsys.readouterr().err
    assert main([*args, "--grain", "99999999d"]) == 2
    assert "--grain" in capsys.readouterr().err
    assert main(["metrics", "--store", "duckdb:///absent.duckdb", "--grain", "x"]) == 2
    assert "--grain" in capsys.readouterr().err  # option errors come before the store's


def test_metrics_since_all_counts_every_stored_span(tmp_path, capsys) -> None:
    url = stored(tmp_path)
    assert main(["metrics", "--store", url, "--since", "all", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert next(r for r in rows if r["MetricName"] == "TotalCalls")["Total"] == 6


def test_export_since_all_writes_every_stored_span(tmp_path, capsys) -> None:
    url = stored(tmp_path)  # spans of 2026-11-24, older than export's default day
    assert main(["export", "--store", url, "--output", "day.jsonl"]) == 0
    assert (tmp_path / "day.jsonl").read_text() == ""
    assert main(["export", "--store", url, "--since", "ALL", "--output", "all.jsonl"]) == 0
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 6
    until = ["--since", "all", "--until", "2026-11-24T09:00:03", "--output", "early.jsonl"]
    assert main(["export", "--store", url, *until]) == 0
    assert len((tmp_path / "early.jsonl").read_text().splitlines()) == 3


def test_since_all_is_accepted_where_a_window_may_be_unbounded(tmp_path, capsys) -> None:
    url = stored(tmp_path)
    assert main(["drift", "history", "--store", url, "--since", "All"]) == 0
    capsys.readouterr()
    assert main(["export", "--store", url, "--since", "al", "--output", "x.jsonl"]) == 2
    assert "`all` for no lower bound" in capsys.readouterr().err
    # Drift's windows each need a start: `all` is refused by name, not misread as the default.
    for option in ("--since", "--reference-since"):
        assert main(["drift", "--store", url, option, "all"]) == 2
        err = capsys.readouterr().err
        assert f"{option} all: drift compares two windows" in err
    assert main(["drift", "baseline", "--store", url, "--since", "all"]) == 2
    assert "--since all has no start" in capsys.readouterr().err


def test_metrics_kind_must_be_a_known_kind(tmp_path, capsys) -> None:
    url = stored(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["metrics", "--store", url, "--since", "all", "--kind", "lmm"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--kind" in err and all(kind in err for kind in (*KINDS, "all"))
    assert main(["metrics", "--store", url, "--since", "all", "--kind", "all"]) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["metrics", "--app", ""],
        ["metrics", "--model", " "],
        ["metrics", "--store", ""],
        ["ingest", "--spool", ""],
        ["--config", "", "metrics"],
        ["init", "--path", ""],
        ["evaluate", "--batch-size", "-1"],
        ["evaluate", "--batch-size", "0"],
        ["evaluate", "--batch-size", "10000000000"],
        ["evaluate", "--interval", "nan"],
        ["evaluate", "--interval", "0"],
        ["evaluate", "--interval", "inf"],
        ["demo", "--requests", "0"],
        ["demo", "--requests", "-3"],
        ["demo", "--spans", "100"],
    ],
)
def test_empty_or_out_of_range_option_values_are_refused_by_the_parser(args, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "error: argument" in capsys.readouterr().err


# -- point 10: evaluate --dataset ---------------------------------------------------------


def _dataset(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    lines = [{"id": str(i), "input": "What is two and two?", "output": "Four."} for i in range(3)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_deeply_nested_line_is_skipped_and_the_rest_is_scored(tmp_path) -> None:
    path = _dataset(tmp_path)
    with path.open("ab") as handle:
        handle.write(b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
        handle.write('{"id": "latin", "output": "spät"}\n'.encode("latin-1"))
    result = run("evaluate", "--dataset", str(path), "--evaluators", "brevity", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{path}:4: skipped:" in result.stderr and "nested" in result.stderr
    assert f"{path}:5: skipped:" in result.stderr and "UTF-8" in result.stderr
    assert "scored 3 lines; 2 malformed lines skipped" in result.stdout


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: ["--dataset", str(p / "absent.jsonl")], "does not exist"),
        (lambda p: ["--dataset", str(p)], "is a folder"),
        (lambda p: ["--dataset", str(_dataset(p)), "--output", "gone/s.jsonl"], "does not exist"),
        (lambda p: ["--dataset", str(_dataset(p)), "--output", str(p)], "is a folder"),
        (lambda p: ["--dataset", str(_dataset(p)), "--output", str(_dataset(p))], "dataset"),
        (lambda p: ["--dataset", str(_dataset(p)), "--evaluators", ","], "--evaluators"),
        (lambda p: ["--dataset", str(_dataset(p)), "--evaluators", "brevty"], "brevity"),
        (lambda p: ["--dataset", str(_dataset(p)), "--watch"], "--watch"),
        (lambda p: ["--dataset", str(_dataset(p)), "--retry-errors"], "--retry-errors"),
        (lambda p: ["--dataset", str(_dataset(p)), "--store", "duckdb:///x.duckdb"], "--store"),
        (lambda p: ["--output", "s.jsonl"], "--dataset"),
        (lambda p: ["--interval", "5"], "--watch"),
        (lambda p: ["--watch", "--retry-errors"], "--retry-errors"),
    ],
)
def test_evaluate_refuses_bad_paths_and_options_before_any_scoring(
    tmp_path, capsys, make, expected
) -> None:
    args = make(tmp_path)
    if "--evaluators" not in args:
        args += ["--evaluators", "brevity"]
    started = time.monotonic()
    assert main(["evaluate", *args]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and "scored" not in captured.out
    assert time.monotonic() - started < 5  # no model was loaded, nothing was scored
    assert not (tmp_path / "x.duckdb").exists()


def test_a_dataset_with_no_readable_line_is_an_error_not_a_success(tmp_path, capsys) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("not json\n[1]\n")
    assert main(["evaluate", "--dataset", str(path), "--evaluators", "brevity"]) == 2
    assert "no line" in capsys.readouterr().err


def test_unknown_dataset_keys_are_named_and_a_run_that_scores_nothing_fails(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [{"id": str(i), "question": "What is 2 and 2?", "answer": "Four."} for i in range(3)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run("evaluate", "--dataset", str(path), "--evaluators", "brevity", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "'question' (3 lines), 'answer' (3 lines)" in result.stderr
    assert "id, input, output, context, reference, labels" in result.stderr
    assert f"no line of {path} got a score" in result.stderr
    assert "3 lines lack 'input'" in result.stderr and "Traceback" not in result.stderr


def test_a_dataset_with_an_extra_key_is_scored_with_a_warning(tmp_path) -> None:
    path = _dataset(tmp_path)
    with path.open("a") as handle:
        handle.write(json.dumps({"id": "n", "input": "Hi?", "output": "Hi.", "notes": "x"}) + "\n")
    result = run("evaluate", "--dataset", str(path), "--evaluators", "brevity", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "keys llmvigil does not read: 'notes' (1 line)" in result.stderr
    assert "scored 4 lines" in result.stdout


def test_an_empty_evaluator_list_from_the_config_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "llmvigil.toml").write_text("[evaluators]\nenabled = []\n")
    assert main(["evaluate", "--dataset", str(_dataset(tmp_path))]) == 2
    assert "no evaluator" in capsys.readouterr().err


def test_unknown_span_kinds_in_the_config_are_refused(tmp_path, capsys) -> None:
    (tmp_path / "llmvigil.toml").write_text('[evaluators]\nkinds = ["lmm"]\n')
    url = stored(tmp_path)
    assert main(["evaluate", "--store", url, "--evaluators", "brevity"]) == 2
    err = capsys.readouterr().err
    assert "[evaluators] kinds" in err and "'lmm'" in err and "retrieval" in err


# -- point 10: config and init paths ------------------------------------------------------


def test_a_folder_as_config_says_a_file_is_wanted(tmp_path) -> None:
    message = refused(run("--config", str(tmp_path), "metrics", cwd=tmp_path))
    assert "is a folder" in message and "does not exist" not in message
    message = refused(run("metrics", cwd=tmp_path, env={"LLMVIGIL_CONFIG": str(tmp_path)}))
    assert "LLMVIGIL_CONFIG" in message and "is a folder" in message


def test_init_into_a_folder_or_a_missing_folder_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "sub").mkdir()
    assert main(["init", "--path", "sub", "--force"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["init", "--path", "gone/llmvigil.toml"]) == 2
    assert "gone" in capsys.readouterr().err
