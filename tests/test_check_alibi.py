"""The mistakes of ALiBi (check.MISTAKES), each diagnosed from answers worked by plain numpy in
this file: the bias added with the wrong sign, +m_h·|i − j|, and the slopes 2^(−8h/H) of the
power-of-two rule for H = 6 heads. Right answers get no diagnosis; a carried-forward check of
biased_scores uses the answers' own bias."""

from __future__ import annotations

import numpy as np
import pytest

from attncli import attend
from attncli.check import Checker
from attncli.config import AttentionConfig
from attncli.problem import Problem
from tests.test_check_mistakes import answers, softmax

# Self-attention over 5 tokens of width 12, 6 heads of width 2, causal. The right slopes for
# 6 heads (Press et al. 2022, Bloom): 4 heads' 1/4, 1/16, 1/64, 1/256, then 8 heads' odd
# ones 1/2, 1/8; the power-of-two rule would give 2^(−8h/6) = 0.397, 0.157, 0.0625, …
RNG = np.random.default_rng(11)
X = RNG.normal(size=(5, 12)).round(1)
WQ, WK, WV = (RNG.normal(size=(12, 12)).round(1) for _ in range(3))
SLOPES = np.array([1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8])
POWER_OF_TWO = 2.0 ** (-8 * np.arange(1, 7) / 6)
PROBLEM = Problem.from_mapping({"x": X, "W_q": WQ, "W_k": WK, "W_v": WV}, "alibi.json")
CONFIG = AttentionConfig(heads=6, alibi=True, causal=True)
CHECKER = Checker(PROBLEM, CONFIG, attend(PROBLEM, CONFIG))


def worked(slopes=SLOPES, sign=-1.0):
    """Attention with ALiBi worked in numpy: bias = sign · m_h · |i − j|."""
    def heads(a):
        return a.reshape(5, 6, 2).transpose(1, 0, 2)  # (6, 5, 2): head h columns 2h, 2h + 1

    q, k, v = heads(X @ WQ), heads(X @ WK), heads(X @ WV)
    i, j = np.arange(5)[:, None], np.arange(5)[None, :]
    bias = sign * slopes[:, None, None] * np.abs(i - j)  # (6, 5, 5)
    biased = q @ k.transpose(0, 2, 1) / np.sqrt(2) + bias
    masked = np.where(j <= i, biased, -np.inf)
    weights = softmax(masked)
    context = (weights @ v).transpose(1, 0, 2).reshape(5, 12)
    return {"bias": bias, "biased_scores": biased, "weights": weights, "context": context}


SHOWN = ("weights", "context")
CASES = {"alibi_sign": worked(sign=1.0), "alibi_power_of_two_slopes": worked(POWER_OF_TWO)}


def test_the_slopes_used_are_press_et_al():
    np.testing.assert_array_equal(attend(PROBLEM, CONFIG)["bias"][:, 4, 0], -4 * SLOPES)


@pytest.mark.parametrize("name", list(CASES))
def test_each_mistake_is_diagnosed_from_numpy_answers(name):
    report = CHECKER.check(answers(CASES[name], SHOWN))
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.name == name


@pytest.mark.parametrize("shown", [SHOWN, ("bias", "biased_scores", "weights", "context")])
def test_right_answers_get_no_diagnosis(shown):
    report = CHECKER.check(answers(worked(), shown))
    assert report.ok and report.diagnosis is None


def test_a_wrong_bias_is_carried_into_biased_scores():
    # the bias with the wrong sign, then biased_scores added right from it: charged once
    steps = worked(sign=1.0)
    report = CHECKER.check(answers(steps, ("bias", "biased_scores")))
    verdicts = {v.step: v.verdict for v in report.verdicts}
    assert verdicts["bias"] == "wrong"
    assert verdicts["biased_scores"] == "carried forward"
    assert report.diagnosis is not None and report.diagnosis.name == "alibi_sign"
