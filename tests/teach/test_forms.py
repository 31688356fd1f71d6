"""The answer forms students write (attncli/teach/forms.py): JSON, CSV, Markdown, text and
folders, each read to the numbers and decimals written here; labels, headers, −∞, empties,
fractions and multi-head layouts; every error as one line naming the file and the step; and
the same answers in all four forms graded by check alike, on seed 004 (three-inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attncli import attend, load_problem
from attncli.check import Checker, Counts
from attncli.config import build
from attncli.errors import InputError
from attncli.teach.forms import ANSWER_SUFFIXES, FRACTION_DECIMALS, read_submission

SHAPES = {"weights": (3, 3), "context": (3, 2)}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, shapes=None, query=None) -> str:
    with pytest.raises(InputError) as caught:
        read_submission(path, SHAPES if shapes is None else shapes, query)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


# --- JSON ------------------------------------------------------------------------------


def test_json_template_filled_in_keeps_the_written_decimals(tmp_path):
    path = _write(tmp_path, "s01.json", """{
      "query": "cat",
      "weights": [0.50, 0.25, 0.2500],
      "context": [1.5, -2]
    }""")
    answers = read_submission(path, {"weights": (3,), "context": (2,)}, "cat")
    assert answers.query == "cat" and answers.file == str(path)
    assert list(answers.steps) == ["weights", "context"]  # pipeline order
    np.testing.assert_allclose(answers.steps["weights"], [0.5, 0.25, 0.25], rtol=0, atol=0)
    np.testing.assert_allclose(answers.steps["context"], [1.5, -2.0], rtol=0, atol=0)
    # 0.50 has 2 decimals, 0.2500 has 4: the step is recorded with 4; 1.5 → 1, -2 → 0: 1
    assert answers.decimals["weights"].tolist() == [4, 4, 4]
    assert answers.decimals["context"].tolist() == [1, 1]


def test_json_template_all_null_step_is_not_answered_and_a_null_among_numbers_is_empty(tmp_path):
    path = _write(tmp_path, "s01.json", json.dumps({
        "weights": [[0.5, None, 0.25], [0.1, 0.2, 0.7], [1, 0, 0]],
        "context": [[None, None], [None, None], [None, None]]}))
    answers = read_submission(path, SHAPES)
    assert list(answers.steps) == ["weights"]  # context: the template as handed out
    weights = answers.steps["weights"]
    assert np.isnan(weights[0, 1]) and np.isnan(weights).sum() == 1
    assert weights[1].tolist() == [0.1, 0.2, 0.7]
    assert answers.query is None


@pytest.mark.parametrize("word", [None, "-inf", "-Infinity", "−∞", "-∞"])
def test_json_masked_scores_null_and_the_minus_infinity_words_are_minus_infinity(tmp_path, word):
    path = _write(tmp_path, "s.json", json.dumps({"masked_scores": [[2, word], [1.5, 0.5]]},
                                                 ensure_ascii=False))
    answers = read_submission(path, {"masked_scores": (2, 2)})
    assert answers.steps["masked_scores"].tolist() == [[2.0, -np.inf], [1.5, 0.5]]
    assert answers.decimals["masked_scores"].tolist() == [[1, 1], [1, 1]]


def test_json_fractions_strings_and_unicode_minus_outside_quotes(tmp_path):
    # Students write 3/2 for a scaled score and −1/2 with a Unicode minus; neither is JSON,
    # both are read: a fraction is exact (12 decimals), the other entries keep theirs.
    path = _write(tmp_path, "s.json", '{"scaled_scores": [[3/2, −1/2], ["0.50", −1.25]]}')
    answers = read_submission(path, {"scaled_scores": (2, 2)})
    assert answers.steps["scaled_scores"].tolist() == [[1.5, -0.5], [0.5, -1.25]]
    assert answers.decimals["scaled_scores"].tolist() == [[FRACTION_DECIMALS] * 2, [2, 2]]


def test_json_compute_document_is_read_as_answers(tmp_path):
    problem = load_problem(sample="three-inputs")
    trace = attend(problem, steps=["weights"], query="Input 1")
    from attncli.render.json import render_json

    path = _write(tmp_path, "key.json", render_json(trace, None))
    answers = read_submission(path, {"weights": (3,)}, "Input 1")
    # softmax([2, 4, 4]) = [e⁻², 1, 1] / (e⁻² + 2) = [0.063379, 0.468311, 0.468311]
    e = np.exp(-2.0)
    np.testing.assert_allclose(answers.steps["weights"], [e / (e + 2), 1 / (e + 2), 1 / (e + 2)],
                               rtol=1e-12)
    assert answers.query == "Input 1"


# --- CSV -------------------------------------------------------------------------------


def test_csv_per_step_in_a_folder_drops_header_and_labels(tmp_path):
    _write(tmp_path, "s01/weights.csv",
           "\ufeff,cat,sun,sat\r\ncat,0.50,0.25,0.25\r\n\r\nsun,0.1,0.2,0.7\r\nsat,1/3,1/3,\r\n")
    _write(tmp_path, "s01/Context.CSV", "1.5;-2\n0;1e-3\n−1;+4\n")
    _write(tmp_path, "s01/notes.pdf", "not an answer")
    _write(tmp_path, "s01/.hidden.csv", "9,9,9")
    answers = read_submission(tmp_path / "s01", SHAPES)
    weights = answers.steps["weights"]
    assert weights[:2].tolist() == [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]
    assert weights[2, :2] == pytest.approx([1 / 3, 1 / 3], rel=1e-15) and np.isnan(weights[2, 2])
    # 0.50 → 2 decimals for the step, the fractions 1/3 exact
    assert answers.decimals["weights"].tolist() == [[2, 2, 2], [2, 2, 2], [12, 12, 2]]
    assert answers.steps["context"].tolist() == [[1.5, -2.0], [0.0, 0.001], [-1.0, 4.0]]
    assert answers.decimals["context"].tolist() == [[3, 3]] * 3  # 1e-3 has 3
    assert answers.file == str(tmp_path / "s01")


def test_a_single_csv_is_the_one_asked_step_and_spaces_separate(tmp_path):
    path = _write(tmp_path, "s02.csv", "0.5 0.25 0.25\n")
    answers = read_submission(path, {"weights": (3,)}, "cat")
    assert answers.steps["weights"].tolist() == [0.5, 0.25, 0.25] and answers.query == "cat"


def test_csv_pandas_index_header_and_trailing_delimiter(tmp_path):
    # pandas' DataFrame(w, index=tokens).to_csv(): an empty corner and the column numbers
    path = _write(tmp_path, "s/weights.csv", ",0,1,2\ncat,1,0,0,\nsun,0,1,0,\nsat,0,0,1,\n")
    answers = read_submission(path.parent, {"weights": (3, 3)})
    assert answers.steps["weights"].tolist() == np.eye(3).tolist()


# --- Markdown --------------------------------------------------------------------------


def test_markdown_tables_under_headings_bold_and_colon_lines(tmp_path):
    path = _write(tmp_path, "s01.md", """# Homework 3

query: cat

## Inputs (copied)

| | 0 | 1 |
|---|---:|---:|
| cat | 9 | 9 |

## Step 1: Weights

| | cat | sun | sat |
|---|---:|---:|---:|
| **cat** | 0.50 | 0.25 | 0.25 |
| **sun** | 0.1 | 0.2 | 0.7 |
| **sat** | 1/3 | 1/3 | |

Some prose about the weights: they sum to 1.

**context** (3 × 2):

| 1.5 | -2 |
|---|---|
| 0 | 0.001 |
| −1 | +4 |
""")
    answers = read_submission(path, SHAPES, "cat")
    weights = answers.steps["weights"]
    assert weights[:2].tolist() == [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]] and np.isnan(weights[2, 2])
    assert answers.decimals["weights"].tolist() == [[2, 2, 2], [2, 2, 2], [12, 12, 2]]
    # a header row of numbers other than the column numbers is a row of answers
    assert answers.steps["context"].tolist() == [[1.5, -2.0], [0.0, 0.001], [-1.0, 4.0]]
    assert answers.query == "cat"


def test_markdown_stacked_head_tables_and_a_fenced_block(tmp_path):
    path = _write(tmp_path, "s.md", """## weights

### head 0

| 0.5 | 0.5 |
|-----|-----|
| 1 | 0 |

### head 1

| key 0 | key 1 |
|-------|-------|
| 0.25 | 0.75 |
| 0 | 1 |

## Step 1 (the masked scores)

```
[[2, -inf], [1, 3/2]]
```
""")
    answers = read_submission(path, {"masked_scores": (2, 2), "weights": (2, 2, 2)})
    # (4, 2) rows stacked → (2 heads, 2, 2)
    assert answers.steps["weights"].tolist() == [[[0.5, 0.5], [1, 0]], [[0.25, 0.75], [0, 1]]]
    assert answers.steps["masked_scores"].tolist() == [[2, -np.inf], [1, 1.5]]


def test_markdown_table_with_no_heading_is_the_one_asked_step(tmp_path):
    path = _write(tmp_path, "s.md", "My answer:\n\n| cat | sun |\n|---|---|\n| 0.4 | 0.6 |\n")
    answers = read_submission(path, {"weights": (2,)})
    assert answers.steps["weights"].tolist() == [0.4, 0.6]


# --- text ------------------------------------------------------------------------------


def test_text_rows_after_step_lines(tmp_path):
    path = _write(tmp_path, "s01.txt", """My answers (every row)
weights:
cat 0.50 0.25 0.25
sun 0.1, 0.2, 0.7
sat [1/3; 1/3; 1 / 3]

context = [[1.5, -2], [0, 1e-3],
           [−1, +4]]
""")
    answers = read_submission(path, SHAPES)
    assert answers.steps["weights"][:2].tolist() == [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]
    np.testing.assert_allclose(answers.steps["weights"][2], [1 / 3] * 3, rtol=1e-15)
    assert answers.decimals["weights"].tolist() == [[2, 2, 2], [2, 2, 2], [12, 12, 12]]
    assert answers.steps["context"].tolist() == [[1.5, -2.0], [0.0, 0.001], [-1.0, 4.0]]


def test_text_one_step_without_a_name_and_a_row_vector_for_a_matrix(tmp_path):
    path = _write(tmp_path, "s.txt", "1 0 0 0 1 0 0 0 1\n")
    answers = read_submission(path, {"weights": (3, 3)})
    assert answers.steps["weights"].tolist() == np.eye(3).tolist()


def test_text_heads_side_by_side_are_split_into_heads(tmp_path):
    # queries of 2 heads of width 2 written as x W_q, 3 × 4: head h is columns 2h, 2h + 1
    path = _write(tmp_path, "s.txt", "queries\n1 2 3 4\n5 6 7 8\n9 10 11 12\n")
    answers = read_submission(path, {"queries": (2, 3, 2)})
    assert answers.steps["queries"].tolist() == [[[1, 2], [5, 6], [9, 10]],
                                                 [[3, 4], [7, 8], [11, 12]]]


def test_a_same_size_other_arrangement_is_kept_as_written(tmp_path):
    # 2 × 3 for a 3 × 2 step: no usual layout of it; check grades it as the wrong shape
    path = _write(tmp_path, "s.txt", "context\n1 2 3\n4 5 6\n")
    answers = read_submission(path, {"context": (3, 2)})
    assert answers.steps["context"].shape == (2, 3)


# --- folders ---------------------------------------------------------------------------


def test_folder_merges_forms_one_level_deep(tmp_path):
    _write(tmp_path, "s01/answers-template.json", json.dumps(
        {"query": "cat", "weights": [None, None, None], "context": [1.5, -2]}))
    _write(tmp_path, "s01/hw/weights.txt", "0.5 0.25 0.25")
    _write(tmp_path, "s01/problem.json", '{"x": [[1, 2]]}')  # the exercise's, no answer
    _write(tmp_path, "s01/a/b/context.csv", "9,9")  # two levels down: not read
    answers = read_submission(tmp_path / "s01", {"weights": (3,), "context": (2,)}, "cat")
    assert answers.steps["weights"].tolist() == [0.5, 0.25, 0.25]
    assert answers.steps["context"].tolist() == [1.5, -2.0]


def test_folder_step_given_twice_names_both_files(tmp_path):
    _write(tmp_path, "s01/weights.csv", "0.5,0.5")
    _write(tmp_path, "s01/answers.md", "## weights\n| 0.4 | 0.6 |\n")
    message = _error(tmp_path / "s01", {"weights": (2,)})
    assert message == (f"{tmp_path / 's01'}: weights is given twice: in "
                       f"{tmp_path / 's01' / 'answers.md'} and in "
                       f"{tmp_path / 's01' / 'weights.csv'}")


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, text, message", [
    ("s.pdf", "", ": not an answer file: hand in .json (the template filled in), .csv (one file "
     "per step), .md (Markdown tables) or .txt (rows of numbers)"),
    ("s.txt", "weights\n0.5 O.5 0\n0 0 1\n1 0 0\ncontext\n1 2\n3 4\n5 6\n",
     ": weights: line 2, column 2: 'O.5' is not a number"),
    ("s.txt", "weights\n1e999 0 0\n", ": weights: line 2, column 1: '1e999' is not a number; "
     "too large for float64"),
    ("s.md", "## weights\n| 1/0 | 1 | 0 |\n", ": weights: line 2, column 1: '1/0' is not a "
     "number; a fraction over 0"),
    ("weights.csv", "0,5;0,25;0,25\n", ": weights: line 1, column 1: '0,5' is not a number; "
     "write decimals with a point"),
    ("s.md", "## context\n| 1 | 2 |\n|--|--|\n| 3 | -inf |\n| 5 | 6 |\n",
     ": context: −∞ is an answer only in masked_scores"),
    ("s.txt", "weights\n1 0\n0 1\n1 0\n", ": weights: 3 × 2 numbers, the exercise asks 3 × 3"),
    ("s.txt", "context: 1 2\n", ": context: 2 numbers, the exercise asks 3 × 2; the exercise "
     "asks every query row"),
    ("s.md", "## scores\n| 1 | 2 |\n", ": no answers: no step of weights, context has a "
     "number (scores is not asked)"),
    ("s.json", '{"weights": [[1]], "W_q": [[1]]}', ": weights: 1 × 1 numbers, the exercise "
     "asks 3 × 3"),
    ("scores.csv", "1,2\n", ": no answers: no step of weights, context has a number "
     "(scores is not asked)"),
    ("s.csv", "1,2\n", ": which step is it? name a CSV file after its step (weights.csv, "
     "context.csv)"),
    ("s.json", '{"weights": [[null, null, null]], "context": null}', ": no answers: no step of "
     "weights, context has a number (an unanswered entry is null or empty)"),
    ("s.txt", "context\n1 2\n3\n5 6\n", ": context: line 3: rows of 1 and 2 numbers: a step's "
     "rows (and tables) must be equally long"),
    ("s.md", "## context\n| 1 | 2 |\n|--|--|\n| 3 |\n\n| 5 | 6 |\n", ": context: line 4: rows "
     "of 1 and 2 numbers: a step's rows (and tables) must be equally long"),
    ("s.txt", "1 2 3\nweights\n", ": line 1: numbers before any step name: name the step "
     "above them (e.g. \"weights:\" or a heading)"),
    ("s.json", '{"weights": [[1, 2], [3, "abc"]]}', ": weights: 'abc' is not a number (an "
     "unknown entry is null; −∞ in masked_scores is null or \"-inf\")"),
    ("s.json", '{"weights": [[1, 2], [3]]}', ": weights: expected a (rectangular) array of "
     "numbers"),
    ("s.json", '{"weights": [[1, 2],\n [3 4]]}', ": invalid JSON at line 2, column 5: "
     "Expecting ',' delimiter"),
    ("s.json", '{"query": "dog", "weights": [1, 2, 3]}', ": query 'dog': the exercise asks every "
     "query row, not one"),
])
def test_each_malformed_submission_is_one_line_naming_file_and_step(tmp_path, name, text,
                                                                     message):
    path = _write(tmp_path, name, text)
    assert _error(path) == f"{path}{message}"


def test_a_query_other_than_the_exercises_is_refused(tmp_path):
    path = _write(tmp_path, "s.json", '{"query": "dog", "weights": [0.5, 0.5]}')
    assert _error(path, {"weights": (2,)}, "cat") == (f"{path}: query 'dog': the exercise "
                                                      "asks the row of 'cat'")


def test_a_folder_without_answer_files(tmp_path):
    _write(tmp_path, "s01/work.pdf", "")
    folder = tmp_path / "s01"
    assert _error(folder) == (f"{folder}: no answer file in this folder: hand in .json (the "
                              "template filled in), .csv (one file per step), .md (Markdown "
                              "tables) or .txt (rows of numbers)")


def test_a_missing_file(tmp_path):
    path = tmp_path / "s.txt"
    assert _error(path) == f"{path}: no such file"


# --- the same answers in every form, graded alike --------------------------------------

# Seed 004 (three-inputs): x = [[1,0,1,0],[0,2,0,2],[1,1,1,1]]; Q = x W_q = [[1,0,2],[2,2,2],
# [2,1,3]], K = x W_k = [[0,1,1],[4,4,0],[2,3,1]], V = x W_v = [[1,2,3],[2,8,0],[2,6,3]];
# scores Q Kᵀ = [[2,4,4],[4,16,12],[4,12,10]] (unscaled dot product).


def _seed_004(causal: bool):
    """The numbers by numpy here: the scores, masked scores, weights and context."""
    x = np.array([[1, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]], float)
    W_q = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]], float)
    W_k = np.array([[0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]], float)
    W_v = np.array([[0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]], float)
    scores = (x @ W_q) @ (x @ W_k).T
    assert scores.tolist() == [[2, 4, 4], [4, 16, 12], [4, 12, 10]]
    masked = np.where(np.tril(np.ones((3, 3), bool)) | (not causal), scores, -np.inf)
    e = np.exp(masked - masked.max(axis=1, keepdims=True))
    weights = e / e.sum(axis=1, keepdims=True)
    return masked, weights, x @ W_v


def _cells(causal: bool) -> dict[str, list[list[str]]]:
    """A student's answers as written: weights to 4 decimals, but row 0 rounded by hand to
    0, 1/2, 1/2 (seed 004's own mistake), and the context that follows from them."""
    masked, weights, values = _seed_004(causal)
    rows = {"masked_scores": [["−∞" if np.isneginf(v) else f"{v:g}" for v in row]
                              for row in masked]} if causal else {}
    written = np.round(weights, 4)
    if not causal:  # [0.0634, 0.4683, 0.4683] written [0, 1/2, 1/2]: context [2, 7, 1.5]
        written[0] = [0, 0.5, 0.5]
    rows["weights"] = [[f"{v:.4f}" for v in row] for row in written]
    if not causal:
        rows["weights"][0] = ["0", "1/2", "1/2"]
    # the context rounded to 4 decimals: rows 1 and 2 the exact ones, row 0 what follows from
    # the weights written (row 0 by hand, the others exact: weights rounded on the way would
    # give a context within rounding, not right)
    context = np.where(np.arange(3)[:, None] == 0, written @ values, weights @ values)
    rows["context"] = [[f"{v:.4f}" for v in row] for row in context]
    return rows


def _json(cells) -> str:
    def token(cell: str) -> str:
        return "null" if cell == "−∞" else cell  # 1/2 left bare: read as a fraction
    return "{\n" + ",\n".join(
        f'"{step}": [' + ", ".join("[" + ", ".join(map(token, row)) + "]" for row in rows) + "]"
        for step, rows in cells.items()) + "\n}\n"


def _markdown(cells) -> str:
    tokens = ["Input 1", "Input 2", "Input 3"]
    parts = ["# Seed 004\n"]
    for i, (step, rows) in enumerate(cells.items(), 1):
        parts.append(f"## Step {i}: {step}\n")
        parts.append("| | " + " | ".join(f"**{t}**" for t in tokens[:len(rows[0])]) + " |")
        parts.append("|---|" + "---:|" * len(rows[0]))
        parts += [f"| **{t}** | " + " | ".join(row) + " |" for t, row in zip(tokens, rows, strict=True)]
        parts.append("")
    return "\n".join(parts)


def _text(cells) -> str:
    return "".join(f"{step}:\n" + "".join(" ".join(row) + "\n" for row in rows) + "\n"
                   for step, rows in cells.items())


def _forms(folder: Path, cells) -> dict[str, Path]:
    paths = {"json": _write(folder, "s.json", _json(cells)),
             "md": _write(folder, "s.md", _markdown(cells)),
             "txt": _write(folder, "s.txt", _text(cells))}
    for step, rows in cells.items():
        _write(folder, f"csv/{step}.csv",
               ",Input 1,Input 2,Input 3\n" + "".join(f"Input {i},{','.join(row)}\n"
                                                      for i, row in enumerate(rows, 1)))
    paths["csv"] = folder / "csv"
    assert set(ANSWER_SUFFIXES) >= {p.suffix for p in paths.values() if p.suffix}
    return paths


@pytest.mark.parametrize("causal", [False, True])
def test_the_same_answers_in_every_form_are_read_and_graded_alike(tmp_path, causal):
    problem = load_problem(sample="three-inputs")
    config = build({**problem.config, "causal": causal}, None)
    trace = attend(problem, config)
    cells = _cells(causal)
    shapes = {step: (3, 3) for step in cells}
    read = {form: read_submission(path, shapes) for form, path in _forms(tmp_path, cells).items()}
    first = read["json"]
    masked, weights, values = _seed_004(causal)
    if causal:  # −∞ read as −∞ in every form
        assert first.steps["masked_scores"].tolist() == masked.tolist()
    else:  # the fraction 1/2 is exact; the other entries have 4 decimals
        assert first.steps["weights"][0].tolist() == [0, 0.5, 0.5]
        assert first.decimals["weights"][0].tolist() == [4, FRACTION_DECIMALS, FRACTION_DECIMALS]
    for form, answers in read.items():
        assert list(answers.steps) == list(cells), form
        for step in cells:
            np.testing.assert_allclose(answers.steps[step], first.steps[step], rtol=0, atol=0,
                                       err_msg=f"{form} {step}")
            assert answers.decimals[step].tolist() == first.decimals[step].tolist(), form
    reports = {form: Checker(problem, config, trace).check(answers)
               for form, answers in read.items()}
    counts = {form: report.counts for form, report in reports.items()}
    if causal:  # every entry right: 9 masked scores, 9 weights, 9 context entries
        expected = Counts(right=27)
    else:  # weights row 0 [0, 1/2, 1/2] for [0.0634, 0.4683, 0.4683]: 3 wrong; the context
        # row 0 that follows from them, 0.5·[2, 8, 0] + 0.5·[2, 6, 3] = [2, 7, 1.5]: carried
        expected = Counts(right=12, carried=3, wrong=3)
    assert set(counts.values()) == {expected}, counts
    assert len({str(r.diagnosis) for r in reports.values()}) == 1


# --- empty entries, as check grades them -----------------------------------------------


def test_an_empty_entry_is_graded_wrong_and_the_rest_as_they_are(tmp_path):
    # weights row 1 of seed 004 with its middle entry left empty: that entry is wrong, every
    # other entry right; the report stays whole (no NaN verdicts, nothing raised)
    problem = load_problem(sample="three-inputs")
    trace = attend(problem)
    _, weights, values = _seed_004(False)
    rows = [[f"{v:.4f}" for v in row] for row in weights]
    rows[1][1] = ""
    _write(tmp_path, "s/weights.csv", "\n".join(",".join(row) for row in rows))
    _write(tmp_path, "s/context.csv", "\n".join(",".join(f"{v:.4f}" for v in row)
                                                for row in weights @ values))
    answers = read_submission(tmp_path / "s", {"weights": (3, 3), "context": (3, 3)})
    assert np.isnan(answers.steps["weights"][1, 1])
    report = Checker(problem, None, trace).check(answers)
    assert report.counts == Counts(right=17, wrong=1)
    (weights_verdict, context_verdict) = report.verdicts
    assert weights_verdict.status.tolist() == [[0, 0, 0], [0, 2, 0], [0, 0, 0]]
    assert context_verdict.verdict == "right" and report.diagnosis is None


def test_a_blank_entry_does_not_cost_the_credit_carried_forward_elsewhere(tmp_path):
    # Seed 004 with weights row 0 rounded by hand to [0, 1/2, 1/2] (3 wrong) and the context
    # row 0 that follows from them, [2, 7, 1.5] (3 carried forward), as in the test above;
    # one context entry, row 2 column 2, left blank: it alone should be wrong, 4 wrong in all.
    # check runs the pipeline with the answers' steps in place to find what follows from
    # them; a NaN there makes that run refuse the non-finite context (InputError, caught as
    # "cannot happen"), so nothing is carried forward and row 0's context turns wrong too.
    path = _write(tmp_path, "s.txt", "weights\n0 1/2 1/2\n0.0000 0.9820 0.0180\n"
                  "0.0003 0.8805 0.1192\ncontext\n2 7 1.5\n2.0000 7.9640 0.0540\n"
                  "1.9997 7.7599 null\n")
    answers = read_submission(path, {"weights": (3, 3), "context": (3, 3)})
    assert np.isnan(answers.steps["context"][2, 2]) and np.isnan(answers.steps["context"]).sum() == 1
    problem = load_problem(sample="three-inputs")
    report = Checker(problem, None, attend(problem)).check(answers)
    assert report.verdicts[1].status[2].tolist() == [0, 0, 2]  # the blank is wrong
    # today: Counts(right=11, carried=0, wrong=7)
    assert report.counts == Counts(right=11, carried=3, wrong=4)


def test_the_worksheet_handed_back_with_its_json_filled_in(tmp_path):
    # A student fills the template inside worksheet.md itself: its input tables (### W_q …:
    # query weights) are no answers; the JSON block's rows are, one innermost row per line.
    from typer.testing import CliRunner

    from attncli.cli import app

    result = CliRunner().invoke(app, ["exercise", "--variant", "scaled", "--tokens", "3",
                                      "--d-model", "8", "--heads", "2", "--steps",
                                      "scores,weights,context", "--seed", "5",
                                      "-o", str(tmp_path / "ex")])
    assert result.exit_code == 0, result.output
    sheet = (tmp_path / "ex" / "worksheet.md").read_text(encoding="utf-8")
    template = json.loads((tmp_path / "ex" / "answers-template.json").read_text())
    counter = iter(range(1, 1000))
    start = sheet.index("```json")
    end = sheet.index("```", start + 7)
    fence = sheet[start:end]
    filled = fence
    while "null" in filled:
        filled = filled.replace("null", f"{next(counter) / 100:.2f}", 1)
    path = _write(tmp_path, "s01.md", sheet[:start] + filled + sheet[end:])
    shapes = {step: np.array(value, dtype=object).shape for step, value in template.items()
              if step != "query"}
    assert shapes == {"scores": (2, 3, 3), "weights": (2, 3, 3), "context": (3, 8)}
    answers = read_submission(path, shapes)
    # the numbers 0.01, 0.02, … in the template's order, row by row
    assert answers.steps["scores"].ravel().tolist() == [i / 100 for i in range(1, 19)]
    assert answers.steps["weights"].ravel().tolist() == [i / 100 for i in range(19, 37)]
    assert answers.steps["context"].ravel().tolist() == [i / 100 for i in range(37, 61)]
    assert {int(d.max()) for d in answers.decimals.values()} == {2}


def test_json_keys_and_text_step_names_are_matched_loosely(tmp_path):
    path = _write(tmp_path, "s.json", '{"Masked scores": [[1, null]], "Weights": [[1, 0]]}')
    answers = read_submission(path, {"masked_scores": (1, 2), "weights": (1, 2)})
    assert answers.steps["masked_scores"].tolist() == [[1, -np.inf]]
    path = _write(tmp_path, "s.txt", "Q1: masked-scores = [1, -\\infty]\n#Weights\n1 0\n")
    answers = read_submission(path, {"masked_scores": (1, 2), "weights": (1, 2)})
    assert answers.steps["masked_scores"].tolist() == [[1, -np.inf]]
    assert answers.steps["weights"].tolist() == [[1, 0]]


def test_an_empty_cell_in_masked_scores_is_empty_not_minus_infinity(tmp_path):
    # only JSON's null is −∞ (compute writes −∞ so); a blank cell is a blank
    path = _write(tmp_path, "masked_scores.csv", "2,\n1,3\n")
    answers = read_submission(path, {"masked_scores": (2, 2)})
    values = answers.steps["masked_scores"]
    assert np.isnan(values[0, 1]) and values[1].tolist() == [1, 3]


def test_a_column_for_a_row_and_a_query_line_in_text(tmp_path):
    path = _write(tmp_path, "s.txt", "query = 'Input 1'\ncontext\n1.9366\n6.6831\n1.5951\n")
    answers = read_submission(path, {"context": (3,)}, "Input 1")
    assert answers.steps["context"].tolist() == [1.9366, 6.6831, 1.5951]
    assert answers.query == "Input 1"


@pytest.mark.parametrize("files, message", [
    ({"s.txt": "query: cat\nweights\n1 0\nquery: dog\n"}, "s.txt: line 4: query 'dog', but "
     "line 1 says 'cat'"),
    ({"s/a.txt": "query: cat\nweights\n1 0\n", "s/b.txt": "query: dog\ncontext\n1 2\n"},
     "s: query 'cat' in {tmp}/s/a.txt but 'dog' in {tmp}/s/b.txt"),
    ({"s.json": '{"weights": [1, 0], "Weights": [1, 0]}'}, "s.json: weights is given twice (as "
     "'Weights' too)"),
    ({"s.txt": "masked_scores\n1 −∞\n"}, "s.txt: masked_scores: 2 numbers, the exercise asks 3 × 2"),
])
def test_contradictions_within_a_submission(tmp_path, files, message):
    for name, text in files.items():
        _write(tmp_path, name, text)
    path = tmp_path / next(iter(files)).split("/")[0]
    shapes = {"masked_scores": (3, 2), "weights": (2,), "context": (2,)}
    with pytest.raises(InputError) as caught:
        read_submission(path, shapes, "cat")
    assert str(caught.value) == f"{tmp_path}/" + message.format(tmp=tmp_path)


def test_numbers_of_rows_under_an_empty_corner_are_labels(tmp_path):
    # the worksheet's own table style: | | 0 | 1 | over | **0** | …; pandas' to_csv likewise
    path = _write(tmp_path, "s.md", "## weights\n\n| | 0 | 1 |\n|---|---:|---:|\n"
                  "| **0** | 0.25 | 0.75 |\n| **1** | 1 | 0 |\n")
    assert read_submission(path, {"weights": (2, 2)}).steps["weights"].tolist() == [
        [0.25, 0.75], [1, 0]]
    path = _write(tmp_path, "weights.csv", ",0,1\n0,0.25,0.75\n1,1,0\n")
    assert read_submission(path, {"weights": (2, 2)}).steps["weights"].tolist() == [
        [0.25, 0.75], [1, 0]]
    # without the corner, a first row of numbers is answers: the blank is an empty entry
    path = _write(tmp_path, "weights.csv", ",0.75\n1,0\n")
    values = read_submission(path, {"weights": (2, 2)}).steps["weights"]
    assert np.isnan(values[0, 0]) and values[0, 1] == 0.75 and values[1].tolist() == [1, 0]


def test_a_step_the_exercise_does_not_ask_is_extra_working_left_out(tmp_path):
    # scores shown on the way to the weights: read, then left out; the weights graded
    path = tmp_path / "s.md"
    path.write_text("## scores\n| 1 | 2 |\n\n## weights\n| 0.5 | 0.5 |\n")
    answers = read_submission(path, {"weights": (2,)}, "a")
    assert list(answers.steps) == ["weights"]
    assert answers.steps["weights"].tolist() == [0.5, 0.5]


@pytest.mark.parametrize(("name", "text", "steps", "note"), [
    ("s.md", "## wieghts\n| 1 | 0 |\n", {"weights": [1, 0]},
     "s.md: line 1: 'wieghts' read as weights"),
    ("s.txt", "weights:\n1 0\ncontxt:\n1 2\n", {"weights": [1, 0], "context": [1, 2]},
     "s.txt: line 3: 'contxt' read as context"),
    ("s.md", "**Weight**\n| 1 | 0 |\n", {"weights": [1, 0]},
     "s.md: line 1: 'Weight' read as weights"),
    ("wieghts.csv", "1,0\n", {"weights": [1, 0]}, "wieghts.csv read as weights"),
])
def test_a_step_name_misspelled_is_read_as_that_step_and_noted(tmp_path, name, text, steps,
                                                                note):
    # as a grader reads it: before, "## wieghts" left the weights unanswered and "contxt:"
    # added its rows to the weights above it
    path = tmp_path / name
    path.write_text(text)
    answers = read_submission(path, {"weights": (2,), "context": (2,)}, "a")
    assert {k: v.tolist() for k, v in answers.steps.items()} == steps
    assert answers.notes == (note,)


def test_json_keys_that_name_no_step_are_left_out_and_a_near_miss_is_read_as_its_step(
        tmp_path):
    # a student's name and notes are no answers; "wieghts" is the weights, as a grader reads it
    path = tmp_path / "s.json"
    path.write_text('{"name": "Zoë", "notes": "took 2 hours", "wieghts": [0.5, 0.5]}')
    answers = read_submission(path, {"weights": (2,), "context": (2,)}, "a")
    assert list(answers.steps) == ["weights"]
    assert answers.notes == ("s.json: 'wieghts' read as weights",)


def test_text_lines_of_the_students_own_working_are_left_out(tmp_path):
    # "exp:" starts rows of its own (the exponentials, not asked), "sum of exp = 2.8" is a
    # remark, "Head 1" separates the heads' rows: none of them is read into the weights
    path = tmp_path / "s.txt"
    path.write_text("weights:\nHead 0\n0.5 0.5\nHead 1\n0.25 0.75\n"
                    "exp:\n2.7 1\nsum of exp = 3.7\n")
    answers = read_submission(path, {"weights": (2, 2)}, "a")
    assert answers.steps["weights"].tolist() == [[0.5, 0.5], [0.25, 0.75]]


def test_answer_words_keep_the_step_and_rows_under_other_labels_are_noted(tmp_path):
    # "Answer:" under a step is the student's way to say "here it is"; rows under a label
    # that names no step are left out and the note says so
    path = tmp_path / "s.txt"
    path.write_text("Step 6: weights\nAnswer:\n0.5 0.5\nSoftmax:\n2.7 1\ncontext:\n1 2\n")
    answers = read_submission(path, {"weights": (2,), "context": (2,)}, "a")
    assert answers.steps["weights"].tolist() == [0.5, 0.5]
    assert answers.steps["context"].tolist() == [1, 2]
    assert answers.notes == ("s.txt: line 5: rows under 'Softmax:' left out: it names no step",)


@pytest.mark.parametrize(("text", "steps"), [
    ('{"weight_sums": [1, 1], "weights": [0.5, 0.5]}', {"weights": [0.5, 0.5]}),
    ("weights:\n0.5 0.5\nWeights sum: 1 1\n", {"weights": [0.5, 0.5]}),
])
def test_a_label_of_more_words_than_a_step_is_not_read_as_that_step(tmp_path, text, steps):
    path = tmp_path / ("s.json" if text.startswith("{") else "s.txt")
    path.write_text(text)
    answers = read_submission(path, {"weights": (2,)}, "a")
    assert {k: v.tolist() for k, v in answers.steps.items()} == steps
