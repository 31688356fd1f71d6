"""attncli explain: the arithmetic of one query row, written out as the seeds do it by hand."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import attend, load_problem
from attncli.cli import app
from attncli.config import AttentionConfig
from attncli.errors import InputError
from attncli.explain import Notation, explain
from attncli.problem import Problem
from attncli.render.explain import ExplainFormat, render_explain

runner = CliRunner()


def _text(problem, config=None, **kwargs) -> str:
    trace = attend(problem, config)
    return render_explain(explain(problem, trace, notation=Notation(4), **kwargs),
                          ExplainFormat.text)


def test_seed_000_shiny_written_out():
    text = _text(load_problem(sample="hello-shiny-sun"), query="shiny")
    # the seed's Step 1, with the numbers: 0.53×0.34 + 0.34×0.22 + 0.98×0.54 = 0.7842
    assert "score(shiny, Hello) = 0.53 × 0.34 + 0.34 × 0.22 + 0.98 × 0.54 = 0.7842" in text
    assert "exp(Hello) = e^0.7842 = 2.1907" in text  # e^0.7842 = 2.19065
    assert "sum = 2.1907 + 3.8841 + 3.4858 = 9.5606" in text
    assert "weight(Hello) = 2.1907 / 9.5606 = 0.2291" in text
    assert ("weighted(Hello) = 0.2291 × v(Hello) = 0.2291 × [0.34, 0.22, 0.54] = "
            "[0.0779, 0.0504, 0.1237]") in text
    assert text.rstrip().endswith("= [0.3990, 0.3854, 0.8610]")


def test_key_narrows_to_one_score_per_head():
    text = _text(load_problem(sample="multihead-einsum"), query="name", key="is")
    assert text.count("score(name, is)") == 4  # one per head
    assert "Exponentials" not in text and "context" not in text


def test_seed_004_scaled_masked_and_dropout_sections():
    problem = load_problem(sample="three-inputs")
    text = _text(problem, AttentionConfig(causal=True, dropout=0.5, seed=3), query="Input 2")
    # scores of Input 2's query [2, 2, 2] with keys [0,1,1], [4,4,0], [2,3,1]: 4, 16, 12; / √3
    assert "score(Input 2, Input 2) = 2 × 4 + 2 × 4 + 2 × 0 = 16" in text
    assert "scaled(Input 2) = 16 / √3 = 9.2376" in text
    assert "masked keys get minus infinity before the softmax: Input 3" in text
    assert "Dropout, p = 0.5: kept weights × 1/(1 − p) (Input 2)" in text


def test_hard_additive_and_general_scores():
    rng = np.random.default_rng(5)
    raw = {"x": rng.normal(size=(3, 2)).round(1), "W_a": [[1.0, 0.5], [0.0, 1.0]],
           "U_a": [[0.5, 0.0], [1.0, 1.0]], "v_a": [1.0, -1.0]}
    problem = Problem.from_mapping(raw, "p.json")
    additive = _text(problem, AttentionConfig(score="additive"), query="0")
    assert "score(0, 0) = v_a·tanh([" in additive
    general = _text(Problem.from_mapping({"x": raw["x"], "W_a": raw["W_a"]}, "p.json"),
                    AttentionConfig(score="general", normalize="hard"), query="1")
    assert "W_a)·k" in general and "Weights, hard attention (1)" in general


def test_markdown_and_latex_for_a_write_up():
    problem = load_problem(sample="hello-shiny-sun")
    trace = attend(problem)
    from attncli.explain import LatexNotation

    sections = explain(problem, trace, "shiny", notation=LatexNotation(4))
    markdown = render_explain(sections, ExplainFormat.markdown)
    assert ("- $\\text{score(shiny, Hello)} = 0.53 \\times 0.34 + 0.34 \\times 0.22 + "
            "0.98 \\times 0.54 = 0.7842$") in markdown
    latex = render_explain(sections, ExplainFormat.latex)
    assert "\\begin{align*}" in latex and "\\frac{2.1907}{9.5606} = 0.2291" in latex
    assert "v_{\\text{Hello}}" in latex


def test_unknown_key_is_bad_input():
    problem = load_problem(sample="hello-shiny-sun")
    with pytest.raises(InputError, match="--key 'moon'"):
        explain(problem, attend(problem), "shiny", key="moon")


def test_cli_explain():
    result = runner.invoke(app, ["explain", "--sample", "hello-shiny-sun", "--query", "shiny",
                                 "--key", "sun"])
    assert result.exit_code == 0
    assert "0.53 × 0.29 + 0.34 × 0.54 + 0.98 × 0.93 = 1.2487" in result.stdout
    missing = runner.invoke(app, ["explain", "--sample", "hello-shiny-sun"])
    assert missing.exit_code == 2  # --query is required


def test_inputs_as_written_whatever_the_precision():
    problem = load_problem(sample="hello-shiny-sun")
    text = render_explain(explain(problem, attend(problem), "shiny", notation=Notation(1)),
                          ExplainFormat.text)
    assert "0.53 × 0.34 + 0.34 × 0.22 + 0.98 × 0.54 = 0.8" in text  # 0.7842 at 1 decimal


def test_temperature_and_large_scores_write_the_real_exponent():
    # x = [[10, 9], [8, 7]], T = 2: scores of row 0 are [181, 143]; / 2 = [90.5, 71.5];
    # shifted by the maximum 90.5: exponents 0 and −19
    problem = Problem.from_mapping({"x": [[10, 9], [8, 7]], "tokens": ["a", "b"]}, "p.json")
    text = _text(problem, AttentionConfig(temperature=2.0), query="a")
    assert "Exponentials of the scores / 2 minus their maximum 90.5000" in text
    assert "exp(a) = e^0 = 1" in text and "exp(b) = e^(−19) = 0.0000" in text


def test_latex_escapes_token_labels():
    from attncli.explain import LatexNotation

    problem = Problem.from_mapping({"x": [[1.0, 0.0], [0.0, 1.0]], "tokens": ["50%", "R&D"]},
                                   "p.json")
    latex = render_explain(explain(problem, attend(problem), "50%", notation=LatexNotation(4)),
                           ExplainFormat.latex)
    assert r"v_{\text{50\%}}" in latex and r"v_{\text{R\&D}}" in latex
    assert r"\paragraph{Scores (50\%)}" in latex
    lines = latex.splitlines()
    assert not any(line.rstrip().endswith("\\\\") and following.startswith("\\end{align*}")
                   for line, following in zip(lines, lines[1:], strict=False))


def test_separate_key_and_value_sequences_are_named_as_the_sources():
    # keys from key_memory, values from value_memory (once both written as memory(…), read
    # off the keys' formula). x = [1, 0], W_q = W_k = I, W_v the first two columns of I₃:
    # v(a) = [1, 2, 3] W_v = [1, 2], v(b) = [4, 5]
    problem = Problem.from_mapping({
        "x": [[1.0, 0.0]], "key_memory": [[1.0, 0.0], [0.0, 1.0]],
        "value_memory": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "memory_tokens": ["a", "b"],
        "W_q": np.eye(2), "W_k": np.eye(2), "W_v": np.eye(3)[:, :2]}, "p.json")
    text = _text(problem, query="0")
    assert "k(a) = key_memory(a) W_k = [1, 0]" in text
    assert "v(b) = value_memory(b) W_v = [4, 5]" in text


# --- the text format at the terminal's width ---------------------------------------------

def _explain_cli(env: dict, *args: str) -> str:
    result = runner.invoke(app, ["explain", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_text_wraps_to_columns_at_an_equals_or_a_plus_never_inside_a_number():
    """At COLUMNS=80 no line is wider than 80 (the context line of seed 000 was 117 wide, the
    note 141); the words are those of the unwrapped text, in order, so no number is cut."""
    args = ("--sample", "hello-shiny-sun", "--query", "shiny")
    text = _explain_cli({"COLUMNS": "80"}, *args)
    problem = load_problem(sample="hello-shiny-sun")
    whole = render_explain(explain(problem, attend(problem), "shiny", notation=Notation(4)),
                           ExplainFormat.text)
    assert max(map(len, whole.splitlines())) == 141  # the note, on one line without a width
    assert max(map(len, text.splitlines())) <= 80
    assert text.split() == whole.split()
    # "Attention Mechanisms and Self-Attention in Neural Networks", "shiny": its context is
    # the sum of the weighted values, [0.3990, 0.3854, 0.8610]; 90 columns on one line, so
    # the third term goes on under the "="
    assert ("  context = [0.0779, 0.0504, 0.1237] + [0.2153, 0.1381, 0.3981]\n"
            "          + [0.1057, 0.1969, 0.3391] = [0.3990, 0.3854, 0.8610]\n") in text
    assert ("  (Each result is computed exactly and shown to 4 decimals, so the shown terms\n"
            "   of a sum may differ from the shown total in the last decimal.)\n") in text


@pytest.mark.parametrize("columns", [40, 60])
def test_text_fits_narrower_terminals_with_every_number_whole(columns):
    # multihead-einsum's concatenated heads and output are one 8-vector each, 75 columns: at
    # 40 and 60 they break after a comma, between two numbers
    args = ("--sample", "multihead-einsum", "--query", "name")
    text = _explain_cli({"COLUMNS": str(columns)}, *args)
    problem = load_problem(sample="multihead-einsum")
    whole = render_explain(explain(problem, attend(problem), "name", notation=Notation(4)),
                           ExplainFormat.text)
    assert text.split() == whole.split()
    titles = {section.title for section in explain(problem, attend(problem), "name",
                                                   notation=Notation(4))}
    assert all(len(line) <= columns for line in text.splitlines()
               if line not in titles and set(line) != {"-"})  # titles are not wrapped


def test_text_is_80_wide_when_stdout_is_not_a_terminal():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([str(Path(sys.executable).parent / "attncli"), "explain", "--sample",
                           "hello-shiny-sun", "--query", "shiny"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    args = ("--sample", "hello-shiny-sun", "--query", "shiny")
    assert done.stdout == _explain_cli({"COLUMNS": "80"}, *args)
    # 78 + " of" is 81 columns: a width past 80 takes "of" onto the note's first line
    assert done.stdout != _explain_cli({"COLUMNS": "81"}, *args)
