"""The digits network's service week (``reprogram.py --only week-network``) on several seeds: a diagnostic.

Prints, per seed, the held accuracy before the faults, its worst check over the week and the loss
in points (aim: within 0.5), for the policies of ``hil/service/network.py``: the corrector
fine-tuned after writes (or on the paired test alone, ``--test-only``), the digital patch on or
off. Writes no results file: the benchmark's figure is seed 60's, in
``benchmarks/results/reprogram.json`` (``service.network``).

    nice -n 10 python3 benchmarks/network_week_seeds.py --seeds 60,61,62,63,64 [--test-only] [--patch off]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.reprogram import week_network  # noqa: E402


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="60,61,62,63,64")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--test-only", action="store_true", help="fine-tune only when the paired test fires")
    ap.add_argument("--patch", choices=("on", "off"), default="on",
                    help="the digital patch of the weights stuck pairs cannot hold")
    a = ap.parse_args(argv)
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        t0 = time.time()
        r = week_network(a.days, 100, seed=seed, tune_after_writes=not a.test_only, figure=False,
                         patch=a.patch == "on")
        c = r["corrector"]
        row = {"seed": seed, "pre_fault": r["network_acc_pre_fault"], "worst": r["network_acc_min"],
               "loss_points": 100 * (r["network_acc_pre_fault"] - r["network_acc_min"]),
               "end": r["network_acc_end"], "images": r["accuracy_images"], "writes": r["devices_reprogrammed"],
               "fine_tuned": c["fine_tuned"], "checks": c["checks"], "wall_s": time.time() - t0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    loss = [r["loss_points"] for r in rows]
    print(f"policy {'test only' if a.test_only else 'after writes'}, patch {a.patch}: mean loss "
          f"{sum(loss) / len(loss):.2f} points, {sum(x <= 0.5 for x in loss)}/{len(loss)} seeds within 0.5 points")
    return rows


if __name__ == "__main__":
    main()
