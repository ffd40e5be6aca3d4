"""Fault-map-driven reprogramming in service: scan, map, program, verify, then serve while detecting and repairing.

The page, step by step (``run_workflow``):

1. scan every array (SET to the top of the window, read, RESET, read: stuck devices do not move);
   the codes become version 0 of the fault-map store;
2. map the target around them: fault-aware factorization with checksum columns (a matrix), or
   the seed-000 network's layers on differential pairs;
3. program with write-and-verify, let the fast relaxation pass, read back the references, and
   verify: calibrate the checks on fault-free VMMs and record the read-back fidelity;
4. serve the stream hour by hour (SIGTERM or SIGHUP: the hour in hand is finished and recorded,
   then the run stops as ``interrupted``; Ctrl-C stops at once, the hour's decisions so far kept): every VMM is checked, alarms are localised, re-scanned and
   repaired with the fewest writes (:class:`hil.service.ServiceSession`), references are re-read
   every ``maintain_every_hours``; chip time then advances an hour.

Everything is recorded as it happens in the run file, an rram-hil run (:mod:`hil.runstore`,
protocol ``service``, parameters = the workflow text; ``hil view RUN.h5`` shows it live)::

    /cells/done            (hours, 1) the hours served
    /tables/fidelity       per hour: hour, chip_time_h, fidelity (simulated ground truth: 1 - cos
                           or accuracy), fidelity_reference (what the host computes from its
                           read-back), alarms, repairs, devices_reprogrammed, faults_found, faults_appeared
    /tables/events         every decision in order (scan_array, program, calibrate, verify, alarm,
                           localise, scan, faultmap_version, repair, maintain, drift_compensation, hour):
                           chip_time_h, vmm, event, record (the decision as JSON)
    /tables/alarms, /tables/repairs   the alarms and repairs again as plain columns (for plots)

and the fault-map versions in ``<run>.faults.h5`` (:mod:`hil.faultmap_versions`).

Resume and replay are one mechanism: the simulated chip is seeded, so a re-run of the same
workflow makes the same decisions. Re-opening an unfinished run replays the hours already
done, checks that every decision matches the recorded one, and carries on; ``replay=True``
replays a finished run and reports the first decision that differs, if any. (A real chip
cannot be replayed; this command runs on the simulated window-level chip.)
"""
from __future__ import annotations

import json
import os
import signal
from typing import Any, Callable

import h5py
import numpy as np

from hil.faultmap_versions import FaultMapVersions
from hil.progress import Progress
from hil.runstore import RunStore
from hil.service import ServiceParams, ServiceSession, WindowEngine, map_direct, map_factorized
from hil.service.engine import window_chip
from hil.service.network import ServedNetwork, layer_matrix
from hil.service.tiles import serve_tiled, tile_shapes
from hil.service.workflow import Workflow, target_matrix, workload

PROTOCOL = "service"
TIMELINE = np.dtype([("hour", "i4"), ("chip_time_h", "f8"), ("fidelity", "f8"), ("fidelity_reference", "f8"),
                     ("alarms", "i4"), ("repairs", "i4"), ("devices_reprogrammed", "i8"), ("faults_found", "i4"),
                     ("faults_appeared", "i4")])
EVENTS = np.dtype([("chip_time_h", "f8"), ("vmm", "i8"), ("event", "S24"), ("record", h5py.string_dtype())])
ALARMS = np.dtype([("chip_time_h", "f8"), ("vmm", "i8"), ("stage", "i2"), ("check", "i2"), ("statistic", "f8")])
REPAIRS = np.dtype([("chip_time_h", "f8"), ("vmm", "i8"), ("devices_reprogrammed", "i8"), ("pulses", "i8")])


class ReplayMismatch(RuntimeError):
    """A replayed decision differs from the recorded one."""


class RunFile:
    """The service run file, an rram-hil run (:class:`hil.runstore.RunStore`, so ``hil view`` shows it live):
    one row per hour (``cells/done`` counts hours), tables ``fidelity`` (the timeline), ``events`` (every
    decision as JSON), ``alarms`` and ``repairs``; flushed after every hour."""

    def __init__(self, path: str, workflow_text: str, seed: int, hours: int, replay: bool = False):
        self.path = path
        self.replay = replay
        if replay:
            self.store = None
            with h5py.File(path, "r") as f:
                if f.attrs.get("protocol") != PROTOCOL:
                    raise ValueError(f"{path} is not a service run file")
                if f.attrs.get("status") != "complete":
                    raise ValueError(f"{path} is not a finished run; run it (it resumes) before replaying it")
                if json.loads(f.attrs["parameters"]).get("workflow") != workflow_text:
                    raise ValueError(f"{path} was written by another workflow")
                self.recorded = [json.loads(r) for r in f["tables/events"]["record"].astype(str)] \
                    if "tables/events" in f else []
                self.hours_done = int(f.attrs.get("hours_done", 0))
            return
        self.store = RunStore.open(path, PROTOCOL, {"workflow": workflow_text}, (hours, 1), seed=seed)
        for name, dtype in (("fidelity", TIMELINE), ("events", EVENTS), ("alarms", ALARMS), ("repairs", REPAIRS)):
            self.store.table(name, dtype, chunk=256)
        ev = self.store._f["tables/events"]
        self.recorded = [json.loads(r) for r in ev["record"].astype(str)] if ev.shape[0] else []
        self.hours_done = int(self.store.attr("hours_done", 0))

    def append(self, events: list[dict], row: tuple | None) -> None:
        st = self.store
        if events:
            st.append("events", np.array([(e.get("chip_time_s", 0.0) / 3600, e.get("vmm", 0), e["event"],
                                           json.dumps(e, default=_json_default)) for e in events], EVENTS))
            al = [(e["chip_time_s"] / 3600, e.get("at_vmm", e["vmm"]), e["stage"], e["check"], e["statistic"])
                  for e in events if e["event"] == "alarm"]
            if al:
                st.append("alarms", np.array(al, ALARMS))
            rep = [(e["chip_time_s"] / 3600, e["vmm"], e["writes"], e["pulses"]) for e in events
                   if e["event"] == "repair"]
            if rep:
                st.append("repairs", np.array(rep, REPAIRS))
        if row is not None:
            st.append("fidelity", np.array([row], TIMELINE))
            self.hours_done = int(row[0]) + 1
            st.write_cells([row[0]], [0], done=True)
            st.set_attr("hours_done", self.hours_done)
        st.flush()

    def finish(self, status: str) -> None:
        if self.store is not None:
            self.store.finish(status)


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON-able: {type(o)}")


def _canonical(e: dict) -> str:
    return json.dumps(e, default=_json_default, sort_keys=True)


def build_chip(wf: Workflow) -> dict:
    """The simulated chip the workflow describes: one window-level array per block, seeded."""
    return window_chip(block_shapes(wf), wf.chip.initial_fault_rate, wf.chip.aging_params(), wf.seed,
                       wf.chip.read_noise_scale)


def block_shapes(wf: Workflow) -> dict[str, tuple[int, int]]:
    if wf.mapping.target == "digits":
        from hil.networks.digits import LAYER_SIZES

        return {f"L{l}": (2 * (LAYER_SIZES[l] + 1), LAYER_SIZES[l + 1]) for l in range(len(LAYER_SIZES) - 1)}
    m_ = target_matrix(wf.mapping)
    if wf.mapping.tile is not None:
        return tile_shapes(m_.shape, wf.mapping.tile, wf.mapping.k, wf.mapping.checksums)
    m, n = m_.shape
    k = wf.mapping.k or m
    extra = 2 if wf.mapping.checksums else 0
    return {"A": (m, k + extra), "B": (k, n + extra)}


def run_workflow(wf: Workflow, workflow_text: str, out: str, progress: bool = True, replay: bool = False,
                 echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume, or replay) a service workflow; returns the summary. See the module docstring."""
    run = RunFile(out, workflow_text, wf.seed, int(np.ceil(wf.stream.hours)), replay)
    recorded = run.recorded
    hours_recorded = run.hours_done
    # the version store is regenerated by every (re)start: the replayed decisions commit the same versions
    if not replay and os.path.exists(out + ".faults.h5"):
        os.remove(out + ".faults.h5")
    versions = FaultMapVersions(None if replay else out + ".faults.h5")
    pending: list[dict] = []
    position = [0]  # index into the recorded events while replaying

    def on_event(e: dict) -> None:
        i = position[0]
        if i < len(recorded):
            if _canonical(recorded[i]) != _canonical(json.loads(json.dumps(e, default=_json_default))):
                raise ReplayMismatch(f"decision {i} differs from the recorded run: recorded {recorded[i]['event']} "
                                     f"at VMM {recorded[i].get('vmm')}, replayed {e['event']} at VMM {e.get('vmm')}")
            position[0] += 1
        else:
            pending.append(e)

    arrays = build_chip(wf)
    engine_of = {}
    rng = np.random.default_rng([wf.seed, 1])
    params = ServiceParams(compare_full_remap=wf.mapping.target != "digits")
    # 1. scan every array (nothing is programmed yet: the restore target is the RESET floor)
    scanned = {}
    for name, arr in arrays.items():
        eng = WindowEngine({name: arr})
        codes, pulses = eng.scan(name, np.arange(arr.shape[0]), np.arange(arr.shape[1]), np.zeros(arr.shape))
        scanned[name] = codes
        on_event({"event": "scan_array", "array": name, "stuck": int(np.count_nonzero(codes)), "pulses": pulses,
                  "vmm": 0, "chip_time_s": arr.time_s})
    versions.commit(scanned, "scan", {"arrays": list(scanned)}, 0.0, "full scan before mapping")
    # 2. map, 3. program and verify
    sessions: list[ServiceSession] = []
    if wf.mapping.target == "digits":
        from hil.networks.digits import load_digits_data, paper_split, train_digits_network

        x, y = load_digits_data()
        tr, te = paper_split(y, wf.seed)
        net = train_digits_network(x[tr], y[tr], wf.seed)
        for l in range(len(net.Ws)):
            name = f"L{l}"
            mm = map_direct(layer_matrix(net, l), scanned[name], array=name)
            sessions.append(ServiceSession(mm, WindowEngine({name: arrays[name]}), params, versions, on_event))
        served = ServedNetwork(net, sessions)
        n_in = net.Ws[0].shape[0]

        def serve(batch):
            served.forward(batch)

        def fidelity() -> tuple[float, float]:
            acc = float(np.mean(np.argmax(_forward_true(served, x[te]), axis=1) == y[te]))
            return acc, float(np.mean([s.mm.one_minus_cos() for s in sessions]))
    elif wf.mapping.tile is not None:
        m_ = target_matrix(wf.mapping)
        ts = serve_tiled(m_, wf.mapping.tile, scanned, WindowEngine(arrays), wf.mapping.k, params, wf.seed,
                         wf.mapping.checksums, versions, on_event)
        sessions.extend(ts.sessions.values())
        n_in = m_.shape[0]

        def serve(batch):
            ts.serve(batch)

        def fidelity() -> tuple[float, float]:
            return ts.one_minus_cos({n: a.true_conductance() for n, a in arrays.items()}), ts.one_minus_cos()
    else:
        m_ = target_matrix(wf.mapping)
        k = wf.mapping.k or m_.shape[0]
        mm = map_factorized(m_, k, scanned["A"], scanned["B"], rng=wf.seed, checks=wf.mapping.checksums)
        engine = WindowEngine(arrays)
        sessions.append(ServiceSession(mm, engine, params, versions, on_event))
        n_in = m_.shape[0]

        def serve(batch):
            sessions[0].serve(batch)

        def fidelity() -> tuple[float, float]:
            return (mm.one_minus_cos([arrays[st.array].true_conductance() for st in mm.stages]),
                    mm.one_minus_cos())
    for i, s in enumerate(sessions):
        if s.detector is None:  # tiled sessions are programmed as they are mapped
            s.program()
            s.calibrate([wf.seed, i])
    f_true, f_ref = fidelity()
    on_event({"event": "verify", "fidelity": f_true, "fidelity_reference": f_ref, "vmm": 0,
              "chip_time_s": max(a.time_s for a in arrays.values())})
    # 4. serve
    hours = int(np.ceil(wf.stream.hours))
    stream = workload(wf.stream, n_in, rng)
    bar = Progress(hours, "service", enabled=progress and not replay, initial=0)
    bar._bar.unit = "h"
    stop = {"flag": False}
    stop_signals = (signal.SIGTERM, signal.SIGHUP)
    old_handlers = {sig: signal.getsignal(sig) for sig in stop_signals}

    def _term(signum, frame):
        stop["flag"] = True  # finish the hour in hand, then record and stop

    if not replay:
        for sig in stop_signals:
            signal.signal(sig, _term)
    status = "complete"
    events_seen = 0
    try:
        for h in range(hours):
            faults_before = sum(len(a.aging.events) for a in arrays.values() if a.aging is not None)
            batch = next(stream)
            for part in np.array_split(batch, 4):  # the chip ages while the stream runs, not only between hours
                if len(part):
                    serve(part)
                for s in {id(s.engine): s for s in sessions}.values():
                    s.engine.advance(0.25)
            if (h + 1) % max(int(round(wf.stream.maintain_every_hours)), 1) == 0:
                for s in sessions:
                    s.maintain()
            f_true, f_ref = fidelity()
            c = [s.count for s in sessions]
            appeared = sum(len(a.aging.events) for a in arrays.values() if a.aging is not None) - faults_before
            row = (h, max(a.time_s for a in arrays.values()) / 3600, f_true, f_ref, sum(x.alarms for x in c),
                   sum(x.repairs for x in c), sum(x.devices_reprogrammed for x in c),
                   sum(x.faults_found for x in c), appeared)
            on_event({"event": "hour", "hour": h, "fidelity": f_true, "fidelity_reference": f_ref,
                      "vmm": sum(x.vmms for x in c), "chip_time_s": row[1] * 3600})
            if h >= hours_recorded and not replay:
                run.append(pending, row)
                pending.clear()
                bar.update(1)
                what = "accuracy" if wf.mapping.target == "digits" else "1 - cos"
                echo(f"hour {h + 1:4d}: {what} {f_true:.4g} (host's read-back 1 - cos {f_ref:.4g}), alarms {row[4]}, "
                     f"repairs {row[5]}, devices re-programmed {row[6]}, faults found {row[7]}")
            events_seen = position[0]
            if stop["flag"]:
                status = "interrupted"
                break
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        bar.close()
        if not replay:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            run.append(pending, None)
            run.finish(status)
    summary = {"status": status, "hours": hours if status == "complete" else None,
               "fidelity_end": f_true, "fidelity_reference_end": f_ref,
               "alarms": sum(s.count.alarms for s in sessions), "repairs": sum(s.count.repairs for s in sessions),
               "devices_reprogrammed": sum(s.count.devices_reprogrammed for s in sessions),
               "faults_found": sum(s.count.faults_found for s in sessions),
               "mapped_devices": sum(s.mm.devices for s in sessions), "fault_map_versions": len(versions),
               "replayed_decisions": events_seen if replay else position[0]}
    if replay and position[0] != len(recorded):
        raise ReplayMismatch(f"the replay made {position[0]} decisions, the run recorded {len(recorded)}")
    return summary


def _forward_true(served: ServedNetwork, x: np.ndarray) -> np.ndarray:
    """The network on the chip's true conductances (noise-free): the simulated ground truth of accuracy."""
    a = x
    for i, s in enumerate(served.sessions):
        st = s.mm.stages[0]
        arr = s.engine.arrays[st.array]
        z = np.hstack([a, np.ones((a.shape[0], 1))]) @ st.logical(arr.true_conductance()) / s.mm.scale
        a = np.maximum(z, 0.0) if i < len(served.sessions) - 1 else z
    return a


def timeline(path: str) -> tuple[np.ndarray, list[dict], dict]:
    """(timeline rows, events, attributes) of a service run file."""
    with h5py.File(path, "r", locking=False) as f:
        if f.attrs.get("protocol") != PROTOCOL:
            raise ValueError(f"{path} is not a service run file")
        rows = f["tables/fidelity"][()] if "tables/fidelity" in f else np.zeros(0, TIMELINE)
        events = [json.loads(r) for r in f["tables/events"]["record"].astype(str)] if "tables/events" in f else []
        return rows, events, {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


__all__ = ["run_workflow", "build_chip", "timeline", "RunFile", "ReplayMismatch", "PROTOCOL"]
