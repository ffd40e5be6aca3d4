"""The column-orthant test: a mixed-integer search for MA's row signs when k = rank(M) < m.

When the usable inner lines (see ``feasibility._usable``) number exactly r = rank(M), MA's
usable columns are independent and MB (r x n, rank r) has a right inverse, so every usable
column a_l of MA lies in col(M). a_l is 0 at its stuck-OFF rows, non-zero (the columns are
independent), and its entries carry the row signs sa that all columns share:
a_l[i] = sa_i |A_il|. So an exact fit needs one sign vector s in {+-1}^m whose orthant meets
every column's subspace V_l = {a in col(M): a = 0 at l's stuck-OFF rows} away from 0.
This drops MB's own constraints, so it is a relaxation: a sign vector that passes it is not
a fit, and only when no sign vector passes is an exact fit impossible.

Up to ``ENUMERATE_MAX_ROWS`` rows ``column_orthant_exact`` decides it exactly: it runs
through all 2^(m-1) sign vectors and kills each with a Gordan vector y (y^T M = 0, of the
vector's signs on some column's rows that are not stuck-OFF) checked in integer arithmetic.
Each column's verdict depends only on the signs of its own rows, so it is cached.

The search is a MILP (HiGHS through ``scipy.optimize.milp``): binary t_i (s_i = 2 t_i - 1,
t_0 = 1 fixes the global flip (s, a) -> (-s, -a)), per usable column the coordinates c_l of
a_l = U c_l (U an orthonormal basis of col(M)), and a_l's positive and negative parts p, q.
Scale is free, so each column is normalised to sum(p + q) = 1; then |a_l[i]| <= 1 and the
sign link p_i <= t_i, q_i <= 1 - t_i needs no big-M guess: it is exact. Stuck-OFF rows
have p = q = 0.

Where it stands on the benchmark's Gaussian targets, 30 % stuck-OFF (measured with
``benchmarks/factorize_frontier.py --orthant``, key ``orthant_milp``):

* 64 x 48 at k = 48: the relaxation holds. The stalled fit's own row signs pass it in
  10 of 10 trials (one LP per column), and HiGHS finds a sign vector at its root node in
  10 of 10 (8.5-161 s, median ~21 s, on the loaded 2-core machine). Each V_l has dimension ~29 in ~45 rows that are not
  stuck-OFF, and a d-dimensional generic subspace of R^N meets 2 sum_{i<d} C(N-1, i) of
  the 2^N orthants (Cover 1965), here ~98 %. Over the 48 columns the count (treating them
  as independent: a count, not a proof) expects ~2^60 sign vectors to pass. So this
  relaxation cannot prove those trials; a proof would need MB's constraints too, which
  make the problem bilinear.
* 64 x 40 at k = 40: the relaxation holds too, so it cannot prove these trials either.
  HiGHS does not find a sign vector: in 240 s per trial it ran 230-677 nodes (10 seeds)
  and reported 0.0 % of the tree explored, and on seed 0, given 600 s, 1,808 nodes after
  one restart from the root. Its LP relaxation is weak while the t_i are fractional:
  t_i = 1/2 allows |a_l[i]| <= 1/2, which is no constraint once a column has 45 rows.
  But ``orthant_sign_search`` from the stalled fit's signs (which meet 26-37 of the 40
  columns) meets all 40 in 10 of 10 trials (key ``orthant_search``; helper i17a's search
  found this first). On seed 0 every
  column then holds a vector strictly inside the orthant, with each signed entry >= 6.5e-4
  of the column's 1-norm, so rounding does not decide it. Each V_l has dimension ~21
  (14-28) and meets about a third of the orthants. A count that treats the columns as
  independent expected ~2^-12 sign vectors to pass. That count was wrong: the columns
  are far from independent, since they all lie in the same col(M).

When HiGHS gives a verdict, it comes from branch and bound over floating-point LPs
(primal feasibility tolerance 1e-7). It is labelled as such, never as exact.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import null_space
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from .faults import STUCK_OFF

#: up to this many rows the search enumerates all 2^(m-1) sign vectors and kills each with a
#: Gordan vector checked in integer arithmetic (``exact``): an exact certificate
ENUMERATE_MAX_ROWS = 14

#: HiGHS's primal feasibility tolerance (its default), stated in every verdict it decides
HIGHS_FEASIBILITY_TOL = 1e-7


@dataclass(frozen=True)
class OrthantVerdict:
    """What the sign search found.

    ``status``: "infeasible" (HiGHS's branch and bound found no sign vector: no exact fit,
    by a floating-point solver's proof), "feasible" (``signs`` passes the relaxation, which
    proves nothing about a fit), "unknown" (time limit), or "not_applicable" (usable lines
    != rank(M), or rank(M) = m so col(M) is everything). ``seconds`` is wall time of the
    MILP; ``columns`` the number of usable columns constrained.
    """

    status: str
    seconds: float = 0.0
    signs: np.ndarray | None = None
    columns: int = 0
    message: str = ""
    #: from HiGHS's log, when asked for (``column_orthant(..., log=True)``): branch-and-bound
    #: nodes and the share of the tree it last reported explored, in percent
    nodes: int | None = None
    explored_pct: float | None = None


def _model(basis: np.ndarray, off: np.ndarray):
    """MILP data (A, lo, hi, lb, ub, integrality) for ``basis`` (m x r, col(M)) and
    ``off`` (m x q, stuck-OFF rows of each usable column)."""
    m, r = basis.shape
    q = off.shape[1]
    width = r + 2 * m  # per column: c, p, q
    nv = m + q * width
    lb, ub = np.zeros(nv), np.ones(nv)
    lb[0] = 1.0  # t_0 = 1: the global sign flip
    integrality = np.zeros(nv)
    integrality[:m] = 1
    blocks, lo, hi = [], [], []
    rows_m = np.arange(m)
    for col in range(q):
        base = m + col * width
        c_ix, p_ix, q_ix = base + np.arange(r), base + r + rows_m, base + r + m + rows_m
        lb[c_ix], ub[c_ix] = -np.inf, np.inf
        ub[p_ix[off[:, col]]] = 0.0
        ub[q_ix[off[:, col]]] = 0.0
        # U c - p + q = 0 (m rows)
        eq = sp.hstack([sp.csr_matrix(basis), -sp.identity(m), sp.identity(m)])
        blocks.append((eq, c_ix[0], np.zeros(m), np.zeros(m)))
        work = np.flatnonzero(~off[:, col])
        # p_i - t_i <= 0 and q_i + t_i <= 1 on working rows; sum(p + q) = 1
        link_p = sp.csr_matrix((np.r_[np.ones(work.size), -np.ones(work.size)],
                                (np.r_[np.arange(work.size), np.arange(work.size)], np.r_[p_ix[work], work])),
                               shape=(work.size, nv))
        link_q = sp.csr_matrix((np.ones(2 * work.size),
                                (np.r_[np.arange(work.size), np.arange(work.size)], np.r_[q_ix[work], work])),
                               shape=(work.size, nv))
        norm = sp.csr_matrix((np.ones(2 * work.size), (np.zeros(2 * work.size, int), np.r_[p_ix[work], q_ix[work]])),
                             shape=(1, nv))
        blocks += [(link_p, None, np.full(work.size, -np.inf), np.zeros(work.size)),
                   (link_q, None, np.full(work.size, -np.inf), np.ones(work.size)),
                   (norm, None, np.ones(1), np.ones(1))]
    mats = []
    for mat, offset, _, _ in blocks:
        if offset is None:
            mats.append(mat)
        else:  # a block over one column's variables, placed at its offset
            mats.append(sp.hstack([sp.csr_matrix((mat.shape[0], offset)), mat,
                                   sp.csr_matrix((mat.shape[0], nv - offset - mat.shape[1]))]))
    return (sp.vstack(mats).tocsr(), np.concatenate([b[2] for b in blocks]), np.concatenate([b[3] for b in blocks]),
            lb, ub, integrality)


def _witness_holds(x: np.ndarray, basis: np.ndarray, off: np.ndarray, signs: np.ndarray,
                   tol: float = 1e-6) -> bool:
    """Re-check HiGHS's point: each column a_l = p - q lies in col(M) and in the orthant of
    ``signs``, is 0 at its stuck-OFF rows and has sum|a_l| = 1 (floating point, tolerance
    ``tol``: a "feasible" verdict claims nothing about an exact fit)."""
    m, r = basis.shape
    width = r + 2 * m
    for col in range(off.shape[1]):
        base = m + col * width
        a = x[base + r: base + r + m] - x[base + r + m: base + r + 2 * m]
        if (abs(np.abs(a).sum() - 1) > tol or np.abs(a[off[:, col]]).max(initial=0) > tol
                or (signs * a).min() < -tol or np.linalg.norm(a - basis @ (basis.T @ a)) > tol):
            return False
    return True


def _highs_log_figures(text: str) -> tuple[int | None, float | None]:
    """Nodes (from the solving report) and the last explored share (%) in a HiGHS MIP log."""
    nodes = re.findall(r"^\s*Nodes\s+(\d+)\s*$", text, flags=re.M)
    explored = re.findall(r"^\s*\S*\s+\d+\s+\d+\s+\d+\s+([\d.]+)%", text, flags=re.M)
    return (int(nodes[-1]) if nodes else None), (float(explored[-1]) if explored else None)


@contextmanager
def _stdout_to(path: str):
    """Send file descriptor 1 (where HiGHS's C++ code prints) to ``path`` for a while."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(path, "w") as f:
            os.dup2(f.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def column_orthant(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray, seconds: float,
                   rank: int | None = None, log: bool = False) -> OrthantVerdict:
    """Search MA's row signs under the column-orthant relaxation for at most ``seconds``.

    ``rank`` is rank(M) when the caller knows it exactly (``exact.exact_null_space``);
    otherwise the numerical rank is used. ``log`` captures HiGHS's log (through file
    descriptor 1, so only where nothing else prints meanwhile, e.g. a benchmark worker)
    for the node count. See the module docstring for what each status proves.
    """
    from .feasibility import _usable  # the one definition of a usable line

    m_ = np.asarray(matrix, dtype=np.float64)
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    usable = _usable(ca, cb)
    u, s, _ = np.linalg.svd(m_, full_matrices=False)
    if rank is None:
        rank = int((s > max(m_.shape) * np.finfo(float).eps * s[0]).sum()) if s.size and s[0] > 0 else 0
    m = m_.shape[0]
    if int(usable.sum()) != rank or rank >= m or rank == 0:
        return OrthantVerdict("not_applicable", message=f"{int(usable.sum())} usable lines, rank(M) = {rank}, "
                              f"m = {m}: the test needs usable lines = rank(M) < m")
    off = ca[:, usable] == STUCK_OFF
    a, lo, hi, lb, ub, integrality = _model(u[:, :rank], off)
    t0 = time.perf_counter()
    run = dict(c=np.zeros(a.shape[1]), constraints=LinearConstraint(a, lo, hi), integrality=integrality,
               bounds=Bounds(lb, ub), options={"time_limit": float(seconds), "disp": log})
    figures = {}
    if log:
        with tempfile.TemporaryDirectory() as tmp:
            with _stdout_to(os.path.join(tmp, "highs.log")):
                res = milp(**run)
            figures = dict(zip(("nodes", "explored_pct"),
                               _highs_log_figures(open(os.path.join(tmp, "highs.log")).read())))
    else:
        res = milp(**run)
    wall = time.perf_counter() - t0
    cols = int(usable.sum())
    if res.status == 2:
        return OrthantVerdict("infeasible", wall, columns=cols, **figures,
                              message=f"HiGHS branch and bound (floating-point LPs, primal feasibility "
                                      f"tolerance {HIGHS_FEASIBILITY_TOL:g}) found no row signs of MA whose "
                                      f"orthant meets each of the {cols} columns' subspaces of col(M)")
    if res.status == 0 and res.x is not None:
        signs = np.where(res.x[:m] > 0.5, 1, -1).astype(np.int8)
        if not _witness_holds(res.x, u[:, :rank], off, signs):
            return OrthantVerdict("unknown", wall, columns=cols, **figures,
                                  message="HiGHS's sign vector failed the floating-point re-check")
        return OrthantVerdict("feasible", wall, signs, cols, **figures, message=
                              "row signs found whose orthant meets every column's subspace: "
                              "this relaxation cannot prove that no exact fit exists")
    return OrthantVerdict("unknown", wall, columns=cols, **figures, message=f"HiGHS stopped: {res.message}")


def column_subspaces(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray) -> dict[int, tuple]:
    """Per usable line l: (basis of V_l as an m x d array, mask of l's rows not stuck-OFF)."""
    from .feasibility import _usable

    m_ = np.asarray(matrix, dtype=np.float64)
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    u, s, _ = np.linalg.svd(m_, full_matrices=False)
    rank = int((s > max(m_.shape) * np.finfo(float).eps * s[0]).sum())
    basis = u[:, :rank]
    out = {}
    for line in np.flatnonzero(_usable(ca, cb)):
        off = ca[:, line] == STUCK_OFF
        out[int(line)] = (basis @ (null_space(basis[off]) if off.any() else np.eye(rank)), ~off)
    return out


def orthant_meets(basis: np.ndarray, free: np.ndarray, signs: np.ndarray) -> bool:
    """Whether some non-zero v = basis @ z has signs_i v_i >= 0 on the ``free`` rows (one LP,
    floating point): find z with those products >= 0 and summing to 1."""
    if basis.shape[1] == 0:
        return False
    w = (np.asarray(signs, dtype=np.float64)[:, None] * basis)[free]
    res = linprog(np.zeros(basis.shape[1]), A_ub=-w, b_ub=np.zeros(w.shape[0]), A_eq=w.sum(axis=0)[None, :],
                  b_eq=[1.0], bounds=[(None, None)] * basis.shape[1], method="highs")
    return res.status == 0


def signs_pass(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray, signs: np.ndarray) -> bool:
    """Whether the orthant of ``signs`` (+-1 per row of MA, e.g. a stalled fit's ``sign_a``)
    meets every usable column's subspace V_l away from 0: one LP per column, floating point.

    True shows the relaxation cannot prove these crossbars infeasible (it claims no fit).
    """
    return all(orthant_meets(v, free, signs) for v, free in column_subspaces(matrix, codes_a, codes_b).values())


def orthant_sign_search(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray, signs: np.ndarray,
                        rng: np.random.Generator, steps: int = 80) -> tuple[int, np.ndarray, int]:
    """Local search for MA row signs that pass the relaxation (the search of helper i17a's
    ``column_cone_signs`` in ``benchmarks/sign_choice.py``): from ``signs``, repeatedly pick a column
    whose subspace misses the orthant and flip the one row (among those that would let it
    meet) that leaves the most columns met. Returns (columns met at the start, the signs
    reached, columns met there); all usable columns met shows the relaxation holds.
    """
    ca = np.asarray(codes_a)
    spaces = column_subspaces(matrix, codes_a, codes_b)
    lines = list(spaces)
    sa = np.asarray(signs, dtype=np.float64).copy()
    m = sa.size
    met = {line: orthant_meets(*spaces[line], sa) for line in lines}
    given = sum(met.values())
    for _ in range(steps):
        missed = [line for line in lines if not met[line]]
        if not missed:
            break
        v, free = spaces[missed[rng.integers(len(missed))]]
        rows = [i for i in np.flatnonzero(free) if orthant_meets(v, free, np.where(np.arange(m) == i, -sa, sa))]
        best = None
        for i in rows or rng.choice(np.flatnonzero(free), min(3, int(free.sum())), replace=False):
            trial = np.where(np.arange(m) == i, -sa, sa)
            new = dict(met)
            for line in lines:
                if ca[i, line] != STUCK_OFF:
                    new[line] = orthant_meets(*spaces[line], trial)
            score = sum(new.values()) + 0.01 * rng.random()
            if best is None or score > best[0]:
                best = (score, trial, new)
        _, sa, met = best
    return given, sa.astype(np.int8), sum(met.values())


def _may_apply(m_: np.ndarray, usable: np.ndarray) -> bool:
    """Cheap pre-check (numerical rank) before the exact one: usable lines = rank(M) < m."""
    lines = int(usable.sum())
    return 0 < lines < m_.shape[0] and lines == np.linalg.matrix_rank(m_)


def column_orthant_exact(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray,
                         max_rows: int = ENUMERATE_MAX_ROWS) -> tuple[str, np.ndarray | None]:
    """Exact verdict on the relaxation for m <= ``max_rows``: ("infeasible", None) when every
    sign vector (s_0 = +1; -s is the same up to a global flip) has a column l and a Gordan
    vector y, y^T M = 0 exactly, s_i y_i > 0 on l's rows that are not stuck-OFF (then
    y . a = 0 forces a = 0 for every a in V_l of that orthant); ("feasible", s) for the
    first sign vector no column kills in floating point (the relaxation holds there, up to
    rounding); ("not_applicable", None) otherwise.
    """
    from .exact import exact_null_space, verify_gordan
    from .feasibility import _usable, gordan_vector

    m_ = np.asarray(matrix, dtype=np.float64)
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    m = m_.shape[0]
    usable = _usable(ca, cb)
    if m > max_rows or not _may_apply(m_, usable):
        return "not_applicable", None
    left = exact_null_space(m_.T)  # rows y with y^T M = 0, exactly; its rank is rank(M)
    if int(usable.sum()) != left.rank or left.rank >= m or left.rank == 0:
        return "not_applicable", None
    lines = np.flatnonzero(usable)
    # columns with more stuck-OFF rows have smaller subspaces: try them first
    lines = lines[np.argsort(-(ca[:, lines] == STUCK_OFF).sum(axis=0), kind="stable")]
    dead: dict[tuple[int, bytes], bool] = {}  # (line, signs on its working rows) -> killed exactly
    for code in range(2 ** (m - 1)):
        signs = np.array([1] + [1 - 2 * ((code >> b) & 1) for b in range(m - 1)], dtype=np.int64)
        for line in lines:
            need = np.where(ca[:, line] == STUCK_OFF, 0, signs)
            key = (int(line), need.astype(np.int8).tobytes())
            if key not in dead:
                w = gordan_vector(left.basis_float, need)
                dead[key] = w is not None and verify_gordan(left, w, need)
            if dead[key]:
                break
        else:
            return "feasible", signs.astype(np.int8)
    return "infeasible", None
