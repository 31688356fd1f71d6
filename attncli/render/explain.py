"""explain's sections as plain text, Markdown (with LaTeX math) or a LaTeX fragment."""

from __future__ import annotations

from attncli.explain import LatexNotation, Notation, Section, latex_escape
from attncli.render import ExplainFormat


def notation(fmt: ExplainFormat, precision: int) -> Notation:
    return Notation(precision) if fmt is ExplainFormat.text else LatexNotation(precision)


def render_explain(sections: list[Section], fmt: ExplainFormat) -> str:
    if fmt is ExplainFormat.text:
        lines = []
        for section in sections:
            lines += [section.title, "-" * len(section.title)]
            lines += ["  " + " = ".join(equation) for equation in section.equations]
            lines += [f"  ({note})" for note in section.notes]
            lines.append("")
        return "\n".join(lines)
    if fmt is ExplainFormat.markdown:
        lines = []
        for section in sections:
            lines += [f"### {section.title}", ""]
            lines += [f"- ${_latex_equation(equation, ' = ')}$" for equation in section.equations]
            lines += [f"- {note}" for note in section.notes]
            lines.append("")
        return "\n".join(lines)
    lines = []
    for section in sections:
        lines.append(rf"\paragraph{{{latex_escape(section.title)}}}")
        if section.equations:
            lines.append(r"\begin{align*}")
            lines.append(" \\\\\n".join(_latex_equation(equation, " &= ", " = ")
                                         for equation in section.equations))
            lines.append(r"\end{align*}")
        lines += [latex_escape(note) + r"\par" for note in section.notes]
        lines.append("")
    return "\n".join(lines)


def _latex_equation(parts: list[str], first: str, rest: str | None = None) -> str:
    head = rf"\text{{{latex_escape(parts[0])}}}"
    tail = parts[1:]
    if not tail:
        return head
    return head + first + (rest or first).join(tail)
