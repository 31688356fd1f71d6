"""Readers for JSON, CSV, NPY/NPZ and safetensors, all ending in one validated :class:`Problem`.

``load_problem(path, arrays=…)`` reads a whole problem, and one matrix per key for an option
such as ``--wq wq.csv``. Paths may be ``-`` for standard input (JSON only). The readers turn the
operating system's errors into one line naming the file, in one place: :func:`reading`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from attncli.errors import InputError
from attncli.problem import KNOWN_KEYS, MASK_KEYS, Problem, require_key


def _kind(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".tsv": "csv", ".npy": "npy", ".npz": "npz",
            ".safetensors": "safetensors"}.get(suffix, "json")


def load_problem(path: str | Path | None = None, *, arrays: Mapping[str, str] | None = None,
                 sample: str | None = None, tensors: Mapping[str, str] | None = None) -> Problem:
    """Load a problem from a file (JSON object, NPZ of keys, safetensors checkpoint, or one
    CSV/NPY matrix taken as x), a bundled sample, and/or per-key files, later inputs winning.

    Args:
        path: a JSON/NPZ/safetensors/CSV/NPY file, or ``-`` for JSON on standard input.
        arrays: problem key → file holding that one array (CSV, NPY, or JSON array); these win
            over keys in ``path``, as command-line options do.
        sample: the name of a bundled sample (see :func:`attncli.samples.names`).
        tensors: for a ``.safetensors`` path, problem key → the checkpoint's tensor name
            (see :func:`attncli.io.safetensors_reader.read_safetensors`); None (or empty)
            takes the tensors named like problem keys. Checkpoints store nn.Linear weights as
            (out, in): the ``out_in`` weight layout, which is not chosen for you.
    Raises:
        InputError: a missing or unreadable file, malformed content (with line and column for
            JSON, row and column for CSV), ``tensors`` without a .safetensors path, a key of
            ``arrays`` that is no problem key, ``-`` given twice (standard input is read
            once), or any check of :meth:`Problem.from_mapping`.
    """
    for key, file in (arrays or {}).items():
        require_key(key, KNOWN_KEYS, f"{_name(str(file))} given for {key}")
    stdin_once([("FILE", None if path is None else str(path)),
                *((f"the {key} file", str(file)) for key, file in (arrays or {}).items())])
    if tensors and (path is None or _kind(str(path)) != "safetensors"):
        raise InputError(f"tensors map the names of a .safetensors problem file, got "
                         f"{'no file' if path is None else _name(str(path))}")
    problem = Problem()
    if sample is not None:
        from attncli.io.json_reader import read_json
        from attncli.samples import sample_path

        raw = read_json(str(sample_path(sample)))
        problem = problem.merged(Problem.from_mapping(raw, f"sample {sample}"))
    if path is not None:
        path = str(path)
        kind = _kind(path)
        if kind == "json":
            from attncli.io.json_reader import read_json

            problem = problem.merged(Problem.from_mapping(read_json(path), _name(path)))
        elif kind == "npz":
            from attncli.io.npy_reader import read_npz

            problem = problem.merged(Problem.from_mapping(read_npz(path), _name(path)))
        elif kind == "safetensors":
            from attncli.io.safetensors_reader import read_safetensors

            problem = problem.merged(Problem.from_mapping(read_safetensors(path, tensors), path))
        else:
            problem = problem.merged(_single(path, "x"))
    for key, file in (arrays or {}).items():
        problem = problem.merged(_single(str(file), key))
    return problem


def _single(path: str, key: str) -> Problem:
    """One array for ``key`` from a CSV, NPY or JSON file."""
    kind = _kind(path)
    labels = None
    if kind == "csv":
        from attncli.io.csv_reader import read_csv

        value, labels = read_csv(path, booleans=key in MASK_KEYS)
    elif kind == "npy":
        from attncli.io.npy_reader import read_npy

        value = read_npy(path)
    elif kind == "npz":
        raise InputError(f"{_name(path)}: an NPZ holds several arrays; give it as the problem "
                         f"FILE, not for {key}")
    elif kind == "safetensors":
        raise InputError(f"{path}: a safetensors file holds several tensors; give it as the "
                         f"problem FILE, with --tensor {key}=NAME, not for {key}")
    else:
        from attncli.io.json_reader import read_json_value

        value = read_json_value(path)
        if isinstance(value, dict):
            if key not in value:
                raise InputError(f"{_name(path)}: given for {key} but holds no key {key!r}")
            value = value[key]
    raw = {key: value}
    if labels is not None and key in ("x", "memory", "key_memory"):
        raw["tokens" if key == "x" else "memory_tokens"] = labels
    return Problem.from_mapping(raw, _name(path))


def stdin_once(inputs: list[tuple[str, str | None]]) -> None:
    """Standard input can be read once: ``inputs`` are (role, path) pairs, such as
    ("PROBLEM", "-"), ("the x file", "x.csv"); a path None is no input.

    Raises: InputError naming the roles that give ``-``, when more than one does.
    """
    readers = [role for role, file in inputs if file == "-"]
    if len(readers) > 1:
        raise InputError(f"- (standard input) is given for {' and '.join(readers)}, but it can "
                         "be read only once: save all but one of them to files")


def _name(path: str) -> str:
    return "<stdin>" if path == "-" else path


@contextlib.contextmanager
def reading(path: str) -> Iterator[None]:
    """Inside: the operating system's refusals to read ``path`` become one line naming it.
    Each reader says what else can go wrong with its format (a damaged header, bad UTF-8).

    Raises:
        InputError: ``PATH: no such file`` (FileNotFoundError), ``PATH: is a directory, not a
            file`` (IsADirectoryError), ``PATH: permission denied`` (PermissionError). Any
            other error, OSError included, passes unchanged.
    """
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None


def _not_a_device(handle, name: str) -> None:
    """Refuse a character device other than a terminal: /dev/zero and /dev/urandom never end.

    Raises: InputError naming the file.
    """
    import os
    import stat

    try:
        mode = os.fstat(handle.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # no file number (a test's stream): fine
        return
    if stat.S_ISCHR(mode) and not handle.isatty():
        raise InputError(f"{name}: is a device, not a file")


def open_text(path: str):
    """Read a text file (or stdin for ``-``) as UTF-8, BOM removed; errors become InputError.
    A character device other than a terminal (/dev/zero, /dev/urandom) is refused: it never
    ends.

    Returns: the text. Raises: InputError for a missing file, a folder, no permission, a
    device, or bytes that are not UTF-8.
    """
    import sys

    try:
        with reading(path):
            if path == "-":
                if not hasattr(sys.stdin, "buffer"):  # a text stream put in place of stdin
                    return sys.stdin.read().removeprefix("\ufeff")
                _not_a_device(sys.stdin.buffer, "<stdin>")  # attncli compute - < /dev/zero
                return sys.stdin.buffer.read().decode("utf-8-sig")
            with open(path, "rb") as handle:
                _not_a_device(handle, path)
                return handle.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{_name(path)}: not UTF-8 text (byte {exc.start}); is it a binary "
                         "file?") from None
