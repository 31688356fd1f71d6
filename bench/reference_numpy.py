"""The plain-numpy baseline: blocked attention as an engineer would write it by hand.

Same problem as bench/reference_torch.py (with W_q: H heads, scaled, then W_o; without W:
queries = keys = values = x, one head, unscaled). The queries are taken --block rows at a time,
so the scores never exist for more than (H, block, n) at once; the softmax works in place on
that block. Computes in the file's dtype. Saves only the requested step, as NPZ.

With --kv-heads G, --rope and --causal: the modern case, as bench/reference_torch.py does it
(each key/value head shared by H/G query heads; rotate_half, θ = 10000; the causal mask built
for each block).

Usage: python bench/reference_numpy.py PROBLEM.npz OUT.npz [--heads 8] [--steps output|context]
       [--block 256] [--kv-heads 2 --rope --causal]
"""

from __future__ import annotations

import argparse

import numpy as np


def split_heads(t: np.ndarray, heads: int) -> np.ndarray:
    """(n, H·d_head) → contiguous (H, n, d_head), so every per-head matmul is one BLAS call."""
    n, width = t.shape
    return np.ascontiguousarray(t.reshape(n, heads, width // heads).transpose(1, 0, 2))


def rotate(t: np.ndarray) -> np.ndarray:
    """Rotary embeddings of (heads, n, d), positions 0 … n−1, θ = 10000, rotate_half."""
    n, d = t.shape[-2:]
    inverse = 1.0 / (10000.0 ** (np.arange(0, d, 2) / d))
    angles = np.arange(n)[:, None] * inverse[None]
    angles = np.concatenate((angles, angles), axis=-1)
    half = np.concatenate((-t[..., d // 2:], t[..., :d // 2]), axis=-1)
    return (t * np.cos(angles).astype(t.dtype) + half * np.sin(angles).astype(t.dtype))


def blocked_attention(queries: np.ndarray, keys: np.ndarray, values: np.ndarray,
                      scale: float, block: int, causal: bool = False) -> np.ndarray:
    """queries (H, n, d_head), keys and values (G, n, d_head), G dividing H → context
    (n, H·d_head), heads concatenated; query head h uses key/value head h // (H/G)."""
    heads, n, head_dim = queries.shape
    groups = keys.shape[0]
    keys_t = np.ascontiguousarray(keys.transpose(0, 2, 1))[:, None]  # (G, 1, d_head, n)
    values = values[:, None]                                         # (G, 1, n, d_head)
    context = np.empty((n, heads * head_dim), dtype=queries.dtype)
    grouped = queries.reshape(groups, heads // groups, n, head_dim)  # (G, H/G, n, d_head)
    for start in range(0, n, block):
        stop = min(start + block, n)
        s = grouped[:, :, start:stop] @ keys_t                   # (G, H/G, b, n)
        if scale != 1.0:
            s *= scale
        if causal:
            s[..., np.arange(n)[None, :] > np.arange(start, stop)[:, None]] = -np.inf
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        block_context = (s @ values).reshape(heads, stop - start, head_dim)  # (H, b, d)
        context[start:stop] = block_context.transpose(1, 0, 2).reshape(stop - start, -1)
    return context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("problem")
    parser.add_argument("out")
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--steps", choices=["output", "context"], default="output")
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--kv-heads", type=int, help="G key/value heads (default: --heads)")
    parser.add_argument("--rope", action="store_true", help="rotary embeddings, θ = 10000")
    parser.add_argument("--causal", action="store_true")
    args = parser.parse_args()

    with np.load(args.problem) as archive:
        arrays = {key: archive[key] for key in archive.files}
    x = arrays["x"]                                              # (n, d_model)
    if "W_q" in arrays:
        kv_heads = args.kv_heads or args.heads
        queries = split_heads(x @ arrays["W_q"], args.heads)
        keys, values = (split_heads(x @ arrays[key], kv_heads) for key in ("W_k", "W_v"))
        if args.rope:
            queries, keys = rotate(queries), rotate(keys)
        scale = queries.shape[-1] ** -0.5           # a Python float keeps float32
        context = blocked_attention(queries, keys, values, scale, args.block, args.causal)
        result = context @ arrays["W_o"] if args.steps == "output" else context
    else:
        x = x[np.newaxis]                                        # (1, n, d)
        result = blocked_attention(x, x, x, 1.0, args.block)
    np.savez(args.out, **{args.steps: result})


if __name__ == "__main__":
    main()
