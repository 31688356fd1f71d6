"""``attncli model``'s command line, on tiny random models built here (fast): each bad input is
one line on stderr and exit status 2; several layers are grouped per layer in every format;
a disagreement with the model is exit status 1; stdout carries results only; nothing is
downloaded; --device-map auto works on the CPU.

The models (:func:`models`): a BERT with a WordPiece tokenizer of :data:`WORDS` (its
vocabulary is 16 ids, the tokenizer's 12 and 4 it has no token for), 2 layers, d_model 32, 4
heads, 12 positions; and a Llama without tokenizer files (--input-ids only). Both float32,
from ``torch.manual_seed(0)``, their query and key weights ×12 so that the weights are far
from uniform.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app
from tests.models.conftest import own_numbers
from tests.transformers import conftest as parity

runner = CliRunner()

#: The BERT's tokenizer: "the cat sat on the mat" is [CLS] the cat sat on the mat [SEP] =
#: ids 2 5 6 7 8 5 9 3, labelled [CLS] the cat sat on the#2 mat [SEP].
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a",
         "dog"]
TEXT = "the cat sat on the mat"
IDS = [2, 5, 6, 7, 8, 5, 9, 3]
LABELS = ["[CLS]", "the", "cat", "sat", "on", "the#2", "mat", "[SEP]"]
VOCAB, POSITIONS, LAYERS, HEADS = 16, 12, 2, 4


def _transformers():
    """transformers, or a skip (a failure under CI), as tests/transformers/conftest.py's
    fixture; usable by a module-scoped fixture."""
    if parity.MISSING:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("transformers is not installed, but CI must run attncli model's tests: "
                        'pip install -e ".[test]" torch==2.13.0')
        pytest.skip("transformers is not installed (pip install transformers torch==2.13.0)")
    import transformers

    return transformers


def _save(transformers, config, folder: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(config, attn_implementation="eager")
    model = model.to(torch.float32).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("query.weight", "key.weight", "q_proj.weight", "k_proj.weight")):
                parameter.mul_(12.0)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """"bert" (with its tokenizer) and "llama" (no tokenizer files): their directories."""
    transformers = _transformers()
    root = tmp_path_factory.mktemp("tiny-models")
    bert = _save(transformers, transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, max_position_embeddings=POSITIONS), root / "bert")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    transformers.BertTokenizer(str(root / "vocab.txt")).save_pretrained(bert)
    llama = _save(transformers, transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=2, max_position_embeddings=64),
        root / "llama")
    return {"bert": bert, "llama": llama}


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def reference(path: Path, ids: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """The BERT's own numbers, independently of attncli: layer → weights (H, n, n) from
    ``output_attentions=True``, context (n, d_model) and output (n, d_model), the input and
    result of its output projection (a forward hook), float64."""

    transformers = _transformers()
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return own_numbers(model, "encoder.layer.{i}.attention.output.dense", ids, range(LAYERS))


def step(document: dict, name: str) -> np.ndarray:
    data = document["steps"][name]
    return np.asarray(data["data"], dtype=float).reshape(data["shape"])


def assert_error(result, message: str, exact: bool = True) -> None:
    """Exit status 2, nothing on stdout, and stderr exactly one line: the error, no
    traceback (and no notes: every one of these is found before the weights load)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    if exact:
        assert lines[0] == f"attncli: error: {message}"
    else:
        assert lines[0].startswith("attncli: error: ") and message in lines[0], lines[0]


# -- bad input: one line, exit 2 --------------------------------------------------------------

FAMILIES = ("BERT, GPT-2, Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3, OLMo2, GPT-NeoX, "
            "GPT-J, Bloom, gpt-oss")


def test_a_path_that_does_not_exist(models, tmp_path):
    missing = tmp_path / "no-such-model"
    assert_error(invoke("model", missing, "--text", TEXT, "--layer", "0"),
                 f"{missing}: no such model directory or .gguf file")


def test_a_hub_name_is_never_downloaded(models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder meta-llama/ here
    assert_error(invoke("model", "meta-llama/Llama-3-8B", "--text", TEXT, "--layer", "0"),
                 "meta-llama/Llama-3-8B: no such model directory or .gguf file; attncli never "
                 "downloads a model: download it first (hf download meta-llama/Llama-3-8B "
                 "--local-dir DIR) and pass DIR")


def test_a_file_that_is_not_gguf(models, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert_error(invoke("model", notes, "--text", TEXT, "--layer", "0"),
                 f"{notes}: not a model: give a Hugging Face model directory (config.json, "
                 "*.safetensors, tokenizer files) or a .gguf file")


def test_a_directory_without_config_json(models, tmp_path):
    assert_error(invoke("model", tmp_path, "--info"),
                 f"{tmp_path}: not a model directory: no config.json")


def test_an_unsupported_architecture_lists_the_families(models, tmp_path):
    transformers = _transformers()
    transformers.T5Config(vocab_size=VOCAB, d_model=32, d_ff=64, num_layers=1, num_heads=4,
                          d_kv=8).save_pretrained(tmp_path)
    assert_error(invoke("model", tmp_path, "--input-ids", "1,2", "--layer", "0"),
                 f"{tmp_path}: model_type 't5' is not an architecture attncli model reads; it "
                 f"reads {FAMILIES}")


def test_a_damaged_gguf_file(models, tmp_path):
    pytest.importorskip("gguf")
    damaged = tmp_path / "x.gguf"
    damaged.write_bytes(bytes(range(256)) * 16)  # 4 KiB of bytes, no GGUF magic
    assert_error(invoke("model", damaged, "--text", TEXT, "--layer", "0"),
                 f"{damaged}: cannot load the model: not a GGUF file, or a damaged one",
                 exact=False)
    truncated = tmp_path / "y.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00garbage")  # the magic, then too few bytes
    assert_error(invoke("model", truncated, "--info"),
                 f"{truncated}: cannot load the model: not a GGUF file, or a damaged one",
                 exact=False)


@pytest.mark.parametrize(("layer", "message"), [
    ("2", "--layer 2: layer 2 is out of range: the model has 2 layers, 0 … 1"),
    ("0-5", "--layer 0-5: layer 5 is out of range: the model has 2 layers, 0 … 1"),
    ("-3", "--layer -3: layer -3 is out of range: the model has 2 layers, 0 … 1"),
    ("one", "--layer 'one': expected a layer number, a range such as 0-5, or all"),
    ("0-", "--layer '0-': expected a layer number, a range such as 0-5, or all"),
    ("", "--layer '': expected a layer number, a range such as 0-5, or all"),
    ("1-0", "--layer 1-0: the range ends before it starts"),
])
def test_a_bad_layer(models, layer, message):
    assert_error(invoke("model", models["bert"], "--text", TEXT, "--layer", layer), message)


@pytest.mark.parametrize(("tokens", "message"), [
    (("--text", ""), "--text is empty: give a sentence"),
    (("--text", "  \n"), "--text is empty: give a sentence"),
    (("--input-ids", "2,99,3,16"), "--input-ids: 99, 16 outside the vocabulary, 0 … 15"),
    (("--input-ids", "2,-1"), "--input-ids: -1 outside the vocabulary, 0 … 15"),
    (("--input-ids", "two"), "--input-ids 'two': expected integers such as 101,7592,102"),
    (("--input-ids", ","), "--input-ids is empty: give at least one token id"),
    # 2 × 6 words + [CLS] and [SEP] = 14 tokens, 12 positions
    (("--text", f"{TEXT} {TEXT}"), "the text is 14 tokens, longer than the model's 12 "
                                    "positions (max_position_embeddings)"),
    (("--input-ids", ",".join(["5"] * 13)), "the text is 13 tokens, longer than the model's 12 "
                                            "positions (max_position_embeddings)"),
    ((), "give the tokens: --text TEXT or --input-ids 1,2,3 (one of them)"),
    (("--text", TEXT, "--input-ids", "2,3"),
     "give the tokens: --text TEXT or --input-ids 1,2,3 (one of them)"),
    (("--text", TEXT, "--query", "dog"), "--query 'dog': no such token or index; the queries "
     "are [CLS], the, cat, sat, on, the#2, mat, [SEP] (or 0 … 7, −1 for the last)"),
])
def test_bad_tokens(models, tokens, message):
    assert_error(invoke("model", models["bert"], *tokens, "--layer", "0"), message)


def test_text_without_a_tokenizer(models):
    assert_error(invoke("model", models["llama"], "--text", TEXT, "--layer", "0"),
                 f"{models['llama']}: no tokenizer files: give --input-ids")


@pytest.mark.parametrize(("more", "message"), [
    ((), "give --layer N (a number, a range such as 0-5, or all), or --info"),
    (("--layer", "0", "--head", "4"), "--head 4: out of range: layer 0 has 4 heads, 0 … 3"),
    (("--layer", "1", "--head", "-1"), "--head -1: out of range: layer 1 has 4 heads, 0 … 3"),
    (("--layer", "0-1", "--save-problem", "{tmp}/layers.npz"),
     "--save-problem writes one layer's problem, not 2: give one --layer"),
    (("--layer", "0", "--save-problem", "{tmp}/layer.json"),
     "--save-problem {tmp}/layer.json: the problem is an NPZ archive; name it .npz"),
    (("--layer", "all", "--format", "npz"),
     "--format npz holds one layer's steps: give one --layer (or use table, json, csv, "
     "markdown)"),
    (("--layer", "0,1", "-o", "{tmp}/steps.npz"),
     "--format npz holds one layer's steps: give one --layer (or use table, json, csv, "
     "markdown)"),
    (("--layer", "0-1", "--format", "torch"),
     "--format torch holds one layer's steps: give one --layer (or use table, json, csv, "
     "markdown)"),
    (("--layer", "0-1", "--plot", "{tmp}/weights.png"), "--plot draws one layer: give one "
                                                        "--layer"),
    (("--info", "--format", "csv"), "--info writes a table or JSON (--json), not --format csv"),
    (("--layer", "0", "--device-map", "somewhere"), None),
])
def test_bad_flags(models, tmp_path, more, message):
    """Each found before the weights load (no "loading" note), but for a --device-map
    transformers refuses, which only the load finds: then the notes come first."""
    more = [str(m).replace("{tmp}", str(tmp_path)) for m in more]
    result = invoke("model", models["bert"], "--text", TEXT, *more)
    if message is not None:
        assert_error(result, message.replace("{tmp}", str(tmp_path)))
        assert not list(tmp_path.iterdir())  # nothing written
        return
    assert result.exit_code == 2 and result.stdout == ""
    *notes, error = result.stderr.splitlines()
    assert all(line.startswith("attncli: note: loading ") for line in notes)
    assert error.startswith(f"attncli: error: {models['bert']}: cannot load the model's "
                            "weights: ValueError: ")
    assert "somewhere" in error


@pytest.mark.parametrize("args", [("--input-ids", "2,5,3", "--layer", "0"), ("--info",)])
def test_transformers_missing_gives_the_install_command(models, monkeypatch, args):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers fails
    assert_error(invoke("model", models["bert"], *args),
                 'attncli model needs transformers and torch (transformers is missing): pip '
                 'install "attncli[model]" torch==2.13.0')


# -- one layer or several: the output --------------------------------------------------------

def test_one_layer_json_is_computes_document_with_the_model(models):
    """--layer 1 --query cat: compute's document for row 2, with "model": the model, the
    ids, the layer and the agreement; the numbers are the BERT's own (to 1e-5 of
    max(1, |value|)); labels from the tokenizer, "the#2" for the repeated word."""
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "1", "--query", "cat",
                    "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["tokens"] == LABELS and document["query"] == "cat"
    about = document["model"]
    assert {k: about[k] for k in ("name", "family", "input_ids", "layer")} == {
        "name": "bert", "family": "BERT", "input_ids": IDS, "layer": 1}
    assert about["agreement"]["agrees"] is True and about["agreement"]["dtype"] == "float32"
    theirs = reference(models["bert"], IDS)[1]
    # the reference is not trivial: some weight of "cat"'s row is far from uniform (1/8)
    assert np.max(theirs["weights"][:, 2]) > 0.3
    # one query row: JSON drops its axis, weights (H, n), context and output (d_model,)
    for name, expected in (("weights", theirs["weights"][:, 2]),
                           ("context", theirs["context"][2]), ("output", theirs["output"][2])):
        ours = step(document, name)
        assert ours.shape == expected.shape, name
        np.testing.assert_array_less(np.abs(ours - expected),
                                     1e-5 * np.maximum(1.0, np.abs(expected)))


def test_several_layers_json_groups_them(models, tmp_path):
    """{"model": name, family, path, ids; "layers": {"0": compute's document, "1": …}}: each
    layer's document is the one-layer run's; -o FILE.json writes the same document."""
    args = ("model", models["bert"], "--text", TEXT, "--layer", "0-1", "--json")
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["model", "layers"]
    assert document["model"] == {"name": "bert", "family": "BERT",
                                 "path": str(models["bert"]), "input_ids": IDS}
    assert list(document["layers"]) == ["0", "1"]
    theirs = reference(models["bert"], IDS)
    for layer in range(LAYERS):
        grouped = document["layers"][str(layer)]
        assert grouped["model"]["layer"] == layer
        assert grouped["tokens"] == LABELS
        single = invoke("model", models["bert"], "--text", TEXT, "--layer", layer, "--json")
        assert json.loads(single.stdout) == grouped
        np.testing.assert_allclose(step(grouped, "weights"), theirs[layer]["weights"],
                                   rtol=0, atol=1e-5)
    # the layers differ: layer 1 is not layer 0 again
    assert np.max(np.abs(step(document["layers"]["0"], "weights")
                         - step(document["layers"]["1"], "weights"))) > 0.05

    target = tmp_path / "layers.json"
    written = invoke(*args[:-1], "-o", target)
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    assert json.loads(target.read_text()) == document


def test_several_layers_csv_has_a_layer_column(models):
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0,1", "--format",
                    "csv", "--steps", "weights")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header == "layer,step,batch,head,row,row_label,column,column_label,value"
    # 4 heads × 8 × 8 weights per layer
    assert [r.split(",")[0] for r in rows] == ["0"] * 256 + ["1"] * 256
    single = invoke("model", models["bert"], "--text", TEXT, "--layer", "1", "--format", "csv",
                    "--steps", "weights")
    assert ["1," + line for line in single.stdout.splitlines()[1:]] == rows[256:]


def test_several_layers_markdown_has_a_heading_per_layer(models):
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "all", "--format",
                    "markdown", "--steps", "weights")
    assert result.exit_code == 0, result.stderr
    headings = [line for line in result.stdout.splitlines() if line.startswith("## ")]
    assert headings == ["## layer 0", "## layer 1"]
    assert result.stdout.startswith("## layer 0\n\n### weights")


def test_several_layers_tables_have_a_rule_and_the_agreement_each(models):
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0-1", "--steps",
                    "weights", "--head", "2", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    marks = [out.index("layer 0 ─"), out.index("bert (BERT), layer 0: agrees with the "
                                               "model's own attention (float32)"),
             out.index("layer 1 ─"), out.index("bert (BERT), layer 1: agrees with the "
                                               "model's own attention (float32)")]
    assert marks == sorted(marks)
    assert out.count("head 2 of 4 (--head); the other heads are left out") == 2
    assert "head 0" not in out


def test_a_disagreement_is_exit_status_1(models, monkeypatch):
    """The model's own output of layer 1 moved by 0.01 (its captured copy, before the
    comparison): layer 0 still agrees, layer 1 DISAGREES on the output alone; the results
    are still written; exit status 1."""
    from attncli.models import capture

    right = capture.run_layers

    def moved(*args, **kwargs):
        seen = right(*args, **kwargs)
        seen[1].output = seen[1].output + 0.01
        return seen

    monkeypatch.setattr(capture, "run_layers", moved)
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0-1", "--json")
    assert result.exit_code == 1
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("attncli: warning: layer 1: DISAGREES with the model's own "
                                  "attention (float32): output (max |Δ| 1.0e-02 > 1.0e-04)")
    layers = json.loads(result.stdout)["layers"]
    assert layers["0"]["model"]["agreement"]["agrees"] is True
    agreement = layers["1"]["model"]["agreement"]
    assert agreement["agrees"] is False
    assert agreement["max_abs_delta"]["output"] == pytest.approx(0.01, rel=1e-4)
    assert agreement["max_abs_delta"]["weights"] < 1e-6


def test_a_tighter_tolerance_than_float32_rounding_disagrees(models, monkeypatch):
    """The float32 model's rounding (|Δ| near 1e-8 here) is beyond a tolerance of 1e-12:
    DISAGREES, in the table's conventions too, and exit status 1."""
    from attncli.models import agreement

    monkeypatch.setattr(agreement, "TOLERANCE", {"float32": 1e-12})
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0", "--steps",
                    "weights", env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "attncli: warning: layer 0: DISAGREES with the model's own attention" in \
        result.stderr
    assert "layer 0: DISAGREES with the model's own attention" in result.stdout


# -- the tokens ---------------------------------------------------------------------------------

def test_an_id_without_a_token_is_labelled_by_the_id(models):
    """Ids 12 … 15 are in the model's vocabulary but not the tokenizer's: the label is the id
    (never "None"), and --query finds it."""
    result = invoke("model", models["bert"], "--input-ids", "2,13,5,13,3", "--layer", "0",
                    "--query", "13#2", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["tokens"] == ["[CLS]", "13", "the", "13#2", "[SEP]"]
    assert document["query"] == "13#2"


def test_the_last_layer_by_minus_one_in_a_one_layer_format(models, tmp_path):
    """--layer -1 is one layer (the last): NPZ takes it."""
    target = tmp_path / "steps.npz"
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "-1", "--steps",
                    "weights", "-o", target)
    assert result.exit_code == 0, result.stderr
    with np.load(target) as saved:
        weights = saved["weights"]
    np.testing.assert_allclose(weights, reference(models["bert"], IDS)[1]["weights"],
                               rtol=0, atol=1e-5)


def test_the_torch_script_of_a_layer_runs(models, tmp_path):
    """--format torch for one layer: a script that redoes it with nn.MultiheadAttention and
    prints the same weights."""
    script = tmp_path / "layer.py"
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0", "-o", script)
    assert result.exit_code == 0, result.stderr
    run = subprocess.run([sys.executable, script], capture_output=True, text=True, check=True)
    weights = np.asarray(json.loads(run.stdout)["weights"])
    # its docstring names the command that makes it again: the model's, with the tokens' ids
    ids = ",".join(str(i) for i in json.loads(invoke(
        "model", models["bert"], "--text", TEXT, "--layer", "0", "--json").stdout)["model"][
        "input_ids"])
    assert (f"Equivalent to: attncli model {models['bert']} --input-ids {ids} --layer 0 "
            "--format torch") in script.read_text()
    np.testing.assert_allclose(weights, reference(models["bert"], IDS)[0]["weights"],
                               rtol=0, atol=1e-5)


# -- --info ---------------------------------------------------------------------------------------

def test_info_json_and_table(models, tmp_path):
    result = invoke("model", models["llama"], "--info", "--json")
    assert result.exit_code == 0, result.stderr
    facts = json.loads(result.stdout)
    assert {k: facts[k] for k in ("model", "layers", "d_model", "heads", "kv_heads", "d_head",
                                  "causal", "max_positions", "vocab_size")} == {
        "model": "llama", "layers": 2, "d_model": 32, "heads": 4, "kv_heads": 2, "d_head": 8,
        "causal": True, "max_positions": 64, "vocab_size": 16}
    assert facts["positions"] == "RoPE, half layout, θ = 10000"
    target = tmp_path / "info.json"
    assert invoke("model", models["llama"], "--info", "-o", target).exit_code == 0
    assert json.loads(target.read_text()) == facts

    table = invoke("model", models["bert"], "--info", env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in table.stdout.splitlines() if line.count("│") == 3}
    assert rows["heads"] == "4" and rows["kv_heads"] == "4" and rows["d_head"] == "8"
    assert rows["causal"] == "no" and rows["softcap"] == "none"
    assert rows["positions"] == "absolute (learned embeddings added before the first layer)"


# -- stdout, the network, --device-map --------------------------------------------------------

def test_stdout_is_results_only(models, monkeypatch):
    """What transformers prints while loading goes nowhere (here a print put in its
    from_pretrained); stderr has attncli's note lines only, no progress bars."""
    transformers = _transformers()
    right = transformers.AutoModel.from_pretrained

    def noisy(*args, **kwargs):
        print("transformers says hello")
        return right(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", noisy)
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0", "--json")
    assert result.exit_code == 0, result.stderr
    assert "hello" not in result.stdout
    json.loads(result.stdout)  # the one document, nothing around it
    assert result.stderr.splitlines() == [
        "attncli: note: loading bert (BERT, safetensors), layers 0 … 0 of 2",
        "attncli: note: running 8 tokens through layers 0 … 0"]


def test_nothing_is_downloaded(models, monkeypatch):
    """No connection is opened (sockets refused here) …"""
    opened = []

    def refuse(*args, **kwargs):
        opened.append(args)
        raise OSError("attncli model must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert opened == []


def test_the_hub_is_offline_in_a_fresh_process(models):
    """… and in a process of its own, attncli turns the Hub offline (HF_HUB_OFFLINE) before
    it imports transformers, unless the user set it."""
    code = ("import sys; from typer.testing import CliRunner; from attncli.cli import app; "
            "r = CliRunner().invoke(app, ['model', sys.argv[1], '--info', '--json']); "
            "import huggingface_hub.constants as c; print(r.exit_code, c.HF_HUB_OFFLINE)")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    run = subprocess.run([sys.executable, "-c", code, str(models["llama"])], env=env,
                         capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["0", "True"]


def test_device_map_auto(models):
    """--device-map auto (accelerate places the layers: here all on the CPU): the same
    numbers as without it."""
    pytest.importorskip("accelerate")
    ids = "2,5,13,7,3"
    plain = invoke("model", models["llama"], "--input-ids", ids, "--layer", "0-1", "--json")
    placed = invoke("model", models["llama"], "--input-ids", ids, "--layer", "0-1", "--json",
                    "--device-map", "auto")
    assert placed.exit_code == 0, placed.stderr
    for layer in ("0", "1"):
        ours = json.loads(placed.stdout)["layers"][layer]
        assert ours["model"]["agreement"]["agrees"] is True
        for name in ("weights", "context", "output"):
            np.testing.assert_allclose(step(ours, name),
                                       step(json.loads(plain.stdout)["layers"][layer], name),
                                       rtol=0, atol=1e-6)


def _without(source: Path, folder: Path, *keys: str) -> Path:
    """A copy of the model at ``source`` whose safetensors lack ``keys``."""
    from safetensors.numpy import load_file, save_file

    folder.mkdir()
    for file in source.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    tensors = load_file(folder / "model.safetensors")
    for key in keys:
        del tensors[key]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_a_checkpoint_without_a_weight_the_layer_uses(models, tmp_path):
    """Layer 0's W_q left out of the checkpoint: transformers would draw it at random (its
    warning silenced) and attncli, reading the loaded module, would agree with those random
    numbers: one line, exit 2, nothing on stdout. Layer 1's missing W_q is not loaded for
    --layer 0; a missing final norm (after the layers, never run) is no error either."""
    path = _without(models["llama"], tmp_path / "no-q0", "layers.0.self_attn.q_proj.weight")
    result = invoke("model", path, "--input-ids", "2,5,3", "--layer", "0-1")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "note" not in line]
    assert errors == [f"attncli: error: {path}: the checkpoint has no layers.0.self_attn."
                      "q_proj.weight: transformers would fill them with random numbers, not "
                      "the model's"]
    later = _without(models["llama"], tmp_path / "no-q1-norm", "layers.1.self_attn.q_proj.weight",
                     "norm.weight")
    result = invoke("model", later, "--input-ids", "2,5,3", "--layer", "0", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"]["agreement"]["agrees"] is True
    result = invoke("model", later, "--input-ids", "2,5,3", "--layer", "1", "--json")
    assert result.exit_code == 2 and "layers.1.self_attn.q_proj.weight" in result.stderr


def test_nothing_compared_is_no_agreement():
    """An agreement with no step compared (the model's output projection never ran, say) is
    not an agreement: it fails, and says so."""
    from attncli.models.agreement import Agreement

    empty = Agreement("float32", 1e-4)
    assert not empty.ok
    assert empty.to_dict()["agrees"] is False
    assert "nothing to compare" in empty.line()
    weights_only = Agreement("float32", 1e-4, {"weights": 0.0}, {"weights": 1.0})
    assert not weights_only.ok
    both = Agreement("float32", 1e-4, {"context": 1e-7, "output": 1e-7},
                     {"context": 1.0, "output": 1.0})
    assert both.ok


def test_gguf_speedups_leave_a_moved_loader_alone(monkeypatch):
    """The GGUF loading shortcuts (attncli.models.loading._quiet) patch transformers' GGUF
    loader where transformers 5 keeps it; a transformers that moved it loads as before, with
    its progress bar (no error)."""
    pytest.importorskip("gguf")
    _transformers()
    from attncli.models import loading

    monkeypatch.setitem(sys.modules, "transformers.modeling_gguf_pytorch_utils", None)
    with loading._quiet(gguf=True):
        import gguf

        assert gguf.GGUFReader is not None


def test_a_refused_format_writes_no_saved_problem(models, tmp_path, monkeypatch):
    """--format torch refuses a run of more numbers than it writes into a script (the tiny
    BERT's 4,600 are allowed: the limit lowered to 10) only once the layer is computed; the
    --save-problem file is then not written either: exit 2 leaves no output behind."""
    from attncli.export import torch_script

    monkeypatch.setattr(torch_script, "MAX_NUMBERS", 10)
    saved, script = tmp_path / "layer.npz", tmp_path / "layer.py"
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0", "-f", "torch",
                    "-o", script, "--save-problem", saved)
    assert result.exit_code == 2, result.stderr
    assert "--format torch writes the numbers into the script: at most 10," in result.stderr
    assert not script.exists()
    assert not saved.exists()


@pytest.mark.parametrize("more", [("--layer", "1"), ("--save-problem", "{tmp}/z.npz"),
                                  ("--heatmap",)])
def test_info_refuses_the_options_of_a_run(models, tmp_path, more):
    """--info with --save-problem used to print the table, exit 0 and write no file."""
    more = [m.replace("{tmp}", str(tmp_path)) for m in more]
    result = invoke("model", models["bert"], "--info", *more)
    assert_error(result, "--info lists the model's attention from its config alone: it does "
                         f"not go with {more[0]}")
    assert not list(tmp_path.iterdir())


def test_save_problem_and_output_the_same_file(models, tmp_path):
    """-o F.npz with --save-problem F.npz used to leave the CSV output in F.npz."""
    target = tmp_path / "w.npz"
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "1", "--save-problem",
                    target, "-o", target)
    assert_error(result, f"--save-problem and -o are the same file, {target}: give two")
    assert not target.exists()


def test_layer_all_in_capitals(models):
    result = invoke("model", models["llama"], "--input-ids", "2,5,3", "--layer", "ALL",
                    "--json")
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(result.stdout)["layers"]) == [str(i) for i in range(LAYERS)]


@pytest.mark.parametrize(("step", "reason"), [
    ("rotated_queries", "there is no RoPE (--rope; a model with absolute positions or ALiBi has "
                        "none)"),
    ("normed_keys", "there is no QK-norm (--qk-norm; in a model, Qwen3, Gemma 3, OLMo2)"),
    ("sink_weights", "there are no sinks (the key sinks; in a model, gpt-oss)")])
def test_a_step_this_family_has_not_says_why(models, step, reason):
    """BERT has absolute positions, no QK-norm and no sinks: the step is named with the reason
    (it used to say only "this configuration does not compute it")."""
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0", "--steps", step)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (f"attncli: error: --steps {step}: not computed "
                                              f"in this run: {reason}")


def test_the_html_page_of_a_layer_has_its_agreement_and_its_command(models, tmp_path):
    """--format html for one layer: the agreement line, the attncli model command that makes
    it again, and each head's weights with the model's own numbers (computed here)."""
    import re

    page = tmp_path / "layer.html"
    result = invoke("model", models["bert"], "--text", TEXT, "--layer", "0", "-o", page)
    assert result.exit_code == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    assert re.search(r'<p id="agreement" data-agrees="true">[^<]*layer 0: agrees with the '
                     r"model&#x27;s own attention", text)
    assert re.search(r'<pre id="command">attncli model \S+ --input-ids [\d,]+ --layer 0 '
                     r"--format html</pre>", text)
    weights = reference(models["bert"], IDS)[0]["weights"]  # (heads, n, n), the model's own
    for head in range(weights.shape[0]):
        start = text.index(f'<figure class="heatmap" data-step="weights" data-head="{head}"')
        cells = re.findall(r'data-value="([^"]+)"', text[start:])[:weights[head].size]
        np.testing.assert_allclose(np.array(cells, dtype=float),
                                   weights[head].ravel(), rtol=0, atol=1e-5)
    several = invoke("model", models["bert"], "--text", TEXT, "--layer", "0-1", "-f", "html")
    assert several.exit_code == 2 and "--format html holds one layer's steps" in \
        several.stderr
