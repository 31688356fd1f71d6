"""The record of one attention computation: an ordered list of named steps.

Every renderer, ``check`` and ``explain`` read a :class:`Trace`; none of them compute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from attncli.errors import InputError

if TYPE_CHECKING:
    from attncli.attention.masks import Mask
    from attncli.config import AttentionConfig

#: The public step names, in pipeline order. They appear in JSON output and in answer files.
STEP_NAMES: tuple[str, ...] = (
    "queries",
    "keys",
    "normed_queries",
    "normed_keys",
    "rotated_queries",
    "rotated_keys",
    "values",
    "scores",
    "scaled_scores",
    "capped_scores",
    "bias",
    "biased_scores",
    "masked_scores",
    "weights",
    "sink_weights",
    "dropped_weights",
    "head_context",
    "context",
    "output",
)

#: The steps of shape (…, seq_q, seq_k): n² numbers each.
N_BY_N: tuple[str, ...] = ("scores", "scaled_scores", "capped_scores", "bias",
                           "biased_scores", "masked_scores", "weights", "dropped_weights")
#: The axes of each step, on the pipeline's canonical layout (the recorder drops the batch
#: axis of 2-D x and the head axis of one head); the other steps are SCORE_AXES.
STEP_AXES: dict[str, tuple[str, ...]] = {
    "queries": ("batch", "head", "query", "dim"),
    "keys": ("batch", "head", "key", "dim"),
    "normed_queries": ("batch", "head", "query", "dim"),
    "normed_keys": ("batch", "head", "key", "dim"),
    "rotated_queries": ("batch", "head", "query", "dim"),
    "rotated_keys": ("batch", "head", "key", "dim"),
    "values": ("batch", "head", "key", "dim"),
    "sink_weights": ("batch", "head", "query"),  # the mass each row gives its head's sink
    "head_context": ("batch", "head", "query", "dim"),
    "context": ("batch", "query", "dim"),
    "output": ("batch", "query", "dim"),
}
SCORE_AXES = ("batch", "head", "query", "key")


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline.

    Attributes:
        name: one of :data:`STEP_NAMES`.
        formula: how the step was computed, in the notation of the tables (``softmax(...)``).
        data: a numpy array (always numpy: arrays leave the device once, when recorded).
        axes: one name per axis of ``data``: ``batch``, ``head``, ``query``, ``key`` or ``dim``.
    """

    name: str
    formula: str
    data: np.ndarray
    axes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


def _hidden(**kwargs: Any) -> Any:
    """A :class:`Run` field that JSON output leaves out (a fact for readers in Python)."""
    return field(metadata={"json": False}, **kwargs)


@dataclass(frozen=True)
class Run:
    """The resolved facts of one run: what it actually used, typed. Readers use these fields;
    :meth:`to_dict` (JSON output's ``config``) is the only place it becomes a dict.

    Fields:
        options: the run's :class:`attncli.config.AttentionConfig` as resolved: the score
            function, the scale, heads, the dropout seed drawn, the weight layout, backend and
            device filled in. Its fields read as the run's own: ``run.causal`` is
            ``run.options.causal`` (so a new option is a fact of every run, with no line here).
        d_k, d_v: the widths per head of queries/keys and of values
        projected: which of W_q, W_k, W_v were used (the others are x split into heads)
        path: how the rows were computed (whole matrices, query blocks of N rows, one query
            row, torch's fused scaled_dot_product_attention)
        matmul_flops: 2 × the multiply-adds of the run's matrix products
        key_lengths: each batch item's keys that are not padding, when the causal / window
            mask is aligned bottom-right to them (else None, and not in JSON)
    and facts JSON leaves out: key_from, value_from (the problem keys the keys and the values
    come from), per_head_weights (some W came 3-D), batched (x was 3-D), d_out (W_o's
    output width, or None without W_o), biases (which of b_q … b_o were used), scale_given
    (the scale was set, by --scale or a file's config, not 1/√d_k or 1 by the score function),
    sinks (the problem's per-head sink logits took a softmax column each, then dropped), rope
    (the resolved RoPE).
    """

    options: AttentionConfig
    d_k: int
    d_v: int
    projected: tuple[str, ...]
    path: str
    matmul_flops: int
    key_lengths: tuple[int, ...] | None = None
    key_from: str = _hidden(default="x")
    value_from: str = _hidden(default="x")
    per_head_weights: bool = _hidden(default=False)
    batched: bool = _hidden(default=False)
    d_out: int | None = _hidden(default=None)
    biases: tuple[str, ...] = _hidden(default=())
    scale_given: bool = _hidden(default=False)
    sinks: bool = _hidden(default=False)
    #: ALiBi's slopes m_h, one per head (None without --alibi); whether the problem's float
    #: ``bias`` was added to the scores
    alibi_slopes: tuple[float, ...] | None = _hidden(default=None)
    bias_given: bool = _hidden(default=False)
    #: the run's RoPE as resolved (positions, frequencies, layout, rotary dims:
    #: :class:`attncli.attention.rope.Rope`), None without --rope
    rope: Any = _hidden(default=None, compare=False)

    def __getattr__(self, name: str) -> Any:
        # only for names that are not Run's own fields: the options' (run.heads, run.score …)
        if name.startswith("__") or name == "options" or not hasattr(self.options, name):
            raise AttributeError(f"Run has no field {name!r}, nor has its options")
        return getattr(self.options, name)

    def to_dict(self) -> dict[str, Any]:
        """The options (enums as their values), then the other facts (tuples as lists),
        key_lengths only when set."""
        out: dict[str, Any] = self.options.to_dict()
        for f in dataclasses.fields(self)[1:]:
            value = getattr(self, f.name)
            if not f.metadata.get("json", True) or (f.name == "key_lengths" and value is None):
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass
class Trace:
    """The steps of one run, in pipeline order, with the labels and conventions they need.

    ``trace["weights"]`` returns the numpy array of a step; ``"weights" in trace`` tests presence.
    """

    steps: list[Step] = field(default_factory=list)
    query_tokens: list[str] = field(default_factory=list)
    key_tokens: list[str] = field(default_factory=list)
    run: Run | None = None  # None only for a trace built by hand (tests of renderers)
    conventions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    focus: int | None = None  # the query row kept by at_query (an index into the full run)
    #: the one mask of the run (causal ∧ window ∧ mask ∧ key_padding_mask), None when
    #: nothing is masked (:class:`attncli.attention.masks.Mask`)
    mask: Mask | None = None
    #: the problem's arrays as given (x, W_q, …, mask), for exporters that redo the run
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    #: the one head kept by at_head (--head of attncli model), None for all
    head: int | None = None
    #: after at_head, each step's one head as the whole run numbers it: ``head``, or for the
    #: keys and values of G < H heads the KV head that query head reads (tables, CSV)
    kept_heads: dict[str, int] = field(default_factory=dict)
    #: where the run came from when it is a model's layer (attncli model): the model, the
    #: layer and the agreement with the model's own attention; JSON's "model"
    model: dict[str, Any] | None = None

    @property
    def backend(self) -> str:
        return "numpy" if self.run is None else self.run.backend.value

    @property
    def device(self) -> str:
        return "cpu" if self.run is None else self.run.device

    @property
    def dtype(self) -> str:
        return "float64" if self.run is None else self.run.dtype.value

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __contains__(self, name: object) -> bool:
        return any(step.name == name for step in self.steps)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.step(name).data

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r} in this trace (it has {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [step.name for step in self.steps]

    def query_index(self, query: str | int) -> int:
        """The row of a query given as a token or a 0-based index (an ``int`` is always an
        index: tokens may be digits).

        Raises: InputError naming the tokens when neither matches.
        """
        n = len(self.query_tokens)
        if isinstance(query, str) and query in self.query_tokens:
            return self.query_tokens.index(query)
        try:
            index = query if isinstance(query, int) else int(query, 10)
        except ValueError:
            index = None
        if index is not None and -n <= index < n:
            return index % n
        raise InputError(f"--query {query!r}: no such token or index; the queries are "
                         f"{', '.join(self.query_tokens)} (or 0 … {n - 1}, −1 for the last)")

    def at_query(self, index: int) -> Trace:
        """A copy narrowed to one query row: steps with a query axis keep it with length 1
        (keys and values are whole); ``to_dict`` then drops that axis."""
        steps = [Step(s.name, s.formula, np.take(s.data, [index], axis=s.axes.index("query")),
                      s.axes) if "query" in s.axes else s for s in self.steps]
        return dataclasses.replace(self, steps=steps, focus=index)

    def written(self, name: str) -> np.ndarray:
        """A step's numbers as :meth:`to_dict` writes them: after :meth:`at_query`, without
        the query axis (an answer for one row has that shape)."""
        step = self.step(name)
        if self.focus is None or "query" not in step.axes:
            return step.data
        return np.take(step.data, 0, axis=step.axes.index("query"))

    def at_head(self, head: int) -> Trace:
        """A copy narrowed to query head ``head``: steps with a head axis keep it with length 1,
        those of G < H key/value heads the KV head that query head reads (⌊h / (H/G)⌋).

        Raises: InputError for a head outside 0 … H − 1.
        """
        heads = self.run.heads if self.run is not None and self.run.heads else 1
        if not 0 <= head < heads:
            raise InputError(f"--head {head}: out of range: this layer has {heads} heads, "
                             f"0 … {heads - 1}")

        numbers: dict[str, int] = {}

        def kept(step: Step) -> Step:
            if "head" not in step.axes:
                return step
            axis = step.axes.index("head")
            count = step.data.shape[axis]
            index = numbers[step.name] = head if count == heads else head // (heads // count)
            return Step(step.name, step.formula, np.take(step.data, [index], axis=axis),
                        step.axes)

        return dataclasses.replace(self, steps=[kept(s) for s in self.steps], head=head,
                                   kept_heads=numbers)

    def labels(self, axis: str, size: int) -> list[str]:
        """Row or column labels for an axis: tokens for query/key axes, indices otherwise."""
        if axis == "query" and self.focus is not None and size == 1:
            return [self.query_tokens[self.focus]]
        if axis == "query" and len(self.query_tokens) == size:
            return list(self.query_tokens)
        if axis == "key" and len(self.key_tokens) == size:
            return list(self.key_tokens)
        return [str(i) for i in range(size)]

    def to_dict(self, precision: int | None = None, arrays: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: arrays as nested lists (rounded to ``precision`` decimals when
        given), −inf and NaN as None. After :meth:`at_query` the query axis is dropped, so a
        step such as ``weights`` is the one row. With ``arrays``, each step's data stays a
        float64 numpy array (−inf and NaN in place), for orjson's OPT_SERIALIZE_NUMPY, which
        writes the same JSON several times faster (bench/json_io.py)."""
        steps = {}
        for step in self.steps:
            array, axes = step.data, step.axes
            if self.focus is not None and "query" in axes:
                array = np.squeeze(array, axis=axes.index("query"))
                axes = tuple(a for a in axes if a != "query")
            if precision is not None:  # values past 1e15 have no decimals left to round
                array = np.where(np.abs(array) < 1e15, np.round(array, precision), array)
            if arrays:
                data = np.ascontiguousarray(array, dtype=np.float64)
            else:
                data = array.astype(object)
                data[~np.isfinite(array)] = None
                data = data.tolist()
            steps[step.name] = {
                "formula": step.formula,
                "shape": list(array.shape),
                "axes": list(axes),
                "data": data,
            }
        extra: dict[str, Any] = {}
        if self.head is not None:
            extra["head"] = self.head
        if self.model is not None:
            extra["model"] = self.model
        return {
            "steps": steps,
            "tokens": self.query_tokens,
            "query": None if self.focus is None else self.query_tokens[self.focus],
            "key_tokens": self.key_tokens,
            "config": {} if self.run is None else self.run.to_dict(),
            "conventions": self.conventions,
            "warnings": self.warnings,
            "backend": self.backend,
            "device": self.device,
            "dtype": self.dtype,
            **extra,
        }


def not_computed(name: str, problem, config) -> str:
    """Why a run of ``problem`` (a Problem) with ``config`` (an AttentionConfig) has no step
    ``name`` (queries … weights and context it always has), in words."""
    if name == "output":
        return ("--no-project leaves W_o out" if "W_o" in problem and not config.project
                else "there is no W_o (output = context W_o + b_o)")
    return {
        "scaled_scores": "the scores are multiplied by 1 (an unscaled score, or --scale 1)",
        "masked_scores": "nothing is masked (no --causal, --window, mask or key_padding_mask)",
        "dropped_weights": "there is no dropout (--dropout P)",
        "head_context": "there is one head, whose context is the context (--heads H for more)",
        "normed_queries": "there is no QK-norm (--qk-norm; in a model, Qwen3, Gemma 3, OLMo2)",
        "normed_keys": "there is no QK-norm (--qk-norm; in a model, Qwen3, Gemma 3, OLMo2)",
        "rotated_queries": "there is no RoPE (--rope; a model with absolute positions or "
                           "ALiBi has none)",
        "rotated_keys": "there is no RoPE (--rope; a model with absolute positions or ALiBi "
                        "has none)",
        "capped_scores": "there is no soft-capping (--softcap; in a model, Gemma 2)",
        "bias": "there is no bias (--alibi, or a key bias)",
        "biased_scores": "there is no bias (--alibi, or a key bias)",
        "sink_weights": "there are no sinks (the key sinks; in a model, gpt-oss)",
    }.get(name, "this configuration does not compute it")
