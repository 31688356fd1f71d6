"""safetensors checkpoints as problem files: --tensor KEY=NAME maps a checkpoint's names to the
problem keys, nn.Linear's (out, in) weights go through --weight-layout out_in, BF16/FP8 tensors
through torch, and every bad input is one stderr line with exit status 2."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import attend
from attncli.cli import app
from attncli.errors import InputError
from attncli.io import load_problem
from attncli.io.safetensors_reader import read_safetensors, require_tensor_key

safetensors_numpy = pytest.importorskip("safetensors.numpy")

runner = CliRunner()

# hello-shiny-sun (seed 000, Q = K = V = x, unscaled dot product), first query "Hello":
#   scores  = [Hello·Hello, Hello·shiny, Hello·sun]
#           = [0.1156 + 0.0484 + 0.2916, 0.1802 + 0.0748 + 0.5292, 0.0986 + 0.1188 + 0.5022]
#           = [0.4556, 0.7842, 0.7196]
#   softmax: e^0.4556 = 1.57712, e^0.7842 = 2.19065, e^0.7196 = 2.05361, sum 5.82138
#           → weights = [0.27092, 0.37631, 0.35277]
#   context = 0.27092*Hello + 0.37631*shiny + 0.35277*sun
#           = [0.09211 + 0.19945 + 0.10230, 0.05960 + 0.12795 + 0.19050,
#              0.14630 + 0.36878 + 0.32808] = [0.39386, 0.37804, 0.84316]
HELLO_X = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]
HELLO_CONTEXT_0 = [0.3938606607892164, 0.37804386888463143, 0.8431574538023865]

# three-inputs (seed 004, unscaled): context of Input 1 (see tests/test_cli.py for the arithmetic)
THREE_X = [[1, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]]
THREE_WQ = [[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]]
THREE_WK = [[0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]]
THREE_WV = [[0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]]
THREE_CONTEXT_1 = [1.93662106, 6.68310531, 1.59506841]

LAYER = "model.layers.0.self_attn"


def save(path: Path, tensors: dict[str, object]) -> str:
    safetensors_numpy.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                                str(path))
    return str(path)


def save_raw(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> str:
    """A safetensors file written by hand: dtypes numpy has no type for (BF16, F8_E4M3)."""
    header, body = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + body)
    return str(path)


def bf16(values) -> bytes:
    """bfloat16 is the top half of float32: these bytes hold the values truncated to it."""
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def bf16_values(values) -> np.ndarray:
    """What :func:`bf16`'s bytes decode to: the float32 values with the low half zeroed."""
    return (np.asarray(values, np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)


def invoke(args: list[str]):
    return runner.invoke(app, args, env={"COLUMNS": "200"})


def context(args: list[str]) -> np.ndarray:
    result = invoke(["compute", *args, "--json", "--steps", "context"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return np.array(json.loads(result.stdout)["steps"]["context"]["data"])


def one_error_line(args: list[str]) -> str:
    result = invoke(args)
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("attncli: error: ")
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Real numbers, end to end


def test_mapped_tensor_reproduces_hello_shiny_sun(tmp_path):
    path = save(tmp_path / "emb.safetensors",
                {"embed_tokens.weight": np.array(HELLO_X), "lm_head.weight": np.eye(3)})
    got = context([path, "--tensor", "x=embed_tokens.weight"])
    np.testing.assert_allclose(got[0], HELLO_CONTEXT_0, rtol=1e-12)
    # the bundled sample gives the same numbers
    np.testing.assert_allclose(got, context(["--sample", "hello-shiny-sun"]), rtol=1e-12)


def test_python_api_reads_only_the_mapped_tensors(tmp_path):
    path = save(tmp_path / "emb.safetensors",
                {"embed_tokens.weight": np.array(HELLO_X, np.float32), "other": np.ones(2)})
    assert list(read_safetensors(path, {"x": "embed_tokens.weight"})) == ["x"]
    problem = load_problem(path, tensors={"x": "embed_tokens.weight"})
    assert problem["x"].dtype == np.float64
    np.testing.assert_array_equal(problem["x"], np.array(HELLO_X, np.float32))
    assert problem.origin["x"] == path
    np.testing.assert_allclose(attend(problem)["context"][0], HELLO_CONTEXT_0, rtol=1e-6)


def test_without_a_mapping_the_tensors_named_like_keys_are_taken(tmp_path):
    # a causal mask as BOOL: Hello sees only itself, so its context is Hello
    path = save(tmp_path / "p.safetensors", {"x": np.array(HELLO_X),
                                             "mask": np.tril(np.ones((3, 3), bool)),
                                             "lm_head.weight": np.eye(3)})
    problem = load_problem(path)
    assert sorted(problem.arrays) == ["mask", "x"]
    assert problem.warnings == []
    assert problem["mask"].dtype == np.bool_
    np.testing.assert_allclose(context([path])[0], HELLO_X[0], rtol=1e-12)


def test_per_key_files_win_over_the_checkpoint(tmp_path):
    path = save(tmp_path / "p.safetensors", {"x": np.ones((3, 3))})
    (tmp_path / "x.json").write_text(json.dumps(HELLO_X))
    got = context([path, "--x", str(tmp_path / "x.json")])
    np.testing.assert_allclose(got[0], HELLO_CONTEXT_0, rtol=1e-12)


def _three_inputs(tmp_path: Path, out_in: bool) -> str:
    """three-inputs with W_q/W_k/W_v as nn.Linear stores them (out, in) or as the seed (in, out)."""
    weights = {"q_proj": THREE_WQ, "k_proj": THREE_WK, "v_proj": THREE_WV}
    tensors = {f"{LAYER}.{n}.weight": np.array(w).T if out_in else np.array(w)
               for n, w in weights.items()}
    return save(tmp_path / f"{'out_in' if out_in else 'in_out'}.safetensors",
                {"embed": np.array(THREE_X), **tensors})


MAPPING = ["--tensor", "x=embed", "--tensor", f"W_q={LAYER}.q_proj.weight",
           "--tensor", f"W_k={LAYER}.k_proj.weight", "--tensor", f"W_v={LAYER}.v_proj.weight"]


def test_nn_linear_checkpoint_with_out_in_matches_the_in_out_run(tmp_path):
    stored = _three_inputs(tmp_path, out_in=True)
    seed = _three_inputs(tmp_path, out_in=False)
    got = context([stored, *MAPPING, "--weight-layout", "out_in", "--no-scale"])
    want = context([seed, *MAPPING, "--weight-layout", "in_out", "--no-scale"])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got[0], THREE_CONTEXT_1, rtol=1e-7)


def test_nn_linear_checkpoint_is_never_transposed_silently(tmp_path):
    # W_q stored (3, 4) does not fit x's width 4 in the default in_out layout
    line = one_error_line(["compute", _three_inputs(tmp_path, out_in=True), *MAPPING])
    assert "W_q" in line and "out_in" in line


def test_square_checkpoint_weights_warn_about_the_layout(tmp_path):
    path = save(tmp_path / "sq.safetensors", {"x": np.array(HELLO_X), "W_q": np.eye(3),
                                              "W_k": np.eye(3), "W_v": np.eye(3)})
    result = invoke(["compute", path])
    assert result.exit_code == 0, result.stderr
    assert "W_q, W_k, W_v used in the in_out layout" in result.stderr
    assert "--weight-layout out_in" in result.stderr
    for layout in ("out_in", "in_out"):
        result = invoke(["compute", path, "--weight-layout", layout])
        assert result.exit_code == 0 and "in_out layout" not in result.stderr


# ---------------------------------------------------------------------------------------------
# BF16 and FP8, which numpy cannot hold


def test_bf16_and_fp8_tensors_are_read_through_torch(tmp_path, torch):
    path = save_raw(tmp_path / "bf16.safetensors", {
        "embed": ("BF16", [3, 3], bf16(HELLO_X)),
        "q_proj.weight": ("F8_E4M3", [2, 2], bytes([0x38, 0x30, 0xC0, 0x3C])),
    })
    arrays = read_safetensors(path, {"x": "embed", "W_q": "q_proj.weight"})
    assert arrays["x"].dtype == np.float32
    np.testing.assert_array_equal(arrays["x"], bf16_values(HELLO_X))
    np.testing.assert_allclose(arrays["x"], HELLO_X, rtol=2 ** -7)  # bf16: 8 significant bits
    # torch reads the same bytes to the same numbers
    bits = torch.frombuffer(bytearray(bf16(HELLO_X)), dtype=torch.bfloat16)
    np.testing.assert_array_equal(arrays["x"].ravel(), bits.float().numpy())
    np.testing.assert_array_equal(arrays["W_q"], [[1.0, 0.5], [-2.0, 1.5]])
    got = context([path, "--tensor", "x=embed"])
    np.testing.assert_allclose(got[0], HELLO_CONTEXT_0, rtol=1e-2)


def test_bf16_without_torch_is_one_clear_error(tmp_path, monkeypatch):
    path = save_raw(tmp_path / "bf16.safetensors", {"embed": ("BF16", [3, 3], bf16(HELLO_X))})
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    line = one_error_line(["compute", path, "--tensor", "x=embed"])
    assert path in line and "x=embed" in line and "BF16" in line and "install torch" in line


def test_unmapped_bf16_tensors_are_never_read(tmp_path, monkeypatch):
    path = save_raw(tmp_path / "mixed.safetensors", {
        "lm_head.weight": ("BF16", [2, 2], bf16([[1, 2], [3, 4]])),
        "embed": ("F64", [3, 3], np.array(HELLO_X).astype("<f8").tobytes()),
    })
    monkeypatch.setitem(sys.modules, "torch", None)
    got = context([path, "--tensor", "x=embed"])
    np.testing.assert_allclose(got[0], HELLO_CONTEXT_0, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Errors: exit status 2 and one stderr line naming the file and the tensor


@pytest.fixture
def checkpoint(tmp_path):
    return save(tmp_path / "model.safetensors", {
        f"{LAYER}.q_proj.weight": np.eye(3), f"{LAYER}.k_proj.weight": np.eye(3),
        "embed_tokens.weight": np.array(HELLO_X)})


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.safetensors")
    assert one_error_line(["compute", path]).endswith(f"{path}: no such file")


def test_directory(tmp_path):
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    assert "is a directory" in one_error_line(["compute", str(folder)])


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all",
                                     b"\xff" * 8 + b"{}", "truncated"])
def test_not_a_safetensors_file(content, checkpoint, tmp_path):
    if content == "truncated":
        content = Path(checkpoint).read_bytes()[:-7]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    line = one_error_line(["compute", str(path), "--tensor", "x=embed_tokens.weight"])
    assert f"{path}: not a safetensors file" in line


def test_mapped_name_not_in_the_file_lists_the_closest(checkpoint):
    line = one_error_line(["compute", checkpoint, "--tensor", "x=embed_token.weight"])
    assert f"{checkpoint}: x=embed_token.weight: no tensor 'embed_token.weight'" in line
    assert "closest: embed_tokens.weight" in line
    line = one_error_line(["compute", checkpoint, "--tensor",
                           "W_q=model.layers.0.self_attn.q.weight"])
    assert f"closest: {LAYER}.q_proj.weight, {LAYER}.k_proj.weight" in line


def test_no_tensor_named_like_a_key(checkpoint):
    line = one_error_line(["compute", checkpoint])
    assert f"{checkpoint}: no tensor named like a problem key" in line
    assert "embed_tokens.weight" in line and "--tensor KEY=NAME" in line


@pytest.mark.parametrize(("item", "message"), [
    ("W_q", "expected KEY=NAME"),
    ("=embed_tokens.weight", "expected KEY=NAME"),
    ("W_q=", "expected KEY=NAME"),
    ("W_query=embed_tokens.weight", "unknown key 'W_query' looks like 'W_q'; write it 'W_q' "
                                    "(key names are exact)"),
    ("tokens=embed_tokens.weight", "'tokens' is not a key a tensor can fill (one of x, "),
    ("W_qq=embed_tokens.weight", "'W_qq' is not a key a tensor can fill; did you mean 'W_q'?"),
])
def test_malformed_tensor_option(item, message, checkpoint):
    line = one_error_line(["compute", checkpoint, "--tensor", item])
    assert f"--tensor {item!r}: {message}" in line


@pytest.mark.parametrize(("key", "message"), [
    # once difflib's guesses, case-sensitive: w_q → 'b_q', W_0 → 'W_v', query → 'memory', and
    # key → no hint at all; now the rule of problem files (attncli.problem.refusal)
    ("w_q", "unknown key 'w_q' looks like 'W_q'"),
    ("W_0", "unknown key 'W_0' looks like 'W_o'"),
    ("W_out", "unknown key 'W_out' looks like 'W_o'"),
    ("query", "key 'query' is nn.MultiheadAttention's name of an input; attncli's are x "),
    ("key", "key 'key' is nn.MultiheadAttention's name of an input; "),
    ("W_qkv", "key 'W_qkv' looks like a fused projection, W_q, W_k and W_v side by side"),
    ("attention_mask", "key 'attention_mask' is Hugging Face's name"),
])
def test_tensor_keys_get_the_suggestions_of_problem_files(key, message, checkpoint, tmp_path):
    line = one_error_line(["compute", checkpoint, "--sample", "hello-shiny-sun", "--tensor",
                           f"{key}=self_attn.q_proj.weight"])
    assert line.startswith(f"attncli: error: --tensor '{key}=self_attn.q_proj.weight': "
                           f"{message}"), line
    # the same words for the same key in a JSON problem file
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"x": HELLO_X, key: [[1.0]]}))
    assert f"{problem}: {message}" in one_error_line(["compute", str(problem)])


ALL_TENSOR_KEYS = ("x, memory, key_memory, value_memory, W_q, W_k, W_v, b_q, b_k, b_v, q_norm, "
                   "k_norm, W_o, b_o, W_a, U_a, v_a, b_a, alibi_slopes, bias, sinks, positions, "
                   "key_positions, mask, key_padding_mask, dropout_mask")


@pytest.mark.parametrize(("key", "reason"), [
    ("tokens", f"'tokens' is not a key a tensor can fill (one of {ALL_TENSOR_KEYS})"),
    ("W_qq", "'W_qq' is not a key a tensor can fill; did you mean 'W_q'?"),
    ("w_q", "unknown key 'w_q' looks like 'W_q'; write it 'W_q' (key names are exact)"),
])
def test_one_check_of_a_tensor_key_for_the_option_and_the_library(key, reason, checkpoint):
    # require_tensor_key is the check; --tensor and read_safetensors each put their own words
    # (the item as typed, or FILE: KEY=NAME) before the same reason
    with pytest.raises(InputError) as caught:
        require_tensor_key(key, "WHERE")
    assert str(caught.value) == f"WHERE: {reason}"
    line = one_error_line(["compute", checkpoint, "--tensor", f"{key}=embed_tokens.weight"])
    assert line == f"attncli: error: --tensor '{key}=embed_tokens.weight': {reason}"
    with pytest.raises(InputError) as caught:
        read_safetensors(checkpoint, {key: "embed_tokens.weight"})
    assert str(caught.value) == f"{checkpoint}: {key}=embed_tokens.weight: {reason}"


@pytest.mark.parametrize("key", ["x", "W_q", "b_o", "mask", "key_padding_mask", "dropout_mask"])
def test_a_key_a_tensor_can_fill_passes(key):
    require_tensor_key(key, "WHERE")  # no error


def test_a_key_mapped_twice(checkpoint):
    line = one_error_line(["compute", checkpoint, "--tensor", "x=a", "--tensor", "x=b"])
    assert "x is already mapped to 'a'" in line


@pytest.mark.parametrize("command", ["compute", "explain", "check"])
def test_tensor_without_a_safetensors_file(command, tmp_path):
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"x": HELLO_X}))
    extra = {"explain": ["--query", "0"], "check": [str(problem)]}.get(command, [])
    line = one_error_line([command, str(problem), *extra, "--tensor", "x=embed"])
    assert f"--tensor maps the tensor names of a .safetensors problem FILE; got {problem}" in line
    line = one_error_line(["compute", "--sample", "hello-shiny-sun", "--tensor", "x=embed"])
    assert "got no FILE" in line


def test_a_checkpoint_given_for_one_key(checkpoint, tmp_path):
    line = one_error_line(["compute", "--sample", "hello-shiny-sun", "--wq", checkpoint])
    assert "give it as the problem FILE, with --tensor W_q=NAME" in line


def test_python_api_errors(checkpoint, tmp_path):
    with pytest.raises(InputError, match=r"model\.safetensors: W_query=embed_tokens\.weight: "
                                         r"unknown key 'W_query' looks like 'W_q'"):
        read_safetensors(checkpoint, {"W_query": "embed_tokens.weight"})
    with pytest.raises(InputError, match=r"model\.safetensors: tokens=embed_tokens\.weight: "
                                         r"'tokens' is not a key a tensor can fill"):
        read_safetensors(checkpoint, {"tokens": "embed_tokens.weight"})
    with pytest.raises(InputError, match="tensors map the names of a .safetensors problem file"):
        load_problem(tmp_path / "p.json", tensors={"x": "embed"})


# ---------------------------------------------------------------------------------------------
# The README's example (a bash block: it writes a file first, so tests/test_readme.py, which
# runs the console blocks from the repository root, leaves it to this test)


def test_readme_example_runs_as_written(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Real checkpoints (safetensors)\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    make, command = block.replace("\\\n", " ").strip().splitlines()
    monkeypatch.chdir(tmp_path)
    assert make.startswith("python -c ")
    subprocess.run([sys.executable, *shlex.split(make)[1:]], check=True)
    assert command.startswith("attncli compute layer.safetensors ")
    result = invoke([*shlex.split(command)[1:], "--json"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stderr == ""  # the layout is chosen: no warning
    data = json.loads(result.stdout)["steps"]["context"]["data"]
    np.testing.assert_allclose(data, [0.39896024, 0.38542429, 0.86095114], rtol=1e-7)  # --query
    assert "[0.3990, 0.3854, 0.8610]" in section
