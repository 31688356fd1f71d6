"""Parity with Mistral's own attention (transformers/models/mistral/modeling_mistral.py) on a
tiny random MistralConfig model in float64: its sliding window. Hugging Face's
``sliding_window = S`` keeps S keys, the query's own included (masking_utils'
``sliding_window_overlay``: kv_idx > q_idx − S), so it is attncli's --causal --window S−1
(|i − j| ≤ S − 1). Transformers itself was off by one here once (transformers #29623), as was
vLLM (vllm #3385).

Compared: the layer's weights, context (the input of o_proj) and output (o_proj's result), at
1e-10, with transformers' float32 softmax kept in float64 (tests/transformers/eager.py).

Mistral also rotates the queries and keys (RoPE) and groups the keys and values (GQA): attncli
is given the queries, keys and values as Mistral's own ``eager_attention_forward`` receives them
(projected and rotated by the model; the G KV heads repeated as ``repeat_kv`` does) as x,
key_memory and value_memory, with o_proj's weight as W_o; the scale 1/√d_head, the mask, the
softmax, the weighted sum and the output projection are attncli's.
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.problem import Problem
from tests.transformers.conftest import capture
from tests.transformers.eager import float64_softmax, record_eager

N_TOKENS = 8
SLIDING_WINDOW = 3  # S: 3 keys, the query's own included


def _run(transformers, monkeypatch):
    import torch
    from transformers.models.mistral import modeling_mistral

    torch.manual_seed(0)
    config = transformers.MistralConfig(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, sliding_window=SLIDING_WINDOW,
        attn_implementation="eager")
    model = transformers.MistralModel(config).to(torch.float64).eval()
    with torch.no_grad():  # scores of several units: weights far from uniform
        model.layers[0].self_attn.q_proj.weight.mul_(30.0)
        model.layers[0].self_attn.k_proj.weight.mul_(30.0)
    float64_softmax(monkeypatch)
    calls = record_eager(monkeypatch, modeling_mistral)
    attention = model.layers[0].self_attn
    ids = torch.arange(N_TOKENS).reshape(1, N_TOKENS) % 50
    seen = capture(model, attention, attention.o_proj, lambda: model(input_ids=ids))
    return attention, calls[0], seen


def test_mistral_sliding_window_parity(transformers, monkeypatch):
    attention, call, seen = _run(transformers, monkeypatch)
    assert call.kwargs["sliding_window"] == SLIDING_WINDOW
    arrays = call.problem()
    arrays["W_o"] = attention.o_proj.weight.detach().numpy().copy()  # (d_model, H·d): out_in
    # scaled_dot named: without W_q, W_k attncli's default score is the unscaled dot product
    config = AttentionConfig(heads=4, score="scaled_dot", causal=True,
                             window=SLIDING_WINDOW - 1, weight_layout="out_in")
    trace = attend(Problem.from_mapping(arrays, "mistral.json"), config)
    # scaled_dot: 1/√d_head, d_head = 16 / 4 = 4, as Mistral's scaling = head_dim**-0.5
    assert trace.run.scale == pytest.approx(0.5, rel=1e-15) == call.kwargs["scaling"]
    np.testing.assert_allclose(trace["weights"], call.weights, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=1e-10, atol=1e-12)
    # row 7 attends keys 5, 6, 7 only (S = 3 keys), in each of the 4 heads
    assert (np.flatnonzero(call.weights[0, 0, 7]) == [5, 6, 7]).all()
    assert np.count_nonzero(call.weights[0, :, 7]) == 4 * SLIDING_WINDOW


def test_mistral_window_off_by_one_does_not_match(transformers, monkeypatch):
    # --window S keeps S + 1 keys (the off-by-one of transformers #29623 and vllm #3385)
    _, call, _ = _run(transformers, monkeypatch)
    config = AttentionConfig(heads=4, score="scaled_dot", causal=True, window=SLIDING_WINDOW)
    weights = attend(Problem.from_mapping(call.problem(), "mistral.json"), config)["weights"]
    assert np.count_nonzero(weights[0, :, 7]) == 4 * (SLIDING_WINDOW + 1)
    assert np.abs(weights - call.weights).max() > 1e-3
