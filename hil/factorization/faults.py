"""Stuck-device fault codes for the factorization mapping.

Codes follow the fault-map export: 0 working, 1 stuck-OFF (0 S), 2 stuck-ON (Gmax).
"""
from __future__ import annotations

import numpy as np

from simulated_bench.faults import STUCK_OFF, STUCK_ON, WORKING, random_fault_codes

__all__ = ["WORKING", "STUCK_OFF", "STUCK_ON", "random_fault_codes", "validate_codes", "no_faults"]


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
