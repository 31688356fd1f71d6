"""Attention problems with hand-friendly numbers: inputs a student can work with pencil and
paper, drawn at random from a seed until every rule below holds.

The rules (each checked on the problem's own :class:`attncli.trace.Trace`, as
:func:`attncli.attend` computes it; :func:`hand_friendly` names the first one broken):

1. **Small integers.** Every x (and memory) entry is one of −1, 0, 1, 2 (with
   ``--numbers tenths``: one decimal, −1.0 … 1.0); every entry of W_q, W_k, W_v, W_o, W_a,
   U_a, v_a and of the sink logits is −1, 0 or 1. Most weights are 0: an entry of a matrix
   with d_in rows is ±1 with probability min(1/2, 1.5/d_in), so each number of x·W sums one
   or two products. No row of x (or memory) is all zero (a token with no features), and no
   column of a weight matrix (nor v_a) is all zero (a dead feature).
2. **An exact scale.** With the scaled dot-product score and no --scale, d_head is a perfect
   square, so 1/√d_head is exact: 1, 4 → 1/2, 9 → 1/3, 16 → 1/4. Other head widths are
   refused before anything is drawn.
3. **Small scores.** Every scaled score (the scores themselves when nothing scales them),
   masked ones too (a student works the whole matrix before masking), lies in [−4, 4], so
   each exponential is one of a few easy numbers (e⁻⁴ … e⁴); with integer inputs and the
   default scale the scaled scores are integers, halves, thirds or quarters.
4. **No trivial softmax row.** Among the keys a row may attend to (masked keys left out; with
   top-k, its k largest), the weights rounded to 4 decimals are not all equal (uniform) and
   none is 1.0000 (one-hot). A row with one such key is exempt (causal row 0, a window 0,
   ``--top-k 1``), and so is hard attention, one-hot by definition. Off when asked
   (``allow_uniform``).
5. **No ties** where a choice is made: with hard attention each row's largest score over its
   allowed keys is unique; with top-k the k-th largest differs from the (k+1)-th.
6. **Every head.** With several heads the rules hold in each of them.

Options with numbers of their own get hand-friendly ones too: ALiBi's slopes are given as
1/2, 1/4, … (m_h = 2^−(h+1), Press et al.'s slopes for 8 heads, the first H), --qk-norm's
weights as the identity (1 − offset), dropout's mask is drawn and given (``dropout_mask``),
the additive score's width d_att is min(d_head, 2). RoPE, soft-capping, temperature and
QK-norm keep their own arithmetic (cosines, tanh, square roots): the rules still hold, but the
numbers after them are no longer small.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from attncli.config import (
    OPTIONS,
    AttentionConfig,
    Backend,
    DType,
    Layout,
    Normalize,
    Score,
    as_flags,
)
from attncli.errors import AttncliError, InputError
from attncli.problem import Problem

if TYPE_CHECKING:
    from attncli.trace import Trace

#: Token labels: short, distinct, lower-case words (a problem draws its tokens from these).
WORDS: tuple[str, ...] = (
    "cat", "sun", "sat", "dog", "ran", "red", "sky", "big", "owl", "fox", "hat", "cup", "map",
    "pen", "box", "egg", "ice", "jam", "kit", "leg", "mud", "net", "oak", "pig", "rug", "sea",
    "tea", "van", "web", "yak", "zoo", "ant", "bee", "cow", "day", "ear", "fig", "gem", "hen",
    "ink",
)
#: x's values (integers) and the weights' values: rule 1
X_VALUES = (-1, 0, 1, 2)
X_PROBABILITIES = (0.2, 0.3, 0.35, 0.15)
W_VALUES = (-1, 0, 1)
#: a weight matrix's entries are −1 or 1 with probability min(1/2, NONZEROS / d_in), else 0:
#: each product x W sums about NONZEROS terms, whatever the width (rule 3 then holds at once)
NONZEROS = 1.5
#: the bound of every (scaled) score: rule 3
SCORE_BOUND = 4.0
#: perfect squares d_head may be with a scaled dot-product score: rule 2
SQUARES = (1, 4, 9, 16)
MAX_TOKENS = 12
_PROJECTIONS = ("W_q", "W_k", "W_v", "W_o")
MAX_D_MODEL = 32
RULES = {
    1: "small integer inputs, no dead feature",
    2: "an exact scale 1/√d_head",
    3: f"scaled scores in [−{SCORE_BOUND:g}, {SCORE_BOUND:g}]",
    4: "no uniform or one-hot softmax row",
    5: "no tie for the largest scores",
}


@dataclass(frozen=True)
class Spec:
    """The size and kind of an exercise (the options of ``attncli exercise`` that are not the
    variant's).

    Fields:
        tokens: n, the sequence length (1 … 12).
        d_model: D = d_in, the width of x and of W_q/W_k/W_v's inputs.
        heads: H; d_head = D // H.
        kv_heads: G (grouped-query attention): W_k, W_v are D × G·d_head; None: G = H.
        numbers: "integers" (x in −1 … 2) or "tenths" (x with one decimal in [−1, 1]).
        memory_tokens: the memory's length for cross-attention (None: self-attention).
        output: include W_o (D × D).
        allow_uniform: let softmax rows be uniform or one-hot (rule 4 off).
        sinks: include per-head sink logits (H,) (the sinks variant, gpt-oss).
    """

    tokens: int
    d_model: int
    heads: int = 1
    kv_heads: int | None = None
    numbers: str = "integers"
    memory_tokens: int | None = None
    output: bool = False
    allow_uniform: bool = False
    sinks: bool = False

    @property
    def d_head(self) -> int:
        return self.d_model // self.heads


def variant_seed(assignment: str, student: str) -> int:
    """A student's seed for an assignment: the first 8 bytes of the SHA-256 of the two strings
    (joined as the JSON list ``["assignment", "student"]``, UTF-8, so no two pairs share a
    text), as a big-endian integer shifted to 63 bits (numpy's and torch's seed range). The
    same on every run and platform."""
    text = json.dumps([assignment, student], ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def make_problem(spec: Spec, config: AttentionConfig, seed: int,
                 max_tries: int = 2000) -> dict[str, Any]:
    """A problem with hand-friendly numbers (the module's rules), the same for the same seed.

    Shapes (in_out layout; transposed W's and ``weight_layout`` when the config is out_in):
        tokens [n] words; x (n, D); memory (m, D) and memory_tokens [m] with memory_tokens
        W_q (D, H·d_head); W_k, W_v (D, G·d_head); W_o (D, D) with spec.output
        W_a (d_head, d_head) for the general score; W_a, U_a (d_head, d_att), v_a (d_att,)
        for the additive one; sinks (H,); alibi_slopes (H,); q_norm, k_norm (d_head,) or
        whole; dropout_mask (n, m) or (H, n, m); config {"heads", "kv_heads"} when H > 1
    Returns: a mapping of JSON values (ints; floats with one decimal for tenths) for
        :meth:`Problem.from_mapping` or ``json.dumps``.
    Raises: InputError naming the options, when the rules cannot hold for them (rule 2, a
        size out of range, an option the pipeline refuses) or when ``max_tries`` draws all
        break a rule (naming the rule broken most often).
    Source: the candidates are drawn by ``numpy.random.default_rng(seed)``; each is run
    through :func:`attncli.attend` and kept when :func:`hand_friendly` finds no broken rule.
    """
    _refuse(spec, config)
    run = config.replace(heads=spec.heads, kv_heads=spec.kv_heads, backend=Backend.numpy,
                         device="cpu", dtype=DType.float64)
    from attncli import attend

    rng = np.random.default_rng(seed)
    m = spec.memory_tokens or 0
    words = [WORDS[i] for i in rng.choice(len(WORDS), spec.tokens + m, replace=False)]
    broken: Counter[int] = Counter()
    for _ in range(max_tries):
        drawn = _draw(rng, spec, config)
        fault = _dead(drawn)
        if fault is None:
            mapping = _completed(drawn, words, spec, config)
            try:
                trace = attend(Problem.from_mapping(mapping, "exercise"), run)
            except AttncliError as exc:
                raise InputError(f"{describe(spec, config)}: {exc}") from None
            fault = hand_friendly(trace, config, spec)
            if fault is None:
                return {k: _json(v) if isinstance(v, np.ndarray) else v
                        for k, v in mapping.items()}
        broken[int(fault.split(":")[0].removeprefix("rule "))] += 1
    rule, count = broken.most_common(1)[0]
    raise InputError(f"{describe(spec, config)}: no hand-friendly problem in {max_tries} draws "
                     f"(seed {seed}); rule {rule}, {RULES[rule]}, failed most ({count} "
                     "times); try fewer tokens, a smaller --d-model, or more heads")


def describe(spec: Spec, config: AttentionConfig) -> str:
    """The options of an exercise as a command line: ``--tokens 3 --d-model 4 --causal``."""
    words = [f"--tokens {spec.tokens}", f"--d-model {spec.d_model}"]
    if spec.heads != 1:
        words.append(f"--heads {spec.heads}")
    if spec.kv_heads is not None:
        words.append(f"--kv-heads {spec.kv_heads}")
    if spec.memory_tokens is not None:
        words.append(f"--memory-tokens {spec.memory_tokens}")
    if spec.numbers != "integers":
        words.append(f"--numbers {spec.numbers}")
    changed = {k: v for k, v in config.changed().items()
               if k not in ("heads", "kv_heads") and OPTIONS[k].file}
    return " ".join(words + as_flags(changed))


def resolved_score(config: AttentionConfig) -> Score:
    """The score function a run of a make_problem problem uses: the config's, else scaled
    dot-product with the projections (which make_problem always gives) and dot without."""
    return config.score or (Score.scaled_dot if config.project else Score.dot)


def _refuse(spec: Spec, config: AttentionConfig) -> None:
    """Raises: InputError for options no hand-friendly problem can have."""
    where = describe(spec, config)
    sizes = [("--tokens", spec.tokens)]
    if spec.memory_tokens is not None:
        sizes.append(("--memory-tokens", spec.memory_tokens))
    for flag, n in sizes:
        if not 1 <= n <= MAX_TOKENS:
            raise InputError(f"{flag} {n}: an exercise has 1 … {MAX_TOKENS} tokens")
    if not 1 <= spec.d_model <= MAX_D_MODEL:
        raise InputError(f"--d-model {spec.d_model}: an exercise has 1 … {MAX_D_MODEL} "
                         "features")
    if spec.numbers not in ("integers", "tenths"):
        raise InputError(f"--numbers {spec.numbers}: expected integers or tenths")
    if spec.heads < 1 or spec.d_model % spec.heads:
        raise InputError(f"--d-model {spec.d_model} --heads {spec.heads}: d_model must be a "
                         "multiple of the heads (d_head = d_model / heads)")
    if spec.kv_heads is not None and (spec.kv_heads < 1 or spec.heads % spec.kv_heads):
        raise InputError(f"--heads {spec.heads} --kv-heads {spec.kv_heads}: the heads must be "
                         "a multiple of the key/value heads")
    for name in ("heads", "kv_heads"):
        given = getattr(config, name)
        if given is not None and given != getattr(spec, name):
            raise InputError(f"{where}: the config's {OPTIONS[name].flag} {given} differs from "
                             f"the exercise's; give {OPTIONS[name].flag} once")
    if spec.output and not config.project:
        raise InputError(f"{where}: the output step needs W_o, which --no-project leaves out")
    d = spec.d_head
    if resolved_score(config) is Score.scaled_dot and config.scale is None and (
            d not in SQUARES and math.isqrt(d) ** 2 != d):
        best = min(SQUARES, key=lambda s: (abs(s * spec.heads - spec.d_model), s))
        raise InputError(f"--d-model {spec.d_model} --heads {spec.heads}: d_head {d} is not a "
                         "perfect square, so 1/√d_head is not exact; use d_head 1, 4, 9 or 16 "
                         f"(e.g. --d-model {best * spec.heads}), or --no-scale")


def _draw(rng: np.random.Generator, spec: Spec, config: AttentionConfig) -> dict[str, Any]:
    """One candidate: the inputs with rule 1's values (in_out layout), as numpy arrays."""
    D, H, d = spec.d_model, spec.heads, spec.d_head
    G = spec.kv_heads or H

    # Without projections the scores are x·x (or x·memory) themselves: a row whose own scaled
    # score |x_i|²·scale is within the bound keeps every score of it within (Cauchy–Schwarz).
    score = resolved_score(config)
    plain = not config.project and score in (Score.dot, Score.scaled_dot)
    scale = config.scale or (1 / math.sqrt(d) if score is Score.scaled_dot else 1.0)
    limit = SCORE_BOUND / abs(scale) if plain else math.inf

    def inputs(rows: int) -> np.ndarray:  # (rows, D), no row all zero
        if spec.numbers == "tenths":
            return _live(lambda n: rng.integers(-10, 11, size=(n, D)) / 10, rows, limit)
        return _live(lambda n: rng.choice(X_VALUES, size=(n, D), p=X_PROBABILITIES), rows,
                     limit)

    def weights(d_in: int, *width: int) -> np.ndarray:  # (d_in, *width), no column all zero
        p = min(0.5, NONZEROS / d_in) / 2  # of −1, and of 1: about NONZEROS terms per sum
        columns = _live(lambda n: rng.choice(W_VALUES, size=(n, d_in), p=(p, 1 - 2 * p, p)),
                        math.prod(width))
        return columns.T.reshape(d_in, *width)

    out: dict[str, Any] = {"x": inputs(spec.tokens)}
    if spec.memory_tokens is not None:
        out["memory"] = inputs(spec.memory_tokens)
    if config.project:
        out.update(W_q=weights(D, H * d), W_k=weights(D, G * d), W_v=weights(D, G * d))
        if spec.output:
            out["W_o"] = weights(D, D)
    if score is Score.general:
        out["W_a"] = weights(d, d)
    elif score is Score.additive:
        d_att = min(d, 2)
        out.update(W_a=weights(d, d_att), U_a=weights(d, d_att), v_a=weights(d_att, 1)[:, 0])
    if spec.sinks:
        out["sinks"] = rng.choice(W_VALUES, size=H)
    if config.dropout > 0:
        keys = spec.memory_tokens or spec.tokens
        shape = ((H,) if H > 1 else ()) + (spec.tokens, keys)
        out["dropout_mask"] = rng.random(shape) >= config.dropout
    return out


def _live(draw, count: int, limit: float = math.inf) -> np.ndarray:
    """``draw(count)``, (count, d), with each row that is all zero (or whose squared length is
    past ``limit``) drawn again until none is: the same as drawing the whole until no row is,
    without throwing the others away."""
    rows = draw(count)
    while True:
        length = np.sum(rows * rows, axis=1)
        dead = (length == 0) | (length > limit + 1e-9)
        if not dead.any():
            return rows
        rows[dead] = draw(int(dead.sum()))


def _dead(mapping: dict[str, Any]) -> str | None:
    """Rule 1's dead features: an all-zero row of x or memory, column of a W, or v_a."""
    for key in ("x", "memory"):
        if key in mapping and not np.all(np.any(mapping[key] != 0, axis=1)):
            return f"rule 1: a row of {key} is all zero"
    for key in ("W_q", "W_k", "W_v", "W_o", "W_a", "U_a"):
        if key in mapping and not np.all(np.any(mapping[key] != 0, axis=0)):
            return f"rule 1: a column of {key} is all zero"
    if "v_a" in mapping and not np.any(mapping["v_a"]):
        return "rule 1: v_a is all zero"
    return None


def _completed(drawn: dict[str, np.ndarray], words: list[str], spec: Spec,
               config: AttentionConfig) -> dict[str, Any]:
    """The problem of a candidate: its token labels, the draws (in the config's weight
    layout), the inputs the config needs besides the draws, and the heads."""
    H = spec.heads
    out_in = config.weight_layout is Layout.out_in
    done: dict[str, Any] = {"tokens": words[:spec.tokens]}
    if spec.memory_tokens is not None:
        done["memory_tokens"] = words[spec.tokens:]
    for key, value in drawn.items():
        done[key] = value.T if out_in and key in _PROJECTIONS else value
    if out_in:
        done["weight_layout"] = Layout.out_in.value
    if config.alibi:
        done["alibi_slopes"] = [2.0 ** -(h + 1) for h in range(H)]
    if config.qk_norm is not None:
        from attncli.config import QKNorm

        whole = config.qk_norm is QKNorm.whole
        G = spec.kv_heads or H
        one = 1.0 - config.qk_norm_offset
        done["q_norm"] = [one] * (spec.d_head * (H if whole else 1))
        done["k_norm"] = [one] * (spec.d_head * (G if whole else 1))
    facts = {k: v for k, v in (("heads", H), ("kv_heads", spec.kv_heads))
             if v is not None and (H > 1 or k == "kv_heads")}
    if facts:
        done["config"] = facts
    return done


def _json(value: np.ndarray) -> Any:
    """An array as nested lists of ints, or of floats with one decimal (tenths)."""
    if value.dtype.kind == "f":
        return np.round(value, 1).tolist()
    return value.astype(int).tolist()


def hand_friendly(trace: Trace, config: AttentionConfig, spec: Spec) -> str | None:
    """The first of the module's rules that ``trace`` (a run of a make_problem candidate with
    ``config``) breaks, in words (``"rule 3: head 0, query 'cat', key 'sun': scaled score 4.5
    outside [−4, 4]"``), or None when every rule holds. The resolved score, scale and d_head
    are the trace's (``trace.run``); ``spec`` gives the number sets and ``allow_uniform``.

    Shapes: the trace's score steps (H, n_q, n_k) per head; its mask (1, 1, n_q, n_k).
    """
    run = trace.run
    fault = _inputs_rule(trace.inputs, spec, run.weight_layout)
    if fault is not None:
        return fault
    if run.score is Score.scaled_dot and not run.scale_given and math.isqrt(run.d_k) ** 2 \
            != run.d_k:
        return f"rule 2: d_head {run.d_k} is not a perfect square"
    scaled = _per_head(trace, "scaled_scores" if "scaled_scores" in trace else "scores")
    outside = np.argwhere(np.abs(scaled) > SCORE_BOUND + 1e-9)
    if len(outside):
        h, i, j = outside[0]
        return (f"rule 3: {_where(trace, h, i)}, key {trace.key_tokens[j]!r}: scaled score "
                f"{scaled[h, i, j]:.4g} outside [−{SCORE_BOUND:g}, {SCORE_BOUND:g}]")
    logits = _per_head(trace, [n for n in ("scores", "scaled_scores", "capped_scores",
                                           "biased_scores") if n in trace][-1])
    allowed = np.ones(logits.shape[1:], dtype=bool) if trace.mask is None \
        else trace.mask.dense()[0, 0]
    weights = _per_head(trace, "weights")
    normalize = config.normalize
    k = config.top_k if normalize is Normalize.top_k else 1
    for h in range(logits.shape[0]):
        for i in range(logits.shape[1]):
            row = logits[h, i][allowed[i]]
            if normalize is not Normalize.softmax and len(row) > k:
                ranked = np.sort(row)[::-1]
                if ranked[k - 1] - ranked[k] < 1e-9:
                    return (f"rule 5: {_where(trace, h, i)}: a tie at the "
                            f"{'largest' if k == 1 else f'{k}-th largest'} score "
                            f"{ranked[k - 1]:.4g}")
            if spec.allow_uniform or normalize is Normalize.hard:
                continue
            kept = allowed[i].copy()
            if normalize is Normalize.top_k and len(row) > k:
                kept &= logits[h, i] >= np.sort(row)[::-1][k - 1]
            if kept.sum() < 2:
                continue
            shown = np.round(weights[h, i][kept], 4)
            if np.all(shown == shown[0]):
                return f"rule 4: {_where(trace, h, i)}: uniform weights {shown[0]:.4f}"
            if np.any(shown == 1.0):
                return f"rule 4: {_where(trace, h, i)}: one-hot weights"
    return None


def _inputs_rule(inputs: dict[str, np.ndarray], spec: Spec, layout: Layout) -> str | None:
    """Rule 1 on the problem's arrays as given."""
    x_values = (np.arange(-10, 11) / 10 if spec.numbers == "tenths"
                else np.array(X_VALUES, dtype=float))
    for key, allowed in (("x", x_values), ("memory", x_values)):
        if key in inputs and not np.all(np.isclose(inputs[key][..., None], allowed).any(-1)):
            return f"rule 1: {key} has a value outside {_set(allowed, spec)}"
    for key in ("W_q", "W_k", "W_v", "W_o", "W_a", "U_a", "v_a", "sinks"):
        if key in inputs and not np.all(np.isin(inputs[key], W_VALUES)):
            return f"rule 1: {key} has a value outside {{−1, 0, 1}}"
    if layout is Layout.out_in:  # the dead features are in_out columns
        inputs = {k: v.T if k in _PROJECTIONS else v for k, v in inputs.items()}
    return _dead(inputs)


def _set(values: np.ndarray, spec: Spec) -> str:
    return "one decimal in [−1, 1]" if spec.numbers == "tenths" else "{−1, 0, 1, 2}"


def _per_head(trace: Trace, name: str) -> np.ndarray:
    """A query × key step as (H, n_q, n_k) (one head: H = 1; a batch's first item)."""
    step = trace.step(name)
    data = step.data
    if "batch" in step.axes:
        data = data[0]
    return data if "head" in step.axes else data[None]


def _where(trace: Trace, head: int, row: int) -> str:
    return f"head {head}, query {trace.query_tokens[row]!r}"
