"""Every mistake of check.MISTAKES diagnosed from answers worked by plain numpy in this file
(never by the pipeline's own slips), on one small problem where each mistake gives different
numbers; right answers get no diagnosis; one mistake is charged once."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest

from attncli import attend
from attncli.check import CARRIED, MISTAKES, RIGHT, ROUNDED, WRONG, Answers, Checker
from attncli.config import AttentionConfig
from attncli.problem import Problem

# Self-attention over 4 tokens of width 6; square projections (so x @ Wᵀ is possible), none
# symmetric; 2 heads of width 3, so √d_head = √3, d_head = 3 and √d_model = √6 all differ;
# causal; dropout 0.2 with the homework's own keep pattern (numpy can redo it); W_o of width 4.
RNG = np.random.default_rng(2024)
X = RNG.normal(size=(4, 6)).round(1)
WQ, WK, WV = (RNG.normal(size=(6, 6)).round(1) for _ in range(3))
WO = RNG.normal(size=(6, 4)).round(1)
KEEP = RNG.random((2, 4, 4)) > 0.2  # (heads, query, key), True = kept
P = 0.2
CAUSAL = np.tril(np.ones((4, 4), dtype=bool))  # query i sees keys j ≤ i
PROBLEM = Problem.from_mapping({"x": X, "W_q": WQ, "W_k": WK, "W_v": WV, "W_o": WO,
                                "dropout_mask": KEEP.astype(int)}, "mistakes.json")
CONFIG = AttentionConfig(heads=2, causal=True, dropout=P)
TRACE = attend(PROBLEM, CONFIG)
CHECKER = Checker(PROBLEM, CONFIG, TRACE)


def heads(a):
    """(4, 6) → (2, 4, 3): head h owns columns 3h … 3h + 2."""
    return a.reshape(4, 2, 3).transpose(1, 0, 2)


def softmax(s, axis=-1):
    """Softmax that gives zeros for a row (or column) with no finite score."""
    top = np.max(np.where(np.isfinite(s), s, -np.inf), axis=axis, keepdims=True)
    e = np.where(np.isfinite(s), np.exp(s - np.where(np.isfinite(top), top, 0)), 0.0)
    total = e.sum(axis=axis, keepdims=True)
    return e / np.where(total == 0, 1, total)


def worked(wq=WQ, wk=WK, wv=WV, divide=np.sqrt(3), mask=CAUSAL, fill=-np.inf, axis=-1,
           after_softmax=False, swap=False, values_are_keys=False, rescale=True, rounded=None,
           merge="concat", wo=WO):
    """Attention worked step by step in numpy, each keyword one way of getting it wrong."""
    q, k, v = heads(X @ wq), heads(X @ wk), heads(X @ wv)  # (2, 4, 3) each
    if values_are_keys:
        v = k
    if swap:
        q, k = k, q
    scaled = q @ k.transpose(0, 2, 1) / divide  # (2, 4, 4)
    masked = np.where(mask, scaled, fill)
    weights = softmax(scaled) * mask if after_softmax else softmax(masked, axis)
    if rounded is not None:
        weights = np.round(weights, rounded)
    dropped = weights * KEEP / ((1 - P) if rescale else 1)
    head_context = dropped @ v  # (2, 4, 3)
    context = (head_context.transpose(1, 0, 2).reshape(4, 6) if merge == "concat"
               else head_context.mean(axis=0))
    steps = {"scaled_scores": scaled, "masked_scores": masked, "weights": weights,
             "dropped_weights": dropped, "context": context}
    if wo is not None:
        steps["output"] = context @ wo
    return steps


def answers(steps: dict, names, decimals: int = 6, query=None) -> Answers:
    """The steps written to ``decimals`` decimals, read as check reads a file."""
    raw = {name: np.round(steps[name], decimals).tolist() for name in names}
    if query is not None:
        raw["query"] = query
    return Answers.from_mapping(json.loads(json.dumps(raw), parse_float=Decimal), "a.json")


SHOWN = ("weights", "context", "output")
CASES = {
    "no_scaling": (worked(divide=1), SHOWN),
    "scaled_by_d_k": (worked(divide=3), SHOWN),
    "sqrt_d_model": (worked(divide=np.sqrt(6)), SHOWN),
    "softmax_wrong_axis": (worked(axis=-2), SHOWN),  # each column sums to 1
    "transposed_weights": (worked(wq=WQ.T, wk=WK.T, wv=WV.T), SHOWN),
    "transposed_W_q": (worked(wq=WQ.T), SHOWN),
    "transposed_W_k": (worked(wk=WK.T), SHOWN),
    "transposed_W_v": (worked(wv=WV.T), SHOWN),  # the weights stay right
    "keys_as_values": (worked(values_are_keys=True), SHOWN),
    "queries_keys_swapped": (worked(swap=True), SHOWN),  # scores = K Qᵀ
    "causal_forgotten": (worked(mask=np.ones((4, 4), bool)), SHOWN),
    "mask_inverted": (worked(mask=~CAUSAL), SHOWN),  # the last query sees no key: zeros
    "mask_zero_fill": (worked(fill=0.0), ("masked_scores", *SHOWN)),
    "mask_after_softmax": (worked(after_softmax=True), SHOWN),  # rows sum to less than 1
    "heads_averaged": (worked(merge="mean", wo=None), ("weights", "context")),  # (4, 3)
    "W_o_forgotten": (worked(wo=np.eye(6)), SHOWN),  # output = context, (4, 6)
    "dropout_not_rescaled": (worked(rescale=False), ("dropped_weights", "context")),
    # weights rounded before the weighted sum show in the context, the weights not written
    **{f"weights_rounded_{k}": (worked(rounded=k), ("context", "output")) for k in (4, 3, 2, 1)},
}


#: Mistakes that need a problem of their own, diagnosed from numpy answers in the file named.
ELSEWHERE = {"gqa_grouping_mod": "tests/attention/test_gqa.py",
             **{name: "tests/test_check_softcap.py" for name in (
                 "softcap_after_mask", "softcap_before_scaling", "window_off_by_one",
                 "window_off_by_one_short", "sqrt_d_head_for_scalar")},
             **{name: "tests/test_check_alibi.py" for name in (
                 "alibi_sign", "alibi_power_of_two_slopes")},
             "sinks_renormalised": "tests/test_check_sinks.py",
             **{name: "tests/test_check_rope.py" for name in (
                 "rope_other_layout", "rope_queries_only", "rope_positions_from_one")}}


def test_every_mistake_has_a_case():
    assert sorted([*CASES, *ELSEWHERE]) == sorted(m.name for m in MISTAKES)


@pytest.mark.parametrize("name", list(CASES))
def test_every_mistake_is_diagnosed_from_numpy_answers(name):
    steps, shown = CASES[name]
    report = CHECKER.check(answers(steps, shown))
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.name == name


@pytest.mark.parametrize(("name", "shown"), [("no_scaling", "scaled_scores"),
                                           ("causal_forgotten", "masked_scores")])
def test_a_mistake_that_skips_a_step_is_diagnosed_where_that_step_is_written(name, shown):
    # Not dividing leaves no scaled_scores in the mistaken run, forgetting the mask no
    # masked_scores; the student writes them anyway, equal to the score step before them
    # (q kᵀ, and q kᵀ / √3 unmasked): the mistake enters there and is charged once.
    steps, _ = CASES[name]
    report = CHECKER.check(answers(steps, (shown, *SHOWN)))
    assert report.diagnosis is not None and report.diagnosis.name == name
    assert report.diagnosis.explains == [shown] and report.first_wrong == shown
    assert [v.verdict for v in report.verdicts] == ["wrong", *["carried forward"] * 3]


def test_right_answers_never_get_a_diagnosis():
    report = CHECKER.check(answers(worked(), ("masked_scores", "weights", "dropped_weights",
                                              "context", "output")))
    assert report.ok and report.diagnosis is None and report.first_wrong is None
    assert all(np.all(v.status == RIGHT) for v in report.verdicts)


def test_unknown_numbers_get_no_false_diagnosis():
    report = CHECKER.check(answers({"context": worked()["context"] + 0.37}, ("context",)))
    assert not report.ok and report.diagnosis is None


@pytest.mark.parametrize("from_rounded", [True, False])
def test_one_mistake_is_charged_once(from_rounded):
    # masked scores filled with 0: the masked scores are wrong first; the weights and the
    # context follow from them, whether the student went on from the numbers as written
    # (from_rounded) or from the unrounded ones (then only the mistake explains them).
    mistaken = worked(fill=0.0)
    if from_rounded:
        written = np.round(mistaken["masked_scores"], 6)
        weights = np.round(softmax(written), 6)
        mistaken = {"masked_scores": written, "weights": weights,
                    "context": (weights * KEEP / (1 - P) @ heads(X @ WV)).transpose(
                        1, 0, 2).reshape(4, 6)}
    report = CHECKER.check(answers(mistaken, ("masked_scores", "weights", "context")))
    assert [v.verdict for v in report.verdicts] == ["wrong", "carried forward",
                                                    "carried forward"]
    assert report.first_wrong == "masked_scores"
    assert report.diagnosis.name == "mask_zero_fill"
    masked, weights, context = report.verdicts
    # the 6 masked entries of each of the 2 heads, written 0 instead of −∞, are the mistake
    assert masked.counts.wrong == 12 and np.all((masked.status == WRONG) == ~CAUSAL)
    assert weights.carried_from == "masked_scores" and weights.counts.wrong == 0
    # the last query masks no key: its weights stay right, its context right or (worked from
    # the 6-decimal weights) within rounding; the other rows follow from the mistake
    assert np.all(weights.status[:, 3] == RIGHT)
    assert np.all(np.isin(context.status[3], [RIGHT, ROUNDED]))
    assert np.all(weights.status[:, :3] == CARRIED) and np.all(context.status[:3] == CARRIED)
    assert report.counts.wrong == 12


def test_mistakes_that_coincide_are_named_together():
    # 2 heads of width 2: √d_model = √4 = 2 = d_head, so dividing by d_head and by √d_model
    # give the same numbers
    rng = np.random.default_rng(11)
    x, wq, wk, wv = (rng.normal(size=s).round(2) for s in ((3, 4), (4, 4), (4, 4), (4, 4)))
    problem = Problem.from_mapping({"x": x, "W_q": wq, "W_k": wk, "W_v": wv}, "p.json")
    q, k, v = ((x @ w).reshape(3, 2, 2).transpose(1, 0, 2) for w in (wq, wk, wv))
    context = (softmax(q @ k.transpose(0, 2, 1) / 2) @ v).transpose(1, 0, 2).reshape(3, 4)
    config = AttentionConfig(heads=2)
    report = Checker(problem, config, attend(problem, config)).check(
        answers({"context": context}, ("context",)))
    assert report.diagnosis.name == "scaled_by_d_k"
    assert "same numbers as: the scores were divided by √d_model" in report.diagnosis.sentence()


def test_dropout_without_a_seed_is_diagnosed_with_the_runs_own_mask():
    # no seed and no dropout_mask: the run draws one; the student used that pattern (read
    # off the run's dropped weights) without the 1/(1 − p)
    problem = Problem.from_mapping({"x": X, "W_q": WQ, "W_k": WK, "W_v": WV}, "p.json")
    config = AttentionConfig(heads=2, causal=True, dropout=P)
    trace = attend(problem, config)
    keep = trace["dropped_weights"] != 0
    context = (trace["weights"] * keep @ heads(X @ WV)).transpose(1, 0, 2).reshape(4, 6)
    report = Checker(problem, config, trace).check(answers({"context": context}, ("context",)))
    assert report.diagnosis.name == "dropout_not_rescaled"
