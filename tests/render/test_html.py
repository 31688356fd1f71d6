"""--format html without a browser: one self-contained file (nothing it would fetch), small,
a heatmap per head of each query × key step, each cell's value and arithmetic as attncli
explain writes it; check's page marks every entry. tests/render/test_html_browser.py loads
the pages in a real browser."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent.parent


class _Page(HTMLParser):
    """The tags and attributes of a page, as a browser's parser reads them."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def having(self, tag: str, **attributes) -> list[dict]:
        """The attributes of each ``tag`` with ``attributes`` (class_: one of its classes;
        data_step: data-step)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attributes.items()}
        return [a for t, a in self.tags if t == tag and all(
            v in (a.get(k) or "").split() if k == "class" else a.get(k) == v
            for k, v in wanted.items())]


def _html(tmp_path: Path, *args: str) -> tuple[str, _Page]:
    out = tmp_path / "page.html"
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code in (0, 1), result.output
    text = out.read_text(encoding="utf-8")
    return text, _Page(text)


def _data(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


@pytest.mark.parametrize("args", [
    ["compute", "--sample", "three-inputs", "--variant", "scaled"],
    ["compute", "--sample", "multihead-einsum", "--causal"],
    ["check", "--sample", "three-inputs", "samples/answers/three-inputs.published.json",
     "-f", "html"],
    ["explain", "--sample", "hello-shiny-sun", "--query", "shiny", "-f", "html"],
])
def test_the_page_fetches_nothing(tmp_path, monkeypatch, args):
    monkeypatch.chdir(ROOT)
    text, page = _html(tmp_path, *args)
    assert text.startswith("<!DOCTYPE html>")
    assert not page.having("link") and not page.having("img") and not page.having("iframe")
    for _, attributes in page.tags:
        for name in ("src", "href", "action", "srcset", "poster"):
            assert attributes.get(name) in (None, "") or attributes[name].startswith("#")
    assert not re.search(r"\b(fetch\(|XMLHttpRequest|import\(|@import|url\()", text)
    assert "default-src 'none'" in text  # and the browser is told to refuse any request


def test_a_four_token_problem_is_well_under_300_kb(tmp_path):
    problem = {"tokens": ["a", "b", "c", "d"], "x": np.eye(4).tolist(),
               "W_q": np.eye(4).tolist(), "W_k": np.eye(4).tolist(), "W_v": np.eye(4).tolist(),
               "W_o": np.eye(4).tolist()}
    (tmp_path / "p.json").write_text(json.dumps(problem))
    text, _ = _html(tmp_path, "compute", str(tmp_path / "p.json"), "--heads", "2",
                    "--causal")
    assert len(text.encode()) < 150_000


@pytest.mark.parametrize(("args", "heads"), [
    (["--sample", "three-inputs", "--variant", "scaled"], 1),
    (["--sample", "multihead-einsum", "--causal"], 4),
])
def test_a_heatmap_per_head_of_each_query_by_key_step_with_each_cells_value(tmp_path, args,
                                                                           heads):
    text, page = _html(tmp_path, "compute", *args, "-f", "html")
    document = json.loads(runner.invoke(app, ["compute", *args, "--json"]).stdout)
    square = [name for name, step in document["steps"].items()
              if "query" in step["axes"] and "key" in step["axes"]]
    figures = page.having("figure", class_="heatmap")
    assert len(figures) == heads * len(square)
    for name in square:  # the first grid's cells, in order, hold the step's numbers
        written = np.array(document["steps"][name]["data"], dtype=object)
        data = np.where(written == None, -np.inf, written).astype(float)  # noqa: E711
        grid = data if heads == 1 else data[0]
        assert len(page.having("figure", class_="heatmap", data_step=name)) == heads
        start = next(i for i, (t, a) in enumerate(page.tags)
                     if t == "figure" and a.get("data-step") == name)
        values = [a["data-value"] for t, a in page.tags[start:] if t == "td"
                  and "cell" in a.get("class", "")][:grid.size]
        shown = np.array([-np.inf if v == "-inf" else float(v) for v in values])
        np.testing.assert_allclose(shown, grid.ravel(), rtol=0, atol=1e-12)
    tabbable = [a for t, a in page.tags if t == "td" and a.get("tabindex") == "0"]
    assert len(tabbable) == len(figures)  # one tab stop per grid


def test_each_cells_arithmetic_is_explains(tmp_path):
    args = ["--sample", "three-inputs", "--variant", "scaled"]
    text, _ = _html(tmp_path, "compute", *args, "-f", "html")
    arithmetic = _data(text)["arithmetic"]
    cell = [arithmetic["sections"][k] for k in arithmetic["cells"]["0,1"]["0"]]  # Input 1,
    # Input 2
    explained = runner.invoke(app, ["explain", *args, "--query", "Input 1", "--key",
                                    "Input 2"], env={"COLUMNS": "200"}).stdout
    lines = [line.strip() for section in cell for line in section["lines"]]
    # seed 004's numbers worked by hand: q(Input 1) · k(Input 2) = 1·4 + 0·4 + 2·0 = 4,
    # scaled by 1/√3: 2.3094
    assert "score(Input 1, Input 2) = 1 × 4 + 0 × 4 + 2 × 0 = 4" in lines
    assert "scaled(Input 2) = 4 / √3 = 2.3094" in lines
    for line in ("score(Input 1, Input 2) = 1 × 4 + 0 × 4 + 2 × 0 = 4",
                 "scaled(Input 2) = 4 / √3 = 2.3094"):
        assert line in explained
    titles = [section["title"] for section in cell]
    assert titles[-3:] == ["Exponentials of the scores (Input 1)", "Sum (Input 1)",
                           "Weights (Input 1)"]


def test_the_check_page_marks_every_entry_and_works_out_the_first_wrong_one(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(ROOT)
    text, page = _html(tmp_path, "check", "--sample", "three-inputs",
                       "samples/answers/three-inputs.published.json", "-f", "html")
    entries = [a["class"].split()[1] for t, a in page.tags if t == "td"
               and "entry" in a.get("class", "")]
    # seed 004's published answers: scores 3 right, weights 2 right and 0.0 for 0.0634
    # wrong, the context carried forward from those weights (3 entries)
    assert entries == ["right"] * 3 + ["wrong", "right", "right"] + ["carried"] * 3
    assert page.having("p", class_="diagnosis")
    assert "the weights were rounded to 1 decimal by hand" in text
    assert page.having("section", class_="first-wrong")
    assert "weight(Input 1) = 7.3891 / 116.5854 = 0.0634" in text


def test_a_large_step_is_cut_with_the_way_out_and_no_arithmetic(tmp_path):
    # 60 tokens: 60 × 60 weights, past the 48 rows and columns a page shows and past the
    # 400 cells whose arithmetic it carries
    rng = np.random.default_rng(0)
    problem = {"x": rng.normal(size=(60, 4)).round(2).tolist()}
    (tmp_path / "p.json").write_text(json.dumps(problem))
    text, page = _html(tmp_path, "compute", str(tmp_path / "p.json"), "-f", "html")
    elided = re.findall(r'<p class="elided">([^<]*)</p>', text)
    assert elided and all("rows 49–60" in e and "--format csv or npz" in e for e in elided)
    cells = [a for t, a in page.tags if t == "td" and "cell" in a.get("class", "")]
    assert len(cells) == 48 * 48 * len(page.having("figure", class_="heatmap"))
    assert _data(text)["arithmetic"] == {}


@pytest.mark.parametrize("args", [
    ["explain", "--sample", "hello-shiny-sun", "--query", "shiny"],
    ["check", "--sample", "three-inputs", "samples/answers/three-inputs.published.json"],
])
def test_an_html_file_is_a_page_for_check_and_explain_too(tmp_path, monkeypatch, args):
    monkeypatch.chdir(ROOT)
    text, page = _html(tmp_path, *args)  # -o page.html, no --format
    assert text.startswith("<!DOCTYPE html>")
    assert page.having("html")[0]["data-attncli"] == args[0]



@pytest.mark.parametrize("args", [
    ["--sample", "multihead-einsum", "--steps", "weights"],
    ["--sample", "hello-shiny-sun", "--causal", "--window", "1", "--normalize", "topk",
     "--top-k", "2", "--dropout", "0.5", "--seed", "3"],
    ["--sample", "three-inputs", "--variant", "scaled", "--query", "1"],
])
def test_the_pages_command_writes_the_same_numbers_again(tmp_path, args):
    """The command under the title, run with --json, gives what the page's own run gives
    (it named only the options a torch script takes, and --steps without context crashed)."""
    import html
    import shlex

    text, _ = _html(tmp_path, "compute", *args, "-f", "html")
    command = html.unescape(re.search(r'<pre id="command">([^<]*)</pre>', text).group(1))
    words = shlex.split(command)
    assert words[:2] == ["attncli", "compute"] and words[-2:] == ["--format", "html"]
    again = runner.invoke(app, [*words[1:-2], "--json"])
    assert json.loads(again.stdout) == json.loads(
        runner.invoke(app, ["compute", *args, "--json"]).stdout)


def test_digit_tokens_get_their_own_rows_arithmetic(tmp_path):
    # tokens "1", "0": row 0 is the token "1"; its arithmetic must be row 0's, not that of
    # the row whose token is "0". x = [[1, 0], [0, 2]], no projection: score(1, 1) = 1·1 = 1
    problem = {"tokens": ["1", "0"], "x": [[1, 0], [0, 2]], "config": {"variant": "simple"}}
    (tmp_path / "p.json").write_text(json.dumps(problem))
    text, _ = _html(tmp_path, "compute", str(tmp_path / "p.json"), "-f", "html")
    arithmetic = _data(text)["arithmetic"]
    lines = [line for k in arithmetic["cells"]["0,0"]["0"]
             for line in arithmetic["sections"][k]["lines"]]
    assert "score(1, 1) = 1 × 1 + 0 × 0 = 1" in lines


def test_no_token_can_end_the_script_block(tmp_path):
    problem = {"tokens": ["<!--<script>", "</script>"], "x": [[1, 0], [0, 1]]}
    (tmp_path / "p.json").write_text(json.dumps(problem))
    text, page = _html(tmp_path, "compute", str(tmp_path / "p.json"), "-f", "html")
    data = text.split('<script type="application/json" id="data">', 1)[1].split("</script>")[0]
    assert "<" not in data and json.loads(data)["queries"] == problem["tokens"]
    assert len(page.having("script")) == 2  # the data and the page's script, both whole
