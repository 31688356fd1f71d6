"""The plain-torch baseline: what an engineer would write by hand for the same problem.

With W_q in the file: queries/keys/values = x @ W, H heads (W's columns split into H blocks, as
nn.MultiheadAttention splits them), scaled dot product, heads concatenated, output = context @ W_o.
Without W (a memory problem): queries = keys = values = x, one head, unscaled dot product.
torch.nn.functional.scaled_dot_product_attention does the attention in both cases, in the file's
dtype. Saves only the requested step, as NPZ.

With --kv-heads G (grouped-query attention: W_k, W_v of G·d_head columns), --rope (rotary
embeddings, Llama's rotate_half layout, θ = 10000, positions 0 … n−1, as
transformers/models/llama/modeling_llama.py applies them) and --causal: the modern case, SDPA
with enable_gqa and is_causal.

Usage: python bench/reference_torch.py PROBLEM.npz OUT.npz [--heads 8] [--steps output|context]
       [--device cuda] [--kv-heads 2 --rope --causal]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F


def rotate(t: torch.Tensor, n: int) -> torch.Tensor:
    """Rotary embeddings of (1, heads, n, d), positions 0 … n−1, θ = 10000, rotate_half."""
    d = t.shape[-1]
    inverse = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    angles = torch.arange(n, dtype=torch.float64)[:, None] * inverse[None]  # (n, d/2)
    angles = torch.cat((angles, angles), dim=-1).to(t.dtype).to(t.device)
    half = torch.cat((-t[..., d // 2:], t[..., :d // 2]), dim=-1)
    return t * angles.cos() + half * angles.sin()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("problem")
    parser.add_argument("out")
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--steps", choices=["output", "context"], default="output")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--kv-heads", type=int, help="G key/value heads (default: --heads)")
    parser.add_argument("--rope", action="store_true", help="rotary embeddings, θ = 10000")
    parser.add_argument("--causal", action="store_true")
    args = parser.parse_args()
    kv_heads = args.kv_heads or args.heads

    with np.load(args.problem) as archive:
        arrays = {key: torch.from_numpy(archive[key]).to(args.device) for key in archive.files}
    x = arrays["x"]                                              # (n, d_model)
    n = x.shape[0]
    with torch.inference_mode():
        if "W_q" in arrays:
            queries = x @ arrays["W_q"]                          # (n, H·d_head)
            keys = x @ arrays["W_k"]
            values = x @ arrays["W_v"]
            head_dim = queries.shape[1] // args.heads
            queries = queries.view(1, n, args.heads, head_dim).transpose(1, 2)  # (1, H, n, d)
            keys, values = (t.view(1, n, kv_heads, head_dim).transpose(1, 2)  # (1, G, n, d)
                            for t in (keys, values))
            if args.rope:
                queries, keys = rotate(queries, n), rotate(keys, n)
            context = F.scaled_dot_product_attention(queries, keys, values, is_causal=args.causal,
                                                     enable_gqa=kv_heads != args.heads)
            context = context.transpose(1, 2).reshape(n, -1)     # (n, H·d_head)
            result = context @ arrays["W_o"] if args.steps == "output" else context
        else:
            x = x.view(1, 1, n, -1)                              # (1, 1, n, d)
            result = F.scaled_dot_product_attention(x, x, x, scale=1.0).view(n, -1)
    np.savez(args.out, **{args.steps: result.cpu().numpy()})


if __name__ == "__main__":
    main()
