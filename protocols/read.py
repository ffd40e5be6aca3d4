"""Reading: compliance-safe row reads and the read-all protocol (conductance map of a region).

A row read drives every selected bit line from one source whose current compliance is
a bench limit. When the selected cells together would draw more than that, the source
limits and every reading comes out low. :func:`read_cells` therefore checks the total
current of each read and re-reads an over-limit group in halves, so a row of
high-conductance cells is read correctly in a few smaller groups.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hil.progress import Progress
from hil.bench import Bench

from .common import finishing, open_run

#: fraction of the compliance a group's total read current may reach before it counts as limited
COMPLIANCE_MARGIN = 0.7


def _group_by_budget(cols: NDArray, g_hint: NDArray, budget_s: float) -> list[NDArray]:
    """Split columns into consecutive groups whose summed expected conductance stays under ``budget_s``."""
    groups, cur, total = [], [], 0.0
    for c, g in zip(cols, g_hint):
        g = float(g) if np.isfinite(g) else 0.0
        if cur and total + g > budget_s:
            groups.append(np.asarray(cur))
            cur, total = [], 0.0
        cur.append(c)
        total += g
    if cur:
        groups.append(np.asarray(cur))
    return groups


def read_cells(bench: Bench, row: int, cols: ArrayLike, v_read: float, v_gate: float, n_avg: int = 1,
               g_hint: ArrayLike | None = None) -> tuple[NDArray[np.float64], int]:
    """Conductances (S) of ``cols`` of ``row``, kept under the bench's read-current compliance.

    ``g_hint`` (expected conductances, e.g. the last read) lets the first grouping avoid
    the limit; any group that still reaches it is re-read in halves. Returns the
    conductances and the number of row reads spent.
    """
    cols = np.asarray(cols, dtype=np.intp)
    out = np.empty(cols.size)
    if cols.size == 0:
        return out, 0
    budget = COMPLIANCE_MARGIN * bench.limits.i_compliance / abs(v_read)
    hint = np.zeros(cols.size) if g_hint is None else np.asarray(g_hint, dtype=float)
    pos = {int(c): k for k, c in enumerate(cols)}
    todo = _group_by_budget(cols, hint, budget)
    n_reads = 0
    while todo:
        grp = todo.pop()
        g = bench.read_row(row, grp, v_read, v_gate, n_avg)
        n_reads += 1
        if g.sum() >= budget and grp.size > 1:
            half = grp.size // 2
            todo += [grp[:half], grp[half:]]
            continue
        out[[pos[int(c)] for c in grp]] = g
    return out, n_reads


@dataclass(frozen=True)
class ReadParams:
    v_read: float = 0.2  # V (seed 003's read)
    v_gate: float = 3.0  # V on the word line
    n_avg: int = 1  # reads averaged per cell

    def __post_init__(self) -> None:
        if self.v_read == 0 or self.n_avg < 1:
            raise ValueError("need v_read != 0 and n_avg >= 1")


@dataclass
class ReadResult:
    g: NDArray[np.float64]  # (len(rows), len(cols)) conductance, S
    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    params: ReadParams
    n_reads: int = 0
    meta: dict = field(default_factory=dict)


def read_all(bench: Bench, params: ReadParams | None = None, rows: Sequence[int] | None = None,
             cols: Sequence[int] | None = None, out: str | None = None, heatmap: str | None = None,
             chip_id: str = "", bench_file: str | None = None, progress: bool = False,
             resume: bool = True) -> ReadResult:
    """Conductance map of a region, row by row (each row compliance-safe, ``n_avg`` averaged).

    With ``out`` the map streams to an HDF5 run file (``cells/g``), one row per flush;
    re-running resumes at the first unread row. ``heatmap`` saves a PNG of the map.
    """
    p = params or ReadParams()
    rows_idx = np.arange(bench.rows) if rows is None else np.asarray(rows, dtype=np.intp)
    cols_idx = np.arange(bench.cols) if cols is None else np.asarray(cols, dtype=np.intp)
    g = np.full((rows_idx.size, cols_idx.size), np.nan)
    store = None
    if out is not None:
        store = open_run(bench, out, "read_all", {"v_read": p.v_read, "v_gate": p.v_gate, "n_avg": p.n_avg,
                                                  "rows": rows_idx, "cols": cols_idx}, g.shape,
                         chip_id=chip_id, bench_file=bench_file, resume=resume)
        store.cell_field("g", float, np.nan)
        if store.resumed:
            g[:] = store.cells("g")
    done_rows = np.isfinite(g).all(axis=1)
    n_reads = 0
    bar = Progress(g.size, "read", enabled=progress, initial=int(done_rows.sum() * cols_idx.size))
    with finishing(store, bench, bar):
        for ri, row in enumerate(rows_idx):
            if done_rows[ri]:
                continue
            # size the groups for cells as conductive as the most conductive one of the row before
            hint = np.full(cols_idx.size, np.nanmax(g[ri - 1])) if ri and np.isfinite(g[ri - 1]).any() else None
            g[ri], n = read_cells(bench, int(row), cols_idx, p.v_read, p.v_gate, p.n_avg, hint)
            n_reads += n
            if store is not None:
                store.write_cells(np.full(cols_idx.size, ri), np.arange(cols_idx.size), done=True, g=g[ri])
                store.flush()
            bar.update(cells=cols_idx.size, reads=n)
    if heatmap:
        from hil.plots import conductance_heatmap

        conductance_heatmap(g, heatmap, title=f"read at {p.v_read:g} V, {p.n_avg} avg")
    return ReadResult(g, rows_idx, cols_idx, p, n_reads, {"chip_id": chip_id or bench.metadata.get("chip_id", "")})

