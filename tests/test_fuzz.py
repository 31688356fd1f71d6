"""Fuzzing with hypothesis: valid problem files (JSON, CSV, NPY, NPZ) mutated — bytes flipped,
cut, inserted or deleted, JSON values and keys swapped for awkward ones, CSV cells replaced by
random text, NPY headers rewritten — and fed to the CLI (`compute FILE --json`, `check FILE
ANSWERS`) and to the loaders.

The contract: exit status 0, 1 or 2, never 70 (an internal error); no traceback; a rejection is
exactly one stderr line "attncli: error: …" with nothing on stdout; every run ends within a time
budget (a hang fails, it does not block) and within a bounded address space (a huge allocation
fails as an internal error instead of passing unseen). The loaders and Problem.from_mapping
raise only AttncliError. Examples are derandomized, so CI runs the same ones every time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import struct
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from attncli import attend
from attncli.cli import app
from attncli.errors import AttncliError
from attncli.io import load_problem
from attncli.problem import KNOWN_KEYS, Problem

BUDGET_S = 10.0  # one CLI run of a 3-token problem takes ~20 ms; a hang is far past this
HEADROOM = 1 << 30  # address space a run may add (bytes): a 3-token problem needs a few MB


def fuzz_settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------------------------
# Seeds: valid files, and answers that `check` grades against them.

X = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]
TOKENS = ["Hello", "shiny", "sun"]
PROBLEM = {
    "x": X, "tokens": TOKENS,
    "W_q": [[0.2, 0.4], [0.5, 0.1], [0.3, 0.9]],
    "W_k": [[0.1, 0.7], [0.6, 0.2], [0.8, 0.3]],
    "W_v": [[0.4, 0.1, 0.2], [0.3, 0.9, 0.5], [0.6, 0.2, 0.8]],
    "mask": [[1, 0, 0], [1, 1, 0], [1, 1, 1]],
    "config": {"score": "scaled_dot", "heads": 1},
}
SEED_JSON = json.dumps(PROBLEM, indent=1).encode()
SEED_CSV = ("token,d0,d1,d2\n" + "".join(f"{t},{','.join(map(str, row))}\n"
                                         for t, row in zip(TOKENS, X, strict=True))).encode()


def _corpus_writers():
    """tests/corpus/make_binary.py, the writer of the corpus's NPY and NPZ bytes (a script in
    a data folder, not a package: loaded by path)."""
    import importlib.util

    path = Path(__file__).resolve().parent / "corpus" / "make_binary.py"
    spec = importlib.util.spec_from_file_location("attncli_corpus_make_binary", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_WRITERS = _corpus_writers()
_npy, _npz = _WRITERS.npy, _WRITERS.npz


SEED_NPY = _npy(np.array(X))
SEED_NPZ = _npz({"x": SEED_NPY, "tokens": _npy(np.array(TOKENS)),
                 "W_q": _npy(np.array(PROBLEM["W_q"])), "W_k": _npy(np.array(PROBLEM["W_k"]))})


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="attncli-fuzz-") as name:
        path = Path(name)
        for seed, name in ((SEED_JSON, "seed.json"), (SEED_CSV, "seed.csv")):
            (path / name).write_bytes(seed)
            trace = attend(load_problem(path / name))
            answers = {"query": "1", "context": trace["context"][1].round(4).tolist()}
            (path / f"answers-{name}.json").write_text(json.dumps(answers), encoding="utf-8")
        yield path


# ---------------------------------------------------------------------------------------------
# Mutations

JSON_VALUES = [b"0.5", b"-2", b"1e-3", b"[0.1, 0.2, 0.3]", b"NaN", b"-Infinity", b"1e999", b"-1e-400", b"null", b"true", b"false", b'"0.5"',
               b'""', b"[]", b"[[]]", b"{}", b'{"a": 1}', b"[1, [2]]", b"-0",
               b"18446744073709551616", b"1" + b"0" * 400, b'"\\ud800"', b'"\\u0000"', b"0",
               b"3", b"1e308", b"[[1e308, 1e308], [1e308, 1e308]]", b"[[1, 0], [0, 1]]",
               b"[[[1]]]", b"2147483648", b'"causal"', b'"out_in"', b'"additive"']
JSON_KEYS = [k.encode() for k in (*KNOWN_KEYS, "W_query", "", "x ", "X", "variant", "window",
                                  "top_k", "dropout", "normalize", "temperature", "scale")]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


@st.composite
def byte_mutations(draw, seed: bytes) -> bytes:
    """1–3 of: a byte set to any value, the file cut, bytes inserted, bytes deleted."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:at + draw(st.integers(1, 8))]
    return bytes(data)


@st.composite
def json_mutations(draw) -> bytes:
    """The JSON seed with values (numbers, strings) and keys replaced by awkward ones, random
    tokens inserted, or bytes mutated."""
    data = SEED_JSON
    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["value", "value", "string", "token", "bytes"]))
        if kind in ("value", "string"):
            spans = list((_NUMBER if kind == "value" else _STRING).finditer(data))
            if not spans:
                continue
            span = draw(st.sampled_from(spans))
            new = draw(st.sampled_from(JSON_VALUES)) if kind == "value" else \
                b'"' + draw(st.sampled_from(JSON_KEYS)) + b'"'
            data = data[:span.start()] + new + data[span.end():]
        elif kind == "token":
            at = draw(st.integers(0, len(data)))
            token = draw(st.sampled_from([*JSON_VALUES, b",", b":", b"]", b"}"]))
            data = data[:at] + token + data[at:]
        else:
            data = draw(byte_mutations(data))
    return data


CELLS = st.one_of(st.text(max_size=10), st.sampled_from(
    ["nan", "inf", "-inf", "1e999", "", " ", "1,5", '"', '"1"', "0x10", "1_000", "TRUE", "١٢",
     "\r", "\n", "\t", ";", "\ufeff1"]))


@st.composite
def csv_mutations(draw) -> bytes:
    """The CSV seed with 1–3 cells replaced by random text, or with its bytes mutated."""
    if draw(st.booleans()):
        return draw(byte_mutations(SEED_CSV))
    rows = [line.split(",") for line in SEED_CSV.decode().splitlines()]
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(rows) - 1))
        column = draw(st.integers(0, len(rows[row]) - 1))
        rows[row][column] = draw(CELLS)
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return "".join(",".join(row) + ending for row in rows).encode("utf-8", "surrogatepass")


DESCRS = ["<f8", "<f4", ">f8", "<f2", "<i8", "|u1", "|b1", "<c16", "<U3", "|S2", "|O", "V8",
          "<M8[D]", "[('a', '<f8')]", "'<f8'", "<f16", "x"]
DIMS = st.one_of(st.integers(0, 4), st.integers(-2, 10**13), st.sampled_from([10**12, 2**62]))


def _npy_header(descr: str, fortran: bool, shape: tuple, version: bytes) -> bytes:
    text = f"{{'descr': {descr if descr.startswith(('[', chr(39))) else repr(descr)}, " \
        f"'fortran_order': {fortran}, 'shape': {shape!r}, }}".encode()
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    length = struct.pack("<H", len(text)) if version == b"\x01\x00" else \
        struct.pack("<I", len(text))
    return b"\x93NUMPY" + version + length + text


@st.composite
def npy_mutations(draw) -> bytes:
    """The NPY seed with a rewritten header (any dtype, any shape, e.g. 10**12 elements) over its
    own data, cut or extended; or with its bytes mutated."""
    if draw(st.booleans()):
        return draw(byte_mutations(SEED_NPY))
    data = SEED_NPY[128:]  # np.save pads the seed's header to 128 bytes
    shape = draw(st.one_of(st.sampled_from([(3, 3), (9,), (1, 9), (3, 1, 3), (1, 3, 3)]),
                           st.lists(DIMS, max_size=4).map(tuple)))
    descr = draw(st.one_of(st.just("<f8"), st.sampled_from(DESCRS)))
    header = _npy_header(descr, draw(st.booleans()), shape,
                         draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00"])))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))] + draw(st.binary(max_size=16))
    return header + data


@st.composite
def npz_mutations(draw) -> bytes:
    """The NPZ seed with one member replaced by a mutated NPY, or with its bytes mutated (bad
    CRCs, bad offsets, bad compression methods)."""
    if draw(st.booleans()):
        return draw(byte_mutations(SEED_NPZ))
    member = draw(st.sampled_from(["x", "W_q", "tokens", "mask", "extra"]))
    members = {"x": SEED_NPY, "tokens": _npy(np.array(TOKENS)), member: draw(npy_mutations())}
    return _npz(members)


# ---------------------------------------------------------------------------------------------
# Running the CLI under a time budget and an address-space limit


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so that no `except Exception` swallows it."""


@contextlib.contextmanager
def time_budget(seconds: float):
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def bounded_memory(extra: int):
    """RLIMIT_AS at the current address space plus ``extra`` (Linux): an allocation past it is a
    MemoryError, which the CLI reports as an internal error (status 70) and the test fails."""
    try:
        import resource

        with open("/proc/self/statm") as handle:
            size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        yield
        return
    limit = size + extra if hard == resource.RLIM_INFINITY else min(size + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def warnings_as_errors():
    """A warning a real process would print (RuntimeWarning, UserWarning, …, not the hidden
    DeprecationWarning) is an extra stderr line there: here it is an error, so a run that lets
    one out ends as an internal error and fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                       ResourceWarning):
            warnings.simplefilter("ignore", hidden)
        yield


@contextlib.contextmanager
def guarded():
    with time_budget(BUDGET_S), bounded_memory(HEADROOM), warnings_as_errors():
        yield


def run_cli(args: list[str]):
    start = time.perf_counter()
    with guarded():
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET_S, f"{args}: {elapsed:.1f} s"
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    stdout, stderr = result.stdout, result.stderr
    assert "Traceback" not in stdout + stderr
    assert result.exit_code in (0, 1, 2), (result.exit_code, stderr)
    lines = stderr.splitlines()
    if result.exit_code == 2:
        assert stdout == "", stdout[:200]
        assert len(lines) == 1 + sum(line.startswith("attncli: warning: ")
                                     for line in lines[:-1]), lines
        assert stderr.endswith("\n") and lines[-1].startswith("attncli: error: "), lines
    else:
        assert all(line.startswith("attncli: warning: ") for line in lines), lines
    if currently_in_test_context():  # --hypothesis-show-statistics shows the mix
        event(f"{args[0]}: exit status {result.exit_code}")
    return result


def check_file(folder: Path, data: bytes, name: str, answers: str) -> None:
    path = folder / name
    path.write_bytes(data)
    result = run_cli(["compute", str(path), "--json"])
    if result.exit_code == 0:
        json.loads(result.stdout)  # one JSON document
    else:
        assert result.exit_code == 2
    run_cli(["check", str(path), str(folder / answers)])


@fuzz_settings(150)
@given(data=json_mutations())
def test_cli_survives_mutated_json(folder, data):
    check_file(folder, data, "mutated.json", "answers-seed.json.json")


@fuzz_settings(100)
@given(data=csv_mutations())
def test_cli_survives_mutated_csv(folder, data):
    check_file(folder, data, "mutated.csv", "answers-seed.csv.json")


# Found by this fuzzing, kept as examples: a long double past float64 (numpy's RuntimeWarning
# about the cast printed two lines before the error) and a header in Python 2's style (numpy's
# UserWarning printed two lines on a run that succeeds).
LONG_DOUBLES = _npy_header("<f16", False, (1, 2), b"\x01\x00") + (b"\xff" * 8 + b"\xfe\x7f"
                                                                  + bytes(6)) * 2
PYTHON_2 = _npy_header("<f8", False, (1, 2), b"\x01\x00").replace(b"(1, 2)", b"(1L,2L)") \
    + bytes(16)


@fuzz_settings(150)
@given(data=npy_mutations())
@example(data=LONG_DOUBLES)
@example(data=PYTHON_2)
def test_cli_survives_mutated_npy(folder, data):
    check_file(folder, data, "mutated.npy", "answers-seed.csv.json")


@fuzz_settings(100)
@given(data=npz_mutations())
@example(data=_npz({"x": PYTHON_2}))
def test_cli_survives_mutated_npz(folder, data):
    check_file(folder, data, "mutated.npz", "answers-seed.json.json")


# ---------------------------------------------------------------------------------------------
# The library: loaders and Problem.from_mapping raise AttncliError and nothing else


@fuzz_settings(200)
@given(pair=st.one_of(st.tuples(st.just("p.json"), json_mutations()),
                      st.tuples(st.just("p.csv"), csv_mutations()),
                      st.tuples(st.just("p.npy"), npy_mutations()),
                      st.tuples(st.just("p.npz"), npz_mutations())))
def test_load_problem_raises_only_attncli_errors(folder, pair):
    name, data = pair
    (folder / name).write_bytes(data)
    with guarded():
        try:
            attend(load_problem(folder / name))
            event("loaded")
        except AttncliError as exc:
            assert str(exc)  # a message for the user
            event("AttncliError")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=16)
MATRICES = st.integers(1, 4).flatmap(lambda n: st.integers(1, 4).flatmap(
    lambda d: st.lists(st.lists(st.floats(-1e3, 1e3), min_size=d, max_size=d), min_size=n,
                       max_size=n)))


@fuzz_settings(200)
@given(raw=st.dictionaries(st.sampled_from([*KNOWN_KEYS, "W_query"]),
                           st.one_of(JSONISH, MATRICES), max_size=5),
       x=MATRICES)
def test_problem_from_mapping_raises_only_attncli_errors(raw, x):
    with guarded():
        try:
            attend(Problem.from_mapping({"x": x, **raw}, "fuzz"))
            event("attended")
        except AttncliError:
            event("AttncliError")


def test_giant_npy_header_is_refused_before_reading(tmp_path, monkeypatch):
    # a header claiming 10**12 float64 (8 TB) over 64 bytes: refused from the header alone
    path = tmp_path / "giant.npy"
    path.write_bytes(_npy_header("<f8", False, (10**6, 10**6), b"\x01\x00") + bytes(64))

    def no_read(*args, **kwargs):
        raise AssertionError("the array data was read")

    monkeypatch.setattr(np.lib.format, "read_array", no_read)
    monkeypatch.setattr(np, "fromfile", no_read)
    with bounded_memory(HEADROOM), pytest.raises(AttncliError, match=r"claims shape \(1000000"):
        load_problem(path)
    result = run_cli(["compute", str(path)])
    assert result.exit_code == 2
