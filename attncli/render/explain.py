"""explain's sections as plain text, Markdown (with LaTeX math) or a LaTeX fragment."""

from __future__ import annotations

import enum

from attncli.explain import LatexNotation, Notation, Section


class ExplainFormat(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    latex = "latex"


def notation(fmt: ExplainFormat, precision: int) -> Notation:
    return Notation(precision) if fmt is ExplainFormat.text else LatexNotation(precision)


def _latex_text(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"),
                          ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, escaped)
    return text


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
        lines.append(rf"\paragraph{{{_latex_text(section.title)}}}")
        if section.equations:
            lines.append(r"\begin{align*}")
            lines += [_latex_equation(equation, " &= ", " = ") + r" \\"
                      for equation in section.equations]
            lines.append(r"\end{align*}")
        lines += [_latex_text(note) + r"\par" for note in section.notes]
        lines.append("")
    return "\n".join(lines)


def _latex_equation(parts: list[str], first: str, rest: str | None = None) -> str:
    head = rf"\text{{{_latex_text(parts[0])}}}"
    tail = parts[1:]
    if not tail:
        return head
    return head + first + (rest or first).join(tail)
