"""Soft-capping, cap · tanh(scores / cap) (Gemma 2): the stage, the option, its place in the
plan (after the scale, before the mask), and a run end to end on both backends, in query blocks
and with --query. (Parity with Gemma 2's own attention: tests/transformers/test_gemma2.py.)"""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.attention.stages import Context, Softcap
from attncli.config import from_variant
from attncli.errors import ConfigError
from attncli.problem import Problem

X = np.array([[3.0, 0.0], [0.0, 1.0], [2.0, 2.0]])


def test_softcap_by_hand():
    # cap 2: 2·tanh(2/2) = 2·0.761594156 = 1.523188312; 2·tanh(−4/2) = 2·(−0.964027580)
    # = −1.928055160; 2·tanh(0) = 0
    stage = Softcap("capped_scores", "", cap=2.0)
    out = stage(xp, np.array([[[[2.0, -4.0, 0.0]]]]), Context(runtime=None, params={}))
    np.testing.assert_allclose(out.ravel(), [1.5231883119, -1.9280551601, 0.0], rtol=1e-9)


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_a_capped_run_matches_numpy_written_out():
    # Q = K = V = x, dot scores unscaled: x xᵀ = [[9, 0, 6], [0, 1, 2], [6, 2, 8]]
    trace = attend(Problem.from_mapping({"x": X}, "p.json"),
                   AttentionConfig(project=False, softcap=1.5))
    capped = 1.5 * np.tanh(X @ X.T / 1.5)
    assert trace.names() == ["queries", "keys", "values", "scores", "capped_scores", "weights",
                             "context"]
    assert trace.step("capped_scores").formula == "capped_scores = 1.5 · tanh(scores / 1.5)"
    np.testing.assert_allclose(trace["capped_scores"], capped, rtol=1e-12)
    np.testing.assert_allclose(trace["context"], _softmax(capped) @ X, rtol=1e-12)


def test_the_cap_comes_after_the_scale_and_before_the_mask():
    # scaled by 0.5, capped at 2, then causal: the masked scores are the capped ones, −∞ above
    # the diagonal
    trace = attend(Problem.from_mapping({"x": X}, "p.json"),
                   AttentionConfig(project=False, scale=0.5, softcap=2.0, causal=True))
    assert trace.names()[3:7] == ["scores", "scaled_scores", "capped_scores", "masked_scores"]
    capped = 2.0 * np.tanh(0.5 * (X @ X.T) / 2.0)
    masked = np.where(np.tril(np.ones((3, 3), bool)), capped, -np.inf)
    np.testing.assert_allclose(trace["masked_scores"], masked, rtol=1e-12)
    np.testing.assert_allclose(trace["weights"], _softmax(masked), rtol=1e-12)


def _random(seed=0, n=7, d=4):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(2, n, d)), "W_q": rng.normal(size=(d, d)) * 2,
            "W_k": rng.normal(size=(d, d)) * 2, "W_v": rng.normal(size=(d, d)),
            "W_o": rng.normal(size=(d, d))}


def _expected(arrays, cap, heads=2):
    """Multi-head attention with soft-capping written out in numpy: (B, n, d) output."""
    x = arrays["x"]
    B, n, d = x.shape
    dh = d // heads

    def split(a):
        return a.reshape(B, n, heads, dh).transpose(0, 2, 1, 3)

    q, k, v = (split(x @ arrays[w]) for w in ("W_q", "W_k", "W_v"))
    capped = cap * np.tanh(q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) / cap)
    context = (_softmax(capped) @ v).transpose(0, 2, 1, 3).reshape(B, n, d)
    return capped, context @ arrays["W_o"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_blocks_and_one_query_row_agree_with_numpy(backend):
    pytest.importorskip("torch") if backend == "torch" else None
    arrays = _random()
    capped, output = _expected(arrays, cap=1.25)
    problem = Problem.from_mapping(arrays, "p.json")
    config = AttentionConfig(softcap=1.25, heads=2, backend=backend)
    # only the output asked for: computed in query blocks (no n×n step kept), not fused
    blocks = attend(problem, config, steps=["output"])
    assert "fused" not in blocks.run.path
    np.testing.assert_allclose(blocks["output"], output, rtol=1e-10)
    row = attend(problem, config, query=3)  # one query row
    np.testing.assert_allclose(row["capped_scores"][:, :, 0], capped[:, :, 3], rtol=1e-10)
    np.testing.assert_allclose(row["output"][:, 0], output[:, 3], rtol=1e-10)


def test_the_option_from_a_file_and_its_range():
    assert from_variant(None, softcap=50.0).softcap == 50.0
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ConfigError, match="--softcap must be a positive number"):
            AttentionConfig(softcap=bad).validate()


def test_the_conventions_say_the_cap_and_hugging_faces_window():
    trace = attend(Problem.from_mapping({"x": X}, "p.json"),
                   AttentionConfig(project=False, softcap=3.0, causal=True, window=1))
    assert trace.conventions["softcap"] == (
        "capped_scores = 3 · tanh(scores / 3) after the scale, before any bias and the mask: "
        "each score within ±3 (Gemma 2's attn_logit_softcapping)")
    # --causal --window 1 is Hugging Face's sliding_window = 2 (keys i − 1 and i)
    assert "sliding_window = S" in trace.conventions["sliding_window"]
    assert "this is S = 2 (--causal --window S − 1)" in trace.conventions["sliding_window"]
    assert "transformers #29623 and vllm #3385" in trace.conventions["sliding_window"]
    # a window that is not causal is no Hugging Face sliding window
    plain = attend(Problem.from_mapping({"x": X}, "p.json"),
                   AttentionConfig(project=False, window=1))
    assert "sliding_window" not in plain.conventions and "softcap" not in plain.conventions


def test_explain_writes_out_the_cap_of_one_row():
    from attncli.explain import Fraction, Number, Product, Tanh, explain

    # x = [[3, 0], [0, 1], [2, 2]], Q = K = x, row 1 scores [0, 1, 2]; cap 2:
    # 2·tanh(0/2) = 0, 2·tanh(1/2) = 2·0.46211716 = 0.92423431, 2·tanh(2/2) = 2·0.76159416
    # = 1.52318831
    trace = attend(Problem.from_mapping({"x": X}, "p.json"),
                   AttentionConfig(project=False, softcap=2.0))
    section = next(s for s in explain(trace, "1") if s.title[0].startswith("Soft-capping"))
    assert [e.name for e in section.equations] == ["capped(0)", "capped(1)", "capped(2)"]
    by_hand, halved, result = section.equations[2].sides
    assert by_hand.factors[0] == Number(2.0, by_hand.factors[0].kind)
    assert isinstance(by_hand.factors[1], Tanh) and isinstance(by_hand.factors[1].of, Fraction)
    assert by_hand.factors[1].of.top.value == pytest.approx(2.0, rel=1e-12)
    assert isinstance(halved, Product) and halved.factors[1].of.value == pytest.approx(1.0)
    values = [e.sides[-1].value for e in section.equations]
    np.testing.assert_allclose(values, [0.0, 0.9242343146, 1.5231883119], rtol=1e-9)


def test_the_mistaken_twins_by_hand():
    from attncli import mistakes
    from attncli.attention.masks import Mask
    from attncli.backend import Runtime
    from attncli.config import Backend, DType

    context = Context(runtime=Runtime(Backend.numpy, "cpu", DType.float64, xp), params={})
    # capped after a causal mask (2 × 2): query 0's key 1 (−∞) becomes 2·tanh(−∞) = −2;
    # 2·tanh(1/2) = 0.9242343146
    after = mistakes.CappedAfterMask("masked_scores", "", mask=Mask(2, 2, causal=True),
                                     cap=2.0)
    out = after(xp, np.array([[[[1.0, 5.0], [0.0, 1.0]]]]), context)
    np.testing.assert_allclose(out.ravel(), [0.9242343146, -2.0, 0.0, 0.9242343146],
                               rtol=1e-9)
    # capped before a scale of 0.5: 0.5 · 2·tanh(4/2) = 0.9640275801 (right: 2·tanh(2/2)
    # = 1.5231883119)
    before = mistakes.ScaledAfterCap("capped_scores", "", cap=2.0, factor=0.5)
    np.testing.assert_allclose(before(xp, np.array([[[[4.0]]]]), context).ravel(),
                               [0.9640275801], rtol=1e-9)
