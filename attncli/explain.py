"""explain: one query row's arithmetic written out the way the seed tutorials do it by hand.

The projections, each score as a sum of products with the numbers (0.53×0.34 + 0.34×0.22 +
0.98×0.54 = 0.7842), the scaling, the mask, the exponentials and their sum, each weight, each
weighted value vector and the final sum, per head, as structured terms: a :class:`Section`
holds :class:`Equation` s, each a name and its sides, each side a small tree of terms
(:class:`Sum`, :class:`Product`, :class:`Fraction`, …) over :class:`Number` s and
:class:`Vector` s. ``attncli.render.explain`` writes them as text, Markdown or LaTeX; it
decides how a number looks (its decimals, its minus sign), never what it is.

The results come from the Trace's steps (queries, keys, values, scores, scaled_scores,
masked_scores, weights, dropped_weights, head_context, context, output) and the facts from
``trace.run``; the score function's own arrays (W_a, U_a, v_a, b_a) from ``trace.inputs``.
Computed here, once, only what the explanation alone shows: the products of one score's sum,
q W_a and the additive score's hidden layer for one query and key, the exponentials of the
row and their sum, each weighted value vector.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from attncli.config import Normalize, Score
from attncli.errors import InputError
from attncli.trace import N_BY_N, Trace


class Kind(enum.StrEnum):
    """How a number is written."""

    given = "given"  # an input as the problem gives it: its shortest decimal form (0.53)
    result = "result"  # computed: rounded to the renderer's decimals, whole numbers bare
    #: a setting of the run, or a number that follows exactly from one (the scale, the
    #: dropout p and 1/(1 − p), the temperature, d_k): its shortest decimal form, and never
    #: put in brackets as a factor (0.7842 × −0.3)
    option = "option"


@dataclass(frozen=True)
class Number:
    """One number; as a factor of a × product a negative given or result is bracketed."""

    value: float
    kind: Kind = Kind.result


@dataclass(frozen=True)
class Vector:
    """A row vector [a, b, c] (a query, a key, a value, a context row, …)."""

    values: tuple[float, ...]
    kind: Kind = Kind.result


@dataclass(frozen=True)
class Symbol:
    """A matrix or vector by its name, as the formulas write it: W_q, b_q, W_a, v_a, k."""

    name: str


@dataclass(frozen=True)
class Row:
    """Row ``token`` of an array: x(shiny), v(Hello), memory(Haus) (x_{shiny} in LaTeX)."""

    array: str
    token: str


class Op(enum.StrEnum):
    """The operator between a :class:`Product`'s factors."""

    times = "times"  # 0.53 × 0.34
    dot = "dot"  # v_a·tanh(…)
    matmul = "matmul"  # x(shiny) W_q: a vector times a matrix, written side by side


@dataclass(frozen=True)
class Product:
    factors: tuple[Term, ...]
    op: Op = Op.times


@dataclass(frozen=True)
class Sum:
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Difference:
    """One term less another: 0.53 × 0.54 − 0.2 × 0.84."""

    left: Term
    right: Term


@dataclass(frozen=True)
class Fraction:
    top: Term
    bottom: Term


@dataclass(frozen=True)
class Root:
    """The square root of a number: √3."""

    of: Number


@dataclass(frozen=True)
class Exp:
    """e to the power of a number: e^0.7842."""

    power: Number


@dataclass(frozen=True)
class Tanh:
    of: Term


@dataclass(frozen=True)
class Group:
    """A term in parentheses: (q W_a)."""

    term: Term


@dataclass(frozen=True)
class Concat:
    """The heads' vectors side by side: concat([…], […])."""

    parts: tuple[Vector, ...]


@dataclass(frozen=True)
class Annotated:
    """A term with words after it: 0 (dropped)."""

    term: Term
    words: str


Term = (Number | Vector | Symbol | Row | Product | Sum | Difference | Fraction | Root | Exp
        | Tanh | Group | Concat | Annotated)
#: Prose (a title, a note): words and the numbers among them.
Words = tuple[str | Number, ...]


@dataclass(frozen=True)
class Equation:
    """``name = sides[0] = sides[1] = …``: the name in words (text, not math, in LaTeX), the
    last side the result."""

    name: str
    sides: tuple[Term, ...]


@dataclass(frozen=True)
class Section:
    """A titled block of equations and notes."""

    title: Words
    equations: tuple[Equation, ...] = ()
    notes: tuple[Words, ...] = ()


class _Rows:
    """A trace's numbers at one batch item, head and query row; in a step with G < H
    key/value heads (keys, values: grouped-query attention), the KV head query head h uses,
    ⌊h / (H/G)⌋ = ⌊h·G / H⌋."""

    def __init__(self, trace: Trace, batch: int, head: int):
        self.trace, self.batch, self.head = trace, batch, head

    def __call__(self, step: str, query: int | None = None) -> np.ndarray:
        data, axes = self.trace[step], self.trace.step(step).axes
        picks = {"batch": self.batch, "head": self.head, "query": query}
        for axis in reversed(range(len(axes))):
            if axes[axis] in picks and picks[axes[axis]] is not None:
                pick = picks[axes[axis]]
                if axes[axis] == "head" and self.trace.run is not None:
                    pick = pick * data.shape[axis] // self.trace.run.heads  # G < H: its KV head
                data = np.take(data, pick, axis=axis)
        return data


def explain(trace: Trace, query: str | int, key: str | int | None = None,
            batch: int = 0) -> list[Section]:
    """The arithmetic of one query row (one score with ``key``), per head, as sections.

    Args:
        trace: a whole run (every step, every query row), as ``attend`` returns it.
        query, key: a token or a 0-based index (negative from the end) of the queries, keys;
            an ``int`` is always an index.
        batch: the batch item, when x is 3-D.
    Returns: per head, the sections Projections (when a W_q/W_k/W_v was used), Scores,
        Scaling, Mask (when the trace has those steps); without ``key`` also the weights
        (hard attention; or Exponentials, Sum, Weights), Dropout, Weighted values, Context;
        then Heads concatenated (several heads) and Output projection (W_o).
    Raises: InputError for an unknown query or key token, or a batch index out of range.
    Source: the seeds' hand-worked rows (Vaswani et al. 2017, eq. 1; Bahdanau et al. 2015
    for the additive score, Luong et al. 2015 for the general one).
    """
    i = trace.query_index(query)
    j_only = None if key is None else _key_index(trace, key)
    heads = trace.run.heads
    batches = trace["context"].shape[0] if "batch" in trace.step("context").axes else 1
    if not 0 <= batch < batches:
        raise InputError(f"--batch {batch}: the problem has {batches} batch item(s)")
    sections: list[Section] = []
    for h in range(heads):
        rows = _Rows(trace, batch, h)
        label = trace.query_tokens[i] + (f", head {h}" if heads > 1 else "")
        sections += _head(trace, rows, i, j_only, label)
    if j_only is None:
        sections += _merge(trace, _Rows(trace, batch, 0), i, heads)
    return sections


def _key_index(trace: Trace, key: str | int) -> int:
    """The column of a key given as a token or a 0-based index (an ``int`` always an index).

    Raises: InputError naming the keys when neither matches."""
    if isinstance(key, str) and key in trace.key_tokens:
        return trace.key_tokens.index(key)
    try:
        index = key if isinstance(key, int) else int(key)
    except ValueError:
        index = None
    if index is not None and -len(trace.key_tokens) <= index < len(trace.key_tokens):
        return index % len(trace.key_tokens)
    raise InputError(f"--key {key!r}: no such token or index; the keys are "
                     f"{', '.join(trace.key_tokens)}")


def _vector(values, kind: Kind = Kind.result) -> Vector:
    return Vector(tuple(float(v) for v in values), kind)


def _kind(result: bool) -> Kind:
    return Kind.result if result else Kind.given


def _products(a, b, a_kind: Kind, b_kind: Kind) -> Sum:
    """a₁×b₁ + a₂×b₂ + …: the factors, as the reader multiplies them by hand."""
    return Sum(tuple(Product((Number(float(x), a_kind), Number(float(y), b_kind)))
                     for x, y in zip(a, b, strict=True)))


def _titled(title: str, label: str) -> Words:
    return (f"{title} ({label})",)


def _words(*pieces: str | Number) -> Words:
    """Prose with numbers in it, neighbouring words joined: ("the largest score is ",
    Number(0.78), ", key Hello")."""
    out: list[str | Number] = []
    for piece in pieces:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        else:
            out.append(piece)
    return tuple(out)


def _head(trace: Trace, rows: _Rows, i: int, j_only: int | None, label: str) -> list[Section]:
    keys_range = range(len(trace.key_tokens)) if j_only is None else [j_only]
    q, keys, values = rows(_scored(trace, "queries"), i), rows(_scored(trace, "keys")), \
        rows("values")
    projected = set(trace.run.projected)
    sections = []
    if projected:
        sections.append(_projections(trace, rows, i, keys_range, projected, label,
                                     values=j_only is None))
    if "normed_queries" in trace:
        sections.append(_qk_norm(trace, rows, i, label))
    if "rotated_queries" in trace and rows.head == 0:  # every head turns by the same angles
        sections.append(_rope(trace, rows, i, label))
    s = rows("scores", i)
    scores = []
    for j in keys_range:
        terms = _score_terms(trace, q, keys[j], _kind("W_q" in projected),
                             _kind("W_k" in projected))
        scores.append(Equation(f"score({trace.query_tokens[i]}, {trace.key_tokens[j]})",
                               (*terms, Number(float(s[j])))))
    sections.append(Section(_titled("Scores", label), tuple(scores),
                            notes=_grouping(trace, rows.head)))
    last = s
    # the steps between the scores and the weights, in the trace's order: each a section
    for name in trace.names()[trace.names().index("scores") + 1:]:
        if name not in N_BY_N or name in ("weights", "dropped_weights"):
            continue
        now = rows(name, i)
        if name == "scaled_scores":
            factor, d_k = trace.run.scale, trace.run.d_k
            by_root = np.isclose(factor, 1 / np.sqrt(d_k), rtol=1e-15, atol=0)
            equations = []
            for j in keys_range:
                step = (Fraction(Number(float(last[j])), Root(Number(d_k, Kind.option)))
                        if by_root else Product((Number(float(last[j])),
                                                 Number(factor, Kind.option))))
                equations.append(Equation(f"scaled({trace.key_tokens[j]})",
                                          (step, Number(float(now[j])))))
            sections.append(Section(_titled("Scaling", label), tuple(equations)))
        elif name == "capped_scores":  # C·tanh(s / C): Gemma 2's soft-capping
            cap = Number(trace.run.softcap, Kind.option)
            equations = [Equation(f"capped({trace.key_tokens[j]})", (
                Product((cap, Tanh(Fraction(Number(float(last[j])), cap)))),
                Product((cap, Tanh(Number(float(last[j]) / trace.run.softcap)))),
                Number(float(now[j])))) for j in keys_range]
            sections.append(Section(_titled("Soft-capping", label), tuple(equations), notes=(
                _words("each score is kept within ±", cap, ", nearly unchanged where it is "
                       "much smaller, as Gemma 2's attn_logit_softcapping does"),)))
        elif name == "bias":
            sections.append(_bias(trace, rows.head, i, keys_range, now, label))
        elif name == "biased_scores":  # the score + the bias
            bias = rows("bias", i)
            equations = [Equation(f"biased({trace.key_tokens[j]})", (
                Sum((Number(float(last[j])), _bracketed(float(bias[j])))), Number(float(now[j]))))
                for j in keys_range]
            sections.append(Section(_titled("Bias added", label), tuple(equations)))
            last = now
            continue
        elif name == "masked_scores":
            blocked = [trace.key_tokens[j] for j in keys_range if np.isneginf(now[j])]
            sections.append(Section(_titled("Mask", label), notes=((
                "masked keys get minus infinity before the softmax: "
                + (", ".join(blocked) if blocked else "none here"),),)))
        else:  # a score modification explain has no words of its own for: its values
            sections.append(Section(_titled(name, label), tuple(
                Equation(f"{name}({trace.key_tokens[j]})", (Number(float(now[j])),))
                for j in keys_range), notes=((trace.step(name).formula,),)))
        if name == "bias":  # added to the scores, not a score itself
            continue
        last = now
    if j_only is not None:
        return sections
    sections += _normalize(trace, rows, i, last, label)
    sections += _weighted_sum(trace, rows, i, values, label, "W_v" in projected)
    return sections


def _grouping(trace: Trace, head: int) -> tuple[Words, ...]:
    """Which KV head query head ``head`` uses, with grouped-query attention (none without)."""
    run = trace.run
    G = None if run is None else run.kv_heads
    if G is None or G == run.heads:
        return ()
    per = run.heads // G
    g = head // per
    return ((f"grouped-query attention: query head {head} uses KV head ⌊{head} / {per}⌋ = {g} "
             f"(its keys and values), shared by query heads {g * per}–{g * per + per - 1}",),)


def _bracketed(value: float) -> Term:
    """A negative term of a sum in brackets: 0.7842 + (−0.0039)."""
    return Group(Number(value)) if value < 0 else Number(value)


def _bias(trace: Trace, head: int, i: int, keys_range, bias, label: str) -> Section:
    """ALiBi's −m_h·|i + offset − j| for one query row (plus the given bias), one key a line;
    without ALiBi the given bias's values."""
    run = trace.run
    if run.alibi_slopes is None:
        return Section(_titled("Bias", label), tuple(
            Equation(f"bias({trace.key_tokens[j]})", (Number(float(bias[j]), Kind.given),))
            for j in keys_range), notes=(("the problem's bias, added to the scores",),))
    m = run.alibi_slopes[head]
    bottom_right = run.causal_align.value == "bottom-right"
    offset = len(trace.key_tokens) - len(trace.query_tokens) if bottom_right else 0
    equations = []
    for j in keys_range:
        alibi = Product((Number(-m, Kind.option), Number(abs(i + offset - j), Kind.option)))
        given = float(bias[j]) + m * abs(i + offset - j)
        side = Sum((alibi, Number(given, Kind.given))) if run.bias_given else alibi
        equations.append(Equation(f"bias({trace.key_tokens[j]})", (side, Number(float(bias[j])))))
    where = f"i + {offset}" if offset else "i"
    notes = (_words("ALiBi: bias = −m_h × |", where, " − j|, the distance from this query to "
                    "each key, with head ", Number(head, Kind.option), "'s slope m_h = ",
                    Number(m, Kind.option), " (Press et al. 2022); nearer keys lose less"),)
    if run.bias_given:
        notes += (("plus the problem's bias",),)
    return Section(_titled("Bias (ALiBi)", label), tuple(equations), notes=notes)


def _scored(trace: Trace, name: str) -> str:
    """The step the score reads for ``name`` (queries or keys): its last form before the
    scores, rotated (RoPE) or normed (QK-norm), else the projection itself."""
    return next((step for step in (f"rotated_{name}", f"normed_{name}") if step in trace), name)


def _qk_norm(trace: Trace, rows: _Rows, i: int, label: str) -> Section:
    """The RMSNorm of one query row: mean(q²) = (q₁×q₁ + …) / d, then
    normed_q = q / √(mean(q²) + ε) · w; per head, or over the whole projection (the mean of
    every head's numbers of the token, a note says so)."""
    run, token = trace.run, trace.query_tokens[i]
    q, normed = rows("queries", i), rows("normed_queries", i)
    whole = run.qk_norm.value == "whole"
    eps = run.qk_norm_eps
    w = np.asarray(trace.inputs["q_norm"], dtype=np.float64)
    if whole:  # this head's slice of w; the mean over all the heads of the token
        d = len(q)
        w = w[rows.head * d:(rows.head + 1) * d]
        data, axes = trace["queries"], trace.step("queries").axes
        picks = {"batch": rows.batch, "query": i}
        for axis in reversed(range(len(axes))):
            if axes[axis] in picks:
                data = np.take(data, picks[axes[axis]], axis=axis)
        squared = np.reshape(data, -1)  # every head's numbers of the token
    else:
        squared = q
    mean = float(np.mean(np.square(squared)))
    mean_side = (Fraction(Group(_products(squared, squared, Kind.result, Kind.result)),
                          Number(len(squared), Kind.option)), Number(mean))
    gain = w + run.qk_norm_offset
    rms = Root(Group(Sum((Number(mean), Number(eps, Kind.option)))))
    equations = (Equation(f"mean(q({token})²)", mean_side),
                 Equation(f"normed q({token})",
                          (Product((Fraction(_vector(q), rms), _vector(gain, Kind.given))),
                           _vector(normed))))
    notes: list[Words] = []
    if whole:
        notes.append(("the mean is over the whole projection of the token, every head's "
                      "numbers (OLMo2), not over this head's alone",))
    if run.qk_norm_offset != 0.0:
        notes.append(_words("the weights are ", Number(run.qk_norm_offset, Kind.option),
                            " + q_norm (Gemma 3)"))
    notes.append(("the keys are normed likewise, with k_norm",))
    return Section(_titled("QK-norm", label), equations, tuple(notes))


def _rope(trace: Trace, rows: _Rows, i: int, label: str) -> Section:
    """RoPE's rotation of the first pair (i = 0) of one query row, with its numbers: the
    position p, angle = p × f_0 (f_0 = θ^(−2·0/R) = 1, or as rope_scaling changes it), cos,
    sin, and (x_a, x_b) → (x_a cos − x_b sin, x_a sin + x_b cos); a note for the other pairs.
    Source: Su et al. 2021 (RoFormer), eq. 34; transformers' apply_rotary_pos_emb."""
    run, token = trace.run, trace.query_tokens[i]
    rope = run.rope
    R = rope.rotary_dim
    a, b = (0, 1) if rope.interleaved else (0, R // 2)
    before = "normed_queries" if "normed_queries" in trace else "queries"
    x = rows(before, i)
    turned = rows("rotated_queries", i)
    positions = rope.positions[min(rows.batch, rope.positions.shape[0] - 1)]
    p, f0, gain = int(positions[i]), float(rope.freqs.inv_freq[0]), rope.freqs.attention_factor
    angle = p * f0
    cos, sin = np.cos(angle) * gain, np.sin(angle) * gain
    kind = _kind("W_q" in run.projected or before != "queries")
    xa, xb = Number(float(x[a]), kind), Number(float(x[b]), kind)
    c, s = Number(float(cos)), Number(float(sin))

    def trig(name: str, value: float) -> Equation:  # cos(angle) (× the attention factor)
        if gain == 1.0:
            return Equation(f"{name}(angle)", (Number(float(value)),))
        return Equation(f"{name}(angle)", (Product((Number(float(value / gain)),
                                                    Number(gain, Kind.option))),
                                           Number(float(value))))

    equations = (
        Equation("position", (Number(p, Kind.option),)),
        Equation("angle = position × " + ("f_0" if rope.scaling else f"θ^(−2·0/{R})"),
                 (Product((Number(p, Kind.option), Number(f0, Kind.option))), Number(angle))),
        trig("cos", cos), trig("sin", sin),
        Equation(f"q′[{a}]", (Difference(Product((xa, c)), Product((xb, s))),
                              Number(float(turned[a])))),
        Equation(f"q′[{b}]", (Sum((Product((xa, s)), Product((xb, c)))),
                              Number(float(turned[b])))))
    layout = ("interleaved: pair i is dims (2i, 2i + 1)" if rope.interleaved
              else f"half: pair i is dims (i, i + {R // 2})")
    notes: list[Words] = [
        _words(f"pair 0 of q({token}), dims ({a}, {b}) ({layout}), turned by angle = "
               f"position × θ^(−2i/{R}), θ = ", Number(rope.theta, Kind.option),
               ", i = 0: x_a′ = x_a cos − x_b sin, x_b′ = x_a sin + x_b cos"),
        _others(p, rope.freqs.inv_freq, R)]
    if rope.scaling is not None:
        notes.append((f"θ^(−2i/{R}) as rope_scaling {rope.freqs.rope_type} changes it",))
    if gain != 1.0:
        notes.append(_words("cos and sin multiplied by the attention factor ",
                            Number(gain, Kind.option)))
    if R < len(x):
        notes.append((f"dims {R} … {len(x) - 1} of the head are not turned (partial rotary)",))
    notes.append(("every head's queries turn by the same angles; the keys are turned likewise, "
                  "each at its own key position",))
    return Section(_titled("RoPE", label), equations, tuple(notes))


def _others(p: int, inv_freq, R: int) -> Words:
    """The note on the pairs after the first: the same turn, each by its own angle p × f_i
    (the first three written out)."""
    if R == 2:
        return ("this is the only pair (R = 2)",)
    angles: list[str | Number] = []
    for k in range(1, min(R // 2, 4)):
        angles += [f"{', ' if angles else ''}pair {k}: ", Number(float(p * inv_freq[k]))]
    last = ("the other pair i = 1 turns the same way, by its own" if R == 4 else
            f"the other pairs i = 1 … {R // 2 - 1} turn the same way, each by its own")
    return _words(f"{last} angle position × θ^(−2i/{R}) (",
                  *angles, ", …)" if R // 2 > 4 else ")")


def _projections(trace: Trace, rows: _Rows, i: int, keys_range, projected: set[str],
                 label: str, values: bool) -> Section:
    """q(token) = x(token) W_q + b_q = [the queries' row], and the same for keys and values
    (the values only with the whole row)."""
    sources = {"q": "x", "k": trace.run.key_from, "v": trace.run.value_from}
    biases = set(trace.run.biases)

    def side(name: str, token: str) -> Term:
        product = Product((Row(sources[name], token), Symbol(f"W_{name}")), Op.matmul)
        return Sum((product, Symbol(f"b_{name}"))) if f"b_{name}" in biases else product

    equations = []
    if "W_q" in projected:
        token = trace.query_tokens[i]
        equations.append(Equation(f"q({token})", (side("q", token),
                                                  _vector(rows("queries", i)))))
    for name, step in (("k", "keys"), ("v", "values")):
        if f"W_{name}" not in projected or (name == "v" and not values):
            continue
        for j in keys_range:
            token = trace.key_tokens[j]
            equations.append(Equation(f"{name}({token})", (side(name, token),
                                                           _vector(rows(step)[j]))))
    return Section(_titled("Projections", label), tuple(equations))


def _score_terms(trace: Trace, q, k, q_kind: Kind, k_kind: Kind) -> list[Term]:
    """The sides of one score before its value: the sum of products q·k; for the general
    score (q W_a)·k first; for the additive one v_a·tanh(q W_a + k U_a + b_a)."""
    score, given = trace.run.score, trace.inputs
    if score is Score.general:
        qW = q @ given["W_a"]
        return [Product((Group(Product((_vector(q, q_kind), Symbol("W_a")), Op.matmul)),
                         Symbol("k")), Op.dot),
                Product((_vector(qW), _vector(k, k_kind)), Op.dot),
                _products(qW, k, Kind.result, k_kind)]
    if score is Score.additive:
        hidden = q @ given["W_a"] + k @ given["U_a"]
        if "b_a" in given:
            hidden = hidden + given["b_a"]
        return [Product((Symbol("v_a"), Tanh(_vector(hidden))), Op.dot),
                _products(given["v_a"], np.tanh(hidden), Kind.given, Kind.result)]
    return [_products(q, k, q_kind, k_kind)]


def _normalize(trace: Trace, rows: _Rows, i: int, last, label: str) -> list[Section]:
    weights = rows("weights", i)
    tokens = trace.key_tokens
    if trace.run.normalize is Normalize.hard:
        title = _titled("Weights, hard attention", label)
        if np.isfinite(last).any():
            best = int(np.argmax(last))
            note = _words("the largest score is ", Number(float(last[best])),
                          f", key {tokens[best]}: its weight is 1, every other weight 0")
        else:
            note = ("every key is masked: all weights are 0",)
        return [Section(title, notes=(note,))]
    temperature = trace.run.temperature
    topk = trace.run.normalize is Normalize.top_k
    kept = np.isfinite(last) & (weights > 0) if topk else np.isfinite(last)
    # with sinks (gpt-oss), the head's sink logit is one more term of the softmax's sum
    sink = (float(np.asarray(trace.inputs["sinks"])[rows.head]) / temperature
            if trace.run.sinks else None)
    if not kept.any():
        return [Section(_titled("Weights", label), notes=((
            "every key is masked: all weights are 0 and the context is 0"
            + (" (the sink takes the whole row)" if sink is not None else ""),),))]
    tempered = last / temperature
    logits = [*tempered[kept], *([] if sink is None else [sink])]
    shift = float(np.max(logits)) if np.max(np.abs(logits)) > 30 else 0.0
    of: Words = ("scores",) if temperature == 1.0 else (
        "scores / ", Number(temperature, Kind.option))
    if sink is not None:
        of += (" and the sink",) if temperature == 1.0 else (
            " and the sink / ", Number(temperature, Kind.option))
    if shift:
        of += (" minus their maximum ", Number(shift), ", so that e^x stays finite")
    title = _words("Exponentials of the ", *of, f" ({label})")
    exps = {int(j): float(np.exp(tempered[j] - shift)) for j in np.flatnonzero(kept)}
    notes: tuple[Words, ...] = ()
    if topk:
        notes = ((f"top-{trace.run.top_k}: only the largest scores are kept",),)
    equations = [Equation(f"exp({tokens[j]})", (Exp(Number(float(tempered[j] - shift))),
                                                Number(e))) for j, e in exps.items()]
    sink_exp = None
    if sink is not None:
        sink_exp = float(np.exp(sink - shift))
        plain = temperature == 1.0 and not shift  # the sink logit as the problem gives it
        equations.append(Equation("exp(sink)", (Exp(Number(sink - shift, _kind(not plain))),
                                                Number(sink_exp))))
        whose = f"head {rows.head}'s" if trace.run.heads > 1 else "its"
        notes += (_words(f"the sink: {whose} logit ",
                         Number(float(np.asarray(trace.inputs["sinks"])[rows.head]),
                                Kind.given), " from the problem's sinks, not scaled or "
                         "masked (gpt-oss)"),)
    exponentials = Section(title, tuple(equations), notes)
    terms = [*exps.values(), *([] if sink_exp is None else [sink_exp])]
    total = sum(terms)
    sums = Section(_titled("Sum", label), (
        Equation("sum", (Sum(tuple(Number(e) for e in terms)), Number(total))),),
        notes=() if sink_exp is None else (
            ("the sink's exponential is in the sum: the weights of the keys sum to less "
             "than 1",),))
    shares = []
    for j, token in enumerate(tokens):
        if j in exps:
            shares.append(Equation(f"weight({token})", (
                Fraction(Number(exps[j]), Number(total)), Number(float(weights[j])))))
        else:
            shares.append(Equation(f"weight({token})", (Number(0.0),)))
    weight_notes: tuple[Words, ...] = ()
    if sink_exp is not None:  # the sink's share, then dropped
        share = float(rows("sink_weights", i))
        shares.append(Equation("sink", (Fraction(Number(sink_exp), Number(total)),
                                        Number(share))))
        weight_notes = (_words("the sink's column is dropped: the weights of the keys sum to "
                               "1 − ", Number(share), " = ", Number(float(np.sum(weights)))),)
    return [exponentials, sums, Section(_titled("Weights", label), tuple(shares), weight_notes)]


def _weighted_sum(trace: Trace, rows: _Rows, i: int, values, label: str,
                  projected: bool) -> list[Section]:
    name = "dropped_weights" if "dropped_weights" in trace else "weights"
    weights = rows(name, i)
    sections = []
    if name == "dropped_weights":
        p = trace.run.dropout
        plain = rows("weights", i)
        equations = []
        for j, token in enumerate(trace.key_tokens):
            kept = weights[j] != 0 or plain[j] == 0
            factor = (Number(1 / (1 - p), Kind.option) if kept
                      else Annotated(Number(0, Kind.given), "(dropped)"))
            equations.append(Equation(f"dropped({token})", (
                Product((Number(float(plain[j])), factor)), Number(float(weights[j])))))
        sections.append(Section(("Dropout, p = ", Number(p, Kind.option),
                                 f": kept weights × 1/(1 − p) ({label})"), tuple(equations)))
    equations, parts = [], []
    for j, token in enumerate(trace.key_tokens):
        weight = Number(float(weights[j]))
        product = _vector(weights[j] * values[j])
        parts.append(product)
        equations.append(Equation(f"weighted({token})", (
            Product((weight, Row("v", token))),
            Product((weight, _vector(values[j], _kind(projected)))), product)))
    context = rows("head_context" if "head_context" in trace else "context", i)
    total = Section(_titled("Context", label), (
        Equation("context", (Sum(tuple(parts)), _vector(context))),))
    return [*sections, Section(_titled("Weighted values", label), tuple(equations)), total]


def _merge(trace: Trace, rows: _Rows, i: int, heads: int) -> list[Section]:
    """Heads concatenated (several heads) and the output projection context W_o + b_o."""
    sections = []
    context = _vector(rows("context", i))
    token = trace.query_tokens[i]
    if heads > 1:
        parts = tuple(_vector(_Rows(trace, rows.batch, h)("head_context", i))
                      for h in range(heads))
        sections.append(Section((f"Heads concatenated ({token})",), (
            Equation("context", (Concat(parts), context)),)))
    if "output" in trace:
        side: Term = Product((context, Symbol("W_o")), Op.matmul)
        if "b_o" in trace.run.biases:
            side = Sum((side, Symbol("b_o")))
        sections.append(Section((f"Output projection ({token})",), (
            Equation("output", (side, _vector(rows("output", i)))),)))
    return sections
