"""Additive biases of the scores: ALiBi (--alibi, the key alibi_slopes) and the key ``bias``:
the slopes worked by hand, the bias stage's place in the plan (after the scale and any
soft-cap, before the mask), parity with torch SDPA's float attn_mask, runs in query blocks and
one --query row on both backends, and the errors. (Parity with Bloom's own ALiBi:
tests/transformers/test_bloom.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.attention import blocks
from attncli.attention.bias import alibi_slopes, power_of_two_slopes
from attncli.errors import ConfigError, InputError
from attncli.grading import inputs
from attncli.problem import Problem

BACKENDS = ["numpy", "torch"]


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _arrays(seed=0, n=5, n_k=None, d=12, batch=None):
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    arrays = {"x": rng.normal(size=(*lead, n, d))}
    if n_k is not None:
        arrays["memory"] = rng.normal(size=(*lead, n_k, d))
    for name in "qkv":
        arrays[f"W_{name}"] = rng.normal(size=(d, d))
    return arrays


def _heads(a, H):
    """(…, n, H·d) → (…, H, n, d)."""
    *lead, n, width = a.shape
    return np.moveaxis(a.reshape(*lead, n, H, width // H), -2, -3)


# --- the slopes ---------------------------------------------------------------------------------


def test_slopes_by_hand():
    # a power of two: 2^(−8h/H), h = 1 … H
    np.testing.assert_array_equal(alibi_slopes(8), [2.0 ** -h for h in range(1, 9)])
    np.testing.assert_array_equal(alibi_slopes(4), [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8])
    np.testing.assert_array_equal(alibi_slopes(1), [2.0 ** -8])
    # 6 heads: the 4 heads' slopes, then slopes 1 and 3 of 8 heads (2^−1, 2^−3): interleaved
    np.testing.assert_array_equal(alibi_slopes(6), [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8])
    # 12 heads: 8 heads' 2^−1 … 2^−8, then 16 heads' slopes 1, 3, 5, 7: 2^−0.5, 2^−1.5, …
    np.testing.assert_allclose(alibi_slopes(12), [*(2.0 ** -h for h in range(1, 9)),
                                                  2 ** -0.5, 2 ** -1.5, 2 ** -2.5, 2 ** -3.5],
                               rtol=1e-15)
    # the mistaken rule 2^(−8h/6) is not it
    assert np.abs(power_of_two_slopes(6) - alibi_slopes(6)).max() > 0.1


def test_slopes_match_bloom():
    torch = pytest.importorskip("torch")
    bloom = pytest.importorskip("transformers.models.bloom.modeling_bloom")
    for heads in (1, 3, 5, 6, 8, 12, 20):
        ones = torch.ones(1, 4)
        theirs = bloom.build_alibi_tensor(ones, heads, torch.float64)  # (H, 1, 4): m_h · j
        np.testing.assert_allclose(alibi_slopes(heads), theirs[:, 0, 1].numpy(), rtol=1e-6)


# --- ALiBi end to end ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align", ["top-left", "bottom-right"])
def test_alibi_matches_numpy_written_out(backend, align):
    # cross-attention, 3 queries and 5 keys, 3 heads: bias −m_h·|i + offset − j|
    arrays = _arrays(n=3, n_k=5)
    H, offset = 3, (2 if align == "bottom-right" else 0)
    trace = attend(Problem.from_mapping(arrays, "p.json"),
                   AttentionConfig(heads=H, alibi=True, causal=True, causal_align=align,
                                   backend=backend))
    q, k = _heads(arrays["x"] @ arrays["W_q"], H), _heads(arrays["memory"] @ arrays["W_k"], H)
    m = np.array([2.0 ** -4, 2.0 ** -8, 2.0 ** -2])  # 2 heads' 2^−4, 2^−8, then 4 heads' 2^−2
    i, j = np.arange(3)[:, None] + offset, np.arange(5)[None]
    bias = -m[:, None, None] * np.abs(i - j)
    scores = q @ np.swapaxes(k, -1, -2) / 2 + bias  # d_head = 4
    weights = _softmax(np.where(j <= i, scores, -np.inf))
    assert trace.names()[3:8] == ["scores", "scaled_scores", "bias", "biased_scores",
                                  "masked_scores"]
    np.testing.assert_allclose(trace["bias"], bias, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(trace["weights"], weights, rtol=1e-10, atol=1e-12)
    sign = "+" if offset else ""
    assert trace.step("bias").formula == ("bias = −m_h·|i + 2 − j|" if sign else
                                          "bias = −m_h·|i − j|")
    assert trace.step("biased_scores").formula == "biased_scores = scaled_scores + bias"


@pytest.mark.parametrize("backend", BACKENDS)
def test_alibi_in_blocks_and_one_row(backend, monkeypatch):
    arrays = _arrays(n=9)
    config = AttentionConfig(heads=3, alibi=True, causal=True, backend=backend)
    whole = attend(Problem.from_mapping(arrays, "p.json"), config)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 2 * 3 * 9 * 8 * 2)  # 2 rows a block (width 2)
    blocked = attend(Problem.from_mapping(arrays, "p.json"), config, steps=["context"])
    assert blocked.run.path.startswith("query blocks of")
    np.testing.assert_allclose(blocked["context"], whole["context"], rtol=1e-12)
    row = attend(Problem.from_mapping(arrays, "p.json"), config, query=6)
    assert row.run.path == "one query row"
    np.testing.assert_allclose(row["bias"][:, 0], whole["bias"][:, 6], rtol=1e-15)
    np.testing.assert_allclose(row["weights"][:, 0], whole["weights"][:, 6], rtol=1e-12)


def test_alibi_slopes_key():
    # slopes (1, 0.5): head 0's bias row 0 = (0, −1, −2), head 1's (0, −0.5, −1)
    arrays = {"x": np.zeros((3, 2)), "alibi_slopes": [1.0, 0.5]}
    trace = attend(Problem.from_mapping(arrays, "p.json"),
                   AttentionConfig(project=False, heads=2, alibi=True))
    np.testing.assert_allclose(trace["bias"][:, 0], [[0, -1, -2], [0, -0.5, -1]])
    # zero scores: the weights are softmax of the bias alone, e^0 : e^−1 : e^−2
    np.testing.assert_allclose(trace["weights"][0, 0], np.exp([0, -1, -2]) / np.exp(
        [0, -1, -2]).sum(), rtol=1e-12)
    assert trace.run.alibi_slopes == (1.0, 0.5)
    assert "alibi" in trace.conventions


def test_softcap_then_bias_then_mask():
    trace = attend(Problem.from_mapping({"x": np.eye(3), "bias": np.ones((3, 3))}, "p.json"),
                   AttentionConfig(project=False, softcap=5.0, causal=True))
    assert trace.names()[3:7] == ["scores", "capped_scores", "bias", "biased_scores"]
    # capped 5·tanh(1/5) = 0.98686… on the diagonal, + 1
    assert trace["biased_scores"][0, 0] == pytest.approx(5 * np.tanh(0.2) + 1, rel=1e-14)


def test_no_bias_no_stage():
    trace = attend(Problem.from_mapping({"x": np.eye(3)}, "p.json"),
                   AttentionConfig(project=False))
    assert "bias" not in trace and "biased_scores" not in trace


# --- the key bias: torch SDPA's float attn_mask ------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", ["2d", "heads", "batch_heads", "batch_shared"])
def test_bias_matches_sdpa_float_mask(backend, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    B, H, n, n_k = 2, 3, 4, 6
    arrays = _arrays(seed=1, n=n, n_k=n_k, batch=B)
    full = {"2d": (n, n_k), "heads": (H, n, n_k), "batch_heads": (B, H, n, n_k),
            "batch_shared": (B, 1, n, n_k)}[shape]
    bias = rng.normal(size=full)
    bias[..., 1, 2] = -np.inf  # a key no query 1 attends
    given = bias.astype(object)
    given[~np.isfinite(bias)] = None  # JSON's null = −∞
    arrays["bias"] = given.tolist()
    trace = attend(Problem.from_mapping(arrays, "p.json"),
                   AttentionConfig(heads=H, backend=backend))

    def t(a):
        return torch.as_tensor(a, dtype=torch.float64)

    q = t(_heads(arrays["x"] @ arrays["W_q"], H))
    k = t(_heads(arrays["memory"] @ arrays["W_k"], H))
    v = t(_heads(arrays["memory"] @ arrays["W_v"], H))
    mask = t(bias)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    context = out.permute(0, 2, 1, 3).reshape(B, n, 12).numpy()
    np.testing.assert_allclose(trace["context"], context, rtol=1e-10, atol=1e-12)
    assert (trace["weights"][..., 1, 2] == 0).all()
    np.testing.assert_array_equal(trace["bias"], np.broadcast_to(bias, (B, H, n, n_k)))
    # and in query blocks, no n×n step asked
    blocked = attend(Problem.from_mapping(arrays, "p.json"),
                     AttentionConfig(heads=H, backend=backend), steps=["context"])
    np.testing.assert_allclose(blocked["context"], context, rtol=1e-10, atol=1e-12)


def test_alibi_and_bias_together_add():
    arrays = {"x": np.zeros((2, 2)), "alibi_slopes": [0.5], "bias": [[1.0, 2.0], [3.0, 4.0]]}
    trace = attend(Problem.from_mapping(arrays, "p.json"),
                   AttentionConfig(project=False, alibi=True))
    np.testing.assert_allclose(trace["bias"], [[1.0, 1.5], [2.5, 4.0]])
    assert trace.step("bias").formula == "bias = −m_h·|i − j| + the given bias"


# --- errors -------------------------------------------------------------------------------------


def test_bias_errors():
    with pytest.raises(InputError, match=r"^p.json: bias: inf at index \[0, 1\]; every value "
                       r"must be finite \(or null, for −∞\)$"):
        Problem.from_mapping({"x": np.eye(2), "bias": np.array([[0, np.inf], [0, 0]])},
                             "p.json")
    with pytest.raises(InputError, match=r"^p.json: bias: expected \(seq_q, seq_k\), "
                       r"\(H, seq_q, seq_k\) = \(2, 3, 3\) \(a size 1 shared\), got \(3, 2\)$"):
        attend(Problem.from_mapping({"x": np.ones((3, 4)), "bias": np.zeros((3, 2))},
                                    "p.json"), AttentionConfig(project=False, heads=2))
    with pytest.raises(ConfigError, match=r"^p.json: alibi_slopes is given but not --alibi"):
        attend(Problem.from_mapping({"x": np.eye(2), "alibi_slopes": [1.0]}, "p.json"),
               AttentionConfig(project=False))
    with pytest.raises(InputError, match=r"^p.json: alibi_slopes: expected one slope per head "
                       r"\(1,\), got \(2,\)$"):
        attend(Problem.from_mapping({"x": np.eye(2), "alibi_slopes": [1.0, 2.0]}, "p.json"),
               AttentionConfig(project=False, alibi=True))


# --- grading's step graph -----------------------------------------------------------------------


def test_grading_inputs():
    trace = attend(Problem.from_mapping({"x": np.eye(4)}, "p.json"),
                   AttentionConfig(project=False, scale=0.5, alibi=True, causal=True))
    assert inputs(trace, "bias") == []
    assert inputs(trace, "biased_scores") == ["scaled_scores", "bias"]
    assert inputs(trace, "masked_scores") == ["biased_scores"]


# --- explain ------------------------------------------------------------------------------------


def test_explain_writes_out_alibi_for_one_row():
    from attncli.explain import Group, Number, Product, Sum, explain

    # slopes (1, 0.5), bottom-right with 2 queries and 3 keys (offset 1): query 0 sits at key 1
    arrays = {"x": np.zeros((2, 2)), "memory": np.zeros((3, 2)), "alibi_slopes": [1.0, 0.5]}
    trace = attend(Problem.from_mapping(arrays, "p.json"),
                   AttentionConfig(project=False, heads=2, alibi=True,
                                   causal_align="bottom-right"))
    sections = explain(trace, "0")
    bias = [s for s in sections if s.title[0].startswith("Bias (ALiBi)")]
    assert len(bias) == 2  # one per head
    # head 1: bias(j) = −0.5 × |0 + 1 − j| = −0.5, 0, −0.5
    head1 = bias[1].equations
    assert head1[0].sides == (Product((Number(-0.5, "option"), Number(1, "option"))),
                              Number(-0.5))
    assert [e.sides[-1].value for e in head1] == [-0.5, 0.0, -0.5]
    added = [s for s in sections if s.title[0].startswith("Bias added")][1].equations
    assert added[0].sides == (Sum((Number(0.0), Group(Number(-0.5)))), Number(-0.5))
