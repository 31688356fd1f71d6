"""attncli/teach/numbers.py: hand-friendly problems, their rules checked on thousands of seeds
by numpy written here (projections, heads, GQA, scale, masks, softmax / hard / top-k, ALiBi,
soft-capping, sinks), never by the module's own rule checker; determinism; the refusals; and a
problem run by `attncli compute`."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import attncli
from attncli.cli import app
from attncli.config import build
from attncli.errors import InputError
from attncli.problem import Problem
from attncli.teach.numbers import WORDS, Spec, make_problem, variant_seed

X_SET = {-1, 0, 1, 2}
W_SET = {-1, 0, 1}
BOUND = 4.0  # rule 3: every scaled score in [−4, 4]


# ---------------------------------------------------------------------------------------------
# The reference: attention in plain numpy, from the problem's numbers


def reference(problem: dict, spec: Spec, **options) -> dict:
    """Scaled scores, softmax logits, allowed keys and weights of ``problem``, per head.

    Shapes: scaled and logits (H, n, m); allowed (n, m) bool, True = may attend; weights
    (H, n, m). Q = x W_q, K = memory W_k (x without memory), heads the column blocks of d_head,
    query head h reads KV head h // (H/G); scores Q Kᵀ (general: Q W_a Kᵀ) times the scale
    (1/√d_head for scaled_dot, exact from d_head, else 1 or --scale); then soft-capping
    C·tanh(s/C), ALiBi −m_h·|i − j|, the causal / window mask, and softmax(s / T), hard arg-max,
    top-k softmax or the softmax with a sink column (gpt-oss).
    """
    out_in = problem.get("weight_layout") == "out_in"

    def w(key):
        array = np.array(problem[key], dtype=float)
        return array.T if out_in and key in ("W_q", "W_k", "W_v", "W_o") else array

    x = np.array(problem["x"], dtype=float)
    memory = np.array(problem["memory"], dtype=float) if "memory" in problem else x
    H, G = spec.heads, spec.kv_heads or spec.heads
    project = options.get("project", True)
    Q, K = (x @ w("W_q"), memory @ w("W_k")) if project else (x, memory)
    n, m, d = len(x), len(memory), Q.shape[1] // H
    q_heads = Q.reshape(n, H, d).transpose(1, 0, 2)  # (H, n, d)
    k_heads = K.reshape(m, G, d).transpose(1, 0, 2)[np.arange(H) // (H // G)]  # (H, m, d)
    score = options.get("score", "scaled_dot" if project else "dot")
    if score == "general":
        scores = q_heads @ w("W_a") @ k_heads.transpose(0, 2, 1)
    else:
        scores = q_heads @ k_heads.transpose(0, 2, 1)
    if options.get("scale") is not None:
        scale = Fraction(options["scale"])
    elif score == "scaled_dot":
        root = math.isqrt(d)
        assert root * root == d, f"d_head {d} is not a perfect square"  # rule 2
        scale = Fraction(1, root)
    else:
        scale = Fraction(1)
    scaled = scores * float(scale)
    logits = scaled
    if options.get("softcap"):
        C = options["softcap"]
        logits = C * np.tanh(logits / C)
    i, j = np.arange(n)[:, None], np.arange(m)[None, :]
    if options.get("alibi"):
        slopes = np.array(problem["alibi_slopes"])
        logits = logits - slopes[:, None, None] * np.abs(i - j)
    allowed = np.ones((n, m), dtype=bool)
    if options.get("causal"):
        allowed &= j <= i
    if options.get("window") is not None:
        allowed &= np.abs(i - j) <= options["window"]
    masked = np.where(allowed, logits / options.get("temperature", 1.0), -np.inf)
    normalize = options.get("normalize", "softmax")
    if normalize == "hard":
        weights = (j == masked.argmax(-1)[..., None]).astype(float)
    else:
        if normalize == "topk":
            kth = np.sort(masked, axis=-1)[..., ::-1][..., options["top_k"] - 1]
            masked = np.where(masked >= kth[..., None], masked, -np.inf)
        top = masked.max(-1, keepdims=True)
        exps = np.exp(masked - top)
        total = exps.sum(-1, keepdims=True)
        if "sinks" in problem:
            total = total + np.exp(np.array(problem["sinks"], dtype=float)[:, None, None] - top)
        weights = exps / total
    return {"scaled": scaled, "logits": logits, "allowed": allowed, "weights": weights,
            "scale": scale, "queries": Q}


# ---------------------------------------------------------------------------------------------
# The rules, checked here from the reference's numbers


def assert_inputs(problem: dict, spec: Spec) -> None:
    """Rule 1: the number sets (Python ints for integers), no zero row of x, no dead column."""
    for key in ("x", "memory"):
        if key not in problem:
            continue
        values = [v for row in problem[key] for v in row]
        if spec.numbers == "integers":
            assert all(type(v) is int and v in X_SET for v in values), (key, values)
        else:  # one decimal in [−1, 1]
            assert all(-1.0 <= v <= 1.0 and round(v * 10) == v * 10 for v in values), values
        assert all(any(v != 0 for v in row) for row in problem[key]), f"a zero row of {key}"
    out_in = problem.get("weight_layout") == "out_in"
    for key in ("W_q", "W_k", "W_v", "W_o", "W_a", "U_a"):
        if key in problem:
            W = np.array(problem[key])
            assert all(type(v) is int for v in W.ravel().tolist())
            assert set(W.ravel().tolist()) <= W_SET, key
            columns = W if out_in and key != "W_a" and key != "U_a" else W.T
            assert all(col.any() for col in columns), f"a dead column of {key}"
    for key in ("v_a", "sinks"):
        if key in problem:
            assert set(problem[key]) <= W_SET and all(type(v) is int for v in problem[key])
    if "v_a" in problem:
        assert any(problem["v_a"]), "v_a is all zero"
    tokens = problem["tokens"] + problem.get("memory_tokens", [])
    assert len(set(tokens)) == len(tokens) and set(tokens) <= set(WORDS)
    assert len(problem["tokens"]) == spec.tokens


def assert_rules(ref: dict, spec: Spec, normalize: str = "softmax", top_k: int = 1,
                 integers: bool = True) -> None:
    """Rules 2–6 on the reference's numbers, in every head."""
    scaled, allowed, weights, logits = ref["scaled"], ref["allowed"], ref["weights"], \
        ref["logits"]
    assert np.all(np.abs(scaled) <= BOUND + 1e-9), scaled  # rule 3
    if integers:  # integer inputs: scores are integers, scaled ones k / √d_head exactly
        unscaled = scaled / float(ref["scale"])
        assert np.allclose(unscaled, np.round(unscaled), atol=1e-9)
    k = top_k if normalize == "topk" else 1
    for h in range(scaled.shape[0]):  # rule 6: every head
        for i in range(scaled.shape[1]):
            row = np.sort(logits[h, i][allowed[i]])[::-1]
            if normalize != "softmax" and len(row) > k:  # rule 5: no tie where a choice is made
                assert row[k - 1] - row[k] > 1e-9, (h, i, row)
            if normalize == "hard" or spec.allow_uniform:
                continue
            kept = allowed[i] & (logits[h, i] >= row[min(k, len(row)) - 1] - 1e-12
                                 if normalize == "topk" else True)
            if kept.sum() < 2:
                continue  # one key: exempt
            shown = np.round(weights[h, i][kept], 4)
            assert not np.all(shown == shown[0]), ("uniform", h, i, shown)  # rule 4
            assert not np.any(shown == 1.0), ("one-hot", h, i, shown)


# (label, spec, options, seeds): 2,920 problems in all, each checked by the reference
VARIANTS = [
    ("scaled", Spec(3, 4), {}, 400),
    ("causal", Spec(4, 4), {"causal": True}, 250),
    ("multihead+output", Spec(4, 8, heads=2, output=True), {}, 200),
    ("gqa", Spec(3, 16, heads=4, kv_heads=2), {}, 100),
    ("d_head 9", Spec(3, 9), {}, 150),
    ("d_head 1", Spec(5, 1), {}, 150),
    ("hard", Spec(4, 4), {"normalize": "hard"}, 200),
    ("tenths", Spec(3, 4, numbers="tenths"), {}, 200),
    ("cross", Spec(3, 4, memory_tokens=4), {}, 200),
    ("unscaled dot, d_head 2", Spec(3, 2), {"score": "dot"}, 150),
    ("window", Spec(5, 4), {"window": 1}, 150),
    ("topk", Spec(4, 4), {"normalize": "topk", "top_k": 2}, 60),
    ("no projection", Spec(5, 4), {"project": False}, 150),
    ("general", Spec(3, 4), {"score": "general"}, 60),
    ("temperature", Spec(3, 4), {"temperature": 0.5}, 100),
    ("alibi, 2 heads", Spec(4, 8, heads=2), {"alibi": True, "causal": True}, 80),
    ("softcap", Spec(3, 4), {"softcap": 2.0}, 80),
    ("sinks", Spec(3, 4, sinks=True), {}, 80),
    ("out_in", Spec(3, 4), {"weight_layout": "out_in"}, 80),
    ("scale given, d_head 2", Spec(3, 2), {"scale": 0.5}, 80),
]


@pytest.mark.parametrize(("label", "spec", "options", "seeds"), VARIANTS,
                         ids=[v[0] for v in VARIANTS])
def test_the_rules_hold_on_every_seed(label, spec, options, seeds):
    config = build({}, None, **options)
    integers = spec.numbers == "integers" and not options.get("scale")
    for seed in range(seeds):
        problem = make_problem(spec, config, seed)
        assert_inputs(problem, spec)
        ref = reference(problem, spec, **options)
        assert_rules(ref, spec, options.get("normalize", "softmax"), options.get("top_k", 1),
                     integers)
        if options.get("alibi"):  # hand-friendly slopes 1/2, 1/4, …
            assert problem["alibi_slopes"] == [0.5, 0.25][:spec.heads]


def test_the_reference_agrees_with_the_pipeline():
    """The reference above is numpy of its own; on a few problems of each variant its weights
    are the pipeline's (so a rule checked on it is a rule of the problem attncli computes)."""
    for _label, spec, options, _seeds in VARIANTS:
        config = build({}, None, **options, heads=spec.heads, kv_heads=spec.kv_heads)
        for seed in range(3):
            problem = make_problem(spec, config, seed)
            trace = attncli.attend(Problem.from_mapping(problem, "test"), config)
            weights = trace["weights"].reshape(spec.heads, spec.tokens, -1)
            ref = reference(problem, spec, **options)
            np.testing.assert_allclose(weights, ref["weights"], rtol=0, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), tokens=st.integers(1, 6),
       d_model=st.sampled_from([1, 4, 9]), causal=st.booleans(),
       normalize=st.sampled_from(["softmax", "hard"]))
def test_the_rules_hold_for_any_seed_and_size(seed, tokens, d_model, causal, normalize):
    spec = Spec(tokens, d_model)
    options = {"causal": causal, "normalize": normalize}
    problem = make_problem(spec, build({}, None, **options), seed)
    assert_inputs(problem, spec)
    assert_rules(reference(problem, spec, **options), spec, normalize)


def test_allow_uniform_lets_uniform_rows_through():
    # d_model 1, 2 tokens: q_i k_j = x_i x_j w_q w_k, so two tokens with the same x give every
    # row two equal weights, 0.5 and 0.5, which rule 4 refuses unless asked
    def uniform(spec: Spec, seed: int) -> bool:
        ref = reference(make_problem(spec, build({}, None), seed), spec)
        return bool(np.any(np.all(np.round(ref["weights"], 4) == 0.5, axis=-1)))

    assert not any(uniform(Spec(2, 1), seed) for seed in range(100))
    assert sum(uniform(Spec(2, 1, allow_uniform=True), seed) for seed in range(100)) >= 10


@pytest.mark.parametrize("options", [{"rope": True}, {"qk_norm": "per-head"},
                                     {"score": "additive"}, {"dropout": 0.5}])
def test_options_with_their_own_arithmetic_keep_the_rules(options):
    """RoPE, QK-norm, the additive score and dropout: the inputs keep rule 1, and rules 3 and 4
    hold on the pipeline's own steps (checked here, not by the module)."""
    spec = Spec(4, 4)
    config = build({}, None, **options)
    for seed in range(40):
        problem = make_problem(spec, config, seed)
        assert_inputs(problem, spec)
        trace = attncli.attend(Problem.from_mapping(problem, "test"), config)
        scaled = trace["scaled_scores"] if "scaled_scores" in trace else trace["scores"]
        assert np.all(np.abs(scaled) <= BOUND + 1e-9)
        shown = np.round(trace["weights"], 4)
        assert not np.any(np.all(shown == shown[:, :1], axis=1))  # no uniform row
        assert not np.any(shown == 1.0)
        if "qk_norm" in options:  # the identity weights: RMSNorm alone
            assert problem["q_norm"] == problem["k_norm"] == [1.0] * 4
        if "score" in options:  # d_att = min(d_head, 2)
            assert np.array(problem["W_a"]).shape == np.array(problem["U_a"]).shape == (4, 2)
        if "dropout" in options:  # the mask is given, 0/1, one per weight
            mask = np.array(problem["dropout_mask"])
            assert mask.shape == (4, 4) and set(mask.ravel().tolist()) <= {0, 1}
            np.testing.assert_allclose(trace["dropped_weights"], trace["weights"] * mask * 2)


# ---------------------------------------------------------------------------------------------
# Determinism


def test_variant_seed_is_a_fixed_number():
    # sha256 of the JSON text '["hw3", "alice"]' (UTF-8), its first 8 bytes big-endian, >> 1:
    # computed once and written here, so a change of the derivation (or of the platform) fails.
    assert variant_seed("hw3", "alice") == 2873615973072215204
    assert 0 <= variant_seed("", "") < 2**63
    # an unambiguous join: the split between the two strings matters
    assert variant_seed("hw3", "alice") != variant_seed("hw3a", "lice")
    assert variant_seed("hw3", "alice") != variant_seed("alice", "hw3")
    assert variant_seed("hw3", "alice") != variant_seed("hw3", "bob")


def test_the_same_seed_gives_the_same_problem():
    spec, config = Spec(4, 8, heads=2, output=True), build({}, None, causal=True)
    first = make_problem(spec, config, 12345)
    assert make_problem(spec, config, 12345) == first
    assert make_problem(spec, config, 12346) != first
    assert json.loads(json.dumps(first)) == first  # JSON values only


def test_a_problem_of_a_fixed_seed_is_written_here():
    # The generator's output for one seed, written down once: an exercise made today is the
    # same exercise next term (numpy's default_rng streams; a change there shows here).
    # By hand: q = x·1 = [−1, 2], k = x·(−1) = [1, −2], d_head 1 (scale 1):
    #   scores = [[−1·1, −1·−2], [2·1, 2·−2]] = [[−1, 2], [2, −4]], all within [−4, 4]
    #   softmax row 0 = [e⁻¹, e²] / (e⁻¹ + e²) = [0.0474, 0.9526]: neither uniform nor one-hot
    #   softmax row 1 = [e², e⁻⁴] / (e² + e⁻⁴) = [0.9975, 0.0025]
    problem = make_problem(Spec(2, 1), build({}, None), 1)
    assert problem == {"tokens": ["kit", "mud"], "x": [[-1], [2]], "W_q": [[1]],
                       "W_k": [[-1]], "W_v": [[1]]}
    np.testing.assert_allclose(reference(problem, Spec(2, 1))["weights"][0],
                               [[0.0474, 0.9526], [0.9975, 0.0025]], atol=5e-5)


def test_tenths_are_one_decimal_and_weights_stay_integers():
    problem = make_problem(Spec(3, 4, numbers="tenths"), build({}, None), 3)
    x = [v for row in problem["x"] for v in row]
    assert all(isinstance(v, float) and len(repr(v).split(".")[1]) == 1 for v in x)
    assert any(v != round(v) for v in x)
    assert all(type(v) is int for row in problem["W_q"] for v in row)


def test_multihead_problems_say_their_heads():
    problem = make_problem(Spec(3, 8, heads=2, kv_heads=1), build({}, None), 0)
    assert problem["config"] == {"heads": 2, "kv_heads": 1}
    assert np.array(problem["W_k"]).shape == (8, 4)  # D × G·d_head
    assert "config" not in make_problem(Spec(3, 4), build({}, None), 0)


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(("spec", "options", "message"), [
    (Spec(3, 6), {}, "--d-model 6 --heads 1: d_head 6 is not a perfect square, so 1/√d_head is "
     "not exact; use d_head 1, 4, 9 or 16 (e.g. --d-model 4), or --no-scale"),
    (Spec(3, 8), {}, "d_head 8 is not a perfect square, so 1/√d_head is not exact; use d_head "
     "1, 4, 9 or 16 (e.g. --d-model 9)"),
    (Spec(3, 12, heads=2), {}, "--d-model 12 --heads 2: d_head 6 is not a perfect square, so "
     "1/√d_head is not exact; use d_head 1, 4, 9 or 16 (e.g. --d-model 8)"),
    (Spec(0, 4), {}, "--tokens 0: an exercise has 1 … 12 tokens"),
    (Spec(13, 4), {}, "--tokens 13: an exercise has 1 … 12 tokens"),
    (Spec(3, 4, memory_tokens=20), {}, "--memory-tokens 20: an exercise has 1 … 12"),
    (Spec(3, 40), {}, "--d-model 40: an exercise has 1 … 32 features"),
    (Spec(3, 4, heads=3), {}, "--d-model 4 --heads 3: d_model must be a multiple"),
    (Spec(3, 8, heads=4, kv_heads=3), {}, "--heads 4 --kv-heads 3: the heads must be a "
     "multiple"),
    (Spec(3, 4, numbers="halves"), {}, "--numbers halves: expected integers or tenths"),
    (Spec(3, 4, output=True), {"project": False}, "--no-project: the output step needs W_o"),
    (Spec(3, 4), {"heads": 2}, "the config's --heads 2 differs from the exercise's"),
    (Spec(3, 9), {"rope": True}, "--d-model 9 --rope: RoPE turns pairs of dims"),
    (Spec(3, 4), {"normalize": "topk", "top_k": 5}, "--top-k 5 is more than the 3 keys"),
    (Spec(3, 4, sinks=True), {"normalize": "hard"}, "sinks needs --normalize softmax"),
])
def test_refusals_name_the_options(spec, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        make_problem(spec, build({}, None, **options), 0)


def test_a_size_no_draw_fits_names_the_rule_broken_most():
    # 12 tokens, 4 heads of 4 dims, unscaled: 576 scores, some past 4 in nearly every draw
    with pytest.raises(InputError, match=re.escape(
            "--tokens 12 --d-model 16 --heads 4 --score dot: no hand-friendly problem in 20 "
            "draws (seed 0); rule 3, scaled scores in [−4, 4], failed most")):
        make_problem(Spec(12, 16, heads=4), build({}, None, score="dot"), 0, max_tries=20)


def test_the_scale_rule_does_not_apply_without_the_scaled_score():
    for options in ({"score": "dot"}, {"scale": 0.5}, {"score": "general"}):
        assert make_problem(Spec(3, 2), build({}, None, **options), 0)["x"]


# ---------------------------------------------------------------------------------------------
# The problem runs through `attncli compute` as it is


def test_compute_reads_the_problem_and_its_numbers_are_numpys(tmp_path):
    spec = Spec(4, 8, heads=2, output=True)
    problem = make_problem(spec, build({}, None, causal=True), 2024)
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem), encoding="utf-8")
    result = CliRunner().invoke(app, ["compute", str(path), "--causal", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    ref = reference(problem, spec, causal=True)
    assert doc["config"]["heads"] == 2  # from the problem's own config
    np.testing.assert_array_equal(doc["steps"]["queries"]["data"],
                                  ref["queries"].reshape(4, 2, 4).transpose(1, 0, 2))
    np.testing.assert_allclose(doc["steps"]["weights"]["data"], ref["weights"], atol=1e-12)
    assert doc["tokens"] == problem["tokens"]
