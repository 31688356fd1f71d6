"""``--format torch``: a short Python script that redoes a run with PyTorch's own attention.

The script embeds the problem's numbers as literals and needs only ``torch`` (and ``json``) to
run; it prints one JSON object, so a test (or a learner) can compare it with attncli's trace:

    {"module": "torch.nn.MultiheadAttention", "output": [...], "weights": [...]}
    {"module": "torch.nn.functional.scaled_dot_product_attention", "context": [...],
     "output": [...]}   # output only when W_o is given

Which module:
    torch.nn.MultiheadAttention when W_q, W_k, W_v and W_o are all given and the shapes are the
    module's: H·d_k = H·d_v = d_in (embed_dim), W_o (d_in, d_in), scale 1/√d_k. Per-head 3-D
    weights are repacked into its in_proj_weight. Everything else goes through
    torch.nn.functional.scaled_dot_product_attention on explicitly projected queries, keys and
    values (B, H, seq, d_head), with the heads merged and W_o applied by hand.
Conventions carried across (and said in the script's comments):
    weights: attncli's in_out is ``Q = x @ W_q``; nn.Linear (and so MHA) stores (out, in), W.T;
    masks: SDPA's bool attn_mask is True = may attend (attncli's polarity); MHA's bool
    attn_mask is True = NOT allowed, its key_padding_mask True = padding (the problem's key);
    --temperature T is folded into SDPA's scale (softmax(scores · scale / T));
    key_memory and value_memory are the module's key and value inputs (kdim ≠ vdim: its
    separate q/k/v_proj_weight);
    bottom-right alignment with a key_padding_mask shifts each batch item's diagonal by its
    own unpadded key count, L − seq_q with L = (~key_padding_mask).sum(-1), as attncli does;
    the general score qᵀ W_a k is a dot product of (q W_a) with k.
    nn.MultiheadAttention with need_weights=True gives NaN for a query row with no key to
    attend to, where attncli and SDPA give zeros: such a run calls it with need_weights=False.
Refused (InputError, one line): additive scores, hard and top-k attention, dropout (torch
would draw another mask), check's deliberate mistakes, and more than 10 000 numbers to embed.
Sources: https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html,
https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html
"""

from __future__ import annotations

import math
import shlex

import numpy as np

from attncli.attention import masks
from attncli.config import (
    AttentionConfig,
    CausalAlign,
    Layout,
    Normalize,
    Score,
    Slip,
    build,
)
from attncli.errors import InputError
from attncli.problem import Problem, fmt_shape
from attncli.render import printable
from attncli.shapes import Prepared, prepare
from attncli.trace import Trace

MHA = "torch.nn.MultiheadAttention"
SDPA = "torch.nn.functional.scaled_dot_product_attention"
#: The most numbers a script embeds; more would make a file no one reads.
MAX_NUMBERS = 10_000
_WIDTH = 96  # wrap long rows of numbers at this many characters


def render_torch(problem: Problem, config: AttentionConfig | None, trace: Trace) -> str:
    """A runnable script (text) that computes ``problem`` under ``config`` with PyTorch.

    Shapes: the script's tensors are the problem's as given (x (seq_q, d_in) or (B, seq_q,
    d_in), …); it prints ``context`` (…, seq_q, H·d_v) with SDPA, ``output`` (…, seq_q, d_out)
    when W_o is given, and ``weights`` (…, H, seq_q, seq_k) with nn.MultiheadAttention.
    Args:
        trace: the run attncli made of it (its query labels and --query row are noted).
    Raises:
        InputError: a run torch's attention cannot express (additive score, hard or top-k
            attention, dropout, a deliberate mistake), or more than 10 000 numbers.
    Source: torch.nn.MultiheadAttention and torch.nn.functional.scaled_dot_product_attention
    (the docs above); the packing of in_proj_weight is torch.nn.MultiheadAttention's.
    """
    config = build(problem.config, None) if config is None else config
    prepared = prepare(problem, config)
    _refuse(config, prepared)
    keys = _embedded_keys(problem, prepared)
    count = sum(int(problem[k].size) for k in keys)
    if count > MAX_NUMBERS:
        raise InputError(f"--format torch writes the numbers into the script: at most "
                         f"{MAX_NUMBERS:,}, and this run has {count:,} ({', '.join(keys)}); "
                         "save the steps with -o FILE.npz instead")
    use_mha = _module(prepared, config) == MHA
    script = _Script(problem, config, prepared, trace)
    script.header(MHA if use_mha else SDPA)
    for key in keys:
        script.tensor(key)
    script.masks(use_mha)
    if use_mha:
        script.mha()
    else:
        script.sdpa()
    return "\n".join(script.lines) + "\n"


def _module(prepared: Prepared, config: AttentionConfig) -> str:
    p, d_in, H = prepared.params, prepared.x.shape[2], prepared.heads
    if any(p[k] is None for k in ("W_q", "W_k", "W_v", "W_o")):
        return SDPA  # MHA always projects, and always applies out_proj
    if prepared.score not in (Score.dot, Score.scaled_dot):
        return SDPA
    if H * prepared.d_k != d_in or H * prepared.d_v != d_in or p["W_o"].shape != (d_in, d_in):
        return SDPA  # embed_dim = H·head_dim is both the query width and the output's
    scale = prepared.scale / config.temperature
    if not math.isclose(scale, 1.0 / math.sqrt(prepared.d_k), rel_tol=1e-12):
        return SDPA  # MHA always scales by 1/√head_dim
    return MHA


def _refuse(config: AttentionConfig, prepared: Prepared) -> None:
    what = None
    if prepared.score is Score.additive:
        what = "the additive score"
    elif config.normalize is Normalize.hard:
        what = "hard attention (--normalize hard)"
    elif config.normalize is Normalize.topk:
        what = f"top-k attention (--normalize topk --top-k {config.top_k})"
    elif config.dropout > 0.0:
        what = f"--dropout {config.dropout:g}, whose mask torch would draw differently"
    elif config.slip != Slip():
        what = "a deliberate mistake (attncli check's diagnosis)"
    if what is not None:
        raise InputError(f"--format torch covers dot-product softmax attention; this run uses "
                         f"{what}")


def _embedded_keys(problem: Problem, prepared: Prepared) -> list[str]:
    p = prepared.params
    keys = ["x", *dict.fromkeys(k for k in (prepared.key_from, prepared.value_from) if k != "x")]
    for name in "qkv":
        if p[f"W_{name}"] is not None:
            keys += [k for k in (f"W_{name}", f"b_{name}") if k in problem]
    if prepared.score is Score.general:
        keys.append("W_a")
    if p["W_o"] is not None:
        keys += [k for k in ("W_o", "b_o") if k in problem]
    return keys + [k for k in ("mask", "key_padding_mask") if k in problem]


def literal(array: np.ndarray, indent: str = "", block: bool = False) -> str:
    """A nested Python list of ``array``'s values (floats in full repr precision, or bools):
    one innermost row per line, a row too long for the page (or any, with ``block``) on lines
    of its own."""
    if array.ndim > 1:
        inner = indent + "    "
        rows = "".join(f"{inner}{literal(row, inner)},\n" for row in array)
        return f"[\n{rows}{indent}]"
    words = [repr(bool(v)) if array.dtype.kind == "b" else repr(float(v)) for v in array]
    one_line = "[" + ", ".join(words) + "]"
    if len(indent) + len(one_line) <= _WIDTH and not block:
        return one_line
    inner = indent + "    "
    lines, line = [], ""
    for word in words:
        if line and len(inner) + len(line) + len(word) + 1 > _WIDTH:
            lines.append(line.rstrip())
            line = ""
        line += word + ", "
    lines.append(line.rstrip())
    return "[\n" + "".join(f"{inner}{line}\n" for line in lines) + f"{indent}]"


def _commented(code: str, comment: str) -> list[str]:
    """``code  # comment`` when it fits in 100 characters, else the comment on a line above."""
    if not comment:
        return [code]
    if len(code) + len(comment) + 4 <= 100:
        return [f"{code}  # {comment}"]
    return [f"# {comment}", code]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip(", ") + " …"


def _call(head: str, args: list[str], indent: str = "", comment: str = "") -> list[str]:
    """``head(arg, …)`` on one line when it fits in 100 characters, else with the arguments
    on lines of their own, indented under ``head``."""
    tail = f"  # {comment}" if comment else ""
    one = f"{indent}{head}({', '.join(args)}){tail}"
    if len(one) <= 100:
        return [one]
    inner = indent + "    "
    lines, line = [], inner
    for n, arg in enumerate(args):
        word = arg + (", " if n < len(args) - 1 else ")")
        if line != inner and len(line) + len(word.rstrip()) > 100:
            lines.append(line.rstrip())
            line = inner
        line += word
    if len(line) + len(tail) > 100:
        return [f"{indent}{head}(" + tail, *lines, line]
    return [f"{indent}{head}(", *lines, line + tail]


def _print_json(fields: dict[str, str]) -> list[str]:
    """``print(json.dumps({...}))``, one field a line."""
    return ["print(json.dumps({", *(f'    "{k}": {v},' for k, v in fields.items()), "}))"]


class _Script:
    """The script's lines, written in order: header, tensors, masks, attention, print."""

    def __init__(self, problem: Problem, config: AttentionConfig, prepared: Prepared,
                 trace: Trace):
        self.problem, self.config, self.prepared, self.trace = problem, config, prepared, trace
        self.lines: list[str] = []
        self.allowed: str | None = None  # the name of the mask tensor, True = may attend
        self.batch_mask = False  # allowed varies with the batch item: (B, seq_q or 1, seq_k)
        self.causal_only = False  # the mask is the top-left causal one alone: is_causal
        self.empty_rows = False  # some query row has no key to attend to

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    # ------------------------------------------------------------------------------------
    def header(self, module: str) -> None:
        prepared, config = self.prepared, self.config
        layout = ("in_out, queries = x @ W_q as attncli computes (nn.Linear stores W.T)"
                  if prepared.layout is Layout.in_out else
                  "out_in, queries = x @ W_q.T as nn.Linear stores W")
        weights = [k for k in ("W_q", "W_k", "W_v", "W_o") if prepared.params[k] is not None]
        masked = config.causal or config.window is not None or prepared.mask is not None
        focus = self.trace.focus
        shown = "" if focus is None else repr(self.trace.query_tokens[focus])
        row = (f"\nattncli showed query {_in_docstring(shown)}; this script computes every "
               "query row." if shown else "")
        agree = ("about 1e-15 in float64" if config.dtype.value == "float64"
                 else f"about 1e-6 in {config.dtype.value}")
        self.add(
            f'"""attncli\'s run, redone with {module}.',
            "",
            f"Equivalent to: {_in_docstring(_command(self.problem, config, self.trace))}",
            # the Problem keeps a checkpoint's file name, not the run's --tensor KEY=NAME
            *(["(tensors mapped with --tensor)"] if any(
                origin.lower().endswith(".safetensors")
                for origin in self.problem.origin.values()) else []),
            *([f"Weights: {layout}."] if weights else []),
            *(["Masks: True = may attend (SDPA's attn_mask); nn.MultiheadAttention's attn_mask "
               "is", "the opposite (True = not allowed), its key_padding_mask True = padding."]
              if masked else []),
            f"Prints one JSON object; attncli's numbers agree to {agree}.{row}",
            '"""',
            "import json",
            "",
            "import torch",
            "",
            f"dtype = torch.{config.dtype.value}",
            f"H = {prepared.heads}  # heads",
            "",
        )

    def tensor(self, key: str) -> None:
        """``key = torch.tensor([...])`` with a comment giving its shape and role."""
        problem, prepared = self.problem, self.prepared
        array = problem[key]
        note = ""
        role = {"W_q": "queries = x", "W_k": f"keys = {prepared.key_from}",
                "W_v": f"values = {prepared.value_from}",
                "W_o": "output = context"}.get(key)
        if key in ("W_q", "W_k", "W_v") and array.ndim == 3:
            array = prepared.params[key]  # (H, d_from, d_head), in_out whatever the layout
            note = f"one matrix per head, in_out: head h's {role} @ {key}[h]"
        elif role is not None:
            note = (f"in_out: {role} @ {key}" if prepared.layout is Layout.in_out
                    else f"out_in, as nn.Linear stores it: {role} @ {key}.T")
        elif key in ("b_q", "b_k", "b_v"):
            array = prepared.params[key].reshape(-1)  # (H·d_head,)
        elif key in ("x", "memory", "key_memory", "value_memory"):
            labels = problem.tokens if key == "x" else problem.memory_tokens
            note = ("" if labels is None
                    else _shorten(printable("rows: " + ", ".join(labels)), 70))
        elif key == "mask":
            note = "True = may attend"
        elif key == "key_padding_mask":
            note = "True = padding, ignored"
        elif key == "W_a":
            note = "the general score q W_a kᵀ"
        dtype = "torch.bool" if array.dtype.kind == "b" else "dtype"
        line = f"{key} = torch.tensor({literal(array)}, dtype={dtype})"
        if len(line) > 100:  # a 1-D row that fits the page but not after its name
            line = f"{key} = torch.tensor({literal(array, block=True)}, dtype={dtype})"
        self.add(f"# {key} {fmt_shape(array.shape)}" + (f"; {note}" if note else ""), line)
        if key in ("W_q", "W_k", "W_v") and array.ndim == 3:
            self.add(f"{key} = {key}.permute(1, 0, 2).flatten(1)  # (d_in, H·d_head): the heads "
                     "side by side")
        if key != "x" and key in (prepared.key_from, prepared.value_from) and prepared.batched \
                and problem[key].ndim == 2:
            self.add(f"{key} = {key}.expand(len(x), -1, -1)  # one {key} for every batch item")

    def _weight(self, key: str, linear: bool = False) -> str:
        """``key`` as x @ (…) needs it (``linear`` False) or as nn.Linear stores it (True)."""
        out_in = self.problem[key].ndim == 2 and self.prepared.layout is Layout.out_in
        return key if out_in == linear else f"{key}.T"

    # ------------------------------------------------------------------------------------
    def masks(self, use_mha: bool) -> None:
        """``allowed`` (True = may attend) from the causal/window masks and the problem's
        ``mask`` (with the key padding for SDPA; MHA takes key_padding_mask by itself)."""
        prepared, config, problem = self.prepared, self.config, self.problem
        seq_q, seq_k = prepared.x.shape[1], prepared.source.shape[1]
        offset = seq_k - seq_q if config.causal_align is CausalAlign.bottom_right else 0
        if _per_item(prepared, config):
            self._per_item_masks(use_mha)
            return
        parts = []
        if config.causal:
            shift = f" + {offset}" if offset > 0 else f" − {-offset}" if offset else ""
            where = ("top-left: query i sees keys j ≤ i" if offset == 0 else
                     f"bottom-right: query i sees keys j ≤ i{shift}")
            parts.append((f"torch.ones({seq_q}, {seq_k}, dtype=torch.bool).tril({offset or ''})",
                          f"causal, {where}"))
        if config.window is not None:
            i = f"torch.arange({seq_q})[:, None]" + (f" + {offset}" if offset else "")
            shift = f" + {offset}" if offset > 0 else f" − {-offset}" if offset else ""
            parts.append((f"({i} - torch.arange({seq_k})).abs() <= {config.window}",
                          f"window: |i{shift} − j| ≤ {config.window}"))
        if "mask" in problem:
            parts.append(("mask", "the problem's mask"))
            self.batch_mask = problem["mask"].ndim == 3
        if "key_padding_mask" in problem and not use_mha:
            pad = problem["key_padding_mask"]  # (seq_k,) or (B, seq_k): one row of keys
            parts.append(("(~key_padding_mask)" + ("[:, None, :]" if pad.ndim == 2
                                                   else "[None, :]"),
                          "not padding, (B, 1, seq_k)" if pad.ndim == 2
                          else "not padding, (1, seq_k): SDPA's attn_mask has ≥ 2 axes"))
            self.batch_mask = self.batch_mask or pad.ndim == 2
        self.causal_only = config.causal and offset == 0 and len(parts) == 1 and (
            "key_padding_mask" not in problem)
        allowed = _allowed(prepared, config)
        self.empty_rows = allowed is not None and not allowed.any(axis=-1).all()
        if not parts or (self.causal_only and not use_mha):
            return
        self.add("# True = may attend")
        for n, (expression, what) in enumerate(parts):
            if n:
                expression = "allowed & " + (f"({expression})" if " " in expression
                                             else expression)
            self.add(*_commented(f"allowed = {expression}", what))
        self.allowed = "allowed"

    def _per_item_masks(self, use_mha: bool) -> None:
        """``allowed`` when the bottom-right diagonal follows each batch item's unpadded keys:
        i shifted by L − seq_q, L = (~key_padding_mask).sum(-1) (flash-attn's alignment)."""
        prepared, config, problem = self.prepared, self.config, self.problem
        seq_q, seq_k = prepared.x.shape[1], prepared.source.shape[1]
        pad = problem["key_padding_mask"]
        each = "[:, None, None]" if pad.ndim == 2 else ""
        self.add("# True = may attend. Bottom-right, aligned to each batch item's keys that are "
                 "not padding,",
                 "# as flash-attn aligns a padded batch: L = (~key_padding_mask).sum(-1).",
                 f"shift = (~key_padding_mask).sum(-1) - {seq_q}  # L − seq_q, per batch item",
                 f"i = torch.arange({seq_q})[:, None] + shift{each}  # the query row, shifted",
                 f"j = torch.arange({seq_k})  # the key column")
        parts = []
        if config.causal:
            parts.append("(j <= i)")
        if config.window is not None:
            parts.append(f"((i - j).abs() <= {config.window})")
        if "mask" in problem:
            parts.append("mask")
        if not use_mha:
            parts.append("(~key_padding_mask)" + ("[:, None, :]" if pad.ndim == 2 else ""))
        self.add("allowed = " + " & ".join(parts))
        self.allowed = "allowed"
        self.batch_mask = pad.ndim == 2 or ("mask" in problem and problem["mask"].ndim == 3)
        allowed = _allowed(prepared, config)
        self.empty_rows = allowed is not None and not allowed.any(axis=-1).all()

    # ------------------------------------------------------------------------------------
    def sdpa(self) -> None:
        prepared, config, p = self.prepared, self.config, self.prepared.params
        self.add(
            "",
            "",
            "def split_heads(m):",
            '    """(..., seq, H·d) → (..., H, seq, d): head h owns columns h·d … (h+1)·d − 1."""',
            "    return m.unflatten(-1, (H, -1)).transpose(-3, -2)",
            "",
            "",
        )
        for name, role, inp in (("q", "queries", "x"), ("k", "keys", prepared.key_from),
                                ("v", "values", prepared.value_from)):
            expression = inp
            if p[f"W_{name}"] is not None:
                expression = f"{inp} @ {self._weight(f'W_{name}')}"
                if f"b_{name}" in self.problem:
                    expression += f" + b_{name}"
            shape = {"q": "seq_q, d_k", "k": "seq_k, d_k", "v": "seq_k, d_v"}[name]
            self.add(f"{role} = split_heads({expression})  # (…, H, {shape})")
        if prepared.score is Score.general:
            self.add("queries = queries @ W_a  # q W_a kᵀ: the general score as a dot product")
        self.add(*_commented(*_scale_text(prepared, config)))
        options = ["queries", "keys", "values"]
        if self.causal_only:
            options.append("is_causal=True")  # the top-left causal mask (torch.tril)
        elif self.allowed is not None:
            mask = "allowed.unsqueeze(-3)" if self.batch_mask else "allowed"
            options.append(f"attn_mask={mask}")
        self.add(*_call("head_context = torch.nn.functional.scaled_dot_product_attention",
                        [*options, "scale=scale"], comment="(…, H, seq_q, d_v)"),
                 "context = head_context.transpose(-3, -2).flatten(-2)  # (…, seq_q, H·d_v): "
                 "heads side by side")
        result = {"module": f'"{SDPA}"', "context": "context.tolist()"}
        if p["W_o"] is not None:
            bias = " + b_o" if "b_o" in self.problem else ""
            self.add(f"output = context @ {self._weight('W_o')}{bias}  # (…, seq_q, d_out)")
            result["output"] = "output.tolist()"
        self.add(*_print_json(result))

    def mha(self) -> None:
        prepared, problem = self.prepared, self.problem
        d_in, d_kdim = prepared.x.shape[2], prepared.source.shape[2]
        d_vdim = prepared.values_source.shape[2]
        biases = [k for k in ("b_q", "b_k", "b_v", "b_o") if k in problem]
        zeros = [k for k in ("b_q", "b_k", "b_v", "b_o") if biases and k not in problem]
        if zeros:
            self.add("", *(f"{k} = torch.zeros({d_in}, dtype=dtype)  # no {k}: zeros, as "
                           "bias=True needs them all" for k in zeros))
        kdim = [f"kdim={d_kdim}", f"vdim={d_vdim}"] if (d_kdim, d_vdim) != (d_in, d_in) else []
        self.add(
            "",
            "# nn.Linear (and so nn.MultiheadAttention) stores each weight as (out, in): W.T of",
            "# x @ W. embed_dim = d_in = H·d_head; the module scales the scores by 1/√d_head.",
            *(["# Here --scale / --temperature equals that."] if self.config.scale is not None
              or self.config.temperature != 1.0 else []),
            *_call("mha = torch.nn.MultiheadAttention",
                   [f"embed_dim={d_in}", "num_heads=H", *kdim, f"bias={bool(biases)}",
                    "batch_first=True", "dtype=dtype"]),
            "with torch.no_grad():",
        )
        w = {k: self._weight(k, linear=True) for k in ("W_q", "W_k", "W_v", "W_o")}
        if kdim:
            self.add(*(f"    mha.{n}_proj_weight.copy_({w[f'W_{n}']})" for n in "qkv"))
        else:
            self.add(f"    mha.in_proj_weight.copy_(torch.cat([{w['W_q']}, {w['W_k']}, "
                     f"{w['W_v']}]))  # (3·embed_dim, embed_dim)")
        if biases:
            self.add("    mha.in_proj_bias.copy_(torch.cat([b_q, b_k, b_v]))")
        self.add(f"    mha.out_proj.weight.copy_({w['W_o']})")
        if biases:
            self.add("    mha.out_proj.bias.copy_(b_o)")
        options = []
        if self.allowed is not None:
            blocked = "~allowed"
            if self.batch_mask:  # MHA's 3-D attn_mask is (B·H, seq_q, seq_k), batch-major
                blocked += ".repeat_interleave(H, dim=0)"
            options.append(f"attn_mask={blocked}")
            if self.causal_only:
                options.append("is_causal=True")
        if "key_padding_mask" in problem:
            pad = "key_padding_mask"
            if prepared.batched and problem[pad].ndim == 1:  # MHA wants (B, seq_k)
                pad += ".expand(len(x), -1)"
            options.append(f"key_padding_mask={pad}")
        if self.empty_rows:
            self.add("    # need_weights=True would give NaN for the query rows with no key to "
                     "attend to;",
                     "    # without weights the module goes through SDPA, which gives zeros.")
            options.append("need_weights=False")
            call = "output, _ = mha"
            result = {"module": f'"{MHA}"', "output": "output.tolist()"}
        else:
            options += ["need_weights=True", "average_attn_weights=False"]
            call = "output, weights = mha"
            result = {"module": f'"{MHA}"', "output": "output.tolist()",
                      "weights": "weights.tolist()"}
        if self.allowed is not None:
            self.add("    # MHA's attn_mask is True = NOT allowed: the opposite of SDPA's")
        self.add(*_call(call, ["x", prepared.key_from, prepared.value_from, *options],
                        indent="    "))
        self.add(*_print_json(result))


def _allowed(prepared: Prepared, config: AttentionConfig) -> np.ndarray | None:
    """The run's whole mask, (B or 1, 1, seq_q, seq_k) bool True = may attend, or None."""
    seq_q, seq_k = prepared.x.shape[1], prepared.source.shape[1]
    window = None if config.window is None else min(config.window, seq_q + seq_k)
    mask = masks.structural(np, seq_q, seq_k, causal=config.causal,
                            bottom_right=config.causal_align is CausalAlign.bottom_right,
                            window=window, key_lengths=prepared.key_lengths)
    if mask is not None and mask.ndim == 3:  # (B, seq_q, seq_k): one diagonal per batch item
        mask = mask[:, None]
    if mask is not None and prepared.mask is not None:
        return mask & prepared.mask
    return prepared.mask if mask is None else mask


def _per_item(prepared: Prepared, config: AttentionConfig) -> bool:
    """The causal / window diagonal sits bottom-right at each batch item's unpadded keys."""
    return (prepared.key_lengths is not None and (config.causal or config.window is not None)
            and config.causal_align is CausalAlign.bottom_right)


def _scale_text(prepared: Prepared, config: AttentionConfig) -> tuple[str, str]:
    """The line that sets SDPA's scale (SDPA: scores · scale), and where it comes from."""
    if config.scale is not None:
        text, why = repr(config.scale), f"--scale {config.scale:g} (scores · scale)"
    elif prepared.score is Score.scaled_dot:
        text = repr(prepared.scale)
        why = f"1/√d_k, d_k = {prepared.d_k} (SDPA's default, written out)"
    else:
        text = "1.0"
        why = (f"the {prepared.score.value} score is not scaled (SDPA's default would be "
               "1/√d_k)")
    if config.temperature != 1.0:
        text += f" / {config.temperature!r}"
        why += f"; softmax(scores / T) with --temperature {config.temperature:g}"
    return f"scale = {text}", why


def _command(problem: Problem, config: AttentionConfig, trace: Trace) -> str:
    """An attncli command that makes the same run (inputs as their origins name them)."""
    words = ["attncli", "compute"]
    origins = {k: problem.origin.get(k, "<input>") for k in problem.arrays}
    origins = {k: "-" if o == "<stdin>" else o for k, o in origins.items()}  # io's name for -
    main = origins["x"]
    for origin in dict.fromkeys(o for o in origins.values() if o.startswith("sample ")):
        words += ["--sample", origin.removeprefix("sample ")]
    if not main.startswith("sample "):
        words.append(main)
    words += [word for key, origin in origins.items()
              if origin != main and not origin.startswith("sample ")
              for word in ("--set", f"{key}={origin}")]
    flags = [("--no-project", not config.project), ("--score", config.score),
             ("--scale", config.scale), ("--heads", config.heads), ("--causal", config.causal),
             ("--causal-align", config.causal_align is CausalAlign.bottom_right
              and config.causal_align), ("--window", config.window),
             ("--temperature", config.temperature != 1.0 and config.temperature),
             ("--weight-layout", config.weight_layout),
             ("--dtype", config.dtype.value != "float64" and config.dtype)]
    for flag, value in flags:
        if value is True:
            words.append(flag)
        elif value is not None and value is not False:
            words += [flag, str(getattr(value, "value", value))]
    if trace.focus is not None:
        words += ["--query", trace.query_tokens[trace.focus]]
    return shlex.join([*words, "--format", "torch"])


def _in_docstring(text: str) -> str:
    """``text`` for the script's docstring: on one line (:func:`attncli.render.printable`),
    backslashes and quotes escaped (a token cannot end the docstring and start code)."""
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')
