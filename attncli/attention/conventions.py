"""The conventions of a run, in words, for every output format: where PyTorch, the papers and
the tutorials differ (weight layout, mask polarity, causal alignment …), the trace says which
one attncli used."""

from __future__ import annotations

from attncli.config import AttentionConfig, CausalAlign, Normalize, Score
from attncli.shapes import Prepared


def conventions(config: AttentionConfig, prepared: Prepared, scale: float,
                 score_fn: Score) -> dict[str, str]:
    """The conventions a run used, in words, since the frameworks disagree on them: one
    entry per convention that applies (the sources of separate keys and values, weight layout,
    heads, scale, softmax or its alternatives, mask polarity, window, causal alignment —
    bottom-right to each batch item's unpadded keys with a right-padded key_padding_mask —,
    masked scores, dropout)."""
    projected = any(prepared.params[k] is not None for k in ("W_q", "W_k", "W_v", "W_o"))
    masked = config.causal or config.window is not None or prepared.mask is not None
    conventions: dict[str, str] = {}
    if prepared.value_from != prepared.key_from:  # key_memory and value_memory
        conventions["sources"] = (f"queries from x, keys from {prepared.key_from}, values from "
                                  f"{prepared.value_from} (nn.MultiheadAttention's query, key "
                                  "and value inputs)")
    if projected:
        conventions["weight_layout"] = (
            "in_out: Q = x @ W_q, W_q of shape (d_in, d_k)" if prepared.layout.value == "in_out"
            else "out_in: Q = x @ W_q.T, W_q of shape (d_k, d_in), as torch.nn.Linear stores it")
        if prepared.per_head_weights:
            conventions["weight_layout"] += "; a 3-D W is (H, d_in, d_head), one matrix per head"
    if prepared.heads > 1:
        conventions["heads"] = (f"{prepared.heads} heads of width {prepared.d_k}; head h owns "
                                "columns h·d_head … (h+1)·d_head − 1 of a 2-D projection "
                                "(torch.nn.MultiheadAttention's split); context concatenates "
                                "the heads in order")
    conventions["scale"] = f"scores multiplied by {scale:.6g}" + (
        f" = 1/√d_k, d_k = {prepared.d_k}" if config.scale is None and score_fn is Score.scaled_dot
        else "")
    if config.normalize is Normalize.hard:
        conventions["hard_ties"] = "one-hot on the arg-max; among equal maxima the first key wins"
    elif config.normalize is Normalize.top_k:
        conventions["top_k"] = (f"softmax over each row's {config.top_k} largest scores, zero "
                                "elsewhere; ties at the boundary go to the lower key index")
    else:
        conventions["softmax"] = ("over the key axis, each row of weights sums to 1 (row maximum "
                                  "subtracted first)")
    if prepared.mask is not None:
        conventions["mask_polarity"] = (
            "mask: True = may attend (torch SDPA's attn_mask); key_padding_mask: True = padding, "
            "ignored (torch.nn.MultiheadAttention's)")
    bottom_right = config.causal_align is CausalAlign.bottom_right
    padded = bottom_right and prepared.key_lengths is not None
    if config.window is not None:
        shift = (" (i shifted by L − seq_q, bottom-right, L = each batch item's keys that are "
                 "not padding, padding at the end)" if padded else
                 " (i shifted by seq_k − seq_q, bottom-right)" if bottom_right else "")
        conventions["window"] = (f"local attention: query i sees keys j with |i − j| ≤ "
                                 f"{config.window}{shift}")
    if config.causal:
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
    if config.dropout > 0.0:
        conventions["dropout"] = (
            f"inverted dropout on the weights, p = {config.dropout:g}: kept weights × 1/(1 − p) "
            "(torch.nn.Dropout); the torch backend draws torch's own mask after "
            "torch.manual_seed(seed), the numpy backend numpy.random.default_rng(seed)'s")
    return conventions
