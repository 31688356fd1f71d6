"""Every shape of a :class:`Problem` checked against an :class:`AttentionConfig`, and the arrays
put in the one canonical form the pipeline reads.

This is the second half of input validation (the first, values and ranks, is in
:mod:`attncli.problem`): shapes depend on the options (heads, layout, score function), so they
are checked once the options are known. Every error names the file, the key, the shape found
and the shape expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from attncli.config import AttentionConfig, CausalAlign, Layout, Normalize, QKNorm, Score
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem, fmt_shape

if TYPE_CHECKING:
    from attncli.attention.rope import Rope


@dataclass
class Prepared:
    """The problem's arrays in the one canonical form the pipeline reads (numpy, in_out layout).

    Shapes (B = batch or 1, H = heads):
        x (B, seq_q, d_in); keys_input (B, seq_k, d_src): what the keys are projected from,
        memory (or key_memory), or x for self-attention; values_input (B, seq_k, d_vsrc): what
        the values are projected from, the same array as keys_input unless value_memory is
        given
        W_q (H, d_in, d_k), W_k (G, d_src, d_k), W_v (G, d_src, d_v); b_q (H, 1, d_k), b_k,
        b_v (G, 1, d_*); or None (G = kv_heads: H without grouped-query attention)
        W_o (H·d_v, d_out), b_o (d_out,); mask (B or 1, 1, seq_q, seq_k), True = may attend;
        key_padding_mask (B or 1, 1, 1, seq_k), True = padding
        dropout_mask (B, H, seq_q, seq_k) True = kept
    """

    x: np.ndarray
    keys_input: np.ndarray
    values_input: np.ndarray
    batched: bool
    heads: int
    d_k: int
    d_v: int
    layout: Layout
    per_head_weights: bool  # some W came as (H, d_in, d_head), one matrix per head
    warnings: list[str]  # the problem's warnings and this check's
    score: Score  # the score function, resolved from the config and the problem
    scale: float  # the factor the scores are multiplied by
    query_tokens: list[str]
    key_tokens: list[str]
    params: dict[str, np.ndarray | None]
    mask: np.ndarray | None
    key_padding_mask: np.ndarray | None
    dropout_mask: np.ndarray | None
    key_from: str = "x"  # the problem key the keys come from: x, memory or key_memory
    value_from: str = "x"  # … the values: x, memory or value_memory
    #: (B,) the keys each batch item has that are not padding (key_padding_mask's False
    #: entries), or None without a key_padding_mask: where bottom-right alignment puts the
    #: diagonal (flash-attn's construct_local_mask, sk = key_padding_mask.sum(-1))
    key_lengths: np.ndarray | None = None
    #: G, the key/value heads (grouped-query attention): keys and values (B, G, seq_k, d_head),
    #: query head h uses KV head ⌊h / (H/G)⌋; G = H without grouping (None: H)
    kv_heads: int | None = None
    #: the run's RoPE (positions, frequencies, layout: :class:`attncli.attention.rope.Rope`),
    #: or None without --rope
    rope: Rope | None = None
    #: the problem's float bias of the scores, (B or 1, H or 1, seq_q, seq_k), −∞ allowed;
    #: None without the key ``bias``
    bias: np.ndarray | None = None
    #: ALiBi's slopes m_h (H,) (the key alibi_slopes, or Press et al.'s); None without --alibi
    alibi_slopes: np.ndarray | None = None


def prepare(problem: Problem, config: AttentionConfig) -> Prepared:
    """Check every shape of ``problem`` against ``config``; return the canonical arrays.

    Raises:
        InputError: a missing ``x``, or any shape that does not fit, naming the key, the shape
            found and the shape expected (and the other weight layout when only it would fit,
            or a transposed input); some of W_q/W_k/W_v without the others (unless
            ``config.project`` is off); key_memory without value_memory, or with memory;
            a key_padding_mask that is not right padding with bottom-right causal alignment.
        ConfigError: heads that do not divide a width, an option the problem cannot satisfy.
    """
    if "x" not in problem:
        sources = sorted(set(problem.origin.values()))
        raise InputError(f"no embeddings: {' and '.join(sources) or 'the input'} has no 'x'; "
                         "add it or give --x FILE")
    layout = config.weight_layout or problem.weight_layout or Layout.in_out
    x = problem["x"]
    batched = x.ndim == 3
    x3 = x if batched else x[None]
    batch, seq_q, d_in = x3.shape
    key_from, value_from = input_sources(problem)
    cross = key_from != "x"
    keys3 = _input(problem, key_from, batch, batched)
    values3 = keys3 if value_from == key_from else _input(problem, value_from, batch, batched)
    seq_k, d_src = keys3.shape[1:]
    if config.project:  # a transposed input first: it is why the row counts below differ
        _all_projections(problem)
        for name, from_key in (("q", "x"), ("k", key_from), ("v", value_from)):
            if f"W_{name}" in problem:
                _transposed_input(problem, from_key, f"W_{name}", layout)
    if values3.shape[1] != seq_k:
        raise InputError(f"{problem.where(value_from)}: {values3.shape[1]} rows, but "
                         f"{key_from} has {seq_k}: one value for each key")
    d_vsrc = values3.shape[2]
    heads = config.heads or (_heads_from_weights(problem, config.kv_heads)
                             if config.project else None) or 1
    kv_heads = _kv_heads(problem, config, heads)
    warnings = list(problem.warnings)  # this run's own list: the problem is not changed
    unused: list[str] = []

    params: dict[str, np.ndarray | None] = {}
    widths: dict[str, int] = {}
    for name, d_from, from_key in (("q", d_in, "x"), ("k", d_src, key_from),
                                   ("v", d_vsrc, value_from)):
        key = f"W_{name}"
        n_heads, flag = (heads, "--heads") if name == "q" else (kv_heads, _kv_flag(heads,
                                                                                    kv_heads))
        if config.project and key in problem:
            W = _project_weight(problem, key, d_from, from_key, n_heads, layout, flag)
        else:
            W = None
        params[key] = W
        width = (W.shape[2] if W is not None
                 else _split_width(problem, from_key, d_from, n_heads, flag))
        widths[name] = width
        params[f"b_{name}"] = (_bias(problem, f"b_{name}", n_heads, width) if W is not None
                               else None)
        if W is None and f"b_{name}" in problem and key not in problem:
            warnings.append(f"{problem.where(f'b_{name}')} not used: there is no {key}")
        if W is None and key in problem:
            unused += [k for k in (key, f"b_{name}") if k in problem]

    score = config.score or (Score.scaled_dot if params["W_q"] is not None
                             or params["W_k"] is not None else Score.dot)
    if config.scale is not None:
        scale = config.scale
    else:
        scale = 1.0 / math.sqrt(widths["q"]) if score is Score.scaled_dot else 1.0
    if score in (Score.dot, Score.scaled_dot) and widths["q"] != widths["k"]:
        def origin(name: str, source: str) -> str:
            key = f"W_{name}"
            return (problem.where(key) if params[key] is not None
                    else f"{problem.where(source)} itself, no {key}")
        raise InputError(
            f"queries and keys differ in width per head, {widths['q']} "
            f"({origin('q', 'x')}) vs {widths['k']} ({origin('k', key_from)}): "
            f"a {score.value} score needs them equal{_grouped_hint(widths, heads, kv_heads)}")
    params.update(_score_params(problem, score, widths["q"], widths["k"]))
    for key in ("W_a", "U_a", "v_a", "b_a"):
        if key in problem and key not in params:
            warnings.append(f"{problem.where(key)} not used by the {score.value} score")
    params.update(_qk_norm_params(problem, config, params, heads, widths))
    for key in ("q_norm", "k_norm"):
        if key in problem and config.qk_norm is None:
            warnings.append(f"{problem.where(key)} not used: there is no --qk-norm")
    params.update(_sinks(problem, config, heads))
    if config.project:
        params["W_o"], params["b_o"] = _output_projection(problem, heads * widths["v"], layout)
    else:
        params["W_o"] = params["b_o"] = None
        unused += [k for k in ("W_o", "b_o") if k in problem]
    if unused:
        sources = " and ".join(sorted({problem.origin.get(k, "<input>") for k in unused}))
        warnings.append(f"{sources}: {', '.join(unused)} not used (--no-project or the simple "
                        "variant: Q = K = V = x)")
    if not cross and problem.memory_tokens is not None:
        warnings.append(f"{problem.where('memory_tokens')} not used: there is no memory")

    mask, key_padding_mask = _masks(problem, batch, seq_q, seq_k, batched)
    rope = None
    if config.rope:
        from attncli.attention.rope import resolve

        rope = resolve(problem, config, batch, seq_q, seq_k, widths["q"])
    else:
        for key in ("positions", "key_positions", "rope_scaling"):
            if key in problem.origin:
                warnings.append(f"{problem.where(key)} not used: there is no --rope")
    if config.causal_align is CausalAlign.bottom_right and (config.causal
                                                           or config.window is not None):
        _right_padded(problem)
    if config.normalize is Normalize.top_k and config.top_k and config.top_k > seq_k:
        raise ConfigError(f"--top-k {config.top_k} is more than the {seq_k} keys")
    dropout_mask = _dropout_mask(problem, batch, heads, seq_q, seq_k, batched)
    if dropout_mask is not None and config.dropout == 0.0:
        raise ConfigError(
            f"{problem.where('dropout_mask')} is given but no --dropout P: the kept weights are "
            "scaled by 1/(1 − P), so P is needed"
        )
    score_bias = _score_bias(problem, batch, heads, seq_q, seq_k, batched)
    slopes = _alibi_slopes(problem, config, heads)
    query_tokens = _tokens(problem, "tokens", seq_q, d_in)
    key_tokens = _tokens(problem, "memory_tokens", seq_k, d_src, key_from) if cross \
        else query_tokens
    return Prepared(
        x=x3, keys_input=keys3, values_input=values3,
        key_from=key_from, value_from=value_from,
        key_lengths=_key_lengths(problem, batch),
        batched=batched, heads=heads, kv_heads=kv_heads, d_k=widths["q"],
        d_v=widths["v"], layout=layout, score=score,
        per_head_weights=any(problem[k].ndim == 3 for k in ("W_q", "W_k", "W_v")
                             if params[k] is not None), scale=scale, query_tokens=query_tokens,
        key_tokens=key_tokens, params=params, mask=mask, key_padding_mask=key_padding_mask,
        dropout_mask=dropout_mask, rope=rope, bias=score_bias, alibi_slopes=slopes,
        warnings=warnings,
    )


def input_sources(problem: Problem) -> tuple[str, str]:
    """The problem keys the keys and the values come from: ("x", "x") for self-attention,
    ("memory", "memory") for cross-attention, ("key_memory", "value_memory") for separate key
    and value sequences (nn.MultiheadAttention's key and value inputs).

    Raises: InputError for key_memory without value_memory (or the other way round), or
    either of them together with memory.
    """
    separate = [k for k in ("key_memory", "value_memory") if k in problem]
    if not separate:
        return ("memory", "memory") if "memory" in problem else ("x", "x")
    if "memory" in problem:
        raise InputError(f"{problem.where(separate[0])} and {problem.where('memory')}: memory "
                         "is the source of both keys and values; give it, or key_memory and "
                         "value_memory, not both")
    if len(separate) == 1:
        other = "value_memory" if separate == ["key_memory"] else "key_memory"
        raise InputError(f"{problem.where(separate[0])} is given without {other}: separate "
                         f"key and value sequences need both (or memory, the source of both)")
    return "key_memory", "value_memory"


def _input(problem: Problem, key: str, batch: int, batched: bool) -> np.ndarray:
    """The keys' or values' input ``key`` as (B, seq_k, d): an unbatched one is shared by
    every batch item. Raises: InputError for a batch that is not x's."""
    source = problem[key]
    if key != "x" and source.ndim == 3 and (not batched or source.shape[0] != batch):
        raise InputError(
            f"{problem.where(key)}: batch of {source.shape[0]} does not match x's "
            f"{batch if batched else 'unbatched'} shape {fmt_shape(problem['x'].shape)}"
        )
    return source if source.ndim == 3 else np.broadcast_to(source, (batch, *source.shape))


def _all_projections(problem: Problem) -> None:
    """W_q, W_k and W_v come together: a run with W_q alone would take K = V = x unnoticed.

    Raises: InputError naming the projections given and those missing, and the fix.
    """
    given = [k for k in ("W_q", "W_k", "W_v") if k in problem]
    missing = [k for k in ("W_q", "W_k", "W_v") if k not in problem]
    if given and missing:
        sources = " and ".join(sorted({problem.origin.get(k, "<input>") for k in given}))
        raise InputError(f"{sources}: {', '.join(given)} given but not {' or '.join(missing)}: "
                         f"give {', '.join(missing)} too (queries, keys and values each need "
                         "their projection), or --no-project to use none (Q = K = V = x)")


def _transposed_input(problem: Problem, key: str, weight: str, layout: Layout) -> None:
    """An input (x, memory, …) given one column per token instead of one row: W's input
    width is the input's number of rows, and fits neither layout.

    Raises: InputError saying the input looks transposed.
    """
    W, data = problem[weight], problem[key]
    rows, width = data.shape[-2:]
    d_in = {Layout.in_out: W.shape[-2], Layout.out_in: W.shape[-1]}
    if width not in d_in.values() and d_in[layout] == rows:
        form = "(batch, seq, d)" if data.ndim == 3 else "(seq, d)"
        raise InputError(f"{problem.where(key)}: shape {fmt_shape(data.shape)} looks "
                         f"transposed: {weight} {fmt_shape(W.shape)} takes rows of width "
                         f"{rows}, and {key} has {rows} rows of width {width}; give {key} one "
                         f"row per token, {form}")


def _key_lengths(problem: Problem, batch: int) -> np.ndarray | None:
    """(B,) the keys of each batch item that are not padding; None without key_padding_mask."""
    if "key_padding_mask" not in problem:
        return None
    real = (~problem["key_padding_mask"]).sum(axis=-1).reshape(-1)  # True = padding
    return np.broadcast_to(real, (batch,)).astype(np.int64)


def _right_padded(problem: Problem) -> None:
    """Bottom-right alignment to each item's unpadded keys assumes right padding (the real keys
    first, as flash-attn's padded batches): left padding would put the diagonal on padding and
    leave rows with no key. Raises: InputError naming the item and the keys."""
    from attncli.attention.masks import left_padding

    if "key_padding_mask" not in problem:
        return
    found = left_padding(problem["key_padding_mask"])
    if found is None:
        return
    item, padded, real = found
    where = f"in batch item {item}, " if problem["key_padding_mask"].ndim == 2 else ""
    raise InputError(f"{problem.where('key_padding_mask')}: {where}key {padded} is padding but "
                     f"key {real} after it is not; --causal-align bottom-right assumes right "
                     "padding, the real keys first, as flash-attn does (its left padding is a "
                     "separate offset, key_leftpad): put the padding at the end, or use "
                     "--causal-align top-left")


def _heads_from_weights(problem: Problem, kv_heads: int | None) -> int | None:
    """H from a 3-D W_q; from a 3-D W_k or W_v only when W_q is 2-D and --kv-heads is not
    given (then G = H: they have as many heads)."""
    for key in ("W_q",) if kv_heads is not None else ("W_q", "W_k", "W_v"):
        if key in problem and problem[key].ndim == 3:
            return int(problem[key].shape[0])
    return None


def _kv_heads(problem: Problem, config: AttentionConfig, heads: int) -> int:
    """G, the key/value heads: --kv-heads, else a 3-D W_k's (or W_v's) first axis when H is a
    multiple of it, else H (and W_k's shape is then checked against H).

    Raises: ConfigError when H is not a multiple of --kv-heads G (each KV head serves H/G
    query heads, transformers' repeat_kv).
    """
    kv_heads = config.kv_heads
    if kv_heads is None:
        found = next((int(problem[k].shape[0]) for k in ("W_k", "W_v")
                      if config.project and k in problem and problem[k].ndim == 3), heads)
        # a count that is no grouping: G = H, and the weights' shapes are checked against it
        return found if heads % found == 0 else heads
    if heads % kv_heads:
        raise ConfigError(f"{heads} query heads (--heads) are not a multiple of {kv_heads} "
                          "key/value heads (--kv-heads): query head h uses KV head "
                          "⌊h / (H/G)⌋, so H must be a multiple of G")
    return kv_heads


def _grouped_hint(widths: dict[str, int], heads: int, kv_heads: int) -> str:
    """When W_k is as wide as G key/value heads of the queries' width would be: the hint to
    say G (grouped-query attention)."""
    if kv_heads != heads or widths["k"] >= widths["q"] or (widths["k"] * heads) % widths["q"]:
        return ""
    groups = widths["k"] * heads // widths["q"]
    if heads % groups:
        return ""
    return (f"; if the keys and values have {groups} heads (grouped-query attention), give "
            f"--kv-heads {groups}")


def _kv_flag(heads: int, kv_heads: int) -> str:
    """The option that sets the keys' and values' heads, for messages."""
    return "--heads" if kv_heads == heads else "--kv-heads"


def _split_width(problem: Problem, from_key: str, width: int, heads: int,
                 flag: str = "--heads") -> int:
    if width % heads:
        raise ConfigError(
            f"{problem.where(from_key)}: width {width} is not divisible by {flag} {heads}"
        )
    return width // heads


def _project_weight(problem: Problem, key: str, d_from: int, from_key: str, heads: int,
                    layout: Layout, flag: str = "--heads") -> np.ndarray:
    """W as (H, d_from, d_head), in_out, whatever form it came in (H: the key/value heads G
    for W_k and W_v, ``flag`` the option that sets them)."""
    W = problem[key]
    there = problem.where(key)
    other = Layout.out_in if layout is Layout.in_out else Layout.in_out
    if W.ndim == 3:
        expected = (heads, d_from, "d_head") if layout is Layout.in_out else (heads, "d_head",
                                                                              d_from)
        W_in_out = W if layout is Layout.in_out else np.swapaxes(W, 1, 2)
        if W.shape[0] != heads or W_in_out.shape[1] != d_from:
            hint = f" ({problem.where(from_key)} has width {d_from}"
            if W.shape[0] == heads and np.swapaxes(W_in_out, 1, 2).shape[1] == d_from:
                hint += (f"; {key} fits the {other.value} layout: pass --weight-layout "
                         f"{other.value}")
            raise InputError(f"{there}: expected {fmt_shape(expected)}, got "
                             f"{fmt_shape(W.shape)}{hint})")
        return W_in_out
    W_in_out = W if layout is Layout.in_out else W.T
    expected = (d_from, "H·d_head") if layout is Layout.in_out else ("H·d_head", d_from)
    if W_in_out.shape[0] != d_from:
        hint = f" ({problem.where(from_key)} has width {d_from}"
        if W_in_out.shape[1] == d_from:
            hint += f"; {key} fits the {other.value} layout: pass --weight-layout {other.value}"
        raise InputError(f"{there}: expected {fmt_shape(expected)}, got "
                         f"{fmt_shape(W.shape)}{hint})")
    width = W_in_out.shape[1]
    if width % heads:
        hint = ("; if the keys and values have fewer heads than the queries (grouped-query "
                "attention), give --kv-heads G" if flag == "--heads" and key in ("W_k", "W_v")
                else "")
        raise ConfigError(f"{there}: width {width} is not divisible by {flag} {heads}{hint}")
    d_head = width // heads
    # Head h owns columns h·d_head … (h+1)·d_head − 1 (nn.MultiheadAttention's split).
    return np.ascontiguousarray(W_in_out.reshape(d_from, heads, d_head).transpose(1, 0, 2))


def _bias(problem: Problem, key: str, heads: int, d_head: int) -> np.ndarray | None:
    if key not in problem:
        return None
    b = problem[key]
    if b.shape == (heads * d_head,):
        return b.reshape(heads, 1, d_head)
    if b.shape == (heads, d_head):
        return b.reshape(heads, 1, d_head)
    raise InputError(f"{problem.where(key)}: expected ({heads * d_head},) or ({heads}, {d_head}), "
                     f"got {fmt_shape(b.shape)}")


def _score_params(problem: Problem, score: Score, d_q: int, d_k: int) -> dict[str, np.ndarray]:
    if score is Score.general:
        _require(problem, "W_a", (d_q, d_k), "the general score qᵀ W_a k")
        return {"W_a": problem["W_a"]}
    if score is Score.additive:
        _require(problem, "W_a", (d_q, None), "the additive score v_aᵀ tanh(q W_a + k U_a)")
        d_att = problem["W_a"].shape[1]
        _require(problem, "U_a", (d_k, d_att), "the additive score")
        _require(problem, "v_a", (d_att,), "the additive score")
        params = {"W_a": problem["W_a"], "U_a": problem["U_a"], "v_a": problem["v_a"]}
        if "b_a" in problem:
            _require(problem, "b_a", (d_att,), "the additive score")
            params["b_a"] = problem["b_a"]
        return params
    return {}


def _qk_norm_params(problem: Problem, config: AttentionConfig, params, heads: int,
                    widths: dict[str, int]) -> dict[str, np.ndarray]:
    """--qk-norm's RMSNorm weights, q_norm and k_norm: (d_head,) each per head (Qwen3), or
    over the whole projection (OLMo2) (H·d_head,) and (G·d_head,), G the KV heads (those of
    W_k, or H). Raises: InputError for one missing or of another shape."""
    if config.qk_norm is None:
        return {}
    whole = config.qk_norm is QKNorm.whole
    kv_heads = params["W_k"].shape[0] if params["W_k"] is not None else heads
    purpose = f"--qk-norm {config.qk_norm.value}"
    out = {}
    for key, count, d in (("q_norm", heads, widths["q"]), ("k_norm", kv_heads, widths["k"])):
        expected = (count * d,) if whole else (d,)
        _require(problem, key, (None,), purpose, "d_head" if not whole else "H·d_head")
        found = problem[key].shape
        if found != expected:
            what = (f"{count} heads × d_head {d}, the whole projection" if whole
                    else f"d_head {d}, one weight per dimension of a head")
            other = (d,) if whole else (count * d,)
            hint = (f"; it fits --qk-norm {'per-head' if whole else 'whole'}"
                    if found == other and count > 1 else "")
            raise InputError(f"{problem.where(key)}: expected {fmt_shape(expected)} ({what}, "
                             f"{purpose}), got {fmt_shape(found)}{hint}")
        out[key] = problem[key]
    return out


def _require(problem: Problem, key: str, shape: tuple[int | None, ...], purpose: str,
             unknown: str = "d_att") -> None:
    """``key`` is given, of ``shape`` (a None size: any, written ``unknown``).
    Raises: InputError naming the key, the shape expected and the one found."""
    if key not in problem:
        sources = " and ".join(sorted(set(problem.origin.values()))) or "the input"
        raise InputError(f"{purpose} needs '{key}' of shape {fmt_shape(shape, unknown)}, "
                         f"which {sources} does not give")
    found = problem[key].shape
    if len(found) != len(shape) or any(e is not None and e != f for e, f in zip(shape, found,
                                                                                 strict=False)):
        raise InputError(f"{problem.where(key)}: expected {fmt_shape(shape, unknown)}, "
                         f"got {fmt_shape(found)}")


def _output_projection(problem: Problem, width: int, layout: Layout):
    if "W_o" not in problem:
        if "b_o" in problem:
            raise InputError(f"{problem.where('b_o')} is given without W_o")
        return None, None
    W = problem["W_o"]
    W_in_out = W if layout is Layout.in_out else W.T
    if W_in_out.shape[0] != width:
        other = Layout.out_in if layout is Layout.in_out else Layout.in_out
        hint = (f" — it fits the {other.value} layout: pass --weight-layout {other.value}"
                if W_in_out.shape[1] == width else "")
        expected = (width, "d_out") if layout is Layout.in_out else ("d_out", width)
        raise InputError(f"{problem.where('W_o')}: expected {fmt_shape(expected)} (the context "
                         f"has H·d_v = {width} columns), got {fmt_shape(W.shape)}{hint}")
    b = None
    if "b_o" in problem:
        _require(problem, "b_o", (W_in_out.shape[1],), "the output projection")
        b = problem["b_o"]
    return W_in_out, b


def _masks(problem: Problem, batch: int, seq_q: int, seq_k: int, batched: bool):
    """The problem's ``mask`` as (B or 1, 1, seq_q, seq_k), True = may attend, and its
    ``key_padding_mask`` as (B or 1, 1, 1, seq_k), True = padding (n numbers, not n²); each
    None when not given. Raises: InputError for a shape that fits neither form."""
    mask = padding = None
    if "mask" in problem:
        m = problem["mask"]
        if m.shape == (seq_q, seq_k) or (batched and m.shape == (batch, seq_q, seq_k)):
            mask = m.reshape(-1, 1, seq_q, seq_k)
        else:
            expected = "(seq_q, seq_k)" + (" or (batch, seq_q, seq_k)" if batched else "")
            raise InputError(f"{problem.where('mask')}: expected {expected} = "
                             f"{fmt_shape((seq_q, seq_k))}, got {fmt_shape(m.shape)}")
    if "key_padding_mask" in problem:
        given = problem["key_padding_mask"]
        if given.shape == (seq_k,) or (batched and given.shape == (batch, seq_k)):
            padding = given.reshape(-1, 1, 1, seq_k)
        else:
            expected = "(seq_k,)" + (" or (batch, seq_k)" if batched else "")
            raise InputError(f"{problem.where('key_padding_mask')}: expected {expected} = "
                             f"({seq_k},), got {fmt_shape(given.shape)}")
    return mask, padding


def _dropout_mask(problem: Problem, batch: int, heads: int, seq_q: int, seq_k: int,
                  batched: bool):
    if "dropout_mask" not in problem:
        return None
    m = problem["dropout_mask"]
    expected = ((batch,) if batched else ()) + ((heads,) if heads > 1 else ()) + (seq_q, seq_k)
    if m.shape != expected:
        raise InputError(f"{problem.where('dropout_mask')}: expected the shape of the weights "
                         f"{fmt_shape(expected)}, got {fmt_shape(m.shape)}")
    return m.reshape(batch, heads, seq_q, seq_k)


def _sinks(problem: Problem, config: AttentionConfig, heads: int) -> dict[str, np.ndarray]:
    """{"sinks": (H,)} when the problem gives per-head sink logits (gpt-oss), else {}.

    Raises: InputError for a shape other than (H,); ConfigError with --normalize hard or
    topk (the sink is a column of the softmax)."""
    if "sinks" not in problem:
        return {}
    sinks = problem["sinks"]
    if sinks.shape != (heads,):
        raise InputError(f"{problem.where('sinks')}: expected one sink logit per query head "
                         f"({heads},), got {fmt_shape(sinks.shape)}")
    if config.normalize is not Normalize.softmax:
        raise ConfigError(f"{problem.where('sinks')} needs --normalize softmax: the sink is "
                          f"one more column of the softmax, not of {config.normalize.value}")
    return {"sinks": sinks}


def _score_bias(problem: Problem, batch: int, heads: int, seq_q: int, seq_k: int,
                batched: bool) -> np.ndarray | None:
    """The problem's ``bias`` as (B or 1, H or 1, seq_q, seq_k), as torch SDPA broadcasts a
    float attn_mask: (seq_q, seq_k), (H, seq_q, seq_k) or (batch, H, seq_q, seq_k), a batch
    or head size of 1 shared. Raises: InputError for any other shape."""
    if "bias" not in problem:
        return None
    b = problem["bias"]
    lead = b.shape[:-2]
    fits = b.shape[-2:] == (seq_q, seq_k) and (
        len(lead) == 0 or (len(lead) == 1 and lead[0] in (1, heads))
        or (len(lead) == 2 and lead[0] in (1, batch) and lead[1] in (1, heads)))
    if not fits:
        expected = "(seq_q, seq_k), (H, seq_q, seq_k)" + (" or (batch, H, seq_q, seq_k)"
                                                          if batched else "")
        full = ((batch,) if batched else ()) + (heads, seq_q, seq_k)
        raise InputError(f"{problem.where('bias')}: expected {expected} = "
                         f"{fmt_shape(full)} (a size 1 shared), got {fmt_shape(b.shape)}")
    return b.reshape((1,) * (4 - b.ndim) + b.shape)


def _alibi_slopes(problem: Problem, config: AttentionConfig, heads: int) -> np.ndarray | None:
    """ALiBi's slopes (H,): the key ``alibi_slopes``, or Press et al.'s for H heads; None
    without --alibi. Raises: ConfigError for alibi_slopes without --alibi; InputError for
    slopes not (H,)."""
    given = problem["alibi_slopes"] if "alibi_slopes" in problem else None
    if not config.alibi:
        if given is not None:
            raise ConfigError(f"{problem.where('alibi_slopes')} is given but not --alibi "
                              '(or "config": {"alibi": true}): the slopes would be unused')
        return None
    if given is None:
        from attncli.attention.bias import alibi_slopes

        return alibi_slopes(heads)
    if given.shape != (heads,):
        raise InputError(f"{problem.where('alibi_slopes')}: expected one slope per head "
                         f"({heads},), got {fmt_shape(given.shape)}")
    return given


def _tokens(problem: Problem, key: str, length: int, width: int, of: str = "x") -> list[str]:
    """The labels of ``of``'s ``length`` rows (of ``width`` columns); numbers without them.

    Raises: InputError for a count that is not the rows', saying when it is the columns'
    (the input looks transposed)."""
    tokens = getattr(problem, key)
    if tokens is None:
        return [str(i) for i in range(length)]
    if len(tokens) != length:
        hint = (f"; {of} has {width} columns: is it transposed? Give it one row per token"
                if len(tokens) == width else "")
        raise InputError(f"{problem.where(key)}: {len(tokens)} labels for {length} rows of "
                         f"{of}{hint}")
    return tokens
