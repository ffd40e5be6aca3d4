"""Watching a run: a live view in the browser (Bokeh server) and self-contained HTML reports.

- :mod:`.reader`: consistent snapshots of a run file while it is written, never blocking the writer;
- :mod:`.figures`: the figures of a run (conductance map, codes, pulses, ISPP convergence,
  progress, metadata, service panels), updated from a snapshot;
- :mod:`.server`: the live view (127.0.0.1 by default; a token for anything else);
- :mod:`.report`: the same figures as one HTML file;
- :mod:`.launch`: ``--view`` for long commands (the view in its own process beside the run).
"""
from .reader import NotARunFile, RunFollower, Snapshot, read_snapshot
from .report import report_html, write_report

__all__ = ["NotARunFile", "RunFollower", "Snapshot", "read_snapshot", "report_html", "write_report"]
