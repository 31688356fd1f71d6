"""CSV matrices: one matrix per file, with or without a header row; a first column of strings
is read as token labels."""

from __future__ import annotations

import csv
import io
import re

from attncli.errors import InputError
from attncli.io import open_text

_BOOLEANS = {"true": 1.0, "false": 0.0}


def read_csv(path: str, booleans: bool = False) -> tuple[list[list[float]], list[str] | None]:
    """Rows of numbers and the labels of the first column, if it holds strings.

    A first row that is not all numbers (apart from a label column), or that starts with an
    empty corner cell above a label column (as pandas writes it), is a header and skipped.
    Blank lines are skipped; Windows line endings and a UTF-8 BOM are accepted; a ``.tsv``
    file, or one whose first non-blank line has tabs and no commas, is read tab-separated;
    semicolons likewise, and also beside commas (decimal commas, which are then refused).
    With ``booleans`` (masks), true/false (any case) are read as 1/0.
    Raises: InputError naming the row (file line) and column of a cell that is not a number,
    and saying so when the numbers are separated by spaces or by a character that is no
    delimiter attncli reads (``0.34|0.22``).
    """

    def _number(cell: str) -> float | None:
        if booleans and cell.lower() in _BOOLEANS:
            return _BOOLEANS[cell.lower()]
        try:
            return float(cell)
        except ValueError:
            return None

    text = open_text(path)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "\t" if path.lower().endswith(".tsv") else next(
        (d for d in (",", "\t", ";") if d in first), ",")
    if delimiter == "," and ";" in first:  # 0,34;0,22: semicolons between decimal commas
        delimiter = ";"
    # newline="": rows end at \n, \r\n or a lone \r (old Mac files), as csv expects
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    lines, body = [], []  # file line numbers (1-based) and the stripped cells of each row
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                lines.append(reader.line_num)
                body.append([cell.strip() for cell in row])
    except csv.Error as exc:
        raise InputError(f"{path}: row {reader.line_num + 1}: not readable as CSV: {exc}") \
            from None
    if not body:
        raise InputError(f"{path}: empty CSV file, expected a matrix")
    for line, row in zip(lines, body, strict=True):
        separator = _separator(row[0], _number) if len(row) == 1 else None
        if separator is not None:  # no delimiter attncli reads: 0.34 0.22 0.54, 0.34|0.22
            raise InputError(f"{path}: row {line}: {_short(row[0])!r}: numbers separated by "
                             f"{separator}; separate them with commas (or tabs)")
    data_rows = body[1:] if len(body) > 1 else body
    # Labels only when every data row starts with one: a single bad cell in the first column
    # is a typo, reported with its row and column, never a silent column of labels.
    labelled = all(_number(row[0]) is None for row in data_rows)
    # A header names every column; a first row with numbers and one bad cell is a typo, and
    # is reported as such below.
    names = body[0][1 if labelled else 0:]
    header = (len(body) > 1 and all(_number(c) is None for c in names)) or (
        labelled and body[0][0] == "" and len(body) > 1) or (
        len(body) == 1 and all(_number(c) is None for c in body[0]))  # a header alone
    start = 1 if header else 0
    numbers, labels = [], []
    for line, row in zip(lines[start:], body[start:], strict=True):
        if labelled:
            labels.append(row[0])
        values = []
        for column, cell in enumerate(row[1:] if labelled else row, start=2 if labelled else 1):
            value = _number(cell)
            if value is None:
                comma = re.fullmatch(r"[+-]?\d*,\d+", cell) is not None
                separator = None if comma else _separator(cell, _number)
                hint = ("; write decimals with a point" if comma else
                        f"; separate numbers with the file's delimiter, not {separator}"
                        if separator else "")
                raise InputError(f"{path}: row {line}, column {column}: {cell!r} is not a number"
                                 + hint)
            values.append(value)
        numbers.append(values)
    if not numbers:
        raise InputError(f"{path}: a header row but no numbers")
    widths = {len(row) for row in numbers}
    if len(widths) > 1:
        raise InputError(f"{path}: rows have different numbers of columns "
                         f"({', '.join(map(str, sorted(widths)))})")
    return numbers, (labels if labelled else None)


def _separator(cell: str, number) -> str | None:
    """How a cell separates the numbers it holds, where no delimiter attncli reads does:
    "spaces" (0.34 0.22 0.54), or one other character in quotes ('|' for 0.34|0.22, also in a
    Markdown table's | 0.34 | 0.22 |); None for a cell that is not such a list. A label may
    come first (Hello 0.34 0.22).
    """
    parts = cell.split()
    if len(parts) >= 2 and all(number(part) is not None for part in parts[1:]):
        return "spaces"
    # not a digit, letter, sign, point or space; nor a slash, which writes a fraction (1/3)
    others = set(re.sub(r"[\w\s.+\-]", "", cell))
    if len(others) != 1 or others == {"/"}:
        return None
    character = others.pop()
    parts = [part.strip() for part in cell.strip().strip(character).split(character)]
    if len(parts) >= 2 and all(number(part) is not None for part in parts[1:]):
        return repr(character)
    return None


def _short(cell: str) -> str:
    return cell if len(cell) <= 40 else cell[:39] + "…"
