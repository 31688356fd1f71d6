"""explain: one query row's arithmetic written out the way the seed tutorials do it by hand.

The projections, each score as a sum of products with the numbers (0.53×0.34 + 0.34×0.22 +
0.98×0.54 = 0.7842), the scaling, the mask, the exponentials and their sum, each weight, each
weighted value vector and the final sum, per head. The numbers come from the Trace; what is
added here is the layout of the arithmetic that produced them, term by term.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attncli.errors import InputError
from attncli.problem import Problem
from attncli.shapes import input_sources
from attncli.trace import Trace


@dataclass
class Section:
    """A titled block of equations; each equation is a list of parts joined by " = "; the
    first part is a name in words (set as text, not math, in LaTeX)."""

    title: str
    equations: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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
    """How numbers and symbols are written; :class:`LatexNotation` writes them for LaTeX.

    Inputs (embeddings, weights as given) are written as they were given; results with
    ``precision`` fixed decimals, whole numbers without any (as seed 004 writes its keys).
    """

    times, plus, dot = " × ", " + ", "·"
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

    def vec(self, values, result: bool = False) -> str:
        write = self.res if result else self.num
        return self.brackets[0] + self.brackets[1].join(write(v) for v in values) + \
            self.brackets[2]

    def exp(self, value: float) -> str:
        return f"e^{self.res(value, wrap=True)}"

    def sqrt(self, value: float) -> str:
        return f"√{self.num(value)}"

    def var(self, name: str, label: str) -> str:
        return f"{name}({label})"

    def text(self, words: str) -> str:
        return words

    def tanh(self, text: str) -> str:
        return f"tanh({text})"

    def frac(self, top: str, bottom: str) -> str:
        return f"{top} / {bottom}"


class LatexNotation(Notation):
    times, plus, dot = r" \times ", " + ", r" \cdot "
    brackets = (r"\begin{bmatrix}", " & ", r"\end{bmatrix}")

    def _sign(self, text: str, wrap: bool) -> str:
        return f"({text})" if wrap and text.startswith("-") else text

    def exp(self, value: float) -> str:
        return f"e^{{{self.res(value)}}}"

    def sqrt(self, value: float) -> str:
        return rf"\sqrt{{{self.num(value)}}}"

    def var(self, name: str, label: str) -> str:
        return rf"{name}_{{\text{{{latex_escape(label)}}}}}"

    def text(self, words: str) -> str:
        return rf"\text{{{latex_escape(words)}}}"

    def tanh(self, text: str) -> str:
        return rf"\tanh\left({text}\right)"

    def frac(self, top: str, bottom: str) -> str:
        return rf"\frac{{{top}}}{{{bottom}}}"


class _Rows:
    """A trace's numbers at one batch item, head and query row."""

    def __init__(self, trace: Trace, batch: int, head: int):
        self.trace, self.batch, self.head = trace, batch, head

    def __call__(self, step: str, query: int | None = None) -> np.ndarray:
        data, axes = self.trace[step], self.trace.step(step).axes
        picks = {"batch": self.batch, "head": self.head, "query": query}
        for axis in reversed(range(len(axes))):
            if axes[axis] in picks and picks[axes[axis]] is not None:
                data = np.take(data, picks[axes[axis]], axis=axis)
        return data


def explain(problem: Problem, trace: Trace, query: str, key: str | None = None,
            batch: int = 0, notation: Notation | None = None) -> list[Section]:
    """The arithmetic of one query row (one score with ``key``), per head.

    Raises: InputError for an unknown query or key token, or a batch index out of range.
    """
    write = notation or Notation(4)
    i = trace.query_index(query)
    j_only = None if key is None else _key_index(trace, key)
    heads = trace.run.heads
    batches = trace["context"].shape[0] if "batch" in trace.step("context").axes else 1
    if not 0 <= batch < batches:
        raise InputError(f"--batch {batch}: the problem has {batches} batch item(s)")
    sections = [Section("About these numbers", notes=[
        f"Each result is computed exactly and shown to {write.precision} decimals, so the "
        "shown terms of a sum may differ from the shown total in the last decimal."])]
    for h in range(heads):
        rows = _Rows(trace, batch, h)
        label = trace.query_tokens[i] + (f", head {h}" if heads > 1 else "")
        sections += _head(problem, trace, rows, i, j_only, label, write)
    if j_only is None:
        sections += _merge(trace, _Rows(trace, batch, 0), i, heads, write)
    return sections


def _key_index(trace: Trace, key: str) -> int:
    if key in trace.key_tokens:
        return trace.key_tokens.index(key)
    try:
        index = int(key)
    except ValueError:
        index = None
    if index is not None and -len(trace.key_tokens) <= index < len(trace.key_tokens):
        return index % len(trace.key_tokens)
    raise InputError(f"--key {key!r}: no such token or index; the keys are "
                     f"{', '.join(trace.key_tokens)}")


def _products(write: Notation, a, b, a_result: bool = False, b_result: bool = False) -> str:
    """a₁×b₁ + a₂×b₂ + …: inputs as written (0.53), results with fixed decimals."""
    left, right = (write.res if a_result else write.num), (write.res if b_result else write.num)
    return write.plus.join(f"{left(x, True)}{write.times}{right(y, True)}"
                           for x, y in zip(a, b, strict=True))


def _head(problem, trace, rows, i, j_only, label, write) -> list[Section]:
    keys_range = range(len(trace.key_tokens)) if j_only is None else [j_only]
    q, keys, values = rows("queries", i), rows("keys"), rows("values")
    projected = set(trace.run.projected)
    sections = []
    if projected:
        sections.append(_projections(problem, trace, rows, i, keys_range, projected, label, write,
                                     values=j_only is None))
    scores = Section(f"Scores ({label})")
    s = rows("scores", i)
    for j in keys_range:
        terms = _score_terms(problem, trace.run.score, q, keys[j], write,
                             "W_q" in projected, "W_k" in projected)
        scores.equations.append([f"score({trace.query_tokens[i]}, {trace.key_tokens[j]})",
                                 *terms, write.res(s[j])])
    sections.append(scores)
    last = s
    if "scaled_scores" in trace:
        scaled = rows("scaled_scores", i)
        factor = trace.run.scale
        by_root = np.isclose(factor, 1 / np.sqrt(trace.run.d_k), rtol=1e-15, atol=0)
        section = Section(f"Scaling ({label})")
        for j in keys_range:
            step = (write.frac(write.res(s[j]), write.sqrt(trace.run.d_k)) if by_root
                    else f"{write.res(s[j], True)}{write.times}{write.num(factor)}")
            section.equations.append([f"scaled({trace.key_tokens[j]})", step,
                                      write.res(scaled[j])])
        sections.append(section)
        last = scaled
    if "masked_scores" in trace:
        masked = rows("masked_scores", i)
        blocked = [trace.key_tokens[j] for j in keys_range if np.isneginf(masked[j])]
        sections.append(Section(f"Mask ({label})", notes=[
            "masked keys get minus infinity before the softmax: "
            + (", ".join(blocked) if blocked else "none here")]))
        last = masked
    if j_only is not None:
        return sections
    sections += _normalize(trace, rows, i, last, label, write)
    sections += _weighted_sum(trace, rows, i, values, label, "W_v" in projected, write)
    return sections


def _projections(problem, trace, rows, i, keys_range, projected, label, write, values: bool):
    sources = dict(zip("kv", input_sources(problem), strict=True))  # x, memory, key_memory, …
    section = Section(f"Projections ({label})")
    bias = {name: f" + b_{name}" if f"+ b_{name}" in trace.step(step).formula else ""
            for name, step in (("q", "queries"), ("k", "keys"), ("v", "values"))}
    if "W_q" in projected:
        token = trace.query_tokens[i]
        section.equations.append([f"q({token})", f"{write.var('x', token)} W_q{bias['q']}",
                                  write.vec(rows("queries", i), True)])
    for name, step, key in (("k", "keys", "W_k"), ("v", "values", "W_v")):
        if key not in projected or (name == "v" and not values):
            continue
        for j in keys_range:
            token = trace.key_tokens[j]
            section.equations.append([f"{name}({token})",
                                      f"{write.var(sources[name], token)} {key}{bias[name]}",
                                      write.vec(rows(step)[j], True)])
    return section


def _score_terms(problem, score, q, k, write, q_result: bool, k_result: bool) -> list[str]:
    if score == "general":
        qW = q @ problem["W_a"]
        return [f"({write.vec(q, q_result)} W_a){write.dot}k",
                f"{write.vec(qW, True)}{write.dot}{write.vec(k, k_result)}",
                _products(write, qW, k, True, k_result)]
    if score == "additive":
        hidden = q @ problem["W_a"] + k @ problem["U_a"]
        if "b_a" in problem:
            hidden = hidden + problem["b_a"]
        return [f"v_a{write.dot}{write.tanh(write.vec(hidden, True))}",
                _products(write, problem["v_a"], np.tanh(hidden), False, True)]
    return [_products(write, q, k, q_result, k_result)]


def _normalize(trace, rows, i, last, label, write) -> list[Section]:
    weights = rows("weights", i)
    tokens = trace.key_tokens
    if trace.run.normalize == "hard":
        section = Section(f"Weights, hard attention ({label})")
        if np.isfinite(last).any():
            best = int(np.argmax(last))
            section.notes.append(f"the largest score is {write.res(last[best])}, key "
                                 f"{tokens[best]}: its weight is 1, every other weight 0")
        else:
            section.notes.append("every key is masked: all weights are 0")
        return [section]
    temperature = trace.run.temperature
    topk = trace.run.normalize == "topk"
    kept = np.isfinite(last) & (weights > 0) if topk else np.isfinite(last)
    if not kept.any():
        return [Section(f"Weights ({label})", notes=["every key is masked: all weights are 0 "
                                                     "and the context is 0"])]
    tempered = last / temperature
    shift = float(np.max(tempered[kept])) if np.max(np.abs(tempered[kept])) > 30 else 0.0
    of = "scores" if temperature == 1.0 else f"scores / {write.num(temperature)}"
    if shift:
        of += f" minus their maximum {write.res(shift)}, so that e^x stays finite"
    exps = Section(f"Exponentials of the {of} ({label})")
    values = {int(j): float(np.exp(tempered[j] - shift)) for j in np.flatnonzero(kept)}
    for j, e in values.items():
        exps.equations.append([f"exp({tokens[j]})", write.exp(tempered[j] - shift), write.res(e)])
    if topk:
        exps.notes.append(f"top-{trace.config['top_k']}: only the largest scores are kept")
    total = sum(values.values())
    sums = Section(f"Sum ({label})", [["sum", write.plus.join(write.res(v) for v in
                                                               values.values()),
                                       write.res(total)]])
    shares = Section(f"Weights ({label})")
    for j, token in enumerate(tokens):
        if j in values:
            shares.equations.append([f"weight({token})",
                                     write.frac(write.res(values[j]), write.res(total)),
                                     write.res(weights[j])])
        else:
            shares.equations.append([f"weight({token})", write.res(0.0)])
    return [exps, sums, shares]


def _weighted_sum(trace, rows, i, values, label, projected, write) -> list[Section]:
    name = "dropped_weights" if "dropped_weights" in trace else "weights"
    weights = rows(name, i)
    sections = []
    if name == "dropped_weights":
        p = trace.run.dropout
        section = Section(f"Dropout, p = {write.num(p)}: kept weights × 1/(1 − p) ({label})")
        plain = rows("weights", i)
        for j, token in enumerate(trace.key_tokens):
            kept = weights[j] != 0 or plain[j] == 0
            factor = write.num(1 / (1 - p)) if kept else f"0 {write.text('(dropped)')}"
            step = f"{write.res(plain[j], True)}{write.times}{factor}"
            section.equations.append([f"dropped({token})", step, write.res(weights[j])])
        sections.append(section)
    weighted = Section(f"Weighted values ({label})")
    parts = []
    for j, token in enumerate(trace.key_tokens):
        product = weights[j] * values[j]
        parts.append(product)
        weighted.equations.append([
            f"weighted({token})", f"{write.res(weights[j], True)}{write.times}"
            f"{write.var('v', token)}", f"{write.res(weights[j], True)}{write.times}"
            f"{write.vec(values[j], projected)}", write.vec(product, True)])
    context = rows("head_context" if "head_context" in trace else "context", i)
    total = Section(f"Context ({label})", [[
        "context", write.plus.join(write.vec(p, True) for p in parts),
        write.vec(context, True)]])
    return [*sections, weighted, total]


def _merge(trace, rows, i, heads, write) -> list[Section]:
    sections = []
    context = rows("context", i)
    token = trace.query_tokens[i]
    if heads > 1:
        parts = ", ".join(write.vec(_Rows(trace, rows.batch, h)("head_context", i), True)
                          for h in range(heads))
        sections.append(Section(f"Heads concatenated ({token})", [[
            "context", f"{write.text('concat')}({parts})", write.vec(context, True)]]))
    if "output" in trace:
        formula = trace.step("output").formula.split(" = ", 1)[1]
        sections.append(Section(f"Output projection ({token})", [[
            "output", formula.replace("context", write.vec(context, True)),
            write.vec(rows("output", i), True)]]))
    return sections
