"""Attention sinks (gpt-oss): the problem key ``sinks`` (H,), one more softmax column per head
that is dropped, and the step ``sink_weights``. Worked by hand, against torch written out by
hand (the concatenated sink column, softmax, the column dropped), in query blocks, for one
--query row, on both backends. (Parity with gpt-oss's own attention:
tests/transformers/test_gpt_oss.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from attncli import AttentionConfig, attend
from attncli.attention import blocks
from attncli.config import Backend, Normalize
from attncli.errors import ConfigError, InputError
from attncli.problem import Problem

X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_sinks_by_hand():
    # Q = K = V = x, dot scores unscaled: x xᵀ = [[1, 0, 1], [0, 1, 1], [1, 1, 2]], causal;
    # sink logit 0.5, e^0.5 = 1.6487213.
    # row 0: [e^1 | e^0.5] / (2.7182818 + 1.6487213) = [0.6224593 | 0.3775407]
    # row 1: [e^0, e^1 | e^0.5] / 5.3670031 = [0.1863237, 0.5064804 | 0.3071959]
    # row 2: [e^1, e^1, e^2 | e^0.5] / 14.474341 = [0.1878000, 0.1878000, 0.5104934 | 0.1139065]
    trace = attend(Problem.from_mapping({"x": X, "sinks": [0.5]}, "p.json"),
                   AttentionConfig(causal=True))
    assert trace.names() == ["queries", "keys", "values", "scores", "masked_scores", "weights",
                             "sink_weights", "context"]
    np.testing.assert_allclose(trace["weights"], [[0.6224593, 0, 0],
                                                  [0.1863237, 0.5064804, 0],
                                                  [0.1878000, 0.1878000, 0.5104934]], atol=1e-7)
    np.testing.assert_allclose(trace["sink_weights"], [0.3775407, 0.3071959, 0.1139065],
                               atol=1e-7)
    # each row gives the sink what it does not give the keys
    np.testing.assert_allclose(trace["weights"].sum(-1) + trace["sink_weights"], 1.0,
                               rtol=0, atol=1e-15)
    assert trace.step("sink_weights").axes == ("query",)
    assert "1 − sink_weights" in trace.conventions["softmax"]
    # the context is the weighted sum without the sink: row 0 = 0.6224593 · x_0
    np.testing.assert_allclose(trace["context"][0], [0.6224593, 0.0], atol=1e-7)


def test_the_sink_is_not_scaled_nor_masked_but_divided_by_the_temperature():
    # --scale 2, --temperature 4: the scores are × 2 then / 4, the sink logit 1.0 only / 4.
    # row 0 (one key, score 1): e^(2/4) / (e^(2/4) + e^(1/4)) = 1.6487213 / 2.9327467
    # = 0.5621765
    trace = attend(Problem.from_mapping({"x": X, "sinks": [1.0]}, "p.json"),
                   AttentionConfig(causal=True, scale=2.0, temperature=4.0))
    assert trace["weights"][0, 0] == pytest.approx(0.5621765, abs=1e-7)
    assert trace["sink_weights"][0] == pytest.approx(1 - 0.5621765, abs=1e-7)
    assert trace.step("sink_weights").formula == (
        "sink_weights = exp(sink_h / 4) / (Σ_j exp(masked_scores / 4) + exp(sink_h / 4))")


def _by_hand_torch(torch, arrays, heads, scale, temperature, window):
    """gpt-oss's sink softmax written out in torch, float64: scores · scale, −∞ outside the
    causal window, the sink concatenated as one more column, the softmax (of the whole row /
    temperature), the column dropped."""
    x = torch.as_tensor(arrays["x"])  # (B, n, d_in)
    B, n, _ = x.shape

    def split(t):  # (B, n, H·d) → (B, H, n, d)
        return t.reshape(B, n, heads, -1).transpose(1, 2)

    q, k, v = (split(x @ torch.as_tensor(arrays[f"W_{c}"])) for c in "qkv")
    scores = q @ k.transpose(-1, -2) * scale
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    scores = scores.masked_fill(~((j <= i) & (i - j <= window)), float("-inf"))
    sinks = torch.as_tensor(arrays["sinks"]).reshape(1, heads, 1, 1).expand(B, heads, n, 1)
    probs = torch.softmax(torch.cat([scores, sinks], dim=-1) / temperature, dim=-1)
    weights, sink = probs[..., :-1], probs[..., -1]
    context = (weights @ v).transpose(1, 2).reshape(B, n, -1)
    return weights.numpy(), sink.numpy(), (context @ torch.as_tensor(arrays["W_o"])).numpy()


rng = np.random.default_rng(12)
ARRAYS = {"x": rng.normal(size=(2, 7, 8)), "sinks": np.array([-1.0, 0.3, 2.5]),
          **{f"W_{c}": rng.normal(size=(8, 6)) / 2 for c in "qkv"},
          "W_o": rng.normal(size=(6, 8)) / 2}


@pytest.mark.parametrize("backend", [Backend.numpy, Backend.torch])
def test_matches_torch_written_out_in_blocks_and_for_one_row(torch, monkeypatch, backend):
    config = AttentionConfig(heads=3, causal=True, window=3, scale=0.6, temperature=0.8,
                             backend=backend)
    weights, sink, output = _by_hand_torch(torch, ARRAYS, 3, 0.6, 0.8, 3)
    problem = Problem.from_mapping(ARRAYS, "p.json")
    whole = attend(problem, config)
    assert whole.run.path == "whole matrices"
    np.testing.assert_allclose(whole["weights"], weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(whole["sink_weights"], sink, rtol=0, atol=1e-12)
    np.testing.assert_allclose(whole["output"], output, rtol=0, atol=1e-12)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 2 * 7 * 8)  # blocks of two query rows
    blocked = attend(problem, config, steps=["sink_weights", "output"])
    assert blocked.run.path.startswith("query blocks of")
    np.testing.assert_allclose(blocked["sink_weights"], sink, rtol=0, atol=1e-12)
    np.testing.assert_allclose(blocked["output"], output, rtol=0, atol=1e-12)
    row = attend(problem, config, query=5)
    assert row.run.path == "one query row"
    np.testing.assert_allclose(row["sink_weights"][:, :, 0], sink[:, :, 5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(row["weights"][:, :, 0], weights[:, :, 5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(row["output"][:, 0], output[:, 5], rtol=0, atol=1e-12)


def test_a_row_with_no_key_gives_the_sink_everything():
    trace = attend(Problem.from_mapping({"x": X, "sinks": [-3.0],
                                         "mask": [[0, 0, 0], [1, 1, 0], [1, 1, 1]]}, "p.json"),
                   AttentionConfig())
    np.testing.assert_array_equal(trace["weights"][0], [0.0, 0.0, 0.0])
    assert trace["sink_weights"][0] == 1.0
    np.testing.assert_array_equal(trace["context"][0], [0.0, 0.0])


def test_a_large_sink_keeps_the_softmax_finite():
    # sink 800: exp(800) overflows float64, but the row maximum includes the sink: the keys
    # get exp(1 − 800) ≈ 0 and the sink 1
    trace = attend(Problem.from_mapping({"x": X, "sinks": [800.0]}, "p.json"),
                   AttentionConfig(causal=True))
    np.testing.assert_allclose(trace["sink_weights"], 1.0, rtol=0, atol=1e-300)
    assert np.all(np.isfinite(trace["weights"]))


def test_sinks_of_the_wrong_shape_and_without_the_softmax_are_refused():
    with pytest.raises(InputError, match=r"p.json: sinks: expected one sink logit per query "
                                         r"head \(2,\), got \(3,\)"):
        attend(Problem.from_mapping({"x": rng.normal(size=(3, 4)), "sinks": [1.0, 2.0, 3.0]},
                                    "p.json"), AttentionConfig(heads=2))
    with pytest.raises(ConfigError, match="needs --normalize softmax"):
        attend(Problem.from_mapping({"x": X, "sinks": [1.0]}, "p.json"),
               AttentionConfig(normalize=Normalize.hard))


def test_without_sinks_there_is_no_sink_step():
    trace = attend(Problem.from_mapping({"x": X}, "p.json"), AttentionConfig(causal=True))
    assert "sink_weights" not in trace
    assert not trace.run.sinks


def test_heatmaps_and_plots_say_the_sink_share(tmp_path):
    import io

    from rich.console import Console

    from attncli.render.heatmap import print_heatmaps

    problem = Problem.from_mapping({"x": X, "sinks": [0.5]}, "p.json")
    trace = attend(problem, AttentionConfig(causal=True))
    out = io.StringIO()
    print_heatmaps(trace, Console(file=out, width=80, color_system=None))
    # under the weights' grid: the least and the largest of sink_weights (test_sinks_by_hand)
    assert out.getvalue().splitlines()[-2] == "sink takes 0.1139 … 0.3775"
    alone = attend(problem, AttentionConfig(causal=True), steps=["weights"])
    out = io.StringIO()
    print_heatmaps(alone, Console(file=out, width=80, color_system=None))
    assert "rows < 1: the rest to the sink" in out.getvalue()
    pytest.importorskip("matplotlib")
    from attncli.render.plot import figure

    fig = figure(trace)
    assert fig.subfigs[0]._suptitle.get_text().endswith("\nsink takes 0.1139 … 0.3775")
    without = attend(Problem.from_mapping({"x": X}, "p.json"), AttentionConfig(causal=True))
    assert "sink" not in figure(without).subfigs[0]._suptitle.get_text()


def test_the_command_line_draws_the_share_and_writes_the_step(tmp_path):
    import json

    from typer.testing import CliRunner

    from attncli.cli import app

    path = tmp_path / "sinks.json"
    path.write_text(json.dumps({"x": X.tolist(), "sinks": [0.5]}))
    runner = CliRunner()
    drawn = runner.invoke(app, ["compute", str(path), "--causal", "--heatmap"])
    assert drawn.exit_code == 0, drawn.output
    assert "sink takes 0.1139 … 0.3775" in drawn.stdout
    # --steps weights alone: the heatmap asks for no sink_weights, and none is required
    drawn = runner.invoke(app, ["compute", str(path), "--causal", "--heatmap", "--steps",
                                "weights"])
    assert drawn.exit_code == 0 and "sink takes" in drawn.stdout
    data = json.loads(runner.invoke(app, ["compute", str(path), "--causal", "--json",
                                          "--steps", "sink_weights"]).stdout)
    assert data["steps"]["sink_weights"]["axes"] == ["query"]
    np.testing.assert_allclose(data["steps"]["sink_weights"]["data"],
                               [0.3775407, 0.3071959, 0.1139065], atol=1e-7)
    refused = runner.invoke(app, ["compute", str(path), "--format", "torch"])
    assert refused.exit_code == 2
    assert "attention sinks" in refused.stderr


def test_explain_puts_the_sinks_exponential_in_the_rows_sum():
    from attncli.explain import explain

    trace = attend(Problem.from_mapping({"x": X, "sinks": [0.5]}, "p.json"),
                   AttentionConfig(causal=True))
    sections = {section.title[0]: section for section in explain(trace, "2")}
    # row 2: e^1 + e^1 + e^2 + e^0.5 = 2.7182818 + 2.7182818 + 7.3890561 + 1.6487213
    exps = sections["Exponentials of the scores and the sink (2)"].equations
    assert exps[-1].name == "exp(sink)" and exps[-1].sides[-1].value == pytest.approx(1.6487213)
    (total,) = sections["Sum (2)"].equations
    assert [t.value for t in total.sides[0].terms] == pytest.approx(
        [2.7182818, 2.7182818, 7.3890561, 1.6487213])
    assert total.sides[-1].value == pytest.approx(14.474341)
    sink = sections["Weights (2)"].equations[-1]
    assert sink.name == "sink" and sink.sides[-1].value == pytest.approx(0.1139065)
    assert sections["Weights (2)"].notes  # the keys' weights sum to 1 − 0.1139 = 0.8861
