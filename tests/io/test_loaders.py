"""The loaders through their one entry point, attncli.io.load_problem: JSON, CSV (header or not,
label column, BOM, CRLF, tabs), NPY, NPZ, bundled samples, and per-key files winning over the
keys of the problem file."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from attncli import attend
from attncli.config import Layout, Score
from attncli.errors import InputError
from attncli.io import load_problem, reading
from attncli.samples import names

X = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]
TOKENS = ["Hello", "shiny", "sun"]
# hello-shiny-sun: context of "shiny" (see tests/test_cli.py for the arithmetic)
CONTEXT_SHINY = [0.39896024, 0.38542429, 0.86095114]


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return str(path)


def assert_x(problem, tokens=None):
    assert problem["x"].dtype == np.float64
    np.testing.assert_array_equal(problem["x"], np.array(X))
    assert problem.tokens == tokens


# ---------------------------------------------------------------------------------------------
# JSON


def test_json_problem_file(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({
        "x": X, "tokens": TOKENS, "W_q": [[1, 0], [0, 1], [1, 1]],
        "weight_layout": "in_out", "config": {"score": "dot", "heads": 1},
        "about": "a test", "mask": [[1, 0, 0], [1, 1, 0], [1, 1, 1]],
    }))
    problem = load_problem(path)
    assert_x(problem, TOKENS)
    assert problem["W_q"].shape == (3, 2)
    assert problem["W_q"].dtype == np.float64  # integers become floats
    assert problem["mask"].dtype == np.bool_
    np.testing.assert_array_equal(problem["mask"], np.tril(np.ones((3, 3), bool)))
    assert problem.weight_layout is Layout.in_out
    assert problem.config == {"score": Score.dot, "heads": 1}
    assert problem.about == "a test"
    assert problem.origin["x"] == path
    assert problem.warnings == []


def test_json_path_object_and_unicode_tokens(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"x": X, "tokens": ["Grüß", "dich", "☀"]}, ensure_ascii=False),
                    encoding="utf-8")
    problem = load_problem(path)
    assert problem.tokens == ["Grüß", "dich", "☀"]


def test_json_with_bom(tmp_path):
    path = write(tmp_path / "p.json", "\ufeff" + json.dumps({"x": X}))
    assert_x(load_problem(path))


def test_batched_json(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({"x": [X, X]}))
    assert load_problem(path)["x"].shape == (2, 3, 3)


def test_unknown_json_key_warns_with_the_closest_known_key(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({"x": X, "W_qq": [[1, 0], [0, 1], [1, 1]]}))
    problem = load_problem(path)
    assert "W_qq" not in problem and "W_q" not in problem
    assert len(problem.warnings) == 1
    assert "'W_qq'" in problem.warnings[0] and "'W_q'" in problem.warnings[0]


def test_key_memory_labels_come_from_its_csv(tmp_path):
    # a first column of strings labels the keys, as it does for memory
    keys = write(tmp_path / "k.csv", "du,1,0\nmir,0,1\n")
    values = write(tmp_path / "v.csv", "1,2\n3,4\n")
    problem = load_problem(arrays={"x": str(write(tmp_path / "x.csv", "1,0\n")),
                                   "key_memory": str(keys), "value_memory": str(values)})
    assert problem.memory_tokens == ["du", "mir"]
    assert problem["key_memory"].shape == (2, 2) and problem["value_memory"].shape == (2, 2)


@pytest.mark.parametrize("text, message", [
    ("0.34 0.22 0.54\n0.53 0.34 0.98\n",
     "row 1: '0.34 0.22 0.54': numbers separated by spaces; separate them with commas (or tabs)"),
    ("a b c\n0.34 0.22 0.54\n",
     "row 2: '0.34 0.22 0.54': numbers separated by spaces; separate them with commas (or tabs)"),
    ("Hello 0.34 0.22\n",
     "row 1: 'Hello 0.34 0.22': numbers separated by spaces; separate them with commas (or tabs)"),
    ("1,2 3\n4,5 6\n",
     "row 1, column 2: '2 3' is not a number; separate numbers with the file's delimiter, not "
     "spaces"),
    ("0.34|0.22|0.54\n0.53|0.34|0.98\n",
     "row 1: '0.34|0.22|0.54': numbers separated by '|'; separate them with commas (or tabs)"),
    ("| 0.34 | 0.22 |\n| 0.53 | 0.34 |\n",  # a Markdown table's rows
     "row 1: '| 0.34 | 0.22 |': numbers separated by '|'; separate them with commas (or tabs)"),
    ("Hello|0.34|0.22\n",
     "row 1: 'Hello|0.34|0.22': numbers separated by '|'; separate them with commas (or tabs)"),
    ("0.34:0.22\n", "row 1: '0.34:0.22': numbers separated by ':'; separate them with commas "
                    "(or tabs)"),
    ("1,2|3\n4,5|6\n",
     "row 1, column 2: '2|3' is not a number; separate numbers with the file's delimiter, not "
     "'|'"),
])
def test_a_separator_csv_does_not_know_is_named(tmp_path, text, message):
    # spaces, pipes, colons; once: "x: empty array, shape (2, 0)", each line read as one token
    # label and no numbers
    path = write(tmp_path / "x.csv", text)
    with pytest.raises(InputError) as error:
        load_problem(path)
    assert str(error.value) == f"{path}: {message}"


def test_a_fraction_is_not_taken_for_a_separator(tmp_path):
    # 1/3 is a fraction, not numbers separated by '/': the cell is only not a number
    path = write(tmp_path / "x.csv", "0.5,1/3\n")
    with pytest.raises(InputError) as error:
        load_problem(path)
    assert str(error.value) == f"{path}: row 1, column 2: '1/3' is not a number"


def test_a_key_given_for_a_file_must_be_a_problem_key(tmp_path):
    # once: --set W_out=I.csv and --set foo=I.csv were warnings, and a run without them
    path = write(tmp_path / "w.csv", "1,0\n0,1\n")
    with pytest.raises(InputError) as error:
        load_problem(arrays={"x": path, "W_out": path})
    assert str(error.value) == (f"{path} given for W_out: unknown key 'W_out' looks like 'W_o'; "
                                "write it 'W_o' (key names are exact)")
    with pytest.raises(InputError, match=rf"^{path} given for foo: 'foo' is not a problem key "
                                         r"\(one of x, memory, "):
        load_problem(arrays={"x": path, "foo": path})


def test_standard_input_is_read_once(tmp_path):
    # once: the second reader of - found it empty ("<stdin>: empty file")
    with pytest.raises(InputError) as error:
        load_problem("-", arrays={"x": "-"})
    assert str(error.value) == ("- (standard input) is given for FILE and the x file, but it can "
                                "be read only once: save all but one of them to files")


@pytest.mark.parametrize("text, hint", [
    ("0.34,0.22,0.54\n0.53,0.34,0.98\n", True),  # a CSV: JSON reads 0.34, then "Extra data"
    ('{"x": [[1, 2]\n', False),  # broken JSON: only where it breaks
])
def test_csv_on_standard_input_says_stdin_is_json(text, hint, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    with pytest.raises(InputError) as error:
        load_problem(arrays={"x": "-"})
    assert str(error.value).startswith("<stdin>: invalid JSON at line ")
    assert str(error.value).endswith(" (standard input is read as JSON; give a CSV as a file "
                                     "named *.csv)") is hint


def test_bundled_samples_load():
    assert set(names()) >= {"hello-shiny-sun", "multihead-einsum", "three-inputs",
                            "translation-cross", "your-journey-causal"}
    hello = load_problem(sample="hello-shiny-sun")
    assert_x(hello, TOKENS)
    three = load_problem(sample="three-inputs")
    assert three.config == {"score": Score.dot}
    assert three["W_q"].shape == (4, 3)
    multi = load_problem(sample="multihead-einsum")
    assert multi["W_q"].shape == (4, 8, 2)
    cross = load_problem(sample="translation-cross")
    assert cross.memory_tokens == ["Kannst", "du", "mir", "helfen"]
    assert load_problem(sample="your-journey-causal").config == {"causal": True}


def test_sample_and_file_loaded_together_file_wins(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({"tokens": ["a", "b", "c"]}))
    problem = load_problem(path, sample="hello-shiny-sun")
    assert_x(problem, ["a", "b", "c"])


# ---------------------------------------------------------------------------------------------
# CSV


CSV_CASES = {
    "plain": ("0.34,0.22,0.54\n0.53,0.34,0.98\n0.29,0.54,0.93\n", None),
    "header": ("d0,d1,d2\n0.34,0.22,0.54\n0.53,0.34,0.98\n0.29,0.54,0.93\n", None),
    "labels": ("Hello,0.34,0.22,0.54\nshiny,0.53,0.34,0.98\nsun,0.29,0.54,0.93\n", TOKENS),
    "header-and-labels": ("token,d0,d1,d2\nHello,0.34,0.22,0.54\nshiny,0.53,0.34,0.98\n"
                          "sun,0.29,0.54,0.93\n", TOKENS),
    "empty-corner-header": (",d0,d1,d2\nHello,0.34,0.22,0.54\nshiny,0.53,0.34,0.98\n"
                            "sun,0.29,0.54,0.93\n", TOKENS),
    "spaces-and-no-final-newline": (" 0.34 , 0.22, 0.54\n0.53,0.34,0.98\n0.29, 0.54 ,0.93",
                                    None),
    "blank-lines": ("\n0.34,0.22,0.54\n\n0.53,0.34,0.98\n0.29,0.54,0.93\n\n", None),
    "quoted-labels": ('"Hello",0.34,0.22,0.54\n"shiny",0.53,0.34,0.98\n"sun",0.29,0.54,0.93\n',
                      TOKENS),
    "exponents": ("3.4e-1,2.2E-1,0.54\n0.53,0.34,0.98\n0.29,0.54,9.3e-1\n", None),
}


@pytest.mark.parametrize("variant", ["lf", "crlf", "bom", "bom-crlf"])
@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_as_the_problem_file(case, variant, tmp_path):
    text, tokens = CSV_CASES[case]
    if "crlf" in variant:
        text = text.replace("\n", "\r\n")
    if "bom" in variant:
        text = "\ufeff" + text
    path = write(tmp_path / "x.csv", text.encode("utf-8"))
    assert_x(load_problem(path), tokens)


def test_csv_with_a_pandas_header(tmp_path):
    # pandas.DataFrame(X, index=TOKENS).to_csv() writes an empty corner cell and the integer
    # column names 0, 1, 2: that first row is a header, not a token "" with numbers [0, 1, 2]
    text = ",0,1,2\nHello,0.34,0.22,0.54\nshiny,0.53,0.34,0.98\nsun,0.29,0.54,0.93\n"
    assert_x(load_problem(write(tmp_path / "x.csv", text)), TOKENS)


def test_single_row_csv_with_a_label(tmp_path):
    problem = load_problem(write(tmp_path / "x.csv", "Hello,0.34,0.22,0.54\n"))
    np.testing.assert_array_equal(problem["x"], [X[0]])
    assert problem.tokens == ["Hello"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".CSV"])
@pytest.mark.parametrize("case", ["plain", "header-and-labels"])
def test_tab_separated(case, suffix, tmp_path):
    text, tokens = CSV_CASES[case]
    path = write(tmp_path / f"x{suffix}", text.replace(",", "\t"))
    assert_x(load_problem(path), tokens)


def test_tab_separated_after_a_blank_first_line(tmp_path):
    # blank lines are skipped, so the delimiter is that of the first line with content
    text = "\n0.34\t0.22\t0.54\n0.53\t0.34\t0.98\n0.29\t0.54\t0.93\n"
    assert_x(load_problem(write(tmp_path / "x.csv", text)))


def test_tab_separated_crlf_with_bom(tmp_path):
    text = "\ufefftoken\td0\td1\td2\r\nHello\t0.34\t0.22\t0.54\r\nshiny\t0.53\t0.34\t0.98\r\n" \
           "sun\t0.29\t0.54\t0.93\r\n"
    assert_x(load_problem(write(tmp_path / "x.tsv", text.encode("utf-8"))), TOKENS)


def test_csv_numbers_give_the_seed_result(tmp_path):
    path = write(tmp_path / "x.csv", CSV_CASES["header-and-labels"][0])
    trace = attend(load_problem(path))
    assert trace.query_tokens == TOKENS
    np.testing.assert_allclose(trace["context"][1], CONTEXT_SHINY, atol=1e-8)


def test_csv_label_column_gives_tokens_for_x_and_memory(tmp_path):
    x = write(tmp_path / "x.csv", CSV_CASES["labels"][0])
    memory = write(tmp_path / "m.csv", "Kannst,1,0,0\ndu,0,1,0\n")
    problem = load_problem(arrays={"x": x, "memory": memory})
    assert problem.tokens == TOKENS
    assert problem.memory_tokens == ["Kannst", "du"]
    np.testing.assert_array_equal(problem["memory"], [[1, 0, 0], [0, 1, 0]])


def test_csv_label_column_of_a_weight_is_not_tokens(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({"x": X, "tokens": TOKENS}))
    wq = write(tmp_path / "wq.csv", "a,1,0\nb,0,1\nc,1,1\n")
    problem = load_problem(path, arrays={"W_q": wq})
    assert problem.tokens == TOKENS
    np.testing.assert_array_equal(problem["W_q"], [[1, 0], [0, 1], [1, 1]])


def test_csv_mask_of_zeros_and_ones(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({"x": X}))
    mask = write(tmp_path / "mask.csv", "1,0,0\n1,1,0\n1,1,1\n")
    problem = load_problem(path, arrays={"mask": mask})
    assert problem["mask"].dtype == np.bool_
    np.testing.assert_array_equal(problem["mask"], np.tril(np.ones((3, 3), bool)))


# ---------------------------------------------------------------------------------------------
# NPY and NPZ


def test_npy_as_the_problem_file(tmp_path):
    np.save(tmp_path / "x.npy", np.array(X, dtype=np.float32))
    problem = load_problem(tmp_path / "x.npy")
    assert problem["x"].dtype == np.float64
    np.testing.assert_allclose(problem["x"], X, rtol=1e-7)
    assert problem.tokens is None


def test_npy_integer_array_for_a_key(tmp_path):
    np.save(tmp_path / "wq.npy", np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int64))
    problem = load_problem(sample="hello-shiny-sun", arrays={"W_q": str(tmp_path / "wq.npy")})
    assert problem["W_q"].dtype == np.float64
    np.testing.assert_array_equal(problem["W_q"], [[1, 0], [0, 1], [1, 1]])
    assert problem.origin["W_q"] == str(tmp_path / "wq.npy")


def test_npz_problem_file(tmp_path):
    np.savez(tmp_path / "p.npz", x=np.array(X), tokens=np.array(TOKENS),
             W_q=np.eye(3), mask=np.tril(np.ones((3, 3), bool)))
    problem = load_problem(tmp_path / "p.npz")
    assert_x(problem, TOKENS)
    np.testing.assert_array_equal(problem["W_q"], np.eye(3))
    assert problem["mask"].dtype == np.bool_


def test_compressed_npz_problem_file(tmp_path):
    np.savez_compressed(tmp_path / "p.npz", x=np.array(X), tokens=np.array(TOKENS))
    assert_x(load_problem(str(tmp_path / "p.npz")), TOKENS)


def test_npz_for_one_key_is_refused(tmp_path):
    np.savez(tmp_path / "w.npz", W_q=np.eye(3))
    with pytest.raises(InputError, match=r"w\.npz.*W_q"):
        load_problem(sample="hello-shiny-sun", arrays={"W_q": str(tmp_path / "w.npz")})


# ---------------------------------------------------------------------------------------------
# JSON files for one key


def test_json_array_file_for_a_key(tmp_path):
    wq = write(tmp_path / "wq.json", "[[1, 0], [0, 1], [1, 1]]")
    problem = load_problem(sample="hello-shiny-sun", arrays={"W_q": wq})
    np.testing.assert_array_equal(problem["W_q"], [[1, 0], [0, 1], [1, 1]])


def test_json_object_file_for_a_key_takes_that_key(tmp_path):
    wq = write(tmp_path / "weights.json", json.dumps({"W_q": [[2, 0], [0, 2], [2, 2]],
                                                      "W_k": [[9, 9], [9, 9], [9, 9]]}))
    problem = load_problem(sample="hello-shiny-sun", arrays={"W_q": wq})
    np.testing.assert_array_equal(problem["W_q"], [[2, 0], [0, 2], [2, 2]])
    assert "W_k" not in problem


def test_json_object_file_without_the_key_is_an_error(tmp_path):
    wq = write(tmp_path / "weights.json", json.dumps({"W_k": [[1, 0]]}))
    with pytest.raises(InputError, match=r"weights\.json.*W_q"):
        load_problem(sample="hello-shiny-sun", arrays={"W_q": wq})


# ---------------------------------------------------------------------------------------------
# Precedence: sample < problem file < per-key files


def test_per_key_files_win_over_keys_of_the_problem_file(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({
        "x": [[9, 9, 9], [9, 9, 9], [9, 9, 9]], "tokens": ["a", "b", "c"],
        "W_q": [[1, 0], [0, 1], [0, 0]], "W_k": [[5, 5], [5, 5], [5, 5]]}))
    x = write(tmp_path / "x.csv", CSV_CASES["header-and-labels"][0])
    wq = write(tmp_path / "wq.csv", "1,1\n1,1\n1,1\n")
    problem = load_problem(path, arrays={"x": x, "W_q": wq})
    assert_x(problem, TOKENS)  # the CSV's numbers and its label column win
    np.testing.assert_array_equal(problem["W_q"], np.ones((3, 2)))
    np.testing.assert_array_equal(problem["W_k"], np.full((3, 2), 5.0))  # untouched
    assert problem.origin["W_q"] == wq and problem.origin["W_k"] == path


def test_per_key_x_without_labels_keeps_the_file_tokens(tmp_path):
    path = write(tmp_path / "p.json", json.dumps({"x": [[1, 2, 3]] * 3, "tokens": TOKENS}))
    x = write(tmp_path / "x.csv", CSV_CASES["plain"][0])
    assert_x(load_problem(path, arrays={"x": x}), TOKENS)


def test_per_key_files_win_over_a_sample(tmp_path):
    x = write(tmp_path / "x.csv", "a,1,0\nb,0,1\n")
    problem = load_problem(sample="three-inputs", arrays={"x": x})
    np.testing.assert_array_equal(problem["x"], [[1, 0], [0, 1]])
    assert problem.tokens == ["a", "b"]
    assert problem["W_q"].shape == (4, 3)  # from the sample
    assert problem.config == {"score": Score.dot}


def test_only_per_key_files(tmp_path):
    x = write(tmp_path / "x.csv", CSV_CASES["labels"][0])
    problem = load_problem(arrays={"x": Path(x)})
    assert_x(problem, TOKENS)


def test_a_lone_surrogate_in_a_json_string_is_bad_input(tmp_path):
    """orjson refuses it, and so does attncli: no output could encode it (UTF-8)."""
    path = tmp_path / "p.json"
    path.write_text('{"x": [[1, 0], [0, 1]], "tokens": ["\\ud800", "b"]}')
    with pytest.raises(InputError, match=r"p.json: invalid JSON string: no low surrogate"):
        load_problem(str(path))


@pytest.mark.parametrize(("text", "message"), [
    ("1.0,2.0,3.0\n4.0,5.0,6.0\n7.O,8.0,9.0\n", "row 3, column 1: '7.O' is not a number"),
    (",0.5\n0.1,0.2\n", "row 1, column 1: '' is not a number"),
])
def test_one_bad_cell_in_the_first_column_is_a_typo_not_a_column_of_labels(tmp_path, text,
                                                                            message):
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=f"^{path}: {message}$".replace("(", r"\(")):
        load_problem(arrays={"x": str(path)})


def test_an_npz_member_that_is_not_an_npy_array_is_named(tmp_path):
    import zipfile

    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"garbage bytes here")  # no NPY header: numpy gives bytes
    with pytest.raises(InputError, match=r": x: not an NPY array \(a damaged or foreign member"):
        load_problem(str(path))


def test_a_device_on_standard_input_is_refused_not_read():
    import subprocess
    import sys

    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    with open("/dev/zero", "rb") as zero:
        done = subprocess.run([sys.executable, "-m", "attncli", "compute", "-"], stdin=zero,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "attncli: error: <stdin>: is a device, not a file"


# ---------------------------------------------------------------------------------------------
# The operating system's refusals: one line naming the file, the same for every reader
# (attncli.io.reading)

READERS = [".json", ".csv", ".npy", ".npz", ".safetensors"]


def _refused(path: str) -> str:
    """load_problem's message for ``path``, read by the reader its suffix picks."""
    if path.endswith(".safetensors"):
        pytest.importorskip("safetensors")
    with pytest.raises(InputError) as caught:
        load_problem(path)
    return str(caught.value)


@pytest.mark.parametrize("suffix", READERS)
def test_a_missing_file_is_named(suffix, tmp_path):
    path = str(tmp_path / f"nowhere{suffix}")
    assert _refused(path) == f"{path}: no such file"


@pytest.mark.parametrize("suffix", READERS)
def test_a_directory_is_named(suffix, tmp_path):
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    assert _refused(str(folder)) == f"{folder}: is a directory, not a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000 all the same")
@pytest.mark.parametrize("suffix", READERS)
def test_an_unreadable_file_is_named(suffix, tmp_path):
    path = tmp_path / f"locked{suffix}"
    path.write_bytes(b"{}")
    path.chmod(0)
    try:
        assert _refused(str(path)) == f"{path}: permission denied"
    finally:
        path.chmod(0o600)


def test_other_os_errors_pass_through_unchanged():
    # the caller says what else went wrong (safetensors: "cannot read: …")
    error = OSError(errno.ENODEV, "No such device")
    with pytest.raises(OSError) as caught, reading("f.bin"):
        raise error
    assert caught.value is error
