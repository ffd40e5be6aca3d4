"""A versioned fault-map store: every change to what we know about a chip's stuck devices is a new version.

Each version holds the full code map of every array, the operation that produced it
(``scan``, ``localise``, ``service``...), its evidence (JSON: VMM indices, syndromes,
estimated conductances) and its parent; nothing is overwritten. ``hil faults diff
STORE@3 STORE@5`` compares two versions like two fault-map files.

HDF5 layout (format ``rram-hil-faultmap-versions``, version 1)::

    /                      attrs: format, format_version, chip_id, created
    /v<N>                  group per version N = 0, 1, ...; attrs: parent, operation, time_s (chip
                           time), date (ISO 8601), evidence (JSON), note
    /v<N>/<array>          (rows, cols) int8 codes (hil.faultmap codes: -1..3)
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import h5py
import numpy as np
from numpy.typing import NDArray

from .faultmap import CODE_NAMES, FaultMap
from .runstore import _jsonable

FORMAT = "rram-hil-faultmap-versions"
FORMAT_VERSION = 1


@dataclass
class Version:
    """One version: codes per array, and how we came to know them."""

    number: int
    codes: dict[str, NDArray[np.int8]]
    operation: str
    parent: int | None = None
    time_s: float = 0.0
    date: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def faultmap(self, array: str) -> FaultMap:
        """This version of one array as a :class:`~hil.faultmap.FaultMap` (no per-cell evidence)."""
        return FaultMap(self.codes[array], date=self.date, notes=f"version {self.number}: {self.operation} {self.note}")


class FaultMapVersions:
    """Append-only versions of a chip's fault maps, in memory and (with ``path``) in an HDF5 file."""

    def __init__(self, path: str | os.PathLike | None = None, chip_id: str = ""):
        self.path = None if path is None else os.fspath(path)
        self.chip_id = chip_id
        self.versions: list[Version] = []
        if self.path is not None and os.path.exists(self.path):
            self._load()

    def __len__(self) -> int:
        return len(self.versions)

    @property
    def latest(self) -> Version:
        if not self.versions:
            raise LookupError("the store holds no version yet")
        return self.versions[-1]

    def get(self, number: int) -> Version:
        if not -len(self.versions) <= number < len(self.versions):
            raise LookupError(f"no version {number}; the store holds 0..{len(self.versions) - 1}")
        return self.versions[number]

    def commit(self, codes: Mapping[str, NDArray], operation: str, evidence: Mapping[str, Any] | None = None,
               time_s: float = 0.0, note: str = "") -> Version:
        """Store ``codes`` as a new version of the whole chip (arrays not named keep the previous version's codes);
        returns it. Shapes must match the previous version."""
        clean = {name: c.copy() for name, c in self.latest.codes.items()} if self.versions else {}
        for name, c in codes.items():
            arr = np.asarray(c)
            FaultMap(arr)  # validates the codes
            if self.versions and name in self.latest.codes and self.latest.codes[name].shape != arr.shape:
                raise ValueError(f"array {name!r}: shape {arr.shape} differs from version "
                                 f"{self.latest.number}'s {self.latest.codes[name].shape}")
            clean[name] = arr.astype(np.int8).copy()
        v = Version(len(self.versions), clean, str(operation), self.versions[-1].number if self.versions else None,
                    float(time_s), _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    _jsonable(dict(evidence or {})), note)
        self.versions.append(v)
        if self.path is not None:
            self._append(v)
        return v

    def diff(self, old: int, new: int) -> dict[str, dict[str, object]]:
        """Per array, the :meth:`FaultMap.diff` of version ``old`` against ``new``."""
        a, b = self.get(old), self.get(new)
        return {name: a.faultmap(name).diff(b.faultmap(name)) for name in sorted(set(a.codes) & set(b.codes))}

    def history(self) -> list[dict[str, Any]]:
        """One line per version: number, operation, time, stuck counts, note."""
        out = []
        for v in self.versions:
            counts = {name: int(np.count_nonzero(np.isin(c, (1, 2, 3)))) for name, c in v.codes.items()}
            out.append({"version": v.number, "parent": v.parent, "operation": v.operation, "time_s": v.time_s,
                        "date": v.date, "faulty": counts, "note": v.note})
        return out

    # files ----------------------------------------------------------------------------------
    def _append(self, v: Version) -> None:
        with h5py.File(self.path, "a") as f:
            if "format" not in f.attrs:
                f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "chip_id": self.chip_id,
                                "created": v.date, "code_names": json.dumps({str(k): n for k, n in CODE_NAMES.items()})})
            g = f.create_group(f"v{v.number}")
            g.attrs.update({"parent": -1 if v.parent is None else v.parent, "operation": v.operation,
                            "time_s": v.time_s, "date": v.date, "evidence": json.dumps(v.evidence), "note": v.note})
            for name, c in v.codes.items():
                g.create_dataset(name, data=c)
            f.flush()

    def _load(self) -> None:
        with h5py.File(self.path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"{self.path} is not an rram-hil fault-map version store")
            if int(f.attrs["format_version"]) > FORMAT_VERSION:
                raise ValueError(f"{self.path} has store format {f.attrs['format_version']}; "
                                 f"this software reads up to {FORMAT_VERSION}")
            self.chip_id = str(f.attrs.get("chip_id", ""))
            numbers = sorted(int(k[1:]) for k in f.keys() if k.startswith("v") and k[1:].isdigit())
            if numbers != list(range(len(numbers))):
                raise ValueError(f"{self.path}: versions {numbers} are not consecutive from 0")
            for n in numbers:
                g = f[f"v{n}"]
                a = g.attrs
                parent = int(a["parent"])
                self.versions.append(Version(n, {k: g[k][()] for k in g.keys()}, str(a["operation"]),
                                             None if parent < 0 else parent, float(a["time_s"]), str(a["date"]),
                                             json.loads(a["evidence"]), str(a["note"])))


def is_version_store(path: str | os.PathLike) -> bool:
    try:
        with h5py.File(os.fspath(path), "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False


__all__ = ["FaultMapVersions", "Version", "is_version_store", "FORMAT"]
