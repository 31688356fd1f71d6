"""The model families ``attncli model`` reads: where each keeps its attention, as data.

A :class:`Family` says where a layer's attention module and output projection are, how its
projections are stored (separate nn.Linear layers, GPT-2's packed Conv1D, GPT-NeoX's and
Bloom's per-head packed Linear), and how its positions enter (RoPE and its layout, ALiBi, or
absolute embeddings added before the first layer), and which of the config's settings its
attention applies (a sliding window, a soft-cap: a config may carry one its family ignores).
Everything else (heads, KV heads, scaling, the window's and the soft-cap's values, QK-norm,
sinks, RoPE θ and scaling) is read from the attention module and the config by
:mod:`attncli.models.layer`, one rule for every family.

Sources: each family's modeling file in transformers (``transformers/models/<family>/
modeling_<family>.py``, version 5): the attention class's ``__init__`` and ``forward``.
"""

from __future__ import annotations

from dataclasses import dataclass

from attncli.errors import InputError


@dataclass(frozen=True)
class Family:
    """Where one family keeps its attention.

    Fields:
        name: the family as the user knows it (``Llama``).
        model_types: the ``model_type`` values of its config.json.
        layers: attribute path from the base model (``AutoModel``) to its list of layers.
        attention: attribute path from a layer to its attention module (hooked: its input
            hidden states and its own weights, the second output of its eager attention).
        out: attribute path from a layer to the output projection (hooked: the context, its
            input, and the output, its result, before any norm or residual).
        q, k, v: attribute names of the query, key and value projections in the attention
            module; for a packed projection, the name of the one layer, three times.
        packing: ``None`` (three layers), ``"columns"`` (GPT-2's c_attn: [q | k | v] along
            the output), ``"per_head"`` (GPT-NeoX, Bloom: per head [q_h | k_h | v_h]).
        conv1d: the projections are transformers' Conv1D, weight (in, out) (GPT-2), not
            nn.Linear's (out, in).
        causal: whether a query sees only the keys up to its own: True (a decoder), or the
            config attribute that says so (BERT: ``is_decoder``, False for the encoders, True
            for BertLMHeadModel's decoders). A config's ``use_bidirectional_attention``
            (Gemma 3 as EmbeddingGemma) or ``is_causal: false`` turns it off for any family.
        sliding: its attention applies the config's ``sliding_window`` (on the layers that
            ``layer_types`` marks sliding_attention, or on all); the others ignore one.
        positions: ``"rope"``, ``"alibi"`` or ``"absolute"`` (added to the embeddings).
        rope_layout: ``"half"`` (rotate_half) or ``"interleaved"`` (rotate_every_two).
        norm_offset: the QK-norm multiplies by (offset + w): 1 for Gemma 3's RMSNorm.
        scaling: the attention module's attribute holding the score factor, multiplied.
        softcap: its attention soft-caps the scores by the config's attn_logit_softcapping
            (Gemma 2). Gemma 3's config has the field too, but its attention never applies
            it (modeling_gemma3.py passes no softcap to the attention function).
        qk_norm: the family's QK-norm, "per-head" or "whole", None for none; sinks: it has
            per-head sink logits. (What --info says; a layer's own modules are what runs.)
    """

    name: str
    model_types: tuple[str, ...]
    layers: str
    attention: str
    out: str
    q: str = "q_proj"
    k: str = "k_proj"
    v: str = "v_proj"
    packing: str | None = None
    conv1d: bool = False
    causal: bool | str = True
    sliding: bool = False
    positions: str = "rope"
    rope_layout: str = "half"
    norm_offset: float = 0.0
    scaling: str = "scaling"
    softcap: bool = False
    qk_norm: str | None = None
    sinks: bool = False


def _decoder(name: str, *model_types: str, **more) -> Family:
    """A Llama-like decoder: ``layers[i].self_attn`` with q/k/v/o_proj."""
    return Family(name, model_types, "layers", "self_attn", "self_attn.o_proj", **more)


FAMILIES: tuple[Family, ...] = (
    Family("BERT", ("bert",), "encoder.layer", "attention.self", "attention.output.dense",
           q="query", k="key", v="value", causal="is_decoder", positions="absolute"),
    Family("GPT-2", ("gpt2",), "h", "attn", "attn.c_proj", q="c_attn", k="c_attn", v="c_attn",
           packing="columns", conv1d=True, positions="absolute"),
    _decoder("Llama", "llama"),
    _decoder("Mistral", "mistral", sliding=True),
    _decoder("Qwen2", "qwen2", sliding=True),
    _decoder("Qwen3", "qwen3", sliding=True, qk_norm="per-head"),
    _decoder("Gemma 2", "gemma2", sliding=True, softcap=True),
    _decoder("Gemma 3", "gemma3_text", sliding=True, norm_offset=1.0, qk_norm="per-head"),
    _decoder("OLMo2", "olmo2", qk_norm="whole"),
    Family("GPT-NeoX", ("gpt_neox",), "layers", "attention", "attention.dense",
           q="query_key_value", k="query_key_value", v="query_key_value", packing="per_head"),
    Family("GPT-J", ("gptj",), "h", "attn", "attn.out_proj", rope_layout="interleaved"),
    Family("Bloom", ("bloom",), "h", "self_attention", "self_attention.dense",
           q="query_key_value", k="query_key_value", v="query_key_value", packing="per_head",
           positions="alibi", scaling="inv_norm_factor"),
    _decoder("gpt-oss", "gpt_oss", sliding=True, sinks=True),
)


def family_of(model_type: str | None, where: str) -> Family:
    """The family whose config.json says ``model_type``.

    Raises: InputError for any other architecture, listing the families attncli reads.
    """
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    names = ", ".join(f.name for f in FAMILIES)
    raise InputError(f"{where}: model_type {model_type!r} is not an architecture attncli model "
                     f"reads; it reads {names}")
