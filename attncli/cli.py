"""The command line: parse flags, load, call the library, pick a renderer. No math here."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from attncli import __version__
from attncli.errors import AttncliError, ExitStatus, InputError
from attncli.io.writer import check_target, write_output
from attncli.options import (
    OUTPUT,
    ProblemOptions,
    device_options,
    output_path,
    problem_options,
)
from attncli.render.registry import (
    CHECK,
    COMPUTE,
    CheckFormat,
    ColorRange,
    ExplainFormat,
    Format,
    Renderer,
    find,
    for_output,
)
from attncli.trace import STEP_NAMES, not_computed

app = typer.Typer(
    name="attncli",
    help="An attention calculator: every step of attention, with real numbers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=True,
)


def _command(function):
    """Register ``function`` as a command whose --help is its docstring, each paragraph of prose
    on one line for rich to wrap at the terminal's width (Typer keeps the line breaks of every
    paragraph but the first, so a docstring's breaks come back at 80 columns as a word alone
    on a line); indented paragraphs, the examples, keep their lines."""
    paragraphs = inspect.cleandoc(function.__doc__).split("\n\n")
    return app.command(help="\n\n".join(
        paragraph if paragraph.startswith(" ") else " ".join(paragraph.split())
        for paragraph in paragraphs))(function)


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _say(kind: str, message: str) -> None:
    from rich.markup import escape

    style = "bold red" if kind == "error" else "yellow"
    # a newline in a token or a file name: still one line
    from attncli.render.layout import printable

    _stderr().print(f"[{style}]attncli: {kind}:[/] {escape(printable(message))}")


@dataclasses.dataclass
class Outcome:
    """The exit status a command has settled before it writes its results: check's verdict,
    kept when stdout's reader stops reading early (| head -1), as a pipefail script needs."""

    status: ExitStatus = ExitStatus.OK


@contextlib.contextmanager
def handled(debug: bool):
    """The one place where exceptions become a stderr line and an exit status. Yields the
    command's :class:`Outcome`; a closed stdout ends the command with its status."""
    outcome = Outcome()
    try:
        yield outcome
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
    except MemoryError:
        if debug:
            raise
        _say("error", "out of memory: this problem needs more memory than is free; ask only "
                      "for the steps you need (--steps context), or write NPZ (-o FILE.npz)")
        raise typer.Exit(int(ExitStatus.BAD_INPUT)) from None
    except BrokenPipeError:
        # stdout closed early (| head, | true): leave quietly, with the status settled so far
        _quiet_stdout()
        raise typer.Exit(int(outcome.status)) from None
    except Exception as exc:  # a bug: say so, traceback behind --debug
        if debug:
            raise
        _say("error", f"internal error, please report it: {type(exc).__name__}: {exc} "
                      "(run again with --debug for the traceback)")
        raise typer.Exit(int(ExitStatus.INTERNAL)) from None


def _quiet_stdout() -> None:
    """stdout's reader has gone: send what is left to /dev/null, so that Python's flush at exit
    does not fail again (and print "Exception ignored … BrokenPipeError")."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _steps(steps: str | None) -> list[str] | None:
    if steps is None:
        return None
    names = list(dict.fromkeys(s.strip() for s in steps.split(",") if s.strip()))
    unknown = [s for s in names if s not in STEP_NAMES]
    if unknown or not names:
        raise InputError(f"--steps: unknown step {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(STEP_NAMES)}")
    return names


def _version(value: bool) -> None:
    if value:
        typer.echo(f"attncli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """An attention calculator: every step of attention, with real numbers."""


# compute's and model's output options, declared once
_FormatOption = Annotated[Format | None, typer.Option(
    "--format", "-f", metavar="FORMAT", help="Output format \\[default: from -o's "
    "extension, else table]: table, json, csv, markdown; npz or npy, binary, for large "
    "steps; torch, a PyTorch script; html, one page with heatmaps and each cell's "
    "arithmetic.", rich_help_panel=OUTPUT, show_default=False)]
_JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.",
                                           rich_help_panel=OUTPUT)]
_StepsOption = Annotated[str | None, typer.Option(
    help=f"Steps to show, comma-separated: {', '.join(STEP_NAMES)}.", rich_help_panel=OUTPUT)]
_QueryOption = Annotated[str | None, typer.Option(help="Only this query row (token or index).",
                                                  rich_help_panel=OUTPUT)]
_PrecisionOption = Annotated[int | None, typer.Option(
    min=0, max=17, help="Decimals (tables, Markdown: 4; JSON, CSV: full unless given).",
    rich_help_panel=OUTPUT)]
_OutputOption = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write to this file.", parser=output_path, metavar="FILE",
    rich_help_panel=OUTPUT)]
_HeatmapOption = Annotated[bool, typer.Option(
    "--heatmap", help="Draw the weights (and, with --steps, any query × key step) as "
    "coloured grids in the terminal, one per head; a large one in blocks that fit.",
    rich_help_panel=OUTPUT)]
_PlotOption = Annotated[Path | None, typer.Option(
    "--plot", help="Save the heatmaps as an image: PNG, SVG or PDF by the extension; "
    "without -o, --format or --json the image is the only output (needs pip install "
    "'attncli\\[plot]').", parser=output_path, metavar="FILE", rich_help_panel=OUTPUT,
    show_default=False)]
_ColorRangeOption = Annotated[ColorRange | None, typer.Option(
    "--color-range", help="The colours of --heatmap and --plot: unit (default), the "
    "step's fixed scale, 0 … 1 for weights; auto, each grid's min … max; log, each "
    "grid's positive values on a log scale, for small weights.", rich_help_panel=OUTPUT,
    show_default=False)]


@_command
@problem_options
def compute(
    file: Annotated[str | None, typer.Argument(
        help="Problem file: JSON (or - for stdin), NPZ, or one CSV/NPY matrix taken as x.",
        show_default=False)] = None,
    fmt: _FormatOption = None,
    as_json: _JsonOption = False,
    steps: _StepsOption = None,
    query: _QueryOption = None,
    precision: _PrecisionOption = None,
    output: _OutputOption = None,
    heatmap: _HeatmapOption = False,
    plot: _PlotOption = None,
    color_range: _ColorRangeOption = None,
    opts: ProblemOptions | None = None,
) -> None:
    """Run an attention variant and show every step.

    Without an n×n step in --steps (scores … weights), queries are processed
    in blocks, so memory grows with n·d: thousands of tokens fit. --heatmap
    and --plot draw a problem of any size.

    [bold]Examples[/]

      attncli compute --sample hello-shiny-sun --query shiny
      attncli compute --sample three-inputs --steps weights,context --json
      attncli compute problem.json --causal --heads 2 -o steps.md
      attncli compute --x x.csv --wq wq.csv --wk wk.csv --wv wv.csv --no-scale
      attncli compute layer.npz --heads 8 --steps output -o output.npz
      attncli compute big.npz --heatmap --color-range log
    """
    with handled(opts.debug):
        from attncli.attention.pipeline import attend
        from attncli.render.output import Request

        asked = _Asked.settle(_steps(steps), fmt, as_json, output, heatmap, plot, color_range)
        problem, config = opts.load(file)
        monitor = asked.monitor()
        asked.check_files()  # before a long run, not after it
        try:
            trace = attend(problem, config, steps=asked.run_steps, monitor=monitor, query=query)
            _all_computed(trace, asked.required, problem, config)
            for warning in trace.warnings:
                _say("warning", warning)
            asked.write(trace, Request(output, precision, problem, config, asked.steps))
        finally:
            monitor.close()


@dataclasses.dataclass(frozen=True)
class _Asked:
    """What compute is asked to write, settled from its output options before the run."""

    renderer: Renderer  # --format's; --json's; else -o's extension's
    steps: list[str] | None  # --steps, None for the default ones
    run_steps: list[str] | None  # the steps the run computes: a drawing alone, those it draws
    heatmap: bool
    plot: Path | None
    color_range: ColorRange | None
    drawing_only: bool  # the drawings are the whole output
    output: Path | None

    @classmethod
    def settle(cls, steps: list[str] | None, fmt: Format | None, as_json: bool,
               output: Path | None, heatmap: bool, plot: Path | None,
               color_range: ColorRange | None) -> _Asked:
        """The output options taken together, before the problem is loaded.

        Raises: InputError for options that contradict each other, steps that cannot be
        drawn or written in the format, an -o extension that names no format.
        """
        if as_json and fmt not in (None, Format.json):
            raise InputError(f"--json contradicts --format {fmt.value}: give one")
        # a drawing alone (--heatmap without --format; --plot without -o, --format, --json)
        # runs only the steps it draws, of any size: big ones memory-mapped, as for NPZ, never
        # refused as text; --heatmap --format table prints the tables after the grids
        drawing_only = ((heatmap and fmt is None and not as_json)
                        or (plot is not None and not as_json and fmt is None and output is None))
        renderer = (find(COMPUTE, Format.json) if as_json else
                    find(COMPUTE, fmt) if fmt is not None else for_output(output))
        drawn = steps
        if heatmap or plot is not None:  # something to draw, said before the run
            from attncli.render.drawing import check_color_range, drawable

            drawn = drawable(steps, "--heatmap" if heatmap else "--plot")
            check_color_range(drawn, color_range)
        elif color_range is not None:
            raise InputError("--color-range sets the colours of --heatmap and --plot: give "
                             "one of them")
        if heatmap and renderer.name != Format.table:
            raise InputError(f"--heatmap draws text grids: it does not go with --format "
                             f"{renderer.name}{' (from -o ' + str(output) + ')' if output else ''}"
                             "; use --plot FILE for an image")
        renderer.check(steps)
        run_steps = drawn if drawing_only else steps
        if drawing_only and "weights" in drawn:  # said under the weights with sinks
            run_steps = [*drawn, "sink_weights"]
        return cls(renderer, steps, run_steps, heatmap, plot, color_range, drawing_only, output)

    @property
    def required(self) -> list[str]:
        """The steps the run must have computed: those --steps names (for a drawing alone,
        those of them it draws); none without --steps."""
        if not self.steps:
            return []
        return [s for s in self.run_steps if s != "sink_weights" or s in self.steps]

    def check_files(self) -> None:
        """Raises: InputError when -o or --plot cannot be written (:func:`check_target`,
        :func:`attncli.render.plot.check_plot`)."""
        check_target(self.output)
        if self.plot is not None:
            from attncli.render.plot import check_plot

            check_plot(self.plot)

    def monitor(self):
        """The run's progress on stderr, with big steps placed as the output needs them."""
        from attncli.progress import CliMonitor

        piped = self.output is None and not sys.stdout.isatty()
        return CliMonitor(_say, f"--format {self.renderer.name}",
                          self.renderer.binary or self.drawing_only,
                          near=self.output or self.plot, show=sys.stderr.isatty() and not piped)

    def write(self, trace, request) -> None:
        """The image (--plot), then the grids (--heatmap, with the tables after them when
        --format table is given) or the format's output."""
        if self.plot is not None:
            from attncli.render.plot import write_plot

            write_plot(trace, self.plot, steps=self.steps, color_range=self.color_range)
        if self.heatmap:
            from attncli.render.heatmap import write_heatmaps

            write_heatmaps(trace, request, self.steps, self.color_range,
                           tables=not self.drawing_only)
        elif not self.drawing_only:  # --plot alone: the image is the output
            self.renderer.load()(trace, request)


def _all_computed(trace, names: list[str], problem, config) -> None:
    """Raises: InputError for a step of --steps (``names``) that the run did not compute."""
    for name in names:
        if name not in trace:
            raise InputError(f"--steps {name}: not computed in this run: "
                             f"{not_computed(name, problem, config)}")


def _stdout_console():
    """A rich Console for stdout (:func:`attncli.render.output.stdout_console`)."""
    from attncli.render.output import stdout_console

    return stdout_console()


@_command
@problem_options
def check(
    files: Annotated[list[str], typer.Argument(
        help="PROBLEM then ANSWERS files (JSON, - for stdin, once); with --sample or --x, "
             "only ANSWERS.", show_default=False)],
    fmt: Annotated[CheckFormat | None, typer.Option(
        "--format", "-f", help="table; json or csv (one line per answers file, for graders); "
        "html, a page to send a student \\[default: html for -o FILE.html, else table].",
        rich_help_panel=OUTPUT, show_default=False)] = None,
    query: Annotated[str | None, typer.Option(
        help="The query row of 1-D answers (or a \"query\" key in the answers).",
        rich_help_panel=OUTPUT)] = None,
    tolerance: Annotated[str, typer.Option(
        help="decimals: each entry the value rounded to the decimals its step is written "
             "with; decimals:N, sigfigs:N, rel:R or abs:A as PrairieLearn's matrix input "
             "compares.", rich_help_panel=OUTPUT)] = "decimals",
    rtol: Annotated[float | None, typer.Option(
        help="Same as --tolerance rel:R; with --atol, |given − exact| ≤ A + R·|exact|.",
        rich_help_panel=OUTPUT, show_default=False)] = None,
    atol: Annotated[float | None, typer.Option(
        help="Same as --tolerance abs:A.", rich_help_panel=OUTPUT, show_default=False)] = None,
    precision: Annotated[int, typer.Option(min=0, max=17, help="Decimals of the exact values "
                                           "shown in the tables.",
                                           rich_help_panel=OUTPUT)] = 4,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.",
                                                parser=output_path, metavar="FILE",
                                                rich_help_panel=OUTPUT)] = None,
    opts: ProblemOptions | None = None,
) -> None:
    """Grade answers: right, within rounding, carried forward or wrong.

    Each step gets a score, the fraction of its entries that are not wrong, and a wrong entry
    the mistake behind it. ANSWERS is a JSON object whose keys are step names (queries, keys,
    values, scores, scaled_scores, masked_scores, weights, dropped_weights, head_context,
    context, output), each an array of the step's shape, or of one query row with "query": a
    token or an index (or --query). −∞, a masked score, is written null, "-inf", "-Infinity" or
    "−∞"; compute's --format json output is answers too. Each step is compared with the exact
    values and with what follows from the answers' own earlier steps, as a grader does.

    Exit status: 0 no entry wrong (each right, within rounding or carried forward from an
    earlier wrong step), 1 an entry is wrong, 2 bad input, even when stdout closes early
    (| head).

    [bold]Examples[/]

      attncli check --sample hello-shiny-sun answers.json
      attncli check problem.json answers/*.json --format csv
      attncli check problem.json answers.json --tolerance sigfigs:3
    """
    with handled(opts.debug) as outcome:
        from attncli.attention.pipeline import attend
        from attncli.check import Checker
        from attncli.io import stdin_once
        from attncli.render.output import Request
        from attncli.tolerance import Tolerance

        rule = Tolerance.parse(None if tolerance == "decimals" else tolerance, rtol, atol)
        given_problem = opts.sample is not None or opts.x is not None
        problem_file = None if given_problem else (files[0] if files else None)
        answer_files = files if given_problem else files[1:]
        stdin_once([("PROBLEM", problem_file), *(("ANSWERS", f) for f in answer_files),
                    *((f"the {k} file", f) for k, f in opts.arrays().items())])
        if not answer_files:
            raise InputError("no answers: give PROBLEM and ANSWERS files (or --sample NAME "
                             "and ANSWERS)")
        problem, config = opts.load(problem_file)
        trace = attend(problem, config, monitor=_whole("attncli check"))
        for warning in trace.warnings:
            _say("warning", warning)
        checker = Checker(problem, config, trace, rule)
        given = (f"--sample {opts.sample}" if opts.sample is not None else f"--x {opts.x}"
                 ) if given_problem else None
        reports = [_check_one(checker, file, query, batch=len(answer_files) > 1, given=given)
                   for file in answer_files]
        outcome.status = (ExitStatus.BAD_INPUT if any(r.error for r in reports) else
                          ExitStatus.OK if all(r.ok for r in reports) else ExitStatus.MISMATCH)
        fmt = fmt or (CheckFormat.html if _a_page(output) else CheckFormat.table)
        find(CHECK, fmt).load()(trace, reports, rule, Request(output, precision))
        raise typer.Exit(int(outcome.status))


def _a_page(output: Path | None) -> bool:
    """An -o file named as a web page (.html, .htm): check's and explain's format then."""
    return output is not None and output.suffix.lower() in (".html", ".htm")


def _whole(command: str):
    """check and explain read every step of the whole run: refuse n×n steps past the text
    formats' limit before they are allocated, as compute does."""
    from attncli.progress import CliMonitor

    return CliMonitor(_say, command, binary=False, show=False, near=None)


def _check_one(checker, file: str, query: str | None, batch: bool, given: str | None = None):
    """One answers file's report; in a batch, bad input becomes that file's error row.
    ``given``: the option that gave the problem (--sample NAME, --x FILE), or None; a problem
    file among the answers then stops the whole command (it was misread, not one file)."""
    from attncli.check import Answers, Report
    from attncli.io.json_reader import read_json_value

    try:
        raw = read_json_value(file, decimals=True)
    except AttncliError as exc:
        if not batch:
            raise
        return Report(file, query, [], error=str(exc))
    if given is not None:
        _not_a_problem(raw, file, given)
    try:
        return checker.check(Answers.from_mapping(raw, file, query))
    except AttncliError as exc:
        if not batch:
            raise
        return Report(file, query, [], error=str(exc))


def _not_a_problem(raw, file: str, given: str) -> None:
    """With --sample or --x every FILE is answers: one that gives a problem's inputs (x, W_q,
    mask …) is a PROBLEM file given with them. Raises: InputError saying where it goes."""
    from attncli.problem import ARRAY_KEYS, MASK_KEYS

    keys = [k for k in raw if k in ARRAY_KEYS or k in MASK_KEYS] if isinstance(raw, dict) else []
    if keys:
        raise InputError(f"{file}: gives {', '.join(keys)}, a problem's inputs, not answers: "
                         f"with {given} every FILE is ANSWERS; a PROBLEM file goes with no "
                         f"{given.split()[0]} (attncli check PROBLEM ANSWERS)")


@_command
@problem_options
def explain(
    file: Annotated[str | None, typer.Argument(
        help="Problem file (as for compute); or --sample NAME.", show_default=False)] = None,
    query: Annotated[str, typer.Option(help="The query row: a token or an index.",
                                       rich_help_panel=OUTPUT)] = ...,
    key: Annotated[str | None, typer.Option(help="Only the score with this key.",
                                            rich_help_panel=OUTPUT)] = None,
    batch: Annotated[int, typer.Option(help="The batch item, when x is 3-D.",
                                       rich_help_panel=OUTPUT)] = 0,
    fmt: Annotated[ExplainFormat | None, typer.Option(
        "--format", "-f", metavar="FORMAT", help="text; markdown (with LaTeX math) or "
        "latex, to paste into a write-up; html, a page \\[default: html for -o FILE.html, "
        "else text].", rich_help_panel=OUTPUT, show_default=False)] = None,
    precision: Annotated[int, typer.Option(min=0, max=17, help="Decimals of the results.",
                                           rich_help_panel=OUTPUT)] = 4,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.",
                                                parser=output_path, metavar="FILE",
                                                rich_help_panel=OUTPUT)] = None,
    opts: ProblemOptions | None = None,
) -> None:
    """Write out one query row's arithmetic, as a tutorial does by hand.

    The text format fits the terminal's width (COLUMNS; 80 when stdout is not a terminal): a
    long equation goes on at its "=" or "+", never inside a number.

    [bold]Examples[/]

      attncli explain --sample hello-shiny-sun --query shiny
      attncli explain --sample three-inputs --query "Input 1" --format latex
      attncli explain --sample multihead-einsum --query name --key is
    """
    with handled(opts.debug):
        from attncli.attention.pipeline import attend
        from attncli.explain import explain as explain_row
        from attncli.render.explain import render_explain

        problem, config = opts.load(file)
        trace = attend(problem, config, monitor=_whole("attncli explain"))
        for warning in trace.warnings:
            _say("warning", warning)
        sections = explain_row(trace, query, key, batch)
        # the terminal's width: COLUMNS, else the terminal's own, else 80 (a pipe, a file)
        width = shutil.get_terminal_size((80, 24)).columns
        fmt = fmt or (ExplainFormat.html if _a_page(output) else ExplainFormat.text)
        write_output(render_explain(sections, fmt, precision, width=width), output)


@_command
@device_options
def model(
    path: Annotated[str, typer.Argument(
        help="A local Hugging Face model directory (config.json, *.safetensors, tokenizer "
             "files) or a .gguf file.", show_default=False)],
    text: Annotated[str | None, typer.Option(
        help="The sentence, tokenized by the model's tokenizer.", rich_help_panel="Model",
        show_default=False)] = None,
    input_ids: Annotated[str | None, typer.Option(
        help="The tokens as ids instead: 1,2,3.", rich_help_panel="Model",
        show_default=False)] = None,
    layer: Annotated[str | None, typer.Option(
        help="The layer: a number (-1 the last), a range 0-5, or all.",
        rich_help_panel="Model", show_default=False)] = None,
    head: Annotated[int | None, typer.Option(
        help="Keep only this head.", rich_help_panel="Model", show_default=False)] = None,
    info: Annotated[bool, typer.Option(
        "--info", help="List the model's attention: layers, heads, KV heads, positions, "
        "sliding windows …; loads no weights.", rich_help_panel="Model")] = False,
    save_problem: Annotated[Path | None, typer.Option(
        "--save-problem", help="Write the layer's problem (x, weights, options) to this .npz: "
        "attncli compute FILE.npz redoes it without transformers.", parser=output_path,
        metavar="FILE.npz", rich_help_panel="Model", show_default=False)] = None,
    device_map: Annotated[str | None, typer.Option(
        help="transformers' device_map for the model (auto: accelerate places or offloads "
             "the layers over the GPUs and CPU memory there are).", rich_help_panel="Model",
        show_default=False)] = None,
    fmt: _FormatOption = None,
    as_json: _JsonOption = False,
    steps: _StepsOption = None,
    query: _QueryOption = None,
    precision: _PrecisionOption = None,
    output: _OutputOption = None,
    heatmap: _HeatmapOption = False,
    plot: _PlotOption = None,
    color_range: _ColorRangeOption = None,
    opts: ProblemOptions | None = None,
) -> None:
    """Every step of a real model's attention, for your own text, checked against the model.

    transformers loads the model (never downloading: PATH is on this machine) and runs it up
    to the layer; attncli recomputes that layer's attention with its own stages and says how
    closely it agrees with the model's own (exit status 1 when it does not). context is the
    input of the layer's output projection, output its result (before any norm or residual).
    Needs pip install "attncli\\[model]" torch==2.13.0.

    [bold]Examples[/]

      attncli model ./all-MiniLM-L6-v2 --text "The cat sat on the mat" --layer 0 --query cat
      attncli model SmolLM2-135M-Instruct.Q4_1.gguf --text "Hello there" --layer 0-2 --json
      attncli model ./all-MiniLM-L6-v2 --info
    """
    with handled(opts.debug) as outcome:
        from attncli.render.output import Request

        if info:
            given = [flag for flag, value in (
                ("--text", text), ("--input-ids", input_ids), ("--layer", layer),
                ("--head", head), ("--save-problem", save_problem), ("--steps", steps),
                ("--query", query), ("--heatmap", heatmap or None), ("--plot", plot),
                ("--device-map", device_map)) if value is not None]
            _model_info(path, fmt, as_json, output, given)
            return
        if save_problem is not None and output is not None and \
                Path(save_problem).resolve() == Path(output).resolve():
            raise InputError(f"--save-problem and -o are the same file, {output}: give two")
        if layer is None:
            raise InputError("give --layer N (a number, a range such as 0-5, or all), or "
                             "--info")
        asked = _Asked.settle(_steps(steps), fmt, as_json, output, heatmap, plot, color_range)
        asked.check_files()
        if save_problem is not None:
            check_target(save_problem)
        from attncli.models import run_model

        monitor = asked.monitor()
        try:
            runs = run_model(path, layer, text=text, input_ids=input_ids,
                             steps=asked.run_steps, query=query, device_map=device_map,
                             options={k: v for k, v in opts.config_fields().items()
                                      if k in ("backend", "device", "dtype")},
                             monitor=monitor, say=lambda line: _say("note", line),
                             check=_model_checks(asked, head, save_problem))
        finally:
            monitor.close()
        from attncli.render.layers import layer_traces, write_layers

        traces = layer_traces(runs, head)
        for run, trace in zip(runs, traces, strict=True):
            _all_computed(trace, asked.required, run.problem, run.config)
            for warning in trace.warnings:
                _say("warning", f"layer {run.index}: {warning}")
            if not run.agreement.ok:
                _say("warning", f"layer {run.index}: {run.agreement.line()}")
                outcome.status = ExitStatus.MISMATCH
        if len(traces) == 1:
            asked.write(traces[0], Request(output, precision, runs[0].problem, runs[0].config,
                                           asked.steps))
        else:
            write_layers(traces, asked.renderer.name, Request(output, precision),
                         heatmap=asked.heatmap,
                         steps=asked.steps, color_range=asked.color_range,
                         tables=not asked.drawing_only)
        if save_problem is not None:  # after the output: a format that refuses writes neither
            from attncli.models.saving import save_problem as save

            save(runs, save_problem)
        raise typer.Exit(int(outcome.status))


def _model_checks(asked: _Asked, head: int | None, save_problem: Path | None):
    """What model's flags need of the chosen layers, checked before the weights load: one
    layer for a one-layer format, --plot or --save-problem; a head each layer has."""

    def check(model, layers: list[int]) -> None:
        if len(layers) > 1:
            from attncli.render.layers import check_grouped

            check_grouped(asked.renderer.name, asked.plot)
        if save_problem is not None:
            from attncli.models.saving import check_saving

            check_saving(save_problem, layers)
        if head is not None:
            from attncli.models import check_head

            check_head(model, layers, head)

    return check


def _model_info(path: str, fmt: Format | None, as_json: bool, output: Path | None,
                given: list[str]) -> None:
    """attncli model PATH --info: a table, or one JSON document (--json, --format json, or
    -o FILE.json).

    Raises: InputError for another format.
    """
    from attncli.models.info import describe
    from attncli.models.loading import open_model

    if as_json and fmt not in (None, Format.json):
        raise InputError(f"--json contradicts --format {fmt.value}: give one")
    chosen = "json" if as_json else fmt.value if fmt is not None else for_output(output).name
    if chosen not in ("json", "table"):
        raise InputError(f"--info writes a table or JSON (--json), not --format {chosen}"
                         f"{' (from -o ' + str(output) + ')' if fmt is None else ''}")
    if given:  # the options of a run: silently ignored, a file asked for would be missing
        raise InputError(f"--info lists the model's attention from its config alone: it does "
                         f"not go with {', '.join(given)}")
    facts = describe(open_model(path))
    if chosen == "json":
        import orjson

        write_output(orjson.dumps(facts, option=orjson.OPT_INDENT_2).decode() + "\n", output)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{facts['model']}: its attention", title_justify="left",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in facts.items():
        if key == "model":
            continue
        if isinstance(value, dict):
            value = "; ".join(f"{kind}: layers {where}" for kind, where in value.items())
        table.add_row(key, Text("none" if value is None else "no" if value is False else
                                "yes" if value is True else str(value)))
    from attncli.render.output import Request

    Request(output).console(lambda console: console.print(table))


@_command
def samples(
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
) -> None:
    """List the bundled samples: the tutorials' worked examples.

    Each holds one example's tokens, x and weights; any command runs it with --sample NAME.

    [bold]Examples[/]

      attncli samples
      attncli compute --sample hello-shiny-sun
    """
    with handled(debug):
        from rich.table import Table

        from attncli import samples as bundled

        table = Table(title="samples: attncli compute --sample NAME", title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("what it is")
        for name in bundled.names():
            table.add_row(name, bundled.about(name))
        _stdout_console().print(table)


@_command
def variants(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of a "
                                          "table.")] = False,
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
) -> None:
    """List the attention variants: formulas, options and sources.

    Each variant's formula, the options it sets and the tutorial or paper it comes from. A
    variant is only a preset: options given with it win. Gemma's query_pre_attn_scalar s is
    --scale s**-0.5; Hugging Face's sliding_window = S is --causal --window S−1.

    [bold]Examples[/]

      attncli variants
      attncli compute --sample three-inputs --variant causal
      attncli variants --json | jq '.[] | select(.name == "local")'
    """
    with handled(debug):
        from attncli.config import FAMILY_NOTES, VARIANTS

        rows = [{"name": v.name, "formula": v.formula, "options": _as_flags(v.fields),
                 "source": v.source} for v in VARIANTS.values()]
        if as_json:
            import orjson

            write_output(orjson.dumps(rows).decode() + "\n", None)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title="variants: attncli compute … --variant NAME", title_justify="left",
                      caption=" ".join(FAMILY_NOTES), caption_justify="left")
        # the source under the formula, in the widest column: a title's long words (at 80 or
        # 60 columns) wrap whole instead of being cut with "…" in a narrow column of their own
        table.add_column("name", style="bold")
        # a reference file's path longer than the column is folded, never cut with "…"
        table.add_column("formula, and where it comes from", overflow="fold")
        table.add_column("options it sets", style="cyan")
        for row in rows:
            table.add_row(Text(row["name"]), Text.assemble(row["formula"], "\n", (
                f"from {row['source']}", "dim")), Text(row["options"]))  # text, not markup
        _stdout_console().print(table)


def _as_flags(fields: dict) -> str:
    """A variant's fields as the command-line options that set them, "(none)" for none."""
    import shlex

    from attncli.config import as_flags

    return shlex.join(as_flags(fields)) or "(none)"


from attncli import cli_teach  # noqa: E402, F401  (registers exercise and grade on app)


def main() -> None:
    """Console-script entry point: usage errors, too, become one line and status 2."""
    try:
        status = app(standalone_mode=False)
    except SystemExit as exc:
        # rich (--help, tables) and Click answer a closed stdout with status 1, which attncli
        # keeps for a check mismatch; a reader that stops reading (| head, | true) is no error
        if not isinstance(exc.__context__, BrokenPipeError):
            raise
        _quiet_stdout()
        # a bare `attncli` prints the help as a usage error (status 2), pipe or not
        status = ExitStatus.OK if sys.argv[1:] else ExitStatus.BAD_INPUT
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
