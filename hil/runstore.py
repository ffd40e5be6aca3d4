"""Run records streamed to HDF5 while a protocol runs, and resumed after an interruption.

A protocol opens a :class:`RunStore` on its output file, declares its per-cell fields
and its append-only tables, and writes as it goes; every :meth:`RunStore.flush` leaves
a file that opens cleanly even if the process is killed right after (no SWMR: a
plain HDF5 file flushed after each unit of work survives ``kill -9`` and, unlike a
SWMR file, can be reopened for writing without ``h5clear``).

Re-opening the same file with the same protocol and parameters resumes it: the
``cells/done`` mask says which cells need no more work. Different parameters, another
chip, other instruments or another bench file are refused with a message saying what
differs, so a resumed run never mixes two experiments; ``overwrite=True`` starts over.

File layout (format ``rram-hil-run``, version 1)::

    /                       attrs: format, format_version, protocol, parameters (JSON),
                                   parameters_sha256, bench_file, bench (JSON metadata),
                                   chip_id, identity (JSON: chip_id, bench_sha256,
                                   instruments {name: *IDN? answer}), software_version,
                                   seed, rows, cols, pass (multi-pass protocols),
                                   ops_per_cell (scan, every session counted),
                                   created (ISO 8601 UTC), status (running | complete |
                                   interrupted | failed), updated
    /cells/done             (rows, cols) bool   cell finished; skipped on resume
    /cells/<field>          (rows, cols)        per-cell results the protocol declares
    /tables/<name>          (n,) compound       append-only records
    /tables/pulses          (n,) compound       every pulse, written and flushed *before* it is
                                                sent: session, phase, pass, iteration, row, col,
                                                polarity (+1 SET, -1 RESET), amplitude (V),
                                                gate (V), width (s), g_before (S), delivered
                                                (False only for the last pulse(s) of a session
                                                that was killed while sending them)
    /tables/reads           (n,) compound       ISPP verify reads: pass, iteration, row, col, g (S)
    /sessions               (n,) compound       started, ended, status of each (re)start
"""
from __future__ import annotations

import contextlib
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


def _rewritten(path: str) -> h5py.File:
    """A run file a killed process left marked ``running``, copied object by object into a fresh file that
    replaces it (opened r+). A kill in the middle of an HDF5 write can leave the file's free-space and global
    heap bookkeeping half updated (seen: ``bad heap index`` on the next write of an events record, a
    variable-length string); what it reads back is intact, so the copy is a consistent file to resume."""
    tmp = f"{path}.mending"
    try:
        with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
            dst.attrs.update(dict(src.attrs))

            def copy(name: str, obj) -> None:
                # the values within each dataset's extent only: a chunk's rows beyond it may hold what the
                # killed write left half done (H5Ocopy copies whole chunks and trips over them)
                if isinstance(obj, h5py.Group):
                    new = dst.create_group(name)
                else:
                    fill = {} if obj.dtype.hasobject else {"fillvalue": obj.fillvalue}  # no fill of strings
                    new = dst.create_dataset(name, data=obj[()], dtype=obj.dtype, maxshape=obj.maxshape,
                                             chunks=obj.chunks, **fill)
                new.attrs.update(dict(obj.attrs))

            src.visititems(copy)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise RunMismatch(f"{path} was left damaged by a process killed while writing it ({exc}); its data can "
                          "still be read, but the run cannot resume: use another file or --overwrite") from None
    os.replace(tmp, path)
    return h5py.File(path, "r+")


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
             chip_id: str = "", seed: int | None = None, resume: bool = True,
             identity: Mapping[str, Any] | None = None) -> "RunStore":
        """Create ``path`` or, when ``resume`` and it holds the same run, reopen it.

        Raises :class:`RunMismatch` when the file exists with another protocol, other
        parameters, another region shape or another ``identity`` (chip, instruments,
        bench file); ``resume=False`` overwrites it (a deliberate restart).
        """
        path = os.fspath(path)
        p_json = params_json(params)
        sha = hashlib.sha256(p_json.encode()).hexdigest()
        rows, cols = (int(n) for n in shape)
        ident = _jsonable(identity or {})
        if resume and os.path.exists(path):
            try:
                f = h5py.File(path, "r+")
            except OSError as exc:
                if "unable to lock file" in str(exc):  # HDF5's own lock: another process has it open to write
                    raise RunMismatch(f"{path} is open for writing in another process (a run still going?): let "
                                      "it finish or stop it, or use another file") from None
                raise RunMismatch(f"{path} exists but is not a readable run file ({exc}); "
                                  "use another file or --overwrite") from None
            try:
                cls._check_same(f, path, protocol, sha, rows, cols)
                cls._check_identity(f, path, ident)
                killed = f.attrs.get("status") == "running"
            except Exception:
                f.close()
                raise
            if killed:
                f.close()
                f = _rewritten(path)
            f.attrs["status"] = "running"
            resumed = True
        else:
            # built under a temporary name and renamed into place: a kill while the file is being
            # created leaves no truncated file that would block the next run
            tmp = f"{path}.creating"
            f = h5py.File(tmp, "w")
            f.attrs.update({
                "format": FORMAT, "format_version": FORMAT_VERSION, "protocol": protocol,
                "parameters": p_json, "parameters_sha256": sha, "bench_file": bench_file or "",
                "bench": params_json(bench_meta or {}), "chip_id": chip_id, "software_version": software_version(),
                "seed": -1 if seed is None else int(seed), "rows": rows, "cols": cols, "created": now_iso(),
                "identity": json.dumps(ident, sort_keys=True),
                "status": "running",
            })
            f.create_group("cells").create_dataset("done", (rows, cols), dtype=bool, fillvalue=False)
            f.create_group("tables")
            f.create_dataset("sessions", (0,), dtype=_SESSION_DTYPE, maxshape=(None,), chunks=(64,))
            f.close()
            os.replace(tmp, path)
            f = h5py.File(path, "r+")
            resumed = False
        sess = f["sessions"]
        sess.resize((sess.shape[0] + 1,))
        sess[-1] = (now_iso().encode(), b"", b"running")
        f.attrs["updated"] = now_iso()
        f.flush()
        return cls(f, path, resumed)

    @staticmethod
    def _check_identity(f: h5py.File, path: str, ident: Mapping[str, Any]) -> None:
        """Refuse to resume on another chip, other instruments or another bench file, saying what differs."""
        try:
            old = json.loads(f.attrs.get("identity", "{}"))
        except ValueError:
            old = {}
        diffs = []
        if old.get("chip_id", "") != ident.get("chip_id", ""):
            diffs.append(f"chip {old.get('chip_id', '')!r} in the file, {ident.get('chip_id', '')!r} on this bench")
        old_i, new_i = old.get("instruments", {}), ident.get("instruments", {})
        for name in sorted(set(old_i) | set(new_i)):
            if old_i.get(name) != new_i.get(name):
                diffs.append(f"instrument {name}: {old_i.get(name, 'absent')!r} in the file, "
                             f"{new_i.get(name, 'absent')!r} now")
        if old.get("bench_sha256", "") != ident.get("bench_sha256", ""):
            diffs.append("the bench file differs from the one the run started with")
        if diffs:
            raise RunMismatch(f"{path} was started on another bench: {'; '.join(diffs)}. "
                              "Resume it on the original bench, or use another file or --overwrite to start over")

    @staticmethod
    def _check_same(f: h5py.File, path: str, protocol: str, sha: str, rows: int, cols: int) -> None:
        if f.attrs.get("format") != FORMAT:
            raise RunMismatch(f"{path} is not an rram-hil run file; use another file or --overwrite")
        if f.attrs["protocol"] != protocol:
            raise RunMismatch(f"{path} holds a {f.attrs['protocol']!r} run, not {protocol!r}; "
                              "use another file or --overwrite")
        if f.attrs["parameters_sha256"] != sha:
            raise RunMismatch(f"{path} holds a run with other parameters; use the same parameters to resume it, "
                              "or another file or --overwrite to start over")
        if (int(f.attrs["rows"]), int(f.attrs["cols"])) != (rows, cols):
            raise RunMismatch(f"{path} is for a {f.attrs['rows']}x{f.attrs['cols']} region, not {rows}x{cols}; "
                              "use another file or --overwrite")

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

    def append(self, name: str, records: NDArray) -> int:
        """Append records to ``tables/<name>``; returns the index of the first one."""
        ds = self._f["tables"][name]
        n = ds.shape[0]
        if len(records) == 0:
            return n
        ds.resize((n + len(records),))
        ds[n:] = records
        return n

    def mark_field(self, name: str, span: tuple[int, int], field: str, value: Any) -> None:
        """Set ``field`` of records ``span[0]:span[1]`` of ``tables/<name>`` (e.g. ``delivered``)."""
        ds = self._f["tables"][name]
        block = ds[span[0]:span[1]]
        block[field] = value
        ds[span[0]:span[1]] = block

    @property
    def session(self) -> int:
        """Index of this (re)start in ``/sessions``."""
        return self._session

    def discard(self) -> None:
        """Close and delete the file (a new run refused before its first operation)."""
        if self._f.id.valid:
            self._f.close()
        with contextlib.suppress(OSError):
            os.remove(self.path)

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
        out["identity"] = json.loads(out.get("identity", "{}"))
        out["cells"] = {k: v[()] for k, v in f["cells"].items()}
        out["tables"] = {k: v[()] for k, v in f["tables"].items()}
        out["sessions"] = f["sessions"][()]
        out["arrays"] = {k: v[()] for k, v in f.items() if isinstance(v, h5py.Dataset) and k != "sessions"}
    return out
