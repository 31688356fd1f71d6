"""softmax, hard and top-k normalisation: by hand, and at the edges of float64."""

from __future__ import annotations

import math

import array_api_compat.numpy as xp
import numpy as np

from attncli.attention import normalize


def test_softmax_by_hand():
    # softmax([0, ln 2, ln 3]) = [1, 2, 3] / 6
    weights = normalize.softmax(xp, np.array([[0.0, math.log(2), math.log(3)]]))
    np.testing.assert_allclose(weights, [[1 / 6, 2 / 6, 3 / 6]], rtol=1e-15)


def test_softmax_finite_for_huge_scores():
    # e^10000 overflows float64, but after subtracting the row maximum the row is [0, −2e4, −1e4]
    weights = normalize.softmax(xp, np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]]))
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-300)


def test_softmax_masked_keys_and_fully_masked_rows():
    inf = np.inf
    # row 0: keys 0 and 2 left, equal scores → [0.5, 0, 0.5]; row 1: nothing left → zeros
    weights = normalize.softmax(xp, np.array([[1.0, -inf, 1.0], [-inf, -inf, -inf]]))
    np.testing.assert_array_equal(weights, [[0.5, 0, 0.5], [0, 0, 0]])


def test_hard_one_hot_and_first_of_ties():
    weights = normalize.hard(xp, np.array([[0.1, 0.9, 0.3], [2.0, 2.0, 1.0],
                                           [-np.inf, -np.inf, -np.inf]]))
    np.testing.assert_array_equal(weights, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_top_k_keeps_the_k_largest():
    # top-2 of [1, 3, 2, 0] keeps keys 1 and 2: softmax([3, 2]) = [e/(e+1), 1/(e+1)]
    weights = normalize.top_k(xp, np.array([[1.0, 3.0, 2.0, 0.0]]), 2)
    e = math.e
    np.testing.assert_allclose(weights, [[0, e / (e + 1), 1 / (e + 1), 0]], rtol=1e-15)
    # ties at the boundary go to the lower index: top-1 of [2, 2] is key 0
    np.testing.assert_array_equal(normalize.top_k(xp, np.array([[2.0, 2.0]]), 1), [[1, 0]])
