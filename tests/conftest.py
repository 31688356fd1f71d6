"""Shared fixtures. Tests that need torch use the ``torch`` fixture: they skip with a reason when
torch is absent, except under CI (CI=true), where a missing torch is a failure."""

from __future__ import annotations

import importlib.util
import os

import pytest

TORCH_MISSING = importlib.util.find_spec("torch") is None


@pytest.fixture
def torch():
    if TORCH_MISSING:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("torch is not installed, but CI must run the parity tests: "
                        "pip install torch==2.13.0")
        pytest.skip("torch is not installed (pip install torch==2.13.0)")
    import torch as torch_module

    return torch_module


# Property tests and fuzzing: under CI the same examples every run (derandomize) and no example
# database, so a red CI is reproducible; locally, hypothesis's defaults.
from hypothesis import settings  # noqa: E402

settings.register_profile("attncli-ci", derandomize=True, database=None, deadline=None,
                          print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("attncli-ci")
