"""Tiny random models of every family ``attncli model`` reads, saved as a Hugging Face model
directory (config.json + model.safetensors, no tokenizer: the tests give --input-ids).

Each is its family's config with 2 layers, d_model 32, 4 heads of d_head 8 (2 KV heads where
the family groups its keys and values) and the family's own details (a sliding window of
:data:`SLIDING_WINDOW` keys, shorter than the :data:`INPUT_IDS`, on its sliding layers; the
soft-cap, scalars, RoPE θ and scalings, partial rotary, biases, QK-norms, sinks), built by
transformers in float32 from ``torch.manual_seed(0)``. Random initialisation leaves the query
and key weights small (std 0.02: every row of weights near 1/n) and biases, norms and sinks
at 0 or 1, where a missing bias, norm or sink changes nothing; :func:`_perturb` scales the
query and key weights up and draws the biases, norm weights and sinks, so that each detail
shows in the numbers.

The ``transformers`` fixture (tests/transformers/conftest.py) skips a test when transformers
or torch is absent, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.transformers import conftest as _parity

#: The skip/fail fixture of the transformers parity tests, shared.
transformers = _parity.transformers

#: The tokens: 10 ids of the 64-token vocabulary, longer than the sliding window.
INPUT_IDS = (3, 14, 15, 9, 26, 5, 35, 8, 9, 7)
#: Hugging Face's sliding_window: a query sees itself and the 3 keys before it (attncli's
#: --window 3), so that on 10 tokens the sliding layers differ from the full ones.
SLIDING_WINDOW = 4
LAYERS = 2

_DECODER = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": LAYERS, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 8, "max_position_embeddings": 64}
_BERT = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": LAYERS, "num_attention_heads": 4, "max_position_embeddings": 64}
_MIXED = {"sliding_window": SLIDING_WINDOW,
          "layer_types": ["sliding_attention", "full_attention"]}


@dataclass(frozen=True)
class Tiny:
    """One family's tiny model.

    name: the model's name in the tests (a family, or a family and its variant); family:
    attncli's name of the family; config: transformers → the config; out: the path
    from the base model (AutoModel) to layer {i}'s output projection, as the model names it;
    qk: fragments of the names of the query and key projection weights (a packed q|k|v
    projection is scaled whole); gain: their factor; embed_gain: the token embeddings'.
    """

    name: str
    family: str
    config: Callable[[Any], Any]
    out: str
    qk: tuple[str, ...]
    gain: float = 8.0
    embed_gain: float = 1.0


def _decoder(name: str, config: str, family: str | None = None, gain: float = 8.0,
             embed_gain: float = 1.0, **more) -> Tiny:
    """A Llama-like decoder: ``layers.{i}.self_attn`` with q/k/v/o_proj."""
    return Tiny(name, family or name, lambda t: getattr(t, config)(**{**_DECODER, **more}),
                "layers.{i}.self_attn.o_proj", ("q_proj.weight", "k_proj.weight"), gain,
                embed_gain)


TINY: dict[str, Tiny] = {tiny.name: tiny for tiny in (
    # bidirectional, biases on every projection, absolute positions
    Tiny("BERT", "BERT", lambda t: t.BertConfig(**_BERT),
         "encoder.layer.{i}.attention.output.dense", ("self.query.weight", "self.key.weight"),
         gain=12.0),
    # BERT as a decoder (is_decoder: BertLMHeadModel's causal self-attention)
    Tiny("BERT decoder", "BERT", lambda t: t.BertConfig(**_BERT, is_decoder=True),
         "encoder.layer.{i}.attention.output.dense", ("self.query.weight", "self.key.weight"),
         gain=12.0),
    # the packed Conv1D c_attn (in, out): [q | k | v] along its columns; layer i's scores
    # divided by i + 1 too (scale_attn_by_inverse_layer_idx)
    Tiny("GPT-2", "GPT-2", lambda t: t.GPT2Config(
        vocab_size=64, n_embd=32, n_layer=LAYERS, n_head=4, n_positions=64,
        scale_attn_by_inverse_layer_idx=True),
         "h.{i}.attn.c_proj", ("attn.c_attn.weight",), gain=12.0),
    # llama3 RoPE scaling: with original_max_position_embeddings 16, the wavelengths of
    # d_head 8 (6.3, 63, 628, 6283) fall in the smoothed band (4 … 16) and the scaled one;
    # a sliding_window in its config, which Llama's attention never applies
    _decoder("Llama", "LlamaConfig", sliding_window=SLIDING_WINDOW, rope_parameters={
        "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}, gain=10.0),
    # every layer slides (Mistral has no layer_types)
    _decoder("Mistral", "MistralConfig", sliding_window=SLIDING_WINDOW),
    # biases on q, k, v (not o); the first layer slides, the second is full
    _decoder("Qwen2", "Qwen2Config", use_sliding_window=True, **_MIXED),
    # is_causal: false in the config: transformers' masks turn bidirectional for any family,
    # the sliding window too, its bound included (|i − j| ≤ 4)
    _decoder("Qwen2 bidirectional", "Qwen2Config", family="Qwen2", use_sliding_window=True,
             is_causal=False, **_MIXED),
    # per-head RMSNorm of the queries and keys (over d_head); d_head 16: H·d_head 64 ≠ d_model
    _decoder("Qwen3", "Qwen3Config", head_dim=16),
    # soft-cap 2 (scores of several units: the cap bites), scale 24**-0.5 ≠ d_head 16**-0.5
    _decoder("Gemma 2", "Gemma2Config", head_dim=16, attn_logit_softcapping=2.0,
             query_pre_attn_scalar=24, **_MIXED),
    # θ 10 000 on the sliding layers, 1 000 000 with linear scaling ×4 on the full ones;
    # per-head QK-norm multiplying by (1 + w); attn_logit_softcapping in its config, which
    # Gemma 3's attention never applies (unlike Gemma 2's)
    _decoder("Gemma 3", "Gemma3TextConfig", query_pre_attn_scalar=24,
             attn_logit_softcapping=2.0, rope_parameters={
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1000000.0}},
             **_MIXED),
    # Gemma 3 as an encoder (EmbeddingGemma): no causal mask, and a sliding window on both
    # sides (the config keeps sliding_window // 2 + 1 = 3: |i − j| < 3)
    _decoder("Gemma 3 bidirectional", "Gemma3TextConfig", family="Gemma 3",
             use_bidirectional_attention=True, query_pre_attn_scalar=24, **_MIXED),
    # RMSNorm of the whole projection (over H·d_head for the queries, G·d_head for the keys)
    # (no norm before the attention: its input is the embeddings, ×20 to std 0.4)
    _decoder("OLMo2", "Olmo2Config", embed_gain=20.0),
    # per-head packed query_key_value; RoPE on the first half of each head (4 of 8 dims)
    Tiny("GPT-NeoX", "GPT-NeoX", lambda t: t.GPTNeoXConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=4, max_position_embeddings=64, rope_parameters={
            "rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
         "layers.{i}.attention.dense", ("attention.query_key_value.weight",)),
    # interleaved RoPE (rotate_every_two) on the first rotary_dim 4 of d_head 8
    Tiny("GPT-J", "GPT-J", lambda t: t.GPTJConfig(
        vocab_size=64, n_embd=32, n_layer=LAYERS, n_head=4, rotary_dim=4, n_positions=64),
         "h.{i}.attn.out_proj", ("attn.q_proj.weight", "attn.k_proj.weight"), gain=12.0),
    # ALiBi, per-head packed query_key_value
    Tiny("Bloom", "Bloom", lambda t: t.BloomConfig(
        vocab_size=64, hidden_size=32, n_layer=LAYERS, n_head=4),
         "h.{i}.self_attention.dense", ("self_attention.query_key_value.weight",)),
    # sinks, biases on every projection, yarn RoPE scaling, a sliding and a full layer, d_head
    # 16 (H·d_head 64 ≠ d_model 32), a mixture of 4 experts as its MLP
    _decoder("gpt-oss", "GptOssConfig", head_dim=16, num_local_experts=4, num_experts_per_tok=2,
             rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0,
                              "beta_fast": 32.0, "beta_slow": 1.0, "truncate": False,
                              "original_max_position_embeddings": 16}, **_MIXED),
)}


def _perturb(model, tiny: Tiny) -> None:
    """Make every detail count: the query and key weights ×gain (scores of a few units), the
    token embeddings ×embed_gain, each bias ~ N(0, 0.3²), each RMSNorm weight ~ U(0.5, 1.5)
    (the QK-norms', the input norms'), each sink ~ N(0, 1)."""
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if any(part in name for part in tiny.qk):
                parameter.mul_(tiny.gain)
            elif name == "embed_tokens.weight":
                parameter.mul_(tiny.embed_gain)
            elif name.endswith(".bias"):
                parameter.normal_(0.0, 0.3)
            elif "norm" in name and name.endswith(".weight"):
                parameter.uniform_(0.5, 1.5)
            elif name.endswith(".sinks"):
                parameter.normal_(0.0, 1.0)


def build(transformers, name: str, folder: Path) -> Path:
    """The tiny model :data:`TINY` ``[name]``, saved in ``folder`` (float32, no tokenizer)."""
    import torch

    tiny = TINY[name]
    torch.manual_seed(0)
    config = tiny.config(transformers)
    model = transformers.AutoModel.from_config(config, attn_implementation="eager")
    model = model.to(torch.float32).eval()
    _perturb(model, tiny)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def _saved() -> dict[str, Path]:
    """name → the directory of a tiny model built in this session."""
    return {}


@pytest.fixture
def tiny_model(transformers, tmp_path_factory, _saved):
    """name (a key of :data:`TINY`) → the directory of its tiny model, built once per
    session."""

    def get(name: str) -> Path:
        if name not in _saved:
            folder = tmp_path_factory.mktemp(name.replace(" ", "-").lower())
            _saved[name] = build(transformers, name, folder)
        return _saved[name]

    return get


def own_numbers(model, out: str, ids, layers) -> dict:
    """A model's own numbers, independently of attncli: layer → weights (H, n, n) from
    ``output_attentions=True``, context (n, H·d_head) and output (n, d_model), the input and
    result of its output projection (``out``: its module path, ``{i}`` for the layer, read with
    a forward hook), float64, from one eager forward pass over ``ids``."""
    import numpy as np
    import torch

    numbers: dict[int, dict[str, np.ndarray]] = {i: {} for i in layers}

    def on_out(index: int):
        def hook(module, args, output):
            numbers[index]["context"] = args[0][0].to(torch.float64).numpy().copy()
            numbers[index]["output"] = output[0].to(torch.float64).numpy().copy()
        return hook

    handles = [model.get_submodule(out.format(i=i)).register_forward_hook(on_out(i))
               for i in layers]
    tensor = torch.tensor([list(ids)])
    try:
        with torch.no_grad():
            result = model(input_ids=tensor, attention_mask=torch.ones_like(tensor),
                           output_attentions=True)
    finally:
        for handle in handles:
            handle.remove()
    for i in layers:
        numbers[i]["weights"] = result.attentions[i][0].to(torch.float64).numpy().copy()
    return numbers
