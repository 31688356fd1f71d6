"""A simulated class of 40 through the command line: `attncli exercise --roster`, then every
student's answers worked out here by independent numpy from THEIR problem.json (never from
the key), handed in the four forms students write (the JSON template, a folder of CSVs, a
Markdown file, a text file), then `attncli grade`: every row of the gradebook as constructed.

Two exercises, each for the same 40 students:

- ``causal``: --variant causal, 3 tokens, d_model 4, integers, every step asked up to the
  output (queries … output), ``--points weights=2,context=3``: 7 steps worth 1, so 12 points.
  Every mistake of check's list that can happen here is made by two students.
- ``scaled``: --variant scaled, --numbers tenths, only scores, weights, context and output
  asked (queries, keys, values and the scaled scores are worked but not shown): a mistake
  shows in the first asked step after it (no scaling shows in the weights, keys used as the
  values in the context).

How a step's points are constructed here: its points × the fraction of its entries that are
not wrong. A mistake makes wrong exactly the entries of the step where it enters that differ
from the right numbers (every earlier step is right); every later step, worked correctly from
the student's own wrong numbers, is carried forward (full points); the mistake is charged
once. E.g. no scaling in the causal exercise: scaled_scores written as the scores; an entry
whose score is 0 is right all the same (0 / 2 = 0), so with z zero scores of the 9 the step
earns (z / 9) × 1 point and the class's gradebook shows 11 + z/9 of 12.

Rounding: "right" students write full precision (repr of float64), 4 decimals of the exact
numbers, or round by hand to 2 decimals at each step and work the next step from their rounded
numbers (half up, as a person rounds); all earn every point.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import attncli
from attncli.check import MISTAKES
from attncli.render.check import NO_DIAGNOSIS
from attncli.teach.classroom import NO_SUBMISSION, NOT_ON_ROSTER
from tests.teach.conftest import run_in

runner = CliRunner()
FORMS = ("json", "csv", "md", "txt")
PIPELINE = ("queries", "keys", "values", "scores", "scaled_scores", "masked_scores", "weights",
            "context", "output")
SAYS = {m.name: m.says for m in MISTAKES}
#: The step (of the whole pipeline) where each mistake enters: the steps it changes itself.
ENTERS = {
    "transposed_weights": ("queries", "keys", "values"),
    "keys_as_values": ("values",),
    "queries_keys_swapped": ("scores",),
    "no_scaling": ("scaled_scores",),
    "scaled_by_d_k": ("scaled_scores",),
    "causal_forgotten": ("masked_scores",),
    "mask_zero_fill": ("masked_scores",),
    "mask_after_softmax": ("masked_scores",),
    "softmax_wrong_axis": ("weights",),
    "W_o_forgotten": ("output",),
}



# --- the students' own numpy -----------------------------------------------------------------


def _softmax(scores: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _half_up(a: np.ndarray, k: int) -> np.ndarray:
    """Rounded to k decimals as a person rounds (0.065 → 0.07), −∞ kept."""
    unit = Decimal(1).scaleb(-k)
    return np.vectorize(lambda v: float(Decimal(f"{v:.12f}").quantize(unit, ROUND_HALF_UP))
                        if np.isfinite(v) else v, otypes=[float])(a)


def worked(problem: dict, mistake: str | None = None, hand: int | None = None) -> dict:
    """Every step of ``problem`` as a student works it: softmax(Q Kᵀ / √d_k, causal mask) V
    W_o, with ``mistake`` made, each step rounded half up to ``hand`` decimals before the next
    one uses it."""
    keep = (lambda a: a) if hand is None else (lambda a: _half_up(a, hand))
    x = np.array(problem["x"], dtype=float)
    W_q, W_k, W_v = (np.array(problem[n], dtype=float) for n in ("W_q", "W_k", "W_v"))
    if mistake == "transposed_weights":
        W_q, W_k, W_v = W_q.T, W_k.T, W_v.T
    n, d_k = len(x), W_q.shape[1]
    queries, keys, values = keep(x @ W_q), keep(x @ W_k), keep(x @ W_v)
    if mistake == "keys_as_values":
        values = keys
    scores = keep(keys @ queries.T if mistake == "queries_keys_swapped" else queries @ keys.T)
    scale = {"no_scaling": 1.0, "scaled_by_d_k": float(d_k)}.get(mistake, np.sqrt(d_k))
    scaled = keep(scores / scale)
    causal = problem["config"]["variant"] == "causal"
    allowed = np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)
    if mistake in ("causal_forgotten", "mask_after_softmax"):
        masked = scaled
    elif mistake == "mask_zero_fill":
        masked = np.where(allowed, scaled, 0.0)
    else:
        masked = np.where(allowed, scaled, -np.inf)
    weights = _softmax(masked, axis=0 if mistake == "softmax_wrong_axis" else -1)
    if mistake == "mask_after_softmax":  # masked after the softmax, not renormalised
        weights = np.where(allowed, weights, 0.0)
    weights = keep(weights)
    context = keep(weights @ values)
    W_o = np.array(problem["W_o"], dtype=float)
    output = context if mistake == "W_o_forgotten" else keep(context @ W_o)
    return {"queries": queries, "keys": keys, "values": values, "scores": scores,
            "scaled_scores": scaled, "masked_scores": masked, "weights": weights,
            "context": context, "output": output}


# --- the forms students hand in --------------------------------------------------------------


def _cell(v: float, decimals: int | None, form: str) -> str:
    if np.isneginf(v):
        return {"json": "null", "md": "−∞"}.get(form, "-inf")
    if np.isnan(v):  # an entry left empty
        return "null" if form in ("json", "txt") else ""
    return repr(float(v)) if decimals is None else f"{v:.{decimals}f}"


def _rows(a: np.ndarray, decimals: int | None, form: str) -> list[list[str]]:
    return [[_cell(v, decimals, form) for v in row] for row in np.atleast_2d(a)]


def write_submission(folder: Path, sid: str, form: str, answers: dict[str, np.ndarray],
                     decimals: int | None, tokens: list[str]) -> None:
    """``answers`` (step → array, NaN an empty entry, −∞ masked) in ``form``, as
    ``folder/sid.json``, ``folder/sid/STEP.csv``, ``folder/sid.md`` or ``folder/sid.txt``."""
    if form == "json":  # answers-template.json filled in
        text = ",\n".join(f'  "{step}": [' + ", ".join(
            "[" + ", ".join(row) + "]" for row in _rows(a, decimals, form)) + "]"
            for step, a in answers.items())
        (folder / f"{sid}.json").write_text("{\n" + text + "\n}\n", encoding="utf-8")
    elif form == "csv":  # one file per step, in a folder named after the student
        (folder / sid).mkdir()
        for step, a in answers.items():
            (folder / sid / f"{step}.csv").write_text(
                "".join(",".join(row) + "\n" for row in _rows(a, decimals, form)))
    elif form == "md":  # a heading naming the step, a table with the worksheet's labels
        parts = [f"# Homework of {sid}\n"]
        for step, a in answers.items():
            header = tokens if step in ("scores", "scaled_scores", "masked_scores",
                                        "weights") else [str(i) for i in range(a.shape[-1])]
            labels = tokens
            parts += [f"## {step}\n", "| | " + " | ".join(header) + " |",
                      "|---|" + "---:|" * len(header)]
            parts += [f"| **{label}** | " + " | ".join(row) + " |"
                      for label, row in zip(labels, _rows(a, decimals, form), strict=True)]
            parts.append("")
        (folder / f"{sid}.md").write_text("\n".join(parts), encoding="utf-8")
    else:  # text: a line naming the step, then rows of numbers
        (folder / f"{sid}.txt").write_text("".join(
            f"{step}:\n" + "".join(" ".join(row) + "\n" for row in _rows(a, decimals, form))
            + "\n" for step, a in answers.items()), encoding="utf-8")


def _submission_name(sid: str, form: str) -> str:
    return f"{sid}/" if form == "csv" else f"{sid}.{form}"


# --- the class ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one student hands in. ``kind``: right, mistake, missing (``step`` left out),
    partial (two entries of ``step`` left empty), malformed (``how``), none (no submission).
    ``decimals``: written with k decimals (None: full precision); ``hand``: rounded to k
    decimals at each step."""

    kind: str
    form: str = "json"
    decimals: int | None = 4
    hand: int | None = None
    mistake: str | None = None
    step: str | None = None
    how: str | None = None


@dataclass(frozen=True)
class Exercise:
    name: str
    assignment: str
    options: tuple[str, ...]
    steps: tuple[str, ...]
    points: dict[str, float]
    mistakes: tuple[str, ...]
    extras: tuple[Plan, ...]

    def plans(self) -> list[Plan]:
        rights = [Plan("right", form, decimals, hand) for decimals, hand in
                  ((None, None), (4, None), (2, 2)) for form in FORMS]
        copies = (40 - len(rights) - len(self.extras)) // len(self.mistakes)
        wrongs = [Plan("mistake", FORMS[(i + 2 * c + c // 2) % 4], (4, None)[c % 2],
                       mistake=m) for c in range(copies) for i, m in enumerate(self.mistakes)]
        plans = rights + wrongs + list(self.extras)
        assert len(plans) == 40
        return plans


EXERCISES = [
    Exercise("causal", "hw3", ("--variant", "causal"), PIPELINE, {"weights": 2.0, "context": 3.0},
             tuple(ENTERS),
             (Plan("missing", "json", step="weights"), Plan("missing", "txt", step="context"),
              Plan("partial", "json", step="weights"),
              Plan("malformed", "json", how="not json"),
              Plan("malformed", "md", how="columns"),
              Plan("misspelled", "json"),
              Plan("none"), Plan("none"))),
    Exercise("scaled", "hw8", ("--variant", "scaled", "--numbers", "tenths"),
             ("scores", "weights", "context", "output"), {"output": 2.0},
             ("no_scaling", "scaled_by_d_k", "softmax_wrong_axis", "queries_keys_swapped",
              "keys_as_values", "W_o_forgotten"),
             (Plan("missing", "md", step="scores"), Plan("missing", "csv", step="output"),
              Plan("partial", "json", step="weights"), Plan("partial", "md", step="context"),
              Plan("malformed", "json", how="not json"),
              Plan("malformed", "md", how="columns"),
              Plan("misspelled", "json"), Plan("misspelled", "csv"),
              Plan("none"), Plan("none"))),
]


def _students() -> list[tuple[str, str]]:
    names = {7: "Lovelace, Ada", 12: "Zoë Ngũgĩ"}  # a comma and accents, quoted in the CSV
    return [(f"s{i:02d}", names.get(i, f"Student {i:02d}")) for i in range(1, 41)]


@dataclass
class Expected:
    """A gradebook row as constructed: points per step, the first wrong step, the
    mistake (its name), the note (exact, or ``note_has`` a part of it), the submission."""

    sid: str
    name: str
    plan: Plan
    steps: dict[str, float] = field(default_factory=dict)
    first_wrong: str = ""
    mistake: str | None = None
    diagnosis: str = ""
    note: str = ""
    note_has: str = ""
    submission: str = ""
    wrong_entry: tuple[str, int, int] | None = None  # (step, row, column) first wrong
    wrong: dict[str, np.ndarray] = field(default_factory=dict)  # step → its wrong entries

    @property
    def points(self) -> float:
        return sum(self.steps.values())


class Degenerate(Exception):
    """A student's variant where a planned mistake cannot show as planned: it changes no
    entry, changes one by less than 2·10⁻³ (where a rounding allowance could decide), or
    gives the numbers another mistake gives."""


def _differs(mistaken: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The entries a mistake changed; none is within 2·10⁻³ (no borderline entry in this
    class: a rounding allowance can never decide them)."""
    same = np.isclose(mistaken, right, rtol=0, atol=1e-9) | (mistaken == right)
    near = np.isclose(mistaken, right, rtol=0, atol=2e-3) & ~same
    if near.any():
        raise Degenerate(f"changed by less than 2e-3: {mistaken[near]} for {right[near]}")
    return ~same


def construct(exercise: Exercise, problem: dict, sid: str, name: str, plan: Plan,
              folder: Path) -> Expected:
    """Write the student's submission into ``folder`` and return its row as constructed."""
    worth = {s: exercise.points.get(s, 1.0) for s in exercise.steps}
    expected = Expected(sid, name, plan, dict.fromkeys(exercise.steps, 0.0))
    if plan.kind == "none":
        expected.note = NO_SUBMISSION
        return expected
    expected.submission = _submission_name(sid, plan.form)
    right = worked(problem)
    own = worked(problem, plan.mistake, plan.hand)
    answers = {s: own[s].copy() for s in exercise.steps}
    expected.steps = dict(worth)
    if plan.kind == "mistake":
        # where the mistake enters: its own steps, or the first asked step it changes
        first = PIPELINE.index(ENTERS[plan.mistake][0])
        assert all(np.array_equal(own[s], right[s]) for s in PIPELINE[:first]), plan
        shows = [s for s in ENTERS[plan.mistake] if s in exercise.steps] or [
            next((s for s in PIPELINE[first:] if s in exercise.steps
                  and not np.allclose(own[s], right[s], rtol=0, atol=1e-9)), None)]
        if None in shows:
            raise Degenerate(f"{sid}: {plan.mistake} changes no asked step")
        assert all(np.allclose(own[s], right[s], rtol=0, atol=1e-9) for s in
                   exercise.steps[:exercise.steps.index(shows[0])]), plan
        for other in ENTERS:  # another mistake giving the same numbers: either could be named
            theirs = worked(problem, other, plan.hand)
            if other != plan.mistake and all(np.allclose(theirs[s], own[s], rtol=0, atol=1e-9)
                                             for s in exercise.steps):
                raise Degenerate(f"{sid}: {plan.mistake} gives the numbers of {other}")
        changed = {s: _differs(own[s], right[s]) for s in shows}
        for s in shows:
            if not changed[s].any():
                raise Degenerate(f"{sid}: {plan.mistake} changes no entry of {s}")
            expected.steps[s] = worth[s] * (1 - changed[s].mean())
        expected.wrong = changed
        expected.first_wrong, expected.mistake = shows[0], plan.mistake
        expected.diagnosis = SAYS[plan.mistake]
        row, column = (int(i) for i in np.argwhere(changed[shows[0]])[0])
        expected.wrong_entry = (shows[0], row, column)
    elif plan.kind == "missing":
        answers[plan.step][...] = np.nan  # left null in the template, or not written
        if plan.form != "json":
            del answers[plan.step]
        expected.steps[plan.step] = 0.0
        expected.note = f"not answered: {plan.step}"  # a wrong entry, none
    elif plan.kind == "partial":
        holes = [(0, 1), (2, 0)]  # inside the table: no empty trailing column
        expected.wrong = {plan.step: np.zeros(answers[plan.step].shape, bool)}
        for i, j in holes:
            answers[plan.step][i, j] = np.nan
            expected.wrong[plan.step][i, j] = True
        expected.steps[plan.step] = worth[plan.step] * (1 - len(holes) / answers[
            plan.step].size)
        expected.first_wrong, expected.diagnosis = plan.step, NO_DIAGNOSIS
    elif plan.kind == "misspelled":  # read as the step it nearly names, as a grader would
        answers["wieghts"] = answers.pop("weights")
        expected.note = (f"{sid}.json: 'wieghts' read as weights" if plan.form == "json" else
                         "wieghts.csv read as weights")
    elif plan.kind == "malformed":
        expected.steps = dict.fromkeys(exercise.steps, 0.0)
        step = "weights"
        if plan.how == "columns":  # the last column of the weights left out
            answers[step] = answers[step][:, :-1]
            n = len(problem["x"])
            expected.note_has = f"{step}: {n} × {n - 1} numbers, the exercise asks {n} × {n}"
        else:
            expected.note_has = f"subs/{sid}.json: invalid JSON at line "
    write_submission(folder, sid, plan.form, answers, plan.decimals, problem["tokens"])
    if plan.how == "not json":  # cut short: not JSON any more
        path = folder / f"{sid}.json"
        path.write_text(path.read_text()[:-40])
    return expected


@dataclass
class Graded:
    exercise: Exercise
    root: Path
    problems: dict[str, dict]
    expected: list[Expected]
    rows: list[dict[str, str]]
    columns: list[str]
    document: dict


@pytest.fixture(scope="module", params=EXERCISES, ids=[e.name for e in EXERCISES])
def graded(request, tmp_path_factory) -> Graded:
    exercise: Exercise = request.param
    root = tmp_path_factory.mktemp(exercise.name)
    students = _students()
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("id", "name"), *students])
    (root / "roster.csv").write_text(out.getvalue(), encoding="utf-8")
    # the assignment's name picks the variants: the first name (from exercise.assignment on)
    # whose variants let every planned mistake show is used (normally the first)
    for tried in range(8):
        name = exercise.assignment + ("" if not tried else f"-{tried}")
        made = _run("exercise", *exercise.options, "--tokens", "3", "--d-model", "4",
                    "--steps", ",".join(exercise.steps), "--assignment", name,
                    "--roster", "roster.csv", "-o", "hw", cwd=root)
        assert made.exit_code == 0, (made.stderr, made.exception)
        shutil.rmtree(root / "subs", ignore_errors=True)
        (root / "subs").mkdir()
        problems, expected = {}, []
        try:
            for (sid, who), plan in zip(students, exercise.plans(), strict=True):
                problems[sid] = json.loads((root / "hw" / sid / "problem.json").read_text())
                expected.append(construct(exercise, problems[sid], sid, who, plan,
                                          root / "subs"))
            break
        except Degenerate:
            continue
    else:
        pytest.fail("no assignment name gives variants where every mistake shows")
    (root / "subs" / "zoe.json").write_text(  # named after nobody on the roster
        (root / "subs" / "s01.json").read_text())
    points = ",".join(f"{s}={p:g}" for s, p in exercise.points.items())
    book = _run("grade", "--exercises", "hw", "--submissions", "subs", "--points", points,
                "-f", "csv", "--feedback", "fb", cwd=root)
    assert book.exit_code == 0, (book.stderr, book.exception)
    reader = csv.DictReader(io.StringIO(book.stdout))
    rows = list(reader)
    document = _run("grade", "--exercises", "hw", "--submissions", "subs", "--points", points,
                    "-f", "json", cwd=root)
    assert document.exit_code == 0, (document.stderr, document.exception)
    return Graded(exercise, root, problems, expected, rows, list(reader.fieldnames),
                  json.loads(document.stdout))


# --- the gradebook ----------------------------------------------------------------------------


def test_the_class_is_what_the_brief_asks(graded):
    kinds = [e.plan.kind for e in graded.expected]
    assert len(kinds) == 40 and kinds.count("none") == 2
    for kind in ("right", "mistake", "missing", "partial", "malformed"):
        assert kind in kinds
    for form in FORMS:  # every kind of right answer in every form
        assert {(e.plan.decimals, e.plan.hand) for e in graded.expected
                if e.plan.kind == "right" and e.plan.form == form} == {
            (None, None), (4, None), (2, 2)}
    made = {e.plan.mistake for e in graded.expected if e.plan.kind == "mistake"}
    assert made == set(graded.exercise.mistakes)
    if graded.exercise.name == "causal":
        assert made == set(ENTERS)


def test_every_row_of_the_csv_gradebook_is_as_constructed(graded):
    steps = list(graded.exercise.steps)
    assert graded.columns == ["id", "name", "points", "max", *steps, "first_wrong",
                              "diagnosis", "submission", "note"]
    worth = sum(graded.exercise.points.get(s, 1.0) for s in steps)
    assert worth == (12.0 if graded.exercise.name == "causal" else 5.0)
    assert [r["id"] for r in graded.rows] == [e.sid for e in graded.expected] + ["zoe"]
    for row, e in zip(graded.rows, graded.expected, strict=False):
        who = (e.sid, e.plan)
        assert row["name"] == e.name, who
        assert float(row["max"]) == worth, who
        assert float(row["points"]) == pytest.approx(e.points, abs=0.005), (who, row)
        for step in steps:
            assert float(row[step]) == pytest.approx(e.steps[step], abs=0.005), (who, step, row)
        assert row["first_wrong"] == e.first_wrong, (who, row)
        if e.mistake is not None:
            assert row["diagnosis"].startswith(e.diagnosis + " (this reproduces "), (who, row)
        else:
            assert row["diagnosis"] == e.diagnosis, (who, row)
        assert row["submission"] == e.submission, who
        if e.note_has:
            assert e.note_has in row["note"] and row["note"].startswith("subs/"), (who, row)
        else:
            assert row["note"] == e.note, (who, row)
    zoe = graded.rows[-1]
    assert zoe == {"id": "zoe", "name": "", "points": "", "max": "", **dict.fromkeys(steps, ""),
                   "first_wrong": "", "diagnosis": "", "submission": "zoe.json",
                   "note": NOT_ON_ROSTER}
    # points as a grader writes them: 2 decimals at most, no trailing zeros
    assert all(re.fullmatch(r"\d+|\d+\.\d?[1-9]", r[c])
               for r in graded.rows[:-1] for c in ("points", "max", *steps))


def test_the_json_report_names_each_mistake_where_it_enters(graded):
    students = graded.document["students"]
    assert [s["id"] for s in students] == [e.sid for e in graded.expected] + ["zoe"]
    assert graded.document["steps"] == list(graded.exercise.steps)
    for student, e in zip(students, graded.expected, strict=False):
        who = (e.sid, e.plan)
        report = student["report"]
        if e.plan.kind in ("none", "malformed"):
            assert report is None and student["points"] == 0, who
            continue
        for step in graded.exercise.steps:  # exact points, not the CSV's 2 decimals
            earned = student["steps"][step]
            if e.plan.kind == "missing" and step == e.plan.step:
                assert earned is None, who
            else:
                assert earned == pytest.approx(e.steps[step], abs=1e-9), (who, step)
        verdicts = {step: v["verdict"] for step, v in report["steps"].items()}
        for step, v in report["steps"].items():  # wrong (status 2): exactly as constructed
            wrong = e.wrong.get(step, np.zeros(np.shape(v["status"]), bool))
            assert np.array_equal(np.array(v["status"]) == 2, wrong), (who, step, v["status"])
        if e.mistake is None:
            assert report["diagnosis"] is None, who  # the gradebook: no known mistake
            continue
        assert report["diagnosis"]["mistake"] == e.mistake, (who, report["diagnosis"])
        assert report["first_wrong"] == e.first_wrong, who
        shows = list(e.wrong)
        assert [s for s, v in verdicts.items() if v == "wrong"] == shows, (who, verdicts)
        later = graded.exercise.steps[graded.exercise.steps.index(shows[-1]) + 1:]
        assert all(verdicts[s] in ("carried forward", "right", "right within rounding")
                   for s in later), (who, verdicts)
    assert students[-1]["report"] is None and students[-1]["points"] is None


def test_right_answers_in_every_form_and_rounding_earn_every_point(graded):
    worth = sum(graded.exercise.points.get(s, 1.0) for s in graded.exercise.steps)
    rights = [r for r, e in zip(graded.rows, graded.expected, strict=False)
              if e.plan.kind == "right"]
    assert len(rights) == 12
    assert all(r["points"] == f"{worth:g}" and r["note"] == r["diagnosis"] == ""
               for r in rights), rights


# --- feedback pages ---------------------------------------------------------------------------


def _section(page: str, heading: str) -> str:
    start = page.index(heading)
    end = page.find("\n### ", start + len(heading))
    return page[start:] if end < 0 else page[start:end]


def test_feedback_one_page_per_student_with_the_mistakes_arithmetic(graded):
    pages = graded.root / "fb"
    assert sorted(p.name for p in pages.iterdir()) == sorted(
        f"{e.sid}.md" for e in graded.expected)  # zoe has none
    for e in graded.expected:
        page = (pages / f"{e.sid}.md").read_text(encoding="utf-8")
        assert e.sid in page and e.name in page
        if e.plan.kind in ("none", "malformed"):
            assert "Not graded" in page
            continue
        total = f"{e.points:.2f}".rstrip("0").rstrip(".")
        assert f"**{total} of " in page, (e.sid, page[:200])
        if e.mistake is None:
            continue
        assert SAYS[e.mistake][1:] in page, e.sid  # "What went wrong", capitalised
        step, row, column = e.wrong_entry
        assert f"## Your first wrong entry ({step}), worked out" in page, e.sid
        problem = graded.problems[e.sid]
        tokens = problem["tokens"]
        query = tokens[row] if step not in ("keys", "values") else tokens[0]
        explained = page[page.index("## Your first wrong entry"):]
        if step in ("scores", "scaled_scores", "masked_scores"):
            assert f"the score of “{query}” with “{tokens[column]}”" in explained, e.sid
        else:
            assert f"the row of “{query}”" in explained, e.sid
        # that entry's arithmetic: the exact numbers, from the numpy here, to 4 decimals
        right, i = worked(problem), tokens.index(query)
        if step in ("scores", "scaled_scores", "masked_scores"):
            key = tokens[column]
            assert re.search(rf"score\({query}, {key}\)\}} = .* = "
                             rf"{re.escape(_shown(right['scores'][i, column]))}\$", explained)
            assert re.search(rf"scaled\({key}\)\}} = .* = "
                             rf"{re.escape(_shown(right['scaled_scores'][i, column]))}\$",
                             explained), (e.sid, explained)
            continue
        weights = _section(explained, f"### Weights ({query})")
        for j, key in enumerate(tokens):
            shown = re.escape(_shown(right["weights"][i, j]))
            assert re.search(rf"weight\({key}\)\}}( = [^$]*)? = {shown}\$", weights), (
                e.sid, key, shown, weights)
        for name in ("context", "output"):
            row = " & ".join(_shown(v) for v in right[name][i])
            assert re.search(rf"\\text{{{name}}} = .* = \\begin{{bmatrix}}{re.escape(row)}"
                             r"\\end\{bmatrix\}\$", explained), (e.sid, name, row, explained)


def _shown(value: float) -> str:
    """A number as explain writes it: a whole number bare, else 4 decimals."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4f}"


# --- the Python API ---------------------------------------------------------------------------


def test_python_api_gives_the_gradebooks_points(graded):
    points = graded.exercise.points
    tried = 0
    for student, e in zip(graded.document["students"], graded.expected, strict=False):
        if e.plan.kind not in ("right", "mistake") or e.plan.form != "json":
            continue
        answers = {s: a for s, a in worked(graded.problems[e.sid], e.plan.mistake,
                                           e.plan.hand).items() if s in graded.exercise.steps}
        if e.plan.decimals is not None:
            answers = {s: np.round(a, e.plan.decimals) for s, a in answers.items()}
        grade = attncli.grade(graded.root / "hw" / e.sid, answers, points=points)
        assert grade.points == pytest.approx(student["points"], abs=1e-9), e.sid
        assert grade.steps == pytest.approx(student["steps"], abs=1e-9), e.sid
        assert grade.first_wrong == (e.first_wrong or None), e.sid
        if e.mistake is not None:
            assert grade.report.diagnosis.name == e.mistake, e.sid
        tried += 1
    assert tried >= 5


# --- bad usage: one line, status 2 ------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small")
    (root / "roster.csv").write_text("id,name\na1,A One\nb2,B Two\n")
    for args in (("--assignment", "hw", "--roster", "roster.csv", "-o", "hw"),
                 ("--seed", "5", "-o", "one")):
        made = _run("exercise", "--variant", "scaled", "--steps", "weights,context", *args,
                    cwd=root)
        assert made.exit_code == 0, made.stderr
    (root / "subs").mkdir()
    (root / "subs" / "a1.json").write_text('{"weights": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}')
    return root


@pytest.mark.parametrize(("args", "message"), [
    (("--exercises", "one", "--submissions", "subs"), "no roster"),
    (("--exercises", "hw", "--submissions", "subs", "--points", "output=2"),
     "--points output: not asked in this exercise"),
    (("--exercises", "hw", "--submissions", "subs", "--points", "weights:2"),
     "--points 'weights:2': expected STEP=POINTS"),
    (("--exercises", "hw", "--submissions", "nowhere"), "--submissions nowhere: no such folder"),
    (("--exercises", "nowhere", "--submissions", "subs"), "no exercise here"),
], ids=["no-roster", "points-not-asked", "bad-points", "no-submissions", "no-exercises"])
def test_bad_usage_is_one_line_and_status_2(small, args, message):
    result = _run("grade", *args, cwd=small)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_a_missing_key_is_status_2_and_names_the_file(small):
    key = small / "hw" / "b2" / "key.json"
    kept = key.read_text()
    key.unlink()
    try:
        result = _run("grade", "--exercises", "hw", "--submissions", "subs", cwd=small)
    finally:
        key.write_text(kept)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "hw/b2/key.json: no such file" in result.stderr


def test_the_roster_given_to_an_exercise_made_without_one(small):
    # the one exercise (--seed) graded for a class: the roster given to grade
    result = _run("grade", "--exercises", "one", "--submissions", "subs", "--roster",
                  "roster.csv", "-f", "csv", cwd=small)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["id"], r["note"]) for r in rows] == [("a1", "not answered: context"),
                                                    ("b2", NO_SUBMISSION)]


def _run(*args: str, cwd: Path):
    return run_in(cwd, *args)
