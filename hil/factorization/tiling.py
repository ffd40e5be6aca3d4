"""Tiling: a matrix larger than one crossbar pair is split into tiles mapped independently.

Tile (i, j) covers rows ``row_edges[i]:row_edges[i+1]`` and columns
``col_edges[j]:col_edges[j+1]`` of M and is mapped onto its own A (rows x k) and B
(k x cols) crossbars. Tiles are solved in parallel (one process per tile), and a new fault
re-maps only the tile whose crossbars it hits. Each tile keeps its own scale alpha_ij;
the periphery divides each tile's output by it, so the assembled matrix is in M's units.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .metrics import one_minus_cos
from .params import DeviceWindow, SolverParams
from .solver import Factorization, factorize

TileIndex = tuple[int, int]


def tile_edges(size: int, tile: int) -> np.ndarray:
    """Edges splitting ``size`` rows (or columns) into near-equal parts of at most ``tile``."""
    if tile < 1:
        raise ValueError(f"tile size must be >= 1, got {tile}")
    parts = -(-size // tile)
    return np.linspace(0, size, parts + 1).round().astype(int)


@dataclass
class TiledFactorization:
    """Per-tile factorizations of one matrix; ``remapped`` lists the tiles solved last call."""

    row_edges: np.ndarray
    col_edges: np.ndarray
    k: int
    tiles: dict[TileIndex, Factorization]
    codes: dict[TileIndex, tuple[np.ndarray, np.ndarray]]
    seed: int
    remapped: list[TileIndex] = field(default_factory=list)

    def represented(self) -> np.ndarray:
        """The assembled matrix the tiles compute, each tile divided by its own scale."""
        out = np.zeros((self.row_edges[-1], self.col_edges[-1]))
        for (i, j), f in self.tiles.items():
            out[self.row_edges[i]:self.row_edges[i + 1],
                self.col_edges[j]:self.col_edges[j + 1]] = f.represented()
        return out

    def one_minus_cos(self, matrix: np.ndarray) -> float:
        return one_minus_cos(self.represented(), matrix)


def tile_rng(seed: int, index: TileIndex) -> np.random.Generator:
    """The generator tile ``index`` is solved with: reproducible and independent per tile."""
    return np.random.default_rng([seed, index[0], index[1]])


def _solve_tile(args):
    block, ca, cb, seed, index, window, params = args
    return index, factorize(block, ca, cb, tile_rng(seed, index), window, params)


def _blocks(matrix, row_edges, col_edges):
    return {(i, j): matrix[row_edges[i]:row_edges[i + 1], col_edges[j]:col_edges[j + 1]]
            for i in range(len(row_edges) - 1) for j in range(len(col_edges) - 1)}


def _run(jobs, workers):
    if workers == 1 or len(jobs) == 1:
        return dict(_solve_tile(j) for j in jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(_solve_tile, jobs))


def map_tiled(matrix: np.ndarray, k: int, tile_shape: tuple[int, int],
              codes: Mapping[TileIndex, tuple[np.ndarray, np.ndarray]], seed: int,
              window: DeviceWindow = DeviceWindow(), params: SolverParams = SolverParams(),
              workers: int | None = None) -> TiledFactorization:
    """Map ``matrix`` tile by tile, in parallel over ``workers`` processes (None: CPU count).

    ``codes[(i, j)]`` = (codes_a, codes_b) of tile (i, j)'s crossbars, shapes
    (tile rows x k) and (k x tile cols).
    """
    m_ = np.asarray(matrix, dtype=np.float64)
    re, ce = tile_edges(m_.shape[0], tile_shape[0]), tile_edges(m_.shape[1], tile_shape[1])
    blocks = _blocks(m_, re, ce)
    missing = set(blocks) - set(codes)
    if missing:
        raise ValueError(f"no fault codes for tiles {sorted(missing)}")
    jobs = [(blk, codes[ix][0], codes[ix][1], seed, ix, window, params) for ix, blk in blocks.items()]
    tiles = _run(jobs, workers)
    return TiledFactorization(re, ce, k, tiles, {ix: (np.asarray(codes[ix][0]).copy(),
                                                      np.asarray(codes[ix][1]).copy())
                                                 for ix in blocks}, seed, sorted(blocks))


def remap_changed(tiled: TiledFactorization, matrix: np.ndarray,
                  codes: Mapping[TileIndex, tuple[np.ndarray, np.ndarray]],
                  window: DeviceWindow = DeviceWindow(), params: SolverParams = SolverParams(),
                  workers: int | None = None) -> TiledFactorization:
    """Re-map only the tiles whose fault codes changed; the others are kept as they are."""
    m_ = np.asarray(matrix, dtype=np.float64)
    blocks = _blocks(m_, tiled.row_edges, tiled.col_edges)
    changed = [ix for ix in blocks if ix in codes and not (
        np.array_equal(codes[ix][0], tiled.codes[ix][0])
        and np.array_equal(codes[ix][1], tiled.codes[ix][1]))]
    jobs = [(blocks[ix], codes[ix][0], codes[ix][1], tiled.seed, ix, window, params)
            for ix in changed]
    new = _run(jobs, workers) if jobs else {}
    tiles = {**tiled.tiles, **new}
    new_codes = dict(tiled.codes)
    for ix in changed:
        new_codes[ix] = (np.asarray(codes[ix][0]).copy(), np.asarray(codes[ix][1]).copy())
    return TiledFactorization(tiled.row_edges, tiled.col_edges, tiled.k, tiles, new_codes,
                              tiled.seed, sorted(changed))


def random_tile_codes(shape: tuple[int, int], k: int, tile_shape: tuple[int, int],
                      rate_off: float, rate_on: float, rng: np.random.Generator
                      ) -> dict[TileIndex, tuple[np.ndarray, np.ndarray]]:
    """Seed-003 random fault codes for every tile's A and B crossbars."""
    from .faults import random_fault_codes
    re, ce = tile_edges(shape[0], tile_shape[0]), tile_edges(shape[1], tile_shape[1])
    out = {}
    for i in range(len(re) - 1):
        for j in range(len(ce) - 1):
            r, c = re[i + 1] - re[i], ce[j + 1] - ce[j]
            out[(i, j)] = (random_fault_codes(r, k, rate_off, rate_on, rng),
                           random_fault_codes(k, c, rate_off, rate_on, rng))
    return out


def random_blocked_codes(m: int, k: int, n: int, array_shape: tuple[int, int], rate_off: float,
                         rate_on: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fault codes of MA (m x k) and MB (k x n) laid over arrays of ``array_shape``.

    The blocked mapping cuts one factorization M = MA @ MB into array-sized blocks (the
    inner dimension too: block (I, L) of MA drives the partial sums that block (L, J) of
    MB adds up), so each array draws its own seed-003 faults and the codes are assembled.
    Against independent tiles (``map_tiled``) it uses the same arrays for k = n but one
    joint fit: a 128 x 128 Re(DFT) (rank 65) keeps the slack of k > rank, where its
    64 x 64 tiles are full rank.
    """
    from .faults import random_fault_codes

    def assemble(rows, cols):
        re, ce = tile_edges(rows, array_shape[0]), tile_edges(cols, array_shape[1])
        return np.block([[random_fault_codes(re[i + 1] - re[i], ce[j + 1] - ce[j], rate_off, rate_on, rng)
                          for j in range(len(ce) - 1)] for i in range(len(re) - 1)]).astype(np.int8)
    return assemble(m, k), assemble(k, n)
