"""The mistaken twins of attention's stages: the usual slips of a hand computation.

Each class here stands in for one stage of a plan (:meth:`attncli.attention.plan.Plan.replace`)
and computes what a student who made that slip would have written; :data:`attncli.check.MISTAKES`
lists them, one line per mistake. The correct stages (:mod:`attncli.attention.stages`) know
nothing of them.

Shapes are the stages' (:mod:`attncli.attention.stages`): scores … weights (B, H, rows, seq_k),
queries/keys/values (B, H, seq, d_head), context (B, seq_q, H·d_v).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from attncli.attention.project import project
from attncli.attention.stages import (
    Bias,
    Context,
    Dropout,
    MaskScores,
    Merge,
    Project,
    RepeatKV,
    Rotate,
    Softcap,
    Stage,
)
from attncli.errors import ConfigError


@dataclass(eq=False, repr=False)
class OverQueries(Stage):
    """The weights normalised down the columns (over the queries), not along the rows.
    ``inner``: the normalising stage, run on the scores transposed (B, H, seq_k, rows), so
    that each column of the weights sums to 1."""

    inner: Stage = None  # type: ignore[assignment]

    def __call__(self, xp, data, context: Context):
        weights = self.inner(xp, xp.matrix_transpose(data), context)
        return xp.matrix_transpose(weights)


@dataclass(eq=False, repr=False)
class TransposedWeight(Project):
    """x @ Wᵀ instead of x @ W, for a square 2-D W (the heads' matrices side by side).
    Shapes: the params' W (H, d_in, d_head), the column blocks of a (d_in, d_in) W, H·d_head =
    d_in; returns (B, H, seq, d_head), head h the columns h·d_head … of x Wᵀ."""

    def __call__(self, xp, data, context: Context):
        W = context.params[self.weight]  # (H, d_in, d_head): the 2-D W split into heads
        heads, d_in, d_head = W.shape
        merged = xp.reshape(xp.permute_dims(W, (1, 0, 2)), (d_in, heads * d_head))
        split = xp.permute_dims(xp.reshape(xp.matrix_transpose(merged),
                                           (d_in, heads, d_head)), (1, 0, 2))
        return project(xp, getattr(context, self.from_input), split, context.params[self.bias],
                       self.heads)


def transposed(project_stage: Project, square: bool) -> TransposedWeight:
    """The twin of a projection stage; ``square``: its W is a square 2-D matrix.

    Raises: ConfigError when it is not (only a square matrix can be used transposed).
    """
    if not square:
        raise ConfigError(f"{project_stage.weight} is not square: it cannot be transposed")
    return TransposedWeight(**{f.name: getattr(project_stage, f.name)
                               for f in dataclasses.fields(project_stage)})


@dataclass(eq=False, repr=False)
class KeysAsValues(Stage):
    """The keys used as the values.
    Raises: ConfigError when the keys' shape is not the values' (``inner``: the values'
    projection)."""

    inner: Stage = None  # type: ignore[assignment]

    def __call__(self, xp, data, context: Context):
        if context.keys.shape != self.inner(xp, data, context).shape:
            raise ConfigError("keys cannot stand in for values: their shapes differ")
        return context.keys


@dataclass(eq=False, repr=False)
class Swapped(Stage):
    """scores = keys queriesᵀ: the score of the queries and keys in each other's place.
    Raises: ConfigError when queries and keys differ in shape (``inner``: the score stage)."""

    inner: Stage = None  # type: ignore[assignment]

    def __call__(self, xp, data, context: Context):
        if data.shape != context.keys.shape:
            raise ConfigError("queries and keys cannot be swapped: their shapes differ")
        swapped = dataclasses.replace(context, keys=data, keys_t=xp.matrix_transpose(data))
        return self.inner(xp, context.keys, swapped)


@dataclass(eq=False, repr=False)
class InvertedMask(MaskScores):
    """Attending where the mask forbids: −∞ where it allows."""

    def allowed(self, xp, data, context: Context):
        return ~super().allowed(xp, data, context)


@dataclass(eq=False, repr=False)
class ZeroFilled(MaskScores):
    """Masked scores set to 0 instead of −∞."""

    def __call__(self, xp, data, context: Context):
        return xp.where(self.allowed(xp, data, context), data, xp.zeros_like(data))



@dataclass(eq=False, repr=False)
class Skipped(Stage):
    """A step left out: its input goes on unchanged (no mask before the softmax, no soft-cap
    or scale before the mask, W_o forgotten, the keys not rotated)."""

    def __call__(self, xp, data, context: Context):
        return data


@dataclass(eq=False, repr=False)
class MaskedAfter(Stage):
    """The weights zeroed where the mask forbids, after the softmax, rows not renormalised.
    ``inner``: the normalising stage, given the unmasked scores; ``mask``: the masking stage
    whose mask zeroes the weights (:class:`Skipped` takes its place)."""

    inner: Stage = None  # type: ignore[assignment]
    mask: MaskScores = None  # type: ignore[assignment]

    def __call__(self, xp, data, context: Context):
        allowed = self.mask.allowed(xp, data, context)
        weights = self.inner(xp, data, context)
        return xp.where(allowed, weights, xp.zeros_like(weights))



@dataclass(eq=False, repr=False)
class CappedAfterMask(MaskScores):
    """Soft-capping after the mask: a masked key's −∞ becomes −cap, a finite score, so the
    masked keys keep a weight. ``cap``: the run's soft-cap C; C·tanh(masked_scores / C)."""

    cap: float = 1.0

    def __call__(self, xp, data, context: Context):
        return self.cap * xp.tanh(super().__call__(xp, data, context) / self.cap)



@dataclass(eq=False, repr=False)
class ScaledAfterCap(Softcap):
    """Soft-capping before the scaling: factor · cap · tanh(scores / cap), the unscaled scores
    capped (``factor``: the run's scale)."""

    factor: float = 1.0

    def __call__(self, xp, data, context: Context):
        return self.factor * super().__call__(xp, data, context)


@dataclass(eq=False, repr=False)
class SinkRenormalised(Stage):
    """The sink column not dropped but left out, the rows renormalised to sum to 1: the
    plain softmax of the scores / ``temperature``, the sink's share given to the keys."""

    temperature: float = 1.0

    def __call__(self, xp, data, context: Context):
        from attncli.attention.normalize import softmax

        return softmax(xp, data if self.temperature == 1.0 else data / self.temperature)


@dataclass(eq=False, repr=False)
class Rounded(Stage):
    """The weights rounded to ``decimals`` before the weighted sum."""

    inner: Stage = None  # type: ignore[assignment]
    decimals: int = 2

    def __call__(self, xp, data, context: Context):
        factor = 10.0 ** self.decimals
        return xp.round(self.inner(xp, data, context) * factor) / factor


@dataclass(eq=False, repr=False)
class ModGrouping(RepeatKV):
    """Query head h given KV head h mod G instead of ⌊h / (H/G)⌋: the G KV heads tiled
    (0, 1, 0, 1 for H = 4, G = 2) rather than each repeated H/G times in a row (0, 0, 1, 1).
    Shapes: (B, G, seq_k, d) → (B, H, seq_k, d)."""

    def __call__(self, xp, data, context: Context):
        return xp.concat([data] * (self.heads // data.shape[1]), axis=1)


def mod_grouping(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """``stages`` with each grouped-query repetition (:class:`RepeatKV`) replaced by
    :class:`ModGrouping`: the keys and the values both grouped h mod G."""
    return tuple(ModGrouping(s.step, f"{s.formula} (KV head h mod G)", writes=s.writes,
                             heads=s.heads) if isinstance(s, RepeatKV) else s for s in stages)


@dataclass(eq=False, repr=False)
class MeanHeads(Merge):
    """The heads averaged, (B, H, seq_q, d_v) → (B, seq_q, d_v), instead of concatenated."""

    def __call__(self, xp, data, context: Context):
        return xp.mean(data, axis=1)



@dataclass(eq=False, repr=False)
class Unrescaled(Dropout):
    """Dropped-out weights not rescaled by 1/(1 − p)."""

    def __call__(self, xp, data, context: Context):
        return xp.where(self.keep(xp, data, context), data, xp.zeros_like(data))


@dataclass(eq=False, repr=False)
class AlibiSignFlipped(Bias):
    """ALiBi with the wrong sign: +m_h·|i − j|, the far keys favoured (made with the slopes
    negated, −m_h)."""


@dataclass(eq=False, repr=False)
class PowerOfTwoSlopes(Bias):
    """ALiBi slopes 2^(−8h/H) for H not a power of two (made with those ``slopes``), not the
    closest power of two's slopes and the extra heads interleaved (Press et al. 2022)."""


@dataclass(eq=False, repr=False)
class OtherLayout(Rotate):
    """RoPE in the other layout (half and interleaved swapped).

    The pairs (2i, 2i + 1) (GPT-J's rotate_every_two) turned where the run turns (i, i + R/2)
    (Llama's and GPT-NeoX's rotate_half), or the reverse: made with ``interleaved`` flipped."""



@dataclass(eq=False, repr=False)
class PositionsFromOne(Rotate):
    """Positions counted from 1, not 0.

    Every position one more (made with ``start`` 1): position p turned by (p + 1)·f_i."""


def twin(cls, stage: Stage, **fields) -> Stage:
    """A stage of class ``cls`` in ``stage``'s place: its step, its parameters (those ``cls``
    has too), the Context array it writes, and its formula with the mistake said after it;
    whole matrices (a mistake is tried on small problems). ``fields``: the twin's own
    (``inner``, ``decimals``)."""
    own = {f.name: getattr(stage, f.name) for f in dataclasses.fields(cls)
           if f.name not in ("step", "formula", "row_local", "overflow", "blockwise", "writes")
           and f.name not in fields and hasattr(stage, f.name)}
    return cls(stage.step, f"{stage.formula} ({cls.__doc__.splitlines()[0].rstrip('.')})",
               row_local=False, overflow=stage.overflow, writes=stage.writes, **own, **fields)

