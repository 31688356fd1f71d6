"""Renderers: a Trace in, text out. They never compute; one module per format."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from attncli.trace import Step, Trace


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    npz = "npz"  # every step as an array (binary; -o FILE.npz)
    npy = "npy"  # one step (binary; -o FILE.npy)
    torch = "torch"  # a Python script that redoes the run with PyTorch's own modules

    @property
    def binary(self) -> bool:
        return self in (Format.npz, Format.npy)

    @classmethod
    def for_output(cls, path) -> Format:
        """The format an -o file's extension names (table for none or an unknown one)."""
        suffix = "" if path is None else str(path).rsplit(".", 1)[-1].lower()
        return {"json": cls.json, "csv": cls.csv, "md": cls.markdown, "npz": cls.npz,
                "npy": cls.npy, "py": cls.torch}.get(suffix, cls.table)


class ExplainFormat(enum.StrEnum):
    """explain's formats (here, so the command line does not import explain to declare them)."""

    text = "text"
    markdown = "markdown"
    latex = "latex"


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


def slices(trace: Trace, step: Step) -> Iterator[Slice]:
    """The 2-D tables of a step: its last two axes, one table per batch/head index."""
    return matrix_slices(trace, step.data, step.axes)


def matrix_slices(trace: Trace, data: np.ndarray, axes: tuple[str, ...]) -> Iterator[Slice]:
    """The 2-D tables of any array laid out on a trace's axes (a step, an answer)."""
    lead_axes, (row_axis, col_axis) = axes[:-2], axes[-2:]
    n_rows, n_cols = data.shape[-2:]
    rows, cols = trace.labels(row_axis, n_rows), trace.labels(col_axis, n_cols)
    first = trace.focus if row_axis == "query" and trace.focus is not None else 0
    for index in np.ndindex(*data.shape[:-2]):
        lead = dict(zip(lead_axes, (int(i) for i in index), strict=True))
        where = ", ".join(f"{axis} {i}" for axis, i in lead.items())
        yield Slice(where, lead, row_axis, col_axis, rows, cols,
                    list(range(first, first + n_rows)), data[index])


def number(value: float, precision: int) -> str:
    """A cell: fixed decimals, −∞ for masked scores."""
    if np.isneginf(value):
        return "−∞"
    if np.isposinf(value):
        return "∞"
    if np.isnan(value):
        return "NaN"
    text = f"{value:.{precision}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def render(trace: Trace, fmt: Format, precision: int | None, pretty: bool = False) -> str:
    """Text for the non-terminal formats (json, csv, markdown); ``pretty`` indents JSON."""
    if fmt is Format.json:
        from attncli.render.json import render_json

        return render_json(trace, precision, indent=pretty)
    if fmt is Format.csv:
        from attncli.render.csv import render_csv

        return render_csv(trace, 4 if precision is None else precision)
    from attncli.render.markdown import render_markdown

    return render_markdown(trace, 4 if precision is None else precision)
