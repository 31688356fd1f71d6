"""Recording steps into a Trace: whole, or a block of query rows at a time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from attncli.attention import blocks
from attncli.attention.monitor import Monitor
from attncli.sizes import human, nbytes
from attncli.trace import SCORE_AXES, STEP_AXES, STEP_NAMES, Step, Trace

if TYPE_CHECKING:
    from attncli.attention.given import Given

#: A step this small is recorded as it comes; a bigger one goes through Monitor.place first.
SMALL_BYTES = 2**20


def _size(data) -> int:
    count = 1
    for n in data.shape:
        count *= int(n)
    return count * 8


class Recorder:
    """Appends requested steps to the trace, dropping the batch axis of unbatched input and the
    head axis of single-head runs, and moving the data to numpy (once, here).

    Whole steps come through ``__call__``; steps with a query axis may instead come a block of
    rows at a time through :meth:`rows`, into one array allocated on the first block.
    """

    def __init__(self, trace: Trace, runtime, batched: bool, heads: int,
                 wanted: Iterable[str] | None, monitor: Monitor, given: Given | None = None):
        self.trace, self.runtime, self.monitor = trace, runtime, monitor
        self.drop = {"batch"} if not batched else set()
        if heads == 1:
            self.drop.add("head")
        self.wanted = set(STEP_NAMES if wanted is None else wanted)
        self.given = given
        self._filling: dict[str, np.ndarray] = {}  # name → the canonical (B, H, …) view

    def __call__(self, name: str, formula: str, data):
        """Record a whole step; return what the stages after it use: ``data``, or the given
        step in its place (:class:`attncli.attention.given.Given`)."""
        if name in self.wanted:
            self._append(name, formula, data)
        return self._given(name, data, 0)

    def _given(self, name: str, data, start: int):
        if self.given is None:
            return data
        return self.given.replace(name, data, self.runtime, self.drop, start)

    def _append(self, name: str, formula: str, data) -> None:
        axes = STEP_AXES.get(name, SCORE_AXES)
        array = self.runtime.to_numpy(data)
        keep = tuple(i for i, axis in enumerate(axes) if axis not in self.drop)
        array = array.reshape([array.shape[i] for i in keep])
        self.trace.steps.append(Step(name, formula, array, tuple(axes[i] for i in keep)))

    def rows(self, name: str, formula: str, data, start: int, seq_q: int):
        """Rows ``start`` … of a step whose canonical axes put the queries at axis 2 (scores:
        (B, H, rows, seq_k)) or 1 (context: (B, rows, d)); returns what the stages after it
        use, as :meth:`__call__` does."""
        if name not in self.wanted:
            return self._given(name, data, start)
        axes = STEP_AXES.get(name, SCORE_AXES)
        q_axis = axes.index("query")
        if start == 0 and data.shape[q_axis] == seq_q and _size(data) <= SMALL_BYTES:
            return self(name, formula, data)  # one small block: the whole step
        block = self.runtime.to_numpy(data)
        if name not in self._filling:
            full = list(block.shape)
            full[q_axis] = seq_q
            self._filling[name] = self._allocate(name, formula, axes, tuple(full), block.dtype)
        index = [slice(None)] * len(axes)
        index[q_axis] = slice(start, start + block.shape[q_axis])
        self._filling[name][tuple(index)] = block
        return self._given(name, data, start)

    def _allocate(self, name: str, formula: str, axes: tuple[str, ...],
                  shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        keep = tuple(i for i, axis in enumerate(axes) if axis not in self.drop)
        step_shape = tuple(shape[i] for i in keep)
        size = nbytes(step_shape, dtype)
        path = self.monitor.place(name, step_shape, dtype)
        if size > blocks.ANNOUNCE_BYTES:
            where = f"streamed to {path}" if path else "in memory"
            self.monitor.note(f"{name} is {' × '.join(map(str, step_shape))} {dtype} = "
                              f"{human(size)}, {where}")
        if path:
            array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=step_shape)
        else:
            array = np.empty(step_shape, dtype=dtype)
        self.trace.steps.append(Step(name, formula, array, tuple(axes[i] for i in keep)))
        return array.reshape(shape)  # a view: filling it fills the step

    def finish(self) -> None:
        """Put the steps in pipeline order (block-filled ones were appended when first seen)
        and flush memory-mapped steps to their files."""
        order = {name: i for i, name in enumerate(STEP_NAMES)}
        self.trace.steps.sort(key=lambda step: order[step.name])
        for step in self.trace.steps:
            if isinstance(step.data, np.memmap):
                step.data.flush()
