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


def test_a_tiled_mapping_gives_each_tile_hil_maps_verdict():
    m = np.random.default_rng(3).standard_normal((16, 8))  # 8 x 8 blocks of rank 8 = k
    dead, clean = np.zeros((8, 8), np.int8), np.zeros((8, 8), np.int8)
    dead[:, 0] = 1  # tile (0, 0): inner line 0 has no device that conducts
    codes = {(0, 0): (dead, clean), (1, 0): (clean, clean)}
    tiled = map_tiled(m, 8, (8, 8), codes, seed=0, params=SolverParams(tol=1e-10), workers=1, layout="contiguous")
    whole, lines = tiled.exactness(m, 1e-10)
    assert whole["exact_possible"] is False
    assert (whole["exact_tiles"], whole["impossible_tiles"], whole["unknown_tiles"]) == (["1_0"], ["0_0"], [])
    assert whole["tiles"]["0_0"]["certificate"]["kind"] == "lines" and whole["tiles"]["1_0"]["exact_possible"]
    assert "1 of 2 tiles fit exactly, 1 proved impossible" in lines[0] and "tile 0_0: EXACT FIT IMPOSSIBLE" in lines[1]
    # a fit cut short (5 iterations) on a tile with no proof is unresolved, and says so
    worn = {**codes, (1, 0): (clean, clean.copy())}
    worn[(1, 0)][1][3, 3] = 1
    short = SolverParams(tol=1e-10, max_iter=5, restarts=0, stall_iter=0, converging_iter=0)
    again = remap_changed(tiled, m, worn, params=short, workers=1)
    whole, lines = again.exactness(m, 1e-10)
    assert whole["unknown_tiles"] == ["1_0"] and whole["impossible_tiles"] == ["0_0"]
    assert whole["exact_possible"] is False  # one proved tile still decides the whole
    assert whole["tiles"]["1_0"]["one_minus_cos"] > 1e-10 and "k_suggested" in whole["tiles"]["1_0"]
    assert any(line.startswith("  tile 1_0: WARNING") for line in lines)
    fine = {ix: (clean, clean) for ix in codes}
    whole = remap_changed(again, m, fine, params=short, workers=1).exactness(m, 1e-10)[0]
    assert whole["exact_possible"] is None and whole["impossible_tiles"] == []  # unresolved, not proved


def test_an_all_zero_tile_is_not_mapped_and_the_rest_still_fits():
    # block-diagonal: the off-diagonal 8 x 8 tiles compute nothing, so they get no arrays' work
    rng = np.random.default_rng(4)
    m = np.zeros((16, 16))
    m[:8, :8], m[8:, 8:] = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    codes = random_tile_codes((16, 16), 8, (8, 8), 0.05, 0.0, np.random.default_rng(5))
    params = SolverParams(tol=1e-10)
    tiled = map_tiled(m, 8, (8, 8), codes, seed=0, params=params, workers=1, layout="contiguous")
    assert sorted(tiled.tiles) == [(0, 0), (1, 1)]
    assert tiled.one_minus_cos(m) <= 1e-10
    assert np.all(tiled.represented()[:8, 8:] == 0) and np.all(tiled.represented()[8:, :8] == 0)
    whole, _ = tiled.exactness(m, 1e-10)
    assert whole["exact_possible"] is True and whole["exact_tiles"] == ["0_0", "1_1"]
    # a new fault on a zero tile's arrays re-maps nothing
    new = {ix: (a.copy(), b.copy()) for ix, (a, b) in codes.items()}
    new[(0, 1)][0][0, 0] = 1
    assert remap_changed(tiled, m, new, params=params, workers=1).remapped == []
    with pytest.raises(ValueError, match="all zero"):
        map_tiled(np.zeros((16, 16)), 8, (8, 8), codes, seed=0, params=params, workers=1)
