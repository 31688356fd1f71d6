"""attncli check: the seeds' published answers, the command line's reports and exit statuses,
and mistakes worked by independent numpy on seed 004 (every listed mistake on one problem is in
test_check_mistakes.py; the grading rules in test_check_grading.py)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import attend, load_problem
from attncli.check import Answers, Checker
from attncli.cli import app
from attncli.config import AttentionConfig
from attncli.problem import Problem

runner = CliRunner()


def _answers(raw: dict, file: str = "answers.json") -> Answers:
    # As the CLI reads them: numbers with a fraction keep their written decimals.
    text = json.dumps(raw)
    return Answers.from_mapping(json.loads(text, parse_float=Decimal), file)


def _check(problem, config, raw):
    trace = attend(problem, config)
    return Checker(problem, config, trace).check(_answers(raw))


def test_seed_000_published_context_is_accepted_with_a_rounding_note():
    # Seed 000 publishes [0.3992, 0.3858, 0.8610]; exactly it is [0.398960, 0.385424, 0.860951]:
    # 0.3858 − 0.385424 = 0.000376, about 4 units of the 4th decimal.
    problem = load_problem(sample="hello-shiny-sun")
    report = _check(problem, None, {"query": "shiny", "context": [0.3992, 0.3858, 0.8610]})
    assert report.ok and report.diagnosis is None
    (verdict,) = report.verdicts
    # The weights it was worked from are not given: a grader allows the rounding of steps not
    # shown (0.2 %), not only the rounding of the context's own 4 decimals.
    assert verdict.verdict == "right within rounding"
    assert verdict.note == ("1 right, 2 within rounding of 3 entries; differs by up to 4 in the "
                            "4th decimal, as rounding steps not shown does")
    assert verdict.status.tolist() == [1, 1, 0]  # 0.8610 is the correctly rounded 0.860951


def test_seed_004_rounded_weights_are_named():
    # Seed 004 writes the weights softmax([2, 4, 4]) = [0.0634, 0.4683, 0.4683] as
    # [0.0, 0.5, 0.5] and gets Output 1 = 0.5·[2, 8, 0] + 0.5·[2, 6, 3] = [2.0, 7.0, 1.5].
    problem = load_problem(sample="three-inputs")
    report = _check(problem, None, {"query": "Input 1", "context": [2.0, 7.0, 1.5]})
    assert not report.ok
    assert report.diagnosis.name == "weights_rounded_1"
    assert report.diagnosis.sentence() == (
        "the weights were rounded to 1 decimal before the weighted sum (this reproduces "
        "context); the context is the values weighted by [0.0, 0.5, 0.5] (exact [0.063, 0.468, "
        "0.468]), which gives [2.0, 7.0, 1.5] where the exact context is [1.937, 6.683, 1.595]")


def test_exact_and_correctly_rounded_answers_are_right():
    problem = load_problem(sample="three-inputs")
    trace = attend(problem)
    exact = {"weights": trace["weights"].tolist(), "context": trace["context"].tolist()}
    report = _check(problem, None, exact)
    assert report.ok and report.diagnosis is None
    assert {v.verdict for v in report.verdicts} == {"right"}
    rounded = {k: np.round(trace[k], 4).tolist() for k in ("weights", "context")}
    assert _check(problem, None, rounded).ok


def _write(tmp_path, name, raw):
    path = tmp_path / name
    path.write_text(json.dumps(raw))
    return str(path)


def test_cli_exit_statuses_and_batch_csv(tmp_path):
    right = _write(tmp_path, "right.json", {"query": "shiny",
                                            "context": [0.3992, 0.3858, 0.8610]})
    wrong = _write(tmp_path, "wrong.json", {"query": "shiny", "context": [0.5, 0.5, 0.5]})
    broken = _write(tmp_path, "broken.json", {"query": "shiny", "contxt": [1, 2, 3]})
    sample = ["check", "--sample", "hello-shiny-sun"]
    assert runner.invoke(app, [*sample, right]).exit_code == 0
    result = runner.invoke(app, [*sample, wrong])
    assert result.exit_code == 1
    assert "no known mistake reproduces these numbers" in " ".join(result.stdout.split())
    single_bad = runner.invoke(app, [*sample, broken])
    assert single_bad.exit_code == 2 and "contxt: not a step" in single_bad.stderr

    batch = runner.invoke(app, [*sample, right, wrong, broken, "--format", "csv"])
    assert batch.exit_code == 2  # one file was bad input; the others are still graded
    rows = list(csv.DictReader(io.StringIO(batch.stdout)))
    assert [r["result"] for r in rows] == ["right", "wrong", "error"]
    assert rows[1]["steps_wrong"] == "context" and rows[1]["first_wrong"] == "context"
    # ✓ and ≈ apart: 0.8610 is right, 0.3992 and 0.3858 within rounding (see above)
    assert [rows[0][k] for k in ("right", "within_rounding", "carried_forward", "wrong",
                                 "score")] == ["1", "2", "0", "0", "1.0"]
    assert rows[0]["steps_within_rounding"] == "context" and rows[0]["steps_right"] == ""
    assert rows[1]["context_wrong"] == "3" and rows[1]["score"] == "0.0"


def test_cli_json_report_and_problem_file(tmp_path):
    sample = Path(__file__).resolve().parent.parent / "samples" / "three-inputs.json"
    problem = _write(tmp_path, "p.json", json.loads(sample.read_text()))
    answers = _write(tmp_path, "a.json", {"query": "Input 1", "context": [2.0, 7.0, 1.5]})
    result = runner.invoke(app, ["check", problem, answers, "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    (report,) = document["reports"]
    assert report["diagnosis"]["mistake"] == "weights_rounded_1"
    # exact [1.937, 6.683, 1.595]: 2.0 and 1.5 are not it rounded to 1 decimal (1.9, 1.6), nor
    # within 0.2 % for the weights not shown, as they were by one unit + 0.2 % before
    assert report["steps"]["context"]["status"] == [2, 2, 2]
    assert (report["wrong"], report["entries"], report["score"]) == (3, 3, 0.0)


# --- The tolerance and the diagnosis on hand-written answers (review findings) --------------


@pytest.mark.parametrize("raw", [
    {"query": "shiny", "context": [0.3, 0.39, 0.86]},  # 0.3 is 10 units of the 2nd decimal off
    {"query": "shiny", "weights": [0, 1, 0]},  # whole numbers must be the rounded integers
    {"query": "shiny", "scores": [0.7842, 1.3869, 1.2487]},  # 300 units: over the 100 cap
])
def test_plainly_wrong_answers_are_wrong(raw):
    problem = load_problem(sample="hello-shiny-sun")
    assert not _check(problem, None, raw).ok


def test_a_typo_gets_no_diagnosis():
    # exact [0.398960, 0.385424, 0.860951]: 0.388 is a typo for 0.385, not a known mistake
    problem = load_problem(sample="hello-shiny-sun")
    report = _check(problem, None, {"query": "shiny", "context": [0.399, 0.388, 0.861]})
    assert not report.ok and report.diagnosis is None


def test_masked_scores_with_null_and_compute_json_as_answers():
    problem = load_problem(sample="your-journey-causal")
    result = runner.invoke(app, ["compute", "--sample", "your-journey-causal", "--json"])
    document = json.loads(result.stdout, parse_float=Decimal)
    report = Checker(problem, None, attend(problem)).check(Answers.from_mapping(document, "c"))
    assert report.ok and {v.step for v in report.verdicts} >= {"masked_scores", "weights"}


def test_bad_tolerances_are_bad_input():
    result = runner.invoke(app, ["check", "--sample", "hello-shiny-sun", "--rtol", "-1",
                                 "samples/answers/hello-shiny-sun.published.json"])
    assert result.exit_code == 2 and "--rtol" in result.stderr


# --- Wrong answers computed by independent numpy code, not by attncli's slips --------------


def _softmax(s, axis=-1):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


SEED004 = load_problem(sample="three-inputs")
X, WQ, WK, WV = (SEED004[k] for k in ("x", "W_q", "W_k", "W_v"))
Q, K, V = X @ WQ, X @ WK, X @ WV
CAUSAL = np.tril(np.ones((3, 3), dtype=bool))


@pytest.mark.parametrize(("name", "context", "config"), [
    # seed 004 with scaling (d_k = 3) as the correct computation:
    ("no_scaling", _softmax(Q @ K.T) @ V, {}),
    ("scaled_by_d_k", _softmax(Q @ K.T / 3) @ V, {}),
    ("softmax_wrong_axis", _softmax(Q @ K.T / np.sqrt(3), axis=0) @ V, {}),
    ("keys_as_values", _softmax(Q @ K.T / np.sqrt(3)) @ K, {}),
    # …and with the causal mask:
    ("causal_forgotten", _softmax(Q @ K.T / np.sqrt(3)) @ V, {"causal": True}),
    ("mask_zero_fill", _softmax(np.where(CAUSAL, Q @ K.T / np.sqrt(3), 0)) @ V, {"causal": True}),
    ("mask_after_softmax", (_softmax(Q @ K.T / np.sqrt(3)) * CAUSAL) @ V, {"causal": True}),
])
def test_mistakes_worked_by_independent_numpy_are_diagnosed(name, context, config):
    config = AttentionConfig(score="scaled_dot", **config)
    report = _check(SEED004, config, {"context": np.round(context, 4).tolist()})
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.name == name


def test_swapped_queries_and_keys_worked_by_numpy():
    # seed 004's Q Kᵀ happens to be symmetric, so a random problem: K Qᵀ ≠ Q Kᵀ
    rng = np.random.default_rng(8)
    x, wq, wk, wv = (rng.normal(size=s).round(2) for s in ((4, 3), (3, 3), (3, 3), (3, 3)))
    q, k, v = x @ wq, x @ wk, x @ wv
    problem = Problem.from_mapping({"x": x, "W_q": wq, "W_k": wk, "W_v": wv}, "p.json")
    report = _check(problem, AttentionConfig(),
                    {"context": np.round(_softmax(k @ q.T / np.sqrt(3)) @ v, 4).tolist()})
    assert report.diagnosis is not None and report.diagnosis.name == "queries_keys_swapped"
