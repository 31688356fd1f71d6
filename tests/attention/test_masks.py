"""Causal and local masks, worked by hand and against flash-attn's reference mask."""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np
import pytest

from attncli import attend
from attncli.attention import masks
from attncli.config import AttentionConfig, CausalAlign
from attncli.errors import InputError
from attncli.problem import Problem


def test_causal_top_left_is_lower_triangular():
    # query i sees keys j ≤ i
    mask = masks.structural(xp, 3, 3, causal=True, bottom_right=False, window=None)
    np.testing.assert_array_equal(mask, [[1, 0, 0], [1, 1, 0], [1, 1, 1]])


def test_causal_alignment_when_seq_q_differs_from_seq_k():
    # 2 queries, 4 keys. top-left (torch SDPA): row 0 sees key 0, row 1 keys 0-1.
    top = masks.structural(xp, 2, 4, causal=True, bottom_right=False, window=None)
    np.testing.assert_array_equal(top, [[1, 0, 0, 0], [1, 1, 0, 0]])
    # bottom-right (flash-attn): offset seq_k − seq_q = 2, row 0 sees keys 0-2, row 1 all four.
    bottom = masks.structural(xp, 2, 4, causal=True, bottom_right=True, window=None)
    np.testing.assert_array_equal(bottom, [[1, 1, 1, 0], [1, 1, 1, 1]])


def test_window_and_sliding_window():
    # |i − j| ≤ 1 on 4 tokens: a band of width 3
    band = masks.structural(xp, 4, 4, causal=False, bottom_right=False, window=1)
    np.testing.assert_array_equal(band, [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]])
    # with causal: each query sees itself and the one before it
    sliding = masks.structural(xp, 4, 4, causal=True, bottom_right=False, window=1)
    np.testing.assert_array_equal(sliding, np.tril(band))
    # window 0 is the diagonal
    diagonal = masks.structural(xp, 3, 3, causal=False, bottom_right=False, window=0)
    np.testing.assert_array_equal(diagonal, np.eye(3, dtype=bool))


def test_no_mask_asked_for_is_none():
    assert masks.structural(xp, 3, 3, causal=False, bottom_right=False, window=None) is None


def test_apply_sets_negative_infinity():
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = masks.apply(xp, scores, np.array([[True, False], [True, True]]))
    np.testing.assert_array_equal(out, [[1.0, -np.inf], [3.0, 4.0]])


# --- bottom-right alignment with padded keys: flash-attn's ------------------------------------


def flash_attn_local_mask(seq_q: int, seq_k: int, window: tuple[int, int],
                          key_valid: np.ndarray) -> np.ndarray:
    """A numpy re-implementation of flash-attn's reference mask, construct_local_mask in
    Dao-AILab/flash-attention tests/test_flash_attn.py (commit 0251105a, lines 182-214):

        sk = key_padding_mask.sum(-1)          # (its polarity: True = a real key)
        if window_size[0] < 0: masked = col_idx > row_idx + sk - sq + window_size[1]
        else: masked = col_idx > minimum(row_idx + sk - sq + window_size[1], sk)
                       | col_idx < row_idx + sk - sq - window_size[0]

    with no query padding (sq = seq_q). attention_ref calls it with window (left, 0) when
    causal, and masks the padded keys besides. Returns (B, seq_q, seq_k), True = masked.
    """
    row = np.arange(seq_q)[:, None]
    col = np.arange(seq_k)
    sk = key_valid.sum(-1)[:, None, None]
    left, right = window
    if left < 0:
        return col > row + sk - seq_q + right
    return (col > np.minimum(row + sk - seq_q + right, sk)) | (col < row + sk - seq_q - left)


def test_bottom_right_with_right_padding_aligns_to_the_unpadded_keys():
    # 2 queries, 4 key slots; item 0 has 3 real keys (slot 3 is padding), item 1 all 4.
    # flash-attn: item 0's last query sees up to its last real key (2), so query 0 sees keys
    # 0-1 (2 keys, not 3 as the padded length would give: j ≤ 0 + 4 − 2); item 1 as without
    # padding: query 0 sees 0-2, query 1 all four.
    mask = masks.structural(xp, 2, 4, causal=True, bottom_right=True, window=None,
                            key_lengths=np.array([3, 4]))
    np.testing.assert_array_equal(mask, [[[1, 1, 0, 0], [1, 1, 1, 0]],
                                         [[1, 1, 1, 0], [1, 1, 1, 1]]])
    # top-left ignores the lengths: query i sees j ≤ i in every item
    top = masks.structural(xp, 2, 4, causal=True, bottom_right=False, window=None,
                           key_lengths=np.array([3, 4]))
    np.testing.assert_array_equal(top, [[1, 0, 0, 0], [1, 1, 0, 0]])


def _flash_attn_weights(scores: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """attention_ref's softmax: −∞ where masked, rows with nothing left set to 0."""
    s = np.where(masked, -np.inf, scores)
    empty = masked.all(axis=-1, keepdims=True)
    top = np.where(empty, 0.0, s.max(axis=-1, keepdims=True))
    e = np.exp(s - top)
    return np.where(empty, 0.0, e / np.where(empty, 1.0, e.sum(axis=-1, keepdims=True)))


@pytest.mark.parametrize("causal, window", [(True, None), (True, 1), (False, 1), (True, 0),
                                            (False, 2)])
@pytest.mark.parametrize("seq_q, seq_k", [(2, 5), (5, 5), (3, 7), (6, 4)])
def test_padded_bottom_right_runs_equal_flash_attn_reference(causal, window, seq_q, seq_k):
    # attend() with causal / --window bottom-right and a right-padded key_padding_mask against
    # flash-attn's reference mask and softmax, written above without attncli
    rng = np.random.default_rng(seq_q * 10 + seq_k)
    batch = 3
    lengths = np.array([seq_k, max(seq_k - 2, 1), max(seq_k - 3, 1)])
    key_valid = np.arange(seq_k) < lengths[:, None]  # flash-attn's polarity: True = real key
    x, memory = rng.normal(size=(batch, seq_q, 4)), rng.normal(size=(batch, seq_k, 4))
    problem = Problem.from_mapping({"x": x, "memory": memory,
                                    "key_padding_mask": ~key_valid}, "test")
    trace = attend(problem, AttentionConfig(causal=causal, window=window,
                                            causal_align=CausalAlign.bottom_right))
    left = -1 if window is None else window
    right = 0 if causal else window
    masked = flash_attn_local_mask(seq_q, seq_k, (left, right), key_valid)
    masked = masked | ~key_valid[:, None, :]
    scores = np.einsum("bqd,bkd->bqk", x, memory)  # no projections: the unscaled dot score
    np.testing.assert_allclose(trace["weights"], _flash_attn_weights(scores, masked),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.isneginf(trace["masked_scores"]), masked)
    assert trace.run.key_lengths == tuple(lengths.tolist())
    # one query row alone (--query) and the drawings read the same mask
    for row in range(seq_q):
        one = attend(problem, AttentionConfig(causal=causal, window=window,
                                              causal_align=CausalAlign.bottom_right),
                     steps=["weights"], query=row)
        np.testing.assert_allclose(one["weights"][:, 0], trace["weights"][:, row], rtol=1e-12,
                                   atol=1e-15)
        np.testing.assert_array_equal(rendered_mask(one, "weights")[:, 0], masked[:, row])
    np.testing.assert_array_equal(rendered_mask(trace, "weights"), masked)


def rendered_mask(trace, name: str) -> np.ndarray:
    """The cells heatmaps and plots draw as masked (attncli.render.masked)."""
    from attncli.render.drawing import hidden_cells

    return hidden_cells(trace, trace.step(name))


def test_padded_bottom_right_is_stated_in_the_conventions():
    problem = Problem.from_mapping({"x": np.ones((2, 2)), "memory": np.ones((3, 2)),
                                    "key_padding_mask": [False, False, True]}, "test")
    trace = attend(problem, AttentionConfig(causal=True, causal_align=CausalAlign.bottom_right))
    assert trace.conventions["causal_alignment"].startswith(
        "bottom-right: query i sees keys j ≤ i + L − seq_q, L = the batch item's keys that are "
        "not padding")
    # query 0 sees j ≤ 0 + 2 − 2 = 0; query 1 keys 0-1 (the padded length would give 0-1, 0-2)
    np.testing.assert_array_equal(trace["weights"] > 0, [[1, 0, 0], [1, 1, 0]])


def test_padded_bottom_right_on_the_torch_backend(torch):
    # the same per-item diagonal from torch tensors: item 0 has 3 real keys of 4
    problem = Problem.from_mapping({"x": np.ones((2, 2, 2)), "memory": np.ones((2, 4, 2)),
                                    "key_padding_mask": [[0, 0, 0, 1], [0, 0, 0, 0]]}, "test")
    trace = attend(problem, AttentionConfig(causal=True, causal_align=CausalAlign.bottom_right,
                                            backend="torch"))
    # equal scores: each row's weights are 1 / (the keys it sees)
    np.testing.assert_allclose(trace["weights"], [[[1 / 2, 1 / 2, 0, 0], [1 / 3] * 3 + [0]],
                                                  [[1 / 3] * 3 + [0], [1 / 4] * 4]], rtol=1e-12)


# --- left padding: bottom-right alignment assumes right padding -------------------------------


@pytest.mark.parametrize("padding, found", [
    ([[True, True, False, False]], (0, 0, 2)),  # left padding: item 0, key 0 padded, key 2 real
    ([False, False, True, True], None),  # right padding
    ([[False, False, False, True], [False, True, False, True]], (1, 1, 2)),  # a hole in item 1
    ([True, True, True], None),  # all padding: no real key after a padded one
    ([False, False], None),  # no padding
])
def test_left_padding_names_the_first_item_and_keys(padding, found):
    assert masks.left_padding(np.array(padding)) == found


LEFT_PADDED = {"x": np.ones((1, 4, 3)), "key_padding_mask": [[True, True, False, False]]}


@pytest.mark.parametrize("causal, window", [(True, None), (False, 1), (True, 2)])
def test_left_padding_with_bottom_right_is_refused(causal, window):
    # once: with L = 2 real keys, query i saw j ≤ i + 2 − 4 = i − 2, keys 0-1 for the last
    # query, both padding: every row zero weights, with only the "no key" warning
    problem = Problem.from_mapping(LEFT_PADDED, "p.json")
    config = AttentionConfig(causal=causal, window=window, causal_align=CausalAlign.bottom_right)
    with pytest.raises(InputError) as error:
        attend(problem, config)
    assert str(error.value) == (
        "p.json: key_padding_mask: in batch item 0, key 0 is padding but key 2 after it is not; "
        "--causal-align bottom-right assumes right padding, the real keys first, as flash-attn "
        "does (its left padding is a separate offset, key_leftpad): put the padding at the end, "
        "or use --causal-align top-left")


def test_left_padding_with_top_left_runs():
    # top-left: query i sees keys j ≤ i that are real (2 and 3); equal scores (x all ones), so
    # each row spreads evenly: rows 0-1 have no key (zeros), row 2 key 2, row 3 keys 2-3
    trace = attend(Problem.from_mapping(LEFT_PADDED, "p.json"), AttentionConfig(causal=True))
    np.testing.assert_allclose(trace["weights"], [[[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0],
                                                   [0, 0, 0.5, 0.5]]], rtol=1e-12)


def test_right_padding_is_stated_in_the_conventions():
    problem = Problem.from_mapping({"x": np.ones((2, 2)), "memory": np.ones((3, 2)),
                                    "key_padding_mask": [False, False, True]}, "test")
    trace = attend(problem, AttentionConfig(causal=True, window=1,
                                            causal_align=CausalAlign.bottom_right))
    assert "padding comes after the real keys, right padding, as flash-attn assumes: left " \
           "padding is refused" in trace.conventions["causal_alignment"]
    assert trace.conventions["window"].endswith("L = each batch item's keys that are not "
                                                "padding, padding at the end)")


# --- the polarities the refusals of attn_mask and attention_mask state -----------------------


def test_the_polarities_that_the_refusals_state_against_torch(torch):
    # attncli.problem refuses attn_mask and attention_mask, saying: 'mask' is torch SDPA's
    # boolean attn_mask (nn.MultiheadAttention's is the inverse), and 'key_padding_mask' is
    # 1 − Hugging Face's attention_mask. Checked here against torch in float64.
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4))
    q = torch.from_numpy(x)[:, None]  # (B, 1, n, d): Q = K = V = x, no projections
    scale = 1 / np.sqrt(4)
    attention_mask = np.array([[1, 1, 0], [1, 1, 1]])  # Hugging Face: 1 = a real token
    problem = Problem.from_mapping({"x": x, "key_padding_mask": 1 - attention_mask}, "p.json")
    ours = attend(problem, AttentionConfig(scale=scale))
    sdpa = F.scaled_dot_product_attention(
        q, q, q, attn_mask=torch.from_numpy(attention_mask.astype(bool))[:, None, None, :],
        scale=scale)
    np.testing.assert_allclose(ours["context"], sdpa[:, 0].numpy(), rtol=1e-10)
    # 'mask' as SDPA's boolean attn_mask (True = may attend) …
    mask = np.array([[True, False, True], [True, True, False], [False, True, True]])
    ours = attend(Problem.from_mapping({"x": x[0], "mask": mask}, "p.json"),
                  AttentionConfig(scale=scale))
    sdpa = F.scaled_dot_product_attention(q[:1], q[:1], q[:1], attn_mask=torch.from_numpy(mask),
                                          scale=scale)
    np.testing.assert_allclose(ours["context"], sdpa[0, 0].numpy(), rtol=1e-10)
    # … and the inverse of nn.MultiheadAttention's boolean attn_mask (True = masked)
    mha = torch.nn.MultiheadAttention(4, 1, bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.eye(4).repeat(3, 1))
        mha.out_proj.weight.copy_(torch.eye(4))
        _, weights = mha(q[:1, 0], q[:1, 0], q[:1, 0], attn_mask=torch.from_numpy(~mask))
    np.testing.assert_allclose(ours["weights"], weights[0].numpy(), rtol=1e-10)
