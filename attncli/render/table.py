"""rich tables for the terminal: one heading per step (its formula), one table per batch/head
slice, slices side by side when they fit, and columns split into blocks rather than cut (up to
MAX_BLOCKS blocks; a wider matrix shows its first block and says how many columns it elides)."""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from attncli.render.layout import Slice, number, slices
from attncli.render.output import Request
from attncli.trace import Step, Trace

_STRESSED = {"weights", "dropped_weights"}
#: A matrix needing more blocks of columns than this shows the first and elides the rest.
MAX_BLOCKS = 3
_EDGE = 4  # a table's left border and the row-label column's padding
_CELL = 3  # a column's padding and its border


def _column_blocks(corner: str, part: Slice, cells: list[list[str]], width: int) -> list[range]:
    """Column ranges that each fit ``width``, so numbers are never cut to "0.3…"."""
    label_width = max(cell_len(corner), *(cell_len(r) for r in part.rows)) + _EDGE
    widths = [max(cell_len(col), *(cell_len(row[c]) for row in cells)) + _CELL
              for c, col in enumerate(part.cols)]
    blocks, start, used = [], 0, label_width
    for c, w in enumerate(widths):
        if used + w > width and c > start:
            blocks.append(range(start, c))
            start, used = c, label_width
        used += w
    blocks.append(range(start, len(widths)))
    return blocks


def _tables(step: Step, part: Slice, precision: int, width: int) -> list[Table]:
    plain = [[number(v, precision) for v in row] for row in part.matrix]
    styled = [list(row) for row in plain]
    if step.name in _STRESSED:  # the largest weight of each row, stressed
        for row, values in zip(styled, part.matrix, strict=True):
            if values.max() > 0:
                best = int(np.argmax(values))
                row[best] = f"[bold reverse]{row[best]}[/]"
    return blocked_tables(part, plain, styled, width)


def blocked_tables(part: Slice, plain: list[list[str]], styled: list[list[str]],
                   width: int) -> list[Table]:
    """A slice as tables of ``styled`` cells (rich markup), split into blocks of columns that
    fit ``width`` as measured on the ``plain`` text of the cells; past MAX_BLOCKS blocks, the
    first block alone, captioned with the number of columns elided and where to see them."""
    corner = f"{part.row_axis} \\ {part.col_axis}"
    blocks = _column_blocks(corner, part, plain, width)
    elided = 0
    if len(blocks) > MAX_BLOCKS:  # hundreds of blocks help nobody: the first, and a note
        elided = len(part.cols) - len(blocks[0])
        blocks = blocks[:1]
    tables = []
    for block in blocks:
        title = part.where
        if len(blocks) > 1:
            title = (f"{title}, " if title else "") + (
                f"columns {block.start}–{block.stop - 1} of {len(part.cols)}")
        if elided:
            title = (f"{title}, " if title else "") + (
                f"columns 0–{block.stop - 1} of {len(part.cols)}")
        caption = (f"… {elided} more {part.col_axis} columns not shown (of {len(part.cols)}): "
                   "see them all with --format csv or --plot FILE") if elided else None
        table = Table(title=escape(title) or None, title_style="dim", header_style="bold cyan",
                      caption=caption, caption_style="yellow", caption_justify="left")
        table.add_column(corner, style="bold", no_wrap=True)
        for c in block:
            table.add_column(escape(part.cols[c]), justify="right", no_wrap=True)
        for label, row in zip(part.rows, styled, strict=True):
            table.add_row(escape(label), *(row[c] for c in block))
        tables.append(table)
    return tables


def print_tables(trace: Trace, console: Console, precision: int = 4,
                 conventions: bool = True) -> None:
    """Print every step of ``trace``; the largest weight of each row in bold reverse."""
    for step in trace:
        console.print(f"[bold magenta]{escape(step.name)}[/]  {escape(step.formula)}  "
                      f"[dim]shape {tuple(step.shape)}[/]")
        tables = [table for part in slices(trace, step)
                  for table in _tables(step, part, precision, console.width)]
        console.print(tables[0] if len(tables) == 1 else Columns(tables))
    if conventions and trace.conventions:
        notes = Table(title="conventions", title_justify="left", title_style="bold",
                      show_header=False, box=None, padding=(0, 1))
        notes.add_column(style="dim")
        notes.add_column()
        for key, text in trace.conventions.items():
            notes.add_row(escape(key), escape(text))
        console.print(notes)


def write_table(trace: Trace, request: Request) -> None:
    """compute's --format table, with 4 decimals unless --precision is given: in colour on a
    terminal, as plain text in a file."""
    request.console(lambda console: print_tables(trace, console, request.digits(4)))
