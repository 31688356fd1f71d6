"""Causal and local masks, and applying a mask to scores.

Every mask here is boolean with True = may attend (torch SDPA's polarity).
"""

from __future__ import annotations


def structural(xp, seq_q: int, seq_k: int, *, causal: bool, bottom_right: bool,
               window: int | None, device=None, rows: tuple[int, int] | None = None,
               key_lengths=None):
    """The causal and/or local mask, or None when neither is asked for.

    Shapes: returns (seq_q, seq_k) bool, or (stop − start, seq_k) for ``rows=(start, stop)``,
    the query rows start … stop − 1 of it; (B, rows, seq_k) when ``bottom_right`` and
    ``key_lengths`` (B,) are given.
    Causal, top-left: query i sees keys j ≤ i (torch SDPA is_causal=True, torch.tril).
    Causal, bottom-right: j ≤ i + seq_k − seq_q (flash-attn ≥ 2.1, for decoding with a cache);
    with ``key_lengths`` (each batch item's keys that are not padding), j ≤ i + L_b − seq_q:
    the last query sees up to the item's last real key, as flash-attn aligns padded batches
    (its tests' construct_local_mask: sk = key_padding_mask.sum(-1), True = a real key there).
    Local: |i + offset − j| ≤ window, offset as above; with causal this is a sliding window
    (Luong et al. 2015, §3.2; Beltagy et al. 2020 for the sliding form).
    """
    if not causal and window is None:
        return None
    start, stop = rows if rows is not None else (0, seq_q)
    i = xp.reshape(xp.arange(start, stop, device=device), (stop - start, 1))
    if bottom_right and key_lengths is not None:  # (B, rows, 1): one diagonal per batch item
        lengths = xp.asarray(key_lengths, device=device)
        i = i + xp.reshape(lengths - seq_q, (-1, 1, 1))
    elif bottom_right:
        i = i + (seq_k - seq_q)
    j = xp.reshape(xp.arange(seq_k, device=device), (1, seq_k))
    mask = xp.ones((*i.shape[:-1], seq_k), dtype=xp.bool, device=device)
    if causal:
        mask = mask & (j <= i)
    if window is not None:
        mask = mask & (xp.abs(i - j) <= window)
    return mask


def left_padding(key_padding_mask) -> tuple[int, int, int] | None:
    """The first batch item whose padding does not all come after its real keys, as (item, a
    padded key, a real key after it); None when every item is right-padded (its real keys
    first, then its padding, if any).

    Shapes: key_padding_mask (seq_k,) or (B, seq_k) bool, True = padding (numpy).
    Why: bottom-right alignment to each item's unpadded length L (:func:`structural`'s
    ``key_lengths``) puts the last query at key L − 1, which is the item's last real key only
    when its padding comes last. flash-attn assumes so too: its padded batches keep the real
    keys first (tests/test_flash_attn.py's generate_random_padding_mask, arange < lengths),
    and left padding is a separate offset (construct_local_mask's key_leftpad).
    """
    import numpy as np

    padding = np.atleast_2d(np.asarray(key_padding_mask, dtype=bool))
    # a real key after a padded one: padding seen so far (cumulative) and this key real
    seen = np.logical_or.accumulate(padding, axis=-1)
    wrong = seen[:, 1:] & ~padding[:, 1:]
    if not wrong.any():
        return None
    item = int(np.argmax(wrong.any(axis=-1)))
    real = int(np.argmax(wrong[item])) + 1
    return item, int(np.argmax(padding[item])), real


def apply(xp, scores, mask):
    """Scores where the mask allows, −∞ elsewhere.

    Shapes: scores (B, H, seq_q, seq_k); mask broadcastable to it, True = may attend.
    Source: Vaswani et al. 2017, §3.2.3 ("setting to −∞ all values … which correspond to
    illegal connections").
    """
    return xp.where(mask, scores, xp.asarray(-xp.inf, dtype=scores.dtype, device=scores.device))
