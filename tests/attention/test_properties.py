"""Properties that hold for every attention problem, checked by hypothesis on random ones.

Each test draws small problems (1 – 7 tokens, widths 1 – 6, 1 – 3 heads, with or without a
batch axis, biases, per-head 3-D weights, masks) with entries in [−3, 3], runs them through
:func:`attncli.attend` on the numpy and the torch backend, and checks one property:

* weights: each row a probability distribution (soft), one-hot (hard), k non-zeros (top-k);
* causal: nothing above the diagonal (top-left and bottom-right), the future changes no past row;
* local: nothing outside |i − j| ≤ W, and a token changes no row that cannot see it;
* permutation equivariance of self-attention (and invariance to the order of a memory);
* the simple variant under x → c·x against its closed form;
* one head is single-head attention (heads = 1, heads = None, a 3-D W of shape (1, d_in, d));
* numpy and torch agree on every step of every variant;
* softmax is finite for scores of ±1e4 and for −∞ masks (fully masked rows: zeros, a warning);
* the query-block path (steps=["context"]) gives the whole run's context.

Everything is float64 with rtol = atol = 1e-10 unless a test says why not. The torch backend
needs the ``torch`` fixture (tests/conftest.py): it skips without torch and fails under CI.
Under CI=true hypothesis loads its built-in "ci" profile itself: derandomized, so a CI run
draws the same examples every time, and no example database.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from attncli import attend
from attncli.attention import blocks
from attncli.config import VARIANTS, AttentionConfig, Backend, CausalAlign, from_variant
from attncli.problem import Problem
from attncli.trace import Trace

TOL = 1e-10
BACKENDS = [Backend.numpy, Backend.torch]
#: Every variant, and top-k normalisation (an option, not a variant: scaled dot with --top-k K).
CASES = [*VARIANTS, "topk"]
#: Self-attention variants without a positional mask: permuting the tokens permutes the output.
#: (RoPE and ALiBi are positional too: the families' presets, rope and alibi are left out.)
UNMASKED = [c for c in CASES if c not in ("causal", "local") and not {"causal", "window", "rope",
            "alibi"} & set(VARIANTS.get(c, VARIANTS["scaled"]).fields)]
#: Variants that use W_q/W_k/W_v (heads = 1 can be written as a 3-D W of shape (1, d_in, d)).
PROJECTED = [c for c in CASES if c != "simple"]

VALUE = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
# `request` only looks the torch fixture up, the same for every example of a test.
FEW = settings(max_examples=15, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
SOME = settings(FEW, max_examples=30)


# --------------------------------------------------------------------------------------------
# strategies


def values(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=VALUE)


@st.composite
def problems(draw, case: str, *, cross: bool | None = None, masks: bool = False,
             output: bool | None = None, batch: bool = True, min_seq: int = 1,
             heads: int | None = None, per_head: bool | None = None):
    """(arrays, fields): a random problem for ``case`` (a variant name or "topk") and the
    config fields that go with it (passed to :func:`from_variant` after the variant's own).

    Shapes: x (batch?, seq_q, d_in); memory (batch?, seq_k, d_mem) when ``cross``;
    W_q (d_in, H·d_k) or (H, d_in, d_k) with biases (H·d_k,) or (H, d_k); W_k, W_v from d_mem;
    W_o (H·d_v, d_out) when ``output``; mask (batch?, seq_q, seq_k), key_padding_mask (batch?,
    seq_k) when ``masks``. Sizes are drawn, never filtered: heads divide the widths by
    construction (d_in = H·d_k when x itself is split into heads).
    """
    variant = "scaled" if case == "topk" else case
    project = VARIANTS[variant].fields.get("project", True)
    cross = variant == "cross" if cross is None else cross
    output = variant == "multihead" if output is None else output
    lead = () if not batch else draw(st.sampled_from([(), (1,), (2,)]))
    H = heads or draw(st.integers(1, 3))
    rotated = VARIANTS[variant].fields.get("rope", False)  # RoPE turns pairs: d_k even
    d_k = 2 * draw(st.integers(1, 3 // H)) if rotated else draw(st.integers(1, 6 // H))
    d_v = draw(st.integers(1, 6 // H)) if project else d_k
    seq_q = draw(st.integers(min_seq, 7))
    d_in = draw(st.integers(1, 6)) if project else H * d_k

    arrays = {"x": draw(values((*lead, seq_q, d_in)))}
    seq_k, d_src = seq_q, d_in
    if cross:
        seq_k = draw(st.integers(1, 7))
        d_src = draw(st.integers(1, 6)) if project else d_in
        shared = lead and draw(st.booleans())  # an unbatched memory read by every batch item
        arrays["memory"] = draw(values((*(() if shared else lead), seq_k, d_src)))
    if project:
        per_head = draw(st.booleans()) if per_head is None else per_head
        bias = draw(st.booleans())
        for name, d_from, width in (("q", d_in, d_k), ("k", d_src, d_k), ("v", d_src, d_v)):
            arrays[f"W_{name}"] = draw(values((H, d_from, width) if per_head
                                              else (d_from, H * width)))
            if bias:
                arrays[f"b_{name}"] = draw(values((H, width) if per_head else (H * width,)))
    if output:
        d_out = draw(st.integers(1, 6))
        arrays["W_o"] = draw(values((H * d_v, d_out)))
        if draw(st.booleans()):
            arrays["b_o"] = draw(values((d_out,)))
    if variant == "additive":
        d_att = draw(st.integers(1, 4))
        arrays |= {"W_a": draw(values((d_k, d_att))), "U_a": draw(values((d_k, d_att))),
                   "v_a": draw(values((d_att,)))}
        if draw(st.booleans()):
            arrays["b_a"] = draw(values((d_att,)))
    if variant == "general":
        arrays["W_a"] = draw(values((d_k, d_k)))
    if VARIANTS[variant].fields.get("qk_norm"):  # qwen3: RMSNorm weights per head (d_k,)
        arrays |= {"q_norm": draw(values((d_k,))), "k_norm": draw(values((d_k,)))}
    if variant in ("sinks", "gpt-oss"):  # per-head sink logits (gpt-oss)
        arrays["sinks"] = draw(values((H,)))

    fields = {"heads": H}
    if case == "topk":
        fields |= {"normalize": "topk", "top_k": draw(st.integers(1, seq_k))}  # more: an error
    if variant == "local":
        fields["window"] = draw(st.integers(0, 4))
    if masks and draw(st.booleans()):
        arrays["mask"] = draw(hnp.arrays(np.bool_, (*lead, seq_q, seq_k)))
    if masks and draw(st.booleans()):
        arrays["key_padding_mask"] = draw(hnp.arrays(np.bool_, (*lead, seq_k)))
    return arrays, fields


# --------------------------------------------------------------------------------------------
# helpers


def use(request, backend: Backend) -> Backend:
    """The backend, after the torch fixture has skipped (or failed, under CI) without torch."""
    if backend is Backend.torch:
        request.getfixturevalue("torch")
    return backend


def config_for(case: str, backend: Backend, **fields) -> AttentionConfig:
    return from_variant("scaled" if case == "topk" else case, backend=backend, **fields)


def run(arrays: dict, config: AttentionConfig, **kwargs) -> Trace:
    return attend(Problem.from_mapping(arrays, "test"), config, **kwargs)


def close(actual, expected, rtol: float = TOL, atol: float = TOL, what: str = "") -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def normalised(trace: Trace, config: AttentionConfig) -> np.ndarray:
    """What the normalisation saw: the last of scores → scaled → masked, over the temperature."""
    last = next(n for n in ("masked_scores", "scaled_scores", "scores") if n in trace)
    return trace[last] / config.temperature


def softmax_reference(s: np.ndarray) -> np.ndarray:
    """Row softmax with the row maximum subtracted; rows that are all −∞ give zeros."""
    finite = np.isfinite(s)
    row_max = np.max(np.where(finite, s, -np.inf), axis=-1, keepdims=True)
    exps = np.where(finite, np.exp(s - np.where(np.isfinite(row_max), row_max, 0.0)), 0.0)
    total = exps.sum(axis=-1, keepdims=True)
    return exps / np.where(total > 0, total, 1.0)


def top_k_set(s: np.ndarray, k: int) -> np.ndarray:
    """The k largest finite entries of each row, ties to the lower index (README Conventions)."""
    order = np.argsort(-s, axis=-1, kind="stable")
    rank = np.argsort(order, axis=-1, kind="stable")
    return (rank < k) & np.isfinite(s)


def tie_free_rows(trace: Trace, config: AttentionConfig) -> np.ndarray:
    """The weight rows (batch?, head?, seq_q) that do not hang on a near-tie: every row of a
    softmax; for hard and top-k the rows whose k-th and (k+1)-th largest scores differ by more
    than rounding. Two computations of the same scores (another backend, block, head layout or
    token order) may differ in the last bit, and at a tie that picks another key: README
    Conventions fix the tie rule for exact ties, rounding decides near ones."""
    s = normalised(trace, config)
    k = 1 if config.normalize == "hard" else config.top_k
    if k is None or s.shape[-1] <= k:
        return np.ones(s.shape[:-1], dtype=bool)
    ordered = -np.sort(-s, axis=-1)
    kth, next_ = ordered[..., k - 1], ordered[..., k]
    with np.errstate(invalid="ignore"):  # −∞ − (−∞) where next_ is masked: decided anyway
        return ~np.isfinite(next_) | (kth - next_ > 1e-8 * (1.0 + np.abs(kth)))


def step_rows(trace: Trace, name: str, rows: np.ndarray) -> np.ndarray:
    """The mask over step ``name``'s leading axes that the weight rows ``rows`` (as
    :func:`tie_free_rows` gives them) select: a context or output row needs its row in every
    head. ``trace`` must hold the weights."""
    axes, weight_axes = trace.step(name).axes, trace.step("weights").axes
    if "key" not in axes and "head" not in axes and "head" in weight_axes:
        return rows.all(axis=weight_axes.index("head"))
    return rows


#: Steps computed before the weights: no tie can change them.
BEFORE_WEIGHTS = ("queries", "keys", "values", "scores", "scaled_scores", "masked_scores")


def assert_same_steps(actual: Trace, expected: Trace, rows: np.ndarray | None = None) -> None:
    """The same step names, axes and dtypes, and values within TOL; from the weights on only
    in the weight rows ``rows`` (see :func:`tie_free_rows`) when given."""
    assert actual.names() == expected.names()
    for step in expected:
        assert actual.step(step.name).axes == step.axes, step.name
        assert actual[step.name].dtype == step.data.dtype, step.name
        mask = (... if rows is None or step.name in BEFORE_WEIGHTS
                else step_rows(expected, step.name, rows))
        close(actual[step.name][mask], step.data[mask], what=step.name)


def structural_allowed(seq_q: int, seq_k: int, *, causal: bool, window: int | None,
                       bottom_right: bool) -> np.ndarray:
    """(seq_q, seq_k) True = may attend, written from the README's definitions."""
    offset = seq_k - seq_q if bottom_right else 0
    i = np.arange(seq_q)[:, None] + offset
    j = np.arange(seq_k)[None, :]
    allowed = np.ones((seq_q, seq_k), dtype=bool)
    if causal:
        allowed &= j <= i
    if window is not None:
        allowed &= np.abs(i - j) <= window
    return allowed


def empty_rows_warning(trace: Trace) -> str | None:
    return next((w for w in trace.warnings if "no key to attend to" in w), None)


def query_rows(trace: Trace, name: str, rows) -> np.ndarray:
    """The given query rows (indices) of a step, along its query axis."""
    return np.take(trace[name], rows, axis=trace.step(name).axes.index("query"))


def changed_row(x: np.ndarray, j: int, row: np.ndarray) -> np.ndarray:
    """x with token j replaced by ``row`` (in every batch item)."""
    x = x.copy()
    x[..., j, :] = row
    return x


# --------------------------------------------------------------------------------------------
# 1. weights: distributions, one-hot, top-k


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
@FEW
@given(data=st.data())
def test_weights_rows_are_distributions_one_hot_or_top_k(request, case, backend, data):
    """Soft: each row of ``weights`` is a probability distribution (non-negative, sums to 1);
    with sinks, the softmax of the row and its head's sink logit, the sink's column dropped
    (into sink_weights); hard: one-hot at the first arg-max; top-k: a softmax over exactly min(k, unmasked) keys,
    ties to the lower index. A row with no key to attend to is all zeros, with a warning.
    Source: Vaswani et al. 2017, eq. 1 (softmax); Xu et al. 2015 (hard); README Conventions."""
    arrays, fields = data.draw(problems(case, masks=True))
    config = config_for(case, use(request, backend), **fields)
    trace = run(arrays, config)
    weights, s = trace["weights"], normalised(trace, config)
    assert np.isfinite(weights).all() and (weights >= 0).all()

    unmasked = np.isfinite(s).sum(axis=-1)  # keys each row may attend to
    empty = unmasked == 0
    assert (weights[empty] == 0).all()
    assert (empty_rows_warning(trace) is not None) == bool(empty.any())
    if "sinks" in arrays:  # the sink one more column of the softmax, then dropped
        sink = np.asarray(arrays["sinks"], dtype=np.float64) / config.temperature
        sink = sink[:, None, None] if "head" in trace.step("weights").axes else sink[0]
        full = softmax_reference(np.concatenate([s, np.broadcast_to(sink, (*s.shape[:-1], 1))],
                                                axis=-1))
        close(weights, full[..., :-1], what="weights")
        close(trace["sink_weights"], full[..., -1], what="sink_weights")
        return
    if config.normalize == "hard":
        expected = np.zeros_like(s)
        np.put_along_axis(expected, np.argmax(s, axis=-1)[..., None], 1.0, axis=-1)
        np.testing.assert_array_equal(weights, np.where(empty[..., None], 0.0, expected))
        return
    if config.normalize == "topk":
        k = config.top_k
        kept = top_k_set(s, k)
        np.testing.assert_array_equal(kept.sum(axis=-1), np.minimum(k, unmasked))
        assert (weights[~kept] == 0).all()
        close(weights, softmax_reference(np.where(kept, s, -np.inf)), what="weights")
        # exactly min(k, unmasked) non-zeros where no kept weight underflows (e^−700 > 0)
        spread = np.max(np.where(kept, s, -np.inf), axis=-1) - np.min(
            np.where(kept, s, np.inf), axis=-1)
        sure = ~empty & (spread < 700)
        np.testing.assert_array_equal(np.count_nonzero(weights, axis=-1)[sure],
                                      np.minimum(k, unmasked)[sure])
    close(weights.sum(axis=-1), np.where(empty, 0.0, 1.0), what="row sums")


# --------------------------------------------------------------------------------------------
# 2. causal and local masks


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align", list(CausalAlign))
@SOME
@given(data=st.data())
def test_causal_weights_are_zero_above_the_diagonal(request, align, backend, data):
    """Causal weights are zero for every key j > i (top-left, torch SDPA ``is_causal``) or
    j > i + seq_k − seq_q (bottom-right, flash-attn ≥ 2.1, torch ``causal_lower_right``),
    with seq_q ≠ seq_k drawn through a memory; a query that sees no key gets zero weights and
    a zero context. Source: Vaswani et al. 2017, §3.2.3; README Conventions."""
    arrays, fields = data.draw(problems("causal", cross=data.draw(st.booleans())))
    config = config_for("causal", use(request, backend), causal_align=align, **fields)
    trace = run(arrays, config)
    weights = trace["weights"]
    seq_q, seq_k = weights.shape[-2:]
    allowed = structural_allowed(seq_q, seq_k, causal=True, window=None,
                                 bottom_right=align is CausalAlign.bottom_right)
    assert (weights[..., ~allowed] == 0).all()
    empty = ~allowed.any(axis=-1)
    assert (query_rows(trace, "context", np.flatnonzero(empty)) == 0).all()
    assert (empty_rows_warning(trace) is not None) == bool(empty.any())
    close(weights.sum(axis=-1), np.broadcast_to(np.where(empty, 0.0, 1.0), weights.shape[:-1]))


@pytest.mark.parametrize("backend", BACKENDS)
@SOME
@given(data=st.data())
def test_causal_future_tokens_change_no_earlier_row(request, backend, data):
    """Changing token j of x changes no row i < j of the causal weights, context or output:
    query i reads keys and values j ≤ i only (autoregressive decoding rests on it).
    Source: Vaswani et al. 2017, §3.2.3 ("prevent leftward information flow")."""
    arrays, fields = data.draw(problems("causal", output=data.draw(st.booleans()), min_seq=2))
    config = config_for("causal", use(request, backend), **fields)
    x = arrays["x"]
    j = data.draw(st.integers(1, x.shape[-2] - 1), label="changed token")
    changed = {**arrays, "x": changed_row(x, j, data.draw(values(x.shape[-1:]), label="row"))}
    before, after = run(arrays, config), run(changed, config)
    earlier = np.arange(j)
    for name in ("weights", "head_context", "context", "output"):
        if name in before:
            close(query_rows(after, name, earlier), query_rows(before, name, earlier), what=name)


@pytest.mark.parametrize("backend", BACKENDS)
@SOME
@given(data=st.data())
def test_local_weights_are_zero_outside_the_window(request, backend, data):
    """Local attention with window W: weights are zero unless |i + offset − j| ≤ W (offset
    seq_k − seq_q for bottom-right alignment, else 0); in self-attention, changing token j
    changes no row i with |i − j| > W. Source: Luong et al. 2015, §3.2 (local attention);
    README Variants (--causal-align aligns --window too)."""
    cross = data.draw(st.booleans(), label="cross")
    arrays, fields = data.draw(problems("local", cross=cross))
    align = data.draw(st.sampled_from(list(CausalAlign)), label="align")
    config = config_for("local", use(request, backend), causal_align=align, **fields)
    trace = run(arrays, config)
    weights, W = trace["weights"], config.window
    seq_q, seq_k = weights.shape[-2:]
    allowed = structural_allowed(seq_q, seq_k, causal=False, window=W,
                                 bottom_right=align is CausalAlign.bottom_right)
    assert (weights[..., ~allowed] == 0).all()
    empty = ~allowed.any(axis=-1)
    close(weights.sum(axis=-1), np.broadcast_to(np.where(empty, 0.0, 1.0), weights.shape[:-1]))
    if cross:
        return
    x = arrays["x"]
    j = data.draw(st.integers(0, seq_q - 1), label="changed token")
    after = run({**arrays, "x": changed_row(x, j, data.draw(values(x.shape[-1:]), label="row"))},
                config)
    far = np.flatnonzero(np.abs(np.arange(seq_q) - j) > W)
    for name in ("weights", "head_context", "context"):
        if name in trace:
            close(query_rows(after, name, far), query_rows(trace, name, far), what=name)


# --------------------------------------------------------------------------------------------
# 3. permutation equivariance


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", UNMASKED)
@FEW
@given(data=st.data())
def test_permuting_tokens_permutes_the_outputs(request, case, backend, data):
    """Without a positional mask, attention is permutation-equivariant in the queries and
    invariant in the order of the keys/values: x[perm] gives context[perm] and weights permuted
    on both axes (for a memory, permuted on its own: the context does not change). Hard and
    top-k rows with a tie at the k-th place follow the index rule, not the permutation: only
    rows without one are compared. Source: Lee et al. 2019 (Set Transformer), §3.1, Lemma 1."""
    arrays, fields = data.draw(problems(case))
    config = config_for(case, use(request, backend), **fields)
    seq_q = arrays["x"].shape[-2]
    perm_q = np.array(data.draw(st.permutations(range(seq_q)), label="perm"))
    permuted = {**arrays, "x": arrays["x"][..., perm_q, :]}
    perm_k = perm_q
    if "memory" in arrays:
        seq_k = arrays["memory"].shape[-2]
        perm_k = np.array(data.draw(st.permutations(range(seq_k)), label="memory perm"))
        permuted["memory"] = arrays["memory"][..., perm_k, :]
    before, after = run(arrays, config), run(permuted, config)

    rows = tie_free_rows(before, config)[..., perm_q]  # the rows of ``after``
    for name in ("weights", "head_context", "context", "output"):
        if name in before:
            expected = np.take(before[name], perm_q, axis=before.step(name).axes.index("query"))
            if name == "weights":
                expected = expected[..., perm_k]
            mask = step_rows(after, name, rows)
            close(after[name][mask], expected[mask], what=name)


# --------------------------------------------------------------------------------------------
# 4. the simple variant under scaling


@pytest.mark.parametrize("backend", BACKENDS)
@SOME
@given(data=st.data())
def test_scaling_x_under_simple_matches_the_closed_form(request, backend, data):
    """simple: Q = K = V = x and a dot score, so x → c·x gives scores c² x xᵀ, weights
    softmax(c² x xᵀ) and context weights (c x), computed here with numpy alone.
    Source: seed 000 ("Hello shiny sun!", attention without trainable weights)."""
    arrays, _ = data.draw(problems("simple", heads=1))
    c = data.draw(VALUE, label="c")
    x = arrays["x"]
    trace = run({"x": c * x}, from_variant("simple", backend=use(request, backend)))
    scores = c**2 * (x @ np.swapaxes(x, -1, -2))
    weights = softmax_reference(scores)
    close(trace["scores"], scores, what="scores")
    close(trace["weights"], weights, what="weights")
    close(trace["context"], weights @ (c * x), what="context")


# --------------------------------------------------------------------------------------------
# 5. one head is single-head attention


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
@FEW
@given(data=st.data())
def test_one_head_equals_single_head(request, case, backend, data):
    """H = 1 is single-head attention: heads=1 and heads=None give the same trace, and so does
    a 3-D W of shape (1, d_in, d) (biases (1, d)) for the 2-D W (d_in, d). Source: Vaswani
    et al. 2017, §3.2.2 (MultiHead with h = 1 is Attention(QW^Q, KW^K, VW^V) W^O)."""
    arrays, fields = data.draw(problems(case, heads=1, per_head=False, masks=True))
    backend = use(request, backend)
    single = run(arrays, config_for(case, backend, **{**fields, "heads": None}))
    traces = [run(arrays, config_for(case, backend, **fields))]
    if case in PROJECTED:
        per_head = {k: v[None] if k[:2] in ("W_", "b_") and k[2] in "qkv" else v
                    for k, v in arrays.items()}
        traces.append(run(per_head, config_for(case, backend, **{**fields, "heads": None})))
    config = config_for(case, backend, **fields)
    for trace in traces:
        assert_same_steps(trace, single, tie_free_rows(single, config))


# --------------------------------------------------------------------------------------------
# 6. the backends agree


@pytest.mark.parametrize("case", [*CASES, "dropout", "temperature"])
@FEW
@given(data=st.data())
def test_numpy_equals_torch_on_every_step(torch, case, data):
    """The numpy and torch backends agree on every step of every variant (names, axes, dtype,
    values to 1e-10 in float64) and on the warnings. Dropout uses a given ``dropout_mask`` (the
    backends draw different masks from a seed). Source: the array API standard both follow."""
    variant = "multihead" if case in ("dropout", "temperature") else case
    arrays, fields = data.draw(problems(variant, masks=True))
    if case == "dropout":
        H, seq_q = fields["heads"], arrays["x"].shape[-2]
        seq_k = arrays.get("memory", arrays["x"]).shape[-2]
        shape = (*arrays["x"].shape[:-2], *((H,) if H > 1 else ()), seq_q, seq_k)
        arrays["dropout_mask"] = data.draw(hnp.arrays(np.bool_, shape), label="keep")
        fields["dropout"] = data.draw(st.floats(0.05, 0.9), label="p")
    if case == "temperature":
        fields["temperature"] = data.draw(st.floats(0.1, 10.0), label="T")
    config = config_for(variant, Backend.numpy, **fields)
    on_numpy = run(arrays, config)
    on_torch = run(arrays, config.replace(backend=Backend.torch))
    assert (on_numpy.backend, on_torch.backend) == ("numpy", "torch")
    assert all(step.data.dtype == np.float64 for step in on_numpy)
    assert_same_steps(on_torch, on_numpy, tie_free_rows(on_numpy, config))
    assert on_numpy.warnings == on_torch.warnings


# --------------------------------------------------------------------------------------------
# 7. softmax at ±1e4 and with −∞


@pytest.mark.parametrize("backend", BACKENDS)
@SOME
@given(data=st.data())
def test_softmax_is_finite_for_scores_of_1e4_and_masked_rows(request, backend, data):
    """Scores up to ±1e4 (x scaled so that the largest ‖x_i‖², the largest |x_i·x_j| by
    Cauchy–Schwarz, is 1e4; keys from memory = −x make every row's best score ≤ 0, down to
    −1e4) and −∞ masks give finite weights equal to the max-subtracted softmax; a fully masked
    row gets zero weights, a zero context and a warning, never NaN.
    Source: torch.nn.functional.scaled_dot_product_attention (safe softmax for fully masked
    rows, PyTorch ≥ 2.5); Goodfellow et al. 2016, §4.1 (softmax with the maximum subtracted)."""
    arrays, _ = data.draw(problems("simple", heads=1, masks=True))
    x = arrays["x"]
    if not x.any():
        x = np.ones_like(x)
    x = x / np.abs(x).max()  # first to 1, so that the squares below cannot underflow
    x = x * np.sqrt(1e4 / np.max(np.sum(x * x, axis=-1)))
    memory = -x if data.draw(st.booleans(), label="memory = −x") else x
    trace = run({**arrays, "x": x, "memory": memory},
                from_variant("simple", backend=use(request, backend)))
    assert np.max(np.abs(trace["scores"])) == pytest.approx(1e4, rel=1e-12)

    allowed = np.isfinite(trace["masked_scores"] if "masked_scores" in trace
                          else trace["scores"])
    s = np.where(allowed, x @ np.swapaxes(memory, -1, -2), -np.inf)
    weights = trace["weights"]
    assert np.isfinite(weights).all()
    # Scores of 1e4 carry rounding of ~1e4 · 2⁻⁵² ≈ 2e-12 between two ways of summing x_i·x_j,
    # which moves the weights by as much relative to themselves: within rtol 1e-10.
    close(weights, softmax_reference(s), what="weights")
    empty = ~allowed.any(axis=-1)
    assert (weights[empty] == 0).all() and (trace["context"][empty] == 0).all()
    warning = empty_rows_warning(trace)
    assert (warning is not None) == bool(empty.any())
    if warning is not None:
        assert warning.startswith(f"{int(empty.sum())} query row(s)")
    # The context is a weighted mean of rows of x (|x| up to 100): its rounding is relative to
    # max |x|, not to each (possibly cancelling) entry, hence atol = 1e-10 · max |x|.
    close(trace["context"], softmax_reference(s) @ memory,
          atol=TOL * max(1.0, np.abs(x).max()), what="context")


# --------------------------------------------------------------------------------------------
# 8. the query-block path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
@FEW
@given(data=st.data())
def test_query_blocks_equal_the_whole_run(request, case, backend, data):
    """attend(..., steps=["context", "output"]) builds no n×n step: the queries go through in
    blocks (one row each here, BLOCK_BYTES shrunk) or torch's fused SDPA, and must give the
    context and output of the whole run. Source: every query row of attention depends on all
    keys and values and on no other query (Vaswani et al. 2017, eq. 1)."""
    arrays, fields = data.draw(problems(case, masks=True))
    config = config_for(case, use(request, backend), **fields)
    whole = run(arrays, config)
    with pytest.MonkeyPatch.context() as patch:  # per example: fixtures outlive them
        patch.setattr(blocks, "BLOCK_BYTES", 1)
        blocked = run(arrays, config, steps=["context", "output"])
    seq_q = arrays["x"].shape[-2]
    path = blocked.run.path
    assert path.startswith(("fused", "query blocks of 1 rows" if seq_q > 1 else "whole")), path
    assert blocked.names() == [n for n in ("context", "output") if n in whole]
    rows = tie_free_rows(whole, config)
    for step in blocked:
        mask = step_rows(whole, step.name, rows)
        close(step.data[mask], whole[step.name][mask], what=step.name)
    assert blocked.warnings == whole.warnings
