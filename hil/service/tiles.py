"""Tiled mappings in service: each tile its own factorized pair of arrays, checks and session.

A matrix larger than one crossbar pair is split into tiles (:func:`hil.factorization.tile_edges`);
tile (i, j) maps block M[rows_i, cols_j] with its own checksum columns onto arrays
``T{i}{j}A`` / ``T{i}{j}B``. Every tile is served by its own
:class:`~hil.service.session.ServiceSession` on the shared engine (one chip, one clock), and
the output of a column block is the sum of its tiles' outputs in M's units. A new fault
lives on one tile's arrays, raises that tile's alarm and is repaired by that tile's session
alone: only the tiles a fault touches are re-solved and re-programmed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hil.factorization import one_minus_cos, tile_edges

from .mapping import map_factorized
from .session import ServiceParams, ServiceSession

FloatArray = NDArray[np.float64]


@dataclass
class TiledService:
    """Sessions per tile, and the edges that place them in M."""

    target: FloatArray
    row_edges: NDArray[np.intp]
    col_edges: NDArray[np.intp]
    sessions: dict[tuple[int, int], ServiceSession]

    def tile_names(self, index: tuple[int, int]) -> tuple[str, str]:
        return tile_arrays(index)

    def serve(self, x: FloatArray, handle_alarms: bool = True) -> FloatArray:
        """x @ M on the chip: every tile serves its block of inputs, column blocks are summed."""
        x = np.atleast_2d(np.asarray(x, float))
        if x.shape[1] != self.target.shape[0]:
            raise ValueError(f"inputs have {x.shape[1]} entries, M takes {self.target.shape[0]}")
        y = np.zeros((x.shape[0], self.target.shape[1]))
        for (i, j), s in self.sessions.items():
            r0, r1 = self.row_edges[i], self.row_edges[i + 1]
            c0, c1 = self.col_edges[j], self.col_edges[j + 1]
            y[:, c0:c1] += s.serve(x[:, r0:r1], handle_alarms)[0]
        return y

    def represented(self, gs: dict[str, FloatArray] | None = None) -> FloatArray:
        """The assembled matrix from the references (or from conductances per array name)."""
        out = np.zeros_like(self.target)
        for (i, j), s in self.sessions.items():
            g = None if gs is None else [gs[st.array] for st in s.mm.stages]
            out[self.row_edges[i]:self.row_edges[i + 1], self.col_edges[j]:self.col_edges[j + 1]] = (
                s.mm.product(g) / s.mm.scale)
        return out

    def one_minus_cos(self, gs: dict[str, FloatArray] | None = None) -> float:
        return one_minus_cos(self.represented(gs), self.target)

    def repairs_by_tile(self) -> dict[tuple[int, int], int]:
        return {t: s.count.repairs for t, s in self.sessions.items()}


def tile_arrays(index: tuple[int, int]) -> tuple[str, str]:
    return f"T{index[0]}{index[1]}A", f"T{index[0]}{index[1]}B"


def tile_shapes(shape: tuple[int, int], tile: tuple[int, int], k: int | None = None,
                checks: bool = True) -> dict[str, tuple[int, int]]:
    """Array name -> shape for every tile's A and B (k defaults to the tile's rows)."""
    re_, ce = tile_edges(shape[0], tile[0]), tile_edges(shape[1], tile[1])
    extra = 2 if checks else 0
    out = {}
    for i in range(len(re_) - 1):
        for j in range(len(ce) - 1):
            r, c = re_[i + 1] - re_[i], ce[j + 1] - ce[j]
            kk = k or r
            a, b = tile_arrays((i, j))
            out[a], out[b] = (r, kk + extra), (kk, c + extra)
    return out


def serve_tiled(matrix: FloatArray, tile: tuple[int, int], codes: dict[str, NDArray[np.int8]], engine,
                k: int | None = None, params: ServiceParams | None = None, seed: int = 0, checks: bool = True,
                versions=None, on_event=None) -> TiledService:
    """Map every tile around its arrays' ``codes``, program and calibrate it; one session per tile."""
    m_ = np.asarray(matrix, float)
    re_, ce = tile_edges(m_.shape[0], tile[0]), tile_edges(m_.shape[1], tile[1])
    if versions is not None and not versions.versions:
        versions.commit(codes, "map", {"tiles": [len(re_) - 1, len(ce) - 1]}, engine.time_s,
                        "fault map the tiles were solved on")
    sessions = {}
    for i in range(len(re_) - 1):
        for j in range(len(ce) - 1):
            block = m_[re_[i]:re_[i + 1], ce[j]:ce[j + 1]]
            a, b = tile_arrays((i, j))
            kk = k or block.shape[0]
            mm = map_factorized(block, kk, codes[a], codes[b], rng=[seed, i, j], checks=checks, arrays=(a, b))
            s = ServiceSession(mm, engine, params, versions, on_event)
            s.program()
            s.calibrate([seed, i, j])
            sessions[(i, j)] = s
    return TiledService(m_, re_, ce, sessions)


__all__ = ["TiledService", "serve_tiled", "tile_shapes", "tile_arrays"]
