"""Steps given from outside in place of the computed ones: grading carried forward.

A human grader checks each step of a worked answer against the numbers that follow from the
student's own previous steps, not only against the exact ones. :func:`attncli.attend` does
that arithmetic when it is given those steps: after a step is computed and recorded, the given
array replaces it for every stage after it, so each recorded step is what follows from the
given steps before it. The math stays in the pipeline; `attncli check` only compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from attncli.trace import SCORE_AXES, STEP_AXES


@dataclass(frozen=True)
class Given:
    """Steps to use in place of the computed ones, from the step after each on.

    Shapes:
        steps: step name → array in the step's recorded shape (as the Trace holds it: no
            batch axis for 2-D x, no head axis for one head); with ``row``, the steps that
            have a query axis give that one row, without the query axis.
        row: the query row those steps give (an index), or None for every row.
        rounded: when set, the steps named in ``rounds`` (steps not given) are rounded to
            this many decimals before the stages after it use them (the recorded value stays
            unrounded): the work of a student who rounds each step as written and shows only
            some of them. The problem's own inputs are never rounded.
    An array of another shape is not used (the computed step stays): a wrong-shaped answer
    cannot stand in for a step.
    """

    steps: Mapping[str, np.ndarray]
    row: int | None = None
    rounded: int | None = None
    rounds: frozenset[str] = frozenset()

    def replace(self, name: str, data, runtime, drop: set[str], start: int = 0):
        """``data`` (a block of the step ``name`` on the pipeline's canonical axes, its query
        rows from ``start``), or a copy of it with the given numbers in place.

        Shapes: data (B, H, rows, …) for steps up to the head context, (B, rows, d) for
        context and output (:data:`attncli.trace.STEP_AXES`).
        """
        if name not in self.steps:
            if self.rounded is None or name not in self.rounds:
                return data
            return runtime.asarray(np.round(runtime.to_numpy(data), self.rounded))
        axes = STEP_AXES.get(name, SCORE_AXES)
        shape = tuple(data.shape)
        one_row = self.row is not None and "query" in axes
        if one_row:
            q = axes.index("query")
            if not start <= self.row < start + shape[q]:
                return data  # the given row is in another block
            shape = (*shape[:q], 1, *shape[q + 1:])
        kept = [n for n, axis in zip(shape, axes, strict=True) if axis not in drop
                and not (one_row and axis == "query")]
        given = np.asarray(self.steps[name], dtype=np.float64)
        if list(given.shape) != kept or any(shape[i] != 1 for i, axis in enumerate(axes)
                                            if axis in drop):
            return data  # a wrong-shaped answer stands in for nothing
        full = np.array(runtime.to_numpy(data), dtype=np.float64)  # a copy, never the trace's
        if one_row:
            index = [slice(None)] * len(axes)
            index[q] = slice(self.row - start, self.row - start + 1)
            full[tuple(index)] = given.reshape(shape)
        else:
            full = given.reshape(shape).copy()
        return runtime.asarray(full)
