"""The errors contract: bad input never ends in a traceback. It prints one line on stderr,
"attncli: error: …", naming the file, the key and the shapes, and exits with status 2;
--debug lets the exception through instead."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app
from attncli.errors import AttncliError, BackendError, ConfigError, InputError

runner = CliRunner()

HELLO = ["--sample", "hello-shiny-sun"]
X = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]
EYE = np.eye(3).tolist()


def invoke(args: list[str], input: str | None = None, **kwargs):
    return runner.invoke(app, args, input=input, env={"COLUMNS": "200"}, **kwargs)


def one_error_line(result) -> str:
    """Assert the contract on a finished run; return the message after 'attncli: error: '."""
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert not isinstance(result.exception, AttncliError), result.exception
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].strip(), f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith("attncli: error: "), line
    assert result.stdout == "", "nothing on stdout for a failed run"
    assert result.exit_code == 2, (result.exit_code, line)
    return line[len("attncli: error: "):]


@dataclass
class Case:
    """files: name → text (str), raw bytes, or an ndarray saved with numpy.save."""

    args: list[str]
    words: list[str]
    files: dict[str, object] = field(default_factory=dict)
    stdin: str | None = None


def _json(obj) -> str:
    return json.dumps(obj)


CASES: dict[str, Case] = {
    "missing-file": Case(["compute", "nowhere.json"], ["nowhere.json", "no such file"]),
    "missing-option-file": Case(["compute", *HELLO, "--wk", "wk.csv"], ["wk.csv", "no such file"]),
    "missing-npy": Case(["compute", "x.npy"], ["x.npy", "no such file"]),
    "directory": Case(["compute", "adir.json"], ["adir.json", "directory"],
                      files={"adir.json/": ""}),
    "invalid-json": Case(["compute", "p.json"], ["p.json", "invalid JSON", "line 2", "column 13"],
                         files={"p.json": '{"x": [[1, 2],\n         [3 4]]}'}),
    "invalid-json-stdin": Case(["compute", "-"], ["<stdin>", "invalid JSON", "line 1"],
                               stdin='{"x": [[1, 2]'),
    "empty-stdin": Case(["compute", "-"], ["<stdin>", "empty"], stdin=""),
    "json-not-an-object": Case(["compute", "p.json"], ["p.json", "object", "list"],
                               files={"p.json": "[[1, 2], [3, 4]]"}),
    "json-a-number": Case(["compute", "p.json"], ["p.json", "object", "int"],
                          files={"p.json": "42"}),
    "ragged": Case(["compute", "p.json"], ["p.json", "x", "ragged"],
                   files={"p.json": _json({"x": [[1, 2, 3], [4, 5]]})}),
    "ragged-weight": Case(["compute", *HELLO, "--wq", "wq.json"], ["wq.json", "W_q", "ragged"],
                          files={"wq.json": _json([[1, 2], [3], [4, 5]])}),
    "non-numeric": Case(["compute", "p.json"], ["p.json", "x", "numbers expected", "'big'"],
                        files={"p.json": _json({"x": [[0.5, "big"], [0.25, 0.75]]})}),
    "null": Case(["compute", "p.json"], ["p.json", "x", "null"],
                 files={"p.json": _json({"x": [[0.5, None], [0.25, 0.75]]})}),
    "booleans": Case(["compute", "p.json"], ["p.json", "x", "true/false"],
                     files={"p.json": _json({"x": [[True, False], [False, True]]})}),
    "numbers-as-strings": Case(["compute", "p.json"],
                               ["p.json", "x", "the string", "without quotes", "'1.5'", "quotes"],
                               files={"p.json": _json({"x": [["1.5", "2"], ["3", "4"]]})}),
    "nan": Case(["compute", "p.json"], ["p.json", "x", "nan", "[0, 1]", "finite"],
                files={"p.json": '{"x": [[1, NaN], [3, 4]]}'}),
    "infinity": Case(["compute", "p.json"], ["p.json", "W_q", "inf", "[1, 0]", "finite"],
                     files={"p.json": '{"x": [[1, 2], [3, 4]], "W_q": [[1, 0], [-Infinity, 1]]}'}),
    "empty-array": Case(["compute", "p.json"], ["p.json", "x", "empty"],
                        files={"p.json": _json({"x": []})}),
    "empty-rows": Case(["compute", "p.json"], ["p.json", "x", "empty", "(2, 0)"],
                       files={"p.json": _json({"x": [[], []]})}),
    "wrong-rank": Case(["compute", "p.json"], ["p.json", "x", "2-D or 3-D", "(3,)"],
                       files={"p.json": _json({"x": [1, 2, 3]})}),
    "w_k-shape": Case(["compute", "p.json"], ["p.json", "W_k", "got (4, 2)", "expected (3,"],
                      files={"p.json": _json({"x": X, "W_q": EYE, "W_k": [[1, 0]] * 4,
                                              "W_v": EYE})}),
    "w_k-shape-option": Case(["compute", *HELLO, "--wq", "w.csv", "--wk", "wk.csv", "--wv",
                              "w.csv"], ["wk.csv", "W_k", "got (2, 2)", "expected (3,"],
                             files={"wk.csv": "1,0\n0,1\n", "w.csv": "1,0,0\n0,1,0\n0,0,1\n"}),
    "w_q-out-in": Case(["compute", "p.json"], ["p.json", "W_q", "(2, 3)", "out_in"],
                       files={"p.json": _json({"x": X, "W_q": [[1, 0, 1], [0, 1, 1]],
                                               "W_k": [[1, 0], [0, 1], [1, 1]],
                                               "W_v": [[1, 0], [0, 1], [1, 1]]})}),
    "w_q-in-out-under-out-in": Case(
        ["compute", "p.json", "--weight-layout", "out_in"], ["p.json", "W_q", "(3, 2)", "in_out"],
        files={"p.json": _json({"x": X, "W_q": [[1, 0], [0, 1], [1, 1]],
                                "W_k": [[1, 0, 1], [0, 1, 1]], "W_v": [[1, 0, 1], [0, 1, 1]]})}),
    "heads-do-not-divide": Case(["compute", *HELLO, "--heads", "2"], ["width 3", "--heads 2"]),
    "heads-do-not-divide-weights": Case(
        ["compute", "p.json", "--heads", "2"], ["p.json", "W_q", "width 3", "--heads 2"],
        files={"p.json": _json({"x": X, "W_q": EYE, "W_k": EYE, "W_v": EYE})}),
    "negative-window": Case(["compute", *HELLO, "--window", "-1"], ["--window", "-1"]),
    "dropout-one": Case(["compute", *HELLO, "--dropout", "1.0"], ["--dropout", "[0, 1)", "1.0"]),
    "dropout-negative": Case(["compute", *HELLO, "--dropout", "-0.1"],
                             ["--dropout", "[0, 1)", "-0.1"]),
    "zero-heads": Case(["compute", *HELLO, "--heads", "0"], ["--heads", "0"]),
    "zero-temperature": Case(["compute", *HELLO, "--temperature", "0"], ["--temperature"]),
    "top-k-too-large": Case(["compute", *HELLO, "--normalize", "topk", "--top-k", "5"],
                            ["--top-k 5", "3 keys"]),
    "unknown-query": Case(["compute", *HELLO, "--query", "moon"],
                          ["'moon'", "Hello", "shiny", "sun"]),
    "query-index-out-of-range": Case(["compute", *HELLO, "--query", "3"], ["'3'", "0 … 2"]),
    "unknown-step": Case(["compute", *HELLO, "--steps", "weights,attention"],
                         ["--steps", "attention", "weights"]),
    "tokens-count": Case(["compute", "p.json"], ["p.json", "tokens", "2 labels", "3 rows"],
                         files={"p.json": _json({"x": X, "tokens": ["Hello", "shiny"]})}),
    "tokens-count-option": Case(["compute", "p.json", "--x", "x.csv"],
                                ["tokens", "3 labels", "2 rows"],
                                files={"p.json": _json({"x": X, "tokens": ["a", "b", "c"]}),
                                       "x.csv": "1,2,3\n4,5,6\n"}),
    "tokens-not-strings": Case(["compute", "p.json"], ["p.json", "tokens", "strings"],
                               files={"p.json": _json({"x": X, "tokens": ["a", None, "c"]})}),
    "mask-shape": Case(["compute", "p.json"], ["p.json", "mask", "(3, 3)", "got (3, 2)"],
                       files={"p.json": _json({"x": X, "mask": [[1, 0], [1, 1], [1, 1]]})}),
    "mask-shape-option": Case(["compute", *HELLO, "--mask", "mask.csv"],
                              ["mask.csv", "mask", "(3, 3)", "got (2, 3)"],
                              files={"mask.csv": "1,0,0\n1,1,0\n"}),
    "mask-not-boolean": Case(["compute", "p.json"], ["p.json", "mask", "0/1"],
                             files={"p.json": _json({"x": X, "mask": [[1, 0, 2]] * 3})}),
    "bad-csv-cell": Case(["compute", "x.csv"], ["x.csv", "row 3", "column 2", "'oops'"],
                         files={"x.csv": "d0,d1,d2\n0.34,0.22,0.54\n0.53,oops,0.98\n"}),
    "bad-csv-cell-labelled": Case(["compute", *HELLO, "--x", "x.csv"],
                                  ["x.csv", "row 2", "column 4", "'1,5'"],
                                  files={"x.csv": 'Hello,0.34,0.22,0.54\nshiny,0.53,0.34,"1,5"\n'
                                                  "sun,0.29,0.54,0.93\n"}),
    "ragged-csv": Case(["compute", "x.csv"], ["x.csv", "columns", "2", "3"],
                       files={"x.csv": "1,2,3\n4,5\n"}),
    "empty-csv": Case(["compute", "x.csv"], ["x.csv", "empty"], files={"x.csv": "\n\n"}),
    "binary-csv": Case(["compute", "x.csv"], ["x.csv", "UTF-8"],
                       files={"x.csv": b"\xff\xfe\x00\x01binary"}),
    "pickled-npy": Case(["compute", "obj.npy"], ["obj.npy", "Python objects"],
                        files={"obj.npy": np.array([{"x": 1}, None], dtype=object)}),
    "pickle-named-npy": Case(["compute", "x.npy"], ["x.npy", "not a readable NumPy file"],
                             files={"x.npy": pickle.dumps([[1.0, 2.0], [3.0, 4.0]])}),
    "corrupt-npy": Case(["compute", "x.npy"], ["x.npy", "not a readable NumPy file"],
                        files={"x.npy": b"\x93NUMPY\x01\x00garbage"}),
    "truncated-npy": Case(["compute", "x.npy"], ["x.npy"], files={"x.npy": "truncate"}),
    "corrupt-npz": Case(["compute", "p.npz"], ["p.npz"], files={"p.npz": b"PK\x03\x04broken"}),
    "npz-for-a-key": Case(["compute", *HELLO, "--wq", "w.npz"], ["w.npz", "W_q"],
                          files={"w.npz": "npz"}),
    "unknown-sample": Case(["compute", "--sample", "hello-moon"],
                           ["'hello-moon'", "hello-shiny-sun", "three-inputs"]),
    "dropout-mask-without-dropout": Case(
        ["compute", "p.json"], ["p.json", "dropout_mask", "--dropout"],
        files={"p.json": _json({"x": X, "dropout_mask": [[1, 0, 1], [1, 1, 0], [0, 1, 1]]})}),
    "dropout-mask-shape": Case(
        ["compute", "p.json", "--dropout", "0.5"], ["p.json", "dropout_mask", "(3, 3)", "(2, 3)"],
        files={"p.json": _json({"x": X, "dropout_mask": [[1, 0, 1], [1, 1, 0]]})}),
    "bad-weight-layout": Case(["compute", "p.json"], ["p.json", "weight_layout", "'rows'"],
                              files={"p.json": _json({"x": X, "weight_layout": "rows"})}),
    "bad-config-field": Case(["compute", "p.json"], ["p.json", "config.causal", "bool"],
                             files={"p.json": _json({"x": X, "config": {"causal": "yes"}})}),
    "unknown-config-field": Case(["compute", "p.json"], ["p.json", "config.casual"],
                                 files={"p.json": _json({"x": X, "config": {"casual": True}})}),
    "set-without-equals": Case(["compute", *HELLO, "--set", "b_q"], ["--set", "'b_q'", "KEY=FILE"]),
    "no-x": Case(["compute", "p.json"], ["x"], files={"p.json": _json({"tokens": ["a"]})}),
    "general-score-without-w_a": Case(["compute", *HELLO, "--score", "general"],
                                      ["W_a", "(3, 3)"]),
    "b_o-without-w_o": Case(["compute", "p.json"], ["p.json", "b_o", "W_o"],
                            files={"p.json": _json({"x": X, "b_o": [1, 2, 3]})}),
    "memory-width": Case(["compute", "p.json"], ["3 (p.json: x itself, no W_q) vs 2 (p.json: memory itself, no W_k)"],
                         files={"p.json": _json({"x": X, "memory": [[1, 2], [3, 4]]})}),
    "scores-overflow": Case(["compute", "p.json"], ["overflow", "float64"],
                            files={"p.json": _json({"x": [[1e200, 1e200], [1, 1]]})}),
    # Found by review: each of these once ended in an internal error (exit 70) or passed.
    "bool-among-numbers": Case(["compute", "p.json"], ["p.json", "x", "true/false among them"],
                               files={"p.json": _json({"x": [[1, True], [0, 1]]})}),
    "config-variant-list": Case(["compute", "p.json"], ["p.json", "config.variant"],
                                files={"p.json": _json({"x": X, "config": {"variant": ["a"]}})}),
    "negative-seed": Case(["compute", *HELLO, "--dropout", "0.5", "--seed", "-1"],
                          ["--seed", "2**63", "-1"]),
    "huge-seed-in-file": Case(["compute", "p.json", "--dropout", "0.5"],
                              ["p.json", "config.seed"],
                              files={"p.json": _json({"x": X, "config": {"seed": 1e30}})}),
    "huge-window-in-file": Case(["compute", "p.json"], ["p.json", "config.window"],
                                files={"p.json": _json({"x": X, "config": {"window": 1e300}})}),
    "query-double-minus": Case(["compute", *HELLO, "--query=--1"], ["--query", "'--1'"]),
    "query-superscript": Case(["compute", *HELLO, "--query", "²"], ["--query", "'²'"]),
    "json-huge-integer": Case(["compute", "p.json"], ["p.json", "unreadable JSON number"],
                              files={"p.json": '{"x": [[' + "9" * 5000 + "]]}"}),
    "csv-typo-in-first-row": Case(["compute", "x.csv"], ["x.csv", "row 1", "column 3", "'0.3o'"],
                                  files={"x.csv": "0.1,0.2,0.3o\n0.4,0.5,0.6\n"}),
    "no-scale-and-scale": Case(["compute", *HELLO, "--no-scale", "--scale", "0.5"],
                               ["--no-scale", "--scale"]),
    "json-and-csv": Case(["compute", *HELLO, "--json", "--format", "csv"], ["--json", "csv"]),
    "set-empty-key": Case(["compute", *HELLO, "--set", " =m.csv"], ["--set", "KEY=FILE"]),
}


def _make_files(tmp_path: Path, files: dict[str, object]) -> None:
    for name, content in files.items():
        path = tmp_path / name.rstrip("/")
        if name.endswith("/"):
            path.mkdir()
        elif isinstance(content, np.ndarray):
            with open(path, "wb") as handle:
                np.save(handle, content, allow_pickle=True)
        elif content == "truncate":
            np.save(path, np.arange(1000.0))
            path.write_bytes(path.read_bytes()[:300])
        elif content == "npz":
            with open(path, "wb") as handle:
                np.savez(handle, W_q=np.eye(3))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content), encoding="utf-8")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_status_2(name, tmp_path, monkeypatch):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)
    _make_files(tmp_path, case.files)
    message = one_error_line(invoke(case.args, case.stdin))
    for word in case.words:
        assert word in message, f"{word!r} not in {message!r}"


def test_device_cuda_without_a_gpu(torch, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = one_error_line(invoke(["compute", *HELLO, "--device", "cuda"]))
    assert "cuda" in message
    assert "cpu" in message.lower()


def test_device_cuda_without_a_gpu_suggests_device_cpu(torch, monkeypatch):
    # --backend is not given: a non-cpu device means torch (attncli.backend.resolve), so the
    # message is torch's "device 'cuda' is not available …: use --device cpu", not a hint to
    # add --backend torch (which would only lead to that second error)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = one_error_line(invoke(["compute", *HELLO, "--device", "cuda"]))
    assert "--device cpu" in message
    assert "not available" in message


def test_device_cuda_with_torch_backend_without_a_gpu(torch, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = one_error_line(invoke(["compute", *HELLO, "--device", "cuda:0",
                                     "--backend", "torch"]))
    assert "'cuda:0'" in message and "--device cpu" in message


def test_unknown_device(torch):
    message = one_error_line(invoke(["compute", *HELLO, "--device", "tpu",
                                     "--backend", "torch"]))
    assert "'tpu'" in message and "cpu" in message


def test_torch_backend_when_torch_cannot_be_imported(monkeypatch):
    monkeypatch.setattr("attncli.backend.torch_installed", lambda: False)
    message = one_error_line(invoke(["compute", *HELLO, "--backend", "torch"]))
    assert "torch" in message
    assert "not installed" in message
    assert "pip install" in message


def test_debug_reraises_the_attncli_error(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"x": X, "W_k": [[1, 0]] * 4}), encoding="utf-8")
    result = invoke(["compute", str(tmp_path / "p.json"), "--debug"])
    assert isinstance(result.exception, InputError)
    assert not isinstance(result.exception, SystemExit)
    assert "W_k" in str(result.exception)
    assert "attncli: error" not in result.stderr


@pytest.mark.parametrize(("args", "kind"), [
    (["--window", "-1"], ConfigError),
    (["--query", "moon"], InputError),
    (["--steps", "nope"], InputError),
])
def test_debug_reraises_each_kind(args, kind):
    result = invoke(["compute", *HELLO, *args, "--debug"])
    assert type(result.exception) is kind
    assert result.exc_info is not None and result.exc_info[2] is not None  # a traceback


def test_debug_reraises_backend_error(monkeypatch):
    monkeypatch.setattr("attncli.backend.torch_installed", lambda: False)
    result = invoke(["compute", *HELLO, "--backend", "torch", "--debug"])
    assert isinstance(result.exception, BackendError)


def test_errors_exit_2_in_a_real_process(tmp_path):
    # no CliRunner: the console script's own exit status and stderr
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "attncli", "compute", str(tmp_path / "no.json")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("attncli: error: ")
    assert "no.json" in done.stderr and "Traceback" not in done.stderr


def test_output_into_a_directory_is_an_input_error(tmp_path):
    # -o names a directory: bad input (status 2), not an internal error (status 70)
    (tmp_path / "out").mkdir()
    message = one_error_line(invoke(["compute", *HELLO, "--json", "-o", str(tmp_path / "out")]))
    assert "out" in message
    assert "directory" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary file left


def test_output_into_a_missing_directory(tmp_path):
    message = one_error_line(invoke(["compute", *HELLO, "--json",
                                     "-o", str(tmp_path / "no" / "out.json")]))
    assert "out.json" in message


def test_bad_csv_cell_after_blank_lines_names_the_file_row(tmp_path):
    # the cell is on line 4 of the file; blank lines are skipped but still count as rows
    (tmp_path / "x.csv").write_text("1,2\n\n3,4\n5,x\n", encoding="utf-8")
    message = one_error_line(invoke(["compute", str(tmp_path / "x.csv")]))
    assert "row 4" in message and "column 2" in message


def test_unknown_json_key_warns_and_succeeds(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"x": X, "remarks": "by hand"}), encoding="utf-8")
    result = invoke(["compute", str(tmp_path / "p.json"), "--json", "--steps", "queries"])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1
    assert warnings[0].startswith("attncli: warning: ")
    assert "'remarks'" in warnings[0] and "did you mean" not in warnings[0]
    assert "error" not in result.stderr
    doc = json.loads(result.stdout)
    assert doc["steps"]["queries"]["formula"] == "queries = x"  # the unknown key was ignored
    assert any("remarks" in w for w in doc["warnings"])


@pytest.mark.parametrize("key, known", [("W_query", "W_q"), ("wk", "W_k"), ("W_V", "W_v")])
def test_a_look_alike_key_is_an_error_not_a_run_without_it(key, known, tmp_path):
    # once a warning and a run with K = x (or V = x): W_k ignored, a number silently wrong
    weights = {"W_q": EYE, "W_k": EYE, "W_v": EYE}
    weights[key] = weights.pop(known)
    (tmp_path / "p.json").write_text(json.dumps({"x": X, **weights}), encoding="utf-8")
    message = one_error_line(invoke(["compute", str(tmp_path / "p.json")]))
    assert message.endswith(f"p.json: unknown key {key!r} looks like {known!r}; write it "
                            f"{known!r} (key names are exact)")


def test_output_extension_that_is_no_format_is_refused_before_the_run(tmp_path):
    # once: a table written into results.xlsx
    target = tmp_path / "results.xlsx"
    message = one_error_line(invoke(["compute", *HELLO, "-o", str(target)]))
    assert ".xlsx is no format attncli writes" in message
    for ext in (".json", ".csv", ".md", ".npz", ".npy", ".py"):
        assert ext in message
    assert not target.exists()
    # --format says what to write, whatever the extension
    assert invoke(["compute", *HELLO, "--format", "csv", "-o", str(target)]).exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("step,batch,head,row")


@pytest.mark.parametrize("name", ["w.png", "w.svg", "w.pdf"])
def test_output_to_an_image_points_to_plot(name, tmp_path):
    # once: ".png is no format attncli writes", with no word of --plot
    target = tmp_path / name
    message = one_error_line(invoke(["compute", *HELLO, "-o", str(target)]))
    assert message == (f"-o {target}: an image is drawn with --plot {target}; -o writes the "
                       "steps as text or arrays")
    assert not target.exists()


def test_the_images_o_refuses_are_those_plot_draws():
    from attncli.render.plot import FORMATS
    from attncli.render.registry import IMAGE_EXTENSIONS

    assert set(IMAGE_EXTENSIONS) == set(FORMATS)


@pytest.mark.parametrize("name", [".json", ".csv", ".txt", ".png"])
def test_output_named_only_by_an_extension_is_refused(name, tmp_path):
    # once: -o .json wrote a table into a hidden file named .json
    target = tmp_path / name
    message = one_error_line(invoke(["compute", *HELLO, "-o", str(target)]))
    assert message == (f"-o {target}: a file name that is only an extension; give a name "
                       f"before it, e.g. -o steps{name}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_output_that_names_no_file_is_a_usage_error(option, tmp_path, monkeypatch):
    # Path('') is '.' and Path('dir/') is 'dir': once "-o '': .: is a directory", and
    # -o dir/ (no such folder) wrote a file named dir
    monkeypatch.chdir(tmp_path)
    empty = invoke(["compute", *HELLO, option, ""])
    assert empty.exit_code == 2 and "an empty name is no file; give a file name" in empty.stderr
    folder = invoke(["compute", *HELLO, option, "dir/"])
    assert folder.exit_code == 2
    assert "'dir/' ends in /, a folder, not a file; give a file name in it (dir/NAME)" in \
        folder.stderr
    assert list(tmp_path.iterdir()) == []
    for command in (["check", *HELLO, "answers.json"], ["explain", *HELLO, "--query", "0"]):
        result = invoke([*command, "-o", "dir/"])
        assert result.exit_code == 2 and "'dir/' ends in /, a folder" in result.stderr


def test_a_problem_file_given_with_sample_to_check_is_named(tmp_path):
    # once: the problem file was graded as answers: "x: not a step"
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"x": X}), encoding="utf-8")
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"context": X}), encoding="utf-8")
    message = one_error_line(invoke(["check", *HELLO, str(problem), str(answers)]))
    assert message == (f"{problem}: gives x, a problem's inputs, not answers: with --sample "
                       "hello-shiny-sun every FILE is ANSWERS; a PROBLEM file goes with no "
                       "--sample (attncli check PROBLEM ANSWERS)")
    # without --sample, the same two files are PROBLEM and ANSWERS, and graded: the context
    # given (x itself) is not the exact one, so status 1
    assert invoke(["check", str(problem), str(answers)]).exit_code == 1


def test_standard_input_given_twice_to_compute(tmp_path):
    # once: the second reader found stdin empty ("<stdin>: empty file")
    message = one_error_line(invoke(["compute", "-", "--x", "-"], input=json.dumps({"x": X})))
    assert message == ("- (standard input) is given for FILE and the x file, but it can be "
                       "read only once: save all but one of them to files")


@pytest.mark.parametrize("item, message", [
    # once a warning, "unknown key 'W_out' ignored", and a run without the key
    ("W_out={file}", "--set 'W_out={file}': unknown key 'W_out' looks like 'W_o'; write it "
                     "'W_o' (key names are exact)"),
    ("foo={file}", "--set 'foo={file}': 'foo' is not a problem key (one of x, memory, "),
    ("attention_mask={file}", "--set 'attention_mask={file}': key 'attention_mask' is Hugging "
                              "Face's name"),
])
def test_a_key_named_by_set_must_be_a_problem_key(item, message, tmp_path):
    eye = tmp_path / "I.csv"
    eye.write_text("1,0,0\n0,1,0\n0,0,1\n", encoding="utf-8")
    line = one_error_line(invoke(["compute", *HELLO, "--set", item.format(file=eye)]))
    assert line.startswith(message.format(file=eye)), line


def test_a_problem_file_and_a_sample_are_refused_together(tmp_path):
    # once: the file's keys silently replaced some of the sample's
    (tmp_path / "p.json").write_text(json.dumps({"x": X}), encoding="utf-8")
    message = one_error_line(invoke(["compute", str(tmp_path / "p.json"), *HELLO]))
    assert "p.json and --sample hello-shiny-sun: give one problem, not both" in message


def _run_module(*args: str, cwd: Path):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True,
                          text=True, timeout=60, check=False, cwd=cwd)


def test_overflowing_scores_are_one_line_in_a_real_process(tmp_path):
    # CliRunner runs under pytest's warning capture; a real process shows what a user sees:
    # numpy's RuntimeWarning must not add lines before the error
    (tmp_path / "p.json").write_text(_json({"x": [[1e200, 1e200], [1, 1]]}), encoding="utf-8")
    done = _run_module("compute", "p.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("attncli: error: ") and "overflow" in done.stderr


def test_tiny_temperature_is_an_error_or_finite_weights(tmp_path):
    # --temperature 1e-310 passes validation (positive, finite) but scores / T overflow
    done = _run_module("compute", "--sample", "hello-shiny-sun", "--temperature", "1e-310",
                       "--json", "--steps", "weights", cwd=tmp_path)
    assert "RuntimeWarning" not in done.stderr, done.stderr
    if done.returncode == 2:
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("attncli: error: ")
        assert "temperature" in done.stderr or "overflow" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        weights = json.loads(done.stdout)["steps"]["weights"]["data"]
        assert all(v is not None for row in weights for v in row), weights
        assert [sum(row) for row in weights] == pytest.approx([1, 1, 1])
