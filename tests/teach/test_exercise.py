"""attncli exercise end to end: the files it writes, checked against numpy written here
(problem.json's numbers in, the key's numbers out), determinism per (assignment, id), the
roster, the worksheet's inputs and template, and every usage error as one line, status 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.teach.conftest import run_in


def _softmax(scores):
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _numbers(data):
    return np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)


def test_one_exercise_writes_the_five_files_and_its_key_is_numpys_attention(tmp_path):
    result = _run("exercise", "--variant", "scaled", "--tokens", "3", "--d-model", "4",
                  "--seed", "7", "-o", "ex", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "ex"
    assert sorted(p.name for p in folder.iterdir()) == [
        "answers-template.json", "exercise.json", "key.json", "problem.json", "solution.md",
        "worksheet.md"]
    problem = json.loads((folder / "problem.json").read_text())
    x, wq, wk, wv = (np.array(problem[k], dtype=float) for k in ("x", "W_q", "W_k", "W_v"))
    assert x.shape == (3, 4) and wq.shape == (4, 4)
    # independent attention: softmax(Q Kᵀ / √4) V, d_k = 4 so the scale is exactly 1/2
    q, k, v = x @ wq, x @ wk, x @ wv
    scaled = q @ k.T / 2
    weights = _softmax(scaled)
    key = json.loads((folder / "key.json").read_text())
    assert list(key["steps"]) == ["queries", "keys", "values", "scores", "scaled_scores",
                                  "weights", "context"]
    np.testing.assert_allclose(key["steps"]["scaled_scores"]["data"], scaled, atol=1e-12)
    np.testing.assert_allclose(key["steps"]["weights"]["data"], weights, atol=1e-12)
    np.testing.assert_allclose(key["steps"]["context"]["data"], weights @ v, atol=1e-12)
    # hand-friendly: integer scores, halves after the scale
    assert np.all(q @ k.T == np.round(q @ k.T))
    assert np.all(scaled * 2 == np.round(scaled * 2))
    # the template: every asked step of the key's shape, each entry null
    template = json.loads((folder / "answers-template.json").read_text())
    assert list(template) == list(key["steps"])
    for name, value in template.items():
        assert np.array(value, dtype=object).shape == tuple(key["steps"][name]["shape"])
        assert all(v is None for v in np.array(value, dtype=object).flat)
    # problem.json runs as it is with attncli compute, and gives the key's numbers
    again = _run("compute", "ex/problem.json", "--json", "--steps", "weights", cwd=tmp_path)
    assert again.exit_code == 0, again.output
    np.testing.assert_allclose(json.loads(again.stdout)["steps"]["weights"]["data"], weights,
                               atol=1e-12)


def test_the_worksheet_shows_the_problems_numbers_and_asks_the_steps(tmp_path):
    result = _run("exercise", "--variant", "causal", "--seed", "3", "--steps",
                  "masked_scores,weights,context", "-o", "ex", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    sheet = (tmp_path / "ex" / "worksheet.md").read_text()
    problem = json.loads((tmp_path / "ex" / "problem.json").read_text())
    # each row of x as a table row labelled with its token
    for token, row in zip(problem["tokens"], problem["x"], strict=True):
        assert f"| **{token}** | " + " | ".join(str(v) for v in row) + " |" in sheet
    asked = re.findall(r"^- \*\*(\w+)\*\* \(", sheet, flags=re.M)
    assert asked == ["masked_scores", "weights", "context"]
    # every step of the run is defined, asked or not: the student can work towards them
    steps = re.findall(r"^\d+\. (\w+): `", sheet, flags=re.M)
    assert steps == ["queries", "keys", "values", "scores", "scaled_scores", "masked_scores",
                     "weights", "context"]
    assert "−∞" in sheet and "answers-template.json" in sheet
    template = json.loads(re.search(r"```json\n(.*?)```", sheet, flags=re.S).group(1))
    assert list(template) == ["masked_scores", "weights", "context"]


def test_the_same_command_gives_the_same_exercises_and_each_student_another(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nalice,Alice Liu\nbob,\"Bob, Jr.\"\ncarol,Carol\n")
    args = ["exercise", "--variant", "scaled", "--assignment", "hw3", "--roster",
            "roster.csv"]
    assert _run(*args, "-o", "one", cwd=tmp_path).exit_code == 0
    assert _run(*args, "-o", "two", cwd=tmp_path).exit_code == 0
    for sid in ("alice", "bob", "carol"):
        for name in ("problem.json", "key.json", "worksheet.md", "solution.md",
                     "answers-template.json"):
            assert (tmp_path / "one" / sid / name).read_bytes() == \
                (tmp_path / "two" / sid / name).read_bytes()
    xs = [json.loads((tmp_path / "one" / s / "problem.json").read_text())["x"]
          for s in ("alice", "bob", "carol")]
    assert xs[0] != xs[1] and xs[1] != xs[2] and xs[0] != xs[2]
    manifest = json.loads((tmp_path / "one" / "exercise.json").read_text())
    assert [(s["id"], s["name"]) for s in manifest["students"]] == [
        ("alice", "Alice Liu"), ("bob", "Bob, Jr."), ("carol", "Carol")]
    # one student's exercise made alone is the one the roster made for them
    assert _run("exercise", "--variant", "scaled", "--assignment", "hw3", "--student", "bob",
                "-o", "bob", cwd=tmp_path).exit_code == 0
    assert (tmp_path / "bob" / "problem.json").read_text().replace("for bob", "") == \
        (tmp_path / "one" / "bob" / "problem.json").read_text().replace(
            "for bob (Bob, Jr.)", "")
    # another assignment, other numbers
    assert _run("exercise", "--variant", "scaled", "--assignment", "hw4", "--student", "bob",
                "-o", "bob4", cwd=tmp_path).exit_code == 0
    assert json.loads((tmp_path / "bob4" / "problem.json").read_text())["x"] != xs[1]


def test_one_query_row_asks_that_row_and_the_solution_works_it_out(tmp_path):
    result = _run("exercise", "--heads", "2", "--d-model", "8", "--query", "-1", "--steps",
                  "weights,context", "--seed", "11", "-o", "ex", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    problem = json.loads((tmp_path / "ex" / "problem.json").read_text())
    last = problem["tokens"][-1]
    template = json.loads((tmp_path / "ex" / "answers-template.json").read_text())
    assert template["query"] == last
    assert np.array(template["weights"], dtype=object).shape == (2, 3)  # (heads, keys)
    assert np.array(template["context"], dtype=object).shape == (8,)
    # two heads of d_head 4: each head's scores are halved
    x, wq, wk, wv = (np.array(problem[k], dtype=float) for k in ("x", "W_q", "W_k", "W_v"))
    key = json.loads((tmp_path / "ex" / "key.json").read_text())
    for h in range(2):
        cols = slice(4 * h, 4 * h + 4)
        w = _softmax((x @ wq[:, cols])[-1] @ (x @ wk[:, cols]).T / 2)
        np.testing.assert_allclose(key["steps"]["weights"]["data"][h], w, atol=1e-12)
        np.testing.assert_allclose(key["steps"]["context"]["data"][4 * h:4 * h + 4],
                                   w @ (x @ wv[:, cols]), atol=1e-12)
    solution = (tmp_path / "ex" / "solution.md").read_text()
    assert f"## The row of “{last}”" in solution
    assert solution.count("## The row of") == 1
    assert "### Exponentials of the scores" in solution


def test_asking_for_the_output_gives_the_problem_a_W_o(tmp_path):
    result = _run("exercise", "--seed", "4", "--steps", "context,output", "-o", "ex",
                  cwd=tmp_path)
    assert result.exit_code == 0, result.output
    problem = json.loads((tmp_path / "ex" / "problem.json").read_text())
    x, wq, wk, wv, wo = (np.array(problem[k], dtype=float)
                         for k in ("x", "W_q", "W_k", "W_v", "W_o"))
    context = _softmax((x @ wq) @ (x @ wk).T / 2) @ (x @ wv)
    key = json.loads((tmp_path / "ex" / "key.json").read_text())
    np.testing.assert_allclose(key["steps"]["output"]["data"], context @ wo, atol=1e-12)


def test_the_latex_worksheet_has_only_ascii_and_balanced_environments(tmp_path):
    result = _run("exercise", "--variant", "causal", "--heads", "2", "--d-model", "8",
                  "--seed", "5", "--worksheet-format", "latex", "-o", "ex", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    tex = (tmp_path / "ex" / "worksheet.tex").read_text()
    assert not (tmp_path / "ex" / "worksheet.md").exists()
    assert tex.isascii(), sorted({c for c in tex if not c.isascii()})
    for env in ("document", "itemize", "enumerate", "bmatrix", "Verbatim"):
        assert tex.count(rf"\begin{{{env}}}") == tex.count(rf"\end{{{env}}}") > 0
    assert tex.count("$") % 2 == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--seed", "1", "--assignment", "a", "--student", "s"], "--seed and --student/--roster "
     "contradict each other"),
    (["--student", "s"], "--student and --roster need --assignment NAME"),
    ([], "give --seed S for one exercise"),
    (["--seed", "1", "--d-model", "6"], "perfect square"),
    (["--seed", "1", "--steps", "dropped_weights"], "--steps dropped_weights: not computed "
     "in this exercise: there is no dropout"),
    (["--seed", "1", "--steps", "head_context"], "--steps head_context: not computed"),
    (["--seed", "1", "--query", "3"], "--query 3: the exercise has 3 tokens"),
    (["--seed", "1", "--steps", "wieghts"], "--steps: unknown step wieghts"),
    (["--assignment", "a", "--roster", "missing.csv"], "missing.csv: no such roster file"),
])
def test_usage_errors_are_one_line_and_status_2(tmp_path, args, message):
    result = _run("exercise", "--tokens", "3", "-o", "ex", *args, cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ex").exists()


def test_a_folder_with_other_files_is_refused_and_an_exercise_folder_replaced(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    result = _run("exercise", "--seed", "1", "-o", "notes", cwd=tmp_path)
    assert result.exit_code == 2
    assert "holds files attncli exercise did not write (todo.txt)" in result.stderr
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    assert _run("exercise", "--seed", "1", "-o", "ex", cwd=tmp_path).exit_code == 0
    first = (tmp_path / "ex" / "problem.json").read_text()
    assert _run("exercise", "--seed", "2", "-o", "ex", cwd=tmp_path).exit_code == 0
    assert (tmp_path / "ex" / "problem.json").read_text() != first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # the teacher's own files in an exercise folder (submissions, grades) are never replaced
    (tmp_path / "ex" / "subs").mkdir()
    (tmp_path / "ex" / "subs" / "ada.json").write_text("{}")
    (tmp_path / "ex" / "grades.csv").write_text("id\n")
    result = _run("exercise", "--seed", "3", "-o", "ex", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert "did not write (grades.csv, subs/)" in result.stderr
    assert (tmp_path / "ex" / "subs" / "ada.json").is_file()


@pytest.mark.parametrize(("text", "message"), [
    ("name\nAlice\n", "no column id in the header"),
    ("id,name\nalice,A\nalice,B\n", "id 'alice' again (line 2)"),
    ("id,name\nAlice,A\nalice,B\n", "id 'alice' is 'Alice' in another case (line 2)"),
    ("id\n../evil\n", "cannot name a folder"),
    ("id,name\n", "no students"),
    ("id,name\n,Nobody\n", "line 2: no id"),
])
def test_bad_rosters_are_named_with_their_line(tmp_path, text, message):
    (tmp_path / "roster.csv").write_text(text)
    result = _run("exercise", "--assignment", "a", "--roster", "roster.csv", "-o", "ex",
                  cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert "roster.csv" in result.stderr and message in result.stderr


@pytest.mark.parametrize("options", [
    ["--variant", "causal", "--heads", "2", "--d-model", "8"],
    ["--rope", "--query", "1"],
    ["--variant", "cross", "--steps", "weights,context"],
    ["--d-model", "16", "--dropout", "0.5", "--steps", "dropped_weights"],  # 16 columns
])
def test_the_latex_worksheet_compiles_where_pdflatex_is_installed(tmp_path, options):
    """pdflatex (Debian's texlive-latex-base and -recommended) builds the worksheet; this
    machine's CI has no TeX, so it skips there: the ASCII test above is its stand-in."""
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-recommended)")
    result = _run("exercise", *options, "--seed", "5", "--worksheet-format", "latex", "-o",
                  "ex", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    built = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                            "worksheet.tex"], cwd=tmp_path / "ex", capture_output=True,
                           text=True, timeout=120)
    assert built.returncode == 0, built.stdout[-2000:]
    assert (tmp_path / "ex" / "worksheet.pdf").stat().st_size > 10_000


def _run(*args: str, cwd: Path):
    return run_in(cwd, *args)
