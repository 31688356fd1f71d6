"""check's reports: a table per answered step marking each entry, the verdicts with their
counts, the diagnosis; and the one-line-per-file forms (CSV, JSON) for graders."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

import numpy as np
import orjson
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape

from attncli.check import CARRIED, RIGHT, ROUNDED, WRONG, Counts, Report, StepVerdict
from attncli.render.layout import matrix_slices, number
from attncli.render.output import Request
from attncli.render.table import blocked_tables
from attncli.trace import STEP_NAMES, Trace

if TYPE_CHECKING:
    from attncli.tolerance import Tolerance

NO_DIAGNOSIS = "no known mistake reproduces these numbers"
#: Each entry's mark and colour: marked, not only coloured (NO_COLOR and files show it too).
MARKS = {RIGHT: "✓", ROUNDED: "≈", CARRIED: "→", WRONG: "✗"}
_COLOUR = {RIGHT: "green", ROUNDED: "yellow", CARRIED: "cyan", WRONG: "bold red"}
_VERDICT = {"right": "green", "right within rounding": "yellow", "carried forward": "cyan",
            "wrong": "bold red"}
LEGEND = ("each cell: the answer, its mark, then the exact value: ✓ right · ≈ within rounding "
          "(of the exact value, of your own rounded steps or of steps not shown) · → carried "
          "forward from an earlier wrong step · ✗ wrong")
#: The columns of --format csv for the counts: JSON's keys too.
COUNT_NAMES = ("right", "within_rounding", "carried_forward", "wrong")


def laid_out_view(trace: Trace, verdict: StepVerdict, query: int | None):
    """given, expected and status on the step's own axes (a query row keeps a length-1 axis),
    with the trace narrowed to that row for its labels: what check's tables (text, Markdown,
    HTML) lay out."""
    axes = trace.step(verdict.step).axes
    arrays = [verdict.given, verdict.expected, verdict.status, verdict.decimals]
    if query is not None and "query" in axes:
        position = axes.index("query")
        arrays = [np.expand_dims(a, position) for a in arrays]
        trace = trace.at_query(query)
    return trace, axes, arrays


def _tables(trace: Trace, verdict: StepVerdict, query: int | None, decimals: int,
            width: int) -> list:
    view, axes, arrays = laid_out_view(trace, verdict, query)
    tables = []
    for given, expected, status, written in zip(
            *(matrix_slices(view, array, axes) for array in arrays), strict=True):
        plain = [[entry_text(g, e, int(s), int(k), decimals)
                  for g, e, s, k in zip(*rows, strict=True)]
                 for rows in zip(given.matrix, expected.matrix, status.matrix, written.matrix,
                                 strict=True)]
        styled = [[f"[{_COLOUR[int(s)]}]{escape(text)}[/]" for text, s in zip(row, st,
                                                                               strict=True)]
                  for row, st in zip(plain, status.matrix, strict=True)]
        tables += blocked_tables(given, plain, styled, width)
    return tables


def entry_text(given: float, expected: float, status: int, written: int, decimals: int) -> str:
    """An answer's cell: the answer as written, its mark, and the exact value unless ✓."""
    shown = "(blank)" if np.isnan(given) else number(given, written)  # as written
    if status == RIGHT:
        return f"{shown} {MARKS[RIGHT]}"
    return f"{shown} {MARKS[status]} {number(expected, decimals)}"


def print_report(trace: Trace, report: Report, console: Console, precision: int = 4) -> None:
    """Each answered step as a table (each entry marked, the exact value after a mark other
    than ✓), its verdict, counts and score, and the diagnosis of a wrong answer."""
    query = None if report.query is None else trace.query_index(report.query)
    title = escape(report.file) + (f"  (query {escape(report.query)})" if report.query else "")
    console.print(f"[bold]{title}[/]")
    if report.error:
        console.print(f"[bold red]error:[/] {escape(report.error)}")
        return
    console.print(f"[dim]{escape(LEGEND)}[/]")
    for verdict in report.verdicts:
        c = verdict.counts
        console.print(f"[bold magenta]{verdict.step}[/]  [{_VERDICT[verdict.verdict]}]"
                      f"{verdict.verdict}[/]: {escape(verdict.note)}  "
                      f"[bold]score {c.entries - c.wrong}/{c.entries}[/]")
        if verdict.given.shape == verdict.expected.shape:
            tables = _tables(trace, verdict, query, max(precision, 1), console.width)
            console.print(tables[0] if len(tables) == 1 else Columns(tables))
    console.print(summary_line(report, markup=True))


def first_wrong_entry(trace: Trace, report: Report) -> tuple[str, int, int | None] | None:
    """The first wrong entry of the first wrong step, as (step, query row, key column or
    None), indices (tokens may repeat): the row (and key) whose arithmetic explains it. None
    when no entry is wrong (or the wrong step is of another shape)."""
    step = next((v for v in report.verdicts if not v.ok), None)
    if step is None or step.given.shape != step.expected.shape:
        return None
    index = tuple(int(i) for i in np.argwhere(step.status == WRONG)[0])
    where = dict(zip(step.axes, index, strict=True))
    row = (trace.query_index(report.query) if report.query is not None
           else where.get("query", 0))
    return step.step, int(row), where.get("key")


SCORE_STEPS = ("scores", "scaled_scores", "masked_scores", "capped_scores", "biased_scores")


def report_markdown(trace: Trace, report: Report, precision: int = 4) -> str:
    """A report in Markdown: per answered step its verdict, note and score, and a table whose
    cells are the answer, its mark and (unless ✓) the exact value; the legend; the summary."""
    query = None if report.query is None else trace.query_index(report.query)
    lines = [f"*{LEGEND}*", ""]
    for verdict in report.verdicts:
        c = verdict.counts
        lines += [f"### {verdict.step}: {verdict.verdict}", "",
                  f"{verdict.note} — score {c.entries - c.wrong}/{c.entries}", ""]
        if verdict.given.shape != verdict.expected.shape:
            continue
        view, axes, arrays = laid_out_view(trace, verdict, query)
        for given, expected, status, written in zip(
                *(matrix_slices(view, array, axes) for array in arrays), strict=True):
            if given.where:
                lines += [f"*{given.where}*", ""]
            lines.append("| " + " | ".join([f"{given.row_axis} \\\\ {given.col_axis}",
                                            *given.cols]) + " |")
            lines.append("|---|" + "---:|" * len(given.cols))
            for label, *rows in zip(given.rows, given.matrix, expected.matrix, status.matrix,
                                    written.matrix, strict=True):
                cells = [entry_text(g, e, int(st), int(k), max(precision, 1))
                         for g, e, st, k in zip(*rows, strict=True)]
                lines.append("| " + " | ".join([label, *cells]) + " |")
            lines.append("")
    lines += [f"**{summary_line(report)}**", ""]
    return "\n".join(lines)


def summary_line(report: Report, markup: bool = False) -> str:
    """The verdict of a whole answers file in one line."""
    if report.error:
        return f"error: {report.error}"
    c, steps = report.counts, len(report.verdicts)
    score = f"score {c.entries - c.wrong}/{c.entries} entries"
    if report.ok:
        how = ("right" if c.right == c.entries else
               "right or within rounding" if not c.carried else "not wrong")
        text = f"all {steps} step(s) {how}; {score}"
        return f"[green]{escape(text)}[/]" if markup else text
    wrong = [v.step for v in report.verdicts if not v.ok]
    parts = [f"{len(wrong)} of {steps} step(s) wrong", score]
    if steps > 1:
        parts.append(f"the first wrong step is {report.first_wrong}")
    parts.append(f"diagnosis: {report.diagnosis.sentence()}" if report.diagnosis is not None
                 else NO_DIAGNOSIS)
    text = "; ".join(parts)
    return f"[bold red]{escape(text)}[/]" if markup else text


def _counts(counts: Counts) -> dict:
    values = (counts.right, counts.rounded, counts.carried, counts.wrong)
    return {**dict(zip(COUNT_NAMES, values, strict=True)), "entries": counts.entries,
            "score": counts.score}


def report_dict(report: Report) -> dict:
    return {
        "file": report.file,
        "query": report.query,
        "ok": report.ok,
        "error": report.error,
        **_counts(report.counts),
        "steps": {v.step: {"verdict": v.verdict, "note": v.note,
                           "given": v.given.tolist(), "expected": v.expected.tolist(),
                           "carried": None if v.carried is None else v.carried.tolist(),
                           "carried_from": v.carried_from, "status": v.status.tolist(),
                           **_counts(v.counts)} for v in report.verdicts},
        "first_wrong": report.first_wrong,
        "diagnosis": None if report.diagnosis is None else {
            "mistake": report.diagnosis.name, "says": report.diagnosis.sentence(),
            "explains": report.diagnosis.explains},
    }


def render_json(reports: list[Report], tolerance: str = "decimals") -> str:
    """{"ok": bool, "tolerance": str, "reports": [...]}: status per entry 0 = right, 1 = within
    rounding, 2 = wrong, 3 = carried forward; −∞ as null; counts and score (the fraction of
    entries not wrong) per report and per step; ``carried`` holds what follows from the
    answers' own earlier steps (null when no earlier step is given)."""
    document = {"ok": all(r.ok for r in reports), "tolerance": tolerance,
                "reports": [report_dict(r) for r in reports]}
    return orjson.dumps(document).decode() + "\n"


def render_csv(reports: list[Report]) -> str:
    """One line per answers file: file, result, score, the entries right / within rounding /
    carried forward / wrong, the steps by verdict, the first wrong step, the diagnosis (or the
    error); then those four counts for each step any file answers."""
    steps = [s for s in STEP_NAMES if any(v.step == s for r in reports for v in r.verdicts)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "result", "score", "entries", *COUNT_NAMES, "steps_right",
                     "steps_within_rounding", "steps_carried_forward", "steps_wrong",
                     "first_wrong", "diagnosis", *(f"{s}_{n}" for s in steps for n in COUNT_NAMES)])
    for report in reports:
        if report.error:
            writer.writerow([report.file, "error", *[""] * 11, report.error,
                             *[""] * (4 * len(steps))])
            continue
        by_step = {v.step: v for v in report.verdicts}
        c = report.counts
        names = {w: " ".join(v.step for v in report.verdicts if v.verdict == w)
                 for w in ("right", "right within rounding", "carried forward", "wrong")}
        diagnosis = (report.diagnosis.sentence() if report.diagnosis else
                     "" if report.ok else NO_DIAGNOSIS)
        per_step = []
        for s in steps:
            sc = by_step[s].counts if s in by_step else None
            per_step += ([""] * 4 if sc is None else
                         [sc.right, sc.rounded, sc.carried, sc.wrong])
        # the score in full: 278527 of 278528 entries is 0.99999641…, never "1.0000"
        writer.writerow([report.file, "right" if report.ok else "wrong", repr(c.score),
                         c.entries, c.right, c.rounded, c.carried, c.wrong, *names.values(),
                         report.first_wrong or "", diagnosis, *per_step])
    return out.getvalue()


def write_table(trace: Trace, reports: list[Report], rule: Tolerance,
                request: Request) -> None:
    """check's --format table: each report (:func:`print_report`), in colour on a terminal, as
    plain text in a file; the exact values with --precision's decimals (4)."""
    request.console(lambda console: [print_report(trace, report, console, request.digits(4))
                                     for report in reports])


def write_json(trace: Trace, reports: list[Report], rule: Tolerance,
               request: Request) -> None:
    """check's --format json (:func:`render_json`), naming ``rule``, the tolerance."""
    request.text(render_json(reports, str(rule)))


def write_csv(trace: Trace, reports: list[Report], rule: Tolerance,
              request: Request) -> None:
    """check's --format csv (:func:`render_csv`): one line per answers file."""
    request.text(render_csv(reports))
