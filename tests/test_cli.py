"""The command line end to end, through typer's CliRunner: input sources × output formats, with
the numbers of the seed documents' worked examples checked in every format."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import attncli
from attncli import attend, load_problem
from attncli.cli import app
from attncli.config import from_variant
from attncli.samples import sample_path
from attncli.trace import STEP_NAMES

runner = CliRunner()

# ---------------------------------------------------------------------------------------------
# Reference numbers, by hand.
#
# hello-shiny-sun (seed 000, Q = K = V = x, unscaled dot product):
#   Hello = [0.34, 0.22, 0.54], shiny = [0.53, 0.34, 0.98], sun = [0.29, 0.54, 0.93]
#   shiny·Hello = 0.53*0.34 + 0.34*0.22 + 0.98*0.54 = 0.1802 + 0.0748 + 0.5292 = 0.7842
#   shiny·shiny = 0.53*0.53 + 0.34*0.34 + 0.98*0.98 = 0.2809 + 0.1156 + 0.9604 = 1.3569
#   shiny·sun   = 0.53*0.29 + 0.34*0.54 + 0.98*0.93 = 0.1537 + 0.1836 + 0.9114 = 1.2487
#   softmax: e^0.7842 = 2.1907, e^1.3569 = 3.8842, e^1.2487 = 3.4859, sum 9.5608
#            → weights[shiny] = [0.22913, 0.40626, 0.36460]
#   context[shiny] = 0.22913*Hello + 0.40626*shiny + 0.36460*sun
#            = [0.07790 + 0.21532 + 0.10573, 0.05041 + 0.13813 + 0.19688,
#               0.12373 + 0.39814 + 0.33908] = [0.39896, 0.38542, 0.86095]
HELLO_SCORES_SHINY = [0.7842, 1.3569, 1.2487]
HELLO_WEIGHTS_SHINY = [0.22913359, 0.40626482, 0.36460159]
HELLO_CONTEXT_SHINY = [0.39896024, 0.38542429, 0.86095114]
HELLO_TOKENS = ["Hello", "shiny", "sun"]
HELLO_X = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]

# three-inputs (seed 004, Q = x W_q, K = x W_k, V = x W_v, unscaled dot product):
#   x1 = [1, 0, 1, 0] → q1 = x1 W_q = row0 + row2 of W_q = [1, 0, 1] + [0, 0, 1] = [1, 0, 2]
#   keys: x1 W_k = [0, 0, 1] + [0, 1, 0] = [0, 1, 1]
#         x2 W_k = 2*[1, 1, 0] + 2*[1, 1, 0] = [4, 4, 0]
#         x3 W_k = sum of the rows of W_k = [2, 3, 1]
#   scores row 1 = [q1·k1, q1·k2, q1·k3] = [0 + 0 + 2, 4 + 0 + 0, 2 + 0 + 2] = [2, 4, 4]
#   softmax([2, 4, 4]) = [1, e², e²] / (1 + 2e²) = [1, 7.3891, 7.3891] / 15.7781
#            = [0.0634, 0.4683, 0.4683]
#   values: x1 W_v = [1, 2, 3], x2 W_v = [2, 8, 0], x3 W_v = [2, 6, 3]
#   context row 1 = 0.0634*[1, 2, 3] + 0.4683*[2, 8, 0] + 0.4683*[2, 6, 3]
#            = [1.9366, 6.6831, 1.5951]
THREE_WEIGHTS_1 = [0.06337894, 0.46831053, 0.46831053]
THREE_CONTEXT_1 = [1.93662106, 6.68310531, 1.59506841]
THREE_TOKENS = ["Input 1", "Input 2", "Input 3"]
THREE_X = [[1, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]]
THREE_WQ = [[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]]
THREE_WK = [[0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]]
THREE_WV = [[0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]]

SAMPLES = ["hello-shiny-sun", "multihead-einsum", "three-inputs", "translation-cross",
           "your-journey-causal"]
FORMATS = ["table", "json", "csv", "markdown"]


def invoke(args: list[str], input: str | None = None, **kwargs):
    """Run the CLI; wide terminal so that rich never wraps a table title."""
    return runner.invoke(app, args, input=input, env={"COLUMNS": "200"}, **kwargs)


def ok(args: list[str], input: str | None = None):
    result = invoke(args, input)
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    assert "attncli: error" not in result.stderr
    return result


def write_csv(path: Path, rows, labels=None, header=None) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if header is not None:
            writer.writerow(header)
        for i, row in enumerate(rows):
            writer.writerow(([labels[i]] if labels else []) + list(row))
    return str(path)


# ---------------------------------------------------------------------------------------------
# Pulling one row of one step out of each output format


def _floats(cells: list[str]) -> list[float]:
    return [float(c) for c in cells]


def row_of(fmt: str, text: str, step: str, label: str) -> list[float]:
    """The numbers of the row labelled ``label`` in ``step`` of the rendered output."""
    if fmt == "json":
        doc = json.loads(text)
        row = doc["tokens"].index(label)
        return doc["steps"][step]["data"][row]
    if fmt == "csv":
        records = list(csv.DictReader(io.StringIO(text)))
        cells = [r for r in records if r["step"] == step and r["row_label"] == label]
        assert cells, f"no {step} row {label!r} in the CSV"
        cells.sort(key=lambda r: int(r["column"]))
        return _floats([r["value"] for r in cells])
    lines = text.splitlines()
    if fmt == "markdown":
        start = next(i for i, line in enumerate(lines) if line.startswith(f"### {step}:"))
        for line in lines[start + 1:]:
            if line.startswith("### "):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == label:
                return _floats(cells[1:])
        raise AssertionError(f"no {step} row {label!r} in the markdown")
    # table: the title line starts with the step name; rows are "│ label │ n │ n │"
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{step} "))
    in_table = False
    for line in lines[start + 1:]:
        if not line.startswith(("│", "┃", "┏", "┡", "└", "┗")):
            if in_table:
                break
            continue  # a caption between the title and the table
        in_table = True
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if line.startswith("│") and cells[0] == label:
            return _floats(cells[1:])
    raise AssertionError(f"no {step} row {label!r} in the table output")


# ---------------------------------------------------------------------------------------------
# Input sources × formats


def _hello_source(kind: str, tmp_path: Path) -> tuple[list[str], str | None]:
    path = sample_path("hello-shiny-sun")
    if kind == "sample":
        return ["--sample", "hello-shiny-sun"], None
    if kind == "file":
        return [str(path)], None
    if kind == "stdin":
        return ["-"], path.read_text(encoding="utf-8")
    if kind == "csv-with-header":
        return ["--x", write_csv(tmp_path / "x.csv", HELLO_X, HELLO_TOKENS,
                                 header=["token", "d0", "d1", "d2"])], None
    if kind == "csv-file-argument":
        # a CSV given as the problem FILE is x; its first column gives the tokens
        return [write_csv(tmp_path / "x.csv", HELLO_X, HELLO_TOKENS)], None
    if kind == "npz":
        np.savez(tmp_path / "p.npz", x=np.array(HELLO_X), tokens=np.array(HELLO_TOKENS))
        return [str(tmp_path / "p.npz")], None
    raise AssertionError(kind)


HELLO_SOURCES = ["sample", "file", "stdin", "csv-with-header", "csv-file-argument", "npz"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source", HELLO_SOURCES)
def test_hello_shiny_sun_every_source_and_format(source, fmt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, stdin = _hello_source(source, tmp_path)
    result = ok(["compute", *args, "--format", fmt, "--precision", "6"], stdin)
    tol = 1e-12 if fmt == "json" else 6e-7  # six decimals everywhere but full-precision JSON
    assert row_of(fmt, result.stdout, "scores", "shiny") == pytest.approx(HELLO_SCORES_SHINY,
                                                                          abs=tol)
    assert row_of(fmt, result.stdout, "weights", "shiny") == pytest.approx(HELLO_WEIGHTS_SHINY,
                                                                           abs=6e-7)
    assert row_of(fmt, result.stdout, "context", "shiny") == pytest.approx(HELLO_CONTEXT_SHINY,
                                                                           abs=6e-7)
    # the worked example, to the digits the seed prints
    assert row_of(fmt, result.stdout, "context", "shiny") == pytest.approx(
        [0.39896, 0.38542, 0.86095], abs=1e-5)


def _three_source(kind: str, tmp_path: Path) -> tuple[list[str], str | None]:
    path = sample_path("three-inputs")
    if kind == "sample":
        return ["--sample", "three-inputs"], None
    if kind == "file":
        return [str(path)], None
    if kind == "stdin":
        return ["-"], path.read_text(encoding="utf-8")
    if kind == "per-key-csv":
        # no config in CSV files: the unscaled score is asked for with --no-scale
        return ["--x", write_csv(tmp_path / "x.csv", THREE_X, THREE_TOKENS),
                "--wq", write_csv(tmp_path / "wq.csv", THREE_WQ),
                "--wk", write_csv(tmp_path / "wk.csv", THREE_WK, header=["k0", "k1", "k2"]),
                "--wv", write_csv(tmp_path / "wv.csv", THREE_WV),
                "--no-scale"], None
    if kind == "per-key-set":
        np.save(tmp_path / "wq.npy", np.array(THREE_WQ, dtype=float))
        (tmp_path / "wk.json").write_text(json.dumps(THREE_WK), encoding="utf-8")
        return ["--x", write_csv(tmp_path / "x.csv", THREE_X, THREE_TOKENS),
                "--set", f"W_q={tmp_path / 'wq.npy'}", "--set", f"W_k={tmp_path / 'wk.json'}",
                "--set", f"W_v={write_csv(tmp_path / 'wv.csv', THREE_WV)}",
                "--score", "dot"], None
    raise AssertionError(kind)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source", ["sample", "file", "stdin", "per-key-csv", "per-key-set"])
def test_three_inputs_every_source_and_format(source, fmt, tmp_path):
    args, stdin = _three_source(source, tmp_path)
    result = ok(["compute", *args, "--format", fmt, "--precision", "6"], stdin)
    assert row_of(fmt, result.stdout, "scores", "Input 1") == pytest.approx([2, 4, 4], abs=1e-9)
    assert row_of(fmt, result.stdout, "weights", "Input 1") == pytest.approx(THREE_WEIGHTS_1,
                                                                             abs=6e-7)
    assert row_of(fmt, result.stdout, "context", "Input 1") == pytest.approx(THREE_CONTEXT_1,
                                                                             abs=6e-7)
    assert row_of(fmt, result.stdout, "weights", "Input 1") == pytest.approx(
        [0.0634, 0.4683, 0.4683], abs=1e-4)
    assert row_of(fmt, result.stdout, "context", "Input 1") == pytest.approx(
        [1.9366, 6.6831, 1.5951], abs=1e-4)


def test_options_override_the_config_in_the_file():
    # three-inputs says score "dot"; --score scaled_dot wins: softmax([2, 4, 4] / √3)
    # = softmax([1.1547, 2.3094, 2.3094]) = [e^-1.1547, 1, 1] / (2 + 0.3151)
    # = [0.1361, 0.4319, 0.4319]
    result = ok(["compute", "--sample", "three-inputs", "--score", "scaled_dot", "--json"])
    doc = json.loads(result.stdout)
    assert doc["config"]["score"] == "scaled_dot"
    assert doc["config"]["scale"] == pytest.approx(1 / math.sqrt(3))
    assert doc["steps"]["scaled_scores"]["data"][0] == pytest.approx(
        [2 / math.sqrt(3), 4 / math.sqrt(3), 4 / math.sqrt(3)])
    assert doc["steps"]["weights"]["data"][0] == pytest.approx([0.1361, 0.4319, 0.4319],
                                                               abs=1e-4)


def test_option_files_override_keys_of_the_problem_file(tmp_path):
    # W_v = identity-like 4x3 replaces the file's W_v: values become x[:, :3]
    wv = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    result = ok(["compute", str(sample_path("three-inputs")), "--wv",
                 write_csv(tmp_path / "wv.csv", wv), "--json", "--steps", "values,context"])
    doc = json.loads(result.stdout)
    assert doc["steps"]["values"]["data"] == [[1, 0, 1], [0, 2, 0], [1, 1, 1]]
    # context row 1 = 0.0634*[1, 0, 1] + 0.4683*[0, 2, 0] + 0.4683*[1, 1, 1]
    assert doc["steps"]["context"]["data"][0] == pytest.approx(
        [0.06338 + 0.46831, 2 * 0.46831 + 0.46831, 0.06338 + 0.46831], abs=1e-4)


# ---------------------------------------------------------------------------------------------
# JSON output


def _library_trace(sample: str):
    problem = load_problem(sample=sample)
    config = dict(problem.config)
    return attend(problem, from_variant(config.pop("variant", None), **config))


@pytest.mark.parametrize("sample", SAMPLES)
def test_json_round_trip_matches_the_library(sample):
    result = ok(["compute", "--sample", sample, "--format", "json"])
    doc = json.loads(result.stdout)
    trace = _library_trace(sample)
    names = list(doc["steps"])
    assert names == trace.names()
    assert names == [n for n in STEP_NAMES if n in names]  # pipeline order
    assert {"queries", "keys", "values", "scores", "weights", "context"} <= set(names)
    for name, entry in doc["steps"].items():
        expected = trace[name]
        assert entry["shape"] == list(expected.shape)
        assert len(entry["axes"]) == len(entry["shape"])
        assert entry["formula"] == trace.step(name).formula
        data = np.array(entry["data"], dtype=object)
        assert data.shape == tuple(entry["shape"]), name
        finite = np.isfinite(expected)
        got = np.where(data == None, -np.inf, data).astype(float)  # noqa: E711
        np.testing.assert_array_equal(got[~finite], expected[~finite])
        np.testing.assert_allclose(got[finite], expected[finite], rtol=0, atol=1e-15)
    assert doc["tokens"] == trace.query_tokens
    assert doc["query"] is None
    assert doc["backend"] == "numpy" and doc["device"] == "cpu" and doc["dtype"] == "float64"
    assert doc["warnings"] == []
    assert "softmax" in doc["conventions"]
    assert all(isinstance(v, str) and v for v in doc["conventions"].values())


def test_json_step_shapes_of_the_multihead_sample():
    doc = json.loads(ok(["compute", "--sample", "multihead-einsum", "--json"]).stdout)
    steps = doc["steps"]
    # 5 tokens, 4 heads of width 2, W_o 8x8
    assert steps["queries"]["shape"] == [4, 5, 2]
    assert steps["queries"]["axes"] == ["head", "query", "dim"]
    assert steps["weights"]["shape"] == [4, 5, 5]
    assert steps["head_context"]["shape"] == [4, 5, 2]
    assert steps["context"]["shape"] == [5, 8]
    assert steps["output"]["shape"] == [5, 8]
    assert doc["config"]["heads"] == 4
    for head in steps["weights"]["data"]:
        for row in head:
            assert sum(row) == pytest.approx(1.0)


def test_json_alias_equals_format_json():
    a = ok(["compute", "--sample", "hello-shiny-sun", "--json"]).stdout
    b = ok(["compute", "--sample", "hello-shiny-sun", "--format", "json"]).stdout
    assert json.loads(a) == json.loads(b)


def test_json_precision_rounds():
    doc = json.loads(ok(["compute", "--sample", "hello-shiny-sun", "--json",
                         "--precision", "3"]).stdout)
    assert doc["steps"]["context"]["data"][1] == [0.399, 0.385, 0.861]


def test_query_by_token_narrows_to_one_row():
    doc = json.loads(ok(["compute", "--sample", "hello-shiny-sun", "--json",
                         "--query", "shiny"]).stdout)
    assert doc["query"] == "shiny"
    weights = doc["steps"]["weights"]
    assert weights["shape"] == [3]
    assert weights["axes"] == ["key"]
    assert weights["data"] == pytest.approx(HELLO_WEIGHTS_SHINY, abs=1e-8)
    assert doc["steps"]["context"]["shape"] == [3]
    assert doc["steps"]["context"]["data"] == pytest.approx(HELLO_CONTEXT_SHINY, abs=1e-8)
    # keys and values have no query axis: they stay whole
    assert doc["steps"]["keys"]["shape"] == [3, 3]


def test_query_by_index_equals_query_by_token():
    by_token = json.loads(ok(["compute", "--sample", "hello-shiny-sun", "--json",
                              "--query", "shiny"]).stdout)
    by_index = json.loads(ok(["compute", "--sample", "hello-shiny-sun", "--json",
                              "--query", "1"]).stdout)
    assert by_index == by_token
    assert len(by_index["steps"]["weights"]["data"]) == 3


def test_query_in_text_formats_labels_the_row():
    table = ok(["compute", "--sample", "hello-shiny-sun", "--query", "shiny",
                "--steps", "context", "--precision", "5"]).stdout
    assert row_of("table", table, "context", "shiny") == pytest.approx(
        [0.39896, 0.38542, 0.86095], abs=1e-5)
    text = ok(["compute", "--sample", "hello-shiny-sun", "--query", "shiny", "--format", "csv",
               "--steps", "weights", "--precision", "4"]).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["row_label"] for r in rows] == ["shiny"] * 3
    assert [r["column_label"] for r in rows] == HELLO_TOKENS
    assert [r["value"] for r in rows] == ["0.2291", "0.4063", "0.3646"]


def test_steps_keeps_only_the_named_steps_in_pipeline_order():
    doc = json.loads(ok(["compute", "--sample", "hello-shiny-sun", "--json",
                         "--steps", "weights,context"]).stdout)
    assert list(doc["steps"]) == ["weights", "context"]
    doc = json.loads(ok(["compute", "--sample", "hello-shiny-sun", "--json",
                         "--steps", "context, weights"]).stdout)
    assert list(doc["steps"]) == ["weights", "context"]
    assert doc["steps"]["context"]["data"][1] == pytest.approx(HELLO_CONTEXT_SHINY, abs=1e-8)


@pytest.mark.parametrize("args, step, reason", [
    (["--sample", "hello-shiny-sun"], "output", "there is no W_o"),
    (["--sample", "multihead-einsum", "--no-project"], "output", "--no-project leaves W_o out"),
    (["--sample", "hello-shiny-sun"], "masked_scores", "nothing is masked"),
    (["--sample", "hello-shiny-sun"], "scaled_scores", "multiplied by 1"),
    (["--sample", "hello-shiny-sun"], "dropped_weights", "no dropout"),
    (["--sample", "hello-shiny-sun"], "head_context", "one head"),
])
def test_steps_not_computed_in_this_run_are_an_error_with_the_reason(args, step, reason,
                                                                      tmp_path):
    # once a warning and a run without the step (exit 0); -o FILE is not written either
    target = tmp_path / "out.json"
    result = invoke(["compute", *args, "--steps", f"weights,{step}", "-o", str(target)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"attncli: error: --steps {step}: not computed in this run: ")
    assert reason in result.stderr
    assert not target.exists()


# ---------------------------------------------------------------------------------------------
# CSV, markdown and table formats


def test_csv_format_columns_and_values():
    text = ok(["compute", "--sample", "hello-shiny-sun", "--format", "csv",
               "--precision", "4"]).stdout
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert header == ["step", "batch", "head", "row", "row_label", "column", "column_label",
                      "value"]
    rows = list(reader)
    assert all(len(r) == 8 for r in rows)
    # 6 steps (queries, keys, values, scores, weights, context), 3 × 3 numbers each
    assert len(rows) == 6 * 9
    assert [r[0] for r in rows[::9]] == ["queries", "keys", "values", "scores", "weights",
                                         "context"]
    assert ["weights", "", "", "1", "shiny", "0", "Hello", "0.2291"] in rows
    assert ["context", "", "", "1", "shiny", "2", "2", "0.8610"] in rows
    assert ["scores", "", "", "1", "shiny", "0", "Hello", "0.7842"] in rows


def test_csv_format_keeps_full_precision_unless_precision_is_given():
    # CSV is for machines, as JSON: every digit of the float64 (it once rounded to 4 decimals)
    text = ok(["compute", "--sample", "hello-shiny-sun", "--format", "csv",
               "--steps", "weights"]).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    shiny = [float(r["value"]) for r in rows if r["row"] == "1"]
    # softmax of the scores worked above, by numpy here: e^s / Σ e^s
    scores = np.array(HELLO_X) @ np.array(HELLO_X)[1]
    exact = np.exp(scores) / np.exp(scores).sum()
    np.testing.assert_allclose(shiny, exact, rtol=1e-14)
    np.testing.assert_allclose(shiny, HELLO_WEIGHTS_SHINY, atol=1e-8)
    text = ok(["compute", "--sample", "hello-shiny-sun", "--format", "csv", "--steps",
               "weights", "--precision", "2"]).stdout
    assert [r["value"] for r in csv.DictReader(io.StringIO(text)) if r["row"] == "1"] == \
        ["0.23", "0.41", "0.36"]


def test_csv_format_with_heads_and_masked_scores():
    text = ok(["compute", "--sample", "multihead-einsum", "--format", "csv",
               "--steps", "weights"]).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 * 5 * 5
    assert {r["head"] for r in rows} == {"0", "1", "2", "3"}
    assert {r["batch"] for r in rows} == {""}
    text = ok(["compute", "--sample", "your-journey-causal", "--format", "csv",
               "--steps", "masked_scores"]).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    above = [r for r in rows if int(r["column"]) > int(r["row"])]
    assert above and all(r["value"] == "-inf" for r in above)
    assert all(float(r["value"]) > 0 for r in rows if int(r["column"]) <= int(r["row"]))


def test_markdown_has_a_table_per_step():
    text = ok(["compute", "--sample", "hello-shiny-sun", "--format", "markdown"]).stdout
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert headings[:6] == [
        "### queries: `queries = x`",
        "### keys: `keys = x`",
        "### values: `values = x`",
        "### scores: `scores = queries keysᵀ`",
        "### weights: `weights = softmax(scores)`",
        "### context: `context = weights values`",
    ]
    assert headings[6:] == ["### conventions"]
    assert text.count("| query \\\\ key | Hello | shiny | sun |") == 2  # scores, weights
    assert text.count("|---|---:|---:|---:|") == 6
    assert "| shiny | 0.2291 | 0.4063 | 0.3646 |" in text


def test_markdown_has_a_table_per_head():
    text = ok(["compute", "--sample", "multihead-einsum", "--format", "markdown",
               "--steps", "weights"]).stdout
    assert [f"*head {h}*" in text for h in range(4)] == [True] * 4
    assert text.count("| query \\\\ key | My | name | is | Marcello | Politi |") == 4


def test_table_output_has_tokens_and_formula_titles():
    text = ok(["compute", "--sample", "hello-shiny-sun"]).stdout
    for token in HELLO_TOKENS:
        assert token in text
    for title in ["queries  queries = x", "scores  scores = queries keysᵀ",
                  "weights  weights = softmax(scores)", "context  context = weights values"]:
        assert title in text
    assert "\x1b[" not in text  # not a terminal: no colour codes
    assert row_of("table", text, "weights", "shiny") == pytest.approx([0.2291, 0.4063, 0.3646],
                                                                      abs=1e-9)
    assert "conventions" in text


# ---------------------------------------------------------------------------------------------
# -o FILE


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file_gets_the_text_and_stdout_stays_empty(fmt, tmp_path):
    target = tmp_path / f"out.{fmt}"
    result = ok(["compute", "--sample", "hello-shiny-sun", "--format", fmt, "-o", str(target),
                 "--precision", "6"])
    assert result.stdout == ""
    text = target.read_text(encoding="utf-8")
    assert row_of(fmt, text, "context", "shiny") == pytest.approx(HELLO_CONTEXT_SHINY, abs=6e-7)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left
    if fmt != "table":
        stdout = ok(["compute", "--sample", "hello-shiny-sun", "--format", fmt,
                     "--precision", "6"]).stdout
        assert text == stdout
    else:
        assert "\x1b[" not in text
        assert "context  context = weights values" in text


def test_output_file_replaces_an_existing_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old contents that are longer than nothing\n" * 1000, encoding="utf-8")
    ok(["compute", "--sample", "hello-shiny-sun", "--json", "--output", str(target)])
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert doc["steps"]["context"]["data"][1] == pytest.approx(HELLO_CONTEXT_SHINY)


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_run_leaves_the_output_file_untouched(fmt, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("precious\n", encoding="utf-8")
    result = invoke(["compute", "--sample", "hello-shiny-sun", "--format", fmt,
                     "--query", "moon", "-o", str(target)])
    assert result.exit_code == 2
    assert target.read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert result.stdout == ""


@pytest.mark.parametrize("extension, fmt", [(".json", "json"), (".csv", "csv"),
                                            (".md", "markdown"), (".py", "torch")])
def test_the_output_files_extension_picks_the_format(extension, fmt, tmp_path):
    """Without --format, -o steps.EXT writes what --format FMT prints."""
    target = tmp_path / f"steps{extension}"
    ok(["compute", "--sample", "three-inputs", "-o", str(target)])
    stdout = ok(["compute", "--sample", "three-inputs", "--format", fmt]).stdout
    assert target.read_text(encoding="utf-8") == stdout


def test_the_output_files_extension_picks_npy_and_npz(tmp_path):
    ok(["compute", "--sample", "three-inputs", "--steps", "weights", "-o",
        str(tmp_path / "w.npy")])
    np.testing.assert_allclose(np.load(tmp_path / "w.npy")[0], THREE_WEIGHTS_1, atol=1e-8)
    ok(["compute", "--sample", "three-inputs", "-o", str(tmp_path / "all.npz")])
    with np.load(tmp_path / "all.npz") as archive:
        np.testing.assert_allclose(archive["weights"][0], THREE_WEIGHTS_1, atol=1e-8)


def test_messages_stay_on_one_line_with_control_characters_escaped(tmp_path):
    """A file name with a newline, a tab and an escape sequence: the error names it on one
    line, each control character as its Python escape, nothing sent to the terminal raw."""
    result = invoke(["compute", "two\nlines\t\x1b[31m.json"])
    assert result.exit_code == 2
    assert result.stderr == "attncli: error: two\\nlines\\t\\x1b[31m.json: no such file\n"


# ---------------------------------------------------------------------------------------------
# Variants and masks


def test_variant_simple_ignores_the_projections():
    # Q = K = V = x. x1 = [1, 0, 1, 0], x2 = [0, 2, 0, 2], x3 = [1, 1, 1, 1]:
    # scores row 1 = [x1·x1, x1·x2, x1·x3] = [2, 0, 2] → softmax = [e², 1, e²] / (2e² + 1)
    #              = [0.4683, 0.0634, 0.4683]
    # context row 1 = 0.4683*x1 + 0.0634*x2 + 0.4683*x3
    #              = [0.9366, 0.1268 + 0.4683, 0.9366, 0.1268 + 0.4683] = [0.9366, 0.5951, ...]
    doc = json.loads(ok(["compute", "--sample", "three-inputs", "--variant", "simple",
                         "--json"]).stdout)
    steps = doc["steps"]
    assert steps["queries"]["formula"] == "queries = x"
    assert steps["queries"]["data"] == THREE_X
    assert steps["scores"]["data"][0] == [2, 0, 2]
    assert steps["weights"]["data"][0] == pytest.approx([0.46831053, 0.06337894, 0.46831053])
    assert steps["context"]["shape"] == [3, 4]  # the width of x, not of W_v
    assert steps["context"]["data"][0] == pytest.approx([0.9366, 0.5951, 0.9366, 0.5951],
                                                        abs=1e-4)
    assert doc["config"]["project"] is False


def test_causal_zeroes_the_weights_above_the_diagonal():
    # row shiny sees Hello and shiny only: softmax([0.7842, 1.3569])
    # = [1, e^0.5727] / (1 + 1.7730) = [0.3606, 0.6394]
    doc = json.loads(ok(["compute", "--sample", "hello-shiny-sun", "--causal",
                         "--json"]).stdout)
    weights = np.array(doc["steps"]["weights"]["data"])
    assert np.all(weights[np.triu_indices(3, 1)] == 0.0)
    assert weights.sum(axis=1) == pytest.approx([1, 1, 1])
    assert weights[0] == pytest.approx([1, 0, 0])
    assert weights[1] == pytest.approx([0.3606, 0.6394, 0], abs=1e-4)
    assert weights[2] == pytest.approx([0.22825242, 0.38743657, 0.38431101])  # no mask on row 3
    masked = doc["steps"]["masked_scores"]["data"]
    assert masked[0] == [pytest.approx(0.4556), None, None]
    assert masked[1] == [pytest.approx(0.7842), pytest.approx(1.3569), None]
    # context of Hello is Hello itself
    assert doc["steps"]["context"]["data"][0] == pytest.approx(HELLO_X[0])
    assert doc["config"]["causal"] is True


def test_causal_sample_from_its_config():
    doc = json.loads(ok(["compute", "--sample", "your-journey-causal", "--json",
                         "--steps", "weights"]).stdout)
    weights = np.array(doc["steps"]["weights"]["data"])
    assert weights.shape == (6, 6)
    assert np.all(np.triu(weights, 1) == 0.0)
    assert np.all(weights[np.tril_indices(6)] > 0.0)
    assert weights.sum(axis=1) == pytest.approx(np.ones(6))
    # "journey" sees "Your" and itself: x1·x0 = 0.55*0.43 + 0.87*0.15 + 0.66*0.89 = 0.9544,
    # x1·x1 = 0.3025 + 0.7569 + 0.4356 = 1.495 → softmax = [1, e^0.5406] / (1 + 1.7170)
    assert weights[1, :2] == pytest.approx([0.36805, 0.63195], abs=1e-5)


def test_cross_attention_uses_memory_tokens():
    doc = json.loads(ok(["compute", "--sample", "translation-cross", "--json",
                         "--steps", "weights"]).stdout)
    assert doc["tokens"] == ["Can", "you", "help", "me"]
    assert doc["key_tokens"] == ["Kannst", "du", "mir", "helfen"]
    assert doc["steps"]["weights"]["shape"] == [4, 4]


# ---------------------------------------------------------------------------------------------
# Other commands


@pytest.mark.parametrize("fmt", FORMATS)
def test_separate_key_and_value_sequences_in_every_format(fmt, tmp_path):
    # x = [1, 0]; keys a = [1, 0], b = [0, 1]; values [1, 2, 3], [4, 5, 6]: scores [1, 0],
    # weights [e, 1] / (e + 1) = [0.7311, 0.2689], context [1, 2, 3] + 3/(e + 1) = [1.8068,
    # 2.8068, 3.8068] (width 3 from value_memory, keys of width 2)
    (tmp_path / "kv.json").write_text(json.dumps({
        "x": [[1, 0]], "tokens": ["q"], "key_memory": [[1, 0], [0, 1]],
        "value_memory": [[1, 2, 3], [4, 5, 6]], "memory_tokens": ["a", "b"]}), encoding="utf-8")
    result = ok(["compute", str(tmp_path / "kv.json"), "--steps", "weights,context", "--format",
                 fmt, "--precision", "4"])
    assert result.stderr == ""
    assert row_of(fmt, result.stdout, "weights", "q") == pytest.approx([0.7311, 0.2689],
                                                                        abs=1e-4)
    assert row_of(fmt, result.stdout, "context", "q") == pytest.approx(
        [1.8068, 2.8068, 3.8068], abs=1e-4)
    explained = ok(["explain", str(tmp_path / "kv.json"), "--query", "q"]).stdout
    assert "= [1.8068, 2.8068, 3.8068]" in explained


def test_samples_lists_all_five():
    result = ok(["samples"])
    for name in SAMPLES:
        assert name in result.stdout
    assert "Seed 004" in result.stdout


def test_module_version_in_a_subprocess():
    done = subprocess.run([sys.executable, "-m", "attncli", "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"attncli {attncli.__version__}"
    assert done.stderr == ""


def _with_stdout_closed(args: list[str]) -> subprocess.CompletedProcess:
    """The console script with a stdout pipe whose reader has already gone, as in
    `attncli … | true` (or | head -1 once head has its line): every write fails (EPIPE)."""
    import os

    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([str(Path(sys.executable).parent / "attncli"), *args],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False)
    finally:
        os.close(write)


_ANSWERS = Path(__file__).resolve().parent.parent / "samples" / "answers"


@pytest.mark.parametrize(("args", "status"), [
    # the seed's own answers: Pin-Jiun/Machine-Learing-NTU "6.1-Self-Attention" writes Input 1's
    # weight 0.0634 as 0.0, a wrong entry (1); "Hello shiny sun!"'s are all right (0)
    (["check", "--sample", "three-inputs", str(_ANSWERS / "three-inputs.published.json")], 1),
    (["check", "--sample", "three-inputs", str(_ANSWERS / "three-inputs.published.json"),
      "--format", "csv"], 1),
    (["check", "--sample", "three-inputs", str(_ANSWERS / "three-inputs.published.json"),
      "--format", "json"], 1),
    (["check", "--sample", "hello-shiny-sun",
      str(_ANSWERS / "hello-shiny-sun.published.json")], 0),
    # a batch with a missing answers file: its row says so, the status is bad input (2)
    (["check", "--sample", "three-inputs", str(_ANSWERS / "three-inputs.published.json"),
      "missing.json"], 2),
    (["--help"], 0), (["compute", "--help"], 0), (["check", "--help"], 0),
    (["variants", "--help"], 0), (["--version"], 0), (["variants"], 0), (["samples"], 0),
    (["compute", "--sample", "hello-shiny-sun"], 0),
    ([], 2),  # a bare attncli is a usage error that prints the help, pipe or not
])
def test_a_closed_stdout_keeps_the_exit_status(args, status):
    """A pipefail script reads check's verdict whether or not the reader reads to the end; the
    help or a table cut short is no mismatch (1): rich and Click exit 1 on a broken pipe."""
    done = _with_stdout_closed(args)
    assert done.returncode == status, done.stderr
    assert done.stderr == ""


def test_no_input_is_an_error_with_a_hint():
    result = invoke(["compute"])
    assert result.exit_code == 2
    assert "--sample" in result.stderr
    assert result.stdout == ""


def test_variants_lists_each_preset_with_its_formula_options_and_source():
    result = ok(["variants", "--json"])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["simple", "unscaled", "scaled", "causal", "multihead", "cross",
                          "local", "hard", "additive", "general", "gqa", "rope", "alibi",
                          "softcap", "sinks", "llama", "mistral", "qwen3", "gemma2", "gpt-oss",
                          "bloom"]
    assert rows["simple"]["options"] == "--no-project --score dot"
    assert rows["local"]["options"] == "--window 1"
    # the documents by title (a user has no "seed 000")
    assert rows["causal"]["source"].startswith(
        "'Attention Mechanisms and Self-Attention in Neural Networks'")
    assert rows["unscaled"]["source"].startswith(
        "'6.1-Self-Attention' (Pin-Jiun, Machine-Learing-NTU)")
    assert not any(re.search(r"seed \d", row["source"]) for row in rows.values())
    # at 80 columns each title's words are whole ('6.1-Self-Attention' was cut with "…")
    narrow = runner.invoke(app, ["variants"], env={"COLUMNS": "80"}).stdout.split("\n", 1)[1]
    assert "…" not in narrow
    words = re.sub(r"[│┃]", " ", narrow).split()
    assert all(word in words for row in rows.values() for word in row["source"].split()
               if "/" not in word)
    # a reference file's path, wider than the column at 80, is folded there, whole at 160
    wide = re.sub(r"[│┃]", " ", runner.invoke(app, ["variants"], env={"COLUMNS": "160"})
                  .stdout).split()
    paths = [word for row in rows.values() for word in row["source"].split() if "/" in word]
    assert "transformers/models/gemma2/modeling_gemma2.py" in paths
    assert all(path in wide for path in paths)
    # the families' settings in attncli's options, under the table
    assert "query_pre_attn_scalar s is --scale s**-0.5" in " ".join(wide)
    assert "--causal --window S−1" in " ".join(wide)
    assert "√d_k" in rows["scaled"]["formula"]
    table = ok(["variants"]).stdout
    for name, row in rows.items():
        assert name in table and row["options"] in table


@pytest.mark.parametrize("name", ["simple", "causal", "local", "hard"])
def test_each_variant_runs_with_the_options_it_lists(name):
    """--variant NAME and the options `attncli variants` lists for it give the same numbers
    (three-inputs' file asks for an unscaled score: --variant scaled sets the defaults back, as
    a named variant replaces the file's config)."""
    rows = {row["name"]: row for row in json.loads(ok(["variants", "--json"]).stdout)}
    by_name = json.loads(ok(["compute", "--sample", "three-inputs", "--variant", name,
                             "--json"]).stdout)
    by_flags = json.loads(ok(["compute", "--sample", "three-inputs", "--variant", "scaled",
                              *rows[name]["options"].split(), "--json"]).stdout)
    assert by_name["steps"]["context"] == by_flags["steps"]["context"]
    assert by_name["config"]["score"] == by_flags["config"]["score"]


@pytest.mark.parametrize(("words", "expected"), [
    ("attncli compute --sample hel", ["hello-shiny-sun"]),
    ("attncli compute --variant ca", ["causal"]),
    ("attncli va", ["variants"]),
])
def test_shell_completion_offers_samples_variants_and_commands(words, expected):
    """What bash's completion asks (--install-completion installs the hook that asks it)."""
    env = {**__import__("os").environ, "_ATTNCLI_COMPLETE": "complete_bash",
           "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    script = Path(sys.executable).parent / "attncli"  # the console script: its name keys it
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == expected, done.stderr


# --- help at 80 columns: nothing eaten as markup, nothing cut ---------------------------------

def _help(command: str) -> str:
    """``attncli COMMAND --help`` at 80 columns (the top level's for "")."""
    result = runner.invoke(app, [command, "--help"] if command else ["--help"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    return result.stdout


def _option_help(text: str, flag: str, first_word: str) -> str:
    """The help column of ``flag``'s row in rich's option boxes, its wrapped lines joined: the
    column starts where ``first_word`` does on the flag's line; the row ends at the next
    option (a line with text where the flags are) or at the box's end."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if re.match(rf"│ (\* +| {{0,3}}){re.escape(flag)} ", line))  # not a mention
    flags = lines[start].index(flag)
    column = lines[start].index(f" {first_word}", flags + len(flag)) + 1
    parts = [lines[start][column:]]
    for line in lines[start + 1:]:
        if not line.startswith("│") or line[flags] != " ":
            break
        parts.append(line[column:])
    return " ".join(" ".join(part.rstrip("│ ") for part in parts).split())


def _commands():
    import typer.main

    return typer.main.get_command(app).commands


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_at_80_columns_shows_every_help_text_whole(command):
    """Each option's help and the command's description appear as written: square brackets
    kept ("[plot]", "[default: …]"), no word cut with "…" (the --steps list was
    "queries,keys,values,scores…")."""
    from rich.text import Text

    text = _help(command)
    for param in _commands()[command].params:
        if not getattr(param, "help", None) or not param.opts[0].startswith("-"):
            continue
        written = " ".join(Text.from_markup(param.help).plain.split())
        shown = _option_help(text, param.opts[0], written.split()[0])
        assert shown.startswith(written), (param.opts[0], shown)
    description = Text.from_markup(_commands()[command].help).plain
    assert " ".join(description.split()) in " ".join(text.split())


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_at_80_columns_shows_every_metavar_whole_and_names_every_choice(command):
    """A metavar is never cut across lines: "<simple|unscaled|scaled|ca" / "usal|…>" and
    "<dot|scaled_dot|general|ad" / "ditive>" were; a long choice list goes in the help
    (NAME, then "simple, unscaled, …"), and every choice is named in the metavar or the help."""
    cli = _commands()[command]
    context = cli.context_class(cli, info_name=command)
    lines = _help(command).splitlines()
    for param in cli.params:
        if not param.opts[0].startswith("-") or param.is_flag:
            continue
        metavar = param.make_metavar(context)
        assert any(metavar in line for line in lines), (param.opts[0], metavar)
        for choice in getattr(param.type, "choices", None) or []:
            assert choice in metavar.strip("<>").split("|") or re.search(
                rf"(?<![\w-]){re.escape(choice)}(?![\w-])", param.help), (param.opts[0], choice)


def _alone(lines: list[str], width: int) -> list[tuple[str, str]]:
    """Pairs of lines of wrapped prose where the first word of the second would have fitted at
    the end of the first: a line break that rich's wrap would not have made."""
    return [(line, following) for line, following in zip(lines, lines[1:], strict=False)
            if line.strip() and following.strip() and not following.startswith("  ")
            and len(line.rstrip()) + 1 + len(following.split()[0]) <= width]


@pytest.mark.parametrize("command", ["", *sorted(_commands())])
def test_help_at_80_columns_leaves_no_word_alone_and_names_no_seed_number(command):
    """The description and the commands' one-line descriptions are wrapped by rich, not at a
    docstring's own line ends: top-level help had check's "or" alone on a line, variants'
    "from. A variant" / "is only a preset". The documents are named by title, not as
    "(seed 004)" or "(the seeds)"."""
    text = _help(command)
    lines = text.splitlines()
    panels = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    description = [line[1:] for line in lines[1:panels] if not line.startswith(" Usage")]
    assert _alone(description, 78) == []  # rich pads the description by 1 on either side
    if not command:
        rows = lines[lines.index(next(x for x in lines if "─ Commands ─" in x)) + 1:]
        rows = [row for row in rows[:next(i for i, r in enumerate(rows) if r.startswith("╰"))]]
        column = rows[0].index(rows[0].split()[2])  # where the first row's description starts
        helps = [part for row in rows for part in (
            [row[column:].rstrip("│ ")] if row[1:column].strip() == "" else  # its next line
            ["", row[column:].rstrip("│ ")])]  # a command's first line: a new paragraph
        assert _alone(helps, max(map(len, helps))) == []
    assert not re.search(r"(?i)\bseed (\d|doc)|\bthe seeds\b", text)


def test_help_names_every_step_and_keeps_the_bracketed_texts():
    text = _help("compute")
    steps = _option_help(text, "--steps", "Steps")
    assert steps == "Steps to show, comma-separated: " + ", ".join(STEP_NAMES) + "."
    assert _option_help(text, "--format", "Output").startswith(
        "Output format [default: from -o's extension, else table]: table, json, csv, "
        "markdown; npz or npy, binary")
    assert "(needs pip install 'attncli[plot]')." in _option_help(text, "--plot", "Save")
