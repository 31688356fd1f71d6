"""--plot: the query × key steps as heatmaps in an image file (PNG, SVG or PDF).

One panel per batch/head slice of each drawn step, laid out in a near-square grid, query tokens
down the side and key tokens along the bottom (as the tables print them), one colour bar per
step, the values written in the cells of small matrices, masked cells grey and hatched.
matplotlib is an optional extra (``attncli[plot]``) and is imported only here, when a plot is
asked for, through its object API (``matplotlib.figure.Figure``: no pyplot, no global state).

Sources: d2l.ai's ``show_heatmaps`` (§11.1, queries down, keys across, one panel per head, a
shared colour bar) is the model; viridis is van der Walt & Smith's perceptually uniform
colour map (matplotlib, 2015).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

import numpy as np

from attncli.errors import InputError
from attncli.render.drawing import (
    ColorRange,
    Scale,
    drawable,
    grid_scale,
    hidden_cells,
    limits,
    pool,
    query_by_key,
    sink_note,
)
from attncli.render.layout import Slice, matrix_slices, number, printable, slices
from attncli.render.registry import IMAGES
from attncli.trace import Step, Trace

#: Image formats by the extension of the --plot file: the registry's, which -o refuses.
FORMATS = IMAGES
DPI = 150  # PNG resolution; SVG and PDF are vector (the heatmaps inside are pixel images)
ANNOTATE_UP_TO = 12  # values are written in the cells of matrices up to 12 × 12
MASKED_STYLE = {"facecolor": "0.82", "edgecolor": "0.45", "hatch": "///", "linewidth": 0}
MAX_INCHES = 24.0  # the figure's cap, each way
#: matplotlib settings for drawing: labels are text, never mathtext ("$x^2$", "$\\frac$"); the
#: same run draws the same bytes (SVG ids from a fixed salt, not a uuid).
RC = {"text.parse_math": False, "svg.hashsalt": "attncli"}


def check_plot(path: Path) -> None:
    """Before the run: the extension names a format, matplotlib is installed (looked up, not
    imported) and ``path`` can be written.

    Raises: InputError, as :func:`write_plot` would after the run.
    """
    import importlib.util

    from attncli.io.writer import check_target

    if FORMATS.get(Path(path).suffix.lower()) is None:
        raise InputError(f"--plot {path}: the extension picks the format: .png, .svg or .pdf")
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("--plot needs matplotlib: pip install 'attncli[plot]'")
    check_target(Path(path))


def write_plot(trace: Trace, path: Path, steps: list[str] | None = None,
               color_range: ColorRange | None = None) -> None:
    """Draw the query × key steps of ``trace`` (:func:`figure`) into ``path``, whole or not
    at all (a temporary file renamed over it, as ``-o`` writes).

    The format is the extension's: ``.png`` (150 dpi), ``.svg`` or ``.pdf``; ``color_range``
    as for :func:`figure`.
    Raises: InputError for another extension, without matplotlib (one line with the install
    command), for no step to draw, and when the file cannot be written.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"--plot {path}: the extension picks the format: .png, .svg or .pdf")
    buffer = io.BytesIO()  # drawn in full first: a failed drawing leaves the old file alone
    # the same run draws the same bytes: no date (and RC's fixed SVG salt)
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
    # tick labels are made while saving: the settings and the warnings' filter hold till then
    with _drawing():
        fig = figure(trace, steps, color_range)
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    from attncli.io.writer import write_binary

    write_binary(lambda handle: handle.write(buffer.getvalue()), path)


def plot_steps(trace: Trace, steps: list[str] | None = None) -> list[Step]:
    """The steps to draw: ``weights`` (and ``dropped_weights`` when present) by default, else
    each step of ``steps`` in the trace whose last two axes are (query, key).

    Raises: InputError when there is none (``--steps context``).
    """
    chosen = [trace.step(name) for name in drawable(steps, "--plot") if name in trace]
    chosen = [step for step in chosen if query_by_key(step)]
    if not chosen:
        raise InputError(f"--plot: this run has none of the steps to draw "
                         f"({', '.join(drawable(steps, '--plot'))})")
    return chosen


def figure(trace: Trace, steps: list[str] | None = None,
           color_range: ColorRange | None = None):
    """A matplotlib Figure of the steps :func:`plot_steps` picks: one block per step (its
    formula as the title, one colour bar), one panel per batch/head slice in it.

    Shapes: each drawn step (..., seq_q, seq_k), the leading axes batch and head; a panel is
    one (seq_q, seq_k) slice, queries as rows (top to bottom), keys as columns. The panels'
    axes carry the label ``"heatmap"``; the colour bars' do not.
    Colours: viridis; ``color_range`` unit (or None) over 0 … 1 for weights (0 … the
    largest for dropped_weights, which dropout rescales), over the finite minimum … maximum
    of the step for the scores, one colour bar per step; auto over each panel's own min …
    max and log over its positive values on a log10 axis (zeros at the low end, ticks of
    :func:`log_ticks` in plain text), a colour bar per panel (``drawing.grid_scale``;
    the figure wider by the extra bars, the panels as large as beside one).
    Masked cells (``drawing.hidden_cells``) are grey and hatched, with a legend entry
    "masked". Labels are drawn as text (no mathtext), control characters as their escapes;
    matplotlib's warnings (a glyph missing from the font) are dropped.
    Size: 0.5 inch per token up to 10 tokens, a panel's cells at most 5 inches across, the
    figure at most 24 inches each way (scaled down whole, keeping its shape). A panel with
    more cells than pixels at 150 dpi (n > 750) is drawn in blocks of b × b cells, each the
    mean of its unmasked cells (``drawing.pool``), about a pixel each; the step's
    title says so. No drawing cost grows with the cells but the image's: one hatched patch
    behind a panel, values written only up to 12 × 12.
    Raises: InputError as :func:`plot_steps`, and without matplotlib.
    """
    chosen = plot_steps(trace, steps)
    figure_class = _matplotlib()
    with _drawing():
        return _figure(figure_class, trace, chosen, color_range)


def _figure(figure_class, trace: Trace, chosen: list[Step], color_range: ColorRange | None):
    blocks = [(step, list(slices(trace, step))) for step in chosen]
    own_bars = color_range in (ColorRange.auto, ColorRange.log)  # a colour bar per panel
    widths, heights = zip(*(_block_size(parts, own_bars) for _step, parts in blocks),
                          strict=True)
    shrink = min(1.0, MAX_INCHES / max(widths), MAX_INCHES / sum(heights))  # keeps the shape
    size = (shrink * max(widths), shrink * sum(heights))
    fig = figure_class(figsize=size, layout="constrained")
    subfigs = fig.subfigures(len(blocks), 1, squeeze=False, height_ratios=heights)[:, 0]
    for subfig, (step, parts) in zip(subfigs, blocks, strict=True):
        # cells per pixel: a block of them when a cell is smaller than a pixel
        per_pixel = math.ceil(1.0 / (shrink * _cell(parts) * DPI))
        _draw_step(subfig, trace, step, parts, color_range, per_pixel)
    return fig


@contextlib.contextmanager
def _drawing():
    """matplotlib's settings for drawing (:data:`RC`), its warnings caught and dropped (a
    glyph missing from the font is drawn as a box; nothing raw reaches stderr)."""
    from matplotlib import rc_context

    with rc_context(RC), warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        yield


def _matplotlib():
    """matplotlib's Figure class, or the one-line error that says how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'attncli[plot]'") from None
    return Figure


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) of a near-square grid for n panels, wider than tall."""
    columns = math.ceil(math.sqrt(n))
    return math.ceil(n / columns), columns


def _cell(parts: list[Slice]) -> float:
    """A cell's side in inches: 0.5 up to 10 tokens, then shrinking to keep panels ~5 in."""
    n = max(max(part.matrix.shape) for part in parts)
    return min(0.5, 5.0 / n)


def _margin(labels: list[str], slope: float) -> float:
    """Inches that the tick labels and the axis name take: ``slope`` inches per character
    (0.07 for the query labels, 0.05 for the key labels at 45°)."""
    return 0.4 + slope * min(max(len(label) for label in labels), 16)


def _block_size(parts: list[Slice], own_bars: bool = False) -> tuple[float, float]:
    """(width, height) in inches of one step's block of panels; ``own_bars``: a colour bar
    beside each panel (auto, log), 0.7 inch more for each column after the first, so that
    the panels keep the size they have with one colour bar."""
    rows, columns = _grid(len(parts))
    cell, (n_q, n_k) = _cell(parts), parts[0].matrix.shape
    width = columns * (cell * n_k + _margin(parts[0].rows, 0.07) + 0.15) + 1.3  # + colour bar
    if own_bars:
        width += 0.7 * (columns - 1)
    height = rows * (cell * n_q + _margin(parts[0].cols, 0.05) + 0.35) + 0.4  # + titles
    return width, height


def _norm(scale: Scale):
    """matplotlib's Normalize for a scale: a LogNorm for a log one; else linear over low …
    high, computed on halved values, so that a range as wide as ±1e308 does not overflow
    (high − low would be ∞)."""
    from matplotlib.colors import LogNorm, Normalize

    if scale.log:
        return LogNorm(scale.low, scale.high, clip=True)

    class Halved(Normalize):
        def __call__(self, value, clip=None):
            half = Normalize(0.5 * self.vmin, 0.5 * self.vmax,
                             clip=self.clip if clip is None else clip)
            return half(np.ma.multiply(value, 0.5))

        def inverse(self, value):
            return 2.0 * Normalize(0.5 * self.vmin, 0.5 * self.vmax).inverse(value)

    return Halved(scale.low, scale.high)


def _draw_step(subfig, trace: Trace, step: Step, parts: list[Slice],
               color_range: ColorRange | None, per_pixel: int) -> None:
    """One step's panels, colour bars (one for the step, or one per panel under auto and
    log), title and (when some cell is masked) legend. ``per_pixel``: the panels are drawn
    in blocks of per_pixel × per_pixel cells when it is over 1."""
    import matplotlib
    from matplotlib.patches import Patch, Rectangle

    all_hidden = hidden_cells(trace, step)
    unit = limits(step, all_hidden)  # the scale of unit, and of a grid with no range of its own
    shared = color_range in (None, ColorRange.unit)  # one colour bar for the step
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    rows, columns = _grid(len(parts))
    grid = subfig.add_gridspec(rows, columns)
    cell = _cell(parts)
    short = rows * cell * parts[0].matrix.shape[0] < 1.2  # one query row after --query
    panels, bars = [], []
    for i, (part, hidden) in enumerate(zip(parts, matrix_slices(trace, all_hidden, step.axes),
                                           strict=True)):
        ax = subfig.add_subplot(grid[i // columns, i % columns], label="heatmap")
        n_q, n_k = part.matrix.shape
        drawn, drawn_hidden = part.matrix, hidden.matrix
        if per_pixel > 1:
            drawn, drawn_hidden = pool(part.matrix, hidden.matrix, per_pixel, per_pixel)
        scale = grid_scale(drawn, drawn_hidden, color_range, unit)
        if scale.log:  # zeros at the low end, not blank
            drawn = np.where(drawn > 0, drawn, scale.low)
        values = np.ma.masked_array(drawn, mask=drawn_hidden | ~np.isfinite(drawn))
        if hidden.matrix.any():  # seen through the transparent masked cells
            ax.add_patch(Rectangle((-0.5, -0.5), n_k, n_q, zorder=0, **MASKED_STYLE))
        rows_drawn, cols_drawn = drawn.shape
        image = ax.imshow(values, cmap=cmap, norm=_norm(scale), interpolation="nearest",
                          zorder=1, aspect="auto",  # square by the figure's size: a fixed
                          # aspect unsettles constrained layout, which then lets labels stick
                          # out of the image
                          extent=(-0.5, cols_drawn * per_pixel - 0.5,
                                  rows_drawn * per_pixel - 0.5, -0.5))
        ax.set_xlim(-0.5, n_k - 0.5)  # the last blocks may stick out: padding, not cells
        ax.set_ylim(n_q - 0.5, -0.5)
        _ticks(ax, part, cell, bottom=i + columns >= len(parts), left=i % columns == 0)
        if part.where:
            ax.set_title(printable(part.where), fontsize=9)
        if max(n_q, n_k) <= ANNOTATE_UP_TO:
            _annotate(ax, part, hidden.matrix, cmap, _norm(scale), cell)
        panels.append(ax)
        if not shared:
            bars.append(_colour_bar(subfig, image, [ax], step, scale, short, 1))
    if shared:
        bars.append(_colour_bar(subfig, image, panels, step, Scale(*unit), short, rows))
    title = step.formula
    if per_pixel > 1:
        title += (f"   ({' × '.join(map(str, parts[0].matrix.shape))} cells drawn in blocks "
                  f"of {per_pixel} × {per_pixel}, each their mean)")
    note = sink_note(trace, step)  # with sinks: the rows sum to less than 1
    if note:
        title += f"\n{note}"
    subfig.suptitle(title, fontsize=10)
    if all_hidden.any():  # the swatch under the (last) colour bar
        bars[-1].ax.legend(handles=[Patch(label="masked", **MASKED_STYLE)], loc="upper left",
                           bbox_to_anchor=(0.0, 0.0), fontsize=8, frameon=False,
                           handlelength=1.2, borderaxespad=0.9, borderpad=0)


def _colour_bar(subfig, image, panels: list, step: Step, scale: Scale, short: bool,
                rows: int):
    """A colour bar beside ``panels``. Linear: a fixed number of ticks (the default follows
    the bar's length, which the layout sets: labels that widen after the layout, 0.2 → 0.25,
    would be cut at the edge); a short block (one query row after --query) gets the whole
    height and about three ticks. Log: the ticks of :func:`log_ticks`, labelled as plain text
    (never mathtext, which the labels' settings, :data:`RC`, would print raw), the minor
    ones unlabelled."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

    shrink = 1.0 if short else min(1.0, 0.4 + 0.2 * rows)
    if scale.log:
        majors, labels, minors = log_ticks(scale.low, scale.high)
        text = dict(zip(majors, labels, strict=True))
        bar = subfig.colorbar(image, ax=panels, label=step.name, ticks=FixedLocator(majors),
                              format=FuncFormatter(lambda v, _pos: text.get(v, "")),
                              shrink=shrink)
        # matplotlib's own minor ticks of a log axis carry mathtext labels ("2×10⁻¹")
        bar.minorlocator = FixedLocator(minors)
        bar.minorformatter = NullFormatter()
        return bar
    ticks = MaxNLocator(nbins=3 if short else 6, steps=[1, 2, 2.5, 5, 10])
    if not math.isfinite(scale.high - scale.low):  # MaxNLocator's steps would overflow
        ticks = FixedLocator([scale.low, 0.5 * scale.low + 0.5 * scale.high, scale.high])
    return subfig.colorbar(image, ax=panels, label=step.name, ticks=ticks, shrink=shrink)


def log_ticks(low: float, high: float) -> tuple[list[float], list[str], list[float]]:
    """The ticks of a log colour bar over ``low`` … ``high`` (0 < low < high): the labelled
    (major) values, their labels and the unlabelled (minor) values.

    Two powers of ten or more in the range: they are the labelled ticks, written 10⁻³ (every
    one, or every 2nd, 5th, 10th … so that at most 7 are labelled), the 2 … 9 × 10ⁿ between
    them minor; with every 2nd … power labelled, the others minor (up to 60 decades). Within
    about one decade (one power of ten or none, 0.2283 … 0.4063 at 3 tokens): those of
    1, 2, 5 × 10ⁿ in the range when they are three or more, else of 1, 2, 3, 5 × 10ⁿ (spread
    evenly enough on a log axis; 1 … 9 × 10ⁿ would crowd its top), else about four evenly
    spaced values (0.25, 0.3, 0.35, 0.4); labelled as plain numbers (:func:`_plain`), no
    minor ticks.
    """
    first = math.ceil(math.log10(low) - 1e-9)
    last = math.floor(math.log10(high) + 1e-9)
    if last > first:
        every = next(n * 10**k for k in range(4) for n in (1, 2, 5)
                     if (last - first) // (n * 10**k) < 7)
        exponents = [e for e in range(first, last + 1) if e % every == 0]
        majors = [_decimal(1, e) for e in exponents]
        if every == 1:
            minors = [_decimal(m, e) for e in range(first - 1, last + 1) for m in range(2, 10)
                      if low <= _decimal(m, e) <= high]
        else:
            minors = ([_decimal(1, e) for e in range(first, last + 1) if e % every]
                      if last - first <= 60 else [])
        return majors, [_power_of_ten(e) for e in exponents], minors
    values = []
    for mantissas in ((1, 2, 5), (1, 2, 3, 5)):
        values = [_decimal(m, e) for e in range(first - 1, last + 1) for m in mantissas
                  if low * (1 - 1e-9) <= _decimal(m, e) <= high * (1 + 1e-9)]
        if len(values) >= 3:
            break
    else:
        from matplotlib.ticker import MaxNLocator

        values = [float(v) for v in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10])
                  .tick_values(low, high) if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)]
    return values, [_plain(v) for v in values], []


def _decimal(mantissa: int, exponent: int) -> float:
    """m × 10ⁿ as the float nearest to it (0.3, where 3 * 10.0**-1 is 0.30000000000000004)."""
    return float(f"{mantissa}e{exponent}")


def _power_of_ten(exponent: int) -> str:
    """10 with the exponent in superscript digits: 10⁻³."""
    return "10" + str(exponent).translate(_SUPERSCRIPT)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _plain(value: float) -> str:
    """A tick's number in the fewest significant digits that read back as it (0.3, not
    0.30000000000000004), an exponent as ×10ⁿ: 0.35, 0.0004, 2.5×10⁻⁵."""
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if math.isclose(float(text), value, rel_tol=1e-9):
            break
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}×{_power_of_ten(int(exponent))}" if exponent else mantissa


def _ticks(ax, part: Slice, cell: float, bottom: bool, left: bool) -> None:
    """Token labels: every token up to 40, else about 20 of them; axis names on the outside.
    Key labels slant 45°; inner panels keep the ticks but not the labels (as d2l's do)."""
    style = {"fontsize": 8 if cell >= 0.3 else 6}
    for axis, labels, name, shown, slant in (
            (ax.xaxis, part.cols, part.col_axis, bottom,
             {"rotation": 45, "ha": "right", "rotation_mode": "anchor"}),
            (ax.yaxis, part.rows, part.row_axis, left, {})):
        every = 1 if len(labels) <= 40 else math.ceil(len(labels) / 20)
        positions = range(0, len(labels), every)
        axis.set_ticks(positions, labels=[printable(labels[p]) for p in positions] if shown
                       else [],
                       **style, **slant)
        if shown:
            axis.set_label_text(name, fontsize=9)
    ax.tick_params(length=2)


def _annotate(ax, part: Slice, hidden: np.ndarray, cmap, norm, cell: float) -> None:
    """Each value with 2 decimals, dark on light cells and light on dark ones; −∞ for the
    masked cells of masked_scores, nothing on the other masked cells."""
    texts = [[number(v, 2) for v in row] for row in part.matrix]
    longest = max(len(text) for row in texts for text in row)
    fontsize = min(9.0, 0.85 * 72 * cell / (0.6 * longest))
    if fontsize < 5:
        return
    for (i, j), value in np.ndenumerate(part.matrix):
        if hidden[i, j] and np.isfinite(value):
            continue
        style = {"color": "black"}
        if not np.isfinite(value):  # on the hatch: a patch of grey behind the text
            style["bbox"] = {"facecolor": MASKED_STYLE["facecolor"], "edgecolor": "none",
                             "boxstyle": "square,pad=0.1"}
        elif sum(w * c for w, c in zip((0.299, 0.587, 0.114), cmap(norm(value)),
                                        strict=False)) < 0.5:  # a dark colour
            style["color"] = "white"
        ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=fontsize, zorder=2,
                **style)
