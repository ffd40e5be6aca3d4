"""Stuck-device scan benchmark: precision and recall of the scan on the simulated chip.

64x64 Stanford-gap arrays on the embedded simulated bench (real drivers, in-process):
random stuck devices at 5 %, 18 % and 39 % (half stuck-OFF, half stuck-ON, seed 003
Methods) and each of seed 000's six spatial patterns at its first size (stuck-OFF for
even seeds, stuck-ON for odd ones), ten chip seeds each. A found cell counts only with
the right class; unreliable counts as flagged.

Run: ``PYTHONPATH=$PWD python benchmarks/fault_scan.py [--seeds N]`` ->
``benchmarks/results/fault_scan.json`` (a list of {layout, rate, seed, precision, recall,
ops_per_cell, wall_s}).
"""
from __future__ import annotations

import sys
import time

import numpy as np

import hil
from benchmarks._common import write_results
from hil.faultmap import precision_recall
from protocols.scan import scan
from simulated_bench import PATTERNS

RATES = (0.05, 0.18, 0.39)


def cases(n_seeds: int):
    for rate in RATES:
        for seed in range(n_seeds):
            yield "random", rate, seed, {"kind": "random", "rate_off": rate / 2, "rate_on": rate / 2, "seed": 100 + seed}
    for name in PATTERNS:
        for seed in range(n_seeds):
            yield name, None, seed, {"kind": "pattern", "pattern": name, "stuck": "off" if seed % 2 == 0 else "on"}


def main() -> None:
    n_seeds = int(sys.argv[sys.argv.index("--seeds") + 1]) if "--seeds" in sys.argv else 10
    rows = []
    for layout, rate, seed, faults in cases(n_seeds):
        with hil.open_bench(chip={"seed": seed, "faults": faults}) as bench:
            truth = bench.sim.arrays["A"].true_fault_codes
            t0 = time.perf_counter()
            res = scan(bench)
            wall = time.perf_counter() - t0
        precision, recall = precision_recall(res.faultmap.codes, truth)
        row = {"layout": layout, "rate": float(rate if rate is not None else np.count_nonzero(truth) / truth.size),
               "seed": seed, "precision": precision, "recall": recall, "ops_per_cell": res.ops_per_cell,
               "wall_s": wall, "stuck_kind": faults.get("stuck", "off+on")}
        rows.append(row)
        print(f"{layout:18s} rate {row['rate']:.3f} seed {seed}: precision {precision:.4f} recall {recall:.4f} "
              f"ops/cell {res.ops_per_cell:.2f} wall {wall:.2f} s", flush=True)
    worst_p = min(r["precision"] for r in rows)
    worst_r = min(r["recall"] for r in rows)
    print(f"{len(rows)} scans: worst precision {worst_p:.4f}, worst recall {worst_r:.4f}")
    print(f"wrote {write_results('fault_scan', rows)}")


if __name__ == "__main__":
    main()
