"""Grading: answers compared with the Trace, entry by entry, and the mistake behind a wrong one.

A diagnosis is a search over mistaken configs (ARCHITECTURE.md): each entry of
:data:`MISTAKES` is one named change of the config (a :class:`attncli.config.Slip` or another
field), re-run through the same pipeline; the first one that reproduces the wrong numbers is
reported. A new diagnosis is one more line in that list.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from attncli.config import AttentionConfig, Normalize, Score, build
from attncli.errors import AttncliError, InputError
from attncli.problem import Problem
from attncli.trace import STEP_NAMES, Trace

#: A hand-worked answer may differ from the exact value by this fraction (rounded intermediate
#: steps), on top of one unit in its last written decimal; answers written with more decimals
#: get a tighter allowance, 100 units of their last decimal at most.
HAND_RTOL = 2e-3
#: Answers printed with all their digits by another program may carry float32 rounding.
MACHINE_RTOL = 1e-6


@dataclass(frozen=True)
class Answers:
    """Answers to some steps: step name → array, for every query or for one query row.

    ``decimals`` holds, per step, how many decimals its answers were written with: the most
    of any entry (0.8610 has 4, 2.0 has 1, 2 has 0), since a writer may drop trailing zeros.
    The tolerance follows from it. ``null`` stands for −∞ (a masked score), as in compute's
    JSON; compute's whole ``--format json`` document is accepted as answers too.
    """

    steps: dict[str, np.ndarray]
    decimals: dict[str, np.ndarray]
    query: str | None
    source: str

    @classmethod
    def from_mapping(cls, raw: Any, source: str, query: str | None = None) -> Answers:
        """Raises: InputError for a non-object, an unknown step, or a non-numeric array."""
        if not isinstance(raw, Mapping):
            raise InputError(f"{source}: expected a JSON object of step → array")
        if isinstance(raw.get("steps"), Mapping):  # attncli compute --format json
            raw = {"query": raw.get("query"), **{
                name: entry.get("data") if isinstance(entry, Mapping) else entry
                for name, entry in raw["steps"].items()}}
        row = raw.get("query")
        if row is not None and (isinstance(row, bool) or not isinstance(row, str | int)):
            raise InputError(f"{source}: query: expected a token or an index, got {row!r}")
        if row is not None and query is not None and str(row) != query:
            raise InputError(f"{source}: query {row!r} contradicts --query {query!r}")
        row = query if row is None else row
        steps, decimals = {}, {}
        for name, value in raw.items():
            if name == "query":
                continue
            if name not in STEP_NAMES:
                raise InputError(f"{source}: {name}: not a step; the steps are "
                                 f"{', '.join(STEP_NAMES)}")
            written = _numbers(value, name, source)
            try:
                array = np.array([-np.inf if v is None else float(v) for v in written.flat],
                                 dtype=np.float64).reshape(written.shape)
            except OverflowError:
                raise InputError(f"{source}: {name}: a number too large for float64") from None
            if not np.all(np.isfinite(array) | (np.isneginf(array) & (name == "masked_scores"))):
                raise InputError(f"{source}: {name}: every answer must be a finite number "
                                 "(null, for −∞, only in masked_scores)")
            steps[name] = array
            decimals[name] = np.full(array.shape, max(_decimals(v) for v in written.flat))
        if not steps:
            raise InputError(f"{source}: no answers: give at least one step, e.g. \"context\"")
        return cls(steps, decimals, None if row is None else str(row), source)


def _numbers(value: Any, name: str, source: str) -> np.ndarray:
    """An object array of the numbers as written (Decimal, int or float)."""
    try:
        array = np.array(value, dtype=object)
    except ValueError:
        array = None
    if array is not None and array.ndim > 8:  # steps have at most 4 axes (batch, head, 2)
        raise InputError(f"{source}: {name}: arrays nested {array.ndim} deep; a step has at "
                         "most 4 axes")
    if array is None or array.size == 0 or not all(
            v is None or isinstance(v, Decimal | int | float) and not isinstance(v, bool)
            for v in array.flat):
        raise InputError(f"{source}: {name}: expected a (rectangular) array of numbers")
    return array


def _decimals(value: Decimal | int | float | None) -> int:
    """Decimals as written: Decimal('0.8610') has 4; a float has those of its shortest text."""
    if value is None:
        return 0
    exponent = (value if isinstance(value, Decimal) else Decimal(repr(value))).as_tuple().exponent
    return max(0, -int(exponent)) if isinstance(exponent, int) else 0


@dataclass
class StepVerdict:
    """One step: the given and expected numbers and each entry's status.

    status per entry: 0 = correctly rounded, 1 = within the hand-rounding tolerance, 2 = wrong.
    """

    step: str
    given: np.ndarray
    expected: np.ndarray
    status: np.ndarray
    decimals: np.ndarray  # per entry, as written
    axes: tuple[str, ...]
    verdict: str  # "right", "right within rounding", "wrong"
    note: str

    @property
    def ok(self) -> bool:
        return self.verdict != "wrong"


@dataclass(frozen=True)
class Mistake:
    """A named change of the config that reproduces a usual hand-computation mistake.

    ``change`` gets the correct config and the correct trace; it returns the mistaken config,
    or None when the mistake cannot happen in this problem (no mask to forget, one head …).
    """

    name: str
    says: str
    change: Callable[[AttentionConfig, Trace], AttentionConfig | None]


def _slip(**fields: Any) -> Callable[[AttentionConfig, Trace], AttentionConfig]:
    return lambda config, trace: config.replace(slip=dataclasses.replace(config.slip, **fields))


def _when(test: Callable[[AttentionConfig, Trace], bool],
          change: Callable[[AttentionConfig, Trace], AttentionConfig]):
    return lambda config, trace: change(config, trace) if test(config, trace) else None


def _scaled(config: AttentionConfig, trace: Trace) -> bool:
    return trace.config["score"] == Score.scaled_dot.value and config.scale is None


def _masked(config: AttentionConfig, trace: Trace) -> bool:
    return "masked_scores" in trace


def _heads(config: AttentionConfig, trace: Trace) -> bool:
    return trace.config["heads"] > 1


MISTAKES: list[Mistake] = [
    Mistake("no_scaling", "the scores were not divided by √d_k",
            _when(_scaled, lambda c, t: c.replace(score=Score.dot))),
    Mistake("scaled_by_d_k", "the scores were divided by d_k instead of √d_k",
            _when(_scaled, lambda c, t: c.replace(scale=1.0 / t.config["d_k"]))),
    Mistake("sqrt_d_model", "the scores were divided by √d_model instead of √d_head",
            _when(lambda c, t: _scaled(c, t) and _heads(c, t),
                  lambda c, t: c.replace(scale=1.0 / math.sqrt(t.config["heads"]
                                                               * t.config["d_k"])))),
    Mistake("softmax_wrong_axis", "the softmax ran over the wrong axis (columns, not rows)",
            _when(lambda c, t: c.normalize is not Normalize.hard, _slip(softmax_axis="query"))),
    Mistake("transposed_weights", "the projection matrices were used transposed (x @ W.T)",
            _when(lambda c, t: c.project, _slip(transposed_projections=True))),
    Mistake("keys_as_values", "the keys were used as the values", _slip(values_from="keys")),
    Mistake("queries_keys_swapped", "queries and keys were swapped (K Qᵀ instead of Q Kᵀ)",
            _slip(swap_queries_keys=True)),
    Mistake("causal_forgotten", "the causal mask was forgotten",
            _when(lambda c, t: c.causal, lambda c, t: c.replace(causal=False))),
    Mistake("mask_inverted", "the mask was inverted (attending where it forbids)",
            _when(_masked, _slip(mask="inverted"))),
    Mistake("mask_zero_fill", "masked scores were set to 0 instead of −∞",
            _when(_masked, _slip(mask="zero_fill"))),
    Mistake("mask_after_softmax", "the mask was applied after the softmax without "
            "renormalising", _when(_masked, _slip(mask="after_softmax"))),
    Mistake("heads_averaged", "the heads were averaged instead of concatenated",
            _when(_heads, _slip(merge_heads="mean"))),
    Mistake("W_o_forgotten", "the output projection W_o was forgotten",
            _when(lambda c, t: "output" in t, _slip(output_projection=False))),
    Mistake("dropout_not_rescaled", "dropped-out weights were not rescaled by 1/(1 − p)",
            _when(lambda c, t: c.dropout > 0, _slip(dropout_rescale=False))),
    *(Mistake(f"weights_rounded_{k}", f"the weights were rounded to {k} decimal"
              f"{'s' if k > 1 else ''} before the weighted sum",
              _when(lambda c, t: c.normalize is not Normalize.hard, _slip(round_weights=k)))
      for k in (4, 3, 2, 1)),
]


@dataclass
class Diagnosis:
    name: str
    says: str
    explains: list[str]  # the wrong steps it reproduces
    detail: str = ""

    def sentence(self) -> str:
        text = f"{self.says} (this reproduces {', '.join(self.explains)})"
        return f"{text}; {self.detail}" if self.detail else text


@dataclass
class Report:
    """The verdicts of one answers file, in pipeline order, and the diagnosis if any step is
    wrong."""

    source: str
    query: str | None
    verdicts: list[StepVerdict]
    diagnosis: Diagnosis | None = None
    error: str | None = None  # bad input in this file (batch grading keeps going)

    @property
    def ok(self) -> bool:
        return self.error is None and all(v.ok for v in self.verdicts)

    @property
    def first_wrong(self) -> str | None:
        return next((v.step for v in self.verdicts if not v.ok), None)


def unit(decimals: np.ndarray) -> np.ndarray:
    """One unit of the last written decimal; for whole numbers half of one (they must be the
    correctly rounded integer)."""
    decimals = decimals.astype(np.float64)
    return np.where(decimals > 0, 10.0 ** -decimals, 0.5)


def tolerance(expected: np.ndarray, decimals: np.ndarray, rtol: float | None,
              atol: float | None) -> np.ndarray:
    """Per entry: one unit of the last written decimal plus ``HAND_RTOL`` of the value, the
    two together at most 100 units, and never below ``MACHINE_RTOL`` of the value (answers
    printed in full from a float32 computation); or what --rtol/--atol say."""
    one = unit(decimals)
    if rtol is None and atol is None:
        hand = np.minimum(one + HAND_RTOL * np.abs(expected), 100 * one)
        return np.maximum(hand, MACHINE_RTOL * np.abs(expected))
    return (0.0 if atol is None else atol) + (0.0 if rtol is None else rtol) * np.abs(expected)


def _status(given, expected, decimals, rtol, atol) -> np.ndarray:
    """Per entry: 0 correctly rounded, 1 within the tolerance, 2 wrong."""
    same_inf = np.isneginf(given) & np.isneginf(expected)  # a masked score written as null
    with np.errstate(invalid="ignore"):
        error = np.where(same_inf, 0.0, np.abs(given - expected))
    error = np.where(np.isnan(error), np.inf, error)
    rounded = error <= 0.5 * unit(decimals) * (1 + 1e-9) + 1e-15
    close = error <= tolerance(np.where(same_inf, 0.0, expected), decimals, rtol, atol)
    return np.where(rounded, 0, np.where(close, 1, 2))


def _expected(trace: Trace, step: str, row: int | None):
    """The trace's numbers for a step, narrowed to the answers' query row."""
    data = trace[step]
    axes = trace.step(step).axes
    if row is not None and "query" in axes:
        data = np.take(data, row, axis=axes.index("query"))
        axes = tuple(a for a in axes if a != "query")
    return data, axes


def grade(trace: Trace, answers: Answers, rtol: float | None = None,
          atol: float | None = None, skip_missing: bool = False) -> Report:
    """Each answered step against the trace (an answer of another shape is wrong).

    Raises: InputError for an unknown query or a step this configuration does not compute.
    """
    row = None
    if answers.query is not None:
        try:
            row = trace.query_index(answers.query)
        except InputError:
            raise InputError(f"{answers.source}: query {answers.query!r}: no such token or "
                             f"index; the queries are {', '.join(trace.query_tokens)}") from None
    verdicts = []
    for step in STEP_NAMES:
        if step not in answers.steps:
            continue
        if step not in trace and skip_missing:
            continue
        if step not in trace:
            raise InputError(f"{answers.source}: {step}: this configuration computes no such "
                             f"step (it has {', '.join(trace.names())})")
        expected, axes = _expected(trace, step, row)
        given, decimals = answers.steps[step], answers.decimals[step]
        if given.shape != expected.shape:  # a wrong answer too (averaged heads, a lost W_o …)
            where = f" for query {answers.query}" if row is not None else ""
            hint = ("; is it one query row? say which with \"query\" or --query"
                    if row is None and given.shape == expected.shape[1:] else "")
            verdicts.append(StepVerdict(
                step, given, expected, np.full(given.shape, 2), decimals, tuple(axes), "wrong",
                f"shape {tuple(given.shape)}, expected {tuple(expected.shape)}{where}{hint}"))
            continue
        status = _status(given, expected, decimals, rtol, atol)
        verdicts.append(_verdict(step, given, expected, status, decimals, tuple(axes)))
    return Report(answers.source, answers.query, verdicts)


def _verdict(step, given, expected, status, decimals, axes) -> StepVerdict:
    def verdict(word: str, note: str) -> StepVerdict:
        return StepVerdict(step, given, expected, status, decimals, axes, word, note)

    wrong = int(np.sum(status == 2))
    if wrong:
        return verdict("wrong", f"{wrong} of {status.size} entries wrong")
    if np.any(status == 1):
        k = int(decimals.max())
        close = status == 1
        units = np.max(np.abs(given[close] - expected[close]) * 10.0 ** k)
        where = f"in the {_ordinal(k)} decimal" if k else "(whole numbers)"
        return verdict("right within rounding", f"differs by up to {units:.0f} {where}, as "
                       "rounding intermediate steps does")
    return verdict("right", "every entry right")


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


class Checker:
    """Grades answers files against one problem; the mistaken traces are computed once each
    and shared by every file."""

    def __init__(self, problem: Problem, config: AttentionConfig | None, trace: Trace,
                 rtol: float | None = None, atol: float | None = None):
        from attncli.attention.pipeline import attend

        self._attend = attend
        config = build(problem.config, None) if config is None else config
        if config.seed is None:  # the mistaken runs must draw the dropout mask the run drew
            config = config.replace(seed=trace.config.get("seed"))
        self.problem, self.config, self.trace = problem, config, trace
        self.rtol, self.atol = rtol, atol
        self._mistaken: dict[str, Trace | None] = {}

    def check(self, answers: Answers) -> Report:
        report = grade(self.trace, answers, self.rtol, self.atol)
        if not report.ok:
            report.diagnosis = self.diagnose(answers, report)
        return report

    def _mistaken_trace(self, mistake: Mistake) -> Trace | None:
        if mistake.name not in self._mistaken:
            config = mistake.change(self.config, self.trace)
            try:
                trace = None if config is None else self._attend(self.problem, config)
            except AttncliError:  # the mistake cannot happen with these shapes
                trace = None
            self._mistaken[mistake.name] = trace
        return self._mistaken[mistake.name]

    def diagnose(self, answers: Answers, report: Report) -> Diagnosis | None:
        """The first mistake of :data:`MISTAKES` that explains the answers (see
        :meth:`explains`), naming the others that give the same numbers here; else the rounded
        weights a wrong context implies; else None."""
        wrong = [v.step for v in report.verdicts if not v.ok]
        found = [(m, t) for m in MISTAKES if (t := self._mistaken_trace(m)) is not None
                 and self.explains(t, answers, report)]
        if found:
            (first, trace), others = found[0], found[1:]
            same = [m.says for m, t in others if _same_numbers(t, trace, answers)]
            detail = f"here it gives the same numbers as: {'; '.join(same)}" if same else ""
            return Diagnosis(first.name, first.says, wrong, detail)
        return _rounded_weights_behind(self.trace, answers, report, self.rtol, self.atol)

    def explains(self, mistaken: Trace, answers: Answers, report: Report) -> bool:
        """Whether a mistaken run explains the answers: every given step it computes matches
        it (the right steps stay right), a wrong step is among them, and the wrong steps are
        closer to it than to the correct run."""
        try:
            graded = grade(mistaken, answers, self.rtol, self.atol, skip_missing=True)
        except InputError:
            return False
        wrong = {v.step: v for v in report.verdicts if not v.ok}
        judged = [v for v in graded.verdicts if v.step in wrong]
        if not judged or not all(v.ok for v in graded.verdicts):
            return False
        return sum(_distance(v) for v in judged) < sum(_distance(wrong[v.step]) for v in judged)


def _distance(verdict: StepVerdict) -> float:
    if verdict.given.shape != verdict.expected.shape:
        return math.inf
    finite = np.isfinite(verdict.given) & np.isfinite(verdict.expected)
    return float(np.sum((verdict.given[finite] - verdict.expected[finite]) ** 2))


def _same_numbers(one: Trace, other: Trace, answers: Answers) -> bool:
    steps = [s for s in answers.steps if s in one and s in other]
    return bool(steps) and all(one[s].shape == other[s].shape and np.allclose(
        one[s], other[s], rtol=1e-12, atol=1e-12) for s in steps)


def _rounded_weights_behind(trace: Trace, answers: Answers, report: Report,
                            rtol: float | None, atol: float | None) -> Diagnosis | None:
    """A wrong context of one head that is the values times weights rounded to k decimals, up
    or down (seed 004 writes its weight 0.0634 as 0.0): each weight is tried at its two
    neighbours on the k-decimal grid, for rows of at most ``_MAX_KEYS`` keys."""
    verdict = next((v for v in report.verdicts if v.step == "context" and not v.ok), None)
    if (verdict is None or verdict.given.shape != verdict.expected.shape
            or trace.config["heads"] != 1 or "dropped_weights" in trace
            or trace["values"].ndim != 2 or trace["values"].shape[0] > _MAX_KEYS):
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
            # the answer must be these weights' context as correctly rounded as it is written
            limit = (0.5 * unit(digits) * (1 + 1e-9) if rtol is None and atol is None
                     else tolerance(context, digits, rtol, atol))
            match = next((np.array(c) / 10.0 ** k for c in itertools.product(*grid)
                          if np.all(np.abs(np.array(c) / 10.0 ** k @ values - context)
                                    <= limit)), None)
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
