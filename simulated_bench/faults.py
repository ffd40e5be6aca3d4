"""Stuck-device maps: random (seed 003 Methods), spatial patterns (seed 000 II.B), explicit.

A fault map is an integer array of shape (rows, cols) with the codes below. They are
the project's one definition of fault codes: ``hil.faultmap`` (fault-map files, ``hil
faults export``), the mapping code and simulated bench files all use these. On a
simulated chip an unreliable cell (3) does not respond to pulses and keeps its initial
state; -1 (not scanned) occurs only inside fault maps, never on a chip.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

WORKING, STUCK_OFF, STUCK_ON, UNRELIABLE = 0, 1, 2, 3
NOT_SCANNED = -1
CODE_NAMES = {NOT_SCANNED: "not_scanned", WORKING: "working", STUCK_OFF: "stuck_off", STUCK_ON: "stuck_on",
              UNRELIABLE: "unreliable"}
#: the codes a cell of a chip (and a fault-map export) can have
CHIP_CODES = (WORKING, STUCK_OFF, STUCK_ON, UNRELIABLE)

#: the six spatial patterns of seed 000 and the sizes the paper sweeps
PATTERN_SIZES: dict[str, tuple[float, ...]] = {
    "circle": (0.1, 0.2, 0.3, 0.4),  # radius, fraction of the reference length
    "ring": (0.4, 0.36, 0.32, 0.28),  # inner radius; outer radius 0.5
    "circle_complement": (0.4, 0.3, 0.2, 0.1),  # radius of the working core
    "rows": (1, 2, 3, 4),  # number of stuck rows (scale per layer as needed)
    "columns": (1, 2, 3, 4),  # number of stuck columns
    "checkerboard": (1,),  # block size in cells
}
PATTERNS = tuple(PATTERN_SIZES)
RADIUS_REFERENCES = ("width", "min_dim", "per_axis")


def _check_shape(rows: int, cols: int) -> None:
    for name, n in (("rows", rows), ("cols", cols)):
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")


def _check_rate(name: str, r: float) -> None:
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {r}")


def random_fault_codes(rows: int, cols: int, rate_off: float, rate_on: float = 0.0,
                       rng: np.random.Generator | int | None = None) -> NDArray[np.int8]:
    """Seed 003 Methods: floor(r_off*m*n) distinct OFF cells, then floor(r_on*m*n) ON among the rest."""
    _check_shape(rows, cols)
    _check_rate("rate_off", rate_off)
    _check_rate("rate_on", rate_on)
    if rate_off + rate_on > 1.0 + 1e-12:  # allow float round-off in r_on = 1 - r_off
        raise ValueError(f"rate_off + rate_on must not exceed 1, got {rate_off + rate_on}")
    rng = np.random.default_rng(rng)
    n = rows * cols
    n_off = int(np.floor(rate_off * n))
    n_on = int(np.floor(rate_on * n))
    order = rng.permutation(n)
    codes = np.zeros(n, dtype=np.int8)
    codes[order[:n_off]] = STUCK_OFF
    codes[order[n_off:n_off + n_on]] = STUCK_ON
    return codes.reshape(rows, cols)


@dataclass(frozen=True)
class PatternGeometry:
    """How a spatial pattern is laid on a (possibly non-square) array.

    Seed 000 is ambiguous: its text normalises radii by the array width, its Table I
    footnote by half the smaller dimension. ``radius_reference`` picks one:
    ``"width"`` (radius r means r * cols cells), ``"min_dim"`` (r * min(rows, cols)),
    or ``"per_axis"`` (an ellipse: r * rows along rows, r * cols along columns).
    ``center`` is the pattern centre as fractions of (rows, cols).
    """

    radius_reference: str = "width"
    center: tuple[float, float] = (0.5, 0.5)

    def __post_init__(self) -> None:
        if self.radius_reference not in RADIUS_REFERENCES:
            raise ValueError(f"radius_reference must be one of {RADIUS_REFERENCES}, got {self.radius_reference!r}")
        if not all(0.0 <= c <= 1.0 for c in self.center):
            raise ValueError(f"center must be fractions in [0, 1], got {self.center}")


def _normalised_distance(rows: int, cols: int, geom: PatternGeometry) -> NDArray[np.float64]:
    """Distance of each cell centre from the pattern centre, in reference lengths."""
    i = np.arange(rows)[:, None] + 0.5
    j = np.arange(cols)[None, :] + 0.5
    di = i - geom.center[0] * rows
    dj = j - geom.center[1] * cols
    if geom.radius_reference == "per_axis":
        return np.hypot(di / rows, dj / cols)
    ref = cols if geom.radius_reference == "width" else min(rows, cols)
    return np.hypot(di, dj) / ref


def _centred_band(n_total: int, n_band: int, center_frac: float) -> NDArray[np.bool_]:
    if n_band > n_total:
        raise ValueError(f"band of {n_band} does not fit in {n_total} lines")
    start = int(round(center_frac * n_total - n_band / 2))
    start = min(max(start, 0), n_total - n_band)
    band = np.zeros(n_total, dtype=bool)
    band[start:start + n_band] = True
    return band


def pattern_mask(name: str, rows: int, cols: int, size: float | None = None,
                 geometry: PatternGeometry | None = None, outer_radius: float = 0.5) -> NDArray[np.bool_]:
    """Boolean mask (True = stuck) of one of seed 000's six spatial patterns.

    ``size`` is the pattern's parameter: circle radius, ring inner radius, working-core
    radius of the circle complement, number of rows / columns, checkerboard block size.
    """
    _check_shape(rows, cols)
    if name not in PATTERN_SIZES:
        raise ValueError(f"unknown pattern {name!r}; choose one of {', '.join(PATTERNS)}")
    geom = geometry or PatternGeometry()
    if size is None:
        size = PATTERN_SIZES[name][0]
    if name in ("circle", "ring", "circle_complement"):
        if size < 0:
            raise ValueError(f"{name} radius must be >= 0, got {size}")
        d = _normalised_distance(rows, cols, geom)
        if name == "circle":
            return d <= size
        if name == "circle_complement":
            return d > size
        if not size < outer_radius:
            raise ValueError(f"ring inner radius {size} must be below the outer radius {outer_radius}")
        return (d > size) & (d <= outer_radius)
    if name in ("rows", "columns"):
        n = int(size)
        if n != size or n < 0:
            raise ValueError(f"{name} pattern size must be a whole number of lines >= 0, got {size}")
        if name == "rows":
            return np.repeat(_centred_band(rows, n, geom.center[0])[:, None], cols, axis=1)
        return np.repeat(_centred_band(cols, n, geom.center[1])[None, :], rows, axis=0)
    block = int(size)
    if block != size or block < 1:
        raise ValueError(f"checkerboard block size must be a whole number >= 1, got {size}")
    i = np.arange(rows)[:, None] // block
    j = np.arange(cols)[None, :] // block
    return (i + j) % 2 == 0


def pattern_fault_codes(name: str, rows: int, cols: int, size: float | None = None, kind: str = "off",
                        geometry: PatternGeometry | None = None) -> NDArray[np.int8]:
    """Fault codes for a spatial pattern whose masked cells are all stuck ``kind`` ("off"/"on")."""
    if kind not in ("off", "on"):
        raise ValueError(f"kind must be 'off' or 'on', got {kind!r}")
    mask = pattern_mask(name, rows, cols, size, geometry)
    return np.where(mask, STUCK_OFF if kind == "off" else STUCK_ON, WORKING).astype(np.int8)


def validate_codes(codes: ArrayLike, shape: tuple[int, int] | None = None,
                   allowed: tuple[int, ...] = CHIP_CODES, what: str = "fault map") -> NDArray[np.int8]:
    """Check a fault map (2-D, ``shape``, whole-number ``allowed`` codes) and return it as int8.

    Nothing is cast before it is checked: 0.6 or 257 is refused, not read as 0 or 1.
    """
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (rows, cols), got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{what} shape {arr.shape} does not match the array {tuple(shape)}")
    names = ", ".join(f"{c} {CODE_NAMES[c]}" for c in allowed)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{what} must hold whole-number codes ({names}), got {arr.dtype}")
    bad = ~np.isin(arr, allowed)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{what}: fault code {arr[r, c].item()!r} at ({r}, {c}) is not allowed; allowed: {names}")
    return arr.astype(np.int8)


def coverage(mask_or_codes: ArrayLike) -> float:
    """Counted fraction of cells that are stuck (mask True or code != 0)."""
    arr = np.asarray(mask_or_codes)
    return float(np.count_nonzero(arr) / arr.size)
