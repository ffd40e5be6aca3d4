"""Differential-pair direct mapping baseline (seed 003 Fig. 1a, 1c): 2mn devices.

Row 2i of the (2m x n) array carries the positive part of M's row i, row 2i+1 the negative
part (the pair is driven with +V and -V); the represented value is G+ - G-.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faults import STUCK_OFF, STUCK_ON, validate_codes
from .metrics import one_minus_cos
from .params import DeviceWindow


@dataclass
class DirectMapping:
    """Programmed pair conductances (2m x n, siemens), scale alpha (S per unit of M), fidelity."""

    g: np.ndarray
    scale: float
    one_minus_cos: float

    def represented(self) -> np.ndarray:
        """(G+ - G-) / alpha, in M's units."""
        return (self.g[0::2] - self.g[1::2]) / self.scale


def direct_map(matrix: np.ndarray, codes: np.ndarray,
               window: DeviceWindow = DeviceWindow()) -> DirectMapping:
    """Map ``matrix`` (m x n) onto a (2m x n) differential-pair array with fault ``codes``.

    The largest |M| entry maps to g_max; stuck devices keep their stuck conductance.
    """
    m_ = np.asarray(matrix, dtype=np.float64)
    if m_.ndim != 2 or not np.all(np.isfinite(m_)) or not np.any(m_):
        raise ValueError("matrix must be a finite, non-zero 2-D array")
    m, n = m_.shape
    c = validate_codes(codes, (2 * m, n), "codes")
    alpha = window.g_max / np.abs(m_).max()
    g = np.empty((2 * m, n))
    g[0::2] = np.maximum(m_, 0.0) * alpha
    g[1::2] = np.maximum(-m_, 0.0) * alpha
    g = np.where(c == STUCK_OFF, 0.0, np.where(c == STUCK_ON, window.g_max, g))
    rep = g[0::2] - g[1::2]
    return DirectMapping(g=g, scale=alpha, one_minus_cos=one_minus_cos(rep, m_))
