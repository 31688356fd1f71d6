"""Grouped-query and multi-query attention against a tiny random Llama layer's own eager
attention (transformers/models/llama/modeling_llama.py: k_proj, v_proj of G·d_head columns,
repeat_kv, rotate_half RoPE), float64, with num_attention_heads = 4 and num_key_value_heads =
4, 2 and 1. attncli gets the layer's input and its four nn.Linear weights as stored (out, in:
--weight-layout out_in) with --heads 4 --kv-heads G --rope --causal.

transformers computes cos/sin and the softmax in float32 even in a float64 model: those casts
are redirected to float64 (tests/transformers/test_rope.py's float64_rope, eager.py's
float64_softmax), so that the comparisons hold at 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.config import Backend
from attncli.problem import Problem
from tests.transformers.conftest import capture
from tests.transformers.eager import float64_softmax, record_eager
from tests.transformers.test_rope import float64_rope

HEADS, HEAD_DIM, N = 4, 8, 7
TOL = 1e-10


def llama_layer(transformers, monkeypatch, kv_heads: int, batch: int = 1):
    """A 1-layer LlamaModel's first attention: what its eager attention received (the call),
    the captured input, weights, context and output, and attncli's arrays."""
    import torch
    from transformers.models.llama import modeling_llama

    float64_rope(monkeypatch)
    float64_softmax(monkeypatch)
    torch.manual_seed(kv_heads)
    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=HEADS * HEAD_DIM, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=HEADS, num_key_value_heads=kv_heads, head_dim=HEAD_DIM,
        attention_bias=True,  # b_k, b_v of G·d_head numbers (Qwen2 and others use them)
        attn_implementation="eager")
    model = transformers.LlamaModel(config).to(torch.float64).eval()
    calls = record_eager(monkeypatch, modeling_llama)
    ids = (torch.arange(batch * N).reshape(batch, N) * 7) % 50
    attention = model.layers[0].self_attn
    seen = capture(model, attention, attention.o_proj, lambda: model(input_ids=ids))
    arrays = {"x": seen.hidden if batch > 1 else seen.hidden[0], "weight_layout": "out_in"}
    for name, linear in (("q", attention.q_proj), ("k", attention.k_proj),
                         ("v", attention.v_proj), ("o", attention.o_proj)):
        arrays[f"W_{name}"] = linear.weight.detach().numpy().copy()  # (out, in)
        arrays[f"b_{name}"] = linear.bias.detach().numpy().copy()
    return calls[0], seen, arrays


def config(kv_heads: int, **more) -> AttentionConfig:
    return AttentionConfig(heads=HEADS, kv_heads=kv_heads, rope=True, causal=True, **more)


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
def test_llama_layer_parity(transformers, monkeypatch, kv_heads, backend):
    call, seen, arrays = llama_layer(transformers, monkeypatch, kv_heads)
    trace = attend(Problem.from_mapping(arrays, "llama.json"), config(kv_heads, backend=backend))
    # keys and values with their G heads, as Llama has them before repeat_kv
    assert trace["keys"].shape == trace["values"].shape == (kv_heads, N, HEAD_DIM)
    np.testing.assert_allclose(trace["rotated_keys"], call.keys[0], rtol=0, atol=TOL)
    np.testing.assert_allclose(trace["values"], call.values[0], rtol=0, atol=TOL)
    np.testing.assert_allclose(trace["rotated_queries"], call.queries[0], rtol=0, atol=TOL)
    np.testing.assert_allclose(trace["weights"], seen.weights[0], rtol=0, atol=TOL)
    np.testing.assert_allclose(trace["context"], seen.context[0], rtol=0, atol=TOL)
    np.testing.assert_allclose(trace["output"], seen.output[0], rtol=0, atol=TOL)
    if kv_heads < HEADS:  # the grouping matters: h mod G gives other weights
        per = HEADS // kv_heads
        assert trace.conventions["kv_heads"].startswith(
            f"{'multi' if kv_heads == 1 else 'grouped'}-query attention: {kv_heads} key/value")
        assert f"⌊h / {per}⌋" in trace.conventions["kv_heads"]


@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
def test_llama_batch_query_blocks_and_one_row(transformers, monkeypatch, backend):
    """Two sequences; --steps output (query blocks, or torch's fused SDPA where it applies);
    one --query row alone."""
    _, seen, arrays = llama_layer(transformers, monkeypatch, 2, batch=2)
    problem = Problem.from_mapping(arrays, "llama.json")
    fast = attend(problem, config(2, backend=backend), steps=["output"])
    np.testing.assert_allclose(fast["output"], seen.output, rtol=0, atol=TOL)
    row = attend(problem, config(2, backend=backend), query=5)
    assert row.run.path == "one query row"
    np.testing.assert_allclose(row["weights"][:, :, 0], seen.weights[:, :, 5], rtol=0, atol=TOL)
    np.testing.assert_allclose(row["output"][:, 0], seen.output[:, 5], rtol=0, atol=TOL)
