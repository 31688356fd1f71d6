"""Tidy CSV: one line per number, with the step, its leading indices and both labels."""

from __future__ import annotations

import csv
import io

from attncli.render import number, slices
from attncli.trace import Trace

HEADER = ["step", "batch", "head", "row", "row_label", "column", "column_label", "value"]


def render_csv(trace: Trace, precision: int) -> str:
    """Columns: step, batch, head (empty when absent), row/column index and label, value.

    −∞ is written as -inf (pandas and numpy read it back).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for step in trace:
        lead = [a for a in step.axes if a in ("batch", "head")]
        for part in slices(trace, step):
            where = dict(zip(lead, part.index, strict=False))
            for r, row_label in enumerate(part.rows):
                for c, col_label in enumerate(part.cols):
                    value = part.matrix[r, c]
                    text = number(value, precision).replace("−∞", "-inf").replace("∞", "inf")
                    writer.writerow([step.name, where.get("batch", ""), where.get("head", ""),
                                     r, row_label, c, col_label, text])
    return out.getvalue()
