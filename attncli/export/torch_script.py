"""``--format torch``: a short Python script that redoes a run with PyTorch's own attention.

The script embeds the problem's numbers as literals and needs only ``torch`` (and ``json``) to
run; it prints one JSON object, so a test (or a learner) can compare it with attncli's trace:

    {"module": "torch.nn.MultiheadAttention", "output": [...], "weights": [...]}
    {"module": "torch.nn.functional.scaled_dot_product_attention", "context": [...],
     "output": [...]}   # output only when W_o is given

It reads only the Trace: ``trace.run`` (the resolved facts: heads, d_k, scale, score, layout,
causal alignment, window, which projections…), ``trace.inputs`` (the arrays as the problem gave
them) and ``trace.mask`` (the run's one mask, for the rows no key is left to).
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
would draw another mask), sinks and a float bias; RoPE and QK-norm (SDPA takes the queries and
keys as given), soft-capping (not an addition to the scores) and ALiBi, each with its reason
(:data:`REASONS`); and more than 10 000 numbers to embed.
Sources: https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html,
https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from attncli.config import Layout, Normalize, Score, as_flags
from attncli.errors import InputError
from attncli.problem import fmt_shape
from attncli.render.layout import printable
from attncli.trace import Run, Trace

if TYPE_CHECKING:
    from attncli.render.output import Request

MHA = "torch.nn.MultiheadAttention"
SDPA = "torch.nn.functional.scaled_dot_product_attention"
#: The most numbers a script embeds; more would make a file no one reads.
MAX_NUMBERS = 10_000
_WIDTH = 96  # wrap long rows of numbers at this many characters


def render_torch(trace: Trace, command: Sequence[str] = ()) -> str:
    """A runnable script (text) that redoes the run of ``trace`` with PyTorch.

    Shapes: the script's tensors are the problem's as given (``trace.inputs``: x (seq_q, d_in)
    or (B, seq_q, d_in), …); it prints ``context`` (…, seq_q, H·d_v) with SDPA, ``output``
    (…, seq_q, d_out) when W_o is given, and ``weights`` (…, H, seq_q, seq_k) with
    nn.MultiheadAttention.
    Args:
        trace: a run of :func:`attncli.attend` (its ``run``, ``inputs`` and ``mask``; its
            query labels and --query row are noted).
        command: the attncli command that makes the run and any note on it, one line each
            (:func:`attncli.export.command.equivalent_command`), said after "Equivalent to:"
            in the script's docstring; none, no such line.
    Raises:
        InputError: a run torch's attention cannot express (additive score, hard or top-k
            attention, dropout), or more than 10 000 numbers.
    Source: torch.nn.MultiheadAttention and torch.nn.functional.scaled_dot_product_attention
    (the docs above); the packing of in_proj_weight is torch.nn.MultiheadAttention's.
    """
    run, inputs = trace.run, trace.inputs
    _refuse(run)
    keys = _embedded_keys(trace)
    count = sum(int(inputs[k].size) for k in keys)
    if count > MAX_NUMBERS:
        raise InputError(f"--format torch writes the numbers into the script: at most "
                         f"{MAX_NUMBERS:,}, and this run has {count:,} ({', '.join(keys)}); "
                         "save the steps with -o FILE.npz instead")
    use_mha = _module(trace) == MHA
    script = _Script(trace)
    script.header(MHA if use_mha else SDPA, command)
    for key in keys:
        script.tensor(key)
    script.masks(use_mha)
    if use_mha:
        script.mha()
    else:
        script.sdpa()
    return "\n".join(script.lines) + "\n"


def _module(trace: Trace) -> str:
    run, inputs = trace.run, trace.inputs
    d_in, H = inputs["x"].shape[-1], run.heads
    if len(run.projected) < 3 or run.d_out is None:
        return SDPA  # MHA always projects, and always applies out_proj
    if run.score not in (Score.dot, Score.scaled_dot):
        return SDPA
    if run.kv_heads not in (None, H):
        return SDPA  # MHA has as many key/value heads as query heads; SDPA takes enable_gqa
    if H * run.d_k != d_in or H * run.d_v != d_in or run.d_out != d_in:
        return SDPA  # embed_dim = H·head_dim is both the query width and the output's
    if not math.isclose(run.scale / run.temperature, 1.0 / math.sqrt(run.d_k), rel_tol=1e-12):
        return SDPA  # MHA always scales by 1/√head_dim
    return MHA


#: The options the script writes (or refuses, below, with its reason); any other option a
#: run sets is refused as one the script does not express.
EXPRESSED = frozenset({"project", "score", "scale", "causal", "causal_align", "window",
                       "normalize", "temperature", "top_k", "heads", "kv_heads", "dropout",
                       "seed",
                       "weight_layout", "backend", "device", "dtype"})


_BEFORE_SDPA = ("SDPA takes the queries and keys as given, and the script does not write "
                "{} out before it")
#: Why the script does not write an option, by option: SDPA and nn.MultiheadAttention compute
#: softmax(q kᵀ · scale + attn_mask) v and nothing else. An option not named here is refused
#: without a reason.
REASONS = {
    **dict.fromkeys(("rope", "rope_theta", "rope_layout", "rotary_dim"),
                    _BEFORE_SDPA.format("RoPE's rotation")),
    **dict.fromkeys(("qk_norm", "qk_norm_eps", "qk_norm_offset"),
                    _BEFORE_SDPA.format("their RMSNorm")),
    "softcap": ("C·tanh(scores / C) is a function of the scores, and SDPA's attn_mask can only "
                "be added to them (flex_attention's score_mod could)"),
    "alibi": ("ALiBi's −m_h·|i − j| would be a float attn_mask of (H, seq_q, seq_k), which the "
              "script does not write"),
}


def _refuse(run: Run) -> None:
    other = {k: v for k, v in run.options.changed().items() if k not in EXPRESSED}
    if other:
        # one group per reason, in the options' order; those without a reason come first
        groups: dict[str, dict] = {"": {}}
        for name, value in other.items():
            groups.setdefault(REASONS.get(name, ""), {})[name] = value
        (flags, reason), *rest = [(shlex.join(as_flags(fields)), reason)
                                  for reason, fields in groups.items() if fields]
        raise InputError(f"--format torch does not write {flags} into a script"
                         + (f": {reason}" if reason else "")
                         + "".join(f"; {more}: {why}" for more, why in rest))
    what = None
    if run.score is Score.additive:
        what = "the additive score"
    elif run.normalize is Normalize.hard:
        what = "hard attention (--normalize hard)"
    elif run.normalize is Normalize.top_k:
        what = f"top-k attention (--normalize topk --top-k {run.top_k})"
    elif run.dropout > 0.0:
        what = f"--dropout {run.dropout:g}, whose mask torch would draw differently"
    elif run.sinks:
        what = ("attention sinks (the problem's sinks: a softmax column per head, then "
                "dropped), which torch's SDPA and nn.MultiheadAttention do not take")
    elif run.bias_given:
        what = ("a float bias of the scores (the problem's bias), which the script does not "
                "write as SDPA's float attn_mask")
    if what is not None:
        raise InputError(f"--format torch covers dot-product softmax attention; this run uses "
                         f"{what}")


def _embedded_keys(trace: Trace) -> list[str]:
    run, inputs = trace.run, trace.inputs
    keys = ["x", *dict.fromkeys(k for k in (run.key_from, run.value_from) if k != "x")]
    for name in "qkv":
        if f"W_{name}" in run.projected:
            keys += [k for k in (f"W_{name}", f"b_{name}") if k in inputs]
    if run.score is Score.general:
        keys.append("W_a")
    if run.d_out is not None:
        keys += [k for k in ("W_o", "b_o") if k in inputs]
    return keys + [k for k in ("mask", "key_padding_mask") if k in inputs]


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

    def __init__(self, trace: Trace):
        self.trace, self.run, self.inputs = trace, trace.run, trace.inputs
        self.lines: list[str] = []
        self.allowed: str | None = None  # the name of the mask tensor, True = may attend
        self.batch_mask = False  # allowed varies with the batch item: (B, seq_q or 1, seq_k)
        self.causal_only = False  # the mask is the top-left causal one alone: is_causal
        self.empty_rows = False  # some query row has no key to attend to

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def _used(self, key: str) -> bool:
        """Whether the run used the weight matrix ``key`` (W_q, W_k, W_v or W_o)."""
        return self.run.d_out is not None if key == "W_o" else key in self.run.projected

    def _labels(self, key: str) -> list[str] | None:
        """The row labels of x (the query tokens) or of a memory (the key tokens); None when
        they are the row numbers attncli gives rows without labels."""
        labels = self.trace.query_tokens if key == "x" else self.trace.key_tokens
        return None if labels == [str(i) for i in range(len(labels))] else labels

    # ------------------------------------------------------------------------------------
    def header(self, module: str, command: Sequence[str]) -> None:
        run = self.run
        layout = ("in_out, queries = x @ W_q as attncli computes (nn.Linear stores W.T)"
                  if run.weight_layout is Layout.in_out else
                  "out_in, queries = x @ W_q.T as nn.Linear stores W")
        weights = [k for k in ("W_q", "W_k", "W_v", "W_o") if self._used(k)]
        focus = self.trace.focus
        shown = "" if focus is None else repr(self.trace.query_tokens[focus])
        row = (f"\nattncli showed query {_in_docstring(shown)}; this script computes every "
               "query row." if shown else "")
        agree = ("about 1e-15 in float64" if run.dtype.value == "float64"
                 else f"about 1e-6 in {run.dtype.value}")
        self.add(
            f'"""attncli\'s run, redone with {module}.',
            "",
            *(f"Equivalent to: {_in_docstring(line)}" if n == 0 else _in_docstring(line)
              for n, line in enumerate(command)),
            *([f"Weights: {layout}."] if weights else []),
            *(["Masks: True = may attend (SDPA's attn_mask); nn.MultiheadAttention's attn_mask "
               "is", "the opposite (True = not allowed), its key_padding_mask True = padding."]
              if self.trace.mask is not None else []),
            f"Prints one JSON object; attncli's numbers agree to {agree}.{row}",
            '"""',
            "import json",
            "",
            "import torch",
            "",
            f"dtype = torch.{run.dtype.value}",
            f"H = {run.heads}  # heads",
            *([f"G = {run.kv_heads}  # key/value heads: query head h uses KV head "
               f"h // (H // G), as SDPA's enable_gqa"] if _grouped(run) else []),
            "",
        )

    def tensor(self, key: str) -> None:
        """``key = torch.tensor([...])`` with a comment giving its shape and role."""
        run, inputs = self.run, self.inputs
        array = inputs[key]
        note = ""
        role = {"W_q": "queries = x", "W_k": f"keys = {run.key_from}",
                "W_v": f"values = {run.value_from}",
                "W_o": "output = context"}.get(key)
        if key in ("W_q", "W_k", "W_v") and array.ndim == 3:
            # (H, d_from, d_head), in_out whatever the layout
            array = array if run.weight_layout is Layout.in_out else np.swapaxes(array, 1, 2)
            note = f"one matrix per head, in_out: head h's {role} @ {key}[h]"
        elif role is not None:
            note = (f"in_out: {role} @ {key}" if run.weight_layout is Layout.in_out
                    else f"out_in, as nn.Linear stores it: {role} @ {key}.T")
        elif key in ("b_q", "b_k", "b_v"):
            array = array.reshape(-1)  # (H·d_head,)
        elif key in ("x", "memory", "key_memory", "value_memory"):
            labels = self._labels(key)
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
        if key != "x" and key in (run.key_from, run.value_from) and run.batched \
                and inputs[key].ndim == 2:
            self.add(f"{key} = {key}.expand(len(x), -1, -1)  # one {key} for every batch item")

    def _weight(self, key: str, linear: bool = False) -> str:
        """``key`` as x @ (…) needs it (``linear`` False) or as nn.Linear stores it (True)."""
        out_in = self.inputs[key].ndim == 2 and self.run.weight_layout is Layout.out_in
        return key if out_in == linear else f"{key}.T"

    # ------------------------------------------------------------------------------------
    def _lengths(self) -> tuple[int, int]:
        """(seq_q, seq_k): the queries' and the keys' counts."""
        return self.inputs["x"].shape[-2], self.inputs[self.run.key_from].shape[-2]

    def _note_empty_rows(self) -> None:
        """Whether some query row of the run's mask has no key left to attend to."""
        mask = self.trace.mask
        self.empty_rows = mask is not None and not mask.dense().any(axis=-1).all()

    def masks(self, use_mha: bool) -> None:
        """``allowed`` (True = may attend) from the causal/window masks and the problem's
        ``mask`` (with the key padding for SDPA; MHA takes key_padding_mask by itself)."""
        inputs, mask = self.inputs, self.trace.mask  # the run's one mask: its predicates
        if mask is None:
            self._note_empty_rows()
            return
        seq_q, seq_k = self._lengths()
        offset = seq_k - seq_q if mask.bottom_right else 0
        if mask.key_lengths is not None:
            self._per_item_masks(use_mha)
            return
        parts = []
        if mask.causal:
            shift = f" + {offset}" if offset > 0 else f" − {-offset}" if offset else ""
            where = ("top-left: query i sees keys j ≤ i" if offset == 0 else
                     f"bottom-right: query i sees keys j ≤ i{shift}")
            parts.append((f"torch.ones({seq_q}, {seq_k}, dtype=torch.bool).tril({offset or ''})",
                          f"causal, {where}"))
        if mask.window is not None:
            i = f"torch.arange({seq_q})[:, None]" + (f" + {offset}" if offset else "")
            shift = f" + {offset}" if offset > 0 else f" − {-offset}" if offset else ""
            parts.append((f"({i} - torch.arange({seq_k})).abs() <= {mask.window}",
                          f"window: |i{shift} − j| ≤ {mask.window}"))
        if mask.mask is not None:
            parts.append(("mask", "the problem's mask"))
            self.batch_mask = inputs["mask"].ndim == 3
        if mask.padding is not None and not use_mha:
            pad = inputs["key_padding_mask"]  # (seq_k,) or (B, seq_k): one row of keys
            parts.append(("(~key_padding_mask)" + ("[:, None, :]" if pad.ndim == 2
                                                   else "[None, :]"),
                          "not padding, (B, 1, seq_k)" if pad.ndim == 2
                          else "not padding, (1, seq_k): SDPA's attn_mask has ≥ 2 axes"))
            self.batch_mask = self.batch_mask or pad.ndim == 2
        self.causal_only = mask.causal and offset == 0 and len(parts) == 1 and (
            mask.padding is None)
        self._note_empty_rows()
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
        inputs, mask = self.inputs, self.trace.mask
        seq_q, seq_k = self._lengths()
        pad = inputs["key_padding_mask"]
        each = "[:, None, None]" if pad.ndim == 2 else ""
        self.add("# True = may attend. Bottom-right, aligned to each batch item's keys that are "
                 "not padding,",
                 "# as flash-attn aligns a padded batch: L = (~key_padding_mask).sum(-1).",
                 f"shift = (~key_padding_mask).sum(-1) - {seq_q}  # L − seq_q, per batch item",
                 f"i = torch.arange({seq_q})[:, None] + shift{each}  # the query row, shifted",
                 f"j = torch.arange({seq_k})  # the key column")
        parts = []
        if mask.causal:
            parts.append("(j <= i)")
        if mask.window is not None:
            parts.append(f"((i - j).abs() <= {mask.window})")
        if mask.mask is not None:
            parts.append("mask")
        if not use_mha:
            parts.append("(~key_padding_mask)" + ("[:, None, :]" if pad.ndim == 2 else ""))
        self.add("allowed = " + " & ".join(parts))
        self.allowed = "allowed"
        self.batch_mask = pad.ndim == 2 or (mask.mask is not None and inputs["mask"].ndim == 3)
        self._note_empty_rows()

    # ------------------------------------------------------------------------------------
    def sdpa(self) -> None:
        run = self.run
        self.add(
            "",
            "",
            *(_SPLIT_GROUPED if _grouped(run) else _SPLIT),
            "",
            "",
        )
        for name, role, inp in (("q", "queries", "x"), ("k", "keys", run.key_from),
                                ("v", "values", run.value_from)):
            expression = inp
            if self._used(f"W_{name}"):
                expression = f"{inp} @ {self._weight(f'W_{name}')}"
                if f"b_{name}" in self.inputs:
                    expression += f" + b_{name}"
            shape = {"q": "seq_q, d_k", "k": "seq_k, d_k", "v": "seq_k, d_v"}[name]
            if name != "q" and _grouped(run):
                self.add(f"{role} = split_heads({expression}, G)  # (…, G, {shape})")
            else:
                self.add(f"{role} = split_heads({expression})  # (…, H, {shape})")
        if run.score is Score.general:
            self.add("queries = queries @ W_a  # q W_a kᵀ: the general score as a dot product")
        self.add(*_commented(*_scale_text(run)))
        options = ["queries", "keys", "values"]
        if self.causal_only:
            options.append("is_causal=True")  # the top-left causal mask (torch.tril)
        elif self.allowed is not None:
            mask = "allowed.unsqueeze(-3)" if self.batch_mask else "allowed"
            options.append(f"attn_mask={mask}")
        if _grouped(run):
            options.append("enable_gqa=True")  # each KV head for H // G query heads in a row
        self.add(*_call("head_context = torch.nn.functional.scaled_dot_product_attention",
                        [*options, "scale=scale"], comment="(…, H, seq_q, d_v)"),
                 "context = head_context.transpose(-3, -2).flatten(-2)  # (…, seq_q, H·d_v): "
                 "heads side by side")
        result = {"module": f'"{SDPA}"', "context": "context.tolist()"}
        if self._used("W_o"):
            bias = " + b_o" if "b_o" in self.inputs else ""
            self.add(f"output = context @ {self._weight('W_o')}{bias}  # (…, seq_q, d_out)")
            result["output"] = "output.tolist()"
        self.add(*_print_json(result))

    def mha(self) -> None:
        run, inputs = self.run, self.inputs
        d_in, d_kdim = inputs["x"].shape[-1], inputs[run.key_from].shape[-1]
        d_vdim = inputs[run.value_from].shape[-1]
        biases = [k for k in ("b_q", "b_k", "b_v", "b_o") if k in inputs]
        zeros = [k for k in ("b_q", "b_k", "b_v", "b_o") if biases and k not in inputs]
        if zeros:
            self.add("", *(f"{k} = torch.zeros({d_in}, dtype=dtype)  # no {k}: zeros, as "
                           "bias=True needs them all" for k in zeros))
        kdim = [f"kdim={d_kdim}", f"vdim={d_vdim}"] if (d_kdim, d_vdim) != (d_in, d_in) else []
        self.add(
            "",
            "# nn.Linear (and so nn.MultiheadAttention) stores each weight as (out, in): W.T of",
            "# x @ W. embed_dim = d_in = H·d_head; the module scales the scores by 1/√d_head.",
            *(["# Here --scale / --temperature equals that."] if run.scale_given
              or run.temperature != 1.0 else []),
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
        if "key_padding_mask" in inputs:
            pad = "key_padding_mask"
            if run.batched and inputs[pad].ndim == 1:  # MHA wants (B, seq_k)
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
        self.add(*_call(call, ["x", run.key_from, run.value_from, *options], indent="    "))
        self.add(*_print_json(result))


#: The script's split_heads: into H heads; with grouped-query attention, into H or G.
_SPLIT = ("def split_heads(m):",
          '    """(..., seq, H·d) → (..., H, seq, d): head h owns columns h·d … (h+1)·d − 1."""',
          "    return m.unflatten(-1, (H, -1)).transpose(-3, -2)")
_SPLIT_GROUPED = ("def split_heads(m, heads=H):",
                  '    """(..., seq, heads·d) → (..., heads, seq, d): head h owns columns h·d … '
                  '(h+1)·d − 1."""',
                  "    return m.unflatten(-1, (heads, -1)).transpose(-3, -2)")


def _grouped(run: Run) -> bool:
    """Grouped-query attention: fewer key/value heads than query heads."""
    return run.kv_heads not in (None, run.heads)


def _scale_text(run: Run) -> tuple[str, str]:
    """The line that sets SDPA's scale (SDPA: scores · scale), and where it comes from."""
    if run.scale_given:
        text, why = repr(run.scale), f"--scale {run.scale:g} (scores · scale)"
    elif run.score is Score.scaled_dot:
        text = repr(run.scale)
        why = f"1/√d_k, d_k = {run.d_k} (SDPA's default, written out)"
    else:
        text = "1.0"
        why = f"the {run.score.value} score is not scaled (SDPA's default would be 1/√d_k)"
    if run.temperature != 1.0:
        text += f" / {run.temperature!r}"
        why += f"; softmax(scores / T) with --temperature {run.temperature:g}"
    return f"scale = {text}", why


def _in_docstring(text: str) -> str:
    """``text`` for the script's docstring: on one line
    (:func:`attncli.render.layout.printable`), backslashes and quotes escaped (a token cannot
    end the docstring and start code)."""
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')


def write_torch(trace: Trace, request: Request) -> None:
    """--format torch: a runnable PyTorch script of the run
    (:func:`render_torch`), its docstring naming the equivalent
    command (:func:`attncli.export.command.equivalent_command`, from ``request``'s problem and
    config).

    Raises: InputError as render_torch does (a run torch cannot express, too many numbers).
    """
    from attncli.export.command import equivalent_command

    command = equivalent_command(request.problem, request.config, trace)
    request.text(render_torch(trace, command))
