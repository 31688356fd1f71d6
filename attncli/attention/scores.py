"""Score functions.

Shapes (B = batch, H = heads):
    queries (B, H, seq_q, d_k), keys (B, H, seq_k, d_k) → scores (B, H, seq_q, seq_k)
"""

from __future__ import annotations

import numpy as np


def keys_transposed(xp, keys):
    """keysᵀ, (B, H, d_k, seq_k), laid out for repeated products with query blocks: numpy's
    matmul is about 2.5 times slower on a transposed view than on a contiguous copy."""
    transposed = xp.matrix_transpose(keys)
    return np.ascontiguousarray(transposed) if isinstance(keys, np.ndarray) else transposed


def dot(xp, queries, keys, keys_t=None):
    """scores_ij = q_i · k_j.

    Shapes: (B, H, seq_q, d_k), (B, H, seq_k, d_k) → (B, H, seq_q, seq_k); ``keys_t``, if
    given, is :func:`keys_transposed` of the keys.

    Source: Luong et al. 2015, eq. 8 ("dot"); Vaswani et al. 2017, eq. 1 before scaling.
    """
    return xp.matmul(queries, xp.matrix_transpose(keys) if keys_t is None else keys_t)


def general(xp, queries, keys, W_a, keys_t=None):
    """scores_ij = q_iᵀ W_a k_j, a bilinear form.  W_a (d_q, d_k); ``keys_t`` as for :func:`dot`.

    Source: Luong et al. 2015, eq. 8 ("general").
    """
    return xp.matmul(xp.matmul(queries, W_a),
                     xp.matrix_transpose(keys) if keys_t is None else keys_t)


def additive(xp, queries, keys, W_a, U_a, v_a, b_a=None):
    """scores_ij = v_aᵀ tanh(q_i W_a + k_j U_a + b_a).

    Shapes: W_a (d_q, d_att), U_a (d_k, d_att), v_a (d_att,), b_a (d_att,) or None.
    Memory: an intermediate (B, H, seq_q, seq_k, d_att).
    Source: Bahdanau et al. 2015, appendix A.1.2 (e_ij = v_aᵀ tanh(W_a s_{i−1} + U_a h_j)),
    written with row vectors; Luong et al. 2015's "concat" score is the same form.
    """
    q = xp.expand_dims(xp.matmul(queries, W_a), axis=-2)  # (B, H, seq_q, 1, d_att)
    k = xp.expand_dims(xp.matmul(keys, U_a), axis=-3)  # (B, H, 1, seq_k, d_att)
    hidden = q + k if b_a is None else q + k + b_a
    return xp.sum(xp.tanh(hidden) * v_a, axis=-1)  # (B, H, seq_q, seq_k)
