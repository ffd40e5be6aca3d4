"""Stuck-device scan: classify every cell from its response to bounded SET and RESET pulses.

Per row (all cells of the row at once): read, one SET pulse, read, one RESET pulse,
read, for ``n_cycles`` cycles. A cell whose SET/RESET read ratio reaches ``on_off_min``
in every cycle is working; one that never moves beyond ``stuck_max`` is stuck, ON or
OFF by its level (split at the geometric mean of the working cells' SET and RESET
levels); anything in between, or a cell that switched in some cycles and not in
others, is unreliable. All reads are kept as evidence in the :class:`~hil.faultmap.FaultMap`.

``restore=True`` makes the scan non-destructive: afterwards every working cell is
programmed back to the conductance it read before the scan (ISPP, ``restore_tol_rel``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hil.faultmap import NOT_SCANNED, STUCK_OFF, STUCK_ON, UNRELIABLE, WORKING, FaultMap
from hil.progress import Progress
from hil.bench import Bench

from .common import open_run
from .ispp import device_model, preset_for, program
from .read import read_cells


@dataclass(frozen=True)
class ScanParams:
    """Scan stimuli and decision thresholds (SI units)."""

    set_amp: float = 2.0  # V on the bit lines
    set_gate: float = 2.0  # V, the SET compliance
    set_width: float = 1e-6  # s
    reset_amp: float = 1.8  # V on the source line
    reset_gate: float = 4.0  # V
    reset_width: float = 1e-6  # s
    v_read: float = 0.05  # V
    read_gate: float = 3.0  # V
    n_read: int = 1
    n_cycles: int = 1
    on_off_min: float = 2.0  # SET/RESET ratio every cycle must reach for "working"
    stuck_max: float = 1.3  # ratio no cycle may exceed for "stuck"
    g_split: float = 50e-6  # S, ON/OFF split when no cell of the scan works
    restore: bool = False
    restore_tol_rel: float = 0.05

    def __post_init__(self) -> None:
        if self.n_cycles < 1 or self.n_read < 1:
            raise ValueError("n_cycles and n_read must be >= 1")
        if not 1.0 < self.stuck_max <= self.on_off_min:
            raise ValueError("need 1 < stuck_max <= on_off_min")


STANFORD_SCAN = ScanParams()
#: seed 004's device: full SET at +2 V, full RESET at -2 V, gate 3 V, ms pulses, read at 50 mV
CUTE_SCAN = ScanParams(set_amp=2.0, set_gate=3.0, set_width=1e-3, reset_amp=2.0, reset_gate=3.0, reset_width=1e-3,
                       g_split=30e-6)
SCAN_PRESETS = {"stanford_gap": STANFORD_SCAN, "cute_multilevel": CUTE_SCAN}

SCAN_FIELDS = ("g_initial", "g_after_set", "g_after_reset", "on_off_ratio", "on_off_ratio_max")


def classify(g_set: NDArray, g_reset: NDArray, p: ScanParams) -> NDArray[np.int8]:
    """Codes from per-cycle reads, shape (cycles, ...) each."""
    g_set = np.atleast_2d(g_set)
    g_reset = np.atleast_2d(g_reset)
    ratio = g_set / np.maximum(g_reset, 1e-15)
    works = np.all(ratio >= p.on_off_min, axis=0)
    stuck = np.all(ratio < p.stuck_max, axis=0)
    level = np.sqrt(np.mean(g_set, axis=0) * np.mean(g_reset, axis=0))
    if works.any():
        split = np.sqrt(np.median(g_set[:, works]) * np.median(g_reset[:, works]))
    else:
        split = p.g_split
    codes = np.full(works.shape, UNRELIABLE, np.int8)
    codes[works] = WORKING
    codes[stuck & (level >= split)] = STUCK_ON
    codes[stuck & (level < split)] = STUCK_OFF
    return codes


def scan(bench: Bench, params: ScanParams | None = None, *, restore: bool | None = None, rows=None, cols=None,
         out: str | None = None,
         chip_id: str = "", bench_file: str | None = None, resume: bool = True, progress: bool = False) -> "ScanResult":
    """Scan a region (default: the whole array); the result holds its fault map (unscanned cells -1).

    With ``out`` the per-row evidence streams to an HDF5 run file and a re-run resumes
    at the first row not finished. The stuck ON/OFF split uses every row scanned.
    """
    p = params or SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN)
    if restore is not None:
        p = dataclasses.replace(p, restore=restore)
    rows_idx = np.arange(bench.rows) if rows is None else np.asarray(rows, dtype=np.intp)
    cols_idx = np.arange(bench.cols) if cols is None else np.asarray(cols, dtype=np.intp)
    shape = (rows_idx.size, cols_idx.size)
    n_c = p.n_cycles
    g0 = np.full(shape, np.nan)
    gs = np.full((n_c,) + shape, np.nan)
    gr = np.full((n_c,) + shape, np.nan)
    store = None
    if out is not None:
        store = open_run(bench, out, "scan", {"params": dataclasses.asdict(p), "rows": rows_idx, "cols": cols_idx},
                         shape, chip_id=chip_id, bench_file=bench_file, resume=resume)
        store.cell_field("g_initial", float, np.nan)
        for k in range(n_c):
            store.cell_field(f"g_after_set_{k}", float, np.nan)
            store.cell_field(f"g_after_reset_{k}", float, np.nan)
        if store.resumed:
            g0[:] = store.cells("g_initial")
            for k in range(n_c):
                gs[k], gr[k] = store.cells(f"g_after_set_{k}"), store.cells(f"g_after_reset_{k}")
    done = store.done.all(axis=1) if store is not None else np.zeros(shape[0], bool)
    n_ops = 0  # row operations
    cell_ops = 0  # reads + pulses summed over cells
    restored = None
    bar = Progress(shape[0] * shape[1], "scan", enabled=progress, initial=int(done.sum()) * shape[1])
    hint = {}
    try:
        for ri, row in enumerate(rows_idx):
            if done[ri]:
                continue
            row = int(row)
            g0[ri], n = read_cells(bench, row, cols_idx, p.v_read, p.read_gate, p.n_read, hint.get("g0"))
            n_ops += n
            cell_ops += (1 + 4 * n_c) * cols_idx.size  # per cycle: SET, read, RESET, read
            for k in range(n_c):
                bench.pulse_row(row, cols_idx, p.set_amp, p.set_width, p.set_gate)
                gs[k, ri], n1 = read_cells(bench, row, cols_idx, p.v_read, p.read_gate, p.n_read, hint.get("gs"))
                bench.pulse_row(row, cols_idx, -p.reset_amp, p.reset_width, p.reset_gate)
                gr[k, ri], n2 = read_cells(bench, row, cols_idx, p.v_read, p.read_gate, p.n_read, hint.get("gr"))
                n_ops += 2 + n1 + n2
            # the next row's read groups assume every cell as conductive as this row's most conductive
            # one: a group that hits the compliance would have to be read again
            hint = {k: np.full(shape[1], np.nanmax(v)) for k, v in (("g0", g0[ri]), ("gs", gs[-1, ri]), ("gr", gr[-1, ri]))}
            if store is not None:
                fields = {"g_initial": g0[ri]}
                for k in range(n_c):
                    fields[f"g_after_set_{k}"], fields[f"g_after_reset_{k}"] = gs[k, ri], gr[k, ri]
                store.write_cells(np.full(shape[1], ri), np.arange(shape[1]), done=True, **fields)
                store.flush()
            bar.update(cells=shape[1], pulses=2 * n_c * shape[1])
    except BaseException as exc:
        if store is not None:
            store.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        bar.close()
        bench.outputs_off()
        raise
    bar.close()
    scanned = np.isfinite(g0)
    codes_region = np.full(shape, NOT_SCANNED, np.int8)
    codes_region[scanned] = classify(gs[:, scanned], gr[:, scanned], p)
    ratio = gs / np.maximum(gr, 1e-15)
    evidence_region = {"g_initial": g0, "g_after_set": gs[-1], "g_after_reset": gr[-1],
                       "on_off_ratio": np.min(ratio, axis=0), "on_off_ratio_max": np.max(ratio, axis=0)}
    if p.restore:
        working = codes_region == WORKING
        targets = np.where(working, g0, np.nan)
        rp = dataclasses.replace(preset_for(bench), tol_rel=p.restore_tol_rel, v_read=p.v_read, read_gate=p.read_gate)
        # cells that were below the programmable window come back at its floor
        res = program(bench, targets, rp, rows=rows_idx, cols=cols_idx, out_of_window="clip")
        evidence_region["g_restored"] = np.where(working, res.g_final, np.nan)
        evidence_region["restore_status"] = np.where(working, res.status, np.nan).astype(float)
        n_ops += int(res.pulses.sum()) + res.read_log.size
        cell_ops += int(res.pulses.sum()) + res.read_log.size
        restored = res
    if store is not None:
        store.set_attr("ops_per_cell", cell_ops / max(int(scanned.sum()), 1))
        store.finish("complete")
    bench.outputs_off()
    # place the region in a whole-array map
    codes = np.full((bench.rows, bench.cols), NOT_SCANNED, np.int8)
    codes[np.ix_(rows_idx, cols_idx)] = codes_region
    evidence = {}
    for name, arr in evidence_region.items():
        full = np.full((bench.rows, bench.cols), np.nan)
        full[np.ix_(rows_idx, cols_idx)] = arr
        evidence[name] = full
    n_cells = max(int(scanned.sum()), 1)
    fm = FaultMap(codes, evidence, chip_id=chip_id or str(bench.metadata.get("chip_id", "")),
                  bench_file=bench_file if bench_file is not None else str(bench.metadata.get("bench_file", "")),
                  notes=f"scan: {n_c} SET/RESET cycle(s), {cell_ops / n_cells:.2f} operations per cell")
    return ScanResult(fm, cell_ops / n_cells, n_ops, restored)


@dataclass
class ScanResult:
    faultmap: FaultMap
    ops_per_cell: float  # reads + pulses each scanned cell received (restore included)
    row_ops: int  # bench operations (row reads and row pulses)
    restore: object | None = None  # the ISPPResult of the restore, if any
