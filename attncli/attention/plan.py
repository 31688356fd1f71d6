"""The plan of a run: the stages its config asks for, in order.

:func:`plan` reads the problem's arrays in canonical form (:class:`attncli.shapes.Prepared`)
and the config, and lists the stages (:mod:`attncli.attention.stages`) this run needs: a run
without a mask has no mask stage and no ``masked_scores`` step. The executor
(:mod:`attncli.attention.executor`) runs the plan; :meth:`Plan.replace` puts another stage in
one's place (how `attncli check` tries a mistaken computation) without the stages knowing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from attncli.attention import stages as st
from attncli.attention.masks import Mask
from attncli.config import AttentionConfig, CausalAlign, Normalize, QKNorm, Score
from attncli.shapes import Prepared
from attncli.trace import STEP_NAMES


@dataclass(eq=False, repr=False)  # not frozen: 0.3 ms less at start-up; never changed
class Plan:
    """The stages of one run and the facts they were made from.

    Fields:
        inputs: the stages that make the row stages' inputs, whole, before the blocks: the
            projections (queries, keys, values), then what changes them (a stage's ``writes``
            names the Context array it replaces: a rotation of the queries writes queries).
        rows: score … weighted sum, run on each block of query rows.
        tail: merge (context) and the output projection, whole, after the blocks.
        mask: the run's one mask, or None when nothing is masked.
        seed: the dropout seed (drawn here when dropout has none), or the config's.
        score_gain: |scale| / temperature, the factor between |scores| and what the softmax
            sees (for the executor's overflow bound).
    """

    prepared: Prepared
    config: AttentionConfig
    inputs: tuple[st.Stage, ...]
    rows: tuple[st.Stage, ...]
    tail: tuple[st.Stage, ...]
    mask: Mask | None
    seed: int | None
    score_gain: float

    @property
    def stages(self) -> tuple[st.Stage, ...]:
        return (*self.inputs, *self.rows, *self.tail)

    @property
    def blockwise(self) -> bool:
        """Whether every row stage is worth calling a block of rows at a time."""
        return all(stage.blockwise for stage in self.rows)

    @property
    def row_local(self) -> bool:
        """Whether every row stage computes a query row from that row alone: then the rows
        can be computed in blocks, or one row alone for --query."""
        return all(stage.row_local for stage in self.rows)

    def stage(self, step: str) -> st.Stage | None:
        """The stage that records ``step``, or None."""
        return next((s for s in self.stages if s.step == step), None)

    def replace(self, step: str, stage: st.Stage | None) -> Plan:
        """A plan with ``stage`` in place of the one that records ``step`` (None: left out).

        Raises: KeyError when no stage records ``step``.
        """
        if self.stage(step) is None:
            raise KeyError(f"no stage records {step!r}")

        def swap(stages):
            return tuple(stage if s.step == step else s for s in stages
                         if not (s.step == step and stage is None))

        return dataclasses.replace(self, inputs=swap(self.inputs),
                                   rows=swap(self.rows), tail=swap(self.tail))


def plan(prepared: Prepared, config: AttentionConfig) -> Plan:
    """The stages ``config`` asks for on ``prepared``'s arrays, in order.

    Raises: ValueError (a bug, not bad input) when a stage records a step that
    :data:`attncli.trace.STEP_NAMES` does not list: the trace would drop it unseen.
    """
    H, params = prepared.heads, prepared.params
    G = prepared.kv_heads or H  # key/value heads (grouped-query attention)
    inputs = (
        st.Project("queries", _projection_formula("queries", "x", "q", params, H),
                   from_input="x", weight="W_q", bias="b_q", heads=H),
        st.Project("keys", _projection_formula("keys", prepared.key_from, "k", params, G),
                   from_input="keys_input", weight="W_k", bias="b_k", heads=G),
        st.Project("values", _projection_formula("values", prepared.value_from, "v", params, G),
                   from_input="values_input", weight="W_v", bias="b_v", heads=G),
    )
    if config.qk_norm is not None:  # after the projections, before any rotation
        inputs = (*inputs, *_qk_norm(config))
    if prepared.rope is not None:  # after any norm: RoPE turns the normed queries and keys
        inputs = (*inputs, *rotations(prepared.rope))
    # the scores read the last of the projected, normed and rotated queries and keys
    made = ("rotated" if prepared.rope is not None else
            "normed" if config.qk_norm is not None else None)
    rows: list[st.Stage] = [_score(prepared, made)]
    last = "scores"
    scale = prepared.scale
    if scale != 1.0:
        how = f"/ √d_k  (d_k = {prepared.d_k})" if config.scale is None else f"× {scale:g}"
        rows.append(st.Scale("scaled_scores", f"scaled_scores = scores {how}", factor=scale))
        last = "scaled_scores"
    if config.softcap is not None:  # after the scale, before any bias and the mask (Gemma 2)
        cap = config.softcap
        rows.append(st.Softcap("capped_scores", f"capped_scores = {cap:g} · tanh({last} / "
                               f"{cap:g})", cap=cap))
        last = "capped_scores"
    if prepared.alibi_slopes is not None or prepared.bias is not None:  # before the mask
        rows += _bias(prepared, config, last)
        last = "biased_scores"
    mask = run_mask(prepared, config)
    if mask is not None:
        rows.append(st.MaskScores("masked_scores", f"masked_scores = {last}, −∞ where masked "
                                  f"({mask.words()})", mask=mask))
        last = "masked_scores"
    if "sinks" in params:  # a softmax column more per head, dropped (gpt-oss): shapes._sinks
        rows += _sinks(config, last)
    else:
        rows.append(_normalize(config, last))
    seed = config.seed
    weights = "weights"
    if config.dropout > 0.0:
        if seed is None and prepared.dropout_mask is None:
            import secrets  # here: it imports hashlib, a cost at every start-up

            seed = secrets.randbelow(2**31)  # in the trace: the run can be repeated
        origin = "dropout_mask" if prepared.dropout_mask is not None else f"seed {seed}"
        batch, seq_q, seq_k = prepared.x.shape[0], prepared.x.shape[1], prepared.keys_input.shape[1]
        rows.append(st.Dropout(
            "dropped_weights", f"dropped_weights = weights · keep / (1 − {config.dropout:g}), "
            f"keep ~ Bernoulli({1 - config.dropout:g}) ({origin})",
            probability=config.dropout, seed=seed, shape=(batch, H, seq_q, seq_k)))
        weights = "dropped_weights"
    rows.append(st.WeightedSum("head_context", f"head_context = {weights} values (per head)"))
    tail: list[st.Stage] = [st.Merge("context", "context = concat_h(head_context)" if H > 1
                                     else f"context = {weights} values", overflow="context")]
    if params["W_o"] is not None:
        tail.append(st.Output("output", "output = context W_o"
                              + (" + b_o" if params["b_o"] is not None else ""), overflow="output"))
    if G != H:  # last of the inputs: after every stage that changes the G KV heads
        inputs = (*inputs, *grouped(G, H))
    made = Plan(prepared, config, inputs, tuple(rows), tuple(tail), mask, seed,
                abs(scale) / config.temperature)
    unlisted = [s.step for s in made.stages if s.step is not None and s.step not in STEP_NAMES]
    if unlisted:
        raise ValueError(f"steps {unlisted} are not in attncli.trace.STEP_NAMES: add them there, "
                         "in pipeline order")
    return made


def _projection_formula(name: str, source: str, which: str, params, heads: int) -> str:
    if params[f"W_{which}"] is None:
        return f"{name} = {source}" + (f", split into {heads} heads" if heads > 1 else "")
    return (f"{name} = {source} W_{which}"
            + (f" + b_{which}" if params[f"b_{which}"] is not None else ""))


def _qk_norm(config: AttentionConfig) -> tuple[st.Stage, st.Stage]:
    """The RMSNorm stages of --qk-norm: normed_queries (writes queries), normed_keys (keys)."""
    whole = config.qk_norm is QKNorm.whole
    over = "the token's whole projection" if whole else "each head's d_head"
    gain = "w" if config.qk_norm_offset == 0.0 else f"({config.qk_norm_offset:g} + w)"
    return tuple(
        st.QKNorm(f"normed_{name}", f"normed_{name} = {name} / √(mean({name}²) + "
                  f"{config.qk_norm_eps:g}) · {gain}, w = {weight}, mean over {over}",
                  writes=name, weight=weight, whole=whole, eps=config.qk_norm_eps,
                  offset=config.qk_norm_offset)
        for name, weight in (("queries", "q_norm"), ("keys", "k_norm")))


def rotations(rope) -> tuple[st.Stage, st.Stage]:
    """The RoPE stages: rotated_queries (writes queries), rotated_keys (writes keys), each
    turning the pairs of a head's first R dims by position × f_i
    (:class:`attncli.attention.rope.Rope`)."""
    R, f = rope.rotary_dim, rope.freqs
    pairs = "(2i, 2i + 1)" if rope.interleaved else f"(i, i + {R // 2})"
    scaled = "" if rope.scaling is None else f", {f.rope_type} scaling"
    gain = "" if f.attention_factor == 1.0 else f", cos and sin × {f.attention_factor:.6g}"
    return tuple(
        st.Rotate(f"rotated_{name}", f"rotated_{name} = {name} with dims {pairs}, i < {R // 2}, "
                  f"turned by {where} × θ^(−2i/{R}), θ = {rope.theta:g}{scaled}{gain}",
                  writes=name, rope=rope, keys=name == "keys", interleaved=rope.interleaved)
        for name, where in (("queries", "position"), ("keys", "key position")))


def grouped(kv_heads: int, heads: int) -> tuple[st.Stage, st.Stage]:
    """The stages that repeat the keys and the values of ``kv_heads`` KV heads for ``heads``
    query heads: query head h uses KV head ⌊h / (H/G)⌋ (transformers' repeat_kv)."""
    per = heads // kv_heads
    return tuple(st.RepeatKV(None, f"{name}: query head h uses KV head ⌊h / {per}⌋ "
                             f"({kv_heads} KV heads, {heads} query heads)", writes=name,
                             heads=heads)
                 for name in ("keys", "values"))


def _bias(prepared: Prepared, config: AttentionConfig, last: str) -> list[st.Stage]:
    """The bias added to the scores (ALiBi's −m_h·|i + offset − j|, the key ``bias``, or
    both) and its addition: steps ``bias`` and ``biased_scores``."""
    seq_q, seq_k = prepared.x.shape[1], prepared.keys_input.shape[1]
    offset = seq_k - seq_q if config.causal_align is CausalAlign.bottom_right else 0
    terms = []
    if prepared.alibi_slopes is not None:
        i = "i" if offset == 0 else f"i {'+' if offset > 0 else '−'} {abs(offset)}"
        terms.append(f"−m_h·|{i} − j|")
    if prepared.bias is not None:
        terms.append("the given bias")
    return [st.Bias("bias", "bias = " + " + ".join(terms), slopes=prepared.alibi_slopes,
                    offset=offset, given=prepared.bias is not None),
            st.AddBias("biased_scores", f"biased_scores = {last} + bias")]


def _score(prepared: Prepared, made: str | None = None) -> st.Stage:
    """The score stage; its formula names the queries and keys it reads (``made``: "normed"
    or "rotated" when a QK-norm or RoPE stage made them)."""
    q, k = ("queries", "keys") if made is None else (f"{made}_queries", f"{made}_keys")
    if prepared.score is Score.general:
        return st.GeneralScore("scores", f"scores = {q} W_a {k}ᵀ", overflow="scores")
    if prepared.score is Score.additive:
        bias = " + b_a" if "b_a" in prepared.params else ""
        return st.AdditiveScore("scores", f"scores = tanh({q} W_a + {k} U_a{bias}) v_a",
                                overflow="scores")
    return st.DotScore("scores", f"scores = {q} {k}ᵀ", overflow="scores")


def _normalize(config: AttentionConfig, last: str) -> st.Stage:
    t = config.temperature
    over = last if t == 1.0 else f"{last} / {t:g}"
    if config.normalize is Normalize.hard:
        return st.Hard("weights", f"weights = one_hot(argmax_j {last})", overflow="weights")
    if config.normalize is Normalize.top_k:  # top_k is set: AttentionConfig.validate
        return st.TopK("weights", f"weights = softmax(top-{config.top_k} of {over})",
                       overflow="weights", k=config.top_k, temperature=t)
    return st.Softmax("weights", f"weights = softmax({over})", overflow="weights", temperature=t)


def _sinks(config: AttentionConfig, last: str) -> list[st.Stage]:
    """The sink's share of each row (a side stage), then the softmax with the sink column
    dropped: sink_h is the head's logit, unscaled, divided by a temperature as the scores."""
    t = config.temperature
    over, sink = (last, "sink_h") if t == 1.0 else (f"{last} / {t:g}", f"sink_h / {t:g}")
    return [st.SinkWeights("sink_weights", f"sink_weights = exp({sink}) / (Σ_j exp({over}) + "
                           f"exp({sink}))", temperature=t),
            st.SinkSoftmax("weights", f"weights = softmax([{over}, {sink}]), sink column "
                           "dropped", overflow="weights", temperature=t)]


def run_mask(prepared: Prepared, config: AttentionConfig) -> Mask | None:
    """The one mask of the run (causal, window, mask, key_padding_mask), or None when nothing
    is masked. Bottom-right alignment with a key_padding_mask puts each batch item's diagonal
    at its own last real key (flash-attn's)."""
    if not (config.causal or config.window is not None or prepared.mask is not None
            or prepared.key_padding_mask is not None):
        return None
    bottom_right = config.causal_align is CausalAlign.bottom_right
    per_item = (bottom_right and prepared.key_lengths is not None
                and (config.causal or config.window is not None))
    return Mask(seq_q=prepared.x.shape[1], seq_k=prepared.keys_input.shape[1], causal=config.causal,
                window=config.window, bottom_right=bottom_right,
                key_lengths=tuple(int(n) for n in prepared.key_lengths) if per_item else None,
                mask=prepared.mask, padding=prepared.key_padding_mask)
