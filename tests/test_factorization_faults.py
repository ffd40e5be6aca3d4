"""Fault codes: the seed-003 generator and code validation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.factorization import STUCK_OFF, STUCK_ON, WORKING, random_fault_codes, validate_codes


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 40),
       r_off=st.floats(0, 1), r_on=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_generator_follows_seed003_counts(rows, cols, r_off, r_on, seed):
    if r_off + r_on > 1:
        r_on = 1 - r_off
    codes = random_fault_codes(rows, cols, r_off, r_on, np.random.default_rng(seed))
    n = rows * cols
    assert codes.shape == (rows, cols)
    assert set(np.unique(codes)) <= {WORKING, STUCK_OFF, STUCK_ON}
    assert (codes == STUCK_OFF).sum() == int(np.floor(r_off * n))
    assert (codes == STUCK_ON).sum() == min(int(np.floor(r_on * n)), n - int(np.floor(r_off * n)))


def test_generator_is_reproducible_and_uniform():
    a = random_fault_codes(64, 64, 0.2, 0.1, np.random.default_rng(7))
    b = random_fault_codes(64, 64, 0.2, 0.1, np.random.default_rng(7))
    assert np.array_equal(a, b)
    # over many draws every position is equally likely to be stuck-OFF
    hits = sum(random_fault_codes(8, 8, 0.25, 0.0, np.random.default_rng(s)) == STUCK_OFF
               for s in range(2000))
    assert np.all(np.abs(hits / 2000 - 0.25) < 0.06)


@pytest.mark.parametrize("r_off,r_on", [(-0.1, 0), (0.7, 0.5), (1.2, 0)])
def test_generator_rejects_bad_rates(r_off, r_on):
    with pytest.raises(ValueError):
        random_fault_codes(4, 4, r_off, r_on, np.random.default_rng(0))


def test_validate_codes():
    ok = np.array([[0, 1], [2, 0]])
    assert validate_codes(ok, (2, 2)).dtype == np.int8
    with pytest.raises(ValueError, match="shape"):
        validate_codes(ok, (2, 3))
    with pytest.raises(ValueError, match="outside"):
        validate_codes(np.array([[0, 3], [0, 0]]), (2, 2))
    with pytest.raises(ValueError, match="outside"):
        validate_codes(np.array([[0, np.nan], [0, 0]]), (2, 2))
