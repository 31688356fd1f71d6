"""attncli model's output: one layer as compute writes a run, several grouped per layer."""

from __future__ import annotations

import dataclasses

from attncli.errors import InputError
from attncli.render.output import Request
from attncli.trace import Trace

#: The formats that group several layers in one output.
GROUPED = ("table", "json", "csv", "markdown")


def layer_traces(runs, head: int | None) -> list[Trace]:
    """Each run's trace with where it came from: JSON's "model", and the agreement line
    under the tables (its conventions); narrowed to ``head`` when given.

    Raises: InputError for a head the layer does not have (:meth:`Trace.at_head`).
    """
    traces = []
    for run in runs:
        trace = run.trace
        conventions = {"model": f"{run.about['name']} ({run.about['family']}), layer "
                                f"{run.index}: {run.agreement.line()}", **trace.conventions}
        if head is not None:
            trace = trace.at_head(head)
            heads, kv = trace.run.heads or 1, trace.run.kv_heads or trace.run.heads or 1
            conventions["head"] = (f"head {head} of {heads} (--head); the other heads are "
                                   "left out" + (
                f"; its keys and values are KV head {head // (heads // kv)} of {kv}"
                if kv != heads else "") + "; context and output are the whole layer's, all "
                "heads")
        traces.append(dataclasses.replace(trace, conventions=conventions,
                                          model=run.described()))
    return traces


def check_grouped(name: str, plot) -> None:
    """Before the run: several layers go in one output only in :data:`GROUPED` formats.

    Raises: InputError for --plot or a binary/script format with several layers.
    """
    if name not in GROUPED:
        raise InputError(f"--format {name} holds one layer's steps: give one --layer (or "
                         f"use {', '.join(GROUPED)})")
    if plot is not None:
        raise InputError("--plot draws one layer: give one --layer")


def write_layers(traces: list[Trace], name: str, request: Request, heatmap: bool = False,
                 steps: list[str] | None = None, color_range=None,
                 tables: bool = True) -> None:
    """Several layers' traces in one output of format ``name``: JSON {"model", "layers":
    {"0": compute's document, …}}, a heading per layer in tables and Markdown, a ``layer``
    column first in CSV."""
    if name == "json":
        import orjson

        document = {"model": {k: v for k, v in traces[0].model.items()
                              if k not in ("layer", "agreement")},
                    "layers": {str(t.model["layer"]): t.to_dict(request.precision, arrays=True)
                               for t in traces}}
        option = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if request.pretty else 0)
        request.text(orjson.dumps(document, option=option).decode() + "\n")
    elif name == "markdown":
        from attncli.render.markdown import render_markdown

        request.text("\n".join(f"## layer {t.model['layer']}\n\n"
                               + render_markdown(t, request.digits(4)) for t in traces))
    elif name == "csv":
        from attncli.render.csv import render_csv

        parts = []
        for i, trace in enumerate(traces):
            lines = render_csv(trace, request.precision).splitlines(keepends=True)
            parts.extend((["layer," + lines[0]] if i == 0 else [])
                         + [f"{trace.model['layer']},{line}" for line in lines[1:]])
        request.text("".join(parts))
    else:
        def draw(console) -> None:
            from attncli.render.heatmap import print_heatmaps
            from attncli.render.table import print_tables

            for trace in traces:
                console.rule(f"layer {trace.model['layer']}", align="left")
                if heatmap:
                    print_heatmaps(trace, console, steps, color_range)
                if tables:
                    print_tables(trace, console, request.digits(4))
        request.console(draw)
