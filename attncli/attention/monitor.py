"""What a run tells its caller while it goes (:class:`Monitor`)."""

from __future__ import annotations

import numpy as np


class Monitor:
    """What a run tells its caller while it goes: notes, progress, and where big steps live.

    This base class says nothing and keeps every step in memory; the command line's subclass
    draws a progress bar, prints the notes and puts big steps in files.
    """

    def note(self, text: str) -> None:
        """A message before something large happens (an n×n step about to be allocated)."""

    def advance(self, done: int, total: int) -> None:
        """``done`` of ``total`` query blocks are computed."""

    def place(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> str | None:
        """A path for a step kept as a memory-mapped .npy file, or None to keep it in memory.

        May raise :class:`attncli.errors.AttncliError` to refuse a step too big for the output.
        """
        return None
