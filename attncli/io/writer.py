"""Writing results: to stdout, or to a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

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
    target = path.resolve()  # through symbolic links: the link stays, its target changes
    if target.is_dir():
        raise InputError(f"{path}: is a directory; -o needs a file name")
    try:
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            with open(target, "w", encoding="utf-8") as handle:  # a device or a FIFO
                handle.write(text)
            return
        if target.exists() and not os.access(target, os.W_OK):
            raise InputError(f"{path}: permission denied (the file is read-only)")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~umask
        os.fchmod(fd, mode)  # mkstemp made it private (0600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write: {exc.strerror}") from None
        raise
