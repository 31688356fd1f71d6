"""The registry of formats: every format has a renderer (and, for compute, an -o extension), an
unknown format is an error, and each -o extension picks its format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attncli.errors import InputError
from attncli.render.registry import (
    CHECK,
    COMPUTE,
    EXPLAIN,
    GRADE,
    IMAGES,
    RENDERERS,
    CheckFormat,
    ExplainFormat,
    Format,
    find,
    for_output,
    renderers,
)

#: Each command's --format choices, in the order --help and Typer's error list them (written
#: out here: a registry change that reorders or drops one must show up as a failing test).
CHOICES = {
    COMPUTE: ["table", "json", "csv", "markdown", "npz", "npy", "torch", "html"],
    CHECK: ["table", "json", "csv", "html"],
    EXPLAIN: ["text", "markdown", "latex", "html"],
    GRADE: ["table", "csv", "json"],
}
#: -o's extension → compute's format, as README and --help describe it.
EXTENSIONS = {".txt": "table", ".json": "json", ".csv": "csv", ".md": "markdown",
              ".npz": "npz", ".npy": "npy", ".py": "torch", ".html": "html", ".htm": "html"}


@pytest.mark.parametrize("renderer", RENDERERS, ids=lambda r: f"{r.command}-{r.name}")
def test_every_format_has_a_renderer_that_imports(renderer):
    assert callable(renderer.load())
    if renderer.before is not None:
        renderer.check(["weights"])  # its own check loads, and one step passes it


def test_every_compute_format_has_an_extension_and_no_extension_picks_two():
    extensions = [ext for r in renderers(COMPUTE) for ext in r.extensions]
    assert all(r.extensions for r in renderers(COMPUTE))
    assert len(extensions) == len(set(extensions))
    assert not set(extensions) & set(IMAGES)  # images are --plot's, never -o's


def test_the_choices_are_the_registrys_in_order():
    assert {command: [r.name for r in renderers(command)] for command in CHOICES} == CHOICES
    assert [f.value for f in Format] == CHOICES[COMPUTE]
    assert [f.value for f in CheckFormat] == CHOICES[CHECK]
    assert [f.value for f in ExplainFormat] == CHOICES[EXPLAIN]
    assert Format.json == "json" and isinstance(Format.json, str)  # Typer's str choices


def test_binary_formats_are_npz_and_npy():
    assert {r.name for r in RENDERERS if r.binary} == {"npz", "npy"}


@pytest.mark.parametrize("command, name", [(COMPUTE, "xml"), (COMPUTE, "text"),
                                           (CHECK, "markdown"), (EXPLAIN, "json"),
                                           ("variants", "table")])
def test_an_unknown_format_is_an_error_not_a_fall_through(command, name):
    with pytest.raises(InputError, match=f"--format {name}: attncli {command} writes no such"):
        find(command, name)


def test_an_unknown_format_lists_the_commands_formats():
    with pytest.raises(InputError) as caught:
        find(CHECK, "markdown")
    assert str(caught.value) == ("--format markdown: attncli check writes no such format; "
                                 "choose from table, json, csv, html")


def test_find_takes_the_enums_and_their_text():
    assert find(COMPUTE, Format.npy) is find(COMPUTE, "npy")
    assert find(CHECK, CheckFormat.csv).target == "attncli.render.check:write_csv"


@pytest.mark.parametrize("extension, name", EXTENSIONS.items())
def test_each_extension_picks_its_format(extension, name):
    assert for_output(Path(f"steps{extension}")).name == name
    assert for_output(Path(f"out/steps{extension.upper()}")).name == name  # case-blind


@pytest.mark.parametrize("path", [None, Path("steps"), Path("-"), Path("/dev/null")])
def test_no_extension_is_a_table(path):
    assert for_output(path).name == "table"


def test_an_unknown_extension_lists_every_one():
    with pytest.raises(InputError) as caught:
        for_output(Path("steps.xlsx"))
    assert str(caught.value) == (
        "-o steps.xlsx: .xlsx is no format attncli writes; the extension picks one of "
        ".json (json), .csv (csv), .md (markdown), .npz (npz), .npy (npy), .py (torch), .html "
        "(html), .htm (html), .txt or none for a table; or give --format")


@pytest.mark.parametrize("extension", list(IMAGES))
def test_an_image_extension_points_to_plot(extension):
    with pytest.raises(InputError, match=f"an image is drawn with --plot w{extension}"):
        for_output(Path(f"w{extension}"))


@pytest.mark.parametrize("name", [".json", ".TXT", ".png"])
def test_a_name_that_is_only_an_extension_is_refused(name):
    with pytest.raises(InputError, match=f"only an extension; give a name before it, e.g. "
                                         f"-o steps{name}"):
        for_output(Path(name))


def test_npy_checks_its_one_step_before_the_run():
    npy = find(COMPUTE, "npy")
    for steps in (None, ["weights", "context"]):
        with pytest.raises(InputError, match="--format npy holds one array"):
            npy.check(steps)
    find(COMPUTE, "npz").check(None)  # no check of its own


def test_the_command_line_imports_no_renderer():
    """Start-up: the registry names renderers by module path; importing the command line
    imports none of them (nor rich's tables, matplotlib or torch)."""
    code = ("import sys, attncli.cli; print(' '.join(sorted(m for m in sys.modules if "
            "m.startswith(('attncli.render.', 'attncli.export', 'rich.table', 'matplotlib', "
            "'torch')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == ["attncli.render.registry"]
