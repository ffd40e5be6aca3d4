"""Fault-map-driven reprogramming in service: scan, map, program, verify, then serve while detecting and repairing.

The page, step by step (``run_workflow``):

1. scan every array (SET to the top of the window, read, RESET, read: stuck devices do not move);
   the codes become version 0 of the fault-map store;
2. map the target around them: fault-aware factorization with checksum columns (a matrix), or
   the seed-000 network's layers on differential pairs;
3. program with write-and-verify, let the fast relaxation pass, read back the references, and
   verify: calibrate the checks on fault-free VMMs and record the read-back fidelity;
4. serve the stream hour by hour: every VMM is checked, alarms are localised, re-scanned and
   repaired with the fewest writes (:class:`hil.service.ServiceSession`), references are re-read
   every ``maintain_every_hours``; chip time then advances an hour.

Everything is recorded as it happens in the run file (HDF5, format ``rram-hil-service``)::

    /                 attrs: format, format_version, workflow (the YAML text), seed, status,
                      hours_done, software_version, created, updated
    /events           (n,) JSON strings: every decision in order (program, calibrate, alarm,
                      localise, scan, faultmap_version, repair, maintain, drift_compensation, hour)
    /timeline         (hours,) rows: hour, chip_time_h, fidelity (simulated ground truth: 1 - cos
                      or accuracy), fidelity_reference (what the host computes from its read-back),
                      alarms, repairs, devices_reprogrammed, faults_found, faults_appeared

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
from dataclasses import asdict
from typing import Any, Callable

import h5py
import numpy as np

from hil.faultmap_versions import FaultMapVersions
from hil.progress import Progress
from hil.runstore import now_iso, software_version
from hil.service import ServiceParams, ServiceSession, WindowEngine, map_direct, map_factorized
from hil.service.network import ServedNetwork, layer_matrix
from hil.service.tiles import serve_tiled, tile_shapes
from hil.service.workflow import Workflow, target_matrix, workload
from simulated_bench.window_array import WindowArray, WindowParams

FORMAT = "rram-hil-service"
FORMAT_VERSION = 1
TIMELINE = np.dtype([("hour", "i4"), ("chip_time_h", "f8"), ("fidelity", "f8"), ("fidelity_reference", "f8"),
                     ("alarms", "i4"), ("repairs", "i4"), ("devices_reprogrammed", "i8"), ("faults_found", "i4"),
                     ("faults_appeared", "i4")])


class ReplayMismatch(RuntimeError):
    """A replayed decision differs from the recorded one."""


class RunFile:
    """The service run file: appends events and timeline rows, flushed after every hour."""

    def __init__(self, path: str, workflow_text: str, seed: int):
        self.path = path
        exists = os.path.exists(path)
        self.f = h5py.File(path, "a")
        if exists and "format" in self.f.attrs:
            if self.f.attrs["format"] != FORMAT:
                raise ValueError(f"{path} is not a service run file")
            if self.f.attrs["workflow"] != workflow_text:
                raise ValueError(f"{path} was written by another workflow; choose a new --out or the same file")
        else:
            self.f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "workflow": workflow_text,
                                 "seed": seed, "status": "running", "hours_done": 0,
                                 "software_version": software_version(), "created": now_iso()})
            self.f.create_dataset("events", (0,), maxshape=(None,), dtype=h5py.string_dtype())
            self.f.create_dataset("timeline", (0,), maxshape=(None,), dtype=TIMELINE)
        self.recorded = [json.loads(e) for e in self.f["events"].asstr()[()]]
        self.hours_done = int(self.f.attrs["hours_done"])

    def append(self, events: list[dict], row: tuple | None) -> None:
        ev = self.f["events"]
        n = ev.shape[0]
        ev.resize((n + len(events),))
        if events:
            ev[n:] = [json.dumps(e, default=_json_default) for e in events]
        if row is not None:
            tl = self.f["timeline"]
            tl.resize((tl.shape[0] + 1,))
            tl[-1] = row
            self.hours_done = int(row[0]) + 1
            self.f.attrs["hours_done"] = self.hours_done
        self.f.attrs["updated"] = now_iso()
        self.f.flush()

    def finish(self, status: str) -> None:
        self.f.attrs["status"] = status
        self.f.attrs["updated"] = now_iso()
        self.f.close()


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON-able: {type(o)}")


def _canonical(e: dict) -> str:
    return json.dumps(e, default=_json_default, sort_keys=True)


def build_chip(wf: Workflow) -> dict[str, WindowArray]:
    """The simulated chip the workflow describes: one window-level array per block, seeded."""
    aging = wf.chip.aging_params()
    params = WindowParams(read_noise_scale=wf.chip.read_noise_scale)
    shapes = block_shapes(wf)
    arrays = {}
    for i, (name, shape) in enumerate(shapes.items()):
        rng = np.random.default_rng([wf.seed, i, 7])
        codes = (rng.random(shape) < wf.chip.initial_fault_rate).astype(np.int8)  # stuck-OFF
        arrays[name] = WindowArray(*shape, params, codes, aging, seed=[wf.seed, i])
    return arrays


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
    run = RunFile(out, workflow_text, wf.seed)
    if replay and run.f.attrs["status"] != "complete":
        run.f.close()
        raise ValueError(f"{out} is not a finished run; run it (it resumes) before replaying it")
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
    params = ServiceParams()
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
    old_term = signal.getsignal(signal.SIGTERM)

    def _term(signum, frame):
        stop["flag"] = True  # finish the hour in hand, then record and stop

    if not replay:
        signal.signal(signal.SIGTERM, _term)
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
                echo(f"hour {h + 1:4d}: fidelity {f_true:.4g} (read-back {f_ref:.4g}), alarms {row[4]}, "
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
            signal.signal(signal.SIGTERM, old_term)
            run.append(pending, None)
            run.finish(status)
        else:
            run.f.close()
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
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not a service run file")
        return (f["timeline"][()], [json.loads(e) for e in f["events"].asstr()[()]],
                {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()})


__all__ = ["run_workflow", "build_chip", "timeline", "RunFile", "ReplayMismatch"]
