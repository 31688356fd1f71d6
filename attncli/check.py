"""attncli check: answers graded (:mod:`attncli.grading`) and the mistake behind a wrong entry.

A diagnosis is a search over mistaken plans (ARCHITECTURE.md): each entry of
:data:`MISTAKES` is one named change, a stage of the plan replaced by its mistaken twin
(:mod:`attncli.mistakes`) or a config field changed, run through the same executor, alone and
with the answers' own earlier steps in place; the first that reproduces every wrong entry and
keeps every other is reported. A new diagnosis is one more line in that list.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attncli import mistakes
from attncli.answers import Answers
from attncli.attention.given import Given
from attncli.attention.plan import Plan
from attncli.config import AttentionConfig, Normalize, Score, build
from attncli.errors import AttncliError
from attncli.grading import (
    CARRIED,
    RIGHT,
    ROUNDED,
    WRONG,
    Counts,
    Diagnosis,
    Report,
    StepVerdict,
    _trivial,
    answer_row,
    describe,
    follows,
    grade,
    laid_out,
    narrowed,
    tainted_by,
    upstream,
    usable,
)
from attncli.problem import Problem
from attncli.tolerance import Tolerance
from attncli.trace import STEP_NAMES, Trace

__all__ = ["CARRIED", "MISTAKES", "RIGHT", "ROUNDED", "WRONG", "Answers", "Checker", "Counts",
           "Diagnosis", "Mistake", "Report", "StepVerdict", "grade"]


@dataclass(frozen=True)
class Mistake:
    """A usual hand-computation mistake, as a change of the correct computation: a stage of
    the plan replaced by its mistaken twin (:mod:`attncli.mistakes`), or a config field
    changed.

    ``change`` gets the correct config and trace and returns the change: a mistaken
    :class:`AttentionConfig`, or a function of the plan (:meth:`Plan.replace`, which may raise
    ConfigError when the mistake cannot happen with these shapes); None when the mistake
    cannot happen in this problem (no mask to forget, one head …). ``shows_in`` names the
    steps where the mistake can show, when not every step it changes (weights rounded before
    the weighted sum show in the context, not in written weights): it is a diagnosis only
    when it reproduces a wrong entry there.
    """

    name: str
    says: str
    change: Callable[[AttentionConfig, Trace], AttentionConfig | Callable[[Plan], Plan] | None]
    shows_in: tuple[str, ...] = ()


def _twin(step: str, cls, **fields) -> Callable[[AttentionConfig, Trace], Callable]:
    """The stage recording ``step`` replaced by its twin of class ``cls`` (``inner``: the
    stage it replaces, for twins that call it)."""
    def change(plan: Plan) -> Plan:
        stage = plan.stage(step)
        inner = {"inner": stage} if "inner" in {f.name for f in dataclasses.fields(cls)} else {}
        return plan.replace(step, mistakes.twin(cls, stage, **inner, **fields))
    return lambda config, trace: change


def _after_softmax(config: AttentionConfig, trace: Trace) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:
        mask, weights = plan.stage("masked_scores"), plan.stage("weights")
        return plan.replace("weights", mistakes.twin(mistakes.MaskedAfter, weights,
                                                     inner=weights, mask=mask)).replace(
            "masked_scores", mistakes.twin(mistakes.Skipped, mask))
    return change


def _heads_averaged(config: AttentionConfig, trace: Trace) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:  # averaged heads do not fit W_o: no output either
        plan = plan.replace("context", mistakes.twin(mistakes.MeanHeads, plan.stage("context")))
        return plan.replace("output", None) if plan.stage("output") else plan
    return change


def _mod_grouping(config: AttentionConfig, trace: Trace) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:  # the repetition records no step: found by its class
        return dataclasses.replace(plan, inputs=mistakes.mod_grouping(plan.inputs))
    return change


def _rotated(config: AttentionConfig, trace: Trace) -> bool:
    return trace.run.rope is not None


def _rotations(make: Callable) -> Callable[[AttentionConfig, Trace], Callable[[Plan], Plan]]:
    """Both RoPE stages (rotated_queries, rotated_keys) replaced by ``make(stage)``, a twin."""
    def change(plan: Plan) -> Plan:
        for step in ("rotated_queries", "rotated_keys"):
            plan = plan.replace(step, make(plan.stage(step)))
        return plan
    return lambda config, trace: change


def _capped_after_mask(config: AttentionConfig, trace: Trace) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:
        cap, mask = plan.stage("capped_scores"), plan.stage("masked_scores")
        return plan.replace("capped_scores", mistakes.twin(mistakes.Skipped, cap)).replace(
            "masked_scores", mistakes.twin(mistakes.CappedAfterMask, mask, cap=cap.cap))
    return change


def _capped_before_scaling(config: AttentionConfig, trace: Trace) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:
        scale, cap = plan.stage("scaled_scores"), plan.stage("capped_scores")
        return plan.replace("scaled_scores", mistakes.twin(mistakes.Skipped, scale)).replace(
            "capped_scores", mistakes.twin(mistakes.ScaledAfterCap, cap, factor=scale.factor))
    return change


def _alibi(config: AttentionConfig, trace: Trace) -> bool:
    return trace.run.alibi_slopes is not None


def _alibi_sign(config: AttentionConfig, trace: Trace) -> Callable[[Plan], Plan]:
    def change(plan: Plan) -> Plan:
        bias = plan.stage("bias")
        return plan.replace("bias", mistakes.twin(mistakes.AlibiSignFlipped, bias,
                                                  slopes=-bias.slopes))
    return change


def _press_slopes(config: AttentionConfig, trace: Trace) -> bool:
    """ALiBi's own slopes (not the key alibi_slopes) for H heads, H not a power of two."""
    from attncli.attention.bias import alibi_slopes

    H = trace.run.heads
    return (_alibi(config, trace) and H & (H - 1) != 0
            and np.array_equal(trace.run.alibi_slopes, alibi_slopes(H)))


def _power_of_two_slopes(config: AttentionConfig, trace: Trace) -> Callable[[Plan], Plan]:
    from attncli.attention.bias import power_of_two_slopes

    def change(plan: Plan) -> Plan:
        return plan.replace("bias", mistakes.twin(
            mistakes.PowerOfTwoSlopes, plan.stage("bias"),
            slopes=power_of_two_slopes(trace.run.heads)))
    return change


def _capped(config: AttentionConfig, trace: Trace) -> bool:
    return "capped_scores" in trace


def _scale_set(config: AttentionConfig, trace: Trace) -> bool:
    """A scale set (Gemma's query_pre_attn_scalar s as --scale s**-0.5) on a dot-product
    score, other than 1/√d_head."""
    return (config.scale is not None and trace.run.score in (Score.dot, Score.scaled_dot)
            and not math.isclose(config.scale, 1 / math.sqrt(trace.run.d_k), rel_tol=1e-12))


def _grouped(config: AttentionConfig, trace: Trace) -> bool:
    """Grouped-query attention with more than one KV head (with one, h mod 1 = ⌊h / H⌋)."""
    G = trace.run.kv_heads
    return G is not None and 1 < G < trace.run.heads


def _transposed(*names: str):
    def change(plan: Plan) -> Plan:
        for name in names:
            step = {"W_q": "queries", "W_k": "keys", "W_v": "values"}[name]
            W = plan.prepared.params[name]  # (H, d_in, d_head)
            square = not plan.prepared.per_head_weights and W.shape[1] == W.shape[0] * W.shape[2]
            plan = plan.replace(step, mistakes.transposed(plan.stage(step), square))
        return plan
    return lambda config, trace: change


def _when(test: Callable[[AttentionConfig, Trace], bool], change):
    return lambda config, trace: change(config, trace) if test(config, trace) else None


def _scaled(config: AttentionConfig, trace: Trace) -> bool:
    return trace.run.score is Score.scaled_dot and config.scale is None


def _masked(config: AttentionConfig, trace: Trace) -> bool:
    return "masked_scores" in trace


def _heads(config: AttentionConfig, trace: Trace) -> bool:
    return trace.run.heads > 1


def _projects(*names: str):
    return lambda config, trace: all(n in trace.run.projected for n in names)


def _soft(config: AttentionConfig, trace: Trace) -> bool:
    return config.normalize is not Normalize.hard


MISTAKES: list[Mistake] = [
    Mistake("no_scaling", "the scores were not divided by √d_k",
            _when(_scaled, lambda c, t: c.replace(score=Score.dot))),
    Mistake("scaled_by_d_k", "the scores were divided by d_k instead of √d_k",
            _when(_scaled, lambda c, t: c.replace(scale=1.0 / t.run.d_k))),
    Mistake("sqrt_d_model", "the scores were divided by √d_model instead of √d_head",
            _when(lambda c, t: _scaled(c, t) and _heads(c, t),
                  lambda c, t: c.replace(scale=1.0 / math.sqrt(t.run.heads * t.run.d_k)))),
    Mistake("softmax_wrong_axis", "the softmax ran over the wrong axis (columns, not rows)",
            _when(_soft, _twin("weights", mistakes.OverQueries))),
    Mistake("transposed_weights", "the projection matrices W_q, W_k and W_v were used "
            "transposed (x @ Wᵀ)", _when(_projects("W_q", "W_k", "W_v"),
                                         _transposed("W_q", "W_k", "W_v"))),
    *(Mistake(f"transposed_{w}", f"{w} was used transposed (x @ {w}ᵀ)",
              _when(_projects(w), _transposed(w)))
      for w in ("W_q", "W_k", "W_v")),
    Mistake("keys_as_values", "the keys were used as the values",
            _twin("values", mistakes.KeysAsValues)),
    Mistake("queries_keys_swapped", "queries and keys were swapped (K Qᵀ instead of Q Kᵀ)",
            _twin("scores", mistakes.Swapped)),
    Mistake("causal_forgotten", "the causal mask was forgotten",
            _when(lambda c, t: c.causal, lambda c, t: c.replace(causal=False))),
    Mistake("mask_inverted", "the mask was inverted (attending where it forbids)",
            _when(_masked, _twin("masked_scores", mistakes.InvertedMask))),
    Mistake("mask_zero_fill", "masked scores were set to 0 instead of −∞",
            _when(_masked, _twin("masked_scores", mistakes.ZeroFilled))),
    Mistake("mask_after_softmax", "the mask was applied after the softmax without "
            "renormalising", _when(_masked, _after_softmax)),
    Mistake("heads_averaged", "the heads were averaged instead of concatenated",
            _when(_heads, _heads_averaged)),
    Mistake("gqa_grouping_mod", "query head h was given KV head h mod G instead of "
            "⌊h / (H/G)⌋ (the key/value heads tiled, not each repeated H/G times)",
            _when(_grouped, _mod_grouping)),
    Mistake("rope_other_layout", "RoPE was applied in the other layout: the pairs (2i, 2i + 1) "
            "(interleaved, GPT-J) for the pairs (i, i + R/2) (half, Llama's rotate_half), or "
            "the reverse", _when(lambda c, t: _rotated(c, t) and t.run.rope.rotary_dim > 2,
                                 _rotations(lambda s: mistakes.twin(
                                     mistakes.OtherLayout, s, interleaved=not s.interleaved)))),
    Mistake("rope_queries_only", "RoPE was applied to the queries only: the keys were not "
            "rotated", _when(_rotated, _twin("rotated_keys", mistakes.Skipped))),
    Mistake("rope_positions_from_one", "the positions were counted from 1, not 0 (every "
            "token turned by one position more)",
            _when(lambda c, t: _rotated(c, t) and not t.run.rope.given,
                  _rotations(lambda s: mistakes.twin(mistakes.PositionsFromOne, s, start=1))),
            ("rotated_queries", "rotated_keys")),
    Mistake("softcap_after_mask", "the scores were soft-capped after the mask (a masked "
            "key's −∞ became −C, so it kept a weight), not before it",
            _when(lambda c, t: _capped(c, t) and _masked(c, t), _capped_after_mask)),
    Mistake("softcap_before_scaling", "the scores were soft-capped before the scaling, "
            "not after it", _when(lambda c, t: _capped(c, t) and "scaled_scores" in t,
                                  _capped_before_scaling)),
    Mistake("alibi_sign", "ALiBi was added with the wrong sign: +m_h·|i − j| (the far keys "
            "favoured), not −m_h·|i − j|", _when(_alibi, _alibi_sign)),
    Mistake("alibi_power_of_two_slopes", "the ALiBi slopes were 2^(−8h/H), the rule for H a "
            "power of two, not the closest power of two's slopes with the extra heads "
            "interleaved (Press et al. 2022; Bloom's slopes)",
            _when(_press_slopes, _power_of_two_slopes)),
    Mistake("window_off_by_one", "the window kept one key too many: |i − j| ≤ W + 1 "
            "(Hugging Face's sliding_window = S is --causal --window S − 1)",
            _when(lambda c, t: c.window is not None,
                  lambda c, t: c.replace(window=c.window + 1))),
    Mistake("window_off_by_one_short", "the window kept one key too few: |i − j| ≤ W − 1",
            _when(lambda c, t: c.window is not None and c.window > 0,
                  lambda c, t: c.replace(window=c.window - 1))),
    Mistake("sqrt_d_head_for_scalar", "the scores were divided by √d_head where the run "
            "sets its scale (Gemma's query_pre_attn_scalar s: --scale s**-0.5)",
            _when(_scale_set, lambda c, t: c.replace(scale=None, score=Score.scaled_dot))),
    Mistake("sinks_renormalised", "the rows of the weights were renormalised to sum to 1, "
            "the sink's share given to the keys: the softmax runs over the keys and the sink, "
            "whose column is then dropped (rows sum to 1 − sink_weights)",
            _when(lambda c, t: t.run.sinks, _twin("weights", mistakes.SinkRenormalised))),
    Mistake("W_o_forgotten", "the output projection W_o was forgotten",
            _when(lambda c, t: "output" in t, _twin("output", mistakes.Skipped))),
    Mistake("dropout_not_rescaled", "dropped-out weights were not rescaled by 1/(1 − p)",
            _when(lambda c, t: c.dropout > 0, _twin("dropped_weights", mistakes.Unrescaled))),
    *(Mistake(f"weights_rounded_{k}", f"the weights were rounded to {k} decimal"
              f"{'s' if k > 1 else ''} before the weighted sum",
              _when(_soft, _twin("weights", mistakes.Rounded, decimals=k)),
              ("head_context", "context", "output"))
      for k in (4, 3, 2, 1)),
]


# --- the checker: carried runs and the diagnosis ---------------------------------------------


class Checker:
    """Grades answers files against one problem; the mistaken runs without the answers' steps
    are computed once each and shared by every file."""

    def __init__(self, problem: Problem, config: AttentionConfig | None, trace: Trace,
                 tolerance: Tolerance | None = None):
        from attncli.attention.pipeline import attend

        self._attend = attend
        config = build(problem.config, None) if config is None else config
        if config.seed is None:  # the mistaken runs must draw the dropout mask the run drew
            config = config.replace(seed=trace.run.seed)
        self.problem, self.config, self.trace = problem, config, trace
        self.tolerance = tolerance or Tolerance()
        self._mistaken: dict[str, Trace | None] = {}

    def check(self, answers: Answers) -> Report:
        row = answer_row(self.trace, answers)
        answers = laid_out(self.trace, answers, row)
        given = self._given(answers, row)
        carried = None if given is None else self._run(self.config, given)
        report = grade(self.trace, answers, self.tolerance, carried, self._rounded(answers, row))
        if not report.ok:
            report.diagnosis = self.diagnose(answers, report, given)
        return report

    def _given(self, answers: Answers, row: int | None) -> Given | None:
        """The answers' steps to run with, when one of them comes before another."""
        steps = usable(self.trace, answers, row)
        if not any(set(upstream(self.trace, s)) & set(steps) for s in steps):
            return None  # nothing would change
        return Given(steps, row)

    def _rounded(self, answers: Answers, row: int | None) -> Trace | None:
        """The run with the answers' steps in place and every step not shown rounded to the
        answers' decimals (the most any step is written with), as a student who rounds each
        step would have worked; None outside the default (by hand) tolerance or for whole
        numbers."""
        decimals = max(int(d.max()) for d in answers.decimals.values())
        if not self.tolerance.by_hand or decimals == 0:
            return None
        steps = usable(self.trace, answers, row)
        rounds = frozenset(s for s in self.trace.names()
                           if s not in steps and not _trivial(self.trace, s))
        return self._run(self.config, Given(steps, row, rounded=decimals, rounds=rounds))

    def _run(self, config: AttentionConfig | None, given: Given | None = None,
             change: Callable[[Plan], Plan] | None = None) -> Trace | None:
        try:
            return self._attend(self.problem, config, given=given, change=change)
        except AttncliError:  # the mistake cannot happen with these shapes, or the answers'
            return None       # own numbers overflow: nothing follows from them

    def _mistaken_run(self, mistake: Mistake, given: Given | None = None) -> Trace | None:
        """The run with ``mistake`` made (and ``given`` steps in place), or None when it
        cannot happen here."""
        change = mistake.change(self.config, self.trace)
        if change is None:
            return None
        if isinstance(change, AttentionConfig):
            return self._run(change, given)
        return self._run(self.config, given, change)

    def _mistaken_trace(self, mistake: Mistake) -> Trace | None:
        if mistake.name not in self._mistaken:
            self._mistaken[mistake.name] = self._mistaken_run(mistake)
        return self._mistaken[mistake.name]

    def diagnose(self, answers: Answers, report: Report,
                 given: Given | None = None) -> Diagnosis | None:
        """The first mistake of :data:`MISTAKES` that reproduces every wrong entry and keeps
        every other entry (:meth:`explains`), naming the others that give the same numbers;
        else weights rounded up or down by hand; else None. A later step that the same
        mistake explains, computed from an earlier step it also explains, is then marked
        carried forward: the mistake is charged once."""
        row = answer_row(self.trace, answers)
        found = []
        for mistake in MISTAKES:
            alone = self._mistaken_trace(mistake)
            if alone is None:
                continue
            runs = [alone]
            if given is not None:
                carried = self._mistaken_run(mistake, given)
                runs += [carried] if carried is not None else []
            explained = self.explains(runs, report, row)
            if explained and (not mistake.shows_in or set(explained) & set(mistake.shows_in)):
                found.append((mistake, alone, explained))
        if found:
            (first, trace, explained), others = found[0], found[1:]
            same = [m.says for m, t, _ in others if _same_numbers(t, trace, answers)]
            detail = f"here it gives the same numbers as: {'; '.join(same)}" if same else ""
            _charge_once(self.trace, report, explained)
            entered = [v.step for v in report.verdicts if v.step in explained and not v.ok]
            return Diagnosis(first.name, first.says, entered, detail)
        return (_weights_rounded_by_hand(report)
                or _rounded_weights_behind(self.trace, answers, report, self.tolerance))

    def explains(self, runs: list[Trace], report: Report, row: int | None) -> list[str]:
        """The steps whose wrong entries mistaken ``runs`` reproduce (alone, and with the
        answers' steps in place): every entry of every given step they compute must be what
        one of them gives; [] when one is not, or no wrong entry is reproduced."""
        explained = []
        for v in report.verdicts:
            found = [(run, _standing_for(run, v)) for run in runs]
            refs = [narrowed(run, name, row)[0] for run, name in found if name is not None]
            if not refs:
                continue
            blank = np.isnan(v.given)  # an empty entry neither shows a mistake nor rules it out
            match = blank.copy()
            for ref in refs:
                if ref.shape == v.given.shape:
                    match |= follows(v.given, ref, v.decimals, self.tolerance, v.unseen)
            if not match.all():
                return []
            if np.any((v.status == WRONG) & ~blank):
                explained.append(v.step)
        return explained


def _standing_for(run: Trace, verdict: StepVerdict) -> str | None:
    """The step of a mistaken run to compare a given step with: the step itself; for wrong
    scaled or masked scores that the mistake leaves out (no scaling, no mask), the score
    step before them, which they would have left unchanged; else None (not compared)."""
    step = verdict.step
    if step in run:
        return step
    if verdict.ok or step not in ("scaled_scores", "masked_scores"):
        return None
    return next((s for s in reversed(STEP_NAMES[:STEP_NAMES.index(step)]) if s in run), None)


def _charge_once(trace: Trace, report: Report, explained: list[str]) -> None:
    """Wrong entries of a step that one mistake explains, computed from an earlier step whose
    wrong entries it explains too, are carried forward from there."""
    for v in report.verdicts:
        earlier = [w for w in report.verdicts if w.step in explained and w.step != v.step
                   and w.step in upstream(trace, v.step)]
        if v.step not in explained or not earlier or v.given.shape != v.expected.shape:
            continue
        tainted = tainted_by(earlier, v.axes, v.given.shape)
        blank = np.isnan(v.given)  # an empty entry stays wrong
        if np.all(tainted | (v.status != WRONG) | blank):
            v.status = np.where((v.status == WRONG) & ~blank, CARRIED, v.status)
            v.carried_from = earlier[0].step
            own = [w.step for w in report.verdicts if w.step in upstream(trace, v.step)]
            describe(v, {}, own[-1] if own else None)
            v.note += " (the same mistake)"


def _same_numbers(one: Trace, other: Trace, answers: Answers) -> bool:
    steps = [s for s in answers.steps if s in one and s in other]
    return bool(steps) and all(one[s].shape == other[s].shape and np.allclose(
        one[s], other[s], rtol=1e-12, atol=1e-12) for s in steps)


# --- weights rounded by hand ------------------------------------------------------------------


def _weights_rounded_by_hand(report: Report) -> Diagnosis | None:
    """Given weights that are wrong only by rounding: each the value they follow from rounded
    to k decimals, up or down (seed 004 writes its weight 0.0634 as 0.0)."""
    v = next((v for v in report.verdicts if v.step == "weights"), None)
    if v is None or v.ok or v.given.shape != v.expected.shape:
        return None
    if any(not w.ok for w in report.verdicts if w.step != "weights"):
        return None  # another step has a mistake of its own
    reference = v.expected if v.carried is None else v.carried
    exact = "the exact" if np.allclose(reference, v.expected, rtol=1e-12, atol=0) else \
        "the weights that follow from your earlier steps,"
    written = int(v.decimals.max())
    for k in range(1, written + 1):
        def on(grid, k=k):
            return np.isclose(v.given, grid / 10.0 ** k, rtol=0, atol=1e-9 * 10.0 ** -k)

        scaled = reference * 10.0 ** k
        if np.all(on(np.floor(scaled)) | on(np.ceil(scaled))):
            s = "s" if k > 1 else ""
            how = ("" if np.all(on(np.round(scaled))) else " by hand, not all to the nearest")
            shown = f" (written with {written})" if k < written else ""
            return Diagnosis(f"weights_rounded_{k}", f"the weights were rounded to {k} "
                             f"decimal{s}{how}", ["weights"],
                             f"{_vector(v.given.ravel()[:12], k)}{shown} for {exact} "
                             f"{_vector(reference.ravel()[:12], 3)}")
    return None


def _rounded_weights_behind(trace: Trace, answers: Answers, report: Report,
                            tolerance: Tolerance) -> Diagnosis | None:
    """A wrong context of one head, the weights not given, that is the values times weights
    rounded to k decimals, up or down (seed 004 writes its weight 0.0634 as 0.0): each weight
    is tried at its two neighbours on the k-decimal grid, for rows of at most ``_MAX_KEYS``
    keys."""
    verdict = next((v for v in report.verdicts if v.step == "context" and not v.ok), None)
    if (verdict is None or verdict.given.shape != verdict.expected.shape
            or "weights" in answers.steps or trace.run.heads != 1
            or "dropped_weights" in trace or trace["values"].ndim != 2
            or trace["values"].shape[0] > _MAX_KEYS):
        return None
    values, weights = trace["values"], trace["weights"]
    row = None if answers.query is None else trace.query_index(answers.query)
    rows = [row] if row is not None else list(range(weights.shape[0]))
    given = verdict.given.reshape(len(rows), -1)
    decimals = answers.decimals["context"].reshape(len(rows), -1)
    for k in (1, 2, 3, 4):
        found = []
        for i, context, digits in zip(rows, given, decimals, strict=True):
            scaled = weights[i] * 10.0 ** k
            grid = [sorted({np.floor(w), np.ceil(w)}) for w in scaled]
            # the answer must be these weights' context as the tolerance allows
            match = next((np.array(c) / 10.0 ** k for c in itertools.product(*grid)
                          if np.all(follows(context, np.array(c) / 10.0 ** k @ values, digits,
                                            tolerance))), None)
            if match is None:
                break
            found.append((i, match))
        else:
            shown = "; ".join(f"{_vector(w, k)} (exact {_vector(weights[i], 3)}), which gives "
                              f"{_vector(w @ values, k)} where the exact context is "
                              f"{_vector(weights[i] @ values, 3)}" for i, w in found[:3])
            s = "s" if k > 1 else ""
            return Diagnosis(f"weights_rounded_{k}",
                             f"the weights were rounded to {k} decimal{s} before the weighted sum",
                             ["context"], f"the context is the values weighted by {shown}")
    return None


_MAX_KEYS = 12  # 2**12 roundings to try per row at most


def _vector(values: np.ndarray, decimals: int) -> str:
    return "[" + ", ".join(f"{v:.{decimals}f}" for v in values) + "]"
