"""The seed documents' worked examples, with the arithmetic done by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attncli import attend, load_problem
from attncli.config import AttentionConfig, Score, from_variant
from attncli.problem import Problem

HELLO = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]


def test_seed_000_hello_shiny_sun_context_of_shiny():
    # Seed 000, "Hello shiny sun!": no projections, unscaled dot product, query "shiny".
    # Scores of shiny = [0.53, 0.34, 0.98] with every token:
    #   Hello: 0.53×0.34 + 0.34×0.22 + 0.98×0.54 = 0.1802 + 0.0748 + 0.5292 = 0.7842
    #   shiny: 0.53² + 0.34² + 0.98²            = 0.2809 + 0.1156 + 0.9604 = 1.3569
    #   sun:   0.53×0.29 + 0.34×0.54 + 0.98×0.93 = 0.1537 + 0.1836 + 0.9114 = 1.2487
    # exp: e^0.7842 = 2.19065, e^1.3569 = 3.88413, e^1.2487 = 3.48581; sum = 9.56060
    # weights: 2.19065/9.56060 = 0.229134, 0.406265, 0.364602
    # context = 0.229134·Hello + 0.406265·shiny + 0.364602·sun
    #   dim 0: 0.229134×0.34 + 0.406265×0.53 + 0.364602×0.29 = 0.077905 + 0.215320 + 0.105734
    #        = 0.398960
    #   dim 1: 0.229134×0.22 + 0.406265×0.34 + 0.364602×0.54 = 0.050409 + 0.138130 + 0.196885
    #        = 0.385424
    #   dim 2: 0.229134×0.54 + 0.406265×0.98 + 0.364602×0.93 = 0.123732 + 0.398140 + 0.339079
    #        = 0.860951
    # The seed publishes [0.3992, 0.3858, 0.8610]: it rounded the weighted embeddings first.
    trace = attend(Problem.from_mapping({"x": HELLO, "tokens": ["Hello", "shiny", "sun"]}, "t"),
                   from_variant("simple"))
    np.testing.assert_allclose(trace["scores"][1], [0.7842, 1.3569, 1.2487], atol=1e-12)
    np.testing.assert_allclose(trace["weights"][1], [0.229134, 0.406265, 0.364602], atol=1e-6)
    np.testing.assert_allclose(trace["context"][1], [0.398960, 0.385424, 0.860951], atol=1e-6)
    # ...and the published numbers agree to the third decimal only.
    np.testing.assert_allclose(trace["context"][1], [0.3992, 0.3858, 0.8610], atol=5e-4)
    assert "scaled_scores" not in trace  # the simple variant does not scale


def test_seed_000_sample_matches_the_hand_computation():
    trace = attend(load_problem(sample="hello-shiny-sun"))
    assert trace.query_tokens == ["Hello", "shiny", "sun"]
    np.testing.assert_allclose(trace["context"][1], [0.398960, 0.385424, 0.860951], atol=1e-6)


SEED_004 = {
    "x": [[1, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]],
    "W_k": [[0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]],
    "W_q": [[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]],
    "W_v": [[0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]],
}


def test_seed_004_keys_queries_values():
    # keys = x W_k: Input 1 [1,0,1,0] picks rows 0 and 2 of W_k: [0,0,1] + [0,1,0] = [0,1,1]
    #               Input 2 [0,2,0,2]: 2·[1,1,0] + 2·[1,1,0] = [4,4,0]
    #               Input 3 [1,1,1,1]: sum of the rows = [2,3,1]
    # queries = x W_q: [1,0,2], [2,2,2], [2,1,3]; values = x W_v: [1,2,3], [2,8,0], [2,6,3]
    trace = attend(Problem.from_mapping(SEED_004, "seed004"), AttentionConfig(score=Score.dot))
    np.testing.assert_array_equal(trace["keys"], [[0, 1, 1], [4, 4, 0], [2, 3, 1]])
    np.testing.assert_array_equal(trace["queries"], [[1, 0, 2], [2, 2, 2], [2, 1, 3]])
    np.testing.assert_array_equal(trace["values"], [[1, 2, 3], [2, 8, 0], [2, 6, 3]])


def test_seed_004_weights_and_output_1():
    # Scores of Input 1's query [1,0,2] with the keys: [0+0+2, 4+0+0, 2+0+2] = [2, 4, 4]
    # softmax: e² = 7.389056, e⁴ = 54.598150 (twice); sum = 116.585356
    #   weights = [0.063379, 0.468311, 0.468311]; the seed rounds them to [0.0, 0.5, 0.5].
    # Output 1 = 0.063379·[1,2,3] + 0.468311·[2,8,0] + 0.468311·[2,6,3]
    #   = [0.063379 + 0.936621 + 0.936621, 0.126758 + 3.746484 + 2.809863, 0.190137 + 0 + 1.404932]
    #   = [1.936621, 6.683105, 1.595069]   (the seed, with rounded weights: [2.0, 7.0, 1.5])
    trace = attend(Problem.from_mapping(SEED_004, "seed004"), AttentionConfig(score=Score.dot))
    np.testing.assert_array_equal(trace["scores"][0], [2, 4, 4])
    e2, e4 = math.exp(2), math.exp(4)
    np.testing.assert_allclose(trace["weights"][0], np.array([e2, e4, e4]) / (e2 + 2 * e4), rtol=1e-14)
    np.testing.assert_allclose(trace["weights"][0], [0.063379, 0.468311, 0.468311], atol=1e-6)
    np.testing.assert_allclose(trace["context"][0], [1.936621, 6.683105, 1.595068], atol=1e-5)
    # The seed's published weights [0.0, 0.5, 0.5] give its published Output 1 [2.0, 7.0, 1.5].
    # They are not the weights rounded to one decimal (0.063 rounds to 0.1, which would give
    # [2.1, 7.2, 1.8]); they sum to 1, like weights rounded and renormalised.
    np.testing.assert_allclose(np.array([0.0, 0.5, 0.5]) @ trace["values"], [2.0, 7.0, 1.5])
    np.testing.assert_allclose(np.round(trace["weights"][0], 1) @ trace["values"], [2.1, 7.2, 1.8])


def test_seed_004_scaled_by_default_with_projections():
    # With projections and no --no-scale the scores are divided by √d_k = √3:
    # row 1 [2, 4, 4] / 1.7320508 = [1.154701, 2.309401, 2.309401]
    trace = attend(Problem.from_mapping(SEED_004, "seed004"))
    np.testing.assert_allclose(trace["scaled_scores"][0], [1.154701, 2.309401, 2.309401],
                               atol=1e-6)


def test_seed_004_sample_carries_its_unscaled_config():
    problem = load_problem(sample="three-inputs")
    assert problem.config == {"score": Score.dot}
    trace = attend(problem, AttentionConfig(**problem.config))
    np.testing.assert_allclose(trace["weights"][0], [0.063379, 0.468311, 0.468311], atol=1e-6)


@pytest.mark.parametrize("name", ["hello-shiny-sun", "three-inputs", "multihead-einsum",
                                  "translation-cross", "your-journey-causal"])
def test_every_sample_reproduces_its_expected_numbers(name):
    problem = load_problem(sample=name)
    assert problem.about, "every sample says what it is"
    assert problem.expected, "every sample carries expected numbers"
    config = dict(problem.config)
    trace = attend(problem, from_variant(config.pop("variant", None), **config))
    expected = dict(problem.expected)
    row = expected.pop("query", None)
    for step, numbers in expected.items():
        data = trace[step] if row is None else trace[step][trace.query_tokens.index(row)]
        np.testing.assert_allclose(data, numbers, atol=1e-6, err_msg=f"{name}: {step}")


def test_causal_sample_by_hand():
    # "Your journey starts with one step" (LLMs-from-scratch ch. 3), simple dot product, causal:
    # row 0 sees only itself → weights [1, 0, 0, 0, 0, 0].
    # row 1: scores journey·Your = 0.55×0.43 + 0.87×0.15 + 0.66×0.89 = 0.2365 + 0.1305 + 0.5874
    #        = 0.9544, journey·journey = 0.3025 + 0.7569 + 0.4356 = 1.495;
    #        weights = [1, e^(1.495−0.9544)] / (1 + e^0.5406) = [1, 1.717037] / 2.717037
    #        = [0.368048, 0.631952]
    trace = attend(load_problem(sample="your-journey-causal"), AttentionConfig(causal=True))
    np.testing.assert_array_equal(trace["weights"][0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(trace["masked_scores"][1, :2], [0.9544, 1.495], atol=1e-12)
    np.testing.assert_allclose(trace["weights"][1, :2], [0.368048, 0.631952], atol=1e-6)
    assert np.all(np.triu(trace["weights"], k=1) == 0)
    assert np.all(np.isneginf(trace["masked_scores"][np.triu_indices(6, k=1)]))
