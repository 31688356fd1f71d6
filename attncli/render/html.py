"""One self-contained HTML page of a run: every step as a table, a heatmap per head of every
query × key step, and the arithmetic of any cell on a click (explain's terms).

Inline CSS and JavaScript only (no request of any kind, it opens from ``file://``); light and
dark by ``prefers-color-scheme``; every table readable when printed; the heatmaps' cells
reachable by the keyboard (one tab stop per grid, the arrow keys inside it). The DOM is the
contract the browser tests read (tests/render/test_html_browser.py).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from attncli.grading import CARRIED, RIGHT, ROUNDED, WRONG
from attncli.render.drawing import hidden_cells, limits, position, query_by_key, sink_note
from attncli.render.heatmap import viridis
from attncli.render.layout import Slice, matrix_slices, number, slices
from attncli.render.output import Request
from attncli.trace import Step, Trace

#: The most rows and columns a table or heatmap shows; a larger step is cut to its first
#: ones, with a line saying so and how to see the rest.
MOST = 48
#: The most query × key cells (of every head shown) whose arithmetic the page carries
#: (explain's terms for each); past it a click says which attncli explain command writes it.
ARITHMETIC_CELLS = 800

_ASSETS = Path(__file__).with_name("html_assets")


def escaped(text: object) -> str:
    """User text (a token, a file name) for HTML: <, >, &, quotes escaped."""
    return html.escape(str(text), quote=True)


_e = escaped


def page(kind: str, title: str, body: list[str], data: dict | None = None,
         command: str | None = None) -> str:
    """The whole document: ``body`` (HTML fragments) in the page skeleton, ``data`` (the
    cells' arithmetic, JSON) for the script, the command line under the title; ``kind``
    (compute, model, check, explain) in ``<html data-attncli>``."""
    style = (_ASSETS / "page.css").read_text(encoding="utf-8")
    script = (_ASSETS / "page.js").read_text(encoding="utf-8")
    # <, > and & as JSON escapes: no token (</script>, <!--) can end or bend the script block
    payload = (json.dumps(data or {}, ensure_ascii=False).replace("<", "\\u003c")
               .replace(">", "\\u003e").replace("&", "\\u0026"))
    head = [f'<h1>{_e(title)}</h1>']
    if command:
        head.append(f'<pre id="command">{_e(command)}</pre>')
    return "\n".join([
        "<!DOCTYPE html>", f'<html lang="en" data-attncli="{_e(kind)}">', "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # no request of any kind: the page carries everything it shows
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title>", f"<style>{style}</style>", "</head>", "<body>",
        "<header>", *head, "</header>", "<main>", *body, "</main>",
        '<div id="tooltip" role="status" aria-live="polite"></div>',
        '<aside id="arithmetic" hidden aria-label="the arithmetic of the chosen cell"></aside>',
        f'<script type="application/json" id="data">{payload}</script>',
        f"<script>{script}</script>", "</body>", "</html>", ""])


# --- the steps ---------------------------------------------------------------------------


def _table(part: Slice, step: str, precision: int, css: str = "numbers",
           cell=None) -> str:
    """A slice as an HTML table with its labels; cut to :data:`MOST` rows and columns."""
    rows, cols = part.matrix.shape
    show_r, show_c = min(rows, MOST), min(cols, MOST)
    head = "".join(f"<th scope=\"col\">{_e(c)}</th>" for c in part.cols[:show_c])
    caption = f"<caption>{_e(part.where)}</caption>" if part.where and css != "grid" else ""
    corner = f"{_e(part.row_axis)} \\ {_e(part.col_axis)}"
    lines = [f'<table class="{css}" data-step="{_e(step)}" data-where="{_e(part.where)}">'
             f"{caption}", f'<thead><tr><th scope="col">{corner}</th>{head}</tr></thead><tbody>']
    for r in range(show_r):
        cells = "".join(cell(r, c) if cell else f"<td>{_e(number(part.matrix[r, c], precision))}"
                        "</td>" for c in range(show_c))
        lines.append(f"<tr><th scope=\"row\">{_e(part.rows[r])}</th>{cells}</tr>")
    lines.append("</tbody></table>")
    if rows > show_r or cols > show_c:
        lines.append(f'<p class="elided">{_e(_elided(rows, cols, show_r, show_c))}</p>')
    return "\n".join(lines)


def _elided(rows: int, cols: int, show_r: int, show_c: int) -> str:
    """What a cut table leaves out, and the way to the rest."""
    left = []
    if rows > show_r:
        left.append(f"rows {show_r + 1}–{rows}")
    if cols > show_c:
        left.append(f"columns {show_c + 1}–{cols}")
    ways = (["--query TOKEN shows one row"] if rows > show_r else []) + [
        "--format csv or npz every number"]
    return f"{' and '.join(left)} left out of this page: {'; '.join(ways)}"


def _heatmaps(trace: Trace, step: Step, precision: int) -> list[str]:
    """One figure per head (and batch item) of a query × key step: cells coloured on the
    step's scale (viridis), masked cells hatched, each cell's value in data-value."""
    hidden = hidden_cells(trace, step)
    low, high = limits(step, hidden)
    figures = []
    hidden_slices = list(matrix_slices(trace, hidden, step.axes))
    for part, masked in zip(slices(trace, step), hidden_slices, strict=True):
        t = position(part.matrix, low, high)
        first = True

        def cell(r: int, c: int, part=part, masked=masked, t=t) -> str:
            nonlocal first
            value = float(part.matrix[r, c])
            hide = bool(masked.matrix[r, c]) or np.isneginf(value)
            css = "cell masked" if hide else "cell"
            red, green, blue = viridis(float(t[r, c]))
            ink = "#000" if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else "#fff"
            style = "" if hide else f' style="background:rgb({red},{green},{blue});color:{ink}"'
            tab = "0" if first else "-1"
            first = False
            shown = "−∞" if np.isneginf(value) else number(value, precision)
            return (f'<td class="{css}" data-i="{part.row_numbers[r]}" data-j="{c}" '
                    f'data-value="{"-inf" if np.isneginf(value) else repr(value)}" '
                    f'tabindex="{tab}"{style}>{_e(shown)}</td>')

        lead = part.lead
        attributes = "".join(f' data-{axis}="{lead[axis]}"' for axis in ("head", "batch")
                             if axis in lead)
        if "head" in lead and part.head is not None:
            attributes = attributes.replace(f'data-head="{lead["head"]}"',
                                            f'data-head="{part.head}"')
        note = sink_note(trace, step, lead)
        if note is not None and "sink_weights" in trace:  # each row's share, in order
            sink = trace.step("sink_weights")
            rows = sink.data[tuple(lead[axis] for axis in sink.axes if axis != "query")]
            note = "sink per row " + ", ".join(number(float(v), precision) for v in rows)
        caption = " · ".join(x for x in (step.name, part.where, note,
                                         f"colours {number(low, 2)} … {number(high, 2)}")
                             if x)
        figures.append(f'<figure class="heatmap" data-step="{_e(step.name)}"{attributes}>'
                       f"<figcaption>{_e(caption)}</figcaption>"
                       + _table(part, step.name, precision, "grid", cell) + "</figure>")
    return figures


def _step_section(trace: Trace, step: Step, precision: int) -> str:
    """One step: its name, its formula, its tables or (query × key) its heatmaps."""
    parts = [f'<section class="step" id="step-{_e(step.name)}" data-step="{_e(step.name)}">',
             f"<h2>{_e(step.name)}</h2>", f'<code class="formula">{_e(step.formula)}</code>']
    if query_by_key(step):  # its numbers are the heatmaps' cells
        parts.append('<div class="heatmaps">' + "".join(
            _heatmaps(trace, step, precision)) + "</div>")
    else:
        parts.append('<div class="tables">' + "".join(
            _table(part, step.name, precision) for part in slices(trace, step)) + "</div>")
    parts.append("</section>")
    return "\n".join(parts)


def conventions(trace: Trace) -> str:
    """The conventions block: each convention's name and text."""
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in trace.conventions.items())
    return f'<section id="conventions"><h2>conventions</h2><dl>{items}</dl></section>'


# --- the arithmetic of a cell -------------------------------------------------------------


def _sections(sections, precision: int) -> list[dict]:
    """explain's sections as {title, lines}: each equation as the text format writes it."""
    from attncli.render.explain import notation
    from attncli.render.registry import ExplainFormat

    write = notation(ExplainFormat.text, precision)
    return [{"title": write.words(s.title),
             "lines": [" = ".join(write.equation(e)) for e in s.equations]
             + [f"({write.words(n)})" for n in s.notes]} for s in sections]


def arithmetic(trace: Trace, precision: int) -> dict:
    """Each cell's arithmetic for the script: {"sections": [section, …], "cells": {"i,j":
    {"h": [index of a section, …]}}} (a section shared by cells written once): the score of
    query i with key j (projections, products, scaling, mask) and the row's exponentials,
    their sum and the weights, per head; {} for a run past :data:`ARITHMETIC_CELLS`, a
    batch, one query row or some steps only (--query, --steps: explain reads the whole
    run)."""
    from attncli.explain import explain

    if any(step not in trace for step in ("queries", "keys", "values", "weights", "context")):
        return {}  # --steps left out what explain reads
    if trace.focus is not None or "batch" in trace.step("context").axes:
        return {}
    n_q, n_k = len(trace.query_tokens), len(trace.key_tokens or trace.query_tokens)
    heads = trace.run.heads if trace.run is not None else 1
    shown = range(heads) if trace.head is None else [trace.head]  # --head: that one's
    if n_q * n_k * len(shown) > ARITHMETIC_CELLS:
        return {}
    known: dict[str, int] = {}  # a section's JSON → its index: each is written once
    sections: list[dict] = []

    def index(section: dict) -> int:
        key = json.dumps(section, ensure_ascii=False, sort_keys=True)
        if key not in known:
            known[key] = len(sections)
            sections.append(section)
        return known[key]

    cells: dict[str, dict[str, list[int]]] = {}
    for i in range(n_q):
        row = _sections(explain(trace, i), precision)
        for j in range(n_k):
            score = _sections(explain(trace, i, j), precision)
            cells[f"{i},{j}"] = {str(h): [index(s) for s in _of_head(score, h, heads)
                                          + [s for s in _of_head(row, h, heads)
                                             if s["title"].startswith(_ROW_SECTIONS)]]
                                 for h in shown}
    return {"sections": sections, "cells": cells}


#: explain's sections of a whole row that a cell's arithmetic adds to its score's.
_ROW_SECTIONS = ("Exponentials of the scores", "Sum", "Weights", "Sinks", "Dropout",
                 "Hard attention", "Top-k")


def _of_head(sections: list[dict], head: int, heads: int) -> list[dict]:
    """The sections of one head (their titles end "…, head h)" when there are several),
    without "About these numbers"."""
    keep = [s for s in sections if not s["title"].startswith("About these numbers")]
    if heads == 1:
        return keep
    return [s for s in keep if s["title"].endswith(f", head {head})")]


# --- compute's and model's page -------------------------------------------------------------


def render_html(trace: Trace, request: Request, kind: str = "compute") -> str:
    """compute's (and model's) page: the command, the conventions (and the model's
    agreement), every step, the heatmaps, each cell's arithmetic."""
    precision = request.digits(4)
    command = _command(trace, request)
    body = []
    title = "attncli: " + (f"layer {trace.model['layer']} of {trace.model.get('name')}"
                           if trace.model is not None else "attention, step by step")
    if trace.model is not None:
        agreement = trace.model.get("agreement", {})
        agrees = str(bool(agreement.get("agrees"))).lower()
        body.append(f'<p id="agreement" data-agrees="{agrees}">{_e(_agreement_line(trace))}</p>')
    body.append(conventions(trace))
    cells = arithmetic(trace, precision)
    body += [_step_section(trace, step, precision) for step in trace]
    data = {"arithmetic": cells, "queries": list(trace.query_tokens),
            "keys": list(trace.key_tokens or trace.query_tokens),
            "explain": _explain_hint()}
    return page(kind, title, body, data, command)


def _command(trace: Trace, request: Request) -> str | None:
    """The command line that writes this page again: the input (or the model and its ids),
    every option that differs from its default (:func:`attncli.export.command.
    equivalent_command`), the steps shown, the query row, --head, --precision."""
    import shlex

    from attncli.export.command import equivalent_command

    if request.problem is None and trace.model is None:
        return None
    words = shlex.split(equivalent_command(request.problem, request.config, trace, "html")[0])
    extra = (["--steps", ",".join(trace.names())] if request.steps is not None else []) + (
        ["--precision", str(request.precision)] if request.precision is not None else [])
    return shlex.join([*words[:-2], *extra, *words[-2:]])


def _agreement_line(trace: Trace) -> str:
    """The model's agreement line, as the conventions hold it (attncli.render.layers)."""
    return trace.conventions.get("model", "")


def _explain_hint() -> str:
    """What to run for a cell's arithmetic when the page does not carry it."""
    return ("attncli explain … --query Q --key K writes it out (the page carries each cell's "
            f"arithmetic for a whole run, every step and row, of up to {ARITHMETIC_CELLS} "
            "cells of all heads: leave out --steps and --query)")


def write_html(trace: Trace, request: Request) -> None:
    """compute's --format html (and -o FILE.html): :func:`render_html`."""
    request.text(render_html(trace, request, "model" if trace.model is not None else
                             "compute"))


# --- explain's page -----------------------------------------------------------------------


def _explained(sections: list[dict], css: str = "explain") -> str:
    parts = [f'<section class="{css}">']
    for section in sections:
        parts.append(f"<h3>{_e(section['title'])}</h3>")
        parts += [f'<div class="equation">{_e(line)}</div>' for line in section["lines"]]
    parts.append("</section>")
    return "\n".join(parts)


def render_explain_html(sections, precision: int = 4, title: str | None = None) -> str:
    """explain's page: its sections, each equation as the text format writes it."""
    return page("explain", title or "attncli explain: one row's arithmetic",
                [_explained(_sections(sections, precision))])


# --- check's page -------------------------------------------------------------------------

_CLASS = {RIGHT: "right", ROUNDED: "rounded", WRONG: "wrong", CARRIED: "carried"}


def _marked(trace: Trace, verdict, query: int | None, precision: int) -> str:
    """One answered step as tables of its entries, each marked (✓ ≈ → ✗) and classed."""
    from attncli.render.check import entry_text, laid_out_view

    view, axes, arrays = laid_out_view(trace, verdict, query)
    tables = []
    for given, expected, status, written in zip(
            *(matrix_slices(view, array, axes) for array in arrays), strict=True):
        def cell(r: int, c: int, g=given, e=expected, st=status, w=written) -> str:
            mark = int(st.matrix[r, c])
            text = entry_text(g.matrix[r, c], e.matrix[r, c], mark, int(w.matrix[r, c]),
                         max(precision, 1))
            return f'<td class="entry {_CLASS[mark]}">{_e(text)}</td>'

        tables.append(_table(given, verdict.step, precision, "marked", cell))
    return '<div class="tables">' + "".join(tables) + "</div>"


def report_html(trace: Trace, report, precision: int = 4) -> str:
    """One answers file's report: each step's verdict, note, score and marked entries; the
    summary; the diagnosis; the arithmetic of the first wrong entry (explain)."""
    from attncli.explain import explain
    from attncli.render.check import (
        LEGEND,
        NO_DIAGNOSIS,
        SCORE_STEPS,
        first_wrong_entry,
        summary_line,
    )

    parts = [f'<section class="report" data-file="{_e(report.file)}">',
             f"<h2>{_e(report.file)}" + (f" (query {_e(report.query)})" if report.query
                                         else "") + "</h2>"]
    if report.error:
        parts += [f'<p class="diagnosis">error: {_e(report.error)}</p>', "</section>"]
        return "\n".join(parts)
    parts.append(f'<p class="legend">{_e(LEGEND)}</p>')
    query = None if report.query is None else trace.query_index(report.query)
    for verdict in report.verdicts:
        c = verdict.counts
        parts.append(f'<h3 data-step="{_e(verdict.step)}">{_e(verdict.step)}: '
                     f"{_e(verdict.verdict)} — score {c.entries - c.wrong}/{c.entries}</h3>")
        parts.append(f'<p class="note">{_e(verdict.note)}</p>')
        if verdict.given.shape == verdict.expected.shape:
            parts.append(_marked(trace, verdict, query, precision))
    parts.append(f"<p><strong>{_e(summary_line(report))}</strong></p>")
    if not report.ok:
        said = report.diagnosis.sentence() if report.diagnosis else NO_DIAGNOSIS
        parts.append(f'<p class="diagnosis">{_e(said[0].upper() + said[1:])}.</p>')
    entry = first_wrong_entry(trace, report)
    if entry is not None and trace.focus is None:
        step, row, key = entry
        scored = key if step in SCORE_STEPS else None
        what = (f"the score of “{row}” with “{key}”" if scored is not None
                else f"the row of “{row}”")
        parts += ['<section class="first-wrong">',
                  f"<h3>The first wrong entry ({_e(step)}), worked out: {_e(what)}</h3>",
                  _explained(_sections(explain(trace, row, scored), precision), "worked"),
                  "</section>"]
    parts.append("</section>")
    return "\n".join(parts)


def write_check_html(trace: Trace, reports: list, rule, request: Request) -> None:
    """check's --format html: one page of every answers file's report."""
    precision = request.digits(4)
    body = [f'<p class="legend">tolerance: {_e(rule)}</p>',
            *(report_html(trace, report, precision) for report in reports)]
    request.text(page("check", "attncli check: the answers, marked", body))
