"""Deterministic random problems for the benchmarks, written as NPZ archives of attncli's keys.

- ``large``: ``x`` (n, d_model) and ``W_q, W_k, W_v, W_o`` (d_model, d_model), in_out layout.
  x ~ N(0, 1) and W ~ N(0, 1/d_model), so the queries and keys have unit-variance entries and the
  scaled scores q·k/√d_head are ~N(0, 1): the softmax is neither uniform nor one-hot.
- ``memory``: ``x`` (n, d) only (Q = K = V = x, unscaled dot product). x ~ N(0, 1/√d), so the
  off-diagonal scores x_i·x_j are ~N(0, 1) and the diagonal ≈ √d: again a non-degenerate softmax.

Usage: python bench/make_problems.py large OUT.npz [--n 4096 --d 512 --dtype float32 --seed 0]
       [--kv-width 128]
       python bench/make_problems.py memory OUT.npz [--n 16384 --d 64 --dtype float64]
"""

from __future__ import annotations

import argparse

import numpy as np


def make_large(n: int = 4096, d_model: int = 512, dtype: str = "float32",
               seed: int = 0, kv_width: int | None = None) -> dict[str, np.ndarray]:
    """x (n, d_model); W_q, W_o (d_model, d_model); W_k, W_v (d_model, kv_width), d_model
    unless given (grouped-query attention: G·d_head); all of ``dtype``."""
    rng = np.random.default_rng(seed)
    problem = {"x": rng.standard_normal((n, d_model))}
    for key in ("W_q", "W_k", "W_v", "W_o"):
        width = kv_width if key in ("W_k", "W_v") and kv_width else d_model
        problem[key] = rng.standard_normal((d_model, width)) / np.sqrt(d_model)
    return {key: value.astype(dtype) for key, value in problem.items()}


def make_memory(n: int = 16384, d: int = 64, dtype: str = "float64",
                seed: int = 0) -> dict[str, np.ndarray]:
    """x (n, d) of ``dtype``; no projections."""
    rng = np.random.default_rng(seed)
    return {"x": (rng.standard_normal((n, d)) / d**0.25).astype(dtype)}


def flops(n: int, d_model: int, projected: bool) -> int:
    """Multiply-adds ×2 of the matmuls: projections 3·2·n·d², attention 2·2·n²·d (scores and
    weights @ values), output 2·n·d². The softmax's exp and divisions are not counted."""
    attention = 2 * 2 * n * n * d_model
    if not projected:
        return attention
    return 3 * 2 * n * d_model**2 + attention + 2 * n * d_model**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["large", "memory"])
    parser.add_argument("out", help="the NPZ file to write")
    parser.add_argument("--n", type=int)
    parser.add_argument("--d", type=int)
    parser.add_argument("--dtype", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kv-width", type=int, help="large: W_k, W_v's columns (G·d_head)")
    args = parser.parse_args()
    make = make_large if args.kind == "large" else make_memory
    options = {name: value for name, value in
               (("n", args.n), ("dtype", args.dtype), ("seed", args.seed)) if value is not None}
    if args.kv_width is not None:
        options["kv_width"] = args.kv_width
    if args.d is not None:
        options["d_model" if args.kind == "large" else "d"] = args.d
    np.savez(args.out, **make(**options))


if __name__ == "__main__":
    main()
