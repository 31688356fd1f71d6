"""``attncli model PATH --info``: what a model's attention is, from its config alone."""

from __future__ import annotations

from typing import Any

from attncli.models.layer import facts


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] → "0-2, 5"."""
    parts, start = [], None
    for i, index in enumerate(indices):
        if start is None:
            start = index
        if i + 1 == len(indices) or indices[i + 1] != index + 1:
            parts.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ", ".join(parts)


def describe(model) -> dict[str, Any]:
    """The model's attention as JSON-ready facts: architecture, layers, heads, KV heads, head
    size, positions, attention per layer (sliding window or full), soft-capping, sinks,
    QK-norm.

    Raises: InputError for a RoPE scaling attncli does not compute (:func:`facts`).
    """
    config, family = model.config, model.family
    layers = [facts(config, family, i) for i in range(model.layers)]
    first = layers[0]
    kinds: dict[str, list[int]] = {}
    for layer in layers:
        kind = ("full" if layer.window is None else
                f"sliding window of {layer.window + 1} keys (--window {layer.window})"
                if layer.causal else f"sliding window |i − j| ≤ {layer.window} (--window "
                f"{layer.window})")
        kinds.setdefault(kind, []).append(layer.index)
    if first.positions == "rope":
        thetas = sorted({layer.rope_theta for layer in layers})
        scaling = first.rope_scaling or next((x.rope_scaling for x in layers if x.rope_scaling),
                                             None)
        positions = (f"RoPE, {first.rope_layout} layout, θ = "
                     f"{' or '.join(f'{t:g}' for t in thetas)}"
                     + (f", rotary dims {first.rotary_dim} of {first.d_head}"
                        if first.rotary_dim else "")
                     + (f", scaling {scaling}" if scaling else ""))
    elif first.positions == "alibi":
        positions = "ALiBi (no position embeddings)"
    else:
        positions = "absolute (learned embeddings added before the first layer)"
    return {
        "model": model.name,
        "architecture": family.name + (f" ({', '.join(config.architectures)})"
                                       if getattr(config, "architectures", None) else ""),
        "layers": model.layers,
        "d_model": int(config.hidden_size),
        "heads": first.heads,
        "kv_heads": first.kv_heads,
        "d_head": first.d_head,
        "positions": positions,
        "max_positions": next((getattr(config, n) for n in (
            "max_position_embeddings", "n_positions") if isinstance(
            getattr(config, n, None), int)), None),
        "causal": first.causal,
        "attention": {kind: _ranges(indices) for kind, indices in kinds.items()},
        "softcap": first.softcap,
        "sinks": family.sinks,
        "qk_norm": family.qk_norm,
        "vocab_size": getattr(config, "vocab_size", None),
        "dtype": str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
                     or "float32").removeprefix("torch."),
    }
