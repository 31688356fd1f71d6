"""Parity with GPT-NeoX's own attention (transformers/models/gpt_neox/modeling_gpt_neox.py) on a
tiny random GPTNeoXConfig model in float64: partial rotary. ``rotary_pct`` = 0.5 of 8-dim heads
rotates the first R = 4 dims of each head, in the half layout within them (``rotate_half`` of
q[..., :4]: pairs (0, 2), (1, 3)), frequencies θ^(−2i/4) over R; the other 4 dims pass
through. That is attncli's ``--rope --rotary-dim 4``.

GPT-NeoX fuses its projections into one ``query_key_value`` Linear whose output is laid out per
head, (H, 3, d_head) (GPTNeoXAttention.forward: view(…, H, 3·d_head), then chunk(3)): the test
splits its weight and bias into W_q, W_k, W_v and b_q, b_k, b_v, and gives ``dense`` as W_o,
b_o. Compared: the rotated queries and keys, weights, context (the input of ``dense``) and
output (its result, before the parallel residual), at 1e-10, with transformers' float32 RoPE
cos/sin and softmax redirected to float64 (tests/transformers/test_rope.py's float64_rope,
tests/transformers/eager.py's float64_softmax).
"""

from __future__ import annotations

import numpy as np

from attncli import AttentionConfig, attend
from attncli.problem import Problem
from tests.transformers.conftest import capture
from tests.transformers.eager import float64_softmax, record_eager
from tests.transformers.test_rope import float64_rope

N_TOKENS = 7
HEADS, D_MODEL = 4, 32  # d_head = 8
D_HEAD = D_MODEL // HEADS


def _run(transformers, monkeypatch):
    import torch
    from transformers.models.gpt_neox import modeling_gpt_neox

    float64_rope(monkeypatch)
    float64_softmax(monkeypatch)
    torch.manual_seed(0)
    config = transformers.GPTNeoXConfig(vocab_size=50, hidden_size=D_MODEL,
                                        num_attention_heads=HEADS, num_hidden_layers=1,
                                        intermediate_size=32, rotary_pct=0.5,
                                        attn_implementation="eager")
    assert config.rope_parameters["partial_rotary_factor"] == 0.5
    model = transformers.GPTNeoXModel(config).to(torch.float64).eval()
    attention = model.layers[0].attention
    assert attention.rotary_ndims == 4
    with torch.no_grad():  # scores of several units, so that the rotation shows
        attention.query_key_value.weight.mul_(20.0)
    calls = record_eager(monkeypatch, modeling_gpt_neox)
    ids = torch.arange(N_TOKENS).reshape(1, N_TOKENS) % 50
    seen = capture(model, attention, attention.dense, lambda: model(input_ids=ids))
    return attention, seen, calls[0]


def _split(attention) -> dict[str, np.ndarray]:
    """GPT-NeoX's fused query_key_value (3·d_model, d_model), out_in, as W_q, W_k, W_v (each
    (H·d_head, d_model), out_in) and their biases: its output is (H, 3, d_head) per token."""
    weight = attention.query_key_value.weight.detach().numpy().reshape(HEADS, 3, D_HEAD,
                                                                        D_MODEL)
    bias = attention.query_key_value.bias.detach().numpy().reshape(HEADS, 3, D_HEAD)
    arrays = {}
    for index, name in enumerate("qkv"):
        arrays[f"W_{name}"] = weight[:, index].reshape(HEADS * D_HEAD, D_MODEL).copy()
        arrays[f"b_{name}"] = bias[:, index].reshape(HEADS * D_HEAD).copy()
    arrays["W_o"] = attention.dense.weight.detach().numpy().copy()
    arrays["b_o"] = attention.dense.bias.detach().numpy().copy()
    return arrays


def test_gpt_neox_partial_rotary_parity(transformers, monkeypatch):
    attention, seen, call = _run(transformers, monkeypatch)
    problem = Problem.from_mapping({"x": seen.hidden, **_split(attention)}, "gpt_neox.json")
    config = AttentionConfig(heads=HEADS, causal=True, rope=True, rotary_dim=4,
                             weight_layout="out_in")
    trace = attend(problem, config)
    # the queries and keys GPT-NeoX's eager attention received: projected, then rotated
    np.testing.assert_allclose(trace["rotated_queries"], call.queries, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["rotated_keys"], call.keys, rtol=0, atol=1e-10)
    # dims 4 … 7 of every head pass through unturned
    np.testing.assert_array_equal(trace["rotated_queries"][..., 4:], trace["queries"][..., 4:])
    np.testing.assert_allclose(trace["weights"], seen.weights, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=0, atol=1e-10)
    # the partial rotation matters: rotating all 8 dims, or none, gives other weights
    for other in (config.replace(rotary_dim=None), config.replace(rope=False, rotary_dim=None)):
        assert np.abs(attend(problem, other)["weights"] - seen.weights).max() > 1e-3
