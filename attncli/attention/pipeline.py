"""attend(): a problem and a config in, a Trace out: prepare → plan → execute.

The stages are in :mod:`attncli.attention.stages`, the plan that picks them in
:mod:`attncli.attention.plan`, the executor that runs them (whole, in query blocks, or fused)
in :mod:`attncli.attention.executor`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from attncli.attention.executor import execute
from attncli.attention.monitor import Monitor
from attncli.attention.plan import Plan, plan
from attncli.backend import resolve
from attncli.config import AttentionConfig, build
from attncli.problem import Problem
from attncli.shapes import Prepared, prepare
from attncli.trace import Trace

if TYPE_CHECKING:  # check's alone: not imported for every run
    from attncli.attention.given import Given


def attend(problem: Problem, config: AttentionConfig | None = None,
           steps: Iterable[str] | None = None, monitor: Monitor | None = None,
           query: str | int | None = None, given: Given | None = None,
           change: Callable[[Plan], Plan] | None = None) -> Trace:
    """Run attention on ``problem`` as ``config`` says, recording every stage.

    Shapes (B = batch, H = heads; axes B and H are left out of a step when x is 2-D / H = 1):
        queries (B, H, seq_q, d_k); keys (B, G, seq_k, d_k); values (B, G, seq_k, d_v), G the
            key/value heads (``kv_heads``; G = H without grouped-query attention)
        scores, scaled_scores, masked_scores, weights, dropped_weights (B, H, seq_q, seq_k)
        head_context (B, H, seq_q, d_v) — only when H > 1
        context (B, seq_q, H·d_v), heads concatenated; output (B, seq_q, d_out) when W_o is given
    Args:
        config: how to attend; None takes the problem's own ``config`` (as a file gives it).
        steps: the step names to record (all of them when None). When none of the n×n steps
            (scores … dropped_weights) is asked for, the rows are computed in query blocks
            (memory n·d, not n²), or by torch's fused scaled_dot_product_attention where it
            computes the same thing; the trace's ``run.path`` says which.
        monitor: told of progress and of big steps before they are allocated, and asked
            where to keep them (:class:`attncli.attention.monitor.Monitor`).
        query: one query row (a token or an index): only that row is computed, and the
            trace is as :meth:`Trace.at_query` would narrow it.
        given: steps given in place of the computed ones (`attncli check`'s grading carried
            forward, :class:`attncli.attention.given.Given`): each step is recorded as it
            follows from the given steps before it, then the given one goes on in its place.
            The run is one block of whole matrices.
        change: a change of the plan before it runs (a stage put in another's place,
            :meth:`attncli.attention.plan.Plan.replace`); `attncli check` tries its mistaken
            computations this way.
    Returns: a Trace whose steps are in pipeline order.
    Raises:
        InputError / ConfigError: from :func:`attncli.shapes.prepare` (shapes, options);
            InputError when scores overflow the dtype, or for an unknown ``query``.
        BackendError: an unavailable backend or device.
    Source: Vaswani et al. 2017, eq. 1 and §3.2.2 (multi-head); torch.nn.MultiheadAttention
    and torch.nn.functional.scaled_dot_product_attention are the numerical reference.
    """
    config = (build(problem.config, None) if config is None else config).validate()
    # Overflow is caught and reported by the executor, so numpy's own warnings stay quiet.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        prepared = prepare(problem, config)
        flops = matmul_flops(prepared, config)
        runtime = resolve(config.backend, config.device, config.dtype, flops=flops)
        stages = plan(prepared, config)
        if change is not None:
            stages = change(stages)
        return execute(stages, runtime, problem.arrays, steps=steps, monitor=monitor,
                       query=query, given=given, flops=flops)


def matmul_flops(prepared: Prepared, config: AttentionConfig) -> int:
    """The multiply-adds of the run's matrix products, counted as 2 FLOPs each: projections,
    q kᵀ, weights · values and W_o. (Softmax and masks add O(n²) more, not counted.)"""
    batch, seq_q, d_in = prepared.x.shape
    seq_k, d_src = prepared.keys_input.shape[1:]
    d_vsrc = prepared.values_input.shape[2]
    H, d_k, d_v = prepared.heads, prepared.d_k, prepared.d_v
    params = prepared.params
    total = 2 * batch * H * seq_q * seq_k * (d_k + d_v)
    total += 2 * batch * H * d_k * seq_q * d_in if params["W_q"] is not None else 0
    total += 2 * batch * H * d_k * seq_k * d_src if params["W_k"] is not None else 0
    total += 2 * batch * H * d_v * seq_k * d_vsrc if params["W_v"] is not None else 0
    if params["W_o"] is not None:
        total += 2 * batch * seq_q * params["W_o"].shape[0] * params["W_o"].shape[1]
    return int(total)
