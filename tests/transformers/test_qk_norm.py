"""Parity with the QK-norm of Qwen3 (transformers/models/qwen3/modeling_qwen3.py: an RMSNorm of
each head's head_dim numbers, q_norm and k_norm of shape (head_dim,)) and of OLMo2
(transformers/models/olmo2/modeling_olmo2.py: an RMSNorm over the whole projection, q_norm
(H·head_dim,) and k_norm (G·head_dim,), before the split into heads), on tiny random models in
float64 with G < H KV heads.

Two comparisons per family:
- the norm stage alone: attncli's normed_queries and normed_keys against what the model's own
  q_norm and k_norm modules return (forward hooks), from the same x and weights;
- the whole layer (--qk-norm with --rope and --kv-heads, as the family runs it): weights, context
  (the input of o_proj) and output (o_proj's result).

Both at 1e-10: transformers computes RMSNorm, the RoPE frequencies and cos/sin, and the softmax
in float32 even in a float64 model; the test hands the modeling module a ``torch`` whose float32
(and ``torch.float``) is float64 (:class:`Float64Torch`), so those casts stay in float64. Nothing
else of the model's code is changed.
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.problem import Problem
from tests.transformers.conftest import capture, linear_in_out

N_TOKENS = 6
HEADS, KV_HEADS, HEAD_DIM = 4, 2, 8


class Float64Torch:
    """torch, as a modeling module sees it, with ``float32`` and ``float`` read as float64:
    the float32 casts of RMSNorm (``.to(torch.float32)``), RoPE (``dtype=torch.float``) and the
    softmax (``dtype=torch.float32``) keep a float64 model in float64."""

    def __init__(self, torch):
        self._torch = torch

    def __getattr__(self, name):
        if name in ("float32", "float"):
            return self._torch.float64
        return getattr(self._torch, name)


FAMILIES = {
    # family: (config class, model class, modeling module, --qk-norm)
    "qwen3": ("Qwen3Config", "Qwen3Model", "qwen3", "per-head"),
    "olmo2": ("Olmo2Config", "Olmo2Model", "olmo2", "whole"),
}


def _model(transformers, monkeypatch, family: str):
    import importlib

    import torch

    config_name, model_name, module_name, _ = FAMILIES[family]
    module = importlib.import_module(f"transformers.models.{module_name}.modeling_{module_name}")
    monkeypatch.setattr(module, "torch", Float64Torch(torch))  # before the RoPE buffers are made
    torch.manual_seed(0)
    config = getattr(transformers, config_name)(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
        rms_norm_eps=1e-6, attn_implementation="eager")
    model = getattr(transformers, model_name)(config).to(torch.float64).eval()
    attention = model.layers[0].self_attn
    with torch.no_grad():  # random norm weights (they start at 1), so that w is seen
        attention.q_norm.weight.copy_(torch.rand_like(attention.q_norm.weight) + 0.5)
        attention.k_norm.weight.copy_(torch.rand_like(attention.k_norm.weight) + 0.5)
    return model, attention


def _heads(array: np.ndarray, heads: int) -> np.ndarray:
    """(B, n, heads·d) or (B, n, heads, d) → (B, heads, n, d)."""
    B, n = array.shape[:2]
    return array.reshape(B, n, heads, HEAD_DIM).transpose(0, 2, 1, 3)


def _run(transformers, monkeypatch, family):
    """The model's forward pass: its attention's input, its q_norm and k_norm outputs, the
    layer's weights, context and output; and attncli's problem of the same layer."""
    import torch

    model, attention = _model(transformers, monkeypatch, family)
    normed = {}

    def hook(name):
        def on_norm(module, args, output):
            normed[name] = output.detach().numpy().copy()
        return on_norm

    handles = [attention.q_norm.register_forward_hook(hook("q")),
               attention.k_norm.register_forward_hook(hook("k"))]
    ids = torch.arange(N_TOKENS).reshape(1, N_TOKENS) * 7 % 50
    try:
        seen = capture(model, attention, attention.o_proj,
                       lambda: model(input_ids=ids, output_attentions=True))
    finally:
        for handle in handles:
            handle.remove()
    arrays = {"x": seen.hidden, "W_q": linear_in_out(attention.q_proj),
              "W_k": linear_in_out(attention.k_proj), "W_v": linear_in_out(attention.v_proj),
              "W_o": linear_in_out(attention.o_proj),
              "q_norm": attention.q_norm.weight.detach().numpy().copy(),
              "k_norm": attention.k_norm.weight.detach().numpy().copy()}
    return Problem.from_mapping(arrays, f"{family}.json"), normed, seen, attention


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_norm_stage_matches_the_family_norm(transformers, monkeypatch, family):
    problem, normed, _, attention = _run(transformers, monkeypatch, family)
    mode = FAMILIES[family][3]
    assert problem["q_norm"].shape == ((HEAD_DIM,) if mode == "per-head" else (HEADS * HEAD_DIM,))
    assert problem["k_norm"].shape == ((HEAD_DIM,) if mode == "per-head"
                                       else (KV_HEADS * HEAD_DIM,))
    trace = attend(problem, AttentionConfig(heads=HEADS, kv_heads=KV_HEADS, qk_norm=mode,
                                            qk_norm_eps=attention.q_norm.variance_epsilon),
                   steps=["normed_queries", "normed_keys"])
    np.testing.assert_allclose(trace["normed_queries"], _heads(normed["q"], HEADS),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(trace["normed_keys"], _heads(normed["k"], KV_HEADS),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_layer_parity(transformers, monkeypatch, family):
    problem, _, seen, attention = _run(transformers, monkeypatch, family)
    config = AttentionConfig(heads=HEADS, kv_heads=KV_HEADS, qk_norm=FAMILIES[family][3],
                             qk_norm_eps=attention.q_norm.variance_epsilon, rope=True,
                             rope_theta=float(attention.config.rope_parameters["rope_theta"]),
                             causal=True)
    trace = attend(problem, config)
    assert trace.names()[:4] == ["queries", "keys", "normed_queries", "normed_keys"]
    assert trace.names().index("normed_keys") < trace.names().index("rotated_queries")
    np.testing.assert_allclose(trace["weights"], seen.weights, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=1e-10, atol=1e-13)
