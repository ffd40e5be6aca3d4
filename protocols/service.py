"""Fault-map-driven reprogramming in service: scan, map, program, verify, then serve while detecting and repairing.

The page, step by step (:class:`ServicePage`, run by the one runner, :func:`protocols.runner.execute`,
on a bench opened from a bench file):

1. scan every array the mapping needs (:func:`protocols.scan.scan`); the codes become
   version 0 of the fault-map store;
2. map the target around them: fault-aware factorization with checksum columns (a matrix), or
   the seed-000 network's layers on differential pairs;
3. program with write-and-verify (:func:`protocols.ispp.program`), let the fast relaxation pass,
   read back the references, and verify: calibrate the checks on fault-free VMMs
   (:meth:`hil.bench.Bench.vmm`) and record the read-back fidelity;
4. serve the stream, one runner row per hour: every VMM is checked, alarms are localised,
   re-scanned and repaired with the fewest writes (:class:`hil.service.ServiceSession`),
   references are re-read every ``maintain_every_hours`` (the digits network then checks its
   corrector, trained after step 3 on labelled training images read through the chip: kept,
   or fine-tuned, :mod:`hil.service.network`); the chip then ages an hour
   (simulated bench: ``bench.sim.advance``; a real bench: real time passes).

The loop itself is :class:`hil.service.loop.ServiceLoop`, the same code the conductance-level
studies run; here its engine is :class:`protocols.service_engine.BenchEngine`, so every
operation goes through the bench's drivers. The runner owns the lifecycle: pre-flight of
every drive against the limits, the run file and its identity, write-ahead pulse records
(``tables/pulses``, phase = the loop's step), SIGINT / SIGTERM / SIGHUP stop before the next
bench operation with the outputs off, and the bench clock (``round_trips``, ``bench_time_s``).

The run file, an rram-hil run (protocol ``service``, parameters = the workflow text; ``hil view
RUN.h5`` shows it live)::

    /cells/done            (hours, 1) the hours served
    /tables/fidelity       per hour: hour, chip_time_h, fidelity (simulated ground truth: 1 - cos
                           or accuracy; NaN on a real bench), fidelity_reference (what the host
                           computes from its read-back), alarms, repairs, devices_reprogrammed,
                           faults_found, faults_appeared (-1 on a real bench)
    /tables/events         every decision in order, appended as it is taken (scan_array, program,
                           calibrate, verify, alarm, localise, scan, faultmap_version, repair,
                           maintain, drift_compensation, corrector_trained, corrector_check, hour,
                           resume): chip_time_h, vmm, event,
                           record (the decision as JSON)
    /tables/alarms, /tables/repairs   the alarms and repairs again as plain columns (for plots)
    /tables/pulses         every pulse, written before it is sent (the runner's PULSE_DTYPE; phase
                           setup: / serve: / replay: + scan or write)

and the fault-map versions in ``<run>.faults.h5`` (:mod:`hil.faultmap_versions`).

Resume. On a simulated bench opened fresh (the chip is seeded), resuming replays the run from
the start: every decision is checked against the recorded one (the confirmation), then the
run carries on where it stopped, so a resumed run makes exactly the uninterrupted run's
decisions. A real bench cannot be replayed (its chip has moved on): a resume records a
``resume`` event, scans, maps, programs and verifies again (the state of cells a killed
repair left half-written is unknown), and serves the hours not yet done. ``replay=True``
replays a finished run on a fresh simulated bench and reports the first decision that
differs, if any. The bench clock of a resumed run counts every session, the replayed operations
included (they were sent again); of a session killed with SIGKILL, only what it had spent by its last
finished hour (the clock is recorded with each hour's row). A resume with another workflow is refused
(naming the lines that differ), and so are fault-map versions in ``OUT.faults.h5`` without their run
file; ``overwrite=True`` (``hil service --overwrite``) starts both over.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
from typing import Any, Callable

import h5py
import numpy as np

from hil.bench import Bench
from hil.faultmap_versions import FaultMapVersions
from hil.runstore import RunMismatch, RunStore
from hil.service.loop import ServiceLoop, block_shapes, check_stream
from hil.service.session import ServiceParams
from hil.service.workflow import Workflow

from .ispp import ladder_plan, preset_for
from .matrix import MatrixParams
from .runner import Drive, Page, Run, device_model, execute
from .scan import SCAN_PRESETS, STANFORD_SCAN
from .service_engine import BenchEngine, check_arrays

PROTOCOL = "service"
TIMELINE = np.dtype([("hour", "i4"), ("chip_time_h", "f8"), ("fidelity", "f8"), ("fidelity_reference", "f8"),
                     ("alarms", "i4"), ("repairs", "i4"), ("devices_reprogrammed", "i8"), ("faults_found", "i4"),
                     ("faults_appeared", "i4")])
EVENTS = np.dtype([("chip_time_h", "f8"), ("vmm", "i8"), ("event", "S24"), ("record", h5py.string_dtype())])
ALARMS = np.dtype([("chip_time_h", "f8"), ("vmm", "i8"), ("stage", "i2"), ("check", "i2"), ("statistic", "f8")])
REPAIRS = np.dtype([("chip_time_h", "f8"), ("vmm", "i8"), ("devices_reprogrammed", "i8"), ("pulses", "i8")])


class ReplayMismatch(RuntimeError):
    """A replayed decision differs from the recorded one."""


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON-able: {type(o)}")


def _canonical(e: dict) -> str:
    return json.dumps(e, default=_json_default, sort_keys=True)


class ServiceRecords:
    """The service tables of a run file: each decision appended as it is taken, the timeline once per hour.
    Nothing is flushed here: the runner flushes with every pulse record and every finished hour."""

    def __init__(self, store: RunStore):
        self.store = store
        for name, dtype in (("fidelity", TIMELINE), ("events", EVENTS), ("alarms", ALARMS), ("repairs", REPAIRS)):
            store.table(name, dtype, chunk=256)

    def recorded(self) -> list[dict]:
        ev = self.store._f["tables/events"]
        return [json.loads(r) for r in ev["record"].astype(str)] if ev.shape[0] else []

    def event(self, e: dict) -> None:
        st, t_h = self.store, e.get("chip_time_s", 0.0) / 3600
        st.append("events", np.array([(t_h, e.get("vmm", 0), e["event"], json.dumps(e, default=_json_default))],
                                     EVENTS))
        if e["event"] == "alarm":
            st.append("alarms", np.array([(t_h, e.get("at_vmm", e["vmm"]), e["stage"], e["check"], e["statistic"])],
                                         ALARMS))
        elif e["event"] == "repair":
            st.append("repairs", np.array([(t_h, e["vmm"], e["writes"], e["pulses"])], REPAIRS))

    def hour(self, row: tuple) -> None:
        self.store.append("fidelity", np.array([row], TIMELINE))
        self.store.set_attr("hours_done", int(row[0]) + 1)

    def keep_hours(self, done: np.ndarray) -> set[int]:
        """On resume: drop timeline rows of hours not marked done (a kill between an hour's row and its done
        mark leaves one; the hour is served again); returns the hours that keep their row."""
        ds = self.store._f["tables/fidelity"]
        rows = ds[()]
        keep = np.zeros(len(rows), bool)
        seen: set[int] = set()
        for i, h in enumerate(rows["hour"]):
            keep[i] = 0 <= h < done.size and done[h] and int(h) not in seen
            seen.add(int(h))
        if not keep.all():
            ds.resize((int(keep.sum()),))
            ds[:] = rows[keep]
        return {int(h) for h in rows["hour"][keep]}


class ServicePage(Page):
    """The service loop as a runner page: set-up in :meth:`start`, one row per hour of the stream."""

    name, label, unit = PROTOCOL, "service", "h"

    def __init__(self, wf: Workflow, workflow_text: str, bench: Bench, versions_path: str | None = None,
                 recorded: list[dict] | None = None, echo: Callable[[str], None] | None = None,
                 params: MatrixParams | None = None):
        self.wf, self.text = wf, workflow_text
        self.shapes = block_shapes(wf)
        self.mp = params or bench_io_params(wf)
        self.ispp = self.mp.ispp or preset_for(bench)
        self.scan_params = SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN)
        self.versions_path = versions_path
        self.replaying = recorded  # --replay: the finished run's decisions
        self.echo = echo
        self.hours = int(np.ceil(wf.stream.hours))
        self.loop: ServiceLoop | None = None
        self.position = 0
        self.records: ServiceRecords | None = None
        self.recorded: list[dict] = []

    def grid(self, bench, rows, cols):
        return np.arange(self.hours), np.arange(1)

    def params(self, rows, cols):
        return {"workflow": self.text}

    def plan(self) -> list[Drive]:
        sp, mp = self.scan_params, self.mp
        return [Drive("scan set_amp / set_gate / set_width", [sp.set_amp], [sp.set_gate], [sp.set_width]),
                Drive("scan reset_amp / reset_gate / reset_width", [-sp.reset_amp], [sp.reset_gate],
                      [sp.reset_width]),
                Drive("scan v_read / read_gate", [sp.v_read], [sp.read_gate]),
                Drive("VMM v_in / v_gate", [mp.v_in], [mp.v_gate])] + ladder_plan(self.ispp)

    # decisions -------------------------------------------------------------------------------------
    def on_event(self, e: dict) -> None:
        """Compare a decision with the recorded one while replaying; record it once past the record."""
        if self.position < len(self.recorded):
            old = self.recorded[self.position]
            if _canonical(old) != _canonical(json.loads(json.dumps(e, default=_json_default))):
                raise ReplayMismatch(f"decision {self.position} differs from the recorded run: recorded "
                                     f"{old['event']} at VMM {old.get('vmm')}, replayed {e['event']} at VMM "
                                     f"{e.get('vmm')}")
            self.position += 1
        elif self.records is not None:
            self.records.event(e)
        elif self.replaying is not None:
            raise ReplayMismatch(f"the replay made more decisions than the run recorded ({len(self.recorded)}); "
                                 f"the first extra: {e['event']} at VMM {e.get('vmm')}")

    def start(self, run: Run) -> None:
        bench = run.raw_bench
        fresh_sim = bench.sim is not None and max(a.time_s for a in bench.sim.arrays.values()) == 0.0
        if run.store is not None:
            self.records = ServiceRecords(run.store)
        replay = self.replaying is not None or (run.resumed and fresh_sim)
        if self.replaying is not None:
            self.recorded = self.replaying
        elif run.resumed and fresh_sim:
            self.recorded = self.records.recorded()
        if run.resumed and not fresh_sim:
            self.on_event({"event": "resume", "hours_done": int(run.done.sum()), "vmm": 0,
                           "chip_time_s": 0.0, "why": "the chip cannot be replayed: scan, map and program again"})
        if (replay or not run.resumed) and self.versions_path and os.path.exists(self.versions_path):
            # replayed decisions commit the same versions again; a run started over (--overwrite) starts its
            # versions over (run_service refused stale versions without it)
            os.remove(self.versions_path)
        versions = FaultMapVersions(self.versions_path)
        self.step = "replay" if replay else "setup"
        engine = BenchEngine(run.bench, self.shapes, ServiceParams().refit.g_max, self.mp,
                             on_op=lambda op: setattr(run, "phase", f"{self.step}:{op}"))
        self.loop = ServiceLoop(self.wf, engine, self.on_event, versions)
        self.loop.setup()
        kept = self.records.keep_hours(run.done[:, 0]) if run.resumed and self.records is not None else set()
        if replay:  # the hours served before the interruption: same chip, same decisions (checked)
            for h in np.flatnonzero(run.done[:, 0]):
                row = self.loop.serve_hour(int(h))
                if self.records is not None and int(h) not in kept:  # killed after its done mark, before its row
                    self.records.hour(row)

    def serve_step(self, ri: int) -> str:
        """The phase hour ``ri``'s pulses are recorded under (``tables/pulses``: ``<step>:scan`` /
        ``<step>:write``, at most 6 characters); a study names its episodes here."""
        return "serve"

    def row(self, run: Run, ri: int) -> None:
        self.step = "replay" if self.position < len(self.recorded) else self.serve_step(ri)
        row = self.loop.serve_hour(ri)
        if self.records is not None:
            self.records.hour(row)
        if self.echo is not None and self.replaying is None:
            self.echo(self.loop.echo_line(row))
        run.save_row(ri)

    def finish(self, run: Run) -> dict[str, Any]:
        if self.replaying is not None and self.position != len(self.recorded):
            raise ReplayMismatch(f"the replay made {self.position} decisions, the run recorded {len(self.recorded)}")
        return {**self.loop.summary(), "replayed_decisions": self.position}


MAX_AVERAGED = 1000  #: most VMMs / reads bench_io may average per vector or read


def bench_io_params(wf: Workflow) -> MatrixParams:
    """The bench's read and VMM settings with the workflow's ``bench_io`` overrides (a typo is named)."""
    allowed = ("v_in", "v_gate", "n_read", "n_vmm", "g_prog_min")
    bad = [k for k in wf.bench_io if k not in allowed]
    if bad:
        raise ValueError(f"bench_io: unknown setting {bad[0]!r}; known: {', '.join(allowed)}")
    for k, v in wf.bench_io.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
            raise ValueError(f"bench_io.{k} must be a positive number, got {v!r}")
        if k.startswith("n_") and v != int(v):
            raise ValueError(f"bench_io.{k} must be a whole number, got {v!r}")
        if k.startswith("n_") and v > MAX_AVERAGED:  # each is a bench round trip per vector or read
            raise ValueError(f"bench_io.{k} is at most {MAX_AVERAGED}, got {v!r}")
    return dataclasses.replace(MatrixParams(), **{k: (int(v) if k.startswith("n_") else float(v))
                                                  for k, v in wf.bench_io.items()})


def run_service(bench: Bench, wf: Workflow, workflow_text: str, out: str | None, *, replay: bool = False,
                progress: bool = False, echo: Callable[[str], None] | None = print,
                overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) a service workflow on ``bench``, streaming to the run file ``out``; with ``replay``,
    replay the finished run ``out`` on ``bench`` (a fresh simulated bench) and check every decision.
    ``overwrite`` starts ``out`` and its fault-map versions over (a deliberate restart).
    Returns the loop's summary (plus the bench clock of the run, when the bench has one)."""
    check_arrays(bench, block_shapes(wf))
    bench_io_params(wf)
    check_stream(wf)
    if replay and overwrite:
        raise ValueError("a replay reads a finished run: it cannot also start it over (overwrite)")
    if not replay and not overwrite:
        _check_resumable(out, workflow_text)
    if replay:
        if bench.sim is None:
            raise ValueError("a replay needs the simulated bench the run was made on: a real chip cannot be "
                             "replayed")
        recorded = _recorded_finished_run(out, workflow_text)
        page = ServicePage(wf, workflow_text, bench, None, recorded, echo)
        return execute(bench, page, out=None, seed=wf.seed)
    page = ServicePage(wf, workflow_text, bench, out + ".faults.h5", None, echo)
    summary = execute(bench, page, out=out, seed=wf.seed, progress=progress, overwrite=overwrite)
    with h5py.File(out, "r", locking=False) as f:
        if "round_trips" in f.attrs:
            summary["round_trips"] = int(f.attrs["round_trips"])
            summary["bench_time_s"] = float(f.attrs["bench_time_s"])
    return summary


def _check_resumable(out: str, workflow_text: str) -> None:
    """Refuse, before the run starts, a resume with another workflow (naming the first lines that
    differ), and fault-map versions left by another run in ``OUT.faults.h5`` without their run file."""
    versions = out + ".faults.h5"
    if not os.path.exists(out):
        if os.path.exists(versions):
            raise RunMismatch(f"{versions} holds the fault-map versions of another run (its run file {out} is not "
                              "there): move it away, or use another --out, or --overwrite to start over")
        return
    old = None
    with contextlib.suppress(OSError, KeyError, ValueError), h5py.File(out, "r", locking=False) as f:
        if f.attrs.get("protocol") == PROTOCOL:  # otherwise the run store names what the file is
            old = json.loads(f.attrs["parameters"]).get("workflow")
    if isinstance(old, str) and old != workflow_text:
        raise RunMismatch(f"{out} was started with another workflow ({_changes(old, workflow_text)}): resume it "
                          "with the workflow it started with, or use another --out, or --overwrite to start over")


def _changes(old: str, new: str, most: int = 3) -> str:
    """The first ``most`` lines that differ between two workflow texts, as ``line N: 'old' -> 'new'``."""
    a, b = old.splitlines(), new.splitlines()
    changes = [f"line {i1 + 1}: {' / '.join(a[i1:i2]) or '(none)'!r} -> {' / '.join(b[j1:j2]) or '(none)'!r}"
               for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes() if tag != "equal"]
    return "; ".join(changes[:most]) + ("; ..." if len(changes) > most else "")


def _recorded_finished_run(path: str, workflow_text: str) -> list[dict]:
    if not os.path.exists(path):
        raise ValueError(f"{path}: no run file to replay; run the workflow with --out {path} first")
    with h5py.File(path, "r", locking=False) as f:
        if f.attrs.get("protocol") != PROTOCOL:
            raise ValueError(f"{path} is not a service run file")
        if f.attrs.get("status") != "complete":
            raise ValueError(f"{path} is not a finished run; run it (it resumes) before replaying it")
        old = json.loads(f.attrs["parameters"]).get("workflow")
        if old != workflow_text:
            raise ValueError(f"{path} was written by another workflow ({_changes(str(old), workflow_text)})")
        return [json.loads(r) for r in f["tables/events"]["record"].astype(str)] if "tables/events" in f else []


def timeline(path: str) -> tuple[np.ndarray, list[dict], dict]:
    """(timeline rows, events, attributes) of a service run file."""
    with h5py.File(path, "r", locking=False) as f:
        if f.attrs.get("protocol") != PROTOCOL:
            raise ValueError(f"{path} is not a service run file")
        rows = f["tables/fidelity"][()] if "tables/fidelity" in f else np.zeros(0, TIMELINE)
        events = [json.loads(r) for r in f["tables/events"]["record"].astype(str)] if "tables/events" in f else []
        return rows, events, {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


__all__ = ["run_service", "ServicePage", "ServiceRecords", "timeline", "ReplayMismatch", "PROTOCOL"]
