"""Parity with GPT-J's own attention (transformers/models/gptj/modeling_gptj.py) on a tiny random
GPTJConfig model in float64: the interleaved rotary layout on part of each head. GPT-J rotates
the first ``rotary_dim`` = 4 of 8 dims of each head in adjacent pairs (rotate_every_two: pairs
(0, 1), (2, 3)), frequencies θ^(−2i/4) over R; the other dims pass through. That is attncli's
``--rope --rope-layout interleaved --rotary-dim 4``, with GPT-J's q_proj, k_proj, v_proj and
out_proj (no biases) as W_q, W_k, W_v, W_o (nn.Linear: --weight-layout out_in).

Compared: the rotated queries and keys its eager attention receives, weights, context (the
input of ``out_proj``) and output (its result, before the residual), at 1e-8 (see TOLERANCE), with
transformers' float32 RoPE and softmax redirected to float64 (test_rope.py's float64_rope,
eager.py's float64_softmax).
"""

from __future__ import annotations

import numpy as np

from attncli import AttentionConfig, attend
from attncli.problem import Problem
from tests.transformers.conftest import capture
from tests.transformers.eager import float64_softmax, record_eager
from tests.transformers.test_rope import float64_rope

N_TOKENS = 6
#: GPT-J builds its sin/cos table once (create_sinusoidal_positions), with another order of
#: float64 operations than attncli's angle = position × θ^(−2i/R): the rotated numbers (about 3)
#: differ by up to 5e-9, measured; 1e-8 is an absolute tolerance above that, far below the
#: float32 level (1e-7 relative) and below any change of layout (1e-3, asserted at the end).
TOLERANCE = 1e-8
HEADS, D_MODEL = 4, 32  # d_head = 8


def test_gptj_interleaved_partial_rotary_parity(transformers, monkeypatch):
    import torch
    from transformers.models.gptj import modeling_gptj

    float64_rope(monkeypatch)
    float64_softmax(monkeypatch)
    torch.manual_seed(0)
    config = transformers.GPTJConfig(vocab_size=50, n_embd=D_MODEL, n_head=HEADS, n_layer=1,
                                     rotary_dim=4, n_positions=64,
                                     attn_implementation="eager")
    model = transformers.GPTJModel(config).to(torch.float64).eval()
    attention = model.h[0].attn
    with torch.no_grad():  # scores of several units, so that the rotation shows
        attention.q_proj.weight.mul_(20.0)
        attention.k_proj.weight.mul_(20.0)
    calls = record_eager(monkeypatch, modeling_gptj)
    ids = torch.arange(N_TOKENS).reshape(1, N_TOKENS)
    seen = capture(model, attention, attention.out_proj, lambda: model(input_ids=ids))
    arrays = {f"W_{n}": getattr(attention, f"{n}_proj").weight.detach().numpy().copy()
              for n in "qkv"}
    arrays["W_o"] = attention.out_proj.weight.detach().numpy().copy()
    problem = Problem.from_mapping({"x": seen.hidden, **arrays}, "gptj.json")
    config = AttentionConfig(heads=HEADS, causal=True, rope=True, rope_layout="interleaved",
                             rotary_dim=4, weight_layout="out_in")
    trace = attend(problem, config)
    np.testing.assert_allclose(trace["rotated_queries"], calls[0].queries, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace["rotated_keys"], calls[0].keys, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace["weights"], seen.weights, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=0, atol=TOLERANCE)
    # the layout matters: the half layout on the same dims gives other weights
    half = attend(problem, config.replace(rope_layout="half"))["weights"]
    assert np.abs(half - seen.weights).max() > 1e-3
