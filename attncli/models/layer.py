"""One layer of a model as attncli's input: its facts, its Problem and AttentionConfig.

:func:`facts` reads what a layer's attention does from the model's config (the same for
``--info`` and for the computation); :func:`layer_problem` adds the numbers the forward pass
captured (:mod:`attncli.models.capture`) and unpacks packed projections.

Sources: transformers/models/*/modeling_*.py (attention classes), transformers/
modeling_rope_utils.py (rope_parameters), transformers/masking_utils.py
(sliding_window_overlay: key j is seen by query i when i − j < sliding_window, which is
attncli's ``--window sliding_window − 1``; sliding_window_bidirectional_overlay, for a config
with ``is_causal: false``: |i − j| ≤ sliding_window, ``--window sliding_window``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attncli.config import AttentionConfig
from attncli.errors import InputError
from attncli.models.families import Family


@dataclass(frozen=True)
class LayerFacts:
    """What layer ``index``'s attention does, from the config.

    heads H, kv_heads G, d_head; window: attncli's --window (|i − j| ≤ window), None for full
    attention; rope_theta, rope_scaling (a rope_parameters object of a scaling, None for
    none), rotary_dim (None: all of d_head); softcap: attn_logit_softcapping where the
    family's attention applies it (:attr:`Family.softcap`); causal.
    """

    index: int
    heads: int
    kv_heads: int
    d_head: int
    causal: bool
    window: int | None
    positions: str
    rope_theta: float | None = None
    rope_scaling: dict | None = None
    rotary_dim: int | None = None
    rope_layout: str | None = None
    softcap: float | None = None
    layer_type: str | None = None


def facts(config: Any, family: Family, index: int) -> LayerFacts:
    """Layer ``index``'s attention as its config describes it.

    Raises: InputError for a RoPE scaling attncli does not compute (dynamic NTK, longrope),
    or ALiBi without the causal mask.
    """
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    d_head = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    types = getattr(config, "layer_types", None)
    layer_type = types[index] if isinstance(types, list | tuple) and index < len(types) else None
    causal, window = _mask(config, family, layer_type)
    if family.positions == "alibi" and not causal:
        raise InputError(f"{family.name} without its causal mask (is_causal: false): its ALiBi "
                         "adds m·j to every row, which is attncli's −m·|i − j| only on causal "
                         "rows")
    softcap = getattr(config, "attn_logit_softcapping", None) if family.softcap else None
    more: dict[str, Any] = {}
    if family.positions == "rope":
        more = _rope(config, family, layer_type, d_head)
    return LayerFacts(index, heads, kv_heads, d_head, causal, window, family.positions,
                      softcap=float(softcap) if softcap else None, layer_type=layer_type,
                      **more)


def _mask(config: Any, family: Family, layer_type: str | None) -> tuple[bool, int | None]:
    """Whether the layer is causal, and its --window (None: all keys).

    Causal: the family's :attr:`Family.causal` (a value, or a config attribute such as BERT's
    is_decoder), unless the config says ``use_bidirectional_attention`` (Gemma 3, its own mask:
    the causal sliding window OR'd with |i − j| < sliding_window) or ``is_causal: false``
    (masking_utils' create_causal_mask and create_sliding_window_causal_mask then build
    bidirectional masks for any family: |i − j| ≤ sliding_window, the bound included).
    Window: only where the family applies ``sliding_window`` (:attr:`Family.sliding`), on
    the layers ``layer_types`` marks sliding_attention (all layers without layer_types).
    """
    causal = family.causal if isinstance(family.causal, bool) else \
        bool(getattr(config, family.causal, False))
    generic_bidirectional = getattr(config, "is_causal", True) is False
    causal = causal and not generic_bidirectional and \
        not getattr(config, "use_bidirectional_attention", False)
    sliding = getattr(config, "sliding_window", None) if family.sliding else None
    slides = layer_type in (None, "sliding_attention")
    if not (slides and isinstance(sliding, int) and sliding > 0):
        return causal, None
    return causal, sliding if generic_bidirectional else sliding - 1


def _rope(config: Any, family: Family, layer_type: str | None, d_head: int) -> dict[str, Any]:
    """θ, scaling, rotary dims and layout of a RoPE layer (rope_parameters, per layer type
    where the config has one per type, as Gemma 3's)."""
    from attncli.attention.rope import SCALINGS

    params = dict(getattr(config, "rope_parameters", None) or {})
    if layer_type in params and isinstance(params[layer_type], dict):
        params = dict(params[layer_type])
    elif "full_attention" in params and isinstance(params["full_attention"], dict):
        params = dict(params["full_attention"])
    theta = float(params.get("rope_theta", getattr(config, "rope_theta", None) or 10000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in SCALINGS:
        raise InputError(f"rope_type {kind!r} (the model's rope_parameters) is not one attncli "
                         f"computes; it computes {', '.join(SCALINGS)}")
    scaling = None
    if kind != "default":
        required, optional = SCALINGS[kind]
        scaling = {"rope_type": kind, **{k: params[k] for k in (*required, *optional)
                                         if params.get(k) is not None}}
    factor = params.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", None))
    rotary = getattr(config, "rotary_dim", None) if family.name == "GPT-J" else None
    if rotary is None and factor is not None and float(factor) < 1:
        rotary = int(d_head * float(factor))
    return {"rope_theta": theta, "rope_scaling": scaling,
            "rotary_dim": int(rotary) if rotary and rotary < d_head else None,
            "rope_layout": family.rope_layout}


def layer_problem(config: Any, family: Family, index: int, captured, tokens: list[str]):
    """Layer ``index`` as attncli's input.

    Shapes: x (n, d_model) the attention module's input; W_q (H·d_head, d_model), W_k and W_v
    (G·d_head, d_model), W_o (d_out, H·d_head), all in nn.Linear's out_in layout; biases,
    q_norm / k_norm, sinks (H,) where the model has them.
    Returns: (Problem, AttentionConfig, LayerFacts).
    """
    from attncli.problem import Problem

    layer = facts(config, family, index)
    params = captured.params
    arrays: dict[str, Any] = {"x": captured.hidden, **_projections(family, layer, params)}
    more: dict[str, Any] = {}
    for name in ("q_norm", "k_norm"):
        if f"{name}.weight" in params:
            arrays[name] = _numpy(params[f"{name}.weight"])
            more["qk_norm_eps"] = params.get(f"{name}.eps", 1e-6)
    if "q_norm" in arrays:
        more["qk_norm"] = "per-head" if arrays["q_norm"].shape[0] == layer.d_head else "whole"
        if family.norm_offset:
            more["qk_norm_offset"] = family.norm_offset
    if "sinks" in params:
        arrays["sinks"] = _numpy(params["sinks"])
    if layer.positions == "rope":
        more.update(rope=True, rope_theta=layer.rope_theta, rotary_dim=layer.rotary_dim,
                    rope_layout=layer.rope_layout)
    problem = Problem.from_mapping({**arrays, "tokens": tokens, "weight_layout": "out_in"},
                                   f"layer {index}")
    if layer.rope_scaling:
        problem.rope_scaling = dict(layer.rope_scaling)
    options = AttentionConfig(
        heads=layer.heads, kv_heads=layer.kv_heads if layer.kv_heads != layer.heads else None,
        causal=layer.causal, window=layer.window, softcap=layer.softcap,
        alibi=layer.positions == "alibi", scale=_scale(params.get("scaling"), layer.d_head),
        weight_layout="out_in", **more)
    return problem, options, layer


def _scale(scaling: float | None, d_head: int) -> float | None:
    """The module's score factor as --scale, None when it is attncli's default 1/√d_head."""
    if scaling is None or abs(scaling * d_head ** 0.5 - 1) < 1e-12:
        return None
    return scaling


def _numpy(tensor) -> np.ndarray:
    import torch

    return tensor.to(torch.float64).numpy().copy()


def _projections(family: Family, layer: LayerFacts, params: dict) -> dict[str, np.ndarray]:
    """W_q, W_k, W_v, W_o and their biases, out_in, from the family's storage."""
    H, G, d = layer.heads, layer.kv_heads, layer.d_head
    arrays: dict[str, np.ndarray] = {}
    weight = {role: _numpy(params[f"{role}.weight"]) for role in "qkvo"
              if f"{role}.weight" in params}
    bias = {role: _numpy(params[f"{role}.bias"]) for role in "qkvo" if f"{role}.bias" in params}
    if family.conv1d:  # Conv1D keeps (in, out): nn.Linear's layout is its transpose
        weight = {role: w.T.copy() for role, w in weight.items()}
    if family.packing == "columns":  # [q | k | v] along the output
        sizes = np.cumsum([H * d, G * d])
        for name, packed in (("W", weight.pop("q")), ("b", bias.pop("q", None))):
            if packed is not None:
                for role, part in zip("qkv", np.split(packed, sizes, axis=0), strict=True):
                    arrays[f"{name}_{role}"] = part.copy()
        weight.pop("k"), weight.pop("v")
        bias.pop("k", None), bias.pop("v", None)
    elif family.packing == "per_head":  # per head [q_h | k_h | v_h]: view(H, 3, d, …)
        for name, packed in (("W", weight.pop("q")), ("b", bias.pop("q", None))):
            if packed is not None:
                parts = packed.reshape(H, 3, d, *packed.shape[1:])
                for i, role in enumerate("qkv"):
                    arrays[f"{name}_{role}"] = parts[:, i].reshape(H * d, *packed.shape[1:])
        weight.pop("k"), weight.pop("v")
        bias.pop("k", None), bias.pop("v", None)
    for role, w in weight.items():
        arrays[f"W_{role}"] = w
    for role, b in bias.items():
        arrays[f"b_{role}"] = b
    return arrays
