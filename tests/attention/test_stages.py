"""Each stage of attncli/attention/stages.py called on its own, on a Context built by hand,
against numbers worked in the comments or torch's own functions (never another attncli
function computing the same thing).

Shapes as the stages take them: queries … head_context (B, H, rows, ·), context (B, rows, H·d_v).
"""

from __future__ import annotations

import math

import array_api_compat.numpy as xp
import numpy as np
import pytest

from attncli.attention.masks import Mask
from attncli.attention.stages import (
    AdditiveScore,
    Context,
    DotScore,
    Dropout,
    GeneralScore,
    Hard,
    MaskScores,
    Merge,
    Output,
    Project,
    Scale,
    Softmax,
    Stage,
    TopK,
    WeightedSum,
    sdpa,
)
from attncli.backend import Runtime
from attncli.config import Backend, DType

RUNTIME = Runtime(Backend.numpy, "cpu", DType.float64, xp)
INF = math.inf
LN2, LN3 = math.log(2), math.log(3)


def context(**arrays) -> Context:
    """A numpy Context holding ``arrays`` (params: the ``params`` keyword, else none)."""
    return Context(runtime=RUNTIME, params=arrays.pop("params", {}), **arrays)


def one(matrix) -> np.ndarray:
    """A 2-D list as (B, H, rows, cols) = (1, 1, rows, cols) float64."""
    return np.array(matrix, dtype=np.float64)[None, None]


# --- Project ---------------------------------------------------------------------------------


def test_project_per_head_weights_and_bias_by_hand():
    # x = [[1, 2], [3, 4]] (2 tokens, d_in 2); head 0: W = [[1], [0]] (column 0 of x), b = 10
    # → [11, 13]; head 1: W = [[1], [1]] (row sums 3, 7), b = −1 → [2, 6]
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    W = np.array([[[1.0], [0.0]], [[1.0], [1.0]]])  # (H, d_in, d_head) = (2, 2, 1)
    b = np.array([[[10.0]], [[-1.0]]])  # (H, 1, d_head)
    stage = Project("queries", "queries = x W_q + b_q", heads=2)
    out = stage(xp, None, context(x=x, params={"W_q": W, "b_q": b}))
    assert out.shape == (1, 2, 2, 1)  # (B, H, seq, d_head)
    np.testing.assert_allclose(out[0, :, :, 0], [[11, 13], [2, 6]], rtol=1e-12)


def test_project_reads_its_own_input_and_weights():
    # keys from keys_input = [[1, 1]] with W_k = [[2], [3]] (no bias): 1·2 + 1·3 = 5; x and
    # W_q are there too and must not be used
    stage = Project("keys", "keys = memory W_k", from_input="keys_input", weight="W_k",
                    bias="b_k", heads=1)
    ctx = context(x=np.array([[[7.0, 7.0]]]), keys_input=np.array([[[1.0, 1.0]]]),
                  params={"W_q": np.zeros((1, 2, 1)), "b_q": None,
                          "W_k": np.array([[[2.0], [3.0]]]), "b_k": None})
    np.testing.assert_allclose(stage(xp, None, ctx), [[[[5.0]]]], rtol=1e-12)


def test_project_without_weights_splits_columns():
    # x = [1, 2, 3, 4, 5, 6] in 3 heads: head h gets columns 2h, 2h + 1
    x = np.arange(1.0, 7.0)[None, None]  # (B, seq, d_in) = (1, 1, 6)
    out = Project("queries", "queries = x", heads=3)(xp, None,
                                                     context(x=x, params={"W_q": None,
                                                                          "b_q": None}))
    assert out.shape == (1, 3, 1, 2)
    np.testing.assert_allclose(out[0, :, 0], [[1, 2], [3, 4], [5, 6]], rtol=1e-12)


def _multihead(torch, x, in_proj=None):
    """torch.nn.MultiheadAttention (4 wide, 2 heads, no biases, out_proj the identity) on
    ``x`` (B, seq, 4): its output and per-head weights (B, H, seq, seq), as numpy."""
    mha = torch.nn.MultiheadAttention(4, 2, bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.from_numpy(
            np.concatenate([np.eye(4)] * 3) if in_proj is None else in_proj))
        mha.out_proj.weight.copy_(torch.eye(4, dtype=torch.float64))
        t = torch.from_numpy(x)
        output, weights = mha(t, t, t, need_weights=True, average_attn_weights=False)
    return output.numpy(), weights.numpy()


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_project_heads_are_multihead_attentions(torch, weighted):
    # nn.MultiheadAttention splits q, k into heads of columns 2h, 2h + 1 and gives each head's
    # weights softmax(q_h k_hᵀ / √2): the same weights from Project's heads mean the same split
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4))  # (B, seq, d_model)
    in_proj = rng.normal(size=(12, 4)) if weighted else None  # torch's (out, in) layout
    _, expected = _multihead(torch, x, in_proj)
    params = {"b_q": None, "b_k": None, "W_q": None, "W_k": None}
    if weighted:  # in_out: x @ W, head h owning W's columns 2h, 2h + 1
        W_q, W_k = in_proj[:4].T, in_proj[4:8].T
        params["W_q"] = np.stack([W_q[:, :2], W_q[:, 2:]])  # (H, d_in, d_head)
        params["W_k"] = np.stack([W_k[:, :2], W_k[:, 2:]])
    ctx = context(x=x, keys_input=x, params=params)
    queries = Project("queries", "", heads=2)(xp, None, ctx)
    keys = Project("keys", "", from_input="keys_input", weight="W_k", bias="b_k",
                   heads=2)(xp, None, ctx)
    assert queries.shape == keys.shape == (2, 2, 3, 2)
    weights = _softmax(queries @ keys.transpose(0, 1, 3, 2) / math.sqrt(2))
    np.testing.assert_allclose(weights, expected, rtol=1e-12)


# --- scores -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transposed", [False, True])
def test_dot_score_by_hand(transposed):
    # q = [[1, 2], [0, 1]], k = [[3, 1], [1, −1]]:
    # q0·k0 = 3 + 2 = 5, q0·k1 = 1 − 2 = −1, q1·k0 = 1, q1·k1 = −1
    q, k = one([[1, 2], [0, 1]]), one([[3, 1], [1, -1]])
    keys_t = np.ascontiguousarray(k.transpose(0, 1, 3, 2)) if transposed else None
    out = DotScore("scores", "scores = queries keysᵀ")(xp, q, context(keys=k, keys_t=keys_t))
    np.testing.assert_allclose(out, one([[5, -1], [1, -1]]), rtol=1e-12)


def test_general_score_by_hand():
    # q = [1, 2], W_a = [[1, 0], [0, 2]]: q W_a = [1, 4]; · [3, 4] = 3 + 16 = 19, · [1, 0] = 1
    q, k = one([[1, 2]]), one([[3, 4], [1, 0]])
    W_a = np.array([[1.0, 0.0], [0.0, 2.0]])
    out = GeneralScore("scores", "")(xp, q, context(keys=k, params={"W_a": W_a}))
    np.testing.assert_allclose(out, one([[19, 1]]), rtol=1e-12)


@pytest.mark.parametrize("with_bias", [True, False])
def test_additive_score_matches_torch_tanh(torch, with_bias):
    # e_ij = v_aᵀ tanh(q_i W_a + k_j U_a + b_a), one (i, j) at a time with torch's tanh
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(1, 2, 2, 3)), rng.normal(size=(1, 2, 4, 3))  # (B, H, n, d_k)
    W_a, U_a = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    v_a, b_a = rng.normal(size=5), rng.normal(size=5)
    params = {"W_a": W_a, "U_a": U_a, "v_a": v_a, **({"b_a": b_a} if with_bias else {})}
    out = AdditiveScore("scores", "")(xp, q, context(keys=k, params=params))
    T = torch.from_numpy
    expected = np.empty((1, 2, 2, 4))
    for h in range(2):
        for i in range(2):
            for j in range(4):
                hidden = T(q[0, h, i]) @ T(W_a) + T(k[0, h, j]) @ T(U_a)
                if with_bias:
                    hidden = hidden + T(b_a)
                expected[0, h, i, j] = float(torch.tanh(hidden) @ T(v_a))
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_additive_score_by_hand():
    # q W_a = [1, 2]·[1, 1] = 3; k U_a = [3, 4]·[0.5, 0] = 1.5; b_a = −4: 2 tanh(0.5)
    params = {"W_a": np.array([[1.0], [1.0]]), "U_a": np.array([[0.5], [0.0]]),
              "v_a": np.array([2.0]), "b_a": np.array([-4.0])}
    out = AdditiveScore("scores", "")(xp, one([[1, 2]]), context(keys=one([[3, 4]]),
                                                                 params=params))
    np.testing.assert_allclose(out, one([[2 * math.tanh(0.5)]]), rtol=1e-12)


def test_score_bounds_by_hand():
    # largest query norm ‖[3, 4]‖ = 5, largest key norm ‖[0, 2]‖ = 2: |q·k| ≤ 10
    q, k = one([[3, 4], [1, 0]]), one([[0, 2], [1, 1]])
    assert math.isclose(DotScore("scores", "").bound(xp, q, k, {}), 10, rel_tol=1e-12)
    # general with W_a = 2 I: ‖q W_a‖ ≤ 10, so |scores| ≤ 20
    W_a = 2 * np.eye(2)
    assert math.isclose(GeneralScore("scores", "").bound(xp, q, k, {"W_a": W_a}), 20,
                        rel_tol=1e-12)
    # additive: |v_aᵀ tanh(…)| ≤ Σ|v_a| = 1 + 2
    v_a = np.array([1.0, -2.0])
    assert math.isclose(AdditiveScore("scores", "").bound(xp, q, k, {"v_a": v_a}), 3,
                        rel_tol=1e-12)
    # a block of no query rows: nothing to bound
    assert DotScore("scores", "").bound(xp, np.zeros((1, 1, 0, 2)), k, {}) == 0.0


# --- Scale ------------------------------------------------------------------------------------


def test_scale_not_in_place_leaves_the_scores():
    # [1, −2] × 0.5 = [0.5, −1]
    scores = one([[1, -2]])
    out = Scale("scaled_scores", "", factor=0.5)(xp, scores, context(inplace=False))
    np.testing.assert_allclose(out, one([[0.5, -1]]), rtol=1e-12)
    assert out is not scores
    np.testing.assert_allclose(scores, one([[1, -2]]), rtol=1e-12)  # untouched


def test_scale_in_place_overwrites_the_scores():
    scores = one([[1, -2]])
    out = Scale("scaled_scores", "", factor=0.5)(xp, scores, context(inplace=True))
    assert out is scores
    np.testing.assert_allclose(scores, one([[0.5, -1]]), rtol=1e-12)


# --- MaskScores -------------------------------------------------------------------------------


def test_mask_scores_takes_the_blocks_rows_of_a_causal_mask():
    # causal over 3 queries and 3 keys; the block is query rows 1 and 2 (first = 1):
    # row 1 sees keys 0, 1 (key 2 → −∞), row 2 sees all three; 2 heads, the same mask
    scores = np.arange(12.0).reshape(1, 2, 2, 3)  # (B, H, rows, seq_k)
    ctx = context(first=1)
    out = MaskScores("masked_scores", "", mask=Mask(3, 3, causal=True))(xp, scores, ctx)
    blocked = np.array([[False, False, True], [False, False, False]])
    np.testing.assert_array_equal(np.isneginf(out), np.broadcast_to(blocked, (1, 2, 2, 3)))
    np.testing.assert_allclose(out[~np.isneginf(out)], scores[~np.isneginf(out)], rtol=1e-12)


def test_mask_scores_empty_rows_are_counted_once_over_the_heads():
    # given mask (B = 2, 1, 2 queries, 2 keys), True = may attend:
    #   item 0 [[T, F], [T, T]]; item 1 [[F, F], [T, F]]: item 1's query 0 sees no key
    # 3 heads share that row, but it is one row with no key: the executor counts 1
    from attncli.attention.executor import _empty_rows

    given = np.array([[[[True, False], [True, True]]], [[[False, False], [True, False]]]])
    scores = np.ones((2, 3, 2, 2))
    ctx = context(mask=given)
    out = MaskScores("masked_scores", "", mask=Mask(2, 2, mask=given))(xp, scores, ctx)
    assert _empty_rows(Mask(2, 2, mask=given), xp, ctx, 0, 2) == 1
    assert _empty_rows(Mask(2, 2, mask=given), xp, ctx, 1, 1) == 0  # row 1 alone
    np.testing.assert_array_equal(np.isneginf(out), np.broadcast_to(~given, (2, 3, 2, 2)))
    assert np.all(np.isneginf(out[1, :, 0]))  # the empty row: −∞ for every key and head


def test_mask_scores_given_mask_rows_follow_first():
    # the same given mask, block of query row 1 alone (first = 1): item 0 [T, T], item 1
    # [T, F]; no empty row
    given = np.array([[[[True, False], [True, True]]], [[[False, False], [True, False]]]])
    ctx = context(mask=given, first=1)
    out = MaskScores("masked_scores", "", mask=Mask(2, 2, mask=given))(
        xp, np.ones((2, 1, 1, 2)), ctx)
    np.testing.assert_array_equal(np.isneginf(out[:, 0, 0]), [[False, False], [False, True]])


def test_mask_scores_then_softmax_is_sdpa_with_attn_mask(torch):
    # causal with a window of 1 over 4 tokens: query i sees keys i − 1 and i, written out;
    # torch SDPA with a boolean attn_mask (True = may attend) and values = I returns
    # softmax(masked scores): the stage's −∞ must sit exactly where SDPA masks
    allowed = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=bool)
    rng = np.random.default_rng(8)
    q, k = rng.normal(size=(1, 2, 4, 3)), rng.normal(size=(1, 2, 4, 3))
    scores = q @ k.transpose(0, 1, 3, 2)
    out = MaskScores("masked_scores", "", mask=Mask(4, 4, causal=True, window=1))(
        xp, scores, context())
    T = torch.from_numpy
    expected = torch.nn.functional.scaled_dot_product_attention(
        T(q), T(k), torch.eye(4, dtype=torch.float64).expand(1, 2, 4, 4),
        attn_mask=T(allowed), scale=1.0)
    np.testing.assert_allclose(torch.softmax(T(out), dim=-1).numpy(), expected.numpy(),
                               rtol=1e-12, atol=1e-300)


# --- Softmax, Hard, TopK ----------------------------------------------------------------------


def test_softmax_by_hand():
    # softmax([0, ln 3]) = [1, 3] / 4; softmax([ln 2, ln 2]) = [1/2, 1/2]
    out = Softmax("weights", "")(xp, one([[0, LN3], [LN2, LN2]]), context())
    np.testing.assert_allclose(out, one([[1 / 4, 3 / 4], [1 / 2, 1 / 2]]), rtol=1e-12)


def test_softmax_temperature_by_hand():
    # softmax([0, 2 ln 3] / 2) = softmax([0, ln 3]) = [1/4, 3/4]
    out = Softmax("weights", "", temperature=2.0)(xp, one([[0, 2 * LN3]]), context())
    np.testing.assert_allclose(out, one([[1 / 4, 3 / 4]]), rtol=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_softmax_matches_torch(torch, temperature):
    scores = np.random.default_rng(1).normal(size=(2, 2, 3, 5))
    expected = torch.softmax(torch.from_numpy(scores) / temperature, dim=-1).numpy()
    out = Softmax("weights", "", temperature=temperature)(xp, scores.copy(), context())
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_softmax_rows_with_no_key_get_zeros():
    # row 0: every key masked → zeros (not NaN); row 1: only key 0 → [1, 0]
    for temperature in (1.0, 2.0):
        out = Softmax("weights", "", temperature=temperature)(
            xp, one([[-INF, -INF], [0, -INF]]), context())
        np.testing.assert_allclose(out, one([[0, 0], [1, 0]]), rtol=1e-12)


def test_softmax_in_place_only_when_allowed():
    scores = one([[0, LN3]])
    out = Softmax("weights", "")(xp, scores, context(inplace=False))
    np.testing.assert_allclose(scores, one([[0, LN3]]), rtol=1e-12)  # untouched
    out = Softmax("weights", "")(xp, scores, context(inplace=True))
    assert out is scores  # the scores' memory holds the weights now
    np.testing.assert_allclose(scores, one([[1 / 4, 3 / 4]]), rtol=1e-12)
    # with a temperature the stage divides into a new array first: the input stays
    scores = one([[0, 2 * LN3]])
    Softmax("weights", "", temperature=2.0)(xp, scores, context(inplace=False))
    np.testing.assert_allclose(scores, one([[0, 2 * LN3]]), rtol=1e-12)


def test_hard_one_hot_first_of_ties_and_empty_rows():
    # [1, 3, 3]: a tie for the largest, the first key wins; all −∞: zeros; [2, −∞, 5]: key 2
    out = Hard("weights", "")(xp, one([[1, 3, 3], [-INF, -INF, -INF], [2, -INF, 5]]),
                              context())
    np.testing.assert_allclose(out, one([[0, 1, 0], [0, 0, 0], [0, 0, 1]]), rtol=1e-12)


def test_top_k_by_hand_with_ties():
    e = math.e
    out = TopK("weights", "", k=2)(xp, one([
        [1, 3, 3, 2],  # the two 3s: softmax([3, 3]) = [1/2, 1/2]
        [3, 1, 1, 0],  # a tie at 2nd place: key 1 (the lower index) wins; softmax([3, 1])
        [-INF, 2, -INF, -INF],  # one unmasked key, fewer than k: it keeps it all
        [-INF, -INF, -INF, -INF],  # no key: zeros
    ]), context())
    np.testing.assert_allclose(out, one([
        [0, 1 / 2, 1 / 2, 0],
        [e**2 / (e**2 + 1), 1 / (e**2 + 1), 0, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 0],
    ]), rtol=1e-12)


def test_top_k_temperature_by_hand():
    # top-2 of [3, 1, 0] / 2: softmax([1.5, 0.5]) = [e/(e + 1), 1/(e + 1)]
    e = math.e
    out = TopK("weights", "", k=2, temperature=2.0)(xp, one([[3, 1, 0]]), context())
    np.testing.assert_allclose(out, one([[e / (e + 1), 1 / (e + 1), 0]]), rtol=1e-12)


# --- Dropout ----------------------------------------------------------------------------------


def test_dropout_takes_the_blocks_rows_of_the_given_mask():
    # the problem's keep mask over 4 queries × 2 keys; the block is rows 2 and 3 (first = 2):
    # keep [[T, F], [F, T]], p = 0.5: kept weights × 1/(1 − 0.5) = × 2
    keep = np.array([[[[True, True], [False, True], [True, False], [False, True]]]])
    weights = one([[1 / 4, 3 / 4], [1 / 2, 1 / 2]])
    stage = Dropout("dropped_weights", "", probability=0.5, shape=(1, 1, 4, 2))
    out = stage(xp, weights, context(dropout_mask=keep, first=2))
    np.testing.assert_allclose(out, one([[1 / 2, 0], [0, 1]]), rtol=1e-12)


def test_dropout_blocks_are_rows_of_the_whole_run():
    # drawn from a seed for the whole run (B, H, seq_q, seq_k): a block of rows 1, 2 gets
    # rows 1, 2 of the mask the whole run gets (an invariant: no block draws its own)
    shape = (2, 2, 5, 4)
    weights = np.random.default_rng(0).random(shape)
    stage = Dropout("dropped_weights", "", probability=0.5, seed=11, shape=shape)
    whole = stage(xp, weights, context(first=0))
    block = stage(xp, weights[:, :, 1:3], context(first=1))
    np.testing.assert_allclose(block, whole[:, :, 1:3], rtol=1e-12)
    kept = whole != 0
    assert 0 < kept.sum() < kept.size  # something dropped, something kept
    np.testing.assert_allclose(whole[kept], 2 * weights[kept], rtol=1e-12)  # 1/(1 − 0.5)


def test_dropout_on_torch_is_torch_dropout(torch):
    # on the torch backend a block of rows 1, 2 is rows 1, 2 of what
    # torch.nn.functional.dropout gives the whole run's weights right after manual_seed
    import array_api_compat.torch as txp

    runtime = Runtime(Backend.torch, "cpu", DType.float64, txp)
    shape, p, seed = (1, 2, 4, 3), 0.4, 7
    weights = torch.from_numpy(np.random.default_rng(2).random(shape))
    stage = Dropout("dropped_weights", "", probability=p, seed=seed, shape=shape)
    out = stage(txp, weights[:, :, 1:3], Context(runtime=runtime, params={}, first=1))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        expected = torch.nn.functional.dropout(weights, p=p, training=True)[:, :, 1:3]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12)


# --- WeightedSum, Merge, Output ---------------------------------------------------------------


def test_weighted_sum_by_hand():
    # [1/4, 3/4] · values [[4, 0], [0, 8]] = [1, 6]; [1, 0] → [4, 0]
    out = WeightedSum("head_context", "")(xp, one([[1 / 4, 3 / 4], [1, 0]]),
                                          context(values=one([[4, 0], [0, 8]])))
    np.testing.assert_allclose(out, one([[1, 6], [4, 0]]), rtol=1e-12)


def test_merge_puts_heads_side_by_side():
    # head 0 [[1, 2]], head 1 [[3, 4]] (B 1, H 2, 1 query, d_v 2) → context [[1, 2, 3, 4]]
    head_context = np.array([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    out = Merge("context", "")(xp, head_context, context())
    assert out.shape == (1, 1, 4)
    np.testing.assert_allclose(out, [[[1, 2, 3, 4]]], rtol=1e-12)


def test_merge_is_multihead_attentions_concat(torch):
    # nn.MultiheadAttention with q = k = v = x and out_proj = I outputs the heads' contexts
    # concatenated: head h's context = its weights @ x's columns 2h, 2h + 1
    x = np.random.default_rng(4).normal(size=(2, 3, 4))  # (B, seq, d_model)
    expected, weights = _multihead(torch, x)  # weights (B, H, seq, seq)
    head_context = np.stack([weights[:, 0] @ x[..., :2], weights[:, 1] @ x[..., 2:]], axis=1)
    out = Merge("context", "")(xp, head_context, context())
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_output_by_hand():
    # [1, 2] @ [[1, 0, 1], [0, 1, 1]] = [1, 2, 3]; + b_o [0.5, 0, −3] = [1.5, 2, 0]
    W_o = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    ctx = np.array([[[1.0, 2.0]]])
    out = Output("output", "")(xp, ctx, context(params={"W_o": W_o,
                                                        "b_o": np.array([0.5, 0.0, -3.0])}))
    np.testing.assert_allclose(out, [[[1.5, 2, 0]]], rtol=1e-12)
    out = Output("output", "")(xp, ctx, context(params={"W_o": W_o, "b_o": None}))
    np.testing.assert_allclose(out, [[[1, 2, 3]]], rtol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_is_the_softmax_of_scaled_scores(torch, causal):
    # softmax(q kᵀ · 0.3, causal: −∞ above the diagonal) v, worked with torch.softmax
    rng = np.random.default_rng(6)
    q, k, v = (torch.from_numpy(rng.normal(size=(1, 2, 3, 4))) for _ in range(3))
    scores = q @ k.transpose(-1, -2) * 0.3
    if causal:
        scores = scores.masked_fill(~torch.ones(3, 3, dtype=torch.bool).tril(), -math.inf)
    expected = torch.softmax(scores, dim=-1) @ v
    np.testing.assert_allclose(sdpa(q, k, v, causal=causal, scale=0.3).numpy(),
                               expected.numpy(), rtol=1e-12)


# --- fused(): what each stage gives torch's SDPA -----------------------------------------------


@pytest.mark.parametrize(("stage", "part"), [
    pytest.param(Project("queries", ""), None, id="project"),
    pytest.param(DotScore("scores", ""), {}, id="dot"),
    pytest.param(GeneralScore("scores", ""), None, id="general"),
    pytest.param(AdditiveScore("scores", ""), None, id="additive"),
    pytest.param(Scale("scaled_scores", "", factor=0.5), {"scale": 0.5}, id="scale"),
    pytest.param(MaskScores("masked_scores", "", mask=Mask(3, 3, causal=True)),
                 {"is_causal": True}, id="mask-causal-top-left"),
    pytest.param(MaskScores("masked_scores", "", mask=Mask(3, 3, causal=True, bottom_right=True)),
                 None, id="mask-causal-bottom-right"),
    pytest.param(MaskScores("masked_scores", "", mask=Mask(3, 3, causal=True, window=1)),
                 None, id="mask-causal-window"),
    pytest.param(MaskScores("masked_scores", "", mask=Mask(3, 3, window=1)), None,
                 id="mask-window"),
    pytest.param(MaskScores("masked_scores", "",
                            mask=Mask(3, 3, causal=True, padding=np.zeros((1, 1, 1, 3), bool))),
                 None, id="mask-causal-given"),
    pytest.param(Softmax("weights", "", temperature=2.0), {"temperature": 2.0}, id="softmax"),
    pytest.param(Hard("weights", ""), None, id="hard"),
    pytest.param(TopK("weights", "", k=2), None, id="top-k"),
    pytest.param(Dropout("dropped_weights", "", probability=0.1), None, id="dropout"),
    pytest.param(WeightedSum("head_context", ""), {}, id="weighted-sum"),
    pytest.param(Merge("context", ""), None, id="merge"),
    pytest.param(Output("output", ""), None, id="output"),
])
def test_fused_part(stage, part):
    assert stage.fused() == part


def test_the_base_stage_computes_nothing():
    stage = Stage("scores", "scores = ?")
    assert stage.fused() is None
    assert stage.row_local and stage.overflow is None and stage.blockwise
    with pytest.raises(NotImplementedError):
        stage(xp, None, context())
