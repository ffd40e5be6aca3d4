"""Tiled mappings in service: each tile its own factorized pair of arrays, checks and session.

A matrix larger than one crossbar pair is split into tiles by the one tiling of
:mod:`hil.factorization.tiling` (:func:`~hil.factorization.tiling.tile_groups`: contiguous or
strided lines per axis, ``layout="auto"`` choosing whichever needs the fewest singular
directions); tile (i, j) maps block M[row_groups[i], col_groups[j]] with its own checksum
columns onto arrays ``T{i}{j}A`` / ``T{i}{j}B`` (the same sizes in either layout). Every tile is served by its own
:class:`~hil.service.session.ServiceSession` on the shared engine (one chip, one clock), and
the output of a column block is the sum of its tiles' outputs in M's units. A new fault
lives on one tile's arrays, raises that tile's alarm and is repaired by that tile's session
alone: only the tiles a fault touches are re-solved and re-programmed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hil.factorization import SolverParams, one_minus_cos, tile_edges
from hil.factorization.tiling import LAYOUTS, choose_layout, tile_groups, zero_tile

from .mapping import map_factorized
from .session import ServiceParams, ServiceSession

FloatArray = NDArray[np.float64]


@dataclass
class TiledService:
    """Sessions per tile, and the lines of M each tile takes (``row_groups[i]``, ``col_groups[j]``)."""

    target: FloatArray
    row_groups: list[NDArray[np.intp]]
    col_groups: list[NDArray[np.intp]]
    sessions: dict[tuple[int, int], ServiceSession]
    layout: tuple[str, str] = ("contiguous", "contiguous")

    def tile_names(self, index: tuple[int, int]) -> tuple[str, str]:
        return tile_arrays(index)

    def serve(self, x: FloatArray, handle_alarms: bool = True) -> FloatArray:
        """x @ M on the chip: every tile serves its block of inputs, column blocks are summed."""
        x = np.atleast_2d(np.asarray(x, float))
        if x.shape[1] != self.target.shape[0]:
            raise ValueError(f"inputs have {x.shape[1]} entries, M takes {self.target.shape[0]}")
        y = np.zeros((x.shape[0], self.target.shape[1]))
        for (i, j), s in self.sessions.items():
            y[:, self.col_groups[j]] += s.serve(x[:, self.row_groups[i]], handle_alarms)[0]
        return y

    def represented(self, gs: dict[str, FloatArray] | None = None) -> FloatArray:
        """The assembled matrix from the references (or from conductances per array name)."""
        out = np.zeros_like(self.target)
        for (i, j), s in self.sessions.items():
            g = None if gs is None else [gs[st.array] for st in s.mm.stages]
            out[np.ix_(self.row_groups[i], self.col_groups[j])] = s.mm.product(g) / s.mm.scale
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
                versions=None, on_event=None, layout: str | tuple[str, str] = "auto") -> TiledService:
    """Map every tile around its arrays' ``codes``, program and calibrate it; one session per tile.

    ``layout``: "auto" (:func:`~hil.factorization.tiling.choose_layout` at the solver's tolerance), one of
    ``contiguous`` / ``strided`` for both axes, or a (rows, columns) pair. An all-zero block gets no
    session (``zero_tile``)."""
    m_ = np.asarray(matrix, float)
    if layout == "auto":
        layout = choose_layout(m_, tile, SolverParams().tol)
    elif isinstance(layout, str):
        layout = (layout, layout)
    if any(lay not in LAYOUTS for lay in layout):
        raise ValueError(f"layout must be 'auto', one of {LAYOUTS} or a pair of them, got {layout!r}")
    rg, cg = tile_groups(m_.shape[0], tile[0], layout[0]), tile_groups(m_.shape[1], tile[1], layout[1])
    if versions is not None and not versions.versions:
        versions.commit(codes, "map", {"tiles": [len(rg), len(cg)], "layout": list(layout)}, engine.time_s,
                        "fault map the tiles were solved on")
    sessions = {}
    for i in range(len(rg)):
        for j in range(len(cg)):
            block = m_[np.ix_(rg[i], cg[j])]
            if zero_tile(block):
                continue  # adds nothing to any output: its arrays stay unprogrammed
            a, b = tile_arrays((i, j))
            kk = k or block.shape[0]
            mm = map_factorized(block, kk, codes[a], codes[b], rng=[seed, i, j], checks=checks, arrays=(a, b))
            s = ServiceSession(mm, engine, params, versions, on_event)
            s.program()
            s.calibrate([seed, i, j])
            sessions[(i, j)] = s
    return TiledService(m_, rg, cg, sessions, tuple(layout))


__all__ = ["TiledService", "serve_tiled", "tile_shapes", "tile_arrays"]
