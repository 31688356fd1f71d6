"""The command-line options every command shares (input, variant, device), declared once.

``@problem_options`` adds them to a Typer command's signature and hands the command one
:class:`ProblemOptions`, whose :meth:`~ProblemOptions.load` gives the Problem and the config.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from attncli.config import VARIANTS, Backend, CausalAlign, DType, Layout, Normalize, Score
from attncli.errors import InputError
from attncli.problem import KNOWN_KEYS, require_key

INPUT, VARIANT, OUTPUT, DEVICE = "Input", "Variant", "Output", "Device"

VariantName = enum.Enum("VariantName", {name: name for name in VARIANTS}, type=str)


class ProblemOptions:
    """The shared options' values, as Typer parsed them: one attribute per entry of
    :data:`SHARED` (its name, default and type are declared there, once)."""

    def __init__(self, **values: Any):
        self.__dict__.update({p.name: p.default for p in SHARED}, **values)

    def arrays(self) -> dict[str, str]:
        """Problem key → file, from --x … --mask and --set KEY=FILE.

        Raises: InputError for a --set that is not KEY=FILE or whose KEY is not a problem key
        (:func:`attncli.problem.require_key`).
        """
        arrays = {k: v for k, v in {"x": self.x, "memory": self.memory, "W_q": self.wq,
                                    "W_k": self.wk, "W_v": self.wv, "W_o": self.wo,
                                    "mask": self.mask}.items() if v is not None}
        for item in self.set_:
            key, sep, file = (part.strip() for part in item.partition("="))
            if not sep or not key or not file:
                raise InputError(f"--set {item!r}: expected KEY=FILE, e.g. --set b_q=bq.csv")
            require_key(key, KNOWN_KEYS, f"--set {item!r}")  # named here: never ignored
            arrays[key] = file
        return arrays

    def tensors(self) -> dict[str, str] | None:
        """Problem key → tensor name of a .safetensors FILE, from --tensor KEY=NAME; None
        without --tensor (the tensors named like problem keys are taken).

        Raises: InputError for an item that is not KEY=NAME, a KEY given twice, or a KEY that
        is not a key a tensor can fill, with problem.py's suggestion (:func:`require_key`).
        """
        from attncli.io.safetensors_reader import TENSOR_KEYS

        tensors: dict[str, str] = {}
        for item in self.tensor:
            key, sep, name = (part.strip() for part in item.partition("="))
            if not sep or not key or not name:
                raise InputError(f"--tensor {item!r}: expected KEY=NAME, e.g. "
                                 "--tensor W_q=model.layers.0.self_attn.q_proj.weight")
            require_key(key, TENSOR_KEYS, f"--tensor {item!r}", "a key a tensor can fill")
            if key in tensors:
                raise InputError(f"--tensor {item!r}: {key} is already mapped to "
                                 f"{tensors[key]!r}; give each KEY once")
            tensors[key] = name
        return tensors or None

    def load(self, file: str | None):
        """The Problem (file, sample and per-key files) and its AttentionConfig.

        Raises: InputError / ConfigError for bad input, contradictory options, or no input.
        """
        from attncli.config import build
        from attncli.io import load_problem

        arrays = self.arrays()
        tensors = self.tensors()
        checkpoint = file is not None and file.lower().endswith(".safetensors")
        if tensors and not checkpoint:
            raise InputError("--tensor maps the tensor names of a .safetensors problem FILE; "
                             f"got {'no FILE' if file is None else file}")
        if file is None and self.sample is None and "x" not in arrays:
            raise InputError("no input: give a problem FILE, --sample NAME or --x FILE "
                             "(try: attncli compute --sample hello-shiny-sun)")
        if file is not None and self.sample is not None and not checkpoint:
            # the file's keys would silently replace some of the sample's: which numbers ran?
            raise InputError(f"{file} and --sample {self.sample}: give one problem, not both "
                             "(--sample goes with a .safetensors FILE, whose weights it takes; "
                             "--x, --wq … --set KEY=FILE replace one key of either)")
        problem = load_problem(file, arrays=arrays, sample=self.sample, tensors=tensors)
        variant = self.variant.value if self.variant is not None else None
        config = build(
            problem.config, variant, no_scale=self.no_scale,
            project=False if self.no_project else None, score=self.score, scale=self.scale,
            causal=self.causal or None, causal_align=self.causal_align, window=self.window,
            normalize=self.normalize, top_k=self.top_k, temperature=self.temperature,
            heads=self.heads, dropout=self.dropout, seed=self.seed,
            weight_layout=self.weight_layout, backend=self.backend, device=self.device,
            dtype=self.dtype)
        if (variant or problem.config.get("variant")) == "cross" and not any(
                k in problem for k in ("memory", "key_memory", "value_memory")):
            raise InputError("the cross variant needs 'memory' (keys and values come from it): "
                             "add it to the file or give --memory FILE")
        weights = [k for k in ("W_q", "W_k", "W_v", "W_o") if problem.origin.get(k) == file]
        if checkpoint and weights and not (config.weight_layout or problem.weight_layout):
            # nn.Linear stores (out, in); a square matrix fits either layout without an error
            problem.warnings.append(
                f"{file}: {', '.join(weights)} used in the in_out layout (Q = x @ W_q); "
                "checkpoints store nn.Linear weights as (out, in): pass --weight-layout out_in "
                "(or in_out to keep this and silence the warning)")
        return problem, config


def choices(names) -> str:
    """An enum's values (or a list's items) for a help text: "a, b or c". A long choice list
    goes in the help, where it wraps between words, with a short metavar (NAME), not in
    Typer's <a|b|c> metavar, which rich cuts mid-word at 80 columns."""
    values = [getattr(name, "value", name) for name in names]
    return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else "".join(values)


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)


def output_path(text: str) -> Path:
    """-o FILE and --plot FILE as a Path, parsed as Click parses any option value. Path()
    would quietly turn '' into '.' and 'dir/' into 'dir' (a file named dir), so they are
    refused here, where the text is still as typed.

    Raises: typer.BadParameter (a usage error: one line and status 2) for an empty name or
    one that ends in a slash, a folder.
    """
    if not text:
        raise typer.BadParameter("an empty name is no file; give a file name")
    if text.endswith(("/", os.sep)):
        raise typer.BadParameter(f"{text!r} ends in /, a folder, not a file; give a file name "
                                 f"in it ({text}NAME)")
    return Path(text)


def _sample_names(incomplete: str) -> list[str]:
    """Shell completion of --sample: the bundled samples' names."""
    from attncli.samples import names

    return [name for name in names() if name.startswith(incomplete)]


SHARED: list[inspect.Parameter] = [
    _option("sample", Annotated[str | None, typer.Option(
        help="A bundled sample (see: attncli samples).", rich_help_panel=INPUT,
        autocompletion=_sample_names)], None),
    _option("x", Annotated[str | None, typer.Option(
        "--x", help="Embeddings x (CSV/NPY/JSON).", rich_help_panel=INPUT)], None),
    _option("memory", Annotated[str | None, typer.Option(
        help="Memory for cross-attention (keys, values).", rich_help_panel=INPUT)], None),
    _option("wq", Annotated[str | None, typer.Option(
        "--wq", help="W_q file.", rich_help_panel=INPUT)], None),
    _option("wk", Annotated[str | None, typer.Option(
        "--wk", help="W_k file.", rich_help_panel=INPUT)], None),
    _option("wv", Annotated[str | None, typer.Option(
        "--wv", help="W_v file.", rich_help_panel=INPUT)], None),
    _option("wo", Annotated[str | None, typer.Option(
        "--wo", help="W_o file.", rich_help_panel=INPUT)], None),
    _option("mask", Annotated[str | None, typer.Option(
        help="Boolean mask file, True = may attend.", rich_help_panel=INPUT)], None),
    _option("set_", Annotated[list[str], typer.Option(
        "--set", metavar="KEY=FILE", help="Any other key from a file, e.g. b_q=bq.csv.",
        rich_help_panel=INPUT)], []),
    _option("tensor", Annotated[list[str], typer.Option(
        "--tensor", metavar="KEY=NAME", help="A key from a tensor of the .safetensors FILE: "
        "W_q=NAME takes W_q from the tensor NAME, e.g. a layer's self_attn.q_proj.weight "
        "(nn.Linear: --weight-layout out_in).",
        rich_help_panel=INPUT)], []),
    _option("weight_layout", Annotated[Layout | None, typer.Option(
        help="in_out: Q = x @ W_q, as tutorials and papers write it; out_in: Q = x @ W_q.T, "
             "as nn.Linear stores W_q.", rich_help_panel=INPUT)], None),
    _option("variant", Annotated[VariantName | None, typer.Option(
        metavar="NAME", help=f"A preset of the options below: {choices(VariantName)} "
        "(attncli variants lists what each sets).", rich_help_panel=VARIANT)], None),
    _option("score", Annotated[Score | None, typer.Option(
        metavar="NAME", help=f"Score function: {choices(Score)}.", rich_help_panel=VARIANT)],
        None),
    _option("no_scale", Annotated[bool, typer.Option(
        "--no-scale", help="Unscaled dot product, softmax(Q Kᵀ) V, as \"6.1-Self-Attention\" "
        "(Pin-Jiun, Machine-Learing-NTU) computes it.", rich_help_panel=VARIANT)], False),
    _option("scale", Annotated[float | None, typer.Option(
        help="Multiply the scores by this factor.", rich_help_panel=VARIANT)], None),
    _option("no_project", Annotated[bool, typer.Option(
        "--no-project", help="Ignore W_q/W_k/W_v: Q = K = V = x.",
        rich_help_panel=VARIANT)], False),
    _option("heads", Annotated[int | None, typer.Option(
        help="Number of heads H.", rich_help_panel=VARIANT)], None),
    _option("causal", Annotated[bool, typer.Option(
        "--causal", help="Mask future keys (−∞ before softmax).", rich_help_panel=VARIANT)],
        False),
    _option("causal_align", Annotated[CausalAlign | None, typer.Option(
        help="Causal diagonal when seq_q ≠ seq_k: top-left (torch) or bottom-right "
             "(flash-attn); aligns --window too.", rich_help_panel=VARIANT)], None),
    _option("window", Annotated[int | None, typer.Option(
        help="Local attention: only keys with |i−j| ≤ W.", rich_help_panel=VARIANT)], None),
    _option("normalize", Annotated[Normalize | None, typer.Option(
        help="softmax (soft), hard (one-hot arg-max) or topk.", rich_help_panel=VARIANT)],
        None),
    _option("top_k", Annotated[int | None, typer.Option(
        help="K for --normalize topk.", rich_help_panel=VARIANT)], None),
    _option("temperature", Annotated[float | None, typer.Option(
        help="softmax(scores / T).", rich_help_panel=VARIANT)], None),
    _option("dropout", Annotated[float | None, typer.Option(
        help="Dropout probability on the weights.", rich_help_panel=VARIANT)], None),
    _option("seed", Annotated[int | None, typer.Option(
        help="Seed of the dropout mask.", rich_help_panel=VARIANT)], None),
    _option("backend", Annotated[Backend, typer.Option(
        help="numpy, torch, or auto: numpy for small problems, torch (if installed) from "
             "5e10 FLOPs (1e11 in float32).", rich_help_panel=DEVICE)], Backend.auto),
    _option("device", Annotated[str, typer.Option(
        help="cpu, cuda, cuda:N, mps or auto.", rich_help_panel=DEVICE)], "cpu"),
    _option("dtype", Annotated[DType, typer.Option(
        help="Floating-point precision.", rich_help_panel=DEVICE)], DType.float64),
    _option("debug", Annotated[bool, typer.Option(help="Show tracebacks.")], False),
]


def problem_options(command):
    """Add the shared options to ``command``'s signature; it receives them as ``opts``."""
    signature = inspect.signature(command)
    # resolved here: the wrapper's module is not the command's
    hints = typing.get_type_hints(command, include_extras=True)
    own = [p.replace(annotation=hints[p.name]) for p in signature.parameters.values()
           if p.name != "opts"]

    @functools.wraps(command)
    def wrapper(**kwargs):
        opts = ProblemOptions(**{p.name: kwargs.pop(p.name) for p in SHARED})
        return command(opts=opts, **kwargs)

    del wrapper.__wrapped__  # Typer must read the new signature, not the command's
    wrapper.__signature__ = signature.replace(parameters=[*own, *SHARED])
    wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *SHARED)}
    return wrapper

