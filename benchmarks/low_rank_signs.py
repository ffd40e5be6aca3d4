"""Why the low-rank aim (rank n/4, k = n/2, 30 % stuck-OFF) is neither met nor disproved.

Three fits on the same fault masks (``factorize_frontier.make_matrix`` targets and masks):

* ``free``: every device any real value (no row signs): the pqn kernel with each working
  device split into a positive and a negative magnitude. Exact fits here show that rank,
  support and counting arguments cannot prove the one-sign misses; the ranks of MA and MB
  at the fit show which stratum the fit uses (``rank_a``, ``rank_b``: singular values
  above 1e-6 of the largest).
* ``one_sign``: ``factorize`` itself (one sign per row of MA and MB).
* ``planted``: a target that certainly has an exact one-sign fit on these masks,
  M_p = MA_0 @ MB_0 with random row signs and uniform magnitudes, fitted (a) by
  ``factorize`` and (b) with the planted row signs given (``fit_with_signs``). (b) reaching
  tol where (a) does not shows that a miss is no evidence against a fit: the search over
  row signs is what fails.

    nice -n 10 python3 -m benchmarks.factorize_frontier --low-rank-signs --out benchmarks/results/frontier_i17c.json

stores the result as ``low_rank_signs`` in the results file (merged like ``chip_128``).
"""
from __future__ import annotations

import time

import numpy as np

from hil.factorization import SolverParams, factorize, random_fault_codes
from hil.factorization.feasibility import freedom_margin
from hil.factorization.metrics import one_minus_cos
from hil.factorization.pqn import MODE_LS, minimize_bilinear
from hil.factorization.solver import _Problem, fit_until_stall

TOL = 1e-8


def free_signed_fit(matrix, codes_a, codes_b, rng, max_iter=30000):
    """Least-squares fit with no sign constraint: returns (A, B, iterations), A @ B ~ M / ||M||."""
    m, k = codes_a.shape
    n = codes_b.shape[1]
    ia, ib = np.flatnonzero(codes_a.ravel() == 0), np.flatnonzero(codes_b.ravel() == 0)
    # each working device twice, with gains +1 and -1: the difference is any real value
    ea = np.r_[np.ones(ia.size), -np.ones(ia.size)]
    eb = np.r_[np.ones(ib.size), -np.ones(ib.size)]
    x0 = rng.uniform(0.0, 0.3, 2 * (ia.size + ib.size))
    x, it, _, _ = minimize_bilinear(x0, np.full(x0.size, np.inf), np.zeros((m, k)), np.zeros((k, n)),
                                    np.r_[ia, ia], np.r_[ib, ib], ea, eb, matrix / np.linalg.norm(matrix),
                                    MODE_LS, max_iter, 1e-14, 8, record=False)
    a, b = np.zeros((m, k)), np.zeros((k, n))
    a.ravel()[ia] = x[:ia.size] - x[ia.size:2 * ia.size]
    b.ravel()[ib] = x[2 * ia.size:2 * ia.size + ib.size] - x[2 * ia.size + ib.size:]
    return a, b, it


def fit_with_signs(matrix, codes_a, codes_b, sign_a, sign_b, rng, params=SolverParams(tol=TOL)):
    """The solver's attempt (projected L-BFGS on the magnitudes) with the row signs given."""
    prob = _Problem(np.zeros(codes_a.shape), np.zeros(codes_b.shape), codes_a == 0, codes_b == 0,
                    sign_a.astype(float), sign_b.astype(float))
    target = matrix / np.linalg.norm(matrix)
    x0 = rng.uniform(0.5, 1.0, prob.na + prob.ib.size)
    a, b = prob.matrices(x0)
    x0 *= np.sqrt(1.0 / np.linalg.norm(a @ b))
    x, it = fit_until_stall(prob, x0, np.full(x0.size, np.inf), target, "ls", params.max_iter, params)
    a, b = prob.matrices(x)
    return one_minus_cos(a @ b, target), it


def _rank(x, rtol=1e-6):
    s = np.linalg.svd(x, compute_uv=False)
    return int((s > rtol * s[0]).sum())


def trial(m: int, k: int, rate: float, seed: int, make_matrix) -> dict:
    matrix = make_matrix("low_rank", m, m, seed)
    rng = np.random.default_rng([seed, int(round(rate * 1000)), k, m, m, 0])  # the frontier's masks
    ca, cb = random_fault_codes(m, k, rate, 0.0, rng), random_fault_codes(k, m, rate, 0.0, rng)
    a, b, it = free_signed_fit(matrix, ca, cb, rng)
    one = factorize(matrix, ca, cb, rng, params=SolverParams(tol=TOL))
    sa, sb = rng.choice([-1.0, 1.0], m), rng.choice([-1.0, 1.0], k)
    planted = ((sa[:, None] * rng.uniform(0, 1, (m, k)) * (ca == 0))
               @ (sb[:, None] * rng.uniform(0, 1, (k, m)) * (cb == 0)))
    found = factorize(planted, ca, cb, rng, params=SolverParams(tol=TOL))
    given, given_it = fit_with_signs(planted, ca, cb, sa, sb, rng)
    return {"m": m, "k": k, "rank": m // 4, "rate": rate, "seed": seed,
            "freedom_margin": freedom_margin(matrix, ca, cb),
            "free": {"one_minus_cos": one_minus_cos(a @ b, matrix), "iterations": it,
                     "rank_a": _rank(a), "rank_b": _rank(b)},
            "one_sign": {"one_minus_cos": one.one_minus_cos, "attempts": one.attempts},
            "planted": {"freedom_margin": freedom_margin(planted, ca, cb),
                        "factorize_one_minus_cos": found.one_minus_cos, "factorize_attempts": found.attempts,
                        "signs_given_one_minus_cos": given, "signs_given_iterations": given_it}}


def run(make_matrix, seeds: int = 3, sizes=((32, 16), (64, 32)), rate: float = 0.3) -> dict:
    """The three fits per size and seed, printed and returned (``finished`` for merging)."""
    out = []
    for m, k in sizes:
        for seed in range(seeds):
            rec = trial(m, k, rate, seed, make_matrix)
            out.append(rec)
            print(f"low-rank signs {m}x{m} k={k} {rate:.0%} seed {seed}: free 1-cos "
                  f"{rec['free']['one_minus_cos']:.1e} (rank MA {rec['free']['rank_a']}, MB {rec['free']['rank_b']}); "
                  f"one sign {rec['one_sign']['one_minus_cos']:.1e}; planted: factorize "
                  f"{rec['planted']['factorize_one_minus_cos']:.1e}, signs given "
                  f"{rec['planted']['signs_given_one_minus_cos']:.1e} in {rec['planted']['signs_given_iterations']} it",
                  flush=True)
    return {"finished": time.time(), "tol": TOL, "trials": out}
