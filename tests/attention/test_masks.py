"""Causal and local masks, worked by hand."""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np

from attncli.attention import masks


def test_causal_top_left_is_lower_triangular():
    # query i sees keys j ≤ i
    mask = masks.structural(xp, 3, 3, causal=True, bottom_right=False, window=None)
    np.testing.assert_array_equal(mask, [[1, 0, 0], [1, 1, 0], [1, 1, 1]])


def test_causal_alignment_when_seq_q_differs_from_seq_k():
    # 2 queries, 4 keys. top-left (torch SDPA): row 0 sees key 0, row 1 keys 0-1.
    top = masks.structural(xp, 2, 4, causal=True, bottom_right=False, window=None)
    np.testing.assert_array_equal(top, [[1, 0, 0, 0], [1, 1, 0, 0]])
    # bottom-right (flash-attn): offset seq_k − seq_q = 2, row 0 sees keys 0-2, row 1 all four.
    bottom = masks.structural(xp, 2, 4, causal=True, bottom_right=True, window=None)
    np.testing.assert_array_equal(bottom, [[1, 1, 1, 0], [1, 1, 1, 1]])


def test_window_and_sliding_window():
    # |i − j| ≤ 1 on 4 tokens: a band of width 3
    band = masks.structural(xp, 4, 4, causal=False, bottom_right=False, window=1)
    np.testing.assert_array_equal(band, [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]])
    # with causal: each query sees itself and the one before it
    sliding = masks.structural(xp, 4, 4, causal=True, bottom_right=False, window=1)
    np.testing.assert_array_equal(sliding, np.tril(band))
    # window 0 is the diagonal
    diagonal = masks.structural(xp, 3, 3, causal=False, bottom_right=False, window=0)
    np.testing.assert_array_equal(diagonal, np.eye(3, dtype=bool))


def test_no_mask_asked_for_is_none():
    assert masks.structural(xp, 3, 3, causal=False, bottom_right=False, window=None) is None


def test_apply_sets_negative_infinity():
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = masks.apply(xp, scores, np.array([[True, False], [True, True]]))
    np.testing.assert_array_equal(out, [[1.0, -np.inf], [3.0, 4.0]])
