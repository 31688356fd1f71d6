"""How a step is laid out for reading: its 2-D slices with their labels, a cell's text, a label
on one line. Every text renderer (tables, CSV, Markdown, check's reports) and every drawing
(heatmaps, plots) lays steps out through these."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from attncli.trace import Step, Trace


@dataclass(frozen=True)
class Slice:
    """One 2-D piece of a step: ``where`` names the leading indices ("batch 0, head 1")."""

    where: str
    lead: dict[str, int]  # the leading axes and their indices: {"batch": 0, "head": 1}
    row_axis: str
    col_axis: str
    rows: list[str]
    cols: list[str]
    row_numbers: list[int]  # the rows' indices in the whole run (they differ after --query)
    matrix: np.ndarray  # (len(rows), len(cols))
    head: int | None = None  # the head as the whole run numbers it (it differs after --head)


def slices(trace: Trace, step: Step) -> Iterator[Slice]:
    """The 2-D tables of a step: its last two axes, one table per batch/head index."""
    return matrix_slices(trace, step.data, step.axes, trace.kept_heads.get(step.name))


def matrix_slices(trace: Trace, data: np.ndarray, axes: tuple[str, ...],
                  kept: int | None = None) -> Iterator[Slice]:
    """The 2-D tables of any array laid out on a trace's axes (a step, an answer). A step with
    one number per query row (sink_weights: …, "query") is one column, labelled "value".
    ``kept``: the number of the one head left by --head (the KV head, for keys and values of
    fewer heads); the trace's --head when None."""
    if axes[-1] == "query":
        data, axes = data[..., None], (*axes, "value")
    lead_axes, (row_axis, col_axis) = axes[:-2], axes[-2:]
    n_rows, n_cols = data.shape[-2:]
    rows = trace.labels(row_axis, n_rows)
    cols = ["value"] if col_axis == "value" else trace.labels(col_axis, n_cols)
    first = trace.focus if row_axis == "query" and trace.focus is not None else 0
    kept = trace.head if kept is None else kept
    for index in np.ndindex(*data.shape[:-2]):
        lead = dict(zip(lead_axes, (int(i) for i in index), strict=True))
        # after --head, the one head kept is named by its number in the whole run
        head = kept if kept is not None and "head" in lead else lead.get("head")
        where = ", ".join(f"{axis} {head if axis == 'head' else i}" for axis, i in lead.items())
        yield Slice(where, lead, row_axis, col_axis, rows, cols,
                    list(range(first, first + n_rows)), data[index], head)


def number(value: float, precision: int | None) -> str:
    """A cell: fixed decimals, −∞ for masked scores; all of a float64's digits (the shortest
    text that reads back as the same number) when ``precision`` is None."""
    if np.isneginf(value):
        return "−∞"
    if np.isposinf(value):
        return "∞"
    if np.isnan(value):
        return "NaN"
    if precision is None:
        return repr(float(value))
    text = f"{value:.{precision}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def printable(text: str) -> str:
    """``text`` on one line: each character that is not printable (str.isprintable) as its
    Python escape ("two\\nlines", "\\t", "\\x1b", "\\u2028"); the rest, backslashes and quotes
    too, as it is. For labels in tables and drawings, and the command line's messages.

    The escape is Python's ``unicode_escape`` codec's, the same text as ``repr(ch)[1:-1]`` for
    every non-printable character (checked over all code points in tests/render/test_layout.py).
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)
