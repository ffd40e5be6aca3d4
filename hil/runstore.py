"""Run records streamed to HDF5 while a protocol runs, and resumed after an interruption.

A protocol opens a :class:`RunStore` on its output file, declares its per-cell fields
and its append-only tables, and writes as it goes; every :meth:`RunStore.flush` leaves
a file that opens cleanly even if the process is killed right after (no SWMR: a
plain HDF5 file flushed after each unit of work survives ``kill -9`` and, unlike a
SWMR file, can be reopened for writing without ``h5clear``).

Re-opening the same file with the same protocol and parameters resumes it: the
``cells/done`` mask says which cells need no more work. Different parameters are
refused, so a resumed run never mixes two experiments.

File layout (format ``rram-hil-run``, version 1)::

    /                       attrs: format, format_version, protocol, parameters (JSON),
                                   parameters_sha256, bench_file, bench (JSON metadata),
                                   chip_id, software_version, seed, rows, cols,
                                   created (ISO 8601 UTC), status (running | complete |
                                   interrupted | failed), updated
    /cells/done             (rows, cols) bool   cell finished; skipped on resume
    /cells/<field>          (rows, cols)        per-cell results the protocol declares
    /tables/<name>          (n,) compound       append-only records (e.g. every pulse)
    /sessions               (n,) compound       started, ended, status of each (re)start
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from importlib import metadata as _metadata
from typing import Any, Mapping

import h5py
import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

FORMAT = "rram-hil-run"
FORMAT_VERSION = 1
STATUSES = ("running", "complete", "interrupted", "failed")
_SESSION_DTYPE = np.dtype([("started", "S32"), ("ended", "S32"), ("status", "S16")])


class RunMismatch(ValueError):
    """An existing run file was written by another protocol or with other parameters."""


def software_version() -> str:
    """Installed rram-hil version (``0+unknown`` when run from a source tree)."""
    try:
        return _metadata.version("rram-hil")
    except _metadata.PackageNotFoundError:
        return "0+unknown"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def params_json(params: Mapping[str, Any]) -> str:
    """Canonical JSON of a parameter mapping (sorted keys), the form stored and compared."""
    return json.dumps(_jsonable(params), sort_keys=True)


class RunStore:
    """One run file, open for streaming writes. Use :meth:`open`; close with :meth:`finish`."""

    def __init__(self, f: h5py.File, path: str, resumed: bool):
        self._f = f
        self.path = path
        self.resumed = resumed
        self.rows = int(f.attrs["rows"])
        self.cols = int(f.attrs["cols"])
        self._session = int(f["sessions"].shape[0]) - 1

    # creation / resumption --------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, protocol: str, params: Mapping[str, Any], shape: tuple[int, int],
             bench_file: str | None = None, bench_meta: Mapping[str, Any] | None = None,
             chip_id: str = "", seed: int | None = None, resume: bool = True) -> "RunStore":
        """Create ``path`` or, when ``resume`` and it holds the same run, reopen it.

        Raises :class:`RunMismatch` when the file exists with another protocol, other
        parameters or another array shape (delete it or pass ``resume=False`` to start over).
        """
        path = os.fspath(path)
        p_json = params_json(params)
        sha = hashlib.sha256(p_json.encode()).hexdigest()
        rows, cols = (int(n) for n in shape)
        if resume and os.path.exists(path):
            f = h5py.File(path, "r+")
            try:
                cls._check_same(f, path, protocol, sha, rows, cols)
            except Exception:
                f.close()
                raise
            f.attrs["status"] = "running"
            resumed = True
        else:
            f = h5py.File(path, "w")
            f.attrs.update({
                "format": FORMAT, "format_version": FORMAT_VERSION, "protocol": protocol,
                "parameters": p_json, "parameters_sha256": sha, "bench_file": bench_file or "",
                "bench": params_json(bench_meta or {}), "chip_id": chip_id, "software_version": software_version(),
                "seed": -1 if seed is None else int(seed), "rows": rows, "cols": cols, "created": now_iso(),
                "status": "running",
            })
            f.create_group("cells").create_dataset("done", (rows, cols), dtype=bool, fillvalue=False)
            f.create_group("tables")
            f.create_dataset("sessions", (0,), dtype=_SESSION_DTYPE, maxshape=(None,), chunks=(64,))
            resumed = False
        sess = f["sessions"]
        sess.resize((sess.shape[0] + 1,))
        sess[-1] = (now_iso().encode(), b"", b"running")
        f.attrs["updated"] = now_iso()
        f.flush()
        return cls(f, path, resumed)

    @staticmethod
    def _check_same(f: h5py.File, path: str, protocol: str, sha: str, rows: int, cols: int) -> None:
        if f.attrs.get("format") != FORMAT:
            raise RunMismatch(f"{path} is not an rram-hil run file")
        if f.attrs["protocol"] != protocol:
            raise RunMismatch(f"{path} holds a {f.attrs['protocol']!r} run, not {protocol!r}")
        if f.attrs["parameters_sha256"] != sha:
            raise RunMismatch(f"{path} was written with other parameters; use another file or start over")
        if (int(f.attrs["rows"]), int(f.attrs["cols"])) != (rows, cols):
            raise RunMismatch(f"{path} is for a {f.attrs['rows']}x{f.attrs['cols']} region, not {rows}x{cols}")

    # declarations -------------------------------------------------------------------------
    def cell_field(self, name: str, dtype: DTypeLike, fill: Any = 0) -> h5py.Dataset:
        """Per-cell dataset ``cells/<name>`` (created once, found again on resume)."""
        grp = self._f["cells"]
        if name not in grp:
            grp.create_dataset(name, (self.rows, self.cols), dtype=dtype, fillvalue=fill)
        return grp[name]

    def table(self, name: str, dtype: np.dtype, chunk: int = 4096) -> h5py.Dataset:
        """Append-only record table ``tables/<name>``."""
        grp = self._f["tables"]
        if name not in grp:
            grp.create_dataset(name, (0,), dtype=dtype, maxshape=(None,), chunks=(chunk,))
        return grp[name]

    def put_array(self, name: str, data: ArrayLike) -> None:
        """Store (or replace) a whole array under ``/<name>`` (e.g. the targets)."""
        if name in self._f:
            del self._f[name]
        self._f.create_dataset(name, data=np.asarray(data))

    def get_array(self, name: str) -> NDArray | None:
        return self._f[name][()] if name in self._f else None

    # streaming ----------------------------------------------------------------------------
    @property
    def done(self) -> NDArray[np.bool_]:
        return self._f["cells/done"][()]

    def cells(self, name: str) -> NDArray:
        """The stored values of per-cell field ``name`` (e.g. to restore progress on resume)."""
        return self._f["cells"][name][()]

    def attr(self, name: str, default: Any = None) -> Any:
        return self._f.attrs.get(name, default)

    def write_cells(self, rows: ArrayLike, cols: ArrayLike, done: bool | ArrayLike | None = None,
                    **fields: ArrayLike) -> None:
        """Write per-cell values at (rows[k], cols[k]); optionally mark them done."""
        r = np.atleast_1d(np.asarray(rows, dtype=np.intp))
        c = np.atleast_1d(np.asarray(cols, dtype=np.intp))
        if r.size == 0:
            return
        # ``done`` is the commit bit a concurrent reader (the live view) trusts: cells leaving
        # "done" are unmarked before their fields change, cells reaching it marked after
        mark = None if done is None else np.broadcast_to(np.asarray(done, dtype=bool), r.shape)
        if mark is not None and not mark.all():
            self._set_done(r[~mark], c[~mark], False)
        for name, values in fields.items():
            ds = self._f["cells"][name]
            block = ds[()]
            block[r, c] = values
            ds[...] = block
        if mark is not None and mark.any():
            self._set_done(r[mark], c[mark], True)

    def _set_done(self, r: NDArray, c: NDArray, value: bool) -> None:
        ds = self._f["cells/done"]
        block = ds[()]
        block[r, c] = value
        ds[...] = block

    def append(self, name: str, records: NDArray) -> None:
        if len(records) == 0:
            return
        ds = self._f["tables"][name]
        n = ds.shape[0]
        ds.resize((n + len(records),))
        ds[n:] = records

    def set_attr(self, name: str, value: Any) -> None:
        self._f.attrs[name] = value if isinstance(value, (str, int, float, bool, np.generic)) else params_json(value)

    def flush(self) -> None:
        self._f.attrs["updated"] = now_iso()
        self._f.flush()

    def finish(self, status: str = "complete") -> None:
        """Record the outcome and close the file (safe to call twice)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if not self._f.id.valid:
            return
        self._f.attrs["status"] = status
        sess = self._f["sessions"]
        started = sess[self._session]["started"]
        sess[self._session] = (started, now_iso().encode(), status.encode())
        self.flush()
        self._f.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("complete")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("failed")


def read_run(path: str | os.PathLike) -> dict[str, Any]:
    """Everything in a run file as plain Python/numpy objects (works on interrupted files)."""
    with h5py.File(os.fspath(path), "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not an rram-hil run file")
        out: dict[str, Any] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        out["parameters"] = json.loads(out["parameters"])
        out["bench"] = json.loads(out["bench"])
        out["cells"] = {k: v[()] for k, v in f["cells"].items()}
        out["tables"] = {k: v[()] for k, v in f["tables"].items()}
        out["sessions"] = f["sessions"][()]
        out["arrays"] = {k: v[()] for k, v in f.items() if isinstance(v, h5py.Dataset) and k != "sessions"}
    return out
