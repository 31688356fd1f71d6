"""``attncli model`` on a tiny random model of every family it reads (tests/models/conftest.py),
against the model's own numbers computed here, independently of attncli.

The reference: the saved model loaded by transformers (``attn_implementation="eager"``,
float32), run once on the same ids with ``output_attentions=True`` (each layer's weights,
(1, H, n, n)) and a forward hook on each layer's output projection, found by the path the
model itself names (tests/models/conftest.py's ``out``): its input is the context (1, n, H·d),
its result the output (1, n, d_model). attncli recomputes each layer in float64 from the
float32 model's input and weights; the model's float32 rounding leaves |Δ| near 1e-7, and the
tests allow 1e-5 relative to max(1, |value|). Every family detail left out moves some number
by more than 1e-3 (test_a_wrong_detail_disagrees), so 1e-5 cannot pass by chance.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app
from tests.models.conftest import INPUT_IDS, LAYERS, TINY, Tiny, own_numbers

runner = CliRunner()
IDS = ",".join(map(str, INPUT_IDS))
#: --query 35: without a tokenizer the labels are the ids; 35 is the 7th token, row 6 (on the
#: sliding layers it sees rows 3 … 6 only)
QUERY, ROW = "35", INPUT_IDS.index(35)
TOLERANCE = 1e-5  # |Δ| ≤ 1e-5 · max(1, |model's value|)
COMPARED = ("weights", "context", "output")

_REFERENCE: dict[str, dict[int, dict[str, np.ndarray]]] = {}


def model_numbers(transformers, tiny: Tiny, path: Path) -> dict[int, dict[str, np.ndarray]]:
    """Layer → the model's own weights (H, n, n), context (n, H·d_head), output (n, d_model),
    float64, from one eager forward pass over :data:`INPUT_IDS` (cached per model)."""
    import torch

    if tiny.name in _REFERENCE:
        return _REFERENCE[tiny.name]
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="eager",
                                                   dtype=torch.float32).eval()
    assert model.config.num_hidden_layers == LAYERS
    numbers = own_numbers(model, tiny.out, INPUT_IDS, range(LAYERS))
    _REFERENCE[tiny.name] = numbers
    return numbers


def steps_of(document: dict) -> dict[str, np.ndarray]:
    """A layer's JSON document's compared steps as arrays of their own shapes."""
    steps = document["steps"]
    return {name: np.asarray(steps[name]["data"], dtype=float).reshape(steps[name]["shape"])
            for name in COMPARED}


def assert_close(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], where: str):
    for name in COMPARED:
        assert ours[name].shape == theirs[name].shape, (where, name)
        delta = np.abs(ours[name] - theirs[name])
        bound = TOLERANCE * np.maximum(1.0, np.abs(theirs[name]))
        assert np.all(delta <= bound), f"{where} {name}: max |Δ| {delta.max():.2e}"


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("name", list(TINY))
def test_every_layer_agrees_with_the_model(tiny_model, transformers, name):
    """--layer 0-1 (both layers: sliding and full ones where the family mixes them) and one
    query row (--query 35, row 6, of layer 0) against the model's own numbers."""
    tiny = TINY[name]
    path = tiny_model(name)
    theirs = model_numbers(transformers, tiny, path)
    # the reference is not trivial: the last row is far from uniform (1/10; some weight above
    # 2.5× that) and the layers differ
    assert np.max(theirs[0]["weights"][:, -1]) > 0.25
    assert np.max(np.abs(theirs[0]["weights"] - theirs[1]["weights"])) > 0.05

    result = invoke("model", path, "--input-ids", IDS, "--layer", "0-1", "--json")
    assert result.exit_code == 0, result.stderr
    assert "DISAGREES" not in result.stderr
    document = json.loads(result.stdout)
    assert document["model"]["family"] == tiny.family
    assert document["model"]["input_ids"] == list(INPUT_IDS)
    for layer in range(LAYERS):
        layer_document = document["layers"][str(layer)]
        assert layer_document["model"]["agreement"]["agrees"] is True
        assert_close(steps_of(layer_document), theirs[layer], f"{name} layer {layer}")

    result = invoke("model", path, "--input-ids", IDS, "--layer", "0", "--query", QUERY,
                    "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["query"] == QUERY
    # no tokenizer saved: the ids are the labels (the repeated 9 made unique), never the empty
    # tokenizer's Nones that transformers 5 builds for a family without tokenizer files
    assert document["tokens"] == ["3", "14", "15", "9", "26", "5", "35", "8", "9#2", "7"]
    row = {"weights": theirs[0]["weights"][:, ROW], "context": theirs[0]["context"][ROW],
           "output": theirs[0]["output"][ROW]}
    assert_close(steps_of(document), row, f"{name} layer 0 --query {QUERY}")


@pytest.mark.parametrize("name", list(TINY))
def test_saved_problem_computes_the_same_without_transformers(tiny_model, transformers,
                                                              monkeypatch, tmp_path, name):
    """--save-problem F.npz, then attncli compute F.npz with transformers made unimportable:
    the same weights, context and output to 1e-12 (the NPZ keeps every array and option)."""
    path = tiny_model(name)
    saved = tmp_path / "layer1.npz"
    result = invoke("model", path, "--input-ids", IDS, "--layer", "1", "--save-problem", saved,
                    "--json")
    assert result.exit_code == 0, result.stderr
    before = steps_of(json.loads(result.stdout))

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers → ImportError
    result = invoke("compute", saved, "--json")
    assert result.exit_code == 0, result.stderr
    after = steps_of(json.loads(result.stdout))
    for step in COMPARED:
        np.testing.assert_allclose(after[step], before[step], rtol=0, atol=1e-12)


def _drop(*keys: str):
    def change(problem, config):
        for key in keys:
            assert key in problem.arrays, key  # the detail is there to leave out
            del problem.arrays[key]
        return problem, config
    return change


def _options(**changes):
    return lambda problem, config: (problem, config.replace(**changes))


def _no_rope_scaling(problem, config):
    assert problem.rope_scaling
    problem.rope_scaling = None
    return problem, config


def _no_qk_norm(problem, config):
    problem, config = _drop("q_norm", "k_norm")(problem, config)
    return problem, config.replace(qk_norm=None, qk_norm_eps=1e-6, qk_norm_offset=0.0)


#: (model, layer, the detail left out or changed): each family's own details.
WRONG = [
    ("BERT", 0, "causal", _options(causal=True)),
    ("BERT", 1, "b_q", _drop("b_q")),
    ("BERT decoder", 1, "not causal", _options(causal=False)),
    ("GPT-2", 0, "not causal", _options(causal=False)),
    ("GPT-2", 1, "1/√d_head without 1/(layer + 1)", _options(scale=None)),
    ("Llama", 0, "llama3 scaling", _no_rope_scaling),
    ("Llama", 0, "a window Llama never applies", _options(window=3)),
    ("Mistral", 1, "window", _options(window=None)),
    ("Qwen2", 0, "window", _options(window=None)),
    ("Qwen2", 1, "window on the full layer", _options(window=3)),
    ("Qwen2", 0, "b_q", _drop("b_q")),
    ("Qwen2 bidirectional", 1, "causal", _options(causal=True)),
    ("Qwen2 bidirectional", 0, "the causal window's bound", _options(window=3)),
    ("Qwen3", 0, "per-head QK-norm", _no_qk_norm),
    ("Gemma 2", 0, "soft-cap", _options(softcap=None)),
    ("Gemma 2", 1, "query_pre_attn_scalar", _options(scale=None)),
    ("Gemma 2", 0, "window", _options(window=None)),
    ("Gemma 3", 0, "the full layers' θ", _options(rope_theta=1e6)),
    ("Gemma 3", 1, "the sliding layers' θ", _options(rope_theta=1e4)),
    ("Gemma 3", 1, "linear scaling", _no_rope_scaling),
    ("Gemma 3", 0, "(1 + w) offset", _options(qk_norm_offset=0.0)),
    ("Gemma 3", 0, "a soft-cap Gemma 3 never applies", _options(softcap=2.0)),
    ("Gemma 3 bidirectional", 0, "causal", _options(causal=True)),
    ("Gemma 3 bidirectional", 0, "window", _options(window=None)),
    ("OLMo2", 0, "whole QK-norm", _no_qk_norm),
    ("GPT-NeoX", 0, "partial rotary", _options(rotary_dim=None)),
    ("GPT-J", 0, "interleaved layout", _options(rope_layout="half")),
    ("GPT-J", 1, "rotary_dim", _options(rotary_dim=None)),
    ("Bloom", 0, "ALiBi", _options(alibi=False)),
    ("gpt-oss", 0, "sinks", _drop("sinks")),
    ("gpt-oss", 1, "yarn scaling", _no_rope_scaling),
    ("gpt-oss", 1, "b_k", _drop("b_k")),
    ("gpt-oss", 0, "window", _options(window=None)),
]


@pytest.mark.parametrize(("name", "layer", "detail", "change"), WRONG,
                         ids=[f"{n}-{layer}-{d}" for n, layer, d, _ in WRONG])
def test_a_wrong_detail_disagrees(tiny_model, transformers, monkeypatch, name, layer, detail,
                                  change):
    """One of the family's details dropped from the layer's input (attncli.models.layer
    wrapped): the numbers move away from the model's by > 1e-3, and attncli says so: exit
    status 1, DISAGREES on stderr, "agrees": false in the JSON."""
    from attncli.models import layer as layer_module

    path = tiny_model(name)
    theirs = model_numbers(transformers, TINY[name], path)[layer]
    right = layer_module.layer_problem

    def wrong(*args, **kwargs):
        problem, config, facts = right(*args, **kwargs)
        return (*change(problem, config), facts)

    monkeypatch.setattr(layer_module, "layer_problem", wrong)
    result = invoke("model", path, "--input-ids", IDS, "--layer", layer, "--json")
    assert result.exit_code == 1, result.stderr
    assert "DISAGREES with the model's own attention" in result.stderr
    document = json.loads(result.stdout)
    assert document["model"]["agreement"]["agrees"] is False
    ours = steps_of(document)
    assert max(np.max(np.abs(ours[s] - theirs[s])) for s in COMPARED) > 1e-3


def test_alibi_without_the_causal_mask_is_refused(tiny_model, tmp_path):
    """Bloom with is_causal: false adds m·j to every row (its ALiBi), which attncli's ALiBi
    (−m·|i − j|) matches only on causal rows: one line on stderr, exit 2, no traceback."""
    path = tiny_model("Bloom")
    copy = tmp_path / "bloom"
    copy.mkdir()
    for file in path.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "is_causal": False}))
    result = invoke("model", copy, "--input-ids", IDS, "--layer", "0")
    assert result.exit_code == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == ["attncli: error: Bloom without its causal mask (is_causal: false): its "
                      "ALiBi adds m·j to every row, which is attncli's −m·|i − j| only on "
                      "causal rows"]
    assert "Traceback" not in result.stderr
