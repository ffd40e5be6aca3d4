"""Fidelity metrics (seed 003 eq. 7)."""
from __future__ import annotations

import numpy as np


def one_minus_cos(represented: np.ndarray, target: np.ndarray) -> float:
    """1 - cosine similarity of vec(represented) and vec(target), without cancellation.

    Computed as sin^2 / (1 + cos) from the residual of the projection, so values down to
    ~1e-30 are resolved instead of being lost to 1 - (1 - eps).
    """
    p = np.asarray(represented, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    np_, nt = np.linalg.norm(p), np.linalg.norm(t)
    if np_ == 0.0 or nt == 0.0:
        return 1.0
    p, t = p / np_, t / nt
    cos = float(p @ t)
    if cos <= 0.0:
        return 1.0 - cos
    r = p - cos * t
    sin2 = float(r @ r)
    return sin2 / (1.0 + cos)


def cosine_similarity(represented: np.ndarray, target: np.ndarray) -> float:
    """Cosine similarity of vec(represented) and vec(target) (seed 003 eq. 7)."""
    return 1.0 - one_minus_cos(represented, target)
