"""Each mistaken twin of attncli/mistakes.py called on its own, against the slip worked by hand
in the comments; and Plan.replace, how a twin takes a stage's place.

(tests/test_check_mistakes.py checks the diagnosis end to end, from answers worked in numpy.)
"""

from __future__ import annotations

import math

import array_api_compat.numpy as xp
import numpy as np
import pytest

from attncli import mistakes
from attncli.attention.masks import Mask
from attncli.attention.plan import plan
from attncli.attention.stages import (
    Context,
    DotScore,
    Dropout,
    MaskScores,
    Merge,
    Output,
    Project,
    Scale,
    Softmax,
)
from attncli.backend import Runtime
from attncli.config import AttentionConfig, Backend, DType
from attncli.errors import ConfigError
from attncli.problem import Problem
from attncli.shapes import prepare

RUNTIME = Runtime(Backend.numpy, "cpu", DType.float64, xp)
INF = math.inf
LN2, LN3 = math.log(2), math.log(3)
SOFTMAX = Softmax("weights", "weights = softmax(masked_scores)", overflow="weights")
CAUSAL = MaskScores("masked_scores", "masked_scores = scores, −∞ where masked (causal)",
                    mask=Mask(2, 2, causal=True))  # query 0 sees key 0, query 1 keys 0, 1


def context(**arrays) -> Context:
    return Context(runtime=RUNTIME, params=arrays.pop("params", {}), **arrays)


def one(matrix) -> np.ndarray:
    """A 2-D list as (B, H, rows, cols) = (1, 1, rows, cols) float64."""
    return np.array(matrix, dtype=np.float64)[None, None]


def test_over_queries_normalises_the_columns():
    # scores (2 queries × 3 keys) [[0, 0, ln 2], [ln 3, 0, 0]], softmax down each column:
    # column 0 [0, ln 3] → [1/4, 3/4]; column 1 [0, 0] → [1/2, 1/2]; column 2 [ln 2, 0] →
    # [2/3, 1/3]. Each column sums to 1, the rows do not.
    stage = mistakes.OverQueries("weights", "", inner=SOFTMAX)
    out = stage(xp, one([[0, 0, LN2], [LN3, 0, 0]]), context())
    np.testing.assert_allclose(out, one([[1 / 4, 1 / 2, 2 / 3], [3 / 4, 1 / 2, 1 / 3]]),
                               rtol=1e-12)


def test_transposed_weight_projects_with_w_transposed():
    # W = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]], x = [1, 2, 3, 4]:
    # x Wᵀ = [x·row 0, …] = [20, 60, 100, 140]; 2 heads of 2: [20, 60] and [100, 140];
    # b = [1, 0] and [0, −1] → [21, 60] and [100, 139]. (x W would be [80, 90, 100, 110].)
    W = np.arange(16.0).reshape(4, 4)
    W_q = np.stack([W[:, :2], W[:, 2:]])  # (H, d_in, d_head): head h owns columns 2h, 2h + 1
    b_q = np.array([[[1.0, 0.0]], [[0.0, -1.0]]])  # (H, 1, d_head)
    stage = mistakes.TransposedWeight("queries", "", heads=2)
    out = stage(xp, None, context(x=np.array([[[1.0, 2.0, 3.0, 4.0]]]),
                                  params={"W_q": W_q, "b_q": b_q}))
    assert out.shape == (1, 2, 1, 2)
    np.testing.assert_allclose(out[0, :, 0], [[21, 60], [100, 139]], rtol=1e-12)


def test_transposed_keeps_the_projection_and_refuses_a_non_square_w():
    keys = Project("keys", "keys = x W_k", from_input="keys_input", weight="W_k", bias="b_k",
                   heads=2, overflow=None)
    twin = mistakes.transposed(keys, square=True)
    assert type(twin) is mistakes.TransposedWeight
    assert (twin.step, twin.formula, twin.from_input, twin.weight, twin.bias, twin.heads) == (
        "keys", "keys = x W_k", "keys_input", "W_k", "b_k", 2)
    with pytest.raises(ConfigError, match="W_k is not square"):
        mistakes.transposed(keys, square=False)


def test_keys_as_values_gives_the_keys():
    # keys [[1, 2], [3, 4]]; the values (x W_v, W_v = I: [[5, 6], [7, 8]]) have their shape
    keys = one([[1, 2], [3, 4]])
    values = Project("values", "", from_input="values_input", weight="W_v", bias="b_v")
    stage = mistakes.KeysAsValues("values", "", inner=values)
    ctx = context(keys=keys, values_input=np.array([[[5.0, 6.0], [7.0, 8.0]]]),
                  params={"W_v": np.eye(2)[None], "b_v": None})
    np.testing.assert_allclose(stage(xp, None, ctx), keys, rtol=1e-12)
    # values 3 wide (W_v (1, 2, 3)) cannot be replaced by keys 2 wide
    ctx.params["W_v"] = np.ones((1, 2, 3))
    with pytest.raises(ConfigError, match="shapes differ"):
        stage(xp, None, ctx)


def test_swapped_scores_keys_against_queries():
    # q = [[1, 2], [0, 1]], k = [[3, 1], [1, −1]]: K Qᵀ = [[k0·q0, k0·q1], [k1·q0, k1·q1]]
    # = [[3 + 2, 1], [1 − 2, −1]] = [[5, 1], [−1, −1]] (Q Kᵀ would be [[5, −1], [1, −1]])
    q, k = one([[1, 2], [0, 1]]), one([[3, 1], [1, -1]])
    stage = mistakes.Swapped("scores", "", inner=DotScore("scores", ""))
    out = stage(xp, q, context(keys=k, keys_t=np.ascontiguousarray(k.transpose(0, 1, 3, 2))))
    np.testing.assert_allclose(out, one([[5, 1], [-1, -1]]), rtol=1e-12)
    with pytest.raises(ConfigError, match="shapes differ"):  # 3 queries, 2 keys
        stage(xp, one([[1, 2], [0, 1], [1, 1]]), context(keys=k))


def test_inverted_mask_masks_where_the_mask_allows():
    # causal allows key 0 for query 0, keys 0 and 1 for query 1; inverted: query 0 sees key 1
    # only, query 1 none (−∞, −∞), counted as a row with no key
    stage = mistakes.InvertedMask("masked_scores", "", mask=CAUSAL.mask)
    ctx = context()
    out = stage(xp, one([[1, 2], [3, 4]]), ctx)
    np.testing.assert_array_equal(np.isneginf(out), one([[1, 0], [1, 1]]).astype(bool))
    np.testing.assert_allclose(out[0, 0, 0, 1], 2, rtol=1e-12)


def test_zero_filled_masks_with_zero():
    # causal: the score of query 0 at key 1 becomes 0, not −∞
    out = mistakes.ZeroFilled("masked_scores", "", mask=CAUSAL.mask)(
        xp, one([[1, 2], [3, 4]]), context())
    np.testing.assert_allclose(out, one([[1, 0], [3, 4]]), rtol=1e-12)


def test_unmasked_passes_the_scores_on():
    scores = one([[1, 2], [3, 4]])
    assert mistakes.Skipped("masked_scores", "")(xp, scores, context()) is scores


def test_masked_after_zeroes_weights_without_renormalising():
    # softmax of the unmasked scores [[0, ln 3], [ln 2, ln 2]] = [[1/4, 3/4], [1/2, 1/2]];
    # causal then zeroes query 0's key 1: [[1/4, 0], [1/2, 1/2]], row 0 sums to 1/4
    stage = mistakes.MaskedAfter("weights", "", inner=SOFTMAX, mask=CAUSAL)
    out = stage(xp, one([[0, LN3], [LN2, LN2]]), context())
    np.testing.assert_allclose(out, one([[1 / 4, 0], [1 / 2, 1 / 2]]), rtol=1e-12)


@pytest.mark.parametrize(("decimals", "expected"), [(2, [0.33, 0.67]), (1, [0.3, 0.7])])
def test_rounded_weights(decimals, expected):
    # softmax([0, ln 2]) = [1/3, 2/3], rounded
    stage = mistakes.Rounded("weights", "", inner=SOFTMAX, decimals=decimals)
    np.testing.assert_allclose(stage(xp, one([[0, LN2]]), context()), one([expected]),
                               rtol=1e-12)


def test_mean_heads_averages_instead_of_concatenating():
    # head 0 [[1, 2]], head 1 [[3, 6]] → mean [[2, 4]], (B, seq_q, d_v) = (1, 1, 2)
    out = mistakes.MeanHeads("context", "")(xp, np.array([[[[1.0, 2.0]], [[3.0, 6.0]]]]),
                                            context())
    assert out.shape == (1, 1, 2)
    np.testing.assert_allclose(out, [[[2, 4]]], rtol=1e-12)


def test_unprojected_output_is_the_context():
    ctx = np.array([[[1.0, 2.0]]])
    assert mistakes.Skipped("output", "")(xp, ctx, context()) is ctx


def test_unrescaled_dropout_keeps_the_weights_as_they_are():
    # keep rows 2, 3 (first = 2) [[T, F], [F, T]], p = 0.5: kept weights stay (no × 2)
    keep = np.array([[[[True, True], [False, True], [True, False], [False, True]]]])
    stage = mistakes.Unrescaled("dropped_weights", "", probability=0.5, shape=(1, 1, 4, 2))
    out = stage(xp, one([[1 / 4, 3 / 4], [1 / 2, 1 / 2]]),
                context(dropout_mask=keep, first=2))
    np.testing.assert_allclose(out, one([[1 / 4, 0], [0, 1 / 2]]), rtol=1e-12)


def test_twin_takes_the_stages_place_and_says_the_slip():
    twin = mistakes.twin(mistakes.InvertedMask, CAUSAL)
    assert type(twin) is mistakes.InvertedMask
    assert twin.step == "masked_scores" and twin.mask is CAUSAL.mask
    assert twin.formula == ("masked_scores = scores, −∞ where masked (causal) "
                            "(Attending where the mask forbids: −∞ where it allows)")
    assert twin.row_local is False  # a mistake is tried on whole matrices
    # the twin's own fields; the parameters it shares with the stage (p, seed, shape) carried
    rounded = mistakes.twin(mistakes.Rounded, SOFTMAX, inner=SOFTMAX, decimals=3)
    assert (rounded.inner, rounded.decimals, rounded.overflow) == (SOFTMAX, 3, "weights")
    dropout = Dropout("dropped_weights", "d", probability=0.2, seed=5, shape=(1, 1, 2, 2))
    unrescaled = mistakes.twin(mistakes.Unrescaled, dropout)
    assert (unrescaled.probability, unrescaled.seed, unrescaled.shape) == (0.2, 5, (1, 1, 2, 2))


# --- Plan.replace and Plan.row_local --------------------------------------------------------

PROBLEM = Problem.from_mapping({"x": np.eye(3), "W_q": np.eye(3), "W_k": np.eye(3),
                                "W_v": np.eye(3), "W_o": np.eye(3)}, "plan.json")


def _plan(**config):
    config = AttentionConfig(**config)
    return plan(prepare(PROBLEM, config), config)


def _steps(p):
    return [stage.step for stage in p.stages]


def test_plan_replace_puts_a_stage_in_place():
    before = _plan(causal=True)
    assert _steps(before) == ["queries", "keys", "values", "scores", "scaled_scores",
                              "masked_scores", "weights", "head_context", "context", "output"]
    doubled = Scale("scaled_scores", "scaled_scores = scores × 2", factor=2.0)
    after = before.replace("scaled_scores", doubled)
    assert _steps(after) == _steps(before)
    assert after.stage("scaled_scores") is doubled
    assert all(a is b for a, b in zip(after.stages, before.stages, strict=True)
               if a.step != "scaled_scores")
    assert before.stage("scaled_scores") is not doubled  # the plan itself is unchanged


def test_plan_replace_with_none_leaves_the_stage_out():
    before = _plan()
    after = before.replace("output", None)
    assert "output" not in _steps(after) and after.stage("output") is None
    assert [type(s) for s in after.tail] == [Merge]
    assert [type(s) for s in before.tail] == [Merge, Output]


def test_plan_replace_an_unknown_step_is_a_key_error():
    with pytest.raises(KeyError, match="rotated_queries"):
        _plan().replace("rotated_queries", None)
    with pytest.raises(KeyError, match="masked_scores"):  # no mask, no mask stage
        _plan().replace("masked_scores", None)


def test_plan_row_local_and_blockwise():
    assert _plan(causal=True).row_local  # every row stage works on any block of rows
    dropped = _plan(dropout=0.5, seed=1)  # dropout draws the whole run's mask at each call:
    assert dropped.row_local and not dropped.blockwise  # one row, or all rows in one call
    assert dropped.replace("dropped_weights", None).blockwise
    # a twin runs on whole matrices
    right = _plan()
    assert not right.replace("weights", mistakes.twin(
        mistakes.OverQueries, right.stage("weights"), inner=right.stage("weights"))).row_local
