"""A class roster: a CSV file with a column ``id`` (the name of each student's folder and
submission) and an optional column ``name``."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attncli.errors import InputError

#: A roster id names a folder and a file: letters (any alphabet), digits, ``.``, ``_``, ``-``
#: and ``@``, not starting with a dot (no hidden files, no ``..``).
_ID = re.compile(r"[\w@\-][\w.@\-]*")


#: Names an id may not take: the files attncli exercise writes beside the students' folders.
RESERVED = ("exercise.json", "roster.csv")


@dataclass(frozen=True)
class Student:
    """One student: ``id`` names their folder, submission and feedback page."""

    id: str
    name: str = ""


def id_fault(sid: Any) -> str | None:
    """What is wrong with ``sid`` as a student's id (a folder's and a file's name), or None.
    """
    if not isinstance(sid, str) or not _ID.fullmatch(sid):
        return (f"id {sid!r} cannot name a folder; use letters, digits, '.', '_', '-' or '@' "
                "(not first a dot)")
    if sid.lower() in RESERVED:
        return f"id {sid!r} is the name of a file attncli exercise writes"
    return None


def read_roster(path: Path) -> list[Student]:
    """The students of ``path``, in the file's order.

    The first row names the columns (separated by commas, or semicolons or tabs as
    spreadsheets write them): ``id`` (required; also ``student``, ``student_id``,
    ``sid`` or ``username``, any case) and ``name`` (optional; also ``student_name``,
    ``full_name``). Blank lines are skipped; a UTF-8 BOM and Windows line endings are accepted.

    Raises: InputError naming the file (and line) for a missing file, no id column, an empty,
    repeated or unsafe id (one that cannot be a folder name), or no student at all.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such roster file (a CSV with a column id, and "
                         "optionally name)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the roster: {exc}") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")  # Excel: ; in Europe
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = [(reader.line_num, [c.strip() for c in row]) for row in reader
            if any(c.strip() for c in row)]
    if not rows:
        raise InputError(f"{path}: empty roster; expected a header row with a column id")
    header = [c.lower().replace(" ", "_") for c in rows[0][1]]
    column = _column(header, ("id", "student_id", "student", "sid", "username"))
    if column is None:
        raise InputError(f"{path}: line 1: no column id in the header "
                         f"({', '.join(rows[0][1])}); the roster's first row names its "
                         "columns: id and optionally name")
    named = _column(header, ("name", "student_name", "full_name"))
    students, seen = [], {}
    for line, row in rows[1:]:
        sid = row[column] if column < len(row) else ""
        if not sid:
            raise InputError(f"{path}: line {line}: no id")
        if (fault := id_fault(sid)) is not None:
            raise InputError(f"{path}: line {line}: {fault}")
        if sid.lower() in seen:  # Alice and alice: one folder on macOS and Windows
            first, at = seen[sid.lower()]
            again = "again" if first == sid else f"is {first!r} in another case"
            raise InputError(f"{path}: line {line}: id {sid!r} {again} (line {at}); each "
                             "student once, ids differing in more than case")
        seen[sid.lower()] = (sid, line)
        students.append(Student(sid, row[named] if named is not None and named < len(row)
                                else ""))
    if not students:
        raise InputError(f"{path}: no students: the roster has a header and no rows")
    return students


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)
