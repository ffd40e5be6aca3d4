"""Headless Chromium through Selenium, and what a Bokeh page shows (for the view's tests and benchmark)."""
from __future__ import annotations

import shutil
import time

import numpy as np
from selenium import webdriver


def chrome(width: int = 1000, height: int = 1500) -> webdriver.Chrome:
    """Headless Chromium from Debian's packages (installed by setup.sh); fails loudly when missing."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        raise RuntimeError("chromium and chromedriver are needed: run ./setup.sh")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.binary_location = binary
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(driver))


_STATE_JS = """
const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!doc) return null;
const p = doc.get_model_by_name('progress');
if (!p) return null;
const m = /data-done='(\\d+)' data-total='(\\d+)' data-status='([^']*)'/.exec(p.text);
const out = {done: m ? +m[1] : -1, total: m ? +m[2] : -1, status: m ? m[3] : '', now: Date.now()};
for (const name of arguments[0] || []) {
  const src = doc.get_model_by_name(name + '_source');
  const img = src && src.data.image && src.data.image[0];
  out[name] = img ? {shape: Array.from(img.shape || []), data: Array.from(img, v => Number.isNaN(v) ? null : v)} : null;
}
return out;
"""


def page_state(driver, images: tuple[str, ...] = ()) -> dict | None:
    """Progress shown by the page (done, total, status, browser clock in ms) and the named image maps."""
    state = driver.execute_script(_STATE_JS, list(images))
    if state is None:
        return None
    for name in images:
        img = state.get(name)
        if img is not None:
            state[name] = np.array([np.nan if v is None else v for v in img["data"]], float).reshape(img["shape"])
    return state


def wait_for(fn, timeout_s: float = 120.0, every_s: float = 0.1):
    """Poll ``fn`` until it returns something truthy; that value, or AssertionError at the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {getattr(fn, '__name__', fn)}")


_VIEWS_JS = """
const out = {};
for (const v of Bokeh.index.all_views()) {
  const n = v.model.name;
  if (!n || !n.startsWith('fig_')) continue;
  const r = v.el.getBoundingClientRect();
  out[n] = {visible: v.model.visible, width: r.width, height: r.height,
            renderers: (v.model.renderers || []).length};
}
return out;
"""


def rendered_figures(driver) -> dict:
    """Every figure view of the page: visible flag, size on screen (px) and number of renderers."""
    return driver.execute_script(_VIEWS_JS)


_LOG_JS = """
const doc = Bokeh.documents[0];
const p = doc.get_model_by_name('progress');
window.__hil_log = [];
const note = () => {
  const m = /data-done='(\\d+)' data-total='(\\d+)' data-status='([^']*)'/.exec(p.text);
  if (m) window.__hil_log.push([Date.now(), +m[1], m[3]]);
};
p.connect(p.properties.text.change, note);
note();
return true;
"""


def record_progress(driver) -> None:
    """Make the page itself note (browser ms, cells done, status) at every change of its progress line.

    Cheaper and finer than polling through the driver: nothing crosses to Python until
    :func:`recorded_progress`.
    """
    driver.execute_script(_LOG_JS)


def recorded_progress(driver) -> list[tuple[float, int, str]]:
    """What :func:`record_progress` noted: (seconds since the epoch, cells done, status)."""
    return [(t / 1e3, int(d), s) for t, d, s in driver.execute_script("return window.__hil_log || []")]
