"""Low-rank targets with one sign per row (issue 17): what is proved, measured and not known.

Small versions of benchmarks/low_rank_signs.py; the figures are in feasibility.freedom_margin.
"""
import numpy as np

from benchmarks import low_rank_signs
from benchmarks.factorize_frontier import make_matrix
from hil.factorization import SolverParams, factorize, random_fault_codes
from hil.factorization.solver import MAX_ATTEMPTS_FACTOR, _fresh_start_due


def test_free_signs_fit_exactly_where_one_sign_misses_and_planted_signs_are_recovered():
    # 24 x 24, rank 6, k = 12, 30 % stuck-OFF: the count is below 1 (0.91)
    rec = low_rank_signs.trial(24, 12, 0.3, 1, make_matrix)
    assert rec["freedom_margin"] < 1
    # without row signs the masks admit an exact fit, through rank-deficient MA and MB
    # (rank MA + rank MB = k + rank M): no rank or count argument can prove the miss
    assert rec["free"]["one_minus_cos"] <= 1e-12
    assert rec["free"]["rank_a"] < 12 and rec["free"]["rank_b"] < 12
    assert rec["free"]["rank_a"] + rec["free"]["rank_b"] == 12 + 6
    # a target with a one-sign fit on the same masks is fitted when its row signs are
    # given, and missed with the solver's own choice of signs: a miss proves nothing
    assert rec["planted"]["signs_given_one_minus_cos"] <= 1e-8
    assert rec["planted"]["factorize_one_minus_cos"] > 1e-4, \
        "the solver now finds planted one-sign fits below a count of 1: re-measure the low-rank frontier"
    assert rec["one_sign"]["one_minus_cos"] > 1e-4


def test_attempts_that_stall_early_leave_their_budget_to_fresh_starts():
    p = SolverParams(restarts=3, max_iter=1000)
    assert _fresh_start_due(3, 2900, p, probe=False)            # the restarts themselves
    assert _fresh_start_due(4, 3999, p, probe=False)            # budget (3 + 1) * 1000 not used up
    assert not _fresh_start_due(4, 4000, p, probe=False)
    assert not _fresh_start_due(MAX_ATTEMPTS_FACTOR * 4, 10, p, probe=False)  # however short
    assert not _fresh_start_due(1, 0, SolverParams(restarts=0), probe=False)
    assert not _fresh_start_due(1, 0, p, probe=True)
    # within the count (no early exit), tol 0 never met: every attempt ends early
    # (stationary or crawling), so there are more than restarts + 1 starts, within the
    # iteration budget of restarts + 1 full attempts
    rng = np.random.default_rng(1)
    ca, cb = random_fault_codes(8, 8, 0.3, 0, rng), random_fault_codes(8, 8, 0.3, 0, rng)
    params = SolverParams(tol=0.0, max_iter=1000, restarts=1, stall_iter=100, converging_iter=0, inner="all")
    res = factorize(make_matrix("re_dft", 8, 8, 0), ca, cb, rng, params=params)
    assert res.extra["freedom_margin"] > 1 and not res.extra["one_attempt"]
    assert 2 < res.attempts <= MAX_ATTEMPTS_FACTOR * 2
    assert res.iterations < 2 * 1000 + 1000  # the last start may begin just under the budget
