"""Drawings of the query × key steps (--heatmap, --plot): which steps, which cells are masked,
the colour scale's ends, block pooling for drawings larger than their room. No renderer draws
with anything else; the heatmap (text) and the plot (image) differ only in how a cell looks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attncli.errors import InputError
from attncli.render.registry import ColorRange
from attncli.trace import N_BY_N, Step, Trace

#: The steps --heatmap and --plot draw without --steps (those in the trace).
DRAWN_BY_DEFAULT = ("weights", "dropped_weights")
#: The query × key steps from the mask on: the mask's cells in them are drawn as masked.
AFTER_MASK = N_BY_N[N_BY_N.index("masked_scores"):]


def query_by_key(step: Step) -> bool:
    """Whether a step is a query × key matrix (scores … dropped_weights), one that heatmaps
    and plots draw; its axes are (…, "query", "key")."""
    return step.name in N_BY_N


def drawable(steps: list[str] | None, option: str = "--heatmap") -> list[str]:
    """The query × key step names among ``steps``, in their order, once each; without
    ``steps``, :data:`DRAWN_BY_DEFAULT`. For the command line to refuse before the run.

    Raises: InputError naming ``option`` and the steps when ``steps`` holds none.
    """
    if steps is None:
        return list(DRAWN_BY_DEFAULT)
    names = [name for name in dict.fromkeys(steps) if name in N_BY_N]
    if not names:
        verb = "draw" if " and " in option else "draws"
        raise InputError(f"{option} {verb} the query × key steps ({', '.join(N_BY_N)}); "
                         f"--steps {','.join(steps)} has none")
    return names


def sink_note(trace: Trace, step: Step, lead: dict[str, int] | None = None) -> str | None:
    """The line under the weights of a run with attention sinks (the problem's ``sinks``),
    None for any other step or run: the sink's share of the rows (the least and the largest
    of ``sink_weights`` over the rows of the slice ``lead``, {"batch": b, "head": h} as
    :class:`attncli.render.layout.Slice` gives it; over every row without it), or, when the
    trace does not hold that step, that the rows sum to less than 1. Short: it sits under a
    grid as narrow as three tokens, beside its legend's "values low … high"."""
    if step.name != "weights" or trace.run is None or not trace.run.sinks:
        return None
    if "sink_weights" not in trace:
        return "rows < 1: the rest to the sink"
    sink = trace.step("sink_weights")
    values = sink.data
    if lead is not None:
        values = values[tuple(lead[axis] for axis in sink.axes if axis != "query")]
    return f"sink takes {float(np.min(values)):.4f} … {float(np.max(values)):.4f}"


def hidden_cells(trace: Trace, step: Step) -> np.ndarray:
    """Which cells of a step a drawing hides (draws as masked): True = hidden, as the name
    says; the run's mask (True = may attend) inverted, and −∞ scores.

    Shapes:
        step.data (…, seq_q, seq_k) on axes from (batch, head, query, key); returns bool of
        the same shape, True = hidden
    The rule: only steps from ``masked_scores`` on (:data:`AFTER_MASK`) have masked cells;
    in them, the cells the run's one mask (``trace.mask``,
    :class:`attncli.attention.masks.Mask`) forbids, its row ``trace.focus`` after --query,
    and the −∞ cells of ``masked_scores``.
    """
    shape = step.shape
    if step.name not in AFTER_MASK:
        return np.zeros(shape, dtype=bool)
    out = np.zeros(shape, dtype=bool)
    if trace.mask is not None:
        start, stop = 0, shape[-2]
        if trace.focus is not None and shape[-2] == 1:  # one query row of the whole run
            start, stop = trace.focus, trace.focus + 1
        out = ~_on_axes(trace.mask.dense(start, stop), step)
    if "masked_scores" in trace and trace.step("masked_scores").shape == shape:
        out = out | np.isneginf(trace["masked_scores"])
    return np.broadcast_to(out, shape)


def _on_axes(mask: np.ndarray, step: Step) -> np.ndarray:
    """A (B or 1, 1, rows or 1, seq_k) mask laid out on the step's axes."""
    index = tuple(slice(None) if axis in step.axes else 0
                  for axis in ("batch", "head", "query", "key"))
    return np.broadcast_to(mask[index], step.shape)


def limits(step: Step, hidden: np.ndarray) -> tuple[float, float]:
    """The colour scale's ends for a step: 0 … 1 for weights, 0 … max (at least 1) for
    dropped_weights, the finite, unmasked values' min … max otherwise (± 0.5 when they are
    all equal). The same for every batch/head slice of the step.

    Shapes: step.data (…, seq_q, seq_k); hidden the same, True = masked (:func:`masked`).
    """
    if step.name == "weights":
        return 0.0, 1.0
    seen = np.isfinite(step.data) & ~hidden  # min and max with where=: no copy of n² values
    if not seen.any():
        return 0.0, 1.0
    high = float(np.max(step.data, where=seen, initial=-np.inf))
    if step.name == "dropped_weights":
        return 0.0, max(1.0, high)
    low = float(np.min(step.data, where=seen, initial=np.inf))
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def position(values, low: float, high: float) -> np.ndarray:
    """Where values lie on the scale low … high, as 0 … 1 (clipped; +∞ at 1, −∞ and NaN at
    0), computed without overflow for values near ±1.8e308 (each halved before subtracting).

    Shapes: values any shape; returns float64 of the same shape.
    """
    values = np.asarray(values, dtype=np.float64)
    span = 0.5 * high - 0.5 * low
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t = (0.5 * values - 0.5 * low) / span if span > 0 else np.full_like(values, 0.5)
    return np.clip(np.nan_to_num(t, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


#: The query × key steps that may be negative: a logarithmic colour scale has no place for them.
SIGNED = N_BY_N[:N_BY_N.index("weights")]


@dataclass(frozen=True)
class Scale:
    """A colour scale: ``low`` … ``high``, on a linear axis or (``log``) a logarithmic one."""

    low: float
    high: float
    log: bool = False

    def position(self, values) -> np.ndarray:
        """Where values lie on the scale, as 0 … 1 (clipped, as :func:`position`); on a log
        scale a value ≤ 0 (a zero weight) is at 0, the low end.

        Shapes: values any shape; returns float64 of the same shape.
        """
        if not self.log:
            return position(values, self.low, self.high)
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log10(np.where(values > 0, values, self.low))
        return position(logs, float(np.log10(self.low)), float(np.log10(self.high)))


def check_color_range(names: list[str], color_range: ColorRange | None) -> None:
    """Before the run: a logarithmic scale only for steps that cannot be negative.

    Raises: InputError naming the score steps among ``names`` under ``--color-range log``.
    """
    signed = [name for name in names if name in SIGNED]
    if color_range is ColorRange.log and signed:
        them = "it" if len(signed) == 1 else "them"
        raise InputError(f"--color-range log draws positive values (weights, dropped_weights), "
                         f"and {', '.join(signed)} can be negative: draw {them} with "
                         f"--color-range auto, or leave {them} out of --steps")


def grid_scale(values: np.ndarray, hidden: np.ndarray, color_range: ColorRange | None,
               unit: tuple[float, float]) -> Scale:
    """The colour scale of one grid, from the values it draws.

    Shapes: values (rows, cols), a slice or its pooled blocks (:func:`pool`); hidden the
    same, True = masked. unit (and None): ``unit``, the step's :func:`limits`, the same for
    every grid of the step. auto: the grid's finite, unmasked min … max. log: its smallest
    positive … largest value on a log10 axis (zeros drawn at the low end; a grid with no
    positive value gets 0 … 1, linear). A grid whose values all equal v has no range of its
    own: auto draws it on ``unit`` (0 … 1 for weights: uniform weights 1/3 a third of the
    way up; v ± 0.5 when v lies outside it), log from v/10 to ``unit``'s top or v, whichever
    is larger (a one-hot grid's weights 1 at the top, its zeros at the bottom).
    """
    if color_range in (None, ColorRange.unit):
        return Scale(*unit)
    log = color_range is ColorRange.log
    seen = np.isfinite(values) & ~np.asarray(hidden, dtype=bool)
    if log:
        seen &= np.asarray(values) > 0
    if not seen.any():
        return Scale(0.0, 1.0)
    low = float(np.min(values, where=seen, initial=np.inf))
    high = float(np.max(values, where=seen, initial=-np.inf))
    if high > low:
        return Scale(low, high, log)
    if log:  # (low / 10 is 0 for the smallest subnormal, 5e-324)
        return Scale(low / 10 or low, max(high, unit[1]), True)
    return Scale(*unit) if unit[0] <= low <= unit[1] else Scale(low - 0.5, high + 0.5)


def pool(matrix: np.ndarray, hidden: np.ndarray, rows: int, cols: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """Block mean pooling, for drawings with more cells than room: each block of ``rows`` ×
    ``cols`` cells becomes one, the mean of its unmasked cells (a block's share of the
    weights, as a picture scaled down shows it), masked when all its cells are. The blocks
    start at cell (0, 0); the last ones in each direction may be smaller.

    Shapes: matrix (n_q, n_k) (a memory-mapped array too: read a band of ``rows`` rows at a
    time), hidden (n_q, n_k) bool, True = masked; returns the pooled values and the pooled
    hidden, each (⌈n_q / rows⌉, ⌈n_k / cols⌉).
    """
    n_q, n_k = matrix.shape
    n_rows, n_cols = -(-n_q // rows), -(-n_k // cols)
    values = np.zeros((n_rows, n_cols))
    counts = np.zeros((n_rows, n_cols), dtype=np.int64)
    pad = ((0, 0), (0, n_cols * cols - n_k))
    for r in range(n_rows):  # one band of rows at a time: memory rows · n_k
        kept = ~np.pad(np.asarray(hidden[r * rows:(r + 1) * rows], dtype=bool), pad,
                       constant_values=True)
        band = np.pad(np.asarray(matrix[r * rows:(r + 1) * rows], dtype=np.float64), pad)
        band = np.where(kept, band, 0.0)
        counts[r] = kept.reshape(len(kept), n_cols, cols).sum(axis=(0, 2))
        values[r] = band.reshape(len(band), n_cols, cols).sum(axis=(0, 2))
    np.divide(values, counts, out=values, where=counts > 0)
    return values, counts == 0
