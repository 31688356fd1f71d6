"""Run a model up to a layer and capture what its attention saw and computed.

Forward hooks on each asked layer's attention module and output projection record the
module's input (the hidden states after the layer's input norm), the model's own attention
weights (the second output of its eager attention), the projections' weights as the forward
pass used them (inside the layer's forward, so that layers offloaded by accelerate are on a
device), and the output projection's input (the context) and result (the output). A hook on
the last asked layer then stops the forward pass: the later layers never run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attncli.models.families import Family


@dataclass
class Captured:
    """One layer's numbers from the model's forward pass (batch item 0).

    Shapes (n tokens, H heads, d_model, H·d_head):
        hidden (n, d_model) float64, the attention module's input;
        weights (H, rows, n) torch tensor in the model's dtype, or None when not kept (rows:
            all n, or the one --query row);
        context (rows, H·d_v), output (rows, d_out): torch tensors in the model's dtype;
        params: name → the module's tensors (projection weights and biases, norms, sinks),
            torch, on the CPU, in their own dtype.
    """

    hidden: np.ndarray | None = None
    weights: Any = None
    context: Any = None
    output: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    dtype: Any = None


class _Stop(Exception):
    """Raised by the last asked layer's hook: nothing after it is needed."""


def resolve(module: Any, path: str) -> Any:
    """``module.a.b.c`` for the path "a.b.c"; an index for a number ("layers.3")."""
    for part in path.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module


def layer_list(model: Any, family: Family) -> Any:
    """The base model's list of layers (a multimodal model's language model's)."""
    for root in (model, getattr(model, "language_model", None)):
        if root is None:
            continue
        try:
            return resolve(root, family.layers)
        except AttributeError:
            continue
    raise AttributeError(f"no {family.layers} in {type(model).__name__}")


def run_layers(model: Any, family: Family, input_ids: list[int], layers: list[int],
               rows: int | None, keep_weights: bool) -> dict[int, Captured]:
    """Run ``model`` on ``input_ids`` (one sequence) until the last of ``layers`` has run.

    ``rows``: keep only this query row of the weights, context and output (--query), None for
    all; ``keep_weights``: keep the model's weights at all (False when no n×n step is shown).
    Returns: layer → :class:`Captured`.
    """
    import torch

    stack = layer_list(model, family)
    seen: dict[int, Captured] = {}
    handles = []
    pick = slice(None) if rows is None else slice(rows, rows + 1)

    def on_attention(index: int):
        def hook(module, args, kwargs, output):
            record = seen[index]
            hidden = kwargs.get("hidden_states", args[0] if args else None)
            record.hidden = hidden[0].detach().to("cpu", torch.float64).numpy()
            record.dtype = hidden.dtype
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if keep_weights and weights is not None:
                record.weights = weights[0, :, pick].detach().to("cpu")
            for name, tensor in _tensors(module, family).items():
                record.params[name] = tensor
        return hook

    def on_out(index: int):
        def hook(module, args, output):
            record = seen[index]
            record.context = args[0][0, pick].detach().to("cpu")
            record.output = output[0, pick].detach().to("cpu")
            for name, tensor in _tensors(module, family, prefix="o").items():
                record.params[name] = tensor
        return hook

    def stop(module, args, output):
        raise _Stop

    try:
        for index in layers:
            seen[index] = Captured()
            layer = stack[index]
            handles.append(resolve(layer, family.attention).register_forward_hook(
                on_attention(index), with_kwargs=True))
            handles.append(resolve(layer, family.out).register_forward_hook(on_out(index)))
        handles.append(stack[max(layers)].register_forward_hook(stop))
        device = next(model.parameters()).device
        ids = torch.tensor([input_ids], dtype=torch.long)
        if device.type != "meta":
            ids = ids.to(device)
        with torch.no_grad():
            try:
                model(input_ids=ids, attention_mask=torch.ones_like(ids))
            except _Stop:
                pass
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _tensors(module: Any, family: Family, prefix: str | None = None) -> dict[str, Any]:
    """The tensors attncli needs from an attention module (or, with ``prefix`` "o", from the
    output projection): weights and biases of the projections, QK-norm weights and ε, sinks.
    Names: "q.weight", "q.bias", "q_norm.weight", "q_norm.eps", "sinks", "o.weight" …"""
    import torch

    found: dict[str, Any] = {}

    def take(name: str, tensor) -> None:
        if tensor is not None and isinstance(tensor, torch.Tensor):
            found[name] = tensor.detach().to("cpu")

    if prefix == "o":
        take("o.weight", module.weight)
        take("o.bias", getattr(module, "bias", None))
        return found
    for role in ("q", "k", "v"):
        layer = getattr(module, getattr(family, role))
        take(f"{role}.weight", layer.weight)
        take(f"{role}.bias", getattr(layer, "bias", None))
    for name in ("q_norm", "k_norm"):
        norm = getattr(module, name, None)
        if norm is not None:
            take(f"{name}.weight", getattr(norm, "weight", None))
            eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
            if eps is not None:
                found[f"{name}.eps"] = float(eps)
    take("sinks", getattr(module, "sinks", None))
    scaling = getattr(module, family.scaling, None)
    if scaling is not None:
        found["scaling"] = float(scaling)
    return found
