"""Scale: start-up imports, binary output (NPZ/NPY), big steps announced, refused or streamed,
--backend auto, and the progress bar. (Speed is measured in bench/, not asserted here.)"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import progress
from attncli.attention import blocks
from attncli.backend import AUTO_TORCH_FLOPS, resolve
from attncli.cli import app
from attncli.config import Backend, DType
from attncli.progress import CliMonitor

runner = CliRunner()

# hello-shiny-sun, seed 000: the weights of the first query and its context (test_seeds.py)
HELLO_WEIGHTS_0 = [0.2709182531413952, 0.3763114505506108, 0.352770296307994]
HELLO_CONTEXT_0 = [0.3938606607892164, 0.37804386888463143, 0.8431574538023865]


def _invoke(args):
    return runner.invoke(app, args, env={"COLUMNS": "200"})


def test_a_small_numpy_run_imports_no_torch_and_no_heavy_module():
    """A homework-sized run on numpy: torch, pydantic, array_api_compat's namespaces and the
    modules of other commands stay unimported (each costs start-up time)."""
    code = (
        "import sys\n"
        "from attncli.cli import main\n"
        "sys.argv = ['attncli', 'compute', '--sample', 'hello-shiny-sun', '--format', 'json']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "heavy = ['torch', 'pydantic', 'array_api_compat.numpy', 'array_api_compat.torch',\n"
        "         'attncli.explain', 'attncli.check', 'rich.table', 'safetensors']\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert '"context"' in done.stdout


def test_npz_output_holds_every_step_and_the_labels(tmp_path):
    out = tmp_path / "steps.npz"
    result = _invoke(["compute", "--sample", "hello-shiny-sun", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    with np.load(out) as archive:
        assert set(archive.files) == {"queries", "keys", "values", "scores", "weights",
                                      "context", "tokens", "key_tokens", "meta"}
        np.testing.assert_allclose(archive["weights"][0], HELLO_WEIGHTS_0, rtol=1e-12)
        np.testing.assert_allclose(archive["context"][0], HELLO_CONTEXT_0, rtol=1e-12)
        assert archive["tokens"].tolist() == ["Hello", "shiny", "sun"]
        assert '"axes":["query","key"]' in str(archive["meta"])


def test_npy_output_is_the_one_step_asked_for(tmp_path):
    out = tmp_path / "context.npy"
    result = _invoke(["compute", "--sample", "hello-shiny-sun", "--steps", "context",
                      "--query", "Hello", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.load(out), HELLO_CONTEXT_0, rtol=1e-12)  # query axis gone


def test_npy_output_of_several_steps_is_refused_before_any_work(tmp_path):
    out = tmp_path / "x.npy"
    result = _invoke(["compute", "--sample", "hello-shiny-sun", "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "attncli: error: --format npy holds one array: give --steps NAME (one step), or "
        "write NPZ (-o FILE.npz)"]
    assert not out.exists()


def _big_problem(tmp_path: Path, n: int) -> str:
    path = tmp_path / "big.npz"
    np.savez(path, x=np.random.default_rng(1).normal(size=(n, 4)) / 2)
    return str(path)


def test_a_big_step_is_refused_for_json_with_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "TEXT_LIMIT", 1000)  # 40 × 40 weights = 1600 numbers
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 10 * 40 * 8)  # blocks of 10 rows
    problem = _big_problem(tmp_path, 40)
    out = tmp_path / "w.json"
    result = _invoke(["compute", problem, "--steps", "weights", "--backend", "numpy",
                      "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "attncli: error: weights would be 40 × 40 = 1,600 numbers (12.5 KiB), too many for "
        "--format json: write NPZ (-o FILE.npz), or leave weights out of --steps")
    assert not out.exists()
    # the context alone is fine: no n×n step is kept
    assert _invoke(["compute", problem, "--steps", "context", "--backend", "numpy",
                    "--json"]).exit_code == 0


def test_a_big_step_is_announced_and_streamed_to_npz(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 10 * 40 * 8)
    monkeypatch.setattr(blocks, "ANNOUNCE_BYTES", 1000)
    monkeypatch.setattr(progress, "SPILL_BYTES", 1000)
    problem = _big_problem(tmp_path, 40)
    out = tmp_path / "w.npz"
    result = _invoke(["compute", problem, "--steps", "weights,context", "--backend", "numpy",
                      "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    note = result.stderr.strip()
    assert note.startswith("attncli: note: weights is 40 × 40 float64 = 12.5 KiB, streamed "
                           "to "), note
    with np.load(out) as archive:
        weights, x = archive["weights"], np.load(problem)["x"]
        np.testing.assert_allclose(weights.sum(axis=1), np.ones(40), rtol=1e-12)
        # hand check of one row: softmax of x_7 · x_j, then the weighted sum of x
        s = x[7] @ x.T
        expected = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        np.testing.assert_allclose(weights[7], expected, rtol=1e-12)
        np.testing.assert_allclose(archive["context"][7], expected @ x, rtol=1e-12)
    assert [p.name for p in tmp_path.iterdir()] and not any(
        p.name.startswith(".attncli-steps-") for p in tmp_path.iterdir())  # spill removed


def test_binary_output_refuses_a_terminal(monkeypatch):
    from attncli.errors import InputError
    from attncli.io.writer import write_binary

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    with pytest.raises(InputError, match="binary output .* is not for a terminal"):
        write_binary(lambda handle: handle.write(b"x"), None)


def test_auto_backend_is_numpy_for_homework_and_torch_past_the_threshold(torch):
    assert resolve(Backend.auto, "cpu", DType.float64, flops=10**6).backend is Backend.numpy
    for dtype in DType:
        threshold = AUTO_TORCH_FLOPS[dtype]
        assert resolve(Backend.auto, "cpu", dtype, flops=threshold).backend is Backend.torch
        assert resolve(Backend.auto, "cpu", dtype, flops=threshold - 1).backend is Backend.numpy
    # an explicit choice always wins
    assert resolve(Backend.numpy, "cpu", DType.float64,
                   flops=10**15).backend is Backend.numpy


def test_auto_backend_without_torch_stays_on_numpy(monkeypatch):
    from attncli import backend

    monkeypatch.setattr(backend, "torch_installed", lambda: False)
    assert resolve(Backend.auto, "cpu", DType.float64,
                   flops=10**15).backend is Backend.numpy


def test_the_progress_bar_shows_after_a_second_and_only_when_allowed(monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat the stream as a terminal
    quiet = CliMonitor(lambda *a: None, "json", binary=False, show=False, near=None)
    quiet.start -= 10
    quiet.advance(1, 4)
    assert quiet._bar is None  # not allowed (piped output): never drawn
    monitor = CliMonitor(lambda *a: None, "json", binary=False, show=True, near=None)
    monitor.advance(1, 4)
    assert monitor._bar is None  # under a second: not yet
    monitor.start -= 10
    monitor.advance(2, 4)
    assert monitor._bar is not None
    monitor.advance(4, 4)
    assert monitor._bar is None  # finished: removed
    assert "query blocks" in stderr.getvalue()


def test_npz_to_a_device_is_written_as_a_stream(tmp_path):
    """/dev/null accepts seek() and answers tell() with 0: a seeking zip writer would build
    wrong offsets; a streamed one does not care."""
    result = _invoke(["compute", "--sample", "hello-shiny-sun", "-o", "/dev/null",
                      "--format", "npz"])
    assert result.exit_code == 0, result.stderr


def test_an_unwritable_output_fails_before_the_run(tmp_path):
    out = tmp_path / "missing" / "w.npz"
    result = _invoke(["compute", "--sample", "hello-shiny-sun", "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"attncli: error: {out}: cannot write: the folder "
                                     f"{out.parent} does not exist")


def test_one_query_of_a_big_problem_is_one_row_of_work(tmp_path, monkeypatch):
    """--query computes that row alone: 40 numbers of weights, not 40 × 40 (refused above)."""
    monkeypatch.setattr(progress, "TEXT_LIMIT", 1000)
    problem = _big_problem(tmp_path, 40)
    result = _invoke(["compute", problem, "--steps", "weights,context", "--query", "7",
                      "--backend", "numpy", "--json"])
    assert result.exit_code == 0, result.stderr
    document = __import__("json").loads(result.stdout)
    assert document["config"]["path"] == "one query row"
    x = np.load(problem)["x"]
    s = x[7] @ x.T  # the hand check of test_a_big_step_is_announced_and_streamed_to_npz
    expected = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    np.testing.assert_allclose(document["steps"]["weights"]["data"], expected, rtol=1e-12)
    np.testing.assert_allclose(document["steps"]["context"]["data"], expected @ x, rtol=1e-12)


@pytest.mark.parametrize("command", ["check", "explain"])
def test_check_and_explain_refuse_a_problem_too_big_before_allocating(command, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setattr(progress, "TEXT_LIMIT", 1000)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 10 * 40 * 8)
    problem = _big_problem(tmp_path, 40)
    answers = tmp_path / "answers.json"
    answers.write_text('{"context": [1, 2, 3, 4]}')
    args = ([command, problem, str(answers)] if command == "check"
            else [command, problem, "--query", "1"])
    result = _invoke(args)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"attncli: error: scores would be 40 × 40 = 1,600 numbers (12.5 KiB), too many for "
        f"attncli {command}: for a problem this large use attncli compute --steps context")


def test_running_out_of_memory_is_one_line_and_status_2(monkeypatch):
    from attncli.attention import pipeline

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(pipeline, "execute", exhausted)
    result = _invoke(["compute", "--sample", "hello-shiny-sun"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("attncli: error: out of memory:")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "why"), [
    (["--json"], "--format json"),
    (["-o", "x.npz"], "--format npz (from -o x.npz)"),
])
def test_heatmap_refuses_a_format_it_cannot_be(args, why, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke(["compute", "--sample", "hello-shiny-sun", "--heatmap", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"attncli: error: --heatmap draws text grids: it does not "
                                     f"go with {why}; use --plot FILE for an image")
    assert not (tmp_path / "x.npz").exists()
