"""Shared fixtures."""
import pytest


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session's browser tests."""
    from browser import chrome  # tests/browser.py

    driver = chrome()
    yield driver
    driver.quit()
