"""AttentionConfig's options, declared once as field metadata (attncli.config.Option): the
command-line options, the file keys, the range checks and the equivalent command line are all
generated from it, so a new option is one field."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from attncli.cli import app
from attncli.config import (
    FILE_FIELDS,
    OPTIONS,
    VARIANTS,
    AttentionConfig,
    Backend,
    CausalAlign,
    DType,
    Layout,
    Normalize,
    QKNorm,
    RopeLayout,
    Score,
    as_flags,
    coerce_fields,
    file_fields,
    option,
    options_of,
)
from attncli.errors import ConfigError
from attncli.options import ProblemOptions, config_parameters, problem_options

runner = CliRunner()


def _config_from(args: list[str]) -> AttentionConfig:
    """The AttentionConfig the shared options build from ``args``, with translation-cross's
    problem (no ``config`` of its own; a memory, so the cross variant loads too)."""
    built = []
    probe = typer.Typer()

    @probe.command()
    @problem_options
    def load(opts: ProblemOptions) -> None:
        built.append(opts.load(None)[1])

    result = runner.invoke(probe, ["--sample", "translation-cross", *args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return built[0]


def _flags(command: str) -> list[str]:
    """The first flag of each option of ``attncli COMMAND``, in --help's order."""
    params = get_command(app).commands[command].params
    return [p.opts[0] for p in params if p.opts[0].startswith("--")]


# --- the options of today's fields -------------------------------------------------------------

def test_a_file_may_set_every_field_but_where_it_runs():
    # the keys of a file's "config" (README, "Input files"); backend, device and dtype are not
    assert FILE_FIELDS == {
        "project": bool, "score": Score, "scale": float, "causal": bool,
        "causal_align": CausalAlign, "window": int, "normalize": Normalize,
        "temperature": float, "top_k": int, "heads": int, "dropout": float, "seed": int,
        "weight_layout": Layout, "qk_norm": QKNorm, "qk_norm_eps": float,
        "qk_norm_offset": float, "softcap": float, "alibi": bool, "kv_heads": int, "rope": bool, "rope_theta": float,
        "rope_layout": RopeLayout, "rotary_dim": int}
    assert [name for name in OPTIONS if name not in FILE_FIELDS] == ["backend", "device", "dtype"]
    assert set(OPTIONS) == {f.name for f in dataclasses.fields(AttentionConfig)}


@pytest.mark.parametrize("command", ["compute", "check", "explain"])
def test_every_field_has_its_flag_in_help_order(command):
    flags = _flags(command)
    shared = flags[flags.index("--sample"):]
    assert shared == [
        "--sample", "--x", "--memory", "--wq", "--wk", "--wv", "--wo", "--mask", "--set",
        "--tensor", "--weight-layout", "--variant", "--score", "--no-scale", "--scale",
        "--softcap", "--no-project", "--heads", "--kv-heads", "--qk-norm", "--qk-norm-eps",
        "--qk-norm-offset", "--rope", "--rope-theta", "--rope-layout", "--rotary-dim", "--alibi",
        "--causal", "--causal-align", "--window", "--normalize", "--top-k", "--temperature",
        "--dropout", "--seed", "--backend", "--device", "--dtype", "--debug"]
    assert {OPTIONS[name].flag for name in FILE_FIELDS} <= set(shared)


# Each field with a range: a value inside, one outside, and the words of the range
RANGES = {
    "qk_norm_eps": (1e-6, 0.0, "a positive number"),
    "qk_norm_offset": (0.0, math.inf, "a finite number"),
    "scale": (0.5, math.inf, "a finite number"),
    "softcap": (50.0, 0.0, "a positive number"),
    "window": (0, -1, "0 or more (|i − j| ≤ W)"),
    "temperature": (0.1, 0.0, "a positive number"),
    "top_k": (1, 0, "a count from 1"),
    "heads": (1, 2**31, "a count from 1"),
    "kv_heads": (1, 0, "a count from 1"),
    "rope_theta": (10000.0, 1.0, "a number above 1"),
    "rotary_dim": (2, 3, "an even count from 2"),
    "dropout": (0.0, 1.0, "in [0, 1)"),
    "seed": (2**63 - 1, 2**63, "in 0 … 2**63 − 1"),
}


def test_the_fields_with_a_range_are_those_checked():
    assert [name for name, o in OPTIONS.items() if o.allowed is not None] == list(RANGES)


@pytest.mark.parametrize("name", RANGES)
def test_a_range_is_checked_the_same_for_a_flag_and_for_a_file(name):
    inside, outside, words = RANGES[name]
    flag = "--" + name.replace("_", "-")  # --top-k
    fields = {"normalize": Normalize.top_k} if name == "top_k" else {}
    if name in ("rope_theta", "rotary_dim"):
        fields = {"rope": True}
    AttentionConfig(**fields, **{name: inside}).validate()  # no error
    with pytest.raises(ConfigError) as raised:
        AttentionConfig(**fields, **{name: outside}).validate()
    assert str(raised.value) == f"{flag} must be {words}, got {outside}"
    with pytest.raises(ConfigError) as raised:
        coerce_fields({name: outside}, "f.json")
    assert str(raised.value) == f"f.json: config.{name} must be {words}, got {outside}"
    assert coerce_fields({name: inside}, "f.json") == {name: inside}
    # on the command line
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", flag, str(outside)])
    assert result.exit_code == 2
    assert result.stderr == f"attncli: error: {flag} must be {words}, got {outside}\n"


def test_a_long_value_is_cut_in_the_message():
    with pytest.raises(ConfigError, match=r"^--heads must be a count from 1, got 100000000000…$"):
        AttentionConfig(heads=10**40).validate()


# --- a made-up field: one declaration, and it is an option, a file key and a checked range ------

@dataclasses.dataclass(frozen=True)
class _Extended(AttentionConfig):
    sharpness: float | None = option(
        None, "Sharpen the scores: scores × S.",
        allowed=lambda v: math.isfinite(v) and v > 0, expected="a positive number")
    rotate: bool = option(True, "Leave the queries and keys unrotated.", file=False)


EXTENDED = options_of(_Extended)


def test_a_new_field_is_an_option_with_its_flag_and_help():
    assert list(EXTENDED) == [*OPTIONS, "sharpness", "rotate"]
    assert EXTENDED["sharpness"].flag == "--sharpness"
    assert EXTENDED["rotate"].flag == "--no-rotate"  # a switch sets the value other than True
    seen = []

    def command(**kwargs) -> None:
        seen.append(kwargs)

    parameters = config_parameters(EXTENDED)
    command.__signature__ = inspect.Signature(parameters)
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    probe = typer.Typer()
    probe.command()(command)
    result = runner.invoke(probe, ["--help"], env={"COLUMNS": "100"})
    assert "--sharpness" in result.stdout and "Sharpen the scores: scores × S." in \
        result.stdout
    assert "--no-rotate" in result.stdout
    assert runner.invoke(probe, ["--sharpness", "30", "--no-rotate"]).exit_code == 0
    given = seen[-1]
    assert given["sharpness"] == 30.0 and given["no_rotate"] is True
    assert EXTENDED["rotate"].from_flag(given["no_rotate"]) is False
    assert given["heads"] is None and given["backend"] is Backend.auto  # today's, unchanged


def test_a_new_field_is_a_file_key_with_its_range():
    assert file_fields(EXTENDED)["sharpness"] is float
    assert "rotate" not in file_fields(EXTENDED)  # file=False
    assert coerce_fields({"sharpness": 30}, "f.json", EXTENDED) == {"sharpness": 30.0}
    with pytest.raises(ConfigError, match=r"^f\.json: config\.sharpness must be a positive "
                                          r"number, got -1.0$"):
        coerce_fields({"sharpness": -1}, "f.json", EXTENDED)
    with pytest.raises(ConfigError, match=r"config\.rotate: unknown option; known: variant, "
                                          r"project, .*, weight_layout, sharpness$"):
        coerce_fields({"rotate": False}, "f.json", EXTENDED)
    with pytest.raises(ConfigError, match=r"^--sharpness must be a positive number, got -1$"):
        _Extended(sharpness=-1).validate()
    assert as_flags({"sharpness": 30.0, "rotate": False}, EXTENDED) == [
        "--sharpness", "30.0", "--no-rotate"]


# --- the equivalent command line --------------------------------------------------------------

def test_as_flags_writes_each_kind_of_option():
    assert as_flags({"project": False, "score": Score.dot}) == ["--no-project", "--score", "dot"]
    assert as_flags({"causal": True, "causal_align": CausalAlign.bottom_right, "window": 1,
                     "temperature": 0.5, "dtype": DType.float32}) == [
        "--causal", "--causal-align", "bottom-right", "--window", "1", "--temperature", "0.5",
        "--dtype", "float32"]
    assert as_flags({"causal": False, "project": True}) == []  # the defaults: no flag sets them
    assert as_flags({}) == []


@pytest.mark.parametrize("name", VARIANTS)
def test_a_variants_flags_build_the_config_of_the_variant(name):
    flags = as_flags(VARIANTS[name].fields)
    assert _config_from(flags) == _config_from(["--variant", name])


def test_a_configs_flags_build_the_same_config():
    config = AttentionConfig(
        project=False, score=Score.general, scale=0.25, causal=True,
        causal_align=CausalAlign.bottom_right, window=2, normalize=Normalize.top_k,
        temperature=2.0, top_k=2, heads=1, dropout=0.1, seed=7, weight_layout=Layout.out_in,
        backend=Backend.numpy, device="cpu", dtype=DType.float32)
    assert list(config.changed()) == [
        "project", "score", "scale", "causal", "causal_align", "window", "normalize",
        "temperature", "top_k", "heads", "dropout", "seed", "weight_layout", "backend", "dtype"]
    assert _config_from(as_flags(config.changed())) == config
    # the defaults change nothing (backend: the command line's own default is auto)
    assert AttentionConfig().changed() == {}
    assert _config_from([]) == AttentionConfig(backend=Backend.auto)
