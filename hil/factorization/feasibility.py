"""Certificates that no exact fit M = alpha * MA @ MB exists on given faulty crossbars.

The mapping model (see ``solver``): MA[i, l] = sa_i |A_il| and MB[l, j] = sb_l |B_lj| (one
sign per row of each crossbar), stuck-OFF devices are 0, stuck-ON devices sit at Gmax
(1 in Gmax units), working ones anywhere in 0..Gmax, and alpha > 0 is free. A *path*
from row i to column j is an inner line l whose devices A[i, l] and B[l, j] are both not
stuck-OFF; P_ij = sum over paths of sa_i sb_l |A_il| |B_lj|. Each test below is a proof
that P = alpha M is unreachable; when none applies the answer is "unknown" (None), not
"possible" -- a fit that reaches the tolerance is the certificate of the other side.

* lines: every column of P lies in the span of the usable inner lines' columns of MA
  (lines with a non-OFF device in both crossbars), so rank(P) <= their number. Bound:
  1 - cos >= 1 - sqrt(sum of the leading r singular values^2 / ||M||^2) (Eckart-Young).
* support: an entry with no path is 0 in every P. Bound: 1 - cos >= 1 - sqrt(1 - E),
  E the share of ||M||^2 on path-less entries (cos <= ||M restricted to reachable||/||M||).
* sign parity: an entry with exactly one path l has sign(P_ij) = sa_i sb_l. Non-zero such
  entries tie the parities of row i and line l; a cycle of ties with odd parity (found
  by union-find) is a contradiction. A zero entry whose one path has two stuck-ON
  devices is contradicted directly (P_ij = sa_i sb_l Gmax^2 != 0).
* stuck-ON parity: an entry whose every path runs through two stuck-ON devices is
  sa_i * (sum of +-1 over its paths) Gmax^2, never 0 for an odd number of paths.
* row cone: when the usable inner lines are exactly rank(M) = r, MA's usable columns are
  independent, so MB's usable rows are MA^+ P and lie in the row space of M. Each such
  row is non-zero, of one sign, and 0 at its stuck-OFF devices. For a line l let G span
  {v in row(M): v = 0 at l's stuck-OFF columns}, restricted to the other columns S_l.
  If some y > 0 on S_l has y^T v = 0 for every such v (Gordan's alternative: y in the
  null space of M, found by a linear program and re-verified in exact integer arithmetic
  on the stored matrix, see ``exact``), no row of one sign exists for line l. Wide targets (n > k = rank) are where this bites: a
  48 x 64 Gaussian target at k = 48 and 30 % stuck-OFF leaves each row a 29-dimensional
  subspace of 45 columns, and for about one line in forty it holds no vector of one sign.

The last two are exact contradictions (no bound on 1 - cos is claimed for them).

What none of these reach on rectangular Gaussian targets at 30 % stuck-OFF, k = min(m, n)
(freedom margin 1.12 for 64 x 40 and 40 x 64, 1.21 for 48 x 64 and 64 x 48): the row cone
proves 6 of 10 48 x 64 trials and 10 of 10 40 x 64 ones; the rest stall at 1 - cos ~ 2e-4
(2e-3 for 64 x 40), like the proved ones, and fit with a few more lines (``HINT_MARGIN``).
For a tall target (k = n < m) the
columns of MA lie in M's column space, zero at their stuck-OFF rows, all in the one
orthant the shared row signs of MA set; a column's subspace meets an orthant for about a
third of them, so a proof must search the 2^63 sign choices. Branch and bound on those
signs, pruning a partial choice when some column's cone is {0} (an LP per column), would
visit about 2^35 nodes on 64 x 40 seed 0 (Knuth's estimator, 3 random probes; paths die
only at depth 37-44 of 64) -- out of reach, and that relaxation drops MB's constraints, so
it may not even be infeasible. No certificate is claimed for these trials.

What none of these can reach: Re(DFT64), k = 64, at 44-46 % stuck-OFF (fits crawl at
1e-6..1e-4). With the row signs dropped (each working device any real value) the same
masks fit to 1 - cos ~ 1e-13 in ~3k iterations (45 %, seeds 0 and 3), so an argument that
ignores the signs (rank, counts, support) cannot prove those misses; a proof would have
to use the sign constraints on entries with ~19 paths each, and none is known here.

Why no such proof is in reach (session 5, measured on the benchmark's masks):

* Exact fits do exist at 45 % for some masks (seed 2: found by 2 of 6 attempts with
  per-row NNLS signs, and by a screened restart), so nothing rate-wide can be proved; a
  certificate has to be per mask.
* Per mask, the row signs are 2^127 patterns (sa, sb up to one global flip). The only
  pattern-wide argument here, single-path parity, needs entries with one path; these
  have ~19. For one fixed pattern the question is whether diag(sa) M = |A| diag(sb) |B|
  has non-negative solutions on the working devices; with all signs + and no faults
  that is exact non-negative factorization, and deciding whether the non-negative rank
  of a matrix equals its rank is NP-hard (Vavasis, SIAM J. Optim. 20, 2009). Certificates of infeasibility for such bilinear systems
  need bounded variables (McCormick/LP relaxations; the stuck-OFF problem is scale-free,
  so only a normalisation bounds them) or sums of squares over the ~4,500 magnitudes (a
  degree-2 moment matrix of ~10^7 rows), and one per surviving pattern.
* The misses are not slow convergence: at the stalled points (45 % seed 2, 4.9e-6; and
  stuck-ON 40 % seed 0, 2.7e-9) projected Gauss-Newton steps (LM, conjugate gradients
  with block-Jacobi preconditioning, the held set fixed) were predicted accurately (gain
  ratio ~1 at damping 1e-8) yet moved 1 - cos by < 1 % in 25 steps: they are stationary
  points with a non-zero residual, so longer runs from them do not help; other basins do.
* A count at found points (not a proof): working devices less those at 0 less the 64
  gauge scalings, against 3,856, the dimension the rank-33 target imposes at k = 64
  (k (m + n) less the largest fibre, see ``freedom_margin``): exact fits left 4,685
  (40 %, seed 0), 4,391-4,412 (42 %, seeds 0-1) and 3,928 (44 %, seed 4); the 45 %
  seed-2 stall, with 765 devices at 0, leaves 3,677. Fits fail where the sign constraints hold more
  devices at 0 than the count can spare.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import null_space
from scipy.optimize import linprog

from .exact import exact_null_space, verify_gordan
from .faults import STUCK_OFF, STUCK_ON

#: |M_ij| at or below this share of max|M| counts as an exact zero (cos/sin tables leave
#: ~1e-16 where the exact matrix has 0)
ZERO_RTOL = 1e-12


@dataclass(frozen=True)
class Obstruction:
    """Why no exact fit exists: ``kind`` of argument, a sentence, and a bound if one holds.

    ``omc_lower_bound`` is a lower bound on 1 - cos of any fit (0.0 when the argument is a
    pure contradiction with no quantitative bound).
    """

    kind: str
    reason: str
    omc_lower_bound: float = 0.0


def _zero_mask(m_: np.ndarray) -> np.ndarray:
    return np.abs(m_) <= ZERO_RTOL * np.abs(m_).max()


def _paths(ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Number of paths (inner lines with both devices not stuck-OFF) per entry of P."""
    return (ca != STUCK_OFF).astype(np.int64) @ (cb != STUCK_OFF).astype(np.int64)


def _usable(ca, cb):
    """Inner lines with a device that is not stuck-OFF in both crossbars (the rest add 0)."""
    return (ca != STUCK_OFF).any(axis=0) & (cb != STUCK_OFF).any(axis=1)


def _lines(m_, ca, cb):
    usable = _usable(ca, cb)
    r = int(usable.sum())
    s2 = np.linalg.svd(m_, compute_uv=False) ** 2
    share = float(s2[:r].sum() / s2.sum()) if s2.sum() > 0 else 1.0
    tol = max(m_.shape) * np.finfo(float).eps * s2[0] ** 0.5 if s2.size else 0.0
    rank = int((np.sqrt(s2) > tol).sum())
    if r >= rank:
        return None
    return Obstruction("lines", f"only {r} of {ca.shape[1]} inner lines have a device that is not "
                       f"stuck-OFF in both crossbars, below rank(M) = {rank}",
                       max(1.0 - np.sqrt(share), 0.0))


def _support(m_, ca, cb):
    lost = (_paths(ca, cb) == 0) & ~_zero_mask(m_)
    if not lost.any():
        return None
    e = float((m_[lost] ** 2).sum() / (m_ ** 2).sum())
    i, j = np.argwhere(lost)[0]
    return Obstruction("support", f"{int(lost.sum())} non-zero entries of M (e.g. row {i}, column {j}) "
                       f"have no inner line whose two devices are both free of stuck-OFF faults",
                       1.0 - np.sqrt(max(1.0 - e, 0.0)))


def _find(parent, parity, u):
    """Root of u and u's parity relative to it."""
    p = 0
    while parent[u] != u:
        p ^= parity[u]
        u = parent[u]
    return u, p


def _single_paths(m_, ca, cb):
    """Entries with exactly one path: (rows, cols, lines, M_ij == 0, both devices stuck-ON)."""
    ok_a, ok_b = ca != STUCK_OFF, cb != STUCK_OFF
    rows, cols = np.nonzero(_paths(ca, cb) == 1)
    # the one line of each single-path entry: argmax of the path indicator over l
    lines = np.argmax(ok_a[rows, :] & ok_b[:, cols].T, axis=1) if rows.size else rows
    both_on = (ca[rows, lines] == STUCK_ON) & (cb[lines, cols] == STUCK_ON)
    return rows, cols, lines, _zero_mask(m_)[rows, cols], both_on


def sign_ties(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray):
    """Parities forced by single-path entries: sa_i * sb_l = sign(M_ij).

    Returns (root, parity, conflict): nodes 0..m-1 are MA's rows and m..m+k-1 the inner
    lines; node u's sign is its root's times (-1)^parity[u]. ``conflict`` is None or
    (row, line) where the ties demand both signs.
    """
    m_ = np.asarray(matrix, dtype=np.float64)
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    m, k = ca.shape
    parent = list(range(m + k))
    parity = [0] * (m + k)
    conflict = None
    rows, cols, lines, zero, _ = _single_paths(m_, ca, cb)
    for i, j, l, z in zip(rows.tolist(), cols.tolist(), lines.tolist(), zero.tolist()):
        if z:
            continue  # a zero is met by |A_il| |B_lj| = 0 whatever the signs
        want = 0 if m_[i, j] > 0 else 1  # sa_i * sb_l = +1 -> parity 0
        ri, pi = _find(parent, parity, i)
        rl, pl = _find(parent, parity, m + l)
        if ri == rl:
            if pi ^ pl != want and conflict is None:
                conflict = (i, l)
        else:
            parent[ri] = rl
            parity[ri] = pi ^ pl ^ want
    found = [_find(parent, parity, u) for u in range(m + k)]
    return (np.array([f[0] for f in found]), np.array([f[1] for f in found]), conflict)


def _sign_parity(m_, ca, cb):
    rows, cols, lines, zero, both_on = _single_paths(m_, ca, cb)
    bad = zero & both_on
    if bad.any():
        i, j = rows[bad][0], cols[bad][0]
        return Obstruction("sign_parity", f"M[{i}, {j}] = 0 but its only path runs through two "
                           f"stuck-ON devices (line {lines[bad][0]}), so P[{i}, {j}] = +-Gmax^2")
    conflict = sign_ties(m_, ca, cb)[2]
    if conflict is not None:
        i, l = conflict
        return Obstruction("sign_parity", f"entries with a single path force sign(M_ij) = "
                           f"sa_i * sb_l; around row {i} and inner line {l} they demand both signs")
    return None


def _stuck_on_parity(m_, ca, cb):
    on_a, on_b = (ca == STUCK_ON).astype(np.int64), (cb == STUCK_ON).astype(np.int64)
    paths = _paths(ca, cb)
    on_paths = on_a @ on_b
    bad = (paths > 0) & (paths == on_paths) & (paths % 2 == 1) & _zero_mask(m_)
    if not bad.any():
        return None
    i, j = np.argwhere(bad)[0]
    return Obstruction("stuck_on_parity", f"M[{i}, {j}] = 0 but all {int(paths[i, j])} of its paths "
                       f"run through two stuck-ON devices: an odd sum of +-Gmax^2 cannot vanish")


def _one_sign_impossible(g: np.ndarray) -> bool:
    """True if no non-zero v = g @ c has all entries >= 0, with a checked Gordan certificate.

    The certificate is y > 0 with y @ g = 0: then y @ v = 0 for every v = g @ c, which a
    non-zero v >= 0 cannot meet. The LP maximises min(y) with sum(y) = 1; its y is then
    projected onto the orthogonal complement of g's columns (exact up to rounding) and
    must stay clearly positive, so the LP's own tolerances decide nothing.
    """
    rows, cols = g.shape
    if cols == 0:
        return False  # only v = 0: a dead line, which ``lines`` judges
    # variables y (rows), t: maximise t subject to y >= t, g^T y = 0, sum y = 1
    res = linprog(np.r_[np.zeros(rows), -1.0],
                  A_ub=np.c_[-np.eye(rows), np.ones(rows)], b_ub=np.zeros(rows),
                  A_eq=np.r_[np.c_[g.T, np.zeros(cols)], [np.r_[np.ones(rows), 0.0]]],
                  b_eq=np.r_[np.zeros(cols), 1.0],
                  bounds=[(0, None)] * rows + [(None, 1.0)], method="highs")
    if res.status != 0 or -res.fun <= 0:
        return False
    y = res.x[:rows]
    y = y - g @ np.linalg.lstsq(g, y, rcond=None)[0]
    return bool(y.min() > 1e-9 * y.max() and np.abs(y @ g).max() <= 1e-10 * np.abs(g).max() * np.abs(y).sum())


def one_sign_in_row_space(row_space: np.ndarray) -> bool:
    """Whether span(row_space's rows) holds a non-zero vector with all entries of one sign.

    A fit through exactly rank(M) inner lines needs one per line (see ``_row_cone``):
    rows of Re(DFT n) include the all-ones row, a Gaussian rank-16 row space in R^64
    almost never holds one.
    """
    return not _one_sign_impossible(np.asarray(row_space, dtype=np.float64).T)


def gordan_vector(basis: np.ndarray, signs: np.ndarray) -> np.ndarray | None:
    """Coordinates w (in ``basis``' rows) of y = basis^T w with signs_j y_j > 0 wherever
    signs_j != 0, or None: the LP maximises min_j signs_j y_j with sum_j signs_j y_j = 1.

    Floating point; ``exact.verify_gordan`` decides whether the w found is a proof.
    """
    need = np.flatnonzero(signs != 0)
    k = basis.shape[0]
    if k == 0 or need.size == 0:
        return None
    g = (basis[:, need] * signs[need]).T  # rows: signs_j * y_j as a function of w
    # variables w (free), t: maximise t subject to g w >= t, sum(g w) = 1
    res = linprog(np.r_[np.zeros(k), -1.0], A_ub=np.c_[-g, np.ones(need.size)], b_ub=np.zeros(need.size),
                  A_eq=np.r_[g.sum(axis=0), 0.0][None, :], b_eq=[1.0],
                  bounds=[(None, None)] * k + [(None, 1.0)], method="highs")
    if res.status != 0 or -res.fun <= 0:
        return None
    return res.x[:k]


def _row_cone(m_, ca, cb):
    usable = _usable(ca, cb)
    _, s, vt = np.linalg.svd(m_, full_matrices=False)
    rank = int((s > max(m_.shape) * np.finfo(float).eps * s[0]).sum())
    if int(usable.sum()) != rank or rank >= m_.shape[1]:
        return None  # more lines than rank(M) (MB's rows may leave row(M)) or row(M) = R^n
    row_space = vt[:rank].T  # n x r orthonormal
    ns = None
    for line in np.flatnonzero(usable):
        off = cb[line] == STUCK_OFF
        basis = null_space(row_space[off]) if off.any() else np.eye(rank)
        if not _one_sign_impossible(row_space[~off] @ basis):
            continue  # floating point finds a one-sign row: no proof to check
        if ns is None:
            ns = exact_null_space(m_)  # fraction-free reduction, once per matrix
            if ns.rank != rank:
                return None  # the stored matrix's exact rank is not its numerical one: no proof
        signs = np.where(off, 0, 1)
        w = gordan_vector(ns.basis_float, signs)
        if w is not None and verify_gordan(ns, w, signs):
            return Obstruction("row_cone", f"the {rank} usable inner lines equal rank(M), so every row of MB "
                               f"lies in the row space of M, and no non-zero vector of that space is of one "
                               f"sign and 0 at the {int(off.sum())} stuck-OFF devices of MB row {line} (an inner "
                               f"dimension k above rank(M) lifts this restriction; checked exactly: a vector "
                               f"y with M y = 0, y > 0 on that row's other columns)")
    return None


def exact_fit_obstruction(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray,
                          expensive: bool = True) -> Obstruction | None:
    """A proof that no exact fit of ``matrix`` exists on these crossbars, or None (unknown).

    Of several applicable arguments the one with the largest bound on 1 - cos is returned.
    ``expensive=False`` tries only the counting and parity arguments (no linear program,
    no exact arithmetic): the solver asks for those before its first attempt and for the
    rest only once an attempt has missed.
    """
    m_ = np.asarray(matrix, dtype=np.float64)
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    if m_.ndim != 2 or ca.shape[0] != m_.shape[0] or cb.shape != (ca.shape[1], m_.shape[1]):
        raise ValueError(f"shapes do not chain: M {m_.shape}, A {ca.shape}, B {cb.shape}")
    if not np.any(m_):
        return None
    found = [o for o in (_lines(m_, ca, cb), _support(m_, ca, cb), _sign_parity(m_, ca, cb),
                         _stuck_on_parity(m_, ca, cb)) if o is not None]
    if not found and expensive:  # a linear program per inner line: only when nothing cheaper applied
        found = [o for o in (_row_cone(m_, ca, cb),) if o is not None]
    return max(found, key=lambda o: o.omc_lower_bound) if found else None


def freedom_margin(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray) -> float:
    """Free device magnitudes per dimension an exact fit must match (a count, not a proof).

    Parameters: working devices on usable lines, less one diagonal scaling per usable inner line whose
    devices are all working or stuck-OFF (the gauge MA D, D^-1 MB). Products MA @ MB of
    q = min(usable lines, m, n) inner lines fill the rank-q set of dimension q (m + n) - q^2.
    Below 1 a generic matrix is out of reach (a fit of a special one may still exist);
    above 1 the count allows a fit but the sign and box constraints may still forbid it.
    On Re(DFT64), k = 64, every trial fits at 1.18 (40 % stuck-OFF) and none at 1.09 (45 %).

    The count is against rank-q products even when rank(M) = r < q. Without the sign
    constraints it overstates what r < k needs: the pairs with MA @ MB = M have dimension
    max over a of (a - r)(m - a) + a k + n (k - a) (a = rank MA), so the products impose
    only k (m + n) minus that, and free-signed fits of a 32 x 32 rank-8 target at k = 16,
    30 % stuck-OFF, reach 1e-25 at a count of 0.91 here (1.12 by that measure). With one
    sign per row the solver's fits follow this count instead. In the low-rank cases of
    benchmarks/factorize_frontier.py (rank n/4, n = 32 and 64, k from n/2 to 0.86 n,
    20-30 % stuck-OFF, 10 seeds each) fits to 1e-8 begin near a count of 1: 32 x 32 fits
    0/10 at 0.995, 9/10 at 1.020 and 10/10 from 1.043 on; 64 x 64 fits 0/10 at 0.963,
    8/10 at 0.984 (one attempt each: below 1 the solver makes one), 10/10 from 0.996 on.
    Every one of the 60 trials at 0.914-0.964 misses, among them k = n/2 at 30 %
    (0.91 / 0.92). That is a measured boundary, not a proof (nor a bound: 0.984 fits):
    free-signed fits of the same masks are exact at 30 %, and they, like the one-sign
    fits at 20 %, sit in a rank-deficient stratum (rank MA + rank MB = k + r: 12 + 12 at
    32 x 32; 24 + 24, once 23 + 25, at 64 x 64) where the fibre is large, so no argument
    from ranks or counts separates the two. Nor is a miss evidence:
    targets planted on the same masks (MA_0 @ MB_0 with random row signs, count 0.91) are
    fitted in ~250 iterations given their row signs and missed with the solver's own
    (benchmarks/low_rank_signs.py); below 1 the row signs (2^(m + k - 1) patterns) decide,
    and no search tried finds them (up to 20 data or random sign starts, per-row NNLS sign
    choice, alternating NNLS / HALS sign choice, continuous sign variables, a sign-penalty
    homotopy from the exact free-signed fit, variable projection with NNLS for MB, and
    penalising extra lines of an exact fit through k + 6 lines down to 0). The bare rank-r manifold dimension r (m + n - r)
    (margin 1.58 there) ignores the fibre and predicts nothing.
    """
    m_ = np.asarray(matrix)
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    m, n = m_.shape
    usable = _usable(ca, cb)
    no_on = ~((ca == STUCK_ON).any(axis=0) | (cb == STUCK_ON).any(axis=1))
    # devices on an unusable line move nothing
    free = int((ca[:, usable] == 0).sum() + (cb[usable] == 0).sum()) - int((usable & no_on).sum())
    q = min(int(usable.sum()), m, n)
    need = q * (m + n) - q * q
    return free / need if need > 0 else float("inf")


def k_for_margin(m: int, n: int, working_share: float, margin: float = 1.2,
                 k_max: int = 100_000) -> int | None:
    """Smallest k whose ``freedom_margin`` reaches ``margin`` when a share of devices works.

    Assumes every added inner line has the same share of working devices and no
    stuck-ON ones; None if no k up to ``k_max`` gets there. The margin grows with k.
    """
    if not (0.0 < working_share <= 1.0) or m < 1 or n < 1:
        return None
    for k in range(1, k_max + 1):
        q = min(k, m, n)
        if working_share * k * (m + n) - k >= margin * (q * (m + n) - q * q):
            return k
    return None


#: the free devices per needed one ``hil map`` names a k for. Gaussian rectangular targets
#: at 30 % stuck-OFF, 10 seeds, tol 1e-10 (benchmarks/factorize_frontier.py, ``rect_*``):
#: at 1.21 (48 x 64 and 64 x 48, k = 48) none fit; at 1.23-1.24 (k = 44 for 64 x 40 and
#: 40 x 64, k = 49 for the others) 10, 10, 8 and 9 of 10; at the k this margin names (45, 50)
#: all 40. 64 x 40 at k = 43 (1.21) missed in 3 of 3. Low-rank targets fit at 1.2.
HINT_MARGIN = 1.25


def k_suggestion(codes_a: np.ndarray, codes_b: np.ndarray, margin: float) -> tuple[int | None, float]:
    """A k above the one in use that reaches ``HINT_MARGIN`` at this share of working
    devices (``k_for_margin``), or None; and that share. None with stuck-ON devices (the
    count assumes none) or when the margin is already reached.
    """
    ca, cb = np.asarray(codes_a), np.asarray(codes_b)
    share = float(((ca == 0).sum() + (cb == 0).sum()) / max(ca.size + cb.size, 1))
    if margin >= HINT_MARGIN or (ca == STUCK_ON).any() or (cb == STUCK_ON).any():
        return None, share
    k_more = k_for_margin(ca.shape[0], cb.shape[1], share, HINT_MARGIN)
    return (k_more if k_more is not None and k_more > ca.shape[1] else None), share


def exactness_report(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray,
                     one_minus_cos: float, tol: float, obstruction=...) -> tuple[dict, str]:
    """What a user should know about a fit: reached tol, proved impossible, or unresolved.

    Returns a JSON-ready dict ({"exact_possible": True | False | None, "k_suggested": k or
    None, ...}) and one line for the terminal. A fit that misses tol always names the k
    that gives ``HINT_MARGIN`` free devices per needed one when that k is larger.
    ``obstruction``: ``exact_fit_obstruction``'s answer when the caller has it (the
    solver's ``extra["obstruction"]``), so it is not worked out twice.
    """
    margin = freedom_margin(matrix, codes_a, codes_b)
    if one_minus_cos <= tol:
        return ({"exact_possible": True, "freedom_margin": margin},
                f"fit reaches tol {tol:.0e}")
    k_more, share = k_suggestion(codes_a, codes_b, margin)
    k_one = None if k_more is None else k_for_margin(np.shape(codes_a)[0], np.shape(codes_b)[1], share, margin=1.0)
    reach = f"k >= {k_one} reach 1 and " if k_one is not None and np.shape(codes_a)[1] < k_one < k_more else ""
    more = ("" if k_more is None else f"; with this share of working devices ({share:.0%}) about "
            f"{reach}k >= {k_more} inner lines give {HINT_MARGIN} free devices per needed one")
    ob = exact_fit_obstruction(matrix, codes_a, codes_b) if obstruction is ... else obstruction
    if ob is not None:
        bound = f" (any fit has 1-cos >= {ob.omc_lower_bound:.3e})" if ob.omc_lower_bound > 0 else ""
        return ({"exact_possible": False, "freedom_margin": margin, "k_suggested": k_more,
                 "certificate": {"kind": ob.kind, "reason": ob.reason,
                                 "omc_lower_bound": float(ob.omc_lower_bound)}},
                f"EXACT FIT IMPOSSIBLE on these crossbars: {ob.reason}{bound}{more}")
    hint = ("below 1, so an exact fit is unlikely" if margin < 1 else
            f"below {HINT_MARGIN} (measured rectangular fits begin near 1.23), so an exact fit "
            f"may exist but is unlikely" if k_more is not None else "an exact fit may exist but was not found")
    return ({"exact_possible": None, "freedom_margin": margin, "k_suggested": k_more},
            f"WARNING: 1-cos {one_minus_cos:.3e} misses tol {tol:.0e}; no proof that an exact fit "
            f"is impossible; free devices / needed = {margin:.2f}, {hint}{more}")
