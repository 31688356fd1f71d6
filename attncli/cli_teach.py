"""The teacher's commands: attncli exercise (hand-friendly per-student exercises) and attncli
grade (a class graded with check's rules). Registered on :data:`attncli.cli.app`; the work is
in :mod:`attncli.teach`."""

from __future__ import annotations

import enum
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import _command, _steps, handled
from attncli.config import OPTIONS
from attncli.errors import InputError
from attncli.options import OUTPUT, SHARED, _adding, output_path
from attncli.render.registry import GRADE, GradeFormat, find, renderers

#: compute's options that choose the attention (not the input, not where it runs): an
#: exercise takes them as compute does. Its --seed is the exercise's own (and the dropout's).
_EXERCISE_OPTIONS = [p for p in SHARED if p.name not in (
    "sample", "x", "memory", "wq", "wk", "wv", "wo", "mask", "set_", "tensor", "weight_layout",
    "backend", "device", "dtype", "seed")]
EXERCISE = "Exercise"


class Numbers(enum.StrEnum):
    integers = "integers"
    tenths = "tenths"


class FeedbackFormat(enum.StrEnum):
    markdown = "markdown"
    html = "html"


class WorksheetFormat(enum.StrEnum):
    markdown = "markdown"
    latex = "latex"


@_command
@_adding(_EXERCISE_OPTIONS)
def exercise(
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="The folder to write (made; an exercise folder attncli wrote "
        "before is replaced).", metavar="DIR", rich_help_panel=OUTPUT,
        show_default=False)] = ...,
    tokens: Annotated[int, typer.Option(min=1, max=12, help="Tokens (rows of x).",
                                        rich_help_panel=EXERCISE)] = 3,
    d_model: Annotated[int, typer.Option("--d-model", min=1, max=16, help="Width of x and of "
                                         "the projections (H·d_head).",
                                         rich_help_panel=EXERCISE)] = 4,
    memory_tokens: Annotated[int | None, typer.Option(
        min=1, max=12, help="Memory tokens, for --variant cross (default: --tokens).",
        rich_help_panel=EXERCISE, show_default=False)] = None,
    numbers: Annotated[Numbers, typer.Option(
        help="integers: x of small integers; tenths: x with one decimal.",
        rich_help_panel=EXERCISE)] = Numbers.integers,
    allow_uniform: Annotated[bool, typer.Option(
        "--allow-uniform", help="Allow a row of weights that is uniform or one-hot to 4 "
        "decimals.", rich_help_panel=EXERCISE)] = False,
    seed: Annotated[int | None, typer.Option(
        min=0, help="The variant: the same seed gives the same numbers.",
        rich_help_panel=EXERCISE, show_default=False)] = None,
    student: Annotated[str | None, typer.Option(
        help="One student's variant: a function of --assignment and this id.",
        rich_help_panel=EXERCISE, show_default=False)] = None,
    assignment: Annotated[str | None, typer.Option(
        help="The assignment's name, which with each id picks each student's variant.",
        rich_help_panel=EXERCISE, show_default=False)] = None,
    roster: Annotated[Path | None, typer.Option(
        help="A CSV with a column id (and optionally name): DIR/<id>/ for every student.",
        rich_help_panel=EXERCISE, show_default=False)] = None,
    steps: Annotated[str | None, typer.Option(
        help="The steps to compute, comma-separated (default: every step of the run).",
        rich_help_panel=OUTPUT, show_default=False)] = None,
    query: Annotated[int | None, typer.Option(
        help="Ask only this query row, by index (0 the first, -1 the last).",
        rich_help_panel=OUTPUT, show_default=False)] = None,
    worksheet_format: Annotated[WorksheetFormat, typer.Option(
        help="worksheet.md, or worksheet.tex (LaTeX).",
        rich_help_panel=OUTPUT)] = WorksheetFormat.markdown,
    opts=None,
) -> None:
    """Make an exercise with hand-friendly numbers, one variant per student.

    Writes DIR/problem.json (the problem, attncli's input format), DIR/worksheet.md (the
    inputs as tables, the steps to compute, the answer template), DIR/answers-template.json
    (the asked steps, every entry null), DIR/key.json (compute's JSON of the exact answers) and
    DIR/solution.md (the arithmetic of each asked row); with --roster, DIR/<id>/ for each
    student and DIR/exercise.json, which attncli grade reads. Hand out problem.json, the
    worksheet and the template; keep the key and the solution.

    The numbers: x of small integers, weights of -1, 0 and 1, d_head a perfect square when the
    scores are scaled (1/√4 = 1/2), scores within ±4, no row of weights uniform or one-hot to
    4 decimals, no tie for hard attention. A student's variant is a function of (assignment,
    id): the same command writes the same exercises again.

    [bold]Examples[/]

      attncli exercise --variant scaled --tokens 3 --d-model 4 --seed=7 -o ex
      attncli exercise --variant causal --steps weights,context --assignment hw3 \\
        --roster roster.csv -o hw3
      attncli exercise --heads 2 --d-model 8 --query 1 --student s01 --assignment hw3 -o s01
    """
    with handled(opts.debug):
        from attncli.teach.exercise import Assignment, files, make_exercise, manifest, write_tree
        from attncli.teach.numbers import Spec
        from attncli.teach.roster import Student, id_fault, read_roster

        class_given = student is not None or roster is not None
        if seed is not None and class_given:
            raise InputError("--seed and --student/--roster contradict each other: a "
                             "student's variant comes from --assignment and their id")
        if class_given and not assignment:
            raise InputError("--student and --roster need --assignment NAME: with the id it "
                             "picks each student's variant")
        if student is not None and roster is not None:
            raise InputError("--student and --roster: give one (a roster makes every "
                             "student's exercise)")
        if seed is None and not class_given:
            raise InputError("give --seed S for one exercise, or --assignment NAME with "
                             "--student ID or --roster FILE")
        if student is not None and (fault := id_fault(student)) is not None:
            raise InputError(f"--student: {fault}")
        asked = _steps(steps)
        variant = opts.variant.value if opts.variant is not None else None
        taken = {p.name for p in _EXERCISE_OPTIONS}
        fields = {k: v for k, v in opts.config_fields().items()
                  if v is not None and OPTIONS[k].param in taken}
        if variant in ("multihead", "gqa") and not fields.get("heads"):
            raise InputError(f"--variant {variant} needs --heads H (and --d-model H·d_head, "
                             "e.g. --heads 2 --d-model 8)")
        spec = Spec(tokens, d_model, heads=fields.get("heads") or 1,
                    kv_heads=fields.get("kv_heads"), numbers=numbers.value,
                    memory_tokens=memory_tokens or (tokens if variant == "cross" else None),
                    output=asked is not None and "output" in asked,
                    allow_uniform=allow_uniform, sinks=variant in ("sinks", "gpt-oss"))
        plan = Assignment(spec, variant, fields, opts.no_scale,
                          None if asked is None else tuple(asked), query, assignment,
                          worksheet_format is WorksheetFormat.latex)
        students = (read_roster(roster) if roster is not None else
                    [Student(student)] if student is not None else [None])
        made = [make_exercise(plan, seed, s) for s in students]
        command = "attncli " + shlex.join(sys.argv[1:])
        contents = {}
        for one in made:
            prefix = "" if roster is None else f"{one.student.id}/"
            contents.update({prefix + name: text for name, text in files(one, plan).items()})
        if roster is not None:
            contents["roster.csv"] = "id,name\n" + "".join(
                f"{s.id},{_csv_cell(s.name)}\n" for s in students)
        contents["exercise.json"] = manifest(plan, made, command, roster is not None,
                                             list(contents))
        write_tree(output, contents)
        where = (f"{len(made)} exercise{'s' * (len(made) != 1)} in {output}/<id>/"
                 if roster is not None else f"the exercise in {output}/")
        typer.echo(f"wrote {where}: hand out problem.json, the worksheet and "
                   "answers-template.json; keep key.json and solution.md", err=True)


def _csv_cell(text: str) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([text])
    return out.getvalue()


_GRADE_OPTIONS = [p for p in SHARED if p.name == "debug"]


@_command
@_adding(_GRADE_OPTIONS)
def grade(
    exercises: Annotated[Path, typer.Option(
        help="The folder attncli exercise wrote (with its exercise.json).", metavar="DIR",
        show_default=False)] = ...,
    submissions: Annotated[Path, typer.Option(
        help="The students' answers: a file or folder each, named after their id.",
        metavar="DIR", show_default=False)] = ...,
    roster: Annotated[Path | None, typer.Option(
        help="The class, when the exercise was made without --roster (one exercise for "
        "all); else the exercise's own.", show_default=False)] = None,
    points: Annotated[str | None, typer.Option(
        help="Points per step, e.g. weights=2,context=3 (1 each by default).",
        show_default=False)] = None,
    tolerance: Annotated[str, typer.Option(
        help="As attncli check: decimals (as written), decimals:N, sigfigs:N, rel:R, abs:A."
    )] = "decimals",
    fmt: Annotated[GradeFormat | None, typer.Option(
        "--format", "-f", help="table; csv (a gradebook to import) or json \\[default: from "
        "-o's extension, else table].", rich_help_panel=OUTPUT, show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the gradebook to this file.", parser=output_path,
        metavar="FILE", rich_help_panel=OUTPUT, show_default=False)] = None,
    feedback: Annotated[Path | None, typer.Option(
        help="Write one page per student here: their marks, the diagnosis, the arithmetic "
        "of their first wrong entry.", metavar="DIR", rich_help_panel=OUTPUT,
        show_default=False)] = None,
    feedback_format: Annotated[FeedbackFormat, typer.Option(
        help="The feedback pages: markdown (ID.md) or html (ID.html, self-contained).",
        rich_help_panel=OUTPUT)] = FeedbackFormat.markdown,
    opts=None,
) -> None:
    """Grade a class: each submission against its own student's exercise, with check's rules.

    A submission is a file or folder named after a roster id: answers-template.json filled in
    (ID.json), a CSV per step (ID/weights.csv), a Markdown table per step (ID.md) or rows of
    numbers under each step's name (ID.txt). Every entry is graded as attncli check grades it
    (rounding and errors carried forward, the mistake named); a step earns its points (1, or
    --points) times the fraction of its entries not wrong. The gradebook has a row per roster
    student (no submission: 0) and per file named after nobody; a malformed submission's row
    says why.

    Exit status: 0 the class was graded (whatever the grades); 2 bad usage (no roster, a
    missing key, a bad option).

    [bold]Examples[/]

      attncli grade --exercises hw3 --submissions hw3-answers
      attncli grade --exercises hw3 --submissions hw3-answers --points weights=2 \\
        -f csv -o grades.csv
      attncli grade --exercises hw3 --submissions hw3-answers --feedback feedback
    """
    with handled(opts.debug):
        from attncli.io.writer import check_target
        from attncli.render.output import Request
        from attncli.teach.classroom import grade_class, parse_points
        from attncli.teach.feedback import write_pages
        from attncli.tolerance import Tolerance

        rule = Tolerance.parse(None if tolerance == "decimals" else tolerance)
        weights = parse_points(points)
        if feedback is None and feedback_format is not FeedbackFormat.markdown:
            raise InputError("--feedback-format html needs --feedback DIR, the folder of "
                             "the pages")
        check_target(output)
        renderer = _grade_renderer(fmt, output)  # before the grading, not after it
        book = grade_class(exercises, submissions, roster, weights, rule)
        if feedback is not None:
            write_pages(book, feedback, title=exercises.name,
                        html=feedback_format is FeedbackFormat.html)
        renderer.load()(book, Request(output))


def _grade_renderer(fmt: GradeFormat | None, output: Path | None):
    """--format's renderer, else -o's extension's (.csv, .json, .txt), else the table.

    Raises: InputError for an -o extension that names no format of grade's (.xlsx)."""
    if fmt is not None:
        return find(GRADE, fmt)
    suffix = "" if output is None else output.suffix.lower()
    found = next((r for r in renderers(GRADE) if suffix in r.extensions), None)
    if found is None and suffix:
        raise InputError(f"-o {output}: {suffix} is no format attncli grade writes; the "
                         "extension picks .csv, .json or .txt (a table); or give --format")
    return found or find(GRADE, "table")
