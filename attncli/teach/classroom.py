"""Grading a class: each submission matched to its student by name, graded against that
student's own exercise with check's rules (:class:`attncli.check.Checker`), points per step.

A step's points are its weight (``--points``, 1 by default) times the fraction of its entries
that are not wrong (right, within rounding, or carried forward from an earlier wrong step:
check's partial credit per entry); a step not answered earns 0. A submission is graded only
against the key of the student it is named after: an unknown name, a student without a
submission and a malformed submission each get a row saying so, and the others are graded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attncli.answers import Answers
from attncli.errors import AttncliError, InputError
from attncli.teach.exercise import MANIFEST
from attncli.teach.forms import ANSWER_SUFFIXES, answers_of, read_mapping, read_submission
from attncli.teach.roster import Student, id_fault, read_roster
from attncli.tolerance import Tolerance
from attncli.trace import STEP_NAMES

NO_SUBMISSION = "no submission"
NOT_ON_ROSTER = "not on the roster: not graded"


@dataclass
class Grade:
    """One row of the gradebook: a roster student, or a submission named after nobody.

    ``steps``: step → points earned (None: not answered); ``worth``: step → its points;
    ``report``: check's report (None when nothing was graded); ``note``: why not graded, why
    a submission is malformed, or which steps it leaves out.
    """

    id: str
    name: str = ""
    submission: str | None = None
    steps: dict[str, float | None] = field(default_factory=dict)
    worth: dict[str, float] = field(default_factory=dict)
    note: str = ""
    report: Any = field(default=None, repr=False)  # attncli.grading.Report
    key: Key | None = field(default=None, repr=False)

    @property
    def points(self) -> float:
        return math.fsum(p for p in self.steps.values() if p is not None)

    @property
    def max(self) -> float:
        return math.fsum(self.worth.values())

    @property
    def ok(self) -> bool:
        """Full marks: every asked step answered, no entry wrong."""
        return (self.report is not None and self.report.ok and not self.note
                and all(p is not None for p in self.steps.values()))

    @property
    def first_wrong(self) -> str | None:
        """The first step with a wrong entry (check's; the steps not answered are in the
        note)."""
        return None if self.report is None else self.report.first_wrong

    @property
    def diagnosis(self) -> str:
        from attncli.render.check import NO_DIAGNOSIS

        if self.report is None or self.report.ok:
            return ""
        return self.report.diagnosis.sentence() if self.report.diagnosis else NO_DIAGNOSIS

    def summary(self) -> str:
        """One line: points, the first wrong step and the diagnosis, or the note."""
        if self.report is None:
            return f"{self.id}: {self.note}"
        text = f"{points_text(self.points)}/{points_text(self.max)} points"
        if self.note:
            text += f"; {self.note}"
        if not self.report.ok:
            text += f"; first wrong step: {self.first_wrong}; diagnosis: {self.diagnosis}"
        return text

    @property
    def feedback(self) -> str:
        """The student's feedback page (Markdown, :func:`attncli.teach.feedback.page`)."""
        from attncli.teach.feedback import page

        return page(self)


def points_text(value: float) -> str:
    """Points as a grader writes them: up to 2 decimals, no trailing zeros (7.5, 2.67, 3)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def parse_points(text: str | None) -> dict[str, float]:
    """``--points weights=2,context=3``: step → points.

    Raises: InputError for an item that is not STEP=NUMBER, an unknown step, a number that is
    not finite and ≥ 0, or a step given twice.
    """
    points: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        step, sep, value = (part.strip() for part in item.partition("="))
        if not sep or step not in STEP_NAMES:
            import difflib

            close = difflib.get_close_matches(step, STEP_NAMES, n=1, cutoff=0.75)
            hint = f"; is it {close[0]}?" if sep and close else ""
            raise InputError(f"--points {item.strip()!r}: expected STEP=POINTS with a step of "
                             f"{', '.join(STEP_NAMES)} (e.g. --points weights=2,context=3)"
                             f"{hint}")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not (math.isfinite(number) and number >= 0):
            raise InputError(f"--points {item.strip()!r}: points must be a number ≥ 0")
        if step in points:
            raise InputError(f"--points: {step} given twice")
        points[step] = number
    return points


@dataclass
class Key:
    """One exercise as grading needs it: the problem, its config, the whole trace, the asked
    steps with the shapes of their answers, and the asked query row."""

    folder: Path
    problem: Any
    config: Any
    trace: Any
    shapes: dict[str, tuple[int, ...]]
    query: str | None
    _checker: Any = None

    def checker(self, tolerance: Tolerance):
        """check's Checker for this exercise and ``tolerance``, made once and kept (its
        mistaken runs are shared by the answers graded with it)."""
        from attncli.check import Checker

        if self._checker is None or self._checker.tolerance != tolerance:
            self._checker = Checker(self.problem, self.config, self.trace, tolerance)
        return self._checker


def load_key(folder: Path) -> Key:
    """The exercise in ``folder`` (problem.json and key.json, as attncli exercise writes
    them); the key is recomputed from the problem and must be key.json's numbers.

    Raises: InputError naming the file for a missing or unreadable problem or key, or a key
    that the problem does not give (one of them edited).
    """
    from attncli.attention.pipeline import attend
    from attncli.config import build
    from attncli.io import load_problem

    for name in ("problem.json", "key.json"):
        if not (folder / name).is_file():
            raise InputError(f"{folder / name}: no such file: grading needs each exercise's "
                             "problem.json and key.json, as attncli exercise wrote them")
    problem = load_problem(str(folder / "problem.json"))
    config = build(problem.config, None)
    try:
        key = json.loads((folder / "key.json").read_text(encoding="utf-8"))
        steps = {name: entry["data"] for name, entry in key["steps"].items()}
        query = key.get("query")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{folder / 'key.json'}: not a key attncli exercise wrote "
                         f"({type(exc).__name__}: {exc})") from None
    trace = attend(problem, config)
    asked = attend(problem, config, steps=list(steps), query=query)
    for name, data in steps.items():
        written = np.array(data, dtype=float if name != "masked_scores" else object)
        if name == "masked_scores":
            written = np.array([-np.inf if v is None else v for v in written.flat],
                               dtype=float).reshape(written.shape)
        if name not in asked or written.shape != asked.written(name).shape or not np.allclose(
                written, asked.written(name), rtol=1e-9, atol=1e-12):
            raise InputError(f"{folder / 'key.json'}: {name} is not what {folder}/problem.json "
                             "gives: was one of them edited? (attncli exercise writes both "
                             "again)")
    return Key(folder, problem, config, trace,
               {name: asked.written(name).shape for name in steps}, query)


def grade_answers(key: Key, answers: Answers, points: Mapping[str, float],
                  tolerance: Tolerance, student: Student, submission: str | None) -> Grade:
    """One student's answers graded against their key: check's report, then points per
    asked step (its weight times the fraction of its entries not wrong; 0 not answered).

    Raises: InputError from check for answers that it cannot grade (an unknown query row).
    """
    report = key.checker(tolerance).check(answers)
    by_step = {v.step: v for v in report.verdicts}
    worth = {step: points.get(step, 1.0) for step in key.shapes}
    steps = {step: None if step not in by_step else worth[step] * by_step[step].counts.score
             for step in key.shapes}
    missing = [s for s, p in steps.items() if p is None]
    notes = [f"not answered: {', '.join(missing)}"] * bool(missing) + list(answers.notes)
    return Grade(student.id, student.name, submission, steps, worth, "; ".join(notes), report,
                 key)


@dataclass
class Gradebook:
    """Every row of a class's grading: the roster's students in its order, then the
    submissions named after nobody. ``steps``: the asked steps (of the first exercise);
    ``points``: each step's weight."""

    grades: list[Grade]
    steps: list[str]
    points: dict[str, float]
    tolerance: Tolerance


def submissions(folder: Path) -> dict[str, list[Path]]:
    """The entries of ``folder`` by the name they are handed in under (a file's name without
    its extension, a folder's name); hidden files are left out.

    Raises: InputError when ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise InputError(f"--submissions {folder}: no such folder")
    found: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "~")):
            continue
        # a file by its name less an extension it may have (j.smith.json, j.smith.txt) or
        # none (j.smith: not the student j); a folder by its name
        name = entry.name if entry.is_dir() or "." not in entry.name[1:] else entry.stem
        found.setdefault(name, []).append(entry)
    return found


def students_of(exercises: Path, roster: Path | None) -> tuple[list[Student], bool]:
    """The class and whether each student has an exercise folder of their own: from
    ``roster`` when given, else from the exercise folder's manifest.

    Raises: InputError for no roster (an exercise made without --roster, and no --roster
    given) or a bad roster file.
    """
    manifest = exercises / MANIFEST
    listed: list[Student] = []
    alone: list[Student] = []  # the one student an exercise made with --student is for
    if manifest.is_file():
        try:
            document = json.loads(manifest.read_text(encoding="utf-8"))
            listed = [Student(s["id"], s.get("name", "")) for s in document.get("students", [])]
            one = document.get("student")
            alone = [Student(one["id"], one.get("name", ""))] if one else []
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{manifest}: not attncli exercise's manifest ({exc})") from None
        for student in (*listed, *alone):
            if (fault := id_fault(student.id)) is not None:
                raise InputError(f"{manifest}: {fault}")
    elif not (exercises / "key.json").is_file():
        raise InputError(f"--exercises {exercises}: no exercise here (no {MANIFEST} and no "
                         "key.json); give the folder attncli exercise -o wrote")
    if roster is not None:
        return read_roster(roster), bool(listed)
    if alone:
        return alone, False
    if not listed and (exercises.parent / MANIFEST).is_file():
        raise InputError(f"--exercises {exercises}: one student's exercise of the class in "
                         f"{exercises.parent}: give --exercises {exercises.parent}")
    if not listed:
        raise InputError(f"--exercises {exercises}: no roster: this exercise was made without "
                         "--roster; give --roster FILE to grade a class on the one exercise")
    return listed, True


def grade_class(exercises: Path, folder: Path, roster: Path | None = None,
                points: Mapping[str, float] | None = None,
                tolerance: Tolerance | None = None) -> Gradebook:
    """Grade every submission in ``folder`` against its student's exercise in ``exercises``.

    Raises: InputError (bad usage: status 2) for no roster, a missing or edited key, a
    ``points`` step that is not asked, or no submissions folder; a malformed submission is
    not an error but its row's note.
    """
    tolerance = tolerance or Tolerance()
    points = dict(points or {})
    students, own = students_of(exercises, roster)
    keys: dict[str, Key] = {}
    for student in students:  # every key first: a missing one is the teacher's to fix
        where = exercises / student.id if own else exercises
        if not where.is_dir():
            raise InputError(f"{where}: no exercise for {student.id}: the roster and the "
                             "exercise folder disagree")
        keys[student.id] = load_key(where) if own or not keys else next(iter(keys.values()))
    steps = list(next(iter(keys.values())).shapes)
    extra = [s for s in points if s not in steps]
    if extra:
        raise InputError(f"--points {', '.join(extra)}: not asked in this exercise (it asks "
                         f"{', '.join(steps)})")
    handed = submissions(folder)
    grades = []
    for student in students:  # alice.json, Alice.JSON: the same student's (ids differ in
        names = [n for n in handed if _same(n, student.id)]  # more than case)
        entries = [e for n in names for e in handed.pop(n)]
        grades.append(_grade_one(keys[student.id], student, entries, points, tolerance))
    for name, entries in handed.items():
        grades.append(Grade(name, "", _shown(entries), note=NOT_ON_ROSTER))
    return Gradebook(grades, steps, {s: points.get(s, 1.0) for s in steps}, tolerance)


def _same(name: str, sid: str) -> bool:
    """A file's name and an id alike but for case and Unicode form (macOS writes é as e + ́)."""
    import unicodedata

    return (unicodedata.normalize("NFC", name).casefold()
            == unicodedata.normalize("NFC", sid).casefold())


def _shown(entries: list[Path]) -> str:
    return ", ".join(e.name + ("/" if e.is_dir() else "") for e in entries)


def _grade_one(key: Key, student: Student, entries: list[Path], points: Mapping[str, float],
               tolerance: Tolerance) -> Grade:
    empty = Grade(student.id, student.name, _shown(entries) or None,
                  {s: None for s in key.shapes}, {s: points.get(s, 1.0) for s in key.shapes},
                  key=key)
    if not entries:
        empty.note = NO_SUBMISSION
        return empty
    answering = [e for e in entries if e.is_dir() or e.suffix.lower() in ANSWER_SUFFIXES]
    if len(answering) > 1:
        empty.note = f"several submissions ({_shown(answering)}): hand in one"
        return empty
    aside = [e for e in entries if e not in answering]  # s4.pdf beside s4.json: not answers
    aside_note = [f"not read: {_shown(aside)}"] if aside else []
    if not answering:
        empty.note = "; ".join([f"{_shown(entries)}: not an answer file: hand in .json, .csv "
                                "(a folder), .md or .txt"])
        return empty
    try:
        answers = read_submission(answering[0], key.shapes, key.query)
        graded = grade_answers(key, answers, points, tolerance, student, _shown(answering))
    except AttncliError as exc:
        empty.note = "; ".join([str(exc), *aside_note])
        return empty
    graded.note = "; ".join(n for n in (graded.note, *aside_note) if n)
    return graded


def grade(problem: Any, answers: Any, *, query: str | int | None = None,
          steps: list[str] | None = None, points: Mapping[str, float] | None = None,
          tolerance: str | Tolerance | None = None) -> Grade:
    """Grade one student's answers, as ``attncli grade`` grades each of a class (for notebook
    autograders: otter-grader, nbgrader, PrairieLearn's Python graders).

    Args:
        problem: an exercise folder (problem.json and key.json, as attncli exercise writes
            them; its asked steps and row are the key's), a problem file, a
            :class:`~attncli.problem.Problem`, or a mapping of problem keys.
        answers: step → numbers (nested lists, numpy arrays or tensors, with an optional
            "query"), or a path to an answers file or folder in any form
            (:func:`attncli.teach.forms.read_submission`).
        query: the one query row answered (a token or an index), when answers give one row.
        steps: the asked steps (default: the key's, else those answered); one not answered
            earns 0.
        points: step → points (1 each by default).
        tolerance: check's tolerance, as ``--tolerance`` writes it (default: decimals as
            written).
    Returns: a :class:`Grade`: ``points``, ``max``, ``steps`` (points per step), ``ok``,
        ``first_wrong``, ``diagnosis``, ``report`` (check's), ``feedback`` (a Markdown page).
    Raises: InputError for a problem or answers that cannot be read, an unknown step or row.
    """
    rule = tolerance if isinstance(tolerance, Tolerance) else Tolerance.parse(tolerance)
    key = _key_of(problem, answers, query, steps)
    if isinstance(answers, str | Path):
        given = read_submission(Path(answers), key.shapes, key.query)
        if steps is None and not (isinstance(problem, str | Path) and Path(problem).is_dir()):
            key.shapes = {s: key.shapes[s] for s in key.shapes if s in given.steps}
    else:
        given = answers_of(read_mapping(answers, key.shapes, "answers"), key.shapes, key.query,
                           "answers")
    return grade_answers(key, given, points or {}, rule, Student("answers"), None)


def _key_of(problem: Any, answers: Any, query: str | int | None,
            steps: list[str] | None) -> Key:
    """The key to grade against: an exercise folder's, or one made from a problem."""
    from attncli.attention.pipeline import attend
    from attncli.config import build
    from attncli.io import load_problem
    from attncli.problem import Problem

    if isinstance(problem, str | Path) and Path(problem).is_dir():
        key = load_key(Path(problem))
        if steps is not None:
            unknown = [s for s in steps if s not in key.shapes]
            if unknown:
                raise InputError(f"steps: {', '.join(unknown)}: not asked in {problem} (it asks "
                                 f"{', '.join(key.shapes)})")
            key.shapes = {s: key.shapes[s] for s in steps}
        return key
    if isinstance(problem, str | Path):
        problem = load_problem(str(problem))
    elif not isinstance(problem, Problem):
        problem = Problem.from_mapping(dict(problem), "problem")
    config = build(problem.config, None)
    trace = attend(problem, config)
    for step in steps or ():
        if step not in trace:
            raise InputError(f"steps: {step!r}: this problem computes no such step (it has "
                             f"{', '.join(trace.names())})")
    if isinstance(answers, Mapping):
        read = read_mapping(answers, {}, "answers")
        steps = [s for s in STEP_NAMES if s in read.steps] if steps is None else steps
        query = read.query[0] if query is None and read.query is not None else query
    steps = trace.names() if steps is None else steps
    steps = [s for s in steps if s in trace] + [s for s in steps if s not in trace]
    label = None if query is None else trace.query_tokens[trace.query_index(str(query))]
    asked = attend(problem, config, steps=steps, query=label)
    return Key(Path("."), problem, config, trace, {s: asked.written(s).shape for s in steps}, label)
