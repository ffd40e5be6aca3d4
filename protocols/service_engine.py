"""The service loop's engine on a bench: every scan, write, read and VMM through the bench's protocols.

:class:`BenchEngine` gives :class:`hil.service.loop.ServiceLoop` the same interface as the
conductance-level :class:`~hil.service.engine.WindowEngine`, on a :class:`~hil.bench.Bench`
(inside a run: ``run.bench``, so every pulse is recorded before it is sent and a signal
stops the loop before its next bench operation):

* scan: :func:`protocols.scan.scan` on the window's rows and columns (unreliable cells
  count as stuck-OFF, as in :mod:`protocols.matrix`), then the working cells are written
  back to what they held;
* write: :func:`protocols.ispp.program` (write-and-verify) of ``floor + target``; targets
  too small for ISPP go to the nearer of the floor (one RESET pulse) and ``g_prog_min``,
  as :func:`protocols.matrix.write_block` does;
* read: :func:`protocols.read.read_all` of the block, minus its floor;
* VMM: :meth:`Bench.vmm`, one per input vector, averaged ``n_vmm`` times, the floor
  current and the known stuck-ON devices' excess subtracted digitally.

Units: the loop works in the mapping's window 0..g_max above the floor. A RESET cell reads
a few uS (the floor, measured per row by the first full scan of each array), and a
stuck-ON Stanford cell ~1.6 mS, far above the window; the mapping pins stuck-ON cells at
``g_max``, so the engine subtracts what a scanned stuck-ON cell carries above ``g_max``
from every VMM and read (the periphery knows the scan, like it knows the floor). That excess
is measured as a VMM sees it (its source line alone at ``v_in``, the bit lines at virtual
ground, ``n_vmm`` VMMs averaged), not from the scan's single bit-line-driven read: the
excess is ~10x the window, so the read's noise (0.3 % of 1.6 mS) and the other polarity's
bias on the access transistor would be a ~5 uS error on a cell the bench programs to ~2 uS.

Time: on the simulated bench the chip's clock (``bench.sim``), fast-forwarded by
:meth:`advance`; on a real bench time is real and :meth:`advance` waits for it.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from hil.bench import Bench
from hil.faultmap import STUCK_OFF, STUCK_ON, UNRELIABLE, WORKING
from hil.service.refit import fit_write_sigma

from .ispp import preset_for, program
from .matrix import MatrixParams
from .read import ReadParams, read_all
from .runner import checkpoint, device_model
from .scan import SCAN_PRESETS, STANFORD_SCAN, scan

FloatArray = NDArray[np.float64]


class ArrayMismatch(ValueError):
    """The bench's chip lacks an array the mapping needs, or one is too small."""


def check_arrays(bench: Bench, shapes: Mapping[str, tuple[int, int]]) -> None:
    """Refuse a mapping whose blocks the bench's arrays cannot hold, naming what is missing."""
    have = ", ".join(f"{k} {r}x{c}" for k, (r, c) in bench.arrays.items())
    for name, (r, c) in shapes.items():
        if name not in bench.arrays:
            raise ArrayMismatch(f"the mapping needs an array {name!r} of at least {r}x{c}; the bench's chip has "
                                f"{have} (name its arrays {', '.join(shapes)} in the bench file)")
        R, C = bench.arrays[name]
        if R < r or C < c:
            raise ArrayMismatch(f"array {name} is {R}x{C}; the mapping needs at least {r}x{c}")
    if bench.vector is None:
        raise ArrayMismatch(f"bench {bench.name!r} has no vector multiplier (a board that senses every bit line); "
                            "the service loop's VMMs need one")


class BenchEngine:
    """Blocks at the top-left of the bench's named arrays, behind the service-engine interface."""

    def __init__(self, bench: Bench, shapes: Mapping[str, tuple[int, int]], g_max: float,
                 params: MatrixParams | None = None, on_op: Callable[[str], None] | None = None):
        check_arrays(bench, shapes)
        self.bench = bench
        self.shapes = {k: (int(r), int(c)) for k, (r, c) in shapes.items()}
        self.g_max = float(g_max)
        self.p = params or MatrixParams()
        self.ispp = self.p.ispp or preset_for(bench)
        self.scan_params = SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN)
        self.read_params = ReadParams(self.ispp.v_read, self.p.v_gate, self.p.n_read)
        self.floor: dict[str, FloatArray] = {}  # S per row, from the first full scan
        self.excess = {k: np.zeros(s) for k, s in self.shapes.items()}  # S above g_max of scanned stuck-ON cells
        self.calibration = None  # ISPP rung levels, measured by the first write and reused
        self.pulses = 0
        self.sim = getattr(bench, "sim", None)
        self.reset_spent()
        self.on_op = on_op or (lambda op: None)  # told "scan" / "write" before each (the run's pulse phase)
        self._t0 = time.monotonic()
        self._real_s = 0.0  # real bench: the time the loop has asked to reach (s since the engine started)

    def reset_spent(self) -> None:
        """Start :attr:`spent` over: on a simulated bench, per operation, [units, bench-clock s] of VMM reads,
        row reads (x n_read), write pulses and scan pulses (the scan protocol alone; its write-back counts as
        a write)."""
        self.spent = {op: [0, 0.0] for op in ("vmm", "read", "write", "scan")}

    # time ----------------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        if self.sim is not None:
            return max(a.time_s for a in self.sim.arrays.values())
        return time.monotonic() - self._t0

    def advance(self, hours: float) -> None:
        """Simulated bench: fast-forward the chip. Real bench: wait until that much real time has passed
        since the loop's previous advance (a signal stops the wait)."""
        if self.sim is not None:
            self.sim.advance(hours)
            return
        self._real_s += hours * 3600.0
        while time.monotonic() - self._t0 < self._real_s:
            checkpoint()
            time.sleep(min(0.2, self._real_s - (time.monotonic() - self._t0)))

    # ground truth (simulated bench only) --------------------------------------------------------
    def true_conductance(self, array: str) -> FloatArray | None:
        if self.sim is None or array not in self.floor:
            return None
        r, c = self.shapes[array]
        g = self.sim.arrays[array].vmm_conductance(self.p.v_in, self.p.v_gate)[:r, :c]
        return g - self.floor[array][:, None] - self.excess[array]

    def faults_appeared(self) -> int | None:
        if self.sim is None:
            return None
        return sum(len(a.aging.events) for a in self.sim.arrays.values() if a.aging is not None)

    def write_model(self, targets: Mapping[str, FloatArray], reads: Mapping[str, FloatArray]) -> dict[str, float]:
        """The repair's write model (:class:`hil.service.refit.RefitParams` fields) of this bench, from the
        programming run that wrote ``targets`` (array name -> S above the floor, NaN: not written) and read
        back ``reads``: the band is ISPP's acceptance band (``accept_fraction`` x the verify tolerance, relative
        to what a cell reads: its floor + target), the sd of where writes land is fitted to the run's read-back
        (:func:`hil.service.refit.fit_write_sigma`: read noise, levels under ``g_prog_min`` that go to the
        floor or to ``g_prog_min``, the band's relative part)."""
        p = self.ispp
        g_offset = float(np.mean([np.mean(self._floor(a)) for a in targets]))
        t = np.concatenate([np.ravel(targets[a]) for a in targets])
        r = np.concatenate([np.ravel(reads[a]) for a in targets])
        s_abs, s_rel = fit_write_sigma(t, r, g_offset)
        return {"band": p.accept_fraction * p.tol_abs, "band_rel": p.accept_fraction * p.tol_rel,
                "write_sigma": s_abs, "write_sigma_rel": s_rel, "g_offset": g_offset}

    # operations ----------------------------------------------------------------------------------
    def _clock(self) -> float:
        return self.sim.clock.bench_time_s if self.sim is not None else 0.0

    def _spend(self, op: str, units: int, since: float) -> None:
        self.spent[op][0] += int(units)
        self.spent[op][1] += self._clock() - since

    def _floor(self, array: str) -> FloatArray:
        if array not in self.floor:
            raise RuntimeError(f"array {array}: scan it before writing or reading (its floor is not known)")
        return self.floor[array]

    def read(self, array: str, rows=None) -> FloatArray:
        """Read-back conductances (S above the floor) of the whole block, averaged over ``n_read`` reads."""
        r, c = self.shapes[array]
        t0 = self._clock()
        self.bench.use_array(array)
        g = read_all(self.bench, self.read_params, rows=range(r), cols=range(c)).g
        self._spend("read", r * self.read_params.n_avg, t0)
        return g - self._floor(array)[:, None] - self.excess[array]

    def write(self, array: str, targets: FloatArray) -> int:
        """Write-and-verify the finite targets (S above the floor); NaN cells are left alone. Returns pulses."""
        tgt = np.asarray(targets, float)
        r, c = self.shapes[array]
        tgt = tgt[:r, :c]
        todo = np.isfinite(tgt)
        if not todo.any():
            return 0
        self.on_op("write")
        t0 = self._clock()
        floor = self._floor(array)[:, None]
        absolute = floor + np.maximum(np.where(todo, tgt, 0.0), 0.0)
        low = todo & (absolute < self.p.g_prog_min)
        # too small for ISPP: the nearer of the floor (one RESET pulse) and the lowest programmable level
        to_floor = low & (absolute - floor < (self.p.g_prog_min - floor) / 2)
        absolute = np.where(low, self.p.g_prog_min, absolute)
        self.bench.use_array(array)
        pulses = 0
        sp = self.scan_params
        for row in np.flatnonzero(to_floor.any(axis=1)):
            cols = np.flatnonzero(to_floor[row])
            self.bench.pulse_row(int(row), cols, -sp.reset_amp, sp.reset_width, sp.reset_gate)
            pulses += cols.size
        ispp = todo & ~to_floor
        rows = np.flatnonzero(ispp.any(axis=1))
        if rows.size:
            res = program(self.bench, np.where(ispp, absolute, np.nan)[rows], self.ispp, rows=rows,
                          cols=np.arange(c), calibration=self.calibration or "auto", keep_log=False,
                          out_of_window="clip")
            self.calibration = self.calibration or res.calibration
            pulses += int(res.pulses.sum())
        self.pulses += pulses
        self._spend("write", pulses, t0)
        return pulses

    def vmm(self, array: str, u: FloatArray) -> FloatArray:
        """Signed inputs (B, rows) in any unit -> outputs (B, cols) in the same unit x S, one bench VMM per
        vector (scaled to ``v_in`` at its largest entry and back), averaged ``n_vmm`` times. An all-zero vector
        is not sent (output 0, no bench time), as :class:`hil.service.engine.WindowEngine` does."""
        u = np.atleast_2d(np.asarray(u, float))
        r, c = self.shapes[array]
        floor = self._floor(array)
        t0 = self._clock()
        self.bench.use_array(array)
        out = np.zeros((u.shape[0], c))
        v_full = np.zeros(self.bench.rows)
        for b, ub in enumerate(u):
            peak = np.abs(ub).max()
            if peak == 0:
                continue
            v = ub * (self.p.v_in / peak)
            v_full[:r] = v
            i_out = np.mean([self.bench.vmm(v_full, self.p.v_gate)[:c] for _ in range(self.p.n_vmm)], axis=0)
            out[b] = (i_out - v @ floor - v @ self.excess[array]) * (peak / self.p.v_in)
        self._spend("vmm", int(np.count_nonzero(np.abs(u).max(axis=1) > 0)) * self.p.n_vmm, t0)
        return out

    def _vmm_level(self, array: str, row: int, cols: NDArray[np.intp]) -> FloatArray:
        """Conductance (S above the floor) of ``cols`` of one row of ``array`` (in use) as a VMM sees them:
        ``v_in`` on that source line alone, so each bit line carries its own cell's current; ``n_vmm`` averaged."""
        v_full = np.zeros(self.bench.rows)
        v_full[row] = self.p.v_in
        i_out = np.mean([self.bench.vmm(v_full, self.p.v_gate) for _ in range(self.p.n_vmm)], axis=0)
        return i_out[cols] / self.p.v_in - self.floor[array][row]

    def scan(self, array: str, rows, cols, restore: FloatArray) -> tuple[NDArray[np.int8], int]:
        """Stuck-device scan of ``rows`` x ``cols`` (the scan protocol), then the working cells written back
        to ``restore`` (S above the floor). Returns the codes (0 working, 1 stuck-OFF, 2 stuck-ON), pulses."""
        rows, cols = np.asarray(rows, np.intp), np.asarray(cols, np.intp)
        t0 = self._clock()
        self.bench.use_array(array)
        self.on_op("scan")
        fm = scan(self.bench, self.scan_params, restore=False, rows=rows, cols=cols).faultmap
        codes = fm.codes[np.ix_(rows, cols)]
        codes = np.where(codes == UNRELIABLE, STUCK_OFF, codes).astype(np.int8)
        g_set, g_reset = (fm.evidence[k][np.ix_(rows, cols)] for k in ("g_after_set", "g_after_reset"))
        if array not in self.floor:
            # the floor a matrix entry of 0 sits on: per row, the working cells just RESET
            work = codes == WORKING
            med = np.nanmedian(g_reset[work]) if work.any() else np.nanmedian(g_reset)
            floor = np.full(self.shapes[array][0], med)
            for i, r in enumerate(rows):
                if r < floor.size and work[i].any():
                    floor[r] = np.median(g_reset[i, work[i]])
            self.floor[array] = floor
        floor = self.floor[array][rows][:, None]
        level = (g_set + g_reset) / 2 - floor
        for i in np.flatnonzero((codes == STUCK_ON).any(axis=1)):
            level[i] = np.where(codes[i] == STUCK_ON, self._vmm_level(array, int(rows[i]), cols), level[i])
        ex = self.excess[array]
        ex[np.ix_(rows, cols)] = np.where(codes == STUCK_ON, np.maximum(level - self.g_max, 0.0), 0.0)
        pulses = 2 * self.scan_params.n_cycles * codes.size
        self.pulses += pulses
        self._spend("scan", pulses, t0)
        # the scan left every cell RESET: write back the working cells that held more than the floor
        back = np.full(self.shapes[array], np.nan)
        win = np.asarray(restore, float)[np.ix_(rows, cols)]
        back[np.ix_(rows, cols)] = np.where((codes == WORKING) & (win >= self.p.g_prog_min / 2), win, np.nan)
        pulses += self.write(array, back)
        return codes, pulses


def measure_op_costs(bench: Bench, shape: tuple[int, int], g_max: float, params: MatrixParams | None = None,
                     array: str | None = None, seed: int = 0) -> dict[str, float]:
    """What one window-engine operation costs on this bench, in bench-clock seconds
    (:class:`hil.service.engine.EngineParams`' ``t_vmm_op``, ``t_read_op``, ``t_pulse_op``).

    Measured with :class:`BenchEngine`'s own operations on a block of ``shape`` at the top-left
    of ``array`` (default: the bench's first), so the estimate is whatever the instruments
    charge for exactly what the service loop sends: ``t_vmm_op`` one ``Bench.vmm`` (the engine
    averages ``n_vmm`` per vector), ``t_read_op`` one read of one row (a block read-back divided
    by rows x ``n_read``), ``t_pulse_op`` one pulse of a repair-like write (4 cells per row of
    8 rows re-targeted anywhere in the window, ISPP with its verify reads; the rung calibration
    is measured by a first write and not charged, as the engine reuses it). A bench without a
    clock (a real bench) has nothing to measure from: ``ValueError``. The chip is written.
    """
    sim = getattr(bench, "sim", None)
    if sim is None:
        raise ValueError("measure_op_costs needs a simulated bench (its instruments' bench clock)")
    array = array or next(iter(bench.arrays))
    engine = BenchEngine(bench, {array: shape}, g_max, params)
    rows, cols = engine.shapes[array]
    engine.floor[array] = np.zeros(rows)  # no scan: the floor only shifts the numbers, not what is sent
    rng = np.random.default_rng(seed)

    def repair_like() -> FloatArray:
        t = np.full((rows, cols), np.nan)
        for r in rng.choice(rows, min(8, rows), replace=False):
            t[r, rng.choice(cols, min(4, cols), replace=False)] = rng.uniform(engine.p.g_prog_min, g_max, min(4, cols))
        return t

    u = rng.uniform(-1.0, 1.0, (1, rows))
    engine.vmm(array, u)  # routes the board for VMMs: a steady state's cost is what the loop pays
    engine.write(array, repair_like())  # calibrates ISPP's rungs (once per engine)
    engine.reset_spent()
    engine.vmm(array, u)
    engine.read(array)
    engine.write(array, repair_like())
    return {f"t_{name}_op": engine.spent[op][1] / max(engine.spent[op][0], 1)
            for name, op in (("vmm", "vmm"), ("read", "read"), ("pulse", "write"))}


__all__ = ["BenchEngine", "ArrayMismatch", "check_arrays", "measure_op_costs"]
