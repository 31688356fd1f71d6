"""Parity of --rope with transformers: the frequencies of ``ROPE_INIT_FUNCTIONS`` (default,
linear, llama3, yarn: transformers/modeling_rope_utils.py) and a tiny random Llama model's own
attention (transformers/models/llama/modeling_llama.py: rotate_half, GQA), float64.

transformers computes the RoPE frequencies, cos/sin and the softmax in float32 even in a
float64 model (``torch.float``, ``.float()``, ``softmax(dtype=torch.float32)``): here those
casts are redirected to float64 (:func:`float64_rope`, tests/transformers/eager.py's
float64_softmax), so that the comparisons hold at 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.attention.rope import check_scaling, frequencies
from attncli.problem import Problem
from tests.transformers.conftest import capture
from tests.transformers.eager import float64_softmax, record_eager

HEAD_DIM = 8
SCALINGS = {
    "default": {"rope_type": "default"},
    "linear": {"rope_type": "linear", "factor": 4.0},
    # original_max_position_embeddings small enough that the low, medium and high
    # frequencies of an 8-dim head all occur (wavelengths 6.3 … 2·π·10000^(3/4) = 6283)
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 256},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256},
}


def float64_rope(monkeypatch) -> None:
    """Redirect transformers' float32 RoPE to float64: ``torch.float`` (the dtype its
    frequency functions cast to), ``torch.float32`` (yarn's ramp) and ``Tensor.float()``
    (the rotary embedding's forward). Only Python code that names them sees the change."""
    import torch

    monkeypatch.setattr(torch, "float", torch.float64)
    monkeypatch.setattr(torch, "float32", torch.float64)
    monkeypatch.setattr(torch.Tensor, "float", lambda self, *args, **kwargs: self.double())


def _llama_config(transformers, scaling: dict, heads: int = 4, kv_heads: int = 2):
    return transformers.LlamaConfig(
        vocab_size=50, hidden_size=heads * HEAD_DIM, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=HEAD_DIM,
        max_position_embeddings=8192, rope_parameters={"rope_theta": 10000.0, **scaling},
        attn_implementation="eager")


@pytest.mark.parametrize("name", list(SCALINGS))
def test_frequencies_match_rope_init_functions(transformers, monkeypatch, name):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    float64_rope(monkeypatch)
    config = _llama_config(transformers, SCALINGS[name])
    init = ROPE_INIT_FUNCTIONS.get(name, LlamaRotaryEmbedding.compute_default_rope_parameters)
    inv_freq, attention_factor = init(config)
    ours = frequencies(HEAD_DIM, 10000.0, check_scaling(SCALINGS[name], "test: rope_scaling",
                                                        None))
    assert inv_freq.dtype == __import__("torch").float64
    np.testing.assert_allclose(ours.inv_freq, inv_freq.numpy(), rtol=1e-13, atol=0)
    assert ours.attention_factor == pytest.approx(attention_factor, rel=1e-15)
    if name == "yarn":  # 0.1·ln(4) + 1: YaRN's mscale multiplies cos and sin
        assert ours.attention_factor == pytest.approx(1.1386294361119891, rel=1e-15)
    if name == "llama3":  # low frequencies divided by 8, the highest kept
        assert ours.inv_freq[0] == 1.0
        assert ours.inv_freq[-1] == pytest.approx(10000 ** -0.75 / 8, rel=1e-15)


def _run(transformers, monkeypatch, scaling: dict, positions: np.ndarray | None):
    import torch
    from transformers.models.llama import modeling_llama

    float64_rope(monkeypatch)
    float64_softmax(monkeypatch)
    torch.manual_seed(0)
    model = transformers.LlamaModel(_llama_config(transformers, scaling)).to(torch.float64).eval()
    calls = record_eager(monkeypatch, modeling_llama)
    n = 6
    ids = torch.arange(n).reshape(1, n) % 50
    kwargs = {} if positions is None else {"position_ids": torch.as_tensor(positions)[None]}
    attention = model.layers[0].self_attn
    seen = capture(model, attention, attention.o_proj,
                   lambda: model(input_ids=ids, **kwargs))
    arrays = {"x": seen.hidden, "weight_layout": "out_in"}
    for key, linear in (("W_q", attention.q_proj), ("W_k", attention.k_proj),
                        ("W_v", attention.v_proj), ("W_o", attention.o_proj)):
        arrays[key] = linear.weight.detach().numpy().copy()  # (out, in)
    if positions is not None:
        arrays["positions"] = arrays["key_positions"] = positions.tolist()
    if scaling["rope_type"] != "default":
        arrays["rope_scaling"] = scaling
    return calls[0], seen, arrays


@pytest.mark.parametrize(("name", "positions"), [
    ("default", None),
    ("linear", np.arange(100, 106)),
    ("llama3", np.arange(4090, 4096)),  # Llama 3's scaling past 4000
    ("yarn", np.arange(2000, 2006)),
])
def test_llama_layer_parity(transformers, monkeypatch, name, positions):
    call, seen, arrays = _run(transformers, monkeypatch, SCALINGS[name], positions)
    trace = attend(Problem.from_mapping(arrays, "llama.json"),
                   AttentionConfig(heads=4, kv_heads=2, rope=True, causal=True))
    # the queries and keys Llama's eager attention received: projected, then rotated
    np.testing.assert_allclose(trace["rotated_queries"], call.queries, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["rotated_keys"], call.keys, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["weights"], seen.weights, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["context"], seen.context, rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["output"], seen.output, rtol=0, atol=1e-10)
    # the rotation matters: without it the weights differ by far more than the tolerance
    plain = attend(Problem.from_mapping({k: v for k, v in arrays.items() if k not in (
        "positions", "key_positions", "rope_scaling")}, "llama.json"),
        AttentionConfig(heads=4, kv_heads=2, causal=True))
    assert np.abs(plain["weights"] - seen.weights).max() > 1e-3


def test_llama_one_query_row_uses_its_own_position(transformers, monkeypatch):
    """--query 4: the row alone, rotated by position 4 (context.first), as in the whole run."""
    call, seen, arrays = _run(transformers, monkeypatch, SCALINGS["default"], None)
    trace = attend(Problem.from_mapping(arrays, "llama.json"),
                   AttentionConfig(heads=4, kv_heads=2, rope=True, causal=True), query=4)
    assert trace.run.path == "one query row"
    np.testing.assert_allclose(trace["rotated_queries"], call.queries[:, :, 4:5], rtol=0,
                               atol=1e-10)
    np.testing.assert_allclose(trace["weights"], seen.weights[:, :, 4:5], rtol=0, atol=1e-10)
    np.testing.assert_allclose(trace["output"], seen.output[:, 4:5], rtol=0, atol=1e-10)


def test_gptj_interleaved_partial_rotation(transformers, monkeypatch):
    """--rope-layout interleaved --rotary-dim 4 on 8-dim heads is GPT-J's rotation
    (transformers/models/gptj/modeling_gptj.py: create_sinusoidal_positions,
    apply_rotary_pos_emb on the first rotary_dim dims, the rest passed through), float64."""
    import torch
    from transformers.models.gptj import modeling_gptj

    float64_rope(monkeypatch)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # its int64 / int division takes the default dtype
    try:
        sincos = modeling_gptj.create_sinusoidal_positions(16, 4)  # (positions, R)
    finally:
        torch.set_default_dtype(default)
    assert sincos.dtype == torch.float64
    rng = np.random.default_rng(3)
    heads, n, d = 2, 5, 8
    x = rng.normal(size=(n, heads * d))
    positions = np.array([0, 3, 7, 11, 15])
    sin, cos = torch.split(sincos[torch.as_tensor(positions)][None], 2, dim=-1)  # (1, n, R/2)
    q = torch.as_tensor(x).reshape(1, n, heads, d)  # GPT-J's (B, n, H, d)
    expected = torch.cat([modeling_gptj.apply_rotary_pos_emb(q[..., :4], sin, cos), q[..., 4:]],
                         dim=-1).permute(0, 2, 1, 3).numpy()[0]  # (H, n, d)
    trace = attend(Problem.from_mapping({"x": x, "positions": positions.tolist(),
                                         "key_positions": positions.tolist()}, "gptj.json"),
                   AttentionConfig(project=False, heads=heads, rope=True,
                                   rope_layout="interleaved", rotary_dim=4))
    np.testing.assert_allclose(trace["rotated_queries"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace["rotated_keys"], expected, rtol=0, atol=1e-12)
