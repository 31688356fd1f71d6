"""The answer forms students write, read as :class:`attncli.answers.Answers`
(:func:`read_submission`): the JSON template, one CSV per step, Markdown tables, rows of
numbers in a text file, or a folder of these. The rules, per form:

- **JSON** (``.json``): answers-template.json filled in (``{"query": "cat", "weights": [[…]],
  …}``), or compute's ``--format json`` document. A step whose entries are all ``null`` is
  not answered (the template as handed out). In masked_scores a ``null`` among numbers is −∞
  (as compute writes it); elsewhere it is an empty entry. Numbers may be strings
  (``"0.50"``, ``"3/2"``); fractions (``3/2``) and Unicode minus signs (``−0.5``) are read
  outside strings too, though JSON has neither. Keys match step names as in text.
- **CSV** (``.csv``): one file per step, named after it (``weights.csv``, also
  ``s01-weights.csv``), or any name when one step is asked. Separated by commas, semicolons
  or tabs (by spaces when the first line has none of these); a header row and a first column
  of token labels are dropped; an empty cell is an empty entry; a trailing delimiter is
  ignored.
- **Markdown** (``.md``, ``.markdown``): tables (``| 0.5 | 0.25 |``), and rows of numbers
  in fenced code blocks (read as in a text file: the worksheet handed back with its JSON
  template filled in is read too). A table belongs to the step named last before it: in a
  heading (``## weights``, ``### Step 2: attention weights``: the first step anywhere in its
  text), in bold at the start of a line (``**weights**``, ``1. **weights** (3 × 3):``), or
  first on a line and followed by ``:``, ``=``, ``(`` or nothing (``weights:``, ``Step 2:
  weights``). A line that names two steps names the first. A heading or bold text that
  starts with an input's name (``### W_q (8 × 8): query weights``) names no step. A heading
  that names no step ends the step named at its level or deeper (``## Notes`` after
  ``## weights``; not ``### head 1``): tables under it are no answers. The row above the
  ``|---|`` rule is a header unless it is all numbers other than the column numbers (0, 1, …
  or 1, 2, …); an empty cell is an empty entry. A step's tables (and rows) are stacked: one
  table per head.
- **Text** (``.txt``): rows of numbers separated by spaces, tabs, commas, semicolons or
  ``|``; brackets, parentheses and quotes are ignored, and ``[[1, 2], [3, 4]]`` on one line
  is two rows. A line naming a step as in Markdown (``weights``, ``weights:``, ``# weights``,
  ``Q2: weights``) starts it; numbers after ``weights:`` or ``weights =`` on that line are
  its first row. Lines without a number are comments.
- Rows under no step name: those before the first heading are the step the file's name
  names (``weights.txt``); else, when the file names no step and one is asked, they are that
  step; those under a heading that names no step are no answers; any others are an error.
- **A folder**: every answer file in it and in its subfolders one level down (not hidden
  files, nor the exercise's problem.json, worksheet and exercise.json), merged; a step given
  by two files is an error naming both.

In every text form: a first column of labels (words, or anything under an empty corner
cell) is dropped; a step's rows must be equally long; ``null`` is read as in JSON; a line
``query: cat`` says which query row is answered; step names match case-insensitively, with
a space or ``-`` for ``_`` (``Masked scores``); a step the exercise does not ask is an error.

Numbers: integers, decimals, a leading ``+``, exponents (``1e-3``: 3 decimals), Unicode minus
(``−``, also ``–``) and fractions ``a/b``. A fraction is exact: it is recorded with
:data:`FRACTION_DECIMALS` decimals, so it must be the exact value give or take float noise;
every other entry of the step is recorded with the most decimals any of them is written with,
as :meth:`Answers.from_mapping` does. −∞ (``-inf``, ``-Infinity``, ``−∞``, ``-∞``,
``-\\infty``) only in masked_scores. An empty entry is NaN, which check grades wrong; a step
with no number at all is not answered.

Shapes: a step's rows form an array (1-D for one row). Where it is not the exercise's shape
but has its size, it is laid out as that shape when written as a row or a column of all the
numbers, as per-head tables stacked (H·n rows of d) or side by side (n rows of H·d, as x W_q
is before it is split into heads), or with axes of length 1 added or left out. Any other
arrangement of the same size (a transposed matrix) is kept as written: check grades it as the
wrong shape it is. Another size is an error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from attncli.answers import Answers
from attncli.errors import InputError
from attncli.io import open_text
from attncli.teach.tables import (
    EMPTY,
    FRACTION_DECIMALS,
    NEG_INF,
    NULL,
    STEP,
    UNSIGNED,
    Entry,
    Read,
    answered,
    cell_entry,
    near_step,
    not_a_number,
    read_csv,
    read_markdown,
    read_text,
    step_name,
)
from attncli.trace import SCORE_AXES, STEP_AXES, STEP_NAMES

#: The suffixes of the answer files :func:`read_submission` reads.
ANSWER_SUFFIXES = (".json", ".csv", ".md", ".markdown", ".txt")
#: Files of an exercise that a student's folder may hold and that are no answers (worksheet.md
#: is read: as handed out it answers nothing, filled in it is the student's answer).
NOT_ANSWERS = ("problem.json", "worksheet.tex", "exercise.json")
_FORMS = (".json (the template filled in), .csv (one file per step), .md (Markdown tables) "
          "or .txt (rows of numbers)")


# --- JSON ------------------------------------------------------------------------------


def _read_json(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> Read:
    from attncli.io.json_reader import read_json_value

    file = str(path)
    try:
        raw = read_json_value(file, decimals=True)
    except InputError as exc:  # 3/2 or −0.5 outside quotes: read again with them quoted
        raw = _quoted_again(file, exc)
    return read_mapping(raw, shapes, file)


def read_mapping(raw: Any, shapes: Mapping[str, tuple[int, ...]], file: str) -> Read:
    """The JSON form once parsed (a file's, or a notebook's dict): step → nested numbers.

    A key that is no step is left out (a name, a note), unless it nearly names a step
    (``wieghts``), which is read as that step and noted.
    Raises: InputError for a non-object, a bad query, a step given twice, a bad number.
    """
    if not isinstance(raw, Mapping):
        raise InputError(f"{file}: expected a JSON object of step → numbers, as "
                         "answers-template.json")
    if isinstance(raw.get("steps"), Mapping):  # attncli compute --format json
        raw = {"query": raw.get("query"), **{
            name: entry.get("data") if isinstance(entry, Mapping) else entry
            for name, entry in raw["steps"].items()}}
    raw = {"query" if key.strip().lower() == "query" else key: value for key, value in raw.items()}
    query = raw.get("query")
    if query is not None and (isinstance(query, bool) or not isinstance(query, str | int)):
        raise InputError(f"{file}: query: expected a token or an index, got {query!r}")
    steps: dict[str, np.ndarray] = {}
    notes = []
    for key, value in raw.items():
        if key == "query":
            continue
        written = STEP.fullmatch(str(key).strip())  # Weights, "masked scores": as in text
        name = step_name(written) if written else str(key)
        if name not in STEP_NAMES:
            close = near_step(name)
            numbers = isinstance(value, list | tuple) or hasattr(value, "tolist")
            if close is None or close in raw:  # "name", "notes", "weight_sums": no answer;
                if numbers:  # numbers under another name: said
                    notes.append(f"{Path(file).name}: {key!r} is no step, left out")
                continue
            notes.append(f"{Path(file).name}: {key!r} read as {close}")
            name = close
        if name in steps:
            raise InputError(f"{file}: {name} is given twice (as {key!r} too)")
        steps[name] = _json_grid(value.tolist() if hasattr(value, "tolist") else value,
                                 name, file)
    return Read({s: (g, file) for s, g in steps.items() if answered(g)},
                None if query is None else (str(query), file), notes)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BARE = re.compile(rf"[+\-\u2212\u2013]?{UNSIGNED}\s*/\s*{UNSIGNED}|[\u2212\u2013]{UNSIGNED}"
                   rf"(?:[eE][+-]?\d+)?|[\u2212\u2013-]∞|[\u2212\u2013-]inf\b", re.IGNORECASE)


def _quoted_again(file: str, error: InputError) -> Any:
    """The JSON text with bare fractions (3/2) and numbers with a Unicode minus (−0.5)
    quoted, parsed; ``error`` (the first reading's) when there are none or it still fails."""
    from attncli.io.json_reader import _unique

    text = open_text(file)
    parts, end, changed = [], 0, False
    for string in _STRING.finditer(text):
        outside = text[end:string.start()]
        quoted = _BARE.sub(lambda m: json.dumps(m[0], ensure_ascii=False), outside)
        changed |= quoted != outside
        parts += [quoted, string[0]]
        end = string.end()
    outside = text[end:]
    quoted = _BARE.sub(lambda m: json.dumps(m[0], ensure_ascii=False), outside)
    changed |= quoted != outside
    if not changed:
        raise error
    try:
        return json.loads("".join(parts) + quoted, parse_float=Decimal,
                          object_pairs_hook=lambda pairs: _unique(pairs, file))
    except (ValueError, RecursionError):
        raise error from None


def _json_grid(value: Any, step: str, file: str) -> np.ndarray:
    """A step's JSON numbers as an object array of entries."""
    def leaves(item: Any, depth: int) -> Any:
        if isinstance(item, list):
            if depth >= 8:
                raise InputError(f"{file}: {step}: arrays nested {depth + 1} deep; a step "
                                 "has at most 4 axes")
            return [leaves(v, depth + 1) for v in item]
        return _json_entry(item, step, file)

    grid = np.array(leaves(value, 0), dtype=object)
    if grid.size == 0 or not all(isinstance(e, Entry) for e in grid.flat):
        raise InputError(f"{file}: {step}: expected a (rectangular) array of numbers")
    return grid


def _json_entry(value: Any, step: str, file: str) -> Entry:
    if value is None:
        return NULL
    entry = None
    if isinstance(value, str):
        entry = cell_entry(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        entry = cell_entry(str(value))
    elif isinstance(value, Decimal):
        entry = cell_entry(str(value))
    elif isinstance(value, float) and value == -math.inf:  # -Infinity outside quotes
        entry = NEG_INF
    elif isinstance(value, float) and math.isnan(value):  # a notebook's blank: empty
        return NULL
    elif isinstance(value, float) and math.isfinite(value):  # a notebook's number, as
        entry = cell_entry(repr(value))  # its shortest text writes it
    if entry is None or entry is EMPTY:
        shown = not_a_number(value) if isinstance(value, str) else f"{value!r} is not a number"
        raise InputError(f"{file}: {step}: {shown} (an unknown entry is null; −∞ in "
                         "masked_scores is null or \"-inf\")")
    return entry


# --- the answers ---------------------------------------------------------------------


def _numbers(step: str, grid: np.ndarray, file: str) -> tuple[np.ndarray, np.ndarray]:
    """A step's numbers (float64: NaN for an empty entry) and the decimals of each entry.

    Raises: InputError for −∞ outside masked_scores.
    """
    masked = step == "masked_scores"
    if not masked and any(e.kind == "neg_inf" for e in grid.flat):
        raise InputError(f"{file}: {step}: −∞ is an answer only in masked_scores")
    values = np.array([-math.inf if e.kind == "null" and masked else e.value
                       for e in grid.flat], dtype=np.float64).reshape(grid.shape)
    written = max((e.decimals for e in grid.flat if e.kind == "number" and not e.exact),
                  default=0)
    decimals = np.array([FRACTION_DECIMALS if e.exact else written for e in grid.flat],
                        dtype=np.int64).reshape(grid.shape)
    return values, decimals


def _laid_out(array: np.ndarray, shape: tuple[int, ...], step: str, file: str,
              every_row: bool) -> Any:
    """``array`` as the exercise's ``shape`` where it is written in a usual other way (see the
    module's docstring); else as written, when its size is the shape's.

    Raises: InputError naming the sizes when it is not.
    """
    if array.shape == shape:
        return lambda a: a
    if array.size != math.prod(shape):
        axes = STEP_AXES.get(step, SCORE_AXES)  # the query axis counts the same from the end
        query = axes.index("query") - len(axes) if "query" in axes else None
        one_row = (every_row and query is not None and len(shape) >= -query
                   and array.size * shape[query] == math.prod(shape))
        hint = "; the exercise asks every query row" if one_row else ""
        raise InputError(f"{file}: {step}: {_dims(array.shape)} numbers, the exercise asks "
                         f"{_dims(shape)}{hint}")
    squeezed = tuple(n for n in array.shape if n != 1)
    if squeezed == tuple(n for n in shape if n != 1) or len(squeezed) <= 1:
        return lambda a: a.reshape(shape)  # a row, a column, axes of length 1
    if array.ndim == 2 and len(shape) >= 3 and array.shape == (math.prod(shape[:-1]),
                                                                 shape[-1]):
        return lambda a: a.reshape(shape)  # per-head tables stacked
    if array.ndim == 2 and len(shape) == 3 and array.shape == (shape[1], shape[0] * shape[2]):
        # per-head tables side by side, as x W_q is before it is split into heads
        return lambda a: np.moveaxis(a.reshape(shape[1], shape[0], shape[2]), 1, 0)
    return lambda a: a


def _dims(shape: tuple[int, ...]) -> str:
    return " × ".join(map(str, shape)) if shape else "1"


# --- the entry point ---------------------------------------------------------------------


def read_submission(path: Path, shapes: Mapping[str, tuple[int, ...]],
                    query: str | None = None) -> Answers:
    """One student's answers from a file or a folder (the forms in this module's docstring).

    Args:
        path: a .json, .csv, .md/.markdown or .txt file, or a folder of them.
        shapes: the asked steps, in pipeline order → the shape of the answer the exercise
            expects (narrowed to the query row when the exercise asks one row).
        query: the exercise's query row label (None: every row); Answers.query when the file
            gives none.
    Shapes: each answered step as ``shapes`` gives it (or as written, when it has that size
        but no usual layout of it: check grades it as the wrong shape it is); the decimals of
        each entry the same shape.
    Returns: Answers of the answered steps in pipeline order, NaN for an empty entry, −∞ in
        masked_scores; ``file`` is ``str(path)``.
    Raises: InputError, one line naming the file (and the step, line or column) for an
        unknown suffix, a cell that is no number, −∞ outside masked_scores, a name that is
        no step (a step the exercise does not ask is extra working, left out),
        a step given by two files of a folder, a query row other than the exercise's, a size
        other than the exercise's, or no step answered.
    """
    path = Path(path)
    read = _read_folder(path, shapes) if path.is_dir() else _read_file(path, shapes)
    return answers_of(read, shapes, query, str(path))


def answers_of(read: Read, shapes: Mapping[str, tuple[int, ...]], query: str | None,
               path: str) -> Answers:
    """The Answers a Read gives (:func:`read_submission`; a notebook's dict through
    :func:`read_mapping`), laid out as ``shapes``, with the reader's notes.

    Raises: InputError for a query row other than the exercise's, no step answered, a size
    other than the exercise's.
    """
    row = query
    if read.query is not None:
        given, source = read.query
        if query is None:
            raise InputError(f"{source}: query {given!r}: the exercise asks every query row, "
                             "not one")
        if given != query:
            raise InputError(f"{source}: query {given!r}: the exercise asks the row of "
                             f"{query!r}")
    extra = [s for s in read.steps if s not in shapes]  # extra working: left out
    read.steps = {s: v for s, v in read.steps.items() if s in shapes}
    if not read.steps:
        why = (f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not asked" if extra
               else "; ".join(read.notes) if read.notes
               else "an unanswered entry is null or empty")
        raise InputError(f"{path}: no answers: no step of {', '.join(shapes)} has a number "
                         f"({why})")
    steps, decimals = {}, {}
    for step in (s for s in STEP_NAMES if s in read.steps):
        grid, file = read.steps[step]
        values, written = _numbers(step, grid, file)
        lay = _laid_out(values, tuple(shapes[step]), step, file, query is None)
        steps[step], decimals[step] = lay(values), lay(written)
    return Answers(steps, decimals, row, str(path), tuple(read.notes))


def _read_file(path: Path, shapes: Mapping[str, tuple[int, ...]]) -> Read:
    suffix = path.suffix.lower()
    if suffix not in ANSWER_SUFFIXES:
        raise InputError(f"{path}: not an answer file: hand in {_FORMS}")
    reader = {".json": _read_json, ".csv": read_csv, ".txt": read_text}.get(
        suffix, read_markdown)
    return reader(path, shapes)


def _read_folder(folder: Path, shapes: Mapping[str, tuple[int, ...]]) -> Read:
    """Every answer file of ``folder`` and of its subfolders (one level), merged.

    Raises: InputError for a step given twice, two query rows, or no answer file.
    """
    files = [p for p in _visible(folder) if p.is_file()]
    files += [p for sub in _visible(folder) if sub.is_dir() for p in _visible(sub)
              if p.is_file()]
    files = [p for p in files if p.suffix.lower() in ANSWER_SUFFIXES
             and p.name.lower() not in NOT_ANSWERS]
    if not files:
        raise InputError(f"{folder}: no answer file in this folder: hand in {_FORMS}")
    merged = Read({})
    for file in files:
        read = _read_file(file, shapes)
        for step, (grid, source) in read.steps.items():
            if step in merged.steps:
                raise InputError(f"{folder}: {step} is given twice: in "
                                 f"{merged.steps[step][1]} and in {source}")
            merged.steps[step] = (grid, source)
        merged.notes += read.notes
        if read.query is not None:
            if merged.query is not None and merged.query[0] != read.query[0]:
                raise InputError(f"{folder}: query {merged.query[0]!r} in {merged.query[1]} "
                                 f"but {read.query[0]!r} in {read.query[1]}")
            merged.query = read.query
    return merged


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith((".", "~", "__")))
