"""Renderers read the Trace and never compute: labels, indices and numbers as the trace has them."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from rich.console import Console

from attncli import attend, load_problem
from attncli.render.csv import render_csv
from attncli.render.json import render_json
from attncli.render.markdown import render_markdown
from attncli.render.table import print_tables


def _multihead(query: str | None = None):
    trace = attend(load_problem(sample="multihead-einsum"))
    return trace if query is None else trace.at_query(trace.query_index(query))


def test_csv_after_query_keeps_head_column_and_the_real_row_index():
    full = _multihead()
    rows = list(csv.DictReader(io.StringIO(render_csv(_multihead("Marcello"), 6))))
    weights = [r for r in rows if r["step"] == "weights"]
    assert len(weights) == 4 * 5  # 4 heads × 5 keys, one query
    assert {r["head"] for r in weights} == {"0", "1", "2", "3"}
    assert {r["row"] for r in weights} == {"3"} and {r["row_label"] for r in weights} == {
        "Marcello"}
    cell = next(r for r in weights if r["head"] == "2" and r["column_label"] == "is")
    assert float(cell["value"]) == round(full["weights"][2, 3, 2], 6)


def test_json_after_query_is_the_row():
    full = _multihead()
    document = json.loads(render_json(_multihead("Marcello"), None))
    assert document["query"] == "Marcello"
    assert document["steps"]["weights"]["shape"] == [4, 5]
    assert document["steps"]["weights"]["axes"] == ["head", "key"]
    np.testing.assert_array_equal(document["steps"]["weights"]["data"], full["weights"][:, 3])
    assert document["steps"]["keys"]["shape"] == [4, 5, 2]  # keys have no query axis


def test_json_precision_rounds_and_masked_scores_are_null():
    trace = attend(load_problem(sample="your-journey-causal"))
    document = json.loads(render_json(trace, 2))
    assert document["steps"]["masked_scores"]["data"][0] == [1.0, None, None, None, None, None]
    # journey·Your = 0.9544 → 0.95 at two decimals
    assert document["steps"]["masked_scores"]["data"][1][0] == 0.95


def test_markdown_has_a_table_per_head():
    text = render_markdown(_multihead(), 3)
    assert text.count("### weights: `weights = softmax(scaled_scores)`") == 1
    # queries, keys, values, scores, scaled_scores, weights, head_context: 7 steps × 4 heads
    assert text.count("*head ") == 4 * 7
    assert "| query \\\\ key | My | name | is | Marcello | Politi |" in text


def test_table_labels_rows_and_columns_with_tokens_and_stresses_no_numbers_away():
    console = Console(record=True, file=io.StringIO(), width=200, color_system=None)
    print_tables(attend(load_problem(sample="hello-shiny-sun")), console, precision=4)
    text = console.export_text()
    assert "weights  weights = softmax(scores)  shape (3, 3)" in text
    # the shiny row of the weights, with its largest entry (0.4063) present as a plain number
    assert "│ shiny       │ 0.2291 │ 0.4063 │ 0.3646 │" in text
    assert "conventions" in text


def test_wide_tables_split_into_column_blocks_instead_of_cutting_numbers():
    from attncli.problem import Problem

    rng = np.random.default_rng(3)
    trace = attend(Problem.from_mapping({"x": rng.normal(size=(12, 6))}, "wide"))
    console = Console(record=True, file=io.StringIO(), width=80, color_system=None)
    print_tables(trace.at_query(0), console, precision=4)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "columns 0–6 of 12" in text and "columns 7–11 of 12" in text
    for value in trace["weights"][0]:  # every weight of the row is printed whole
        assert f"{value:.4f}" in text


def test_very_wide_tables_show_what_fits_and_say_how_many_columns_are_elided():
    from attncli.problem import Problem

    rng = np.random.default_rng(3)
    trace = attend(Problem.from_mapping({"x": rng.normal(size=(40, 6))}, "wide"))
    console = Console(record=True, file=io.StringIO(), width=80, color_system=None)
    print_tables(trace.at_query(0), console, precision=4)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    # 80 columns hold the row label and 7 weights (as above); 40 − 7 = 33 elided
    assert "columns 0–6 of 40" in text
    assert ("… 33 more key columns not shown (of 40): see them all with --format csv or "
            "--plot FILE") in " ".join(text.split())
    for value in trace["weights"][0][:7]:
        assert f"{value:.4f}" in text
