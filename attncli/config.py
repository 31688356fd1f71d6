"""How to attend: :class:`AttentionConfig`, pure data, and the named variants (presets of it)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from attncli.errors import ConfigError


class Score(enum.StrEnum):
    """Score function between a query q and a key k."""

    dot = "dot"  # q·k  (Luong et al. 2015, eq. 8 "dot")
    scaled_dot = "scaled_dot"  # q·k / √d_k  (Vaswani et al. 2017, eq. 1)
    general = "general"  # qᵀ W_a k  (Luong et al. 2015, eq. 8 "general"; a bilinear form)
    additive = "additive"  # v_aᵀ tanh(q W_a + k U_a + b_a)  (Bahdanau et al. 2015, app. A)


class Normalize(enum.StrEnum):
    """How scores become weights."""

    softmax = "softmax"  # soft attention
    hard = "hard"  # one-hot on the arg-max (ties: the first, lowest-index key)
    # softmax over the k largest scores of each row, zero elsewhere (--normalize topk)
    top_k = "topk"


class Layout(enum.StrEnum):
    """How projection matrices are stored."""

    in_out = "in_out"  # Q = x @ W_q, W_q (d_in, d_k): the seeds' and the papers' convention
    out_in = "out_in"  # Q = x @ W_q.T, W_q (d_k, d_in): torch.nn.Linear / nn.MultiheadAttention


class CausalAlign(enum.StrEnum):
    """Where the causal diagonal sits when seq_q ≠ seq_k."""

    top_left = "top-left"  # query i sees keys j ≤ i (torch SDPA is_causal, torch.tril)
    bottom_right = "bottom-right"  # query i sees keys j ≤ i + seq_k − seq_q (flash-attn ≥ 2.1)


class QKNorm(enum.StrEnum):
    """Over which numbers the RMSNorm of the queries and keys takes its mean (--qk-norm)."""

    per_head = "per-head"  # each head's d_head numbers (Qwen3, Gemma 3: q_norm (d_head,))
    whole = "whole"  # the whole projection, H·d_head (G·d_head for keys) numbers (OLMo2)


class RopeLayout(enum.StrEnum):
    """Which dims of a head RoPE turns together."""

    half = "half"  # dims i and i + R/2 (Llama, GPT-NeoX: rotate_half)
    interleaved = "interleaved"  # dims 2i and 2i + 1 (GPT-J, Meta's original Llama)


class Backend(enum.StrEnum):
    auto = "auto"  # numpy for small problems, torch (when installed) for large ones
    numpy = "numpy"
    torch = "torch"


class DType(enum.StrEnum):
    float64 = "float64"
    float32 = "float32"


#: The help panels of the options (``attncli compute --help``).
INPUT, VARIANT, DEVICE = "Input", "Variant", "Device"
_SEED_LIMIT = 2**63  # torch.manual_seed and numpy.random.default_rng both take 0 … 2**63 − 1
_COUNT_LIMIT = 2**31  # heads, window, top_k: larger counts mean nothing for any real problem


def choices(names) -> str:
    """An enum's values (or a list's items) for a help text: "a, b or c". A long choice list
    goes in the help, where it wraps between words, with a short metavar (NAME), not in
    Typer's <a|b|c> metavar, which rich cuts mid-word at 80 columns."""
    values = [getattr(name, "value", name) for name in names]
    return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else "".join(values)


@dataclass(frozen=True)
class Option:
    """How one :class:`AttentionConfig` field is set from outside: its command-line option,
    its range, whether an input file's ``config`` may set it. Declared with the field
    (:func:`option`); :func:`options_of` fills in ``name``, ``kind`` and ``default`` from it.

    The flag is ``--name`` with dashes; a bool field's flag is a switch that sets the value
    other than the default (``causal`` False → ``--causal``, ``project`` True → ``--no-project``).

    Fields:
        help: the option's help text (``--help``).
        panel: the help panel it is listed in.
        metavar: the value's name in the help (NAME for a long choice list), None: Typer's.
        allowed, expected: the range check (a predicate of a value not None) and its words
            (``--heads must be a count from 1``); None: any value of the type.
        file: whether an input file's ``config`` may set it (backend, device and dtype are left
            to the command line on purpose: a homework file should not decide where it runs).
        data: a fact of the problem's data rather than a choice of variant, so a file's value
            is kept under ``--variant``.
        flag_default: the option's default on the command line (shown in the help), None: the
            field is left to the file, the variant or its default when the flag is not given.
        name, kind, default: the field's name, type (without None) and default.
    """

    help: str
    panel: str = VARIANT
    metavar: str | None = None
    allowed: Callable[[Any], bool] | None = None
    expected: str | None = None
    file: bool = True
    data: bool = False
    flag_default: Any = None
    name: str = ""
    kind: type = object
    default: Any = None

    @property
    def flag(self) -> str:
        """The command-line option: ``--top-k``, ``--causal``, ``--no-project``."""
        negated = self.kind is bool and self.default is True
        return "--" + "no-" * negated + self.name.replace("_", "-")

    @property
    def param(self) -> str:
        """The flag as a Python name (``no_project``): the command's parameter."""
        return self.flag.removeprefix("--").replace("-", "_")

    def from_flag(self, given: Any) -> Any:
        """The field's value set by the flag's parsed value; None: the flag sets nothing."""
        if self.kind is bool:
            return (not self.default) if given else None
        return given

    def words(self, value: Any) -> list[str]:
        """The command-line words that set the field to ``value``: ``["--window", "1"]``,
        ``["--no-project"]``; none for a bool field's default, which no flag sets."""
        if self.kind is bool:
            return [self.flag] if bool(value) != self.default else []
        return [self.flag, str(getattr(value, "value", value))]

    def fault(self, value: Any) -> str | None:
        """What is wrong with ``value``, ``"must be a count from 1, got 0"``; None: in range."""
        if value is None or self.allowed is None or self.allowed(value):
            return None
        shown = value if len(repr(value)) < 30 else f"{repr(value)[:12]}…"
        return f"must be {self.expected}, got {shown}"

    def check(self, value: Any) -> None:
        """Raises: ConfigError naming the flag and the value, for a value out of range."""
        fault = self.fault(value)
        if fault is not None:
            raise ConfigError(f"{self.flag} {fault}")


def option(default: Any, help: str, **details: Any) -> Any:
    """A field of :class:`AttentionConfig` with its :class:`Option` (``details``: its other
    fields) in the field's metadata."""
    return dataclasses.field(default=default,
                             metadata={"option": Option(help=help, **details)})


@dataclass(frozen=True)
class AttentionConfig:
    """Every choice that turns a Problem into a Trace; pure data that :func:`attncli.attend` reads.

    Fields:
        project: use W_q/W_k/W_v (and biases) when the problem has them; False gives Q = K = V = x.
        qk_norm, qk_norm_eps, qk_norm_offset: RMSNorm of the queries and keys (None: none),
            per head or over the whole projection, x / √(mean(x²) + eps) · (offset + w).
        score: the score function; None picks ``scaled_dot`` when a query or key projection is
            used and ``dot`` otherwise.
        scale: the factor the scores are multiplied by; None means 1/√d_k for ``scaled_dot`` and
            1 for the other score functions (torch SDPA's ``scale`` has the same meaning).
        causal, causal_align: the causal mask and where its diagonal sits when seq_q ≠ seq_k.
        softcap: soft-capping of the scaled scores, C·tanh(scores / C) (None: none).
        alibi: ALiBi's linear bias −m_h·|i + offset − j| added to the scores (offset 0
            top-left, seq_k − seq_q bottom-right, as ``causal_align``).
        window: local attention, query i sees keys j with |i − j| ≤ window (None: global).
        normalize, temperature, top_k: how scores become weights; softmax(scores / temperature).
        heads: number of heads H (None: from 3-D weights, else 1); widths must be H·d_head.
        kv_heads: key/value heads G of grouped-query attention (None: from a 3-D W_k or W_v,
            else H); W_k, W_v are G·d_head wide and query head h uses KV head ⌊h / (H/G)⌋.
        dropout, seed: dropout probability on the weights and the seed of its mask.
        weight_layout: ``in_out`` or ``out_in``; None takes the problem's, else ``in_out``.
        backend, device, dtype: where and in what precision the arrays live; backend None
            means numpy on the CPU and torch on any other device.

    Each field declares its option (:func:`option`, :class:`Option`): the
    command-line options, the keys of a file's ``config``, the range checks and
    :func:`as_flags` are generated from it.
    """

    project: bool = option(True, "Ignore W_q/W_k/W_v: Q = K = V = x.")
    qk_norm: QKNorm | None = option(
        None, "RMSNorm of the queries and keys after the projection, before RoPE: per-head "
        "(Qwen3, Gemma 3) or over the whole projection (OLMo2); weights q_norm, k_norm.")
    qk_norm_eps: float = option(
        1e-6, "ε of --qk-norm: x / √(mean(x²) + ε) · w.",
        allowed=lambda v: math.isfinite(v) and v > 0, expected="a positive number")
    qk_norm_offset: float = option(
        0.0, "--qk-norm weights are OFFSET + w: 1 for Gemma 3 (its (1 + w)).", metavar="OFFSET",
        allowed=math.isfinite, expected="a finite number")
    score: Score | None = option(None, f"Score function: {choices(Score)}.", metavar="NAME")
    scale: float | None = option(
        None, "Multiply the scores by this factor.",
        allowed=math.isfinite, expected="a finite number")
    softcap: float | None = option(
        None, "Soft-cap the scaled scores: C·tanh(scores / C), before any bias and the mask "
        "(Gemma 2's attn_logit_softcapping).", metavar="C",
        allowed=lambda v: math.isfinite(v) and v > 0, expected="a positive number")
    alibi: bool = option(
        False, "ALiBi: add −m_h·|i − j| to head h's scores (Press et al. 2022; Bloom, MPT), "
        "slopes m_h from the heads or the key alibi_slopes.")
    causal: bool = option(False, "Mask future keys (−∞ before softmax).")
    causal_align: CausalAlign = option(
        CausalAlign.top_left, "Causal diagonal when seq_q ≠ seq_k: top-left (torch) or "
        "bottom-right (flash-attn); aligns --window too.")
    window: int | None = option(
        None, "Local attention: only keys with |i−j| ≤ W.",
        allowed=lambda v: 0 <= v < _COUNT_LIMIT, expected="0 or more (|i − j| ≤ W)")
    normalize: Normalize = option(
        Normalize.softmax, "softmax (soft), hard (one-hot arg-max) or topk.")
    temperature: float = option(
        1.0, "softmax(scores / T).",
        allowed=lambda v: math.isfinite(v) and v > 0, expected="a positive number")
    top_k: int | None = option(
        None, "K for --normalize topk.",
        allowed=lambda v: 1 <= v < _COUNT_LIMIT, expected="a count from 1")
    heads: int | None = option(
        None, "Number of heads H.", data=True,
        allowed=lambda v: 1 <= v < _COUNT_LIMIT, expected="a count from 1")
    kv_heads: int | None = option(
        None, "Key/value heads G (grouped-query attention, 1: multi-query): query head h uses "
        "KV head ⌊h / (H/G)⌋; H must be a multiple of G (default: from a 3-D W_k or W_v, else "
        "H).", metavar="G", data=True,
        allowed=lambda v: 1 <= v < _COUNT_LIMIT, expected="a count from 1")
    rope: bool = option(False, "Rotary position embeddings (RoPE) on queries and keys.")
    rope_theta: float | None = option(
        None, "RoPE base θ: pair i turns by position × θ^(−2i/R) (default 10000).",
        metavar="BASE", allowed=lambda v: math.isfinite(v) and v > 1, expected="a number above 1")
    rope_layout: RopeLayout | None = option(
        None, "RoPE pairs: half (dims i, i + R/2: Llama, GPT-NeoX; the default) or "
        "interleaved (dims 2i, 2i + 1: GPT-J).")
    rotary_dim: int | None = option(
        None, "RoPE turns the first R dims of each head (default all; R even).", metavar="R",
        allowed=lambda v: 2 <= v < _COUNT_LIMIT and v % 2 == 0, expected="an even count from 2")
    dropout: float = option(
        0.0, "Dropout probability on the weights.",
        allowed=lambda v: 0.0 <= v < 1.0, expected="in [0, 1)")
    seed: int | None = option(
        None, "Seed of the dropout mask.",
        allowed=lambda v: 0 <= v < _SEED_LIMIT, expected="in 0 … 2**63 − 1")
    weight_layout: Layout | None = option(
        None, "in_out: Q = x @ W_q, as tutorials and papers write it; out_in: Q = x @ W_q.T, "
        "as nn.Linear stores W_q.", panel=INPUT, data=True)
    backend: Backend | None = option(
        None, "numpy, torch, or auto: numpy for small problems, torch (if installed) from "
        "5e10 FLOPs (1e11 in float32).", panel=DEVICE, file=False, flag_default=Backend.auto)
    device: str = option(
        "cpu", "cpu, cuda, cuda:N, mps or auto.", panel=DEVICE, file=False, flag_default="cpu")
    dtype: DType = option(
        DType.float64, "Floating-point precision.", panel=DEVICE, file=False,
        flag_default=DType.float64)

    def __post_init__(self) -> None:
        # Accept plain strings for the enum fields (AttentionConfig(score="dot")) from Python.
        for option in options_of(type(self)).values():
            kind, value = option.kind, getattr(self, option.name)
            if issubclass(kind, enum.Enum) and value is not None and not isinstance(value, kind):
                try:
                    object.__setattr__(self, option.name, kind(value))
                except ValueError:
                    known = ", ".join(m.value for m in kind)
                    raise ConfigError(f"{option.name}: expected one of {known}, got "
                                      f"{value!r}") from None

    def replace(self, **changes: Any) -> AttentionConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> AttentionConfig:
        """Raise :class:`ConfigError` for values no problem could satisfy; return self."""
        for option in options_of(type(self)).values():
            option.check(getattr(self, option.name))
        if self.normalize is Normalize.top_k and (self.top_k is None or self.top_k < 1):
            raise ConfigError("--normalize topk needs --top-k K with K ≥ 1")
        if self.top_k is not None and self.normalize is not Normalize.top_k:
            raise ConfigError("--top-k K needs --normalize topk")
        if not self.rope:
            for name in ("rope_theta", "rope_layout", "rotary_dim"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{OPTIONS[name].flag} needs --rope")
        if self.qk_norm is None and (self.qk_norm_eps != 1e-6 or self.qk_norm_offset != 0.0):
            raise ConfigError("--qk-norm-eps and --qk-norm-offset need --qk-norm per-head "
                              "or whole")
        return self

    def changed(self) -> dict[str, Any]:
        """The option fields that differ from their defaults, in field order: with
        :func:`as_flags`, the command line of this config."""
        return {name: getattr(self, name) for name, option in options_of(type(self)).items()
                if getattr(self, name) != option.default}

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: v.value if isinstance(v, enum.Enum) else v for k, v in fields.items()}


@functools.cache
def options_of(cls: type) -> dict[str, Option]:
    """Field name → :class:`Option`, for the fields of the dataclass ``cls`` that declare one
    (:func:`option`), in field order, each with its field's name, type and default."""
    hints = typing.get_type_hints(cls)
    return {f.name: dataclasses.replace(f.metadata["option"], name=f.name, default=f.default,
                                        kind=_without_none(hints[f.name]))
            for f in dataclasses.fields(cls) if "option" in f.metadata}


def _without_none(hint: Any) -> type:
    """``Score | None`` → ``Score``."""
    kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
    return kinds[0] if kinds else hint


def file_fields(options: Mapping[str, Option]) -> dict[str, type]:
    """The fields an input file's ``config`` may set, and their types."""
    return {name: option.kind for name, option in options.items() if option.file}


#: The options of :class:`AttentionConfig`, by field name, in field order.
OPTIONS = options_of(AttentionConfig)
#: The fields an input file's ``config`` may set, and their types.
FILE_FIELDS = file_fields(OPTIONS)
#: File fields that describe the data rather than a choice of variant: kept under --variant.
DATA_FIELDS = tuple(name for name, option in OPTIONS.items() if option.data)


def as_flags(fields: Mapping[str, Any], options: Mapping[str, Option] = OPTIONS) -> list[str]:
    """The command-line words that set these config fields (a variant's, or
    :meth:`AttentionConfig.changed`), in their order: ``{"project": False, "score": "dot"}`` →
    ``["--no-project", "--score", "dot"]``. ``options``: those of the fields' dataclass
    (:func:`options_of`).

    Raises: KeyError for a name that is no option.
    """
    return [word for name, value in fields.items() for word in options[name].words(value)]


@dataclass(frozen=True)
class Variant:
    """A named preset: the config fields it sets, its formula and where it comes from."""

    name: str
    fields: dict[str, Any]
    formula: str
    source: str


# The tutorials the variants come from, by their titles (attncli's tests redo their examples)
_MECHANISMS = "'Attention Mechanisms and Self-Attention in Neural Networks'"
_FROM_SCRATCH = "'Simple initialization of the path of attention from scratch'"
_STARTER_GUIDE = ("'Must-Read Starter Guide to Mastering Attention Mechanisms in Machine "
                  "Learning'")
_BUT_WHY = "'Attention May Be All We Need... But Why?'"
_NTU = "'6.1-Self-Attention' (Pin-Jiun, Machine-Learing-NTU)"

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant(
            "simple",
            {"project": False, "score": Score.dot},
            "weights = softmax(x xᵀ), context = weights x",
            f"{_MECHANISMS}, 'Hello shiny sun!' (no trainable weights)",
        ),
        Variant(
            "unscaled",
            {"score": Score.dot},
            "weights = softmax(Q Kᵀ), context = weights V",
            f"{_NTU} (dot-product score with W_q, W_k, W_v)",
        ),
        Variant(
            "scaled",
            {"score": Score.scaled_dot},
            "weights = softmax(Q Kᵀ / √d_k), context = weights V",
            f"{_MECHANISMS} ('Self-Attention with Trainable Weights'); Vaswani et al. 2017, "
            "eq. 1",
        ),
        Variant(
            "causal",
            {"causal": True},
            "weights = softmax(mask(Q Kᵀ / √d_k)), future keys set to −∞",
            f"{_MECHANISMS} (causal attention, LLMs-from-scratch ch. 3)",
        ),
        Variant(
            "multihead",
            {},
            "head_h = softmax(Q_h K_hᵀ / √d_head) V_h, output = concat(heads) W_o + b_o",
            f"{_FROM_SCRATCH} (einsum multi-head), {_BUT_WHY}; Vaswani et al. 2017, §3.2.2",
        ),
        Variant(
            "cross",
            {},
            "Q = x W_q, K = memory W_k, V = memory W_v",
            f"{_MECHANISMS} (translation example), {_STARTER_GUIDE}; Vaswani et al. 2017, "
            "§3.2.3",
        ),
        Variant(
            "local",
            {"window": 1},
            "weights = softmax(Q Kᵀ / √d_k) over keys with |i − j| ≤ W",
            f"{_STARTER_GUIDE} (local attention); Luong et al. 2015, §3.2",
        ),
        Variant(
            "hard",
            {"normalize": Normalize.hard},
            "weights = one_hot(argmax_j scores_ij)",
            f"{_STARTER_GUIDE} (hard attention); Xu et al. 2015",
        ),
        Variant(
            "additive",
            {"score": Score.additive},
            "scores = tanh(Q W_a + K U_a + b_a) v_a",
            f"{_NTU} (additive/concat score); Bahdanau et al. 2015, appendix A",
        ),
        Variant(
            "general",
            {"score": Score.general},
            "scores = Q W_a Kᵀ",
            "Luong et al. 2015, eq. 8 (general, bilinear)",
        ),
        # today's attention (issue 12): one mechanism each, then a model family's options
        Variant(
            "gqa",
            {},
            "query head h uses KV head ⌊h / (H/G)⌋; W_k, W_v of G·d_head columns (--kv-heads "
            "G; G = 1: multi-query)",
            "Ainslie et al. 2023 (GQA); transformers/models/llama/modeling_llama.py "
            "(repeat_kv)",
        ),
        Variant(
            "rope",
            {"rope": True},
            "queries and keys turned pair by pair by position × θ^(−2i/d_head), θ = 10000, "
            "before the scores",
            "Su et al. 2021 (RoFormer); transformers/models/llama/modeling_llama.py "
            "(apply_rotary_pos_emb)",
        ),
        Variant(
            "alibi",
            {"alibi": True},
            "scores − m_h·|i − j|, slopes m_h from the heads (or the key alibi_slopes)",
            "Press et al. 2022 (ALiBi); transformers/models/bloom/modeling_bloom.py",
        ),
        Variant(
            "softcap",
            {"softcap": 50.0},
            "capped_scores = C·tanh(Q Kᵀ / √d_k / C), C = 50, after the scale, before the mask",
            "Gemma Team 2024 (Gemma 2, attn_logit_softcapping); "
            "transformers/models/gemma2/modeling_gemma2.py",
        ),
        Variant(
            "sinks",
            {},
            "weights = softmax over [scores, s_h] with the sink column s_h dropped (key sinks, "
            "(H,)): each row sums to less than 1",
            "Xiao et al. 2024 (attention sinks), OpenAI 2025 (gpt-oss); "
            "transformers/models/gpt_oss/modeling_gpt_oss.py",
        ),
        Variant(
            "llama",
            {"rope": True, "causal": True},
            "Llama: RoPE (θ 10000; Llama 3: --rope-theta 500000, key rope_scaling llama3), "
            "causal, GQA from W_k's width (--kv-heads G)",
            "Touvron et al. 2023; transformers/models/llama/modeling_llama.py",
        ),
        Variant(
            "mistral",
            {"rope": True, "causal": True, "window": 4095},
            "Mistral 7B: RoPE, causal, GQA; Hugging Face's sliding_window = 4096 keys, the "
            "query's own included, is --window 4095",
            "Jiang et al. 2023; transformers/models/mistral/modeling_mistral.py",
        ),
        Variant(
            "qwen3",
            {"qk_norm": QKNorm.per_head, "rope": True, "rope_theta": 1000000.0,
             "causal": True},
            "Qwen3: RMSNorm of each head's queries and keys (keys q_norm, k_norm), RoPE "
            "θ = 10⁶ (the released models'), causal, GQA",
            "Qwen Team 2025; transformers/models/qwen3/modeling_qwen3.py",
        ),
        Variant(
            "gemma2",
            {"scale": 0.0625, "softcap": 50.0, "causal": True, "rope": True},
            "Gemma 2: scores × query_pre_attn_scalar^−½ (s = 256: --scale 0.0625), "
            "50·tanh(scores / 50), RoPE, causal, GQA; its sliding layers add --window 4095 "
            "(sliding_window = 4096)",
            "Gemma Team 2024; transformers/models/gemma2/modeling_gemma2.py",
        ),
        Variant(
            "gpt-oss",
            {"causal": True, "rope": True, "rope_theta": 150000.0},
            "gpt-oss: per-head sinks (key sinks), RoPE θ = 150000 with YaRN (key "
            "rope_scaling), causal, GQA; its sliding layers add --window 127 "
            "(sliding_window = 128)",
            "OpenAI 2025; transformers/models/gpt_oss/modeling_gpt_oss.py",
        ),
        Variant(
            "bloom",
            {"alibi": True, "causal": True},
            "Bloom: ALiBi (−m_h·|i − j| on head h's scores), causal, scaled by 1/√d_head",
            "BigScience 2022; transformers/models/bloom/modeling_bloom.py",
        ),
    ]
}
#: Below the table of `attncli variants` and in the README: how the families' own settings
#: map onto attncli's options.
FAMILY_NOTES = (
    "Gemma's query_pre_attn_scalar s is --scale s**-0.5 (s = 256: --scale 0.0625).",
    "Hugging Face's sliding_window = S (Mistral, Gemma 2 and 3, gpt-oss) keeps S keys, the "
    "query's own included: --causal --window S−1 (transformers #29623 and vllm #3385 were once "
    "off by one here).",
)


def from_variant(name: str | None, **overrides: Any) -> AttentionConfig:
    """Build a config from a named variant, then apply overrides (those not None win)."""
    fields: dict[str, Any] = {}
    if name is not None:
        if name not in VARIANTS:
            raise ConfigError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        fields.update(VARIANTS[name].fields)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return AttentionConfig(**fields).validate()


def build(file_config: dict[str, Any], variant: str | None, no_scale: bool = False,
          **flags: Any) -> AttentionConfig:
    """The config of one command: a variant named on the command line replaces the input
    file's ``config`` whole; otherwise the file's variant and fields apply. Flags (not None)
    win over both. ``no_scale`` turns a (scaled) dot-product score into the unscaled one.

    Raises: ConfigError for contradictory choices, e.g. --no-scale with an additive score.
    """
    fields = dict(file_config)
    if variant is not None:  # a variant named on the command line replaces the file's choices,
        fields = {k: v for k, v in fields.items() if k in DATA_FIELDS}  # not facts of its data
    name = variant if variant is not None else fields.pop("variant", None)
    fields.update({k: v for k, v in flags.items() if v is not None})
    if no_scale:
        if flags.get("scale") is not None:
            raise ConfigError("--no-scale and --scale contradict each other: give one")
        if flags.get("score") is not None and flags["score"] is not Score.dot:
            raise ConfigError(f"--no-scale contradicts --score {flags['score'].value}")
        score = fields.get("score") or (VARIANTS[name].fields.get("score") if name else None)
        if score not in (None, Score.dot, Score.scaled_dot):
            raise ConfigError(f"--no-scale applies to dot-product scores, not {score.value}; "
                              "use --scale VALUE to scale other scores")
        fields["score"] = Score.dot
    return from_variant(name, **fields)


def coerce_fields(raw: dict[str, Any], origin: str,
                  options: Mapping[str, Option] = OPTIONS) -> dict[str, Any]:
    """Config fields written in an input file's ``config`` object, checked and typed.

    The fields are those whose :class:`Option` allows a file to set them (:data:`FILE_FIELDS`
    for ``options`` = :data:`OPTIONS`); ``variant`` names a preset (:data:`VARIANTS`).

    Raises:
        ConfigError: an unknown field, a value of the wrong type or out of range, naming the
            file and the field.
    """
    known = file_fields(options)
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "variant":
            if not isinstance(value, str) or value not in VARIANTS:
                raise ConfigError(f"{origin}: config.variant: unknown variant {value!r}; "
                                  f"known: {', '.join(VARIANTS)}")
            fields[key] = value
            continue
        kind = known.get(key)
        if kind is None:
            raise ConfigError(f"{origin}: config.{key}: unknown option; known: variant, "
                              f"{', '.join(known)}")
        try:
            if kind is bool:
                if not isinstance(value, bool):
                    raise ValueError
                fields[key] = value
            elif kind in (int, float):
                if isinstance(value, bool) or not isinstance(value, int | float) or (
                        kind is int and value != int(value)):
                    raise ValueError
                fields[key] = kind(value)
            else:
                fields[key] = kind(value)
        except (ValueError, OverflowError):
            one_of = (f" (one of {', '.join(m.value for m in kind)})"
                      if isinstance(kind, enum.EnumMeta) else "")
            raise ConfigError(f"{origin}: config.{key}: expected {kind.__name__}{one_of}, "
                              f"got {value!r}") from None
        fault = options[key].fault(fields[key])
        if fault is not None:
            raise ConfigError(f"{origin}: config.{key} {fault}")
    return fields
