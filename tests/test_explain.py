"""attncli explain: the arithmetic of one query row, written out as the seeds do it by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import attend, load_problem
from attncli.cli import app
from attncli.config import AttentionConfig
from attncli.errors import InputError
from attncli.explain import (
    Annotated,
    Exp,
    Fraction,
    Group,
    Kind,
    Number,
    Op,
    Product,
    Root,
    Row,
    Section,
    Sum,
    Symbol,
    Tanh,
    Vector,
    explain,
)
from attncli.problem import Problem
from attncli.render.explain import ExplainFormat, LatexNotation, Notation, render_explain

runner = CliRunner()


def _text(problem, config=None, precision: int = 4, **kwargs) -> str:
    trace = attend(problem, config)
    return render_explain(explain(trace, **kwargs), ExplainFormat.text, precision)


def _section(sections: list[Section], title: str) -> Section:
    """The section whose title starts with ``title``."""
    (found,) = [s for s in sections if isinstance(s.title[0], str)
                and s.title[0].startswith(title)]
    return found


def _value(term) -> float:
    assert isinstance(term, Number)
    return term.value


def _given(*values: float) -> tuple[Number, ...]:
    return tuple(Number(v, Kind.given) for v in values)


# --- the structured terms -----------------------------------------------------------------

def test_terms_of_seed_000_shiny():
    # Seed 000, "Hello shiny sun!", query shiny = [0.53, 0.34, 0.98], simple dot product
    # (no W, no scaling): Hello = [0.34, 0.22, 0.54], sun = [0.29, 0.54, 0.93]
    sections = explain(attend(load_problem(sample="hello-shiny-sun")), "shiny")
    assert [s.title for s in sections] == [
        ("Scores (shiny)",), ("Exponentials of the scores (shiny)",), ("Sum (shiny)",),
        ("Weights (shiny)",), ("Weighted values (shiny)",), ("Context (shiny)",)]
    scores = sections[0].equations
    # score(shiny, Hello) = 0.53×0.34 + 0.34×0.22 + 0.98×0.54 = 0.1802 + 0.0748 + 0.5292
    #                     = 0.7842: the factors are the inputs as given
    assert scores[0].name == "score(shiny, Hello)"
    assert scores[0].sides[0] == Sum((Product(_given(0.53, 0.34)), Product(_given(0.34, 0.22)),
                                      Product(_given(0.98, 0.54))))
    # shiny·shiny = 0.2809 + 0.1156 + 0.9604 = 1.3569; shiny·sun = 0.1537 + 0.1836 + 0.9114
    assert [_value(e.sides[-1]) for e in scores] == pytest.approx([0.7842, 1.3569, 1.2487],
                                                                  abs=1e-12)
    exps = sections[1].equations
    # e^0.7842 = 2.190654, e^1.3569 = 3.884134, e^1.2487 = 3.485808
    assert exps[0].sides[0] == Exp(Number(pytest.approx(0.7842, abs=1e-12)))
    assert [_value(e.sides[1]) for e in exps] == pytest.approx([2.190654, 3.884134, 3.485808],
                                                               abs=1e-6)
    (total,) = sections[2].equations
    # 2.190654 + 3.884134 + 3.485808 = 9.560596
    assert len(total.sides[0].terms) == 3 and _value(total.sides[1]) == pytest.approx(
        9.560596, abs=1e-6)
    weight = sections[3].equations[0]
    # 2.190654 / 9.560596 = 0.229134 (the sample's expected weights)
    assert isinstance(weight.sides[0], Fraction)
    assert _value(weight.sides[0].bottom) == pytest.approx(9.560596, abs=1e-6)
    assert _value(weight.sides[1]) == pytest.approx(0.229134, abs=1e-6)
    weighted = sections[4].equations[0]
    # 0.229134 × v(Hello) = 0.229134 × [0.34, 0.22, 0.54] = [0.077906, 0.050409, 0.123732]
    w = weighted.sides[0].factors[0]
    assert weighted.sides[0] == Product((w, Row("v", "Hello")))
    assert weighted.sides[1] == Product((w, Vector((0.34, 0.22, 0.54), Kind.given)))
    assert weighted.sides[2].values == pytest.approx([0.077906, 0.050409, 0.123732], abs=1e-6)
    (context,) = sections[5].equations
    assert len(context.sides[0].terms) == 3
    assert context.sides[1].values == pytest.approx([0.39896, 0.385424, 0.860951], abs=1e-6)


def test_terms_of_seed_004_projection_and_scaling():
    # Seed 004, Input 2 = [0, 2, 0, 2]: q = x W_q = [2, 2, 2]; its keys [0, 1, 1], [4, 4, 0],
    # [2, 3, 1] give scores 4, 16, 12; scaled by 1/√3: 16 / √3 = 9.237604
    problem = load_problem(sample="three-inputs")
    sections = explain(attend(problem, AttentionConfig()), "Input 2")
    projections = _section(sections, "Projections").equations
    assert projections[0].name == "q(Input 2)"
    assert projections[0].sides == (Product((Row("x", "Input 2"), Symbol("W_q")), Op.matmul),
                                    Vector((2.0, 2.0, 2.0)))
    scores = _section(sections, "Scores").equations
    # the factors are results (the projected q and k): 2 × 4 + 2 × 4 + 2 × 0 = 16
    assert scores[1].sides[0] == Sum((Product((Number(2.0), Number(4.0))),) * 2
                                     + (Product((Number(2.0), Number(0.0))),))
    assert [_value(e.sides[-1]) for e in scores] == [4.0, 16.0, 12.0]
    scaled = _section(sections, "Scaling").equations[1]
    assert scaled.sides[0] == Fraction(Number(16.0), Root(Number(3, Kind.option)))
    assert _value(scaled.sides[1]) == pytest.approx(16 / math.sqrt(3), rel=1e-12)


def test_terms_of_a_scale_set_by_hand_and_of_the_output_projection():
    # --scale 0.5: scaled = score × 0.5, the scale an option (written as given)
    problem = load_problem(sample="three-inputs")
    sections = explain(attend(problem, AttentionConfig(scale=0.5)), "Input 2")
    scaled = _section(sections, "Scaling").equations[1]
    assert scaled.sides == (Product((Number(16.0), Number(0.5, Kind.option))), Number(8.0))
    # multihead-einsum: output = context W_o + b_o, both of the file
    sections = explain(attend(load_problem(sample="multihead-einsum")), "name")
    (output,) = sections[-1].equations
    assert sections[-1].title == ("Output projection (name)",)
    context = _section(sections, "Heads concatenated").equations[0].sides[-1]
    assert output.sides[0] == Sum((Product((context, Symbol("W_o")), Op.matmul),
                                   Symbol("b_o")))
    assert output.sides[1].values == pytest.approx(  # the sample's expected output, row 1
        [-1.782435, -1.459327, 0.390048, 0.091384, 0.805284, -1.711763, 2.867701, -0.557329],
        abs=1e-6)


def test_terms_of_the_additive_score_hidden_layer():
    # x = [[1, 0], [0, 1]] (no W), W_a = [[1, 0.5], [0, 1]], U_a = [[0.5, 0], [1, 1]],
    # v_a = [1, −1], b_a = [0, 0.5]. Query 0, key 1: q W_a = [1, 0.5], k U_a = [1, 1],
    # hidden = [1, 0.5] + [1, 1] + [0, 0.5] = [2, 2]; tanh 2 = 0.964028;
    # score = 1 × 0.964028 + (−1) × 0.964028 = 0
    # key 0: k U_a = [0.5, 0], hidden = [1.5, 1]; tanh = [0.905148, 0.761594]; score 0.143554
    problem = Problem.from_mapping({
        "x": [[1.0, 0.0], [0.0, 1.0]], "W_a": [[1.0, 0.5], [0.0, 1.0]],
        "U_a": [[0.5, 0.0], [1.0, 1.0]], "v_a": [1.0, -1.0], "b_a": [0.0, 0.5]}, "p.json")
    scores = explain(attend(problem, AttentionConfig(score="additive")), "0")[0].equations
    first, products, result = scores[1].sides
    assert first == Product((Symbol("v_a"), Tanh(Vector((2.0, 2.0)))), Op.dot)
    tanh2 = math.tanh(2.0)
    assert products == Sum((Product((Number(1.0, Kind.given), Number(tanh2))),
                            Product((Number(-1.0, Kind.given), Number(tanh2)))))
    assert _value(result) == pytest.approx(0.0, abs=1e-15)
    assert scores[0].sides[0] == Product((Symbol("v_a"), Tanh(Vector((1.5, 1.0)))), Op.dot)
    assert _value(scores[0].sides[-1]) == pytest.approx(0.905148 - 0.761594, abs=1e-6)
    # written: v_a·tanh([2, 2]) = 1 × 0.9640 + (−1) × 0.9640 = 0
    text = _text(problem, AttentionConfig(score="additive"), query="0", key="1")
    assert "score(0, 1) = v_a·tanh([2, 2]) = 1 × 0.9640 + (−1) × 0.9640 = 0" in text


def test_terms_of_the_general_score():
    # x = [[1, 2], [3, 0]], W_a = [[1, 0.5], [0, 1]]; query 0: q W_a = [1, 0.5 + 2] = [1, 2.5];
    # with key 1 = [3, 0]: 1 × 3 + 2.5 × 0 = 3
    problem = Problem.from_mapping({"x": [[1.0, 2.0], [3.0, 0.0]],
                                    "W_a": [[1.0, 0.5], [0.0, 1.0]]}, "p.json")
    sections = explain(attend(problem, AttentionConfig(score="general")), "0", key="1")
    (score,) = sections[0].equations
    assert score.sides == (
        Product((Group(Product((Vector((1.0, 2.0), Kind.given), Symbol("W_a")), Op.matmul)),
                 Symbol("k")), Op.dot),
        Product((Vector((1.0, 2.5)), Vector((3.0, 0.0), Kind.given)), Op.dot),
        Sum((Product((Number(1.0), Number(3.0, Kind.given))),
             Product((Number(2.5), Number(0.0, Kind.given))))),
        Number(3.0))


def test_terms_of_dropout_and_large_negative_scores():
    # x = [10, 0] attends to memory p = [−10, 0], r = [−9, 0.5]: scores −100, −90; past 30
    # in size, the exponentials are of the scores minus their maximum −90: e^−10, e^0
    problem = Problem.from_mapping({"x": [[10.0, 0.0]], "memory": [[-10.0, 0.0], [-9.0, 0.5]],
                                    "memory_tokens": ["p", "r"]}, "p.json")
    sections = explain(attend(problem), "0")
    exps = sections[1]
    assert exps.title == ("Exponentials of the scores minus their maximum ", Number(-90.0),
                          ", so that e^x stays finite (0)")
    assert [e.sides for e in exps.equations] == [(Exp(Number(-10.0)), Number(math.exp(-10))),
                                                 (Exp(Number(0.0)), Number(1.0))]
    assert Notation(2).words(exps.title).startswith(
        "Exponentials of the scores minus their maximum −90, so")
    # dropout p = 0.5: a kept weight × 1/(1 − 0.5) = × 2, a dropped one × 0 (dropped)
    sections = explain(attend(load_problem(sample="hello-shiny-sun"),
                              AttentionConfig(dropout=0.5, seed=3)), "shiny")
    dropout = _section(sections, "Dropout")
    assert dropout.title == ("Dropout, p = ", Number(0.5, Kind.option),
                             ": kept weights × 1/(1 − p) (shiny)")
    for equation in dropout.equations:
        (weight, factor), result = equation.sides[0].factors, equation.sides[1]
        if factor == Number(2.0, Kind.option):
            assert _value(result) == pytest.approx(2 * _value(weight), rel=1e-12)
        else:
            assert factor == Annotated(Number(0, Kind.given), "(dropped)")
            assert _value(result) == 0.0


# --- how the renderer writes the terms ------------------------------------------------------

def test_numbers_written_by_kind():
    text, latex = Notation(2), LatexNotation(2)
    # a given number as given, a result to 2 decimals, whole numbers bare, −0.00 as 0.00
    assert text.term(Number(0.125, Kind.given)) == "0.125"
    assert text.term(Number(0.125)) == "0.12" and text.term(Number(3.0)) == "3"
    assert text.term(Number(-0.001)) == "0.00"
    # as factors, a negative given or result is bracketed, an option (the scale) is not
    factors = Product((Number(-0.5, Kind.given), Number(-1.25), Number(-0.3, Kind.option)))
    assert text.term(factors) == "(−0.5) × (−1.25) × −0.3"
    assert latex.term(factors) == r"(-0.5) \times (-1.25) \times -0.3"
    assert text.term(Exp(Number(-19.0))) == "e^(−19)"
    assert latex.term(Exp(Number(-19.0))) == "e^{-19}"
    root = Fraction(Number(16.0), Root(Number(3, Kind.option)))
    assert text.term(root) == "16 / √3" and latex.term(root) == r"\frac{16}{\sqrt{3}}"
    assert latex.term(Product((Row("x", "R&D"), Symbol("W_q")), Op.matmul)) == (
        r"x_{\text{R\&D}} W_q")


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
    sections = explain(attend(problem), "shiny")
    markdown = render_explain(sections, ExplainFormat.markdown)
    assert ("- $\\text{score(shiny, Hello)} = 0.53 \\times 0.34 + 0.34 \\times 0.22 + "
            "0.98 \\times 0.54 = 0.7842$") in markdown
    latex = render_explain(sections, ExplainFormat.latex)
    assert "\\begin{align*}" in latex and "\\frac{2.1907}{9.5606} = 0.2291" in latex
    assert "v_{\\text{Hello}}" in latex


def test_unknown_key_is_bad_input():
    problem = load_problem(sample="hello-shiny-sun")
    with pytest.raises(InputError, match="--key 'moon'"):
        explain(attend(problem), "shiny", key="moon")


def test_cli_explain():
    result = runner.invoke(app, ["explain", "--sample", "hello-shiny-sun", "--query", "shiny",
                                 "--key", "sun"])
    assert result.exit_code == 0
    assert "0.53 × 0.29 + 0.34 × 0.54 + 0.98 × 0.93 = 1.2487" in result.stdout
    missing = runner.invoke(app, ["explain", "--sample", "hello-shiny-sun"])
    assert missing.exit_code == 2  # --query is required


def test_inputs_as_written_whatever_the_precision():
    problem = load_problem(sample="hello-shiny-sun")
    text = render_explain(explain(attend(problem), "shiny"), ExplainFormat.text, precision=1)
    assert "0.53 × 0.34 + 0.34 × 0.22 + 0.98 × 0.54 = 0.8" in text  # 0.7842 at 1 decimal


def test_temperature_and_large_scores_write_the_real_exponent():
    # x = [[10, 9], [8, 7]], T = 2: scores of row 0 are [181, 143]; / 2 = [90.5, 71.5];
    # shifted by the maximum 90.5: exponents 0 and −19
    problem = Problem.from_mapping({"x": [[10, 9], [8, 7]], "tokens": ["a", "b"]}, "p.json")
    text = _text(problem, AttentionConfig(temperature=2.0), query="a")
    assert "Exponentials of the scores / 2 minus their maximum 90.5000" in text
    assert "exp(a) = e^0 = 1" in text and "exp(b) = e^(−19) = 0.0000" in text


def test_latex_escapes_token_labels():
    problem = Problem.from_mapping({"x": [[1.0, 0.0], [0.0, 1.0]], "tokens": ["50%", "R&D"]},
                                   "p.json")
    latex = render_explain(explain(attend(problem), "50%"), ExplainFormat.latex)
    assert r"v_{\text{50\%}}" in latex and r"v_{\text{R\&D}}" in latex
    assert r"\paragraph{Scores (50\%)}" in latex
    lines = latex.splitlines()
    assert not any(line.rstrip().endswith("\\\\") and following.startswith("\\end{align*}")
                   for line, following in zip(lines, lines[1:], strict=False))


def test_separate_key_and_value_sequences_are_named_as_the_sources():
    # keys from key_memory, values from value_memory (trace.run.key_from, .value_from; once
    # both written as memory(…)). x = [1, 0], W_q = W_k = I, W_v the first two columns of I₃:
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
    whole = render_explain(explain(attend(problem), "shiny"), ExplainFormat.text)
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
    whole = render_explain(explain(attend(problem), "name"), ExplainFormat.text)
    assert text.split() == whole.split()
    titles = {Notation(4).words(section.title)
              for section in explain(attend(problem), "name")} | {"About these numbers"}
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
