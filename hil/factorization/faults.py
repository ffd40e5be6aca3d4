"""Stuck-device fault codes for the factorization mapping.

Codes follow the fault-map export: 0 working, 1 stuck-OFF (0 S), 2 stuck-ON (Gmax).
"""
from __future__ import annotations

import numpy as np

WORKING, STUCK_OFF, STUCK_ON = 0, 1, 2


def random_fault_codes(rows: int, cols: int, rate_off: float, rate_on: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Random stuck-device codes for a rows x cols crossbar, following seed 003 Methods.

    First floor(rate_off*rows*cols) distinct coordinates are drawn for stuck-OFF; then
    floor(rate_on*rows*cols) distinct coordinates are drawn among the remaining working
    devices for stuck-ON. Returns an int8 array of codes (0 working, 1 OFF, 2 ON).
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"crossbar shape must be positive, got {rows} x {cols}")
    if not (0.0 <= rate_off <= 1.0 and 0.0 <= rate_on <= 1.0 and rate_off + rate_on <= 1.0):
        raise ValueError(f"fault rates must be in [0, 1] and sum to <= 1, got {rate_off}, {rate_on}")
    size = rows * cols
    n_off = int(np.floor(rate_off * size))
    n_on = int(np.floor(rate_on * size))
    codes = np.zeros(size, dtype=np.int8)
    off = rng.choice(size, size=n_off, replace=False)
    codes[off] = STUCK_OFF
    remaining = np.flatnonzero(codes == WORKING)
    on = rng.choice(remaining, size=min(n_on, remaining.size), replace=False)
    codes[on] = STUCK_ON
    return codes.reshape(rows, cols)


def validate_codes(codes: np.ndarray, shape: tuple[int, int], name: str = "codes") -> np.ndarray:
    """Check a fault-code array (shape and values 0/1/2) and return it as int8."""
    arr = np.asarray(codes)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric fault codes 0, 1, 2")
    if arr.size and (not np.all(np.isfinite(arr)) or not np.all(np.isin(arr, (0, 1, 2)))):
        bad = np.unique(arr[~np.isin(arr, (0, 1, 2))])
        raise ValueError(f"{name} holds codes outside 0 (working), 1 (stuck-OFF), 2 (stuck-ON): {bad[:5]}")
    return arr.astype(np.int8)


def no_faults(rows: int, cols: int) -> np.ndarray:
    """All-working code array."""
    return np.zeros((rows, cols), dtype=np.int8)
