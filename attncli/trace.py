"""The record of one attention computation: an ordered list of named steps.

Every renderer, ``check`` and ``explain`` read a :class:`Trace`; none of them compute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attncli.errors import InputError

#: The public step names, in pipeline order. They appear in JSON output and in answer files.
STEP_NAMES: tuple[str, ...] = (
    "queries",
    "keys",
    "values",
    "scores",
    "scaled_scores",
    "masked_scores",
    "weights",
    "dropped_weights",
    "head_context",
    "context",
    "output",
)


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline.

    Attributes:
        name: one of :data:`STEP_NAMES`.
        formula: how the step was computed, in the notation of the tables (``softmax(...)``).
        data: a numpy array (always numpy: arrays leave the device once, when recorded).
        axes: one name per axis of ``data``: ``batch``, ``head``, ``query``, ``key`` or ``dim``.
    """

    name: str
    formula: str
    data: np.ndarray
    axes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


@dataclass
class Trace:
    """The steps of one run, in pipeline order, with the labels and conventions they need.

    ``trace["weights"]`` returns the numpy array of a step; ``"weights" in trace`` tests presence.
    """

    steps: list[Step] = field(default_factory=list)
    query_tokens: list[str] = field(default_factory=list)
    key_tokens: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    conventions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"
    focus: int | None = None  # the query row kept by at_query (an index into the full run)
    #: the problem's mask and key_padding_mask combined, (B or 1, 1, seq_q or 1, seq_k) bool,
    #: True = may attend; None without them (causal and --window are in ``config``)
    mask: np.ndarray | None = None

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __contains__(self, name: object) -> bool:
        return any(step.name == name for step in self.steps)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.step(name).data

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r} in this trace (it has {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [step.name for step in self.steps]

    def query_index(self, query: str) -> int:
        """The row of a query given as a token or a 0-based index.

        Raises: InputError naming the tokens when neither matches.
        """
        n = len(self.query_tokens)
        if query in self.query_tokens:
            return self.query_tokens.index(query)
        try:
            index = int(query, 10)
        except ValueError:
            index = None
        if index is not None and -n <= index < n:
            return index % n
        raise InputError(f"--query {query!r}: no such token or index; the queries are "
                         f"{', '.join(self.query_tokens)} (or 0 … {n - 1}, −1 for the last)")

    def at_query(self, index: int) -> Trace:
        """A copy narrowed to one query row: steps with a query axis keep it with length 1
        (keys and values are whole); ``to_dict`` then drops that axis."""
        steps = [Step(s.name, s.formula, np.take(s.data, [index], axis=s.axes.index("query")),
                      s.axes) if "query" in s.axes else s for s in self.steps]
        mask = self.mask
        if mask is not None and mask.shape[2] > 1:  # one row per query: keep the one
            mask = mask[:, :, index:index + 1]
        return dataclasses.replace(self, steps=steps, focus=index, mask=mask)

    def labels(self, axis: str, size: int) -> list[str]:
        """Row or column labels for an axis: tokens for query/key axes, indices otherwise."""
        if axis == "query" and self.focus is not None and size == 1:
            return [self.query_tokens[self.focus]]
        if axis == "query" and len(self.query_tokens) == size:
            return list(self.query_tokens)
        if axis == "key" and len(self.key_tokens) == size:
            return list(self.key_tokens)
        return [str(i) for i in range(size)]

    def to_dict(self, precision: int | None = None, arrays: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: arrays as nested lists (rounded to ``precision`` decimals when
        given), −inf and NaN as None. After :meth:`at_query` the query axis is dropped, so a
        step such as ``weights`` is the one row. With ``arrays``, each step's data stays a
        float64 numpy array (−inf and NaN in place), for orjson's OPT_SERIALIZE_NUMPY, which
        writes the same JSON several times faster (bench/json_io.py)."""
        steps = {}
        for step in self.steps:
            array, axes = step.data, step.axes
            if self.focus is not None and "query" in axes:
                array = np.squeeze(array, axis=axes.index("query"))
                axes = tuple(a for a in axes if a != "query")
            if precision is not None:  # values past 1e15 have no decimals left to round
                array = np.where(np.abs(array) < 1e15, np.round(array, precision), array)
            if arrays:
                data = np.ascontiguousarray(array, dtype=np.float64)
            else:
                data = array.astype(object)
                data[~np.isfinite(array)] = None
                data = data.tolist()
            steps[step.name] = {
                "formula": step.formula,
                "shape": list(array.shape),
                "axes": list(axes),
                "data": data,
            }
        return {
            "steps": steps,
            "tokens": self.query_tokens,
            "query": None if self.focus is None else self.query_tokens[self.focus],
            "key_tokens": self.key_tokens,
            "config": self.config,
            "conventions": self.conventions,
            "warnings": self.warnings,
            "backend": self.backend,
            "device": self.device,
            "dtype": self.dtype,
        }
