"""Exactness verdicts of a tiled mapping: ``hil map``'s verdict for every tile.

Each tile keeps its own scale, so the assembled matrix is exact exactly when every tile
is (a tile whose block of M is not zero must reach it); one tile proved impossible
(``feasibility.exact_fit_obstruction``) proves the whole mapping inexact *on these
arrays in this layout* (another layout, another assignment of arrays to tiles or a
larger k may still fit). Each tile's verdict is ``feasibility.exactness_report``'s:
``exact_possible`` True (its fit reached tol), False (a certificate, named by ``kind``)
or None (unresolved, with ``k_suggested`` when a larger k gives room).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .feasibility import exactness_report

TileIndex = tuple[int, int]


def tile_name(index: TileIndex) -> str:
    """The tile's name in records and HDF5 groups: ``"i_j"``."""
    return f"{index[0]}_{index[1]}"


def tiled_exactness(blocks: Mapping[TileIndex, tuple[np.ndarray, np.ndarray, np.ndarray, float]],
                    tol: float) -> tuple[dict, list[str]]:
    """Verdicts of tiles given as ``{(i, j): (block of M, codes_a, codes_b, 1 - cos of its fit)}``.

    Returns a JSON-ready dict -- ``exact_possible`` of the whole (True: every tile fits to
    ``tol``; False: some tile is proved impossible; None otherwise), ``tol``, the tile
    names per verdict (``exact_tiles``, ``impossible_tiles``, ``unknown_tiles``) and
    ``tiles``: each tile's ``exactness_report`` dict with its ``one_minus_cos`` -- and the
    lines to print: a count, then one line per tile that missed ``tol`` (for a single
    tile, its one line).
    """
    tiles: dict[str, dict] = {}
    notes: dict[str, str] = {}
    for index in sorted(blocks):
        block, ca, cb, omc = blocks[index]
        info, line = exactness_report(block, ca, cb, float(omc), tol)
        name = tile_name(index)
        margin = info.get("freedom_margin")
        if margin is not None and not np.isfinite(margin):
            info = {**info, "freedom_margin": None}  # no usable inner line: nothing to count against
        tiles[name] = {**info, "one_minus_cos": float(omc)}
        notes[name] = line
    by = {v: [t for t, info in tiles.items() if info["exact_possible"] is v] for v in (True, False, None)}
    whole = True if len(by[True]) == len(tiles) else (False if by[False] else None)
    summary = {"exact_possible": whole, "tol": tol, "exact_tiles": by[True], "impossible_tiles": by[False],
               "unknown_tiles": by[None], "tiles": tiles}
    head = (f"exactness (tol {tol:.0e}): {len(by[True])} of {len(tiles)} tiles fit exactly, "
            f"{len(by[False])} proved impossible, {len(by[None])} unresolved")
    if whole is False:
        head += " -- no exact fit on these arrays in this tiling"
    if len(tiles) == 1:  # one array pair: hil map's line as it is
        return summary, list(notes.values())
    lines = [head] + [f"  tile {t}: {notes[t]}" for t in by[False] + by[None]]
    return summary, lines
