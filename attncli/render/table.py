"""rich tables for the terminal: one heading per step (its formula), one table per batch/head
slice, slices side by side when they fit."""

from __future__ import annotations

import numpy as np
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from attncli.render import Slice, number, slices
from attncli.trace import Step, Trace

_STRESSED = {"weights", "dropped_weights"}


def _table(step: Step, part: Slice, precision: int) -> Table:
    table = Table(title=escape(part.where) or None, title_style="dim", header_style="bold cyan")
    table.add_column(f"{part.row_axis} \\ {part.col_axis}", style="bold")
    for col in part.cols:
        table.add_column(escape(col), justify="right")
    for label, row in zip(part.rows, part.matrix, strict=True):
        cells = [number(v, precision) for v in row]
        if step.name in _STRESSED and row.max() > 0:
            best = int(np.argmax(row))  # the largest weight of the row, stressed
            cells[best] = f"[bold reverse]{cells[best]}[/]"
        table.add_row(escape(label), *cells)
    return table


def print_tables(trace: Trace, console: Console, precision: int = 4,
                 conventions: bool = True) -> None:
    """Print every step of ``trace``; the largest weight of each row in bold reverse."""
    for step in trace:
        console.print(f"[bold magenta]{escape(step.name)}[/]  {escape(step.formula)}  "
                      f"[dim]shape {tuple(step.shape)}[/]")
        tables = [_table(step, part, precision) for part in slices(trace, step)]
        console.print(tables[0] if len(tables) == 1 else Columns(tables))
    if conventions and trace.conventions:
        notes = Table(title="conventions", title_justify="left", title_style="bold",
                      show_header=False, box=None, padding=(0, 1))
        notes.add_column(style="dim")
        notes.add_column()
        for key, text in trace.conventions.items():
            notes.add_row(escape(key), escape(text))
        console.print(notes)
