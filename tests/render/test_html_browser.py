"""The HTML pages (--format html) in a real browser: headless chromium through Selenium
(tests/render/browser.py, one browser for the session). Each page is written by the command
line, loaded from file://, and held to the DOM contract: no console error, no network request,
one heatmap per head for every query × key step, the value on hover and the arithmetic on
click as compute's JSON and explain's text give them (never as the page's own data says),
the keyboard, dark mode and print. Screenshots are saved (ATTNCLI_SCREENSHOTS=folder keeps a
copy) to be looked at."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app
from attncli.samples import sample_path
from tests.render import browser as chromium

runner = CliRunner()

# A 4-token problem of width 4: 2 heads of width 2, so --heads 2 and --rope fit.
FOUR = {
    "tokens": ["the", "cat", "sat", "down"],
    "x": [[0.1, 0.4, -0.3, 0.8], [0.9, -0.2, 0.5, 0.1], [-0.6, 0.7, 0.2, 0.3],
          [0.4, 0.4, -0.8, -0.1]],
    "W_q": [[0.5, -0.3, 0.8, 0.1], [0.2, 0.9, -0.4, 0.6], [-0.7, 0.1, 0.3, 0.5],
            [0.4, -0.6, 0.2, -0.2]],
    "W_k": [[-0.2, 0.6, 0.1, 0.7], [0.8, -0.1, 0.5, -0.3], [0.3, 0.4, -0.9, 0.2],
            [-0.5, 0.2, 0.6, 0.4]],
    "W_v": [[0.3, 0.2, -0.1, 0.9], [-0.4, 0.7, 0.6, 0.1], [0.8, -0.5, 0.2, 0.3],
            [0.1, 0.3, -0.7, 0.5]],
}
# The same with one sink logit per head, 1 and 2: large enough that each sink takes a visible
# share of every row.
FOUR_SINKS = {**FOUR, "sinks": [1.0, 2.0]}

QUERY_KEY = ("query", "key")


@dataclass(frozen=True)
class Case:
    id: str
    sample: str  # a bundled sample, or four / four-sinks: FOUR / FOUR_SINKS
    options: tuple[str, ...] = ()


CASES = [
    Case("hello", "hello-shiny-sun"),
    Case("three-inputs", "three-inputs"),
    Case("journey-causal", "your-journey-causal"),
    Case("multihead", "multihead-einsum"),
    Case("cross", "translation-cross"),
    Case("hello-causal", "hello-shiny-sun", ("--causal",)),
    Case("multihead-rope-causal", "multihead-einsum", ("--rope", "--causal")),
    Case("four-heads2-rope", "four", ("--heads", "2", "--rope")),
    Case("four-alibi", "four", ("--heads", "2", "--alibi")),
    Case("four-sinks", "four-sinks", ("--variant", "sinks", "--heads", "2", "--causal")),
    Case("three-inputs-dropout", "three-inputs", ("--dropout", "0.5", "--seed", "0")),
]
BY_ID = {case.id: case for case in CASES}


def run(*args) -> str:
    """attncli ARGS in process; its stdout. COLUMNS wide: explain's text never wraps."""
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "2000"})
    assert result.exit_code == 0, (args, result.exit_code, result.stderr, result.exception)
    return result.stdout


@dataclass
class Made:
    """One case's page and compute's JSON of the same command."""

    case: Case
    source: list[str]
    page: Path
    doc: dict
    steps: dict = field(default_factory=dict)  # query × key step → its data, −∞ for null

    @property
    def heads(self) -> int:
        return self.doc["config"]["heads"]

    def value(self, step, head, i, j) -> float:
        data = self.steps[step]
        return float(data[head, i, j] if data.ndim == 3 else data[i, j])

    def figure(self, step, head) -> str:
        """The CSS selector of a step's heatmap for one head (no data-head with one head)."""
        where = f'[data-head="{head}"]' if self.heads > 1 else ""
        return f'figure.heatmap[data-step="{step}"]{where}'


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("html")
    (folder / "four.json").write_text(json.dumps(FOUR), encoding="utf-8")
    (folder / "four-sinks.json").write_text(json.dumps(FOUR_SINKS), encoding="utf-8")
    return folder


_made: dict[str, Made] = {}


def make(folder: Path, case_id: str) -> Made:
    """A case's page and its JSON, written once per module."""
    case = BY_ID[case_id]
    if case.id not in _made:
        source = ([str(folder / f"{case.sample}.json")] if case.sample.startswith("four")
                  else ["--sample", case.sample])
        page = folder / f"{case.id}.html"
        run("compute", *source, *case.options, "-f", "html", "-o", page)
        doc = json.loads(run("compute", *source, *case.options, "--format", "json"))
        entry = Made(case, source, page, doc)
        for name, step in doc["steps"].items():
            if set(QUERY_KEY) <= set(step["axes"]):
                assert step["axes"][-2:] == list(QUERY_KEY), step["axes"]
                # JSON writes −∞ (a masked score) as null
                flat = [-math.inf if v is None else v for v in np.ravel(
                    np.array(step["data"], dtype=object))]
                entry.steps[name] = np.array(flat, dtype=float).reshape(step["shape"])
        _made[case.id] = entry
    return _made[case.id]


@pytest.fixture
def made(request, folder) -> Made:
    return make(folder, request.param)


cases = pytest.mark.parametrize("made", [case.id for case in CASES], indirect=True)


@pytest.fixture
def page(browser):
    """The browser with screen media and the system's colour scheme again after the test."""
    yield browser
    chromium.emulate(browser)


# ---------------------------------------------------------------------------------------------
# Reading the page.

def text(element) -> str:
    """An element's text content, its runs of white space (NBSP too) one space."""
    return " ".join(element.get_property("textContent").replace("\u00a0", " ").split())


def minus(s: str) -> str:
    return s.replace("\u2212", "-")


def shown(value: float) -> str:
    """A value to 4 decimals as the tooltip writes it; −∞ for a masked score."""
    return "−∞" if value == -math.inf else f"{value:.4f}"


def equations(root) -> list[str]:
    """The texts of an element's div.equation, notes in parentheses left out (explain writes
    those as notes, not equations)."""
    found = root.parent.execute_script(
        "return Array.from(arguments[0].querySelectorAll('div.equation'))"
        ".map(e => e.textContent)", root)
    lines = [" ".join(line.replace("\u00a0", " ").split()) for line in found]
    return [line for line in lines if not line.startswith("(")]


def explain(made: Made, query: int, key: int | None = None) -> list[tuple[str, list[str]]]:
    """explain's text output as (section title, equation lines) in order; the notes (lines in
    parentheses) left out."""
    args = ["explain", *made.source, *made.case.options, "--query", query]
    if key is not None:
        args += ["--key", key]
    lines = run(*args).splitlines()
    sections: list[tuple[str, list[str]]] = []  # "About these numbers", a note, left out
    for n, line in enumerate(lines):
        if n + 1 < len(lines) and lines[n + 1] and set(lines[n + 1]) == {"-"} \
                and len(lines[n + 1]) == len(line):
            sections.append((line, []))
        elif line.startswith("  ") and sections and not line.strip().startswith("("):
            sections[-1][1].append(" ".join(line.split()))
    return [(title, lines) for title, lines in sections if title != "About these numbers"]


def of_head(sections, made: Made, head: int):
    """The sections of one head (all of them with one head)."""
    if made.heads == 1:
        return sections
    return [(title, lines) for title, lines in sections if title.endswith(f", head {head})")]


def is_subsequence(wanted: list[str], found: list[str]) -> bool:
    rest = iter(found)
    return all(any(line == f for f in rest) for line in wanted)


def hover(browser, element) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    ActionChains(browser, duration=0).move_to_element(element).perform()


def find(browser, css):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, css)


def one(browser, css):
    found = find(browser, css)
    assert len(found) == 1, f"{css}: {len(found)} elements, expected 1"
    return found[0]


# ---------------------------------------------------------------------------------------------
# The checks themselves can fail.

CONTRACT_PAGE = """<!doctype html>
<html lang="en" data-attncli="compute"><head><meta charset="utf-8"><title>t</title>
<style>body{font-family:sans-serif}</style></head><body>
<header><h1>t</h1><pre id="command">attncli compute t.json</pre></header>
<figure class="heatmap" data-step="weights"><table class="grid"><tr>
<td class="cell" data-i="0" data-j="0" data-value="0.25" tabindex="0">0.25</td>
<td class="cell" data-i="0" data-j="1" data-value="0.75" tabindex="-1">0.75</td></tr></table>
<figcaption>weights</figcaption></figure>
<div id="tooltip" role="status"></div>
%s
<script>
for (const td of document.querySelectorAll('td.cell')) td.addEventListener('mouseover', () => {
  document.getElementById('tooltip').textContent =
    `weights[a, ${td.dataset.j}] = ${Number(td.dataset.value).toFixed(4)}`;
});
%s
</script></body></html>
"""


def test_the_checks_catch_a_console_error_and_a_request(browser, tmp_path):
    clean = tmp_path / "clean.html"
    clean.write_text(CONTRACT_PAGE % ("", ""), encoding="utf-8")
    chromium.open_page(browser, clean)
    hover(browser, one(browser, 'td.cell[data-j="1"]'))
    assert text(one(browser, "#tooltip")) == "weights[a, 1] = 0.7500"
    assert chromium.console_errors(browser) == []
    assert chromium.network_requests(browser) == []

    dirty = tmp_path / "dirty.html"
    dirty.write_text(CONTRACT_PAGE % ('<img src="http://example.invalid/x.png" alt="">',
                                      "console.error('attncli test: broken');"),
                     encoding="utf-8")
    chromium.open_page(browser, dirty)
    errors = chromium.console_errors(browser)
    assert any("attncli test: broken" in e for e in errors), errors
    assert "http://example.invalid/x.png" in chromium.network_requests(browser)

    # a request made only on hover is caught too, after the interaction
    late = tmp_path / "late.html"
    late.write_text(CONTRACT_PAGE % ("", "document.querySelector('td.cell').addEventListener("
                                         "'mouseover', () => fetch('http://example.invalid/"
                                         "late').catch(() => {}));"), encoding="utf-8")
    chromium.open_page(browser, late)
    assert chromium.network_requests(browser) == []
    hover(browser, one(browser, 'td.cell[data-j="0"]'))
    browser.execute_script("return new Promise(r => setTimeout(r, 200))")
    assert "http://example.invalid/late" in chromium.network_requests(browser)


def test_luminance():
    # WCAG 2: white 1, black 0; sRGB 50 % grey (128) is 0.2158
    assert chromium.luminance([255, 255, 255]) == pytest.approx(1.0)
    assert chromium.luminance([0, 0, 0]) == 0.0
    assert chromium.luminance([128, 128, 128]) == pytest.approx(0.2158, abs=1e-4)


# ---------------------------------------------------------------------------------------------
# compute's pages.

# The page's structure in one round trip: what the DOM contract names, as plain data.
SNAPSHOT = """
const t = e => e ? e.textContent.replace(/\\u00a0/g, ' ').split(/\\s+/).filter(Boolean).join(' ')
                 : null;
const all = (root, css) => Array.from(root.querySelectorAll(css));
const html = document.documentElement;
return {
  lang: html.lang, kind: html.dataset.attncli ?? null,
  h1: all(document, 'header h1').map(t), command: all(document, 'header pre#command').map(t),
  conventions: all(document, 'section#conventions dl dd').map(t),
  links: all(document, 'link').length,
  targets: all(document, '[src], [href]').flatMap(e =>
    ['src', 'href'].filter(a => e.hasAttribute(a)).map(a => e.getAttribute(a))),
  steps: all(document, 'section.step').map(s => ({
    id: s.id, step: s.dataset.step ?? null, h2: all(s, 'h2').map(t),
    formula: all(s, 'code.formula').map(t),
    tables: all(s, 'table.numbers, table.grid').map(
      x => [x.dataset.step ?? null, x.dataset.where ?? null]),
    labels: all(s, 'th').map(t), elided: all(s, 'p.elided').map(t)})),
  figures: all(document, 'figure.heatmap').map(f => ({
    step: f.dataset.step ?? null, head: f.dataset.head ?? null, batch: f.dataset.batch ?? null,
    caption: all(f, 'figcaption').map(t), grids: all(f, 'table.grid').length,
    cells: all(f, 'table.grid td.cell').map(c => [+c.dataset.i, +c.dataset.j, c.dataset.value,
      c.classList.contains('masked'), c.getAttribute('tabindex')])})),
};
"""

_snapshots: dict[Path, dict] = {}


def snapshot(browser, made: Made) -> dict:
    """The page's structure (SNAPSHOT), read once per page."""
    if made.page not in _snapshots:
        chromium.open_page(browser, made.page)
        _snapshots[made.page] = browser.execute_script(SNAPSHOT)
    return _snapshots[made.page]


@cases
def test_page_is_self_contained_and_quiet(page, made):
    url = chromium.open_page(page, made.page)
    assert page.current_url == url
    seen = page.execute_script(SNAPSHOT)
    assert (seen["lang"], seen["kind"]) == ("en", "compute")
    assert seen["links"] == 0
    assert all(target.startswith("#") for target in seen["targets"]), seen["targets"]
    raw = made.page.read_text(encoding="utf-8")
    assert "@import" not in raw and not re.search(r"url\(\s*['\"]?(https?:|//)", raw)
    if len(made.doc["tokens"]) <= 4:
        assert made.page.stat().st_size < 300_000
    # every cell hovered, focused and clicked (events dispatched in the page, one round trip),
    # then a real hover and click: still no error, no request
    page.execute_script("""
        for (const td of document.querySelectorAll('figure.heatmap td.cell')) {
          for (const type of ['mouseover', 'mousemove', 'mouseout'])
            td.dispatchEvent(new MouseEvent(type, {bubbles: true}));
          td.focus();
          td.click();
          td.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));
        }""")
    cell = find(page, "figure.heatmap td.cell")[-1]
    hover(page, cell)
    cell.click()
    assert chromium.console_errors(page) == []
    assert chromium.network_requests(page) == []


@cases
def test_header_conventions_and_steps(browser, made):
    seen = snapshot(browser, made)
    assert len(seen["h1"]) == 1 and seen["h1"][0]
    assert len(seen["command"]) == 1 and seen["command"][0].startswith("attncli compute")
    for convention in made.doc["conventions"].values():
        assert " ".join(convention.split()) in seen["conventions"], \
            (convention, seen["conventions"])
    sections = {s["id"]: s for s in seen["steps"]}
    assert [s["step"] for s in seen["steps"]] == list(made.doc["steps"])
    for name, step in made.doc["steps"].items():
        section = sections[f"step-{name}"]
        assert section["h2"] == [name]
        assert section["formula"] == [" ".join(step["formula"].split())]
        assert section["elided"] == []
        # one table per head (and batch item), token labels in <th>: table.numbers, or for
        # a query × key step its heatmaps' table.grid, whose cells hold the numbers
        panels = math.prod(size for axis, size in zip(step["axes"], step["shape"], strict=True)
                           if axis in ("head", "batch"))
        assert len(section["tables"]) == panels, \
            f"{name}: {len(section['tables'])} tables, expected {panels}"
        assert all(table[0] == name for table in section["tables"]), section["tables"]
        if "query" in step["axes"]:
            assert set(made.doc["tokens"]) <= set(section["labels"]), (name, section["labels"])
        if "key" in step["axes"]:
            assert set(made.doc["key_tokens"]) <= set(section["labels"]), \
                (name, section["labels"])


@cases
def test_one_heatmap_per_head_and_query_key_step(browser, made):
    seen = snapshot(browser, made)
    # heads × (batch items) × query × key steps, counted from compute's JSON of the command
    expected = sum(math.prod(size for axis, size in zip(s["axes"], s["shape"], strict=True)
                             if axis not in QUERY_KEY)
                   for s in made.doc["steps"].values() if set(QUERY_KEY) <= set(s["axes"]))
    assert expected == made.heads * len(made.steps)
    assert len(seen["figures"]) == expected
    figures = {(f["step"], f["head"]): f for f in seen["figures"]}
    for name, data in made.steps.items():
        for head in range(made.heads):
            figure = figures[name, str(head) if made.heads > 1 else None]
            assert figure["batch"] is None and figure["grids"] == 1
            assert len(figure["caption"]) == 1 and name in figure["caption"][0]
            if made.heads > 1:
                assert f"head {head}" in figure["caption"][0], figure["caption"]
            cells = figure["cells"]
            assert sorted((i, j) for i, j, *_ in cells) == \
                [(i, j) for i in range(data.shape[-2]) for j in range(data.shape[-1])]
            tabindex = [c[4] for c in cells]
            assert tabindex.count("0") == 1 and set(tabindex) <= {"0", "-1"}, \
                f"{name} head {head}: roving tabindex, one 0 per grid: {tabindex}"
            # the mask, from the JSON's masked scores (−∞ where a key may not be attended)
            mask = (made.steps["masked_scores"][head if made.heads > 1 else ...] == -math.inf
                    if "masked_scores" in made.steps else None)
            for i, j, value, masked, _ in cells:
                exact = made.value(name, head, i, j)
                assert float(value) == exact, (name, head, i, j, value, exact)
                if exact == -math.inf:
                    assert value == "-inf" and masked, (name, head, i, j, value, masked)
                if masked:
                    assert mask is not None and mask[..., i, j], (name, head, i, j)


@cases
def test_hover_shows_the_value(page, made):
    chromium.open_page(page, made.page)
    n_q, n_k = len(made.doc["tokens"]), len(made.doc["key_tokens"])
    head = made.heads - 1
    for name in made.steps:
        # the last query row (every key unmasked under causal) and, for the masked steps,
        # the first row's last key (masked under causal)
        for i, j in ((n_q - 1, n_k - 2), (0, n_k - 1)):
            cell = one(page, f'{made.figure(name, head)} td.cell[data-i="{i}"][data-j="{j}"]')
            hover(page, cell)
            value = made.value(name, head, i, j)
            want = f"{name}[{made.doc['tokens'][i]}, {made.doc['key_tokens'][j]}] = {shown(value)}"
            if made.heads > 1:
                want += f", head {head}"
            got = text(one(page, "div#tooltip[role=status]"))
            assert minus(got) == minus(want), (got, want)


@cases
def test_click_shows_the_arithmetic_of_explain(page, made):
    chromium.open_page(page, made.page)
    n_q = len(made.doc["tokens"])
    i, j, head = n_q - 1, 0, made.heads - 1
    query, key = made.doc["tokens"][i], made.doc["key_tokens"][j]
    cell = one(page, f'{made.figure("weights", head)} td.cell[data-i="{i}"][data-j="{j}"]')
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    cell.click()
    aside = one(page, "aside#arithmetic")
    assert aside.is_displayed()
    assert (aside.get_attribute("data-step"), aside.get_attribute("data-i"),
            aside.get_attribute("data-j")) == ("weights", str(i), str(j))
    if made.heads > 1:
        assert aside.get_attribute("data-head") == str(head)
    shown_lines = equations(aside)
    assert aside.find_elements("css selector", "h3")
    # explain --query Q --key K: the projections, the score (its sum of products), the scaling
    for_key = [line for title, lines in of_head(explain(made, i, j), made, head)
               for line in lines]
    score = next(line for line in for_key if line.startswith(f"score({query}, {key}) = "))
    assert score in shown_lines, (score, shown_lines)
    assert is_subsequence(for_key, shown_lines), (for_key, shown_lines)
    # explain --query Q: the row's exponentials and their sum, for this head
    row = dict(of_head(explain(made, i), made, head))
    exponentials = next(lines for title, lines in row.items() if title.startswith("Exponentials"))
    total = next(lines for title, lines in row.items() if title.startswith("Sum"))
    assert any(line.startswith(f"exp({key}) = ") for line in exponentials)
    assert is_subsequence(exponentials, shown_lines), (exponentials, shown_lines)
    assert is_subsequence(total, shown_lines), (total, shown_lines)


@cases
def test_keyboard(page, made):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    chromium.open_page(page, made.page)
    n_q, n_k = len(made.doc["tokens"]), len(made.doc["key_tokens"])
    figure = one(page, made.figure("weights", 0))
    start = figure.find_element("css selector", 'td.cell[tabindex="0"]')
    page.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus()",
                        start)
    i, j = int(start.get_attribute("data-i")), int(start.get_attribute("data-j"))

    def active():
        cell = page.switch_to.active_element
        return int(cell.get_attribute("data-i")), int(cell.get_attribute("data-j")), cell

    def press(key):
        ActionChains(page, duration=0).send_keys(key).perform()

    press(Keys.ARROW_LEFT if j == n_k - 1 else Keys.ARROW_RIGHT)
    j = j - 1 if j == n_k - 1 else j + 1
    assert active()[:2] == (i, j)
    press(Keys.ARROW_UP if i == n_q - 1 else Keys.ARROW_DOWN)
    i = i - 1 if i == n_q - 1 else i + 1
    now = active()
    assert now[:2] == (i, j)
    assert now[2].get_attribute("tabindex") == "0"
    assert [c.get_attribute("tabindex") for c in
            figure.find_elements("css selector", "td.cell")].count("0") == 1
    # focus fills the tooltip
    value = made.value("weights", 0, i, j)
    assert minus(f"= {shown(value)}") in minus(text(one(page, "#tooltip")))
    press(Keys.ENTER)
    aside = one(page, "aside#arithmetic")
    assert aside.is_displayed()
    assert (aside.get_attribute("data-i"), aside.get_attribute("data-j")) == (str(i), str(j))
    assert equations(aside)
    press(Keys.ESCAPE)
    assert not aside.is_displayed()


def test_sink_mass_in_the_caption(page, folder):
    made = make(folder, "four-sinks")
    chromium.open_page(page, made.page)
    sinks = np.array(made.doc["steps"]["sink_weights"]["data"])  # (head, query)
    for head in range(made.heads):
        caption = text(one(page, f"{made.figure('weights', head)} figcaption"))
        numbers = [float(n) for n in re.findall(r"\d+\.\d+", minus(caption))]
        # each row's sink mass, 1 − the row's weights, to the caption's decimals
        mass = 1 - made.steps["weights"][head].sum(axis=-1)
        np.testing.assert_allclose(sinks[head], mass, atol=1e-12)
        for row, m in enumerate(mass):
            assert any(abs(n - m) <= 5e-4 for n in numbers), (head, row, m, caption)


# ---------------------------------------------------------------------------------------------
# Light, dark, print; the screenshots.

def test_light_and_dark(page, tmp_path, folder):
    made = make(folder, "multihead")
    chromium.emulate(page, dark=False)
    chromium.open_page(page, made.page)
    background, foreground = chromium.page_colours(page)
    chromium.screenshot(page, tmp_path / "html-light.png")
    assert background > 0.7 and foreground < 0.3, (background, foreground)
    chromium.emulate(page, dark=True)
    chromium.open_page(page, made.page)
    background, foreground = chromium.page_colours(page)
    chromium.screenshot(page, tmp_path / "html-dark.png")
    assert background < 0.3 and foreground > 0.5, (background, foreground)
    assert chromium.console_errors(page) == []


def test_clicked_cell_screenshot(page, tmp_path, folder):
    made = make(folder, "four-sinks")
    chromium.open_page(page, made.page)
    cell = one(page, f'{made.figure("weights", 1)} td.cell[data-i="2"][data-j="1"]')
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    cell.click()
    hover(page, cell)
    chromium.screenshot(page, tmp_path / "html-clicked.png", whole=False)
    chromium.screenshot(page, tmp_path / "html-clicked-page.png")
    assert one(page, "aside#arithmetic").is_displayed()
    # the arithmetic does not hide the cell it explains: the cell is what lies at its centre
    on_top = page.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
        "return arguments[0].contains(e) ? '' : ((e.closest('[id]') || e).id || e.tagName)", cell)
    assert on_top == "", f"the clicked cell lies under #{on_top}"


_OVERLAPS = """
const tables = Array.from(document.querySelectorAll('table'));
const hidden = tables.filter(t => {
  const s = getComputedStyle(t), r = t.getBoundingClientRect();
  return s.display === 'none' || s.visibility !== 'visible' || r.width === 0 || r.height === 0
         || t.closest('[hidden]') !== null;
}).map(t => t.dataset.step + ' ' + (t.dataset.where || t.className));
const overlaps = [];
for (const id of ['tooltip', 'arithmetic']) {
  const panel = document.getElementById(id);
  if (!panel) continue;
  const s = getComputedStyle(panel), p = panel.getBoundingClientRect();
  if (s.display === 'none' || s.visibility === 'hidden' || p.width === 0 || p.height === 0)
    continue;
  if (s.position === 'fixed' || s.position === 'sticky') overlaps.push(id + ' is ' + s.position);
  for (const t of tables) {
    if (t.closest('#' + id)) continue;
    const r = t.getBoundingClientRect();
    if (p.left < r.right && r.left < p.right && p.top < r.bottom && r.top < p.bottom)
      overlaps.push(id + ' covers ' + (t.dataset.step || t.className));
  }
}
return [tables.length, hidden, overlaps];
"""


def test_print_shows_every_table(page, tmp_path, folder):
    made = make(folder, "multihead")
    chromium.open_page(page, made.page)
    cell = one(page, f'{made.figure("weights", 0)} td.cell[data-i="1"][data-j="1"]')
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    cell.click()
    hover(page, cell)
    chromium.emulate(page, media="print")
    count, hidden, overlaps = page.execute_script(_OVERLAPS)
    chromium.screenshot(page, tmp_path / "html-print.png")
    assert count >= len(made.doc["steps"]) + made.heads * len(made.steps)
    assert hidden == [], hidden
    assert overlaps == [], overlaps


# ---------------------------------------------------------------------------------------------
# check's and explain's pages.

ANSWERS = Path(sample_path("three-inputs")).parent / "answers"
MARKS = {0: ("right", "✓"), 1: ("rounded", "≈"), 2: ("wrong", "✗"), 3: ("carried", "→")}


@pytest.mark.parametrize("answers", ["three-inputs.one-decimal.json",
                                     "three-inputs.published.json"])
def test_check_page(page, tmp_path, answers):
    file = str(ANSWERS / answers)
    html = tmp_path / "check.html"
    args = ["check", "--sample", "three-inputs", file]
    result = runner.invoke(app, [*args, "-f", "html", "-o", str(html)],
                           env={"COLUMNS": "2000"})
    report = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)["reports"][0]
    assert result.exit_code == (0 if report["ok"] else 1), (result.exit_code, result.stderr)
    chromium.open_page(page, html)
    chromium.screenshot(page, tmp_path / f"html-check-{answers.split('.')[1]}.png")
    assert one(page, "html").get_attribute("data-attncli") == "check"
    section = one(page, "section.report")
    assert section.get_attribute("data-file") == report["file"]
    for name, step in report["steps"].items():
        table = section.find_element("css selector", f'table.marked[data-step="{name}"]')
        entries = table.find_elements("css selector", "td.entry")
        assert len(entries) == len(step["status"]), (name, len(entries))
        for entry, status in zip(entries, step["status"], strict=True):
            kind, mark = MARKS[status]
            classes = entry.get_attribute("class").split()
            assert kind in classes and not {k for k, _ in MARKS.values()} - {kind} & set(classes), \
                (name, classes, kind)
            assert mark in text(entry), (name, text(entry), mark)
    diagnosis = find(page, "p.diagnosis")
    if report["diagnosis"]:
        says = " ".join(report["diagnosis"]["says"].split()).lower()
        assert any(says in text(d).lower() for d in diagnosis), \
            ([text(d) for d in diagnosis], report["diagnosis"]["says"])
        # the first wrong entry's arithmetic: weights[Input 1, Input 1] here, as explain
        # writes weight(Input 1)
        first = report["first_wrong"]
        index = report["steps"][first]["status"].index(2)
        assert first == "weights"
        key = json.loads(run("compute", "--sample", "three-inputs", "--json"))["tokens"][index]
        lines = [line for _, lines in explain_sample("three-inputs", report["query"])
                 for line in lines]
        weight = next(line for line in lines if line.startswith(f"weight({key}) = "))
        shown_lines = equations(one(page, "section.first-wrong"))
        assert weight in shown_lines, (weight, shown_lines)
    else:
        assert find(page, "td.entry.wrong") == []
        assert all(equations(s) == [] for s in find(page, "section.first-wrong"))
    assert chromium.console_errors(page) == []
    assert chromium.network_requests(page) == []


def test_check_page_of_two_files(page, tmp_path):
    html = tmp_path / "check2.html"
    files = [str(ANSWERS / "three-inputs.one-decimal.json"),
             str(ANSWERS / "three-inputs.published.json")]
    result = runner.invoke(app, ["check", "--sample", "three-inputs", *files, "-f", "html",
                                 "-o", str(html)])
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    chromium.open_page(page, html)
    assert [s.get_attribute("data-file") for s in find(page, "section.report")] == files
    assert chromium.console_errors(page) == []


def explain_sample(sample: str, query, *options) -> list[tuple[str, list[str]]]:
    fake = Made(Case("x", sample, tuple(options)), ["--sample", sample], Path(), {})
    return explain(fake, query)


@pytest.mark.parametrize(("sample", "query", "options"), [
    ("hello-shiny-sun", "shiny", ()),
    ("your-journey-causal", "1", ()),
    ("multihead-einsum", "name", ()),
])
def test_explain_page(page, tmp_path, sample, query, options):
    html = tmp_path / "explain.html"
    run("explain", "--sample", sample, *options, "--query", query, "-f", "html", "-o", html)
    chromium.open_page(page, html)
    chromium.screenshot(page, tmp_path / f"html-explain-{sample}.png")
    assert one(page, "html").get_attribute("data-attncli") == "explain"
    section = one(page, "section.explain")
    sections = explain_sample(sample, query, *options)
    titles = [text(h) for h in section.find_elements("css selector", "h3")]
    assert titles == [title for title, _ in sections], (titles, sections)
    assert equations(section) == [line for _, lines in sections for line in lines]
    assert chromium.console_errors(page) == []
    assert chromium.network_requests(page) == []


def test_a_token_of_markup_neither_shows_as_markup_nor_stops_the_script(page, tmp_path):
    """Tokens "<!--<script>" and "</script>": their labels are text, and the page's script
    still runs (a click shows the cell's arithmetic); an unescaped "<!--<script>" in the data
    block once swallowed the script without a console error."""
    problem = {"tokens": ["<!--<script>", "</script>"], "x": [[1, 0], [0, 2]]}
    (tmp_path / "p.json").write_text(json.dumps(problem), encoding="utf-8")
    html = tmp_path / "markup.html"
    run("compute", tmp_path / "p.json", "-f", "html", "-o", html)
    chromium.open_page(page, html)
    assert chromium.console_errors(page) == []
    assert page.execute_script("return document.scripts.length") == 2
    labels = [th.text for th in page.find_elements("css selector", "th")]
    assert "<!--<script>" in labels and "</script>" in labels
    cell = one(page, 'figure.heatmap[data-step="weights"] td.cell[data-i="1"][data-j="0"]')
    cell.click()
    aside = one(page, "aside#arithmetic")
    assert aside.is_displayed()
    # x = [[1, 0], [0, 2]], no projection: score(</script>, <!--<script>) = 0·1 + 2·0 = 0
    assert "score(</script>, <!--<script>) = 0 × 1 + 2 × 0 = 0" in equations(aside)
