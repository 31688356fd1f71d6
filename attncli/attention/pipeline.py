"""attend(): project → score → scale → mask → normalise → dropout → weighted sum → merge heads →
output projection, each stage recorded into a Trace."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from attncli.attention import masks, normalize, scores
from attncli.attention.blocks import (
    ANNOUNCE_BYTES,
    N_BY_N,
    Monitor,
    Recorder,
    block_rows,
    fused_sdpa,
    human,
    nbytes,
)
from attncli.attention.conventions import conventions
from attncli.attention.given import Given
from attncli.attention.masks import Mask
from attncli.backend import Runtime, dropout_keep, resolve
from attncli.config import AttentionConfig, Backend, CausalAlign, Normalize, Score, Slip, build
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem
from attncli.shapes import Prepared, prepare
from attncli.trace import Run, Trace


def attend(problem: Problem, config: AttentionConfig | None = None,
           steps: Iterable[str] | None = None, monitor: Monitor | None = None,
           query: str | int | None = None, given: Given | None = None) -> Trace:
    """Run attention on ``problem`` as ``config`` says, recording every stage.

    Shapes (B = batch, H = heads; axes B and H are left out of a step when x is 2-D / H = 1):
        queries (B, H, seq_q, d_k); keys (B, H, seq_k, d_k); values (B, H, seq_k, d_v)
        scores, scaled_scores, masked_scores, weights, dropped_weights (B, H, seq_q, seq_k)
        head_context (B, H, seq_q, d_v) — only when H > 1
        context (B, seq_q, H·d_v), heads concatenated; output (B, seq_q, d_out) when W_o is given
    Args:
        config: how to attend; None takes the problem's own ``config`` (as a file gives it).
        steps: the step names to record (all of them when None). When none of the n×n steps
            (scores … dropped_weights) is asked for, the rows are computed in query blocks
            (memory n·d, not n²), or by torch's fused scaled_dot_product_attention where it
            computes the same thing; the trace's ``config["path"]`` says which.
        monitor: told of progress and of big steps before they are allocated, and asked
            where to keep them (:class:`attncli.attention.blocks.Monitor`).
        query: one query row (a token or an index): only that row is computed, and the
            trace is as :meth:`Trace.at_query` would narrow it.
        given: steps given in place of the computed ones (`attncli check`'s grading carried
            forward, :class:`attncli.attention.given.Given`): each step is recorded as it
            follows from the given steps before it, then the given one goes on in its place.
            The run is one block of whole matrices.
    Returns: a Trace whose steps are in pipeline order.
    Raises:
        InputError / ConfigError: from :func:`attncli.shapes.prepare` (shapes, options);
            InputError when scores overflow the dtype, or for an unknown ``query``.
        BackendError: an unavailable backend or device.
    Source: Vaswani et al. 2017, eq. 1 and §3.2.2 (multi-head); torch.nn.MultiheadAttention
    and torch.nn.functional.scaled_dot_product_attention are the numerical reference.
    """
    config = (build(problem.config, None) if config is None else config).validate()
    # Overflow is caught and reported by _check_finite, so numpy's own warnings stay quiet.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _attend(problem, config, steps, monitor or Monitor(), query, given)


def _attend(problem: Problem, config: AttentionConfig, steps: Iterable[str] | None,
            monitor: Monitor, query: str | int | None, given: Given | None = None) -> Trace:
    prepared = prepare(problem, config)
    flops = matmul_flops(prepared, config)
    runtime = resolve(config.backend, config.device, config.dtype, flops=flops)
    xp, H = runtime.xp, prepared.heads
    p = {k: runtime.asarray(v) for k, v in prepared.params.items()}
    score_fn, scale = prepared.score, prepared.scale

    trace = Trace(query_tokens=prepared.query_tokens, key_tokens=prepared.key_tokens,
                  warnings=prepared.warnings)
    mask = run_mask(prepared, config)
    record = Recorder(trace, runtime, prepared.batched, H, steps, monitor, given)
    slip = config.slip
    focus = None if query is None else trace.query_index(str(query))
    # one row alone, unless a slip needs them all (the softmax over the query axis does)
    first, last = (focus, focus + 1) if focus is not None and slip == Slip() else (0, None)
    x, source = runtime.asarray(prepared.x), runtime.asarray(prepared.source)
    value_source = (source if prepared.value_source is None
                    else runtime.asarray(prepared.value_source))

    # (B, H, seq, d_head) each
    queries = scores.project(xp, x[:, first:last], p["W_q"], p["b_q"], H)
    queries = record("queries", _projection_formula("queries", "x", "q", p, H), queries)
    keys = scores.project(xp, source, p["W_k"], p["b_k"], H)
    keys = record("keys", _projection_formula("keys", prepared.key_from, "k", p, H), keys)
    values = scores.project(xp, value_source, p["W_v"], p["b_v"], H)
    if slip.values_from == "keys":  # a slip: the keys used as the values
        if keys.shape != values.shape:
            raise ConfigError("keys cannot stand in for values: their shapes differ")
        values = keys
    values = record("values", _projection_formula("values", prepared.value_from, "v", p, H)
                    + (" (slip: the keys)" if slip.values_from == "keys" else ""), values)
    if slip.swap_queries_keys:  # a slip: scores = keys queriesᵀ
        if queries.shape != keys.shape:
            raise ConfigError("queries and keys cannot be swapped: their shapes differ")
        queries, keys = keys, queries

    rows = _Rows(xp, runtime, prepared, config, p, queries, keys, values, record)
    batch, _, seq_q, _ = queries.shape  # seq_q: the rows computed (1 for a focus row)
    seq_k = keys.shape[2]
    if _fused_applies(runtime, prepared, config, rows.checked) and first == 0 and not given:
        # torch's fused kernel: softmax(q kᵀ · scale / T) v without the n×n matrices
        head_context = fused_sdpa(runtime, queries, keys, values, causal=config.causal,
                                  scale=scale / config.temperature)
        monitor.advance(1, 1)
        path = "fused: torch.nn.functional.scaled_dot_product_attention"
    else:
        # The pipeline's mistakes (slips), dropout and given steps act on whole matrices.
        whole = slip != Slip() or config.dropout > 0.0 or given is not None
        width = p["W_a"].shape[1] if score_fn is Score.additive else 1
        dtype = np.dtype(config.dtype.value)
        step = seq_q if whole else block_rows((batch, H, seq_q, seq_k), dtype.itemsize, width)
        size = nbytes((batch, H, seq_q, seq_k), dtype)
        if whole and size > ANNOUNCE_BYTES:
            monitor.note(f"dropout and check's mistakes work on whole matrices: each n×n step "
                         f"is {batch} × {H} × {seq_q} × {seq_k} = {human(size)}")
        total = -(-seq_q // step)
        pieces = []
        for n, start in enumerate(range(0, seq_q, step)):
            pieces.append(rows(queries[:, :, start:start + step, :], first + start, start))
            monitor.advance(n + 1, total)
        head_context = pieces[0] if total == 1 else xp.concat(pieces, axis=2)
        path = ("one query row" if focus is not None and first == focus else
                "whole matrices" if total == 1 else f"query blocks of {step} rows")
    if rows.empty:
        trace.warnings.append(f"{rows.empty} query row(s) have no key to attend to: their "
                              "weights and context are zero")

    weights_name = "dropped_weights" if config.dropout > 0.0 else "weights"
    _, _, seq_q, d_v = head_context.shape
    if H > 1:
        head_context = record("head_context", f"head_context = {weights_name} values (per head)",
                              head_context)
    # (B, seq_q, H·d_v): the heads side by side, head h in columns h·d_v … (h+1)·d_v − 1
    context = xp.reshape(xp.permute_dims(head_context, (0, 2, 1, 3)), (batch, seq_q, H * d_v))
    if slip.merge_heads == "mean":  # a slip: (B, seq_q, d_v), the heads averaged
        context = xp.mean(head_context, axis=1)
    if H > 1:
        context = record("context", "context = mean_h(head_context) (slip)"
                         if slip.merge_heads == "mean" else "context = concat_h(head_context)",
                         context)
    else:
        context = record("context", f"context = {weights_name} values", context)
    _check_finite(xp, context, "context", config)
    if p["W_o"] is not None and not slip.output_projection:
        record("output", "output = context (slip: W_o forgotten)", context)
    elif p["W_o"] is not None and slip.merge_heads != "mean":  # averaged heads do not fit W_o
        output = xp.matmul(context, p["W_o"])
        if p["b_o"] is not None:
            output = output + p["b_o"]
        _check_finite(xp, output, "output", config)
        record("output", "output = context W_o" + (" + b_o" if p["b_o"] is not None else ""),
               output)
    record.finish()

    trace.run = Run(
        project=config.project, score=score_fn, scale=scale, causal=config.causal,
        causal_align=config.causal_align, window=config.window, normalize=config.normalize,
        temperature=config.temperature, top_k=config.top_k, heads=H, dropout=config.dropout,
        seed=rows.seed, weight_layout=prepared.layout, backend=runtime.backend,
        device=runtime.device, dtype=config.dtype, d_k=prepared.d_k, d_v=prepared.d_v,
        projected=tuple(k for k in ("W_q", "W_k", "W_v") if p[k] is not None), path=path,
        matmul_flops=flops, key_lengths=mask.key_lengths if mask is not None else None,
        key_from=prepared.key_from, value_from=prepared.value_from,
        per_head_weights=prepared.per_head_weights, batched=prepared.batched,
        d_out=None if p["W_o"] is None else int(p["W_o"].shape[1]),
        biases=tuple(k for k in ("b_q", "b_k", "b_v", "b_o") if p.get(k) is not None))
    trace.mask = mask
    trace.inputs = dict(problem.arrays)
    trace.conventions = conventions(config, prepared, scale, score_fn)
    if focus is not None and first == focus:
        trace.focus = focus  # the steps hold that one row already
    elif focus is not None:
        trace = trace.at_query(focus)
    return trace


def _score_bound(xp, prepared: Prepared, config: AttentionConfig, p, queries, keys) -> float:
    """An upper bound of |scores| · scale / temperature over the whole run (inf when the
    norms themselves overflow): |q·k| ≤ ‖q‖ ‖k‖ (Cauchy–Schwarz); |v_aᵀ tanh(…)| ≤ Σ|v_a|."""
    if prepared.score is Score.additive:
        bound = float(xp.sum(xp.abs(p["v_a"])))
    else:
        if prepared.score is Score.general:
            queries = xp.matmul(queries, p["W_a"])
        norms = [float(xp.max(xp.sqrt(xp.sum(a * a, axis=-1)))) if a.shape[2] else 0.0
                 for a in (queries, keys)]
        bound = norms[0] * norms[1]
    return bound * abs(prepared.scale) / config.temperature


def _scaled(s, scale: float):
    s *= scale
    return s


def matmul_flops(prepared: Prepared, config: AttentionConfig) -> int:
    """The multiply-adds of the run's matrix products, counted as 2 FLOPs each: projections,
    q kᵀ, weights · values and W_o. (Softmax and masks add O(n²) more, not counted.)"""
    batch, seq_q, d_in = prepared.x.shape
    seq_k, d_src = prepared.source.shape[1:]
    d_vsrc = prepared.values_source.shape[2]
    H, d_k, d_v = prepared.heads, prepared.d_k, prepared.d_v
    p = prepared.params
    total = 2 * batch * H * seq_q * seq_k * (d_k + d_v)
    total += 2 * batch * H * d_k * seq_q * d_in if p["W_q"] is not None else 0
    total += 2 * batch * H * d_k * seq_k * d_src if p["W_k"] is not None else 0
    total += 2 * batch * H * d_v * seq_k * d_vsrc if p["W_v"] is not None else 0
    if p["W_o"] is not None:
        total += 2 * batch * seq_q * p["W_o"].shape[0] * p["W_o"].shape[1]
    return int(total)


def _fused_applies(runtime: Runtime, prepared: Prepared, config: AttentionConfig,
                   checked: bool) -> bool:
    """torch SDPA computes exactly this run, without n×n memory: a dot-product softmax with at
    most a top-left causal mask, no dropout, no slip, no n×n step to show and no score that
    could overflow (``checked``); d_k = d_v, and no float64 on a GPU (otherwise torch picks
    its math kernel, which builds the n×n matrices)."""
    return (runtime.backend is Backend.torch and not checked
            and prepared.d_k == prepared.d_v
            and (runtime.device == "cpu" or config.dtype.value != "float64")
            and prepared.score in (Score.dot, Score.scaled_dot)
            and config.normalize is Normalize.softmax and config.dropout == 0.0
            and config.slip == Slip() and config.window is None and prepared.mask is None
            and (not config.causal or config.causal_align is CausalAlign.top_left))


class _Rows:
    """A block of query rows from queries to head context: score → scale → mask → normalise →
    dropout → weighted sum, each step recorded into its rows of the trace."""

    def __init__(self, xp, runtime: Runtime, prepared: Prepared, config: AttentionConfig, p,
                 queries, keys, values, record: Recorder):
        self.xp, self.runtime, self.prepared, self.config = xp, runtime, prepared, config
        self.p, self.keys, self.values, self.record = p, keys, values, record
        self.seq_q = queries.shape[2]  # the rows this run computes
        self.keys_t = scores.keys_transposed(xp, keys)  # once, for every block
        self.empty = 0  # query rows with no key to attend to
        self.seed = config.seed
        self.mask = run_mask(prepared, config)
        self.given_mask = (None if self.mask is None or self.mask.given is None
                           else runtime.asarray(self.mask.given, boolean=True))
        # With an n×n step to show, or scores that could overflow, every stage is checked
        # as it comes; otherwise only each block's context is (no extra n² passes).
        limit = float(np.finfo(config.dtype.value).max) / 4
        self.checked = (bool(record.wanted & set(N_BY_N))
                        or not _score_bound(xp, prepared, config, p, queries, keys) < limit)

    def __call__(self, queries, first: int, start: int):
        """queries (B, H, rows, d_k) → head context (B, H, rows, d_v). ``first`` is the
        block's first query row in the problem (for masks), ``start`` in this run's rows."""
        seq_q = self.seq_q
        xp, config, prepared = self.xp, self.config, self.prepared
        slip, scale = config.slip, prepared.scale

        def record(name, formula, data):  # what the next stage uses: data or a given step
            return self.record.rows(name, formula, data, start, seq_q)

        # (B, H, rows, seq_k) from here to the weights
        s, score_formula = self._scores(queries)
        checked = self.checked
        if checked:
            _check_finite(xp, s, "scores", config)
        s = record("scores", f"scores = {score_formula}", s)
        last = "scores"
        if scale != 1.0:
            # in place unless the scores were kept (on numpy the trace holds this very array)
            s = s * scale if "scores" in self.record.wanted else _scaled(s, scale)
            how = (f"/ √d_k  (d_k = {prepared.d_k})" if config.scale is None
                   else f"× {scale:g}")
            s = record("scaled_scores", f"scaled_scores = scores {how}", s)
            last = "scaled_scores"

        mask, mask_parts = None, ""
        if self.mask is not None:
            mask = self.mask.rows(xp, first, first + s.shape[2], self.runtime.device,
                                  self.given_mask)
            mask_parts = self.mask.words()
        weights = None
        if mask is not None and slip.mask == "inverted":
            mask, mask_parts = ~mask, f"slip: inverted {mask_parts}"
        if mask is not None and slip.mask == "zero_fill":
            s = xp.where(mask, s, xp.zeros_like(s))
            s = record("masked_scores", f"masked_scores = {last}, 0 where masked (slip: not −∞)",
                       s)
            last, mask = "masked_scores", None
        if mask is not None and slip.mask == "after_softmax":
            weights, formula = _normalize(xp, s, config, last)
            weights = xp.where(mask, weights, xp.zeros_like(weights))
            formula += f" · mask, not renormalised (slip: {mask_parts} after the softmax)"
            mask = None
        if mask is not None:
            s = masks.apply(xp, s, mask)
            s = record("masked_scores", f"masked_scores = {last}, −∞ where masked ({mask_parts})",
                       s)
            last = "masked_scores"
            rows = (s.shape[0], 1, *s.shape[2:])  # (B, 1, rows, seq_k): count each row once
            self.empty += int(xp.sum(xp.astype(~xp.any(xp.broadcast_to(mask, rows), axis=-1),
                                               xp.int64)))

        if weights is None:
            # s may be overwritten unless the trace holds it
            weights, formula = _normalize(xp, s, config, last,
                                          inplace=last not in self.record.wanted)
        if slip.round_weights is not None:  # a slip: weights rounded before the weighted sum
            factor = 10.0 ** slip.round_weights
            weights = xp.round(weights * factor) / factor
            formula += f", rounded to {slip.round_weights} decimals (slip)"
        if checked:
            _check_finite(xp, weights, "weights", config)
        weights = record("weights", formula, weights)

        attended = weights
        if config.dropout > 0.0:  # one block: the mask is drawn for the whole weights
            if self.seed is None and prepared.dropout_mask is None:
                import secrets  # here: it imports hashlib, a cost at every start-up

                self.seed = secrets.randbelow(2**31)  # in the trace: the run can be repeated
            # drawn for every row, so that one row gets the mask of the whole run
            shape = (*weights.shape[:2], prepared.x.shape[1], weights.shape[3])
            keep = (self.runtime.asarray(prepared.dropout_mask, boolean=True)
                    if prepared.dropout_mask is not None
                    else dropout_keep(self.runtime, shape, config.dropout, self.seed))
            keep = keep[:, :, first:first + weights.shape[2]]
            kept = weights / (1.0 - config.dropout) if slip.dropout_rescale else weights
            attended = xp.where(keep, kept, xp.zeros_like(weights))
            origin = "dropout_mask" if prepared.dropout_mask is not None else f"seed {self.seed}"
            attended = record("dropped_weights",
                              f"dropped_weights = weights · keep / (1 − {config.dropout:g}), "
                              f"keep ~ Bernoulli({1 - config.dropout:g}) ({origin})", attended)
        head_context = xp.matmul(attended, self.values)  # (B, H, rows, d_v)
        if not checked and not bool(xp.all(xp.isfinite(head_context))):
            self._overflow(queries, head_context)
        return head_context

    def _scores(self, queries):
        """Raw scores of a block of queries, (B, H, rows, seq_k), and their formula."""
        xp, p, keys = self.xp, self.p, self.keys
        score_fn = self.prepared.score
        if score_fn is Score.general:
            return scores.general(xp, queries, keys, p["W_a"], self.keys_t), "queries W_a keysᵀ"
        if score_fn is Score.additive:
            s = scores.additive(xp, queries, keys, p["W_a"], p["U_a"], p["v_a"], p.get("b_a"))
            return s, ("tanh(queries W_a + keys U_a" + (" + b_a" if "b_a" in p else "")
                       + ") v_a")
        return scores.dot(xp, queries, keys, self.keys_t), "queries keysᵀ"

    def _overflow(self, queries, head_context) -> None:
        """A non-finite block context traced back to its stage, with that stage's error."""
        xp, config = self.xp, self.config
        s, _ = self._scores(queries)
        _check_finite(xp, s, "scores", config)
        s = s * (self.prepared.scale / config.temperature)
        _check_finite(xp, s, "weights", config)  # overflow of the scaled or tempered scores
        _check_finite(xp, head_context, "context", config)


def _check_finite(xp, array, what: str, config: AttentionConfig) -> None:
    """Never a silent NaN: overflow in the dtype is bad input, said as such."""
    if bool(xp.all(xp.isfinite(array))):
        return
    hint = ("use --dtype float64" if config.dtype.value == "float32"
            else "scale x or the weights down")
    if what == "weights" and config.temperature != 1.0:
        hint = f"--temperature {config.temperature:g} is too small for these scores"
    shape = "(" + ", ".join(str(n) for n in array.shape) + ")"
    raise InputError(f"the {what} {shape} overflow {config.dtype.value} (values beyond "
                     f"±{'3.4e38' if config.dtype.value == 'float32' else '1.8e308'}): {hint}")


def _projection_formula(name: str, src: str, which: str, p, heads: int) -> str:
    if p[f"W_{which}"] is None:
        return f"{name} = {src}" + (f", split into {heads} heads" if heads > 1 else "")
    return f"{name} = {src} W_{which}" + (f" + b_{which}" if p[f"b_{which}"] is not None else "")


def run_mask(prepared: Prepared, config: AttentionConfig) -> Mask | None:
    """The one mask of the run (causal, window, mask, key_padding_mask), or None when nothing
    is masked. Bottom-right alignment with a key_padding_mask puts each batch item's diagonal
    at its own last real key (flash-attn's)."""
    if not (config.causal or config.window is not None or prepared.mask is not None):
        return None
    bottom_right = config.causal_align is CausalAlign.bottom_right
    per_item = (bottom_right and prepared.key_lengths is not None
                and (config.causal or config.window is not None))
    return Mask(seq_q=prepared.x.shape[1], seq_k=prepared.source.shape[1], causal=config.causal,
                window=config.window, bottom_right=bottom_right,
                key_lengths=tuple(int(n) for n in prepared.key_lengths) if per_item else None,
                given=prepared.mask)


def _normalize(xp, s, config: AttentionConfig, last: str, inplace: bool = False):
    """Weights from the scores s as config says, and their formula; ``inplace``: s may be
    overwritten."""
    if config.slip.softmax_axis == "query":  # a slip: normalised down the columns
        weights, formula = _normalize(xp, xp.matrix_transpose(s), config.replace(
            slip=dataclasses.replace(config.slip, softmax_axis="key")), last)
        return xp.matrix_transpose(weights), formula + " over the query axis (slip)"
    t = config.temperature
    tempered = s if t == 1.0 else s / t
    over = last if t == 1.0 else f"{last} / {t:g}"
    if config.normalize is Normalize.hard:
        return normalize.hard(xp, tempered), f"weights = one_hot(argmax_j {last})"
    if config.normalize is Normalize.topk:
        return (normalize.top_k(xp, tempered, config.top_k),
                f"weights = softmax(top-{config.top_k} of {over})")
    return (normalize.softmax(xp, tempered, inplace=inplace or t != 1.0),
            f"weights = softmax({over})")
