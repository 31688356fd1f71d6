"""The formats attncli writes: one registry of renderers, the only place a format is declared.

A row of :data:`RENDERERS` is one ``--format`` of one command: its name, its renderer (a
function named by module path, imported when the format is used, so that the command line
starts without importing every renderer), the extensions of an ``-o`` file that pick it, and
whether its output is binary. The command line's choices (:data:`Format`, :data:`CheckFormat`,
:data:`ExplainFormat`), the extension → format table and the error for a format no command
writes all come from it. The first row of a command is its default format.

A renderer's arguments depend on its command:

    compute  renderer(trace, request)            writes through request (attncli.render.output)
    check    renderer(trace, reports, rule, request)
    explain  renderer(sections, fmt, precision, width=…)   returns the text
    grade    renderer(gradebook, request)

A new format is a function in its own module and one row here.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from attncli.errors import InputError

COMPUTE, CHECK, EXPLAIN, GRADE = "compute", "check", "explain", "grade"


@dataclass(frozen=True)
class Renderer:
    """One format of one command.

    ``target``: "module:function", the renderer, imported by :meth:`load`. ``extensions``: the
    extensions (lower case, with their dot) of an ``-o`` file that pick this format when no
    --format is given (compute). ``binary``: the output is bytes (NPZ, NPY), never text: it
    takes a step of any size, and never goes to a terminal. ``before``: "module:function",
    the format's own check of the steps asked for (--steps; None for the default ones), made
    before the run (npy holds one step).
    """

    command: str
    name: str
    target: str
    extensions: tuple[str, ...] = ()
    binary: bool = False
    before: str | None = None

    def load(self) -> Callable:
        """The renderer function, its module imported now.

        Raises: ImportError or AttributeError when ``target`` names no function (a bug that
        tests/render/test_registry.py catches for every row).
        """
        return _function(self.target)

    def check(self, steps: list[str] | None) -> None:
        """Before the run: whether this format can hold ``steps`` (the names asked for).

        Raises: InputError from the format's ``before`` check.
        """
        if self.before is not None:
            _function(self.before)(steps)


def _function(target: str) -> Callable:
    """The function "module:function" names, its module imported now."""
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


#: Every format of every command, in the order of --format's choices; each command's first is
#: its default.
RENDERERS = (
    Renderer(COMPUTE, "table", "attncli.render.table:write_table", (".txt",)),
    Renderer(COMPUTE, "json", "attncli.render.json:write_json", (".json",)),
    Renderer(COMPUTE, "csv", "attncli.render.csv:write_csv", (".csv",)),
    Renderer(COMPUTE, "markdown", "attncli.render.markdown:write_markdown", (".md",)),
    # every step as an array; one step (--steps NAME)
    Renderer(COMPUTE, "npz", "attncli.render.npz:write_npz", (".npz",), binary=True),
    Renderer(COMPUTE, "npy", "attncli.render.npz:write_npy", (".npy",), binary=True,
             before="attncli.render.npz:check_npy"),
    # a Python script that redoes the run with PyTorch's own modules
    Renderer(COMPUTE, "torch", "attncli.export.torch_script:write_torch", (".py",)),
    # one self-contained page: tables, heatmaps, each cell's arithmetic
    Renderer(COMPUTE, "html", "attncli.render.html:write_html", (".html", ".htm")),
    Renderer(CHECK, "table", "attncli.render.check:write_table"),
    Renderer(CHECK, "json", "attncli.render.check:write_json"),
    Renderer(CHECK, "csv", "attncli.render.check:write_csv"),
    Renderer(CHECK, "html", "attncli.render.html:write_check_html"),
    Renderer(GRADE, "table", "attncli.render.gradebook:write_table", (".txt",)),
    Renderer(GRADE, "csv", "attncli.render.gradebook:write_csv", (".csv",)),
    Renderer(GRADE, "json", "attncli.render.gradebook:write_json", (".json",)),
    Renderer(EXPLAIN, "text", "attncli.render.explain:render_explain"),
    Renderer(EXPLAIN, "markdown", "attncli.render.explain:render_explain"),
    Renderer(EXPLAIN, "latex", "attncli.render.explain:render_explain"),
    Renderer(EXPLAIN, "html", "attncli.render.explain:render_explain"),
)

#: The images --plot draws (attncli.render.plot), by extension: matplotlib's format names. -o
#: writes none of them.
IMAGES = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
IMAGE_EXTENSIONS = tuple(IMAGES)


def renderers(command: str) -> list[Renderer]:
    """The formats ``command`` writes, its default first."""
    return [r for r in RENDERERS if r.command == command]


def find(command: str, name: str) -> Renderer:
    """The renderer of ``command``'s format ``name`` (a str, or a member of its enum).

    Raises: InputError for a format the command does not write, listing those it does.
    """
    for renderer in RENDERERS:
        if renderer.command == command and renderer.name == name:
            return renderer
    known = ", ".join(r.name for r in renderers(command)) or "none"
    raise InputError(f"--format {name}: attncli {command} writes no such format; choose from "
                     f"{known}")


def _choices(command: str, name: str) -> type[enum.StrEnum]:
    """``command``'s formats as a str Enum (Typer's choices for --format), in registry order."""
    return enum.StrEnum(name, [(r.name, r.name) for r in renderers(command)], module=__name__)


#: --format's choices, one enum per command.
Format = _choices(COMPUTE, "Format")
CheckFormat = _choices(CHECK, "CheckFormat")
ExplainFormat = _choices(EXPLAIN, "ExplainFormat")
GradeFormat = _choices(GRADE, "GradeFormat")


def for_output(path) -> Renderer:
    """compute's format for an -o file, by its extension (lower-cased): the default, a table,
    for no extension (or ``-``, a device such as /dev/null).

    Raises: InputError for an extension that names no format (``.xlsx``), listing them; an
    image's (``.png``, ``.svg``, ``.pdf``), pointing to --plot; a name that is only an
    extension (``.json``: a hidden file with no extension, most likely a typo).
    """
    default, *others = renderers(COMPUTE)
    picked = {ext: r for r in renderers(COMPUTE) for ext in r.extensions}
    name = "" if path is None else PurePath(str(path)).name
    suffix = "" if path is None else PurePath(str(path)).suffix.lower()
    if name.lower() in (*picked, *IMAGES):
        raise InputError(f"-o {path}: a file name that is only an extension; give a name "
                         f"before it, e.g. -o steps{name}")
    if suffix in IMAGES:
        raise InputError(f"-o {path}: an image is drawn with --plot {path}; -o writes the "
                         "steps as text or arrays")
    if suffix == "":
        return default
    if suffix not in picked:
        known = ", ".join(f"{ext} ({r.name})" for r in others for ext in r.extensions)
        raise InputError(f"-o {path}: {suffix} is no format attncli writes; the extension "
                         f"picks one of {known}, {', '.join(default.extensions)} or none for "
                         f"a {default.name}; or give --format")
    return picked[suffix]


class ColorRange(enum.StrEnum):
    """--color-range (compute's drawings, :mod:`attncli.render.drawing`): which values the
    ends of a drawing's colour scale stand for."""

    unit = "unit"  # the step's own fixed scale (limits): 0 … 1 for weights
    auto = "auto"  # each grid's unmasked min … max
    log = "log"  # each grid's smallest positive … largest value, on a logarithmic scale
