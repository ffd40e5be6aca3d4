"""ISPP write-and-verify benchmarks.

1. 64x64 Stanford-gap array on the embedded simulated bench (real drivers, in-process),
   targets log-uniform over 10 uS..1 mS, 3 % tolerance: mean / p99 pulses, success rate
   over working cells (confirmed by the protocol and checked against the chip's truth),
   wall time and simulated chip time. Also the same with 5 % stuck devices.
2. Seed 004 Fig. 5 on one Cu:Te cell (cute_multilevel): nine target levels at 3 % and at
   1 % tolerance, single reads, Delta V = 10 mV (plain ISPP), ten chip seeds. Saves the
   trace of seed 0 as ``benchmarks/results/ispp_fig5.png``.

Run: ``PYTHONPATH=$PWD python benchmarks/ispp.py`` -> ``benchmarks/results/ispp.json``.
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np

import hil
from benchmarks._common import RESULTS, write_results
from hil.plots import ispp_trace
from protocols.ispp import CONVERGED, CUTE_ISPP, calibrate_levels, program

WINDOW = (10e-6, 1e-3)  # S, programming window of the Stanford 1T1R cell (read at 50 mV)
FIG5_TARGETS = np.arange(180, 19, -20) * 1e-6  # nine levels, S


def array_run(faults: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    with hil.open_bench(chip={"seed": seed, "faults": faults}) as bench:
        chip = bench.sim.arrays["A"]
        targets = np.exp(rng.uniform(*np.log(WINDOW), size=(bench.rows, bench.cols)))
        t0, sim0 = time.perf_counter(), chip.time_s
        res = program(bench, targets)
        wall = time.perf_counter() - t0
        working = chip.true_fault_codes == 0
        s = res.summary(working=working)
        # the chip's own reading of the same cells, without noise: is each converged cell really in band?
        truth = chip.read_all(res.params.v_read, res.params.read_gate, noisy=False) / res.params.v_read
        lo, hi = res.params.band(targets)
        true_ok = working & (truth >= lo) & (truth <= hi)
        stuck = ~working
        return {"rows": bench.rows, "cols": bench.cols, "faults": faults, "tolerance": res.params.tol_rel,
                "mean_pulses": s["mean_pulses"], "p99_pulses": s["p99_pulses"], "max_pulses": s["max_pulses"],
                "success_rate": s["success_rate"], "true_in_band_rate": float(true_ok.sum() / working.sum()),
                "stuck_flagged_unresponsive": float((res.status[stuck] == 3).mean()) if stuck.any() else None,
                "wall_s": wall, "sim_time_s": chip.time_s - sim0, "counts": res.counts()}


def fig5_run(tol: float, seed: int, budget: int = 60) -> dict:
    with hil.open_bench(chip={"device_model": "cute_multilevel", "seed": seed,
                              "arrays": [{"name": "A", "rows": 1, "cols": 1}]}) as bench:
        chip = bench.sim.arrays["A"]
        p = dataclasses.replace(CUTE_ISPP, tol_rel=tol, step_growth=1.0, passes=1, max_pulses=budget)
        cal = calibrate_levels(bench, 0, [0], p, stride=5)  # the unit device's levels (seed 004 Fig. 2)
        bench.pulse_row(0, [0], 2.0, 1e-3, 3.0)  # seed 004: full SET at 2 V first
        total, converged, reversals, truly, levels = 1, 0, 0, 0, []
        for t in FIG5_TARGETS:
            r = program(bench, [[t]], p, calibration=cal)
            total += int(r.pulses[0, 0])
            converged += int(r.status[0, 0] == CONVERGED)
            reversals += int(r.reversals[0, 0])
            g_true = float(chip.true_conductance()[0, 0])
            truly += int(abs(g_true / t - 1) <= tol)
            reads = r.read_log["g"]
            pol = np.zeros(reads.size, int)
            it = r.pulse_log["iteration"]
            after = it + 1 < reads.size  # the read that follows each pulse
            pol[it[after] + 1] = r.pulse_log["polarity"][after]
            levels.append({"target": float(t), "tol": tol, "g": reads[1:].tolist(), "polarity": pol[1:].tolist()})
        return {"tol": tol, "seed": seed, "total_pulses": total, "levels_converged": converged,
                "polarity_reversals": reversals, "levels_truly_in_band": truly, "trace": levels}


def main() -> None:
    out: dict = {}
    t = time.perf_counter()
    main_run = array_run({"kind": "none"})
    out.update({k: main_run[k] for k in ("mean_pulses", "p99_pulses", "success_rate", "wall_s", "sim_time_s")})
    out["array_64x64"] = main_run
    print(f"64x64 Stanford, 3 %: mean {main_run['mean_pulses']:.2f} pulses, p99 {main_run['p99_pulses']:.1f}, "
          f"success {100 * main_run['success_rate']:.2f} % (true in band {100 * main_run['true_in_band_rate']:.2f} %), "
          f"wall {main_run['wall_s']:.1f} s, sim {1e3 * main_run['sim_time_s']:.2f} ms", flush=True)
    if "--quick" not in sys.argv:
        f = array_run({"kind": "random", "rate_off": 0.025, "rate_on": 0.025, "seed": 1})
        out["array_64x64_faults_5pct"] = f
        print(f"64x64 with 5 % stuck: mean {f['mean_pulses']:.2f}, p99 {f['p99_pulses']:.1f}, success "
              f"{100 * f['success_rate']:.2f} %, stuck flagged unresponsive {f['stuck_flagged_unresponsive']}, "
              f"wall {f['wall_s']:.1f} s", flush=True)
    fig5 = {}
    for tol in (0.03, 0.01):
        runs = [fig5_run(tol, s) for s in range(10)]
        fig5[f"tol_{tol:g}"] = {
            "total_pulses": [r["total_pulses"] for r in runs],
            "levels_converged": [r["levels_converged"] for r in runs],
            "polarity_reversals": [r["polarity_reversals"] for r in runs],
            "levels_truly_in_band": [r["levels_truly_in_band"] for r in runs]}
        print(f"Fig. 5 at {tol:.0%}: total pulses {fig5[f'tol_{tol:g}']['total_pulses']}, converged "
              f"{fig5[f'tol_{tol:g}']['levels_converged']}, reversals {fig5[f'tol_{tol:g}']['polarity_reversals']}, "
              f"truly in band {fig5[f'tol_{tol:g}']['levels_truly_in_band']}", flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        ispp_trace(runs[0]["trace"], RESULTS / f"ispp_fig5_tol{int(round(100 * tol))}.png",
                   title=f"seed 004 Fig. 5 on the simulated Cu:Te 1T1R cell, {tol:.0%} band")
    out["fig5"] = {"targets_S": FIG5_TARGETS.tolist(), **fig5}
    out["total_wall_s"] = time.perf_counter() - t
    print(f"wrote {write_results('ispp', out)}")


if __name__ == "__main__":
    main()
