"""How closely attncli's recomputation of a layer agrees with the model's own attention."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The largest |Δ| that still agrees, relative to max(1, max |model's value|), by the dtype the
#: model computed in: its own rounding (float32 about 1e-7 per operation, over sums of
#: hundreds of terms and RoPE angles of thousands of radians) is far below these, and a
#: detail of an architecture left out (a scale, a window, a norm's offset, a layout) far above.
TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2, "bfloat16": 3e-2}

#: The steps compared: the model's attention weights, the input of its output projection
#: (heads concatenated) and that projection's result.
COMPARED = ("weights", "context", "output")


@dataclass
class Agreement:
    """max |attncli − model| per compared step, and whether each is within tolerance.

    deltas: step → max |Δ|; sizes: step → max |model's value|; dtype: the model's dtype;
    tolerance: the relative tolerance of that dtype (:data:`TOLERANCE`).
    """

    dtype: str
    tolerance: float
    deltas: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, float] = field(default_factory=dict)

    def bound(self, step: str) -> float:
        return self.tolerance * max(1.0, self.sizes[step])

    @property
    def ok(self) -> bool:
        """Every compared step within tolerance, and the context and output compared (always
        captured: a hook that never ran is no agreement)."""
        return all(s in self.deltas for s in ("context", "output")) and \
            all(self.deltas[s] <= self.bound(s) for s in self.deltas)

    def line(self) -> str:
        """"agrees with the model's own attention: weights max |Δ| 2.1e-07, …" or, beyond
        tolerance, what disagrees and by how much."""
        parts = ", ".join(f"{s} max |Δ| {d:.1e}" for s, d in self.deltas.items())
        unseen = [s for s in ("context", "output") if s not in self.deltas]
        if unseen:
            return (f"DISAGREES: nothing to compare with the model's own {' and '.join(unseen)}"
                    " (its output projection never ran?); please report it")
        if self.ok:
            return f"agrees with the model's own attention ({self.dtype}): {parts}"
        bad = ", ".join(f"{s} (max |Δ| {self.deltas[s]:.1e} > {self.bound(s):.1e})"
                        for s in self.deltas if self.deltas[s] > self.bound(s))
        return (f"DISAGREES with the model's own attention ({self.dtype}): {bad}; an "
                "unsupported detail of this architecture? please report it")

    def to_dict(self) -> dict:
        return {"agrees": self.ok, "dtype": self.dtype, "tolerance": self.tolerance,
                "max_abs_delta": dict(self.deltas), "max_abs_model": dict(self.sizes)}


def agreement(trace, captured, query: int | None) -> Agreement:
    """Compare ``trace`` (attncli's run of the layer, one query row with --query) with
    ``captured`` (:class:`attncli.models.capture.Captured`, the same rows).

    Shapes: weights (H, rows, n) both; context (rows, H·d_v); output (rows, d_out).
    """
    import torch

    dtype = str(captured.dtype).removeprefix("torch.")
    result = Agreement(dtype, TOLERANCE.get(dtype, 1e-4))
    for name in COMPARED:
        model = getattr(captured, name)
        if model is None or name not in trace:
            continue
        ours = np.asarray(trace[name])
        theirs = model.to(torch.float64).numpy()
        ours = ours.reshape(theirs.shape)
        result.deltas[name] = float(np.max(np.abs(ours - theirs), initial=0.0))
        result.sizes[name] = float(np.max(np.abs(theirs), initial=0.0))
    return result
