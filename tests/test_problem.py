"""Problem validation and the canonical form: layouts, heads, shapes, and their messages."""

from __future__ import annotations

import numpy as np
import pytest

from attncli import attend
from attncli.config import AttentionConfig, Layout
from attncli.errors import ConfigError, InputError
from attncli.problem import KNOWN_KEYS, Problem, fmt_shape, folded
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
    assert stacked.run.heads == 2
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
    problem = _problem(W_qq=[[1.0]], notes="by hand")
    assert [w for w in problem.warnings] == [
        "p.json: unknown key 'W_qq' ignored; did you mean 'W_q'?",
        "p.json: unknown key 'notes' ignored"]


@pytest.mark.parametrize("key, known", [
    ("Wq", "W_q"), ("w_q", "W_q"), ("W_Q", "W_q"), ("w_query", "W_q"), ("W_query", "W_q"),
    ("W_0", "W_o"), ("w_key", "W_k"), ("W_value", "W_v"), ("B_q", "b_q"), ("b_0", "b_o"),
    ("X", "x"), ("Memory", "memory"), ("keyPaddingMask", "key_padding_mask"),
    ("Key_Memory", "key_memory"), ("weight-layout", "weight_layout"),
    # "out" for o: once W_out ran without W_o, with only a warning (W_output was refused)
    ("W_out", "W_o"), ("w_Out", "W_o"), ("b_out", "b_o"),
])
def test_a_key_that_looks_like_a_known_one_is_an_error_naming_it(key, known):
    # once a warning with difflib's guess ('w_q' → 'b_q') and a run without the key: K = x
    with pytest.raises(InputError) as error:
        _problem(**{key: [[1.0]]})
    assert str(error.value) == (f"p.json: unknown key {key!r} looks like {known!r}; write it "
                                f"{known!r} (key names are exact)")


def test_no_two_known_keys_look_alike():
    assert len({folded(key) for key in KNOWN_KEYS}) == len(KNOWN_KEYS)


@pytest.mark.parametrize("key, ours", [("query", "x"), ("key", "key_memory"),
                                       ("value", "value_memory"), ("Key", "key_memory")])
def test_multihead_attention_input_names_are_refused_with_ours(key, ours):
    # nn.MultiheadAttention(query, key, value): once run as self-attention over x, with only an
    # "unknown key" warning
    with pytest.raises(InputError, match=rf"p\.json: key {key!r} is nn\.MultiheadAttention's "
                                         rf"name of an input; .* write {ours!r}$"):
        _problem(**{key: [[1.0]]})


@pytest.mark.parametrize("key, message", [
    # once "unknown key ignored", and a run unmasked: the mask meant was silently left out
    ("attn_mask", "key 'attn_mask' is torch's name; attncli's is 'mask', True (1) = may attend, "
                  "as torch SDPA's boolean attn_mask (nn.MultiheadAttention's boolean attn_mask "
                  "is the inverse, True = masked: negate it)"),
    ("attention_mask", "key 'attention_mask' is Hugging Face's name (1 = a real token, 0 = "
                       "padding); attncli's is 'key_padding_mask', the inverse: True (1) = "
                       "padding, ignored; write 1 − attention_mask"),
    ("attentionMask", "key 'attentionMask' is Hugging Face's name"),
])
def test_other_libraries_mask_names_are_refused_with_ours_and_its_polarity(key, message):
    with pytest.raises(InputError) as error:
        _problem(**{key: [[1, 0, 0, 0]]})
    assert str(error.value).startswith(f"p.json: {message}")


@pytest.mark.parametrize("key, value, advice", [
    # once "unknown key ignored", and a run non-causal, with one head
    ("causal", True, "key 'causal' is an option, not an input; options go in the file's "
                     "config: write \"config\": {\"causal\": true} (or the flag --causal)"),
    ("heads", 2, "key 'heads' is an option, not an input; options go in the file's config: "
                 "write \"config\": {\"heads\": 2} (or the flag --heads 2)"),
    ("top-k", 2, "key 'top-k' is an option, not an input; options go in the file's config: "
                 "write \"config\": {\"top_k\": 2} (or the flag --top-k 2)"),
    ("variant", "causal", "key 'variant' is an option, not an input; options go in the file's "
                          "config: write \"config\": {\"variant\": \"causal\"} (or the flag "
                          "--variant causal)"),
    ("causal", False, "key 'causal' is an option, not an input; options go in the file's "
                      "config: write \"config\": {\"causal\": false}"),
    ("is_causal", True, "key 'is_causal' is torch's name of the option causal; options go in "
                        "the file's config: write \"config\": {\"causal\": true} (or the flag "
                        "--causal)"),
    ("num_heads", np.array(2), "key 'num_heads' is torch's name of the option heads; options go "
                               "in the file's config: write \"config\": {\"heads\": 2} (or the "
                               "flag --heads 2)"),
])
def test_an_option_written_as_a_key_is_refused_saying_where_it_goes(key, value, advice):
    with pytest.raises(InputError) as error:
        _problem(**{key: value})
    assert str(error.value) == f"p.json: {advice}"


@pytest.mark.parametrize("key, parts", [
    ("W_qkv", "W_q, W_k and W_v"), ("Wqkv", "W_q, W_k and W_v"), ("W_kv", "W_k and W_v"),
    ("w_key_value", "W_k and W_v"), ("b_qkv", "b_q, b_k and b_v"),
])
def test_a_fused_projection_is_refused_asking_for_its_parts(key, parts):
    # once "unknown key 'W_kv' ignored; did you mean 'W_v'?", and a run without projections
    with pytest.raises(InputError) as error:
        Problem.from_mapping({"x": X, key: np.ones((6, 12))}, "p.json")
    assert str(error.value) == (
        f"p.json: key {key!r} looks like a fused projection, {parts} side by side; attncli "
        f"takes them one by one: split it into {parts} (blocks of columns in the in_out "
        "layout, of rows in nn.Linear's out_in), in that order")


@pytest.mark.parametrize("given", [("W_q",), ("W_q", "W_k"), ("W_k", "W_v"), ("W_v",)])
def test_some_projections_without_the_others_are_an_error(given):
    # once W_q alone ran with K = V = x
    problem = Problem.from_mapping({"x": X, **{k: W[k] for k in given}}, "p.json")
    missing = [k for k in ("W_q", "W_k", "W_v") if k not in given]
    message = (f"p.json: {', '.join(given)} given but not {' or '.join(missing)}: give "
               f"{', '.join(missing)} too (queries, keys and values each need their "
               "projection), or --no-project to use none (Q = K = V = x)")
    with pytest.raises(InputError) as error:
        attend(problem)
    assert str(error.value) == message
    # --no-project uses none of them: Q = K = V = x, and says the others are unused
    trace = attend(problem, AttentionConfig(project=False))
    np.testing.assert_allclose(trace["keys"], X, rtol=0)
    assert any("not used" in w for w in trace.warnings)


def test_transposed_x_is_named_as_such():
    # x of 5 tokens × width 6 given as (6, 5): W_q (6, 4) takes rows of width 6, x's row
    # count (once: "W_q: expected (5, H·d_head), got (6, 4)", blaming W_q)
    x_t = RNG.normal(size=(5, 6)).T
    with pytest.raises(InputError, match=r"^p\.json: x: shape \(6, 5\) looks transposed: W_q "
                                         r"\(6, 4\) takes rows of width 6, and x has 6 rows of "
                                         r"width 5; give x one row per token, \(seq, d\)$"):
        attend(Problem.from_mapping({"x": x_t, **W}, "p.json"))
    # without weights, the labels tell: 4 tokens for a (6, 4) x
    with pytest.raises(InputError, match=r"tokens: 4 labels for 6 rows of x; x has 4 columns: "
                                         r"is it transposed\? Give it one row per token$"):
        attend(Problem.from_mapping({"x": X.T, "tokens": list("abcd")}, "p.json"))


def test_transposed_key_memory_is_named_as_such():
    # key_memory of 4 tokens × width 6 given as (6, 4), W_k (6, 3), value_memory (4, 2): once
    # "value_memory: 4 rows, but key_memory has 6", blaming the right one
    key_memory, value_memory = RNG.normal(size=(4, 6)), RNG.normal(size=(4, 2))
    weights = {"W_q": RNG.normal(size=(6, 3)), "W_k": RNG.normal(size=(6, 3)),
               "W_v": RNG.normal(size=(2, 3))}
    problem = {"x": X, "value_memory": value_memory, **weights}
    with pytest.raises(InputError) as error:
        attend(Problem.from_mapping({**problem, "key_memory": key_memory.T}, "p.json"))
    assert str(error.value) == (
        "p.json: key_memory: shape (6, 4) looks transposed: W_k (6, 3) takes rows of width 6, "
        "and key_memory has 6 rows of width 4; give key_memory one row per token, (seq, d)")
    # given one row per token, it runs: keys = key_memory W_k, values = value_memory W_v
    trace = attend(Problem.from_mapping({**problem, "key_memory": key_memory}, "p.json"))
    np.testing.assert_allclose(trace["keys"], key_memory @ weights["W_k"], rtol=1e-12)
    np.testing.assert_allclose(trace["values"], value_memory @ weights["W_v"], rtol=1e-12)


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


def test_separate_key_and_value_sequences_by_hand():
    # x = [[1, 0]]; key_memory rows k0 = [1, 0], k1 = [0, 1]; value_memory rows v0 = [1, 2, 3],
    # v1 = [4, 5, 6]. Unprojected dot score: scores = [1, 0]; weights = [e, 1] / (e + 1)
    # = [0.731059, 0.268941]; context = 0.731059·v0 + 0.268941·v1 = [1.806824, 2.806824,
    # 3.806824]: width 3 from value_memory, while the keys have width 2.
    problem = Problem.from_mapping({"x": [[1.0, 0.0]], "key_memory": [[1.0, 0.0], [0.0, 1.0]],
                                    "value_memory": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
                                    "memory_tokens": ["a", "b"]}, "p.json")
    trace = attend(problem)
    e = np.e
    np.testing.assert_allclose(trace["weights"], [[e / (e + 1), 1 / (e + 1)]], rtol=1e-12)
    np.testing.assert_allclose(trace["context"], [[1 + 3 / (e + 1), 2 + 3 / (e + 1),
                                                   3 + 3 / (e + 1)]], rtol=1e-12)
    np.testing.assert_allclose(trace["context"], [[1.806824, 2.806824, 3.806824]], atol=1e-6)
    assert trace.key_tokens == ["a", "b"]
    assert trace.step("keys").formula == "keys = key_memory"
    assert trace.step("values").formula == "values = value_memory"
    assert trace.conventions["sources"].startswith("queries from x, keys from key_memory, "
                                                   "values from value_memory")


@pytest.mark.parametrize("arrays, message", [
    ({"key_memory": np.ones((2, 2))},
     "p.json: key_memory is given without value_memory: separate key and value sequences need "
     "both (or memory, the source of both)"),
    ({"value_memory": np.ones((2, 2))},
     "p.json: value_memory is given without key_memory: separate key and value sequences need "
     "both (or memory, the source of both)"),
    ({"key_memory": np.ones((2, 2)), "value_memory": np.ones((2, 3)), "memory": np.ones((2, 2))},
     "p.json: key_memory and p.json: memory: memory is the source of both keys and values; "
     "give it, or key_memory and value_memory, not both"),
    ({"key_memory": np.ones((2, 2)), "value_memory": np.ones((3, 3))},
     "p.json: value_memory: 3 rows, but key_memory has 2: one value for each key"),
])
def test_separate_key_and_value_sequences_must_pair(arrays, message):
    with pytest.raises(InputError) as error:
        attend(Problem.from_mapping({"x": [[1.0, 0.0]], **arrays}, "p.json"))
    assert str(error.value) == message


# ---------------------------------------------------------------------------------------------
# fmt_shape: the one formatter of shapes in messages; _check_rank: one rank check


@pytest.mark.parametrize("shape", [(), (3,), (3, 4), (2, 3, 4), (0, 5), (-1, 3)])
def test_a_known_shape_is_written_as_python_writes_a_tuple(shape):
    assert fmt_shape(shape) == repr(shape)


@pytest.mark.parametrize(("shape", "unknown", "text"), [
    ((3, None), "?", "(3, ?)"),
    ((None,), "?", "(?,)"),
    ((None, 4), "d_att", "(d_att, 4)"),
    ((2, None, 8), "d_k", "(2, d_k, 8)"),
])
def test_an_unknown_size_is_written_by_its_name(shape, unknown, text):
    assert fmt_shape(shape, unknown) == text


def test_numpy_shapes_are_written_like_tuples():
    assert fmt_shape(np.zeros((2, 3)).shape) == "(2, 3)"
    assert fmt_shape(np.zeros(5).shape) == "(5,)"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("x", [1.0, 2.0], "p.json: x: expected 2-D or 3-D, got shape (2,)"),
    ("W_o", np.ones((2, 2, 2)), "p.json: W_o: expected 2-D, got shape (2, 2, 2)"),
    ("b_o", np.ones((1, 2)), "p.json: b_o: expected 1-D, got shape (1, 2)"),
    # masks: the same check after their own (true/false or 0/1) one
    ("mask", np.ones((1, 1, 2, 2), bool), "p.json: mask: expected 2-D or 3-D, got shape "
                                          "(1, 1, 2, 2)"),
    ("key_padding_mask", [[[0, 1]]], "p.json: key_padding_mask: expected 1-D or 2-D, got "
                                     "shape (1, 1, 2)"),
])
def test_a_key_of_the_wrong_rank_names_its_ranks_and_shape(key, value, message):
    with pytest.raises(InputError) as caught:
        Problem.from_mapping({key: value}, "p.json")
    assert str(caught.value) == message
