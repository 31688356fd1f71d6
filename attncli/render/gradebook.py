"""attncli grade's gradebook: a row per roster student, then per submission named after
nobody, as a table, CSV (for a spreadsheet or an LMS import) or JSON."""

from __future__ import annotations

import csv
import io

import orjson
from rich.markup import escape
from rich.table import Table

from attncli.render.output import Request
from attncli.teach.classroom import Grade, Gradebook


def _points(value: float | None) -> str:
    """Points as a grader writes them: up to 2 decimals, no trailing zeros (7.5, 2.67, 3)."""
    if value is None:
        return ""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def columns(book: Gradebook) -> list[str]:
    """The CSV's columns: id, name, points, max, each asked step's points, first_wrong,
    diagnosis, submission, note."""
    return ["id", "name", "points", "max", *book.steps, "first_wrong", "diagnosis",
            "submission", "note"]


def _row(grade: Grade, book: Gradebook) -> list[str]:
    graded = grade.report is not None or grade.worth
    return [grade.id, grade.name, _points(grade.points) if graded else "",
            _points(grade.max) if graded else "",
            *(_points(grade.steps.get(s) or 0.0) if graded else "" for s in book.steps),
            grade.first_wrong or "", grade.diagnosis, grade.submission or "", grade.note]


def render_csv(book: Gradebook) -> str:
    """The gradebook as CSV: :func:`columns`; a step not answered earns 0 (its name is in the
    note); a row not graded (no submission, not on the roster) has empty points where no key
    applies."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns(book))
    writer.writerows(_row(grade, book) for grade in book.grades)
    return out.getvalue()


def grade_dict(grade: Grade) -> dict:
    from attncli.render.check import report_dict

    return {"id": grade.id, "name": grade.name, "submission": grade.submission,
            "points": grade.points if grade.worth else None,
            "max": grade.max if grade.worth else None, "steps": grade.steps,
            "worth": grade.worth, "first_wrong": grade.first_wrong,
            "diagnosis": grade.diagnosis or None, "note": grade.note or None,
            "report": None if grade.report is None else report_dict(grade.report)}


def render_json(book: Gradebook) -> str:
    """{"steps", "points" (each step's worth), "max", "tolerance", "students": [...]}: per
    student the points earned per step (null: not answered) and check's whole report."""
    document = {"steps": book.steps, "points": book.points, "max": sum(book.points.values()),
                "tolerance": str(book.tolerance),
                "students": [grade_dict(g) for g in book.grades]}
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n"


def _table(book: Gradebook) -> Table:
    table = Table(title="gradebook", title_justify="left", caption="diagnosis: the mistake "
                  "behind the first wrong step (CSV and JSON say where it shows)",
                  caption_justify="left")
    for name in ("id", "name", "points", *book.steps, "first wrong", "diagnosis or note"):
        table.add_column(name, justify="right" if name in ("points", *book.steps) else "left",
                         overflow="fold")
    for grade in book.grades:
        row = _row(grade, book)
        graded = bool(row[2])
        total = f"{row[2]}/{row[3]}" if graded else ""
        mistake = (grade.report.diagnosis.says if grade.report is not None
                   and grade.report.diagnosis is not None else grade.diagnosis)
        said = "; ".join(text for text in (mistake, grade.note) if text)
        table.add_row(escape(grade.id), escape(grade.name), total,
                      *row[4:4 + len(book.steps)], grade.first_wrong or "", escape(said))
    return table


def write_table(book: Gradebook, request: Request) -> None:
    graded = sum(1 for g in book.grades if g.report is not None)
    mean = (sum(g.points for g in book.grades if g.worth) /
            max(1, sum(1 for g in book.grades if g.worth)))
    request.console(lambda console: [
        console.print(_table(book)),
        console.print(f"{graded} graded of {sum(1 for g in book.grades if g.worth)} students; "
                      f"mean {_points(mean)} of {_points(sum(book.points.values()))} points")])


def write_csv(book: Gradebook, request: Request) -> None:
    request.text(render_csv(book))


def write_json(book: Gradebook, request: Request) -> None:
    request.text(render_json(book))
