"""RoPE in words: the conventions line (layout, θ, rotary dims, positions, scaling) and the
explain section that turns the first pair of one query row, both against numbers worked by
hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attncli import attend
from attncli.config import AttentionConfig, CausalAlign, RopeLayout
from attncli.explain import Difference, Kind, Number, Product, Section, Sum, explain
from attncli.problem import Problem
from attncli.render.explain import ExplainFormat, render_explain

# Tokens a, b, c one-hot, so q(c) = row 2 of W_q = [0.1, 0.6, −0.2, 0.4]; one head of width 4
# (R = 4: pairs (0, 2), (1, 3) in the half layout, (0, 1), (2, 3) interleaved).
WQ = [[0.5, 0.2, 0.1, 0.3], [0.3, -0.4, 0.2, 0.1], [0.1, 0.6, -0.2, 0.4], [0.2, 0.1, 0.3, -0.5]]
EYE = np.eye(4).tolist()
PROBLEM = {"x": EYE[:3], "W_q": WQ, "W_k": WQ, "W_v": EYE, "tokens": ["a", "b", "c"]}


def _rope_section(problem=PROBLEM, query="c", **options) -> tuple[Section, list[Section]]:
    trace = attend(Problem.from_mapping(problem, "rope.json"),
                   AttentionConfig(rope=True, **options))
    sections = explain(trace, query)
    return next(s for s in sections if s.title[0].startswith("RoPE")), sections


def _values(equation) -> list[float]:
    return [side.value for side in equation.sides if isinstance(side, Number)]


def test_the_first_pair_of_a_query_turned_with_its_numbers():
    section, _ = _rope_section()
    position, angle, cos, sin, first, second = section.equations
    # query c sits at position 2; angle = 2 × θ^(−2·0/4) = 2 × 1 = 2 radians
    assert position.sides == (Number(2, Kind.option),)
    assert angle.name == "angle = position × θ^(−2·0/4)"
    assert angle.sides[0] == Product((Number(2, Kind.option), Number(1.0, Kind.option)))
    assert _values(angle) == [2.0]
    # cos 2 = −0.4161468, sin 2 = 0.9092974
    assert _values(cos)[0] == pytest.approx(-0.4161468, abs=1e-7)
    assert _values(sin)[0] == pytest.approx(0.9092974, abs=1e-7)
    # (x_a, x_b) = (q[0], q[2]) = (0.1, −0.2):
    # q′[0] = 0.1 × (−0.4161468) − (−0.2) × 0.9092974 = −0.0416147 + 0.1818595 = 0.1402448
    # q′[2] = 0.1 × 0.9092974 + (−0.2) × (−0.4161468) = 0.0909297 + 0.0832294 = 0.1741591
    assert (first.name, second.name) == ("q′[0]", "q′[2]")
    assert isinstance(first.sides[0], Difference) and isinstance(second.sides[0], Sum)
    xa, c = first.sides[0].left.factors
    xb, s = first.sides[0].right.factors
    assert (xa.value, xb.value) == pytest.approx((0.1, -0.2))
    assert (c.value, s.value) == pytest.approx((-0.4161468, 0.9092974), abs=1e-7)
    assert _values(first)[-1] == pytest.approx(0.1402448, abs=1e-7)
    assert _values(second)[-1] == pytest.approx(0.1741591, abs=1e-7)
    # the other pair turns by 2 × 10000^(−2/4) = 2 × 0.01 = 0.02
    others = section.notes[1]
    assert "the other pair i = 1 turns the same way" in others[0]
    assert others[1].value == pytest.approx(0.02)


def test_the_section_written_as_text():
    _, sections = _rope_section()
    text = render_explain(sections, ExplainFormat.text, precision=4)
    assert "  angle = position × θ^(−2·0/4) = 2 × 1 = 2" in text
    assert "  cos(angle) = −0.4161" in text and "  sin(angle) = 0.9093" in text
    assert "  q′[0] = 0.1000 × (−0.4161) − (−0.2000) × 0.9093 = 0.1402" in text
    assert "  q′[2] = 0.1000 × 0.9093 + (−0.2000) × (−0.4161) = 0.1742" in text
    latex = render_explain(sections, ExplainFormat.latex, precision=4)
    assert r"0.1000 \times (-0.4161) - (-0.2000) \times 0.9093 = 0.1402" in latex


def test_interleaved_turns_dims_0_and_1():
    section, _ = _rope_section(query="b", rope_layout=RopeLayout.interleaved)
    # q(b) = [0.3, −0.4, 0.2, 0.1] at position 1: pair (0, 1), angle 1 rad
    # cos 1 = 0.5403023, sin 1 = 0.8414710
    # q′[0] = 0.3 × 0.5403023 − (−0.4) × 0.8414710 = 0.1620907 + 0.3365884 = 0.4986791
    # q′[1] = 0.3 × 0.8414710 + (−0.4) × 0.5403023 = 0.2524413 − 0.2161209 = 0.0363204
    *_, first, second = section.equations
    assert (first.name, second.name) == ("q′[0]", "q′[1]")
    assert _values(first)[-1] == pytest.approx(0.4986791, abs=1e-7)
    assert _values(second)[-1] == pytest.approx(0.0363204, abs=1e-7)
    assert "interleaved: pair i is dims (2i, 2i + 1)" in section.notes[0][0]


def test_partial_rotary_and_only_the_first_head():
    problem = {**PROBLEM, "W_q": np.tile(WQ, 2).tolist(), "W_k": np.tile(WQ, 2).tolist(),
               "W_v": np.tile(EYE, 2).tolist()}
    trace = attend(Problem.from_mapping(problem, "rope.json"),
                   AttentionConfig(heads=2, rope=True, rotary_dim=2))
    sections = explain(trace, "c")
    ropes = [s for s in sections if s.title[0].startswith("RoPE")]
    assert [s.title[0] for s in ropes] == ["RoPE (c, head 0)"]  # the angles are every head's
    # R = 2: the one pair (0, 1), q(c) head 0 = [0.1, 0.6, −0.2, 0.4], angle 2
    # q′[0] = 0.1 cos 2 − 0.6 sin 2 = −0.0416147 − 0.5455785 = −0.5871932
    *_, first, _second = ropes[0].equations
    assert first.name == "q′[0]" and _values(first)[-1] == pytest.approx(-0.5871932, abs=1e-7)
    notes = [n[0] for n in ropes[0].notes]
    assert "this is the only pair (R = 2)" in notes
    assert "dims 2 … 3 of the head are not turned (partial rotary)" in notes


def test_yarn_multiplies_cos_and_sin_by_its_attention_factor():
    problem = {**PROBLEM, "rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                           "original_max_position_embeddings": 16}}
    section, _ = _rope_section(problem)
    gain = 0.1 * math.log(4.0) + 1  # YaRN's mscale: 1.1386294
    cos = section.equations[2]
    assert cos.sides[0].factors[1] == Number(pytest.approx(gain), Kind.option)
    assert _values(cos)[-1] == pytest.approx(math.cos(2.0) * gain)  # f_0 stays 1 in yarn
    assert section.equations[1].name == "angle = position × f_0"


def test_no_rope_no_section():
    trace = attend(Problem.from_mapping(PROBLEM, "rope.json"), AttentionConfig())
    assert not any(s.title[0].startswith("RoPE") for s in explain(trace, "c"))
    assert "rope" not in trace.conventions


def test_the_conventions_line():
    trace = attend(Problem.from_mapping(PROBLEM, "rope.json"), AttentionConfig(rope=True))
    assert trace.conventions["rope"] == (
        "RoPE on queries and keys after the projection: pair i of all 4 dims of each head "
        "turned by position × θ^(−2i/4), θ = 10000, i = 0 … 1; layout half: pair i is dims "
        "(i, i + 2) (Llama's and GPT-NeoX's rotate_half); queries at positions 0 … 2, keys at "
        "positions 0 … 2; no rope_scaling")


def test_the_conventions_line_bottom_right_partial_interleaved_scaled():
    problem = {**PROBLEM, "memory": EYE, "rope_scaling": {"rope_type": "linear", "factor": 2}}
    trace = attend(Problem.from_mapping(problem, "rope.json"),
                   AttentionConfig(rope=True, rotary_dim=2, rope_layout=RopeLayout.interleaved,
                                   rope_theta=500000.0, causal=True,
                                   causal_align=CausalAlign.bottom_right))
    line = trace.conventions["rope"]
    assert "the first 2 of the 4 dims of each head (partial rotary" in line
    assert "θ = 500000" in line and "layout interleaved" in line
    # 3 queries, 4 keys: the queries sit at positions 1 … 3
    assert ("queries at positions 1 … 3 (bottom-right: the queries sit at the end of the "
            "keys), keys at positions 0 … 3") in line
    assert line.endswith("rope_scaling linear, factor 2")


def test_the_conventions_line_with_given_positions():
    problem = {**PROBLEM, "positions": [5, 6, 7]}
    trace = attend(Problem.from_mapping(problem, "rope.json"), AttentionConfig(rope=True))
    assert "queries at the problem's positions, keys at positions 0 … 2" in (
        trace.conventions["rope"])
