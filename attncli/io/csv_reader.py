"""CSV matrices: one matrix per file, with or without a header row; a first column of strings
is read as token labels."""

from __future__ import annotations

import csv
import io

from attncli.errors import InputError
from attncli.io import open_text


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_csv(path: str) -> tuple[list[list[float]], list[str] | None]:
    """Rows of numbers and the labels of the first column, if it holds strings.

    A first row that is not all numbers (apart from a label column) is a header and skipped.
    Blank lines are skipped; Windows line endings and a UTF-8 BOM are accepted; a ``.tsv``
    file or a file whose first line has tabs and no commas is read tab-separated.
    Raises: InputError naming the row and column of a cell that is not a number.
    """
    text = open_text(path)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if path.lower().endswith(".tsv") or ("\t" in first and "," not in first) \
        else ","
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)
            if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(f"{path}: empty CSV file, expected a matrix")
    body = [[cell.strip() for cell in row] for row in rows]
    data_rows = body[1:] if len(body) > 1 else body
    labelled = any(_number(row[0]) is None for row in data_rows)
    start = 1 if any(_number(c) is None for c in body[0][1 if labelled else 0:]) else 0
    numbers, labels = [], []
    for r, row in enumerate(body[start:], start=start + 1):
        cells = row[1:] if labelled else row
        if labelled:
            labels.append(row[0])
        values = []
        for c, cell in enumerate(cells, start=2 if labelled else 1):
            value = _number(cell)
            if value is None:
                raise InputError(f"{path}: row {r}, column {c}: {cell!r} is not a number")
            values.append(value)
        numbers.append(values)
    if not numbers:
        raise InputError(f"{path}: a header row but no numbers")
    widths = {len(row) for row in numbers}
    if len(widths) > 1:
        raise InputError(f"{path}: rows have different numbers of columns "
                         f"({', '.join(map(str, sorted(widths)))})")
    return numbers, (labels if labelled else None)
