"""attncli.grade, the Python API for notebook autograders: points per step from check's
verdicts, on a problem worked by hand here.

The problem: two tokens a, b with x = [[1, 0], [0, 1]] and the simple variant (no projection,
unscaled dot product): scores = x xᵀ = I, so each row of weights is softmax([1, 0]) or
softmax([0, 1]): e/(e + 1) = 0.731059, 1/(e + 1) = 0.268941; the context is weights x, the
same numbers.
"""

from __future__ import annotations

import math

import pytest

import attncli
from attncli.errors import InputError
from attncli.teach.classroom import parse_points

PROBLEM = {"tokens": ["a", "b"], "x": [[1, 0], [0, 1]], "config": {"variant": "simple"}}
BIG, SMALL = math.e / (math.e + 1), 1 / (math.e + 1)
RIGHT = [[0.7311, 0.2689], [0.2689, 0.7311]]


def test_right_answers_earn_every_point():
    grade = attncli.grade(PROBLEM, {"weights": RIGHT, "context": RIGHT})
    assert grade.ok
    assert grade.steps == {"weights": 1.0, "context": 1.0}
    assert grade.points == grade.max == 2.0
    assert grade.first_wrong is None and grade.diagnosis == ""


def test_one_wrong_weight_row_costs_half_the_weights_and_the_context_carries_forward():
    # b's row written [0.5, 0.5]: 2 of 4 entries wrong; the context worked from those weights
    # (b's row 0.5·[1, 0] + 0.5·[0, 1]) is carried forward, not wrong
    weights = [[0.7311, 0.2689], [0.5, 0.5]]
    grade = attncli.grade(PROBLEM, {"weights": weights, "context": weights},
                          points={"weights": 2})
    assert grade.steps == {"weights": pytest.approx(1.0), "context": pytest.approx(1.0)}
    assert grade.max == 3.0 and grade.points == pytest.approx(2.0)
    assert grade.first_wrong == "weights" and not grade.ok
    assert "2.0/3 points" not in grade.summary()  # points as a grader writes them
    assert grade.summary().startswith("2/3 points; first wrong step: weights")


def test_a_step_not_answered_earns_nothing_and_is_named():
    grade = attncli.grade(PROBLEM, {"weights": RIGHT}, steps=["weights", "context"])
    assert grade.steps == {"weights": 1.0, "context": None}
    assert grade.points == 1.0 and grade.max == 2.0 and not grade.ok
    assert grade.first_wrong is None and grade.note == "not answered: context"
    assert grade.summary() == "1/2 points; not answered: context"


def test_one_query_row_and_numpy_arrays():
    np = pytest.importorskip("numpy")
    grade = attncli.grade(PROBLEM, {"query": "b", "weights": np.array([SMALL, BIG])})
    assert grade.ok and grade.steps == {"weights": 1.0}
    grade = attncli.grade(PROBLEM, {"weights": np.array([BIG, SMALL])}, query="b")
    assert grade.steps == {"weights": 0.0}  # a's row given as b's: both entries wrong


@pytest.mark.parametrize(("text", "expected"), [
    ("weights=2,context=3", {"weights": 2.0, "context": 3.0}),
    (" weights = 0.5 ,", {"weights": 0.5}),
    (None, {}),
])
def test_points_are_parsed(text, expected):
    assert parse_points(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("weights", "expected STEP=POINTS"),
    ("wieghts=2", "expected STEP=POINTS"),
    ("weights=-1", "points must be a number ≥ 0"),
    ("weights=nan", "points must be a number ≥ 0"),
    ("weights=1,weights=2", "weights given twice"),
])
def test_bad_points_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse_points(text)
