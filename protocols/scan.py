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
from hil.bench import Bench

from .ispp import ISPPParams, ladder_plan, preset_for, program
from .read import read_cells
from .runner import Drive, Page, Run, device_model, execute


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
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not np.isfinite(v):
                raise ValueError(f"scan parameter {f.name} must be a finite number, got {v!r}")
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


class ScanPage(Page):
    """Per row: read, then ``n_cycles`` x (SET, read, RESET, read); classification and restore at the end."""

    name, label = "scan", "scan"

    def __init__(self, p: ScanParams, restore_params: ISPPParams | None, chip_id: str, bench_file: str):
        self.p, self.rp = p, restore_params
        self.chip_id, self.bench_file = chip_id, bench_file
        self.fields = {"g_initial": (float, np.nan), "ops": (np.int32, 0)}
        for k in range(p.n_cycles):
            self.fields[f"g_after_set_{k}"] = (float, np.nan)
            self.fields[f"g_after_reset_{k}"] = (float, np.nan)
        self.row_ops = 0
        self.hint: dict = {}

    def params(self, rows, cols):
        return {"params": dataclasses.asdict(self.p), "rows": rows, "cols": cols}

    def plan(self) -> list[Drive]:
        p = self.p
        drives = [Drive("set_amp / set_gate / set_width", [p.set_amp], [p.set_gate], [p.set_width]),
                  Drive("reset_amp / reset_gate / reset_width", [-p.reset_amp], [p.reset_gate], [p.reset_width]),
                  Drive("v_read / read_gate", [p.v_read], [p.read_gate])]
        if p.restore and self.rp is not None:
            drives += ladder_plan(self.rp)
        return drives

    def start(self, run: Run) -> None:
        n_c, shape = self.p.n_cycles, run.shape
        st = run.store
        if run.resumed:
            self.g0 = st.cells("g_initial")
            self.gs = np.stack([st.cells(f"g_after_set_{k}") for k in range(n_c)])
            self.gr = np.stack([st.cells(f"g_after_reset_{k}") for k in range(n_c)])
            self.ops = st.cells("ops").astype(np.int64)
            self.g0[~run.done] = np.nan  # rows reopened by the confirmation are scanned again
        else:
            self.g0 = np.full(shape, np.nan)
            self.gs = np.full((n_c,) + shape, np.nan)
            self.gr = np.full((n_c,) + shape, np.nan)
            self.ops = np.zeros(shape, np.int64)

    def confirm(self, run: Run) -> None:
        """A finished row counts only if its cells still read where the scan left them (after RESET)."""
        p = self.p
        last = run.store.cells(f"g_after_reset_{p.n_cycles - 1}")
        ops = run.store.cells("ops")
        redo = []
        for ri in np.nonzero(run.done.all(axis=1))[0]:
            g, _ = read_cells(run.bench, int(run.rows[ri]), run.cols, p.v_read, p.read_gate, p.n_read, last[ri])
            ops[ri] += 1
            run.store.write_cells(np.full(run.shape[1], ri), np.arange(run.shape[1]), ops=ops[ri])
            with np.errstate(divide="ignore", invalid="ignore"):
                off = np.abs(np.log(np.maximum(g, 1e-15) / np.maximum(last[ri], 1e-15)))
            if not np.all(off <= np.log(p.stuck_max)):
                redo.append(ri)
        if redo:
            run.reopen_rows(redo)

    def steps(self) -> list[tuple[float, float, float]]:
        """The row's pulses in order: (signed amplitude V, gate V, width s), SET then RESET per cycle."""
        p = self.p
        return [(p.set_amp, p.set_gate, p.set_width), (-p.reset_amp, p.reset_gate, p.reset_width)] * p.n_cycles

    def row(self, run: Run, ri: int) -> None:
        p, bench, cols = self.p, run.bench, run.cols
        row = int(run.rows[ri])
        run.phase = "scan"
        if bench.can_sweep(self.steps(), p.v_read, p.read_gate):
            # the instrument reads and pulses each cell itself: one call for the row
            g = bench.sweep_row(row, cols, self.steps(), p.v_read, p.read_gate, p.n_read)
            self.g0[ri], self.gs[:, ri], self.gr[:, ri] = g[:, 0], g[:, 1::2].T, g[:, 2::2].T
            self.row_ops += 1
        else:
            self._row_from_host(run, ri, row)
        self.ops[ri] += 1 + 4 * p.n_cycles  # per cycle: SET, read, RESET, read
        fields = {"g_initial": self.g0[ri], "ops": self.ops[ri]}
        for k in range(p.n_cycles):
            fields[f"g_after_set_{k}"], fields[f"g_after_reset_{k}"] = self.gs[k, ri], self.gr[k, ri]
        run.bar.update(pulses=2 * p.n_cycles * cols.size)
        run.save_row(ri, **fields)

    def _row_from_host(self, run: Run, ri: int, row: int) -> None:
        p, bench, cols, hint = self.p, run.bench, run.cols, self.hint
        self.g0[ri], n = read_cells(bench, row, cols, p.v_read, p.read_gate, p.n_read, hint.get("g0"))
        self.row_ops += n
        for k in range(p.n_cycles):
            bench.pulse_row(row, cols, p.set_amp, p.set_width, p.set_gate, iteration=k, g_before=self.g0[ri])
            self.gs[k, ri], n1 = read_cells(bench, row, cols, p.v_read, p.read_gate, p.n_read, hint.get("gs"))
            bench.pulse_row(row, cols, -p.reset_amp, p.reset_width, p.reset_gate, iteration=k, g_before=self.gs[k, ri])
            self.gr[k, ri], n2 = read_cells(bench, row, cols, p.v_read, p.read_gate, p.n_read, hint.get("gr"))
            self.row_ops += 2 + n1 + n2
        # the next row's read groups assume every cell as conductive as this row's most conductive
        # one: a group that hits the compliance would have to be read again
        self.hint = {k: np.full(cols.size, np.nanmax(v))
                     for k, v in (("g0", self.g0[ri]), ("gs", self.gs[-1, ri]), ("gr", self.gr[-1, ri]))}

    def finish(self, run: Run) -> "ScanResult":
        p, shape = self.p, run.shape
        rows_idx, cols_idx = run.rows, run.cols
        bench = run.raw_bench
        g0, gs, gr = self.g0, self.gs, self.gr
        scanned = np.isfinite(g0)
        codes_region = np.full(shape, NOT_SCANNED, np.int8)
        codes_region[scanned] = classify(gs[:, scanned], gr[:, scanned], p)
        ratio = gs / np.maximum(gr, 1e-15)
        evidence_region = {"g_initial": g0, "g_after_set": gs[-1], "g_after_reset": gr[-1],
                           "on_off_ratio": np.min(ratio, axis=0), "on_off_ratio_max": np.max(ratio, axis=0)}
        cell_ops = float(self.ops[scanned].sum())  # every session's operations on every cell
        restored = None
        if p.restore:
            working = codes_region == WORKING
            targets = np.where(working, g0, np.nan)
            run.phase = "restore"
            # cells that were below the programmable window come back at its floor
            res = program(run.bench, targets, self.rp, rows=rows_idx, cols=cols_idx, out_of_window="clip")
            evidence_region["g_restored"] = np.where(working, res.g_final, np.nan)
            evidence_region["restore_status"] = np.where(working, res.status, np.nan).astype(float)
            self.row_ops += int(res.pulses.sum()) + res.read_log.size
            cell_ops += int(res.pulses.sum()) + res.read_log.size
            restored = res
        n_cells = max(int(scanned.sum()), 1)
        if run.store is not None:
            run.store.set_attr("ops_per_cell", cell_ops / n_cells)
        # place the region in a whole-array map
        codes = np.full((bench.rows, bench.cols), NOT_SCANNED, np.int8)
        codes[np.ix_(rows_idx, cols_idx)] = codes_region
        evidence = {}
        for name, arr in evidence_region.items():
            full = np.full((bench.rows, bench.cols), np.nan)
            full[np.ix_(rows_idx, cols_idx)] = arr
            evidence[name] = full
        fm = FaultMap(codes, evidence, chip_id=self.chip_id, bench_file=self.bench_file,
                      notes=f"scan: {p.n_cycles} SET/RESET cycle(s), {cell_ops / n_cells:.2f} operations per cell")
        return ScanResult(fm, cell_ops / n_cells, self.row_ops, restored)


def scan(bench: Bench, params: ScanParams | None = None, *, restore: bool | None = None, rows=None, cols=None,
         out: str | None = None, chip_id: str = "", bench_file: str | None = None, resume: bool = True,
         overwrite: bool = False, progress: bool = False) -> "ScanResult":
    """Scan a region (default: the whole array); the result holds its fault map (unscanned cells -1).

    With ``out`` the per-row evidence streams to an HDF5 run file and a re-run resumes
    at the first row not finished (rows finished before are confirmed by a read first).
    The stuck ON/OFF split uses every row scanned; ``ops_per_cell`` counts every session.
    """
    p = params or SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN)
    if restore is not None:
        p = dataclasses.replace(p, restore=restore)
    rp = None
    if p.restore:
        rp = dataclasses.replace(preset_for(bench), tol_rel=p.restore_tol_rel, v_read=p.v_read, read_gate=p.read_gate)
    page = ScanPage(p, rp, chip_id or str(bench.metadata.get("chip_id", "")),
                    bench_file if bench_file is not None else str(bench.metadata.get("bench_file", "")))
    return execute(bench, page, rows, cols, out=out, resume=resume, overwrite=overwrite, chip_id=chip_id,
                   bench_file=bench_file, progress=progress)


@dataclass
class ScanResult:
    faultmap: FaultMap
    ops_per_cell: float  # reads + pulses each scanned cell received (restore included)
    row_ops: int  # bench operations (row reads and row pulses)
    restore: object | None = None  # the ISPPResult of the restore, if any
