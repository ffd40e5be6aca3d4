"""The sweep layer on Dask: seed 003's Fig. 2 Monte Carlo serial vs on a LocalCluster, a worker
killed mid-sweep, and a campaign over three simulated benches.

Writes benchmarks/results/distributed.json::

    {"study", "points", "serial_s", "dask_s", "workers", "speedup", "identical",
     "worker_killed": {"completed", "identical"},
     "campaign": {"benches", "chips", "bench_time_s", "serial_bench_time_s", "complete"}, ...}

``identical`` compares every row of the Dask table with the serial one bit for bit
(CPU-time columns aside). The killed run SIGKILLs one worker once a quarter of the
points are in. ``bench_time_s`` is the busiest bench's total over the campaign,
``serial_bench_time_s`` the sum over all chips (one bench doing them one after another).
The machine's load average is recorded before and after: wall-time speedups measured
on a loaded machine understate what two free cores give.

    python3 -m benchmarks.distributed                 # full study (~25 min on 2 idle cores)
    python3 -m benchmarks.distributed --points 200    # an evenly spread subset of the points
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks import factorize  # noqa: E402
from benchmarks._common import write_results  # noqa: E402
from hil.sweep import SweepSpec, read_table, run_sweep, same_results  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "out" / "sweeps" / "distributed"
FUNCTION, SETUP = "benchmarks.factorize:run_point", "benchmarks.factorize:warm_up"
TIMING_COLUMNS = ("cpu_s", "_trace")  # CPU seconds (and the trace of them) differ run to run


def study_points(n: int | None) -> list[dict]:
    """The Fig. 2 plan of benchmarks.factorize at its default (full) size, or ``n`` points spread over it."""
    args = argparse.Namespace(quick=False, trials=50, on_trials=10, direct_trials=50, adam_trials=3,
                              adam_rates=[0.05, 0.18, 0.39], tol=1e-10, max_iter=factorize.SolverParams().max_iter,
                              restarts=3)
    tasks = factorize.plan(args)
    if n is None or n >= len(tasks):
        return tasks
    step = len(tasks) / n
    return [tasks[int(i * step)] for i in range(n)]


def spec(name: str, points: list[dict]) -> SweepSpec:
    shutil.rmtree(OUT / name, ignore_errors=True)
    return SweepSpec(function=FUNCTION, out=str(OUT / name), points=points, setup=SETUP, name=name)


def loadavg() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def autogroup() -> int | None:
    """1 when the kernel shares CPU per session (autogroup): then a loaded machine gives this
    benchmark's processes one share together, and wall-time speedup cannot show."""
    try:
        return int(Path("/proc/sys/kernel/sched_autogroup_enabled").read_text())
    except (OSError, ValueError):
        return None


def campaign(n_chips: int, size: int) -> dict:
    """``n_chips`` simulated chips (scan, then read) shared by three simulated bench workers."""
    from distributed import Client

    from hil.commands.campaign_cmd import STEPS
    from hil.sweep.campaign import CampaignSpec, local_benches, run_campaign

    benches = ["station-1", "station-2", "station-3"]
    out = OUT / "campaign"
    shutil.rmtree(out, ignore_errors=True)
    chips = [{"id": f"W1-D{i:02d}", "sim": {"seed": i, "arrays": [{"name": "A", "rows": size, "cols": size}],
                                              "faults": {"kind": "random", "rate_off": 0.05, "rate_on": 0.05,
                                                         "seed": i}}} for i in range(n_chips)]
    cs = CampaignSpec.from_dict({"name": "distributed-benchmark", "out": str(out), "benches": benches,
                                 "chips": chips, "steps": [{"protocol": "scan"}, {"protocol": "read"}]},
                                catalog=STEPS)
    with local_benches(benches) as cluster, Client(cluster) as client:
        client.wait_for_workers(len(benches), timeout=120)
        report = run_campaign(cs, client, progress=False)
    makespan, total = report.bench_time()
    per_bench: dict[str, int] = {}
    for r in report.chips.values():
        per_bench[r["bench"]] = per_bench.get(r["bench"], 0) + 1
    clocks = sorted({s["clock"] for r in report.chips.values() for s in r["steps"]})
    return {"benches": len(benches), "chips": n_chips, "bench_time_s": makespan, "serial_bench_time_s": total,
            "ratio": makespan / total if total else None, "complete": report.complete, "chips_per_bench": per_bench,
            "clock": clocks, "array": [size, size], "steps": ["scan", "read"], "wall_s": report.wall_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=None, help="evenly spread subset of the study (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--chips", type=int, default=9, help="chips in the three-bench campaign")
    ap.add_argument("--chip-size", type=int, default=64, help="rows = cols of each campaign chip")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    points = study_points(args.points)
    load_before = loadavg()
    print(f"{len(points)} points of the Fig. 2 Monte Carlo; load average {load_before}", flush=True)

    s_serial = spec("serial", points)
    t0 = time.perf_counter()
    rep = run_sweep(s_serial, scheduler="serial")
    serial_s = time.perf_counter() - t0
    assert rep.complete, rep.failed
    serial = read_table(s_serial.out)
    print(f"serial: {serial_s:.1f} s", flush=True)

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        print(f"LocalCluster: {args.workers} workers, dashboard {cluster.dashboard_link}", flush=True)
        s_dask = spec("dask", points)
        t0 = time.perf_counter()
        rep = run_sweep(s_dask, client=client)
        dask_s = time.perf_counter() - t0
        identical = rep.complete and same_results(read_table(s_dask.out), serial, ignore=TIMING_COLUMNS)
        print(f"dask: {dask_s:.1f} s on {args.workers} workers, speedup {serial_s / dask_s:.2f}, "
              f"identical {identical}", flush=True)

        s_kill = spec("killed", points)
        pids = list(client.run(os.getpid).values())
        killed: list[int] = []

        def kill_one(rows) -> None:
            if not killed and kill_one.n >= len(points) // 4:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            kill_one.n += 1

        kill_one.n = 0
        rep = run_sweep(s_kill, client=client, on_row=kill_one)
        kill_table = read_table(s_kill.out)
        worker_killed = {"completed": bool(killed) and rep.complete and len(kill_table) == len(serial),
                         "identical": same_results(kill_table, serial, ignore=TIMING_COLUMNS),
                         "killed_after_points": len(points) // 4, "wall_s": rep.wall_s}
        print(f"worker killed mid-sweep: {worker_killed}", flush=True)

    camp = campaign(args.chips, args.chip_size)
    print(f"campaign: {camp}", flush=True)
    load_after = loadavg()
    result = {"study": "seed 003 Fig. 2 Monte Carlo, Re(DFT64) (benchmarks.factorize plan"
                       + (")" if args.points is None else f", {len(points)} evenly spread points)"),
              "points": len(points), "serial_s": serial_s, "dask_s": dask_s, "workers": args.workers,
              "speedup": serial_s / dask_s, "identical": bool(identical), "worker_killed": worker_killed,
              "campaign": camp, "cpu_count": os.cpu_count(), "loadavg_before": load_before,
              "loadavg_after": load_after, "sched_autogroup": autogroup(),
              "note": "dask_s includes the workers' kernel warm-up, not the cluster start; "
                      "serial_bench_time_s sums the per-chip bench times of the same chips"}
    print(f"wrote {write_results('distributed', result)}")


if __name__ == "__main__":
    main()
