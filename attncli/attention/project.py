"""Projections: x (B, seq, d_in) → queries, keys or values (B, H, seq, d_head)."""

from __future__ import annotations


def project(xp, x, W, b, heads: int):
    """x W + b per head, or x split into ``heads`` column blocks when W is None.

    Shapes: x (B, seq, d_in); W (H, d_in, d_head) or None; b (H, 1, d_head) or None.
    Returns: (B, H, seq, d_head). Head h owns columns h·d_head … (h+1)·d_head − 1 of the
    projected width, as torch.nn.MultiheadAttention splits them.
    Source: Vaswani et al. 2017, §3.2.2.
    """
    if W is None:
        batch, seq, width = x.shape
        split = xp.reshape(x, (batch, seq, heads, width // heads))  # (B, seq, H, d_head)
        return xp.permute_dims(split, (0, 2, 1, 3))  # (B, H, seq, d_head)
    projected = xp.matmul(xp.expand_dims(x, axis=1), xp.expand_dims(W, axis=0))  # (B, H, seq, d)
    return projected if b is None else projected + xp.expand_dims(b, axis=0)
