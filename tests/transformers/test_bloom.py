"""Parity with Bloom's own attention (transformers/models/bloom/modeling_bloom.py) on a tiny
random BloomConfig model in float64: ALiBi. Bloom adds ``m_h·j`` to head h's scaled scores
(``alibi.baddbmm(q, kᵀ, beta=1, alpha=1/√d_head)``, build_alibi_tensor); attncli adds
−m_h·|i − j|, which on a causal row is the same less the row's constant m_h·i: the softmax
ignores it, so the weights agree.

Bloom fuses its projections into one ``query_key_value`` Linear whose output is laid out per
head, (H, 3, d_head) (BloomAttention._reshape: view(…, H, 3, d_head)): the test splits its
weight and bias into W_q, W_k, W_v and b_q, b_k, b_v as Bloom does, and gives ``dense`` as W_o,
b_o. Compared: weights, context (the input of ``dense``) and output (its result, before
Bloom's dropout_add of the residual), at 1e-10, with transformers' float32 softmax kept in
float64 (tests/transformers/eager.py).

6 heads, not a power of two: Bloom's slopes are those of 4 heads, 1/4, 1/16, 1/64, 1/256, then
the odd ones of 8 heads, 1/2 and 1/8 (all powers of two, exact in Bloom's float32 slopes).
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.problem import Problem
from tests.transformers.conftest import capture
from tests.transformers.eager import float64_softmax

N_TOKENS = 7
HEADS, D_MODEL = 6, 24  # d_head = 4


def _run(transformers, monkeypatch):
    import torch

    torch.manual_seed(0)
    config = transformers.BloomConfig(vocab_size=50, hidden_size=D_MODEL, n_head=HEADS,
                                      n_layer=1, attn_implementation="eager")
    model = transformers.BloomModel(config).to(torch.float64).eval()
    attention = model.h[0].self_attention
    with torch.no_grad():  # scores of several units, so that ALiBi's few tenths show
        attention.query_key_value.weight.mul_(20.0)
    float64_softmax(monkeypatch)
    ids = torch.arange(N_TOKENS).reshape(1, N_TOKENS) % 50
    seen = capture(model, attention, attention.dense, lambda: model(input_ids=ids))
    return attention, seen


def _split(attention) -> dict[str, np.ndarray]:
    """Bloom's fused query_key_value (3·d_model, d_model), out_in, as W_q, W_k, W_v (each
    (H·d_head, d_model), out_in) and their biases: its output is (H, 3, d_head) per token."""
    d_head = D_MODEL // HEADS
    weight = attention.query_key_value.weight.detach().numpy().reshape(HEADS, 3, d_head, D_MODEL)
    bias = attention.query_key_value.bias.detach().numpy().reshape(HEADS, 3, d_head)
    arrays = {}
    for index, name in enumerate("qkv"):
        arrays[f"W_{name}"] = weight[:, index].reshape(HEADS * d_head, D_MODEL).copy()
        arrays[f"b_{name}"] = bias[:, index].reshape(HEADS * d_head).copy()
    arrays["W_o"] = attention.dense.weight.detach().numpy().copy()
    arrays["b_o"] = attention.dense.bias.detach().numpy().copy()
    return arrays


def _problem(attention, seen) -> Problem:
    return Problem.from_mapping({"x": seen.hidden, **_split(attention)}, "bloom.json")


def test_bloom_alibi_parity(transformers, monkeypatch):
    attention, seen = _run(transformers, monkeypatch)
    config = AttentionConfig(heads=HEADS, causal=True, alibi=True, weight_layout="out_in")
    trace = attend(_problem(attention, seen), config)
    assert trace.run.alibi_slopes == (1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8)
    np.testing.assert_allclose(trace["weights"], seen.weights, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=1e-10, atol=1e-12)
    # the bias of head 4 (m = 1/2), row 3: −(3, 2, 1, 0, 1, 2, 3)/2
    np.testing.assert_allclose(trace["bias"][0, 4, 3], [-1.5, -1, -0.5, 0, -0.5, -1, -1.5])
    # and ALiBi matters here: without it the weights differ
    plain = attend(_problem(attention, seen), config.replace(alibi=False))
    assert np.abs(plain["weights"] - seen.weights).max() > 1e-2


def test_bloom_alibi_in_query_blocks_and_one_row(transformers, monkeypatch):
    # no n×n step asked: query blocks (memory n·d); --query: that row alone, from its position
    attention, seen = _run(transformers, monkeypatch)
    config = AttentionConfig(heads=HEADS, causal=True, alibi=True, weight_layout="out_in")
    output = attend(_problem(attention, seen), config, steps=["output"])
    np.testing.assert_allclose(output["output"], seen.output, rtol=1e-10, atol=1e-12)
    row = attend(_problem(attention, seen), config, query=5)
    assert row.run.path == "one query row"
    np.testing.assert_allclose(row["weights"][0, :, 0], seen.weights[0, :, 5], rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("wrong", ["sign", "power_of_two"])
def test_bloom_alibi_mistakes_do_not_match(transformers, monkeypatch, wrong):
    # +m_h·|i − j| (the wrong sign), or 2^(−8h/6) (the power-of-two rule for 6 heads)
    from attncli.attention.bias import power_of_two_slopes

    attention, seen = _run(transformers, monkeypatch)
    arrays = {"x": seen.hidden, **_split(attention)}
    arrays["alibi_slopes"] = (-1 if wrong == "sign" else 1) * (
        np.array([1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]) if wrong == "sign"
        else power_of_two_slopes(HEADS))
    config = AttentionConfig(heads=HEADS, causal=True, alibi=True, weight_layout="out_in")
    weights = attend(Problem.from_mapping(arrays, "bloom.json"), config)["weights"]
    assert np.abs(weights - seen.weights).max() > 1e-3
