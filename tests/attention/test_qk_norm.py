"""QK-norm, the RMSNorm of queries and keys after the projection (Qwen3 per head, OLMo2 over the
whole projection, Gemma 3's 1 + w): the stage by hand, its place in the plan, runs end to end
against numpy written out here, on both backends, in query blocks and with --query, and the
errors. (Parity with Qwen3's and OLMo2's own attention: tests/transformers/test_qk_norm.py.)"""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.attention.stages import Context, QKNorm
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem

RNG = np.random.default_rng(12)
X = RNG.normal(size=(5, 8))
W_Q, W_K, W_V = (RNG.normal(size=(8, 8)) for _ in range(3))


def _stage(whole: bool, w, eps: float, offset: float = 0.0):
    stage = QKNorm("normed_queries", "", writes="queries", weight="q_norm", whole=whole,
                   eps=eps, offset=offset)
    return lambda data: stage(xp, data, Context(runtime=None, params={"q_norm": np.array(w)}))


def test_per_head_by_hand():
    # one head, d_head 2, query (3, 4): mean(x²) = (9 + 16) / 2 = 12.5; + eps 0.5 = 13;
    # √13 = 3.605551275; (3, 4) / √13 = (0.832050294, 1.109400392); · w (1, 2)
    # = (0.832050294, 2.218800785)
    out = _stage(False, [1.0, 2.0], 0.5)(np.array([[[[3.0, 4.0]]]]))
    np.testing.assert_allclose(out.ravel(), [0.832050294, 2.218800785], rtol=1e-9)


def test_whole_takes_one_mean_over_the_heads_where_per_head_takes_one_each():
    # two heads of d_head 1, the token (3, 4): per head, 3/√(9 + 1e-6) and 4/√(16 + 1e-6),
    # ≈ (1, 1); over the whole projection, (3, 4)/√(12.5 + 1e-6) = (0.848528104, 1.131370805)
    token = np.array([[[[3.0]], [[4.0]]]])  # (B 1, H 2, seq 1, d_head 1)
    np.testing.assert_allclose(_stage(False, [1.0], 1e-6)(token).ravel(), [1.0, 1.0],
                               rtol=1e-6)
    whole = _stage(True, [1.0, 1.0], 1e-6)(token).ravel()
    np.testing.assert_allclose(whole, [0.848528104, 1.131370805], rtol=1e-8)
    # head h takes w[h·d_head …]: w = (2, −1) scales the first head by 2, the second by −1
    np.testing.assert_allclose(_stage(True, [2.0, -1.0], 1e-6)(token).ravel(),
                               [1.697056208, -1.131370805], rtol=1e-8)


def test_gemma_offset_multiplies_by_one_plus_w():
    # (3, 4) / √13 = (0.832050294, 1.109400392), · (1 + (0, −0.5)) = (0.832050294, 0.554700196)
    out = _stage(False, [0.0, -0.5], 0.5, offset=1.0)(np.array([[[[3.0, 4.0]]]]))
    np.testing.assert_allclose(out.ravel(), [0.832050294, 0.554700196], rtol=1e-9)


def _rms(a, w, eps, axes):
    return a / np.sqrt(np.mean(a * a, axis=axes, keepdims=True) + eps) * w


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _reference(mode: str, q_norm, k_norm, eps=1e-6, offset=0.0, heads=2, causal=False):
    """The run written out in numpy: project, split into heads, RMSNorm, scaled dot product."""
    n, d = X.shape[0], 8 // heads
    q, k, v = X @ W_Q, X @ W_K, X @ W_V  # (n, H·d)
    if mode == "whole":  # OLMo2: the norm over the projection, before the split
        q, k = _rms(q, offset + q_norm, eps, -1), _rms(k, offset + k_norm, eps, -1)
    split = [a.reshape(n, heads, d).transpose(1, 0, 2) for a in (q, k, v)]  # (H, n, d)
    q, k, v = split
    if mode == "per-head":  # Qwen3: the norm of each head's d numbers
        q, k = _rms(q, offset + q_norm, eps, -1), _rms(k, offset + k_norm, eps, -1)
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    if causal:
        scores = np.where(np.tril(np.ones((n, n), bool)), scores, -np.inf)
    weights = _softmax(scores)
    context = (weights @ v).transpose(1, 0, 2).reshape(n, heads * d)
    return q, k, weights, context


def _problem(q_norm, k_norm):
    return Problem.from_mapping({"x": X, "W_q": W_Q, "W_k": W_K, "W_v": W_V, "q_norm": q_norm,
                                 "k_norm": k_norm}, "p.json")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("mode,width", [("per-head", 4), ("whole", 8)])
def test_a_run_matches_numpy_written_out(mode, width, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    q_norm, k_norm = RNG.normal(size=width), RNG.normal(size=width)
    trace = attend(_problem(q_norm, k_norm),
                   AttentionConfig(heads=2, qk_norm=mode, qk_norm_eps=1e-5, backend=backend))
    q, k, weights, context = _reference(mode, q_norm, k_norm, eps=1e-5)
    assert trace.names()[:5] == ["queries", "keys", "normed_queries", "normed_keys", "values"]
    np.testing.assert_allclose(trace["normed_queries"], q, rtol=1e-10)
    np.testing.assert_allclose(trace["normed_keys"], k, rtol=1e-10)
    np.testing.assert_allclose(trace["weights"], weights, rtol=1e-10)
    np.testing.assert_allclose(trace["context"], context, rtol=1e-10)
    assert trace.run.qk_norm.value == mode and trace.run.qk_norm_eps == 1e-5


def test_offset_query_row_and_query_blocks():
    q_norm, k_norm = RNG.normal(size=4) * 0.1, RNG.normal(size=4) * 0.1
    config = AttentionConfig(heads=2, qk_norm="per-head", qk_norm_offset=1.0, causal=True)
    _, _, _, context = _reference("per-head", q_norm, k_norm, offset=1.0, causal=True)
    one = attend(_problem(q_norm, k_norm), config, query=3)
    assert one.run.path == "one query row"
    np.testing.assert_allclose(one["context"], context[3:4], rtol=1e-10)
    blocks = attend(_problem(q_norm, k_norm), config, steps=["context"])
    np.testing.assert_allclose(blocks["context"], context, rtol=1e-10)
    assert "(1 + w)" in attend(_problem(q_norm, k_norm), config).step("normed_keys").formula


def test_a_run_without_qk_norm_has_no_stage_and_warns_of_unused_weights():
    trace = attend(_problem(np.ones(4), np.ones(4)), AttentionConfig(heads=2))
    assert "normed_queries" not in trace and "normed_keys" not in trace
    assert any("q_norm not used: there is no --qk-norm" in w for w in trace.warnings)


def test_errors_name_the_key_and_the_shapes():
    with pytest.raises(InputError, match=r"p.json: q_norm: expected \(8,\) \(2 heads × d_head 4, "
                       r"the whole projection, --qk-norm whole\), got \(4,\); it fits "
                       r"--qk-norm per-head"):
        attend(_problem(np.ones(4), np.ones(4)), AttentionConfig(heads=2, qk_norm="whole"))
    with pytest.raises(InputError, match=r"p.json: k_norm: expected \(4,\) \(d_head 4"):
        attend(_problem(np.ones(4), np.ones(3)), AttentionConfig(heads=2, qk_norm="per-head"))
    bare = Problem.from_mapping({"x": X, "W_q": W_Q, "W_k": W_K, "W_v": W_V}, "p.json")
    with pytest.raises(InputError, match="--qk-norm per-head needs 'q_norm'"):
        attend(bare, AttentionConfig(heads=2, qk_norm="per-head"))
    with pytest.raises(ConfigError, match="--qk-norm-eps and --qk-norm-offset need --qk-norm"):
        AttentionConfig(qk_norm_eps=1e-5).validate()
    with pytest.raises(ConfigError, match="--qk-norm-eps must be a positive number, got 0"):
        AttentionConfig(qk_norm="whole", qk_norm_eps=0.0).validate()


def test_explain_writes_out_the_norm_of_one_query_row():
    from attncli.explain import Fraction, Number, explain

    # x(b) = [0, 1, 1, 0]; x(b) W_q = [1, 2, 1, 0]: head 0's query (1, 2), head 1's (1, 0).
    # per head, head 0: mean(q²) = (1×1 + 2×2) / 2 = 2.5; (1, 2) / √(2.5 + 1e-6) · (1, 2)
    # = (0.632455406, 2.529821625)
    w_q = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], float)
    x = np.array([[1, 0, 2, 1], [0, 1, 1, 0], [2, 1, 0, 1]], float)
    raw = {"x": x, "W_q": w_q, "W_k": np.eye(4), "W_v": np.eye(4), "tokens": ["a", "b", "c"]}
    problem = Problem.from_mapping({**raw, "q_norm": np.array([1.0, 2.0]),
                                    "k_norm": np.array([1.0, 1.0])}, "p.json")
    trace = attend(problem, AttentionConfig(heads=2, qk_norm="per-head"))
    section = next(s for s in explain(trace, "b") if s.title == ("QK-norm (b, head 0)",))
    mean, normed = section.equations
    assert isinstance(mean.sides[0], Fraction) and mean.sides[0].bottom == Number(2, "option")
    assert mean.sides[-1].value == pytest.approx(2.5, rel=1e-12)
    np.testing.assert_allclose(normed.sides[-1].values, [0.632455406, 2.529821625], rtol=1e-8)
    # over the whole projection: mean((1, 2, 1, 0)²) = 6 / 4 = 1.5 for every head of b
    whole = attend(Problem.from_mapping({**raw, "q_norm": np.ones(4), "k_norm": np.ones(4)},
                                        "p.json"), AttentionConfig(heads=2, qk_norm="whole"))
    sections = [s for s in explain(whole, "b") if s.title[0].startswith("QK-norm")]
    assert [s.equations[0].sides[-1].value for s in sections] == pytest.approx([1.5, 1.5])
    # head 1: (1, 0) / √1.500001 = (0.816496308, 0)
    np.testing.assert_allclose(sections[1].equations[1].sides[-1].values, [0.816496308, 0.0],
                               rtol=1e-8)
