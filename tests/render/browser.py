"""A headless browser for the HTML pages' tests: Debian's chromium driven by Selenium through
chromium-driver, both found on PATH (or at /usr/bin). Nothing downloads a browser: the binary
and the driver are given to Selenium explicitly, so Selenium Manager never runs.

``start()`` starts the browser (or says why it cannot); the ``browser`` fixture of
tests/render/conftest.py holds one for the whole session, skipping where selenium or the
browser is absent, failing instead under CI (CI=true), which must run these tests.

The helpers read what the page did: ``console_errors`` (the console's errors and uncaught
exceptions), ``network_requests`` (every request but the page itself, from the page's own
resource timing and from chromium's performance log), ``screenshot`` (the whole page as PNG).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

WIDTH, HEIGHT = 1280, 900

# URL schemes that are no request to anyone: inline data, the page's own objects, blank pages.
LOCAL_SCHEMES = ("data:", "blob:", "about:")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find(name: str) -> str | None:
    """The path of an executable: on PATH, else in /usr/bin (Debian's packages put them there)."""
    found = shutil.which(name)
    if found:
        return found
    path = Path("/usr/bin") / name
    return str(path) if path.exists() else None


def missing() -> str | None:
    """Why the browser cannot start here (None when it can): selenium, chromium or the driver."""
    if importlib.util.find_spec("selenium") is None:
        return 'selenium is not installed (pip install -e ".[test]")'
    if find("chromium") is None:
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    if find("chromedriver") is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def start():
    """A headless chromium under Selenium, with the console's messages (goog:loggingPrefs
    browser ALL) and the network's events (performance ALL) logged, window WIDTH × HEIGHT."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars",
                     "--force-color-profile=srgb", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-default-apps", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=find("chromedriver")),
                              options=options)
    driver.set_page_load_timeout(20)
    driver._attncli_performance = []
    return driver


def emulate(driver, media: str = "", dark: bool | None = None) -> None:
    """Emulate a CSS media type ("print", "screen"; "" for none) and prefers-color-scheme
    (dark True/False; None leaves the system's, light in headless chromium)."""
    features = [] if dark is None else [{"name": "prefers-color-scheme",
                                         "value": "dark" if dark else "light"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": media, "features": features})


def _drain(driver) -> None:
    """Read the performance log (reading empties it) into the driver's list of its entries."""
    try:
        driver._attncli_performance.extend(driver.get_log("performance"))
    except Exception:  # a driver without the performance log: resource timing alone
        pass


def open_page(driver, path) -> str:
    """Load a file as file:// and return its URL; the logs start empty for this page."""
    url = Path(path).resolve().as_uri()
    driver.get("about:blank")
    driver.get_log("browser")
    driver._attncli_performance = []
    _drain(driver)
    driver._attncli_performance = []
    driver.get(url)
    return url


def console_errors(driver) -> list[str]:
    """The console's errors since the page was opened: console.error, uncaught exceptions,
    failed loads (level SEVERE). Reading them empties the log."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE"]


def _same(url: str, page: str) -> bool:
    return url.split("#")[0] == page.split("#")[0]


def network_requests(driver) -> list[str]:
    """Every URL the page asked for other than itself (and inline data: / blob: / about:),
    from the page's resource timing (performance.getEntriesByType('resource')) and from the
    performance log's Network.requestWillBeSent events. Call it after the interactions too:
    a request made on hover counts."""
    page = driver.current_url
    urls = list(driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"))
    _drain(driver)
    for entry in driver._attncli_performance:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    seen = []
    for url in urls:
        if not _same(url, page) and not url.startswith(LOCAL_SCHEMES) and url not in seen:
            seen.append(url)
    return seen


def screenshot(driver, path, whole: bool = True) -> Path:
    """The whole page (whole=False: the window only) as a PNG at ``path``; with
    ATTNCLI_SCREENSHOTS set to a folder, a copy there too, to look at after the run."""
    import base64

    path = Path(path)
    if whole:
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": max(size["width"], 1),
                "height": min(max(size["height"], 1), 8000), "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": clip})
        path.write_bytes(base64.b64decode(shot["data"]))
    else:
        driver.save_screenshot(str(path))
    folder = os.environ.get("ATTNCLI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / path.name)
    return path


# A CSS colour in any syntax (rgb, oklch, color-mix …) as the page's canvas paints it: [r, g, b, a].
_RGBA = """
const canvas = document.createElement('canvas');
canvas.width = canvas.height = 1;
const context = canvas.getContext('2d', {colorSpace: 'srgb'});
context.fillStyle = arguments[0];
context.fillRect(0, 0, 1, 1);
return Array.from(context.getImageData(0, 0, 1, 1).data);
"""


def rgba(driver, css_color: str) -> list[int]:
    return list(driver.execute_script(_RGBA, css_color))


def luminance(rgb) -> float:
    """The relative luminance (WCAG 2, 0 black … 1 white) of an sRGB colour (0 … 255 each)."""
    def linear(channel) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def page_colours(driver) -> tuple[float, float]:
    """The luminance of the page's background and of its body text. The background is the
    body's, else the root's, else the canvas (chromium paints it near-black, rgb(18, 18, 18),
    when the root's color-scheme is dark, else white)."""
    style = driver.execute_script(
        "const b = getComputedStyle(document.body), r = getComputedStyle(document.documentElement);"
        "return [b.backgroundColor, r.backgroundColor, r.colorScheme, b.color];")
    body, root, scheme, text = style
    background = next((c for c in (rgba(driver, body), rgba(driver, root)) if c[3] > 0), None)
    if background is None:
        dark = "dark" in scheme and driver.execute_script(
            "return matchMedia('(prefers-color-scheme: dark)').matches || "
            "!(getComputedStyle(document.documentElement).colorScheme.includes('light'))")
        background = [18, 18, 18, 255] if dark else [255, 255, 255, 255]
    return luminance(background), luminance(rgba(driver, text))
