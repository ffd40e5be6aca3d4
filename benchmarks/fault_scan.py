"""Stuck-device scan benchmark: precision and recall of the scan on the simulated chip.

64x64 Stanford-gap arrays on the embedded simulated bench (real drivers, in-process):
random stuck devices at 5 %, 18 % and 39 % (half stuck-OFF, half stuck-ON, seed 003
Methods) and each of seed 000's six spatial patterns at its first size (stuck-OFF for
even seeds, stuck-ON for odd ones), ten chip seeds each. A found cell counts only with
the right class; unreliable counts as flagged.

The cases run as a :mod:`hil.sweep` sweep (``--scheduler local|serial|tcp://HOST:PORT``);
each case is one simulated chip fixed by its seed, so the rows do not depend on where
they ran.

Run: ``python3 -m benchmarks.fault_scan [--seeds N]`` ->
``benchmarks/results/fault_scan.json`` (a list of {layout, rate, seed, precision, recall,
ops_per_cell, wall_s}).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import hil
from benchmarks._common import add_sweep_args, run_points, write_results
from hil.faultmap import precision_recall
from protocols.scan import scan
from simulated_bench import PATTERNS

RATES = (0.05, 0.18, 0.39)
ROW_KEYS = ("layout", "rate", "seed", "precision", "recall", "ops_per_cell", "wall_s", "stuck_kind")


def cases(n_seeds: int):
    for rate in RATES:
        for seed in range(n_seeds):
            yield "random", rate, seed, {"kind": "random", "rate_off": rate / 2, "rate_on": rate / 2, "seed": 100 + seed}
    for name in PATTERNS:
        for seed in range(n_seeds):
            yield name, None, seed, {"kind": "pattern", "pattern": name, "stuck": "off" if seed % 2 == 0 else "on"}


def scan_case(layout: str, rate: float | None, seed: int, faults: dict, size: int | None = None) -> dict:
    """Scan one simulated chip (chip ``seed``, ``faults``; ``size`` x ``size`` cells, default the bench's)."""
    chip = {"seed": seed, "faults": faults}
    if size is not None:
        chip["arrays"] = [{"name": "A", "rows": size, "cols": size}]
    with hil.open_bench(chip=chip) as bench:
        truth = bench.sim.arrays["A"].true_fault_codes
        t0 = time.perf_counter()
        res = scan(bench)
        wall = time.perf_counter() - t0
    precision, recall = precision_recall(res.faultmap.codes, truth)
    return {"layout": layout, "rate": float(rate if rate is not None else np.count_nonzero(truth) / truth.size),
            "seed": seed, "precision": precision, "recall": recall, "ops_per_cell": res.ops_per_cell,
            "wall_s": wall, "stuck_kind": faults.get("stuck", "off+on")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="chip seeds per layout")
    add_sweep_args(ap)
    args = ap.parse_args()
    points = [{"layout": layout, "rate": rate, "seed": seed, "faults": faults}
              for layout, rate, seed, faults in cases(args.seeds)]
    rows = [{k: r[k] for k in ROW_KEYS} for r in run_points("fault_scan", "benchmarks.fault_scan:scan_case", points, args)]
    for row in rows:
        print(f"{row['layout']:18s} rate {row['rate']:.3f} seed {row['seed']}: precision {row['precision']:.4f} "
              f"recall {row['recall']:.4f} ops/cell {row['ops_per_cell']:.2f} wall {row['wall_s']:.2f} s")
    worst_p = min(r["precision"] for r in rows)
    worst_r = min(r["recall"] for r in rows)
    print(f"{len(rows)} scans: worst precision {worst_p:.4f}, worst recall {worst_r:.4f}")
    print(f"wrote {write_results('fault_scan', rows)}")


if __name__ == "__main__":
    main()
