"""Binary output: every step as an array in an NPZ archive, or one step as an NPY file.

Large steps are written without building them again in memory: a step that the run kept in a
memory-mapped .npy file is copied into the archive from that file, and any other array goes
through numpy's own chunked writer. Nothing is pickled.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

import numpy as np
import orjson

from attncli.errors import InputError
from attncli.render.output import Request
from attncli.trace import Trace


def dump_npz(trace: Trace, handle: BinaryIO) -> None:
    """An NPZ (a zip of .npy files, uncompressed) read by ``numpy.load(path)``.

    Entries: one per step, named as the step (``weights``, ``context`` …) with the axes of the
    JSON output; ``tokens`` and ``key_tokens`` (strings); ``meta``, a JSON string with each
    step's formula and axes, the config, the conventions and the warnings.

    Raises: OSError from ``handle`` (the caller turns it into an InputError).
    """
    meta = {
        "steps": {s.name: {"formula": s.formula, "axes": list(s.axes)} for s in trace},
        "query": None if trace.focus is None else trace.query_tokens[trace.focus],
        "config": {} if trace.run is None else trace.run.to_dict(),
        "conventions": trace.conventions, "warnings": trace.warnings,
    }
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for step in trace:
            data = _dropped_query_axis(trace, step.data, step.axes)
            filename = getattr(data, "filename", None)
            if isinstance(data, np.memmap) and filename and _whole_file(data):
                zf.write(filename, arcname=f"{step.name}.npy")  # copied from disk in chunks
                continue
            _entry(zf, step.name, data)
        _entry(zf, "tokens", np.asarray(trace.query_tokens, dtype=str))
        _entry(zf, "key_tokens", np.asarray(trace.key_tokens, dtype=str))
        _entry(zf, "meta", np.asarray(orjson.dumps(meta).decode()))


def dump_npy(trace: Trace, handle: BinaryIO) -> None:
    """The one step of the trace as an .npy file.

    Raises: InputError when the trace holds more or fewer than one step.
    """
    _one_step(trace)
    step = trace.steps[0]
    np.lib.format.write_array(handle, _dropped_query_axis(trace, step.data, step.axes),
                              allow_pickle=False)


def write_npz(trace: Trace, request: Request) -> None:
    """compute's --format npz: :func:`dump_npz` to the -o file, or to a stdout that is not a
    terminal.

    Raises: InputError for a terminal stdout, or a file that cannot be written.
    """
    request.binary(lambda handle: dump_npz(trace, handle))


def write_npy(trace: Trace, request: Request) -> None:
    """compute's --format npy: :func:`dump_npy`, the one step, as :func:`write_npz` writes.

    Raises: InputError when the trace holds more or fewer than one step (before the file is
    opened), and as :func:`write_npz`.
    """
    _one_step(trace)
    request.binary(lambda handle: dump_npy(trace, handle))


def check_npy(steps: list[str] | None) -> None:
    """Before the run: --format npy holds one step, so --steps must name one.

    Raises: InputError for no --steps (every step) or more than one.
    """
    if steps is None or len(steps) != 1:
        raise InputError("--format npy holds one array: give --steps NAME (one step), or "
                         "write NPZ (-o FILE.npz)")


def _one_step(trace: Trace) -> None:
    if len(trace.steps) != 1:
        raise InputError(f"--format npy holds one array, but {len(trace.steps)} steps were "
                         f"computed ({', '.join(trace.names()) or 'none'}): give --steps NAME, "
                         "or write NPZ (-o FILE.npz)")


def _entry(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as entry:
        np.lib.format.write_array(entry, array, allow_pickle=False)


def _dropped_query_axis(trace: Trace, data: np.ndarray, axes: tuple[str, ...]) -> np.ndarray:
    """After ``--query``, the one row without its query axis, as in the JSON output."""
    if trace.focus is not None and "query" in axes:
        return np.squeeze(data, axis=axes.index("query"))
    return data


def _whole_file(array: np.memmap) -> bool:
    """Whether ``array`` is the whole .npy file behind it (not a view of part of it)."""
    on_disk = np.load(array.filename, mmap_mode="r", allow_pickle=False)
    return (on_disk.shape == array.shape and on_disk.dtype == array.dtype
            and on_disk.offset == array.offset and array.flags.c_contiguous)
