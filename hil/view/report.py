"""A run as one self-contained HTML file (Bokeh's JavaScript inlined): for a lab notebook or an email."""
from __future__ import annotations

import os
from typing import Mapping

from bokeh.embed import file_html
from bokeh.resources import INLINE

from .figures import Derive, RunPage
from .reader import read_snapshot


def report_html(path: str | os.PathLike, code_names: Mapping[str, Mapping[int, str]] | None = None,
                derive: Derive | None = None) -> str:
    """The figures of the live view for the run file at ``path``, as it is now, as an HTML page."""
    snap = read_snapshot(path)
    title = f"rram-hil run report: {os.path.basename(os.fspath(path))}"
    page = RunPage(code_names, derive, title=title)
    page.update(snap)
    return file_html(page.layout, INLINE, title)


def write_report(path: str | os.PathLike, out: str | os.PathLike,
                 code_names: Mapping[str, Mapping[int, str]] | None = None, derive: Derive | None = None) -> str:
    """Write :func:`report_html` to ``out`` (atomically: a reader never sees half a file); returns ``out``."""
    text = report_html(path, code_names, derive)
    out = os.fspath(out)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, out)
    return out
