"""Read a run file while its writer is still writing it, without ever getting in the writer's way.

Why not SWMR: :mod:`hil.runstore` deliberately writes a plain HDF5 file flushed after
each row (it survives ``kill -9`` and reopens for resume without ``h5clear``; SWMR also
forbids the attributes and datasets a run adds as it goes). So the reader polls with
short-lived, read-only opens and **HDF5 file locking off**:

- the writer is never blocked: a reader with the default locking holds a shared
  ``flock`` that makes the writer's next open (a resume) fail with ``EAGAIN``, and is
  itself refused while the writer holds the file; ``locking=False`` takes no lock;
- the writer is never corrupted: the file is opened ``"r"``, and HDF5 writes nothing
  to a file opened read-only;
- the reader never shows a torn state: a snapshot is kept only if the file's size and
  modification time are the same before the open and after the close (no write landed
  while it was read) and the read raised nothing; otherwise it is retried, and the
  previous snapshot stays on screen meanwhile.

Optional datasets are optional: a run of any protocol, of any age of the format, opens.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from ..runstore import FORMAT

#: tables small enough to read whole at every change (service runs); others only count rows
SERVICE_TABLES = ("fidelity", "alarms", "repairs", "events")
#: the protocol name of the service workflow's run files (``protocols/service.py``)
SERVICE_PROTOCOL = "service"
#: service events not worth a mark on the time line (one per hour, or set-up steps)
_QUIET_EVENTS = ("hour",)
_EVENT_DTYPE = np.dtype([("chip_time_h", "f8"), ("event", "S32"), ("writes", "i8"), ("detail", "S160")])


class NotARunFile(ValueError):
    """The file exists and is HDF5 but not an rram-hil run file."""


@dataclass
class Snapshot:
    """What a run file held at one moment (``stamp`` = (size, mtime_ns) of that moment)."""

    path: str
    stamp: tuple[int, int]
    read_at: float  # time.time() when it was taken
    attrs: dict[str, Any]
    cells: dict[str, NDArray]
    arrays: dict[str, NDArray]
    table_rows: dict[str, int]
    tables: dict[str, NDArray]
    sessions: NDArray
    code_names: dict[str, dict[int, str]] = field(default_factory=dict)
    #: (done, total, unit) when the work is not counted in cells (a service run's hours)
    work: tuple[int, int, str] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.attrs.get("rows", 0)), int(self.attrs.get("cols", 0))

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    @property
    def protocol(self) -> str:
        return str(self.attrs.get("protocol", "unknown"))

    @property
    def done(self) -> NDArray[np.bool_]:
        d = self.cells.get("done")
        return d.astype(bool) if d is not None else np.zeros(self.shape, bool)


def _decode(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _names_attr(ds: h5py.Dataset) -> dict[int, str]:
    raw = ds.attrs.get("code_names")
    if raw is None:
        return {}
    try:
        return {int(k): str(v) for k, v in json.loads(_decode(raw) if isinstance(raw, bytes) else raw).items()}
    except (TypeError, ValueError, AttributeError):
        return {}


def _open(path: str) -> h5py.File:
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        if "locking flag" not in str(exc):
            raise
        # the writer is this very process (a notebook viewing its own run): HDF5 shares its open file
        return h5py.File(path, "r")


def _read_once(path: str) -> Snapshot:
    before = _stamp(path)
    try:
        return _read_unguarded(path, before)
    except Exception:
        if _stamp(path) != before:  # whatever went wrong, a write landed meanwhile: not the file's fault
            raise BlockingIOError("the run file changed while it was read") from None
        raise


def _read_unguarded(path: str, before: tuple[int, int]) -> Snapshot:
    with _open(path) as f:
        fmt = _decode(f.attrs.get("format"))
        if fmt == FORMAT:
            snap = _run_snapshot(path, f)
            if snap.attrs.get("protocol") == SERVICE_PROTOCOL:
                snap = _service_snapshot(snap)
        else:
            raise NotARunFile(f"{path} is not an rram-hil run file")
    snap.stamp = _stamp(path)
    if snap.stamp != before:
        raise BlockingIOError("the run file changed while it was read")
    for k, v in snap.cells.items():
        if v.shape != snap.shape:
            raise BlockingIOError(f"cells/{k} has shape {v.shape}, not {snap.shape}: a write in progress")
    return snap


def _run_snapshot(path: str, f: h5py.File) -> Snapshot:
    """A protocol's run file (format ``rram-hil-run``, :mod:`hil.runstore`)."""
    attrs = {k: _decode(v) for k, v in f.attrs.items()}
    cells, names = {}, {}
    if "cells" in f:
        for k, ds in f["cells"].items():
            cells[k] = ds[()]
            if (n := _names_attr(ds)):
                names[k] = n
    rows, tabs = {}, {}
    if "tables" in f:
        for k, ds in f["tables"].items():
            rows[k] = int(ds.shape[0])
            if k in SERVICE_TABLES:
                tabs[k] = ds[()]
    arrays = {k: v[()] for k, v in f.items() if isinstance(v, h5py.Dataset) and k != "sessions"}
    sessions = f["sessions"][()] if "sessions" in f else np.zeros(0)
    return Snapshot(path, (0, 0), time.time(), attrs, cells, arrays, rows, tabs, sessions, names)


def _service_snapshot(snap: Snapshot) -> Snapshot:
    """A service run (``protocols/service.py``: an rram-hil run with protocol ``service``, one row per
    hour) in the view's terms: no cell maps, its ``fidelity`` timeline, its JSON ``events`` log as
    the time line (which then stands for the ``alarms`` and ``repairs`` tables it also holds), and
    its hours as the work."""
    events = snap.tables.get("events")
    if events is not None and events.dtype.names and "record" in events.dtype.names:
        rows = []
        for text in events["record"]:
            e = _decode(text)
            if not isinstance(e, dict) or e.get("event") in _QUIET_EVENTS:
                continue
            detail = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("event", "chip_time_s")
                               and isinstance(v, (int, float, str)))
            writes = e.get("writes", 0)
            rows.append((float(e.get("chip_time_s", 0.0)) / 3600.0, str(e.get("event", "?")).encode()[:32],
                         int(writes) if isinstance(writes, (int, float)) else 0, detail.encode()[:160]))
        snap.tables["events"] = np.array(rows, _EVENT_DTYPE)
        for name in ("alarms", "repairs"):
            snap.tables.pop(name, None)
    tl = snap.tables.get("fidelity")
    names = (tl.dtype.names or ()) if tl is not None else ()
    keep = [n for n in ("chip_time_h", "fidelity", "fidelity_reference") if n in names]
    if keep:
        snap.tables["fidelity"] = tl[keep]
    done = int(snap.attrs.get("hours_done", 0))
    snap.work = (done, max(snap.shape[0], done), "hours")
    snap.cells = {k: v for k, v in snap.cells.items() if k == "done"}  # hours served; no cell maps
    snap.code_names = {}
    return snap


def read_snapshot(path: str | os.PathLike, retries: int = 20, wait_s: float = 0.02) -> Snapshot:
    """One consistent snapshot of the run file at ``path`` (retried while a write is landing).

    Raises FileNotFoundError, :class:`NotARunFile`, or OSError after ``retries`` torn reads.
    """
    path = os.fspath(path)
    last: Exception | None = None
    for _ in range(max(1, retries)):
        try:
            return _read_once(path)
        except (FileNotFoundError, NotARunFile):
            raise
        except Exception as exc:  # noqa: BLE001  h5py reports torn metadata as many kinds of errors
            last = exc
            time.sleep(wait_s)
    raise OSError(f"could not read a consistent state of {path}: {last}")


class RunFollower:
    """Follows one run file: :meth:`poll` re-reads it only when it changed on disk.

    Polling is a ``stat``; a read happens once per change. The latest good snapshot
    (or None before the file exists) is in :attr:`snapshot`, and :attr:`version`
    counts the snapshots taken, so viewers can tell whether they are behind.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.snapshot: Snapshot | None = None
        self.version = 0
        self.error: str = ""
        self.history: list[tuple[float, int]] = []  # (time, cells done) seen, for the rate

    def poll(self) -> bool:
        """Take a new snapshot if the file changed; True when one was taken."""
        try:
            stamp = _stamp(self.path)
        except FileNotFoundError:
            self.error = f"waiting for {self.path} to be created"
            return False
        if self.snapshot is not None and stamp == self.snapshot.stamp:
            return False
        try:
            snap = read_snapshot(self.path, retries=3)
        except NotARunFile as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # noqa: BLE001  still being written: try at the next poll
            self.error = str(exc)
            return False
        self.error = ""
        self.snapshot = snap
        self.version += 1
        self.history.append((snap.read_at, snap.work[0] if snap.work is not None else int(snap.done.sum())))
        del self.history[:-600]
        return True
