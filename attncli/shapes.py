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

import numpy as np

from attncli.config import AttentionConfig, CausalAlign, Layout, Normalize, Score
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem, fmt_shape


@dataclass
class Prepared:
    """The problem's arrays in the one canonical form the pipeline reads (numpy, in_out layout).

    Shapes (B = batch or 1, H = heads):
        x (B, seq_q, d_in); keys_input (B, seq_k, d_src): what the keys are projected from,
        memory (or key_memory), or x for self-attention; values_input (B, seq_k, d_vsrc): what
        the values are projected from, the same array as keys_input unless value_memory is
        given
        W_q (H, d_in, d_k), W_k (H, d_src, d_k), W_v (H, d_src, d_v); b_* (H, 1, d_*); or None
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
    heads = config.heads or (_heads_from_weights(problem) if config.project else None) or 1
    warnings = list(problem.warnings)  # this run's own list: the problem is not changed
    unused: list[str] = []

    params: dict[str, np.ndarray | None] = {}
    widths: dict[str, int] = {}
    for name, d_from, from_key in (("q", d_in, "x"), ("k", d_src, key_from),
                                   ("v", d_vsrc, value_from)):
        key = f"W_{name}"
        if config.project and key in problem:
            W = _project_weight(problem, key, d_from, from_key, heads, layout)
        else:
            W = None
        params[key] = W
        width = W.shape[2] if W is not None else _split_width(problem, from_key, d_from, heads)
        widths[name] = width
        params[f"b_{name}"] = _bias(problem, f"b_{name}", heads, width) if W is not None else None
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
            f"a {score.value} score needs them equal")
    params.update(_score_params(problem, score, widths["q"], widths["k"]))
    for key in ("W_a", "U_a", "v_a", "b_a"):
        if key in problem and key not in params:
            warnings.append(f"{problem.where(key)} not used by the {score.value} score")
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
    query_tokens = _tokens(problem, "tokens", seq_q, d_in)
    key_tokens = _tokens(problem, "memory_tokens", seq_k, d_src, key_from) if cross \
        else query_tokens
    return Prepared(
        x=x3, keys_input=keys3, values_input=values3,
        key_from=key_from, value_from=value_from,
        key_lengths=_key_lengths(problem, batch),
        batched=batched, heads=heads, d_k=widths["q"],
        d_v=widths["v"], layout=layout, score=score,
        per_head_weights=any(problem[k].ndim == 3 for k in ("W_q", "W_k", "W_v")
                             if params[k] is not None), scale=scale, query_tokens=query_tokens,
        key_tokens=key_tokens, params=params, mask=mask, key_padding_mask=key_padding_mask,
        dropout_mask=dropout_mask,
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


def _heads_from_weights(problem: Problem) -> int | None:
    for key in ("W_q", "W_k", "W_v"):
        if key in problem and problem[key].ndim == 3:
            return int(problem[key].shape[0])
    return None


def _split_width(problem: Problem, from_key: str, width: int, heads: int) -> int:
    if width % heads:
        raise ConfigError(
            f"{problem.where(from_key)}: width {width} is not divisible by --heads {heads}"
        )
    return width // heads


def _project_weight(problem: Problem, key: str, d_from: int, from_key: str, heads: int,
                    layout: Layout) -> np.ndarray:
    """W as (H, d_from, d_head), in_out, whatever form it came in."""
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
        raise ConfigError(f"{there}: width {width} is not divisible by --heads {heads}")
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


def _require(problem: Problem, key: str, shape: tuple[int | None, ...], purpose: str) -> None:
    if key not in problem:
        sources = " and ".join(sorted(set(problem.origin.values()))) or "the input"
        raise InputError(f"{purpose} needs '{key}' of shape {fmt_shape(shape, 'd_att')}, "
                         f"which {sources} does not give")
    found = problem[key].shape
    if len(found) != len(shape) or any(e is not None and e != f for e, f in zip(shape, found,
                                                                                 strict=False)):
        raise InputError(f"{problem.where(key)}: expected {fmt_shape(shape, 'd_att')}, "
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
