"""--rope (attncli/attention/rope.py, the Rotate stage): worked numbers, invariants, positions,
errors and both backends. Parity with transformers' Llama and GPT-J: tests/transformers/."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem

X = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]  # hello-shiny-sun


def _run(arrays, steps=None, **options):
    return attend(Problem.from_mapping(arrays, "rope.json"), AttentionConfig(**options),
                  steps=steps)


def test_worked_example_rotates_the_first_pair_by_the_position():
    # --no-project, d_head 3, --rotary-dim 2: pair (0, 1) turns by position × 10000^0 = p rad.
    # "shiny" at position 1: (0.53 cos 1 − 0.34 sin 1, 0.34 cos 1 + 0.53 sin 1, 0.98)
    #   = (0.28636022 − 0.28610013, 0.18370278 + 0.44597962, 0.98) = (0.00026009, 0.62968240)
    trace = _run({"x": X}, project=False, rope=True, rotary_dim=2)
    rotated = trace["rotated_queries"]
    np.testing.assert_allclose(rotated[0], X[0], atol=1e-15)  # position 0: unchanged
    np.testing.assert_allclose(rotated[1], [0.00026009, 0.62968240, 0.98], atol=5e-9)
    c, s = math.cos(2), math.sin(2)
    np.testing.assert_allclose(rotated[2], [0.29 * c - 0.54 * s, 0.54 * c + 0.29 * s, 0.93],
                               atol=1e-15)
    np.testing.assert_allclose(trace["rotated_keys"], rotated, atol=0)


def test_layouts_pair_different_dims():
    # d_head 4: half pairs (0, 2), (1, 3); interleaved (0, 1), (2, 3): the same rotation of
    # the dims permuted 0, 2, 1, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    half = _run({"x": x}, project=False, rope=True, rope_theta=100.0)["rotated_queries"]
    perm = [0, 2, 1, 3]
    inter = _run({"x": x[:, perm]}, project=False, rope=True, rope_theta=100.0,
                 rope_layout="interleaved")["rotated_queries"]
    np.testing.assert_allclose(inter[:, perm], half, atol=1e-14)
    assert np.abs(half - _run({"x": x}, project=False, rope=True, rope_theta=100.0,
                              rope_layout="interleaved")["rotated_queries"]).max() > 0.1


def test_scores_depend_on_the_position_difference_only():
    # q·k after RoPE depends on p_q − p_k: every position moved by 1000 gives the same scores
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 8))
    near = _run({"x": x}, project=False, rope=True)["scores"]
    far = _run({"x": x, "positions": list(range(1000, 1006)),
                "key_positions": list(range(1000, 1006))}, project=False, rope=True)["scores"]
    np.testing.assert_allclose(far, near, atol=1e-12)


def test_bottom_right_puts_the_queries_at_the_end_of_the_keys():
    rng = np.random.default_rng(2)
    x, memory = rng.normal(size=(2, 4)), rng.normal(size=(5, 4))
    trace = _run({"x": x, "memory": memory}, project=False, rope=True, rotary_dim=2,
                 causal_align="bottom-right")
    given = _run({"x": x, "memory": memory, "positions": [3, 4]}, project=False, rope=True,
                 rotary_dim=2)
    np.testing.assert_allclose(trace["rotated_queries"], given["rotated_queries"], atol=0)
    c, s = math.cos(3), math.sin(3)  # query 0 at position 3 = 5 − 2
    np.testing.assert_allclose(trace["rotated_queries"][0, :2],
                               [x[0, 0] * c - x[0, 1] * s, x[0, 1] * c + x[0, 0] * s], atol=1e-15)


def test_query_row_blocks_and_torch_agree_with_the_whole_run():
    rng = np.random.default_rng(4)
    arrays = {"x": rng.normal(size=(7, 8)), "W_q": rng.normal(size=(8, 8)),
              "W_k": rng.normal(size=(8, 8)), "W_v": rng.normal(size=(8, 8)),
              "W_o": rng.normal(size=(8, 8)),
              "rope_scaling": {"rope_type": "linear", "factor": 2.0}}
    options = {"heads": 2, "rope": True, "causal": True}
    whole = _run(arrays, **options)
    blocks = _run(arrays, steps=["output"], **options)  # query blocks, no n×n step
    np.testing.assert_allclose(blocks["output"], whole["output"], atol=1e-12)
    one = attend(Problem.from_mapping(arrays, "rope.json"), AttentionConfig(**options), query=5)
    np.testing.assert_allclose(one["output"], whole["output"][5:6], atol=1e-12)
    pytest.importorskip("torch")
    for steps in (None, ["output"]):  # whole, and torch's fused SDPA after the rotation
        torch_run = _run(arrays, steps=steps, backend="torch", **options)
        np.testing.assert_allclose(torch_run["output"], whole["output"], atol=1e-12)


@pytest.mark.parametrize(("arrays", "options", "message"), [
    ({"positions": [0, 1.5, 2]}, {}, "rope.json: positions: positions are integers, found 1.5"),
    ({"positions": [0, 1]}, {}, "rope.json: positions: expected (3,), one per query, got (2,)"),
    ({"key_positions": [[0, 1, 2, 3]]}, {}, "rope.json: key_positions: expected (3,), one per "
     "key, got (1, 4)"),
    ({"rope_scaling": {"rope_type": "dynamic", "factor": 2}}, {},
     "rope.json: rope_scaling: rope_type 'dynamic' is not one attncli computes; known: "
     "default, linear, llama3, yarn"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8}}, {},
     "rope.json: rope_scaling: rope_type llama3 needs low_freq_factor, high_freq_factor, "
     "original_max_position_embeddings"),
    ({}, {"rotary_dim": 4}, "--rotary-dim 4 is more than the 3 dims of a head"),
    ({}, {"rotary_dim": None}, "RoPE turns pairs of dims: the head width 3 is odd; give "
     "--rotary-dim R, an even R"),
])
def test_bad_input_is_named(arrays, options, message):
    with pytest.raises((InputError, ConfigError)) as error:
        _run({"x": X, **arrays}, project=False, rope=True, **{"rotary_dim": 2, **options})
    assert str(error.value) == message


def test_options_need_rope_and_inputs_without_it_warn():
    with pytest.raises(ConfigError, match="^--rope-theta needs --rope$"):
        AttentionConfig(rope_theta=500000.0).validate()
    with pytest.raises(ConfigError, match="--rotary-dim must be an even count from 2, got 3"):
        AttentionConfig(rope=True, rotary_dim=3).validate()
    trace = _run({"x": X, "positions": [0, 1, 2]}, project=False)
    assert "rope.json: positions not used: there is no --rope" in trace.warnings
    assert "rotated_queries" not in trace.names()
