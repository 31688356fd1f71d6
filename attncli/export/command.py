"""The attncli command line that makes a run again, for an exported script's docstring."""

from __future__ import annotations

import shlex

from attncli.config import AttentionConfig, as_flags, build
from attncli.problem import Problem
from attncli.trace import Trace


def equivalent_command(problem: Problem, config: AttentionConfig | None,
                       trace: Trace, fmt: str = "torch") -> list[str]:
    """``attncli compute … --format FMT`` for this run, and a note when it cannot say all.

    Returns: the docstring's lines: the command (inputs named by their origins: a sample as
    --sample NAME, standard input as -, a key from another file as --set KEY=FILE; the options
    as given, :func:`flags`; the --query row as its token), then "(tensors mapped with
    --tensor)" when a tensor came from a safetensors checkpoint, whose --tensor KEY=NAME the
    Problem does not keep.
    Args:
        config: the run's options as given; None takes the problem's own ``config``.
        trace: the run (its --query row).
        fmt: the format: "torch" names the options a script's run depends on
            (:func:`flags`); another every option that differs from its default but the
            backend and the device, which change no number.
    """
    if trace.model is not None:  # a model's layer (attncli model): the model command
        return [shlex.join(_model_command(trace, fmt))]
    config = build(problem.config, None) if config is None else config
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
    words += flags(config) if fmt == "torch" else as_flags(
        {k: v for k, v in config.changed().items() if k not in ("backend", "device")})
    if trace.focus is not None:
        words += ["--query", trace.query_tokens[trace.focus]]
    mapped = any(origin.lower().endswith(".safetensors") for origin in problem.origin.values())
    return [shlex.join([*words, "--format", fmt]),
            *(["(tensors mapped with --tensor)"] if mapped else [])]


def _model_command(trace: Trace, fmt: str = "torch") -> list[str]:
    """``attncli model PATH --input-ids … --layer N [--query Q] --format torch``: the layer's
    tokens as their ids (a --text would be tokenized to them), from JSON's "model" facts."""
    model = trace.model
    words = ["attncli", "model", model["path"], "--input-ids",
             ",".join(str(i) for i in model["input_ids"]), "--layer", str(model["layer"])]
    if trace.focus is not None:
        words += ["--query", str(trace.focus)]
    if trace.head is not None:
        words += ["--head", str(trace.head)]
    return [*words, "--format", fmt]


#: The options a script's run depends on, in the order its command line gives them (backend,
#: device, and the options torch's attention cannot take, which are refused, are left out).
SCRIPT_OPTIONS = ("project", "score", "scale", "heads", "kv_heads", "causal", "causal_align",
                  "window", "temperature", "weight_layout", "dtype")


def flags(config: AttentionConfig) -> list[str]:
    """The command-line words of the options a script's run depends on, those left at their
    defaults left out: ``["--heads", "2", "--causal"]``, written as the command line writes
    every option (:func:`attncli.config.as_flags`)."""
    changed = config.changed()
    return as_flags({name: changed[name] for name in SCRIPT_OPTIONS if name in changed})
