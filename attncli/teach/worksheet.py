"""The pages of an exercise: the worksheet a student reads (Markdown or LaTeX) and the
teacher's worked solution (explain's arithmetic of each asked row)."""

from __future__ import annotations

import re
import unicodedata
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
           "token (keys and values come from it)", "key_memory": "the keys' source",
           "value_memory": "the values' source", "W_q": "query weights",
           "W_k": "key weights", "W_v": "value weights", "W_o": "output weights",
           "W_a": "score weights", "U_a": "score weights of the keys", "v_a": "score vector",
           "sinks": "the sink logit of each head", "b_q": "query bias", "b_k": "key bias",
           "b_v": "value bias", "b_o": "output bias",
           "alibi_slopes": "ALiBi's slope m_h of each head",
           "q_norm": "QK-norm weights of the queries", "k_norm": "QK-norm weights of the keys",
           "dropout_mask": "which weights dropout keeps: 1 kept (then divided by 1 − p), "
                           "0 dropped", "bias": "added to the scores",
           "positions": "each query's position", "key_positions": "each key's position"}
#: Inputs whose rows are the queries and columns the keys.
_QUERY_BY_KEY = ("dropout_mask", "bias")


def _title(exercise: Exercise, assignment: Assignment) -> str:
    title = assignment.name or "Attention exercise"
    if exercise.student is not None:
        who = exercise.student.id + (f" ({exercise.student.name})" if exercise.student.name
                                     else "")
        title += f" — {who}"
    return title


def _inputs(exercise: Exercise) -> list[tuple[str, tuple[int, ...], list]]:
    """The problem's arrays in its file's order: (key, shape, its tables), each table
    (caption, matrix, row labels, column labels); a 3-D array is a table per head."""
    problem, trace = exercise.problem, exercise.trace
    rows = {"x": problem.get("tokens"), "memory": problem.get("memory_tokens"),
            "key_memory": problem.get("memory_tokens"),
            "value_memory": problem.get("memory_tokens")}
    found = []
    for key, value in problem.items():
        if key not in _INPUTS:
            continue
        array = np.asarray(value, dtype=float)
        matrix = array.reshape(1, -1) if array.ndim == 1 else array
        lead = matrix.shape[:-2]
        tables = []
        for index in np.ndindex(*lead):
            caption = ", ".join(f"{axis} {i}" for axis, i in
                                zip(("batch", "head")[2 - len(lead):], index, strict=True))
            part = matrix[index]
            labels = (list(trace.query_tokens) if key in _QUERY_BY_KEY else rows.get(key)
                      ) or [str(i) for i in range(part.shape[0])]
            columns = (list(trace.key_tokens) if key in _QUERY_BY_KEY else
                       [str(j) for j in range(part.shape[1])])
            tables.append((caption, part, labels, columns))
        found.append((key, array.shape, tables))
    return found


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
    lines += ["Its steps, in order:", ""]
    lines += [f"{i}. {step.name}: `{step.formula}`" for i, step in enumerate(trace, 1)]
    lines += ["", "Its conventions:", ""]
    lines += [f"- **{k}**: {v}" for k, v in trace.conventions.items()]
    lines += ["", "## Inputs", "",
              "Tokens: " + ", ".join(f"`{t}`" for t in trace.query_tokens) + ".", ""]
    for key, shape, tables in _inputs(exercise):
        lines += [f"### {key} ({_shape(shape)}): {_INPUTS[key]}", ""]
        for caption, matrix, rows, columns in tables:
            lines += [f"*{caption}*", ""] if caption else []
            lines.append("| | " + " | ".join(columns) + " |")
            lines.append("|---|" + "---:|" * matrix.shape[1])
            lines += ["| " + " | ".join([f"**{r}**", *map(_written, row)]) + " |"
                      for r, row in zip(rows, matrix, strict=True)]
            lines.append("")
    lines += ["## What to compute", "", f"For {_rows_label(exercise)}:", ""]
    for name in exercise.steps:
        lines.append(f"- **{name}** ({_shape(exercise.asked.written(name).shape)}): "
                     f"`{trace.step(name).formula}`")
    lines += ["", *(f"{p}\n" for p in _instructions(exercise)), "## Your answers", "",
              "Fill in `answers-template.json` and hand it in named after your id "
              "(`ID.json`):", "", "```json", dumps(template(exercise)).rstrip(), "```", "",
              "Or hand in one of these forms instead:", ""]
    lines += [f"- {form}" for form in FORMS[1:]]
    if _per_head(exercise):
        lines += ["", _HEADS]
    return "\n".join(lines) + "\n"


_HEADS = ("A step with a head axis (its shape starts with the heads) is written head by head: "
          "in the JSON template as it is laid out; in a CSV or text file the heads' rows one "
          "after the other, head 0 first; in Markdown a table per head, one after the other.")


def _per_head(exercise: Exercise) -> bool:
    return any("head" in exercise.asked.step(name).axes and
               exercise.asked.written(name).ndim > 1 for name in exercise.steps)


#: The characters of attncli's formulas and conventions, as LaTeX writes them (pdflatex reads
#: no other non-ASCII character).
UNICODE = {"ᵀ": r"^{\mathsf{T}}", "√": r"\sqrt{}", "−": "-", "∞": r"\infty", "·": r"\cdot ",
           "…": r"\dots ", "θ": r"\theta ", "⌊": r"\lfloor ", "⌋": r"\rfloor ", "×": r"\times ",
           "∧": r"\wedge ", "≤": r"\le ", "≥": r"\ge ", "“": "``", "”": "''", "—": "---",
           "–": "--", "’": "'", "₀": "_0", "²": "^2", "ℓ": r"\ell ", "∑": r"\sum ",
           "π": r"\pi ", "≠": r"\ne ", "±": r"\pm ", "→": r"\to ", "Σ": r"\Sigma ",
           "ε": r"\varepsilon "}
#: Letters of Latin Extended-A that pdflatex's T1 fonts cannot set.
_NO_T1 = "ĦħĸĿŀŉŦŧſ"


_TEXT = "“”—–’"  # text-mode replacements; the others are math
_ROOT = re.compile(r"√(\w+)")


def _math_name(name: str) -> str:
    """A name in math mode: ``W_q`` → W_{q}, ``d_head`` → d_{head}, others as text."""
    base, _, sub = name.partition("_")
    if len(base) == 1 and sub.isalnum():
        return rf"{base}_{{\mathrm{{{sub}}}}}" if len(sub) > 1 else f"{base}_{{{sub}}}"
    return rf"\text{{{latex_escape(name)}}}"


def _tex(text: str) -> str:
    """Text for LaTeX: escaped, each character of :data:`UNICODE` in math mode (√d_k as
    $\\sqrt{d_k}$); a letter pdflatex's T1 fonts lack (ứ) by its base letter."""
    out = []
    for i, part in enumerate(_ROOT.split(text)):
        if i % 2:  # the name under a root
            out.append(rf"$\sqrt{{{_math_name(part)}}}$")
            continue
        for char in part:
            if char in UNICODE:
                out.append(UNICODE[char] if char in _TEXT else f"${UNICODE[char]}$")
            elif ord(char) > 0x17F or char in _NO_T1:
                base = unicodedata.normalize("NFKD", char)[0]
                out.append(latex_escape(base) if base.isascii() else "?")
            else:
                out.append(latex_escape(char))
    return "".join(out)


def _latex(exercise: Exercise, assignment: Assignment) -> str:
    from attncli.teach.exercise import dumps, template

    trace = exercise.trace
    lines = [r"\documentclass[11pt]{article}", r"\usepackage[T1]{fontenc}",
             r"\usepackage[utf8]{inputenc}", r"\usepackage{amsmath}",
             r"\usepackage[margin=2cm]{geometry}", r"\usepackage{fancyvrb}",
             r"\setcounter{MaxMatrixCols}{64}",  # amsmath's default, 10, is narrower
             r"\begin{document}", rf"\section*{{{_tex(_title(exercise, assignment))}}}",
             rf"Variant {exercise.seed}. Compute this attention by hand, step by step.",
             r"\subsection*{The attention}", r"\begin{itemize}"]
    lines += [rf"\item \textbf{{{_tex(k)}}}: {_tex(v)}" for k, v in trace.conventions.items()]
    lines += [r"\end{itemize}", "Its steps, in order:", r"\begin{enumerate}"]
    lines += [rf"\item {_tex(step.name)}: {_tex(step.formula)}" for step in trace]
    lines += [r"\end{enumerate}", r"\subsection*{Inputs}",
              "Tokens: " + ", ".join(rf"\texttt{{{_tex(t)}}}" for t in trace.query_tokens)
              + "."]
    for key, shape, tables in _inputs(exercise):
        lines.append(rf"\paragraph{{{_tex(key)} ({_tex(_shape(shape))}): "
                     rf"{_tex(_INPUTS[key])}}}")
        for caption, matrix, rows, columns in tables:
            body = r" \\ ".join(r" & ".join(map(_written, row)) for row in matrix)
            names = r"\quad\text{rows: " + ", ".join(_tex(t) for t in rows) + "}"
            if key in _QUERY_BY_KEY:
                names += r"\text{; columns: " + ", ".join(_tex(t) for t in columns) + "}"
            where = rf"\text{{({_tex(caption)})}}\ " if caption else ""
            lines.append(rf"\[{where}{_math_name(key)} = \begin{{bmatrix}}{body}"
                         rf"\end{{bmatrix}}{names}\]")
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
    lines += [r"\end{itemize}", *([_tex(_HEADS)] if _per_head(exercise) else []),
              r"\end{document}"]
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
