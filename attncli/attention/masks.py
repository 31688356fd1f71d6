"""The one mask of a run, and applying it to scores.

A run has at most one mask, :class:`Mask`: the AND of predicates of a query position i and a
key position j (causal, local window, the problem's mask, its key padding), in the manner of
torch's ``flex_attention`` ``mask_mod(b, h, q_idx, kv_idx)``. It is built once, by the plan;
the masking stage, the heatmaps and plots, and the torch export all read it.

Every mask here is boolean with True = may attend (torch SDPA's polarity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False, repr=False)  # not frozen: 0.3 ms less at start-up; never changed
class Mask:
    """causal ∧ window ∧ mask ∧ ¬key_padding_mask: which keys each query may attend to.

    Fields:
        seq_q, seq_k: the run's query and key counts.
        causal: query i sees keys j ≤ i (after the offset below).
        window: local attention, |i − j| ≤ window (after the offset); None for none.
        bottom_right: the causal diagonal and the window are shifted by seq_k − seq_q
            (flash-attn ≥ 2.1), or by L_b − seq_q per batch item with ``key_lengths``.
        key_lengths: (B,) each batch item's keys that are not padding, when the diagonal
            follows them (bottom-right with a key_padding_mask), else None.
        mask: the problem's ``mask``, (B or 1, 1, seq_q, seq_k) bool, True = may attend
            (torch SDPA's attn_mask), or None.
        padding: the problem's ``key_padding_mask``, (B or 1, 1, 1, seq_k) bool, True = a
            padding key, never attended to (nn.MultiheadAttention's), or None.
    Each is one predicate of (batch, query i, key j); :meth:`rows` ANDs them.
    Sources: causal, Vaswani et al. 2017 §3.2.3 and torch SDPA's is_causal (top-left);
    bottom-right, flash-attn ≥ 2.1 (its tests' construct_local_mask,
    sk = key_padding_mask.sum(-1)); local, Luong et al. 2015 §3.2, sliding with causal
    (Beltagy et al. 2020).
    """

    seq_q: int
    seq_k: int
    causal: bool = False
    window: int | None = None
    bottom_right: bool = False
    key_lengths: tuple[int, ...] | None = None
    mask: np.ndarray | None = None
    padding: np.ndarray | None = None

    @property
    def structural(self) -> bool:
        """Whether the mask depends on positions (causal or window), not only on given arrays."""
        return self.causal or self.window is not None

    @property
    def given(self) -> bool:
        """Whether the problem gave a mask or a key_padding_mask."""
        return self.mask is not None or self.padding is not None

    def words(self) -> str:
        """The mask's parts in words, as the masked_scores formula says them."""
        parts = []
        if self.causal:
            parts.append(f"causal, {'bottom-right' if self.bottom_right else 'top-left'}"
                         + (" to each item's unpadded keys" if self.bottom_right
                            and self.key_lengths is not None else ""))
        if self.window is not None:
            parts.append(f"window |i − j| ≤ {self.window}")
        if self.given:
            parts.append("mask / key_padding_mask")
        return ", ".join(parts)

    def rows(self, xp, start: int, stop: int, device=None, mask=None, padding=None):
        """Query rows start … stop − 1 of the mask, (B or 1, 1, rows, seq_k) bool on ``xp``.

        ``mask``, ``padding``: :attr:`mask` and :attr:`padding` already on ``xp``'s device (the
        executor converts them once), else these numpy arrays are used.
        """
        allowed = None
        if self.structural:
            # A window wider than both sequences masks nothing; clamping keeps int64 indices.
            window = None if self.window is None else min(self.window, self.seq_q + self.seq_k)
            allowed = structural(xp, self.seq_q, self.seq_k, causal=self.causal,
                                 bottom_right=self.bottom_right, window=window, device=device,
                                 rows=(start, stop), key_lengths=self.key_lengths)
            allowed = xp.reshape(allowed, (-1, 1, stop - start, self.seq_k))
        if self.mask is not None:
            given = (self.mask if mask is None else mask)[:, :, start:stop]
            allowed = given if allowed is None else allowed & given
        if self.padding is not None:
            keep = ~(self.padding if padding is None else padding)
            allowed = keep if allowed is None else allowed & keep
        return allowed

    def dense(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows start … stop − 1 of the mask as numpy, (B or 1, 1, rows, seq_k) bool, every
        row spelled out (for drawings and exports)."""
        stop = self.seq_q if stop is None else stop
        allowed = np.asarray(self.rows(np, start, stop), dtype=bool)
        return np.broadcast_to(allowed, (*allowed.shape[:2], stop - start, self.seq_k))


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
