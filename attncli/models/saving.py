"""--save-problem: one layer's problem as an NPZ that ``attncli compute`` reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from attncli.errors import InputError

#: The fields a saved problem's config keeps: how the layer computes, not on which device.
_DEVICE_FIELDS = ("backend", "device", "dtype")


def check_saving(path: Path, layers: list[int]) -> None:
    """Before the run: --save-problem writes one layer, to a .npz.

    Raises: InputError for several layers or a name that is not .npz.
    """
    if len(layers) != 1:
        raise InputError(f"--save-problem writes one layer's problem, not {len(layers)}: give "
                         "one --layer")
    if path.suffix.lower() != ".npz":
        raise InputError(f"--save-problem {path}: the problem is an NPZ archive; name it .npz")


def save_problem(runs, path: Path) -> None:
    """Write the one layer of ``runs`` to ``path`` (.npz): its arrays (x, W_q … W_o, biases,
    q_norm, k_norm, sinks), ``tokens``, ``weight_layout``, and as JSON strings ``config`` (the
    options, as a problem file's "config" gives them), ``rope_scaling`` and ``about``.

    Raises: InputError for several layers, a name that is not .npz, or a file that cannot be
    written (written whole or not at all).
    """
    from attncli.io.writer import write_binary

    check_saving(path, [run.index for run in runs])
    run = runs[0]
    problem, config = run.problem, run.config
    fields = {k: v for k, v in config.changed().items() if k not in _DEVICE_FIELDS}
    members = dict(problem.arrays)
    members["tokens"] = np.asarray(problem.tokens or [], dtype=str)
    members["weight_layout"] = np.asarray(str(problem.weight_layout or "out_in"))
    members["config"] = np.asarray(orjson.dumps(fields, default=str).decode())
    if problem.rope_scaling:
        members["rope_scaling"] = np.asarray(orjson.dumps(problem.rope_scaling).decode())
    members["about"] = np.asarray(f"{run.about['name']} ({run.about['family']}), layer "
                                  f"{run.index}, saved by attncli model")
    write_binary(lambda handle: np.savez(handle, **members), path)
