"""The mistakes of soft-capping, sliding windows and a set scale (check.MISTAKES), each
diagnosed from answers worked by plain numpy in this file: soft-capping after the mask or before
the scaling, the window off by one either way, 1/√d_head where the run sets its scale (Gemma's
query_pre_attn_scalar). Right answers get no diagnosis."""

from __future__ import annotations

import numpy as np
import pytest

from attncli import attend
from attncli.check import Checker
from attncli.config import AttentionConfig
from attncli.problem import Problem
from tests.test_check_mistakes import answers, softmax

# Self-attention over 5 tokens of width 6, 2 heads of width 3 (1/√3 = 0.577 ≠ the set scale
# 0.2 = 25**-0.5, Gemma's query_pre_attn_scalar 25); soft-cap 1.5, below many scaled scores;
# causal with a window of 1 (Hugging Face's sliding_window = 2: keys i − 1 and i).
RNG = np.random.default_rng(7)
X = RNG.normal(size=(5, 6)).round(1)
WQ, WK, WV = ((RNG.normal(size=(6, 6)) * 2).round(1) for _ in range(3))
SCALE, CAP, WINDOW = 0.2, 1.5, 1
PROBLEM = Problem.from_mapping({"x": X, "W_q": WQ, "W_k": WK, "W_v": WV}, "softcap.json")
CONFIG = AttentionConfig(heads=2, scale=SCALE, softcap=CAP, causal=True, window=WINDOW)
CHECKER = Checker(PROBLEM, CONFIG, attend(PROBLEM, CONFIG))


def allowed(window):
    i, j = np.arange(5)[:, None], np.arange(5)[None, :]
    return (j <= i) & (i - j <= window)


def worked(scale=SCALE, window=WINDOW, cap="before_mask"):
    """Attention worked in numpy, each keyword one way of getting it wrong."""
    def heads(a):
        return a.reshape(5, 2, 3).transpose(1, 0, 2)  # (2, 5, 3): head h columns 3h … 3h + 2

    q, k, v = heads(X @ WQ), heads(X @ WK), heads(X @ WV)
    scores = q @ k.transpose(0, 2, 1)  # (2, 5, 5)
    mask = allowed(window)
    if cap == "before_mask":  # right: C·tanh(scores · scale / C), then −∞ where masked
        capped = CAP * np.tanh(scores * scale / CAP)
        masked = np.where(mask, capped, -np.inf)
    elif cap == "after_mask":  # −∞ where masked, then capped: masked keys get −C
        capped = scores * scale
        masked = CAP * np.tanh(np.where(mask, capped, -np.inf) / CAP)
    else:  # before the scaling: scale · C·tanh(scores / C)
        capped = scale * CAP * np.tanh(scores / CAP)
        masked = np.where(mask, capped, -np.inf)
    weights = softmax(masked)
    context = (weights @ v).transpose(1, 0, 2).reshape(5, 6)
    return {"capped_scores": capped, "masked_scores": masked, "weights": weights,
            "context": context}


SHOWN = ("weights", "context")
CASES = {
    "softcap_after_mask": worked(cap="after_mask"),
    "softcap_before_scaling": worked(cap="before_scaling"),
    "window_off_by_one": worked(window=WINDOW + 1),  # --window S for sliding_window = S
    "window_off_by_one_short": worked(window=WINDOW - 1),
    "sqrt_d_head_for_scalar": worked(scale=1 / np.sqrt(3)),
}


def test_the_cap_matters_here():
    # scaled scores beyond ±C, where C·tanh(s/C) is far from s
    assert np.abs(worked()["capped_scores"]).max() > 1.2
    assert np.abs(worked(cap="after_mask")["capped_scores"]).max() > 2 * CAP


@pytest.mark.parametrize("name", list(CASES))
def test_each_mistake_is_diagnosed_from_numpy_answers(name):
    report = CHECKER.check(answers(CASES[name], SHOWN))
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.name == name


def test_right_answers_get_no_diagnosis():
    report = CHECKER.check(answers(worked(), ("capped_scores", "masked_scores", *SHOWN)))
    assert report.ok and report.diagnosis is None


def test_no_cap_no_window_no_scale_no_such_mistakes():
    from attncli.check import MISTAKES

    config = AttentionConfig(heads=2)
    trace = attend(PROBLEM, config)
    ours = [m for m in MISTAKES if m.name in CASES]
    assert len(ours) == len(CASES)
    assert all(m.change(config, trace) is None for m in ours)
