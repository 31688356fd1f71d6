"""NPY (one array) and NPZ (named arrays, keys as in JSON) files; never unpickles."""

from __future__ import annotations

import contextlib
import math
import os
import tokenize
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np

from attncli.errors import InputError
from attncli.io import reading
from attncli.problem import fmt_shape

#: What numpy and zipfile raise for a damaged file: bad headers (ValueError, and from the
#: parsing of an old-style header SyntaxError, TypeError, tokenize.TokenError), short reads, bad
#: zip entries, corrupt deflate streams (zlib.error), unknown compression (NotImplementedError),
#: encryption (RuntimeError).
_UNREADABLE = (ValueError, SyntaxError, TypeError, tokenize.TokenError, OSError, EOFError,
               zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)


@contextlib.contextmanager
def _quiet():
    """No numpy warning for a header written by Python 2: it reads fine, and a warning would be
    lines on stderr besides attncli's own."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Reading `.npy` or `.npz` file required")
        yield


def _load(path: str):
    """np.load without pickles, after :func:`_check_sizes`.

    Raises: InputError naming the file: :func:`attncli.io.reading`'s, or not a readable NumPy
    file (with numpy's reason).
    """
    try:
        with reading(path), _quiet():
            _check_sizes(path)
            return np.load(path, allow_pickle=False)
    except _UNREADABLE as exc:
        reason = "it holds Python objects, which are never unpickled" if "pickle" in str(exc) \
            else str(exc).split("\n")[0]
        raise InputError(f"{path}: not a readable NumPy file: {reason}") from None


def _check_sizes(path: str) -> None:
    """Read the NPY headers (the file's, or each member's of an NPZ) and refuse, before numpy
    allocates anything, an object dtype or a shape whose data the file does not hold: a header
    may claim 10**12 elements in a file of a hundred bytes.

    Raises: InputError; OSError, ValueError, EOFError and BadZipFile as np.load would.
    """
    with open(path, "rb") as handle:
        magic = handle.read(6)
        handle.seek(0)
        if magic == np.lib.format.MAGIC_PREFIX:
            _check_header(handle, os.fstat(handle.fileno()).st_size, path)
            return
    if magic[:4] != b"PK\x03\x04":
        return  # neither NPY nor NPZ: np.load says so
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                if member.read(6) != np.lib.format.MAGIC_PREFIX:
                    continue
            # data in the member: at most file_size bytes (only a claim), and no more than its
            # compressed size allows: as much stored, 1032 times as much deflated (the limit)
            size = min(info.file_size, info.compress_size * (
                1 if info.compress_type == zipfile.ZIP_STORED else 1032) + 64)
            with archive.open(info) as member:
                _check_header(member, size, f"{path}: {info.filename.removesuffix('.npy')}")


def _check_header(handle, size: int, where: str) -> None:
    """The NPY header at ``handle`` against the ``size`` bytes of its file."""
    version = np.lib.format.read_magic(handle)
    if version not in ((1, 0), (2, 0), (3, 0)):
        return  # np.load refuses it
    # version 3.0 differs from 2.0 only in the header's text encoding (UTF-8, not latin-1)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
        np.lib.format.read_array_header_2_0
    shape, _, dtype = read(handle)
    if dtype.hasobject:
        raise InputError(f"{where}: not a readable NumPy file: it holds Python objects, which "
                         "are never unpickled")
    if any(n < 0 for n in shape):
        raise InputError(f"{where}: not a readable NumPy file: negative size in shape "
                         f"{fmt_shape(shape)}")
    needed = math.prod(shape) * dtype.itemsize
    held = size - handle.tell()
    if needed > held:
        raise InputError(f"{where}: not a readable NumPy file: its header claims shape "
                         f"{fmt_shape(shape)} of {dtype} ({needed:,} bytes), but the file holds "
                         f"{max(held, 0):,} bytes of data (truncated?)")


def read_npy(path: str) -> np.ndarray:
    """The one array of an NPY file. Raises: InputError for anything else (see _load)."""
    array = _load(path)
    if not isinstance(array, np.ndarray):
        raise InputError(f"{path}: expected one array (.npy), got an archive; name it .npz")
    return array


def read_npz(path: str) -> dict[str, Any]:
    """The named arrays of an NPZ archive (np.savez's), key → array.

    Raises: InputError for a file that is not an NPZ, a damaged archive, or a member that is
    not an NPY array (numpy hands such a member back as raw bytes).
    """
    archive = _load(path)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: expected an NPZ archive of named arrays")
    with archive, _quiet():
        try:
            arrays = {key: archive[key] for key in archive.files}
        except _UNREADABLE as exc:
            raise InputError(f"{path}: damaged NPZ archive: {str(exc).splitlines()[0]}") \
                from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise InputError(f"{path}: {key}: not an NPY array (a damaged or foreign member "
                             "of the archive)")
    return _texts(arrays, path)


#: Members that are one string (a 0-d str array): the JSON objects "config", "rope_scaling"
#: and "expected" (as attncli model --save-problem writes them), and the texts "about" and
#: "weight_layout".
_JSON_MEMBERS = ("config", "rope_scaling", "expected")


def _texts(arrays: dict[str, Any], path: str) -> dict[str, Any]:
    """The archive's members with its 0-d strings as Python values: JSON objects parsed.

    Raises: InputError for a JSON member that is not valid JSON."""
    import json

    for key, value in arrays.items():
        if value.ndim != 0 or value.dtype.kind != "U":
            continue
        text = str(value)
        if key in _JSON_MEMBERS:
            try:
                arrays[key] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: {key}: not a JSON object: {exc.msg} (character "
                                 f"{exc.pos})") from None
        else:
            arrays[key] = text
    return arrays
