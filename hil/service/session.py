"""The service loop's host side: program and verify a mapping, then serve VMMs while detecting and repairing.

A :class:`ServiceSession` owns a :class:`~hil.service.mapping.MappedMatrix`, an engine
(:mod:`hil.service.engine`), the checks and the sequential detector, and a versioned
fault map. Every decision is appended to ``log`` as a plain record (JSON-able), in order:
programming, calibration, drift compensations, alarms, localisations, local scans, new
fault-map versions, repair plans and their writes. With the same seed and inputs the
simulated chip and the session make the same decisions, so a replay reproduces the log.

Repair decision after a localisation (window: the cell and its neighbours on the same
lines, re-scanned with the scan procedure and restored):

* the scan finds new stuck devices -> new fault-map version -> repair: on a factorized
  (two-stage) mapping the **hybrid** repair (``ServiceParams.patch``, the default) patches each
  new stuck data device digitally at once (:attr:`~hil.service.mapping.Stage.patch`: the host adds
  sign_i u_i (g_before - g_stuck) to output j of every VMM, after the checks and the drift gain,
  before the bridge; zero writes, the served operator is the pre-fault one again), then the
  analog refit retires the patches it can absorb within a few writes, forces the costliest
  beyond a cap on patched MACs, and spends what is left of its write budget re-fitting the
  faulted lines toward the aim; with ``patch: false`` (and on differential pairs, whose partner
  device takes up a stuck device's weight) the incremental analog repair
  (:func:`hil.service.refit.plan_repair`) writes only the planned cells, reads back and polishes;
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
    patch: bool = True  #: hybrid repair of a two-stage mapping: every newly found stuck data device is patched at
    #: once (the host adds sign_i u_i (g_before - g_stuck) to output j digitally, zero writes; Stage.patch), then
    #: the analog refit retires the patches it can absorb cheaply. False: analog-only repair (plan_repair)
    patch_absorb_writes: int = 4  #: a patched fault's line is re-fitted in analog and its patch retired only if
    #: its refit gets the line back within its share of the aim (slack^2 - 1 of its pre-fault residual^2, and the
    #: product within slack^2 of its pre-fault residual^2) writing at most this many devices
    patch_write_budget: float = 0.005  #: writes one repair may spend retiring patches, as a fraction of the mapped
    #: devices (lines are tried cheapest patch first; the rest stay patched)
    patch_max_frac: float = 0.05  #: most patched devices per stage, as a fraction of its data MACs (n_in x n_data):
    #: beyond it the costliest patches' lines are re-fitted in analog whatever they write (the analog-only repair)


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
        self.certified = self.mm.effective()
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
            # the checks compared the analog output with the reference of what is programmed; the drift gain
            # corrects the analog part; the digital patch is exact and is added after it, before the bridge
            u = st.add_patch(v, out[:, :st.n_data] / (1.0 + self.detector.state[i].gain_applied))
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
        before = self.mm.effective()  # each line's pre-fault residual comes from these (patches included)
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
                                                      for c, s in zip(new_codes, self.mm.stages)],
                                        "patched": self._to_patch(new_codes)},
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
                before = self.mm.effective()
                new_codes = [s.codes.copy() for s in self.mm.stages]
                n_new = self._scan_window(i, suspects, new_codes, "maintenance read-back")
                if n_new:
                    ver = self.versions.commit({s.array: c for s, c in zip(self.mm.stages, new_codes)},
                                               "maintain+scan", {"new_cells": np.argwhere(new_codes[i] != st.codes),
                                                                 "patched": self._to_patch(new_codes)},
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
        now = self.mm.effective()
        if self.certified is None or self.mm.one_minus_cos(now, False) <= self.mm.one_minus_cos(self.certified, False):
            self.certified = now
        return self.record("maintain", one_minus_cos_reference=omc, baseline=self.baseline_omc, writes=writes,
                           pulses=pulses, one_minus_cos_after=self.mm.one_minus_cos())

    def repair(self, new_codes: list[NDArray[np.int8]], before: list[FloatArray] | None = None) -> dict:
        """Repair for the new fault codes: hybrid (``ServiceParams.patch``, two-stage mappings) or analog-only.

        ``before`` are the served conductances just before this fault (:meth:`MappedMatrix.effective`).
        The repair aims at the better of them and the ones certified after programming or the last
        maintenance: a burst is repaired alarm by alarm, and aiming each repair at the end of the last one
        would let their write errors add up (Re(DFT64), 1 % new faults in 11 repairs: 1 - cos crept 10 %
        above its pre-fault value).

        Analog-only: plan (:func:`~hil.service.refit.plan_repair`), write only what moves, read back, polish.
        Hybrid: each new stuck data device is patched to what it held before the fault (the served operator
        is the pre-fault one again, zero writes), then :meth:`_absorb` retires the patches the analog refit
        can take over cheaply, under ``patch_write_budget``, and forces the costliest beyond ``patch_max_frac``.
        """
        pre = before if before is not None else self.mm.effective()
        before = pre
        w0 = self.count.devices_reprogrammed
        if self.certified is not None and (self.mm.one_minus_cos(self.certified, False)
                                           < self.mm.one_minus_cos(before, False)):
            before = self.certified
        new = [(c != 0) & (s.codes == 0) for c, s in zip(new_codes, self.mm.stages)]
        expect = {"new_stuck_off": int(sum(((c == STUCK_OFF) & n).sum() for c, n in zip(new_codes, new))),
                  "new_stuck_on": int(sum(((c == STUCK_ON) & n).sum() for c, n in zip(new_codes, new))),
                  "one_minus_cos_aim": self.mm.one_minus_cos(before, False)}
        full_writes = None
        if self.p.compare_full_remap and len(self.mm.stages) == 2:
            # what a fresh factorization of the same arrays with the new masks would write (planned, not done)
            _, full = plan_full_remap(self.mm, new_codes, self.mm.stages[0].n_data,
                                      np.random.default_rng([self.count.vmms, self.count.repairs]), self.p.refit)
            full_writes = full.writes
        if self.hybrid:
            data = self._new_stuck_data(new_codes)
            self._install(new_codes, pre)
            expect["one_minus_cos_planned"] = self.mm.one_minus_cos()  # the patch restores the pre-fault operator
            pulses, patch, lines = self._absorb(before, data)
            self.count.repairs += 1
            for c, s in zip(self.checks, self.mm.stages):  # the checks compare with the pinned references
                c.refresh(s)
            if self.detector is not None:
                self.detector.reset()
            return self.record("repair", writes=self.count.devices_reprogrammed - w0, pulses=pulses,
                               full_remap_writes=full_writes, **expect, patch=patch,
                               lines=[_line_record(l) for l in lines], one_minus_cos_reference=self.mm.one_minus_cos())
        plan = plan_repair(self.mm, new_codes, self.p.refit, before)
        # what the host expects: the plan's product as if every write landed on its target
        planned = [np.where(np.isfinite(t), t, pin_stuck(s.g_ref, c, self.p.refit.g_max))
                   for t, c, s in zip(plan.targets, new_codes, self.mm.stages)]
        expect["one_minus_cos_planned"] = self.mm.one_minus_cos(planned)
        for st, codes in zip(self.mm.stages, new_codes):
            st.codes = codes
            st.g_ref = pin_stuck(st.g_ref, codes, self.p.refit.g_max)
        pulses = self.apply_plan(plan)
        for _ in range(self.p.polish_rounds if len(self.mm.stages) == 2 else 0):
            # the writes landed within the band, not on target: while the read-back product is above its
            # pre-fault residual by the slack, the repaired lines are fitted again around what was read back
            # (a few steep moves per round undo most of the write error a long support left)
            c = cos_scale(self.mm, before, False)
            if residual_sq(self.mm, scale=c) <= self.p.refit.slack ** 2 * residual_sq(self.mm, before, c, False):
                break
            again = ([l.line for l in plan.lines if l.stage == 0], [l.line for l in plan.lines if l.stage == 1])
            last = plan_repair(self.mm, [s.codes for s in self.mm.stages], self.p.refit, before, again)
            if not last.writes:
                break
            pulses += self.apply_plan(last)
            plan.lines += last.lines
            plan.targets = [np.where(np.isfinite(b), b, a) for a, b in zip(plan.targets, last.targets)]
        self.count.repairs += 1
        # every device write of the repair: polish rounds' re-writes and the repairs of writes that did not verify
        # included, so the run file's repairs add up to the session's count
        return self.record("repair", writes=self.count.devices_reprogrammed - w0, pulses=pulses,
                           full_remap_writes=full_writes, **expect,
                           lines=[_line_record(l) for l in plan.lines],
                           one_minus_cos_reference=self.mm.one_minus_cos())

    # the hybrid repair: digital patch, absorbed by the analog refit where cheap -----------------------------
    @property
    def hybrid(self) -> bool:
        """Repairs patch new stuck devices digitally first (``ServiceParams.patch``; two-stage mappings: a
        differential pair's partner device takes up its stuck device's weight in analog)."""
        return self.p.patch and len(self.mm.stages) == 2

    def _to_patch(self, new_codes: list[NDArray[np.int8]]) -> list[list[list[int]]]:
        """Per stage, the cells a hybrid repair of ``new_codes`` patches (the fault-map version's evidence)."""
        if not self.hybrid:
            return [[] for _ in self.mm.stages]
        return [np.argwhere(m).tolist() for m in self._new_stuck_data(new_codes)]

    def _new_stuck_data(self, new_codes: list[NDArray[np.int8]]) -> list[NDArray[np.bool_]]:
        """Per stage, the data devices ``new_codes`` mark stuck that the host knew as working: the ones a
        hybrid repair patches (checksum outputs are compared in analog, never patched)."""
        return [(c != 0) & (s.codes == 0) & (np.arange(c.shape[1]) < s.n_data)
                for c, s in zip(new_codes, self.mm.stages)]

    def _install(self, new_codes: list[NDArray[np.int8]], g_intended: list[FloatArray]) -> None:
        """Adopt ``new_codes`` (stuck references pinned to their rails) and patch each new stuck data device
        to ``g_intended`` (what the host served there before it stuck, or what was being written)."""
        for st, codes, g, cells in zip(self.mm.stages, new_codes, g_intended, self._new_stuck_data(new_codes)):
            st.codes = codes
            st.g_ref = pin_stuck(st.g_ref, codes, self.p.refit.g_max)
            st.set_patch(cells, np.where(cells, g, np.nan))

    def _line_cost(self, stage: int, line: int) -> float:
        """Norm (S^2) of the product error a line's patches stand in for: their rank-1 errors summed."""
        sa, sb = self.mm.stages
        k, n = sa.n_data, sb.n_data
        if stage == 0:
            return float(np.linalg.norm(sa.sign[line] * sa.patch[line, :k] @ (sb.sign[:, None] * sb.g_ref[:, :n])))
        return float(np.linalg.norm((sa.sign[:, None] * sa.g_ref[:, :k]) @ (sb.sign * sb.patch[:, line])))

    def _absorb(self, before: list[FloatArray], new: list[NDArray[np.bool_]]) -> tuple[int, dict, list]:
        """Retire patches by analog line refits where cheap; force the costliest beyond the cap.

        The lines of the new patches are tried cheapest patch first. Each refit sees the other patches
        still on, and its budget is the line's share of the aim: the product's squared residual may rise
        by (slack^2 - 1) x the line's pre-fault residual^2, and stay within slack^2 x the pre-fault one.
        It is written, and the line's patches retired, only if it meets that with at most
        ``patch_absorb_writes`` writes and the repair's writes stay within ``patch_write_budget``.
        Then, while a stage has more patched devices than ``patch_max_frac`` of its data MACs, its
        costliest patched line is re-fitted with the full analog repair (lines crossing it too), whatever
        it writes. Last, if the served product is still above slack^2 x the aim's residual^2 (drift since
        the aim was certified), the faulted lines (and the lines crossing them) are re-fitted with the
        patches on, within the writes left of the budget. Returns (pulses, the patch record, the line
        repairs written)."""
        p, stages = self.p.refit, self.mm.stages
        c = cos_scale(self.mm, before, False)
        err_pre = self.mm.product(before, False) - c * self.mm.target
        total_pre = float(np.sum(err_pre ** 2))
        budget_writes = int(self.p.patch_write_budget * self.mm.devices)
        installed = [[i, int(r), int(col)] for i, m in enumerate(new) for r, col in np.argwhere(m)]
        lines = sorted({(0, int(r)) for r in np.flatnonzero(new[0].any(axis=1))}
                       | {(1, int(j)) for j in np.flatnonzero(new[1].any(axis=0))},
                       key=lambda sl: (self._line_cost(*sl), sl))
        pulses = written = 0
        absorbed, kept, forced, done = [], [], [], []
        for stage, line in lines:
            r_line = float(np.linalg.norm(err_pre[line] if stage == 0 else err_pre[:, line]))
            now = residual_sq(self.mm, scale=c)
            # the refit's budget: this line's share of the aim, with every other patch still on
            aim = min(now + (p.slack ** 2 - 1.0) * r_line ** 2, p.slack ** 2 * total_pre)
            plan, ok = self._plan_line(stage, line, before, replace(p, spare_support=0, slack=np.sqrt(aim / total_pre)))
            planned = [np.where(np.isfinite(t), t, st.g_ref) + d for t, st, d in zip(plan.targets, stages, ok)]
            cheap = (plan.writes <= self.p.patch_absorb_writes and written + plan.writes <= budget_writes
                     and residual_sq(self.mm, planned, c, False) <= aim)
            if not cheap:
                kept.append([stage, line, plan.writes])
                continue
            self._retire(stage, line)
            pulses += self.apply_plan(plan) if plan.writes else 0
            written += plan.writes
            absorbed.append([stage, line, plan.writes])
            done += plan.lines
        for i, st in enumerate(stages):
            cap = int(self.p.patch_max_frac * st.shape[0] * st.n_data)
            while st.patched.sum() > cap:
                on = st.patched.any(axis=1 if i == 0 else 0)
                line = max(np.flatnonzero(on), key=lambda l: self._line_cost(i, int(l)))
                plan, _ = self._plan_line(i, int(line), before, p)
                self._retire(i, int(line))
                pulses += self.apply_plan(plan) if plan.writes else 0
                forced.append([i, int(line), plan.writes])
                done += plan.lines
                written += plan.writes
        # what is left of the budget goes to the refit of the faulted lines with the patches on, aimed like the
        # analog repair at the better of the pre-fault and the certified state (the drift since then included)
        refit = 0
        left = budget_writes - written
        if left > 0 and lines and residual_sq(self.mm, scale=c) > p.slack ** 2 * total_pre:
            plan = plan_repair(self.mm, [st.codes for st in stages], replace(p, write_budget=left), before,
                               ([l for s_, l in lines if s_ == 0], [l for s_, l in lines if s_ == 1]))
            if plan.writes:
                pulses += self.apply_plan(plan)
                refit = plan.writes
                done += plan.lines
        return pulses, {"installed": installed, "absorbed_lines": absorbed, "kept_lines": kept,
                        "forced_lines": forced, "refit_writes": refit, **self.mm.patch_counts()}, done

    def _plan_line(self, stage: int, line: int, before: list[FloatArray], p: RefitParams
                   ) -> tuple[RepairPlan, list[FloatArray]]:
        """The analog refit of one line (a row of MA, a column of MB) with its own patches off, every other
        patch on; returns the plan and the patches it assumes."""
        keep = [st.patch for st in self.mm.stages]
        keep[stage][self._line_mask(stage, line)] = 0.0
        lines = ([line], []) if stage == 0 else ([], [line])
        return plan_repair(self.mm, [st.codes for st in self.mm.stages], p, before, lines, keep), keep

    def _line_mask(self, stage: int, line: int) -> NDArray[np.bool_]:
        """The devices of a line: row ``line`` of MA (stage 0) or column ``line`` of MB (stage 1)."""
        cells = np.zeros(self.mm.stages[stage].shape, bool)
        cells[(line, slice(None)) if stage == 0 else (slice(None), line)] = True
        return cells

    def _retire(self, stage: int, line: int) -> None:
        self.mm.stages[stage].clear_patch(self._line_mask(stage, line))

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
            before = self.mm.effective()
            new_codes = [s.codes.copy() for s in self.mm.stages]
            n_new = sum(self._scan_window(i, f, new_codes, "write did not verify") for i, f in failed_any)
            if n_new:
                ver = self.versions.commit({s.array: c for s, c in zip(self.mm.stages, new_codes)}, "write+scan",
                                           {"failed_writes": [np.argwhere(f) for _, f in failed_any],
                                            "patched": self._to_patch(new_codes)},
                                           self.engine.time_s, f"{n_new} device(s) stuck found by their writes")
                self.count.faults_found += n_new
                self.record("faultmap_version", version=ver.number, new_faults=n_new)
                if self.hybrid:
                    # patched to what its write asked of it: the plan around it counted on that value
                    cells = self._to_patch(new_codes)
                    self._install(new_codes, [np.where(np.isfinite(t), t, b) for t, b in zip(plan.targets, before)])
                    for c, s in zip(self.checks, self.mm.stages):
                        c.refresh(s)
                    self.record("patch", why="write did not verify", installed=[
                        [i, r, col] for i, cs in enumerate(cells) for r, col in cs], **self.mm.patch_counts())
                    return pulses
                plan2 = plan_repair(self.mm, new_codes, self.p.refit, before)
                for st, codes in zip(self.mm.stages, new_codes):
                    st.codes = codes
                    st.g_ref = pin_stuck(st.g_ref, codes, self.p.refit.g_max)
                pulses += self.apply_plan(plan2, depth + 1)
        return pulses


def _line_record(l) -> dict:
    return {"stage": l.stage, "line": l.line, "moved": l.moved.tolist(), "residual_before": l.residual_before,
            "residual_fault": l.residual_fault, "residual_after": l.residual_after}


__all__ = ["ServiceParams", "ServiceSession", "Counters"]
