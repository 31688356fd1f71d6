"""The README's examples run as written (docs that cannot drift)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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


@pytest.mark.parametrize("command", _commands())
def test_readme_command_runs(command):
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_readme_python_example_runs():
    (code,) = _blocks("python")
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the README's own example
    assert namespace["trace"]["weights"].shape == (3, 3)
