"""check's grading rules: −∞ and its spellings, rounding carried forward from the answers' own
steps, the tolerance modes, partial credit per entry, the report's legend, stdin once, and the
help that describes the answers file. Numbers are worked by hand in the comments."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import attend, load_problem
from attncli.check import CARRIED, RIGHT, ROUNDED, WRONG, Answers, Checker, Report, StepVerdict
from attncli.cli import app
from attncli.errors import InputError
from attncli.problem import Problem
from attncli.render.check import render_csv
from attncli.tolerance import Tolerance

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def _check(sample_or_problem, text: str, tolerance: Tolerance | None = None):
    """Grade answers written as JSON text (numbers keep their written decimals)."""
    problem = (load_problem(sample=sample_or_problem) if isinstance(sample_or_problem, str)
               else sample_or_problem)
    answers = Answers.from_mapping(json.loads(text, parse_float=Decimal), "a.json")
    return Checker(problem, None, attend(problem), tolerance).check(answers)


# --- −∞: a masked score ----------------------------------------------------------------------

# your-journey-causal, query "journey" (row 1): scores x_1 · x_j = [0.9544, 1.4950, …]; the
# causal mask leaves keys 0 and 1, so masked_scores = [0.9544, 1.4950, −∞, −∞, −∞, −∞].
JOURNEY = '{{"query": "journey", "masked_scores": [0.9544, 1.4950, {0}, {0}, {0}, {0}]}}'


def test_a_masked_score_written_as_zero_is_wrong_and_diagnosed():
    report = _check("your-journey-causal", JOURNEY.format("0"))
    (verdict,) = report.verdicts
    assert verdict.status.tolist() == [RIGHT, RIGHT, WRONG, WRONG, WRONG, WRONG]
    assert not report.ok
    assert report.diagnosis.name == "mask_zero_fill"


@pytest.mark.parametrize("written", ['null', '"-inf"', '"-Infinity"', '"−∞"', '"-∞"', '" -INF"',
                                     '-Infinity'])
def test_minus_infinity_in_any_spelling_is_right(written):
    report = _check("your-journey-causal", JOURNEY.format(written))
    assert report.ok and report.verdicts[0].status.tolist() == [RIGHT] * 6


@pytest.mark.parametrize("written", ["-1e9", "-10000"])
def test_a_large_negative_number_stands_in_for_minus_infinity(written):
    # d2l's masked_softmax fills −1e6: ≤ −1e4 is accepted as ≈, and the report says so
    report = _check("your-journey-causal", JOURNEY.format(written))
    (verdict,) = report.verdicts
    assert report.ok and verdict.status.tolist() == [RIGHT, RIGHT] + [ROUNDED] * 4
    assert "a large negative number stands in for −∞" in verdict.note


def test_a_moderately_negative_number_is_not_minus_infinity():
    assert not _check("your-journey-causal", JOURNEY.format("-9999")).ok


@pytest.mark.parametrize("written", ['"inf"', '"Infinity"', '"minus infinity"'])
def test_other_words_are_bad_input(written):
    with pytest.raises(InputError, match="is not a number"):
        _check("your-journey-causal", JOURNEY.format(written))


# --- rounding carried forward from the answers' own steps --------------------------------------


def test_a_student_rounding_every_step_to_one_decimal_is_right():
    # seed 004, Input 1: weights softmax([2, 4, 4]) = [0.0634, 0.4683, 0.4683] → to 1 decimal
    # [0.1, 0.5, 0.5]; from them 0.1·[1, 2, 3] + 0.5·[2, 8, 0] + 0.5·[2, 6, 3] = [2.1, 7.2, 1.8],
    # though the exact context [1.937, 6.683, 1.595] rounds to [1.9, 6.7, 1.6].
    report = _check("three-inputs", '{"query": "Input 1", "weights": [0.1, 0.5, 0.5], '
                                    '"context": [2.1, 7.2, 1.8]}')
    weights, context = report.verdicts
    assert report.ok and weights.verdict == "right"
    assert context.verdict == "right within rounding"
    assert context.status.tolist() == [ROUNDED] * 3
    assert "follows from your rounded weights" in context.note
    np.testing.assert_allclose(context.carried, [2.1, 7.2, 1.8], rtol=1e-12)


def test_a_student_rounding_every_step_to_two_decimals_is_right():
    # seed 000, shiny: scores [0.7842, 1.3569, 1.2487] → [0.78, 1.36, 1.25]; softmax of those
    # [0.2280, 0.4072, 0.3648] → [0.23, 0.41, 0.36]; the context's 2nd entry from them is
    # 0.23·0.22 + 0.41·0.34 + 0.36·0.54 = 0.3844 → 0.38, where the exact 0.3854 gives 0.39.
    report = _check("hello-shiny-sun", '{"query": "shiny", "scores": [0.78, 1.36, 1.25], '
                    '"weights": [0.23, 0.41, 0.36], "context": [0.40, 0.38, 0.86]}')
    assert report.ok
    assert [v.verdict for v in report.verdicts] == ["right", "right", "right within rounding"]
    assert report.verdicts[2].status.tolist() == [RIGHT, ROUNDED, RIGHT]


def test_a_step_that_follows_from_a_wrong_one_is_carried_forward():
    # seed 004, Input 1: the weights to 1 decimal are [0.1, 0.5, 0.5]; 0.4 is a slip. From
    # [0.1, 0.4, 0.5]: 0.1·[1, 2, 3] + 0.4·[2, 8, 0] + 0.5·[2, 6, 3] = [1.9, 6.4, 1.8]; 1.9 is
    # also the exact 1.937 rounded, 6.4 and 1.8 follow from the slip only.
    report = _check("three-inputs", '{"query": "Input 1", "weights": [0.1, 0.4, 0.5], '
                                    '"context": [1.9, 6.4, 1.8]}')
    weights, context = report.verdicts
    assert weights.status.tolist() == [RIGHT, WRONG, RIGHT]
    assert context.status.tolist() == [RIGHT, CARRIED, CARRIED]
    assert context.verdict == "carried forward" and context.carried_from == "weights"
    assert "2 carried forward from weights" in context.note
    assert not report.ok and report.first_wrong == "weights"  # charged once, to the weights
    counts = report.counts
    assert (counts.right, counts.rounded, counts.carried, counts.wrong) == (3, 0, 2, 1)
    assert counts.score == pytest.approx(5 / 6, rel=1e-12)


def test_a_mistake_does_not_carry_past_a_later_step_written_right():
    # your-journey-causal, query "journey": masked scores written 0 instead of −∞ (wrong), but
    # the weights right, [0.3680, 0.6320, 0, 0, 0, 0]; the context from them is 0.368·[0.43,
    # 0.15, 0.89] + 0.632·[0.55, 0.87, 0.66] = [0.50584, 0.60504, 0.74464]: 0.7446 follows
    # from the right weights (the exact 0.744651 rounds to 0.7447), not from the mistake.
    report = _check("your-journey-causal", '{"query": "journey", '
                    '"masked_scores": [0.9544, 1.4950, 0, 0, 0, 0], '
                    '"weights": [0.3680, 0.6320, 0, 0, 0, 0], "context": [0.5058, 0.6050, 0.7446]}')
    masked, weights, context = report.verdicts
    assert masked.status.tolist() == [RIGHT, RIGHT] + [WRONG] * 4 and weights.verdict == "right"
    assert context.status.tolist() == [RIGHT, RIGHT, ROUNDED]
    assert context.verdict == "right within rounding" and context.carried_from is None


def test_a_mistake_in_one_head_does_not_carry_into_another():
    # x = I₂, 2 heads of width 2. Head 0: q = [[1, 2], [5, 6]], k = v = I₂; head 1: q = [[3, 4],
    # [7, 8]], k = [[0, 1], [1, 0]], v = [[0.5, 1], [1, 0.5]]. Each row's two scaled scores
    # differ by 1/√2, so the weights are σ(1/√2) = 0.6698 and 0.3302: [0.3, 0.7] in head 0 and
    # [0.7, 0.3] in head 1 to 1 decimal. The values are written with a slip, 2 for head 0's
    # v₀₀ = 1; from them head 0's context is 0.3·[2, 0] + 0.7·[0, 1] = [0.60, 0.70] (carried
    # forward), head 1's 0.7·[0.5, 1] + 0.3·[1, 0.5] = [0.65, 0.85] where the exact
    # 0.6698·[0.5, 1] + 0.3302·[1, 0.5] = [0.6651, 0.8349] rounds to [0.67, 0.83]: within
    # rounding of the student's own weights, untouched by head 0's slip.
    problem = Problem.from_mapping({"x": [[1, 0], [0, 1]], "W_q": [[1, 2, 3, 4], [5, 6, 7, 8]],
                                    "W_k": [[1, 0, 0, 1], [0, 1, 1, 0]],
                                    "W_v": [[1, 0, 0.5, 1], [0, 1, 1, 0.5]],
                                    "config": {"heads": 2}}, "heads.json")
    report = _check(problem, '{"values": [[2, 0, 0.5, 1], [0, 1, 1, 0.5]], '
                             '"weights": [[[0.3, 0.7], [0.3, 0.7]], [[0.7, 0.3], [0.7, 0.3]]], '
                             '"head_context": [[[0.60, 0.70], [0.60, 0.70]], '
                             '[[0.65, 0.85], [0.65, 0.85]]]}')
    values, weights, head_context = report.verdicts
    assert values.counts.wrong == 1 and weights.verdict == "right"
    assert head_context.status.tolist() == [[[CARRIED] * 2] * 2, [[ROUNDED] * 2] * 2]
    assert head_context.carried_from == "values"


def test_the_published_seed_004_answer_is_graded_as_a_grader_would():
    # Pin-Jiun/Machine-Learing-NTU "6.1-Self-Attention" rounds the weights to 1 decimal "for
    # readability" as [0.0, 0.5, 0.5] (0.0634 rounds to 0.1) and sums 0.5·[2, 8, 0] +
    # 0.5·[2, 6, 3] = [2.0, 7.0, 1.5]: one weight wrong, the context carried forward.
    result = runner.invoke(app, ["check", "--sample", "three-inputs", "--format", "json",
                                 str(ROOT / "samples/answers/three-inputs.published.json")])
    assert result.exit_code == 1
    (report,) = json.loads(result.stdout)["reports"]
    assert report["steps"]["weights"]["status"] == [WRONG, RIGHT, RIGHT]
    assert report["steps"]["context"]["status"] == [CARRIED] * 3
    assert report["steps"]["context"]["carried"] == [2.0, 7.0, 1.5]
    assert (report["right"], report["within_rounding"], report["carried_forward"],
            report["wrong"], report["entries"]) == (5, 0, 3, 1, 9)
    assert report["score"] == pytest.approx(8 / 9, rel=1e-12)
    assert report["diagnosis"]["mistake"] == "weights_rounded_1"
    assert report["diagnosis"]["says"] == (
        "the weights were rounded to 1 decimal by hand, not all to the nearest (this "
        "reproduces weights); [0.0, 0.5, 0.5] for the exact [0.063, 0.468, 0.468]")


def test_csv_counts_entries_per_step():
    result = runner.invoke(app, ["check", "--sample", "three-inputs", "--format", "csv",
                                 *sorted(str(p) for p in (ROOT / "samples/answers").glob(
                                     "three-inputs.*.json"))])
    four, one, published = csv.DictReader(io.StringIO(result.stdout))
    assert four["result"] == "right" and four["score"] == "1.0"
    assert four["steps_right"] == "scores weights context"
    # weights [0.1, 0.5, 0.5] and the context [2.1, 7.2, 1.8] that follows from them
    assert one["result"] == "right" and one["steps_within_rounding"] == "context"
    assert (one["right"], one["within_rounding"]) == ("6", "3")
    assert published["steps_carried_forward"] == "context"
    assert [published[f"weights_{k}"] for k in ("right", "within_rounding", "carried_forward",
                                                "wrong")] == ["2", "0", "0", "1"]
    assert published["context_carried_forward"] == "3"
    assert float(published["score"]) == pytest.approx(8 / 9, rel=1e-12)  # in full


# --- multi-head steps written with the heads side by side ----------------------------------

# x = I₂, so queries = x W_q = W_q's rows [[1, 2, 3, 4], [5, 6, 7, 8]] as a student writes
# them before splitting the heads; 2 heads of width 2: head 0 takes columns 0–1, [[1, 2],
# [5, 6]], head 1 columns 2–3, [[3, 4], [7, 8]] (torch's MultiheadAttention's split).
HEADS = Problem.from_mapping({"x": [[1, 0], [0, 1]], "W_q": [[1, 2, 3, 4], [5, 6, 7, 8]],
                              "W_k": [[1, 0, 0, 1], [0, 1, 1, 0]],
                              "W_v": [[1, 0, 0, 1], [0, 1, 1, 0]], "config": {"heads": 2}},
                             "heads.json")


def test_per_head_steps_written_with_the_heads_side_by_side_are_graded_per_head():
    report = _check(HEADS, '{"queries": [[1, 2, 3, 4], [5, 6, 7, 9]], '
                           '"keys": [[1, 0, 0, 1], [0, 1, 1, 0]]}')
    queries, keys = report.verdicts
    np.testing.assert_array_equal(queries.given, [[[1, 2], [5, 6]], [[3, 4], [7, 9]]])
    # only the 9 (exact 8: head 1, query 1, dim 1) is wrong
    assert queries.status.tolist() == [[[RIGHT] * 2] * 2, [[RIGHT] * 2, [RIGHT, WRONG]]]
    assert keys.verdict == "right" and keys.counts.right == 8
    one_row = _check(HEADS, '{"query": 1, "queries": [5, 6, 7, 8]}')
    assert one_row.ok and one_row.verdicts[0].given.tolist() == [[5, 6], [7, 8]]


def test_one_query_row_written_as_a_one_row_matrix_is_that_row():
    # seed 004, Input 1, as torch prints one query's rows with keepdim: weights
    # softmax([2, 4, 4]) = [0.0634, 0.4683, 0.4683], context [1.9366, 6.6831, 1.5951]
    report = _check("three-inputs", '{"query": "Input 1", "weights": [[0.0634, 0.4683, 0.4683]], '
                                    '"context": [[1.9366, 6.6831, 1.5951]]}')
    assert report.ok and [v.verdict for v in report.verdicts] == ["right", "right"]
    assert report.verdicts[1].given.shape == (3,)


def test_csv_score_is_never_rounded_up_to_full_marks():
    # 1 wrong entry of 20 000: the score 19 999 / 20 000 = 0.99995 would print as 1.0000 with
    # 4 decimals, on a "wrong" line
    status = np.full((100, 200), RIGHT)
    status[0, 0] = WRONG
    zeros = np.zeros(status.shape)
    verdict = StepVerdict("weights", zeros, zeros, status, zeros, ("query", "key"), "wrong", "")
    (row,) = csv.DictReader(io.StringIO(render_csv([Report("a.json", None, [verdict])])))
    assert row["result"] == "wrong" and row["wrong"] == "1"
    assert float(row["score"]) == pytest.approx(0.99995, rel=1e-12)


# --- the tolerance -------------------------------------------------------------------------

# x = [[1, 0], [0.5, 0]], no projection: query 0's scores are [1, 0.5] and its weights
# e / (e + e^0.5) = 0.6225 and 0.3775.
TWO = Problem.from_mapping({"x": [[1, 0], [0.5, 0]]}, "two.json")


@pytest.mark.parametrize(("weights", "ok"), [
    ("[0.7, 0.3]", False),  # one unit of the 1st decimal off: one unit + 0.2 % let it pass
    ("[0.6, 0.4]", True),   # the exact values rounded to 1 decimal
    ("[0.63, 0.37]", False),  # 0.6225 rounds to 0.62, not 0.63
    ("[0.62, 0.38]", True),
    ("[1, 0]", False),       # whole numbers are exact as written: 0.6225 is not 1
    ("[1.0, 0.0]", False),   # 1 decimal: 0.6225 rounds to 0.6
])
def test_an_entry_must_be_the_exact_value_rounded_as_written(weights, ok):
    assert _check(TWO, f'{{"query": 0, "weights": {weights}}}').ok is ok


def test_whole_numbers_are_exact_unless_decimals_0_is_asked_for():
    # Scores [1, 0.5] written [1, 0.5] are right; the weights [1, 0] (exact 0.6225, 0.3775)
    # are right only when the teacher asks for whole numbers with --tolerance decimals:0.
    assert _check(TWO, '{"query": 0, "scores": [1, 0.5]}').ok
    assert not _check(TWO, '{"query": 0, "weights": [1, 0]}').ok
    assert _check(TWO, '{"query": 0, "weights": [1, 0]}', Tolerance.parse("decimals:0")).ok


SHINY = (ROOT / "samples/answers/hello-shiny-sun.published.json").read_text()


@pytest.mark.parametrize(("tolerance", "status"), [
    # exact [0.398960, 0.385424, 0.860951] against the published [0.3992, 0.3858, 0.8610]
    (None, [ROUNDED, ROUNDED, RIGHT]),  # decimals, weights not shown: within 0.2 %
    ("decimals:2", [RIGHT] * 3),  # 0.40, 0.39, 0.86 either way
    ("sigfigs:3", [RIGHT] * 3),  # 0.399, 0.385, 0.861: off by 0.00024 and 0.00038 < 0.0005
    ("sigfigs:4", [WRONG, WRONG, RIGHT]),  # 0.3990 ≠ 0.3992; 0.3854 ≠ 0.3858
    ("rel:0.001", [RIGHT] * 3),  # 0.000376 ≤ 0.001 · 0.385
    ("rel:0.0005", [WRONG, WRONG, RIGHT]),  # 0.00024 > 0.0005 · 0.399; 0.000049 fits
    ("abs:0.0005", [RIGHT] * 3),
    ("abs:0.0003", [RIGHT, WRONG, RIGHT]),  # 0.00024 ≤ 0.0003 < 0.000376
])
def test_tolerance_modes(tolerance, status):
    report = _check("hello-shiny-sun", SHINY, Tolerance.parse(tolerance))
    assert report.verdicts[0].status.tolist() == status


@pytest.mark.parametrize("tolerance", ["rel:0.01", "abs:0", "sigfigs:3", None])
def test_an_exact_zero_computed_with_float_noise_is_zero_in_every_mode(tolerance):
    # orthogonal rows: 0.1·0.3 + 0.2·0.3 − 0.3·0.3 = 0.03 + 0.06 − 0.09 = 0, which float64
    # computes as 3.3e-18; the scores are [[0.14, 0], [0, 0.27]]
    problem = Problem.from_mapping({"x": [[0.1, 0.2, 0.3], [0.3, 0.3, -0.3]]}, "orth.json")
    assert attend(problem)["scores"][0, 1] != 0  # the noise this test is about
    report = _check(problem, '{"scores": [[0.14, 0.0], [0.0, 0.27]]}', Tolerance.parse(tolerance))
    assert report.ok and report.verdicts[0].status.tolist() == [[RIGHT] * 2] * 2


def test_rtol_and_atol_are_aliases_of_rel_and_abs():
    base = ["check", "--sample", "hello-shiny-sun", "--format", "json",
            str(ROOT / "samples/answers/hello-shiny-sun.published.json")]
    for alias, mode in ((["--rtol", "0.0005"], ["--tolerance", "rel:0.0005"]),
                        (["--atol", "0.0003"], ["--tolerance", "abs:0.0003"])):
        one, other = (runner.invoke(app, [*base, *flags]) for flags in (alias, mode))
        assert one.exit_code == other.exit_code == 1
        assert json.loads(one.stdout)["reports"] == json.loads(other.stdout)["reports"]
        assert json.loads(other.stdout)["tolerance"] == mode[1]
    both = runner.invoke(app, [*base, "--rtol", "0.0005", "--atol", "0.0002"])
    # 0.000376 ≤ 0.0002 + 0.0005 · 0.385: relative and absolute add up, as numpy.allclose
    assert both.exit_code == 0


@pytest.mark.parametrize("flags", [["--tolerance", "sigfigs:0"], ["--tolerance", "rel:-1"],
                                   ["--tolerance", "percent:1"], ["--tolerance", "sigfigs:x"],
                                   ["--tolerance", "sigfigs:3", "--rtol", "0.1"],
                                   ["--atol", "nan"]])
def test_bad_tolerances_are_one_line_of_bad_input(flags):
    result = runner.invoke(app, ["check", "--sample", "hello-shiny-sun", *flags,
                                 str(ROOT / "samples/answers/hello-shiny-sun.published.json")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "attncli: error:" in result.stderr


def test_answers_printed_in_full_by_a_float32_program_are_right():
    for sample in ("multihead-einsum", "your-journey-causal", "translation-cross"):
        printed = runner.invoke(app, ["compute", "--sample", sample, "--dtype", "float32",
                                      "--json"])
        problem = load_problem(sample=sample)
        answers = Answers.from_mapping(json.loads(printed.stdout, parse_float=Decimal), "f32")
        report = Checker(problem, None, attend(problem)).check(answers)
        assert report.ok, [(v.step, v.note) for v in report.verdicts if not v.ok]
        assert all(np.all(v.status == RIGHT) for v in report.verdicts)


# --- diagnosis that can apply ----------------------------------------------------------------


def test_weights_alone_are_never_said_to_be_rounded_before_the_weighted_sum():
    # seed 004's weights rounded to 1 decimal, [0.1, 0.5, 0.5], written with 4: wrong at 4
    # decimals (0.0634), but no weighted sum is given to have used them
    report = _check("three-inputs", '{"query": "Input 1", "weights": [0.1000, 0.5000, 0.5000]}')
    assert not report.ok
    assert report.diagnosis.sentence() == (
        "the weights were rounded to 1 decimal (this reproduces weights); [0.1, 0.5, 0.5] "
        "(written with 4) for the exact [0.063, 0.468, 0.468]")


def test_a_typo_in_the_weights_gets_no_diagnosis():
    report = _check("three-inputs", '{"query": "Input 1", "weights": [0.0634, 0.4863, 0.4683]}')
    assert not report.ok and report.diagnosis is None


# --- the report ------------------------------------------------------------------------------


def test_the_table_has_a_legend_for_the_marks():
    result = runner.invoke(app, ["check", "--sample", "three-inputs",
                                 str(ROOT / "samples/answers/three-inputs.published.json")],
                           env={"COLUMNS": "200"})
    text = " ".join(result.stdout.split())
    assert ("each cell: the answer, its mark, then the exact value: ✓ right · ≈ within "
            "rounding") in text
    assert "→ carried forward from an earlier wrong step · ✗ wrong" in text
    assert "0.0 ✗ 0.0634" in text and "2.0 → 1.9366" in text
    assert "weights wrong: 2 right, 1 wrong of 3 entries score 2/3" in text


# --- standard input, once --------------------------------------------------------------------


@pytest.mark.parametrize("args", [["check", "-", "-"],
                                  ["check", "--sample", "hello-shiny-sun", "-", "-"],
                                  ["check", "--x", "-", "-"]])
def test_standard_input_is_read_once(args):
    result = runner.invoke(app, args, input=SHINY)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "- (standard input) is given for" in result.stderr
    assert "can be read only once" in " ".join(result.stderr.split())


# --- help --------------------------------------------------------------------------------------


def test_check_help_describes_answers_exit_statuses_and_defaults():
    result = runner.invoke(app, ["check", "--help"], env={"COLUMNS": "100"})
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())
    for words in ("keys are step names", "masked_scores", '"query": a token or an index',
                  'written null, "-inf", "-Infinity" or "−∞"', "--format json output is answers",
                  "Exit status: 0 no entry wrong", "1 an entry is wrong, 2 bad input",
                  "[default: decimals]", "[default: 4]",
                  "[default: html for -o FILE.html, else table]",
                  "sigfigs:N, rel:R or abs:A"):
        assert words in text, words


def test_readme_names_the_seed_documents_in_the_check_section():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = " ".join(readme.split("## Checking homework", 1)[1].split("\n## ", 1)[0].split())
    assert "Attention Mechanisms and Self-Attention in Neural Networks" in section
    assert "6.1-Self-Attention" in section
    assert not re.search(r"seed 00\d", section)


# --- steps not shown, rounded as the shown ones are --------------------------------------


def _two_decimal_work(x: np.ndarray) -> dict[str, np.ndarray]:
    """hello-shiny-sun (simple attention: Q = K = V = x, no scaling) worked by a student who
    rounds every step to 2 decimals and computes the next one from the rounded numbers."""
    scores = np.round(x @ x.T, 2)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights = np.round(e / e.sum(axis=1, keepdims=True), 2)
    context = np.round(weights @ x, 2)
    return {"scores": scores, "weights": weights, "context": context}


@pytest.mark.parametrize("shown", [("context",), ("weights", "context")])
def test_steps_rounded_but_not_shown_are_not_held_against_the_student(tmp_path, shown):
    x = np.array([[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]])
    work = _two_decimal_work(x)
    # The rounded scores shift the rest: row "Hello" has the scores [0.46, 0.78, 0.72]
    # (exact 0.4556, 0.7842, 0.7196), hence the weights [0.27, 0.37, 0.35] where the exact
    # ones round to [0.27, 0.38, 0.35], and the context [0.39, 0.37, 0.83] where the exact
    # one rounds to [0.39, 0.38, 0.84]: not the exact values rounded, yet what careful
    # rounding at every step gives.
    np.testing.assert_allclose(work["weights"][0], [0.27, 0.37, 0.35], atol=1e-12)
    np.testing.assert_allclose(work["context"][0], [0.39, 0.37, 0.83], atol=1e-12)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({s: work[s].tolist() for s in shown}))
    result = runner.invoke(app, ["check", "--sample", "hello-shiny-sun", str(answers)])
    assert result.exit_code == 0, result.stdout
    assert "rounding steps not shown" in " ".join(result.stdout.split())
    # Rounded wrongly (one weight off by 0.01 in a row), it is still wrong.
    off = {s: work[s].copy() for s in shown}
    off[shown[0]][0, 0] += 0.01
    answers.write_text(json.dumps({s: off[s].tolist() for s in shown}))
    result = runner.invoke(app, ["check", "--sample", "hello-shiny-sun", str(answers)])
    assert result.exit_code == 1


def test_the_problems_own_inputs_are_never_rounded_for_steps_not_shown(tmp_path):
    # hello-shiny-sun (Q = K = V = x, unscaled). Rounding each computed step to 1 decimal
    # (scores, weights, context from the given x) gives row "Hello" [0.4, 0.4, 0.8]; rounding
    # x itself first gives [0.4, 0.3, 0.8]. The exact context of "Hello" is [0.3939, 0.3780,
    # 0.8432]: 0.3 is 0.078 off, more than half a unit of the 1st decimal, and no rounding of
    # the work (only of the given inputs) leads to it.
    x = np.array([[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]])

    def softmax(s):
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def context(inputs):
        weights = np.round(softmax(np.round(inputs @ inputs.T, 1)), 1)
        return np.round(weights @ inputs, 1)

    np.testing.assert_allclose(context(x)[0], [0.4, 0.4, 0.8], atol=1e-12)
    np.testing.assert_allclose(context(np.round(x, 1))[0], [0.4, 0.3, 0.8], atol=1e-12)
    report = _check("hello-shiny-sun", json.dumps({"context": context(x).tolist()}))
    assert report.ok
    report = _check("hello-shiny-sun", json.dumps({"context": context(np.round(x, 1)).tolist()}))
    (verdict,) = report.verdicts
    assert verdict.status[0, 1] == WRONG and not report.ok


def test_work_not_shown_allows_a_few_units_of_the_last_decimal_not_a_fraction():
    # three-inputs, query "Input 1": the exact context is [1.936621, 6.683105, 1.595068]
    # (seed 004's values weighted by softmax([2, 4, 4])). 6.6960 is 129 units of the 4th
    # decimal off: 0.2 % of 6.68 would allow it, a grader does not.
    text = '{"query": "Input 1", "context": [1.9366, 6.6960, 1.5951]}'
    assert not _check("three-inputs", text).ok
    # 6.6835 (4 units off, like the published hello-shiny-sun context) is within rounding of
    # work not shown.
    assert _check("three-inputs", text.replace("6.6960", "6.6835")).ok


def test_a_tolerance_the_teacher_sets_allows_float64_noise_only():
    # 6.683110 for an exact 6.683105 is 7.5e-7 relative: beyond --rtol 1e-9, abs:0 and
    # sigfigs:7 (6.683105 to 7 figures), within --rtol 1e-6.
    text = '{"query": "Input 1", "context": [1.936621, 6.683110, 1.595068]}'
    for mode in ("rel:1e-9", "abs:0", "sigfigs:7"):
        assert not _check("three-inputs", text, Tolerance.parse(mode)).ok, mode
    assert _check("three-inputs", text, Tolerance.parse("rel:1e-6")).ok
