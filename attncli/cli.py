"""The command line: parse flags, load, call the library, pick a renderer. No math here."""

from __future__ import annotations

import contextlib
import enum
import io
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from attncli import __version__
from attncli.config import VARIANTS, Backend, CausalAlign, DType, Layout, Normalize, Score
from attncli.errors import AttncliError, ExitStatus, InputError
from attncli.io.writer import write_output
from attncli.render import Format
from attncli.trace import STEP_NAMES

app = typer.Typer(
    name="attncli",
    help="An attention calculator: every step of an attention mechanism, with real numbers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=True,
)

VariantName = enum.Enum("VariantName", {name: name for name in VARIANTS}, type=str)

INPUT, VARIANT, OUTPUT, DEVICE = "Input", "Variant", "Output", "Device"


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _say(kind: str, message: str) -> None:
    from rich.markup import escape

    style = "bold red" if kind == "error" else "yellow"
    _stderr().print(f"[{style}]attncli: {kind}:[/] {escape(message)}")


@contextlib.contextmanager
def handled(debug: bool):
    """The one place where exceptions become a stderr line and an exit status."""
    try:
        yield
    except typer.Exit:
        raise
    except AttncliError as exc:
        if debug:
            raise
        _say("error", str(exc))
        raise typer.Exit(int(exc.exit_status)) from None
    except KeyboardInterrupt:
        if debug:
            raise
        raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
    except BrokenPipeError:
        # stdout closed early (| head): leave quietly, and keep Python from complaining at exit
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(int(ExitStatus.OK)) from None
    except Exception as exc:  # a bug: say so, traceback behind --debug
        if debug:
            raise
        _say("error", f"internal error, please report it: {type(exc).__name__}: {exc} "
                      "(run again with --debug for the traceback)")
        raise typer.Exit(int(ExitStatus.INTERNAL)) from None


def _steps(steps: str | None) -> list[str] | None:
    if steps is None:
        return None
    names = list(dict.fromkeys(s.strip() for s in steps.split(",") if s.strip()))
    unknown = [s for s in names if s not in STEP_NAMES]
    if unknown or not names:
        raise InputError(f"--steps: unknown step {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(STEP_NAMES)}")
    return names


def _arrays(x, memory, wq, wk, wv, wo, mask, sets: list[str]) -> dict[str, str]:
    arrays = {k: v for k, v in {"x": x, "memory": memory, "W_q": wq, "W_k": wk, "W_v": wv,
                                "W_o": wo, "mask": mask}.items() if v is not None}
    for item in sets:
        key, sep, file = (part.strip() for part in item.partition("="))
        if not sep or not key or not file:
            raise InputError(f"--set {item!r}: expected KEY=FILE, e.g. --set b_q=bq.csv")
        arrays[key] = file
    return arrays


def _version(value: bool) -> None:
    if value:
        typer.echo(f"attncli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """An attention calculator: every step of an attention mechanism, with real numbers."""


@app.command()
def compute(
    file: Annotated[str | None, typer.Argument(
        help="Problem file: JSON (or - for stdin), NPZ, or one CSV/NPY matrix taken as x.",
        show_default=False)] = None,
    sample: Annotated[str | None, typer.Option(help="A bundled sample (see: attncli samples).",
                                               rich_help_panel=INPUT)] = None,
    x: Annotated[str | None, typer.Option("--x", help="Embeddings x (CSV/NPY/JSON).",
                                          rich_help_panel=INPUT)] = None,
    memory: Annotated[str | None, typer.Option(help="Memory for cross-attention (keys, values).",
                                               rich_help_panel=INPUT)] = None,
    wq: Annotated[str | None, typer.Option("--wq", help="W_q file.", rich_help_panel=INPUT)] = None,
    wk: Annotated[str | None, typer.Option("--wk", help="W_k file.", rich_help_panel=INPUT)] = None,
    wv: Annotated[str | None, typer.Option("--wv", help="W_v file.", rich_help_panel=INPUT)] = None,
    wo: Annotated[str | None, typer.Option("--wo", help="W_o file.", rich_help_panel=INPUT)] = None,
    mask: Annotated[str | None, typer.Option(help="Boolean mask file, True = may attend.",
                                             rich_help_panel=INPUT)] = None,
    set_: Annotated[list[str], typer.Option("--set", metavar="KEY=FILE",
                                            help="Any other key from a file, e.g. b_q=bq.csv.",
                                            rich_help_panel=INPUT)] = [],  # noqa: B006
    weight_layout: Annotated[Layout | None, typer.Option(
        help="in_out: Q = x @ W_q (the seeds); out_in: Q = x @ W_q.T (nn.Linear).",
        rich_help_panel=INPUT)] = None,
    variant: Annotated[VariantName | None, typer.Option(
        help="A preset of the options below (see README).", rich_help_panel=VARIANT)] = None,
    score: Annotated[Score | None, typer.Option(help="Score function.",
                                                rich_help_panel=VARIANT)] = None,
    no_scale: Annotated[bool, typer.Option("--no-scale", help="Unscaled dot product (seed 004).",
                                           rich_help_panel=VARIANT)] = False,
    scale: Annotated[float | None, typer.Option(help="Multiply the scores by this factor.",
                                                rich_help_panel=VARIANT)] = None,
    no_project: Annotated[bool, typer.Option("--no-project", help="Ignore W_q/W_k/W_v: Q=K=V=x.",
                                             rich_help_panel=VARIANT)] = False,
    heads: Annotated[int | None, typer.Option(help="Number of heads H.",
                                              rich_help_panel=VARIANT)] = None,
    causal: Annotated[bool, typer.Option("--causal", help="Mask future keys (−∞ before softmax).",
                                         rich_help_panel=VARIANT)] = False,
    causal_align: Annotated[CausalAlign | None, typer.Option(
        help="Causal diagonal when seq_q ≠ seq_k: top-left (torch) or bottom-right (flash-attn).",
        rich_help_panel=VARIANT)] = None,
    window: Annotated[int | None, typer.Option(help="Local attention: keys with |i − j| ≤ W.",
                                               rich_help_panel=VARIANT)] = None,
    normalize: Annotated[Normalize | None, typer.Option(
        help="softmax (soft), hard (one-hot arg-max) or topk.", rich_help_panel=VARIANT)] = None,
    top_k: Annotated[int | None, typer.Option(help="K for --normalize topk.",
                                              rich_help_panel=VARIANT)] = None,
    temperature: Annotated[float | None, typer.Option(help="softmax(scores / T).",
                                                      rich_help_panel=VARIANT)] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout probability on the weights.",
                                                  rich_help_panel=VARIANT)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the dropout mask.",
                                             rich_help_panel=VARIANT)] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.",
                                        rich_help_panel=OUTPUT)] = Format.table,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.",
                                          rich_help_panel=OUTPUT)] = False,
    steps: Annotated[str | None, typer.Option(help=f"Steps to show: {','.join(STEP_NAMES)}.",
                                              rich_help_panel=OUTPUT)] = None,
    query: Annotated[str | None, typer.Option(help="Only this query row (token or index).",
                                              rich_help_panel=OUTPUT)] = None,
    precision: Annotated[int | None, typer.Option(
        min=0, max=17, help="Decimals (tables: 4; JSON: full unless given).",
        rich_help_panel=OUTPUT)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.",
                                                rich_help_panel=OUTPUT)] = None,
    backend: Annotated[Backend | None, typer.Option(help="numpy (default on cpu) or torch.",
                                                    rich_help_panel=DEVICE)] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N, mps or auto.",
                                        rich_help_panel=DEVICE)] = "cpu",
    dtype: Annotated[DType, typer.Option(help="Floating-point precision.",
                                         rich_help_panel=DEVICE)] = DType.float64,
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
) -> None:
    """Run an attention variant and show every step.

    [bold]Examples[/]

      attncli compute --sample hello-shiny-sun --query shiny
      attncli compute --sample three-inputs --steps weights,context --json
      attncli compute problem.json --causal --heads 2 --format markdown -o steps.md
      attncli compute --x x.csv --wq wq.csv --wk wk.csv --wv wv.csv --no-scale
    """
    with handled(debug):
        from attncli.attention.pipeline import attend
        from attncli.config import build
        from attncli.io import load_problem

        wanted = _steps(steps)
        arrays = _arrays(x, memory, wq, wk, wv, wo, mask, set_)
        if file is None and sample is None and "x" not in arrays:
            raise InputError("no input: give a problem FILE, --sample NAME or --x FILE "
                             "(try: attncli compute --sample hello-shiny-sun)")
        problem = load_problem(file, arrays=arrays, sample=sample)
        preset = variant.value if variant is not None else problem.config.get("variant")
        config = build(
            problem.config, variant.value if variant is not None else None, no_scale=no_scale,
            project=False if no_project else None, score=score, scale=scale,
            causal=causal or None, causal_align=causal_align, window=window, normalize=normalize,
            top_k=top_k, temperature=temperature, heads=heads, dropout=dropout, seed=seed,
            weight_layout=weight_layout, backend=backend, device=device, dtype=dtype)
        if preset == "cross" and "memory" not in problem:
            raise InputError("the cross variant needs 'memory' (keys and values come from it): "
                             "add it to the file or give --memory FILE")
        if as_json and fmt not in (Format.table, Format.json):
            raise InputError(f"--json contradicts --format {fmt.value}: give one")
        fmt = Format.json if as_json else fmt
        trace = attend(problem, config, steps=wanted)
        if query is not None:
            trace = trace.at_query(trace.query_index(query))
        trace.warnings += [f"step {name!r} is not computed in this configuration"
                           for name in wanted or [] if name not in trace]
        for warning in trace.warnings:
            _say("warning", warning)
        if fmt is Format.table:
            _print_tables(trace, precision, output)
        else:
            from attncli.render import render

            pretty = output is None and sys.stdout.isatty()
            write_output(render(trace, fmt, precision, pretty=pretty), output)


def _stdout_console():
    """A rich Console for stdout whose broken pipe is a BrokenPipeError, handled as everywhere
    (rich's own handler exits with status 1, which attncli keeps for `check` mismatches)."""
    from rich.console import Console

    def broken_pipe() -> None:
        raise BrokenPipeError

    console = Console(highlight=False)
    console.on_broken_pipe = broken_pipe
    return console


def _print_tables(trace, precision: int | None, output: Path | None) -> None:
    from rich.console import Console

    from attncli.render.table import print_tables

    if output is None or str(output) == "-":
        print_tables(trace, _stdout_console(), 4 if precision is None else precision)
        return
    console = Console(record=True, file=io.StringIO(), width=160, highlight=False,
                      color_system=None)
    print_tables(trace, console, 4 if precision is None else precision)
    write_output(console.export_text(), output)


@app.command()
def samples(
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
) -> None:
    """List the bundled samples (the seed documents' worked examples).

    [bold]Example[/]

      attncli samples
      attncli compute --sample hello-shiny-sun
    """
    with handled(debug):
        from rich.console import Console
        from rich.table import Table

        from attncli import samples as bundled

        table = Table(title="samples: attncli compute --sample NAME", title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("what it is")
        for name in bundled.names():
            table.add_row(name, bundled.about(name))
        Console(highlight=False).print(table)


def main() -> None:
    """Console-script entry point: usage errors, too, become one line and status 2."""
    try:
        status = app(standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        status = ExitStatus.INTERRUPTED
    except Exception as exc:
        # A usage error of the Click inside Typer (vendored in recent Typer, so matched by shape)
        if getattr(exc, "exit_code", None) != 2 or not hasattr(exc, "format_message"):
            raise
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "attncli"
        if exc.format_message():  # empty after no_args_is_help has printed the help
            _say("error", f"{exc.format_message()} (see: {command} --help)")
        status = ExitStatus.BAD_INPUT
    sys.exit(int(status or 0))
