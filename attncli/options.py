"""The command-line options every command shares (input, variant, device), declared once.

``@problem_options`` adds them to a Typer command's signature and hands the command one
:class:`ProblemOptions`, whose :meth:`~ProblemOptions.load` gives the Problem and the config.
The options that set an :class:`~attncli.config.AttentionConfig` field are generated from the
field's metadata (:class:`attncli.config.Option`); the others are declared here.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from attncli.config import INPUT, OPTIONS, VARIANT, VARIANTS, Option, choices
from attncli.errors import InputError
from attncli.problem import KNOWN_KEYS, require_key

OUTPUT = "Output"  # the help panel of a command's own output options

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
        is not a key a tensor can fill (:func:`attncli.io.safetensors_reader.require_tensor_key`,
        the check read_safetensors makes of its ``tensors``).
        """
        from attncli.io.safetensors_reader import require_tensor_key

        tensors: dict[str, str] = {}
        for item in self.tensor:
            key, sep, name = (part.strip() for part in item.partition("="))
            if not sep or not key or not name:
                raise InputError(f"--tensor {item!r}: expected KEY=NAME, e.g. "
                                 "--tensor W_q=model.layers.0.self_attn.q_proj.weight")
            require_tensor_key(key, f"--tensor {item!r}")
            if key in tensors:
                raise InputError(f"--tensor {item!r}: {key} is already mapped to "
                                 f"{tensors[key]!r}; give each KEY once")
            tensors[key] = name
        return tensors or None

    def config_fields(self) -> dict[str, Any]:
        """The config fields the flags set, by field name (None: the flag was not given)."""
        return {name: option.from_flag(getattr(self, option.param))
                for name, option in OPTIONS.items()}

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
        config = build(problem.config, variant, no_scale=self.no_scale, **self.config_fields())
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


def config_parameters(options: Mapping[str, Option]) -> list[inspect.Parameter]:
    """One Typer option per config field, from its :class:`~attncli.config.Option`: a bool
    field's is a switch (``--causal``, ``--no-project``); another's takes a value, None when
    not given unless the option has a default of its own (``--backend auto``)."""
    parameters = []
    for option in options.values():
        if option.kind is bool:
            kind, default = bool, False
        elif option.flag_default is not None:
            kind, default = option.kind, option.flag_default
        else:
            kind, default = option.kind | None, None
        parameters.append(_option(option.param, Annotated[kind, typer.Option(
            option.flag, help=option.help, metavar=option.metavar,
            rich_help_panel=option.panel)], default))
    return parameters


def _sample_names(incomplete: str) -> list[str]:
    """Shell completion of --sample: the bundled samples' names."""
    from attncli.samples import names

    return [name for name in names() if name.startswith(incomplete)]


#: The options' order in --help, by parameter name. The config's options are generated
#: (:func:`config_parameters`); one not named here comes last in its panel.
_HELP_ORDER = ("sample", "x", "memory", "wq", "wk", "wv", "wo", "mask", "set_", "tensor",
               "weight_layout", "variant", "score", "no_scale", "scale", "softcap", "no_project",
               "heads", "kv_heads", "qk_norm", "qk_norm_eps", "qk_norm_offset", "rope",
               "rope_theta", "rope_layout", "rotary_dim", "alibi", "causal", "causal_align",
               "window", "normalize", "top_k", "temperature", "dropout", "seed", "backend",
               "device", "dtype", "debug")

SHARED: list[inspect.Parameter] = sorted([
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
    _option("variant", Annotated[VariantName | None, typer.Option(
        metavar="NAME", help=f"A preset of the options below: {choices(VariantName)} "
        "(attncli variants lists what each sets).", rich_help_panel=VARIANT)], None),
    _option("no_scale", Annotated[bool, typer.Option(
        "--no-scale", help="Unscaled dot product, softmax(Q Kᵀ) V, as \"6.1-Self-Attention\" "
        "(Pin-Jiun, Machine-Learing-NTU) computes it.", rich_help_panel=VARIANT)], False),
    _option("debug", Annotated[bool, typer.Option(help="Show tracebacks.")], False),
    *config_parameters(OPTIONS),
], key=lambda p: _HELP_ORDER.index(p.name) if p.name in _HELP_ORDER else len(_HELP_ORDER))


#: The options of a command that computes but takes no problem (attncli model): backend,
#: device, dtype and --debug.
DEVICE: list[inspect.Parameter] = [p for p in SHARED if p.name in ("backend", "device", "dtype",
                                                                   "debug")]


def problem_options(command):
    """Add the shared options to ``command``'s signature; it receives them as ``opts``."""
    return _adding(SHARED)(command)


def device_options(command):
    """Add :data:`DEVICE` to ``command``'s signature; it receives them as ``opts`` (a
    :class:`ProblemOptions` whose other options keep their defaults)."""
    return _adding(DEVICE)(command)


def _adding(shared: list[inspect.Parameter]):
    """A decorator adding ``shared`` to a command's signature, handed over as ``opts``."""
    return functools.partial(_add, shared)


def _add(shared: list[inspect.Parameter], command):
    signature = inspect.signature(command)
    # resolved here: the wrapper's module is not the command's
    hints = typing.get_type_hints(command, include_extras=True)
    own = [p.replace(annotation=hints[p.name]) for p in signature.parameters.values()
           if p.name != "opts"]

    @functools.wraps(command)
    def wrapper(**kwargs):
        opts = ProblemOptions(**{p.name: kwargs.pop(p.name) for p in shared})
        return command(opts=opts, **kwargs)

    del wrapper.__wrapped__  # Typer must read the new signature, not the command's
    wrapper.__signature__ = signature.replace(parameters=[*own, *shared])
    wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *shared)}
    return wrapper

