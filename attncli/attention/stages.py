"""The stages of attention: each a small function over arrays and the step it records.

A stage is called as ``stage(xp, data, context)``: ``data`` is what the stage before it gave
(the queries of a block for the score, the scores for the scale …), ``context`` the run's
other arrays (:class:`Context`); it returns its own output, which the executor records as
``stage.step`` with ``stage.formula`` (:mod:`attncli.attention.executor`). A stage holds its own
parameters (the scale factor, the mask, the temperature), set when the plan is made
(:func:`attncli.attention.plan.plan`); it does not know which stages come before or after it,
nor whether its rows are a block or the whole run.

Shapes (B = batch, H = heads, rows = the query rows of a block):
    queries (B, H, rows, d_k), keys (B, H, seq_k, d_k), values (B, H, seq_k, d_v)
    scores … dropped_weights (B, H, rows, seq_k); head_context (B, H, rows, d_v)
    context (B, rows, H·d_v); output (B, rows, d_out)

A stage whose ``row_local`` is True computes each query row from that row alone (and the
keys and values), so it works on any block of rows; the executor computes whole matrices
when a stage is not. ``fused()`` says what a stage contributes to torch's fused
scaled_dot_product_attention, or None when SDPA cannot compute it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attncli.attention import masks, normalize, scores
from attncli.attention.masks import Mask
from attncli.attention.project import project


@dataclass(eq=False, repr=False)
class Context:
    """What the stages of one block read besides their input: the run's arrays on the device.

    Shapes: x (B, rows_run, d_in) (the query rows this run computes), keys_input (B, seq_k,
    d_src), values_input (B, seq_k, d_vsrc); params: W_q (H, d_in, d_k) … as
    :class:`attncli.shapes.Prepared` holds them; queries, keys, values (B, H, …) once
    projected; keys_t (B, H, d_k, seq_k) the keys transposed, contiguous; mask and padding
    the problem's mask and key_padding_mask (:class:`Mask`) on the device; dropout_mask
    (B, H, seq_q, seq_k) bool or None; bias_input the problem's float bias (B or 1, H or 1,
    seq_q, seq_k) on the device; bias the block's bias (B, H, rows, seq_k) (:class:`Bias`);
    sink_weights the block's sink shares (B, H, rows) (:class:`SinkWeights`).
    ``first``: the block's first query row in the problem (masks and dropout need it);
    ``inplace``: whether the stage may overwrite its input (nothing else holds it).
    """

    runtime: Any
    params: dict[str, Any]
    x: Any = None
    keys_input: Any = None
    values_input: Any = None
    queries: Any = None
    keys: Any = None
    values: Any = None
    keys_t: Any = None
    mask: Any = None
    padding: Any = None
    dropout_mask: Any = None
    bias_input: Any = None
    bias: Any = None
    sink_weights: Any = None  # the block's (B, H, rows) (:class:`SinkWeights`), unread
    first: int = 0
    inplace: bool = False


@dataclass(eq=False, repr=False)
class Stage:
    """One stage: the step it records (None: it records nothing) and that step's formula.

    A stage is never changed once made (another is made with ``dataclasses.replace``); the
    classes are not frozen dataclasses only because those cost 3 ms more to define at
    every start-up (bench/startup.py).

    ``overflow``: the name an overflow of the output is reported under (the executor checks
    it when it checks every stage: scores, weights). ``row_local``: see the module's text.
    ``writes``: for a stage before the blocks, the Context array its output becomes (queries,
    keys, values); None: the one named like its step. For a row stage, the Context array its
    output becomes while its input passes by it to the next stage (the bias, which the stage
    after it adds to the scores).
    ``blockwise``: worth calling a block of rows at a time; False when each call does work
    for the whole run (dropout draws the whole run's keep mask), so one call over every row
    the run computes is cheaper than one per block (one --query row is still one row).
    """

    step: str | None
    formula: str
    row_local: bool = field(default=True, kw_only=True)
    overflow: str | None = field(default=None, kw_only=True)
    blockwise: bool = field(default=True, kw_only=True)
    writes: str | None = field(default=None, kw_only=True)

    def __call__(self, xp, data, context: Context):
        raise NotImplementedError

    def bound(self, xp, queries, keys, params) -> float | None:
        """An upper bound of |output| for a score stage (for the executor's overflow check),
        inf when it overflows itself; None when the stage gives none (the default)."""
        return None

    def row_width(self, params) -> int:
        """How many numbers of (B, H, rows, seq_k) size per query row and key the stage holds
        at once, relative to the scores (1; the additive score's hidden layer, d_att)."""
        return 1

    def fused(self) -> dict[str, Any] | None:
        """This stage's part of an SDPA call (``scale``, ``is_causal``, ``temperature``), {}
        for nothing, or None when SDPA cannot compute it (the default)."""
        return None


# --- inputs: whole, before the blocks -------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Project(Stage):
    """queries = x W_q + b_q (or keys, values from their inputs), split into heads; without a
    W, the input split into ``heads`` column blocks (:func:`attncli.attention.project.project`).

    ``from_input``: the Context array projected (``x``, ``keys_input`` or ``values_input``);
    ``weight``/``bias``: the params keys (W_q, b_q …). Shapes: (B, seq, d) → (B, H, seq, d_head);
    W (H, d, d_head) or None, b (H, 1, d_head) or None; head h owns columns h·d_head …
    (h+1)·d_head − 1 of the projected width, as torch.nn.MultiheadAttention splits them.
    Source: Vaswani et al. 2017, §3.2.2.
    """

    from_input: str = "x"
    weight: str = "W_q"
    bias: str = "b_q"
    heads: int = 1

    def __call__(self, xp, data, context: Context):
        params = context.params
        return project(xp, getattr(context, self.from_input), params[self.weight],
                       params[self.bias], self.heads)


@dataclass(eq=False, repr=False)
class QKNorm(Stage):
    """normed = x / √(mean(x²) + eps) · (offset + w): the RMSNorm of each query (or key), after
    the projection and before any rotation (``writes`` queries or keys).

    ``weight``: the params key, q_norm or k_norm; ``whole``: the mean over the whole projection
    of a token (all its heads' numbers, OLMo2) rather than over each head's d_head (Qwen3);
    ``offset``: 1 for Gemma 3's (1 + w), else 0.
    Shapes: (B, H, seq, d_head) → the same (G KV heads for the keys); w (d_head,) per head,
    (H·d_head,) whole, head h owning w[h·d_head … (h+1)·d_head − 1] as the projection's columns.
    Source: Zhang & Sennrich 2019 (RMSNorm); Henry et al. 2020 (QK-norm); transformers'
    models/qwen3/modeling_qwen3.py (Qwen3RMSNorm on q_proj(x).view(…, head_dim)),
    models/olmo2/modeling_olmo2.py (Olmo2RMSNorm on q_proj(x), before the view),
    models/gemma3/modeling_gemma3.py (Gemma3RMSNorm: · (1 + w)).
    """

    weight: str = "q_norm"
    whole: bool = False
    eps: float = 1e-6
    offset: float = 0.0

    def __call__(self, xp, data, context: Context):
        w = context.params[self.weight]
        heads, d_head = data.shape[1], data.shape[3]
        if self.whole:  # one mean per token over all its heads: (B, 1, seq, 1)
            mean = xp.mean(data * data, axis=(1, 3), keepdims=True)
            w = xp.reshape(w, (heads, 1, d_head))  # (H, 1, d_head), head h's slice of w
        else:  # one mean per token and head: (B, H, seq, 1)
            mean = xp.mean(data * data, axis=-1, keepdims=True)
        gain = w if self.offset == 0.0 else w + self.offset
        return data / xp.sqrt(mean + self.eps) * gain


@dataclass(eq=False, repr=False)
class RepeatKV(Stage):
    """Grouped-query attention: the G key/value heads repeated for the H query heads, so that
    query head h meets KV head ⌊h / (H/G)⌋; records no step (keys and values were recorded
    with their G heads), ``writes`` keys or values.

    Shapes: (B, G, seq_k, d) → (B, H, seq_k, d), each KV head H/G times in a row.
    Source: Ainslie et al. 2023, "GQA"; Shazeer 2019 (multi-query, G = 1); transformers'
    models/llama/modeling_llama.py, repeat_kv; torch SDPA's enable_gqa (repeat_interleave).
    """

    heads: int = 1

    def __call__(self, xp, data, context: Context):
        batch, groups, seq, d = data.shape
        n_rep = self.heads // groups
        if n_rep == 1:
            return data
        expanded = xp.broadcast_to(data[:, :, None], (batch, groups, n_rep, seq, d))
        return xp.reshape(expanded, (batch, self.heads, seq, d))  # (B, H, seq_k, d)


@dataclass(eq=False, repr=False)
class Rotate(Stage):
    """rotated_queries / rotated_keys = RoPE(queries / keys): each pair of a head's first R
    dims turned by position × f_i (:func:`attncli.attention.rope.rotate`).

    ``rope``: the run's :class:`attncli.attention.rope.Rope`; ``keys``: rotate the keys (their
    key_positions) rather than the queries (positions, from ``context.first``: one --query
    row uses its own position). ``interleaved``: the pair layout (a field of its own, so that
    the other layout is one ``dataclasses.replace``).
    Shapes: (B, H or G, n, d_head) → the same; positions (B or 1, n).
    Source: Su et al. 2021 (RoFormer), eq. 34; transformers/models/llama/modeling_llama.py
    (apply_rotary_pos_emb), transformers/models/gptj/modeling_gptj.py (rotate_every_two).
    """

    rope: Any = None
    keys: bool = False
    interleaved: bool = False
    start: int = 0  # added to every position (0; 1 for the "positions from 1" mistake)

    def positions(self, data, context: Context):
        """The positions of ``data``'s rows, (B or 1, n) int64."""
        if self.keys:
            return self.rope.key_positions
        return self.rope.positions[:, context.first:context.first + data.shape[2]]

    def __call__(self, xp, data, context: Context):
        from attncli.attention.rope import cos_sin, rotate

        cos, sin = cos_sin(self.positions(data, context) + self.start, self.rope.freqs)
        runtime = context.runtime
        return rotate(xp, data, runtime.asarray(cos), runtime.asarray(sin),
                      self.rope.rotary_dim, self.interleaved)


# --- row-local stages: a block of query rows ------------------------------------------------------


@dataclass(eq=False, repr=False)
class DotScore(Stage):
    """scores = queries keysᵀ, (B, H, rows, d_k) → (B, H, rows, seq_k).
    Source: Luong et al. 2015, eq. 8 ("dot"); Vaswani et al. 2017, eq. 1 before scaling."""

    def __call__(self, xp, data, context: Context):
        return scores.dot(xp, data, context.keys, context.keys_t)

    def bound(self, xp, queries, keys, params) -> float:
        """An upper bound of |scores| (Cauchy–Schwarz: |q·k| ≤ ‖q‖ ‖k‖), inf on overflow."""
        return _norm(xp, queries) * _norm(xp, keys)

    def fused(self):
        return {}


@dataclass(eq=False, repr=False)
class GeneralScore(DotScore):
    """scores = queries W_a keysᵀ, a bilinear form; W_a (d_k, d_k) from the params.
    Shapes: (B, H, rows, d_k), keys (B, H, seq_k, d_k) → (B, H, rows, seq_k).
    Source: Luong et al. 2015, eq. 8 ("general")."""

    def __call__(self, xp, data, context: Context):
        return scores.general(xp, data, context.keys, context.params["W_a"], context.keys_t)

    def bound(self, xp, queries, keys, params) -> float:
        return _norm(xp, xp.matmul(queries, params["W_a"])) * _norm(xp, keys)

    def fused(self):
        return None


@dataclass(eq=False, repr=False)
class AdditiveScore(Stage):
    """scores = tanh(queries W_a + keys U_a + b_a) v_a; W_a (d_k, d_att), U_a (d_k, d_att),
    v_a (d_att,), b_a (d_att,) or absent, from the params. Shapes: (B, H, rows, d_k), keys
    (B, H, seq_k, d_k) → (B, H, rows, seq_k); memory: (B, H, rows, seq_k, d_att).
    Source: Bahdanau et al. 2015, appendix A.1.2."""

    def __call__(self, xp, data, context: Context):
        params = context.params
        return scores.additive(xp, data, context.keys, params["W_a"], params["U_a"],
                               params["v_a"], params.get("b_a"))

    def row_width(self, params) -> int:
        return int(params["W_a"].shape[1])  # the (B, H, rows, seq_k, d_att) hidden layer

    def bound(self, xp, queries, keys, params) -> float:
        """|v_aᵀ tanh(…)| ≤ Σ|v_a|."""
        return float(xp.sum(xp.abs(params["v_a"])))


def _norm(xp, a) -> float:
    """The largest row norm of (B, H, n, d) ``a`` (0 for no rows)."""
    return float(xp.max(xp.sqrt(xp.sum(a * a, axis=-1)))) if a.shape[2] else 0.0


@dataclass(eq=False, repr=False)
class Scale(Stage):
    """scaled_scores = scores × factor (1/√d_k for the scaled dot product).
    Shapes: (B, H, rows, seq_k) → the same; the scores are overwritten when
    ``context.inplace``.
    Source: Vaswani et al. 2017, eq. 1; torch SDPA's ``scale``."""

    factor: float = 1.0

    def __call__(self, xp, data, context: Context):
        if context.inplace:
            data *= self.factor
            return data
        return data * self.factor

    def fused(self):
        return {"scale": self.factor}


@dataclass(eq=False, repr=False)
class Softcap(Stage):
    """capped_scores = cap · tanh(scaled_scores / cap): every score kept within (−cap, cap),
    nearly unchanged where |score| ≪ cap; applied after the scale, before any bias and the
    mask. Shapes: (B, H, rows, seq_k) → the same.
    Source: Gemma Team 2024, "Gemma 2", §2 (logit soft-capping); transformers'
    models/gemma2/modeling_gemma2.py, eager_attention_forward (attn_logit_softcapping);
    torch flex_attention's soft-capping score_mod. SDPA cannot compute it (``fused`` None)."""

    cap: float = 1.0

    def __call__(self, xp, data, context: Context):
        return self.cap * xp.tanh(data / self.cap)


@dataclass(eq=False, repr=False)
class Bias(Stage):
    """bias = −m_h·|i + offset − j| (ALiBi, with ``slopes``) plus the problem's ``bias`` key:
    the matrix added to the scores. A side stage: it ``writes`` Context's ``bias`` and the
    scores pass by it to :class:`AddBias` (a given ``bias`` step stands in for it there).

    Shapes: scores (B, H, rows, seq_k) → bias (B, H, rows, seq_k), a broadcast view of the
    block's rows (``context.first`` …) of ALiBi's (1, H, rows, seq_k) and of the given bias
    (B or 1, H or 1, seq_q, seq_k) (``context.bias_input``); −∞ where the given bias is −∞.
    ``slopes``: (H,) numpy, or None without ALiBi; ``offset``: 0 top-left, seq_k − seq_q
    bottom-right (as the causal mask's diagonal); ``given``: whether the problem has a bias.
    Source: Press et al. 2022, "Train Short, Test Long" §3 (ALiBi); transformers'
    models/bloom/modeling_bloom.py (build_alibi_tensor, alibi.baddbmm); torch SDPA's float
    ``attn_mask``; Raffel et al. 2020 (T5's relative position bias, an additive bias).
    """

    writes: str | None = field(default="bias", kw_only=True)
    slopes: Any = None
    offset: int = 0
    given: bool = False

    def __call__(self, xp, data, context: Context):
        from attncli.attention.bias import alibi

        rows, seq_k = data.shape[2], data.shape[3]
        bias = None
        if self.slopes is not None:
            slopes = context.runtime.asarray(self.slopes)
            bias = alibi(xp, slopes, context.first, rows, seq_k, self.offset)
        if self.given:
            block = context.bias_input[:, :, context.first:context.first + rows]
            bias = block if bias is None else bias + block
        return xp.broadcast_to(bias, tuple(data.shape))

    def row_width(self, params) -> int:
        return 2  # the block's bias beside its scores


@dataclass(eq=False, repr=False)
class AddBias(Stage):
    """biased_scores = the scores + bias (``context.bias``, written by :class:`Bias`).
    Shapes: (B, H, rows, seq_k) + (B, H, rows, seq_k) → the same; the scores are overwritten
    when ``context.inplace``.
    Source: Press et al. 2022, §3 (ALiBi); torch SDPA's float ``attn_mask`` (added to the
    scaled scores). SDPA is not used for it here (``fused`` None): a float mask is n×n."""

    def __call__(self, xp, data, context: Context):
        if context.inplace:
            data += context.bias
            return data
        return data + context.bias


@dataclass(eq=False, repr=False)
class MaskScores(Stage):
    """masked_scores = the scores where the run's one mask allows, −∞ elsewhere
    (:class:`attncli.attention.masks.Mask`).
    Shapes: (B, H, rows, seq_k) → the same, with the mask's query rows first … first + rows − 1
    (``context.first``).
    Source: Vaswani et al. 2017, §3.2.3."""

    mask: Mask = None  # type: ignore[assignment]

    def allowed(self, xp, data, context: Context):
        """The block's rows of the mask, (B or 1, 1, rows, seq_k), True = may attend."""
        return self.mask.rows(xp, context.first, context.first + data.shape[2],
                              context.runtime.device, context.mask, context.padding)

    def __call__(self, xp, data, context: Context):
        return masks.apply(xp, data, self.allowed(xp, data, context))

    def fused(self):
        m = self.mask
        if not m.given and m.window is None and m.causal and not m.bottom_right:
            return {"is_causal": True}
        return None


@dataclass(eq=False, repr=False)
class Softmax(Stage):
    """weights = softmax(scores / temperature) over the keys; rows with no key get zeros.
    Shapes: (B, H, rows, seq_k) → the same, each row summing to 1 (or all 0); the scores are
    overwritten when ``context.inplace``.
    Source: Bridle 1990; Vaswani et al. 2017, eq. 1; torch SDPA's safe softmax for empty rows."""

    temperature: float = 1.0

    def __call__(self, xp, data, context: Context):
        t = self.temperature
        tempered = data if t == 1.0 else data / t
        return normalize.softmax(xp, tempered, inplace=context.inplace or t != 1.0)

    def fused(self):
        return {"temperature": self.temperature}


@dataclass(eq=False, repr=False)
class SinkWeights(Stage):
    """sink_weights = the mass each row gives its head's sink, exp(sink_h / T) over the row's
    Σ_j exp(s_ij / T) + exp(sink_h / T) (:func:`attncli.attention.normalize.softmax_with_sinks`).
    A side stage: it ``writes`` Context's ``sink_weights`` and the scores pass by it to
    :class:`SinkSoftmax`. ``temperature``: T, as the softmax's.
    Shapes: (B, H, rows, seq_k), sinks (H,) from the params → (B, H, rows).
    Source: transformers' models/gpt_oss/modeling_gpt_oss.py, eager_attention_forward (the
    column ``probs[..., -1]`` that it drops)."""

    writes: str | None = field(default="sink_weights", kw_only=True)
    temperature: float = 1.0

    def __call__(self, xp, data, context: Context):
        t = self.temperature
        sinks = context.params["sinks"]
        return normalize.softmax_with_sinks(xp, data if t == 1.0 else data / t,
                                            sinks if t == 1.0 else sinks / t)[1]


@dataclass(eq=False, repr=False)
class SinkSoftmax(Softmax):
    """weights = softmax over the row's scores / T and its head's sink logit / T, the sink's
    column then dropped: each row sums to 1 − sink_weights (< 1). The sink logits are used
    as they are (not scaled, capped, biased or masked); a temperature divides them too, as
    it divides every logit the softmax takes (gpt-oss's reference concatenates the sink to
    the scaled, masked scores and takes the softmax of the whole row: ``torch.cat([QK, S],
    dim=-1)``; the sink is a logit of that softmax, not a score). A row with no key to
    attend to gives the sink everything (weights 0).
    Shapes: (B, H, rows, seq_k), sinks (H,) from the params → (B, H, rows, seq_k).
    Source: transformers' models/gpt_oss/modeling_gpt_oss.py, eager_attention_forward;
    OpenAI's gpt_oss/torch/model.py, sdpa. SDPA has no sinks (``fused`` None)."""

    def __call__(self, xp, data, context: Context):
        t = self.temperature
        sinks = context.params["sinks"]
        return normalize.softmax_with_sinks(xp, data if t == 1.0 else data / t,
                                            sinks if t == 1.0 else sinks / t)[0]

    def fused(self):
        return None


@dataclass(eq=False, repr=False)
class Hard(Stage):
    """weights = one_hot(argmax_j scores), ties to the first key; rows with no key get zeros.
    Shapes: (B, H, rows, seq_k) → the same.
    Source: Xu et al. 2015, §4.1 (hard attention, arg-max in place of sampling)."""

    def __call__(self, xp, data, context: Context):
        return normalize.hard(xp, data)


@dataclass(eq=False, repr=False)
class TopK(Stage):
    """weights = softmax over each row's k largest scores / temperature, zero elsewhere.

    Ties at the k-th place go to the lower-index keys; a row with fewer than k unmasked keys
    keeps those it has, a row with none gets zeros. Shapes: (B, H, rows, seq_k) → the same.
    Source: Zhao et al. 2019, "Explicit Sparse Transformer" (top-k selection before the
    softmax); the arg-max rule of :class:`Hard` for ties.
    """

    k: int = 1
    temperature: float = 1.0

    def __call__(self, xp, data, context: Context):
        t = self.temperature
        return normalize.top_k(xp, data if t == 1.0 else data / t, self.k)


@dataclass(eq=False, repr=False)
class Dropout(Stage):
    """dropped_weights = weights · keep / (1 − p), keep ~ Bernoulli(1 − p) drawn for the whole
    run from ``seed`` (or the problem's ``dropout_mask``, (B, H, seq_q, seq_k) True = kept),
    so that one row gets the mask of the whole run.
    Shapes: (B, H, rows, seq_k) → the same, with the keep mask's rows first … first + rows − 1
    (``context.first``).
    Source: Srivastava et al. 2014; torch.nn.Dropout (inverted dropout); the torch backend
    draws torch's own mask after torch.manual_seed(seed) (:func:`attncli.backend.dropout_keep`).
    """

    blockwise: bool = field(default=False, kw_only=True)  # each call draws the run's mask
    probability: float = 0.0
    seed: int | None = None
    shape: tuple[int, ...] = ()  # (B, H, seq_q, seq_k) of the whole run

    def keep(self, xp, data, context: Context):
        """The block's rows of the keep mask, (B, H, rows, seq_k) bool, True = kept."""
        from attncli.backend import dropout_keep

        given = context.dropout_mask
        keep = (given if given is not None
                else dropout_keep(context.runtime, self.shape, self.probability, self.seed))
        return keep[:, :, context.first:context.first + data.shape[2]]

    def __call__(self, xp, data, context: Context):
        keep = self.keep(xp, data, context)
        return xp.where(keep, data / (1.0 - self.probability), xp.zeros_like(data))


@dataclass(eq=False, repr=False)
class WeightedSum(Stage):
    """head_context = weights values per head, (B, H, rows, seq_k) → (B, H, rows, d_v);
    values (B, H, seq_k, d_v) from the context.
    Source: Vaswani et al. 2017, eq. 1."""

    def __call__(self, xp, data, context: Context):
        return xp.matmul(data, context.values)

    def fused(self):
        return {}


# --- whole stages after the blocks ------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Merge(Stage):
    """context = the heads side by side, (B, H, seq_q, d_v) → (B, seq_q, H·d_v): head h in
    columns h·d_v … (h+1)·d_v − 1. Source: Vaswani et al. 2017, §3.2.2 (Concat)."""

    def __call__(self, xp, data, context: Context):
        batch, heads, seq_q, d_v = data.shape
        return xp.reshape(xp.permute_dims(data, (0, 2, 1, 3)), (batch, seq_q, heads * d_v))


@dataclass(eq=False, repr=False)
class Output(Stage):
    """output = context W_o + b_o, (B, seq_q, H·d_v) → (B, seq_q, d_out); W_o (H·d_v, d_out),
    b_o (d_out,) or None, from the params.
    Source: Vaswani et al. 2017, §3.2.2 (W^O)."""

    def __call__(self, xp, data, context: Context):
        output = xp.matmul(data, context.params["W_o"])
        b_o = context.params["b_o"]
        return output if b_o is None else output + b_o


def sdpa(queries, keys, values, *, causal: bool, scale: float):
    """torch.nn.functional.scaled_dot_product_attention: softmax(q kᵀ · scale) v, fused.

    Shapes: queries (B, H, seq_q, d_k), keys (B, H, seq_k, d_k), values (B, H, seq_k, d_v)
    → (B, H, seq_q, d_v). ``causal`` is torch's is_causal (top-left: query i sees keys j ≤ i).
    torch picks the kernel: on the CPU its flash-attention kernel when d_k = d_v (memory n·d;
    bench/large.py measures it), otherwise its math kernel, which builds the n×n matrices;
    the pipeline calls this only when d_k = d_v, and on a GPU not in float64.
    Source: torch.nn.functional.scaled_dot_product_attention (PyTorch ≥ 2.1, ``scale``).
    """
    import torch

    return torch.nn.functional.scaled_dot_product_attention(
        queries, keys, values, is_causal=causal, scale=scale)
