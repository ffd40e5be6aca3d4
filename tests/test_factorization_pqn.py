"""The compiled projected L-BFGS (hil.factorization.pqn) and the rank-sized inner probe."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls

from hil.factorization import SolverParams, factorize, random_fault_codes
from hil.factorization.pqn import MODE_LS, MODE_SIN2, _objective, minimize_bilinear
from hil.factorization.solver import _Problem, _worth_probing, balance_lines, inner_subset, on_course


def re_dft(n):
    j = np.arange(n)
    return np.cos(2 * np.pi * np.outer(j, j) / n)


def random_problem(rng, m=7, k=5, n=6, gain=0.7):
    free_a, free_b = rng.random((m, k)) > 0.3, rng.random((k, n)) > 0.3
    sa, sb = rng.choice([-1.0, 1.0], m), rng.choice([-1.0, 1.0], k)
    a0 = np.where(free_a, 0.0, rng.random((m, k)))   # stuck / earlier-layer constants
    b0 = np.where(free_b, 0.0, rng.random((k, n)))
    return _Problem(a0, b0, free_a, free_b, sa, sb, gain, gain)


def evaluate(prob, x, target, mode):
    t_unit = target / np.linalg.norm(target)
    grad = np.empty_like(x)
    f, omc = _objective(x, prob.a0, prob.b0, prob.ia.astype(np.int64), prob.ib.astype(np.int64),
                        prob.ea, prob.eb, target, t_unit, mode, np.empty_like(prob.a0),
                        np.empty_like(prob.b0), grad)
    return f, omc, grad


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from([MODE_LS, MODE_SIN2]))
def test_gradient_matches_central_differences(seed, mode):
    rng = np.random.default_rng(seed)
    prob = random_problem(rng)
    target = rng.standard_normal((7, 6))
    x = rng.uniform(0.1, 1.0, prob.na + prob.ib.size)
    f, _, grad = evaluate(prob, x, target, mode)
    h = 1e-6
    fd = np.array([(evaluate(prob, x + h * e, target, mode)[0]
                    - evaluate(prob, x - h * e, target, mode)[0]) / (2 * h)
                   for e in np.eye(x.size)])
    assert np.allclose(grad, fd, rtol=1e-5, atol=1e-7 * max(1.0, abs(f)))


def test_objective_matches_numpy_and_keeps_digits_of_one_minus_cos():
    rng = np.random.default_rng(3)
    prob = random_problem(rng)
    x = rng.uniform(0.1, 1.0, prob.na + prob.ib.size)
    a, b = prob.matrices(x)
    p = a @ b
    # a target 1e-7 away in angle: 1 - cos ~ 5e-15, below what 1 - cos() computes directly
    noise = rng.standard_normal(p.shape)
    noise -= (noise * p).sum() / (p * p).sum() * p
    target = p + 1e-7 * np.linalg.norm(p) * noise / np.linalg.norm(noise)
    f, omc, _ = evaluate(prob, x, target, MODE_LS)
    assert f == pytest.approx(((p - target) ** 2).sum(), rel=1e-9)
    sin2 = 1e-14 / (1 + 1e-14)
    assert omc == pytest.approx(sin2 / (1 + np.sqrt(1 - sin2)), rel=1e-6)


def test_linear_case_equals_scipy_nnls():
    """B fixed (no free entries): the fit is one NNLS per row of A; bounds must be exact."""
    rng = np.random.default_rng(1)
    m, k, n = 6, 8, 12
    b = rng.standard_normal((k, n))
    target = rng.standard_normal((m, n))
    prob = _Problem(np.zeros((m, k)), b, np.ones((m, k), bool), np.zeros((k, n), bool),
                    np.ones(m), np.ones(k))
    x, _, _, _ = minimize_bilinear(np.full(m * k, 0.1), np.full(m * k, np.inf), prob.a0,
                                   prob.b0, prob.ia, prob.ib, prob.ea, prob.eb, target,
                                   MODE_LS, max_iter=5000, tol=0.0)
    expected = np.array([nnls(b.T, target[i])[0] for i in range(m)])
    assert np.all(x >= 0)
    assert (expected == 0).sum() >= 10          # the bound is active somewhere
    assert np.allclose(x.reshape(m, k), expected, atol=1e-6)


def test_box_is_respected_and_exact_fit_found():
    rng = np.random.default_rng(2)
    m, k, n = 10, 10, 10
    free_a, free_b = rng.random((m, k)) > 0.2, rng.random((k, n)) > 0.2
    a_true = np.where(free_a, rng.uniform(0, 1, (m, k)), 0)
    b_true = np.where(free_b, rng.uniform(0, 1, (k, n)), 0)
    target = a_true @ b_true
    prob = _Problem(np.zeros((m, k)), np.zeros((k, n)), free_a, free_b, np.ones(m), np.ones(k))
    x0 = rng.uniform(0, 1, prob.na + prob.ib.size)
    x, it, _, trace = minimize_bilinear(x0, np.ones_like(x0), prob.a0, prob.b0, prob.ia, prob.ib,
                                        prob.ea, prob.eb, target, MODE_LS, 20000, 1e-14)
    assert np.all((x >= 0) & (x <= 1))
    a, b = prob.matrices(x)
    assert np.linalg.norm(a @ b - target) <= 1e-5 * np.linalg.norm(target)
    assert trace.shape == (it, 2) and np.all(np.diff(trace[:, 0]) >= 0)


def test_inner_probe_uses_rank_lines_at_low_fault_rate():
    """At 5 % stuck-OFF the fit goes through rank(M) = 33 inner lines, the rest at 0 S."""
    rng = np.random.default_rng(5)
    m64 = re_dft(64)
    ca = random_fault_codes(64, 64, 0.05, 0, rng)
    cb = random_fault_codes(64, 64, 0.05, 0, rng)
    res = factorize(m64, ca, cb, rng, params=SolverParams(tol=1e-10))
    assert res.one_minus_cos <= 1e-10
    used = np.flatnonzero((np.abs(res.ma).sum(0) > 0) & (np.abs(res.mb).sum(1) > 0))
    assert used.size == 33
    assert np.array_equal(used, inner_subset(ca, cb, 33))
    full = factorize(m64, ca, cb, rng, params=SolverParams(tol=1e-10, inner="all"))
    assert full.one_minus_cos <= 1e-10
    assert ((np.abs(full.ma).sum(0) > 0) & (np.abs(full.mb).sum(1) > 0)).sum() > 33


def test_inner_probe_gives_way_when_rank_lines_cannot_fit():
    """At 39 % the rank-sized fit is infeasible: the freedom count skips the probe, and a
    probe forced anyway (margin 0) fails and hands over to the full k, which meets 1e-10."""
    rng = np.random.default_rng(6)
    m64 = re_dft(64)
    ca = random_fault_codes(64, 64, 0.39, 0, rng)
    cb = random_fault_codes(64, 64, 0.39, 0, rng)
    keep = inner_subset(ca, cb, 33)
    assert not _worth_probing(ca[:, keep], cb[keep, :], 33, SolverParams().probe_dof_margin)
    res = factorize(m64, ca, cb, rng, params=SolverParams(tol=1e-10, probe_dof_margin=0.0))
    assert res.one_minus_cos <= 1e-10
    assert res.attempts >= 2        # the probe, then at least one full attempt
    assert ((np.abs(res.ma).sum(0) > 0) & (np.abs(res.mb).sum(1) > 0)).sum() > 33


def test_unknown_inner_mode_is_refused():
    with pytest.raises(ValueError, match="inner"):
        SolverParams(inner="some")


def test_stationary_start_stops_at_once_instead_of_spending_the_budget():
    """Every device of A stuck-OFF: P = 0 whatever B is, so the solver must stop, not loop."""
    m_ = np.random.default_rng(0).standard_normal((6, 6))
    res = factorize(m_, np.ones((6, 6), int), np.zeros((6, 6), int), np.random.default_rng(0),
                    params=SolverParams(max_iter=20000, restarts=1))
    assert res.one_minus_cos == 1.0
    assert res.iterations < 100
    # the trace holds completed steps only: no unfilled rows (time 0, 1 - cos 0)
    trace = np.array(res.extra["trace"]).reshape(-1, 2)
    assert len(trace) == res.iterations
    assert np.all(trace[:, 0] >= 0) and np.all(trace[:, 1] == 1.0)


@pytest.mark.parametrize("k", [6, 7])
def test_every_device_stuck_on_is_reported_not_crashed(k):
    """No free device at all (and, for even k, P = 0 with balanced bridge signs)."""
    m_ = np.random.default_rng(1).standard_normal((6, 6))
    res = factorize(m_, np.full((6, k), 2), np.full((k, 6), 2), np.random.default_rng(0))
    assert np.all(np.abs(res.ma) == 150e-6) and np.all(np.abs(res.mb) == 150e-6)
    p = res.ma @ res.mb
    expected = 1.0 if not p.any() else 1 - (p * m_).sum() / np.linalg.norm(p) / np.linalg.norm(m_)
    assert res.one_minus_cos == pytest.approx(expected, abs=1e-12)


def test_on_course_extrapolates_the_measured_rate():
    # one decade per 500 iterations: 1e-8 -> 1e-10 takes 1000 more
    assert on_course([1e-6, 1e-7, 1e-8], 1000, 1e-10, left=1000)
    assert not on_course([1e-6, 1e-7, 1e-8], 1000, 1e-10, left=990)
    assert not on_course([1e-6, 1e-6, 1e-6], 1000, 1e-10, left=10**9)   # flat
    assert not on_course([1e-7, 1e-6], 1000, 1e-10, left=10**9)          # too short, rising


def _on_box_16(converging_iter):
    """Re(DFT16), k = 16, 30 % stuck-ON: a fit that still converges after 500 iterations."""
    rng = np.random.default_rng(2)
    ca = random_fault_codes(16, 16, 0.0, 0.3, rng)
    cb = random_fault_codes(16, 16, 0.0, 0.3, rng)
    return factorize(re_dft(16), ca, cb, np.random.default_rng(2),
                     params=SolverParams(tol=1e-10, max_iter=500, restarts=0, stall_iter=200,
                                         converging_iter=converging_iter))


def test_converging_attempt_goes_on_past_max_iter_and_reaches_tol():
    cut = _on_box_16(converging_iter=0)
    assert cut.iterations == 500 and cut.one_minus_cos > 1e-8
    extended = _on_box_16(converging_iter=200000)
    assert extended.one_minus_cos <= 1e-10
    assert 500 < extended.iterations < 200000
    assert extended.attempts == 1


def test_crawling_attempt_is_not_extended():
    """Re(DFT16) at 50 % stuck-OFF (fewer free devices than the products' dimension)
    crawls at 1e-1: the attempt ends by max_iter, the extension is not used."""
    rng = np.random.default_rng(0)
    ca = random_fault_codes(16, 16, 0.5, 0.0, rng)
    cb = random_fault_codes(16, 16, 0.5, 0.0, rng)
    res = factorize(re_dft(16), ca, cb, np.random.default_rng(0),
                    params=SolverParams(tol=1e-10, max_iter=500, stall_iter=200, inner="all"))
    assert res.one_minus_cos > 1e-3
    assert res.iterations <= 500


def test_negative_converging_iter_is_refused():
    with pytest.raises(ValueError, match="converging_iter"):
        SolverParams(converging_iter=-1)


def test_balance_lines_keeps_the_product_and_equalises_free_lines():
    rng = np.random.default_rng(4)
    m, k, n = 6, 5, 7
    free_a, free_b = rng.random((m, k)) > 0.3, rng.random((k, n)) > 0.3
    a0 = np.zeros((m, k))
    a0[0, 2] = 1.0                      # line 2 carries a constant (stuck-ON) entry
    prob = _Problem(a0, np.zeros((k, n)), free_a & (a0 == 0), free_b,
                    rng.choice([-1.0, 1.0], m), rng.choice([-1.0, 1.0], k))
    x = rng.uniform(0.1, 1.0, prob.na + prob.ib.size)
    x[:prob.na] *= 50.0                 # A's halves far larger than B's
    up = np.full(x.size, np.inf)
    y = balance_lines(prob, x, up)
    a, b = prob.matrices(x)
    a2, b2 = prob.matrices(y)
    assert np.allclose(a2 @ b2, a @ b, rtol=1e-12, atol=0)
    free_lines = [l for l in range(k) if l != 2 and a[:, l].any() and b[l].any()]
    assert np.allclose(np.linalg.norm(a2[:, free_lines], axis=0),
                       np.linalg.norm(b2[free_lines], axis=1))
    assert np.array_equal(a2[:, 2], a[:, 2]) and np.array_equal(b2[2], b[2])
    # with the conductance box the scale is real: nothing moves
    assert np.array_equal(balance_lines(prob, x, np.ones_like(x)), x)


def test_box_objective_is_one_minus_cos_times_abs_cos_so_its_minimum_points_along_the_target():
    """sin^2 alone is even in P: a fit with stuck-ON devices could settle on -M. The box
    objective is 1 - cos |cos| (sin^2 where cos >= 0), so M and -M give values summing to 2."""
    rng = np.random.default_rng(4)
    prob = random_problem(rng)
    target = rng.standard_normal((7, 6))
    for _ in range(5):
        x = rng.uniform(0.1, 1.0, prob.na + prob.ib.size)
        f_pos, omc, _ = evaluate(prob, x, target, MODE_SIN2)
        f_neg, _, _ = evaluate(prob, x, -target, MODE_SIN2)
        cos = 1.0 - omc
        assert f_pos == pytest.approx(1.0 - cos * abs(cos), abs=1e-12)
        assert f_pos + f_neg == pytest.approx(2.0, abs=1e-12)
