"""NPY (one array) and NPZ (named arrays, keys as in JSON) files; never unpickles."""

from __future__ import annotations

import zipfile
from typing import Any

import numpy as np

from attncli.errors import InputError


def _load(path: str):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        reason = "it holds Python objects, which are never unpickled" if "pickle" in str(exc) \
            else str(exc).split("\n")[0]
        raise InputError(f"{path}: not a readable NumPy file: {reason}") from None


def read_npy(path: str) -> np.ndarray:
    array = _load(path)
    if not isinstance(array, np.ndarray):
        raise InputError(f"{path}: expected one array (.npy), got an archive; name it .npz")
    return array


def read_npz(path: str) -> dict[str, Any]:
    archive = _load(path)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: expected an NPZ archive of named arrays")
    with archive:
        try:
            return {key: archive[key] for key in archive.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: damaged NPZ archive: {str(exc).splitlines()[0]}") \
                from None
