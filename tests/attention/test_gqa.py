"""Grouped-query attention (--kv-heads G; G = 1 is multi-query) against torch's own
scaled_dot_product_attention with ``enable_gqa=True``, which repeats each of the G key/value
heads for H/G query heads in a row (query head h uses KV head ⌊h / (H/G)⌋), as transformers'
repeat_kv does. float64, rtol = atol = 1e-10; random inputs of sizes where a wrong grouping
shows (H = 4 query heads, d_head = 3, 5 tokens).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from attncli import attend
from attncli.config import AttentionConfig, Backend, CausalAlign, Layout
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem

torch = pytest.importorskip("torch")

TOL = 1e-10
H, D_HEAD, D_IN, N = 4, 3, 6, 5


def arrays(G: int, seed: int = 0, biases: bool = False, memory: int | None = None) -> dict:
    """x (5, 6); W_q (6, H·3); W_k, W_v (6, G·3); W_o (12, 6); with ``biases`` b_q (12,),
    b_k, b_v (G·3,); with ``memory`` a memory of that many rows (cross-attention)."""
    rng = np.random.default_rng(seed)
    out = {"x": rng.normal(size=(N, D_IN)), "W_q": rng.normal(size=(D_IN, H * D_HEAD)),
           "W_k": rng.normal(size=(D_IN, G * D_HEAD)), "W_v": rng.normal(size=(D_IN, G * D_HEAD)),
           "W_o": rng.normal(size=(H * D_HEAD, D_IN))}
    if biases:
        out |= {"b_q": rng.normal(size=H * D_HEAD), "b_k": rng.normal(size=G * D_HEAD),
                "b_v": rng.normal(size=G * D_HEAD)}
    if memory is not None:
        out["memory"] = rng.normal(size=(memory, D_IN))
    return out


def reference(a: dict, G: int, causal: bool = False, bottom_right: bool = False):
    """torch SDPA with enable_gqa: head_context (H, seq_q, 3), weights (H, seq_q, seq_k),
    context (seq_q, 12), output (seq_q, 6)."""
    t = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in a.items()}
    source = t.get("memory", t["x"])
    q = t["x"] @ t["W_q"] + t.get("b_q", 0)
    k = source @ t["W_k"] + t.get("b_k", 0)
    v = source @ t["W_v"] + t.get("b_v", 0)
    q = q.view(-1, H, D_HEAD).transpose(0, 1)  # (H, seq_q, d_head)
    k = k.view(-1, G, D_HEAD).transpose(0, 1)  # (G, seq_k, d_head)
    v = v.view(-1, G, D_HEAD).transpose(0, 1)
    mask = None
    if causal:
        seq_q, seq_k = q.shape[1], k.shape[1]
        mask = torch.ones(seq_q, seq_k, dtype=torch.bool).tril(seq_k - seq_q if bottom_right
                                                                else 0)
    head_context = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, enable_gqa=True)
    # the weights, by hand from the same tensors: SDPA does not return them
    scores = q @ k.repeat_interleave(H // G, dim=0).transpose(-1, -2) / D_HEAD ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    context = head_context.transpose(0, 1).reshape(q.shape[1], H * D_HEAD)
    return {"head_context": head_context.numpy(), "weights": weights.numpy(),
            "context": context.numpy(), "output": (context @ t["W_o"]).numpy(),
            "keys": k.numpy(), "values": v.numpy()}


def run(a: dict, **fields):
    return attend(Problem.from_mapping(a, "test"), AttentionConfig(**fields))


def close(actual, expected) -> None:
    assert actual.shape == expected.shape, f"{actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
@pytest.mark.parametrize("G", [1, 2, 4])
@pytest.mark.parametrize("causal", [False, True])
def test_every_step_matches_sdpa_enable_gqa(backend, G, causal):
    a = arrays(G, seed=G, biases=True)
    trace = run(a, heads=H, kv_heads=G, causal=causal, backend=backend)
    ref = reference(a, G, causal=causal)
    for step in ("keys", "values", "weights", "head_context", "context", "output"):
        close(trace[step], ref[step])
    assert trace["keys"].shape == (G, N, D_HEAD)  # the G KV heads, not repeated
    assert trace["queries"].shape == (H, N, D_HEAD)
    assert trace.run.kv_heads == G  # as given (a run without --kv-heads has null)
    assert trace.run.heads == H


@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
def test_query_blocks_fused_and_one_row(backend):
    """--steps output: query blocks (numpy) or torch's fused SDPA; --query: one row."""
    a = arrays(2, seed=7)
    ref = reference(a, 2, causal=True)
    whole = run(a, heads=H, kv_heads=2, causal=True, backend=backend)
    fast = attend(Problem.from_mapping(a, "test"),
                  AttentionConfig(heads=H, kv_heads=2, causal=True, backend=backend),
                  steps=["output"])
    close(fast["output"], ref["output"])
    if backend is Backend.torch:
        assert fast.run.path.startswith("fused")
    row = attend(Problem.from_mapping(a, "test"),
                 AttentionConfig(heads=H, kv_heads=2, causal=True, backend=backend), query=3)
    assert row.run.path == "one query row"
    close(row["weights"][:, 0], ref["weights"][:, 3])
    close(row["output"][0], ref["output"][3])
    close(row["keys"], whole["keys"])


def test_cross_attention_bottom_right():
    a = arrays(1, seed=3, memory=7)
    trace = run(a, heads=H, kv_heads=1, causal=True, causal_align=CausalAlign.bottom_right)
    ref = reference(a, 1, causal=True, bottom_right=True)
    close(trace["weights"], ref["weights"])
    close(trace["output"], ref["output"])
    assert trace["keys"].shape == (1, 7, D_HEAD)


def test_three_d_weights_give_both_head_counts_and_out_in_layout():
    """W_q (H, d_in, d_head) and W_k, W_v (G, d_in, d_head) say H = 4 and G = 2 without
    flags; the same weights stored out_in (nn.Linear's (out, in)) give the same run."""
    a = arrays(2, seed=5, biases=True)
    ref = reference(a, 2)
    split = dict(a)
    for key, heads in (("W_q", H), ("W_k", 2), ("W_v", 2)):
        split[key] = a[key].reshape(D_IN, heads, D_HEAD).transpose(1, 0, 2)  # head h's columns
    trace = run(split)
    assert (trace.run.heads, trace.run.kv_heads) == (H, 2)
    close(trace["output"], ref["output"])
    transposed = dict(a, **{k: a[k].T.copy() for k in ("W_q", "W_k", "W_v", "W_o")})
    close(run(transposed, heads=H, kv_heads=2, weight_layout=Layout.out_in)["output"],
          ref["output"])


def test_keys_heads_from_a_file_config(tmp_path):
    from attncli.io import load_problem

    a = arrays(2, seed=9)
    path = tmp_path / "gqa.json"
    path.write_text(json.dumps({**{k: v.tolist() for k, v in a.items()},
                                "config": {"heads": 4, "kv_heads": 2}}))
    problem = load_problem(str(path))
    trace = attend(problem)
    close(trace["output"], reference(a, 2)["output"])


def test_heads_not_a_multiple_of_kv_heads():
    with pytest.raises(ConfigError, match=r"4 query heads \(--heads\) are not a multiple of 3 "
                                          r"key/value heads \(--kv-heads\)"):
        run(arrays(2), heads=4, kv_heads=3)


def test_key_width_not_divisible_by_kv_heads_names_the_flag():
    a = arrays(2)
    a["W_k"] = a["W_k"][:, :5]
    a["W_v"] = a["W_v"][:, :5]
    with pytest.raises(ConfigError, match="W_k: width 5 is not divisible by --kv-heads 2"):
        run(a, heads=4, kv_heads=2)


def test_narrow_keys_without_kv_heads_hint_at_it():
    # --heads 2: W_q (6, 12) gives 2 heads of width 6, W_k (6, 6) 2 of width 3: one KV head
    # of width 6 would fit, so the message says --kv-heads 1
    with pytest.raises(InputError, match="give --kv-heads 1$"):
        run(arrays(2), heads=2)
    # --heads 4: W_k (6, 3) has no 4 heads: the message says --kv-heads exists
    with pytest.raises(ConfigError, match="W_k: width 3 is not divisible by --heads 4; if the "
                                          "keys and values have fewer heads"):
        run(arrays(1), heads=4)


def test_weight_3d_with_kv_heads_count_mismatch():
    a = arrays(2)
    a["W_k"] = a["W_k"].reshape(D_IN, 2, D_HEAD).transpose(1, 0, 2)  # (2, 6, 3)
    with pytest.raises(InputError, match=r"W_k: expected \(1, 6, d_head\), got \(2, 6, 3\)"):
        run(a, heads=4, kv_heads=1)


# --- check: grading G heads, and the h mod G mistake, from answers worked in numpy ----------


def worked(a: dict, G: int, kv_head) -> dict:
    """Attention worked in plain numpy, query head h meeting KV head ``kv_head(h)``:
    keys (G, 5, 3); weights (H, 5, 5); context (5, 12); output (5, 6)."""
    def split(m, heads):  # (5, heads·3) → (heads, 5, 3): head h owns columns 3h … 3h + 2
        return m.reshape(N, heads, D_HEAD).transpose(1, 0, 2)

    q, k, v = split(a["x"] @ a["W_q"], H), split(a["x"] @ a["W_k"], G), split(a["x"] @ a["W_v"], G)
    scores = np.stack([q[h] @ k[kv_head(h)].T for h in range(H)]) / np.sqrt(D_HEAD)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = e / e.sum(axis=-1, keepdims=True)
    context = np.concatenate([weights[h] @ v[kv_head(h)] for h in range(H)], axis=1)
    return {"keys": k, "weights": weights, "context": context, "output": context @ a["W_o"]}


def answers(steps: dict, names):
    from decimal import Decimal

    from attncli.check import Answers

    raw = {name: np.round(steps[name], 8).tolist() for name in names}
    return Answers.from_mapping(json.loads(json.dumps(raw), parse_float=Decimal), "a.json")


def checker(a: dict):
    from attncli.check import Checker

    problem, config = Problem.from_mapping(a, "gqa.json"), AttentionConfig(heads=H, kv_heads=2)
    return Checker(problem, config, attend(problem, config))


def test_check_diagnoses_the_h_mod_G_grouping():
    # H = 4, G = 2: the right grouping gives query heads 0, 1, 2, 3 the KV heads 0, 0, 1, 1;
    # h mod G gives 0, 1, 0, 1: heads 1 and 2 meet the other KV head
    a = arrays(2, seed=11)
    report = checker(a).check(answers(worked(a, 2, lambda h: h % 2), ("weights", "output")))
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.name == "gqa_grouping_mod"
    right = worked(a, 2, lambda h: h // 2)
    report = checker(a).check(answers(right, ("weights", "context", "output")))
    assert report.ok and report.diagnosis is None


def test_keys_of_G_heads_are_graded_also_side_by_side():
    """keys written (2, 5, 3) as the trace holds them, or (5, 6) with the 2 KV heads side by
    side (x W_k before the split); a wrong key of KV head 1 taints query heads 2 and 3 only."""
    from attncli.check import CARRIED, RIGHT

    a = arrays(2, seed=12)
    right = worked(a, 2, lambda h: h // 2)
    for keys in (right["keys"], right["keys"].transpose(1, 0, 2).reshape(N, 2 * D_HEAD)):
        report = checker(a).check(answers({**right, "keys": keys}, ("keys", "weights")))
        assert report.ok, [v.note for v in report.verdicts]
    wrong_keys = right["keys"].copy()
    wrong_keys[1, 0, 0] += 1.0  # KV head 1, key 0
    k_given = np.round(wrong_keys, 8)
    carried = {}
    q = (a["x"] @ a["W_q"]).reshape(N, H, D_HEAD).transpose(1, 0, 2)
    scores = np.stack([q[h] @ k_given[h // 2].T for h in range(H)]) / np.sqrt(D_HEAD)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    carried["weights"] = e / e.sum(axis=-1, keepdims=True)  # from the student's own keys
    report = checker(a).check(answers({"keys": wrong_keys, "weights": carried["weights"]},
                                      ("keys", "weights")))
    keys, weights = report.verdicts
    assert keys.counts.wrong == 1
    # heads 0, 1 use KV head 0: right; heads 2, 3 follow from the wrong key (where it moves
    # the weights past the tolerance): carried forward, nowhere wrong
    assert np.all(weights.status[:2] == RIGHT)
    assert weights.counts.wrong == 0 and np.any(weights.status[2:] == CARRIED)


# --- --format torch: SDPA with enable_gqa ---------------------------------------------------


@pytest.mark.parametrize(("G", "three_d"), [(2, False), (1, True)])
def test_torch_script_uses_enable_gqa(tmp_path, G, three_d):
    from tests.export.test_torch_script import SDPA, assert_same, rendered, run_script

    a = arrays(G, seed=13, biases=True)
    if three_d:  # W_k, W_v (G, d_in, d_head): the script puts the heads side by side
        for key in ("W_k", "W_v"):
            a[key] = a[key].reshape(D_IN, G, D_HEAD).transpose(1, 0, 2)
    text, trace = rendered(Problem.from_mapping(a, "gqa.json"),
                           AttentionConfig(heads=H, kv_heads=G, causal=True))
    assert "enable_gqa=True" in text and f"--kv-heads {G}" in text
    assert "keys = split_heads(x @ W_k + b_k, G)  # (…, G, seq_k, d_k)" in text
    assert_same(run_script(tmp_path, text), trace, SDPA)
    close(trace["output"], reference(arrays(G, seed=13, biases=True), G, causal=True)["output"])


# --- explain: which KV head a query head uses -----------------------------------------------


def test_explain_uses_each_query_heads_kv_head():
    from attncli.explain import explain

    a = arrays(2, seed=14)
    trace = run(a, heads=H, kv_heads=2)
    keys = reference(a, 2)["keys"]  # (G, 5, 3) from torch
    sections = {s.title[0]: s for s in explain(trace, "2")}
    for h, g in ((0, 0), (1, 0), (2, 1), (3, 1)):  # ⌊h / 2⌋
        scores = sections[f"Scores (2, head {h})"]
        assert scores.notes[0][0].startswith(f"grouped-query attention: query head {h} uses "
                                             f"KV head ⌊{h} / 2⌋ = {g}")
        for j, equation in enumerate(scores.equations):  # q·k as q₁×k₁ + …: k of KV head g
            k = [product.factors[1].value for product in equation.sides[0].terms]
            np.testing.assert_allclose(k, keys[g, j], rtol=TOL)


def test_repeat_and_its_h_mod_G_twin_by_hand():
    # 2 KV heads holding the numbers 10 and 20, for 4 query heads: ⌊h / 2⌋ gives 10, 10, 20,
    # 20 (transformers' repeat_kv); the slip h mod 2 gives 10, 20, 10, 20
    import array_api_compat.numpy as xp

    from attncli.attention.stages import Context, RepeatKV
    from attncli.backend import Runtime
    from attncli.config import DType
    from attncli.mistakes import ModGrouping

    kv = np.array([10.0, 20.0]).reshape(1, 2, 1, 1)  # (B, G, seq_k, d)
    context = Context(runtime=Runtime(Backend.numpy, "cpu", DType.float64, xp), params={})
    right = RepeatKV(None, "", writes="keys", heads=4)(xp, kv, context)
    wrong = ModGrouping(None, "", writes="keys", heads=4)(xp, kv, context)
    assert right.reshape(-1).tolist() == [10.0, 10.0, 20.0, 20.0]
    assert wrong.reshape(-1).tolist() == [10.0, 20.0, 10.0, 20.0]
