"""The mistakes of RoPE (check.MISTAKES), each diagnosed from answers worked by plain numpy in
this file: RoPE in the other layout (half ↔ interleaved), RoPE on the queries only (the keys
not rotated), the positions counted from 1. Right answers get no diagnosis; a run without
--rope has no such mistake."""

from __future__ import annotations

import numpy as np
import pytest

from attncli import attend
from attncli.check import MISTAKES, Checker
from attncli.config import AttentionConfig, RopeLayout
from attncli.problem import Problem
from tests.test_check_mistakes import answers, softmax

# Self-attention over 4 tokens of width 8, 2 heads of width 4 (R = 4: two pairs, so the two
# layouts differ), causal; θ = 10000, so f = (10000^0, 10000^(−2/4)) = (1, 0.01).
RNG = np.random.default_rng(5)
X = RNG.normal(size=(4, 8)).round(1)
WQ, WK, WV = ((RNG.normal(size=(8, 8)) * 1.5).round(1) for _ in range(3))
PROBLEM = Problem.from_mapping({"x": X, "W_q": WQ, "W_k": WK, "W_v": WV}, "rope.json")
CAUSAL = np.tril(np.ones((4, 4), dtype=bool))
F = np.array([1.0, 0.01])


def heads(a):
    return a.reshape(4, 2, 4).transpose(1, 0, 2)  # (2, 4, 4): head h columns 4h … 4h + 3


def turned(a, positions, interleaved):
    """Each pair of ``a`` (2, 4, 4) turned by position × f_i: pairs (0, 2), (1, 3) in the
    half layout, (0, 1), (2, 3) interleaved; x_a' = x_a cos − x_b sin, x_b' = x_a sin + x_b cos."""
    pairs = [(0, 1), (2, 3)] if interleaved else [(0, 2), (1, 3)]
    out = a.copy()
    for i, (da, db) in enumerate(pairs):
        angle = positions * F[i]  # (4,): one per token
        c, s = np.cos(angle), np.sin(angle)  # broadcast over the heads
        xa, xb = a[:, :, da], a[:, :, db]  # (2, 4)
        out[:, :, da] = xa * c - xb * s
        out[:, :, db] = xa * s + xb * c
    return out


def worked(interleaved=False, keys_rotated=True, start=0):
    """Attention with RoPE worked in numpy, each keyword one way of getting it wrong."""
    positions = np.arange(4) + start
    q, k, v = heads(X @ WQ), heads(X @ WK), heads(X @ WV)
    rq = turned(q, positions, interleaved)
    rk = turned(k, positions, interleaved) if keys_rotated else k
    masked = np.where(CAUSAL, rq @ rk.transpose(0, 2, 1) / 2.0, -np.inf)  # √d_head = 2
    weights = softmax(masked)
    context = (weights @ v).transpose(1, 0, 2).reshape(4, 8)
    return {"rotated_queries": rq, "rotated_keys": rk, "masked_scores": masked,
            "weights": weights, "context": context}


SHOWN = ("weights", "context")
CASES = {
    "rope_other_layout": (worked(interleaved=True), SHOWN),
    "rope_queries_only": (worked(keys_rotated=False), SHOWN),
    # the same shift on queries and keys leaves q·k as it was: only the rotated steps show it
    "rope_positions_from_one": (worked(start=1), ("rotated_queries", "rotated_keys", *SHOWN)),
}
CONFIGS = {layout: AttentionConfig(heads=2, causal=True, rope=True, rope_layout=layout)
           for layout in (RopeLayout.half, RopeLayout.interleaved)}


def checker(layout):
    return Checker(PROBLEM, CONFIGS[layout], attend(PROBLEM, CONFIGS[layout]))


CHECKERS = {layout: checker(layout) for layout in CONFIGS}


def test_rope_matters_here():
    right = worked()
    # 1.57 … : the layouts and the unrotated keys give weights far from the right ones
    assert np.abs(worked(interleaved=True)["weights"] - right["weights"]).max() > 0.05
    assert np.abs(worked(keys_rotated=False)["weights"] - right["weights"]).max() > 0.05
    # positions from 1: the same weights (RoPE depends on p_q − p_k only), other rotations
    np.testing.assert_allclose(worked(start=1)["weights"], right["weights"], atol=1e-12)
    assert np.abs(worked(start=1)["rotated_queries"] - right["rotated_queries"]).max() > 0.1


@pytest.mark.parametrize("name", list(CASES))
def test_each_mistake_is_diagnosed_from_numpy_answers(name):
    steps, shown = CASES[name]
    report = CHECKERS[RopeLayout.half].check(answers(steps, shown))
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.name == name


def test_the_half_layout_for_an_interleaved_run_is_the_other_layout():
    steps = worked(interleaved=False)
    report = CHECKERS[RopeLayout.interleaved].check(answers(steps, SHOWN))
    assert report.diagnosis is not None and report.diagnosis.name == "rope_other_layout"


@pytest.mark.parametrize("interleaved", [False, True])
def test_right_answers_get_no_diagnosis(interleaved):
    layout = RopeLayout.interleaved if interleaved else RopeLayout.half
    report = CHECKERS[layout].check(answers(worked(interleaved=interleaved),
                                            ("rotated_queries", "rotated_keys", *SHOWN)))
    assert report.ok and report.diagnosis is None


def test_no_rope_no_such_mistakes():
    config = AttentionConfig(heads=2, causal=True)
    trace = attend(PROBLEM, config)
    ours = [m for m in MISTAKES if m.name in CASES]
    assert len(ours) == len(CASES)
    assert all(m.change(config, trace) is None for m in ours)


def test_given_positions_have_no_positions_from_one():
    problem = Problem.from_mapping({"x": X, "W_q": WQ, "W_k": WK, "W_v": WV,
                                    "positions": [0, 1, 2, 3]}, "rope.json")
    config = CONFIGS[RopeLayout.half]
    trace = attend(problem, config)
    mistake = next(m for m in MISTAKES if m.name == "rope_positions_from_one")
    assert mistake.change(config, trace) is None
