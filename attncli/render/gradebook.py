"""attncli grade's gradebook: a row per roster student, then per submission named after
nobody, as a table, CSV (for a spreadsheet or an LMS import) or JSON."""

from __future__ import annotations

import csv
import io

import orjson
from rich.markup import escape
from rich.table import Table

from attncli.render.output import Request
from attncli.teach.classroom import Grade, Gradebook, points_text


def _points(value: float | None) -> str:
    """Points as :func:`attncli.teach.classroom.points_text` writes them; "" for None."""
    return "" if value is None else points_text(value)


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run: one starting with = + - @ (a file named
    =HYPERLINK(…).json) is quoted with ', as OWASP's CSV-injection advice says."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
    texts = {0, 1, *range(len(columns(book)) - 4, len(columns(book)))}  # id, name, the words
    writer.writerows([_cell(v) if i in texts else v for i, v in enumerate(_row(grade, book))]
                     for grade in book.grades)
    return out.getvalue()


def grade_dict(grade: Grade) -> dict:
    """One row of the JSON gradebook (points None where no key applies) with check's whole
    report (:func:`attncli.render.check.report_dict`)."""
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
    """grade's --format table: the gradebook as a rich table, then how many were graded and
    their mean."""
    roster = [g for g in book.grades if g.worth]
    graded = [g for g in roster if g.report is not None]
    of = _points(sum(book.points.values()))
    means = [f"mean {_points(sum(g.points for g in graded) / len(graded))} of {of} points "
             "over those graded"] if graded else []
    request.console(lambda console: [
        console.print(_table(book)),
        console.print("; ".join([f"{len(graded)} of {len(roster)} students graded", *means]))])


def write_csv(book: Gradebook, request: Request) -> None:
    """grade's --format csv (:func:`render_csv`)."""
    request.text(render_csv(book))


def write_json(book: Gradebook, request: Request) -> None:
    """grade's --format json (:func:`render_json`)."""
    request.text(render_json(book))
