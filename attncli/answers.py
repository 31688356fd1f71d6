"""Answers to check: step name → array as a student wrote them, with the decimals written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from attncli.errors import InputError
from attncli.trace import STEP_NAMES

#: −∞ (a masked score) as answers may write it, besides JSON's null (compared lower-case).
NEG_INF_WORDS = ("-inf", "-infinity", "−∞", "-∞")


@dataclass(frozen=True)
class Answers:
    """Answers to some steps: step name → array, for every query or for one query row.

    ``decimals`` holds, per step, how many decimals its answers were written with: the most
    of any entry (0.8610 has 4, 2.0 has 1, 2 has 0), since a writer may drop trailing zeros.
    −∞ (a masked score) is written ``null``, ``"-inf"``, ``"-Infinity"`` or ``"−∞"``;
    compute's whole ``--format json`` document is accepted as answers too.
    """

    steps: dict[str, np.ndarray]
    decimals: dict[str, np.ndarray]
    query: str | None
    file: str
    notes: tuple[str, ...] = ()  # how a hand-written form was read where it was unclear

    @classmethod
    def from_mapping(cls, raw: Any, file: str, query: str | None = None) -> Answers:
        """Raises: InputError for a non-object, an unknown step, or a non-numeric array."""
        if not isinstance(raw, Mapping):
            raise InputError(f"{file}: expected a JSON object of step → array")
        if isinstance(raw.get("steps"), Mapping):  # attncli compute --format json
            raw = {"query": raw.get("query"), **{
                name: entry.get("data") if isinstance(entry, Mapping) else entry
                for name, entry in raw["steps"].items()}}
        row = raw.get("query")
        if row is not None and (isinstance(row, bool) or not isinstance(row, str | int)):
            raise InputError(f"{file}: query: expected a token or an index, got {row!r}")
        if row is not None and query is not None and str(row) != query:
            raise InputError(f"{file}: query {row!r} contradicts --query {query!r}")
        row = query if row is None else row
        steps, decimals = {}, {}
        for name, value in raw.items():
            if name == "query":
                continue
            if name not in STEP_NAMES:
                raise InputError(f"{file}: {name}: not a step; the steps are "
                                 f"{', '.join(STEP_NAMES)}")
            written = _numbers(value, name, file)
            try:
                array = np.array([-np.inf if v is None else float(v) for v in written.flat],
                                 dtype=np.float64).reshape(written.shape)
            except OverflowError:
                raise InputError(f"{file}: {name}: a number too large for float64") from None
            if not np.all(np.isfinite(array) | (np.isneginf(array) & (name == "masked_scores"))):
                raise InputError(f"{file}: {name}: every answer must be a finite number "
                                 "(null, for −∞, only in masked_scores)")
            steps[name] = array
            decimals[name] = np.full(array.shape, max(_decimals(v) for v in written.flat))
        if not steps:
            raise InputError(f"{file}: no answers: give at least one step, e.g. \"context\"")
        return cls(steps, decimals, None if row is None else str(row), file)


def _numbers(value: Any, name: str, file: str) -> np.ndarray:
    """An object array of the numbers as written (Decimal, int or float; None for −∞)."""
    try:
        array = np.array(value, dtype=object)
    except ValueError:
        array = None
    if array is not None and array.ndim > 8:  # steps have at most 4 axes (batch, head, 2)
        raise InputError(f"{file}: {name}: arrays nested {array.ndim} deep; a step has at "
                         "most 4 axes")
    if array is not None and array.size:
        for index, v in np.ndenumerate(array):
            if isinstance(v, str):
                if v.strip().lower() not in NEG_INF_WORDS:
                    raise InputError(f"{file}: {name}: {v!r} is not a number (−∞ is written "
                                     "null, \"-inf\", \"-Infinity\" or \"−∞\")")
                array[index] = None
    if array is None or array.size == 0 or not all(
            v is None or isinstance(v, Decimal | int | float) and not isinstance(v, bool)
            for v in array.flat):
        raise InputError(f"{file}: {name}: expected a (rectangular) array of numbers")
    return array


def _decimals(value: Decimal | int | float | None) -> int:
    """Decimals as written: Decimal('0.8610') has 4; a float has those of its shortest text."""
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return 0
    exponent = (value if isinstance(value, Decimal) else Decimal(repr(value))).as_tuple().exponent
    return max(0, -int(exponent)) if isinstance(exponent, int) else 0
