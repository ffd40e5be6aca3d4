"""Shared fixtures."""
import os

import pytest

import hil.instruments  # noqa: F401 - installs the simulated bench's model look-up (the plug-in registry)


@pytest.fixture(autouse=True, scope="session")
def _bench_state_dir(tmp_path_factory):
    """Bench locks (hil.benchlock) of this test session live in a private directory, not the user's."""
    previous = os.environ.get("RRAM_HIL_STATE_DIR")
    os.environ["RRAM_HIL_STATE_DIR"] = str(tmp_path_factory.mktemp("hil-state"))
    yield
    if previous is None:
        os.environ.pop("RRAM_HIL_STATE_DIR", None)
    else:
        os.environ["RRAM_HIL_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session's browser tests."""
    from browser import chrome  # tests/browser.py

    driver = chrome()
    yield driver
    driver.quit()
