"""ISPP write-and-verify: closed-loop programming of a target conductance map, run on a bench.

The loop (seed 004 Fig. 5B, seed 003 Methods) for every cell: read (averaged), compare
with the tolerance band, apply a SET pulse when below it or a RESET pulse when above,
step the drive (pulse amplitude and/or gate voltage) for the next pulse of the same
polarity, and return to the start of the ladder after a polarity reversal. A cell
counts as done only when a second read confirms it in the band. The decisions are the
bench-free state machine of :mod:`protocols.ispp_machine`; this page runs it: one row
read per iteration, one ``pulse_row`` per distinct pulse, array-level passes that
re-read the programmed cells and re-program those that drifted or failed. Where the
instrument runs a row's loop itself (:meth:`hil.bench.Bench.tune_row`), a cell it
confirmed in band during the pass is not read again by that pass's verify
(``ISPPParams.reread_instrument_confirmed``): its last read already shows it in band.

On resume, cells the file calls converged are read again and re-opened when they are
no longer in the band: a run file never claims a cell it cannot confirm.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hil.bench import Bench

from .ispp_machine import (CONVERGED, CUTE_ISPP, EXHAUSTED, PENDING, PRESETS, RESET, SET, SKIPPED, STANFORD_ISPP,
                           STATUS_NAMES, UNRESPONSIVE, CellProgrammer, ISPPParams, Ladder, LevelCalibration,
                           check_window, group_pulses)
from .read import read_cells
from .runner import PULSE_DTYPE, Drive, Page, Run, device_model, execute, tune_pulse_records

__all__ = ["program", "preset_for", "device_model", "calibrate_levels", "ladder_plan", "ISPPResult", "ISPPPage",
           "PULSE_DTYPE", "READ_DTYPE", "CellProgrammer", "ISPPParams", "Ladder", "LevelCalibration", "check_window",
           "group_pulses", "PENDING", "CONVERGED", "EXHAUSTED", "UNRESPONSIVE", "SKIPPED", "SET", "RESET",
           "STATUS_NAMES", "PRESETS", "STANFORD_ISPP", "CUTE_ISPP"]

READ_DTYPE = np.dtype([("pass", "i2"), ("iteration", "i4"), ("row", "i4"), ("col", "i4"), ("g", "f8")])


def preset_for(bench: Bench) -> ISPPParams:
    """The ISPP preset for the bench's device model."""
    return PRESETS.get(device_model(bench), STANFORD_ISPP)


def ladder_plan(p: ISPPParams) -> list[Drive]:
    """Every drive an ISPP run with ``p`` may use: both ladders to their top rung, and its reads."""
    return [Drive("the SET ladder (amplitudes / gate voltages / width)", p.set_ladder.amps, p.set_ladder.gates,
                  [p.set_ladder.width]),
            Drive("the RESET ladder (amplitudes / gate voltages / width)", -np.asarray(p.reset_ladder.amps),
                  p.reset_ladder.gates, [p.reset_ladder.width]),
            Drive("v_read / read_gate", [p.v_read], [p.read_gate])]


def calibrate_levels(bench: Bench, row: int, cols: Sequence[int], p: ISPPParams, stride: int = 8) -> LevelCalibration:
    """Measure the level each ladder rung leaves the cells of ``row, cols`` at.

    SET: top-rung RESET first, then SET rungs 0, stride, 2*stride, ... with a read after
    each; RESET the same way from a top-rung SET. Cells that never move (stuck) are left
    out of the medians. A bench that sweeps rows on the instrument (:meth:`Bench.sweep_row`)
    runs each polarity's pulses and reads as one call.
    """
    cols = [int(c) for c in cols]
    out = {}
    for pol, far in ((SET, RESET), (RESET, SET)):
        lad, far_lad = p.ladder(pol), p.ladder(far)
        amp, gate = far_lad.drive(far_lad.n_rungs - 1)
        rungs = np.arange(0, lad.n_rungs + stride - 1, stride, dtype=float)
        rungs = np.minimum(rungs, lad.n_rungs - 1)
        a, gt = lad.drive(rungs)
        steps = [(far * float(amp), float(gate), far_lad.width)] + [(pol * float(x), float(y), lad.width)
                                                                   for x, y in zip(a, gt)]
        if bench.can_sweep(steps, p.v_read, p.read_gate):
            # the instrument runs the whole sequence cell by cell: the reads after each rung, in one call
            g = bench.sweep_row(row, cols, steps, p.v_read, p.read_gate, p.n_read)[:, 2:].T
        else:
            bench.pulse_row(row, cols, *_pulse_args(steps[0]))
            reads = []
            for step in steps[1:]:
                bench.pulse_row(row, cols, *_pulse_args(step))
                reads.append(read_cells(bench, row, cols, p.v_read, p.read_gate, p.n_read,
                                        reads[-1] if reads else None)[0])
            g = np.array(reads)  # (rungs, cells)
        moved = g.max(axis=0) / np.maximum(g.min(axis=0), 1e-15) > 1 + p.response_rel
        use = g[:, moved] if moved.any() else g
        out[pol] = (rungs, np.median(use, axis=1))
    return LevelCalibration(out[SET][0], out[SET][1], out[RESET][0], out[RESET][1])



def _pulse_args(step: tuple[float, float, float]) -> tuple[float, float, float]:
    """(signed amplitude, gate, width) -> ``pulse_row``'s (amplitude, width, gate)."""
    return step[0], step[2], step[1]


@dataclass
class ISPPResult:
    """Per-cell outcome of a programming run over a region (shape of ``targets``)."""

    targets: NDArray[np.float64]
    status: NDArray[np.int8]
    pulses: NDArray[np.int32]
    g_final: NDArray[np.float64]
    reversals: NDArray[np.int32]
    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    params: ISPPParams
    calibration: LevelCalibration | None = None
    pulse_log: NDArray = field(default_factory=lambda: np.zeros(0, PULSE_DTYPE))
    read_log: NDArray = field(default_factory=lambda: np.zeros(0, READ_DTYPE))

    def counts(self) -> dict[str, int]:
        return {name: int(np.count_nonzero(self.status == code)) for code, name in STATUS_NAMES.items()}

    def in_band(self) -> NDArray[np.bool_]:
        lo, hi = self.params.band(self.targets)
        return np.isfinite(self.g_final) & (self.g_final >= lo) & (self.g_final <= hi)

    def summary(self, working: NDArray[np.bool_] | None = None) -> dict[str, float]:
        """Pulse statistics and success rate, over ``working`` cells (default: all programmed cells)."""
        prog = np.isfinite(self.targets)
        sel = prog if working is None else prog & working
        pulses = self.pulses[sel]
        return {"cells": int(sel.sum()),
                "mean_pulses": float(pulses.mean()) if pulses.size else 0.0,
                "p99_pulses": float(np.percentile(pulses, 99)) if pulses.size else 0.0,
                "max_pulses": int(pulses.max()) if pulses.size else 0,
                "success_rate": float((self.status[sel] == CONVERGED).mean()) if pulses.size else 1.0,
                "in_band_rate": float(self.in_band()[sel].mean()) if pulses.size else 1.0}



def check_targets(targets: ArrayLike, shape: tuple[int, int]) -> NDArray[np.float64]:
    """Targets (S) as a float array of exactly the region's ``shape`` (NaN = leave alone)."""
    try:
        tgt = np.asarray(targets, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"targets must be an array of conductances in siemens: {exc}") from None
    if tgt.ndim < 2:
        tgt = np.atleast_2d(tgt)
    if tgt.shape != tuple(shape):
        raise ValueError(f"targets of shape {tgt.shape} do not match the region of {shape[0]} rows x {shape[1]} "
                         "columns; give targets of the region's shape (or choose the region with rows / cols)")
    return tgt


class ISPPPage(Page):
    """Write-and-verify over a region: calibration, then rows until every cell is finished, then passes."""

    name, label = "ispp", "ISPP"
    fields = {"status": (np.int8, PENDING), "pulses": (np.int32, 0), "g_final": (float, np.nan),
              "reversals": (np.int32, 0), "pass": (np.int16, 0)}

    def __init__(self, targets: NDArray, p: ISPPParams, calibration: Any, keep_log: bool, out_of_window: str,
                 on_instrument: bool | None = None):
        self.raw_targets, self.p = targets, p
        self.on_instrument, self.rule = on_instrument, p.tune_rule()
        self.calibration, self.keep_log, self.out_of_window = calibration, keep_log, out_of_window
        if not (calibration is None or calibration == "auto" or isinstance(calibration, LevelCalibration)):
            raise ValueError(f"calibration must be 'auto', a LevelCalibration or None, got {calibration!r}")
        self.logs_p: list[NDArray] = []
        self.logs_r: list[NDArray] = []

    def check(self, rows, cols) -> None:
        tgt = check_targets(self.raw_targets, (rows.size, cols.size))
        self.tgt = check_window(tgt, self.p.g_window, self.out_of_window)

    def params(self, rows, cols):
        return {"params": self.p.to_dict(), "rows": rows, "cols": cols, "targets_sha": _sha(self.tgt),
                "calibration": _cal_key(self.calibration)}

    def plan(self) -> list[Drive]:
        return ladder_plan(self.p)

    def start(self, run: Run) -> None:
        st, p, tgt = run.store, self.p, self.tgt
        n_r, n_c = run.shape
        if st is not None:
            st.table("reads", READ_DTYPE)
            if not run.resumed:
                st.put_array("targets", tgt)
        cal = None
        if st is not None and st.get_array("calibration") is not None:
            cal = LevelCalibration.from_array(st.get_array("calibration"))
        elif isinstance(self.calibration, LevelCalibration):
            cal = self.calibration
        elif self.calibration == "auto":
            run.phase = "calibrate"
            cal = _auto_calibration(run.bench, tgt, p, run.rows, run.cols)
        if st is not None and cal is not None and st.get_array("calibration") is None:
            st.put_array("calibration", cal.to_array())
            st.flush()
        self.cal = cal
        self.sm = sm = CellProgrammer(tgt, p, cal)
        # cells the instrument confirmed in band during the present pass (ISPPParams.reread_instrument_confirmed)
        self.confirmed_here = np.zeros(sm.target.size, bool)
        run.phase = "program"
        if run.resumed:
            run.pass_no = self._restore(run)
            self._confirm(run)
        skipped = ~np.isfinite(tgt)
        run.done |= skipped
        run.bar.set_done(int(run.done.sum()))  # resumed: the file's finished cells, less those re-opened

    def _restore(self, run: Run) -> int:
        """Per-cell progress of the interrupted run; returns the pass to continue."""
        st, sm = run.store, self.sm
        done = run.done.ravel()
        status = st.cells("status").ravel()
        sm.status[done] = status[done]
        sm.pulses[:] = st.cells("pulses").ravel()
        sm.reversals[:] = st.cells("reversals").ravel()
        g = st.cells("g_final").ravel()
        sm.g_last = np.where(np.isfinite(g), g, sm.g_last)
        sm.budget_base = sm.pulses.copy()
        return int(st.attr("pass", 1))

    def _confirm(self, run: Run) -> None:
        """Converged cells of the file count only once a read finds them in the band again."""
        sm, n_c = self.sm, run.shape[1]
        g = self._read_cells(run, sm.status == CONVERGED)
        out = (sm.status == CONVERGED) & ~((g >= sm.drift_lo) & (g <= sm.drift_hi))
        sm.status[out] = PENDING
        sm.streak_n[out] = 0
        sm.streak_sum[out] = 0.0
        sm.last_pol[out] = 0
        sm.pulsed_last[out] = False
        sm.g_last = np.where(np.isfinite(g), g, sm.g_last)
        if out.any():
            run.reopen(out.reshape(run.shape))
            r, c = np.divmod(np.nonzero(out)[0], n_c)
            run.store.write_cells(r, c, status=np.full(r.size, PENDING, np.int8))
            run.store.flush()

    def _read_cells(self, run: Run, which: NDArray[np.bool_]) -> NDArray[np.float64]:
        """One verify read of the ``which`` cells (flat region mask), NaN elsewhere."""
        sm, p, n_c = self.sm, self.p, run.shape[1]
        g = np.full(sm.target.size, np.nan)
        for ri in range(run.shape[0]):
            cells = ri * n_c + np.arange(n_c)
            sel = which[cells]
            if sel.any():  # read_cells reads the row in one instrument call where the bench sweeps rows itself
                g[cells[sel]] = read_cells(run.bench, int(run.rows[ri]), run.cols[sel], p.v_read, p.read_gate,
                                           p.n_read, sm.g_last[cells[sel]])[0]
        return g

    def row_needed(self, run: Run, ri: int) -> bool:
        n_c = run.shape[1]
        return bool(self.sm.active[ri * n_c:(ri + 1) * n_c].any())

    def _tunes_on_instrument(self, run: Run) -> bool:
        if self.on_instrument is None:
            return run.bench.can_tune(self.rule)
        if self.on_instrument and not run.bench.can_tune(self.rule):
            raise RuntimeError(f"bench {run.bench.name!r} cannot run this write-and-verify on an instrument "
                               f"(can_tune_on_instrument: {run.bench.can_tune_on_instrument}; the SMU's pulse widths "
                               "and the limits must fit both ladders)")
        return bool(self.on_instrument)

    def row(self, run: Run, ri: int) -> None:
        """Advance every active cell of one row until none is left: on the instrument when the bench
        runs the rule itself (one call for the row), else read / decide / pulse from here."""
        if self._tunes_on_instrument(run):
            self._row_on_instrument(run, ri)
            return
        sm, p, n_c = self.sm, self.p, run.shape[1]
        cells = ri * n_c + np.arange(n_c)
        row, cols_idx = int(run.rows[ri]), run.cols
        it = 0
        while True:
            act = sm.active[cells]
            if not act.any():
                break
            sel = cells[act]
            g_row, n_reads = read_cells(run.bench, row, cols_idx[act], p.v_read, p.read_gate, p.n_read, sm.g_last[sel])
            g = np.full(sm.target.size, np.nan)
            g[sel] = g_row
            rec = np.zeros(sel.size, READ_DTYPE)
            rec["pass"], rec["iteration"], rec["row"], rec["col"], rec["g"] = run.pass_no, it, row, cols_idx[act], g_row
            self._log(run, "reads", rec)
            need, pol, amp, gate = sm.decide(g)
            n_pulsed = self._pulse(run, row, cells[0], group_pulses(need, pol, amp, gate), g, it)
            run.bar.update(pulses=n_pulsed, reads=n_reads)
            it += 1
        self._save_row(run, ri, cells)

    def _row_on_instrument(self, run: Run, ri: int) -> None:
        """The row's active cells tuned by the instrument with the same rule, then absorbed into the state machine."""
        sm, n_c = self.sm, run.shape[1]
        cells = ri * n_c + np.arange(n_c)
        act = sm.active[cells]
        if act.any():
            sel, row, cols = cells[act], int(run.rows[ri]), run.cols[act]
            res = run.bench.tune_row(row, cols, sm.target[sel], self.rule, sm.budget_left(sel), sm.start[SET][sel],
                                     sm.start[RESET][sel], sm.spread(sel))
            sm.absorb(sel, res)
            # the instrument's word is checked against its own last read: converged and that read in the band
            self.confirmed_here[sel] = (sm.status[sel] == CONVERGED) & (sm.g_last[sel] >= sm.lo[sel]) & (
                sm.g_last[sel] <= sm.hi[sel])
            n_reads = np.array([log.size for log in res.log])
            rec = np.zeros(int(n_reads.sum()), READ_DTYPE)
            rec["pass"], rec["row"] = run.pass_no, row
            rec["col"] = np.repeat(cols, n_reads)
            rec["iteration"] = np.concatenate([np.arange(k) for k in n_reads])
            rec["g"] = np.concatenate([log["g"] for log in res.log])
            self._log(run, "reads", rec)
            if self.keep_log:
                self.logs_p.append(tune_pulse_records(run, row, cols, res))
            run.bar.update(pulses=int(res.pulses.sum()), reads=int(n_reads.sum()))
        self._save_row(run, ri, cells)

    def _save_row(self, run: Run, ri: int, cells: NDArray[np.intp]) -> None:
        sm = self.sm
        run.save_row(ri, done=sm.status[cells] != PENDING, status=sm.status[cells], pulses=sm.pulses[cells],
                     g_final=sm.g_last[cells], reversals=sm.reversals[cells],
                     **{"pass": np.full(cells.size, run.pass_no)})

    def _pulse(self, run: Run, row: int, first_cell: int, groups: list, g: NDArray, it: int) -> int:
        """Send one iteration's pulse groups of a row (one sequence where the bench runs them);
        returns the number of cells pulsed."""
        p, cols_idx = self.p, run.cols
        sends = [(cols_idx[idx - first_cell], s * a, p.ladder(s).width, gt) for s, a, gt, idx in groups]
        run.bench.pulse_groups(row, sends, iteration=it, g_before=[g[idx] for *_, idx in groups])
        if self.keep_log:
            for (s, a, gt, idx), (cols, _, width, _) in zip(groups, sends):
                prec = np.zeros(idx.size, PULSE_DTYPE)
                prec["session"], prec["phase"], prec["pass"], prec["iteration"] = run.session, b"program", run.pass_no, it
                prec["row"], prec["col"], prec["polarity"] = row, cols, s
                prec["amplitude"], prec["gate"], prec["width"], prec["g_before"] = a, gt, width, g[idx]
                prec["delivered"] = True
                self.logs_p.append(prec)
        return sum(idx.size for *_, idx in groups)

    def _log(self, run: Run, table: str, rec: NDArray) -> None:
        if self.keep_log:
            self.logs_r.append(rec)
        if run.store is not None:
            run.store.append(table, rec)  # flushed with the next pulse record or row

    def next_pass(self, run: Run) -> bool:
        """Verify the finished cells; re-open drifted or failed ones for another pass. Cells the instrument
        confirmed in band during the pass stand on that confirmation unless
        ``ISPPParams.reread_instrument_confirmed``."""
        if run.pass_no >= self.p.passes:
            return False
        sm = self.sm
        run.pass_no += 1
        verify = (sm.status == CONVERGED) | (sm.status == EXHAUSTED)
        if not self.p.reread_instrument_confirmed:
            verify &= ~self.confirmed_here  # their last read, after their last pulse, is in the band
        self.confirmed_here[:] = False
        g = self._read_cells(run, verify)
        reopen = sm.new_pass(g)
        run.reopen(reopen.reshape(run.shape))
        if run.store is not None:
            r, c = np.divmod(np.nonzero(reopen)[0], run.shape[1])
            run.store.write_cells(r, c, status=np.full(r.size, PENDING, np.int8))
            run.store.set_attr("pass", run.pass_no)
            run.store.flush()
        return bool(reopen.any())

    def finish(self, run: Run) -> ISPPResult:
        sm, shape = self.sm, run.shape
        cat = lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt)  # noqa: E731
        return ISPPResult(self.tgt, sm.status.reshape(shape).copy(), sm.pulses.reshape(shape).copy(),
                          sm.g_last.reshape(shape).copy(), sm.reversals.reshape(shape).copy(), run.rows, run.cols,
                          self.p, self.cal, cat(self.logs_p, PULSE_DTYPE), cat(self.logs_r, READ_DTYPE))


def program(bench: Bench, targets: ArrayLike, params: ISPPParams | None = None, *,
            rows: Sequence[int] | None = None, cols: Sequence[int] | None = None,
            calibration: LevelCalibration | str | None = "auto", out: str | None = None,
            resume: bool = True, overwrite: bool = False, chip_id: str = "", bench_file: str | None = None,
            seed: int | None = None, progress: bool = False, keep_log: bool = True,
            out_of_window: str = "raise", on_instrument: bool | None = None) -> ISPPResult:
    """Write-and-verify ``targets`` (S, NaN = leave alone) into the region ``rows`` x ``cols``.

    The targets' shape must equal the region's exactly (default region: the whole chip).
    Targets outside the preset's ``g_window`` raise ``ValueError`` before anything is
    sent; ``out_of_window="clip"`` moves them to the nearest window edge instead. Both
    ladders are checked against the bench limits before the first pulse.

    ``calibration="auto"`` measures rung levels on up to 16 cells of the region first
    (its pulses are recorded like every other; stored in the run file and reused on
    resume); pass a :class:`LevelCalibration` or None (every climb starts at rung 0).
    With ``out`` every read and pulse streams to that HDF5 run file, and re-running with
    the same file resumes: cells finished before are confirmed by a read, the rest go on.

    ``on_instrument``: None (default) runs each row's loop on the instrument when the bench
    can (:meth:`~hil.bench.Bench.can_tune`: a 2600B + 707B bench whose SMU times the ladders'
    widths), True insists, False runs the row loop from the host. Both run the same rule
    (:meth:`ISPPParams.tune_rule`). On such a bench the calibration sequence and the verify
    reads of resume and later passes are row calls on the instrument too (``sweep_row``).
    """
    p = params or preset_for(bench)
    page = ISPPPage(targets, p, calibration, keep_log, out_of_window, on_instrument)
    return execute(bench, page, rows, cols, out=out, resume=resume, overwrite=overwrite, chip_id=chip_id,
                   bench_file=bench_file, seed=seed, progress=progress)


def _sha(a: NDArray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=float).tobytes()).hexdigest()


def _cal_key(calibration: Any) -> str:
    if calibration is None or isinstance(calibration, str):
        return str(calibration)
    return _sha(calibration.to_array())


def _auto_calibration(bench: Bench, tgt: NDArray, p: ISPPParams, rows_idx: NDArray, cols_idx: NDArray,
                      n_cells: int = 16) -> LevelCalibration | None:
    finite = np.isfinite(tgt)
    if not finite.any():
        return None
    # the row of the region with the most cells to program gives the calibration cells
    ri = int(np.argmax(finite.sum(axis=1)))
    cols = cols_idx[finite[ri]][:n_cells]
    return calibrate_levels(bench, int(rows_idx[ri]), cols, p)

