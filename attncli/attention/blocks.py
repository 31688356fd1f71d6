"""Attention by query blocks, so memory grows with n·d rather than n², and torch's fused kernel
when it computes exactly what was asked.

Every query row of attention depends on all keys and values but on no other query, so the rows
can be computed a block at a time: scores (B, H, rows, seq_k) exist for one block only. The
steps of shape (…, seq_q, seq_k) are kept only when asked for, and then filled block by block
(in memory, or in a memory-mapped .npy file that :class:`Monitor` names).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from attncli.trace import STEP_NAMES, Step, Trace

if TYPE_CHECKING:
    from attncli.attention.given import Given

#: The steps of shape (…, seq_q, seq_k): n² numbers each.
N_BY_N: tuple[str, ...] = ("scores", "scaled_scores", "masked_scores", "weights",
                           "dropped_weights")
#: About this many bytes per (B, H, rows, seq_k) block array. A few such arrays are alive at
#: once; 32 MiB keeps them in a few hundred MiB and each matmul large enough to run at speed.
BLOCK_BYTES = 32 * 2**20
#: Steps bigger than this are announced (Monitor.note) before they are allocated.
ANNOUNCE_BYTES = 256 * 2**20

#: A step this small is recorded as it comes; a bigger one goes through Monitor.place first.
SMALL_BYTES = 2**20

AXES = {
    "queries": ("batch", "head", "query", "dim"),
    "keys": ("batch", "head", "key", "dim"),
    "values": ("batch", "head", "key", "dim"),
    "head_context": ("batch", "head", "query", "dim"),
    "context": ("batch", "query", "dim"),
    "output": ("batch", "query", "dim"),
}
SCORE_AXES = ("batch", "head", "query", "key")


class Monitor:
    """What a run tells its caller while it goes: notes, progress, and where big steps live.

    This base class says nothing and keeps every step in memory; the command line's subclass
    draws a progress bar, prints the notes and puts big steps in files.
    """

    def note(self, text: str) -> None:
        """A message before something large happens (an n×n step about to be allocated)."""

    def advance(self, done: int, total: int) -> None:
        """``done`` of ``total`` query blocks are computed."""

    def place(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> str | None:
        """A path for a step kept as a memory-mapped .npy file, or None to keep it in memory.

        May raise :class:`attncli.errors.AttncliError` to refuse a step too big for the output.
        """
        return None


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


def _size(data) -> int:
    count = 1
    for n in data.shape:
        count *= int(n)
    return count * 8


def block_rows(shape: tuple[int, int, int, int], itemsize: int, width: int = 1) -> int:
    """Query rows per block for scores of ``shape`` (B, H, seq_q, seq_k): about BLOCK_BYTES per
    block array, at least one row. ``width`` multiplies the per-row size (the additive score's
    (…, seq_k, d_att) intermediate)."""
    batch, heads, seq_q, seq_k = shape
    per_row = max(1, batch * heads * seq_k * width * itemsize)
    return max(1, min(seq_q, BLOCK_BYTES // per_row))


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
        axes = AXES.get(name, SCORE_AXES)
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
        axes = AXES.get(name, SCORE_AXES)
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
        if size > ANNOUNCE_BYTES:
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


def fused_sdpa(runtime, queries, keys, values, *, causal: bool, scale: float):
    """torch.nn.functional.scaled_dot_product_attention: softmax(q kᵀ · scale) v, fused.

    Shapes: queries (B, H, seq_q, d_k), keys (B, H, seq_k, d_k), values (B, H, seq_k, d_v)
    → (B, H, seq_q, d_v). ``causal`` is torch's is_causal (top-left: query i sees keys j ≤ i).
    torch picks the kernel: on the CPU its flash-attention kernel when d_k = d_v (memory n·d;
    bench/large.py measures it), otherwise its math kernel, which builds the n×n matrices;
    the pipeline calls this only when d_k = d_v, and on a GPU not in float64.
    Source: torch.nn.functional.scaled_dot_product_attention (PyTorch ≥ 2.1, ``scale``).
    """
    import torch

    return torch.nn.functional.scaled_dot_product_attention(
        queries, keys, values, is_causal=causal, scale=scale)
