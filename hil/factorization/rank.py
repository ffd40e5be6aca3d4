"""Rank check: k below the numerical rank of M cannot represent M exactly."""
from __future__ import annotations

import numpy as np


class RankError(ValueError):
    """k is smaller than the numerical rank of the target: an exact fit is impossible."""


def numerical_rank(matrix: np.ndarray, rtol: float | None = None) -> int:
    """Numerical rank: singular values above rtol * sigma_max (default max(m, n) * eps)."""
    m = np.asarray(matrix, dtype=np.float64)
    s = np.linalg.svd(m, compute_uv=False)
    if s.size == 0 or s[0] == 0.0:
        return 0
    tol = (max(m.shape) * np.finfo(np.float64).eps if rtol is None else rtol) * s[0]
    return int(np.sum(s > tol))


def check_rank(matrix: np.ndarray, k: int) -> int:
    """Raise RankError if rank(MA @ MB) <= k cannot reach rank(M); return rank(M)."""
    r = numerical_rank(matrix)
    if k < r:
        raise RankError(
            f"k = {k} is below the numerical rank {r} of the {matrix.shape[0]} x "
            f"{matrix.shape[1]} target: MA @ MB has rank <= k, so no conductances (faulty "
            f"or not) can represent it exactly; use k >= {r}")
    return r
