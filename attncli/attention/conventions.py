"""The conventions of a run, in words, for every output format: where PyTorch, the papers and
the tutorials differ (weight layout, mask polarity, causal alignment …), the trace says which
one attncli used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.config import CausalAlign, Normalize, Score

if TYPE_CHECKING:
    from attncli.attention.masks import Mask
    from attncli.trace import Run


def conventions(run: Run, mask: Mask | None) -> dict[str, str]:
    """The conventions a run used, in words, since the frameworks disagree on them: one
    entry per convention that applies (the sources of separate keys and values, weight layout,
    heads, scale, softmax or its alternatives, mask polarity, window, causal alignment —
    bottom-right to each batch item's unpadded keys with a right-padded key_padding_mask —,
    masked scores, dropout). Read from the run's facts (:class:`attncli.trace.Run`) and its
    one mask."""
    projected = bool(run.projected) or run.d_out is not None
    masked = mask is not None
    conventions: dict[str, str] = {}
    if run.value_from != run.key_from:  # key_memory and value_memory
        conventions["sources"] = (f"queries from x, keys from {run.key_from}, values from "
                                  f"{run.value_from} (nn.MultiheadAttention's query, key "
                                  "and value inputs)")
    if projected:
        conventions["weight_layout"] = (
            "in_out: Q = x @ W_q, W_q of shape (d_in, d_k)" if run.weight_layout.value == "in_out"
            else "out_in: Q = x @ W_q.T, W_q of shape (d_k, d_in), as torch.nn.Linear stores it")
        if run.per_head_weights:
            conventions["weight_layout"] += "; a 3-D W is (H, d_in, d_head), one matrix per head"
    if run.heads > 1:
        conventions["heads"] = (f"{run.heads} heads of width {run.d_k}; head h owns "
                                "columns h·d_head … (h+1)·d_head − 1 of a 2-D projection "
                                "(torch.nn.MultiheadAttention's split); context concatenates "
                                "the heads in order")
    if run.kv_heads is not None and run.kv_heads != run.heads:
        G, per = run.kv_heads, run.heads // run.kv_heads
        groups = [f"{g * per}–{g * per + per - 1} KV head {g}" for g in range(min(G, 3))]
        conventions["kv_heads"] = (
            f"{'multi' if G == 1 else 'grouped'}-query attention: {G} key/value "
            f"head{'s' * (G > 1)} for {run.heads} query heads; query head h uses KV head "
            f"⌊h / {per}⌋ (transformers' repeat_kv, torch SDPA's enable_gqa): query heads "
            f"{', '.join(groups)}{', …' if G > 3 else ''}; keys and values are shown with "
            f"their {G} head{'s' * (G > 1)}")
    if run.qk_norm is not None:
        over = ("each head's d_head numbers (Qwen3; q_norm, k_norm of shape (d_head,))"
                if run.qk_norm.value == "per-head" else
                "the whole projection of a token, all its heads (OLMo2; q_norm (H·d_head,), "
                "k_norm (G·d_head,))")
        gain = "w" if run.qk_norm_offset == 0.0 else f"({run.qk_norm_offset:g} + w)"
        conventions["qk_norm"] = (f"RMSNorm of the queries and keys after the projection, "
                                  f"before RoPE: x / √(mean(x²) + {run.qk_norm_eps:g}) · {gain}, "
                                  f"the mean over {over}")
    if run.rope is not None:
        conventions["rope"] = _rope(run)
    conventions["scale"] = f"scores multiplied by {run.scale:.6g}" + (
        f" = 1/√d_k, d_k = {run.d_k}" if not run.scale_given and run.score is Score.scaled_dot
        else "")
    if run.softcap is not None:
        conventions["softcap"] = (f"capped_scores = {run.softcap:g} · tanh(scores / "
                                  f"{run.softcap:g}) after the scale, before any bias and the "
                                  f"mask: each score within ±{run.softcap:g} (Gemma 2's "
                                  "attn_logit_softcapping)")
    if run.alibi_slopes is not None:
        slopes = ", ".join(f"{m:.6g}" for m in run.alibi_slopes[:4])
        offset = (" + seq_k − seq_q" if run.causal_align is CausalAlign.bottom_right else "")
        conventions["alibi"] = (
            f"ALiBi: head h's scores get −m_h·|i{offset} − j| (Press et al. 2022), m = "
            f"{slopes}{', …' if len(run.alibi_slopes) > 4 else ''}; on a causal row this is "
            "Bloom's and MPT's m_h·j less a constant of the row, which the softmax ignores")
    if run.bias_given:
        conventions["bias"] = ("bias: a float added to the scores before the mask, as torch "
                               "SDPA's float attn_mask; null (−∞) = no attention")
    if run.normalize is Normalize.hard:
        conventions["hard_ties"] = "one-hot on the arg-max; among equal maxima the first key wins"
    elif run.normalize is Normalize.top_k:
        conventions["top_k"] = (f"softmax over each row's {run.top_k} largest scores, zero "
                                "elsewhere; ties at the boundary go to the lower key index")
    elif run.sinks:
        conventions["softmax"] = (
            "over the key axis and one more column, the head's sink logit (the problem's "
            "sinks, used as given: not scaled, capped, biased or masked; divided by a "
            "temperature as the scores are), which is then dropped: each row of weights sums "
            "to 1 − sink_weights < 1 (gpt-oss; row maximum, the sink's included, subtracted "
            "first); a row with no key gives the sink all of its mass")
    else:
        conventions["softmax"] = ("over the key axis, each row of weights sums to 1 (row maximum "
                                  "subtracted first)")
    if mask is not None and mask.given:
        conventions["mask_polarity"] = (
            "mask: True = may attend (torch SDPA's attn_mask); key_padding_mask: True = padding, "
            "ignored (torch.nn.MultiheadAttention's)")
    bottom_right = run.causal_align is CausalAlign.bottom_right
    padded = run.key_lengths is not None
    if run.window is not None:
        shift = (" (i shifted by L − seq_q, bottom-right, L = each batch item's keys that are "
                 "not padding, padding at the end)" if padded else
                 " (i shifted by seq_k − seq_q, bottom-right)" if bottom_right else "")
        conventions["window"] = (f"local attention: query i sees keys j with |i − j| ≤ "
                                 f"{run.window}{shift}")
        if run.causal:
            conventions["sliding_window"] = (
                f"Hugging Face's sliding_window = S (Mistral, Gemma 2 and 3, gpt-oss) keeps S "
                f"keys, the query's own included: this is S = {run.window + 1} (--causal "
                "--window S − 1); transformers #29623 and vllm #3385 were once off by one here")
    if run.causal:
        conventions["causal_alignment"] = (
            "top-left: query i sees keys j ≤ i (torch SDPA is_causal)" if not bottom_right
            else "bottom-right: query i sees keys j ≤ i + L − seq_q, L = the batch item's keys "
                 "that are not padding (flash-attn aligns to each sequence's own length; "
                 "padding comes after the real keys, right padding, as flash-attn assumes: "
                 "left padding is refused; there is no query padding: every query counts)"
            if padded
            else "bottom-right: query i sees keys j ≤ i + seq_k − seq_q (flash-attn)")
    if masked:
        conventions["masked_scores"] = "−∞ before the softmax; written as null in JSON"
        conventions["fully_masked_rows"] = ("zero weights and zero context "
                                            "(torch SDPA's safe softmax)")
    if run.dropout > 0.0:
        conventions["dropout"] = (
            f"inverted dropout on the weights, p = {run.dropout:g}: kept weights × 1/(1 − p) "
            "(torch.nn.Dropout); the torch backend draws torch's own mask after "
            "torch.manual_seed(seed), the numpy backend numpy.random.default_rng(seed)'s")
    return conventions


def _rope(run: Run) -> str:
    """RoPE's conventions: layout, θ, rotary dims, positions, scaling."""
    rope = run.rope
    R = rope.rotary_dim
    dims = (f"the first {R} of the {run.d_k} dims of each head (partial rotary, GPT-NeoX, Phi)"
            if R < run.d_k else f"all {R} dims of each head")
    layout = ("interleaved: pair i is dims (2i, 2i + 1) (GPT-J's rotate_every_two, Meta's "
              "original Llama)" if rope.interleaved else
              f"half: pair i is dims (i, i + {R // 2}) (Llama's and GPT-NeoX's rotate_half)")

    def where(key: str, axis: str, n: int, first: int) -> str:
        if key in rope.given:
            return f"{axis} at the problem's {key}"
        return f"{axis} at positions {first} … {first + n - 1}"

    seq_q, seq_k = rope.positions.shape[-1], rope.key_positions.shape[-1]
    shifted = ("positions" not in rope.given
               and run.causal_align is CausalAlign.bottom_right and seq_k != seq_q)
    queries = where("positions", "queries", seq_q, int(rope.positions[0, 0]))
    if shifted:
        queries += " (bottom-right: the queries sit at the end of the keys)"
    f = rope.freqs
    scaling = ("no rope_scaling" if rope.scaling is None else
               f"rope_scaling {f.rope_type}" + (f", factor {rope.scaling['factor']:g}"
                                                 if "factor" in rope.scaling else "")
               + ("" if f.attention_factor == 1.0 else
                  f", cos and sin × {f.attention_factor:.6g} (attention factor)"))
    return (f"RoPE on queries and keys after the projection{' and QK-norm' * bool(run.qk_norm)}: "
            f"pair i of {dims} turned by position × θ^(−2i/{R}), θ = {rope.theta:g}, i = 0 … "
            f"{R // 2 - 1}; layout {layout}; {queries}, "
            f"{where('key_positions', 'keys', seq_k, int(rope.key_positions[0, 0]))}; {scaling}")
