"""Markdown: a heading per step (its formula), a pipe table per batch/head slice."""

from __future__ import annotations

from attncli.render.layout import number, slices
from attncli.render.output import Request
from attncli.trace import Trace


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(trace: Trace, precision: int) -> str:
    lines: list[str] = []
    for step in trace:
        lines.append(f"### {step.name}: `{step.formula}`")
        lines.append("")
        for part in slices(trace, step):
            if part.where:
                lines.append(f"*{part.where}*")
                lines.append("")
            header = [f"{part.row_axis} \\\\ {part.col_axis}", *map(_cell, part.cols)]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" + "---:|" * len(part.cols))
            for label, row in zip(part.rows, part.matrix, strict=True):
                lines.append("| " + " | ".join([_cell(label), *(number(v, precision)
                                                               for v in row)]) + " |")
            lines.append("")
    if trace.conventions:
        lines.append("### conventions")
        lines.append("")
        lines.extend(f"- **{k}**: {v}" for k, v in trace.conventions.items())
        lines.append("")
    return "\n".join(lines)


def write_markdown(trace: Trace, request: Request) -> None:
    """compute's --format markdown, with 4 decimals unless --precision is given."""
    request.text(render_markdown(trace, request.digits(4)))
