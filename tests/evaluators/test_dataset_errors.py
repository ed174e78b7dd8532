"""Dataset files: a bad line is skipped with its number, never aborts the run or is scored
as something else; a bad path is found before any scoring."""

from __future__ import annotations

import json

import pytest

from llmvigil.errors import EvaluatorError
from llmvigil.evaluators.dataset import check_output, read_dataset, write_records

GOOD = {"id": "a", "input": "What is 2+2?", "output": "4.", "context": ["2+2 is 4."]}


def _line(**overrides) -> bytes:
    return (json.dumps({**GOOD, **overrides}) + "\n").encode()


def test_a_deeply_nested_line_is_skipped_with_its_number(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    deep = b'{"id": "x", "extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    path.write_bytes(_line(id="1") + deep + _line(id="3"))
    lines, problems = read_dataset(path)
    assert [line.item.id for line in lines] == ["1", "3"]
    assert [p.number for p in problems] == [2]
    assert "nested" in problems[0].message


def test_bytes_that_are_not_utf8_make_their_line_malformed(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    latin1 = '{"id": "2", "input": "Wie spät ist es?", "output": "Zehn."}\n'.encode("latin-1")
    path.write_bytes(_line(id="1") + latin1 + _line(id="3"))
    lines, problems = read_dataset(path)
    assert [line.item.id for line in lines] == ["1", "3"]
    assert [p.number for p in problems] == [2]
    assert "UTF-8" in problems[0].message and "0xe4" in problems[0].message


def test_a_lone_surrogate_is_malformed_not_scored(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(_line(id="1") + b'{"id": "2", "output": "bad \\ud800 text"}\n')
    lines, problems = read_dataset(path)
    assert [line.item.id for line in lines] == ["1"]
    assert problems[0].number == 2 and "surrogate" in problems[0].message
    assert "'output'" in problems[0].message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(b'{"id": true, "output": "x"}\n', "'id'", id="boolean-id"),
        pytest.param(
            b'{"id": "n", "big": ' + b"9" * 5000 + b"}\n", "not valid JSON", id="huge-integer"
        ),
    ],
)
def test_other_odd_lines_are_skipped_with_a_reason(tmp_path, text, reason) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(_line(id="1") + text)
    lines, problems = read_dataset(path)
    assert len(lines) == 1 and problems[0].number == 2 and reason in problems[0].message


def test_a_byte_order_mark_is_not_a_problem(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _line(id="1") + _line(id="2"))
    lines, problems = read_dataset(path)
    assert [line.item.id for line in lines] == ["1", "2"] and not problems


def test_a_missing_file_or_a_folder_is_an_evaluator_error(tmp_path) -> None:
    with pytest.raises(EvaluatorError, match="does not exist"):
        read_dataset(tmp_path / "absent.jsonl")
    with pytest.raises(EvaluatorError, match="is a folder"):
        read_dataset(tmp_path)


def test_output_paths_are_checked_before_scoring(tmp_path) -> None:
    dataset = tmp_path / "d.jsonl"
    dataset.write_bytes(_line())
    check_output(tmp_path / "scores.jsonl", dataset)
    with pytest.raises(EvaluatorError, match=r"folder .*missing.* does not exist"):
        check_output(tmp_path / "missing" / "scores.jsonl", dataset)
    with pytest.raises(EvaluatorError, match="is a folder"):
        check_output(tmp_path, dataset)
    with pytest.raises(EvaluatorError, match="the dataset itself"):
        check_output(tmp_path / "." / "d.jsonl", dataset)
    (tmp_path / "file").write_text("x")
    with pytest.raises(EvaluatorError, match="not a folder"):
        check_output(tmp_path / "file" / "scores.jsonl", dataset)


def test_a_failed_write_leaves_no_temporary_file(tmp_path) -> None:
    def records():
        yield {"id": "1"}
        yield {"id": "\ud800"}  # cannot be written as UTF-8

    with pytest.raises(EvaluatorError, match=r"out\.jsonl"):
        write_records(tmp_path / "out.jsonl", records())
    assert not list(tmp_path.iterdir())
