"""What a model family's own ``eager_attention_forward`` sees and returns, per layer, in a tiny
model's forward pass: the queries and keys as the family computes them (projected, normed,
rotated: its own RoPE and norms, float32 cos/sin and all), the values, the keyword arguments
(scaling, softcap, sliding_window), the weights and the attention output; and the layer's
output projection's input and result (:func:`tests.transformers.conftest.capture`'s hooks).

attncli is then given those queries, keys and values as x, key_memory and value_memory (no
W_q, W_k, W_v: each split into H heads of d_head columns), so its score, scale, soft-cap,
mask, softmax, weighted sum and output projection are compared with the family's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Call:
    """One call of the eager attention (one layer), numpy float64.

    Shapes (B batch, H query heads, G KV heads, n tokens, d = head_dim):
        queries (B, H, n, d); keys, values (B, G, n, d) (before ``repeat_kv``);
        weights (B, H, n, n); attn_output (B, n, H, d); kwargs: the call's keywords
        (scaling, softcap, sliding_window, dropout).
    """

    queries: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    attn_output: np.ndarray
    kwargs: dict

    def heads_side_by_side(self, array: np.ndarray) -> np.ndarray:
        """(B, heads, n, d) → (B, n, heads·d), head h in columns h·d … (h+1)·d − 1; keys and
        values of G < H KV heads first repeated as transformers' ``repeat_kv`` does it
        (query head h reads KV head ⌊h / (H/G)⌋)."""
        H = self.queries.shape[1]
        array = np.repeat(array, H // array.shape[1], axis=1)
        B, heads, n, d = array.shape
        return array.transpose(0, 2, 1, 3).reshape(B, n, heads * d)

    def problem(self) -> dict[str, np.ndarray]:
        """attncli's arrays: x (the queries), key_memory (the keys), value_memory (the values)
        of shape (B, n, H·d) each."""
        return {"x": self.heads_side_by_side(self.queries),
                "key_memory": self.heads_side_by_side(self.keys),
                "value_memory": self.heads_side_by_side(self.values)}


def record_eager(monkeypatch, module) -> list[Call]:
    """Wrap ``module.eager_attention_forward`` (a modeling_<family> module, which looks the
    function up at each call) so that each call is recorded; the list fills as the model runs.
    """
    import torch

    calls: list[Call] = []
    original = module.eager_attention_forward

    def numpy(t):
        return t.detach().to(torch.float64).numpy().copy()

    def recording(attention, query, key, value, attention_mask, **kwargs):
        attn_output, attn_weights = original(attention, query, key, value, attention_mask,
                                             **kwargs)
        calls.append(Call(numpy(query), numpy(key), numpy(value), numpy(attn_weights),
                          numpy(attn_output), dict(kwargs)))
        return attn_output, attn_weights

    monkeypatch.setattr(module, "eager_attention_forward", recording)
    return calls


def float64_softmax(monkeypatch) -> None:
    """transformers' eager attention computes its softmax in float32 even in a float64 model
    (``softmax(…, dtype=torch.float32)``, about 5e-7 of error): keep float64 inputs in float64
    so that the comparison can be at 1e-10."""
    import torch

    original = torch.nn.functional.softmax

    def softmax(input, dim=None, _stacklevel=3, dtype=None):
        keep = input.dtype == torch.float64 and dtype == torch.float32
        return original(input, dim=dim, _stacklevel=_stacklevel, dtype=None if keep else dtype)

    monkeypatch.setattr(torch.nn.functional, "softmax", softmax)
