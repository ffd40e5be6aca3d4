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
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from hil.faultmap_versions import FaultMapVersions

from .checks import Alarm, CheckParams, Detector, StageChecks
from .localise import Localisation, localise
from .mapping import MappedMatrix
from .refit import RefitParams, RepairPlan, plan_repair

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ServiceParams:
    """Service-loop settings."""

    checks: CheckParams = field(default_factory=CheckParams)
    refit: RefitParams = field(default_factory=RefitParams)
    n_calibrate: int = 256  #: fault-free VMMs of random inputs that calibrate the checks' noise
    buffer: int = 12  #: VMMs kept per stage (the alarm's evidence in the log)
    n_probe: int = 12  #: random +-1 probe VMMs of the alarmed stage that localise the device
    scan_halfwidth: int = 1  #: the local re-scan covers the cell +- this many lines
    min_explained: float = 0.5  #: a localisation is trusted if one device explains this much


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
            self._read_reference(st)
        self.count.pulses += pulses
        if not self.versions.versions:
            self.versions.commit(self.codes(), "map", {"devices": self.mm.devices}, self.engine.time_s,
                                 "fault map the mapping was solved on")
        self.record("program", pulses=pulses, devices=self.mm.devices, check_devices=self.mm.check_devices,
                    one_minus_cos_reference=self.mm.one_minus_cos())
        return pulses

    def _read_reference(self, st, rows=None) -> None:
        g = self.engine.read(st.array)
        sel = st.codes == 0 if rows is None else np.isin(np.arange(st.shape[0]), rows)[:, None] & (st.codes == 0)
        st.g_ref = np.where(sel, g[:st.shape[0], :st.shape[1]], st.g_ref)

    def calibrate(self, rng: np.random.Generator | int = 0) -> None:
        """Fit the checks' noise scale from fault-free VMMs of random inputs; start the detector."""
        rng = np.random.default_rng(rng)
        self.checks = [StageChecks.build(st, self.p.checks) for st in self.mm.stages]
        u = rng.uniform(-1, 1, (self.p.n_calibrate, self.mm.stages[0].shape[0]))
        for i, st in enumerate(self.mm.stages):
            v = u * st.sign
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
        if x.shape[1] != self.mm.stages[0].shape[0] or not np.all(np.isfinite(x)):
            raise ValueError(f"inputs must be finite with {self.mm.stages[0].shape[0]} entries, got {x.shape}")
        u = x
        alarms: list[Alarm] = []
        for i, st in enumerate(self.mm.stages):
            v = u * st.sign
            out = self.engine.vmm(st.array, v)
            a, drifts, _ = self.detector.update(i, v, out)
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
            self.record("alarm", stage=al.stage, check=al.check, at_vmm=al.vmm, statistic=al.statistic)
        if handle_alarms and alarms:
            for stage in sorted({a.stage for a in alarms}):
                self.handle_alarm(next(a for a in alarms if a.stage == stage))
        return u / self.mm.scale, alarms

    def localise(self, alarm: Alarm, rng: np.random.Generator | None = None) -> Localisation:
        """Probe the alarmed stage with ``n_probe`` random +-1 vectors (the bridge drives a stage directly) and
        locate the device from them: every probe is taken after the change, unlike the stream's history."""
        st = self.mm.stages[alarm.stage]
        rng = rng or np.random.default_rng([self.count.vmms, alarm.stage, alarm.check])
        v = rng.choice([-1.0, 1.0], size=(self.p.n_probe, st.shape[0]))
        out = self.engine.vmm(st.array, v)
        self.count.probe_vmms += self.p.n_probe
        return localise(alarm.stage, st, self.checks[alarm.stage], alarm.check, v, out,
                        self.detector.state[alarm.stage].gain_applied)

    def handle_alarm(self, alarm: Alarm) -> dict:
        """Localise, re-scan the window, then repair, rewrite one cell or re-read the reference."""
        st = self.mm.stages[alarm.stage]
        loc = self.localise(alarm)
        self.record("localise", **{k: v for k, v in asdict(loc).items()})
        h = self.p.scan_halfwidth
        rows = np.arange(max(loc.row - h, 0), min(loc.row + h + 1, st.shape[0]))
        cols = np.arange(max(loc.col - h, 0), min(loc.col + h + 1, st.shape[1]))
        before = [s.g_ref.copy() for s in self.mm.stages]  # each line's pre-fault residual comes from these
        scan_codes, scan_pulses = self.engine.scan(st.array, rows, cols, st.g_ref)
        self.count.pulses += scan_pulses
        restored = int(np.count_nonzero(scan_codes == 0))
        self.count.devices_reprogrammed += restored
        known = st.codes[np.ix_(rows, cols)]
        new = (scan_codes != 0) & (known == 0)
        self.record("scan", stage=alarm.stage, rows=rows.tolist(), cols=cols.tolist(), codes=scan_codes.tolist(),
                    new_faults=int(new.sum()), pulses=scan_pulses, restored=restored)
        # the restore rewrote the window's working cells: their reference is what was read back
        self._read_reference(st, rows)
        if new.any():
            new_codes = [s.codes.copy() for s in self.mm.stages]
            new_codes[alarm.stage][np.ix_(rows, cols)] = np.where(new, scan_codes, known)
            ver = self.versions.commit({s.array: c for s, c in zip(self.mm.stages, new_codes)}, "localise+scan",
                                       {"alarm": asdict(alarm), "localisation": asdict(loc),
                                        "scan_rows": rows, "scan_cols": cols, "scan_codes": scan_codes},
                                       self.engine.time_s, f"{int(new.sum())} new stuck device(s) on {st.array}")
            self.count.faults_found += int(new.sum())
            self.record("faultmap_version", version=ver.number, new_faults=int(new.sum()))
            result = self.repair(new_codes, before)
        elif abs(loc.delta_g) > self.p.refit.band and loc.explained >= self.p.min_explained:
            tgt = np.full(st.shape, np.nan)
            tgt[loc.row, loc.col] = st.g_target[loc.row, loc.col]
            pulses = self.engine.write(st.array, tgt)
            self.count.pulses += pulses
            self.count.devices_reprogrammed += 1
            self._read_reference(st, [loc.row])
            result = self.record("rewrite_cell", stage=alarm.stage, row=loc.row, col=loc.col, pulses=pulses)
        else:
            self.count.rereads += 1
            self._read_reference(st)
            result = self.record("reread_reference", stage=alarm.stage)
        for c, s in zip(self.checks, self.mm.stages):
            c.refresh(s)
        self.detector.reset()
        for b in self.buffers:
            b.clear()
        return result

    def repair(self, new_codes: list[NDArray[np.int8]], before: list[FloatArray] | None = None) -> dict:
        """Incremental repair for the new fault codes: plan, write only what moves, read back."""
        plan = plan_repair(self.mm, new_codes, self.p.refit, before)
        for st, codes in zip(self.mm.stages, new_codes):
            st.codes = codes
            st.g_ref = np.where(codes == 1, 0.0, np.where(codes == 2, self.p.refit.g_max, st.g_ref))
        pulses = self.apply_plan(plan)
        self.count.repairs += 1
        return self.record("repair", writes=plan.writes, pulses=pulses,
                           lines=[{"stage": l.stage, "line": l.line, "moved": l.moved.tolist(),
                                   "residual_before": l.residual_before, "residual_fault": l.residual_fault,
                                   "residual_after": l.residual_after} for l in plan.lines],
                           one_minus_cos_reference=self.mm.one_minus_cos())

    def apply_plan(self, plan: RepairPlan) -> int:
        pulses = 0
        for st, tgt in zip(self.mm.stages, plan.targets):
            if not np.isfinite(tgt).any():
                continue
            pulses += self.engine.write(st.array, tgt)
            st.g_target = np.where(np.isfinite(tgt), tgt, st.g_target)
            self._read_reference(st, np.flatnonzero(np.isfinite(tgt).any(axis=1)))
        self.count.pulses += pulses
        self.count.devices_reprogrammed += plan.writes
        for c, s in zip(self.checks, self.mm.stages):
            c.refresh(s)
        return pulses


__all__ = ["ServiceParams", "ServiceSession", "Counters"]
