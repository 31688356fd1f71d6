"""Additive biases of the scores: ALiBi's linear distance penalty and a given float bias.

Shapes (B = batch or 1, H = heads or 1, rows = the query rows of a block):
    slopes (H,); bias (B, H, seq_q, seq_k) as :class:`attncli.shapes.Prepared` holds it;
    a block's bias (B or 1, H, rows, seq_k), added to the scores (B, H, rows, seq_k).
"""

from __future__ import annotations

import math

import numpy as np


def alibi_slopes(heads: int) -> np.ndarray:
    """ALiBi's head slopes m_h, (heads,): the geometric sequence 2^(−8/n), 2^(−16/n), …,
    2^(−8) for n = heads a power of two; otherwise those of the closest power of two below
    (n), then the odd-numbered slopes of 2n heads (the ones between them), for the rest.

    Worked: 8 heads → 1/2, 1/4, …, 1/256; 4 heads → 1/4, 1/16, 1/64, 1/256; 6 heads → the 4
    heads' slopes, then 2^(−1), 2^(−3) (the slopes 1 and 3 of 8 heads).
    Source: Press et al. 2022, "Train Short, Test Long" §3 and footnote on non-powers of two;
    transformers' models/bloom/modeling_bloom.py, build_alibi_tensor (its slopes; MPT's
    ``_get_alibi_slopes`` the same).
    """
    closest = 2 ** math.floor(math.log2(heads))
    base = 2.0 ** (-(2.0 ** -(math.log2(closest) - 3)))
    slopes = base ** np.arange(1, closest + 1, dtype=np.float64)
    if closest != heads:
        extra_base = 2.0 ** (-(2.0 ** -(math.log2(2 * closest) - 3)))
        remaining = min(closest, heads - closest)
        extra = extra_base ** np.arange(1, 2 * remaining, 2, dtype=np.float64)
        slopes = np.concatenate([slopes, extra])
    return slopes


def power_of_two_slopes(heads: int) -> np.ndarray:
    """The mistaken slopes 2^(−8h/H), h = 1 … H, for every H: right only when H is a power of
    two (a twin for `attncli check`). Source: Press et al. 2022, §3 (the power-of-two rule)."""
    return 2.0 ** (-8.0 * np.arange(1, heads + 1, dtype=np.float64) / heads)


def alibi(xp, slopes, first: int, rows: int, seq_k: int, offset: int):
    """−m_h·|i + offset − j| for query rows i = first … first + rows − 1 and keys j.

    Shapes: slopes (H,) on the device (its dtype and device are the output's) →
    (1, H, rows, seq_k).
    ``offset``: 0 (top-left) or seq_k − seq_q (bottom-right: the last query sits at the last
    key). On a causal row this is m_h·j up to the row's constant −m_h·(i + offset), which the
    softmax ignores: Bloom's and MPT's ``m_h·j``.
    Source: Press et al. 2022, §3 (the bias −m·(i − j) of a causal row).
    """
    kw = {"dtype": slopes.dtype, "device": slopes.device}
    i = xp.arange(first + offset, first + offset + rows, **kw)
    j = xp.arange(0, seq_k, **kw)
    distance = xp.abs(xp.reshape(i, (rows, 1)) - xp.reshape(j, (1, seq_k)))  # (rows, seq_k)
    return -xp.reshape(slopes, (1, -1, 1, 1)) * distance[None, None]
