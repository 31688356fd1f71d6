"""The executor: runs a plan's stages and records their steps into a Trace.

The executor, not the stages, decides how the rows are computed (ARCHITECTURE.md):
- whole matrices, when a row stage needs every row (``row_local`` False), does its work
  for the whole run at each call (``blockwise`` False: dropout draws the run's keep mask), or
  steps are given in place of computed ones (grading carried forward);
- query blocks (memory n·d, not n²: :func:`attncli.attention.blocks.block_rows`) otherwise,
  or the one row of --query;
- torch's fused ``scaled_dot_product_attention`` when every row stage says what it adds to
  the call (:meth:`attncli.attention.stages.Stage.fused`), no n×n step is asked for, and no
  score can overflow.
It checks for overflow (never a silent NaN): every stage with ``checks`` when an n×n step is
recorded or a bound says scores could overflow, else each block's head context, traced back
to its stage when it is not finite.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from attncli.attention import blocks
from attncli.attention.blocks import block_rows
from attncli.attention.conventions import conventions
from attncli.attention.monitor import Monitor
from attncli.attention.plan import Plan
from attncli.attention.recorder import Recorder
from attncli.attention.stages import Context
from attncli.backend import Runtime
from attncli.errors import InputError
from attncli.problem import fmt_shape
from attncli.sizes import human, nbytes
from attncli.trace import N_BY_N, Run, Trace

if TYPE_CHECKING:  # check's alone: not imported for every run
    from attncli.attention.given import Given

FUSED = "fused: torch.nn.functional.scaled_dot_product_attention"


def execute(plan: Plan, runtime: Runtime, inputs: dict[str, np.ndarray],
            steps: Iterable[str] | None = None, monitor: Monitor | None = None,
            query: str | int | None = None, given: Given | None = None,
            flops: int = 0) -> Trace:
    """Run ``plan`` on ``runtime`` and record the steps asked for.

    Args:
        inputs: the problem's arrays as given (kept in the trace for exporters).
        steps: the step names to record (all when None).
        monitor: progress, notes and where big steps live (:class:`Monitor`).
        query: one query row (a token or an index): only it is computed when the plan is
            row-local; the trace is narrowed to it either way.
        given: steps given in place of the computed ones (:class:`Given`): whole matrices.
        flops: the run's matrix-product FLOPs, for the trace.
    Returns: the Trace, steps in pipeline order, ``run`` filled in.
    Raises: InputError when a stage's output overflows the dtype; for an unknown ``query``.
    """
    monitor = monitor or Monitor()
    prepared, config = plan.prepared, plan.config
    xp, H = runtime.xp, prepared.heads
    trace = Trace(query_tokens=prepared.query_tokens, key_tokens=prepared.key_tokens,
                  warnings=prepared.warnings)
    record = Recorder(trace, runtime, prepared.batched, H, steps, monitor, given)
    # an int is an index (from Python; a label may itself be a number), text a token or index
    focus = (None if query is None else query_int(trace, query) if isinstance(query, int)
             else trace.query_index(str(query)))
    # one row alone, unless a stage needs every row
    first, last = (focus, focus + 1) if focus is not None and plan.row_local else (0, None)
    context = Context(runtime=runtime,
                      params={k: runtime.asarray(v) for k, v in prepared.params.items()})
    context.x = runtime.asarray(prepared.x)[:, first:last]
    context.keys_input = runtime.asarray(prepared.keys_input)
    context.values_input = (context.keys_input if prepared.values_input is prepared.keys_input
                            else runtime.asarray(prepared.values_input))
    for name in ("mask", "padding"):  # the problem's masks on the device, once
        array = None if plan.mask is None else getattr(plan.mask, name)
        if array is not None:
            setattr(context, name, runtime.asarray(array, boolean=True))
    if prepared.dropout_mask is not None:
        context.dropout_mask = runtime.asarray(prepared.dropout_mask, boolean=True)
    if prepared.bias is not None:
        context.bias_input = runtime.asarray(prepared.bias)

    context.first = first  # the query rows' positions start here (RoPE needs them)
    for stage in plan.inputs:  # (B, H or G, seq, d_head) each
        setattr(context, stage.writes or stage.step,
                _run(stage, xp, getattr(context, stage.writes or stage.step), context, record,
                     None))
    context.keys_t = _keys_transposed(xp, context.keys)
    queries = context.queries
    batch, _, seq_q, _ = queries.shape  # seq_q: the rows computed (1 for a focus row)
    seq_k = context.keys.shape[2]
    checked = _checked(plan, record, xp, context)
    fused = None if checked or given or first != 0 else _fused(plan, runtime)
    empty = 0  # query rows the mask leaves no key (none in the fused path's causal mask)
    if fused is not None:
        from attncli.attention.stages import sdpa

        head_context = sdpa(queries, context.keys, context.values, **fused)
        monitor.advance(1, 1)
        path = FUSED
    else:
        whole = not plan.row_local or not plan.blockwise or given is not None
        width = max(stage.row_width(prepared.params) for stage in plan.rows)
        dtype = np.dtype(config.dtype.value)
        step = seq_q if whole else block_rows((batch, H, seq_q, seq_k), dtype.itemsize, width)
        size = nbytes((batch, H, seq_q, seq_k), dtype)
        if whole and size > blocks.ANNOUNCE_BYTES:
            monitor.note(f"this run works on whole matrices (dropout, or a step given): each "
                         f"n×n step is {batch} × {H} × {seq_q} × {seq_k} = {human(size)}")
        total = -(-seq_q // step)
        pieces = []
        for n, start in enumerate(range(0, seq_q, step)):
            context.first = first + start
            pieces.append(_rows(plan, xp, queries[:, :, start:start + step, :], context,
                                record, start, seq_q, checked))
            if plan.mask is not None:  # block by block: the mask is never n×n at once
                empty += _empty_rows(plan.mask, xp, context, first + start,
                                     min(step, seq_q - start))
            monitor.advance(n + 1, total)
        head_context = pieces[0] if total == 1 else xp.concat(pieces, axis=2)
        path = ("one query row" if focus is not None and first == focus else
                "whole matrices" if total == 1 else f"query blocks of {step} rows")
    if empty:
        trace.warnings.append(f"{empty} query row(s) have no key to attend to: their "
                              "weights and context are zero")

    weighted_sum = plan.rows[-1]
    if H > 1:
        head_context = record(weighted_sum.step, weighted_sum.formula, head_context)
    data = head_context
    for stage in plan.tail:
        data = _run(stage, xp, data, context, record, None)
        if stage.overflow:
            check_finite(xp, data, stage.overflow, config)
    record.finish()

    params = prepared.params
    trace.run = Run(
        config.replace(score=prepared.score, scale=prepared.scale, heads=H, seed=plan.seed,
                       kv_heads=(prepared.kv_heads if prepared.kv_heads not in (None, H)
                                 else config.kv_heads),
                       weight_layout=prepared.layout, backend=runtime.backend,
                       device=runtime.device),
        d_k=prepared.d_k, d_v=prepared.d_v,
        projected=tuple(k for k in ("W_q", "W_k", "W_v") if params[k] is not None), path=path,
        matmul_flops=flops, key_lengths=None if plan.mask is None else plan.mask.key_lengths,
        key_from=prepared.key_from, value_from=prepared.value_from,
        per_head_weights=prepared.per_head_weights, batched=prepared.batched,
        d_out=None if params["W_o"] is None else int(params["W_o"].shape[1]),
        biases=tuple(k for k in ("b_q", "b_k", "b_v", "b_o") if params.get(k) is not None),
        scale_given=config.scale is not None,
        alibi_slopes=(None if prepared.alibi_slopes is None
                      else tuple(float(m) for m in prepared.alibi_slopes)),
        bias_given=prepared.bias is not None, sinks="sinks" in params, rope=prepared.rope)
    trace.mask = plan.mask
    trace.inputs = dict(inputs)
    trace.conventions = conventions(trace.run, plan.mask)
    if focus is not None and first == focus:
        trace.focus = focus  # the steps hold that one row already
    elif focus is not None:
        trace = trace.at_query(focus)
    return trace


def _run(stage, xp, data, context: Context, record: Recorder, rows: tuple[int, int] | None):
    """One stage, its step recorded (whole, or the block of ``rows`` = (start, seq_q));
    returns what the next stage uses (the output, or a given step in its place)."""
    out = stage(xp, data, context)
    if stage.step is None:
        return out
    if rows is None:
        return record(stage.step, stage.formula, out)
    return record.rows(stage.step, stage.formula, out, *rows)


def query_int(trace: Trace, query: int) -> int:
    """The row of the index ``query`` (−1 the last). Raises: InputError out of range."""
    n = len(trace.query_tokens)
    if -n <= query < n:
        return query % n
    raise InputError(f"query {query}: out of range: the queries are 0 … {n - 1}")


def _rows(plan: Plan, xp, queries, context: Context, record: Recorder, start: int, seq_q: int,
          checked: bool):
    """One block of query rows through the row stages: queries (B, H, rows, d_k) → head
    context (B, H, rows, d_v), each step recorded into its rows of the trace."""
    data, last = queries, "queries"
    for stage in plan.rows[:-1]:
        # the input may be overwritten unless the trace holds it (on numpy, the very array)
        context.inplace = last not in record.wanted
        out = stage(xp, data, context)
        context.inplace = False
        if checked and stage.overflow:
            check_finite(xp, out, stage.overflow, plan.config)
        if stage.step is not None:
            out = record.rows(stage.step, stage.formula, out, start, seq_q)
        if stage.writes is not None:  # an operand of a later stage: the data passes by
            setattr(context, stage.writes, out)
            continue
        if stage.step is not None:
            last = stage.step
        data = out
    head_context = plan.rows[-1](xp, data, context)  # recorded whole, after the blocks
    if not checked and not bool(xp.all(xp.isfinite(head_context))):
        _overflow(plan, xp, queries, context)
        check_finite(xp, head_context, "context", plan.config)
    return head_context


def _overflow(plan: Plan, xp, queries, context: Context) -> None:
    """A non-finite block traced back to its stage: the block again, every stage checked."""
    data = queries
    for stage in plan.rows[:-1]:
        out = stage(xp, data, context)
        if stage.writes is not None:  # the bias: the data passes by
            setattr(context, stage.writes, out)
            continue
        data = out
        if stage.overflow:
            check_finite(xp, data, stage.overflow, plan.config)


def _checked(plan: Plan, record: Recorder, xp, context: Context) -> bool:
    """Whether every stage is checked as it comes: with an n×n step to show, or scores that
    could overflow (a bound of |scores| · |scale| / temperature past a quarter of the dtype's
    largest number); otherwise only each block's context is (no extra n² passes)."""
    if record.wanted & set(N_BY_N):
        return True
    bounds = [stage.bound(xp, context.queries, context.keys, context.params)
              for stage in plan.rows]
    bound = next((b for b in bounds if b is not None), None)
    if bound is None:
        return True
    limit = float(np.finfo(plan.config.dtype.value).max) / 4
    return not bound * plan.score_gain < limit


def _fused(plan: Plan, runtime: Runtime) -> dict | None:
    """The keyword arguments of torch SDPA for this plan, or None when it does not compute
    exactly this run without n×n memory: the torch backend, every row stage fusable, d_k =
    d_v, no float64 on a GPU (torch would pick its math kernel, which builds the n×n
    matrices)."""
    from attncli.config import Backend

    prepared, config = plan.prepared, plan.config
    if (runtime.backend is not Backend.torch or prepared.d_k != prepared.d_v
            or (runtime.device != "cpu" and config.dtype.value == "float64")):
        return None
    parts = [stage.fused() for stage in plan.rows]
    if any(part is None for part in parts):
        return None
    merged = {k: v for part in parts for k, v in part.items()}
    return {"scale": merged.get("scale", 1.0) / merged.get("temperature", 1.0),
            "causal": merged.get("is_causal", False)}


def _empty_rows(mask, xp, context: Context, first: int, rows: int) -> int:
    """The query rows first … first + rows − 1 that the mask leaves no key, counted once per
    batch item (not per head)."""
    allowed = mask.rows(xp, first, first + rows, context.runtime.device, context.mask,
                        context.padding)
    allowed = xp.broadcast_to(allowed, (allowed.shape[0], 1, rows, mask.seq_k))
    return int(xp.sum(xp.astype(~xp.any(allowed, axis=-1), xp.int64)))


def _keys_transposed(xp, keys):
    from attncli.attention.scores import keys_transposed

    return keys_transposed(xp, keys)


def check_finite(xp, array, what: str, config) -> None:
    """Never a silent NaN: overflow in the dtype is bad input, said as such.

    Raises: InputError naming the step, its shape, the dtype and what to do.
    """
    if bool(xp.all(xp.isfinite(array))):
        return
    hint = ("use --dtype float64" if config.dtype.value == "float32"
            else "scale x or the weights down")
    if what == "weights" and config.temperature != 1.0:
        hint = f"--temperature {config.temperature:g} is too small for these scores"
    largest = "3.4e38" if config.dtype.value == "float32" else "1.8e308"
    raise InputError(f"the {what} {fmt_shape(tuple(array.shape))} overflow {config.dtype.value} "
                     f"(values beyond ±{largest}): {hint}")
