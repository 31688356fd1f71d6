"""The plain-numpy baseline: blocked attention as an engineer would write it by hand.

Same problem as bench/reference_torch.py (with W_q: H heads, scaled, then W_o; without W:
queries = keys = values = x, one head, unscaled). The queries are taken --block rows at a time,
so the scores never exist for more than (H, block, n) at once; the softmax works in place on
that block. Computes in the file's dtype. Saves only the requested step, as NPZ.

Usage: python bench/reference_numpy.py PROBLEM.npz OUT.npz [--heads 8] [--steps output|context]
       [--block 256]
"""

from __future__ import annotations

import argparse

import numpy as np


def split_heads(t: np.ndarray, heads: int) -> np.ndarray:
    """(n, H·d_head) → contiguous (H, n, d_head), so every per-head matmul is one BLAS call."""
    n, width = t.shape
    return np.ascontiguousarray(t.reshape(n, heads, width // heads).transpose(1, 0, 2))


def blocked_attention(queries: np.ndarray, keys: np.ndarray, values: np.ndarray,
                      scale: float, block: int) -> np.ndarray:
    """queries, keys, values (H, n, d_head) → context (n, H·d_head), heads concatenated."""
    heads, n, head_dim = queries.shape
    keys_t = np.ascontiguousarray(keys.transpose(0, 2, 1))       # (H, d_head, n)
    context = np.empty((n, heads * head_dim), dtype=queries.dtype)
    for start in range(0, n, block):
        stop = min(start + block, n)
        s = queries[:, start:stop] @ keys_t                      # (H, b, n)
        if scale != 1.0:
            s *= scale
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        block_context = s @ values                               # (H, b, d_head)
        context[start:stop] = block_context.transpose(1, 0, 2).reshape(stop - start, -1)
    return context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("problem")
    parser.add_argument("out")
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--steps", choices=["output", "context"], default="output")
    parser.add_argument("--block", type=int, default=256)
    args = parser.parse_args()

    with np.load(args.problem) as archive:
        arrays = {key: archive[key] for key in archive.files}
    x = arrays["x"]                                              # (n, d_model)
    if "W_q" in arrays:
        queries, keys, values = (split_heads(x @ arrays[key], args.heads)
                                 for key in ("W_q", "W_k", "W_v"))
        scale = queries.shape[-1] ** -0.5           # a Python float keeps float32
        context = blocked_attention(queries, keys, values, scale, args.block)
        result = context @ arrays["W_o"] if args.steps == "output" else context
    else:
        x = x[np.newaxis]                                        # (1, n, d)
        result = blocked_attention(x, x, x, 1.0, args.block)
    np.savez(args.out, **{args.steps: result})


if __name__ == "__main__":
    main()
