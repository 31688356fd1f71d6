"""The mistake of attention sinks (check.MISTAKES): the weights' rows renormalised to sum to 1
(the sink's share given to the keys), diagnosed from answers worked by plain numpy in this file.
Right answers get no diagnosis; a run without sinks has no such mistake."""

from __future__ import annotations

import numpy as np

from attncli import attend
from attncli.check import MISTAKES, Checker
from attncli.config import AttentionConfig
from attncli.problem import Problem
from tests.test_check_mistakes import answers, softmax

# Self-attention over 4 tokens of width 6, 2 heads of width 3, causal; sink logits 1.0 and
# 2.0, large enough that the sink takes a visible share of every row.
RNG = np.random.default_rng(12)
X = RNG.normal(size=(4, 6)).round(1)
WQ, WK, WV = (RNG.normal(size=(6, 6)).round(1) for _ in range(3))
SINKS = np.array([1.0, 2.0])
PROBLEM = Problem.from_mapping({"x": X, "W_q": WQ, "W_k": WK, "W_v": WV, "sinks": SINKS},
                               "sinks.json")
CONFIG = AttentionConfig(heads=2, causal=True)
CHECKER = Checker(PROBLEM, CONFIG, attend(PROBLEM, CONFIG))


def worked(renormalised=False):
    """Attention with sinks worked in numpy: the sink as one more column of the softmax,
    then dropped; or, the mistake, the rows renormalised to sum to 1."""
    def heads(a):
        return a.reshape(4, 2, 3).transpose(1, 0, 2)  # (2, 4, 3): head h columns 3h … 3h + 2

    q, k, v = heads(X @ WQ), heads(X @ WK), heads(X @ WV)
    masked = np.where(np.tril(np.ones((4, 4), dtype=bool)), q @ k.transpose(0, 2, 1) / np.sqrt(3),
                      -np.inf)
    sink_column = np.broadcast_to(SINKS[:, None, None], (2, 4, 1))
    weights = softmax(np.concatenate([masked, sink_column], axis=-1))[..., :-1]
    if renormalised:
        weights = weights / weights.sum(axis=-1, keepdims=True)
    context = (weights @ v).transpose(1, 0, 2).reshape(4, 6)
    return {"masked_scores": masked, "weights": weights, "context": context}


SHOWN = ("weights", "context")


def test_the_sink_matters_here():
    sums = worked()["weights"].sum(axis=-1)  # (2, 4): each row's mass on the keys
    assert sums.max() < 0.999 and sums.min() < 0.1  # 0.995 … 0.082


def test_renormalised_rows_are_diagnosed_from_numpy_answers():
    report = CHECKER.check(answers(worked(renormalised=True), SHOWN))
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.name == "sinks_renormalised"
    # written alone, the context shows it too
    report = CHECKER.check(answers(worked(renormalised=True), ("context",)))
    assert report.diagnosis is not None and report.diagnosis.name == "sinks_renormalised"


def test_right_answers_get_no_diagnosis():
    report = CHECKER.check(answers(worked(), ("masked_scores", *SHOWN)))
    assert report.ok and report.diagnosis is None


def test_no_sinks_no_such_mistake():
    config = AttentionConfig(heads=2)
    trace = attend(Problem.from_mapping({"x": X}, "p.json"), config)
    mistake = next(m for m in MISTAKES if m.name == "sinks_renormalised")
    assert mistake.change(config, trace) is None
