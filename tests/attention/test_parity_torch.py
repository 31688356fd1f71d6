"""Parity with PyTorch, the numerical reference.

* torch.nn.functional.scaled_dot_product_attention: plain, causal (both alignments), boolean
  attn_mask (fully masked rows included), custom scale;
* torch.nn.MultiheadAttention: 1, 2 and 4 heads, with and without bias, unbatched, batch_first
  and sequence-first, self- and cross-attention, separate key and value sequences (kdim ≠
  vdim), key_padding_mask, attn_mask, per-head and averaged weights, the output projection;
  weights taken as stored (out_in), transposed (in_out) and split per head (3-D);
* torch.nn.Dropout: the torch backend's mask is torch's after torch.manual_seed(seed);
* the numpy and torch backends agree on every step of every variant;
* softmax stays finite for scores of ±1e4.

Everything runs in float64 with rtol = atol = 1e-10 unless a test says otherwise. Inputs are random
(numpy default_rng with fixed seeds), of sizes where a wrong axis or a wrong transpose shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from attncli import attend
from attncli.config import (
    AttentionConfig,
    Backend,
    CausalAlign,
    DType,
    Layout,
    Normalize,
    Score,
)
from attncli.problem import Problem

TOL = 1e-10
BACKENDS = [Backend.numpy, Backend.torch]


# --------------------------------------------------------------------------------------------
# helpers


def run(arrays: dict, backend: Backend = Backend.numpy, **fields):
    """attend() on a problem built from ``arrays`` (numpy arrays or lists)."""
    return attend(Problem.from_mapping(arrays, "test"), AttentionConfig(backend=backend, **fields))


def close(actual, expected, rtol: float = TOL, atol: float = TOL) -> None:
    """Same shape and close values; ``expected`` may be a torch tensor."""
    if hasattr(expected, "detach"):
        expected = expected.detach().cpu().numpy()
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def tensor(torch, array):
    return torch.as_tensor(np.asarray(array), dtype=torch.float64)


def split_heads(m, heads: int):
    """(..., seq, H·d) → (..., H, seq, d); head h owns columns h·d … (h+1)·d − 1."""
    *lead, seq, width = m.shape
    return m.reshape(*lead, seq, heads, width // heads).transpose(-3, -2)


def merge_heads(m):
    """(..., H, seq, d) → (..., seq, H·d)."""
    return m.transpose(-3, -2).flatten(-2)


def drop_single_head(m, heads: int):
    """attncli leaves the head axis out when H = 1."""
    return m.squeeze(-3) if heads == 1 else m


def projected(seed: int, *, seq_q: int = 4, seq_k: int | None = None, d_in: int = 6,
              d_mem: int = 5, heads: int = 2, d_head: int = 3, batch: int | None = None,
              bias: bool = True) -> dict:
    """A random problem with W_q, W_k, W_v (in_out) and biases; cross-attention when seq_k."""
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    arrays = {"x": rng.normal(size=(*lead, seq_q, d_in))}
    d_src = d_in
    if seq_k is not None:
        arrays["memory"] = rng.normal(size=(*lead, seq_k, d_mem))
        d_src = d_mem
    for name, d_from in (("q", d_in), ("k", d_src), ("v", d_src)):
        arrays[f"W_{name}"] = rng.normal(size=(d_from, heads * d_head)) / math.sqrt(d_from)
        if bias:
            arrays[f"b_{name}"] = rng.normal(size=heads * d_head) * 0.5
    return arrays


def torch_qkv(torch, arrays: dict, heads: int):
    """Q, K, V computed in torch from the in_out weights: (..., H, seq, d_head) each."""
    x = tensor(torch, arrays["x"])
    source = tensor(torch, arrays.get("memory", arrays["x"]))
    out = []
    for name, inp in (("q", x), ("k", source), ("v", source)):
        m = inp @ tensor(torch, arrays[f"W_{name}"])
        if f"b_{name}" in arrays:
            m = m + tensor(torch, arrays[f"b_{name}"])
        out.append(split_heads(m, heads))
    return out


def reference_weights(torch, q, k, scale: float, allowed=None):
    """softmax(q kᵀ · scale) with −∞ where not allowed; fully masked rows → 0 (safe softmax)."""
    s = (q @ k.transpose(-2, -1)) * scale
    if allowed is not None:
        s = s.masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, dim=-1).nan_to_num(0.0)


def some_true_per_row(rng, shape, p_true: float = 0.6) -> np.ndarray:
    """A random boolean mask whose every row (last axis) has at least one True."""
    mask = rng.random(shape) < p_true
    rows = mask.reshape(-1, shape[-1])
    rows[np.arange(rows.shape[0]), rng.integers(0, shape[-1], rows.shape[0])] = True
    return rows.reshape(shape)


# --------------------------------------------------------------------------------------------
# 1. torch.nn.functional.scaled_dot_product_attention


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [1, 2, 3])
@pytest.mark.parametrize("batch", [None, 2])
@pytest.mark.parametrize("seq_k", [None, 6], ids=["self", "cross"])
def test_sdpa_plain(torch, backend, heads, batch, seq_k):
    arrays = projected(10 + heads, heads=heads, batch=batch, seq_k=seq_k)
    q, k, v = torch_qkv(torch, arrays, heads)
    trace = run(arrays, backend, heads=heads)

    close(trace["queries"], drop_single_head(q, heads))
    close(trace["keys"], drop_single_head(k, heads))
    close(trace["values"], drop_single_head(v, heads))
    close(trace["weights"], drop_single_head(reference_weights(torch, q, k, 1 / math.sqrt(3)),
                                             heads))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    close(trace["context"], merge_heads(expected))
    if heads > 1:
        close(trace["head_context"], expected)
    assert trace.run.scale == pytest.approx(1 / math.sqrt(3), rel=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seq_q, seq_k", [(5, None), (3, 6), (6, 3)],
                         ids=["square", "wide", "tall"])
def test_sdpa_is_causal_top_left(torch, backend, seq_q, seq_k):
    arrays = projected(20 + seq_q, seq_q=seq_q, seq_k=seq_k, heads=2)
    q, k, v = torch_qkv(torch, arrays, 2)
    L, S = q.shape[-2], k.shape[-2]
    trace = run(arrays, backend, heads=2, causal=True)  # top-left is the default, as in torch

    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    close(trace["context"], merge_heads(expected))
    tril = torch.ones(L, S, dtype=torch.bool).tril()
    close(trace["weights"], reference_weights(torch, q, k, 1 / math.sqrt(3), tril))
    assert not trace["weights"][..., ~tril.numpy()].any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seq_q, seq_k", [(3, 6), (6, 3)], ids=["wide", "tall"])
def test_sdpa_causal_bottom_right(torch, backend, seq_q, seq_k):
    # torch.nn.attention.bias.causal_lower_right(L, S) is ones(L, S).tril(S − L). For L > S its
    # first L − S rows see no key: SDPA gives them zeros (checked here against torch itself).
    arrays = projected(30 + seq_q, seq_q=seq_q, seq_k=seq_k, heads=2)
    q, k, v = torch_qkv(torch, arrays, 2)
    lower_right = torch.ones(seq_q, seq_k, dtype=torch.bool).tril(seq_k - seq_q)
    trace = run(arrays, backend, heads=2, causal=True,
                causal_align=CausalAlign.bottom_right)

    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=lower_right)
    assert not expected.isnan().any()
    close(trace["context"], merge_heads(expected))
    close(trace["weights"], reference_weights(torch, q, k, 1 / math.sqrt(3), lower_right))
    empty_rows = max(seq_q - seq_k, 0)
    assert not trace["context"][:empty_rows].any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [1, 2])
def test_sdpa_boolean_attn_mask(torch, backend, heads):
    arrays = projected(40 + heads, seq_q=5, seq_k=7, heads=heads)
    mask = some_true_per_row(np.random.default_rng(41), (5, 7))
    q, k, v = torch_qkv(torch, arrays, heads)
    trace = run({**arrays, "mask": mask}, backend, heads=heads)

    allowed = torch.as_tensor(mask)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    close(trace["context"], merge_heads(expected))
    close(trace["weights"], drop_single_head(
        reference_weights(torch, q, k, 1 / math.sqrt(3), allowed), heads))
    assert np.isneginf(trace["masked_scores"][..., ~mask]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sdpa_batched_attn_mask_per_batch_element(torch, backend):
    arrays = projected(45, seq_q=4, seq_k=5, heads=2, batch=3)
    mask = some_true_per_row(np.random.default_rng(46), (3, 4, 5))
    q, k, v = torch_qkv(torch, arrays, 2)
    trace = run({**arrays, "mask": mask}, backend, heads=2)

    allowed = torch.as_tensor(mask).unsqueeze(1)  # (B, 1, L, S): the same for every head
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    close(trace["context"], merge_heads(expected))
    close(trace["weights"], reference_weights(torch, q, k, 1 / math.sqrt(3), allowed))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sdpa_batched_queries_with_one_shared_memory(torch, backend):
    # x (B, seq_q, d) with an unbatched memory (seq_k, d_mem): every batch element reads it.
    arrays = projected(47, seq_q=3, seq_k=5, heads=2, batch=2)
    arrays["memory"] = arrays["memory"][1]
    q, k, v = torch_qkv(torch, arrays, 2)
    trace = run(arrays, backend, heads=2, causal=True)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k.expand(2, -1, -1, -1), v.expand(2, -1, -1, -1), is_causal=True)
    close(trace["context"], merge_heads(expected))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sdpa_fully_masked_row_gives_zeros_like_torch(torch, backend):
    arrays = projected(50, seq_q=4, seq_k=5, heads=2)
    mask = some_true_per_row(np.random.default_rng(51), (4, 5))
    mask[2] = False
    q, k, v = torch_qkv(torch, arrays, 2)
    trace = run({**arrays, "mask": mask}, backend, heads=2)

    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.as_tensor(mask))
    # torch 2.13's SDPA (float64, CPU) returns exact zeros for a row with no key to attend to.
    assert not expected.isnan().any()
    assert (expected[..., 2, :] == 0).all()
    close(trace["context"], merge_heads(expected))
    assert (trace["weights"][:, 2] == 0).all()
    assert (trace["context"][2] == 0).all()
    assert not np.isnan(trace["weights"]).any()
    assert any("no key to attend to" in w for w in trace.warnings)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scale", [0.5, 2.0, 0.07])
@pytest.mark.parametrize("score", [None, Score.scaled_dot, Score.dot])
def test_sdpa_custom_scale(torch, backend, scale, score):
    arrays = projected(60, seq_q=4, seq_k=5, heads=2)
    q, k, v = torch_qkv(torch, arrays, 2)
    trace = run(arrays, backend, heads=2, scale=scale, score=score)

    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale)
    close(trace["context"], merge_heads(expected))
    close(trace["scaled_scores"], (q @ k.transpose(-2, -1)) * scale)
    close(trace["weights"], reference_weights(torch, q, k, scale))


# --------------------------------------------------------------------------------------------
# 2. torch.nn.MultiheadAttention


def make_mha(torch, embed: int, heads: int, *, bias: bool = True, batch_first: bool = False,
             kdim: int | None = None, seed: int = 0):
    """A float64 nn.MultiheadAttention with random weights and (unlike the default) non-zero
    biases, so that a missing or misplaced bias shows."""
    torch.manual_seed(seed)
    mha = torch.nn.MultiheadAttention(embed, heads, bias=bias, batch_first=batch_first,
                                      kdim=kdim, vdim=kdim, dtype=torch.float64)
    if bias:
        with torch.no_grad():
            mha.in_proj_bias.normal_()
            mha.out_proj.bias.normal_()
    return mha.eval()


def mha_arrays(mha, layout: str) -> tuple[dict, dict]:
    """The module's weights as problem keys, and the config fields that go with them.

    layout: 'out_in' as stored (in_proj_weight chunks, out_proj.weight); 'out_in_key' the same
    with the problem's weight_layout key instead of the config; 'in_out' transposed; 'per_head'
    3-D (H, d_in, d_head) in_out weights with (H, d_head) biases.
    """
    if mha.in_proj_weight is not None:
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    else:  # kdim ≠ embed_dim: separate projection weights
        w_q, w_k, w_v = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
    stored = {"W_q": w_q, "W_k": w_k, "W_v": w_v, "W_o": mha.out_proj.weight}
    if mha.in_proj_bias is not None:
        stored.update(zip(("b_q", "b_k", "b_v"), mha.in_proj_bias.chunk(3), strict=True))
        stored["b_o"] = mha.out_proj.bias
    arrays = {key: value.detach().numpy().copy() for key, value in stored.items()}
    H = mha.num_heads
    if layout == "out_in":
        return arrays, {"heads": H, "weight_layout": Layout.out_in}
    if layout == "out_in_key":
        return {**arrays, "weight_layout": "out_in"}, {"heads": H}
    for key in ("W_q", "W_k", "W_v", "W_o"):
        arrays[key] = arrays[key].T
    if layout == "in_out":
        return arrays, {"heads": H}
    assert layout == "per_head"
    for name in "qkv":
        W = arrays[f"W_{name}"]  # (d_from, H·d_head)
        arrays[f"W_{name}"] = W.reshape(W.shape[0], H, -1).transpose(1, 0, 2)
        if f"b_{name}" in arrays:
            arrays[f"b_{name}"] = arrays[f"b_{name}"].reshape(H, -1)
    return arrays, {}  # the heads come from the 3-D weights


def mha_forward(torch, mha, x, memory=None, *, average: bool = False, **masks):
    """(output, weights) of the module, batch axis first whatever batch_first says."""
    query = tensor(torch, x)
    kv = tensor(torch, x if memory is None else memory)
    seq_first = query.dim() == 3 and not mha.batch_first
    if seq_first:
        query, kv = query.transpose(0, 1), kv.transpose(0, 1)
    masks = {k: torch.as_tensor(v) for k, v in masks.items()}
    with torch.no_grad():
        out, weights = mha(query, kv, kv, need_weights=True, average_attn_weights=average,
                           **masks)
    return (out.transpose(0, 1) if seq_first else out), weights


FORMS = {  # name: (batch, batch_first)
    "unbatched": (None, False),
    "batch_first": (3, True),
    "seq_first": (2, False),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_mha_parity(torch, backend, heads, bias, form, cross, layout):
    batch, batch_first = FORMS[form]
    embed = 8
    mha = make_mha(torch, embed, heads, bias=bias, batch_first=batch_first, seed=heads)
    rng = np.random.default_rng(100 + heads)
    lead = () if batch is None else (batch,)
    x = rng.normal(size=(*lead, 5, embed))
    memory = rng.normal(size=(*lead, 7, embed)) if cross else None
    params, fields = mha_arrays(mha, layout)
    if not bias:
        assert not any(key.startswith("b_") for key in params)
    problem = {"x": x, **params} | ({"memory": memory} if cross else {})

    trace = run(problem, backend, **fields)
    out, weights = mha_forward(torch, mha, x, memory)
    close(trace["weights"], drop_single_head(weights, heads))
    close(trace["output"], out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["out_in", "out_in_key", "in_out", "per_head"])
@pytest.mark.parametrize("heads", [2, 4])
def test_mha_weight_forms_give_the_same_numbers(torch, backend, layout, heads):
    mha = make_mha(torch, 8, heads, seed=7)
    x = np.random.default_rng(7).normal(size=(2, 4, 8))
    params, fields = mha_arrays(mha, layout)
    trace = run({"x": x, **params}, backend, **fields)
    out, weights = mha_forward(torch, mha, x)
    close(trace["weights"], weights)
    close(trace["output"], out)
    assert trace.run.heads == heads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("batch", [None, 3])
def test_mha_key_padding_mask(torch, backend, heads, batch):
    mha = make_mha(torch, 8, heads, batch_first=True, seed=11)
    rng = np.random.default_rng(11)
    lead = () if batch is None else (batch,)
    x = rng.normal(size=(*lead, 4, 8))
    memory = rng.normal(size=(*lead, 6, 8))
    padding = np.zeros((*lead, 6), dtype=bool)  # True = padding, as nn.MultiheadAttention
    padding[..., 4:] = True
    if batch is not None:
        padding[1, 2:] = True  # a different length per batch element
    params, fields = mha_arrays(mha, "out_in")

    trace = run({"x": x, "memory": memory, "key_padding_mask": padding, **params}, backend,
                **fields)
    out, weights = mha_forward(torch, mha, x, memory, key_padding_mask=padding)
    close(trace["weights"], drop_single_head(weights, heads))
    close(trace["output"], out)
    assert not trace["weights"][..., 4:].any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("form", list(FORMS))
def test_mha_attn_mask_and_key_padding_mask(torch, backend, heads, form):
    batch, batch_first = FORMS[form]
    mha = make_mha(torch, 8, heads, batch_first=batch_first, seed=13)
    rng = np.random.default_rng(13)
    lead = () if batch is None else (batch,)
    x = rng.normal(size=(*lead, 5, 8))
    allowed = some_true_per_row(rng, (5, 5))
    allowed[:, 0] = True  # key 0 is never padded: no row loses every key
    padding = np.zeros((*lead, 5), dtype=bool)
    padding[..., 3] = True
    params, fields = mha_arrays(mha, "in_out")

    # nn.MultiheadAttention's boolean attn_mask is True = NOT allowed: the opposite of attncli's.
    trace = run({"x": x, "mask": allowed, "key_padding_mask": padding, **params}, backend,
                **fields)
    out, weights = mha_forward(torch, mha, x, attn_mask=~allowed, key_padding_mask=padding)
    close(trace["weights"], drop_single_head(weights, heads))
    close(trace["output"], out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mha_fully_padded_rows_nan_in_torch_zero_context_here(torch, backend):
    # An honest difference: nn.MultiheadAttention (need_weights=True, torch 2.13) returns NaN for
    # a batch element whose every key is padding; attncli follows SDPA's safe softmax instead,
    # zero weights and zero context, so the output of those rows is out_proj.bias.
    mha = make_mha(torch, 8, 2, batch_first=True, seed=31)
    rng = np.random.default_rng(31)
    x, memory = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 4, 8))
    padding = np.array([[False, False, True, True], [True, True, True, True]])
    params, fields = mha_arrays(mha, "out_in")
    trace = run({"x": x, "memory": memory, "key_padding_mask": padding, **params}, backend,
                **fields)
    out, weights = mha_forward(torch, mha, x, memory, key_padding_mask=padding)
    assert out[1].isnan().all() and weights[1].isnan().all()
    close(trace["output"][0], out[0])
    close(trace["weights"][0], weights[0])
    assert not trace["weights"][1].any() and not trace["context"][1].any()
    close(trace["output"][1], np.broadcast_to(params["b_o"], (3, 8)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mha_causal_equals_causal_attn_mask(torch, backend):
    mha = make_mha(torch, 8, 2, batch_first=True, seed=17)
    x = np.random.default_rng(17).normal(size=(2, 5, 8))
    params, fields = mha_arrays(mha, "out_in")
    trace = run({"x": x, **params}, backend, causal=True, **fields)
    future = torch.ones(5, 5, dtype=torch.bool).triu(1)
    out, weights = mha_forward(torch, mha, x, attn_mask=future.numpy())
    close(trace["weights"], weights)
    close(trace["output"], out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [2, 4])
def test_mha_averaged_weights_are_the_mean_over_heads(torch, backend, heads):
    mha = make_mha(torch, 8, heads, batch_first=True, seed=19)
    x = np.random.default_rng(19).normal(size=(2, 4, 8))
    params, fields = mha_arrays(mha, "out_in")
    trace = run({"x": x, **params}, backend, **fields)
    _, averaged = mha_forward(torch, mha, x, average=True)
    assert trace.step("weights").axes == ("batch", "head", "query", "key")
    close(trace["weights"].mean(axis=1), averaged)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [1, 2])
def test_mha_kdim_differs_from_embed_dim(torch, backend, heads):
    # kdim = vdim = 5 ≠ embed_dim = 4: separate q/k/v_proj_weight of shapes (4, 4), (4, 5), (4, 5).
    mha = make_mha(torch, 4, heads, batch_first=True, kdim=5, seed=23)
    rng = np.random.default_rng(23)
    x, memory = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 6, 5))
    params, fields = mha_arrays(mha, "out_in")
    assert params["W_k"].shape == (4, 5)
    trace = run({"x": x, "memory": memory, **params}, backend, **fields)
    out, weights = mha_forward(torch, mha, x, memory)
    close(trace["weights"], drop_single_head(weights, heads))
    close(trace["output"], out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("batch", [None, 2])
def test_mha_separate_key_and_value_sequences(torch, backend, heads, batch):
    # nn.MultiheadAttention(query, key, value) with kdim = 5 ≠ vdim = 3 ≠ embed_dim = 4: the
    # keys come from key_memory, the values from value_memory (once run as self-attention
    # over x, the key and value entries only warned about). Separate q/k/v_proj_weight of
    # shapes (4, 4), (4, 5), (4, 3), packed biases and out_proj, all non-zero.
    torch.manual_seed(31)
    mha = torch.nn.MultiheadAttention(4, heads, kdim=5, vdim=3, batch_first=True,
                                      dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    mha.eval()
    rng = np.random.default_rng(31)
    lead = () if batch is None else (batch,)
    x, keys_in, values_in = (rng.normal(size=(*lead, n, d)) for n, d in ((3, 4), (6, 5), (6, 3)))
    pad = np.zeros((*lead, 6), dtype=bool)
    pad[..., -1] = True  # the last key is padding
    params, fields = mha_arrays(mha, "out_in")
    assert (params["W_k"].shape, params["W_v"].shape) == ((4, 5), (4, 3))
    trace = run({"x": x, "key_memory": keys_in, "value_memory": values_in,
                 "key_padding_mask": pad, **params}, backend, **fields)
    with torch.no_grad():
        out, weights = mha(tensor(torch, x), tensor(torch, keys_in), tensor(torch, values_in),
                           key_padding_mask=torch.as_tensor(pad), need_weights=True,
                           average_attn_weights=False)
    close(trace["weights"], drop_single_head(weights, heads))
    close(trace["output"], out)
    assert trace.step("keys").formula == "keys = key_memory W_k + b_k"
    assert trace.step("values").formula == "values = value_memory W_v + b_v"


@pytest.mark.parametrize("backend", BACKENDS)
def test_mha_context_is_the_input_of_out_proj(torch, backend):
    # Head h in columns h·d_head … (h+1)·d_head − 1: out_proj(context) must be the output.
    mha = make_mha(torch, 8, 4, batch_first=True, seed=29)
    x = np.random.default_rng(29).normal(size=(2, 3, 8))
    params, fields = mha_arrays(mha, "out_in")
    trace = run({"x": x, **params}, backend, **fields)
    out, _ = mha_forward(torch, mha, x)
    with torch.no_grad():
        close(mha.out_proj(tensor(torch, trace["context"])), out)
    close(trace["context"], trace["head_context"].transpose(0, 2, 1, 3).reshape(2, 3, 8))


# --------------------------------------------------------------------------------------------
# 3. dropout


@pytest.mark.parametrize("p, seed", [(0.1, 0), (0.5, 7), (0.3, 12345), (0.8, 2**31 - 1)])
@pytest.mark.parametrize("shape", ["single_head", "multi_head_batched"])
@pytest.mark.parametrize("dtype", [DType.float64, DType.float32])
def test_torch_dropout_is_nn_dropout_after_manual_seed(torch, p, seed, shape, dtype):
    if shape == "single_head":
        arrays, heads = projected(70, seq_q=6, seq_k=7, heads=1), 1
    else:
        arrays, heads = projected(71, seq_q=6, seq_k=7, heads=2, batch=3), 2
    trace = run(arrays, Backend.torch, heads=heads, dropout=p, seed=seed, dtype=dtype)
    weights = torch.as_tensor(trace["weights"])

    torch.manual_seed(seed)
    expected = torch.nn.Dropout(p)(weights)  # a new module is in training mode
    assert trace["dropped_weights"].dtype == expected.numpy().dtype
    # The same entries are dropped; the kept ones agree to rounding (w/(1−p) vs w·(1/(1−p))).
    assert np.array_equal(trace["dropped_weights"] == 0, expected.numpy() == 0)
    rtol = 1e-14 if dtype is DType.float64 else 1e-6
    close(trace["dropped_weights"], expected, rtol=rtol, atol=0)
    # and the context is made from the dropped weights
    values = torch.as_tensor(trace["values"])
    close(trace["head_context" if heads > 1 else "context"], expected @ values,
          rtol=rtol * 100, atol=rtol * 100)


def test_torch_dropout_leaves_the_global_rng_alone(torch):
    arrays = projected(72, heads=2)
    torch.manual_seed(99)
    before = torch.rand(5)
    torch.manual_seed(99)
    run(arrays, Backend.torch, heads=2, dropout=0.4, seed=3)
    after = torch.rand(5)
    assert torch.equal(before, after)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_numpy_dropout_scales_kept_weights_by_inverse_keep_probability(p):
    arrays = projected(73, seq_q=8, seq_k=9, heads=2, batch=2)
    trace = run(arrays, Backend.numpy, heads=2, dropout=p, seed=5)
    weights, dropped = trace["weights"], trace["dropped_weights"]
    kept = dropped != 0
    assert kept.any() and (~kept).any()
    assert np.all(weights > 0)  # so dropped == 0 only where the mask dropped
    # every row's kept entries are its weights × 1/(1 − p), to the last bit or so
    np.testing.assert_allclose(dropped[kept], weights[kept] / (1 - p), rtol=1e-15, atol=0)
    np.testing.assert_allclose(dropped[kept] / weights[kept], 1 / (1 - p), rtol=1e-15, atol=0)
    close(trace["head_context"], dropped @ trace["values"])
    # the seed fixes the mask; another seed draws another one
    again = run(arrays, Backend.numpy, heads=2, dropout=p, seed=5)["dropped_weights"]
    other = run(arrays, Backend.numpy, heads=2, dropout=p, seed=6)["dropped_weights"]
    assert np.array_equal(again, dropped)
    assert not np.array_equal(other == 0, kept == 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", ["single_head", "multi_head_batched"])
def test_dropout_mask_key_is_honoured(torch, backend, shape):
    if shape == "single_head":
        arrays, heads, weights_shape = projected(74, seq_q=4, seq_k=5, heads=1), 1, (4, 5)
    else:
        arrays, heads = projected(75, seq_q=4, seq_k=5, heads=2, batch=2), 2
        weights_shape = (2, 2, 4, 5)  # (batch, head, query, key)
    keep = np.random.default_rng(76).random(weights_shape) >= 0.3
    assert keep.any() and (~keep).any()
    p = 0.3
    first = run({**arrays, "dropout_mask": keep.astype(int)}, backend, heads=heads, dropout=p,
                seed=1)
    second = run({**arrays, "dropout_mask": keep}, backend, heads=heads, dropout=p, seed=2)

    expected = np.where(keep, first["weights"] / (1 - p), 0.0)
    close(first["dropped_weights"], expected)
    close(second["dropped_weights"], expected)  # the seed does not matter when the mask is given
    close(first["head_context" if heads > 1 else "context"], expected @ first["values"])


# --------------------------------------------------------------------------------------------
# 4. the numpy and torch backends agree on every step


def _simple():
    rng = np.random.default_rng(80)
    return {"x": rng.normal(size=(4, 3))}, {"project": False, "score": Score.dot}


def _projections_biases():
    return projected(81, heads=1), {}


def _multihead_output():
    rng = np.random.default_rng(82)
    arrays = projected(82, heads=2, batch=2, seq_k=5)
    arrays |= {"W_o": rng.normal(size=(6, 4)), "b_o": rng.normal(size=4)}
    return arrays, {"heads": 2}


def _causal():
    return projected(83, heads=2), {"heads": 2, "causal": True}


def _causal_bottom_right():
    return projected(84, seq_q=5, seq_k=3, heads=2), {"heads": 2, "causal": True,
                                                      "causal_align": CausalAlign.bottom_right}


def _window():
    return projected(85, seq_q=6, heads=2), {"heads": 2, "window": 1}


def _masks():
    rng = np.random.default_rng(86)
    arrays = projected(86, seq_q=4, seq_k=5, heads=2, batch=2)
    mask = some_true_per_row(rng, (4, 5))
    mask[1] = False  # one fully masked row
    padding = np.zeros((2, 5), dtype=bool)
    padding[0, 4] = True
    return arrays | {"mask": mask, "key_padding_mask": padding}, {"heads": 2}


def _hard():
    return projected(87, heads=2), {"heads": 2, "normalize": Normalize.hard}


def _topk():
    return projected(88, seq_q=5, seq_k=6, heads=2), {"heads": 2, "normalize": Normalize.top_k,
                                                            "top_k": 2}


def _temperature():
    return projected(89, heads=2), {"heads": 2, "temperature": 0.7}


def _additive():
    rng = np.random.default_rng(90)
    arrays = projected(90, heads=1, seq_k=5)  # d_q = d_k = 3
    arrays |= {"W_a": rng.normal(size=(3, 4)), "U_a": rng.normal(size=(3, 4)),
               "v_a": rng.normal(size=4), "b_a": rng.normal(size=4)}
    return arrays, {"score": Score.additive}


def _additive_multihead():
    arrays, fields = _additive()
    # the same x, memory and score weights, with two heads of width 3 (W_a is shared by the heads)
    arrays |= {k: v for k, v in projected(91, heads=2, seq_k=5).items()
               if k not in ("x", "memory")}
    return arrays, fields | {"heads": 2}


def _general():
    rng = np.random.default_rng(92)
    arrays = projected(92, heads=2, seq_k=5)
    arrays["W_a"] = rng.normal(size=(3, 3))
    return arrays, {"heads": 2, "score": Score.general}


def _dropout():
    return projected(93, heads=2), {"heads": 2, "dropout": 0.25, "seed": 0}


def _dropout_mask():
    arrays = projected(94, heads=2, batch=2)
    keep = np.random.default_rng(94).random((2, 2, 4, 4)) >= 0.25
    return arrays | {"dropout_mask": keep}, {"heads": 2, "dropout": 0.25}


CASES = {
    "simple": _simple,
    "projections_biases": _projections_biases,
    "multihead_output": _multihead_output,
    "causal": _causal,
    "causal_bottom_right": _causal_bottom_right,
    "window": _window,
    "masks": _masks,
    "hard": _hard,
    "topk": _topk,
    "temperature": _temperature,
    "additive": _additive,
    "additive_multihead": _additive_multihead,
    "general": _general,
    "dropout_mask": _dropout_mask,
}


def assert_same_traces(a, b, rtol: float, atol: float) -> None:
    assert a.names() == b.names()
    for step_a, step_b in zip(a, b, strict=True):
        assert step_a.axes == step_b.axes, step_a.name
        assert step_a.data.dtype == step_b.data.dtype, step_a.name
        np.testing.assert_allclose(step_a.data, step_b.data, rtol=rtol, atol=atol,
                                   err_msg=step_a.name)


@pytest.mark.parametrize("case", list(CASES))
def test_backends_agree_on_every_step(torch, case):
    arrays, fields = CASES[case]()
    on_numpy = run(arrays, Backend.numpy, **fields)
    on_torch = run(arrays, Backend.torch, **fields)
    assert on_numpy.backend == "numpy" and on_torch.backend == "torch"
    assert_same_traces(on_numpy, on_torch, rtol=1e-12, atol=1e-12)
    assert on_numpy["weights"].dtype == np.float64


@pytest.mark.parametrize("case", ["simple", "multihead_output", "causal", "masks", "topk",
                                  "additive", "general"])
def test_backends_agree_in_float32(torch, case):
    arrays, fields = CASES[case]()
    on_numpy = run(arrays, Backend.numpy, dtype=DType.float32, **fields)
    on_torch = run(arrays, Backend.torch, dtype=DType.float32, **fields)
    assert on_numpy["weights"].dtype == np.float32
    assert_same_traces(on_numpy, on_torch, rtol=1e-5, atol=1e-5)
    # float32 is float32, not float64 in disguise: close to float64, but not equal to it
    in_float64 = run(arrays, Backend.torch, **fields)
    np.testing.assert_allclose(on_torch["weights"], in_float64["weights"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["additive", "additive_multihead", "general", "hard", "topk"])
def test_score_and_normalize_variants_match_a_torch_reference(torch, backend, case):
    # The agreement test above cannot see a mistake both backends share: here the scores and
    # weights are recomputed in torch from the trace's own queries and keys.
    arrays, fields = CASES[case]()
    trace = run(arrays, backend, **fields)
    q, k = tensor(torch, trace["queries"]), tensor(torch, trace["keys"])
    A = {key: tensor(torch, arrays[key]) for key in ("W_a", "U_a", "v_a", "b_a") if key in arrays}
    if case.startswith("additive"):
        hidden = (q @ A["W_a"]).unsqueeze(-2) + (k @ A["U_a"]).unsqueeze(-3) + A["b_a"]
        scores = torch.tanh(hidden) @ A["v_a"]
    elif case == "general":
        scores = q @ A["W_a"] @ k.transpose(-2, -1)
    else:
        scores = q @ k.transpose(-2, -1)
    close(trace["scores"], scores)

    if case in ("hard", "topk"):  # scaled dot product by default: d_head = 3
        s = scores / math.sqrt(3)
    else:  # additive and general scores are not scaled unless asked
        s = scores
        assert "scaled_scores" not in trace
    if case == "hard":
        expected = torch.nn.functional.one_hot(s.argmax(-1), s.shape[-1]).to(torch.float64)
    elif case == "topk":
        top = s.topk(2, dim=-1)
        expected = torch.zeros_like(s).scatter(-1, top.indices, torch.softmax(top.values, -1))
    else:
        expected = torch.softmax(s, dim=-1)
    close(trace["weights"], expected)
    close(trace["context"], merge_heads(expected @ tensor(torch, trace["values"]))
          if "head" in trace.step("weights").axes else expected @ tensor(torch, trace["values"]))


def test_dropout_masks_differ_between_backends_but_both_are_inverted_dropout(torch):
    arrays, fields = _dropout()
    on_numpy = run(arrays, Backend.numpy, **fields)
    on_torch = run(arrays, Backend.torch, **fields)
    close(on_numpy["weights"], on_torch["weights"], rtol=1e-12, atol=1e-12)
    for trace in (on_numpy, on_torch):
        kept = trace["dropped_weights"] != 0
        close(trace["dropped_weights"], np.where(kept, trace["weights"] / 0.75, 0.0))


# --------------------------------------------------------------------------------------------
# 5. softmax with scores of ±1e4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [DType.float64, DType.float32])
def test_softmax_is_finite_for_scores_of_1e4(torch, backend, dtype):
    # Simple variant (scores = x xᵀ): rows of length 100 give self-scores of 1e4, opposite rows
    # −1e4. A softmax without the row maximum subtracted overflows (e^1e4) to NaN.
    x = np.array([[100.0, 0.0], [-100.0, 0.0], [0.0, 100.0], [0.0, -1.0]])
    trace = run({"x": x}, backend, project=False, score=Score.dot, dtype=dtype)
    scores, weights = trace["scores"], trace["weights"]
    assert scores.max() == 1e4 and scores.min() == -1e4
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=0, atol=1e-6)
    expected = torch.softmax(tensor(torch, x) @ tensor(torch, x).T, dim=-1)
    close(weights, expected, rtol=1e-6 if dtype is DType.float32 else TOL, atol=1e-7)
    np.testing.assert_allclose(np.diag(weights[:3]), 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_is_finite_when_every_score_is_minus_1e4(torch, backend):
    # Every score of the query is about −1e4: without the row maximum, e^−1e4 underflows to 0 for
    # every key and the row is 0/0.
    x = np.array([[100.0, 0.0], [0.0, 100.0]])
    memory = np.array([[-100.0, 0.0], [-99.0, 1.0], [-100.0, -0.5]])
    trace = run({"x": x, "memory": memory}, backend, project=False, score=Score.dot)
    weights = trace["weights"]
    assert trace["scores"][0].max() <= -9900
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    expected = torch.softmax(tensor(torch, x) @ tensor(torch, memory).T, dim=-1)
    close(weights, expected)
    close(trace["context"], expected @ tensor(torch, memory))
