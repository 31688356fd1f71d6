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

from attncli.render import (
    Slice,
    drawable,
    limits,
    masked,
    matrix_slices,
    number,
    position,
    printable,
    query_by_key,
    slices,
)
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


def print_heatmaps(trace: Trace, console: Console, steps: list[str] | None = None) -> None:
    """Print each query × key step of ``trace`` as heatmaps, one grid per batch/head slice.

    Shapes:
        a step (…, seq_q, seq_k) with axes (…, "query", "key"); the leading batch/head axes
        give one grid each (``attncli.render.slices``), side by side when they fit
    Draws: rows labelled with the query tokens, columns with the key tokens (written down
        the column when longer than a cell), each cell coloured by its value on the step's
        scale, the same as --plot's colour bar (``attncli.render.limits``: 0 … 1 for weights,
        the finite min … max for scores; viridis, or the shades "·░▒▓█" under NO_COLOR, in 16
        colours, in files); masked cells (``attncli.render.masked``: causal, --window, mask,
        key_padding_mask) drawn as "×" and left out of the range; under each grid a legend
        with the scale's ends and the slice's own min and max. Keys beyond ``console.width``
        are left out with a note of how many; no line is ever wrapped.
    Steps: without ``steps``, weights (and dropped_weights when present); with ``steps``,
        the query × key ones among them (``attncli.render.drawable``) that the trace holds.
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
        hidden = masked(trace, step)
        scale = limits(step, hidden)
        grids = [_grid(part, mask.matrix, scale, colour, console.width)
                 for part, mask in zip(slices(trace, step),
                                       matrix_slices(trace, hidden, step.axes), strict=True)]
        _print_grids(console, grids)


@dataclass
class _Grid:
    lines: list[Text]
    hidden: int  # keys left out for the width
    keys: int

    @property
    def width(self) -> int:
        return max(line.cell_len for line in self.lines)


def _grid(part: Slice, hidden: np.ndarray, scale: tuple[float, float], colour: bool,
          width: int) -> _Grid:
    """The lines of one slice: title, column labels, rows of cells, legend. ``hidden``: the
    slice's masked cells; ``scale``: the step's colour scale, (low, high)."""
    rows = [_clip(printable(label), _LABEL) for label in part.rows]
    label_width = min(max(cell_len(r) for r in rows), max(1, width - 1 - _CELL))
    rows = [_clip(r, label_width) for r in rows]
    rows = [r + " " * (label_width - cell_len(r)) for r in rows]
    shown = min(len(part.cols), max(1, (width - label_width - 1) // _CELL))
    visible = part.matrix[~hidden]
    t = position(part.matrix, *scale)
    lines = []
    if part.where:
        lines.append(_styled(part.where, "dim", colour))
    indent = " " * (label_width + 1)
    lines += [Text(indent) + Text(line, style="bold" if colour else "")
              for line in _column_labels(part.cols[:shown])]
    for label, row_t, row_hidden in zip(rows, t, hidden, strict=True):
        line = Text.assemble((label, "bold" if colour else ""), " ")
        for value, is_masked in zip(row_t[:shown], row_hidden[:shown], strict=True):
            line.append(_cell(value, is_masked, colour))
        lines.append(line)
    lines += _legend(scale, visible, bool(hidden.any()), colour)
    return _Grid(lines, len(part.cols) - shown, len(part.cols))


def _cell(t: float, is_masked: bool, colour: bool, size: int = _CELL) -> Text:
    if is_masked:
        return Text(_centre(MASKED), style="dim" if colour else "")
    if colour:
        return Text(" " * size, style=Style(bgcolor=Color.from_rgb(*viridis(t))))
    return Text(shade(t) * size)


def _legend(scale: tuple[float, float], visible: np.ndarray, any_masked: bool,
            colour: bool) -> list[Text]:
    """The scale's ends with the ramp between them, the slice's own min and max, and what a
    masked cell looks like."""
    if not visible.size:
        return [Text(f"{MASKED} every cell masked", style="dim" if colour else "")]
    if colour:
        ramp = Text.assemble(*(_cell(i / (_RAMP - 1), False, True, 1) for i in range(_RAMP)))
    else:
        ramp = Text(f"[{SHADES}]")
    low, high = scale
    lines = [Text.assemble(_end(low), " ", ramp, " ", _end(high)),
             _styled(f"values {_end(visible.min())} … {_end(visible.max())}", "dim", colour)]
    if any_masked:
        lines.append(Text(f"{MASKED} masked (score −∞)", style="dim" if colour else ""))
    return lines


def _end(value: float) -> str:
    """A legend's number: 4 decimals, or 4 significant digits past 1e9 (1e308 has 309)."""
    return number(value, 4) if abs(value) < 1e9 else f"{value:.4g}"


def _column_labels(cols: list[str]) -> list[str]:
    """Header lines: each label centred over its cell when all fit one, else written down
    the column (top-aligned, at most ``_TALL`` characters, "…" for the rest)."""
    labels = [printable(c) for c in cols]
    if all(cell_len(label) <= _CELL for label in labels):
        return ["".join(_centre(label) for label in labels)]
    columns = [_characters(label) for label in labels]
    columns = [c if len(c) <= _TALL else [*c[:_TALL - 1], "…"] for c in columns]
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
    """Grids side by side while they fit the width; one that lost keys alone, with its note."""
    row: list[_Grid] = []
    for grid in grids:
        if grid.hidden:
            _print_row(console, row)
            _print_row(console, [grid], blank=False)
            console.print(_styled(
                f"… {grid.hidden} more keys not shown (of {grid.keys}): see them all with "
                "--format csv or --plot FILE", "dim", uses_colour(console)))
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
