"""Seed 003 Fig. 2 claims on Re(DFT64), every trial (3 seeds per claim)."""
import numpy as np
import pytest

from hil.factorization import (RankError, SolverParams, direct_map, factorize,
                               random_fault_codes)

G_MAX = 150e-6


def re_dft(n):
    j = np.arange(n)
    return np.cos(2 * np.pi * np.outer(j, j) / n)


M64 = re_dft(64)


def instance(k, rate, kind, seed):
    rng = np.random.default_rng([seed, k, int(rate * 100)])
    off, on = (rate, 0.0) if kind == "off" else (0.0, rate)
    return random_fault_codes(64, k, off, on, rng), random_fault_codes(k, 64, off, on, rng), rng


def check_structure(res, ca, cb):
    ma, mb = res.ma, res.mb
    # one sign per row, exactly (no differential pairs)
    assert np.all(ma * res.sign_a[:, None] >= 0) and np.all(mb * res.sign_b[:, None] >= 0)
    assert set(np.unique(res.sign_a)) <= {-1, 1} and set(np.unique(res.sign_b)) <= {-1, 1}
    # conductance window 0..Gmax, exactly
    assert np.abs(ma).max() <= G_MAX and np.abs(mb).max() <= G_MAX
    # stuck devices sit exactly at their stuck values
    assert np.all(ma[ca == 1] == 0.0) and np.all(mb[cb == 1] == 0.0)
    assert np.all(ma[ca == 2] == G_MAX * res.sign_a[np.nonzero(ca == 2)[0]])
    assert np.all(mb[cb == 2] == G_MAX * res.sign_b[np.nonzero(cb == 2)[0]])
    # the reported fidelity and scale describe the returned conductances
    p = ma @ mb
    cos = (p * M64).sum() / np.linalg.norm(p) / np.linalg.norm(M64)
    assert abs((1 - cos) - res.one_minus_cos) < 1e-13
    # ||P - alpha M|| / ||P|| is the sine of the angle, sqrt(2 (1 - cos)) to first order
    assert np.linalg.norm(p - res.scale * M64) <= np.sqrt(2.1 * res.one_minus_cos) * np.linalg.norm(p) + 1e-30


@pytest.mark.parametrize("seed", range(3))
def test_stuck_off_39_percent_k64_every_trial(seed):
    ca, cb, rng = instance(64, 0.39, "off", seed)
    res = factorize(M64, ca, cb, rng, params=SolverParams(tol=1e-11))
    assert res.one_minus_cos <= 1e-10
    check_structure(res, ca, cb)


@pytest.mark.parametrize("seed", range(3))
def test_stuck_on_18_percent_k64_with_box(seed):
    ca, cb, rng = instance(64, 0.18, "on", seed)
    res = factorize(M64, ca, cb, rng, params=SolverParams(tol=1e-7))
    assert res.one_minus_cos <= 1e-6
    assert (ca == 2).sum() == int(0.18 * 64 * 64)
    check_structure(res, ca, cb)


@pytest.mark.parametrize("seed", range(3))
def test_stuck_off_18_percent_k33_every_trial(seed):
    ca, cb, rng = instance(33, 0.18, "off", seed)
    res = factorize(M64, ca, cb, rng, params=SolverParams(tol=1e-11))
    assert res.one_minus_cos <= 1e-10
    check_structure(res, ca, cb)


def test_k_below_rank_is_rejected():
    ca, cb, rng = instance(32, 0.0, "off", 0)
    with pytest.raises(RankError, match="rank 33"):
        factorize(M64, ca, cb, rng)


@pytest.mark.parametrize("rate,lo,hi", [(0.05, 0.020, 0.030), (0.18, 0.085, 0.100),
                                        (0.39, 0.205, 0.235)])
def test_direct_mapping_reproduces_paper_curve(rate, lo, hi):
    vals = [direct_map(M64, random_fault_codes(128, 64, rate, 0.0, np.random.default_rng(s))
                       ).one_minus_cos for s in range(20)]
    assert lo <= np.mean(vals) <= hi


def test_direct_mapping_single_fault_and_structure():
    codes = np.zeros((128, 64), dtype=np.int8)
    res = direct_map(M64, codes)
    assert res.one_minus_cos < 1e-15 and np.abs(res.g).max() == G_MAX
    codes[0, 0] = 1  # one stuck-OFF device in the whole array already costs fidelity
    assert direct_map(M64, codes).one_minus_cos > 1e-4
    with pytest.raises(ValueError, match="shape"):
        direct_map(M64, np.zeros((64, 64)))
