"""Grading as a human grader does: each given step compared with the exact values and with
the values that follow from the answers' own earlier steps, entry by entry.

An entry is right (the exact value as rounded to the decimals written), within rounding (what
follows from the answers' own rounded steps, or from steps not shown), carried forward (what
follows from an earlier wrong step: the mistake is charged once, where it entered) or wrong.
What follows from the answers' steps is computed by :func:`attncli.attend` with ``given``
(:class:`attncli.attention.given.Given`): the math stays in the pipeline; this module compares.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from attncli.answers import Answers
from attncli.errors import InputError
from attncli.tolerance import STAND_IN, UNSEEN_RTOL, UNSEEN_UNITS, Tolerance, within
from attncli.trace import N_BY_N, STEP_NAMES, Trace

#: Entry statuses (JSON's ``status`` arrays): right ✓, within rounding ≈, wrong ✗, carried
#: forward → (follows from an earlier wrong step).
RIGHT, ROUNDED, WRONG, CARRIED = 0, 1, 2, 3


@dataclass(frozen=True)
class Counts:
    """Entries by status; ``score`` is the fraction not wrong (partial credit per entry)."""

    right: int = 0
    rounded: int = 0
    carried: int = 0
    wrong: int = 0

    @classmethod
    def of(cls, status: np.ndarray) -> Counts:
        return cls(*(int(np.sum(status == s)) for s in (RIGHT, ROUNDED, CARRIED, WRONG)))

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(dataclasses.astuple(self),
                                              dataclasses.astuple(other), strict=True)))

    @property
    def entries(self) -> int:
        return self.right + self.rounded + self.carried + self.wrong

    @property
    def score(self) -> float:
        return (self.entries - self.wrong) / self.entries if self.entries else 0.0


@dataclass
class StepVerdict:
    """One given step: its numbers, the exact ones, those that follow from the answer's own
    previous steps (``carried``, None when no given step comes before), and each entry's
    status (:data:`RIGHT`, :data:`ROUNDED`, :data:`CARRIED`, :data:`WRONG`)."""

    step: str
    given: np.ndarray
    expected: np.ndarray
    status: np.ndarray
    decimals: np.ndarray  # per entry, as written
    axes: tuple[str, ...]
    verdict: str  # "right", "right within rounding", "carried forward", "wrong"
    note: str
    carried: np.ndarray | None = None
    carried_from: str | None = None  # the earlier step whose mistake this one carries
    unseen: bool = False  # a step it is computed from is not given (work not shown)

    @property
    def ok(self) -> bool:
        return not np.any(self.status == WRONG)

    @property
    def counts(self) -> Counts:
        return Counts.of(self.status)


@dataclass
class Diagnosis:
    name: str
    says: str
    explains: list[str]  # the steps where it entered: their wrong entries it reproduces
    detail: str = ""

    def sentence(self) -> str:
        text = f"{self.says} (this reproduces {', '.join(self.explains)})"
        return f"{text}; {self.detail}" if self.detail else text


@dataclass
class Report:
    """The verdicts of one answers file, in pipeline order, and the diagnosis if an entry is
    wrong."""

    file: str
    query: str | None
    verdicts: list[StepVerdict]
    diagnosis: Diagnosis | None = None
    error: str | None = None  # bad input in this file (batch grading keeps going)

    @property
    def ok(self) -> bool:
        """No entry wrong on its own (right, within rounding or carried forward)."""
        return self.error is None and all(v.ok for v in self.verdicts)

    @property
    def first_wrong(self) -> str | None:
        return next((v.step for v in self.verdicts if not v.ok), None)

    @property
    def counts(self) -> Counts:
        return sum((v.counts for v in self.verdicts), Counts())


# --- which steps a step is computed from ---------------------------------------------------

#: The query × key steps before the weights: scores and what modifies them.
_SCORE_STEPS = N_BY_N[:N_BY_N.index("weights")]
#: … less the bias, which is added to them, not computed from them.
_SCORES = tuple(s for s in _SCORE_STEPS if s != "bias")
_WEIGHT_STEPS = ("weights", "dropped_weights")


def inputs(trace: Trace, step: str) -> list[str]:
    """The steps of ``trace`` that ``step`` is computed from directly."""
    names = trace.names()
    before = names[:names.index(step)]
    last = lambda kinds: [next(s for s in reversed(before) if s in kinds)]  # noqa: E731
    if step in ("queries", "keys", "values"):
        return []
    if step == "scores":
        return ["queries", "keys"]
    if step == "bias":  # from the problem and the config alone
        return []
    if step == "biased_scores":  # the score step before it + the bias
        return [*last(_SCORES), "bias"]
    if step in _SCORE_STEPS or step == "weights":  # each from the score step before it
        return last(_SCORES)
    if step == "dropped_weights":
        return ["weights"]
    if step == "context" and "head_context" in before:
        return ["head_context"]
    if step in ("head_context", "context"):
        return [*last(_WEIGHT_STEPS), "values"]
    return ["context"]  # output


def upstream(trace: Trace, step: str, stop: Collection[str] = ()) -> list[str]:
    """Every step ``step`` depends on, in pipeline order; not looking past the steps in
    ``stop`` (they are included, what they depend on is not)."""
    found: set[str] = set()
    todo = inputs(trace, step)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += [] if name in stop else inputs(trace, name)
    return [s for s in trace.names() if s in found]


def _trivial(trace: Trace, step: str) -> bool:
    """queries, keys or values that are their input itself (no projection): nothing to round."""
    which = {"queries": "W_q", "keys": "W_k", "values": "W_v"}.get(step)
    return which is not None and which not in trace.run.projected


# --- grading ---------------------------------------------------------------------------------


def narrowed(trace: Trace, step: str, row: int | None):
    """A trace's numbers for a step, narrowed to the answers' query row, and their axes."""
    data = trace[step]
    axes = trace.step(step).axes
    if row is not None and "query" in axes:
        data = np.take(data, row, axis=axes.index("query"))
        axes = tuple(a for a in axes if a != "query")
    return data, tuple(axes)


def answer_row(trace: Trace, answers: Answers) -> int | None:
    """The query row the answers give, or None for every row.

    Raises: InputError naming the answers file for an unknown token or index.
    """
    if answers.query is None:
        return None
    try:
        return trace.query_index(answers.query)
    except InputError:
        raise InputError(f"{answers.file}: query {answers.query!r}: no such token or "
                         f"index; the queries are {', '.join(trace.query_tokens)}") from None


def laid_out(trace: Trace, answers: Answers, row: int | None) -> Answers:
    """Answers in the trace's layout where they are written in another usual one: a query
    row written as a 1 × n matrix; queries, keys, values or head_context written with the
    heads side by side, as x W_q is before it is split into heads.

    Shapes: one row's step (…, 1, …) at the query axis → without it; a per-head step
        (…, n, H·d), head h in columns h·d … (h+1)·d − 1 (as
        :func:`attncli.attention.scores.project` splits them) → the trace's (…, H, n, d);
        any other step or shape unchanged (graded as the wrong shape it is).
    """
    steps, decimals = dict(answers.steps), dict(answers.decimals)
    for step, given in answers.steps.items():
        if step in trace and (layout := _layout(trace, step, row, given.shape)) is not None:
            steps[step], decimals[step] = layout(given), layout(answers.decimals[step])
    return dataclasses.replace(answers, steps=steps, decimals=decimals)


def _layout(trace: Trace, step: str, row: int | None, shape: tuple[int, ...]):
    """The function that lays an answer of ``shape`` out as the trace's step, or None."""
    expected, axes = narrowed(trace, step, row)
    if shape == expected.shape:
        return None
    every_row = trace.step(step).axes
    if row is not None and "query" in every_row:
        q = every_row.index("query")
        if shape == (*expected.shape[:q], 1, *expected.shape[q:]):
            return lambda a: a.reshape(expected.shape)
    if step in ("queries", "keys", "values", "head_context") and "head" in axes:
        h = axes.index("head")
        apart = (*expected.shape[:h], *expected.shape[h + 1:-1], *expected.shape[h:h + 1],
                 expected.shape[-1])  # (…, n, H, d)
        if shape == (*apart[:-2], apart[-2] * apart[-1]):
            return lambda a: np.moveaxis(a.reshape(apart), -2, h)
    return None


def usable(trace: Trace, answers: Answers, row: int | None) -> dict[str, np.ndarray]:
    """The answered steps of the trace's shape: those that can stand in for its steps; an
    empty entry (NaN) by the exact value, since nothing follows from a blank."""
    found = {}
    for s, a in answers.steps.items():
        expected = narrowed(trace, s, row)[0] if s in trace else None
        if expected is not None and a.shape == expected.shape:
            found[s] = np.where(np.isnan(a), expected, a)
    return found


def follows(given: np.ndarray, reference: np.ndarray, decimals: np.ndarray,
            tolerance: Tolerance, unseen: bool = False) -> np.ndarray:
    """Per entry: ``given`` is ``reference`` as the tolerance allows, with the allowance for
    rounded steps not shown when ``unseen``; a number ≤ −1e4 stands in for −∞.

    Shapes: given, reference, decimals (written decimals per entry) all of one shape; returns
    a bool array of that shape.
    """
    allowed = tolerance.allowed(reference, decimals)
    if unseen and tolerance.by_hand:
        size = np.abs(np.where(np.isfinite(reference), reference, 0))
        units = 10.0 ** -np.asarray(decimals, dtype=np.float64)
        allowed = allowed + np.minimum(UNSEEN_RTOL * size, UNSEEN_UNITS * units)
    return within(given, reference, allowed) | _stands_in(given, reference)


def _stands_in(given: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.isneginf(reference) & np.isfinite(given) & (given <= STAND_IN)


def grade(trace: Trace, answers: Answers, tolerance: Tolerance | None = None,
          carried: Trace | None = None, rounded: Trace | None = None) -> Report:
    """Each answered step against the trace and, given ``carried`` (the run with the answers'
    steps in place, :class:`attncli.attention.given.Given`), against what follows from the
    answers' own previous steps; given ``rounded`` (that run with the steps not shown rounded
    to the answers' decimals), a step computed from steps not shown may also be what follows
    from them rounded. An answer of another shape is wrong.

    Shapes: each answered step as the trace holds it, or without its query axis for one row
        (``answers.query``); ``carried`` has the trace's steps and shapes.
    Returns: a Report, its verdicts in pipeline order, each entry's status one of RIGHT,
        ROUNDED, CARRIED, WRONG.
    Raises: InputError for an unknown query or a step this configuration does not compute.
    Source: a human grader's "error carried forward": a mistake costs the step where it
        entered, not the steps computed correctly from it.
    """
    tolerance = tolerance or Tolerance()
    row = answer_row(trace, answers)
    answers = laid_out(trace, answers, row)
    for step in answers.steps:
        if step not in trace:
            raise InputError(f"{answers.file}: {step}: this configuration computes no such "
                             f"step (it has {', '.join(trace.names())})")
    given = usable(trace, answers, row)
    verdicts: list[StepVerdict] = []
    for step in (s for s in STEP_NAMES if s in answers.steps):
        expected, axes = narrowed(trace, step, row)
        values, decimals = answers.steps[step], answers.decimals[step]
        if step not in given:  # a wrong answer too (averaged heads, a lost W_o …)
            where = f" for query {answers.query}" if row is not None else ""
            hint = ("; is it one query row? say which with \"query\" or --query"
                    if row is None and values.shape == expected.shape[1:] else "")
            verdicts.append(StepVerdict(
                step, values, expected, np.full(values.shape, WRONG), decimals, axes, "wrong",
                f"shape {tuple(values.shape)}, expected {tuple(expected.shape)}{where}{hint}"))
            continue
        unseen = any(s not in given and not _trivial(trace, s) for s in inputs(trace, step))
        before = [s for s in upstream(trace, step) if s in given]
        follow = None if carried is None or not before else narrowed(carried, step, row)[0]
        unshown = None if rounded is None or not unseen else narrowed(rounded, step, row)[0]
        feeding = [v for v in verdicts if v.step in _computed_from(trace, step, given)]
        verdicts.append(_grade_step(step, values, expected, follow, unshown, decimals, axes,
                                    unseen, before, feeding, verdicts, tolerance))
    return Report(answers.file, answers.query, verdicts)


def _grade_step(step, given, expected, carried, unshown, decimals, axes, unseen, before,
                feeding, graded, tolerance) -> StepVerdict:
    right = follows(given, expected, decimals, tolerance)
    unseen_ok = unseen & follows(given, expected, decimals, tolerance, unseen=True)
    from_own = (np.zeros(given.shape, bool) if carried is None
                else follows(given, carried, decimals, tolerance, unseen))
    if unshown is not None:  # what follows from the steps not shown, rounded as written
        from_rounded = follows(given, unshown, decimals, tolerance)
        unseen_ok = unseen_ok | (from_rounded & ~from_own & ~tainted_by(feeding, axes,
                                                                         given.shape))
        from_own = from_own | from_rounded
    tainted = tainted_by(feeding, axes, given.shape)
    status = np.where(right & ~_stands_in(given, expected), RIGHT,
                      np.where(right | unseen_ok | (from_own & ~tainted), ROUNDED,
                               np.where(from_own, CARRIED, WRONG)))
    source = next((v.carried_from or v.step for v in feeding
                   if np.any(tainted_by([v], axes, given.shape) & (status == CARRIED))), None)
    own = [s for s in before if s in {v.step for v in graded}]
    reasons = {
        "stand_in": bool(np.any((status == ROUNDED) & _stands_in(given, expected))),
        "own": bool(np.any((status == ROUNDED) & from_own & ~unseen_ok & ~right)),
        "unseen": bool(np.any((status == ROUNDED) & unseen_ok & ~right)),
    }
    verdict = StepVerdict(step, given, expected, status, decimals, axes, "", "", carried,
                          source, unseen)
    describe(verdict, reasons, own[-1] if own else None)
    return verdict


def _computed_from(trace: Trace, step: str, given: Mapping[str, np.ndarray]) -> set[str]:
    """The given steps that ``step`` is computed from, directly or through steps not given:
    a mistake reaches it only through them."""
    return {s for s in upstream(trace, step, stop=given) if s in given}


def tainted_by(wrong: list[StepVerdict], axes: tuple[str, ...], shape) -> np.ndarray:
    """Entries of a step (on ``axes``) that depend on a wrong or carried-forward entry of the
    steps ``wrong``: a query row depends on the same row before it; a step without a query
    axis (keys, values) reaches every row. Batch items and heads stay apart (until the
    heads are concatenated).

    Shapes: ``shape`` the step's (on ``axes``); returns a bool array of it.
    """
    tainted = np.zeros(shape, bool)
    for v in wrong:
        bad = (v.status == WRONG) | (v.status == CARRIED)
        keep = [a for a in ("batch", "head", "query") if a in v.axes and a in axes]
        drop = tuple(i for i, a in enumerate(v.axes) if a not in keep)
        rows = np.any(bad, axis=drop) if drop else bad  # over `keep`, in v's order
        if "head" in keep:  # G KV heads (keys, values) reach the H/G query heads of each
            h, heads = keep.index("head"), shape[axes.index("head")]
            rows = np.repeat(rows, heads // rows.shape[h], axis=h)
        view = [shape[i] if a in keep else 1 for i, a in enumerate(axes)]
        tainted |= np.broadcast_to(rows.reshape(view), shape)
    return tainted


def describe(v: StepVerdict, reasons: dict[str, bool], own: str | None) -> None:
    """The verdict word and the note of a graded step."""
    c = v.counts
    carried = "carried forward" + (f" from {v.carried_from}" if v.carried_from else "")
    parts = [f"{n} {word}" for n, word in ((c.right, "right"), (c.rounded, "within rounding"),
                                           (c.carried, carried), (c.wrong, "wrong")) if n]
    why = []
    if reasons.get("own") and own:
        why.append(f"follows from your rounded {own}")
    if reasons.get("unseen"):
        close = (v.status == ROUNDED) & np.isfinite(v.expected)
        k = int(v.decimals.max())
        units = np.max(np.abs(v.given[close] - v.expected[close])) * 10.0 ** k
        where = f"in the {_ordinal(k)} decimal" if k else "(whole numbers)"
        why.append(f"differs by up to {units:.0f} {where}, as rounding steps not shown does")
    if reasons.get("stand_in"):
        why.append("a large negative number stands in for −∞")
    v.verdict = ("wrong" if c.wrong else "carried forward" if c.carried
                 else "right within rounding" if c.rounded else "right")
    v.note = f"{', '.join(parts)} of {c.entries} entries" + (f"; {'; '.join(why)}" if why
                                                             else "")


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"
