"""attend(given=…): each step recorded as it follows from the given steps before it, the given
one going on in its place (check's grading carried forward). Compared with numpy worked here."""

from __future__ import annotations

import numpy as np
import pytest

from attncli import attend, load_problem
from attncli.attention.given import Given
from attncli.config import AttentionConfig, Backend

TOL = 1e-12
SEED004 = load_problem(sample="three-inputs")  # unscaled dot product (its config)
X, WQ, WK, WV = (SEED004[k] for k in ("x", "W_q", "W_k", "W_v"))
Q, K, V = X @ WQ, X @ WK, X @ WV


def softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_one_given_row_of_weights_goes_on_in_its_place():
    # Input 1's weights written [0.0, 0.5, 0.5]: its context 0.5·[2, 8, 0] + 0.5·[2, 6, 3]
    # = [2.0, 7.0, 1.5]; the other rows and the recorded weights are the computed ones.
    trace = attend(SEED004, given=Given({"weights": np.array([0.0, 0.5, 0.5])}, row=0))
    exact = softmax(Q @ K.T)
    np.testing.assert_allclose(trace["weights"], exact, rtol=TOL)
    np.testing.assert_allclose(trace["context"][0], [2.0, 7.0, 1.5], rtol=TOL)
    np.testing.assert_allclose(trace["context"][1:], (exact @ V)[1:], rtol=TOL)


def test_given_scores_give_the_weights_that_follow_from_them():
    scores = np.round(Q @ K.T / 3, 1)  # any numbers of the scores' shape
    trace = attend(SEED004, given=Given({"scores": scores}))
    np.testing.assert_allclose(trace["scores"], Q @ K.T, rtol=TOL)  # recorded as computed
    np.testing.assert_allclose(trace["weights"], softmax(scores), rtol=TOL)
    np.testing.assert_allclose(trace["context"], softmax(scores) @ V, rtol=TOL)


def test_given_queries_keys_and_values_replace_the_projections():
    q, k, v = Q + 0.5, K - 0.25, V * 2  # the (3, 3) projections, written differently
    trace = attend(SEED004, given=Given({"queries": q, "keys": k, "values": v}))
    np.testing.assert_allclose(trace["queries"], Q, rtol=TOL)
    np.testing.assert_allclose(trace["scores"], q @ k.T, rtol=TOL)
    np.testing.assert_allclose(trace["context"], softmax(q @ k.T) @ v, rtol=TOL)


def test_a_wrong_shaped_step_stands_in_for_nothing():
    plain = attend(SEED004)
    trace = attend(SEED004, given=Given({"weights": np.zeros((2, 3)), "queries": np.ones(3)}))
    for step in plain:
        np.testing.assert_allclose(trace[step.name], step.data, rtol=TOL)


def test_given_head_context_is_concatenated_and_projected():
    problem = load_problem(sample="multihead-einsum")  # 4 heads of width 2, W_o (8, 8), b_o
    plain = attend(problem)
    head_context = np.round(plain["head_context"], 2)  # (4, 5, 2)
    trace = attend(problem, given=Given({"head_context": head_context}))
    context = head_context.transpose(1, 0, 2).reshape(5, 8)  # head h in columns 2h, 2h + 1
    np.testing.assert_allclose(trace["head_context"], plain["head_context"], rtol=TOL)
    np.testing.assert_allclose(trace["context"], context, rtol=TOL)
    np.testing.assert_allclose(trace["output"], context @ problem["W_o"] + problem["b_o"],
                               rtol=TOL)


def test_torch_substitutes_as_numpy_does():
    pytest.importorskip("torch")
    given = Given({"weights": np.array([0.0, 0.5, 0.5])}, row=0)
    on_numpy = attend(SEED004, given=given)
    on_torch = attend(SEED004, AttentionConfig(score="dot", backend=Backend.torch), given=given)
    for step in on_numpy:
        np.testing.assert_allclose(on_torch[step.name], step.data, rtol=1e-10)
