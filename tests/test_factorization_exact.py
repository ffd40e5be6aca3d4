"""Exact (integer) re-verification of certificates: null spaces of stored float64 matrices,
Gordan vectors accepted only when their signs hold exactly."""
import numpy as np

from hil.factorization.exact import exact_null_space, in_null_space, integer_matrix, verify_gordan
from hil.factorization.feasibility import exact_fit_obstruction, gordan_vector

OFF = 1


def test_integer_scaling_is_exact_and_the_null_space_is_exact():
    rng = np.random.default_rng(0)
    m_ = rng.standard_normal((5, 8)) * np.array([1e-6, 1, 3, 1e3, 1, 1, 2, 0.1])
    rows, shift = integer_matrix(m_)
    assert all(np.ldexp(float(v), -shift) == m_[i, j] for i, r in enumerate(rows) for j, v in enumerate(r))
    ns = exact_null_space(m_)
    assert ns.rank == 5 and len(ns.basis) == 3
    assert all(in_null_space(ns, list(y)) for y in ns.basis)
    assert np.allclose(m_ @ ns.basis_float.T, 0, atol=1e-9)


def test_exact_rank_sees_what_rounding_hides():
    m_ = np.array([[1.0, 1.0, -1.0, 0.5], [1.0, 2.0, -2.0, 0.25], [2.0, 3.0, -3.0, 0.75]])
    assert exact_null_space(m_).rank == 2
    m_[2, 3] += 2.0 ** -50  # rank 2 to float precision, exactly 3
    assert exact_null_space(m_).rank == 3


def test_gordan_vector_is_accepted_only_when_its_signs_hold_exactly():
    # row(M) = span{(1, 0, 0), (0, 1, -1)}; y = (0, 1, 1) is its null space: y > 0 on
    # columns 1, 2 proves no one-sign vector of row(M) vanishes at column 0
    m_ = np.array([[1.0, 1.0, -1.0], [1.0, 2.0, -2.0]])
    ns = exact_null_space(m_)
    signs = np.array([0, 1, 1])
    w = gordan_vector(ns.basis_float, signs)
    assert w is not None and verify_gordan(ns, w, signs)
    assert not verify_gordan(ns, -w, signs)           # wrong sign
    assert not verify_gordan(ns, w, np.array([1, 1, 1]))  # y_0 = 0 is not > 0
    # the null space holds no y > 0 on columns 0 and 1 (y is a multiple of (0, 1, 1))
    assert gordan_vector(ns.basis_float, np.array([1, 1, 0])) is None
    assert not in_null_space(ns, [0, 1, 2])


def test_row_cone_is_not_claimed_when_the_exact_rank_exceeds_the_numerical_one():
    m_ = np.array([[1.0, 1.0, -1.0, 0.5], [1.0, 2.0, -2.0, 0.25], [2.0, 3.0, -3.0, 0.75]])
    ca, cb = np.zeros((3, 2), np.int8), np.zeros((2, 4), np.int8)
    cb[0, 0] = OFF
    assert exact_fit_obstruction(m_, ca, cb).kind == "row_cone"  # rank 2 exactly
    m_[2, 3] += 2.0 ** -50
    ob = exact_fit_obstruction(m_, ca, cb)
    assert ob is None or ob.kind != "row_cone"
