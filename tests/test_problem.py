"""Problem validation and the canonical form: layouts, heads, shapes, and their messages."""

from __future__ import annotations

import numpy as np
import pytest

from attncli import attend
from attncli.config import AttentionConfig, Layout
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem
from attncli.shapes import prepare

RNG = np.random.default_rng(7)
X = RNG.normal(size=(4, 6))
W = {k: RNG.normal(size=(6, 4)) for k in ("W_q", "W_k", "W_v")}


def _problem(**arrays) -> Problem:
    return Problem.from_mapping({"x": X, **W, **arrays}, "p.json")


def test_out_in_layout_is_the_transpose():
    in_out = attend(_problem(), AttentionConfig(heads=2))
    out_in = attend(Problem.from_mapping({"x": X, **{k: v.T for k, v in W.items()},
                                          "weight_layout": "out_in"}, "p.json"),
                    AttentionConfig(heads=2))
    np.testing.assert_allclose(in_out["context"], out_in["context"], rtol=1e-14)


def test_3d_weights_equal_column_blocks_and_set_the_heads():
    # (d_in, H·d_head) split into 2 blocks of 2 columns == (H, d_in, d_head)
    per_head = {k: np.stack([v[:, :2], v[:, 2:]]) for k, v in W.items()}
    blocks = attend(_problem(), AttentionConfig(heads=2))
    stacked = attend(Problem.from_mapping({"x": X, **per_head}, "p.json"))
    assert stacked.config["heads"] == 2
    np.testing.assert_allclose(blocks["weights"], stacked["weights"], rtol=1e-14)
    np.testing.assert_allclose(blocks["context"], stacked["context"], rtol=1e-14)


def test_head_h_owns_its_column_block():
    # Head 1's queries are x @ W_q[:, 2:4].
    trace = attend(_problem(), AttentionConfig(heads=2))
    np.testing.assert_allclose(trace["queries"][1], X @ W["W_q"][:, 2:], rtol=1e-14)
    assert trace["weights"].shape == (2, 4, 4)
    assert trace["context"].shape == (4, 4)


def test_batch_axis_equals_one_run_per_item():
    x = RNG.normal(size=(3, 4, 6))
    batched = attend(Problem.from_mapping({"x": x, **W}, "b"), AttentionConfig(causal=True))
    assert batched["weights"].shape == (3, 4, 4)
    for b in range(3):
        single = attend(Problem.from_mapping({"x": x[b], **W}, "b"), AttentionConfig(causal=True))
        np.testing.assert_allclose(batched["context"][b], single["context"], rtol=1e-14)


def test_shape_error_names_key_found_and_expected():
    with pytest.raises(InputError, match=r"p\.json: W_k: expected \(6, H·d_head\), got \(5, 4\)"):
        prepare(_problem(W_k=RNG.normal(size=(5, 4))), AttentionConfig())


def test_shape_that_fits_only_the_other_layout_says_so():
    with pytest.raises(InputError, match="W_q fits the out_in layout: pass --weight-layout out_in"):
        prepare(_problem(W_q=RNG.normal(size=(4, 6))), AttentionConfig())
    with pytest.raises(InputError, match="W_q fits the in_out layout: pass --weight-layout in_out"):
        prepare(_problem(W_q=RNG.normal(size=(6, 4))), AttentionConfig(weight_layout=Layout.out_in))


def test_heads_must_divide_the_width():
    with pytest.raises(ConfigError, match="width 4 is not divisible by --heads 3"):
        prepare(_problem(), AttentionConfig(heads=3))


def test_unknown_key_warns_with_the_closest():
    problem = _problem(W_query=[[1.0]])
    assert any("'W_query'" in w and "'W_q'" in w for w in problem.warnings)


def test_values_are_checked_once_at_load():
    with pytest.raises(InputError, match=r"x: nan at index \[0, 1\]"):
        Problem.from_mapping({"x": [[1.0, float("nan")]]}, "p.json")
    with pytest.raises(InputError, match="found the string .1.; write numbers without quotes"):
        Problem.from_mapping({"x": [["1", "2"]]}, "p.json")
    with pytest.raises(InputError, match="ragged"):
        Problem.from_mapping({"x": [[1, 2], [3]]}, "p.json")
    with pytest.raises(InputError, match="empty"):
        Problem.from_mapping({"x": []}, "p.json")


def test_fully_masked_row_gets_zeros_and_a_warning():
    mask = np.ones((4, 4), dtype=bool)
    mask[2] = False
    trace = attend(_problem(mask=mask))
    np.testing.assert_array_equal(trace["weights"][2], 0)
    np.testing.assert_array_equal(trace["context"][2], 0)
    assert np.all(np.isfinite(trace["context"]))
    assert any("1 query row(s)" in w for w in trace.warnings)


def test_attend_does_not_change_the_problem():
    # Re-running a problem (as check's diagnosis will) must not pile up warnings.
    problem = _problem()
    before = list(problem.warnings)
    for _ in range(3):
        trace = attend(problem, AttentionConfig(project=False))
    assert problem.warnings == before
    assert len(trace.warnings) == 1 and "W_q, W_k, W_v not used" in trace.warnings[0]
