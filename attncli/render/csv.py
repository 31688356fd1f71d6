"""Tidy CSV: one line per number, with the step, its leading indices and both labels."""

from __future__ import annotations

import csv
import io

from attncli.render.layout import number, slices
from attncli.render.output import Request
from attncli.trace import Trace

HEADER = ["step", "batch", "head", "row", "row_label", "column", "column_label", "value"]


def render_csv(trace: Trace, precision: int | None) -> str:
    """Columns: step, batch, head (empty when absent), row/column index and label, value.

    Values with ``precision`` decimals, or in full (each float's shortest round-trip text, as
    JSON writes them) when it is None; −∞ is written as -inf (pandas and numpy read it back).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for step in trace:
        for part in slices(trace, step):
            batch, head = part.lead.get("batch", ""), "" if part.head is None else part.head
            for r, (row, row_label) in enumerate(zip(part.row_numbers, part.rows, strict=True)):
                for c, col_label in enumerate(part.cols):
                    text = number(part.matrix[r, c], precision).replace("−∞", "-inf")
                    writer.writerow([step.name, batch, head, row, row_label, c, col_label,
                                     text.replace("∞", "inf")])
    return out.getvalue()


def write_csv(trace: Trace, request: Request) -> None:
    """compute's --format csv: every digit unless --precision is given (it is for machines)."""
    request.text(render_csv(trace, request.precision))
