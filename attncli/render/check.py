"""check's reports: a table per answered step marking each entry, the verdicts, the diagnosis;
and the one-line-per-file forms (CSV, JSON) for graders."""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape

from attncli.check import Report, StepVerdict
from attncli.render import matrix_slices, number
from attncli.render.table import blocked_tables
from attncli.trace import Trace

NO_DIAGNOSIS = "no known mistake reproduces these numbers"
_MARK = {0: "green", 1: "yellow", 2: "bold red"}
_VERDICT = {"right": "green", "right within rounding": "yellow", "wrong": "bold red"}


def _laid_out(trace: Trace, verdict: StepVerdict, query: int | None):
    """given, expected and status on the step's own axes (a query row keeps a length-1 axis),
    with the trace narrowed to that row for its labels."""
    axes = trace.step(verdict.step).axes
    arrays = [verdict.given, verdict.expected, verdict.status, verdict.decimals]
    if query is not None and "query" in axes:
        position = axes.index("query")
        arrays = [np.expand_dims(a, position) for a in arrays]
        trace = trace.at_query(query)
    return trace, axes, arrays


def _tables(trace: Trace, verdict: StepVerdict, query: int | None, decimals: int,
            width: int) -> list:
    view, axes, arrays = _laid_out(trace, verdict, query)
    tables = []
    for given, expected, status, written in zip(
            *(matrix_slices(view, array, axes) for array in arrays), strict=True):
        plain = [[_cell(g, e, int(s), int(k), decimals) for g, e, s, k in zip(*rows, strict=True)]
                 for rows in zip(given.matrix, expected.matrix, status.matrix, written.matrix,
                                 strict=True)]
        styled = [[f"[{_MARK[int(s)]}]{escape(text)}[/]" for text, s in zip(row, st, strict=True)]
                  for row, st in zip(plain, status.matrix, strict=True)]
        tables += blocked_tables(given, plain, styled, width)
    return tables


def _cell(given: float, expected: float, status: int, written: int, decimals: int) -> str:
    shown = number(given, written)  # as the answer wrote it
    if status == 0:
        return f"{shown} ✓"  # marked, not only coloured: NO_COLOR and files show it too
    return f"{shown} {'≈' if status == 1 else '✗'} {number(expected, decimals)}"


def print_report(trace: Trace, report: Report, console: Console, precision: int = 4) -> None:
    """Each answered step as a table (given ✓, ≈ expected, or ✗ with the expected value),
    its verdict, and the diagnosis of a wrong answer."""
    query = None if report.query is None else trace.query_index(report.query)
    title = escape(report.source) + (f"  (query {escape(report.query)})" if report.query else "")
    console.print(f"[bold]{title}[/]")
    if report.error:
        console.print(f"[bold red]error:[/] {escape(report.error)}")
        return
    for verdict in report.verdicts:
        console.print(f"[bold magenta]{verdict.step}[/]  [{_VERDICT[verdict.verdict]}]"
                      f"{verdict.verdict}[/]: {escape(verdict.note)}")
        if verdict.given.shape == verdict.expected.shape:
            tables = _tables(trace, verdict, query, max(precision, 1), console.width)
            console.print(tables[0] if len(tables) == 1 else Columns(tables))
    console.print(summary_line(report, markup=True))


def summary_line(report: Report, markup: bool = False) -> str:
    """The verdict of a whole answers file in one line."""
    if report.error:
        return f"error: {report.error}"
    wrong = [v.step for v in report.verdicts if not v.ok]
    if not wrong:
        text = f"all {len(report.verdicts)} step(s) right"
        return f"[green]{text}[/]" if markup else text
    parts = [f"{len(wrong)} of {len(report.verdicts)} step(s) wrong"]
    if len(report.verdicts) > 1:
        parts.append(f"the first wrong step is {report.first_wrong}")
    if report.diagnosis is not None:
        parts.append(f"diagnosis: {report.diagnosis.sentence()}")
    else:
        parts.append(NO_DIAGNOSIS)
    text = "; ".join(parts)
    return f"[bold red]{escape(text)}[/]" if markup else text


def report_dict(report: Report) -> dict:
    return {
        "file": report.source,
        "query": report.query,
        "ok": report.ok,
        "error": report.error,
        "steps": {v.step: {"verdict": v.verdict, "note": v.note,
                           "given": v.given.tolist(), "expected": v.expected.tolist(),
                           "status": v.status.tolist()} for v in report.verdicts},
        "first_wrong": report.first_wrong,
        "diagnosis": None if report.diagnosis is None else {
            "mistake": report.diagnosis.name, "says": report.diagnosis.sentence(),
            "explains": report.diagnosis.explains},
    }


def render_json(reports: list[Report]) -> str:
    """{"ok": bool, "reports": [...]}: status per entry 0 = right, 1 = within rounding,
    2 = wrong."""
    document = {"ok": all(r.ok for r in reports), "reports": [report_dict(r) for r in reports]}
    return orjson.dumps(document).decode() + "\n"


def render_csv(reports: list[Report]) -> str:
    """One line per answers file: file, result, steps right and wrong, first wrong step,
    diagnosis (or the error)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "result", "steps_right", "steps_wrong", "first_wrong", "diagnosis"])
    for report in reports:
        right = [v.step for v in report.verdicts if v.ok]
        wrong = [v.step for v in report.verdicts if not v.ok]
        result = "error" if report.error else "right" if report.ok else "wrong"
        diagnosis = report.error or (report.diagnosis.sentence() if report.diagnosis else
                                     "" if report.ok else NO_DIAGNOSIS)
        writer.writerow([report.source, result, " ".join(right), " ".join(wrong),
                         report.first_wrong or "", diagnosis])
    return out.getvalue()
