"""Writing results: to stdout, or to a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from attncli.errors import InputError


def write_output(text: str, path: Path | None) -> None:
    """Write ``text`` to stdout (``path`` None or ``-``) or to ``path``.

    A regular file is written through a temporary file in the same folder and renamed over
    the target, so a failed run never leaves half a file and never destroys the old one; the
    old file's mode is kept (a new file gets the umask's). A symbolic link is followed, and a
    device or FIFO (/dev/null, a named pipe) is written to directly, as shell redirection does.

    Raises: InputError when the target is a folder, is read-only, or cannot be written.
    """
    if path is None or str(path) == "-":
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise InputError(f"cannot write to standard output: {exc.strerror}") from None
        return
    _atomic(path, lambda handle: handle.write(text), binary=False)


def check_target(path: Path | None) -> None:
    """Fail early, before a long computation, when ``path`` cannot be written: a folder, a
    missing or read-only parent folder, a read-only file. (Writing checks again.)

    Raises: InputError naming the path and the reason.
    """
    if path is None or str(path) == "-" or _special(path):
        return
    target = path.resolve()
    _refuse(path, target)
    if not target.parent.is_dir():
        raise InputError(f"{path}: cannot write: the folder {target.parent} does not exist")
    if not target.exists() and not os.access(target.parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: permission denied (cannot create files in "
                         f"{target.parent})")


def _refuse(path: Path, target: Path) -> None:
    """The checks of a file target (``path`` resolved through links) made before a run and
    again when writing: a folder, or a read-only file.

    Raises: InputError naming ``path``.
    """
    if target.is_dir():
        raise InputError(f"{path}: is a directory; -o needs a file name")
    regular = target.exists() and stat.S_ISREG(target.stat().st_mode)
    if regular and not os.access(target, os.W_OK):
        raise InputError(f"{path}: permission denied (the file is read-only)")


def _cannot_write(path: Path, exc: OSError) -> InputError:
    """The error for any other refusal of the operating system to write ``path``."""
    return InputError(f"{path}: cannot write: {exc.strerror}")


def _special(path: Path) -> bool:
    """A device, FIFO or socket (followed through links, as open() does), not a file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class _Stream:
    """A write-only view of a device or FIFO: zipfile then writes an NPZ as a stream (with
    data descriptors) instead of seeking back, which /dev/null's tell() of 0 would corrupt."""

    def __init__(self, handle):
        self.write, self.flush = handle.write, handle.flush


def _atomic(path: Path, write: Callable, binary: bool) -> None:
    """``write(handle)`` into ``path`` through a temporary file renamed over it."""
    mode, encoding = ("wb", None) if binary else ("w", "utf-8")
    try:
        if _special(path):  # a device or a FIFO (/dev/null, /dev/stdout into a pipe)
            with open(path, mode, encoding=encoding) as handle:
                write(_Stream(handle) if binary else handle)
            return
    except BrokenPipeError:
        raise  # a closed pipe: quiet, as for stdout
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    target = path.resolve()  # through symbolic links: the link stays, its target changes
    _refuse(path, target)
    try:
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        file_mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~umask
        os.fchmod(fd, file_mode)  # mkstemp made it private (0600)
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise


def write_binary(write: Callable[[BinaryIO], None], path: Path | None) -> None:
    """Binary output (NPZ, NPY) made by ``write(handle)``: to ``path`` whole or not at all,
    as :func:`write_output` does, or to stdout when it is not a terminal.

    Raises: InputError for a terminal stdout, and as :func:`write_output`.
    """
    if path is None or str(path) == "-":
        if sys.stdout.isatty():
            raise InputError("binary output (npz, npy) is not for a terminal: give -o FILE or "
                             "redirect standard output")
        sys.stdout.flush()
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    _atomic(path, write, binary=True)
