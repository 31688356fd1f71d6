"""The pages of an exercise: the worksheet a student reads (Markdown or LaTeX) and the
teacher's worked solution (explain's arithmetic of each asked row)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from attncli.render.explain import latex_escape
from attncli.render.layout import number

if TYPE_CHECKING:
    from attncli.teach.exercise import Assignment, Exercise

#: The forms of an answer file a student may hand in (attncli.teach.forms reads them).
FORMS = (
    "`ID.json`: answers-template.json filled in (replace each null by a number)",
    "`ID/STEP.csv`: one CSV file per step in a folder named after your id "
    "(e.g. `ID/weights.csv`), one row of numbers per line",
    "`ID.md`: a Markdown table per step, each after a heading naming the step "
    "(`## weights`)",
    "`ID.txt`: a line naming the step (`weights:`), then its rows of numbers",
)
_INPUTS = {"x": "embeddings, one row per token", "memory": "the memory, one row per memory "
           "token (keys and values come from it)", "W_q": "query weights",
           "W_k": "key weights", "W_v": "value weights", "W_o": "output weights",
           "W_a": "score weights", "U_a": "score weights of the keys", "v_a": "score vector",
           "sinks": "the sink logit of each head", "b_q": "query bias", "b_k": "key bias",
           "b_v": "value bias", "b_o": "output bias"}


def _title(exercise: Exercise, assignment: Assignment) -> str:
    title = assignment.name or "Attention exercise"
    if exercise.student is not None:
        who = exercise.student.id + (f" ({exercise.student.name})" if exercise.student.name
                                     else "")
        title += f" — {who}"
    return title


def _inputs(exercise: Exercise) -> list[tuple[str, np.ndarray, list[str] | None]]:
    """The problem's arrays in its file's order, with row labels for x and memory."""
    problem = exercise.problem
    labels = {"x": problem.get("tokens"), "memory": problem.get("memory_tokens")}
    return [(key, np.asarray(value, dtype=float), labels.get(key))
            for key, value in problem.items() if key in _INPUTS]


def _shape(shape: tuple[int, ...]) -> str:
    return " × ".join(map(str, shape))


def _written(value: float) -> str:
    """An input as the problem file has it: an integer, else its one decimal."""
    return str(int(value)) if float(value).is_integer() else number(value, 1)


def _rows_label(exercise: Exercise) -> str:
    if exercise.query is None:
        return "every row (every query token)"
    return f"only the row of the query “{exercise.query}”"


def _instructions(exercise: Exercise) -> list[str]:
    masked = ["A masked score is −∞: write it `null` (or `-inf`)."] if \
        "masked_scores" in exercise.steps else []
    return ["Write each number that is not whole with 4 decimals (fractions such as 3/2 are "
            "fine for scores). You may round as you go: a result that follows from your own "
            "rounded numbers counts as right, and a mistake is charged once, where it is "
            "made, not again in the steps computed from it.", *masked]


def worksheet(exercise: Exercise, assignment: Assignment) -> str:
    """The worksheet: the attention, the inputs as tables, what to compute, how to answer."""
    return (_latex if assignment.latex else _markdown)(exercise, assignment)


def _markdown(exercise: Exercise, assignment: Assignment) -> str:
    from attncli.teach.exercise import dumps, template

    trace = exercise.trace
    lines = [f"# {_title(exercise, assignment)}", "",
             f"Variant {exercise.seed}. Compute this attention by hand, step by step.", "",
             "## The attention", ""]
    lines += [f"- **{k}**: {v}" for k, v in trace.conventions.items()]
    lines += ["", "## Inputs", "",
              "Tokens: " + ", ".join(f"`{t}`" for t in trace.query_tokens) + ".", ""]
    for key, array, labels in _inputs(exercise):
        lines += [f"### {key} ({_shape(array.shape)}): {_INPUTS[key]}", ""]
        matrix = array.reshape(1, -1) if array.ndim == 1 else array
        rows = labels or [str(i) for i in range(matrix.shape[0])]
        lines.append("| | " + " | ".join(str(j) for j in range(matrix.shape[1])) + " |")
        lines.append("|---|" + "---:|" * matrix.shape[1])
        lines += ["| " + " | ".join([f"**{r}**", *map(_written, row)]) + " |"
                  for r, row in zip(rows, matrix, strict=True)]
        lines.append("")
    lines += ["## What to compute", "", f"For {_rows_label(exercise)}:", ""]
    for i, name in enumerate(exercise.steps, 1):
        lines.append(f"{i}. **{name}** ({_shape(exercise.asked.written(name).shape)}): "
                     f"`{trace.step(name).formula}`")
    lines += ["", *(f"{p}\n" for p in _instructions(exercise)), "## Your answers", "",
              "Fill in `answers-template.json` and hand it in named after your id "
              "(`ID.json`):", "", "```json", dumps(template(exercise)).rstrip(), "```", "",
              "Or hand in one of these forms instead:", ""]
    lines += [f"- {form}" for form in FORMS[1:]]
    return "\n".join(lines) + "\n"


#: The characters of attncli's formulas and conventions, as LaTeX writes them (pdflatex reads
#: no other non-ASCII character).
UNICODE = {"ᵀ": r"^{\mathsf{T}}", "√": r"\sqrt{}", "−": "-", "∞": r"\infty", "·": r"\cdot ",
           "…": r"\dots ", "θ": r"\theta ", "⌊": r"\lfloor ", "⌋": r"\rfloor ", "×": r"\times ",
           "∧": r"\wedge ", "≤": r"\le ", "≥": r"\ge ", "“": "``", "”": "''", "—": "---",
           "–": "--", "’": "'", "₀": "_0", "²": "^2", "ℓ": r"\ell ", "∑": r"\sum ",
           "π": r"\pi ", "≠": r"\ne ", "±": r"\pm ", "→": r"\to "}


_TEXT = "“”—–’"  # text-mode replacements; the others are math


def _tex(text: str) -> str:
    """Text for LaTeX: escaped, each character of :data:`UNICODE` in math mode."""
    out = []
    for char in text:
        if char in UNICODE:
            out.append(UNICODE[char] if char in _TEXT else f"${UNICODE[char]}$")
        else:
            out.append(latex_escape(char))
    return "".join(out)


def _latex(exercise: Exercise, assignment: Assignment) -> str:
    from attncli.teach.exercise import dumps, template

    trace = exercise.trace
    lines = [r"\documentclass[11pt]{article}", r"\usepackage[T1]{fontenc}",
             r"\usepackage[utf8]{inputenc}", r"\usepackage{amsmath}",
             r"\usepackage[margin=2cm]{geometry}", r"\usepackage{fancyvrb}",
             r"\begin{document}", rf"\section*{{{_tex(_title(exercise, assignment))}}}",
             rf"Variant {exercise.seed}. Compute this attention by hand, step by step.",
             r"\subsection*{The attention}", r"\begin{itemize}"]
    lines += [rf"\item \textbf{{{_tex(k)}}}: {_tex(v)}" for k, v in trace.conventions.items()]
    lines += [r"\end{itemize}", r"\subsection*{Inputs}",
              "Tokens: " + ", ".join(rf"\texttt{{{_tex(t)}}}" for t in trace.query_tokens)
              + "."]
    for key, array, labels in _inputs(exercise):
        matrix = array.reshape(1, -1) if array.ndim == 1 else array
        rows = [r" & ".join(map(_written, row)) for row in matrix]
        names = ("" if labels is None else
                 r"\quad\text{rows: " + ", ".join(_tex(t) for t in labels) + "}")
        lines += [rf"\paragraph{{{_tex(key)} ({_tex(_shape(array.shape))}): "
                  rf"{_tex(_INPUTS[key])}}}",
                  r"\[" + rf"{_tex(key)} = \begin{{bmatrix}}" + r" \\ ".join(rows)
                  + r"\end{bmatrix}" + names + r"\]"]
    lines += [r"\subsection*{What to compute}", f"For {_tex(_rows_label(exercise))}:",
              r"\begin{enumerate}"]
    for name in exercise.steps:
        shape = _tex(_shape(exercise.asked.written(name).shape))
        lines.append(rf"\item \textbf{{{_tex(name)}}} ({shape}): "
                     rf"{_tex(trace.step(name).formula)}")
    lines += [r"\end{enumerate}", *(_tex(p) + r"\par" for p in _instructions(exercise)),
              r"\subsection*{Your answers}",
              _tex("Fill in answers-template.json and hand it in named after your id "
                   "(ID.json):"),
              r"\begin{Verbatim}", dumps(template(exercise)).rstrip(), r"\end{Verbatim}",
              _tex("Or hand in one of these forms instead:"), r"\begin{itemize}"]
    lines += [rf"\item {_tex(form.replace('`', ''))}" for form in FORMS[1:]]
    lines += [r"\end{itemize}", r"\end{document}"]
    return "\n".join(lines) + "\n"


def solution(exercise: Exercise, assignment: Assignment) -> str:
    """solution.md: the key's tables, then explain's worked arithmetic of each asked row."""
    from attncli.explain import explain
    from attncli.render.explain import render_explain
    from attncli.render.markdown import render_markdown
    from attncli.render.registry import ExplainFormat

    rows = ([exercise.query] if exercise.query is not None else
            list(exercise.trace.query_tokens))
    parts = [f"# Solution: {_title(exercise, assignment)}", "",
             f"Variant {exercise.seed}. The exact answers (to 4 decimals), then the "
             "arithmetic of each asked row written out.", "", "## Answers", "",
             render_markdown(exercise.asked, 4)]
    for label in rows:
        parts += [f"## The row of “{label}”", "",
                  render_explain(explain(exercise.trace, label), ExplainFormat.markdown, 4)]
    return "\n".join(parts)
