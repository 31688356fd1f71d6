"""Grading a class at its edges: how submissions are matched to students, what a grader reads
past, and the inputs that must be one line and status 2 (each found by a review or a new
user's try)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.teach.conftest import run_in

runner = CliRunner()




@pytest.fixture
def hw(tmp_path):
    """A class of three (ada, ben, j.smith) on --variant scaled, weights and context asked."""
    (tmp_path / "roster.csv").write_text("id,name\nada,Ada\nben,Ben\nj.smith,J\n")
    result = run_in(tmp_path, "exercise", "--variant", "scaled", "--steps", "weights,context",
                  "--assignment", "hw", "--roster", "roster.csv", "-o", "hw")
    assert result.exit_code == 0, result.output
    (tmp_path / "subs").mkdir()
    return tmp_path


def _right(root: Path, sid: str) -> dict:
    """The student's right answers, by numpy from their problem.json: softmax(Q Kᵀ / 2) V."""
    p = json.loads((root / "hw" / sid / "problem.json").read_text())
    x, wq, wk, wv = (np.array(p[k], dtype=float) for k in ("x", "W_q", "W_k", "W_v"))
    s = (x @ wq) @ (x @ wk).T / 2
    w = np.exp(s - s.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return {"weights": w.round(4).tolist(), "context": (w @ (x @ wv)).round(4).tolist()}


def _book(root: Path, *extra: str) -> dict[str, dict[str, str]]:
    result = run_in(root, "grade", "--exercises", "hw", "--submissions", "subs", "-f", "csv",
                  *extra)
    assert result.exit_code == 0, result.output
    return {row["id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def test_a_file_named_in_another_case_is_its_students_and_two_answer_files_are_refused(hw):
    (hw / "subs" / "ADA.json").write_text(json.dumps(_right(hw, "ada")))
    (hw / "subs" / "ben.json").write_text(json.dumps(_right(hw, "ben")))
    (hw / "subs" / "Ben.md").write_text("## weights\n| 1 | 0 | 0 |\n")
    book = _book(hw)
    assert book["ada"]["points"] == "2" and book["ada"]["submission"] == "ADA.json"
    assert book["ben"]["points"] == "0"
    assert book["ben"]["note"] == "several submissions (Ben.md, ben.json): hand in one"
    assert "ADA" not in book and "Ben" not in book


def test_a_file_beside_the_answers_is_not_read_and_a_dotted_id_is_matched_whole(hw):
    (hw / "subs" / "ada.json").write_text(json.dumps(_right(hw, "ada")))
    (hw / "subs" / "ada.pdf").write_bytes(b"%PDF-1.4")
    (hw / "subs" / "j.smith.json").write_text(json.dumps(_right(hw, "j.smith")))
    book = _book(hw)
    assert book["ada"]["points"] == "2" and book["ada"]["note"] == "not read: ada.pdf"
    assert book["j.smith"]["points"] == "2" and "j" not in book


def test_a_spreadsheet_never_runs_a_file_name_as_a_formula(hw):
    (hw / "subs" / "=HYPERLINK(1).json").write_text("{}")
    row = _book(hw)["'=HYPERLINK(1)"]
    assert row["submission"] == "'=HYPERLINK(1).json"


def test_an_exponent_past_decimals_range_is_that_students_note_not_a_crash(hw):
    (hw / "subs" / "ada.txt").write_text("weights:\n1e-99999999999999999999 0 0\n")
    (hw / "subs" / "ben.json").write_text('{"weights": [[1e-99999999999999999999, 0, 0]]}')
    (hw / "subs" / "j.smith.json").write_text(json.dumps(_right(hw, "j.smith")))
    book = _book(hw)
    assert "is not a number" in book["ada"]["note"]
    assert "unreadable JSON number" in book["ben"]["note"]
    assert book["j.smith"]["points"] == "2"


def test_rows_labelled_with_their_token_and_a_colon_are_rows_and_remarks_are_left_out(hw):
    answers = _right(hw, "ada")
    tokens = json.loads((hw / "hw" / "ada" / "problem.json").read_text())["tokens"]
    lines = ["weights:"]
    lines += [f"{t}: " + " ".join(map(str, row)) for t, row in zip(tokens, answers["weights"],
                                                                  strict=True)]
    lines += ["sum of each row = 1", "context:"]
    lines += [f"{t}: " + " ".join(map(str, row)) for t, row in zip(tokens, answers["context"],
                                                                  strict=True)]
    (hw / "subs" / "ada.txt").write_text("\n".join(lines) + "\n")
    assert _book(hw)["ada"]["points"] == "2"


def test_the_api_refuses_a_step_it_does_not_ask_in_one_line(hw):
    import attncli
    from attncli.errors import InputError

    with pytest.raises(InputError, match="not asked in"):
        attncli.grade(hw / "hw" / "ada", _right(hw, "ada"), steps=["scores"])
    problem = hw / "hw" / "ada" / "problem.json"
    with pytest.raises(InputError, match="computes no such step"):
        attncli.grade(problem, _right(hw, "ada"), steps=["masked_scores"])
    grade = attncli.grade(problem, {**_right(hw, "ada"), "name": "Ada"})
    assert grade.ok and grade.note == ""  # a name is no answer: left out


@pytest.mark.parametrize(("args", "message"), [
    (["--student", "../evil", "--assignment", "a"], "--student: id '../evil' cannot name a "
     "folder"),
    (["--variant", "multihead", "--seed", "1"], "--variant multihead needs --heads H"),
    (["--seed", "1", "-o", "."], "-o .: the current folder"),
])
def test_more_usage_errors_of_exercise(tmp_path, args, message):
    result = run_in(tmp_path, "exercise", *(["-o", "ex"] if "-o" not in args else []), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path.parent / "evil").exists()


def test_a_name_saved_by_macos_in_decomposed_unicode_is_its_students(tmp_path):
    import unicodedata

    (tmp_path / "roster.csv").write_text("id,name\njosé,José\n", encoding="utf-8")
    assert run_in(tmp_path, "exercise", "--steps", "weights", "--assignment", "hw",
                  "--roster", "roster.csv", "-o", "hw").exit_code == 0
    (tmp_path / "subs").mkdir()
    right = _right_in(tmp_path / "hw" / "josé")
    (tmp_path / "subs" / unicodedata.normalize("NFD", "josé.json")).write_text(
        json.dumps({"weights": right["weights"]}))
    result = run_in(tmp_path, "grade", "--exercises", "hw", "--submissions", "subs", "-f",
                    "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["id"], r["points"]) for r in rows] == [("josé", "1")]


def _right_in(folder: Path) -> dict:
    root = folder.parent.parent
    return _right(root, folder.name)


def test_grade_refuses_an_output_extension_it_does_not_write_before_grading(hw):
    result = run_in(hw, "grade", "--exercises", "hw", "--submissions", "subs", "-o", "g.xlsx")
    assert result.exit_code == 2 and "-o g.xlsx: .xlsx is no format attncli grade writes" in \
        result.stderr
    assert not (hw / "g.xlsx").exists()
    assert run_in(hw, "grade", "--exercises", "hw", "--submissions", "subs", "-o",
                  "g.json").exit_code == 0
    assert json.loads((hw / "g.json").read_text())["steps"] == ["weights", "context"]


def test_exercise_refuses_to_replace_the_folder_it_runs_in(hw):
    inside = hw / "hw" / "ada"
    result = run_in(inside, "exercise", "--variant", "scaled", "--steps", "weights,context",
                    "--assignment", "hw", "--roster", "../../roster.csv", "-o", "../../hw")
    assert result.exit_code == 2 and "the current folder or one holding it" in result.stderr
    assert inside.is_dir()
