"""The ``browser`` fixture: one headless chromium (tests/render/browser.py) for the whole
session. It skips a test when selenium, chromium or chromium-driver is absent, except under CI
(CI=true), where that is a failure: .ci/run installs them."""

from __future__ import annotations

import pytest

from tests.render import browser as chromium


@pytest.fixture(scope="session")
def browser():
    reason = chromium.missing()
    if reason:
        if chromium.in_ci():
            pytest.fail(f"{reason}, but CI must run the browser tests (.ci/run installs them)")
        pytest.skip(reason)
    driver = chromium.start()
    try:
        yield driver
    finally:
        driver.quit()
