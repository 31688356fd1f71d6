"""explain: one query row's arithmetic written out the way the seed tutorials do it by hand.

Each score as a sum of products with the numbers (0.53×0.34 + 0.34×0.22 + 0.98×0.54 =
0.7842), the scaling, the mask, the exponentials and their sum, each weight, each weighted
value vector and the final sum, per head. The numbers come from the Trace; what is written
here is only the arithmetic that produced them, laid out term by term.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attncli.errors import InputError
from attncli.problem import Problem
from attncli.trace import Trace


@dataclass
class Section:
    """A titled block of equations; each equation is a list of parts joined by " = "."""

    title: str
    equations: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Notation:
    """How numbers and symbols are written; :class:`LatexNotation` writes them for LaTeX."""

    times, plus, dot = " × ", " + ", "·"

    def __init__(self, precision: int):
        self.precision = precision

    def num(self, value: float, wrap: bool = False) -> str:
        text = f"{value:.{self.precision}f}".rstrip("0").rstrip(".")
        text = "0" if text in ("-0", "") else text
        if text.startswith("-"):
            text = "−" + text[1:]
            return f"({text})" if wrap else text
        return text

    def res(self, value: float, wrap: bool = False) -> str:
        """A result: fixed decimals, as the tutorials write them (0.8610); whole numbers
        without them (16, as seed 004 writes its keys)."""
        value = float(value)
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else (
            f"{value:.{self.precision}f}")
        if float(text) == 0:
            text = text.lstrip("-")
        if text.startswith("-"):
            text = "−" + text[1:]
            return f"({text})" if wrap else text
        return text

    def vec(self, values, result: bool = False) -> str:
        write = self.res if result else self.num
        return "[" + ", ".join(write(v) for v in values) + "]"

    def exp(self, value: float) -> str:
        return f"e^{self.res(value, wrap=True)}"

    def sqrt(self, value: float) -> str:
        return f"√{self.num(value)}"

    def var(self, name: str, label: str) -> str:
        return f"{name}({label})"

    def tanh(self, text: str) -> str:
        return f"tanh({text})"

    def frac(self, top: str, bottom: str) -> str:
        return f"{top} / {bottom}"


class LatexNotation(Notation):
    times, plus, dot = r" \times ", " + ", r" \cdot "

    def num(self, value: float, wrap: bool = False) -> str:
        return super().num(value, wrap).replace("−", "-")

    def res(self, value: float, wrap: bool = False) -> str:
        return super().res(value, wrap).replace("−", "-")

    def vec(self, values, result: bool = False) -> str:
        write = self.res if result else self.num
        return r"\begin{bmatrix}" + " & ".join(write(v) for v in values) + r"\end{bmatrix}"

    def exp(self, value: float) -> str:
        return f"e^{{{self.res(value)}}}"

    def sqrt(self, value: float) -> str:
        return rf"\sqrt{{{self.num(value)}}}"

    def var(self, name: str, label: str) -> str:
        safe = label.replace("\\", "").replace("{", "").replace("}", "").replace("_", r"\_")
        return rf"{name}_{{\text{{{safe}}}}}"

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
    heads = trace.config["heads"]
    batches = trace["context"].shape[0] if "batch" in trace.step("context").axes else 1
    if not 0 <= batch < batches:
        raise InputError(f"--batch {batch}: the problem has {batches} batch item(s)")
    sections = []
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


def _products(write: Notation, a, b, computed: bool = False) -> str:
    """a₁×b₁ + a₂×b₂ + …: inputs as written (0.53), computed vectors with fixed decimals."""
    number = write.res if computed else write.num
    return write.plus.join(f"{number(x, True)}{write.times}{number(y, True)}"
                           for x, y in zip(a, b, strict=True))


def _head(problem, trace, rows, i, j_only, label, write) -> list[Section]:
    keys_range = range(len(trace.key_tokens)) if j_only is None else [j_only]
    q, keys, values = rows("queries", i), rows("keys"), rows("values")
    score_name = trace.config["score"]
    projected = "W_" in trace.step("queries").formula  # else q and k are x as written
    scores = Section(f"Scores of {label}")
    s = rows("scores", i)
    for j in keys_range:
        lhs = f"score({trace.query_tokens[i]}, {trace.key_tokens[j]})"
        terms = _score_terms(problem, score_name, q, keys[j], write, projected)
        scores.equations.append([lhs, *terms, write.res(s[j])])
    sections = [scores]
    last = s
    if "scaled_scores" in trace:
        scaled = rows("scaled_scores", i)
        factor = trace.config["scale"]
        how = (f"{write.sqrt(trace.config['d_k'])}" if trace.config["scale"] == 1 / np.sqrt(
            trace.config["d_k"]) else None)
        section = Section("Scaling")
        for j in keys_range:
            step = (write.frac(write.res(s[j]), how) if how else
                    f"{write.res(s[j], True)}{write.times}{write.num(factor)}")
            section.equations.append([f"scaled({trace.key_tokens[j]})", step,
                                      write.res(scaled[j])])
        sections.append(section)
        last = scaled
    if "masked_scores" in trace:
        masked = rows("masked_scores", i)
        blocked = [j for j in keys_range if np.isneginf(masked[j])]
        section = Section("Mask")
        section.notes.append(
            "masked keys get minus infinity before the softmax: "
            + (", ".join(trace.key_tokens[j] for j in blocked) if blocked else "none here"))
        sections.append(section)
        last = masked
    if j_only is not None:
        return sections
    sections += _normalize(trace, rows, i, last, write)
    sections += _weighted_sum(trace, rows, i, values, write, label)
    return sections


def _score_terms(problem, score, q, k, write, projected: bool) -> list[str]:
    if score == "general":
        qW = q @ problem["W_a"]
        return [f"({write.vec(q, projected)} W_a){write.dot}k",
                f"{write.vec(qW, True)}{write.dot}{write.vec(k, projected)}",
                _products(write, qW, k, True)]
    if score == "additive":
        hidden = q @ problem["W_a"] + k @ problem["U_a"]
        if "b_a" in problem:
            hidden = hidden + problem["b_a"]
        v_a = problem["v_a"]
        return [f"v_a{write.dot}{write.tanh(write.vec(hidden, True))}",
                _products(write, v_a, np.tanh(hidden), True)]
    return [_products(write, q, k, projected)]


def _normalize(trace, rows, i, last, write) -> list[Section]:
    weights = rows("weights", i)
    normalize = trace.config["normalize"]
    tokens = trace.key_tokens
    if normalize == "hard":
        finite = np.isfinite(last)
        section = Section("Weights (hard attention)")
        if finite.any():
            best = int(np.argmax(last))
            section.notes.append(f"the largest score is {write.res(last[best])}, key "
                                 f"{tokens[best]}: its weight is 1, every other weight 0")
        else:
            section.notes.append("every key is masked: all weights are 0")
        return [section]
    temperature = trace.config["temperature"]
    kept = np.isfinite(last) & (weights > 0) if normalize == "topk" else np.isfinite(last)
    if not kept.any():
        return [Section("Weights", notes=["every key is masked: all weights are 0 and the "
                                           "context is 0"])]
    tempered = last / temperature
    shift = float(np.max(tempered[kept])) if np.max(np.abs(tempered[kept])) > 30 else 0.0
    exps = Section("Exponentials" + (f" (scores minus their maximum {write.res(shift)}, so "
                                     "that e^x stays finite)" if shift else ""))
    values = {}
    for j in np.flatnonzero(kept):
        x = tempered[j] - shift
        values[j] = float(np.exp(x))
        arg = write.frac(write.res(last[j]), write.num(temperature))
        exps.equations.append([f"exp({tokens[j]})", write.exp(float(x)) if temperature == 1.0
                               else f"e^({arg})", write.res(values[j])])
    if normalize == "topk":
        exps.notes.append(f"top-{trace.config['top_k']}: only the largest scores are kept")
    total = sum(values.values())
    sums = Section("Sum", [["sum", write.plus.join(write.res(v) for v in values.values()),
                            write.res(total)]])
    shares = Section("Weights")
    for j in range(len(tokens)):
        if j in values:
            shares.equations.append([f"weight({tokens[j]})",
                                     write.frac(write.res(values[j]), write.res(total)),
                                     write.res(weights[j])])
        else:
            shares.equations.append([f"weight({tokens[j]})", write.res(0.0)])
    return [exps, sums, shares]


def _weighted_sum(trace, rows, i, values, write, label) -> list[Section]:
    name = "dropped_weights" if "dropped_weights" in trace else "weights"
    weights = rows(name, i)
    projected = "W_" in trace.step("values").formula
    sections = []
    if name == "dropped_weights":
        p = trace.config["dropout"]
        section = Section(f"Dropout (p = {write.num(p)}: kept weights × 1/(1 − p))")
        plain = rows("weights", i)
        for j, token in enumerate(trace.key_tokens):
            kept = weights[j] != 0 or plain[j] == 0
            step = (f"{write.res(plain[j], True)}{write.times}{write.num(1 / (1 - p))}" if kept
                    else "dropped")
            section.equations.append([f"dropped({token})", step, write.res(weights[j])])
        sections.append(section)
    weighted = Section("Weighted values")
    parts = []
    for j, token in enumerate(trace.key_tokens):
        product = weights[j] * values[j]
        parts.append(product)
        weighted.equations.append([f"weighted({token})",
                                   f"{write.res(weights[j], True)}{write.times}"
                                   f"{write.var('v', token)}",
                                   f"{write.res(weights[j], True)}{write.times}"
                                   f"{write.vec(values[j], projected)}",
                                   write.vec(product, True)])
    context_name = "head_context" if "head_context" in trace else "context"
    context = rows(context_name, i)
    total = Section(f"Context of {label}", [[
        "context", write.plus.join(write.vec(p, True) for p in parts),
        write.vec(context, True)]])
    return [*sections, weighted, total]


def _merge(trace, rows, i, heads, write) -> list[Section]:
    sections = []
    context = rows("context", i)
    if heads > 1:
        sections.append(Section("Heads concatenated", [[
            "context", "concat(" + ", ".join(write.vec(_Rows(trace, rows.batch, h)(
                "head_context", i), True) for h in range(heads)) + ")",
            write.vec(context, True)]]))
    if "output" in trace:
        formula = trace.step("output").formula.split(" = ", 1)[1]
        sections.append(Section("Output projection", [[
            "output", formula.replace("context", write.vec(context, True)),
            write.vec(rows("output", i), True)]]))
    return sections
