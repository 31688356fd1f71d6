"""explain's sections (:mod:`attncli.explain`'s terms) as plain text, Markdown (with LaTeX
math) or a LaTeX fragment. Only the writing happens here: every number arrives computed."""

from __future__ import annotations

import textwrap

import numpy as np

from attncli.explain import (
    Annotated,
    Concat,
    Difference,
    Equation,
    Exp,
    Fraction,
    Group,
    Kind,
    Number,
    Op,
    Product,
    Root,
    Row,
    Section,
    Sum,
    Symbol,
    Tanh,
    Term,
    Vector,
    Words,
)
from attncli.render.registry import ExplainFormat


def latex_escape(text: str) -> str:
    """Text for LaTeX's text mode: its special characters escaped, the arithmetic symbols
    the sections use written as math."""
    out = []
    for char in text:
        out.append({"\\": r"\textbackslash{}", "_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#",
                    "$": r"\$", "{": r"\{", "}": r"\}", "^": r"\^{}", "~": r"\~{}",
                    "×": r"$\times$", "−": "-", "∞": r"$\infty$", "√": r"$\surd$",
                    "…": r"\ldots{}", "·": r"$\cdot$", "ᵀ": r"$^\top$"}.get(char, char))
    return "".join(out)


class Notation:
    """How terms, numbers and symbols are written as plain text; :class:`LatexNotation`
    writes them for LaTeX (the math of Markdown and of a LaTeX fragment).

    Numbers: a given one (an input) or an option's value as it was given, in its shortest
    decimal form; a result with ``precision`` fixed decimals, whole numbers without any (as
    seed 004 writes its keys). A negative given or result is bracketed as a factor of a
    × product: 0.53 × (−0.2).
    """

    times, plus, minus, dot, matmul = " × ", " + ", " − ", "·", " "
    brackets = ("[", ", ", "]")  # a vector's opening, separator and closing

    def __init__(self, precision: int):
        self.precision = precision

    def _sign(self, text: str, wrap: bool) -> str:
        if text.startswith("-"):
            text = "−" + text[1:]
            return f"({text})" if wrap else text
        return text

    def num(self, value: float, wrap: bool = False) -> str:
        """An input, as written (its shortest decimal form)."""
        return self._sign(np.format_float_positional(float(value), trim="-"), wrap)

    def res(self, value: float, wrap: bool = False) -> str:
        """A result, rounded to ``precision`` decimals."""
        value = float(value)
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else (
            f"{value:.{self.precision}f}")
        if float(text) == 0:
            text = text.lstrip("-")
        return self._sign(text, wrap)

    def number(self, number: Number, factor: bool = False) -> str:
        if number.kind is Kind.result:
            return self.res(number.value, factor)
        return self.num(number.value, factor and number.kind is Kind.given)

    def vec(self, vector: Vector) -> str:
        write = self.res if vector.kind is Kind.result else self.num
        return self.brackets[0] + self.brackets[1].join(write(v) for v in vector.values) + \
            self.brackets[2]

    def exp(self, power: Number) -> str:
        return f"e^{self.res(power.value, wrap=True)}"

    def sqrt(self, text: str) -> str:
        return f"√{text}"

    def var(self, name: str, label: str) -> str:
        return f"{name}({label})"

    def text(self, words: str) -> str:
        return words

    def tanh(self, text: str) -> str:
        return f"tanh({text})"

    def frac(self, top: str, bottom: str) -> str:
        return f"{top} / {bottom}"

    def term(self, term: Term, factor: bool = False) -> str:
        """One term; ``factor``: it stands in a × product (a negative number is bracketed)."""
        match term:
            case Number():
                return self.number(term, factor)
            case Vector():
                return self.vec(term)
            case Symbol():
                return term.name
            case Row():
                return self.var(term.array, term.token)
            case Product():
                op = {Op.times: self.times, Op.dot: self.dot, Op.matmul: self.matmul}[term.op]
                return op.join(self.term(f, term.op is Op.times) for f in term.factors)
            case Sum():
                return self.plus.join(self.term(t) for t in term.terms)
            case Difference():
                return f"{self.term(term.left)}{self.minus}{self.term(term.right)}"
            case Fraction():
                return self.frac(self.term(term.top), self.term(term.bottom))
            case Root():
                return self.sqrt(self.term(term.of))
            case Exp():
                return self.exp(term.power)
            case Tanh():
                return self.tanh(self.term(term.of))
            case Group():
                return f"({self.term(term.term)})"
            case Concat():
                return f"{self.text('concat')}({', '.join(self.vec(v) for v in term.parts)})"
            case Annotated():
                return f"{self.term(term.term, factor)} {self.text(term.words)}"
        raise TypeError(f"not a term of explain: {term!r}")

    def words(self, words: Words) -> str:
        """A title or a note: its words, and its numbers written as numbers."""
        return "".join(w if isinstance(w, str) else self.number(w) for w in words)

    def equation(self, equation: Equation) -> list[str]:
        """The name and each side written out: the parts joined by " = "."""
        return [equation.name, *(self.term(side) for side in equation.sides)]


class LatexNotation(Notation):
    times, plus, minus, dot = r" \times ", " + ", " - ", r" \cdot "
    brackets = (r"\begin{bmatrix}", " & ", r"\end{bmatrix}")

    def _sign(self, text: str, wrap: bool) -> str:
        return f"({text})" if wrap and text.startswith("-") else text

    def exp(self, power: Number) -> str:
        return f"e^{{{self.res(power.value)}}}"

    def sqrt(self, text: str) -> str:
        return rf"\sqrt{{{text}}}"

    def var(self, name: str, label: str) -> str:
        return rf"{name}_{{\text{{{latex_escape(label)}}}}}"

    def text(self, words: str) -> str:
        return rf"\text{{{latex_escape(words)}}}"

    def tanh(self, text: str) -> str:
        return rf"\tanh\left({text}\right)"

    def frac(self, top: str, bottom: str) -> str:
        return rf"\frac{{{top}}}{{{bottom}}}"


def notation(fmt: ExplainFormat, precision: int) -> Notation:
    return Notation(precision) if fmt is ExplainFormat.text else LatexNotation(precision)


def render_explain(sections: list[Section], fmt: ExplainFormat, precision: int = 4,
                   width: int | None = None) -> str:
    """The sections as text, Markdown or LaTeX, after a first section saying how the numbers
    are shown. ``precision``: the decimals of the results (inputs are written as given).
    ``width``: the text format's lines wrapped to that many columns (see
    :func:`wrap_equation`); None keeps each equation on one line."""
    if fmt == "html":  # a page of its own: the text format's equations
        from attncli.render.html import render_explain_html

        return render_explain_html(sections, precision)
    write = notation(fmt, precision)
    about = Section(("About these numbers",), notes=((
        f"Each result is computed exactly and shown to {precision} decimals, so the shown "
        "terms of a sum may differ from the shown total in the last decimal.",),))
    written = [(write.words(section.title), [write.equation(e) for e in section.equations],
                [write.words(note) for note in section.notes])
               for section in (about, *sections)]
    if fmt is ExplainFormat.text:
        lines = []
        for title, equations, notes in written:
            lines += [title, "-" * len(title)]
            for equation in equations:
                lines += (wrap_equation(equation, width) if width else
                          ["  " + " = ".join(equation)])
            for note in notes:
                lines += (textwrap.wrap(f"({note})", width, initial_indent="  ",
                                        subsequent_indent="   ", break_long_words=False,
                                        break_on_hyphens=False) if width else [f"  ({note})"])
            lines.append("")
        return "\n".join(lines)
    if fmt is ExplainFormat.markdown:
        lines = []
        for title, equations, notes in written:
            lines += [f"### {title}", ""]
            lines += [f"- ${_latex_equation(equation, ' = ')}$" for equation in equations]
            lines += [f"- {note}" for note in notes]
            lines.append("")
        return "\n".join(lines)
    lines = []
    for title, equations, notes in written:
        lines.append(rf"\paragraph{{{latex_escape(title)}}}")
        if equations:
            lines.append(r"\begin{align*}")
            lines.append(" \\\\\n".join(_latex_equation(equation, " &= ", " = ")
                                         for equation in equations))
            lines.append(r"\end{align*}")
        lines += [latex_escape(note) + r"\par" for note in notes]
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
