"""Shared by the teacher's tests: the command line run in a folder (exercise and grade read
and write relative paths, as a teacher types them)."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from attncli.cli import app


def run_in(cwd: Path, *args: str):
    """``attncli ARGS`` (typer's CliRunner, stdout and stderr apart) with ``cwd`` as the
    current folder, which is restored after."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)
