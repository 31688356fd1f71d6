"""Heatmaps for the terminal: each query × key step as a grid of coloured cells, one per
batch/head slice, with token labels on both axes and a legend of the value range.

The colour scale is viridis (van der Walt & Smith 2015, matplotlib's default colour map),
sampled at 0, 0.1, …, 1 and interpolated linearly: perceptually ordered (lightness rises
from dark purple to yellow) and readable under the common colour-vision deficiencies. The
cells are background colours with no text in them, so the data never depends on the
terminal's own foreground; the scale reads the same on dark and light terminals. Under
NO_COLOR, on a 16-colour terminal or into a file, the cells are shading characters "·░▒▓█"
instead, with no escape codes at all.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len
from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.text import Text

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
from attncli.render.output import Request
from attncli.trace import Trace

#: viridis at t = 0, 0.1, …, 1 (matplotlib's colour map; van der Walt & Smith 2015)
VIRIDIS = ("#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884",
           "#44bf70", "#7ad151", "#bddf26", "#fde725")
SHADES = "·░▒▓█"  # the ramp without colour, lowest to highest (a dot, not a blank, so the
# smallest values do not read as empty cells)
MASKED = "×"  # a masked cell (score −∞)
_CELL = 3  # characters per cell
_RAMP = 10  # cells of the colour legend
_LABEL = 16  # most characters of a row label
_TALL = 8  # most lines of a vertical column label
_GAP = 3  # spaces between grids side by side
_RGB = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in VIRIDIS], np.float64)


def viridis(t: float) -> tuple[int, int, int]:
    """The viridis colour at ``t`` in [0, 1], as (red, green, blue) in 0 … 255."""
    position = min(max(float(t), 0.0), 1.0) * (len(VIRIDIS) - 1)
    low = min(int(position), len(VIRIDIS) - 2)
    rgb = _RGB[low] + (position - low) * (_RGB[low + 1] - _RGB[low])
    return tuple(int(round(c)) for c in rgb)


def shade(t: float) -> str:
    """The shading character for ``t`` in [0, 1]: equal fifths of the range."""
    return SHADES[min(int(max(float(t), 0.0) * len(SHADES)), len(SHADES) - 1)]


def uses_colour(console: Console) -> bool:
    """Colour cells on 256-colour and truecolor terminals, unless NO_COLOR is set; 16 colours
    cannot order a scale, and files (color_system None) get shading characters."""
    return not console.no_color and console.color_system in ("256", "truecolor")


def print_heatmaps(trace: Trace, console: Console, steps: list[str] | None = None,
                   color_range: ColorRange | None = None) -> None:
    """Print each query × key step of ``trace`` as heatmaps, one grid per batch/head slice.

    Shapes:
        a step (…, seq_q, seq_k) with axes (…, "query", "key"); the leading batch/head axes
        give one grid each (``layout.slices``), side by side when they fit
    Draws: rows labelled with the query tokens, columns with the key tokens (written down
        the column when longer than a cell; long labels cut so that they stay apart,
        :func:`_distinct`), each cell coloured by its value on the scale
        ``color_range`` picks (``drawing.grid_scale``; unit, the default, is
        --plot's colour bar: 0 … 1 for weights, the finite min … max for scores; auto, each
        grid's own min … max; log, each grid's positive values on a log10 axis), in viridis, or
        the shades "·░▒▓█" under NO_COLOR, in 16 colours, in files; masked cells
        (``drawing.masked``: causal, --window, mask, key_padding_mask) drawn as "×"
        and left out of the range; under each grid a legend with the scale's ends and the
        slice's own min and max (and, for the weights of a run with sinks, the sink's share
        of the rows: ``drawing.sink_note``). Up to twice as many keys as fit
        ``console.width`` are cut to those that fit, with a note of how many are left out;
        more are pooled
        (``drawing.pool``: blocks of cells, each drawn as the mean of its unmasked
        cells), rows and keys alike, with a note. No line is ever wrapped.
    Steps: without ``steps``, weights (and dropped_weights when present); with ``steps``,
        the query × key ones among them (``drawing.drawable``) that the trace holds.
    Raises: InputError when ``steps`` names no query × key step.
    Source: viridis, van der Walt & Smith 2015 (matplotlib's colour map).
    """
    colour = uses_colour(console)
    names = drawable(steps)
    for step in trace:
        if step.name not in names or not query_by_key(step):
            continue
        shape = "×".join(str(n) for n in step.shape)  # one word: a narrow heading wraps
        heading = Text.assemble(_styled(step.name, "bold magenta", colour), "  ", step.formula,
                                "  ", _styled(f"{' × '.join(step.axes)}: {shape}", "dim",
                                              colour))
        console.print(heading, overflow="fold")
        hidden = hidden_cells(trace, step)
        unit = limits(step, hidden)  # the scale of unit, and of a grid with no range of its own
        parts = list(slices(trace, step))
        grids = [_grid(part, mask.matrix, color_range, unit, colour, console.width)
                 for part, mask in zip(parts, matrix_slices(trace, hidden, step.axes),
                                       strict=True)]
        for part, grid in zip(parts, grids, strict=True):  # with sinks, the sink's share
            note = sink_note(trace, step, part.lead)
            if note:
                grid.lines.append(_styled(note, "dim", colour))
        _print_grids(console, grids)


def write_heatmaps(trace: Trace, request: Request, steps: list[str] | None,
                   color_range: ColorRange | None, tables: bool) -> None:
    """compute's --heatmap: :func:`print_heatmaps` in colour on a terminal, as plain text in
    a file; with ``tables`` (--format table given), the tables after the grids, in the same
    output, with --precision's decimals (4).

    Raises: InputError as :func:`print_heatmaps`, and when the file cannot be written.
    """
    from attncli.render.table import print_tables

    def draw(console: Console) -> None:
        print_heatmaps(trace, console, steps=steps, color_range=color_range)
        if tables:
            print_tables(trace, console, request.digits(4))

    request.console(draw)


@dataclass
class _Grid:
    lines: list[Text]
    note: str | None  # keys left out or cells pooled for the width

    @property
    def width(self) -> int:
        return max(line.cell_len for line in self.lines)


@dataclass
class _Cells:
    """What one grid draws for the width: values (rows × cols), masked cells, labels."""

    values: np.ndarray
    hidden: np.ndarray
    rows: list[str]
    cols: list[str]
    note: str | None = None
    pooled: bool = False


def _grid(part: Slice, hidden: np.ndarray, color_range: ColorRange | None,
          unit: tuple[float, float], colour: bool, width: int) -> _Grid:
    """The lines of one slice: title, column labels, rows of cells, legend. ``hidden``: the
    slice's masked cells; ``unit``: the step's scale (``drawing.limits``), which
    --color-range unit keeps; auto and log take the grid's own range, of the blocks drawn
    when it is pooled (``drawing.grid_scale``, which falls back on ``unit`` when the
    values are all equal)."""
    cells = _fit(part, hidden, width)
    scale = (grid_scale(cells.values, cells.hidden, color_range, unit) if cells.pooled
             else grid_scale(part.matrix, hidden, color_range, unit))
    fine = color_range in (ColorRange.auto, ColorRange.log)  # ends like 5e-4: digits
    label_width = _label_width([_clip(printable(label), _LABEL) for label in cells.rows],
                               width)
    rows = ["".join(units) for units in _distinct(
        [_characters(printable(label)) for label in cells.rows], label_width, cell_len,
        part.row_numbers if len(cells.rows) == len(part.rows) else range(len(cells.rows)))]
    rows = [r + " " * (label_width - cell_len(r)) for r in rows]
    t = scale.position(cells.values)
    lines = []
    if part.where:
        lines.append(_styled(part.where, "dim", colour))
    indent = " " * (label_width + 1)
    lines += [Text(indent) + Text(line, style="bold" if colour else "")
              for line in _column_labels(cells.cols)]
    for label, row_t, row_hidden in zip(rows, t, cells.hidden, strict=True):
        line = Text.assemble((label, "bold" if colour else ""), " ")
        for value, is_masked in zip(row_t, row_hidden, strict=True):
            line.append(_cell(value, is_masked, colour))
        lines.append(line)
    lines += _legend(scale, part.matrix, hidden, colour, fine)
    return _Grid(lines, cells.note)


def _label_width(labels: list[str], width: int) -> int:
    return min(max(cell_len(label) for label in labels), max(1, width - 1 - _CELL))


def _room(labels: list[str], width: int) -> int:
    """How many cells fit on a line after row labels like ``labels``."""
    return max(1, (width - _label_width(labels, width) - 1) // _CELL)


def _fit(part: Slice, hidden: np.ndarray, width: int) -> _Cells:
    """The cells of a slice for ``width`` columns: all of them; the keys that fit, when up to
    twice as many as fit are there (a note says how many are left out); else blocks of
    cells (:func:`drawing.pool`), as many as fit across and down, rows labelled with
    their first–last query index and columns with their first key index."""
    n_q, n_k = part.matrix.shape
    labels = [_clip(printable(label), _LABEL) for label in part.rows]
    fit = _room(labels, width)
    if n_k <= 2 * fit:
        shown = min(n_k, fit)
        note = None if shown == n_k else (
            f"… {n_k - shown} more keys not shown (of {n_k}): see them all with --format csv "
            "or --plot FILE")
        return _Cells(part.matrix[:, :shown], hidden[:, :shown], part.rows,
                      part.cols[:shown], note)
    numbers = part.row_numbers
    down = -(-n_q // _room([f"{numbers[-1]}–{numbers[-1]}"], width))  # query rows per block
    rows = part.rows  # cut to fit when drawn (_grid)
    if down > 1:
        labels = rows = [f"{numbers[i]}–{numbers[min(i + down, n_q) - 1]}"
                         for i in range(0, n_q, down)]
    across = -(-n_k // _room(labels, width))  # keys per block
    values, blocked = pool(part.matrix, hidden, down, across)
    uneven = n_q % down or n_k % across
    note = (f"{n_q} × {n_k} cells drawn as {values.shape[0]} × {values.shape[1]} blocks of "
            f"{down} × {across}{' (fewer at the far edges)' if uneven else ''}, each the mean "
            "of its unmasked cells (mean pooling), columns labelled with their first key; "
            "--plot FILE draws them finer, -o FILE.npz keeps every value")
    return _Cells(values, blocked, rows, [str(k) for k in range(0, n_k, across)], note,
                  pooled=True)


def _cell(t: float, is_masked: bool, colour: bool, size: int = _CELL) -> Text:
    if is_masked:
        return Text(_centre(MASKED), style="dim" if colour else "")
    if colour:
        return Text(" " * size, style=Style(bgcolor=Color.from_rgb(*viridis(t))))
    return Text(shade(t) * size)


def _legend(scale: Scale, values: np.ndarray, hidden: np.ndarray, colour: bool,
            fine: bool) -> list[Text]:
    """The scale's ends with the ramp between them ("log scale" after a logarithmic one),
    the slice's own min and max over its unmasked cells, and what a masked cell looks
    like."""
    seen = ~hidden
    if not seen.any():
        return [Text(f"{MASKED} every cell masked", style="dim" if colour else "")]
    if colour:
        ramp = Text.assemble(*(_cell(i / (_RAMP - 1), False, True, 1) for i in range(_RAMP)))
    else:
        ramp = Text(f"[{SHADES}]")
    low = np.min(values, where=seen, initial=np.inf)  # where=: no copy of n² values
    high = np.max(values, where=seen, initial=-np.inf)
    ends = Text.assemble(_end(scale.low, fine), " ", ramp, " ", _end(scale.high, fine))
    lines = [ends + Text(" log scale") if scale.log else ends,
             _styled(f"values {_end(low, fine)} … {_end(high, fine)}", "dim", colour)]
    if scale.log and low <= 0:
        lines.append(_styled("zeros drawn at the low end", "dim", colour))
    if not seen.all():
        lines.append(Text(f"{MASKED} masked (score −∞)", style="dim" if colour else ""))
    return lines


def _end(value: float, fine: bool = False) -> str:
    """A legend's number: 4 decimals, or 4 significant digits past 1e9 (1e308 has 309) and,
    when ``fine``, below 0.001 (a weight of 5e-4 at n = 2048)."""
    value = float(value)
    small = fine and 0 < abs(value) < 1e-3
    return f"{value:.4g}" if small or abs(value) >= 1e9 else number(value, 4)


def _column_labels(cols: list[str]) -> list[str]:
    """Header lines: each label centred over its cell when all fit one, else written down
    the column (top-aligned, at most ``_TALL`` characters, cut as :func:`_distinct` cuts)."""
    labels = [printable(c) for c in cols]
    if all(cell_len(label) <= _CELL for label in labels):
        return ["".join(_centre(label) for label in labels)]
    columns = _distinct([_characters(label) for label in labels], _TALL, lambda _unit: 1,
                        range(len(labels)))
    height = max(len(c) for c in columns)
    return ["".join(_centre(c[i] if i < len(c) else "") for c in columns).rstrip()
            for i in range(height)]


def _centre(text: str) -> str:
    left = (_CELL - cell_len(text)) // 2
    return " " * left + text + " " * (_CELL - cell_len(text) - left)


def _characters(text: str) -> list[str]:
    """The characters of a label, each with the combining marks that follow it."""
    out: list[str] = []
    for ch in text:
        if out and unicodedata.combining(ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _distinct(labels: list[list[str]], most: int, size, numbers) -> list[list[str]]:
    """Labels (each a list of characters) cut to at most ``most`` (``size`` of a character:
    its terminal cells, or 1 a line) so that different labels stay different: cut at the
    end ("a long tok…"); when that makes two look the same (tokens that differ at the end:
    你好你好你好…1, …2), cut in the middle, keeping each one's end (你好你好…你好12); still
    the same, each with its index (``numbers``) in front ("12 你好你…")."""
    kinds = len({tuple(label) for label in labels})
    for cut in (_cut_end, _cut_middle):
        short = [cut(label, most, size) for label in labels]
        if len({tuple(label) for label in short}) == kinds:
            return short
    return [_cut_end([*str(n), " ", *label], most, size)
            for n, label in zip(numbers, labels, strict=True)]


def _cut_end(units: list[str], most: int, size) -> list[str]:
    """The first characters of a label that fit ``most`` with "…" after them (all of them
    when they fit)."""
    if sum(map(size, units)) <= most:
        return units
    out, used = [], 0
    for unit in units:
        if used + size(unit) > most - 1:
            break
        out.append(unit)
        used += size(unit)
    return [*out, "…"]


def _cut_middle(units: list[str], most: int, size) -> list[str]:
    """A label's start, "…" and its end (about half of ``most``) when it does not fit."""
    if sum(map(size, units)) <= most:
        return units
    tail, used = [], 0
    for unit in reversed(units):
        if used + size(unit) > (most - 1) // 2:
            break
        tail.insert(0, unit)
        used += size(unit)
    return [*_cut_end(units, most - used, size), *tail]


def _clip(text: str, most: int) -> str:
    """At most ``most`` terminal cells, "…" marking a cut."""
    if cell_len(text) <= most:
        return text
    out = ""
    for ch in text:
        if cell_len(out + ch) > most - 1:
            break
        out += ch
    return out + "…"


def _styled(text: str, style: str, colour: bool) -> Text:
    return Text(text, style=style if colour else "")


def _print_grids(console: Console, grids: list[_Grid]) -> None:
    """Grids side by side while they fit the width; one with a note (keys left out, cells
    pooled) alone, the note under it."""
    row: list[_Grid] = []
    for grid in grids:
        if grid.note:
            _print_row(console, row)
            _print_row(console, [grid], blank=False)
            console.print(_styled(grid.note, "dim", uses_colour(console)))
            console.print()
            row = []
            continue
        if row and sum(g.width + _GAP for g in row) + grid.width > console.width:
            _print_row(console, row)
            row = []
        row.append(grid)
    _print_row(console, row)


def _print_row(console: Console, row: list[_Grid], blank: bool = True) -> None:
    """Grids side by side, line by line; a line longer than the width is cut, never wrapped."""
    if not row:
        return
    height = max(len(g.lines) for g in row)
    for i in range(height):
        line = Text()
        for n, grid in enumerate(row):
            part = grid.lines[i] if i < len(grid.lines) else Text()
            if n < len(row) - 1:
                part = part + Text(" " * (grid.width + _GAP - part.cell_len))
            line.append_text(part)
        console.print(line, no_wrap=True, overflow="crop", crop=True)
    if blank:
        console.print()
