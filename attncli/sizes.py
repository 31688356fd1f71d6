"""Sizes of arrays in bytes, and bytes in words."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def nbytes(shape: Iterable[int], dtype: np.dtype) -> int:
    """The bytes of an array of ``shape`` and ``dtype``."""
    size = 1
    for n in shape:
        size *= int(n)
    return size * np.dtype(dtype).itemsize


def human(n: int) -> str:
    """Bytes in binary units: 2.0 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
