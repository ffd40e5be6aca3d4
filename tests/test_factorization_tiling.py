"""Tile layouts: which lines of M share an array pair (contiguous blocks or strided groups)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.factorization import (SolverParams, choose_layout, map_tiled, random_tile_codes, remap_changed,
                               tile_edges, tile_groups)


def re_dft(n):
    j = np.arange(n)
    return np.cos(2 * np.pi * np.outer(j, j) / n)


@given(size=st.integers(1, 300), tile=st.integers(1, 80), layout=st.sampled_from(["contiguous", "strided"]))
def test_groups_partition_the_lines_with_the_sizes_of_the_edges(size, tile, layout):
    groups = tile_groups(size, tile, layout)
    assert [g.size for g in groups] == list(np.diff(tile_edges(size, tile)))  # one set of fault codes fits both
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(size))
    assert all(np.all(np.diff(g) > 0) for g in groups)


def test_strided_groups_take_every_pth_line_and_a_bad_layout_is_refused():
    assert [g.tolist() for g in tile_groups(8, 4, "strided")] == [[0, 2, 4, 6], [1, 3, 5, 7]]
    with pytest.raises(ValueError, match="layout"):
        tile_groups(8, 4, "diagonal")


def test_dft_tiles_are_strided_and_dense_random_ones_stay_contiguous():
    # contiguous 64 x 64 blocks of Re(DFT128) are full rank; strided ones need 17 directions
    assert choose_layout(re_dft(128), (64, 64), 1e-10) == ("strided", "strided")
    dense = np.random.default_rng(0).standard_normal((128, 96))
    assert choose_layout(dense, (64, 64), 1e-10) == ("contiguous", "contiguous")


def test_a_strided_tiling_assembles_each_tile_where_its_lines_are():
    m = re_dft(32)
    codes = random_tile_codes((32, 32), 16, (16, 16), 0.1, 0.0, np.random.default_rng(2))
    params = SolverParams(tol=1e-11)
    tiled = map_tiled(m, 16, (16, 16), codes, seed=1, params=params, workers=1)
    assert tiled.layout == ("strided", "strided")
    assert tiled.one_minus_cos(m) <= 1e-10
    for ix, f in tiled.tiles.items():
        block = tiled.block(m, ix)
        assert np.allclose(f.represented(), block, atol=1e-4 * np.abs(block).max())
        assert np.all(f.ma[codes[ix][0] == 1] == 0) and np.all(f.mb[codes[ix][1] == 1] == 0)
    # a new fault re-maps only its tile, in the same layout
    new = {ix: (a.copy(), b.copy()) for ix, (a, b) in codes.items()}
    cb = new[(0, 1)][1]
    cb[tuple(np.argwhere(cb == 0)[0])] = 1
    again = remap_changed(tiled, m, new, params=params, workers=1)
    assert again.remapped == [(0, 1)] and again.layout == tiled.layout
    assert again.one_minus_cos(m) <= 1e-10
