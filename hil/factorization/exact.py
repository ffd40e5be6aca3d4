"""Exact re-verification of certificates in integer arithmetic (no tolerance decides).

A float64 matrix is an exact binary rational, so ``M * 2^s`` is an integer matrix for one
shift s. Its rank and a basis of its null space come from fraction-free row reduction
(sympy's ``rref_den`` over the integers), and a certificate found by a floating-point LP
is accepted only if it holds exactly for the stored matrix:

* Gordan vector for the row cone (``feasibility._row_cone``): y with M y = 0 and y > 0 on
  the columns where a row of MB may be non-zero. Then y . v = 0 for every v in row(M),
  which a non-zero v >= 0 that is 0 elsewhere cannot meet. The LP's y (floats, hence
  rationals) is taken as coordinates in the exact null-space basis, multiplied out in
  Python integers, and its signs are checked exactly; M y = 0 is checked again.
* Farkas vector for an orthant (``feasibility.column_orthant_empty``): the same with y
  carrying the orthant's signs.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class ExactNullSpace:
    """Exact data of an integer-scaled matrix: rank, and a null-space basis as integers.

    ``basis`` is (n - rank) x n Python ints with ``basis @ M^T == 0`` exactly;
    ``basis_float`` is ``basis / den`` in float64 (for the LPs), with ``den`` > 0 the common
    denominator. ``m_int`` is M * 2^shift as Python ints (rows).
    """

    rank: int
    basis: tuple[tuple[int, ...], ...]
    den: int
    basis_float: np.ndarray
    m_int: tuple[tuple[int, ...], ...]


def integer_matrix(m_: np.ndarray) -> tuple[list[list[int]], int]:
    """M * 2^shift as exact Python ints, and the shift (every float64 is k * 2^e)."""
    m_ = np.asarray(m_, dtype=np.float64)
    if not np.all(np.isfinite(m_)):
        raise ValueError("matrix must be finite")
    nz = m_[m_ != 0]
    shift = 0 if nz.size == 0 else max(0, 52 - int(np.frexp(np.abs(nz))[1].min()) + 1)
    rows = [[int(v) for v in np.ldexp(r, shift)] for r in m_]  # ldexp by a power of 2 is exact
    return rows, shift


@lru_cache(maxsize=8)
def _null_space_cached(shape: tuple[int, int], raw: bytes) -> ExactNullSpace:
    from sympy import ZZ
    from sympy.polys.matrices import DomainMatrix

    m_ = np.frombuffer(raw, dtype=np.float64).reshape(shape)
    rows, _ = integer_matrix(m_)
    dm = DomainMatrix([[ZZ(v) for v in r] for r in rows], shape, ZZ)
    rref, den, pivots = dm.rref_den()
    den = int(den)
    r_rows = [[int(v) for v in row] for row in rref.to_list()]
    if den < 0:
        den, r_rows = -den, [[-v for v in row] for row in r_rows]
    n = shape[1]
    free = [j for j in range(n) if j not in set(pivots)]
    basis = []
    for f in free:
        # rref = [den I | R] up to column order: x_f = den, x_pivot(i) = -rref[i, f]
        y = [0] * n
        y[f] = den
        for i, p in enumerate(pivots):
            y[p] = -r_rows[i][f]
        basis.append(tuple(y))
    basis_float = np.array([[v / den for v in y] for y in basis], dtype=np.float64).reshape(len(basis), n)
    return ExactNullSpace(rank=len(pivots), basis=tuple(basis), den=den, basis_float=basis_float,
                          m_int=tuple(tuple(r) for r in rows))


def exact_null_space(m_: np.ndarray) -> ExactNullSpace:
    """Exact rank and null space of the stored float64 matrix (cached for a few matrices)."""
    m_ = np.ascontiguousarray(m_, dtype=np.float64)
    return _null_space_cached(m_.shape, m_.tobytes())


def _float_to_int_vector(w: np.ndarray) -> tuple[list[int], int]:
    """Exact integers q and a shift with w = q / 2^shift (floats are binary rationals)."""
    w = np.asarray(w, dtype=np.float64)
    nz = w[w != 0]
    shift = 0 if nz.size == 0 else max(0, 52 - int(np.frexp(np.abs(nz))[1].min()) + 1)
    return [int(v) for v in np.ldexp(w, shift)], shift


def null_combination(ns: ExactNullSpace, w: np.ndarray) -> list[int]:
    """y = sum_k w_k basis_k exactly, scaled by a positive integer (signs are exact)."""
    q, _ = _float_to_int_vector(w)
    n = len(ns.m_int[0]) if ns.m_int else 0
    y = [0] * n
    for qk, bk in zip(q, ns.basis):
        if qk:
            for j, v in enumerate(bk):
                if v:
                    y[j] += qk * v
    return y


def in_null_space(ns: ExactNullSpace, y: list[int]) -> bool:
    """M y == 0 exactly (M as the stored float64 matrix, scaled to integers)."""
    return all(sum(a * b for a, b in zip(row, y) if a and b) == 0 for row in ns.m_int)


def verify_gordan(ns: ExactNullSpace, w: np.ndarray, signs: np.ndarray) -> bool:
    """True if y = basis^T w satisfies M y = 0 and signs_j * y_j > 0 wherever signs_j != 0.

    ``signs`` is +1 / -1 on the columns where y must be strictly of that sign, 0 where y is
    free. Exact: integer arithmetic on the stored matrix, no tolerance.
    """
    y = null_combination(ns, w)
    need = np.flatnonzero(np.asarray(signs) != 0)
    if not all((y[j] > 0) if signs[j] > 0 else (y[j] < 0) for j in need):
        return False
    return in_null_space(ns, y)
