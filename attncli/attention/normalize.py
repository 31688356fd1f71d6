"""Scores → weights: softmax (soft), one-hot arg-max (hard), top-k softmax, softmax with
attention sinks (one more column per head, dropped).

Shapes: scores (..., seq_q, seq_k) with −∞ at masked keys → weights of the same shape.
A row whose keys are all masked gets zero weights (torch SDPA's safe softmax), never NaN.
"""

from __future__ import annotations

import numpy as np


def softmax(xp, scores, inplace: bool = False):
    """weights_ij = exp(s_ij − m_i) / Σ_j exp(s_ij − m_i), m_i = max_j s_ij.

    Subtracting the row maximum keeps exp finite for any finite score (±1e4 included).
    Rows that are all −∞ get zeros. ``inplace``: the scores array may be overwritten (and is
    returned as the weights), which saves two n×n passes of memory traffic per call.
    Source: Bridle 1990; Vaswani et al. 2017, eq. 1.
    """
    row_max = xp.max(scores, axis=-1, keepdims=True)
    row_max = xp.where(xp.isfinite(row_max), row_max, xp.zeros_like(row_max))
    if inplace:
        scores -= row_max
        # exp(−∞) = 0 at masked keys; numpy writes it in place, the array API has no ``out``
        exps = np.exp(scores, out=scores) if isinstance(scores, np.ndarray) else xp.exp(scores)
    else:
        exps = xp.exp(scores - row_max)
    total = xp.sum(exps, axis=-1, keepdims=True)
    # A row that is all −∞ has exps all 0: dividing by 1 leaves its zeros. (In place: exps is
    # this function's own array, and the row-sized divisor costs nothing.)
    exps /= xp.where(total > 0, total, xp.ones_like(total))
    return exps


def softmax_with_sinks(xp, scores, sinks):
    """The softmax over each row's scores and one more column, its head's sink logit, which is
    then dropped: (weights, sink_weights).

    Shapes: scores (B, H, rows, seq_k) with −∞ at masked keys; sinks (H,) → weights (B, H,
    rows, seq_k) and sink_weights (B, H, rows), each row of weights summing to
    1 − sink_weights. With m_i = max(max_j s_ij, sink): Z_i = Σ_j exp(s_ij − m_i) +
    exp(sink − m_i), weights_ij = exp(s_ij − m_i) / Z_i, sink_weights_i = exp(sink − m_i) / Z_i.
    A row whose keys are all masked gives the sink all of its mass (weights 0, sink 1).
    Source: transformers' models/gpt_oss/modeling_gpt_oss.py, eager_attention_forward
    (``torch.cat([attn_weights, sinks], dim=-1)``, softmax, ``probs[..., :-1]``); OpenAI's
    gpt_oss/torch/model.py, ``sdpa``; Xiao et al. 2024, "Efficient Streaming Language Models
    with Attention Sinks"; Miller 2023, "Attention Is Off By One" (a sink of logit 0).
    """
    sink = xp.reshape(sinks, (1, sinks.shape[0], 1, 1))
    row_max = xp.maximum(xp.max(scores, axis=-1, keepdims=True), sink)  # finite: sink is
    exps = xp.exp(scores - row_max)
    sink_exp = xp.exp(sink - row_max)
    total = xp.sum(exps, axis=-1, keepdims=True) + sink_exp  # ≥ 1: one term is exp(0)
    return exps / total, (sink_exp / total)[..., 0]


def hard(xp, scores):
    """A one-hot row at the arg-max key; ties go to the first (lowest-index) key.

    That is numpy.argmax's and torch.argmax's tie rule. Rows that are all −∞ get zeros.
    Source: hard attention as in Xu et al. 2015, §4.1, with the arg-max in place of sampling.
    """
    seq_k = scores.shape[-1]
    best = xp.argmax(scores, axis=-1, keepdims=True)
    keys = xp.arange(seq_k, device=scores.device)
    one_hot = xp.astype(keys == best, scores.dtype)
    valid = xp.any(xp.isfinite(scores), axis=-1, keepdims=True)
    return xp.where(valid, one_hot, xp.zeros_like(one_hot))


def top_k(xp, scores, k: int):
    """Softmax over each row's k largest scores, zero elsewhere.

    Ties at the k-th place go to the lower-index keys (a stable sort). Rows with fewer than k
    unmasked keys keep those they have.
    """
    # Largest first, equal scores in key order: an ascending stable sort of −scores (plain
    # numpy's argsort has no ``descending``).
    order = xp.argsort(-scores, axis=-1, stable=True)
    rank = xp.argsort(order, axis=-1, stable=True)  # rank of each key within its row
    kept = xp.where(rank < k, scores, xp.asarray(-xp.inf, dtype=scores.dtype,
                                                  device=scores.device))
    return softmax(xp, kept)
