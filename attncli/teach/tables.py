"""Rows of numbers as students write them in text: each cell's entry (decimals as written,
fractions exact, −∞ words), the lines that name a step, and the text, Markdown and CSV answer
forms read to arrays of entries (:mod:`attncli.teach.forms` has the rules and the entry point).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from attncli.answers import NEG_INF_WORDS, _decimals
from attncli.errors import InputError
from attncli.io import open_text
from attncli.trace import STEP_NAMES

#: The decimals recorded for a fraction (3/2): exact, give or take float noise.
FRACTION_DECIMALS = 12


# --- one entry as written ----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entry: ``kind`` "number", "empty" (NaN), "null" (−∞ in masked_scores, else
    empty) or "neg_inf"; ``decimals`` as written; ``exact`` for a fraction."""

    kind: str
    value: float = math.nan
    decimals: int = 0
    exact: bool = False


EMPTY, NULL, NEG_INF = Entry("empty"), Entry("null"), Entry("neg_inf", -math.inf)
MINUS = str.maketrans({"\u2212": "-", "\u2013": "-"})  # − (minus sign), – (en dash)
UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DECIMAL = re.compile(rf"[+-]?{UNSIGNED}(?:[eE][+-]?\d+)?")
_FRACTION = re.compile(rf"([+-]?{UNSIGNED})\s*/\s*({UNSIGNED})")
_NEG_INF_TEXT = {word.translate(MINUS) for word in NEG_INF_WORDS} | {"-\\infty"}


def cell_entry(cell: str) -> Entry | None:
    """The entry a cell writes, or None when it is no number (nor empty, null or −∞)."""
    text = cell.strip().translate(MINUS)
    if not text:
        return EMPTY
    if text.lower() == "null":
        return NULL
    if text.lower() in _NEG_INF_TEXT:
        return NEG_INF
    try:  # an exponent past Decimal's range (1e-99999999999999999999) is no number
        if _DECIMAL.fullmatch(text):
            number = Decimal(text)
            value = float(number)
            return Entry("number", value, _decimals(number)) if math.isfinite(value) else None
        match = _FRACTION.fullmatch(text)
        if not match or Decimal(match[2]) == 0:
            return None
        value = float(Fraction(Decimal(match[1])) / Fraction(Decimal(match[2])))
    except ArithmeticError:  # decimal.InvalidOperation, OverflowError
        return None
    return Entry("number", value, FRACTION_DECIMALS, exact=True)


def not_a_number(cell: str) -> str:
    """Why a cell is refused, for the error message."""
    text = cell.strip()
    plain = text.translate(MINUS)
    hint = ("; write decimals with a point" if re.fullmatch(r"[+-]?\d*,\d+", text) else
            "; too large for float64" if _DECIMAL.fullmatch(plain) else
            "; a fraction over 0" if _FRACTION.fullmatch(plain) else "")
    return f"{_short(text)!r} is not a number{hint}"


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


# --- step names in text --------------------------------------------------------------------

STEP = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(
    name.replace("_", "[ _-]") for name in sorted(STEP_NAMES, key=len, reverse=True))
    + r")(?![A-Za-z0-9])", re.IGNORECASE)
_HEADING = re.compile(r"\s{0,3}(#{1,6})(?!#)\s*(.*?)\s*#*\s*$")
#: What may come before a step's name on its line: list marks, numbering, "Step 2:".
_PREFIX = re.compile(r"(?:\s*(?:[-*+>]\s|\d+[.)]\s|(?:step|part|question|exercise|task|q)\s*"
                     r"\d+[a-z]?\s*[:.)\-–—]?))*\s*", re.IGNORECASE)
_MARKS = "*_`\"' "
_HEAD = re.compile(r"\bheads?\s*\d", re.IGNORECASE)
_QUERY = re.compile(r"query[\"'`*_]*\s*[:=]\s*(.*)", re.IGNORECASE)


def _about_an_input(text: str) -> bool:
    """A heading or bold text that starts with an input's name (``### W_q (8 × 8): query
    weights``, as the worksheet titles the inputs): it names no step, whatever follows."""
    from attncli.problem import KNOWN_KEYS

    first = re.match(r"[\s*_`#]*([A-Za-z][A-Za-z0-9_]*)", text)
    return first is not None and first[1] not in STEP_NAMES and first[1].lower() in {
        key.lower() for key in KNOWN_KEYS}


def step_name(match: re.Match) -> str:
    """The step a match of :data:`STEP` names (``Masked scores`` → masked_scores)."""
    return re.sub(r"[ -]", "_", match[1].lower())


@dataclass
class _Named:
    """What a line that is no row says: a step it names (with ``rest``, the text after
    ``:``/``=`` that may hold its first row), a heading's level, a query row."""

    step: str | None = None
    level: int | None = None  # a heading's level, 1 … 6
    rest: str = ""
    query: str | None = None
    heading: str = ""


def _named(line: str) -> _Named | None:
    """A heading, a line naming a step, or a query line; None for any other line."""
    heading = _HEADING.fullmatch(line)
    if heading:
        text = heading[2] or ""
        query = _QUERY.fullmatch(text.strip(_MARKS))
        found = None if _about_an_input(text) else STEP.search(text)
        return _Named(step_name(found) if found else None, len(heading[1]),
                      query=query[1].strip(_MARKS + ",") if query else None, heading=text)
    text = line[_PREFIX.match(line).end():]
    query = _QUERY.fullmatch(text.strip(_MARKS))
    if query:
        return _Named(query=query[1].strip(_MARKS + ","))
    bold = text.startswith(("**", "__"))
    if bold:  # the step anywhere inside the bold text
        close = text.find(text[:2], 2)
        found = (STEP.search(text[2:close]) if close > 0 and not _about_an_input(text[2:close])
                 else None)
        rest = text[close + 2:].lstrip(_MARKS) if close > 0 else ""
    else:  # the step first, then nothing, ":", "=" or "("
        text = text.lstrip(_MARKS)
        found = STEP.match(text)
        rest = text[found.end():].lstrip(_MARKS) if found else ""
    if found is None or not bold and rest and rest[0] not in ":=(":
        return None
    return _Named(step_name(found), rest=rest[1:] if rest[:1] in (":", "=") else "")


_LABEL = re.compile(r"[A-Za-z][A-Za-z_ -]*[A-Za-z]")


def misspelled(line: str, named: _Named | None) -> tuple[str, str] | None:
    """A heading, or a line that is one word (then ``:``, ``=`` or nothing), that names no
    step but nearly one (``## wieghts``, ``contxt:``): (the word, the step it is close to),
    so that its rows are not silently left out or taken for the step above."""
    if named is not None and (named.step is not None or named.query is not None):
        return None
    if named is not None:  # a heading
        word = _LABEL.match(named.heading.strip(_MARKS))
    else:
        text = line[_PREFIX.match(line).end():].strip(_MARKS)
        word = _LABEL.match(text)
        if word is None or text[word.end():].strip(_MARKS)[:1] not in ("", ":", "="):
            return None
    if word is None:
        return None
    close = near_step(word[0])
    return (word[0], close) if close else None


def near_step(label: str) -> str | None:
    """The step ``label`` nearly names (``wieghts``, ``contxt``, ``scaled scors``): one of
    as many words (``weight sums`` names none), or None."""
    import difflib

    words = re.split(r"[\s_-]+", label.strip().lower())
    same = [s for s in STEP_NAMES if len(s.split("_")) == len(words)]
    close = difflib.get_close_matches("_".join(words), same, n=1, cutoff=0.75)
    return close[0] if close else None


def _spelled(reader, number: int, line: str, named: _Named | None) -> _Named | None:
    """``named``, or for a line that nearly names a step (:func:`misspelled`) that step, as a
    grader reads ``## wieghts``; the reader notes it."""
    typo = misspelled(line, named)
    if typo is None:
        return named
    reader.notes.append(f"line {number}: {typo[0]!r} read as {typo[1]}")
    level = named.level if named is not None else None
    text = line[_PREFIX.match(line).end():].strip(_MARKS) if named is None else ""
    rest = text[len(typo[0]):].lstrip(_MARKS)
    return _Named(typo[1], level, rest=rest[1:] if rest[:1] in (":", "=") else "")


_ANSWER = re.compile(r"(?:final\s+|my\s+)?(?:answers?|results?|solutions?)", re.IGNORECASE)
_HEAD_LINE = re.compile(r"\s*[#*_]*\s*heads?\s*\d+\s*[:.)]?[*_]*\s*", re.IGNORECASE)
_NOTE = re.compile(r"\s*([A-Za-z][^:=\d]*?)\s*[:=](.*)")


def _note(line: str) -> bool:
    """A line of the student's own words that names no step: a label and ``:`` or ``=`` with
    no number after it (``exp:``), or a label of several words (``sum of exp = 2.8``). One
    word then numbers (``cat: 0.5 0.25``) is a row with its token's label."""
    found = _NOTE.fullmatch(line)
    if found is None:
        return False
    return len(found[1].split()) > 1 or not re.search(r"\d", found[2])


# --- blocks of rows, as read from any text form --------------------------------------------


@dataclass
class _Block:
    """One table or run of rows: ``rows`` (file line, cells), the step it belongs to, and
    whether its first row is a Markdown header (above the ``|---|`` rule)."""

    line: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    step: str | None = None
    ruled: bool = False
    under_heading: bool = False  # under a heading that names no step
    aside: str = ""  # the label (heading, "exp:") that left its rows out, for the note
    trim: bool = False  # a CSV file: trailing cells empty in every row are dropped


def _grid(block: _Block, file: str, step: str) -> tuple[list[int], list[list[Entry]]]:
    """A block's rows of entries, its header row and label column dropped.

    A first row is a header when it holds no number (in a Markdown table, the row above the
    rule, unless it is all numbers other than the column numbers 0, 1, … or 1, 2, …). The
    first column is labels when each row after the header starts with a word, or when the
    header starts with an empty corner above them (pandas' to_csv, the worksheet's tables).
    In a CSV file, trailing cells empty in every row (a trailing delimiter) are dropped.
    Rows with every cell empty are skipped.
    Raises: InputError naming the line (and column) of a cell that is no number.
    """
    rows = [(line, cells) for line, cells in block.rows if any(c.strip() for c in cells)]
    if not rows:
        return [], []
    kinds = [[_kind(cell) for cell in cells] for _, cells in rows]
    first, first_kinds = rows[0][1], kinds[0]
    corner = len(rows) > 1 and len(first) > 1 and first_kinds[0] == "empty" and (
        all(k == "text" for k in first_kinds[1:]) or _column_numbers(first[1:]))
    words = all(_word(cells[0]) and kind[0] == "text"
                for (_, cells), kind in zip(rows[1:] or rows, kinds[1:] or kinds, strict=True))
    labelled = corner or words
    names, name_kinds = first[1 if labelled else 0:], first_kinds[1 if labelled else 0:]
    if corner:
        header = True
    elif block.ruled:
        header = len(rows) > 1 and (any(k != "number" for k in name_kinds)
                                    or _column_numbers(names))
    else:
        header = len(rows) > 1 and "text" in name_kinds and "number" not in name_kinds
    lines, grid = [], []
    for (line, cells), row_kinds in zip(rows[1 if header else 0:], kinds[1 if header else 0:],
                                        strict=True):
        start = 1 if labelled else 0
        entries = []
        for column, (cell, kind) in enumerate(zip(cells[start:], row_kinds[start:],
                                                  strict=True), start=start + 1):
            if kind == "text":
                raise InputError(f"{file}: {step}: line {line}, column {column}: "
                                 f"{not_a_number(cell)}")
            entries.append(cell_entry(cell))
        lines.append(line)
        grid.append(entries)
    width = max((max((i + 1 for i, e in enumerate(row) if e is not EMPTY or not block.trim),
                     default=0) for row in grid), default=0)
    for line, row in zip(lines, grid, strict=True):
        if len(row) < width:
            raise _ragged(file, step, line, [len(row), width])
    return lines, [row[:width] for row in grid]


def _word(cell: str) -> bool:
    """A label: letters, and not a number too large (1e999)."""
    return any(c.isalpha() for c in cell) and not _DECIMAL.fullmatch(cell.strip().translate(MINUS))


def _ragged(file: str, step: str, line: int, widths: list[int]) -> InputError:
    return InputError(f"{file}: {step}: line {line}: rows of {' and '.join(map(str, widths))} "
                      "numbers: a step's rows (and tables) must be equally long")


def _kind(cell: str) -> str:
    entry = cell_entry(cell)
    return "text" if entry is None else "empty" if entry is EMPTY else "number"


def _column_numbers(cells: list[str]) -> bool:
    """Cells that number the columns: 0, 1, … or 1, 2, …"""
    written = [cell.strip() for cell in cells]
    return written in ([str(i) for i in range(len(cells))],
                       [str(i) for i in range(1, len(cells) + 1)])


def _tokens(line: str) -> list[str]:
    """A text row's cells: split at spaces, tabs, commas, semicolons and ``|``; brackets and
    quotes dropped; ``3 / 2`` kept together."""
    line = re.sub(r"\s*/\s*", "/", line.translate(MINUS))
    return [t for t in (t.strip("\"'`*$") for t in re.split(r"[\s,;|\[\](){}]+", line)) if t]


#: Where one line holds several bracketed rows: [[1, 2], [3, 4]]
_ROWS = re.compile(r"\]\s*[,;]?\s*\[")


def _is_row(cells: list[str]) -> bool:
    """A text line that is a row: it holds a number (or null, −∞)."""
    return any(_kind(cell) == "number" for cell in cells)


class _Reader:
    """Blocks of rows collected line by line, each given to the step named last before it
    (:func:`_named`), for the text and Markdown forms."""

    def __init__(self, path: Path, shapes: Mapping[str, tuple[int, ...]]):
        self.file, self.shapes = str(path), shapes
        found = STEP.search(path.stem)
        self.file_step = step_name(found) if found else None  # weights.txt
        self.blocks: list[_Block] = []
        self.step: str | None = None
        self.level = 7  # the level of the heading that named the step (7: no heading)
        self.under_heading = False
        self.aside = ""  # the label of the heading or line that named no step
        self.named_any = False
        self.query: tuple[str, int] | None = None
        self.open: _Block | None = None  # the text rows being collected
        self.notes: list[str] = []  # how the file was read where it was unclear

    def name(self, line: int, named: _Named) -> None:
        """A heading or a line naming a step (or a query) at file line ``line``."""
        self.open = None
        if named.query is not None:
            if self.query is not None and self.query[0] != named.query:
                raise InputError(f"{self.file}: line {line}: query {named.query!r}, but line "
                                 f"{self.query[1]} says {self.query[0]!r}")
            self.query = (named.query, line)
            return
        if named.step is None:  # a heading that names no step
            if not _HEAD.search(named.heading) and named.level <= self.level:
                self.step, self.level, self.under_heading = None, 7, True
                self.aside = "" if _about_an_input(named.heading) else named.heading
            return
        asked(named.step, self.shapes, self.file, f"line {line}: ")
        self.step, self.level = named.step, named.level or 7
        self.under_heading, self.named_any = False, True
        self.rows(line, named.rest, only_numbers=True)

    def rows(self, line: int, text: str, only_numbers: bool = False) -> None:
        """The rows of a text line: the line, or each bracketed row of ``[[1, 2], [3, 4]]``;
        none when it holds no number (a comment), or with ``only_numbers`` (the text after
        ``weights:``) also none when it holds words."""
        parts = [_tokens(part) for part in _ROWS.split(text)]
        if only_numbers and any(_kind(cell) == "text" for cells in parts for cell in cells):
            return
        for cells in parts:
            if _is_row(cells):
                if self.open is None:
                    self.open = self.add(line)
                self.open.rows.append((line, cells))

    def add(self, line: int, ruled: bool = False) -> _Block:
        block = _Block(line, step=self.step, ruled=ruled, under_heading=self.under_heading,
                       aside=self.aside if self.step is None else "")
        self.blocks.append(block)
        return block

    def end_rows(self) -> None:
        self.open = None

    def steps(self) -> dict[str, list[_Block]]:
        """The blocks of each step. A block under no step name: before the first heading,
        the step the file's name names (weights.txt); else, when the file names no step
        and one is asked, that step; under a heading that names no step, no answer.

        Raises: InputError for any other block under no step name, or a step the file's
        name names that is not asked.
        """
        found: dict[str, list[_Block]] = {}
        for block in self.blocks:
            step = block.step
            if step is None and self.file_step is not None and not block.under_heading:
                step = self.file_step
                asked(step, self.shapes, self.file, "")
            elif step is None and len(self.shapes) == 1 and not self.named_any:
                step = next(iter(self.shapes))
            elif step is None and block.under_heading:
                if block.aside and any(_is_row(cells) for _, cells in block.rows):
                    self.notes.append(f"line {block.line}: rows under {block.aside!r} left "
                                      "out: it names no step")
                continue
            elif step is None:
                raise InputError(f"{self.file}: line {block.line}: numbers before any step "
                                 f"name: name the step above them (e.g. "
                                 f"\"{next(iter(self.shapes))}:\" or a heading)")
            found.setdefault(step, []).append(block)
        return found


def read_text(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> Read:
    """A text file: rows of numbers after the lines naming their steps."""
    file = str(path)
    reader = _Reader(path, shapes)
    for number, line in enumerate(open_text(file).splitlines(), start=1):
        _text_line(reader, number, line)
    return _assembled(reader, file)


def _text_line(reader: _Reader, number: int, line: str) -> None:
    if not line.strip():
        reader.end_rows()
        return
    named = _spelled(reader, number, line, _named(line))
    if named is not None and (named.step is not None or named.query is not None
                              or named.level is not None):
        reader.name(number, named)
        return
    if _HEAD_LINE.fullmatch(line):  # "Head 1" alone: the next head's rows follow
        reader.open = None
        return
    if _note(line):  # extra working: "exp:" starts rows of its own, left out
        reader.open = None
        if reader.step is not None and _ANSWER.fullmatch(line.strip(_MARKS + ":= ")):
            return  # "Answer:" under "weights": the weights follow
        reader.step, reader.level, reader.under_heading = None, 7, True
        reader.aside = line.strip()
        return
    reader.rows(number, line)


_RULE = re.compile(r"\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*")
_FENCE = re.compile(r"\s{0,3}(`{3,}|~{3,})")


def read_markdown(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> Read:
    """A Markdown file: tables (and fenced rows) after the headings or lines naming their
    steps."""
    file = str(path)
    reader = _Reader(path, shapes)
    lines = open_text(file).splitlines()
    fence: str | None = None
    table: _Block | None = None
    for number, line in enumerate(lines, start=1):
        opening = _FENCE.match(line)
        if fence is not None:  # inside a fenced code block: rows as in a text file
            if opening and opening[1][0] == fence[0] and len(opening[1]) >= len(fence):
                fence = None
                reader.end_rows()
            else:
                _text_line(reader, number, line)
            continue
        if opening:
            fence, table = opening[1], None
            reader.end_rows()
            continue
        if "|" in line and (line.lstrip().startswith("|") or table is not None
                            or _table_follows(lines, number)):
            if _RULE.fullmatch(line) and "-" in line:
                if table is not None and len(table.rows) == 1:
                    table.ruled = True
                continue
            if table is None:
                table = reader.add(number)
            table.rows.append((number, _cells(line)))
            continue
        table = None
        named = _spelled(reader, number, line, _named(line))
        if named is not None:
            reader.name(number, named)
    return _assembled(reader, file)


def _table_follows(lines: list[str], number: int) -> bool:
    """A line with ``|`` but no leading one is a table row when the next line is a rule."""
    return number < len(lines) and bool(_RULE.fullmatch(lines[number])) and "-" in lines[number]


def _cells(line: str) -> list[str]:
    text = line.strip()
    text = text[1:] if text.startswith("|") else text
    text = text[:-1] if text.endswith("|") and not text.endswith("\\|") else text
    return [cell.strip().strip("*_`$ ") for cell in text.split("|")]


def read_csv(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> Read:
    """One CSV file: one step, named by the file (or the one step asked)."""

    file = str(path)
    found = STEP.search(path.stem)
    close = near_step(path.stem)
    notes = []
    if found:
        step = step_name(found)
        asked(step, shapes, file, "")
    elif len(shapes) == 1:
        step = next(iter(shapes))
    elif close:  # wieghts.csv, as a grader reads it
        step = close
        notes.append(f"{path.name} read as {step}")
    else:
        raise InputError(f"{file}: which step is it? name a CSV file after its step ("
                         f"{', '.join(s + '.csv' for s in shapes)})")
    text = open_text(file)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = next((d for d in (",", "\t", ";") if d in first), None)
    if delimiter == "," and ";" in first:  # 0,34;0,22: semicolons between decimal commas
        delimiter = ";"
    block = _Block(1, step=step, trim=True)
    if delimiter is None:  # numbers separated by spaces (or one per line)
        block.rows = [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1)]
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            block.rows = [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            raise InputError(f"{file}: line {reader.line_num + 1}: not readable as CSV: "
                             f"{exc}") from None
    read = _assembled_blocks({step: [block]}, file, None)
    read.notes = notes
    return read


@dataclass
class Read:
    """What one file (or folder) gives: step → (object array of entries, the file), and the
    query row with the file that says it."""

    steps: dict[str, tuple[np.ndarray, str]]
    query: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)


def _assembled(reader: _Reader, file: str) -> Read:
    query = None if reader.query is None else (reader.query[0], file)
    read = _assembled_blocks(reader.steps(), file, query)
    read.notes = [f"{Path(file).name}: {note}" for note in reader.notes]
    return read


def _assembled_blocks(blocks: dict[str, list[_Block]], file: str,
                      query: tuple[str, str] | None) -> Read:
    """Each step's blocks stacked into one array of entries (1-D for one row)."""
    steps = {}
    for step, found in blocks.items():
        rows: list[list[Entry]] = []
        lines: list[int] = []
        for block in found:
            block_lines, grid = _grid(block, file, step)
            if len(found) > 1 and not any(e.kind not in ("empty", "null") for row in grid
                                          for e in row):
                continue  # the template's nulls beside the student's tables: unanswered
            lines += block_lines
            rows += grid
        if not rows:
            continue
        widths = sorted({len(row) for row in rows})
        if len(widths) > 1:
            line = next(n for n, row in zip(lines, rows, strict=True) if len(row) != widths[-1])
            raise _ragged(file, step, line, widths)
        grid = np.empty((len(rows), widths[0]), dtype=object)
        for i, row in enumerate(rows):
            grid[i, :] = row
        grid = grid[0] if len(rows) == 1 else grid
        if answered(grid):
            steps[step] = (grid, file)
    return Read(steps, query)


def answered(grid: np.ndarray) -> bool:
    """A step with a number in it (not all empty or null: the template as handed out)."""
    return any(e.kind not in ("empty", "null") for e in grid.flat)


def asked(step: str, shapes: Mapping[str, tuple[int, ...]], file: str, where: str) -> None:
    """Raises: InputError for a name that is no step. A step the exercise does not ask is
    read (extra working) and left out by :func:`attncli.teach.forms.read_submission`."""
    if step not in shapes and step not in STEP_NAMES:
        raise InputError(f"{file}: {where}{step}: not a step; the exercise asks "
                         f"{', '.join(shapes)}")
