"""Multi-bench campaigns: the same protocol steps on every chip of a lot, each bench driven by its own computer.

A bench station is a Dask worker started on the computer wired to the bench
(:class:`BenchNanny`, ``hil bench-worker``). It advertises two resources: ``bench`` (one)
and ``bench-<name>`` (one). A chip's task asks for ``bench`` (and ``bench-<name>`` when
the campaign file pins the chip to a station), so it runs only on a bench, and one chip
at a time per bench. On one machine several simulated benches stand in for stations.

A campaign file (YAML)::

    name: lot-7
    out: out/lot-7                 # OUT/<chip>/<NN>_<step>.h5 run files + .json summaries
    steps:                         # run in order on every chip
      - {name: scan, protocol: scan}
      - {name: read, protocol: read, params: {n_avg: 2}}
    chips:
      - {id: W7-D01, sim: {seed: 1, faults: {kind: random, rate_off: 0.05, seed: 1}}}
      - {id: W7-D02, bench: station-2}      # mounted on station-2: runs only there
    benches: [station-1, station-2, station-3]   # the simulated stand-ins of --scheduler local

``sim`` describes the chip a *simulated* bench carries for that chip (a real bench has
the real one mounted). A step's ``protocol`` is a name from the catalog the caller
passes (``hil campaign`` passes the protocols') or ``package.module:function``; it is
called as ``function(bench, out=RUN_FILE, chip_id=ID, **params)`` and returns a dict.

Faults: while a step runs, ``OUT/<chip>/.lease.json`` names the bench, the step and its
run file. If the bench's worker dies, its nanny switches the bench's outputs off; the
chip's task, if Dask retries it, finds its own lease, marks the run file
``interrupted`` and reports the chip unfinished instead of touching a bench it was
never on. The campaign ends with the list of unfinished chips; running it again does
only those, and their steps resume from their run files.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import h5py
from distributed import Nanny

from .spec import SpecError, resolve

BENCH = "bench"  # resource every bench worker has, once
ENV_NAME, ENV_FILE = "HIL_BENCH_NAME", "HIL_BENCH_FILE"
LEASE = ".lease.json"
DEFAULT_BENCHES = ("station-1", "station-2", "station-3")


def bench_resource(name: str) -> str:
    """The resource only the worker of bench ``name`` has."""
    return f"bench-{name}"


# ---------------------------------------------------------------------------------- the file
@dataclass(frozen=True)
class Step:
    name: str
    function: str  # package.module:function
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chip:
    id: str
    bench: str | None = None  # pinned to this station
    sim: Mapping[str, Any] = field(default_factory=dict)  # the chip a simulated bench carries


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    out: str
    steps: tuple[Step, ...]
    chips: tuple[Chip, ...]
    benches: tuple[str, ...] = DEFAULT_BENCHES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str = ".",
                  catalog: Mapping[str, str] | None = None) -> "CampaignSpec":
        catalog = catalog or {}
        if not isinstance(data, Mapping):
            raise SpecError("a campaign file is a mapping with 'out', 'steps' and 'chips'")
        unknown = set(data) - {"name", "out", "steps", "chips", "benches"}
        if unknown:
            raise SpecError(f"unknown key(s) in campaign file: {', '.join(sorted(unknown))}")
        for key in ("out", "steps", "chips"):
            if not data.get(key):
                raise SpecError(f"campaign file needs '{key}'")
        steps = []
        for i, s in enumerate(data["steps"]):
            if not isinstance(s, Mapping) or "protocol" not in s:
                raise SpecError(f"step {i + 1}: needs 'protocol' (one of {', '.join(sorted(catalog)) or '-'} "
                                "or package.module:function)")
            proto = str(s["protocol"])
            ref = catalog.get(proto, proto)
            if ":" not in ref:
                raise SpecError(f"step {i + 1}: unknown protocol {proto!r}; known: {', '.join(sorted(catalog))}")
            params = s.get("params") or {}
            if not isinstance(params, Mapping):
                raise SpecError(f"step {i + 1}: params must be a mapping")
            steps.append(Step(str(s.get("name", proto.rpartition(":")[2])), ref, dict(params)))
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise SpecError("step names must differ (name: ... on a repeated protocol)")
        chips = []
        for i, c in enumerate(data["chips"]):
            if isinstance(c, str):
                c = {"id": c}
            if not isinstance(c, Mapping) or not str(c.get("id", "")).strip():
                raise SpecError(f"chip {i + 1}: needs an 'id'")
            cid = str(c["id"])
            if os.sep in cid or cid.startswith("."):
                raise SpecError(f"chip id {cid!r} cannot name a folder")
            extra = set(c) - {"id", "bench", "sim"}
            if extra:
                raise SpecError(f"chip {cid}: unknown key(s) {', '.join(sorted(extra))}")
            chips.append(Chip(cid, None if c.get("bench") is None else str(c["bench"]), dict(c.get("sim") or {})))
        ids = [c.id for c in chips]
        if len(set(ids)) != len(ids):
            raise SpecError("chip ids must be unique")
        benches = tuple(str(b) for b in (data.get("benches") or DEFAULT_BENCHES))
        out = str(data["out"])
        return cls(str(data.get("name", "campaign")), os.path.normpath(os.path.join(base_dir, out)),
                   tuple(steps), tuple(chips), benches)

    @classmethod
    def load(cls, path: str | os.PathLike, catalog: Mapping[str, str] | None = None) -> "CampaignSpec":
        import yaml

        path = os.fspath(path)
        try:
            with open(path) as fh:
                data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, os.path.dirname(os.path.abspath(path)), catalog)


# ---------------------------------------------------------------------------------- on disk
def _step_files(out: str, chip: str, index: int, step: Step) -> tuple[str, str]:
    stem = os.path.join(out, chip, f"{index:02d}_{step.name}")
    return stem + ".h5", stem + ".json"


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, default=str)
    os.replace(tmp, path)


def _read_json(path: str) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def step_done(out: str, chip: str, index: int, step: Step) -> dict | None:
    """The stored summary of a finished step, or None."""
    return _read_json(_step_files(out, chip, index, step)[1])


def chip_done(spec: CampaignSpec, chip: Chip) -> bool:
    return all(step_done(spec.out, chip.id, i, s) is not None for i, s in enumerate(spec.steps))


def mark_run_file(path: str, status: str = "interrupted") -> bool:
    """Mark a run file left ``running`` by a dead process; True when it was changed."""
    if not path or not os.path.exists(path):
        return False
    try:
        with h5py.File(path, "r+") as f:
            if f.attrs.get("status") != "running":
                return False
            f.attrs["status"] = status
            if "sessions" in f and f["sessions"].shape[0]:
                s = f["sessions"]
                s[-1] = (s[-1]["started"], time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()).encode(),
                         status.encode())
            return True
    except OSError:
        return False


def release_lease(out: str, chip: str, status: str = "interrupted") -> dict | None:
    """Remove a chip's lease, marking the run file it names (if still ``running``)."""
    path = os.path.join(out, chip, LEASE)
    lease = _read_json(path)
    if lease is not None:
        mark_run_file(lease.get("run_file", ""), status)
    if os.path.exists(path):
        os.remove(path)
    return lease


# ---------------------------------------------------------------------------------- the clock
def bench_clock(bench: Any) -> tuple[float, str]:
    """Seconds the bench has spent so far, and which clock said so.

    The emulators' bench clock (transport and instrument time) when the simulated bench
    has one; otherwise the chip's own physical time (pulse widths and read times), a
    lower bound; a real bench has neither (0, "none"): campaigns there report wall time.
    """
    sim = getattr(bench, "sim", None)
    if sim is None:
        return 0.0, "none"
    clock = getattr(sim, "clock", None)
    if clock is not None:
        value = clock.bench_time_s
        return float(value() if callable(value) else value), "emulators"
    return float(sum(a.time_s for a in sim.arrays.values())), "chip"


# ---------------------------------------------------------------------------------- on a bench
def run_chip(campaign: str, out: str, chip: Chip, steps: tuple[Step, ...], session: str) -> dict:
    """Every step of ``chip`` on this worker's bench (a Dask task; needs the ``bench`` resource)."""
    from hil.bench import load_bench_file, open_bench

    name = os.environ.get(ENV_NAME)
    if not name:
        raise RuntimeError("run_chip needs a bench worker (hil bench-worker / BenchNanny)")
    bench_file = os.environ.get(ENV_FILE) or None
    chip_dir = os.path.join(out, chip.id)
    os.makedirs(chip_dir, exist_ok=True)
    lease_path = os.path.join(chip_dir, LEASE)
    lease = _read_json(lease_path)
    result = {"chip": chip.id, "bench": name, "status": "complete", "steps": [], "bench_time_s": 0.0,
              "clock": "none", "error": ""}
    if lease is not None and lease.get("session") == session:
        # this campaign run already started the chip on a bench whose worker died
        release_lease(out, chip.id)
        return {**result, "bench": lease.get("bench"), "status": "unfinished",
                "error": f"bench {lease.get('bench')} stopped during step {lease.get('step')!r}"}
    if lease is not None:  # left by an earlier campaign run that died: its run file is stale
        release_lease(out, chip.id)
    # a simulated bench carries the chip the campaign describes; a real one has it mounted
    simulated = bench_file is None or load_bench_file(bench_file).simulated
    bench = open_bench(bench_file, chip={"id": chip.id, **chip.sim}) if simulated else open_bench(bench_file)
    try:
        for i, step in enumerate(steps):
            done = step_done(out, chip.id, i, step)
            if done is not None:
                result["steps"].append(done)
                result["bench_time_s"] += done["bench_time_s"]
                continue
            run_file, summary_file = _step_files(out, chip.id, i, step)
            _write_json(lease_path, {"session": session, "bench": name, "step": step.name, "run_file": run_file,
                                     "pid": os.getpid(), "started": time.time()})
            t_bench, clock = bench_clock(bench)
            started, t0 = time.time(), time.perf_counter()
            summary = resolve(step.function)(bench, out=run_file, chip_id=chip.id, **step.params)
            t_bench = bench_clock(bench)[0] - t_bench
            record = {"campaign": campaign, "chip": chip.id, "step": step.name, "index": i, "bench": name,
                      "bench_time_s": t_bench, "clock": clock, "wall_s": time.perf_counter() - t0,
                      "started": started, "ended": time.time(),
                      "run_file": run_file, "summary": summary or {}}
            _write_json(summary_file, record)
            os.remove(lease_path)
            result["steps"].append(record)
            result["bench_time_s"] += t_bench
            result["clock"] = clock
    except Exception as exc:  # the protocol switched the outputs off and marked its run file
        bench.outputs_off()
        release_lease(out, chip.id, "failed")
        result.update(status="failed", error="".join(traceback.format_exception_only(type(exc), exc)).strip())
    finally:
        bench.close()
    return result


async def _safe_stop(bench_name: str, bench_file: str | None) -> str:
    """Outputs off on a bench whose worker died (run in the surviving nanny process)."""
    if not bench_file:
        return f"bench {bench_name}: simulated, its instruments ended with the worker process"

    def off() -> str:
        from hil.bench import open_bench

        with open_bench(bench_file) as bench:
            bench.outputs_off()
        return f"bench {bench_name}: outputs switched off after its worker died"

    try:
        return await asyncio.get_running_loop().run_in_executor(None, off)
    except Exception as exc:  # a bench that cannot be reached must still be reported
        return f"bench {bench_name}: COULD NOT switch outputs off after its worker died: {exc}"


class BenchNanny(Nanny):
    """A Dask nanny whose worker drives one bench: advertises it, and makes it safe if the worker dies."""

    def __init__(self, *args, bench_name: str, bench_file: str | None = None, **kwargs):
        import logging

        self.bench_name, self.bench_file = bench_name, bench_file or None
        self.stops: list[str] = []
        self._log = logging.getLogger("hil.campaign")
        env = {**kwargs.pop("env", {}), ENV_NAME: bench_name, ENV_FILE: bench_file or ""}
        resources = {BENCH: 1, bench_resource(bench_name): 1}
        kwargs.setdefault("nthreads", 1)
        kwargs.setdefault("name", f"bench-{bench_name}")
        super().__init__(*args, resources=resources, env=env, **kwargs)

    async def _on_worker_exit(self, exitcode):  # distributed.Nanny's hook for a worker process that ended
        from distributed.core import Status

        if self.status == Status.running:
            msg = await _safe_stop(self.bench_name, self.bench_file)
            self.stops.append(msg)
            self._log.warning(msg)
        await super()._on_worker_exit(exitcode)


# ---------------------------------------------------------------------------------- the campaign
@dataclass
class CampaignReport:
    chips: dict[str, dict]  # chip id -> result of run_chip (or why it did not run)
    benches: list[str]
    wall_s: float = 0.0

    @property
    def unfinished(self) -> list[str]:
        return [c for c, r in self.chips.items() if r["status"] != "complete"]

    @property
    def complete(self) -> bool:
        return not self.unfinished

    def bench_time(self) -> tuple[float, float]:
        """(longest bench's total, sum over benches): the campaign's and a one-bench run's bench time."""
        per: dict[str, float] = {}
        for r in self.chips.values():
            for s in r.get("steps", []):
                per[s["bench"]] = per.get(s["bench"], 0.0) + s["bench_time_s"]
        return (max(per.values()) if per else 0.0), sum(per.values())


def bench_workers(client: Any) -> dict[str, str]:
    """Bench name -> worker address of the bench workers now in the cluster."""
    out = {}
    for addr, w in client.scheduler_info()["workers"].items():
        for res in w.get("resources", {}):
            if res.startswith("bench-"):
                out[res[len("bench-"):]] = addr
    return out


def run_campaign(spec: CampaignSpec, client: Any, progress: bool = True, grace_s: float = 20.0,
                 log: Callable[[str], None] = print) -> CampaignReport:
    """Run the unfinished chips of ``spec`` on the bench workers of ``client``'s cluster."""
    import sys

    from distributed import as_completed
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    os.makedirs(spec.out, exist_ok=True)
    session = uuid.uuid4().hex
    benches = bench_workers(client)
    report = CampaignReport({}, sorted(benches))
    todo = []
    for chip in spec.chips:
        if chip_done(spec, chip):
            report.chips[chip.id] = {"chip": chip.id, "status": "complete", "skipped": True,
                                     "steps": [step_done(spec.out, chip.id, i, s) for i, s in enumerate(spec.steps)]}
        elif chip.bench is not None and chip.bench not in benches:
            report.chips[chip.id] = {"chip": chip.id, "status": "unfinished", "steps": [],
                                     "error": f"bench {chip.bench} is not connected"}
        else:
            todo.append(chip)
    log(f"campaign {spec.name}: {len(spec.chips)} chips, {len(spec.chips) - len(todo)} not to run now, "
        f"{len(todo)} to run on {len(benches)} bench(es): {', '.join(sorted(benches)) or 'none'}")
    if todo and not benches:
        for chip in todo:
            report.chips[chip.id] = {"chip": chip.id, "status": "unfinished", "steps": [],
                                     "error": "no bench worker connected"}
        todo = []
    futures = {}
    for chip in todo:
        res = {BENCH: 1}
        if chip.bench is not None:
            res[bench_resource(chip.bench)] = 1
        fut = client.submit(run_chip, spec.name, os.path.abspath(spec.out), chip, spec.steps, session,
                            resources=res, key=f"chip-{chip.id}-{session[:8]}", pure=False)
        futures[fut] = chip
    bar = tqdm(total=len(spec.chips), initial=len(spec.chips) - len(todo), desc=spec.name, unit="chip",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    missing_since: dict[str, float] = {}
    pending = set(futures)
    seq = as_completed(futures, timeout=None)
    try:
        while pending:
            for fut in _ready(seq, 1.0):
                pending.discard(fut)
                chip = futures[fut]
                try:
                    r = fut.result()
                except Exception as exc:  # e.g. KilledWorker: the bench's worker died too often
                    release_lease(spec.out, chip.id)
                    r = {"chip": chip.id, "status": "unfinished", "steps": [], "error": repr(exc)}
                report.chips[chip.id] = r
                bar.update(1)
                log(f"  {chip.id}: {r['status']} on {r.get('bench')}" + (f" ({r['error']})" if r.get("error") else ""))
            # a pinned chip whose bench left the cluster (and did not come back) would wait forever
            now = time.monotonic()
            alive = bench_workers(client)
            for fut in list(pending):
                chip = futures[fut]
                gone = (chip.bench is not None and chip.bench not in alive) or not alive
                key = chip.bench or "*"
                if not gone:
                    missing_since.pop(key, None)
                    continue
                if now - missing_since.setdefault(key, now) > grace_s:
                    fut.cancel()
                    pending.discard(fut)
                    release_lease(spec.out, chip.id)
                    report.chips[chip.id] = {"chip": chip.id, "status": "unfinished", "steps": [],
                                             "error": f"bench {chip.bench or '(any)'} left the cluster"}
                    bar.update(1)
    except BaseException:
        client.cancel(list(pending))
        raise
    finally:
        bar.close()
    report.wall_s = time.perf_counter() - t0
    report.chips = {c.id: report.chips[c.id] for c in spec.chips}
    _write_json(os.path.join(spec.out, "campaign.json"),
                {"name": spec.name, "benches": report.benches, "unfinished": report.unfinished,
                 "chips": report.chips, "wall_s": report.wall_s})
    return report


def _ready(seq: Any, timeout: float) -> list:
    """Futures that finish within ``timeout`` seconds (maybe none)."""
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = seq.next_batch(block=False)
        if batch:
            out.extend(batch)
            break
        time.sleep(0.05)
    return out


def local_benches(names: tuple[str, ...] | list[str], bench_files: Mapping[str, str] | None = None):
    """A cluster on this machine: a scheduler and one bench worker per name (the embedded
    simulated bench, or the bench file ``bench_files[name]``)."""
    import logging

    from distributed import SpecCluster
    from distributed.scheduler import Scheduler

    options = {"host": "127.0.0.1", "silence_logs": logging.ERROR}
    files = bench_files or {}
    workers = {f"bench-{n}": {"cls": BenchNanny, "options": {"bench_name": n, "bench_file": files.get(n), **options}}
               for n in names}
    return SpecCluster(scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": ":0"}},
                       workers=workers, silence_logs=logging.ERROR)
