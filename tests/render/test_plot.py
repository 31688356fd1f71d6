"""--plot: an image is written, opens with the right number of panels and size, and shows the
masked cells; a missing matplotlib, an unknown extension or no query × key step is one line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli import AttentionConfig, attend, load_problem
from attncli.cli import app
from attncli.errors import InputError
from attncli.render.drawing import hidden_cells
from attncli.render.layout import printable
from attncli.render.plot import DPI, figure, write_plot

runner = CliRunner()


@pytest.fixture
def mpl():
    """matplotlib (the `plot` extra); the drawing tests skip without it."""
    return pytest.importorskip("matplotlib")


def _panels(fig) -> list:
    """The heatmaps of a figure (its axes other than the colour bars)."""
    return [ax for ax in fig.axes if ax.get_label() == "heatmap"]


def _bars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _png_size(path) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG's IHDR chunk (bytes 16–24)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _expected_pixels(trace, steps=None) -> np.ndarray:
    return figure(trace, steps).get_size_inches() * DPI


# --- through the command line --------------------------------------------------------------

@pytest.mark.parametrize(("sample", "panels"), [
    ("hello-shiny-sun", 1),  # one head: one panel
    ("multihead-einsum", 4),  # heads 0 … 3 in a 2 × 2 grid
    ("your-journey-causal", 1),
])
def test_cli_writes_a_png_with_a_panel_per_head(mpl, tmp_path, sample, panels):
    out = tmp_path / "weights.png"
    result = runner.invoke(app, ["compute", "--sample", sample, "--plot", str(out),
                                 "-o", str(tmp_path / "steps.txt")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "steps.txt").read_text().strip()  # the normal output is still written
    trace = attend(load_problem(sample=sample))
    np.testing.assert_allclose(_png_size(out), _expected_pixels(trace), atol=1)
    image = mpl.image.imread(out)  # it opens as an image, (height, width, RGBA)
    assert image.shape[2] == 4 and image[..., :3].std() > 0.1  # not blank
    fig = figure(trace)
    assert len(_panels(fig)) == panels and len(_bars(fig)) == 1
    titles = [ax.get_title() for ax in _panels(fig)]
    assert titles == ([f"head {h}" for h in range(4)] if panels == 4 else [""])


def test_cli_plots_each_query_key_step_of_steps(mpl, tmp_path):
    out = tmp_path / "steps.png"
    result = runner.invoke(app, ["compute", "--sample", "multihead-einsum", "--steps",
                                 "scores,weights,context", "--plot", str(out), "-o", "/dev/null"])
    assert result.exit_code == 0, result.output
    trace = attend(load_problem(sample="multihead-einsum"), steps=["scores", "weights", "context"])
    fig = figure(trace, ["scores", "weights", "context"])  # context is (query, dim): left out
    assert len(_panels(fig)) == 2 * 4 and len(_bars(fig)) == 2
    assert [bar.get_ylabel() for bar in _bars(fig)] == ["scores", "weights"]
    np.testing.assert_allclose(_png_size(out), _expected_pixels(trace, ["scores", "weights"]),
                               atol=1)


@pytest.mark.parametrize(("name", "magic"), [("plot.svg", b"<?xml"), ("plot.PDF", b"%PDF-")])
def test_cli_writes_svg_and_pdf_by_the_extension(mpl, tmp_path, name, magic):
    out = tmp_path / name
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--plot", str(out),
                                 "-o", "/dev/null"])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(magic)
    if name.endswith(".svg"):
        assert b"<svg" in data and b"weights" in data
        # the same run writes the same bytes (no date, no random ids)
        runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--plot", str(out),
                            "-o", "/dev/null"])
        assert out.read_bytes() == data


@pytest.mark.parametrize("name", ["plot.jpg", "plot", "plot.png.txt"])
def test_cli_unknown_extension_is_one_line_listing_the_formats(tmp_path, name):
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--plot",
                                 str(tmp_path / name), "-o", "/dev/null"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert ".png, .svg or .pdf" in result.stderr
    assert not (tmp_path / name).exists()


def test_cli_without_a_query_key_step_says_what_plot_draws(mpl, tmp_path):
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--steps", "context",
                                 "--plot", str(tmp_path / "p.png"), "-o", "/dev/null"])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "--plot draws the query × key steps" in message and "--steps context" in message


def test_cli_without_matplotlib_is_one_line_with_the_install_command(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    result = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--plot",
                                 str(tmp_path / "p.png"), "-o", "/dev/null"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "attncli: error: --plot needs matplotlib: pip install 'attncli[plot]'"]
    assert not (tmp_path / "p.png").exists()


# --- write_plot and figure from Python -----------------------------------------------------

def test_write_plot_replaces_a_file_whole(mpl, tmp_path):
    out = tmp_path / "w.png"
    out.write_bytes(b"old")
    write_plot(attend(load_problem(sample="three-inputs")), out)
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["w.png"]  # no temporary file left


def test_write_plot_draws_nothing_on_an_error(tmp_path):
    out = tmp_path / "w.gif"
    with pytest.raises(InputError, match=r"\.png, \.svg or \.pdf"):
        write_plot(attend(load_problem(sample="three-inputs")), out)
    assert not out.exists()


def test_figure_grows_with_the_tokens_and_is_capped(mpl, tmp_path):
    small = figure(attend(load_problem(sample="hello-shiny-sun"))).get_size_inches()
    middle = figure(attend(load_problem(sample="your-journey-causal"))).get_size_inches()
    rng = np.random.default_rng(0)
    problem = tmp_path / "big.json"
    problem.write_text(json.dumps({"x": rng.normal(size=(300, 8)).tolist(),
                                   "config": {"heads": 8}}))
    big = figure(attend(load_problem(str(problem)))).get_size_inches()
    assert np.all(small < middle) and np.all(middle < big)
    assert max(big) <= 24
    assert len(_panels(figure(attend(load_problem(str(problem)))))) == 8


def test_figure_writes_values_only_in_small_matrices(mpl, tmp_path):
    fig = figure(attend(load_problem(sample="hello-shiny-sun")))
    (ax,) = _panels(fig)
    # shiny's row, worked in tests/test_cli.py: [0.22913, 0.40626, 0.36460]
    assert [t.get_text() for t in ax.texts][3:6] == ["0.23", "0.41", "0.36"]
    rng = np.random.default_rng(1)
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"x": rng.normal(size=(13, 4)).tolist()}))
    (ax,) = _panels(figure(attend(load_problem(str(problem)))))
    assert len(ax.texts) == 0  # 13 × 13: colours only


def test_causal_figure_shows_the_masked(mpl):
    trace = attend(load_problem(sample="your-journey-causal"))
    fig = figure(trace, ["scores", "masked_scores", "weights"])
    scores, masked_scores, weights = _panels(fig)
    future = np.triu(np.ones((6, 6), dtype=bool), k=1)  # keys after the query
    for ax in (masked_scores, weights):
        np.testing.assert_array_equal(np.ma.getmaskarray(ax.images[0].get_array()), future)
        (patch,) = ax.patches  # the hatched grey seen through the masked cells
        assert patch.get_hatch() == "///"
    assert not np.ma.getmaskarray(scores.images[0].get_array()).any()  # before the mask
    assert len(scores.patches) == 0
    assert [t.get_text() for t in masked_scores.texts].count("−∞") == future.sum()
    assert "" not in [t.get_text() for t in weights.texts]
    assert len(weights.texts) == 36 - future.sum()  # no 0.00 written in masked cells
    legends = [bar.get_legend() for bar in _bars(fig)]
    assert legends[0] is None  # scores: nothing masked
    assert [[t.get_text() for t in legend.get_texts()] for legend in legends[1:]] == [
        ["masked"], ["masked"]]


@pytest.mark.parametrize("config", [
    AttentionConfig(causal=True),
    AttentionConfig(window=1),
    AttentionConfig(causal=True, window=1),
    AttentionConfig(causal=True, causal_align="bottom-right"),
    AttentionConfig(window=1, causal_align="bottom-right"),
])
def test_masked_cells_without_masked_scores_are_rebuilt_from_the_config(tmp_path, config):
    rng = np.random.default_rng(2)
    problem = tmp_path / "cross.json"  # seq_q 3 ≠ seq_k 5: the alignment matters
    problem.write_text(json.dumps({"x": rng.normal(size=(3, 4)).tolist(),
                                   "memory": rng.normal(size=(5, 4)).tolist()}))
    problem = load_problem(str(problem))
    full = attend(problem, config)
    expected = np.isneginf(full["masked_scores"])
    weights_only = attend(problem, config, steps=["weights"])
    assert "masked_scores" not in weights_only
    np.testing.assert_array_equal(hidden_cells(weights_only, weights_only.step("weights")),
                                  expected)
    one_row = attend(problem, config, steps=["weights"], query="1")
    np.testing.assert_array_equal(hidden_cells(one_row, one_row.step("weights")),
                                  expected[1:2])


def test_a_mask_file_shows_in_the_masked_cells(tmp_path):
    mask = [[True, False, True], [True, True, False], [False, True, True]]
    problem = tmp_path / "masked.json"
    problem.write_text(json.dumps({"x": [[1, 0], [0, 1], [1, 1]], "mask": mask}))
    trace = attend(load_problem(str(problem)))
    np.testing.assert_array_equal(hidden_cells(trace, trace.step("weights")), ~np.array(mask))
    assert not hidden_cells(trace, trace.step("scores")).any()
    weights_only = attend(load_problem(str(problem)), steps=["weights"])  # no masked_scores
    np.testing.assert_array_equal(hidden_cells(weights_only, weights_only.step("weights")),
                                  ~np.array(mask))
    one_row = attend(load_problem(str(problem)), steps=["weights"], query="1")
    np.testing.assert_array_equal(hidden_cells(one_row, one_row.step("weights")), ~np.array(mask)[1:2])
    later = weights_only.at_query(2)  # narrowed after the run
    np.testing.assert_array_equal(hidden_cells(later, later.step("weights")), ~np.array(mask)[2:])


def test_a_key_padding_mask_with_causal_heads_and_batches_is_masked_in_weights(mpl, tmp_path):
    # batch 2 × 3 tokens, 2 heads, causal; batch 1 pads its last key: its rows see keys ≤ 1
    problem = tmp_path / "padded.json"
    rng = np.random.default_rng(5)
    problem.write_text(json.dumps({"x": rng.normal(size=(2, 3, 4)).tolist(),
                                   "key_padding_mask": [[False, False, False],
                                                        [False, False, True]]}))
    trace = attend(load_problem(str(problem)), AttentionConfig(causal=True, heads=2),
                   steps=["weights"])
    assert trace.mask is not None and "masked_scores" not in trace
    expected = np.broadcast_to(np.triu(np.ones((3, 3), dtype=bool), k=1), (2, 2, 3, 3)).copy()
    expected[1, :, :, 2] = True
    np.testing.assert_array_equal(hidden_cells(trace, trace.step("weights")), expected)
    panels = _panels(figure(trace, ["weights"]))
    assert len(panels) == 4  # batch × head
    for ax, cells in zip(panels, expected.reshape(4, 3, 3), strict=True):
        np.testing.assert_array_equal(np.ma.getmaskarray(ax.images[0].get_array()), cells)


def test_dropout_zeros_are_not_masked(mpl):
    trace = attend(load_problem(sample="your-journey-causal"),
                   AttentionConfig(causal=True, dropout=0.5, seed=123))
    dropped = hidden_cells(trace, trace.step("dropped_weights"))
    np.testing.assert_array_equal(dropped, np.triu(np.ones((6, 6), dtype=bool), k=1))
    fig = figure(trace)  # weights and dropped_weights by default
    assert [bar.get_ylabel() for bar in _bars(fig)] == ["weights", "dropped_weights"]
    assert _bars(fig)[1].get_ylim()[1] == pytest.approx(2.0)  # kept weights × 1/(1 − 0.5)


def test_huge_finite_scores_plot_without_overflow(mpl, tmp_path):
    # scores ±1e308: high − low overflows to ∞, and Normalize's (x − vmin)/(vmax − vmin) gave NaN
    problem = tmp_path / "big.json"
    problem.write_text(json.dumps({"x": [[1e154], [-1e154]]}))
    out = tmp_path / "b.png"
    result = runner.invoke(app, ["compute", str(problem), "--steps", "scores", "--plot",
                                 str(out), "-o", "/dev/null"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert out.read_bytes()[:4] == b"\x89PNG"
    (ax,) = _panels(figure(attend(load_problem(str(problem)), steps=["scores"]), ["scores"]))
    image = ax.images[0]
    colours = image.cmap(image.norm(image.get_array()))  # 1e308 yellow, −1e308 purple
    np.testing.assert_allclose(colours[0, 0], image.cmap(1.0))
    np.testing.assert_allclose(colours[0, 1], image.cmap(0.0))


@pytest.mark.parametrize("token", ["$\\frac$", "$x^2$", "two\nlines", "\x1bq", "日本"])
def test_labels_are_plain_text_on_one_line_and_warnings_do_not_leak(mpl, tmp_path, token,
                                                                    recwarn):
    problem = tmp_path / "odd.json"
    problem.write_text(json.dumps({"x": [[1, 0], [0, 1]], "tokens": [token, "b"]}))
    out = tmp_path / "odd.png"
    result = runner.invoke(app, ["compute", str(problem), "--plot", str(out), "-o",
                                 "/dev/null"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stderr == ""
    assert not [w for w in recwarn if "matplotlib" in str(w.filename)]
    fig = figure(attend(load_problem(str(problem))))
    (ax,) = _panels(fig)
    labels = [t for t in ax.get_yticklabels() if t.get_text() != "b"]
    assert [t.get_text() for t in labels] == [printable(token)]
    assert "\n" not in labels[0].get_text() and "\x1b" not in labels[0].get_text()
    assert not labels[0].get_parse_math()  # "$x^2$" drawn as written, not as maths


# --- large problems and --color-range ------------------------------------------------------

def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_a_2048_token_plot_alone_runs_and_is_the_only_output(mpl, tmp_path):
    # 2 heads: 2 × 2048² = 8 Mi weights, past a table's 4 Mi numbers (refused before, with a
    # message about --steps); --plot without -o, --format or --json prints no table.
    x = np.random.default_rng(11).normal(size=(2048, 4))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "p.png"
    result = runner.invoke(app, ["compute", "--x", str(tmp_path / "x.npy"), "--heads", "2",
                                 "--plot", str(out)])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout == "" and result.stderr == ""
    trace = attend(load_problem(arrays={"x": str(tmp_path / "x.npy")}),
                   AttentionConfig(heads=2), steps=["weights"])
    fig = figure(trace)
    np.testing.assert_allclose(_png_size(out), fig.get_size_inches() * DPI, atol=1)
    assert len(_panels(fig)) == 2 and len(_bars(fig)) == 1
    # A panel is 5 inches of 2048 cells at 150 dpi: 2048 / 750 = 2.7 cells a pixel, so
    # blocks of 3 × 3 (⌈2048 / 3⌉ = 683 of them each way, the last 2 wide), each their mean.
    assert fig.subfigs[0]._suptitle.get_text() == (
        "weights = softmax(scores)   (2048 × 2048 cells drawn in blocks of 3 × 3, each their "
        "mean)")
    for h, ax in enumerate(_panels(fig)):
        part = x[:, 2 * h:2 * h + 2]  # no W: queries = keys = x's columns of head h, scale 1
        weights = _softmax_rows(part @ part.T)
        image = ax.images[0].get_array()
        assert image.shape == (683, 683)
        for i, j in [(0, 0), (5, 17), (682, 0), (300, 682), (682, 682)]:
            np.testing.assert_allclose(image[i, j], weights[3 * i:3 * i + 3,
                                                            3 * j:3 * j + 3].mean(),
                                       rtol=1e-12)
        assert ax.get_xlim() == (-0.5, 2047.5)  # the blocks span the keys, not their padding


def test_plot_alone_prints_nothing_and_with_format_prints_the_tables_too(mpl, tmp_path):
    out = tmp_path / "p.png"
    alone = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--plot", str(out)])
    assert alone.exit_code == 0 and alone.stdout == ""
    assert out.read_bytes()[:4] == b"\x89PNG"
    both = runner.invoke(app, ["compute", "--sample", "hello-shiny-sun", "--plot", str(out),
                               "--format", "table"])
    assert both.exit_code == 0 and "weights = softmax(scores)" in both.stdout


def _corner_trace():
    """One query row of weights about 1/2048, as at n = 2048 (a part of a row: no sum of 1)."""
    from attncli.trace import Step, Trace

    weights = np.array([[4e-4, 5e-4, 1e-3, 2e-3]])
    return Trace(steps=[Step("weights", "weights = softmax(scores)", weights,
                             ("query", "key"))], query_tokens=["q"], key_tokens=list("abcd"))


@pytest.mark.parametrize(("color_range", "t_5e4", "t_1e3"), [
    ("unit", 5e-4, 1e-3),  # on 0 … 1: both in the colour map's first of 256 colours
    ("auto", 0.0625, 0.375),  # (v − 4e-4) / (2e-3 − 4e-4)
    ("log", 0.1386294361, 0.5693234419),  # ln(v / 4e-4) / ln 5: ln 1.25 / ln 5, ln 2.5 / ln 5
])
def test_color_range_colours_5e_4_and_1e_3_in_the_plot(mpl, color_range, t_5e4, t_1e3):
    from attncli.render.drawing import ColorRange

    (ax,) = _panels(figure(_corner_trace(), color_range=ColorRange(color_range)))
    image = ax.images[0]
    colours = image.cmap(image.norm(np.array([5e-4, 1e-3])))
    viridis = mpl.colormaps["viridis"]
    # within one of the map's 256 colours (t = 0.0625 = 16/256 lies on a boundary)
    np.testing.assert_allclose(colours, viridis([t_5e4, t_1e3]), atol=0.01)
    same = bool(np.all(colours[0] == colours[1]))
    assert same is (color_range == "unit")


def test_auto_and_log_give_each_panel_its_own_colour_bar(mpl):
    from attncli.render.drawing import ColorRange

    trace = attend(load_problem(sample="multihead-einsum"))
    weights = trace["weights"]  # (4, 5, 5)
    fig = figure(trace, color_range=ColorRange.auto)
    bars = _bars(fig)
    assert len(bars) == 4 and len(_panels(fig)) == 4
    for bar, head in zip(bars, weights, strict=True):
        np.testing.assert_allclose(bar.get_ylim(), (head.min(), head.max()), rtol=1e-12)
    fig = figure(trace, color_range=ColorRange.log)
    for ax, head in zip(_panels(fig), weights, strict=True):
        norm = ax.images[0].norm
        assert type(norm).__name__ == "LogNorm"
        np.testing.assert_allclose((norm.vmin, norm.vmax), (head.min(), head.max()),
                                   rtol=1e-12)


# --- the log colour bar: plain text ticks, panels of the same size -------------------------

def _drawn(trace, color_range):
    """The figure laid out and drawn as SVG, as write_plot draws it: (figure, SVG text)."""
    import io

    from matplotlib import rc_context

    from attncli.render.drawing import ColorRange
    from attncli.render.plot import RC

    fig = figure(trace, color_range=ColorRange(color_range))
    buffer = io.BytesIO()
    with rc_context(RC):
        fig.savefig(buffer, format="svg")
    return fig, buffer.getvalue().decode("utf-8")


def _panel_inches(fig) -> list[tuple[float, float]]:
    """(width, height) in inches of each panel, after the layout."""
    width, height = fig.get_size_inches()
    return [(ax.get_position().width * width, ax.get_position().height * height)
            for ax in _panels(fig)]


def _tick_labels(bar, minor: bool = False) -> list[str]:
    """The labels drawn on a colour bar's ticks in its range (the others are not drawn)."""
    low, high = sorted(bar.get_ylim())
    axis = bar.yaxis
    ticks = axis.get_minor_ticks() if minor else axis.get_major_ticks()
    return [tick.label1.get_text() for tick in ticks
            if low * (1 - 1e-9) <= tick.get_loc() <= high * (1 + 1e-9)]


def _assert_plain_and_same_shape(trace, svg: str, fig) -> None:
    assert "mathdefault" not in svg and "$" not in svg  # no raw mathtext anywhere
    (bar,) = _bars(fig)
    assert not any(_tick_labels(bar, minor=True))  # minor ticks carry no label
    unit, _ = _drawn(trace, "unit")
    # the panel keeps the size it has beside the unit colour bar (before: 0.26 × 2.05 inches
    # instead of 2.37 × 2.05 at 3 tokens, squeezed by labels like $\mathdefault{4\times…}$)
    np.testing.assert_allclose(_panel_inches(fig), _panel_inches(unit), rtol=0.05)


def test_log_colour_bar_of_three_tokens_is_plain_numbers_and_keeps_the_panel(mpl):
    # hello-shiny-sun (seed 000): x = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98],
    # [0.29, 0.54, 0.93]], weights = softmax(x xᵀ) row by row, 0.2283 … 0.4063: less than a
    # decade. Of 1, 2, 5 × 10ⁿ none lies in it, of 1, 2, 3, 5 × 10ⁿ only 0.3, so the ticks are
    # evenly spaced: steps of 0.05 (4 bins of 0.178 / 4 = 0.045 → 0.05), 0.25 … 0.4.
    x = np.array([[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]])
    weights = _softmax_rows(x @ x.T)
    np.testing.assert_allclose([weights.min(), weights.max()], [0.2283, 0.4063], atol=5e-5)
    trace = attend(load_problem(sample="hello-shiny-sun"))
    fig, svg = _drawn(trace, "log")
    (bar,) = _bars(fig)
    np.testing.assert_allclose(bar.get_ylim(), (weights.min(), weights.max()), rtol=1e-12)
    assert _tick_labels(bar) == ["0.25", "0.3", "0.35", "0.4"]
    _assert_plain_and_same_shape(trace, svg, fig)


@pytest.mark.parametrize("color_range", ["log", "auto"])
def test_a_colour_bar_per_panel_keeps_the_panels_size(mpl, color_range):
    # multihead-einsum: 4 heads in 2 × 2, a colour bar beside each; the figure is wider by the
    # second column's bar, so each panel is as large as beside the one unit bar (before: 0.97
    # inch wide instead of 3.24 under log, its minor ticks labelled in raw mathtext)
    trace = attend(load_problem(sample="multihead-einsum"))
    fig, svg = _drawn(trace, color_range)
    assert len(_bars(fig)) == 4 and "mathdefault" not in svg
    for bar in _bars(fig):
        assert not any(_tick_labels(bar, minor=True))
    unit, _ = _drawn(trace, "unit")
    np.testing.assert_allclose(_panel_inches(fig), _panel_inches(unit), rtol=0.05)


def _blocks_of_2048(values: list[float]):
    """A 2048 × 2048 weights trace whose columns run through ``values`` in bands of 3 keys:
    the 3 × 3 blocks a 2048 plot is drawn in (see above) each hold one of the values, so the
    drawn range is min … max of ``values``."""
    from attncli.trace import Step, Trace

    column = np.asarray(values)[(np.arange(2048) // 3) % len(values)]
    weights = np.broadcast_to(column, (2048, 2048)).copy()
    tokens = [f"t{i}" for i in range(2048)]
    return Trace(steps=[Step("weights", "weights = softmax(scores)", weights,
                             ("query", "key"))], query_tokens=tokens, key_tokens=tokens)


@pytest.mark.parametrize(("values", "labels"), [
    # 3e-4 … 9e-4, within a decade as weights about 1/2048 are: of 1, 2, 5 × 10⁻⁴ only 5e-4,
    # of 1, 2, 3, 5 × 10⁻⁴ 3e-4 and 5e-4: evenly spaced then, 4 bins of 1.5e-4 → steps of
    # 2e-4: 4e-4, 6e-4, 8e-4
    ([3e-4, 5e-4, 7e-4, 9e-4], ["0.0004", "0.0006", "0.0008"]),
    # 2e-7 … 0.5: the powers of ten 10⁻⁶ … 10⁻¹ lie in it, six: each labelled
    ([2e-7, 3e-5, 4e-3, 0.5], ["10⁻⁶", "10⁻⁵", "10⁻⁴", "10⁻³", "10⁻²", "10⁻¹"]),
])
def test_log_colour_bar_at_2048_tokens_is_plain_text_and_keeps_the_panel(mpl, values, labels):
    trace = _blocks_of_2048(values)
    fig, svg = _drawn(trace, "log")
    (bar,) = _bars(fig)
    np.testing.assert_allclose(bar.get_ylim(), (min(values), max(values)), rtol=1e-12)
    assert _tick_labels(bar) == labels
    _assert_plain_and_same_shape(trace, svg, fig)


def test_log_ticks_are_worked_values():
    from attncli.render.plot import _plain, log_ticks

    # 0.07 … 0.36 (a head of multihead-einsum): 1, 2, 5 × 10ⁿ give 0.1 and 0.2 only; with 3,
    # 0.1, 0.2, 0.3 (1 … 9 would crowd 0.06 … 0.1 at the top of the decade)
    assert log_ticks(0.07, 0.36) == ([0.1, 0.2, 0.3], ["0.1", "0.2", "0.3"], [])
    assert log_ticks(4e-4, 2e-3) == ([5e-4, 1e-3, 2e-3], ["0.0005", "0.001", "0.002"], [])
    # 1e-3 … 0.9: three powers of ten labelled; minor 2 … 9 × 10⁻³, 10⁻², 10⁻¹, up to 0.9
    majors, labels, minors = log_ticks(1e-3, 0.9)
    assert majors == [1e-3, 1e-2, 1e-1] and labels == ["10⁻³", "10⁻²", "10⁻¹"]
    assert minors == [float(f"{m}e{e}") for e in (-3, -2, -1) for m in range(2, 10)]
    # 1e-300 … 1: 300 decades, every 50th labelled (300 / 50 = 6 < 7), 7 labels; no minor
    majors, labels, minors = log_ticks(1e-300, 1.0)
    assert labels == ["10⁻³⁰⁰", "10⁻²⁵⁰", "10⁻²⁰⁰", "10⁻¹⁵⁰", "10⁻¹⁰⁰", "10⁻⁵⁰", "10⁰"]
    assert minors == []
    assert [_plain(v) for v in (0.30000000000000004, 0.35000000000000003, 2.5e-5)] == [
        "0.3", "0.35", "2.5×10⁻⁵"]


# --- a grid whose values are all equal ------------------------------------------------------

def test_equal_values_get_a_sane_colour_range(mpl, tmp_path):
    from attncli.render.drawing import ColorRange

    # --normalize hard: one_hot(argmax_j scores); hello-shiny-sun's scores x xᵀ are largest at
    # "shiny" in each row (0.7842, 1.3569, 1.2487), so every positive weight is 1. log: from
    # 1/10 to the weights' top, 1: the 1s at the top, not in the middle of 1/√10 … √10.
    trace = attend(load_problem(sample="hello-shiny-sun"), AttentionConfig(normalize="hard"))
    (ax,) = _panels(figure(trace, color_range=ColorRange.log))
    norm = ax.images[0].norm
    np.testing.assert_allclose((norm.vmin, norm.vmax), (0.1, 1.0), rtol=1e-12)
    assert norm(1.0) == 1.0
    # x with three equal rows: equal scores, weights 1/3 everywhere; auto: the weights' own
    # scale 0 … 1 (not 1/3 ± 0.5 = −0.1667 … 0.8333), 1/3 a third of the way up
    problem = tmp_path / "same.json"
    problem.write_text(json.dumps({"x": [[1.0, 2.0]] * 3}))
    (ax,) = _panels(figure(attend(load_problem(str(problem))), color_range=ColorRange.auto))
    norm = ax.images[0].norm
    assert (norm.vmin, norm.vmax) == (0.0, 1.0)
    np.testing.assert_allclose(norm(1 / 3), 1 / 3, rtol=1e-12)
