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


def tolerance_rank(matrix: np.ndarray, omc: float) -> int:
    """Fewest singular directions whose best approximation leaves 1 - cos <= omc / 10.

    A fit to ``omc`` does not need directions below that: sub-blocks of DFT matrices
    have a numerical rank of 44 (64 x 64 block of Re(DFT256)) but 37 directions carry
    all but 1e-11 of 1 - cos, and a probe through 37 inner lines converges where one
    through 44 must also fit 1e-13-sized singular values.
    """
    s2 = np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False) ** 2
    if s2.size == 0 or s2[0] == 0.0:
        return 0
    tail = np.concatenate([np.cumsum(s2[::-1])[::-1][1:], [0.0]]) / s2.sum()  # share beyond r
    omc_r = tail / (1.0 + np.sqrt(np.clip(1.0 - tail, 0.0, 1.0)))  # 1 - sqrt(1 - tail)
    return int(np.argmax(omc_r <= omc / 10.0)) + 1


def rank_k_floor(matrix: np.ndarray, k: int) -> float:
    """1 - cos of the best rank-k approximation (Eckart-Young): no MA @ MB with k inner
    lines does better, whatever the faults."""
    s2 = np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False) ** 2
    if s2.size == 0 or s2[0] == 0.0 or k >= s2.size:
        return 0.0
    tail = float(s2[k:].sum() / s2.sum())
    return tail / (1.0 + np.sqrt(max(1.0 - tail, 0.0)))


def check_rank_for(matrix: np.ndarray, k: int, tol: float) -> int:
    """Raise RankError if no rank-k product reaches 1 - cos <= tol; return rank(M).

    Unlike ``check_rank`` this lets k fall below a numerical rank made of singular values
    too small to matter at ``tol`` (64 x 64 blocks of Re(DFT256): numerical rank 44, but
    37 directions leave 1 - cos below 1e-11).
    """
    r = numerical_rank(matrix)
    if k >= r:
        return r
    floor = rank_k_floor(matrix, k)
    if floor > tol:
        raise RankError(
            f"k = {k} is below the numerical rank {r} of the {matrix.shape[0]} x "
            f"{matrix.shape[1]} target: MA @ MB has rank <= k, and the best rank-{k} "
            f"approximation has 1 - cos = {floor:.3e} > tol = {tol:.0e}, so no conductances "
            f"(faulty or not) can reach tol; use k >= {tolerance_rank(matrix, tol)}")
    return r
