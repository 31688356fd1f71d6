"""One exception family for the whole package, and the exit statuses the CLI maps it to.

The core raises; only :mod:`attncli.cli` turns an exception into a stderr line and a status.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Exit statuses, as diff(1) and cmp(1) use them."""

    OK = 0
    MISMATCH = 1  # `attncli check`: some answer does not match
    BAD_INPUT = 2  # any bad input or usage
    INTERNAL = 70  # a bug in attncli (EX_SOFTWARE of sysexits.h)
    INTERRUPTED = 130  # Ctrl-C


class AttncliError(Exception):
    """Base of every error attncli raises on purpose; the message is one line for the user."""

    exit_status = ExitStatus.BAD_INPUT


class InputError(AttncliError):
    """The input (a file, a key, a shape, a value) is not usable."""


class ConfigError(AttncliError):
    """The options contradict each other or the problem (heads, window, dropout, …)."""


class BackendError(AttncliError):
    """The requested backend or device is not available here."""
