"""The service loop's host side: program and verify a mapping, then serve VMMs while detecting and repairing.

A :class:`ServiceSession` owns a :class:`~hil.service.mapping.MappedMatrix`, an engine
(:mod:`hil.service.engine`), the checks and the sequential detector, and a versioned
fault map. Every decision is appended to ``log`` as a plain record (JSON-able), in order:
programming, calibration, drift compensations, alarms, localisations, local scans, new
fault-map versions, repair plans and their writes. With the same seed and inputs the
simulated chip and the session make the same decisions, so a replay reproduces the log.

Repair decision after a localisation (window: the cell and its neighbours on the same
lines, re-scanned with the scan procedure and restored):

* the scan finds new stuck devices -> new fault-map version -> incremental repair
  (:func:`hil.service.refit.plan_repair`) -> write only the planned cells -> read back;
* the scan finds none but the cell moved beyond the write-and-verify band -> rewrite
  that one cell (a drifted or disturbed device);
* nothing found: the reference of the alarmed stage is re-read (reads only, no writes).
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from hil.faultmap import STUCK_OFF, STUCK_ON
from hil.faultmap_versions import FaultMapVersions
from simulated_bench.window_array import WindowParams

from .checks import Alarm, CheckParams, Detector, StageChecks
from .localise import Localisation, localise, localise_all
from .mapping import MappedMatrix, pin_stuck
from .refit import RefitParams, RepairPlan, cos_scale, plan_full_remap, plan_repair, residual_sq, write_model_of

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ServiceParams:
    """Service-loop settings."""

    checks: CheckParams = field(default_factory=CheckParams)
    refit: RefitParams = field(default_factory=RefitParams)
    n_calibrate: int = 256  #: fault-free VMMs of random inputs that calibrate the checks' noise
    buffer: int = 12  #: VMMs kept per stage (the alarm's evidence in the log)
    n_probe: int = 16  #: random +-1 probe VMMs of the alarmed stage that localise the devices
    scan_halfwidth: int = 0  #: the local re-scan covers each localised cell +- this many lines
    burst_sweep: bool = False  #: when one alarm finds several new faults, read every stage for the rest first
    #: (one repair with all of them known: on a 1 % burst 10.7 % of devices written, 1 - cos 1.26x; line by
    #: line as alarms come: 8.1 %, 1.31x, Re(DFT64) two trials)
    compare_full_remap: bool = False  #: also solve a full re-map of the same arrays per repair and log its writes
    polish_rounds: int = 3  #: after a repair's writes, re-fit (at most this many times) the lines the write error
    #: left above target
    suspect_step: float = 0.1  #: a read-back change beyond this fraction of g_max makes a cell a scan suspect
    settle_s: float = 600.0  #: s between programming and reading the reference (fast relaxation)
    min_explained: float = 0.5  #: a localisation is trusted if one device explains this much
    refresh_ratio: float = 1.1  #: maintain() rewrites drifted cells once the read-back fidelity
    #: (1 - cos of the reference against M, computed by the host) exceeds this x its value after programming
    refresh_step: float = WindowParams().verify_band  #: S, a cell is rewritten as drifted (by maintain(), or
    #: when a localisation finds no stuck device) once its read-back is this far from its target. Not the
    #: write model's band: a bench's ISPP band is ~2 uS, and the log-time relaxation after a write takes
    #: about half the cells past it within the hour (Re(DFT64) bench: 4,176 of 8,448 devices rewritten by
    #: the first maintenance), so every maintenance would rewrite half the array and restart its relaxation


@dataclass
class Counters:
    vmms: int = 0
    alarms: int = 0
    drift_events: int = 0
    repairs: int = 0
    full_remaps: int = 0
    devices_reprogrammed: int = 0
    pulses: int = 0
    faults_found: int = 0
    rereads: int = 0
    probe_vmms: int = 0


class ServiceSession:
    """Serve a mapped matrix on an engine, keeping it correct."""

    def __init__(self, mm: MappedMatrix, engine, params: ServiceParams | None = None,
                 versions: FaultMapVersions | None = None, on_event: Callable[[dict], None] | None = None):
        self.mm = mm
        self.engine = engine
        self.p = params or ServiceParams()
        self.versions = versions if versions is not None else FaultMapVersions()
        self.checks: list[StageChecks] = []
        self.detector: Detector | None = None
        self.log: list[dict[str, Any]] = []
        self.count = Counters()
        self.buffers = [deque(maxlen=self.p.buffer) for _ in mm.stages]
        self.on_event = on_event
        self.baseline_omc = float("nan")
        self.certified: list[FloatArray] | None = None  # references after programming or the last maintenance

    # records ------------------------------------------------------------------------------
    def record(self, kind: str, **data) -> dict:
        rec = {"event": kind, "vmm": self.count.vmms, "chip_time_s": float(self.engine.time_s), **data}
        self.log.append(rec)
        if self.on_event is not None:
            self.on_event(rec)
        return rec

    def codes(self) -> dict[str, NDArray[np.int8]]:
        return {st.array: st.codes for st in self.mm.stages}

    # setting up ------------------------------------------------------------------------------
    def program(self) -> int:
        """Write every stage's targets (working cells), read back into the references. Returns pulses."""
        pulses = 0
        for st in self.mm.stages:
            tgt = np.where(st.codes == 0, st.g_target, np.nan)
            pulses += self.engine.write(st.array, tgt)
        # conductances relax fastest right after write-and-verify: the reference is read once they settled
        self.engine.advance(self.p.settle_s / 3600.0)
        for st in self.mm.stages:
            self._read_reference(st, written=np.ones(st.shape, bool))
        # the repairs plan with the write model of the engine they write through (its band, and the sd of where
        # this programming run's writes landed), not a number of another chip
        self.p = replace(self.p, refit=write_model_of(
            self.engine, {st.array: np.where(st.codes == 0, st.g_target, np.nan) for st in self.mm.stages},
            {st.array: st.g_ref for st in self.mm.stages}, self.p.refit))
        self.count.pulses += pulses
        self.baseline_omc = self.mm.one_minus_cos()
        self.certified = [st.g_ref.copy() for st in self.mm.stages]
        if not self.versions.versions:
            self.versions.commit(self.codes(), "map", {"devices": self.mm.devices}, self.engine.time_s,
                                 "fault map the mapping was solved on")
        self.record("program", pulses=pulses, devices=self.mm.devices, check_devices=self.mm.check_devices,
                    one_minus_cos_reference=self.mm.one_minus_cos(), write_model=self.p.refit.write_model())
        return pulses

    def _read_reference(self, st, rows=None, written=None) -> NDArray[np.bool_]:
        """Re-read the reference of ``rows`` (default all). A cell that jumped by a stuck device's step keeps
        its old reference unless it was just ``written`` (the targets, NaN elsewhere; a bool mask accepts any
        read): an unknown new fault must stay visible. Returns the written cells that missed their target
        by more than twice the write-and-verify band (a device that did not respond)."""
        g = self.engine.read(st.array)[:st.shape[0], :st.shape[1]]
        sel = st.codes == 0
        if rows is not None:
            sel = sel & np.isin(np.arange(st.shape[0]), rows)[:, None]
        jumped = np.abs(g - st.g_ref) > self.p.suspect_step * self.p.refit.g_max
        failed = np.zeros(st.shape, bool)
        if written is not None:
            w = np.asarray(written)
            if w.dtype == bool:
                jumped &= ~w
            else:
                w0 = np.nan_to_num(w)
                ok = np.isfinite(w) & (np.abs(g - w0) <= 2 * self.p.refit.band_at(w0))
                failed = np.isfinite(w) & ~ok & sel
                jumped = (jumped & ~ok) | failed
        st.g_ref = np.where(sel & ~jumped, g, st.g_ref)
        return failed

    def calibrate(self, rng: np.random.Generator | int = 0) -> None:
        """Fit the checks' noise scale from fault-free VMMs of random inputs; start the detector."""
        rng = np.random.default_rng(rng)
        self.checks = [StageChecks.build(st, self.p.checks) for st in self.mm.stages]
        u = rng.uniform(-1, 1, (self.p.n_calibrate, self.mm.stages[0].n_in))
        for i, st in enumerate(self.mm.stages):
            v = st.drive(u)
            out = self.engine.vmm(st.array, v)
            self.checks[i].calibrate(v, out)
            u = out[:, :st.n_data]
        self.detector = Detector(self.checks, self.p.checks)
        self.record("calibrate", n=self.p.n_calibrate, rho=[c.rho.tolist() for c in self.checks],
                    checks=[int(c.t.shape[1]) for c in self.checks])

    # serving ----------------------------------------------------------------------------------
    def serve(self, x: FloatArray, handle_alarms: bool = True) -> tuple[FloatArray, list[Alarm]]:
        """Compute x @ M for a batch (B, m) on the chip, one VMM per vector and stage; detect and repair."""
        if self.detector is None:
            raise RuntimeError("calibrate() before serving")
        x = np.atleast_2d(np.asarray(x, float))
        if x.shape[1] != self.mm.stages[0].n_in or not np.all(np.isfinite(x)):
            raise ValueError(f"inputs must be finite with {self.mm.stages[0].n_in} entries, got {x.shape}")
        u = x
        alarms: list[Alarm] = []
        z_of: dict[tuple[int, int], list[float]] = {}
        first = self.detector.n_vmm  # index of this batch's first VMM
        for i, st in enumerate(self.mm.stages):
            v = st.drive(u)
            out = self.engine.vmm(st.array, v)
            a, drifts, z = self.detector.update(i, v, out)
            for al in a:  # the normalised syndromes of the VMM that raised it, for the record
                z_of[(i, al.vmm)] = z[al.vmm - first].tolist()
            for b in range(v.shape[0]):
                self.buffers[i].append((v[b], out[b]))
            for d in drifts:
                self.count.drift_events += 1
                self.record("drift_compensation", stage=i, gain=d.gain, stderr=d.stderr, at_vmm=d.vmm, writes=0)
            alarms += a
            u = out[:, :st.n_data] / (1.0 + self.detector.state[i].gain_applied)
        self.count.vmms += x.shape[0]
        for al in alarms:
            self.count.alarms += 1
            self.record("alarm", stage=al.stage, check=al.check, at_vmm=al.vmm, statistic=al.statistic,
                        z=z_of.get((al.stage, al.vmm), []))
        if handle_alarms and alarms:
            for stage in sorted({a.stage for a in alarms}):
                self.handle_alarm(next(a for a in alarms if a.stage == stage))
        return u / self.mm.scale, alarms

    def localise(self, alarm: Alarm) -> Localisation:
        """The single most likely changed device behind an alarm, from fresh probes of its stage."""
        v, out = self.probe(alarm.stage)
        return localise(alarm.stage, self.mm.stages[alarm.stage], self.checks[alarm.stage], alarm.check, v, out,
                        self.detector.state[alarm.stage].gain_applied)

    def probe(self, stage: int, rng: np.random.Generator | None = None) -> tuple[FloatArray, FloatArray]:
        """``n_probe`` random +-1 VMMs of one stage (the bridge drives a stage directly): (inputs, outputs)."""
        st = self.mm.stages[stage]
        rng = rng or np.random.default_rng([self.count.vmms, stage])
        v = rng.choice([-1.0, 1.0], size=(self.p.n_probe, st.shape[0]))
        self.count.probe_vmms += self.p.n_probe
        return v, self.engine.vmm(st.array, v)

    def _scan_window(self, i: int, window: NDArray[np.bool_], new_codes: list, why: str) -> int:
        """Scan the cells of ``window`` row by row (each restored), put new stuck devices in ``new_codes[i]``."""
        st = self.mm.stages[i]
        if not window.any():
            return 0
        rows = np.flatnonzero(window.any(axis=1))
        found = np.zeros(st.shape, np.int8)
        pulses = restored = 0
        for r in rows:
            c_r = np.flatnonzero(window[r])
            codes_r, p_r = self.engine.scan(st.array, np.array([r]), c_r, st.g_ref)
            found[r, c_r] = codes_r[0]
            pulses += p_r
            restored += int(np.count_nonzero(codes_r == 0))
        self.count.pulses += pulses
        self.count.devices_reprogrammed += restored
        new = window & (found != 0) & (st.codes == 0)
        self.record("scan", stage=i, why=why, cells=np.argwhere(window).tolist(), codes=found[window].tolist(),
                    new_faults=int(new.sum()), pulses=pulses, restored=restored)
        # the restore rewrote the window's working cells: their reference is what was read back
        self._read_reference(st, rows, written=window & (found == 0))
        new_codes[i] = np.where(new, found, new_codes[i]).astype(np.int8)
        return int(new.sum())

    def handle_alarm(self, alarm: Alarm) -> dict:
        """Localise every changed device of the stage from probes, re-scan their windows, then repair,
        rewrite drifted cells, or re-read the reference."""
        i = alarm.stage
        st = self.mm.stages[i]
        v, out = self.probe(i)
        locs = localise_all(i, st, self.checks[i], v, out, self.detector.state[i].gain_applied)
        for loc in locs:
            self.record("localise", **asdict(loc))
        before = [s.g_ref.copy() for s in self.mm.stages]  # each line's pre-fault residual comes from these
        h = self.p.scan_halfwidth
        window = np.zeros(st.shape, bool)
        for loc in locs:
            window[max(loc.row - h, 0):loc.row + h + 1, max(loc.col - h, 0):loc.col + h + 1] = True
        new_codes = [s.codes.copy() for s in self.mm.stages]
        n_new = self._scan_window(i, window, new_codes, "localised")
        if not n_new:
            # the probes did not point at a stuck device: one read of the stage (reads only) shows every
            # cell that jumped by a stuck device's step; only those are scanned
            g = self.engine.read(st.array)[:st.shape[0], :st.shape[1]]
            suspects = (st.codes == 0) & (np.abs(g - st.g_ref) > self.p.suspect_step * self.p.refit.g_max)
            self.record("read_suspects", stage=i, suspects=int(suspects.sum()))
            n_new = self._scan_window(i, suspects, new_codes, "read-back")
        if n_new >= 2 and self.p.burst_sweep:
            # a burst: before solving, one read of every stage (reads only) finds the other new stuck devices,
            # so the repair is solved once with all of them known instead of line by line as alarms come
            for j, sj in enumerate(self.mm.stages):
                g = self.engine.read(sj.array)[:sj.shape[0], :sj.shape[1]]
                suspects = (new_codes[j] == 0) & (np.abs(g - sj.g_ref) > self.p.suspect_step * self.p.refit.g_max)
                self.record("read_suspects", stage=j, suspects=int(suspects.sum()), why="burst")
                n_new += self._scan_window(j, suspects, new_codes, "burst read-back")
        if n_new:
            ver = self.versions.commit({s.array: c for s, c in zip(self.mm.stages, new_codes)}, "localise+scan",
                                       {"alarm": asdict(alarm), "localisations": [asdict(l) for l in locs],
                                        "new_cells": [np.argwhere(c != s.codes).tolist()
                                                      for c, s in zip(new_codes, self.mm.stages)]},
                                       self.engine.time_s, f"{n_new} new stuck device(s) on {st.array}")
            self.count.faults_found += n_new
            self.record("faultmap_version", version=ver.number, new_faults=n_new)
            result = self.repair(new_codes, before)
        else:
            drifted = [l for l in locs if abs(l.delta_g) > self.p.refresh_step and l.explained >= self.p.min_explained
                       and st.codes[l.row, l.col] == 0]
            if drifted:
                tgt = np.full(st.shape, np.nan)
                for l in drifted:
                    tgt[l.row, l.col] = st.g_target[l.row, l.col]
                pulses = self.engine.write(st.array, tgt)
                self.count.pulses += pulses
                self.count.devices_reprogrammed += len(drifted)
                self._read_reference(st, [l.row for l in drifted], written=tgt)
                result = self.record("rewrite_cell", stage=i, cells=[[l.row, l.col] for l in drifted],
                                     pulses=pulses, writes=len(drifted))
            else:
                self.count.rereads += 1
                self._read_reference(st)  # drift of many cells: reads only, jumps stay visible
                result = self.record("reread_reference", stage=i)
        for c, s in zip(self.checks, self.mm.stages):
            c.refresh(s)
        self.detector.reset()
        for b in self.buffers:
            b.clear()
        return result

    def maintain(self) -> dict:
        """Re-read every stage (reads only) and, if the host's fidelity estimate has worsened beyond
        ``refresh_ratio`` x its value after programming, rewrite only the cells that left the band.
        A cell that jumped by a stuck device's step is scanned and repaired, not absorbed in the reference."""
        for i, st in enumerate(self.mm.stages):
            g = self.engine.read(st.array)[:st.shape[0], :st.shape[1]]
            suspects = (st.codes == 0) & (np.abs(g - st.g_ref) > self.p.suspect_step * self.p.refit.g_max)
            st.g_ref = np.where((st.codes == 0) & ~suspects, g, st.g_ref)
            if suspects.any():
                before = [s.g_ref.copy() for s in self.mm.stages]
                new_codes = [s.codes.copy() for s in self.mm.stages]
                n_new = self._scan_window(i, suspects, new_codes, "maintenance read-back")
                if n_new:
                    ver = self.versions.commit({s.array: c for s, c in zip(self.mm.stages, new_codes)},
                                               "maintain+scan", {"new_cells": np.argwhere(new_codes[i] != st.codes)},
                                               self.engine.time_s, f"{n_new} new stuck device(s) on {st.array}")
                    self.count.faults_found += n_new
                    self.record("faultmap_version", version=ver.number, new_faults=n_new)
                    self.repair(new_codes, before)
        omc = self.mm.one_minus_cos()
        writes = pulses = 0
        if omc > self.p.refresh_ratio * self.baseline_omc:
            for st in self.mm.stages:
                move = (st.codes == 0) & (np.abs(st.g_ref - st.g_target) > self.p.refresh_step)
                if move.any():
                    pulses += self.engine.write(st.array, np.where(move, st.g_target, np.nan))
                    writes += int(move.sum())
                    self._read_reference(st, np.flatnonzero(move.any(axis=1)),
                                         written=np.where(move, st.g_target, np.nan))
            self.count.pulses += pulses
            self.count.devices_reprogrammed += writes
        for c, s in zip(self.checks, self.mm.stages):
            c.refresh(s)
        self.detector.reset()
        # the certified state only improves: re-certifying whatever a maintenance reads back would let a
        # repair's slack compound over a week (Re(DFT64), 7 days: 1 - cos 0.073 -> 0.12 in 30 repairs)
        now = [s.g_ref.copy() for s in self.mm.stages]
        if self.certified is None or self.mm.one_minus_cos(now) <= self.mm.one_minus_cos(self.certified):
            self.certified = now
        return self.record("maintain", one_minus_cos_reference=omc, baseline=self.baseline_omc, writes=writes,
                           pulses=pulses, one_minus_cos_after=self.mm.one_minus_cos())

    def repair(self, new_codes: list[NDArray[np.int8]], before: list[FloatArray] | None = None) -> dict:
        """Incremental repair for the new fault codes: plan, write only what moves, read back.

        The repair aims at the better of ``before`` (the references just before this fault) and the
        references certified after programming or the last maintenance: a burst is repaired alarm by
        alarm, and aiming each repair at the end of the last one would let their write errors add up
        (Re(DFT64), 1 % new faults in 11 repairs: 1 - cos crept 10 % above its pre-fault value)."""
        if before is None:
            before = [s.g_ref.copy() for s in self.mm.stages]
        if self.certified is not None and self.mm.one_minus_cos(self.certified) < self.mm.one_minus_cos(before):
            before = self.certified
        plan = plan_repair(self.mm, new_codes, self.p.refit, before)
        # what the host expects: the aim, and the plan's product as if every write landed on its target
        new = [(c != 0) & (s.codes == 0) for c, s in zip(new_codes, self.mm.stages)]
        planned = [np.where(np.isfinite(t), t, pin_stuck(s.g_ref, c, self.p.refit.g_max))
                   for t, c, s in zip(plan.targets, new_codes, self.mm.stages)]
        expect = {"new_stuck_off": int(sum(((c == STUCK_OFF) & n).sum() for c, n in zip(new_codes, new))),
                  "new_stuck_on": int(sum(((c == STUCK_ON) & n).sum() for c, n in zip(new_codes, new))),
                  "one_minus_cos_aim": self.mm.one_minus_cos(before),
                  "one_minus_cos_planned": self.mm.one_minus_cos(planned)}
        full_writes = None
        if self.p.compare_full_remap and len(self.mm.stages) == 2:
            # what a fresh factorization of the same arrays with the new masks would write (planned, not done)
            _, full = plan_full_remap(self.mm, new_codes, self.mm.stages[0].n_data,
                                      np.random.default_rng([self.count.vmms, self.count.repairs]), self.p.refit)
            full_writes = full.writes
        for st, codes in zip(self.mm.stages, new_codes):
            st.codes = codes
            st.g_ref = pin_stuck(st.g_ref, codes, self.p.refit.g_max)
        pulses = self.apply_plan(plan)
        for _ in range(self.p.polish_rounds if len(self.mm.stages) == 2 else 0):
            # the writes landed within the band, not on target: while the read-back product is above its
            # pre-fault residual by the slack, the repaired lines are fitted again around what was read back
            # (a few steep moves per round undo most of the write error a long support left)
            c = cos_scale(self.mm, before)
            if residual_sq(self.mm, scale=c) <= self.p.refit.slack ** 2 * residual_sq(self.mm, before, c):
                break
            again = ([l.line for l in plan.lines if l.stage == 0], [l.line for l in plan.lines if l.stage == 1])
            last = plan_repair(self.mm, [s.codes for s in self.mm.stages], self.p.refit, before, again)
            if not last.writes:
                break
            pulses += self.apply_plan(last)
            plan.lines += last.lines
            plan.targets = [np.where(np.isfinite(b), b, a) for a, b in zip(plan.targets, last.targets)]
        self.count.repairs += 1
        return self.record("repair", writes=plan.writes, pulses=pulses, full_remap_writes=full_writes, **expect,
                           lines=[{"stage": l.stage, "line": l.line, "moved": l.moved.tolist(),
                                   "residual_before": l.residual_before, "residual_fault": l.residual_fault,
                                   "residual_after": l.residual_after} for l in plan.lines],
                           one_minus_cos_reference=self.mm.one_minus_cos())

    def apply_plan(self, plan: RepairPlan, depth: int = 0) -> int:
        """Write the plan's targets, read back; a device that did not follow its write is scanned and, if
        stuck, repaired in turn (at most three rounds)."""
        pulses = 0
        failed_any = []
        for i, (st, tgt) in enumerate(zip(self.mm.stages, plan.targets)):
            if not np.isfinite(tgt).any():
                continue
            pulses += self.engine.write(st.array, tgt)
            st.g_target = np.where(np.isfinite(tgt), tgt, st.g_target)
            failed = self._read_reference(st, np.flatnonzero(np.isfinite(tgt).any(axis=1)), written=tgt)
            if failed.any():
                failed_any.append((i, failed))
        self.count.pulses += pulses
        self.count.devices_reprogrammed += plan.writes
        for c, s in zip(self.checks, self.mm.stages):
            c.refresh(s)
        if failed_any and depth < 3:
            before = [s.g_ref.copy() for s in self.mm.stages]
            new_codes = [s.codes.copy() for s in self.mm.stages]
            n_new = sum(self._scan_window(i, f, new_codes, "write did not verify") for i, f in failed_any)
            if n_new:
                ver = self.versions.commit({s.array: c for s, c in zip(self.mm.stages, new_codes)}, "write+scan",
                                           {"failed_writes": [np.argwhere(f) for _, f in failed_any]},
                                           self.engine.time_s, f"{n_new} device(s) stuck found by their writes")
                self.count.faults_found += n_new
                self.record("faultmap_version", version=ver.number, new_faults=n_new)
                plan2 = plan_repair(self.mm, new_codes, self.p.refit, before)
                for st, codes in zip(self.mm.stages, new_codes):
                    st.codes = codes
                    st.g_ref = pin_stuck(st.g_ref, codes, self.p.refit.g_max)
                pulses += self.apply_plan(plan2, depth + 1)
        return pulses


__all__ = ["ServiceParams", "ServiceSession", "Counters"]
