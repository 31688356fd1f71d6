"""The attncli command line that makes a run again, for an exported script's docstring."""

from __future__ import annotations

import shlex

from attncli.config import AttentionConfig, as_flags, build
from attncli.problem import Problem
from attncli.trace import Trace


def equivalent_command(problem: Problem, config: AttentionConfig | None,
                       trace: Trace) -> list[str]:
    """``attncli compute … --format torch`` for this run, and a note when it cannot say all.

    Returns: the docstring's lines: the command (inputs named by their origins: a sample as
    --sample NAME, standard input as -, a key from another file as --set KEY=FILE; the options
    as given, :func:`flags`; the --query row as its token), then "(tensors mapped with
    --tensor)" when a tensor came from a safetensors checkpoint, whose --tensor KEY=NAME the
    Problem does not keep.
    Args:
        config: the run's options as given; None takes the problem's own ``config``.
        trace: the run (its --query row).
    """
    if trace.model is not None:  # a model's layer (attncli model): the model command
        return [shlex.join(_model_command(trace))]
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
    words += flags(config)
    if trace.focus is not None:
        words += ["--query", trace.query_tokens[trace.focus]]
    mapped = any(origin.lower().endswith(".safetensors") for origin in problem.origin.values())
    return [shlex.join([*words, "--format", "torch"]),
            *(["(tensors mapped with --tensor)"] if mapped else [])]


def _model_command(trace: Trace) -> list[str]:
    """``attncli model PATH --input-ids … --layer N [--query Q] --format torch``: the layer's
    tokens as their ids (a --text would be tokenized to them), from JSON's "model" facts."""
    model = trace.model
    words = ["attncli", "model", model["path"], "--input-ids",
             ",".join(str(i) for i in model["input_ids"]), "--layer", str(model["layer"])]
    if trace.focus is not None:
        words += ["--query", str(trace.focus)]
    return [*words, "--format", "torch"]


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
