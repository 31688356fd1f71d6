"""Terminal heatmaps: one grid per head, token labels on both axes, the real value range in the
legend, masked cells marked, no colour under NO_COLOR, elided keys announced, and two stored
renderings (tests/render/heatmap_hello*.txt; ATTNCLI_UPDATE_RENDERINGS=1 rewrites them)."""

from __future__ import annotations

import dataclasses
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from attncli import AttentionConfig, attend, load_problem
from attncli.attention.masks import Mask
from attncli.cli import app
from attncli.errors import InputError
from attncli.problem import Problem
from attncli.render.drawing import ColorRange, drawable, position
from attncli.render.heatmap import SHADES, print_heatmaps, shade, viridis
from attncli.trace import Step, Trace

HERE = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[")


def _trace(sample: str, config: AttentionConfig | None = None):
    return attend(load_problem(sample=sample), config)


def _text(trace, width: int = 100, steps: list[str] | None = None, **options) -> str:
    console = Console(record=True, file=io.StringIO(), width=width, color_system=None,
                      **options)
    print_heatmaps(trace, console, steps=steps)
    return console.export_text()


def _column_labels(text: str, first_row: str, label_width: int, n_keys: int) -> list[str]:
    """The key labels written down the columns above the row ``first_row``: the cells start
    after the row labels (``label_width`` columns) and a space, each label centred in 3."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_row + " "))
    header = []
    for line in reversed(lines[:start]):
        if not line.startswith(" ") or not line.strip():
            break
        header.insert(0, line)
    at = [label_width + 1 + 3 * c + 1 for c in range(n_keys)]
    return ["".join(line[i] if len(line) > i else "" for line in header).strip() for i in at]


def _foregrounds(ansi: str) -> list[str]:
    """The foreground colour codes among the SGR escapes (38;…, 30–37, 90–97)."""
    found = []
    for codes in re.findall(r"\x1b\[([0-9;]*)m", ansi):
        params = [int(p) for p in codes.split(";") if p]
        i = 0
        while i < len(params):
            if params[i] in (38, 48):  # extended colour: 5;n or 2;r;g;b follows
                if params[i] == 38:
                    found.append(codes)
                i += 3 if params[i + 1] == 5 else 5
                continue
            if 30 <= params[i] <= 37 or 90 <= params[i] <= 97:
                found.append(codes)
            i += 1
    return found


def _legends(text: str) -> list[tuple[str, str]]:
    """The colour scale's ends under each grid: "0.0000 [·░▒▓█] 1.0000"."""
    return re.findall(rf"(-?\d+\.\d{{4}}) \[{re.escape(SHADES)}\] (-?\d+\.\d{{4}})", text)


def _values(text: str) -> list[tuple[str, str]]:
    """Each grid's own min and max, under its scale: "values 0.2283 … 0.4063"."""
    return re.findall(r"values (-?\d+\.\d{4}) … (-?\d+\.\d{4})", text)


def test_hello_has_token_labels_on_both_axes_and_the_real_range():
    trace = _trace("hello-shiny-sun")
    text = _text(trace)
    weights = trace["weights"]
    # seed 000's weights: min 0.2283 (Hello → sun… see the tables), max 0.4063 (shiny → shiny)
    assert (f"{weights.min():.4f}", f"{weights.max():.4f}") == ("0.2283", "0.4063")
    assert _legends(text) == [("0.0000", "1.0000")]  # the weights' scale, as --plot's bar
    assert _values(text) == [("0.2283", "0.4063")]
    assert "weights  weights = softmax(scores)  query × key: 3×3" in text
    rows = [line.split(" ")[0] for line in text.splitlines()
            if line.startswith(("Hello ", "shiny ", "sun "))]
    assert rows == ["Hello", "shiny", "sun"]
    assert _column_labels(text, "Hello", 5, 3) == ["Hello", "shiny", "sun"]


def test_cells_are_shaded_by_value_on_the_weights_scale_0_to_1():
    trace = _trace("hello-shiny-sun")
    text = _text(trace)
    weights = trace["weights"]
    for label, row in zip(trace.query_tokens, weights, strict=True):
        line = next(line for line in text.splitlines() if line.startswith(label + " "))
        cells = line[len("Hello "):]
        assert cells == "".join(shade(v) * 3 for v in row)  # on 0 … 1, t is the weight
    assert "█" not in text.split("\n0.0000")[0]  # no weight above 0.8 here
    # the largest weight is the darkest shade, the smallest the lightest
    assert shade(1.0) == "█" and shade(0.0) == "·"


def test_one_grid_per_head_each_with_its_own_range():
    trace = _trace("multihead-einsum")
    text = _text(trace, width=200)
    assert "weights  weights = softmax(scaled_scores)  head × query × key: 4×5×5" in text
    for h in range(4):
        assert len(re.findall(rf"\bhead {h}\b", text)) == 1
    weights = trace["weights"]
    assert _values(text) == [(f"{w.min():.4f}", f"{w.max():.4f}") for w in weights]
    assert _legends(text) == [("0.0000", "1.0000")] * 4
    assert text.count("Marcello ") == 4  # a row label per grid, side by side at width 200


def test_grids_that_do_not_fit_side_by_side_are_stacked():
    text = _text(_trace("multihead-einsum"), width=40)
    assert max(len(line) for line in text.splitlines()) <= 40
    assert [line.strip() for line in text.splitlines() if line.startswith("head")] == [
        "head 0", "head 1", "head 2", "head 3"]
    assert _column_labels(text, "My", 8, 5) == ["My", "name", "is", "Marcello", "Politi"]


def test_masked_cells_are_marked_and_left_out_of_the_range():
    trace = _trace("your-journey-causal")
    text = _text(trace)
    rows = [line for line in text.splitlines() if line.split(" ")[0] in trace.query_tokens
            and not line.startswith(" ")]
    assert len(rows) == 6
    for i, line in enumerate(rows):  # query i sees keys 0 … i: 5 − i masked cells
        assert line.count("×") == 5 - i
    assert "× masked (score −∞)" in text
    weights = trace["weights"]
    visible = weights[np.tril(np.ones_like(weights, dtype=bool))]
    assert _values(text) == [(f"{visible.min():.4f}", f"{visible.max():.4f}")]
    assert visible.min() > 0  # the masked 0s are not the minimum


def test_masked_scores_are_marked_by_their_minus_infinity():
    trace = _trace("your-journey-causal")
    text = _text(trace, steps=["masked_scores"])
    rows = [line for line in text.splitlines() if line.split(" ")[0] in trace.query_tokens]
    assert sum(line.count("×") for line in rows) == 15  # above the diagonal of 6 × 6
    scores = trace["masked_scores"]
    finite = scores[np.isfinite(scores)]
    assert _legends(text) == [(f"{finite.min():.4f}", f"{finite.max():.4f}")]
    assert _values(text) == _legends(text)


def test_default_is_the_weights_and_dropped_weights():
    trace = attend(load_problem(sample="your-journey-causal"),
                   AttentionConfig(causal=True, dropout=0.5, seed=123))
    text = _text(trace)
    headings = [line.split("  ")[0] for line in text.splitlines() if "  " in line
                and "=" in line]
    assert headings == ["weights", "dropped_weights"]


def test_steps_pick_the_query_key_ones_and_leave_out_the_others():
    trace = _trace("multihead-einsum")
    text = _text(trace, width=200, steps=["scores", "context", "weights"])
    assert "scores  scores = queries keysᵀ" in text
    assert "weights  weights = softmax(scaled_scores)" in text
    assert "scaled_scores  " not in text and "context" not in text
    scores = trace["scores"]  # one scale for the step, every head's grid on it
    assert _legends(text) == ([(f"{scores.min():.4f}", f"{scores.max():.4f}")] * 4
                              + [("0.0000", "1.0000")] * 4)


def test_drawable_names_the_query_key_steps_or_refuses():
    assert drawable(None) == ["weights", "dropped_weights"]
    assert drawable(["context", "weights", "scores", "weights"]) == ["weights", "scores"]
    with pytest.raises(InputError) as error:
        drawable(["queries", "context"], "--heatmap and --plot")
    assert str(error.value) == (
        "--heatmap and --plot draw the query × key steps (scores, scaled_scores, "
        "capped_scores, bias, biased_scores, masked_scores, weights, dropped_weights); "
        "--steps queries,context has none")
    with pytest.raises(InputError, match="^--heatmap draws the query × key steps"):
        print_heatmaps(_trace("hello-shiny-sun"), Console(file=io.StringIO()), ["context"])


def test_a_uniform_row_is_drawn_at_its_value_not_full():
    # x rows all equal: every score is the same and every weight is 1/3
    trace = attend(Problem.from_mapping({"x": [[1.0, 0.0]] * 3}, "uniform"),
                   steps=["scores", "weights"])
    text = _text(trace, steps=["scores", "weights"])
    rows = [line for line in text.splitlines() if re.match(r"\d [·░▒▓█]", line)]
    assert rows == ["0 ▒▒▒▒▒▒▒▒▒", "1 ▒▒▒▒▒▒▒▒▒", "2 ▒▒▒▒▒▒▒▒▒",  # scores 1 on 0.5 … 1.5
                    "0 ░░░░░░░░░", "1 ░░░░░░░░░", "2 ░░░░░░░░░"]  # weights 1/3 on 0 … 1
    assert _legends(text) == [("0.5000", "1.5000"), ("0.0000", "1.0000")]


def test_dropped_weights_share_the_plots_scale():
    trace = attend(load_problem(sample="your-journey-causal"),
                   AttentionConfig(causal=True, dropout=0.5, seed=123))
    text = _text(trace, steps=["dropped_weights"])
    assert _legends(text) == [("0.0000", "2.0000")]  # kept weights × 1/(1 − 0.5)


def test_a_key_padding_mask_is_marked_without_masked_scores(tmp_path):
    # 3 tokens, causal, the last key padded: row 2 sees keys 0, 1 only; 4 cells masked
    problem = tmp_path / "padded.json"
    problem.write_text('{"x": [[1, 0], [0, 1], [1, 1]], "key_padding_mask": [false, false, '
                       'true]}')
    trace = attend(load_problem(str(problem)), AttentionConfig(causal=True), steps=["weights"])
    assert "masked_scores" not in trace
    text = _text(trace)
    rows = [line for line in text.splitlines() if re.match(r"\d [·░▒▓█×]", line)]
    assert [line.count("×") for line in rows] == [2, 1, 1]
    result = runner.invoke(app, ["compute", str(problem), "--causal", "--steps", "weights",
                                 "--heatmap"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout == text


def test_huge_finite_scores_are_drawn(tmp_path):
    # scores ±1e308: their span overflows; the cells are still at the two ends of the scale
    problem = tmp_path / "big.json"
    problem.write_text('{"x": [[1e154], [-1e154]]}')
    result = runner.invoke(app, ["compute", str(problem), "--steps", "scores", "--heatmap"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "0 ███···" in result.stdout and "1 ···███" in result.stdout
    assert "-1e+308 [·░▒▓█] 1e+308" in result.stdout
    assert position([1e308, -1e308, 0.0], -1e308, 1e308).tolist() == [1.0, 0.0, 0.5]


def test_one_query_row_after_query():
    trace = _trace("multihead-einsum")
    row = trace.at_query(trace.query_index("Marcello"))
    text = _text(row, width=200)
    assert "head × query × key: 4×1×5" in text
    assert text.count("Marcello ") == 4 and "Politi " not in text
    assert _values(text) == [(f"{w.min():.4f}", f"{w.max():.4f}")
                             for w in trace["weights"][:, 3]]


def test_narrow_console_elides_keys_with_a_note_and_never_wraps_a_row():
    rng = np.random.default_rng(3)
    trace = attend(Problem.from_mapping({"x": rng.normal(size=(12, 4))}, "wide"))
    text = _text(trace, width=30)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 30
    # row labels "0" … "11" take 2 columns and a space: 27 columns hold 9 keys of 3
    grid_rows = [line for line in lines if re.match(r"\d+ +[·░▒▓█]", line)]
    assert len(grid_rows) == 12 and all(len(line) == 3 + 9 * 3 for line in grid_rows)
    assert ("… 3 more keys not shown (of 12): see them all with --format csv or --plot "
            "FILE") in " ".join(text.split())
    weights = trace["weights"]  # the range is the whole slice's, not only the keys shown
    assert _values(text) == [(f"{weights.min():.4f}", f"{weights.max():.4f}")]


def test_long_and_odd_labels_stay_on_their_lines():
    trace = _trace("hello-shiny-sun")
    odd = dataclasses.replace(trace, query_tokens=["two\nlines", "a" * 40, "sun"],
                              key_tokens=["two\nlines", "a" * 40, "sun"])
    text = _text(odd)
    assert "two\\nlines " in text  # the escape, not a line break
    assert ("a" * 15 + "… ") in text  # row labels are cut to 16 columns
    assert _column_labels(text, "two\\nlines", 16, 3) == ["two\\nli…", "aaaaaaa…", "sun"]


@pytest.mark.parametrize("how", ["no_color", "env", "file"])
def test_no_colour_means_shading_and_no_escape_codes(how, monkeypatch):
    options = {"force_terminal": True, "color_system": "truecolor"}
    if how == "no_color":
        options["no_color"] = True
    elif how == "env":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        options = {"color_system": None}
    out = io.StringIO()
    console = Console(file=out, width=100, **options)
    print_heatmaps(_trace("your-journey-causal"), console)
    text = out.getvalue()
    assert not ANSI.search(text)
    assert "█" in text and "░" in text and f"[{SHADES}]" in text


def test_colour_cells_are_viridis_backgrounds():
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system="truecolor")
    print_heatmaps(_trace("hello-shiny-sun"), console)
    text = out.getvalue()
    for t in (0.0, 1.0):  # the ends of the scale, in the legend only (weights 0.23 … 0.41)
        assert text.count("\x1b[48;2;{};{};{}m".format(*viridis(t))) == 1
    shiny = _trace("hello-shiny-sun")["weights"][1]  # a cell: its weight on 0 … 1
    for weight in shiny:
        assert "\x1b[48;2;{};{};{}m".format(*viridis(position(weight, 0.0, 1.0))) in text
    assert viridis(0.0) == (0x44, 0x01, 0x54) and viridis(1.0) == (0xFD, 0xE7, 0x25)
    grids = text.split("\n", 1)[1]  # under the step's heading (its name in magenta)
    assert not _foregrounds(grids)  # no foreground colour: the data is in the backgrounds
    assert not any(c in text for c in SHADES[1:])


def test_sixteen_colours_fall_back_to_shading():
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system="standard")
    print_heatmaps(_trace("hello-shiny-sun"), console)
    assert "█" in out.getvalue() and "48;" not in out.getvalue()


def _compare(name: str, text: str) -> None:
    path = HERE / name
    if os.environ.get("ATTNCLI_UPDATE_RENDERINGS"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_stored_rendering_without_colour():
    console = Console(width=100, color_system=None, record=True, file=io.StringIO())
    print_heatmaps(_trace("hello-shiny-sun"), console)
    _compare("heatmap_hello.txt", console.export_text())


def test_stored_rendering_with_colour():
    console = Console(width=100, color_system="truecolor", force_terminal=True, record=True,
                      file=io.StringIO())
    print_heatmaps(_trace("hello-shiny-sun"), console)
    _compare("heatmap_hello_color.txt", console.export_text(styles=True))


def test_readme_example_is_the_stored_rendering():
    readme = (HERE.parent.parent / "README.md").read_text(encoding="utf-8")
    command = "attncli compute --sample hello-shiny-sun --heatmap\n"
    block = next(b for b in re.findall(r"```console\n(.*?)```", readme, flags=re.S)
                 if b.startswith(command))
    stored = (HERE / "heatmap_hello.txt").read_text(encoding="utf-8")
    assert block[len(command):].rstrip() == "\n".join(
        line.rstrip() for line in stored.splitlines()).rstrip()


runner = CliRunner()


def test_cli_heatmap_of_the_causal_sample():
    result = runner.invoke(app, ["compute", "--sample", "your-journey-causal", "--heatmap"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "weights  weights = softmax(masked_scores)" in result.stdout
    assert "× masked (score −∞)" in result.stdout
    assert not ANSI.search(result.stdout)  # not a terminal: shading


def test_cli_heatmap_without_a_query_key_step_is_refused():
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--heatmap",
                                 "--steps", "context"])
    assert result.exit_code == 2
    assert result.stdout == ""
    message = " ".join(result.stderr.split())
    assert "draw the query × key steps" in message or "draws the query × key steps" in message
    assert "--steps context has none" in message


def test_cli_heatmap_to_a_file(tmp_path):
    target = tmp_path / "heatmap.txt"
    result = runner.invoke(app, ["compute", "--sample", "multihead-einsum", "--heatmap",
                                 "-o", str(target)])
    assert result.exit_code == 0, (result.stderr, result.exception)
    text = target.read_text(encoding="utf-8")
    assert not ANSI.search(text)
    assert text.count("head ") >= 4 and len(_legends(text)) == 4


# --- large problems and --color-range --------------------------------------------------------

def _x2048(tmp_path) -> tuple[str, np.ndarray]:
    """x (2048, 4), seeded: the issue's n = 2048; width 4 keeps the run well under a second."""
    x = np.random.default_rng(7).normal(size=(2048, 4))
    path = tmp_path / "x2048.npy"
    np.save(path, x)
    return str(path), x


def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_a_2048_token_run_is_drawn_in_blocks_that_fit_80_columns(tmp_path):
    # Two heads of d_head 2: 2 × 2048² = 8 Mi weights, past the 4 Mi numbers a table takes;
    # the drawing alone runs (before: "too many for --format table").
    path, x = _x2048(tmp_path)
    result = runner.invoke(app, ["compute", "--x", path, "--heads", "2", "--heatmap",
                                 "--color-range", "auto"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, (result.stderr, result.exception)
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    # Row labels "1980–2047" take 9 columns and a space: (80 − 10) // 3 = 23 cells a line;
    # ⌈2048 / 23⌉ = 90 rows and keys a block: 22 blocks of 90 and a last one of 68.
    note = ("2048 × 2048 cells drawn as 23 × 23 blocks of 90 × 90 (fewer at the far edges), "
            "each the mean of its unmasked cells (mean pooling), columns labelled with their "
            "first key; --plot FILE draws them finer, -o FILE.npz keeps every value")
    assert " ".join(result.stdout.split()).count(note) == 2  # one per head
    rows = [line for line in lines if re.match(r"\d+–\d+ +[·░▒▓█]", line)]
    assert len(rows) == 2 * 23
    assert [row.split()[0] for row in rows[:3]] == ["0–89", "90–179", "180–269"]
    assert rows[22].split()[0] == "1980–2047"
    # The weights by hand: head h projects nothing (no W): queries = keys = x[:, 2h:2h+2],
    # scores scaled by 1 (x alone: the unscaled seed convention), softmax over the keys.
    for h in range(2):
        part = x[:, 2 * h:2 * h + 2]
        weights = _softmax_rows(part @ part.T)
        blocks = np.array([[weights[i:i + 90, j:j + 90].mean() for j in range(0, 2048, 90)]
                           for i in range(0, 2048, 90)])
        t = (blocks - blocks.min()) / (blocks.max() - blocks.min())  # auto: the grid's range
        for row, expected in zip(rows[23 * h:23 * (h + 1)], t, strict=True):
            cells = row.split(" ", 1)[1].lstrip()
            near_an_edge = np.abs(expected * 5 - np.round(expected * 5)) < 1e-9
            assert all(cells[3 * j] == shade(v) for j, v in enumerate(expected)
                       if not near_an_edge[j])
        legend = f"{blocks.min():.4g} [{SHADES}] {blocks.max():.4g}"
        assert legend in result.stdout


def test_a_few_keys_too_many_are_still_cut_not_pooled():
    # 12 keys in 30 columns: 9 fit (test above); 2 × 9 ≥ 12, so cut with a note, not pooled
    rng = np.random.default_rng(3)
    text = _text(attend(Problem.from_mapping({"x": rng.normal(size=(12, 4))}, "wide")),
                 width=30)
    assert "pooling" not in text and "more keys not shown" in " ".join(text.split())
    rng = np.random.default_rng(3)  # 19 keys: more than twice 9, pooled into blocks of 3
    text = _text(attend(Problem.from_mapping({"x": rng.normal(size=(19, 4))}, "wider")),
                 width=30)
    assert "19 × 19 cells drawn as 7 × 7 blocks of 3 × 3" in " ".join(text.split())


def _corner(values, masked_last: bool = False):
    """A trace of one query row of weights: a corner of an n = 2048 run, where weights are
    about 1/2048 ≈ 5e-4 (a row of it, so it need not sum to 1)."""
    weights = np.array([values], dtype=np.float64)
    mask = None
    if masked_last:  # the problem's mask forbids the last key: (1, 1, 1, seq_k)
        given = np.ones((1, 1, 1, len(values)), dtype=bool)
        given[..., -1] = False
        mask = Mask(seq_q=1, seq_k=len(values), mask=given)
    return Trace(steps=[Step("weights", "weights = softmax(scores)", weights,
                             ("query", "key"))],
                 query_tokens=["q"], key_tokens=list("abcde")[:len(values)], mask=mask)


def _row(trace, color_range, **options) -> str:
    console = Console(record=True, file=io.StringIO(), width=80, **options)
    print_heatmaps(trace, console, color_range=color_range)
    return console


@pytest.mark.parametrize(("color_range", "cells", "ends"), [
    # unit: t = the weight itself, all under 0.2: the lowest shade for all four
    (ColorRange.unit, "············", "0.0000 [·░▒▓█] 1.0000"),
    # auto: 4e-4 … 2e-3; t(5e-4) = 1e-4 / 1.6e-3 = 0.0625 → fifth 0, ·;
    #       t(1e-3) = 6e-4 / 1.6e-3 = 0.375 → fifth 1, ░
    (ColorRange.auto, "······░░░███", "0.0004 [·░▒▓█] 0.0020"),
    # log: t(5e-4) = ln 1.25 / ln 5 = 0.1386 → ·; t(1e-3) = ln 2.5 / ln 5 = 0.5693 → fifth 2, ▒
    (ColorRange.log, "······▒▒▒███", "0.0004 [·░▒▓█] 0.0020 log scale"),
])
def test_color_range_tells_5e_4_from_1e_3(color_range, cells, ends):
    trace = _corner([4e-4, 5e-4, 1e-3, 2e-3, 0.0], masked_last=True)
    text = _row(trace, color_range, color_system=None).export_text()
    assert f"q {cells} × " in text  # the masked key stays ×, out of the range
    assert ends in text
    assert "zeros drawn" not in text  # the one zero is masked


def test_color_range_colours_5e_4_and_1e_3():
    trace = _corner([4e-4, 5e-4, 1e-3, 2e-3])

    def backgrounds(color_range) -> list[str]:
        out = _row(trace, color_range, color_system="truecolor", force_terminal=True)
        line = next(line for line in out.export_text(styles=True).splitlines()
                    if line.startswith("\x1b[1mq") or line.startswith("q"))
        return re.findall(r"\x1b\[48;2;(\d+;\d+;\d+)m", line)

    # unit: t = 5e-4 and 1e-3, positions 0.005 and 0.01 along viridis' first tenth, #440154
    # (68, 1, 84) → #482475 (72, 36, 117): 68 + 4·0.01 = 68.04 → 68, 1 + 35·0.01 = 1.35 → 1,
    # 84 + 33·0.01 = 84.33 → 84 (less at 0.005): one colour for both
    unit = backgrounds(ColorRange.unit)
    assert unit[1] == unit[2] == "68;1;84"
    # log: t(1e-3) = 0.5693, position 5.693 between #21918c (33, 145, 140) and #22a884
    # (34, 168, 132): 33 + 0.693 = 33.7 → 34, 145 + 23·0.693 = 160.9 → 161,
    # 140 − 8·0.693 = 134.5 → 134; t(5e-4) = 0.1386, position 1.386 between #482475
    # (72, 36, 117) and #414487 (65, 68, 135): 72 − 7·0.386 = 69.3 → 69,
    # 36 + 32·0.386 = 48.4 → 48, 117 + 18·0.386 = 123.96 → 124
    log = backgrounds(ColorRange.log)
    assert log[1] == "69;48;124" and log[2] == "34;161;134"
    # auto: t(1e-3) = 0.375, position 3.75 between #355f8d (53, 95, 141) and #2a788e
    # (42, 120, 142): 53 − 11·0.75 = 44.75 → 45, 95 + 25·0.75 = 113.75 → 114, 141.75 → 142
    auto = backgrounds(ColorRange.auto)
    assert auto[2] == "45;114;142" and auto[1] != auto[2]


def test_log_scale_draws_an_unmasked_zero_at_the_low_end():
    # log over 5e-4 … 2e-3: t(1e-3) = ln 2 / ln 4 = 0.5 → fifth 2, ▒; the 0 has no logarithm
    text = _row(_corner([0.0, 5e-4, 1e-3, 2e-3]), ColorRange.log,
                color_system=None).export_text()
    assert "q ······▒▒▒███" in text
    assert "0.0005 [·░▒▓█] 0.0020 log scale" in text and "zeros drawn at the low end" in text


def test_log_scale_is_refused_for_scores_before_the_run():
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--heatmap",
                                 "--steps", "scores,weights", "--color-range", "log"])
    assert result.exit_code == 2 and result.stdout == ""
    assert " ".join(result.stderr.split()) == (
        "attncli: error: --color-range log draws positive values (weights, dropped_weights), "
        "and scores can be negative: draw it with --color-range auto, or leave it out of "
        "--steps")


def test_color_range_without_a_drawing_is_refused():
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--color-range",
                                 "auto"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == ("attncli: error: --color-range sets the colours of "
                                     "--heatmap and --plot: give one of them")


# --- a grid whose values are all equal ------------------------------------------------------

def test_log_scale_of_one_hot_weights_puts_the_ones_at_the_top():
    # --normalize hard: one_hot(argmax_j scores); hello-shiny-sun's scores x xᵀ are largest
    # at key "shiny" in every row (0.7842, 1.3569, 1.2487): weights [0, 1, 0] in each row.
    # The positive values are all 1: the scale runs from 1/10 to the weights' top, 1, so a
    # 1 is at t = 1 (█) and a 0 at the low end (·); before, 1/√10 … √10 ("0.3162 …
    # 3.1623") put the 1 at t = 0.5 (▒).
    trace = _trace("hello-shiny-sun", AttentionConfig(normalize="hard"))
    text = _row(trace, ColorRange.log, color_system=None).export_text()
    for label in ("Hello", "shiny", "sun  "):
        assert f"{label} ···███···" in text
    assert "0.1000 [·░▒▓█] 1.0000 log scale" in text
    assert "values 0.0000 … 1.0000" in text and "zeros drawn at the low end" in text


def test_auto_scale_of_uniform_weights_is_the_weights_scale():
    # three equal rows of x: equal scores, so every weight is 1/3. auto has no range of its
    # own then: the weights' 0 … 1 (before: 1/3 ± 0.5 = −0.1667 … 0.8333, a negative weight
    # at the low end), 1/3 a third of the way up: fifth int(5/3) = 1, ░
    trace = attend(Problem.from_mapping({"x": [[1.0, 2.0]] * 3}, "uniform"))
    np.testing.assert_allclose(trace["weights"], np.full((3, 3), 1 / 3), rtol=1e-12)
    text = _row(trace, ColorRange.auto, color_system=None).export_text()
    assert _legends(text) == [("0.0000", "1.0000")]
    assert text.count("░░░░░░░░░") == 3


def test_grid_scale_of_equal_values():
    from attncli.render.drawing import Scale, grid_scale

    hidden = np.zeros((2, 2), dtype=bool)
    grid = np.full((2, 2), 2.0)  # e.g. scores of one head all 2
    assert grid_scale(grid, hidden, ColorRange.auto, (0.0, 3.0)) == Scale(0.0, 3.0)
    # outside the step's scale (it cannot be for a step's own values): 2 ± 0.5
    assert grid_scale(grid, hidden, ColorRange.auto, (-1.0, 1.0)) == Scale(1.5, 2.5)
    # log: 2 / 10 … max(2, the top 1) = 0.2 … 2, as dropped_weights kept at 1 / (1 − 0.5)
    assert grid_scale(grid, hidden, ColorRange.log, (0.0, 1.0)) == Scale(0.2, 2.0, log=True)
    assert grid_scale(np.full((2, 2), 0.25), hidden, ColorRange.log,
                      (0.0, 1.0)) == Scale(0.025, 1.0, log=True)


# --- labels cut so that they stay apart ----------------------------------------------------

def _tokens_trace(tokens: list[str]):
    x = np.random.default_rng(5).normal(size=(len(tokens), 4))
    return attend(Problem.from_mapping({"x": x, "tokens": tokens}, "tokens"))


def test_cut_row_labels_that_would_look_the_same_keep_their_ends():
    # 30 tokens 你好 × 5 + i: 10 wide characters (2 columns each) and a number. Cut at the
    # end to 16 columns they would all read 你好你好你好你… (15 columns). Cut in the middle:
    # the end gets (15 − 1) // 2 = 7 columns: "好你好0" (2 + 2 + 2 + 1) or "你好29" (a 4th
    # wide character would make 8); the start the rest less "…": 15 − 7 − 1 = 7 → "你好你",
    # 15 − 6 − 1 = 8 → "你好你好".
    tokens = ["你好" * 5 + str(i) for i in range(30)]
    text = _text(_tokens_trace(tokens), width=80)
    for i in range(10):
        assert f"\n你好你…好你好{i}  " in text
    for i in range(10, 30):
        assert f"\n你好你好…你好{i} " in text
    assert "你好你好你好你…" not in text


def test_cut_column_labels_that_would_look_the_same_keep_their_ends():
    # 19 characters; rows cut to 16 in the middle: an end of (16 − 1) // 2 = 7, "_name_0" or
    # "name_12", after 8 characters and "…". Columns are 8 lines: an end of (8 − 1) // 2 = 3,
    # after 4 and "…": "a_lo…e_0", "a_lo…_12". At 80 columns (80 − 16 − 1) // 3 = 21 keys fit.
    tokens = [f"a_long_token_name_{i}" for i in range(30)]
    text = _text(_tokens_trace(tokens), width=80)
    assert "\na_long_t…name_12 " in text
    columns = _column_labels(text, "a_long_t…_name_0", 16, 21)
    assert columns == [f"a_lo…e_{i}" for i in range(10)] + [f"a_lo…_{i}" for i in range(10, 21)]


def test_labels_alike_at_both_ends_get_their_index():
    # 15 x, a digit, 15 x: cut at the end (15 x + "…") or in the middle (8 x, "…", 7 x) they
    # look the same: the index goes first, then the label cut at the end to 16 columns:
    # "0 " + 13 x + "…"
    tokens = ["x" * 15 + str(i) + "x" * 15 for i in range(3)]
    text = _text(_tokens_trace(tokens), width=80)
    for i in range(3):
        assert f"\n{i} {'x' * 13}… " in text


# --- --heatmap and --format ----------------------------------------------------------------

def test_heatmap_with_format_table_prints_the_tables_after_the_grids(tmp_path):
    args = ["compute", "--sample", "hello-shiny-sun", "--heatmap", "--steps", "weights,context"]
    alone = runner.invoke(app, args)
    assert alone.exit_code == 0 and _legends(alone.stdout) == [("0.0000", "1.0000")]
    assert "shape (3, 3)" not in alone.stdout  # the grids alone: no table
    both = runner.invoke(app, [*args, "--format", "table"])
    assert both.exit_code == 0, (both.stderr, both.exception)
    out = both.stdout
    # the grid, then the tables: the weights of seed 000 (softmax of x xᵀ) row "Hello"
    assert out.index("0.0000 [·░▒▓█] 1.0000") < out.index("weights = softmax(scores)  shape")
    assert "│ Hello       │ 0.2709 │ 0.3763 │ 0.3528 │" in out
    assert "context  context = weights values  shape (3, 3)" in out
    target = tmp_path / "both.txt"  # -o: both in the file, whole
    result = runner.invoke(app, [*args, "--format", "table", "-o", str(target)])
    assert result.exit_code == 0 and result.stdout == ""
    text = target.read_text(encoding="utf-8")
    assert _legends(text) == [("0.0000", "1.0000")] and "context = weights values" in text
