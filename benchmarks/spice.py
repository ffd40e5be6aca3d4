"""SPICE engine vs the fast crossbar solver and the numpy pulse engine.

Crossbar VMM with 2 ohm per wire segment at n x n (n = 32, 64, 128 on both, 256 solver
only): wall time of ngspice (netlist, run, reading the column-current traces) and of the
sparse solver (assembly, factorisation, iterations; plus a second input vector on the
reused factorisation), and the largest relative difference of the column currents.
One 1T1R SET pulse: ngspice transient vs the quadrature pulse engine, and the relative
difference of their gap changes.

Run: PYTHONPATH=$PWD python benchmarks/spice.py  ->  benchmarks/results/spice.json
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from simulated_bench.array import default_cell
from simulated_bench.crossbar import CrossbarSolver, WireParams
from simulated_bench.devices.stanford import NM, StanfordGapModel
from simulated_bench.pulse import PulseEngine
from simulated_bench.spice.netlist import accuracy_options, cell_pulse_netlist, crossbar_netlist, driver_current_traces
from simulated_bench.spice.runner import SpiceRunner

SIZES_BOTH = (32, 64, 128)
SIZES_SOLVER_ONLY = (256,)
R_SEGMENT = 2.0  # ohm
V_GATE = 3.0  # V
V_IN_MAX = 0.2  # V, largest input on a source line
PULSE = {"v_bl": 2.0, "v_sl": 0.0, "v_wl": 1.5, "width": 1e-7}  # SET from the fully RESET state
OUT = Path(__file__).parent / "results" / "spice.json"


def crossbar_case(n: int, runner: SpiceRunner | None, rng: np.random.Generator) -> dict:
    model = StanfordGapModel()
    cell = default_cell(model)
    state = rng.uniform(model.p.g_min, model.p.g_max, (n, n))
    v_in = rng.uniform(0.0, V_IN_MAX, (2, n))
    wires = WireParams.uniform(R_SEGMENT)
    t0 = time.perf_counter()
    solver = CrossbarSolver(model, cell, state, wires, V_GATE)
    sol = solver.solve(np.zeros(n), v_in[0])
    solver_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    solver.solve(np.zeros(n), v_in[1])
    reuse_s = time.perf_counter() - t0
    # the column current a virtual ground sinks: minus what the bit-line driver delivers
    i_solver = -sol.i_bl
    row = {"n": n, "solver_s": solver_s, "solver_reused_factorisation_s": reuse_s}
    if runner is None:
        return {**row, "ngspice_s": None, "max_rel_diff": None}
    t0 = time.perf_counter()
    traces = driver_current_traces(n, n)["bl"]
    net = crossbar_netlist(model.p, cell, state, V_GATE, 0.0, v_in[0], wires, analysis=f"{accuracy_options()}\n.op",
                           save=traces)
    out = runner.run(net, traces, name=f"vmm{n}")
    i_spice = np.array([out[t][-1] for t in traces])
    ngspice_s = time.perf_counter() - t0
    rel = float(np.max(np.abs(i_solver - i_spice) / np.abs(i_spice)))
    return {**row, "ngspice_s": ngspice_s, "max_rel_diff": rel, "speedup": ngspice_s / solver_s}


def cell_pulse_case(runner: SpiceRunner) -> dict:
    model = StanfordGapModel()
    cell = default_cell(model)
    g0 = model.p.g_max
    t0 = time.perf_counter()
    net = cell_pulse_netlist(model.p, cell, g0, **PULSE)
    gap_spice = runner.run(net, ["v(gap)"], name="pulse")["v(gap)"][-1] * NM
    ngspice_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = PulseEngine(model, cell)  # fresh: the time includes building the pulse table
    gap_numpy = float(engine.apply(g0, PULSE["v_bl"], PULSE["v_sl"], PULSE["v_wl"], PULSE["width"]))
    numpy_s = time.perf_counter() - t0
    d_numpy, d_spice = gap_numpy - g0, gap_spice - g0
    return {"cell_pulse_ngspice_s": ngspice_s, "cell_pulse_numpy_s": numpy_s,
            "gap_change_rel_diff": abs(d_spice - d_numpy) / abs(d_numpy),
            "gap_change_nm": d_numpy / NM, "pulse": PULSE}


def main() -> None:
    rng = np.random.default_rng(2026)
    results = []
    with SpiceRunner(timeout=3 * 3600) as runner:  # ngspice needs minutes at 128 x 128
        for n in SIZES_BOTH + SIZES_SOLVER_ONLY:
            row = crossbar_case(n, runner if n in SIZES_BOTH else None, rng)
            results.append(row)
            if row["ngspice_s"] is None:
                print(f"VMM {n:4d}x{n:<4d} solver {row['solver_s']:8.3f} s (reused factorisation "
                      f"{row['solver_reused_factorisation_s']:.3f} s), ngspice skipped")
            else:
                print(f"VMM {n:4d}x{n:<4d} ngspice {row['ngspice_s']:8.2f} s  solver {row['solver_s']:7.3f} s "
                      f"(reused {row['solver_reused_factorisation_s']:.3f} s)  speed-up {row['speedup']:7.1f}x  "
                      f"max rel diff {row['max_rel_diff']:.2e}")
        pulse = cell_pulse_case(runner)
    results.append(pulse)
    print(f"1T1R SET pulse: ngspice {pulse['cell_pulse_ngspice_s']:.3f} s, numpy {pulse['cell_pulse_numpy_s']:.4f} s, "
          f"gap change {pulse['gap_change_nm']:.4f} nm, relative difference {pulse['gap_change_rel_diff']:.2e}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
