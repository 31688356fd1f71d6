"""Parity with Hugging Face transformers' own eager attention, on tiny random models built here
(a config with a few heads and layers, ``attn_implementation="eager"``, float64): nothing is
downloaded. The ``transformers`` fixture skips a test when transformers (or torch) is absent,
except under CI (CI=true), where that is a failure."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field

import numpy as np
import pytest

MISSING = (importlib.util.find_spec("transformers") is None
           or importlib.util.find_spec("torch") is None)


@pytest.fixture
def transformers():
    if MISSING:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("transformers is not installed, but CI must run the parity tests: "
                        'pip install -e ".[test]" torch==2.13.0')
        pytest.skip("transformers is not installed (pip install transformers torch==2.13.0)")
    import transformers as module

    return module


@dataclass
class Captured:
    """One attention layer's numbers from a model's own forward pass (numpy, float64).

    Shapes (B = 1 batch item, n tokens): hidden (B, n, d_model) the attention module's
    input; weights (B, H, n, n) the eager attention's probabilities; context (B, n, H·d_head)
    the input of the output projection; output (B, n, d_model) its result (before any
    post-attention norm or residual).
    """

    hidden: np.ndarray | None = None
    weights: np.ndarray | None = None
    context: np.ndarray | None = None
    output: np.ndarray | None = None
    kwargs: dict = field(default_factory=dict)


def capture(model, attention, out_proj, run) -> Captured:
    """Run ``run()`` (the model's forward pass) with hooks on one ``attention`` module and its
    ``out_proj`` linear layer; return what they saw. The eager attention returns its weights
    as the second output when the model is called with ``output_attentions=True``.
    """
    import torch

    seen = Captured()

    def on_attention(module, args, kwargs, output):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        seen.hidden = hidden.detach().to(torch.float64).numpy()
        seen.kwargs = kwargs
        if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
            seen.weights = output[1].detach().to(torch.float64).numpy()

    def on_out_proj(module, args, output):
        seen.context = args[0].detach().to(torch.float64).numpy()
        seen.output = output.detach().to(torch.float64).numpy()

    handles = [attention.register_forward_hook(on_attention, with_kwargs=True),
               out_proj.register_forward_hook(on_out_proj)]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def linear_in_out(linear) -> np.ndarray:
    """An nn.Linear's weight as attncli's in_out matrix (d_in, d_out): weight.T."""
    return linear.weight.detach().to(dtype=__import__("torch").float64).numpy().T.copy()
