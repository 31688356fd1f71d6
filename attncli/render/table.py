"""rich tables for the terminal: one per step and batch/head slice, titled with the formula."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from attncli.render import number, slices
from attncli.trace import Trace

_STRESSED = {"weights", "dropped_weights"}


def print_tables(trace: Trace, console: Console, precision: int = 4,
                 conventions: bool = True) -> None:
    """Print every step of ``trace``; the largest weight of each row in bold."""
    for step in trace:
        for part in slices(trace, step):
            title = f"[bold]{escape(step.name)}[/]  {escape(step.formula)}"
            if part.where:
                title += f"  [dim]({escape(part.where)})[/]"
            table = Table(title=title, title_justify="left", header_style="bold cyan")
            table.add_column(f"{part.row_axis} \\ {part.col_axis}", style="bold")
            for col in part.cols:
                table.add_column(escape(col), justify="right")
            for label, row in zip(part.rows, part.matrix, strict=True):
                best = int(np.argmax(row)) if step.name in _STRESSED and row.max() > 0 else -1
                cells = [number(v, precision) for v in row]
                if best >= 0:
                    cells[best] = f"[bold reverse]{cells[best]}[/]"
                table.add_row(escape(label), *cells)
            console.print(table)
    if conventions and trace.conventions:
        notes = Table(title="[bold]conventions[/]", title_justify="left", show_header=False,
                      box=None, padding=(0, 1))
        notes.add_column(style="dim")
        notes.add_column()
        for key, text in trace.conventions.items():
            notes.add_row(escape(key), escape(text))
        console.print(notes)
