"""explain's sections as plain text, Markdown (with LaTeX math) or a LaTeX fragment."""

from __future__ import annotations

import textwrap

from attncli.explain import LatexNotation, Notation, Section, latex_escape
from attncli.render import ExplainFormat


def notation(fmt: ExplainFormat, precision: int) -> Notation:
    return Notation(precision) if fmt is ExplainFormat.text else LatexNotation(precision)


def render_explain(sections: list[Section], fmt: ExplainFormat, width: int | None = None) -> str:
    """The sections as text, Markdown or LaTeX. ``width``: the text format's lines wrapped to
    that many columns (see :func:`wrap_equation`); None keeps each equation on one line."""
    if fmt is ExplainFormat.text:
        lines = []
        for section in sections:
            lines += [section.title, "-" * len(section.title)]
            for equation in section.equations:
                lines += (wrap_equation(equation, width) if width else
                          ["  " + " = ".join(equation)])
            for note in section.notes:
                lines += (textwrap.wrap(f"({note})", width, initial_indent="  ",
                                        subsequent_indent="   ", break_long_words=False,
                                        break_on_hyphens=False) if width else [f"  ({note})"])
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


def wrap_equation(parts: list[str], width: int) -> list[str]:
    """One equation ``parts[0] = parts[1] = …`` as lines of at most ``width`` columns where
    it can be: a line goes on at an "=" or at a "+" between terms, indented under the first
    "="; a term too long for a line breaks at a space (after a vector's comma), never inside
    a number, whose digits hold no space, and goes on under the term. At width 30,
    "  context = [0.08, 0.05] + [0.22, 0.14]" is "  context = [0.08, 0.05]" and
    "          + [0.22, 0.14]".
    """
    indent = " " * (len(parts[0]) + 3 if len(parts[0]) + 3 <= width // 3 else 4)
    pieces = [parts[0]]
    for part in parts[1:]:
        terms = part.split(" + ")
        pieces += ["= " + terms[0], *("+ " + term for term in terms[1:])]
    lines = ["  " + pieces[0]]
    for piece in pieces[1:]:
        words = [piece] if len(indent) + len(piece) <= width else _words(piece)
        for i, word in enumerate(words):
            if len(lines[-1]) + 1 + len(word) <= width:
                lines[-1] += " " + word
            else:  # a term's own next line is indented under the term, past its "=" or "+"
                lines.append(indent + ("  " if i else "") + word)
    return lines


def _words(piece: str) -> list[str]:
    """A term cut at its spaces, each operator kept with the number after it ("× 0.34")."""
    words: list[str] = []
    for word in piece.split(" "):
        if words and words[-1] in ("=", "+", "×", "/", "−", "·"):
            words[-1] += " " + word
        else:
            words.append(word)
    return words


def _latex_equation(parts: list[str], first: str, rest: str | None = None) -> str:
    head = rf"\text{{{latex_escape(parts[0])}}}"
    tail = parts[1:]
    if not tail:
        return head
    return head + first + (rest or first).join(tail)
