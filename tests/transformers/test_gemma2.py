"""Parity with Gemma 2's own attention (transformers/models/gemma2/modeling_gemma2.py) on a tiny
random Gemma2Config model in float64: soft-capping (``attn_logit_softcapping`` → --softcap),
``query_pre_attn_scalar`` s (→ --scale s**-0.5) and the sliding layers (``sliding_window`` S →
--causal --window S−1; the other layers are global, --causal).

Compared: each layer's weights, context (the input of o_proj) and output (o_proj's result),
at 1e-10, with transformers' float32 softmax kept in float64 (tests/transformers/eager.py).

Gemma 2 also rotates the queries and keys (RoPE) and groups the keys and values (GQA). attncli
is given the queries, keys and values as Gemma 2's own ``eager_attention_forward`` receives
them (projected and rotated by the model itself; the G KV heads repeated as ``repeat_kv`` does)
as x, key_memory and value_memory, with o_proj's weight as W_o: the scale, the soft-cap, the
masks, the softmax, the weighted sum and the output projection are attncli's. The whole layer
from its input (attncli's own projections, --kv-heads and --rope) is compared too, at 1e-6:
Gemma 2's RoPE cos and sin are float32 even in a float64 model.
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.problem import Problem
from tests.transformers.conftest import capture
from tests.transformers.eager import Call, float64_softmax, record_eager

N_TOKENS = 7
SLIDING_WINDOW = 3  # S: Hugging Face keeps 3 keys, the query's own included: |i − j| ≤ 2
SOFTCAP = 2.0
QUERY_PRE_ATTN_SCALAR = 24  # ≠ head_dim 8: the scale is 24**-0.5, not 8**-0.5


def _model(transformers):
    import torch

    torch.manual_seed(0)
    config = transformers.Gemma2Config(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        query_pre_attn_scalar=QUERY_PRE_ATTN_SCALAR, attn_logit_softcapping=SOFTCAP,
        sliding_window=SLIDING_WINDOW, layer_types=["sliding_attention", "full_attention"],
        attn_implementation="eager")
    model = transformers.Gemma2Model(config).to(torch.float64).eval()
    with torch.no_grad():  # scores of several units, so that the soft-cap bites
        for layer in model.layers:
            layer.self_attn.q_proj.weight.mul_(40.0)
            layer.self_attn.k_proj.weight.mul_(40.0)
    return model


def _run(transformers, monkeypatch, layer):
    import torch
    from transformers.models.gemma2 import modeling_gemma2

    model = _model(transformers)
    float64_softmax(monkeypatch)
    calls = record_eager(monkeypatch, modeling_gemma2)
    ids = torch.arange(N_TOKENS).reshape(1, N_TOKENS) % 50
    attention = model.layers[layer].self_attn
    seen = capture(model, attention, attention.o_proj, lambda: model(input_ids=ids))
    return attention, calls[layer], seen


def _config(attention, **options):
    return AttentionConfig(heads=attention.config.num_attention_heads,
                           scale=QUERY_PRE_ATTN_SCALAR ** -0.5, softcap=SOFTCAP, causal=True,
                           weight_layout="out_in", **options)


@pytest.mark.parametrize(("layer", "window"), [(0, SLIDING_WINDOW - 1), (1, None)])
def test_gemma2_layer_parity(transformers, monkeypatch, layer, window):
    attention, call, seen = _run(transformers, monkeypatch, layer)
    # what Gemma 2 passed: the scalar's scale, the cap, the window on the sliding layer only
    assert call.kwargs["scaling"] == pytest.approx(QUERY_PRE_ATTN_SCALAR ** -0.5, rel=1e-15)
    assert call.kwargs["softcap"] == SOFTCAP
    assert call.kwargs["sliding_window"] == (SLIDING_WINDOW if window is not None else None)
    arrays = call.problem()
    arrays["W_o"] = attention.o_proj.weight.detach().numpy().copy()  # (d_model, H·d): out_in
    trace = attend(Problem.from_mapping(arrays, "gemma2.json"), _config(attention, window=window))
    assert "capped_scores" in trace.names()
    # the cap bites: some scaled scores lie beyond ±2, where tanh is far from linear
    assert np.abs(trace["scaled_scores"]).max() > 2 * SOFTCAP
    np.testing.assert_allclose(trace["weights"], call.weights, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=1e-10, atol=1e-12)
    if window is not None:  # the sliding layer: query 6 sees keys 4, 5, 6 (S = 3 keys)
        assert np.count_nonzero(call.weights[0, :, 6]) == 4 * SLIDING_WINDOW


def test_gemma2_mistaken_conventions_do_not_match(transformers, monkeypatch):
    # the slips `attncli check` names: the window S (not S − 1), 1/√d_head in place of the
    # scalar's 24**-0.5, no cap: each far from Gemma 2's weights
    attention, call, _ = _run(transformers, monkeypatch, 0)
    problem = Problem.from_mapping(call.problem(), "gemma2.json")
    for config in (_config(attention, window=SLIDING_WINDOW),
                   _config(attention, window=SLIDING_WINDOW - 1).replace(scale=8 ** -0.5),
                   _config(attention, window=SLIDING_WINDOW - 1).replace(softcap=None)):
        weights = attend(problem, config)["weights"]
        assert np.abs(weights - call.weights).max() > 1e-3


def test_eager_attention_forward_on_given_tensors(transformers, monkeypatch):
    # Gemma 2's eager_attention_forward called directly on random queries, keys and values
    # (H = 4 query heads, G = 2 KV heads, d = 8) with its own additive sliding-window mask
    # (0 where |i − j| ≤ S − 1 and j ≤ i, −∞ elsewhere)
    import torch
    from transformers.models.gemma2 import modeling_gemma2

    float64_softmax(monkeypatch)
    generator = torch.Generator().manual_seed(1)
    q = torch.randn(1, 4, N_TOKENS, 8, generator=generator, dtype=torch.float64) * 6
    k = torch.randn(1, 2, N_TOKENS, 8, generator=generator, dtype=torch.float64) * 6
    v = torch.randn(1, 2, N_TOKENS, 8, generator=generator, dtype=torch.float64)
    i, j = torch.arange(N_TOKENS)[:, None], torch.arange(N_TOKENS)[None, :]
    allowed = (j <= i) & (i - j < SLIDING_WINDOW)
    additive = torch.where(allowed, 0.0, -torch.inf).to(torch.float64)[None, None]
    module = torch.nn.Module()
    module.num_key_value_groups, module.head_dim, module.training = 2, 8, False
    output, weights = modeling_gemma2.eager_attention_forward(
        module, q, k, v, additive, scaling=QUERY_PRE_ATTN_SCALAR ** -0.5, softcap=SOFTCAP)
    call = Call(q.numpy(), k.numpy(), v.numpy(), weights.numpy(), output.numpy(), {})
    trace = attend(Problem.from_mapping(call.problem(), "gemma2.json"),
                   AttentionConfig(heads=4, scale=QUERY_PRE_ATTN_SCALAR ** -0.5,
                                   softcap=SOFTCAP, causal=True, window=SLIDING_WINDOW - 1))
    np.testing.assert_allclose(trace["weights"], call.weights, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["context"], call.heads_side_by_side(
        output.numpy().transpose(0, 2, 1, 3)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("layer", "window"), [(0, SLIDING_WINDOW - 1), (1, None)])
def test_gemma2_whole_layer_from_its_input(transformers, monkeypatch, layer, window):
    # The whole layer from the attention module's input, with attncli's own projections,
    # GQA (--kv-heads 2) and RoPE (--rope, θ = 10000, half layout): Gemma 2's rotary
    # embedding computes cos and sin in float32 even in a float64 model (not redirected
    # here), so the agreement is at that level: 1e-6 (about 1e-7 measured).
    import torch

    model = _model(transformers)
    float64_softmax(monkeypatch)
    attention = model.layers[layer].self_attn
    ids = torch.arange(N_TOKENS).reshape(1, N_TOKENS) % 50
    seen = capture(model, attention, attention.o_proj,
                   lambda: model(input_ids=ids, output_attentions=True))
    arrays = {"x": seen.hidden, **{name: getattr(attention, proj).weight.detach().numpy().copy()
                                   for name, proj in (("W_q", "q_proj"), ("W_k", "k_proj"),
                                                      ("W_v", "v_proj"), ("W_o", "o_proj"))}}
    config = _config(attention, window=window).replace(kv_heads=2, rope=True)
    trace = attend(Problem.from_mapping(arrays, "gemma2.json"), config)
    np.testing.assert_allclose(trace["weights"], seen.weights, atol=1e-6)
    np.testing.assert_allclose(trace["context"], seen.context, atol=1e-6)
    np.testing.assert_allclose(trace["output"], seen.output, atol=1e-6)
