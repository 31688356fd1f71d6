"""Rotary position embeddings (RoPE): the frequencies, their scalings, and the rotation.

RoPE turns each pair of a head's first R dimensions by an angle proportional to the token's
position p: pair i turns by p·f_i, f_i = θ^(−2i/R) (i = 0 … R/2 − 1), so that q·k depends
on the positions only through their difference. Source: Su et al. 2021, "RoFormer", eq. 34;
transformers/modeling_rope_utils.py (the frequencies and ``rope_parameters`` scalings),
transformers/models/llama/modeling_llama.py (``rotate_half``, ``apply_rotary_pos_emb``),
transformers/models/gptj/modeling_gptj.py (``rotate_every_two``: the interleaved layout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attncli.errors import InputError

#: The rope_type values of a ``rope_scaling`` object, with their required and optional
#: fields and Hugging Face's defaults for the optional ones (modeling_rope_utils.py,
#: RotaryEmbeddingConfigMixin._validate_*_rope_parameters).
SCALINGS: dict[str, tuple[tuple[str, ...], dict[str, object]]] = {
    "default": ((), {}),
    "linear": (("factor",), {}),
    "llama3": (("factor", "low_freq_factor", "high_freq_factor",
                "original_max_position_embeddings"), {}),
    "yarn": (("factor", "original_max_position_embeddings"),
             {"attention_factor": None, "beta_fast": 32.0, "beta_slow": 1.0, "mscale": None,
              "mscale_all_dim": None, "truncate": True}),
}


@dataclass(frozen=True)
class Frequencies:
    """The rotation's frequencies and the factor on cos and sin.

    Fields: inv_freq (R/2,) float64, f_i in radians per position; attention_factor: cos and
    sin are multiplied by it (YaRN's mscale; 1 otherwise); rope_type: the scaling's name.
    """

    inv_freq: np.ndarray
    attention_factor: float
    rope_type: str


def frequencies(rotary_dim: int, theta: float, scaling: dict | None = None) -> Frequencies:
    """f_i = θ^(−2i/R) for i = 0 … R/2 − 1, changed as ``scaling`` (checked by
    :func:`check_scaling`) says: linear divides every f_i by ``factor``; llama3 divides the
    low frequencies (wavelength past original_max_position_embeddings / low_freq_factor) by
    ``factor``, keeps the high ones and interpolates between; yarn blends interpolated and
    extrapolated frequencies with a linear ramp and returns an attention factor.

    Shapes: → inv_freq (R/2,). Computed in float64 (transformers computes them in float32).
    Source: transformers/modeling_rope_utils.py, _compute_default_rope_parameters,
    _compute_linear_scaling_rope_parameters, _compute_llama3_parameters,
    _compute_yarn_parameters; Peng et al. 2023 (YaRN), eq. 17–21.
    """
    R = rotary_dim
    exponent = np.arange(0, R, 2, dtype=np.float64) / R
    inv_freq = 1.0 / theta ** exponent
    scaling = scaling or {"rope_type": "default"}
    kind = scaling["rope_type"]
    factor = float(scaling.get("factor", 1.0))
    if kind == "linear":
        return Frequencies(inv_freq / factor, 1.0, kind)
    if kind == "llama3":
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv_freq
        scaled = np.where(wavelen > old / low, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / high) & ~(wavelen > old / low)
        return Frequencies(np.where(medium, smoothed, scaled), 1.0, kind)
    if kind == "yarn":
        return _yarn(R, theta, inv_freq, factor, scaling)
    return Frequencies(inv_freq, 1.0, kind)


def _mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn(R: int, theta: float, inv_freq: np.ndarray, factor: float, s: dict) -> Frequencies:
    attention = s.get("attention_factor")
    if attention is None:
        m, m_all = s.get("mscale"), s.get("mscale_all_dim")
        attention = (_mscale(factor, m) / _mscale(factor, m_all) if m and m_all
                     else _mscale(factor))
    fast = s.get("beta_fast") or 32.0
    slow = s.get("beta_slow") or 1.0
    old = float(s["original_max_position_embeddings"])

    def correction(rotations: float) -> float:
        return R * math.log(old / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction(fast), correction(slow)
    if s.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, R - 1)
    if low == high:
        high += 0.001  # transformers' guard against a zero-width ramp
    ramp = np.clip((np.arange(R // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    extrapolation = 1 - ramp
    blended = inv_freq / factor * (1 - extrapolation) + inv_freq * extrapolation
    return Frequencies(blended, float(attention), "yarn")


def check_scaling(raw, where: str, theta: float | None) -> dict:
    """A ``rope_scaling`` object (Hugging Face's ``rope_scaling`` / ``rope_parameters``)
    checked: ``rope_type`` (or the older ``type``) one of :data:`SCALINGS`, its required
    fields numbers, no unknown field; optional fields filled with Hugging Face's defaults.
    ``rope_theta`` in it must agree with --rope-theta when both are given.

    Returns: the object with ``rope_type`` set and defaults filled in.
    Raises: InputError starting with ``where`` (``file: rope_scaling``).
    """
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected an object such as "
                         '{"rope_type": "linear", "factor": 2.0}, got ' f"{type(raw).__name__}")
    fields = dict(raw)
    kind = fields.pop("rope_type", fields.pop("type", "default"))
    fields.pop("type", None)
    if kind not in SCALINGS:
        raise InputError(f"{where}: rope_type {kind!r} is not one attncli computes; known: "
                         f"{', '.join(SCALINGS)}")
    required, optional = SCALINGS[kind]
    given_theta = fields.pop("rope_theta", None)
    if given_theta is not None and theta is not None and float(given_theta) != theta:
        raise InputError(f"{where}: rope_theta {given_theta} contradicts --rope-theta {theta:g}; "
                         "give one")
    if "partial_rotary_factor" in fields:
        raise InputError(f"{where}: partial_rotary_factor: give --rotary-dim R instead "
                         "(R = head width × the factor)")
    missing = [name for name in required if name not in fields]
    if missing:
        raise InputError(f"{where}: rope_type {kind} needs {', '.join(missing)}")
    unknown = [name for name in fields if name not in required and name not in optional]
    if unknown:
        known = ", ".join((*required, *optional)) or "none besides rope_type"
        raise InputError(f"{where}: {', '.join(unknown)} is not a field of rope_type {kind} "
                         f"(its fields: {known})")
    checked: dict = {"rope_type": kind}
    if given_theta is not None:
        checked["rope_theta"] = _number(given_theta, where, "rope_theta")
    for name in (*required, *optional):
        value = fields.get(name, optional.get(name))
        if name == "truncate":
            if not isinstance(value, bool):
                raise InputError(f"{where}: truncate: expected true or false, got {value!r}")
            checked[name] = value
        elif value is not None:
            checked[name] = _number(value, where, name)
        else:
            checked[name] = None
    if kind in ("linear", "llama3", "yarn") and checked["factor"] <= 0:
        raise InputError(f"{where}: factor must be positive, got {checked['factor']:g}")
    if kind == "llama3" and checked["low_freq_factor"] == checked["high_freq_factor"]:
        raise InputError(f"{where}: low_freq_factor and high_freq_factor must differ")
    return checked


def _number(value, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where}: {name}: expected a number, got {value!r}")
    return float(value)


def cos_sin(positions: np.ndarray, freqs: Frequencies) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of the angles p·f_i, times the attention factor.

    Shapes: positions (B or 1, n) integers → cos, sin (B or 1, 1, n, R/2) float64 (the head
    axis 1 broadcasts over any number of heads: H queries, G keys).
    """
    angles = positions.astype(np.float64)[:, None, :, None] * freqs.inv_freq
    return np.cos(angles) * freqs.attention_factor, np.sin(angles) * freqs.attention_factor


def rotate(xp, data, cos, sin, rotary_dim: int, interleaved: bool):
    """Each pair of the first R dims of every head turned by its angle; the rest unchanged.

    half (Llama, GPT-NeoX): pair i is dims (i, i + R/2): x₁' = x₁ cos − x₂ sin,
    x₂' = x₂ cos + x₁ sin, i.e. x·cos + rotate_half(x)·sin. interleaved (GPT-J, Meta's
    original Llama): pair i is dims (2i, 2i + 1), the same formula.

    Shapes: data (B, heads, n, d_head); cos, sin (B or 1, 1, n, R/2) → (B, heads, n, d_head).
    Source: transformers/models/llama/modeling_llama.py (rotate_half, apply_rotary_pos_emb);
    transformers/models/gptj/modeling_gptj.py (rotate_every_two, apply_rotary_pos_emb).
    """
    R = rotary_dim
    if interleaved:
        first, second = data[..., 0:R:2], data[..., 1:R:2]
    else:
        first, second = data[..., :R // 2], data[..., R // 2:R]
    turned_first = first * cos - second * sin
    turned_second = second * cos + first * sin
    if interleaved:
        pairs = xp.stack((turned_first, turned_second), axis=-1)
        turned = xp.reshape(pairs, (*pairs.shape[:-2], R))
    else:
        turned = xp.concat((turned_first, turned_second), axis=-1)
    if R == data.shape[-1]:
        return turned
    return xp.concat((turned, data[..., R:]), axis=-1)


@dataclass(frozen=True)
class Rope:
    """A run's RoPE, resolved: what the rotation stages read (:func:`resolve`).

    Fields: positions (B or 1, seq_q) and key_positions (B or 1, seq_k) int64; rotary_dim R
    (even, ≤ d_head); theta; interleaved (the pair layout); freqs (:class:`Frequencies`);
    scaling: the checked rope_scaling object or None; given: which of positions,
    key_positions the problem gave (the others are 0 … n − 1, queries shifted to the end
    of the keys with bottom-right alignment).
    """

    positions: np.ndarray
    key_positions: np.ndarray
    rotary_dim: int
    theta: float
    interleaved: bool
    freqs: Frequencies
    scaling: dict | None
    given: tuple[str, ...] = ()


def resolve(problem, config, batch: int, seq_q: int, seq_k: int, d_head: int) -> Rope:
    """The run's :class:`Rope` from ``config`` (--rope-theta, --rope-layout, --rotary-dim,
    --causal-align) and ``problem``'s positions, key_positions and rope_scaling.

    Raises: InputError for positions that are not integers or not (seq,) / (batch, seq),
    a rope_scaling object :func:`check_scaling` refuses; ConfigError for --rotary-dim past
    the head width.
    """
    from attncli.config import CausalAlign, RopeLayout
    from attncli.errors import ConfigError
    from attncli.problem import fmt_shape

    R = config.rotary_dim or d_head
    if R > d_head:
        raise ConfigError(f"--rotary-dim {R} is more than the {d_head} dims of a head")
    if R % 2:
        raise ConfigError(f"RoPE turns pairs of dims: the head width {d_head} is odd; give "
                          "--rotary-dim R, an even R")
    scaling = (None if problem.rope_scaling is None
               else check_scaling(problem.rope_scaling, problem.where("rope_scaling"),
                                  config.rope_theta))
    theta = config.rope_theta or (scaling or {}).get("rope_theta") or 10000.0
    offset = seq_k - seq_q if config.causal_align is CausalAlign.bottom_right else 0
    found = {}
    for key, n, default in (("positions", seq_q, offset), ("key_positions", seq_k, 0)):
        if key not in problem:
            found[key] = np.arange(default, default + n, dtype=np.int64)[None]
            continue
        given = problem[key]
        if given.shape[-1] != n or (given.ndim == 2 and given.shape[0] != batch):
            expected = f"({n},)" + (f" or ({batch}, {n})" if batch > 1 else "")
            raise InputError(f"{problem.where(key)}: expected {expected}, one per "
                             f"{'query' if key == 'positions' else 'key'}, got "
                             f"{fmt_shape(given.shape)}")
        if not np.all(given == np.round(given)):
            bad = given[given != np.round(given)].flat[0]
            raise InputError(f"{problem.where(key)}: positions are integers, found {bad:g}")
        found[key] = given.astype(np.int64).reshape(-1, n)
    return Rope(found["positions"], found["key_positions"], R, float(theta),
                config.rope_layout is RopeLayout.interleaved,
                frequencies(R, float(theta), scaling), scaling,
                tuple(k for k in ("positions", "key_positions") if k in problem))
