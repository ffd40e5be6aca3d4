"""Row-sign choice methods of benchmarks/sign_choice.py (issue 17): their pieces are exact,
their results are mappings, and a planted target's right signs are a needle.

Small versions; the figures are in benchmarks/results/frontier_i17a.json (``sign_choice``).
"""
import numpy as np
import pytest
from scipy.optimize import nnls

from benchmarks import sign_choice
from benchmarks.factorize_frontier import make_matrix
from hil.factorization import SolverParams
from hil.factorization.metrics import one_minus_cos


def _one_sign_pair(rng, m=10, k=6, n=9, rate=0.3):
    ca = (rng.random((m, k)) < rate).astype(np.int8)
    cb = (rng.random((k, n)) < rate).astype(np.int8)
    sa, sb = rng.choice([-1.0, 1.0], m), rng.choice([-1.0, 1.0], k)
    a = sa[:, None] * rng.uniform(0, 1, (m, k)) * (ca == 0)
    b = sb[:, None] * rng.uniform(0, 1, (k, n)) * (cb == 0)
    return ca, cb, sa, sb, a, b


def test_flip_gains_are_the_exact_optima_of_the_flipped_row():
    rng = np.random.default_rng(3)
    ca, cb, sa, sb, a, b = _one_sign_pair(rng)
    target = rng.standard_normal((10, 9))
    gain_a, rows_a, gain_b, rows_b = sign_choice.flip_gains(a, b, sa, sb, target, ca, cb)
    for line in range(6):
        # row l of MB with the other sign, fitted column by column by NNLS (brute force)
        rest = target - a @ b + np.outer(a[:, line], b[line])
        best_flip = sum(nnls((-sb[line] * a[:, line])[:, None], rest[:, j])[1] ** 2
                        for j in range(9) if cb[line, j] == 0) + sum(
            np.sum(rest[:, j] ** 2) for j in range(9) if cb[line, j] != 0)
        best_keep = sum(nnls((sb[line] * a[:, line])[:, None], rest[:, j])[1] ** 2
                        for j in range(9) if cb[line, j] == 0) + sum(
            np.sum(rest[:, j] ** 2) for j in range(9) if cb[line, j] != 0)
        assert gain_b[line] == pytest.approx(best_keep - best_flip, abs=1e-9)
        b2 = b.copy()
        b2[line] = -sb[line] * rows_b[line]
        assert np.sum((target - a @ b2) ** 2) == pytest.approx(best_flip, abs=1e-9)
        assert not rows_b[line][cb[line] != 0].any() and (rows_b[line] >= 0).all()
    for i in range(10):
        a2 = a.copy()
        a2[i] = -sa[i] * rows_a[i]
        free = ca[i] == 0
        _, r_flip = nnls(b[free].T, -sa[i] * target[i])
        assert np.sum((target[i] - a2[i] @ b) ** 2) == pytest.approx(r_flip ** 2, abs=1e-9)
        assert not rows_a[i][~free].any()


def test_align_signs_keeps_the_product_and_takes_each_rows_majority():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((12, 7)), rng.standard_normal((7, 11))
    a2, b2, sa, sb = sign_choice.align_signs(a, b, rng)
    np.testing.assert_allclose(a2 @ b2, a @ b, atol=1e-12)  # only the line-sign gauge moved
    assert np.array_equal(np.abs(a2), np.abs(a)) and np.array_equal(np.abs(b2), np.abs(b))
    mass_a, mass_b = (a2 * np.abs(a2)).sum(axis=1), (b2 * np.abs(b2)).sum(axis=1)
    assert np.all(sa * mass_a >= 0) and np.all(sb * mass_b >= 0)


def test_check_one_sign_rejects_mixed_rows_and_devices_on_stuck_off():
    rng = np.random.default_rng(7)
    ca, cb, _, _, a, b = _one_sign_pair(rng)
    assert sign_choice.check_one_sign(a, b, ca, cb)
    mixed = a.copy()
    row = int(np.argmax((ca == 0).sum(axis=1)))
    j = np.flatnonzero(ca[row] == 0)[0]
    mixed[row, j] = -mixed[row, j] if mixed[row, j] else 1.0
    mixed[row, np.flatnonzero(ca[row] == 0)[1]] = abs(mixed[row, j]) * -np.sign(mixed[row, j])
    assert not sign_choice.check_one_sign(mixed, b, ca, cb)
    stuck = b.copy()
    stuck[np.nonzero(cb)[0][0], np.nonzero(cb)[1][0]] = 0.5 * np.sign(b[np.nonzero(cb)[0][0]].sum() or 1)
    assert not sign_choice.check_one_sign(a, stuck, ca, cb)


def test_every_method_returns_a_mapping_no_worse_than_its_stall():
    m, k = 16, 8
    matrix = make_matrix("low_rank", m, m, 0)
    ca, cb, _ = sign_choice.masks(m, m, k, 0.3, 0)
    params = SolverParams(tol=1e-8, max_iter=3000)
    target = matrix / np.linalg.norm(matrix)
    for fn in (sign_choice.homotopy, sign_choice.flip_search, sign_choice.alternate, sign_choice.reopen):
        a, b, iterations, *info = fn(matrix, ca, cb, np.random.default_rng(1), params)
        assert sign_choice.check_one_sign(a, b, ca, cb), fn.__name__
        assert iterations > 0
        if fn is not sign_choice.homotopy:
            assert one_minus_cos(a @ b, target) <= info[-1] * (1 + 1e-12), fn.__name__
    guided, data, a, b = sign_choice.guided_starts(matrix, ca, cb, np.random.default_rng(2),
                                                   SolverParams(tol=1e-8, screen_iter=300), starts=2)
    assert len(guided) == len(data) == 2 and sign_choice.check_one_sign(a, b, ca, cb)


def test_planted_signs_are_a_needle():
    # a target with a known one-sign fit is fitted with its planted signs and missed by
    # orders of magnitude with a single one of its 36 signs flipped
    rec = sign_choice.planted_landscape(24, 0, flips=(0, 1), reps=2, basin=())
    assert max(rec["landscape"]["0"]) <= 1e-8 * (1 + 1e-9)
    assert min(rec["landscape"]["1"]) > 1e-5
