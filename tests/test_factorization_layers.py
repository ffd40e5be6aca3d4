"""Compensation layers, tiling and the Adam baseline."""
import numpy as np
import pytest

from hil.factorization import (AdamParams, CompensationParams, GaussianProgramming, RankError,
                               SolverParams, adam_factorize, compensate, factorize,
                               ideal_programming, map_tiled, random_fault_codes,
                               random_tile_codes, remap_changed)
from hil.factorization.tiling import tile_rng

G_MAX = 150e-6


def re_dft(n):
    j = np.arange(n)
    return np.cos(2 * np.pi * np.outer(j, j) / n)


def layer_codes(m, k, n, layers, rate, seed):
    rng = np.random.default_rng(seed)
    return ([random_fault_codes(m, k, rate, 0.0, rng) for _ in range(layers)],
            [random_fault_codes(k, n, rate, 0.0, rng) for _ in range(layers)])


def test_compensation_layers_reduce_error_under_programming_noise():
    m = re_dft(16)
    ca, cb = layer_codes(16, 16, 16, 3, 0.05, 1)
    params = SolverParams(tol=1e-10)
    errs = []
    for layers in (1, 2, 3):
        res = compensate(m, ca[:layers], cb[:layers], GaussianProgramming(sigma=5e-6),
                         np.random.default_rng(3), params=params)
        errs.append(res.one_minus_cos)
        # every layer keeps the first layer's row signs and its own stuck devices
        for i, (ga, gb) in enumerate(zip(res.layers_a, res.layers_b)):
            assert np.all(ga >= 0) and np.all(ga <= G_MAX) and np.all(gb <= G_MAX)
            assert np.all(ga[ca[i] == 1] == 0) and np.all(gb[cb[i] == 1] == 0)
        assert np.all(res.ma * res.sign_a[:, None] >= 0) and np.all(res.mb * res.sign_b[:, None] >= 0)
        assert res.gains == [0.25 ** i for i in range(layers)]
        assert res.one_minus_cos_per_layer[-1] == res.one_minus_cos
    assert errs[1] < 0.5 * errs[0] and errs[2] < 0.5 * errs[1]


def test_compensation_with_ideal_programming_is_the_plain_fit():
    m = re_dft(16)
    ca, cb = layer_codes(16, 16, 16, 1, 0.1, 2)
    res = compensate(m, ca, cb, ideal_programming, np.random.default_rng(0),
                     params=SolverParams(tol=1e-12))
    assert res.one_minus_cos == pytest.approx(res.first.one_minus_cos, abs=1e-15)
    assert res.one_minus_cos <= 1e-11


def test_compensation_rejects_mismatched_layers():
    m = re_dft(8)
    ca, cb = layer_codes(8, 8, 8, 2, 0.0, 0)
    with pytest.raises(ValueError, match="layer"):
        compensate(m, ca, cb[:1], ideal_programming, np.random.default_rng(0))


def test_tiling_whole_matrix_equals_untiled():
    m = re_dft(16)
    codes = random_tile_codes((16, 16), 16, (16, 16), 0.2, 0.0, np.random.default_rng(4))
    tiled = map_tiled(m, 16, (16, 16), codes, seed=11, workers=1)
    plain = factorize(m, *codes[(0, 0)], tile_rng(11, (0, 0)))
    assert list(tiled.tiles) == [(0, 0)]
    assert np.array_equal(tiled.tiles[(0, 0)].ma, plain.ma)
    assert np.array_equal(tiled.tiles[(0, 0)].mb, plain.mb)
    assert np.array_equal(tiled.represented(), plain.represented())


def test_tiling_maps_in_parallel_and_remaps_only_the_faulty_tile():
    m = re_dft(32)
    rng = np.random.default_rng(5)
    codes = random_tile_codes((32, 32), 16, (16, 16), 0.1, 0.0, rng)
    params = SolverParams(tol=1e-11)
    tiled = map_tiled(m, 16, (16, 16), codes, seed=3, params=params, workers=2)
    assert sorted(tiled.tiles) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert tiled.one_minus_cos(m) <= 1e-10
    new = {ix: (a.copy(), b.copy()) for ix, (a, b) in codes.items()}
    ca = new[(1, 0)][0]
    i, j = np.argwhere(ca == 0)[0]
    ca[i, j] = 1                      # one more stuck-OFF device on tile (1, 0)'s A array
    again = remap_changed(tiled, m, new, params=params, workers=1)
    assert again.remapped == [(1, 0)]
    for ix in [(0, 0), (0, 1), (1, 1)]:
        assert again.tiles[ix] is tiled.tiles[ix]
    assert again.tiles[(1, 0)].ma[i, j] == 0.0
    assert again.one_minus_cos(m) <= 1e-10
    assert remap_changed(again, m, new, params=params, workers=1).remapped == []


def test_tiling_rejects_missing_codes_and_rank():
    m = re_dft(16)
    codes = random_tile_codes((16, 16), 8, (8, 8), 0.0, 0.0, np.random.default_rng(0))
    del codes[(1, 1)]
    with pytest.raises(ValueError, match="no fault codes"):
        map_tiled(m, 8, (8, 8), codes, seed=0, workers=1)
    codes = random_tile_codes((16, 16), 2, (16, 16), 0.0, 0.0, np.random.default_rng(0))
    with pytest.raises(RankError):
        map_tiled(m, 2, (16, 16), codes, seed=0, workers=1)


def test_adam_baseline_respects_constraints_and_improves():
    m = re_dft(16)
    rng = np.random.default_rng(0)
    ca = random_fault_codes(16, 16, 0.2, 0.05, rng)
    cb = random_fault_codes(16, 16, 0.2, 0.05, rng)
    res = adam_factorize(m, ca, cb, rng, params=AdamParams(epochs=600), trace_every=100)
    trace = res.extra["trace"]
    assert trace[-1][2] < trace[0][2]
    assert np.all(res.ma * res.sign_a[:, None] >= 0) and np.all(res.mb * res.sign_b[:, None] >= 0)
    assert np.all(res.ma[ca == 1] == 0) and np.all(np.abs(res.ma[ca == 2]) == G_MAX)
    assert np.abs(res.ma).max() <= G_MAX and np.abs(res.mb).max() <= G_MAX
