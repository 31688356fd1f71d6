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

from attncli.render import Slice, matrix_slices, number, slices
from attncli.trace import Step, Trace

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
_DEFAULT = ("weights", "dropped_weights")
_AFTER_MASK = ("weights", "dropped_weights")  # steps whose 0s under a −∞ score are masked
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


def is_query_by_key(step: Step) -> bool:
    """Whether a step's last two axes are (query, key): scores … dropped_weights."""
    return step.axes[-2:] == ("query", "key")


def print_heatmaps(trace: Trace, console: Console, steps: list[str] | None = None) -> None:
    """Print each query × key step of ``trace`` as heatmaps, one grid per batch/head slice.

    Shapes:
        a step (…, seq_q, seq_k) with axes (…, "query", "key"); the leading batch/head axes
        give one grid each (``attncli.render.slices``), side by side when they fit
    Draws: rows labelled with the query tokens, columns with the key tokens (written down
        the column when longer than a cell), each cell coloured by its value on the slice's
        own min … max (viridis; the shades "·░▒▓█" under NO_COLOR, in 16 colours, in files);
        masked cells (score −∞, and the 0 weights under them when ``masked_scores`` is in the
        trace) drawn as "×" and left out of the range; under each grid a legend with the
        slice's min and max. Keys beyond ``console.width`` are left out with a note of how
        many; no line is ever wrapped.
    Steps: without ``steps``, weights (and dropped_weights when present); with ``steps``,
        every one given that the trace holds, and a one-line note for each that is not a
        query × key matrix (queries, context, …).
    Source: viridis, van der Walt & Smith 2015 (matplotlib's colour map).
    """
    colour = uses_colour(console)
    names = [name for name in _DEFAULT if name in trace] if steps is None else steps
    for step in trace:
        if step.name not in names:
            continue
        if not is_query_by_key(step):
            axes = " × ".join(step.axes[-2:])
            console.print(_styled(f"{step.name} ({axes}) is not a query × key matrix: no "
                                  "heatmap; leave out --heatmap for its table", "dim", colour))
            continue
        shape = "×".join(str(n) for n in step.shape)  # one word: a narrow heading wraps
        heading = Text.assemble(_styled(step.name, "bold magenta", colour), "  ", step.formula,
                                "  ", _styled(f"{' × '.join(step.axes)}: {shape}", "dim",
                                              colour))
        console.print(heading, overflow="fold")
        masked = _masked(trace, step)
        grids = [_grid(part, mask.matrix.astype(bool), colour, console.width)
                 for part, mask in zip(slices(trace, step),
                                       matrix_slices(trace, masked, step.axes), strict=True)]
        _print_grids(console, grids)


@dataclass
class _Grid:
    lines: list[Text]
    hidden: int  # keys left out for the width
    keys: int

    @property
    def width(self) -> int:
        return max(line.cell_len for line in self.lines)


def _masked(trace: Trace, step: Step) -> np.ndarray:
    """True where a cell is masked: −∞ in the step, or under a −∞ masked score (weights)."""
    masked = np.isneginf(step.data)
    if step.name in _AFTER_MASK and "masked_scores" in trace:
        scores = trace["masked_scores"]
        if scores.shape == step.data.shape:
            masked = masked | np.isneginf(scores)
    return masked


def _grid(part: Slice, masked: np.ndarray, colour: bool, width: int) -> _Grid:
    """The lines of one slice: title, column labels, rows of cells, legend."""
    rows = [_clip(_printable(label), _LABEL) for label in part.rows]
    label_width = min(max(cell_len(r) for r in rows), max(1, width - 1 - _CELL))
    rows = [_clip(r, label_width) for r in rows]
    rows = [r + " " * (label_width - cell_len(r)) for r in rows]
    shown = min(len(part.cols), max(1, (width - label_width - 1) // _CELL))
    visible = part.matrix[~masked]
    low, high = (visible.min(), visible.max()) if visible.size else (0.0, 0.0)
    span = high - low
    lines = []
    if part.where:
        lines.append(_styled(part.where, "dim", colour))
    indent = " " * (label_width + 1)
    lines += [Text(indent) + Text(line, style="bold" if colour else "")
              for line in _column_labels(part.cols[:shown])]
    for label, values, row_masked in zip(rows, part.matrix, masked, strict=True):
        line = Text.assemble((label, "bold" if colour else ""), " ")
        for value, is_masked in zip(values[:shown], row_masked[:shown], strict=True):
            t = (value - low) / span if span > 0 else 1.0
            line.append(_cell(t, is_masked, colour))
        lines.append(line)
    lines += _legend(low, high, visible.size > 0, bool(masked.any()), colour)
    return _Grid(lines, len(part.cols) - shown, len(part.cols))


def _cell(t: float, is_masked: bool, colour: bool, size: int = _CELL) -> Text:
    if is_masked:
        return Text(_centre(MASKED), style="dim" if colour else "")
    if colour:
        return Text(" " * size, style=Style(bgcolor=Color.from_rgb(*viridis(t))))
    return Text(shade(t) * size)


def _legend(low: float, high: float, any_visible: bool, any_masked: bool,
            colour: bool) -> list[Text]:
    """The value range with the ramp between its ends, and what a masked cell looks like."""
    if not any_visible:
        return [Text(f"{MASKED} every cell masked", style="dim" if colour else "")]
    if colour:
        ramp = Text.assemble(*(_cell(i / (_RAMP - 1), False, True, 1) for i in range(_RAMP)))
    else:
        ramp = Text(f"[{SHADES}]")
    lines = [Text.assemble(number(low, 4), " ", ramp, " ", number(high, 4))]
    if any_masked:
        lines.append(Text(f"{MASKED} masked (score −∞)", style="dim" if colour else ""))
    return lines


def _column_labels(cols: list[str]) -> list[str]:
    """Header lines: each label centred over its cell when all fit one, else written down
    the column (top-aligned, at most ``_TALL`` characters, "…" for the rest)."""
    labels = [_printable(c) for c in cols]
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


def _printable(label: str) -> str:
    """A label on one line: control characters as their escapes ("two\\nlines")."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in label)


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
