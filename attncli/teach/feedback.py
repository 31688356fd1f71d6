"""A student's feedback page (Markdown): their points per step, every entry marked, the
diagnosis, and the arithmetic of their first wrong entry written out (explain)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attncli.teach.classroom import Grade


def page(grade: Grade, title: str | None = None, precision: int = 4) -> str:
    """The page: a points table, check's marked tables (:func:`attncli.render.check.
    report_markdown`), the diagnosis, and explain's arithmetic of the first wrong entry."""
    from attncli.explain import explain
    from attncli.render.check import SCORE_STEPS, first_wrong_entry, report_markdown
    from attncli.render.explain import render_explain
    from attncli.render.registry import ExplainFormat
    from attncli.teach.classroom import points_text

    who = grade.id + (f" ({grade.name})" if grade.name else "")
    lines = [f"# {title or 'Feedback'} — {who}", ""]
    if grade.report is None:
        return "\n".join([*lines, f"Not graded: {grade.note}.", ""])
    lines += [f"**{points_text(grade.points)} of {points_text(grade.max)} points.**", "",
              "| step | points | of |", "|---|---:|---:|"]
    for step, earned in grade.steps.items():
        shown = "not answered" if earned is None else points_text(earned)
        lines.append(f"| {step} | {shown} | {points_text(grade.worth[step])} |")
    lines.append("")
    if grade.note:
        lines += [f"Note: {grade.note}.", ""]
    if grade.report.verdicts:
        lines += ["## Your answers, marked", "",
                  report_markdown(grade.key.trace, grade.report, precision)]
    if grade.report.diagnosis is not None:
        lines += ["## What went wrong", "", grade.diagnosis[0].upper() + grade.diagnosis[1:]
                  + ".", ""]
    entry = first_wrong_entry(grade.key.trace, grade.report)
    if entry is not None:
        step, row, column = entry
        trace = grade.key.trace
        query = trace.query_tokens[row]
        key = None if column is None else (trace.key_tokens or trace.query_tokens)[column]
        scored = column is not None and step in SCORE_STEPS
        what = f"the score of “{query}” with “{key}”" if scored else f"the row of “{query}”"
        lines += [f"## Your first wrong entry ({step}), worked out", "",
                  f"The arithmetic of {what}, with the exact numbers:", "",
                  render_explain(explain(trace, row, column if scored else None),
                                 ExplainFormat.markdown, precision)]
    return "\n".join(lines)


def page_html(grade: Grade, title: str | None = None, precision: int = 4) -> str:
    """The page as HTML (:mod:`attncli.render.html`): the points table, then check's page of
    the student's answers (each entry marked, the diagnosis, the first wrong entry worked
    out)."""
    import dataclasses

    from attncli.render.html import escaped as _escape
    from attncli.render.html import page as html_page
    from attncli.render.html import report_html
    from attncli.teach.classroom import points_text

    who = grade.id + (f" ({grade.name})" if grade.name else "")
    heading = f"{title or 'Feedback'} — {who}"
    if grade.report is None:
        return html_page("check", heading, [f'<p class="note">Not graded: '
                                            f'{_escape(grade.note)}.</p>'])
    rows = "".join(
        f"<tr><th scope=\"row\">{_escape(step)}</th><td>"
        f"{'not answered' if earned is None else points_text(earned)}</td>"
        f"<td>{points_text(grade.worth[step])}</td></tr>"
        for step, earned in grade.steps.items())
    body = [f"<p><strong>{points_text(grade.points)} of {points_text(grade.max)} "
            "points.</strong></p>",
            f'<table class="points"><thead><tr><th scope="col">step</th><th scope="col">'
            f'points</th><th scope="col">of</th></tr></thead><tbody>{rows}</tbody></table>']
    if grade.note:
        body.append(f'<p class="note">Note: {_escape(grade.note)}.</p>')
    shown = dataclasses.replace(grade.report, file=grade.submission or grade.report.file)
    body.append(report_html(grade.key.trace, shown, precision))  # not the teacher's path
    return html_page("check", heading, body)


def write_pages(book, folder: Path, title: str | None = None, html: bool = False) -> None:
    """One page per roster student, ``folder/<id>.md`` (:func:`page`) or ``<id>.html``
    (:func:`page_html`); the folder is made.

    Raises: InputError when the folder cannot be made or a page cannot be written.
    """
    from attncli.errors import InputError
    from attncli.io.writer import write_output

    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError(f"--feedback {folder}: cannot make the folder: "
                         f"{exc.strerror or exc}") from None
    for grade in book.grades:
        if grade.worth:  # a roster student (a file named after nobody has no page)
            if html:
                write_output(page_html(grade, title), folder / f"{grade.id}.html")
            else:
                write_output(page(grade, title), folder / f"{grade.id}.md")
