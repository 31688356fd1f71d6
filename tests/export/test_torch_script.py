"""``--format torch``: the script runs with torch alone and reproduces attncli's numbers.

Each case renders a script, writes it to a temporary directory, runs it with this Python and
compares its JSON (context, output, and MHA's per-head weights) with attncli's own trace in
float64, rtol 1e-10. The module it used is asserted too: nn.MultiheadAttention when W_q, W_k,
W_v and W_o fit it (2-D or per-head 3-D), scaled_dot_product_attention otherwise.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import attend, load_problem
from attncli.cli import app
from attncli.config import AttentionConfig, CausalAlign, Layout, Score, build
from attncli.export.command import equivalent_command, flags
from attncli.export.torch_script import MHA, SDPA, literal, render_torch
from attncli.problem import Problem
from tests.attention.test_parity_torch import projected as parity_problem

TOL = 1e-10


def run_script(tmp_path, text: str) -> dict:
    """Run the script with this Python, as a learner would; its one line of JSON."""
    path = tmp_path / "attention.py"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


#: Runs many scripts in one interpreter, each as __main__ (importing torch costs seconds).
DRIVER = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for path in sys.argv[1:]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        results[path] = json.loads(out.getvalue())
    except Exception:
        results[path] = {"error": traceback.format_exc()}
print(json.dumps(results))
"""


def run_scripts(directory, texts: dict[str, str]) -> dict[str, dict]:
    """Each script's JSON (or {"error": traceback}), by name: one subprocess for them all."""
    paths = {}
    for name, text in texts.items():
        paths[name] = directory / f"{name}.py"
        paths[name].write_text(text, encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", DRIVER, *map(str, paths.values())],
                            capture_output=True, text=True, cwd=directory, timeout=300)
    assert result.returncode == 0, result.stderr
    by_path = json.loads(result.stdout)
    return {name: by_path[str(path)] for name, path in paths.items()}


def assert_same(result: dict, trace, module: str, rtol: float = TOL) -> None:
    """The script's numbers are attncli's (unit axes aside: torch keeps H = 1, attncli not),
    and it used ``module``."""
    assert "error" not in result, result.get("error")
    assert result["module"] == module
    steps = {"context", "output", "weights"} & result.keys()
    assert steps == ({"output", "weights"} if module == MHA and "weights" in result
                     else {"output"} if module == MHA
                     else {"context", "output"} if "output" in trace else {"context"})
    for step in steps:
        got = np.squeeze(np.asarray(result[step], dtype=np.float64))
        want = np.squeeze(trace[step])
        assert got.shape == want.shape, step
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol / 100, err_msg=step)


def assert_short_lines(text: str) -> None:
    """A script for people to read: lines of at most 100 characters (the header's command,
    which names the input files, aside)."""
    long = [line for line in text.splitlines() if len(line) > 100 and
            not line.startswith("Equivalent to: ")]
    assert not long, long


def rendered(problem: Problem, config: AttentionConfig):
    """The script of a run, with the command line as `attncli compute` gives it, and the run."""
    trace = attend(problem, config)
    return render_torch(trace, equivalent_command(problem, config, trace)), trace


# --------------------------------------------------------------------------------------------
# the samples

SAMPLES = {
    "hello-shiny-sun": SDPA,  # no projections: queries = keys = values = x
    "three-inputs": SDPA,  # unscaled dot product, no W_o
    "multihead-einsum": MHA,  # per-head 3-D weights, repacked into in_proj_weight
    "translation-cross": SDPA,  # one head of width 3 from d_in 4, no W_o
    "your-journey-causal": SDPA,  # is_causal=True
}


@pytest.mark.parametrize("sample", list(SAMPLES))
def test_every_sample_is_reproduced(torch, tmp_path, sample):
    problem = load_problem(sample=sample)
    config = build(problem.config, None)
    text, trace = rendered(problem, config)
    assert text.startswith(f'"""attncli\'s run, redone with {SAMPLES[sample]}.')
    assert_short_lines(text)
    assert_same(run_script(tmp_path, text), trace, SAMPLES[sample])


def test_the_script_imports_torch_and_json_only(torch):
    problem = load_problem(sample="multihead-einsum")
    config = build(problem.config, None)
    text, _ = rendered(problem, config)
    imported = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"json", "torch"}
    assert "Equivalent to: attncli compute --sample multihead-einsum --format torch" in text
    assert "mha.in_proj_weight.copy_(torch.cat([W_q.T, W_k.T, W_v.T]))" in text


# --------------------------------------------------------------------------------------------
# other runs: random problems of sizes where a wrong axis or transpose shows


def projected(seed: int, *, w_o: bool = True, **shape) -> dict:
    """test_parity_torch's random projected problem, with W_o (H·d_head, d_in) added."""
    arrays = parity_problem(seed, **shape)
    if w_o:
        width = arrays["W_q"].shape[1]
        rng = np.random.default_rng(seed + 1)
        arrays["W_o"] = rng.normal(size=(width, arrays["x"].shape[-1])) / math.sqrt(width)
    return arrays


def some_true_per_row(seed: int, shape) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.6
    rows = mask.reshape(-1, shape[-1])
    rows[np.arange(rows.shape[0]), rng.integers(0, shape[-1], rows.shape[0])] = True
    return rows.reshape(shape)


def _out_in(arrays: dict) -> dict:
    return {k: v.T if k in ("W_q", "W_k", "W_v", "W_o") else v for k, v in arrays.items()}


def _per_head(arrays: dict, heads: int) -> dict:
    """3-D (H, d_in, d_head) weights and (H, d_head) biases: the same computation."""
    arrays = dict(arrays)
    for name in "qkv":
        W = arrays[f"W_{name}"]
        arrays[f"W_{name}"] = W.reshape(W.shape[0], heads, -1).transpose(1, 0, 2)
        if f"b_{name}" in arrays:
            arrays[f"b_{name}"] = arrays[f"b_{name}"].reshape(heads, -1)
    return arrays


def kv_memory(seed: int, *, batch: int | None = 2, w_o: bool = True, shared: bool = False):
    """Separate key and value sequences (nn.MultiheadAttention's key and value inputs):
    x (…, 3, 4), key_memory (…, 5, 6), value_memory (…, 5, 3) — unbatched when ``shared`` —
    and in_out W_q (4, 4), W_k (6, 4), W_v (3, 4), W_o (4, 4) for 2 heads of width 2."""
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    memory_lead = () if shared else lead
    arrays = {"x": rng.normal(size=(*lead, 3, 4)),
              "key_memory": rng.normal(size=(*memory_lead, 5, 6)),
              "value_memory": rng.normal(size=(*memory_lead, 5, 3))}
    for name, d_from in (("q", 4), ("k", 6), ("v", 3)):
        arrays[f"W_{name}"] = rng.normal(size=(d_from, 4)) / math.sqrt(d_from)
        arrays[f"b_{name}"] = rng.normal(size=4) * 0.5
    if w_o:
        arrays["W_o"] = rng.normal(size=(4, 4)) / 2
    return arrays


#: right padding: item 0 has 3 real keys of 5, item 1 has 4
PADDED = np.array([[False, False, False, True, True], [False, False, False, False, True]])
BOTTOM_RIGHT = {"causal": True, "causal_align": CausalAlign.bottom_right}

CASES = {  # name: (arrays, config fields, module)
    "mha_causal": (projected(1), {"heads": 2, "causal": True}, MHA),
    "mha_no_bias": (projected(2, bias=False), {"heads": 2}, MHA),
    "mha_one_head": (projected(3, heads=1, d_head=6), {"heads": 1}, MHA),
    "mha_key_padding_mask_batch": (
        projected(4, batch=2, seq_k=5, d_mem=6)
        | {"key_padding_mask": np.array([[False] * 4 + [True], [True, False, False, True,
                                                                False]])},
        {"heads": 2}, MHA),
    "mha_cross_kdim": (projected(5, seq_k=5, d_mem=4), {"heads": 2}, MHA),
    "mha_batch_cross_kdim_causal": (projected(6, seq_q=3, seq_k=5, d_mem=4, batch=3),
                                    {"heads": 2, "causal": True}, MHA),
    "mha_out_in": (_out_in(projected(7, seq_k=5, d_mem=4)),
                   {"heads": 2, "weight_layout": Layout.out_in}, MHA),
    "mha_per_head_biases": (_per_head(projected(8), 2), {}, MHA),
    "mha_batched_mask": (projected(9, batch=2, seq_k=5)
                         | {"mask": some_true_per_row(9, (2, 4, 5))}, {"heads": 2}, MHA),
    "mha_window_and_mask": (projected(10, seq_q=5) | {"mask": some_true_per_row(10, (5, 5))},
                            {"heads": 2, "window": 1}, MHA),
    "mha_fully_masked_row": (projected(11) | {"mask": np.array(
        [[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1], [0, 1, 0, 0]], dtype=bool)},
        {"heads": 2}, MHA),
    "sdpa_scale_override": (projected(12), {"heads": 2, "scale": 0.25}, SDPA),
    "sdpa_temperature": (projected(13), {"heads": 2, "temperature": 2.0}, SDPA),
    "mha_temperature_folded": (projected(14), {"heads": 2, "temperature": 2.0,
                                               "scale": 2 / math.sqrt(3)}, MHA),
    "sdpa_no_w_o_window": (projected(15, seq_q=6, w_o=False), {"heads": 2, "window": 1}, SDPA),
    "sdpa_bottom_right_cross": (projected(16, seq_q=3, seq_k=6, w_o=False),
                                {"heads": 3, "causal": True,
                                 "causal_align": CausalAlign.bottom_right, "window": 2}, SDPA),
    "sdpa_tall_bottom_right_empty_rows": (projected(17, seq_q=6, seq_k=3, w_o=False),
                                          {"heads": 2, "causal": True,
                                           "causal_align": CausalAlign.bottom_right}, SDPA),
    "sdpa_batch_shared_memory": (
        {**projected(18, seq_q=3, seq_k=5, batch=2, w_o=False),
         "memory": np.random.default_rng(18).normal(size=(5, 5))}, {"heads": 2}, SDPA),
    "sdpa_batched_masks": (
        projected(19, batch=2, seq_k=5, w_o=False)
        | {"mask": some_true_per_row(19, (2, 4, 5)),
           "key_padding_mask": np.array([[False] * 4 + [True], [True] + [False] * 4])},
        {"heads": 2, "causal": True}, SDPA),
    "sdpa_general_score": (projected(20, seq_k=5) | {"W_a": np.random.default_rng(20).normal(
        size=(3, 3))}, {"heads": 2, "score": Score.general}, SDPA),
    "sdpa_no_project_heads": ({"x": np.random.default_rng(21).normal(size=(5, 6))},
                              {"heads": 2, "project": False, "causal": True}, SDPA),
    "sdpa_d_head_not_d_in": (projected(22, d_head=2), {"heads": 2}, SDPA),
    "sdpa_unscaled_out_in": (_out_in(projected(23)),
                             {"heads": 2, "score": Score.dot, "weight_layout": "out_in"}, SDPA),
    "mha_batch_one_key_padding_mask": (
        projected(25, batch=2, seq_k=5, d_mem=6)
        | {"key_padding_mask": np.array([False, True, False, False, False])}, {"heads": 2}, MHA),
    # a 1-D key_padding_mask alone, with batched x: SDPA needs it as (1, seq_k), not (seq_k,)
    "sdpa_batch_one_key_padding_mask": (
        {"x": np.array([[[1, 0], [0, 1], [1, 1]], [[1, 2], [0, 1], [1, 3]]]),
         "key_padding_mask": np.array([False, True, False])}, {}, SDPA),
    "sdpa_heads_batch_one_key_padding_mask": (
        projected(26, batch=2, seq_k=5, d_mem=6, w_o=False)
        | {"key_padding_mask": np.array([False, True, False, False, True])}, {"heads": 2}, SDPA),
    "sdpa_one_key_padding_mask": (
        projected(27, seq_k=5, w_o=False)
        | {"key_padding_mask": np.array([True, False, False, True, False])}, {"heads": 2}, SDPA),
    "sdpa_batched_mask_one_key_padding_mask": (
        projected(28, batch=2, seq_k=5, w_o=False)
        | {"mask": some_true_per_row(28, (2, 4, 5)),
           "key_padding_mask": np.array([False, False, False, False, True])}, {"heads": 2}, SDPA),
    "mha_one_key_padding_mask": (
        projected(29, seq_k=5, d_mem=6)
        | {"key_padding_mask": np.array([False, True, False, False, True])}, {"heads": 2}, MHA),
    "sdpa_tokens_that_are_not_code": (  # a label cannot end its comment and start code
        {"x": np.eye(3), "tokens": ['a\nraise SystemExit(3)', '"""', "back\\slash"]}, {},
        SDPA),
    # bottom-right alignment to each batch item's unpadded keys (flash-attn's)
    "sdpa_bottom_right_padded_keys": (
        projected(30, seq_q=2, seq_k=5, batch=2, w_o=False) | {"key_padding_mask": PADDED},
        {"heads": 2, **BOTTOM_RIGHT}, SDPA),
    "mha_bottom_right_padded_keys_window": (
        projected(31, seq_q=3, seq_k=5, d_mem=6, batch=2) | {"key_padding_mask": PADDED},
        {"heads": 2, "window": 1, **BOTTOM_RIGHT}, MHA),
    "sdpa_bottom_right_one_padding_and_mask": (
        projected(32, seq_q=2, seq_k=5, w_o=False)
        | {"key_padding_mask": PADDED[0], "mask": some_true_per_row(32, (2, 5))},
        {"heads": 2, **BOTTOM_RIGHT}, SDPA),
    # separate key and value sequences: kdim ≠ vdim
    "mha_key_value_memory": (kv_memory(33), {"heads": 2}, MHA),
    "mha_key_value_memory_unbatched_causal": (kv_memory(34, batch=None),
                                              {"heads": 2, "causal": True}, MHA),
    "sdpa_key_value_memory_shared": (kv_memory(35, w_o=False, shared=True), {"heads": 2}, SDPA),
    "float32_mha_batch_causal": (projected(24, batch=2),
                                 {"heads": 2, "causal": True, "dtype": "float32"}, MHA),
}


def _case(name: str):
    """(problem, config, module, rtol) of a case; float32 runs compare at 1e-5."""
    arrays, fields, module = CASES[name]
    config = AttentionConfig(**fields)
    return (Problem.from_mapping(arrays, "test"), config, module,
            1e-5 if config.dtype.value == "float32" else TOL)


@pytest.fixture(scope="module")
def case_results(tmp_path_factory):
    """Every case's script run, in one subprocess; and attncli's trace of it."""
    texts, traces = {}, {}
    for name in CASES:
        problem, config, _, _ = _case(name)
        texts[name], traces[name] = rendered(problem, config)
    results = run_scripts(tmp_path_factory.mktemp("scripts"), texts)
    return {name: (results[name], traces[name], texts[name]) for name in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_run_is_reproduced(torch, case_results, case):
    _, _, module, rtol = _case(case)
    result, trace, text = case_results[case]
    assert text.startswith(f'"""attncli\'s run, redone with {module}.')
    assert_same(result, trace, module, rtol)
    assert_short_lines(text)
    if case == "mha_fully_masked_row":  # need_weights=True would give NaN for that row
        assert "weights" not in result and "need_weights=False" in text
    if case.startswith("float32"):
        assert "dtype = torch.float32" in text


def test_mha_script_says_the_polarity_and_the_packing(torch):
    problem = Problem.from_mapping(projected(31, seq_k=5, d_mem=4) | {
        "key_padding_mask": np.array([False, False, True, False, False])}, "test")
    config = AttentionConfig(heads=2, causal=True)
    text, _ = rendered(problem, config)
    assert "kdim=4, vdim=4" in text
    assert "mha.k_proj_weight.copy_(W_k.T)" in text
    assert "attn_mask=~allowed" in text and "key_padding_mask=key_padding_mask" in text
    assert "True = NOT allowed" in text


def test_a_trace_alone_makes_a_script_of_every_row(torch, tmp_path):
    """The exporter reads the Trace only: a --query run (one row computed) still gives the
    script of the whole run, without the command line when none is given."""
    problem = Problem.from_mapping(projected(60, seq_k=5, d_mem=4), "test")
    config = AttentionConfig(heads=2, causal=True, causal_align=CausalAlign.bottom_right)
    text = render_torch(attend(problem, config, query=1))
    assert "Equivalent to:" not in text
    assert "attncli showed query '1'; this script computes every query row." in text
    assert_same(run_script(tmp_path, text), attend(problem, config), MHA)


def test_a_scale_given_is_said_as_given():
    """--scale 1 with the dot score is the score's own scale, but the script says where it
    came from; without it, that the dot score is not scaled."""
    problem = Problem.from_mapping(projected(61, w_o=False), "test")
    given, _ = rendered(problem, AttentionConfig(heads=2, score=Score.dot, scale=1.0))
    default, _ = rendered(problem, AttentionConfig(heads=2, score=Score.dot))
    assert "scale = 1.0  # --scale 1 (scores · scale)\n" in given
    assert ("scale = 1.0  # the dot score is not scaled (SDPA's default would be 1/√d_k)\n"
            in default)


def test_flags_are_the_options_off_their_defaults():
    config = AttentionConfig(project=False, heads=2, causal=True,
                             causal_align=CausalAlign.bottom_right, temperature=2.0,
                             dtype="float32")
    assert flags(config) == ["--no-project", "--heads", "2", "--causal", "--causal-align",
                             "bottom-right", "--temperature", "2.0", "--dtype", "float32"]
    assert flags(AttentionConfig()) == []


def test_literal_keeps_full_precision_and_wraps_long_rows():
    values = np.array([0.1 + 0.2, 1 / 3, -2.5e-300] * 20)
    text = literal(values)
    assert max(len(line) for line in text.splitlines()) <= 96
    assert np.array_equal(np.array(ast.literal_eval(text)), values)
    assert literal(np.array([[True, False]])) == "[\n    [True, False],\n]"


# --------------------------------------------------------------------------------------------
# through the command line, and what --format torch refuses


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def test_readme_command_writes_a_script_that_runs(torch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["compute", "--sample", "multihead-einsum", "--format", "torch", "-o",
                     "attention.py"])
    assert result.exit_code == 0, result.output
    output = run_script(tmp_path, (tmp_path / "attention.py").read_text(encoding="utf-8"))
    trace = attend(load_problem(sample="multihead-einsum"))
    np.testing.assert_allclose(output["output"], trace["output"], rtol=TOL)


def test_dot_py_output_picks_the_torch_format(tmp_path):
    target = tmp_path / "run.py"
    result = invoke(["compute", "--sample", "your-journey-causal", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert "is_causal=True" in text and "# x (6, 3); rows: Your, journey" in text


#: The reviewer's run: batched x and a 1-D key_padding_mask, as JSON on standard input.
PADDED_BATCH = {"x": [[[1, 0], [0, 1], [1, 1]], [[1, 2], [0, 1], [1, 3]]],
                "key_padding_mask": [False, True, False]}


def test_a_script_from_stdin_runs_and_names_stdin_as_dash(torch, tmp_path):
    result = CliRunner().invoke(app, ["compute", "-", "--heads", "1", "--format", "torch"],
                                input=json.dumps(PADDED_BATCH))
    assert result.exit_code == 0, result.output
    assert "Equivalent to: attncli compute - --heads 1 --format torch\n" in result.stdout
    problem = Problem.from_mapping(PADDED_BATCH, "<stdin>")
    assert_same(run_script(tmp_path, result.stdout), attend(problem), SDPA)


def test_a_key_given_on_stdin_is_named_as_dash():
    problem = Problem.from_mapping({"x": np.eye(3)}, "sample hello-shiny-sun").merged(
        Problem.from_mapping({"mask": np.eye(3, dtype=bool)}, "<stdin>"))
    config = AttentionConfig()
    text, _ = rendered(problem, config)
    assert ("Equivalent to: attncli compute --sample hello-shiny-sun --set mask=- "
            "--format torch\n") in text


def test_tensors_mapped_from_a_checkpoint_are_not_left_out_of_the_command(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(50)
    path = tmp_path / "layer.safetensors"
    safetensors_numpy.save_file({"hidden": rng.normal(size=(3, 4)),
                                 **{f"{p}_proj.weight": rng.normal(size=(4, 4)) for p in "qkv"}},
                                str(path))
    target = tmp_path / "run.py"
    result = invoke(["compute", str(path), "--tensor", "x=hidden",
                     *(f"--tensor=W_{p}={p}_proj.weight" for p in "qkv"),
                     "--weight-layout", "out_in", "-o", str(target)])
    assert result.exit_code == 0, result.output
    header = target.read_text(encoding="utf-8").split('"""')[1]
    command = f"attncli compute {path} --weight-layout out_in --format torch"
    assert f"Equivalent to: {command}\n(tensors mapped with --tensor)\n" in header


@pytest.fixture
def additive_problem(tmp_path):
    rng = np.random.default_rng(40)
    problem = {key: rng.normal(size=shape).tolist() for key, shape in (
        ("x", (3, 4)), ("W_q", (4, 3)), ("W_k", (4, 3)), ("W_v", (4, 3)), ("W_a", (3, 5)),
        ("U_a", (3, 5)), ("v_a", (5,)))}
    path = tmp_path / "additive.json"
    path.write_text(json.dumps(problem), encoding="utf-8")
    return str(path)


REFUSED = {
    "additive": (["--score", "additive"], "the additive score"),
    "hard": (["--sample", "three-inputs", "--normalize", "hard"],
             "hard attention (--normalize hard)"),
    "topk": (["--sample", "three-inputs", "--normalize", "topk", "--top-k", "2"],
             "top-k attention (--normalize topk --top-k 2)"),
    "dropout": (["--sample", "three-inputs", "--dropout", "0.5", "--seed", "1"],
                "--dropout 0.5, whose mask torch would draw differently"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_runs_torch_cannot_express_are_refused_in_one_line(additive_problem, case):
    options, what = REFUSED[case]
    given = [additive_problem] if case == "additive" else []
    result = invoke(["compute", *given, *options, "--format", "torch"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == ("attncli: error: --format torch covers dot-product softmax "
                             f"attention; this run uses {what}\n")


def test_a_problem_too_large_to_embed_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"x": np.ones((200, 51)).tolist()}), encoding="utf-8")
    result = invoke(["compute", str(path), "--steps", "context", "--format", "torch"])
    assert result.exit_code == 2
    assert result.stderr == ("attncli: error: --format torch writes the numbers into the "
                             "script: at most 10,000, and this run has 10,200 (x); save the "
                             "steps with -o FILE.npz instead\n")


def test_an_option_the_script_does_not_express_is_refused(monkeypatch):
    # An option the exporter was not taught (here --window, taken out of its list, as a new
    # option would be) is refused by name, never left out of the script silently.
    from attncli.export import torch_script

    monkeypatch.setattr(torch_script, "EXPRESSED", torch_script.EXPRESSED - {"window"})
    result = invoke(["compute", "--sample", "three-inputs", "--window", "1", "--format",
                     "torch"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == ("attncli: error: --format torch does not write --window 1 into a "
                             "script\n")


# Issue 12's options: the script refuses each with its reason, in one line
_AS_GIVEN = "SDPA takes the queries and keys as given, and the script does not write {} out " \
    "before it"
_ROPE = _AS_GIVEN.format("RoPE's rotation")
_QK_NORM = _AS_GIVEN.format("their RMSNorm")
_SOFTCAP = ("C·tanh(scores / C) is a function of the scores, and SDPA's attn_mask can only be "
            "added to them (flex_attention's score_mod could)")
_ALIBI = ("ALiBi's −m_h·|i − j| would be a float attn_mask of (H, seq_q, seq_k), which the "
          "script does not write")
OPTIONS_REFUSED = {  # multihead-einsum: 4 heads of d_head 2
    "rope": (["--rope", "--rope-theta", "500000", "--rope-layout", "interleaved"],
             f"--rope --rope-theta 500000.0 --rope-layout interleaved into a script: {_ROPE}"),
    "rotary_dim": (["--rope", "--rotary-dim", "2"],
                   f"--rope --rotary-dim 2 into a script: {_ROPE}"),
    "qk_norm": (["--qk-norm", "per-head", "--qk-norm-eps", "1e-5", "--qk-norm-offset", "1"],
                f"--qk-norm per-head --qk-norm-eps 1e-05 --qk-norm-offset 1.0 into a script: "
                f"{_QK_NORM}"),
    "softcap": (["--softcap", "30"], f"--softcap 30.0 into a script: {_SOFTCAP}"),
    "alibi": (["--alibi", "--causal"], f"--alibi into a script: {_ALIBI}"),
    # several: one reason a group, in the options' order (the config's field order)
    "several": (["--rope", "--softcap", "50", "--alibi", "--qk-norm", "whole"],
                f"--qk-norm whole into a script: {_QK_NORM}; --softcap 50.0: {_SOFTCAP}; "
                f"--alibi: {_ALIBI}; --rope: {_ROPE}"),
}


@pytest.mark.parametrize("case", list(OPTIONS_REFUSED))
def test_todays_options_are_refused_with_their_reason(tmp_path, case):
    options, message = OPTIONS_REFUSED[case]
    norms = []
    if "--qk-norm" in options:  # RMSNorm weights: (d_head,) per head, (H·d_head,) whole
        width = 2 if "per-head" in options else 8
        for key in ("q_norm", "k_norm"):
            (tmp_path / f"{key}.json").write_text(json.dumps([1.0] * width))
            norms += ["--set", f"{key}={tmp_path / f'{key}.json'}"]
    result = invoke(["compute", "--sample", "multihead-einsum", *options, *norms, "--format",
                     "torch"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"attncli: error: --format torch does not write {message}\n"


@pytest.mark.parametrize(("key", "value", "what"), [
    # gpt-oss's sinks: a softmax column per head, dropped after it; SDPA has no such column
    ("sinks", [0.5, -1.0, 0.0, 2.0],
     "attention sinks (the problem's sinks: a softmax column per head, then dropped), which "
     "torch's SDPA and nn.MultiheadAttention do not take"),
    ("bias", np.zeros((5, 5)).tolist(),
     "a float bias of the scores (the problem's bias), which the script does not write as "
     "SDPA's float attn_mask"),
])
def test_sinks_and_a_float_bias_are_refused_with_their_reason(tmp_path, key, value, what):
    path = tmp_path / f"{key}.json"
    path.write_text(json.dumps(value))
    result = invoke(["compute", "--sample", "multihead-einsum", "--set", f"{key}={path}",
                     "--format", "torch"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == ("attncli: error: --format torch covers dot-product softmax "
                             f"attention; this run uses {what}\n")
