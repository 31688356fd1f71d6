"""The plain-torch baseline: what an engineer would write by hand for the same problem.

With W_q in the file: queries/keys/values = x @ W, H heads (W's columns split into H blocks, as
nn.MultiheadAttention splits them), scaled dot product, heads concatenated, output = context @ W_o.
Without W (a memory problem): queries = keys = values = x, one head, unscaled dot product.
torch.nn.functional.scaled_dot_product_attention does the attention in both cases, in the file's
dtype. Saves only the requested step, as NPZ.

Usage: python bench/reference_torch.py PROBLEM.npz OUT.npz [--heads 8] [--steps output|context]
       [--device cuda]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("problem")
    parser.add_argument("out")
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--steps", choices=["output", "context"], default="output")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    args = parser.parse_args()

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
            split = (1, n, args.heads, head_dim)
            queries, keys, values = (t.view(split).transpose(1, 2)   # (1, H, n, d_head)
                                     for t in (queries, keys, values))
            context = F.scaled_dot_product_attention(queries, keys, values)
            context = context.transpose(1, 2).reshape(n, -1)     # (n, H·d_head)
            result = context @ arrays["W_o"] if args.steps == "output" else context
        else:
            x = x.view(1, 1, n, -1)                              # (1, 1, n, d)
            result = F.scaled_dot_product_attention(x, x, x, scale=1.0).view(n, -1)
    np.savez(args.out, **{args.steps: result.cpu().numpy()})


if __name__ == "__main__":
    main()
