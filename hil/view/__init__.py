"""Watching a run: a live view in the browser (Bokeh server) and self-contained HTML reports.

- :mod:`.reader`: consistent snapshots of a run file while it is written, never blocking the writer;
- :mod:`.figures`: the figures of a run (conductance map, codes, pulses, ISPP convergence,
  progress, metadata, service panels), updated from a snapshot;
- :mod:`.server`: the live view (127.0.0.1 by default; a token for anything else);
- :mod:`.report`: the same figures as one HTML file;
- :mod:`.launch`: ``--view`` for long commands (the view in its own process beside the run).

What a page shows comes from the file alone (optional datasets are optional):

- protocol runs (``rram-hil-run``, :mod:`hil.runstore`): the conductance map from
  ``cells/g_final`` | ``g`` | ``g_read`` | ``g_initial`` (or ``1/r_final``), the codes from
  ``cells/codes`` | ``fault_codes`` | ``status`` (names from the dataset's ``code_names``
  attribute, JSON, or given by the caller), pulses per cell and the ISPP convergence curve
  from ``cells/pulses`` and ``cells/status`` (1 = in band), progress from ``cells/done``
  against the finite ``/targets``, and an end estimate on the bench clock when the root
  attribute ``bench_time_s`` (seconds the bench has spent) is kept up to date;
- service panels from tables ``tables/fidelity`` (a time field, e.g. ``hours`` or
  ``chip_time_h``, and numeric columns, one line each), ``tables/alarms``,
  ``tables/repairs`` (``devices_reprogrammed``) and ``tables/events`` (an ``event`` field
<<<<<<< HEAD
  naming the kind; when it is there it is the one source of the event marks), as the
  service workflow (``protocols/service.py``) writes them.
=======
  naming the kind); a service workflow run (protocol ``service``: one row per hour, its
  ``fidelity`` timeline and JSON ``events`` log) is read into the same panels, without cell maps.
>>>>>>> main
"""
from .reader import NotARunFile, RunFollower, Snapshot, read_snapshot
from .report import report_html, write_report

__all__ = ["NotARunFile", "RunFollower", "Snapshot", "read_snapshot", "report_html", "write_report"]
