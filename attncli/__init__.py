"""attncli: an attention calculator that shows every step with real numbers.

Library first: ``load_problem`` → ``attend`` → ``Trace``; the CLI is a thin layer over these.
"""

from __future__ import annotations

from attncli.config import AttentionConfig
from attncli.errors import AttncliError
from attncli.trace import Step, Trace

__version__ = "0.1.0"
__all__ = ["AttentionConfig", "AttncliError", "Step", "Trace", "attend", "grade",
           "load_problem", "__version__"]


def __getattr__(name: str):
    # The pipeline and the loaders are imported on first use, so `import attncli` stays light.
    if name == "attend":
        from attncli.attention.pipeline import attend

        return attend
    if name == "grade":
        from attncli.teach.classroom import grade

        return grade
    if name == "load_problem":
        from attncli.io import load_problem

        return load_problem
    raise AttributeError(f"module 'attncli' has no attribute {name!r}")
