"""Parity of the problem key ``sinks`` with gpt-oss (transformers/models/gpt_oss/
modeling_gpt_oss.py): its ``eager_attention_forward`` called directly on given queries, keys
and values, and a tiny random GptOssModel's own layers (RoPE, grouped-query attention with
4 query heads and 2 KV heads, biases, a full-attention layer and a sliding-window layer), in
float64.

gpt-oss's eager attention computes its softmax in the logits' own dtype (float64 here); its
RoPE cos/sin are float32 even in a float64 model, so :func:`float64_rope` redirects those
casts to float64 and the comparisons hold at 1e-10. transformers returns the weights without
the sink's column: the sink's share of a row is 1 − Σ_j weights_ij there.
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.problem import Problem
from tests.transformers.conftest import capture

HEADS, KV_HEADS, HEAD_DIM, N = 4, 2, 8, 6
SLIDING_WINDOW = 3  # Hugging Face's: 3 keys, the query's own included = --causal --window 2


def float64_rope(monkeypatch) -> None:
    """transformers' RoPE cos/sin in float64 instead of float32: ``torch.float`` and
    ``Tensor.float()`` redirected (as tests/transformers/test_rope.py does)."""
    import torch

    monkeypatch.setattr(torch, "float", torch.float64)
    monkeypatch.setattr(torch, "float32", torch.float64)
    monkeypatch.setattr(torch.Tensor, "float", lambda self, *args, **kwargs: self.double())


def test_eager_attention_forward_on_given_tensors(transformers):
    """gpt-oss's eager_attention_forward on random queries (1, 4, 6, 8) and keys/values of
    2 KV heads with a causal additive mask, against attncli given the same tensors side by
    side (x = the queries, key_memory and value_memory = the KV heads repeated as repeat_kv
    does) and the same sinks: weights, sink_weights and the attention output."""
    import torch
    from transformers.models.gpt_oss import modeling_gpt_oss

    generator = torch.Generator().manual_seed(1)
    queries = torch.randn(1, HEADS, N, HEAD_DIM, generator=generator, dtype=torch.float64)
    keys = torch.randn(1, KV_HEADS, N, HEAD_DIM, generator=generator, dtype=torch.float64)
    values = torch.randn(1, KV_HEADS, N, HEAD_DIM, generator=generator, dtype=torch.float64)
    sinks = torch.tensor([-1.0, 0.0, 1.5, 3.0], dtype=torch.float64)
    min_value = torch.finfo(torch.float64).min
    mask = torch.triu(torch.full((N, N), min_value, dtype=torch.float64), diagonal=1)[None, None]
    module = torch.nn.Module()
    module.num_key_value_groups, module.training, module.sinks = HEADS // KV_HEADS, False, sinks
    output, weights = modeling_gpt_oss.eager_attention_forward(
        module, queries, keys, values, mask, scaling=HEAD_DIM ** -0.5)

    def side_by_side(t):  # (1, heads, n, d) → (1, n, H·d), KV heads repeated (repeat_kv)
        t = torch.repeat_interleave(t, HEADS // t.shape[1], dim=1)
        return t.transpose(1, 2).reshape(1, N, HEADS * HEAD_DIM).numpy()

    problem = Problem.from_mapping({"x": side_by_side(queries), "key_memory": side_by_side(keys),
                                    "value_memory": side_by_side(values),
                                    "sinks": sinks.numpy()}, "gpt_oss.json")
    trace = attend(problem, AttentionConfig(heads=HEADS, causal=True, scale=HEAD_DIM ** -0.5))
    weights = weights.numpy()
    np.testing.assert_allclose(trace["weights"], weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace["sink_weights"], 1.0 - weights.sum(-1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace["context"], output.reshape(1, N, HEADS * HEAD_DIM).numpy(),
                               rtol=0, atol=1e-12)
    # the first query sees one key: the sink with logit 3 takes most of head 3's row
    assert trace["sink_weights"][0, 3, 0] > 0.5
    assert np.all(trace["weights"].sum(-1) < 1.0)


def _model(transformers, monkeypatch):
    import torch

    float64_rope(monkeypatch)
    torch.manual_seed(0)
    config = transformers.GptOssConfig(
        vocab_size=50, hidden_size=32, intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
        num_local_experts=2, num_experts_per_tok=1, sliding_window=SLIDING_WINDOW,
        layer_types=["full_attention", "sliding_attention"],
        rope_parameters={"rope_type": "default", "rope_theta": 150000.0},
        attn_implementation="eager", experts_implementation="eager")  # grouped_mm: no float64
    model = transformers.GptOssModel(config).to(torch.float64).eval()
    with torch.no_grad():  # sinks that matter: some rows give the sink most of their mass
        for layer in model.layers:
            layer.self_attn.sinks.copy_(torch.tensor([-2.0, 0.0, 1.0, 3.0]))
    return model


@pytest.mark.parametrize(("layer", "window"), [(0, None), (1, SLIDING_WINDOW - 1)])
def test_gpt_oss_layer_parity(transformers, monkeypatch, layer, window):
    """Each layer's weights, sink share, context and output from attncli with the layer's own
    W_q … b_o (out_in), sinks, --kv-heads 2 --rope --rope-theta 150000 --causal, and on the
    sliding layer --window 2 (sliding_window 3 keeps 3 keys, the query's own included)."""
    import torch

    model = _model(transformers, monkeypatch)
    attention = model.layers[layer].self_attn
    ids = torch.arange(N).reshape(1, N) % 50
    seen = capture(model, attention, attention.o_proj,
                   lambda: model(input_ids=ids, output_attentions=True))
    arrays = {"x": seen.hidden, "weight_layout": "out_in",
              "sinks": attention.sinks.detach().numpy().copy()}
    for name, linear in (("q", attention.q_proj), ("k", attention.k_proj),
                         ("v", attention.v_proj), ("o", attention.o_proj)):
        arrays[f"W_{name}"] = linear.weight.detach().numpy().copy()  # (out, in)
        arrays[f"b_{name}"] = linear.bias.detach().numpy().copy()
    config = AttentionConfig(heads=HEADS, kv_heads=KV_HEADS, rope=True, rope_theta=150000.0,
                             causal=True, window=window)
    trace = attend(Problem.from_mapping(arrays, "gpt_oss.json"), config)
    np.testing.assert_allclose(trace["weights"], seen.weights, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["sink_weights"], 1.0 - seen.weights.sum(-1), rtol=0,
                               atol=1e-10)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=0, atol=1e-10)
    # the sinks matter: without them the weights differ by far more than the tolerance
    plain = attend(Problem.from_mapping({k: v for k, v in arrays.items() if k != "sinks"},
                                        "gpt_oss.json"), config)
    assert np.abs(plain["weights"] - seen.weights).max() > 0.1
    # one --query row alone gives the same row (blocks: tests/attention/test_sinks.py)
    row = attend(Problem.from_mapping(arrays, "gpt_oss.json"), config, query=4)
    assert row.run.path == "one query row"
    np.testing.assert_allclose(row["sink_weights"][0, :, 0],  # (B, H, 1 row)
                               1.0 - seen.weights[0, :, 4].sum(-1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(row["output"][0, 0], seen.output[0, 4], rtol=0, atol=1e-10)
