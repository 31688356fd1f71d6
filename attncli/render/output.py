"""Where a renderer's output goes: stdout or an -o file, as text, bytes or a rich console's
drawing (:class:`Request`), written whole or not at all by :mod:`attncli.io.writer`."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from attncli.io.writer import write_binary, write_output

if TYPE_CHECKING:
    from rich.console import Console

    from attncli.config import AttentionConfig
    from attncli.problem import Problem

#: The width of a rich drawing (a table, a heatmap) written to an -o file.
FILE_WIDTH = 160


@dataclass(frozen=True)
class Request:
    """What a command asks of a renderer besides what it renders.

    ``output``: the -o file; None or ``-`` for stdout. ``precision``: --precision, the
    decimals; None for the format's own default (4 for tables and Markdown, every digit for
    JSON and CSV). ``problem``, ``config``: the run's input and options as given, from which
    the torch script names the equivalent command (every renderer reads only the trace);
    ``steps``: --steps as given (None: the default ones), for the HTML page's command.
    """

    output: Path | None = None
    precision: int | None = None
    problem: Problem | None = None
    config: AttentionConfig | None = None
    steps: list[str] | None = None

    def digits(self, default: int) -> int:
        """--precision, or ``default`` when it is not given."""
        return default if self.precision is None else self.precision

    @property
    def pretty(self) -> bool:
        """Whether the text goes to a terminal (stdout, no -o): JSON is indented for eyes."""
        return self.output is None and sys.stdout.isatty()

    def text(self, text: str) -> None:
        """Write ``text`` (:func:`attncli.io.writer.write_output`).

        Raises: InputError when the file cannot be written.
        """
        write_output(text, self.output)

    def binary(self, write: Callable[[BinaryIO], Any]) -> None:
        """Write the bytes that ``write(handle)`` writes (:func:`attncli.io.writer.write_binary`).

        Raises: InputError for a terminal stdout, or a file that cannot be written.
        """
        write_binary(write, self.output)

    def console(self, draw: Callable[[Console], Any]) -> None:
        """Print rich renderables with ``draw(console)``: to stdout in colour (as the terminal
        allows), or to the file as plain text :data:`FILE_WIDTH` columns wide.

        Raises: InputError when the file cannot be written.
        """
        if self.output is None or str(self.output) == "-":
            draw(stdout_console())
            return
        from rich.console import Console

        console = Console(record=True, file=io.StringIO(), width=FILE_WIDTH, highlight=False,
                          color_system=None)
        draw(console)
        write_output(console.export_text(), self.output)


def stdout_console() -> Console:
    """A rich Console for stdout whose broken pipe is a BrokenPipeError, handled as everywhere
    (rich's own handler exits with status 1, which attncli keeps for `check` mismatches)."""
    from rich.console import Console

    def broken_pipe() -> None:
        raise BrokenPipeError

    console = Console(highlight=False)
    console.on_broken_pipe = broken_pipe
    return console
