"""An exercise: a problem with hand-friendly numbers (:mod:`attncli.teach.numbers`), the steps
asked, and the files a teacher hands out and keeps.

An exercise is a problem, and its key is a Trace: the problem is written as attncli's own input
format (``problem.json``, which ``attncli compute`` runs as it is), the key as compute's JSON
document of the asked steps, and the worked solution as explain's arithmetic. Per student, the
variant is a function of (assignment, id) (:func:`attncli.teach.numbers.variant_seed`), so the
same command writes the same exercises again.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attncli.config import AttentionConfig, build
from attncli.errors import InputError
from attncli.teach.numbers import Spec, make_problem, variant_seed
from attncli.teach.roster import Student
from attncli.trace import Trace, not_computed

#: The manifest of an exercise folder: what made it and for whom (attncli grade reads it).
MANIFEST = "exercise.json"


@dataclass(frozen=True)
class Assignment:
    """What the teacher asked for, the same for every student.

    ``variant``, ``fields``, ``no_scale``: the options as compute takes them (``fields``: the
    config fields given, by name). ``steps``: the asked steps (None: every step the run
    computes). ``query``: the one query row asked, an index (None: every row). ``name``: the
    assignment's name, which with a student's id seeds their variant.
    """

    spec: Spec
    variant: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    no_scale: bool = False
    steps: tuple[str, ...] | None = None
    query: int | None = None
    name: str | None = None
    latex: bool = False

    def config(self, seed: int) -> AttentionConfig:
        """The run's options; a dropout mask drawn from the exercise's seed when none is given.

        Raises: ConfigError for contradictory options."""
        fields = dict(self.fields)
        if fields.get("dropout") and fields.get("seed") is None:
            fields["seed"] = seed % 2**31
        return build({}, self.variant, no_scale=self.no_scale, **fields)

    def file_config(self, config: AttentionConfig) -> dict[str, Any]:
        """problem.json's ``config``: the variant and the options given, as a file writes them
        (it gives ``config`` again, so compute runs the file as it is)."""
        written: dict[str, Any] = {} if self.variant is None else {"variant": self.variant}
        fields = dict(self.fields)
        if self.no_scale:
            fields["score"] = "dot"
        if config.seed is not None:
            fields["seed"] = config.seed
        written.update({k: v.value if isinstance(v, enum.Enum) else v
                        for k, v in fields.items() if v is not None})
        return written


@dataclass(frozen=True)
class Exercise:
    """One student's exercise (or the one exercise): its problem, config, whole trace (the
    key: every step, every row) and the asked part of it."""

    student: Student | None
    seed: int
    problem: dict[str, Any]
    config: AttentionConfig
    trace: Trace
    asked: Trace
    query: str | None  # the asked row's token, None: every row

    @property
    def steps(self) -> list[str]:
        return self.asked.names()


def make_exercise(assignment: Assignment, seed: int | None = None,
                  student: Student | None = None) -> Exercise:
    """The exercise of ``student`` (seeded by the assignment's name and their id), or of
    ``seed``.

    Raises: InputError / ConfigError when the options allow no hand-friendly problem, an asked
    step is not computed by this run, or the query row is out of range.
    """
    from attncli.attention.pipeline import attend
    from attncli.problem import Problem

    if student is not None:
        seed = variant_seed(assignment.name or "", student.id)
    if seed is None:
        raise InputError("give --seed S, or --student ID with --assignment NAME")
    config = assignment.config(seed)
    mapping = make_problem(assignment.spec, config, seed)
    file_config = {**mapping.pop("config", {}), **assignment.file_config(config)}
    problem = Problem.from_mapping({**mapping, "config": file_config}, "exercise")
    if build(problem.config, None) != config:  # the file must run as the exercise did
        raise AssertionError(f"problem.json's config {file_config} does not give {config}")
    trace = attend(problem, config)
    steps = list(assignment.steps) if assignment.steps is not None else trace.names()
    for name in steps:
        if name not in trace:
            raise InputError(f"--steps {name}: not computed in this exercise: "
                             f"{not_computed(name, problem, config)}")
    query = None
    if assignment.query is not None:
        tokens = trace.query_tokens
        if not -len(tokens) <= assignment.query < len(tokens):
            raise InputError(f"--query {assignment.query}: the exercise has {len(tokens)} "
                             f"tokens, rows 0 … {len(tokens) - 1} (or −1 for the last)")
        query = tokens[assignment.query]
    asked = attend(problem, config, steps=steps, query=query)
    about = _about(assignment, seed, student)
    return Exercise(student, seed, {"about": about, **mapping, "config": file_config}, config,
                    trace, asked, query)


def _about(assignment: Assignment, seed: int, student: Student | None) -> str:
    who = "" if student is None else f" for {student.id}" + (
        f" ({student.name})" if student.name else "")
    name = f"{assignment.name}: " if assignment.name else ""
    return f"{name}exercise{who}, variant {seed} (attncli exercise)"


def template(exercise: Exercise) -> dict[str, Any]:
    """answers-template.json: the asked steps with the key's shapes, every entry null."""
    def nulls(shape: tuple[int, ...]):
        return None if not shape else [nulls(shape[1:]) for _ in range(shape[0])]

    document: dict[str, Any] = {} if exercise.query is None else {"query": exercise.query}
    document.update({name: nulls(exercise.asked.written(name).shape)
                     for name in exercise.steps})
    return document


def dumps(document: Mapping[str, Any]) -> str:
    """JSON with each innermost row on one line: a template a student can fill by hand."""
    def write(value: Any, indent: int) -> str:
        if isinstance(value, list) and any(isinstance(v, list) for v in value):
            pad = " " * (indent + 2)
            return "[\n" + ",\n".join(pad + write(v, indent + 2) for v in value) + \
                "\n" + " " * indent + "]"
        return json.dumps(value, ensure_ascii=False)

    lines = [f"  {json.dumps(k, ensure_ascii=False)}: {write(v, 2)}" for k, v in document.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def files(exercise: Exercise, assignment: Assignment) -> dict[str, str]:
    """An exercise's files by name: problem.json, the worksheet (worksheet.md, or
    worksheet.tex with ``assignment.latex``), answers-template.json, key.json, solution.md."""
    from attncli.render.json import render_json
    from attncli.teach.worksheet import solution, worksheet

    sheet = "worksheet.tex" if assignment.latex else "worksheet.md"
    return {
        "problem.json": dumps(exercise.problem),
        sheet: worksheet(exercise, assignment),
        "answers-template.json": dumps(template(exercise)),
        "key.json": render_json(exercise.asked, None, indent=True),
        "solution.md": solution(exercise, assignment),
    }


def manifest(assignment: Assignment, exercises: list[Exercise], command: str,
             roster: bool = True, written: list[str] | None = None) -> str:
    """exercise.json: the command, the asked steps and row, and each student's variant: a
    roster's in ``students`` (their exercises in DIR/<id>/), one student's in ``student``
    (their exercise in DIR itself), else the one exercise's ``seed``; ``files``, the files
    written (``written``), which a later run may replace and nothing else."""
    from attncli import __version__

    first = exercises[0]
    import numpy

    document = {
        "attncli": __version__,
        # numpy's Generator streams may change between its versions (NEP 19): with another
        # numpy the same command may draw other exercises; grading reads problem.json
        "numpy": numpy.__version__,
        "command": command,
        "assignment": assignment.name,
        "steps": first.steps,
        "query": assignment.query,
        "students": [{"id": e.student.id, "name": e.student.name, "seed": e.seed}
                     for e in exercises] if roster else [],
    }
    document["files"] = sorted(written or [])
    if not roster:
        document["seed"] = first.seed
        if first.student is not None:
            document["student"] = {"id": first.student.id, "name": first.student.name}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def write_tree(folder: Path, contents: Mapping[str, str]) -> None:
    """Write ``contents`` (a path inside ``folder`` → text) as ``folder``, whole or not at all:
    into a new folder beside it, then renamed into place. An exercise folder attncli wrote
    before (it has exercise.json) is replaced; any other folder must be empty.

    Raises: InputError when ``folder`` is a file, holds other files, or cannot be written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"-o {folder}: a file, not a folder; give a new folder's name")
    if folder.is_dir() and any(folder.iterdir()):
        others = _not_written(folder)
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more"
                                             if len(others) > 3 else "")
            raise InputError(f"-o {folder}: the folder holds files attncli exercise did not "
                             f"write ({shown}); give a new or empty folder, or move them (an "
                             "exercise folder holding only what attncli wrote is replaced)")
    shown, folder = folder, folder.resolve()  # -o . is the folder by its name
    here = Path.cwd().resolve()
    if here == folder or folder in here.parents or folder.parent == folder:
        raise InputError(f"-o {shown}: the current folder or one holding it; give a folder's "
                         "name beside it (-o hw1): the exercise folder is replaced as a whole")
    parent = folder.parent
    if not parent.is_dir():
        raise InputError(f"-o {shown}: the folder {parent} does not exist")
    fresh = parent / f".{folder.name}.new-{os.getpid()}"
    old = parent / f".{folder.name}.old-{os.getpid()}"
    try:
        for name, text in contents.items():
            path = fresh / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if folder.is_dir():
            folder.rename(old)
        fresh.rename(folder)
    except OSError as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        if old.exists() and not folder.exists():
            old.rename(folder)
        raise InputError(f"-o {shown}: cannot write: {exc.strerror or exc}") from None
    shutil.rmtree(old, ignore_errors=True)


def _not_written(folder: Path) -> list[str]:
    """The files (and folders) in ``folder`` that its manifest does not list as written by
    attncli exercise: all of them when there is no manifest."""
    try:
        written = set(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        written = set()
    written.add(MANIFEST)
    found = []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        inside = any(w.startswith(name + "/") for w in written)
        if name not in written and not (path.is_dir() and inside):
            found.append(name + ("/" if path.is_dir() else ""))
    return [f for f in found if not any(f.startswith(o) and f != o for o in found
                                        if o.endswith("/"))]
