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


@dataclass(frozen=True)
class Slice:
    """One 2-D piece of a step: ``where`` names the leading indices ("batch 0, head 1")."""

    where: str
    row_axis: str
    col_axis: str
    rows: list[str]
    cols: list[str]
    matrix: np.ndarray  # (len(rows), len(cols))
    index: tuple[int, ...]  # the leading indices


def slices(trace: Trace, step: Step) -> Iterator[Slice]:
    """The 2-D tables of a step: its last two axes, one table per batch/head index.

    A 1-D step (a step narrowed to one query) is one row labelled with that query's token.
    """
    data, axes = step.data, step.axes
    if data.ndim == 1:
        data, axes = data[None, :], ("query", *axes)
    lead = axes[:-2]
    row_axis, col_axis = axes[-2], axes[-1]
    rows = ([trace.focus] if row_axis == "query" and trace.focus is not None and
            data.shape[-2] == 1 and step.data.ndim == 1 else trace.labels(row_axis,
                                                                         data.shape[-2]))
    cols = trace.labels(col_axis, data.shape[-1])
    focus = [f"query {trace.focus}"] if trace.focus is not None else []
    for index in np.ndindex(*data.shape[:-2]):
        where = ", ".join([*focus, *(f"{axis} {i}" for axis, i in zip(lead, index, strict=True))])
        yield Slice(where, row_axis, col_axis, rows, cols, data[index], tuple(index))


def number(value: float, precision: int) -> str:
    """A cell: fixed decimals, −∞ for masked scores."""
    if np.isneginf(value):
        return "−∞"
    if np.isposinf(value):
        return "∞"
    if np.isnan(value):
        return "NaN"
    text = f"{value:.{precision}f}"
    return "0." + "0" * precision if text == "-0." + "0" * precision else text


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
