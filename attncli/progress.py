"""The command line's :class:`~attncli.attention.monitor.Monitor`: a progress bar on stderr for
long runs, notes before big allocations, and where big steps go for each output format."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from attncli.attention.monitor import Monitor
from attncli.errors import InputError
from attncli.sizes import human, nbytes

#: Text formats (json, csv, markdown, table) refuse a step of more numbers than this: 4 Mi
#: numbers are about 80 MB of JSON, and a table of them is unreadable anyway.
TEXT_LIMIT = 2**22
#: Binary formats keep a step bigger than this in a memory-mapped .npy file, not in memory.
SPILL_BYTES = 64 * 2**20
#: The bar appears once a run has taken this long (seconds), so short runs stay quiet.
SHOW_AFTER = 1.0


class CliMonitor(Monitor):
    """Progress on stderr, and steps placed as the output needs them.

    ``fmt``: what the steps are for, in the words of the refusal ("--format json",
    "attncli check").

    ``show``: whether a bar may be drawn at all (stderr a terminal, output not piped).
    ``binary``: the output is NPZ/NPY, or a drawing alone (--heatmap, --plot FILE), which
    takes a step of any size; so big steps go to memory-mapped files in ``spill`` (a folder
    made next to ``near``, the output, removed by :meth:`close`); otherwise a step of more
    than :data:`TEXT_LIMIT` numbers is refused before it is allocated.
    """

    def __init__(self, say, fmt: str, binary: bool, show: bool, near: Path | None):
        self.say, self.fmt, self.binary, self.show = say, fmt, binary, show
        self.near = near
        self.start = time.monotonic()
        self._bar = None
        self._task = None
        self._spill: str | None = None

    def note(self, text: str) -> None:
        self._pause()
        self.say("note", text)

    def advance(self, done: int, total: int) -> None:
        if self._bar is None:
            if not self.show or done >= total or time.monotonic() - self.start < SHOW_AFTER:
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("attention"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("query blocks"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task("blocks", total=total, completed=done)
            self._bar.start()
        self._bar.update(self._task, completed=done, total=total)
        if done >= total:
            self._pause()

    def place(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> str | None:
        count = int(np.prod(shape, dtype=np.int64))
        if not self.binary:
            if count > TEXT_LIMIT:
                way_out = ("write NPZ (-o FILE.npz), or leave {name} out of --steps"
                           if self.fmt.startswith("--format") else
                           "for a problem this large use attncli compute --steps context")
                raise InputError(
                    f"{name} would be {' × '.join(map(str, shape))} = {count:,} numbers "
                    f"({human(nbytes(shape, dtype))}), too many for {self.fmt}: "
                    + way_out.format(name=name))
            return None
        if nbytes(shape, dtype) <= SPILL_BYTES:
            return None
        if self._spill is None:
            import tempfile

            folder = self.near.resolve().parent if self.near is not None else None
            try:
                self._spill = tempfile.mkdtemp(prefix=".attncli-steps-", dir=folder)
            except OSError as exc:
                raise InputError(f"cannot make a folder for the big steps in "
                                 f"{folder or tempfile.gettempdir()}: {exc.strerror}") from None
        return str(Path(self._spill) / f"{name}.npy")

    def _pause(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def close(self) -> None:
        """Stop the bar; remove the folder of memory-mapped steps (after the output is written:
        the steps' arrays read from it until then)."""
        self._pause()
        if self._spill is not None:
            import shutil

            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None
