"""Projections and score functions by hand."""

from __future__ import annotations

import math

import array_api_compat.numpy as xp
import numpy as np

from attncli.attention import scores
from attncli.attention.project import project


def test_project_splits_columns_into_heads():
    # 1 batch, 1 token, d_in 4, no W, 2 heads: head 0 gets columns 0-1, head 1 columns 2-3
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    out = project(xp, x, None, None, 2)
    assert out.shape == (1, 2, 1, 2)
    np.testing.assert_array_equal(out[0, :, 0], [[1, 2], [3, 4]])


def test_project_with_weights_and_bias():
    # x [1, 2] @ W [[1, 0], [0, 1]] + b [10, 20] = [11, 22]
    out = project(xp, np.array([[[1.0, 2.0]]]), np.eye(2)[None], np.array([[[10., 20.]]]),
                         1)
    np.testing.assert_array_equal(out, [[[[11, 22]]]])


def test_general_score_is_bilinear():
    # q = [1, 2], k = [3, 4], W_a = [[1, 0], [0, 2]]: q W_a = [1, 4], · k = 3 + 16 = 19
    q, k = np.array([[[[1.0, 2.0]]]]), np.array([[[[3.0, 4.0]]]])
    assert scores.general(xp, q, k, np.array([[1.0, 0.0], [0.0, 2.0]]))[0, 0, 0, 0] == 19


def test_additive_score_by_hand():
    # q W_a = [1, 2]·[[1],[1]] = 3; k U_a = [3, 4]·[[0.5],[0]] = 1.5; b_a = -4
    # v_a tanh(3 + 1.5 − 4) = 2 tanh(0.5)
    q, k = np.array([[[[1.0, 2.0]]]]), np.array([[[[3.0, 4.0]]]])
    out = scores.additive(xp, q, k, np.array([[1.0], [1.0]]), np.array([[0.5], [0.0]]),
                          np.array([2.0]), np.array([-4.0]))
    assert out.shape == (1, 1, 1, 1)
    assert math.isclose(out[0, 0, 0, 0], 2 * math.tanh(0.5), rel_tol=1e-15)
