"""The blocked mapping's fault codes: one seed-003 draw per array, assembled over MA and MB."""
import numpy as np

from hil.factorization import SolverParams, factorize, random_blocked_codes


def test_each_array_of_the_blocked_layout_draws_its_own_exact_count():
    ca, cb = random_blocked_codes(16, 24, 12, (8, 8), 0.25, 0.0, np.random.default_rng(0))
    assert ca.shape == (16, 24) and cb.shape == (24, 12)
    blocks = [ca[i:i + 8, j:j + 8] for i in (0, 8) for j in (0, 8, 16)]
    assert all((b == 1).sum() == 16 for b in blocks)  # floor(0.25 * 64) per array
    # 12 columns on 8-wide arrays: two near-equal blocks of 6, each with floor(0.25 * 48)
    assert [(cb[i:i + 8, j:j + 6] == 1).sum() for i in (0, 8, 16) for j in (0, 6)] == [12] * 6
    assert not np.array_equal(blocks[0], blocks[1])


def test_a_blocked_fit_spans_the_arrays_jointly():
    j = np.arange(16)
    m_ = np.cos(2 * np.pi * np.outer(j, j) / 16)  # rank 9 over four 8 x 8 arrays per factor
    rng = np.random.default_rng(1)
    ca, cb = random_blocked_codes(16, 16, 16, (8, 8), 0.2, 0.0, rng)
    res = factorize(m_, ca, cb, rng, params=SolverParams(tol=1e-10))
    assert res.one_minus_cos <= 1e-10
    assert np.all(res.ma[ca == 1] == 0) and np.all(res.mb[cb == 1] == 0)
