"""Fault maps: which cells of a chip are stuck, how we know, and files to keep them in.

Codes (defined once, in ``simulated_bench.faults``, and used by the whole project):
0 working, 1 stuck-OFF, 2 stuck-ON, 3 unreliable (mixed evidence), plus -1 for a cell
not scanned (only inside the map; exports write it as working unless asked).
:func:`load_codes` validates a map wherever one enters (shape, whole known codes).

HDF5 layout (format ``rram-hil-faultmap``, version 1)::

    /faultmap               group, attrs: format, format_version, chip_id, date (ISO 8601),
                            bench_file, rows, cols, software_version, code_names (JSON),
                            notes
    /faultmap/codes         (rows, cols) int8   the class of each cell (-1 = not scanned)
    /faultmap/date_scanned  (rows, cols) S32    ISO date of the scan that classified the cell
    /faultmap/evidence/<k>  (rows, cols) float64 measured evidence, SI units, NaN where absent
                            (the scan stores g_initial, g_after_set, g_after_reset in S, and
                            on_off_ratio, the smallest SET/RESET ratio seen)
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from typing import Mapping

import h5py
import numpy as np
from numpy.typing import ArrayLike, NDArray

from simulated_bench.faults import (CHIP_CODES, CODE_NAMES, NOT_SCANNED, STUCK_OFF, STUCK_ON, UNRELIABLE, WORKING,
                                    validate_codes)

FORMAT = "rram-hil-faultmap"
FORMAT_VERSION = 1


def _today() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class FaultMap:
    """Per-cell fault classes and the evidence behind them, for one chip."""

    codes: NDArray[np.int8]
    evidence: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    chip_id: str = ""
    date: str = field(default_factory=_today)
    bench_file: str = ""
    date_scanned: NDArray | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        self.codes = validate_codes(self.codes, None, tuple(CODE_NAMES), "fault codes")
        ev = {}
        for name, arr in self.evidence.items():
            arr = np.asarray(arr, dtype=float)
            if arr.shape != self.codes.shape:
                raise ValueError(f"evidence {name!r} has shape {arr.shape}, codes {self.codes.shape}")
            ev[name] = arr
        self.evidence = ev
        if self.date_scanned is None:
            self.date_scanned = np.where(self.codes != NOT_SCANNED, self.date, "").astype("S32")
        else:
            self.date_scanned = np.asarray(self.date_scanned).astype("S32")

    # views -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape  # type: ignore[return-value]

    @property
    def scanned(self) -> NDArray[np.bool_]:
        return self.codes != NOT_SCANNED

    def counts(self) -> dict[str, int]:
        """Number of cells in each class (only classes that occur, plus the four main ones)."""
        out = {CODE_NAMES[c]: int(np.count_nonzero(self.codes == c)) for c in (WORKING, STUCK_OFF, STUCK_ON, UNRELIABLE)}
        n_ns = int(np.count_nonzero(self.codes == NOT_SCANNED))
        if n_ns:
            out["not_scanned"] = n_ns
        return out

    def export_codes(self, unscanned_as: int = WORKING) -> NDArray[np.int8]:
        """Codes 0-3 for files and tools; cells never scanned become ``unscanned_as``."""
        return np.where(self.codes == NOT_SCANNED, unscanned_as, self.codes).astype(np.int8)

    def masks(self, unreliable_as_faulty: bool = True) -> dict[str, NDArray[np.bool_]]:
        """Boolean masks for the mapping code: ``stuck_off``, ``stuck_on``, ``faulty`` (any cell not usable)."""
        off = self.codes == STUCK_OFF
        on = self.codes == STUCK_ON
        faulty = off | on | ((self.codes == UNRELIABLE) if unreliable_as_faulty else False)
        return {"stuck_off": off, "stuck_on": on, "faulty": faulty}

    def stuck_values(self, g_off: float | None = None, g_on: float | None = None) -> NDArray[np.float64]:
        """Conductance (S) each stuck cell is pinned at, NaN for the others.

        Uses the measured mean of the scan's reads where present; ``g_off`` / ``g_on``
        replace them when given (e.g. seed 003's 0 and G_max model of stuck devices).
        """
        g = np.full(self.shape, np.nan)
        reads = [self.evidence[k] for k in ("g_initial", "g_after_set", "g_after_reset") if k in self.evidence]
        if reads:
            with np.errstate(all="ignore"):
                measured = np.nanmean(np.stack(reads), axis=0) if len(reads) > 1 else reads[0]
        else:
            measured = np.full(self.shape, np.nan)
        for code, override in ((STUCK_OFF, g_off), (STUCK_ON, g_on)):
            sel = self.codes == code
            g[sel] = measured[sel] if override is None else override
        return g

    # combining -----------------------------------------------------------------------------
    def merge(self, newer: "FaultMap") -> "FaultMap":
        """This map updated by a newer scan: every cell the newer one scanned takes its class and evidence."""
        if newer.shape != self.shape:
            raise ValueError(f"cannot merge a {newer.shape} map into a {self.shape} map")
        if self.chip_id and newer.chip_id and self.chip_id != newer.chip_id:
            raise ValueError(f"maps are from different chips: {self.chip_id!r} and {newer.chip_id!r}")
        take = newer.scanned
        codes = np.where(take, newer.codes, self.codes)
        evidence = {}
        for name in set(self.evidence) | set(newer.evidence):
            old = self.evidence.get(name, np.full(self.shape, np.nan))
            new = newer.evidence.get(name, np.full(self.shape, np.nan))
            evidence[name] = np.where(take, new, old)
        dates = np.where(take, newer.date_scanned, self.date_scanned)
        return FaultMap(codes, evidence, chip_id=newer.chip_id or self.chip_id, date=newer.date,
                        bench_file=newer.bench_file or self.bench_file, date_scanned=dates, notes=newer.notes)

    def diff(self, other: "FaultMap") -> dict[str, object]:
        """Cells whose class differs (both scanned): their positions, old and new codes, and a summary."""
        if other.shape != self.shape:
            raise ValueError(f"cannot diff a {other.shape} map against a {self.shape} map")
        both = self.scanned & other.scanned
        changed = both & (self.codes != other.codes)
        pos = np.argwhere(changed)
        transitions: dict[str, int] = {}
        for r, c in pos:
            key = f"{CODE_NAMES[int(self.codes[r, c])]}->{CODE_NAMES[int(other.codes[r, c])]}"
            transitions[key] = transitions.get(key, 0) + 1
        return {"changed": changed, "positions": pos, "old": self.codes[changed], "new": other.codes[changed],
                "n_changed": int(changed.sum()), "n_compared": int(both.sum()), "transitions": transitions}

    # files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the map to an HDF5 file (layout in the module docstring)."""
        from .runstore import software_version  # same version string as run files

        with h5py.File(os.fspath(path), "w") as f:
            g = f.create_group("faultmap")
            g.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "chip_id": self.chip_id,
                            "date": self.date, "bench_file": self.bench_file, "rows": self.shape[0],
                            "cols": self.shape[1], "software_version": software_version(),
                            "code_names": json.dumps({str(k): v for k, v in CODE_NAMES.items()}),
                            "notes": self.notes})
            g.create_dataset("codes", data=self.codes)
            g.create_dataset("date_scanned", data=self.date_scanned)
            ev = g.create_group("evidence")
            for name, arr in self.evidence.items():
                ev.create_dataset(name, data=arr)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaultMap":
        try:
            f = h5py.File(os.fspath(path), "r")
        except OSError as exc:
            raise ValueError(f"{path} is not an rram-hil fault map (not an HDF5 file: {exc})") from None
        with f:
            if "faultmap" not in f or f["faultmap"].attrs.get("format") != FORMAT:
                raise ValueError(f"{path} is not an rram-hil fault map")
            g = f["faultmap"]
            version = int(g.attrs["format_version"])
            if version > FORMAT_VERSION:
                raise ValueError(f"{path} has fault-map format {version}; this software reads up to {FORMAT_VERSION}")
            a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
            return cls(g["codes"][()], {k: v[()] for k, v in g["evidence"].items()}, chip_id=a["chip_id"],
                       date=a["date"], bench_file=a["bench_file"], date_scanned=g["date_scanned"][()],
                       notes=a.get("notes", ""))

    @classmethod
    def from_codes(cls, codes: ArrayLike, **kwargs) -> "FaultMap":
        """A map from plain codes (e.g. a ``.npy`` of 0-3) without evidence."""
        return cls(np.asarray(codes), **kwargs)

    def summary(self) -> str:
        n = self.codes.size
        parts = [f"{k} {v} ({100 * v / n:.1f} %)" for k, v in self.counts().items()]
        head = f"fault map {self.shape[0]}x{self.shape[1]}"
        if self.chip_id:
            head += f" chip {self.chip_id}"
        return head + ": " + ", ".join(parts)


def precision_recall(found: ArrayLike, truth: ArrayLike) -> tuple[float, float]:
    """Precision and recall of stuck-device detection.

    A cell counts as found when its class is stuck-OFF, stuck-ON or unreliable; a true
    positive needs the right stuck class (so a stuck-ON called stuck-OFF is a miss and
    a false alarm). Empty sets score 1.0.
    """
    found = np.asarray(found)
    truth = np.asarray(truth)
    flagged = found != WORKING
    stuck = truth != WORKING
    tp = int(np.count_nonzero(stuck & (found == truth)))
    n_flag = int(np.count_nonzero(flagged))
    n_stuck = int(np.count_nonzero(stuck))
    precision = tp / n_flag if n_flag else 1.0
    recall = tp / n_stuck if n_stuck else 1.0
    return precision, recall


def load_codes(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> NDArray[np.int8]:
    """Codes 0-3 from a fault-map HDF5 file or a ``.npy`` of codes, validated (against ``shape`` if given).

    Raises ``ValueError`` naming the file for anything that is not a fault map of
    whole-number known codes of the right shape.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".npy"):
            codes = np.load(path, allow_pickle=False)
        else:
            codes = FaultMap.load(path).export_codes()
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ValueError(f"{path}: not a fault map (.npy of codes or a fault-map HDF5 file): {exc}") from None
    try:
        return validate_codes(codes, shape, CHIP_CODES)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def evidence_summary(evidence: Mapping[str, NDArray], mask: NDArray[np.bool_]) -> dict[str, float]:
    """Median of each evidence array over the cells in ``mask`` (NaN if none)."""
    out = {}
    for name, arr in evidence.items():
        vals = arr[mask & np.isfinite(arr)]
        out[name] = float(np.median(vals)) if vals.size else float("nan")
    return out
