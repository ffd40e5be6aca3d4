"""Shared helpers for benchmark scripts: timing and writing results as JSON."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def best_time(fn: Callable[[], object], repeat: int = 5, number: int = 1) -> float:
    """Smallest mean wall time (s) of ``number`` calls over ``repeat`` rounds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def write_results(name: str, data: dict | list) -> Path:
    """Write ``benchmarks/results/NAME.json`` (with the machine it ran on) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = data if isinstance(data, list) else {**data, "machine": platform.platform()}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def add_sweep_args(ap) -> None:
    """``--scheduler`` / ``--workers`` / ``--resume`` for a benchmark that runs its points as a sweep."""
    ap.add_argument("--scheduler", default="local",
                    help="'local' (Dask LocalCluster, one worker per core), 'tcp://HOST:PORT' or 'serial'")
    ap.add_argument("--workers", type=int, default=None, help="local cluster size (default: one per core)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the points already in the sweep table (default: start the table afresh)")


def run_points(name: str, function: str, points: list[dict], args, setup: str | None = None,
               progress: bool = True) -> list[dict]:
    """Run ``function(**point)`` for every point as a :mod:`hil.sweep` sweep; rows in point order.

    The table goes to ``out/sweeps/NAME`` (Parquet); nested values come back as lists/dicts.
    """
    import shutil

    from hil.sweep import SweepSpec, point_key, read_table, run_sweep
    from hil.sweep.table import INDEX, KEY, ROW

    out = Path(__file__).resolve().parent.parent / "out" / "sweeps" / name
    if not getattr(args, "resume", False):
        shutil.rmtree(out, ignore_errors=True)
    spec = SweepSpec(function=function, out=str(out), points=points, setup=setup, name=name)
    report = run_sweep(spec, scheduler=args.scheduler, workers=args.workers, progress=progress)
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} point(s) of {name} failed: {next(iter(report.failed.values()))}")
    df = read_table(out, decode=True, keys=[point_key(p) for p in spec.expand()])
    return [{k: v for k, v in row.items() if k not in (KEY, INDEX, ROW)} for row in df.to_dict("records")]
