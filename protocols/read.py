"""Reading: compliance-safe row reads and the read-all protocol (conductance map of a region).

A row read drives every selected bit line from one source whose current compliance is
a bench limit. When the selected cells together would draw more than that, the source
limits and every reading comes out low. :func:`read_cells` therefore reads the cells in
groups sensed in parallel, each expected (from the last reads) to stay under the limit,
and asks the instrument itself whether it was in compliance (its trip status) only when
a group's measured total comes near the limit: a source in compliance supplies its limit,
so a group well below it cannot have tripped and costs no extra query. A tripped group
is re-read in halves, so a row of high-conductance cells is read correctly in a few
smaller groups.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hil.bench import Bench

from .runner import Drive, Page, Run, execute

#: fraction of the compliance the expected total current of a group may reach when groups are formed
GROUP_FRACTION = 0.8
#: a group whose measured total reaches this fraction of the compliance has the instrument's trip
#: status read (below it the source cannot have been limiting: in compliance it supplies the limit)
TRIP_QUERY_FRACTION = 0.9


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
    the limit; a group whose total comes near it has the read source's trip status read
    (:meth:`~hil.bench.Bench.read_tripped`), and a tripped group is re-read in halves
    (a single tripped cell keeps its capped reading). Returns the conductances and the
    number of row reads spent.
    """
    cols = np.asarray(cols, dtype=np.intp)
    out = np.empty(cols.size)
    if cols.size == 0:
        return out, 0
    if bench.can_sweep((), v_read, v_gate):
        # the instrument reads each cell alone, the whole row in one call, and returns its compliance
        # status with each reading (bench.read_tripped()); a cell alone in compliance keeps its capped
        # reading, as a tripped single cell does below
        return bench.sweep_row(row, cols, (), v_read, v_gate, n_avg)[:, 0], 1
    budget = GROUP_FRACTION * bench.limits.i_compliance / abs(v_read)  # S
    near = TRIP_QUERY_FRACTION * bench.limits.i_compliance / abs(v_read)
    hint = np.zeros(cols.size) if g_hint is None else np.asarray(g_hint, dtype=float)
    pos = {int(c): k for k, c in enumerate(cols)}
    todo = _group_by_budget(cols, hint, budget)
    n_reads = 0
    while todo:
        grp = todo.pop()
        g = bench.read_row(row, grp, v_read, v_gate, n_avg)
        n_reads += 1
        if grp.size > 1 and g.sum() >= near and bench.read_tripped():
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
        if not (np.isfinite(self.v_read) and np.isfinite(self.v_gate)):
            raise ValueError("v_read and v_gate must be finite numbers")
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


class ReadPage(Page):
    """Read-all: one compliance-safe read of every row of the region (a read is its own record)."""

    name, label = "read_all", "read"
    fields = {"g": (float, np.nan)}

    def __init__(self, p: ReadParams):
        self.p = p
        self.n_reads = 0

    def params(self, rows, cols):
        return {"v_read": self.p.v_read, "v_gate": self.p.v_gate, "n_avg": self.p.n_avg, "rows": rows, "cols": cols}

    def plan(self) -> list[Drive]:
        return [Drive("v_read", amplitudes=[self.p.v_read]), Drive("v_gate", gates=[self.p.v_gate])]

    def start(self, run: Run) -> None:
        self.g = run.store.cells("g") if run.resumed else np.full(run.shape, np.nan)

    def row(self, run: Run, ri: int) -> None:
        g = self.g
        # size the groups for cells as conductive as the most conductive one of the row before
        hint = np.full(run.shape[1], np.nanmax(g[ri - 1])) if ri and np.isfinite(g[ri - 1]).any() else None
        g[ri], n = read_cells(run.bench, int(run.rows[ri]), run.cols, self.p.v_read, self.p.v_gate, self.p.n_avg, hint)
        self.n_reads += n
        run.bar.update(reads=n)
        run.save_row(ri, g=g[ri])

    def finish(self, run: Run) -> ReadResult:
        return ReadResult(self.g, run.rows, run.cols, self.p, self.n_reads)


def read_all(bench: Bench, params: ReadParams | None = None, rows: Sequence[int] | None = None,
             cols: Sequence[int] | None = None, out: str | None = None, heatmap: str | None = None,
             chip_id: str = "", bench_file: str | None = None, progress: bool = False,
             resume: bool = True, overwrite: bool = False) -> ReadResult:
    """Conductance map of a region, row by row (each row compliance-safe, ``n_avg`` averaged).

    With ``out`` the map streams to an HDF5 run file (``cells/g``), one row per flush;
    re-running resumes at the first unread row. ``heatmap`` saves a PNG of the map.
    """
    p = params or ReadParams()
    res = execute(bench, ReadPage(p), rows, cols, out=out, resume=resume, overwrite=overwrite, chip_id=chip_id,
                  bench_file=bench_file, progress=progress)
    res.meta["chip_id"] = chip_id or bench.metadata.get("chip_id", "")
    if heatmap:
        from hil.plots import conductance_heatmap

        conductance_heatmap(res.g, heatmap, title=f"read at {p.v_read:g} V, {p.n_avg} avg")
    return res
