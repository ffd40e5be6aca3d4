"""Estimated bench time: the protocols as ``hil program`` / ``hil scan`` run them, against the
naive per-cell lab loop.

On a real bench a protocol's time is set by round trips, integration, relay switching and
pulse widths. The emulators charge all of that to the simulated bench's clock
(``simulated_bench.instruments.clock``); every run file records the run's total
(``round_trips``, ``bench_time_s``, :meth:`protocols.runner.Run.record_clock`). This script
runs an ISPP write-and-verify of the whole array to 3 % and a full stuck-device scan on
each bench, twice:

* **fast**: the protocols themselves (:func:`protocols.ispp.program`,
  :func:`protocols.scan.scan`) through the runner, with a run file, on a bench opened from
  its bench file; the figures are the run file's ``round_trips`` and ``bench_time_s``. The
  protocols use what the bench offers: rows read by the board's sense channels in one
  transfer (routing and ``MEAS? n`` together, the board averaging the verify reads),
  settings the instruments already hold never re-sent, and each iteration's pulses for a
  row sent as one board ``SEQ`` (route, trigger the pulser, next route) per pulser arming;
* **naive**: the usual lab script (ArC ONE ConvergeToState style) with the same tuning rule
  (:class:`protocols.ispp_machine.CellProgrammer`, the ISPP preset at 3 %, the fast run's
  level calibration given to it for free) on the same chip: for each cell, in a Python
  loop, one command per query -- select, route, read (``n_read`` single readings), route,
  pulse. It is measured on ``NAIVE_ROWS`` rows and scaled to the array by row count (rows
  are independent; the JSON records ``naive_rows_measured``).

The chip: Stanford-gap devices (seed 0) with 2 % stuck-OFF and 1 % stuck-ON devices;
targets log-uniform in 20-500 uS. Benches:

* ``2450+81160A+AB64`` (``hil/benches/simulated.yaml``, 64x64): 2450 on USB-TMC, 81160A on
  GPIB, board on 115200 Bd serial, 1 us pulses;
* ``2636B+81160A+707B`` (``examples/benches/simulated_matrix.yaml``, 24x24: six 12-column
  matrix cards hold 24 bit + 24 source + 24 word lines): LAN, 100 us pulses timed by the
  2636B, the ISPP of a row (and its calibration and verify reads) run on the 2636B through
  the 707B on its TSP-Link (:meth:`hil.bench.Bench.tune_row`, ``sweep_row``); its naive loop
  is the per-cell loop through the Bench API (the SMU reads one column at a time there);
* ``B2902A+AB64`` (``examples/benches/simulated_b2900.yaml`` with the chip above, 64x64):
  B2902A on USB-TMC, 100 us pulses since 50 us is its shortest.

On both board benches the board's TRIG OUT is cabled to the pulser's trigger input
(``wiring.pulse_trigger``: 81160A TRIG IN, B2902A digital I/O pin 1); nothing else differs
from the bench files (same 115200 Bd link, same instrument timings).

Prints a table and writes ``benchmarks/results/bench_time.json``: a list of records
``{"bench", "protocol": "ispp" | "scan", "round_trips", "bench_time_s", "naive_round_trips",
"naive_bench_time_s", ...}`` with the ratios, the converged fractions and where the fast
run's time goes.

Run: ``PYTHONPATH=$PWD nice -n 10 python3 benchmarks/bench_time.py [bench ...]`` (naming benches
re-measures those and keeps the results file's other records).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hil
from benchmarks._common import RESULTS, write_results
from hil.bench import build_bench, simulated_bench_file
from hil.benchfile import load_bench_file
from hil.runstore import read_run
from protocols.ispp import CONVERGED, CellProgrammer, ISPPParams, LevelCalibration, preset_for, program
from protocols.scan import SCAN_PRESETS, ScanParams, scan
from simulated_bench.instruments import tsp

SEED = 0
TOL_REL = 0.03
G_TARGET = (20e-6, 500e-6)  # S, targets log-uniform in this window
NAIVE_ROWS = 2  # rows the naive loop is measured on (then scaled to the array)
ROOT = Path(__file__).resolve().parents[1]
CHIP = {"id": "SIM-STANFORD-64-F", "device_model": "stanford_gap", "seed": SEED,
        "arrays": [{"name": "A", "rows": 64, "cols": 64}],
        "faults": {"kind": "random", "rate_off": 0.02, "rate_on": 0.01, "seed": SEED}}
#: bench name -> (bench file, pulse width the bench's pulser needs (None: the preset's), array (rows, cols))
BENCHES = {
    "2450+81160A+AB64": (None, None, (64, 64)),
    # six 12-column matrix cards: 24 bit + 24 source + 24 word lines; the SMU times the pulses
    "2636B+81160A+707B": (ROOT / "examples/benches/simulated_matrix.yaml", 100e-6, (24, 24)),
    "B2902A+AB64": (ROOT / "examples/benches/simulated_b2900.yaml", 100e-6, (64, 64)),
}


# the TSP emulator stops a chunk whose chip physics takes more than MAX_CHUNK_S of host time (a guard
# for served emulators); a row's on-instrument ISPP of 100 us pulses may take longer on a loaded host.
# Host time is not bench time: lifting the guard in this process changes no figure.
tsp.MAX_CHUNK_S = 3600.0


def targets(rows: int, cols: int) -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    return np.exp(rng.uniform(*np.log(G_TARGET), (rows, cols)))  # S


def open_named_bench(name: str) -> hil.Bench:
    """The named bench with the benchmark's chip (the matrix's card layout follows the array)."""
    path, _, (rows, cols) = BENCHES[name]
    over = {"chip": {**CHIP, "arrays": [{"name": "A", "rows": rows, "cols": cols}]}}
    if name.endswith("707B"):
        over["wiring"] = {"matrix": {"array": {"rows": rows, "cols": cols}}}
    return build_bench(load_bench_file(path or simulated_bench_file(), over))


def ispp_params(bench: hil.Bench, width: float | None) -> ISPPParams:
    p = dataclasses.replace(preset_for(bench), tol_rel=TOL_REL)
    if width is not None:
        p = dataclasses.replace(p, set_ladder=dataclasses.replace(p.set_ladder, width=width),
                                reset_ladder=dataclasses.replace(p.reset_ladder, width=width))
    return p


def scan_params(bench: hil.Bench, width: float | None) -> ScanParams:
    p = SCAN_PRESETS["stanford_gap"]
    return p if width is None else dataclasses.replace(p, set_width=width, reset_width=width)


def clock_share(bench: hil.Bench, before: dict) -> dict:
    """Where the run's bench time went: per instrument, transport and busy shares."""
    now = bench.sim.bench_time()["instruments"]
    spent = {n: {k: t[k] - before.get(n, {}).get(k, 0.0) for k in ("transport_s", "busy_s", "round_trips")}
             for n, t in now.items()}
    total = sum(t["transport_s"] + t["busy_s"] for t in spent.values()) or 1.0
    return {n: {"round_trips": int(t["round_trips"]), "transport": round(t["transport_s"] / total, 3),
                "busy": round(t["busy_s"] / total, 3)} for n, t in spent.items()}


# --- fast: the protocols through the runner ---------------------------------------------------------
def fast_ispp(name: str, workdir: Path) -> tuple[dict, LevelCalibration | None]:
    with open_named_bench(name) as bench:
        p = ispp_params(bench, BENCHES[name][1])
        out = workdir / f"ispp_{name}.h5"
        before = bench.sim.bench_time()["instruments"]
        res = program(bench, targets(bench.rows, bench.cols), p, out=str(out), overwrite=True, keep_log=False)
        run = read_run(out)
        return ({"round_trips": int(run["round_trips"]), "bench_time_s": float(run["bench_time_s"]),
                 "converged": float(np.mean(res.status == CONVERGED)), "counts": res.counts(),
                 "converged_naive_rows": float(np.mean(res.status[:NAIVE_ROWS] == CONVERGED)),
                 "share": clock_share(bench, before), "shape": (bench.rows, bench.cols)}, res.calibration)


def fast_scan(name: str, workdir: Path) -> dict:
    with open_named_bench(name) as bench:
        out = workdir / f"scan_{name}.h5"
        before = bench.sim.bench_time()["instruments"]
        res = scan(bench, scan_params(bench, BENCHES[name][1]), out=str(out), overwrite=True)
        run = read_run(out)
        return {"round_trips": int(run["round_trips"]), "bench_time_s": float(run["bench_time_s"]),
                "share": clock_share(bench, before), "shape": (bench.rows, bench.cols),
                "codes": res.faultmap.codes}


# --- naive: ArC ONE-style per-cell loop through the same drivers ------------------------------------
class NaiveLoop:
    """One command per query through the bench's drivers: select, route, read, route, pulse."""

    def __init__(self, bench: hil.Bench, width: float):
        self.bench, self.width = bench, width
        d = bench.station.drivers
        self.board = d["board"]
        self.smu = d["smu"]
        self.b2900 = "pulser" not in d
        i_limit = bench.limits.i_compliance
        if self.b2900:
            for ch in (self.smu.ch1, self.smu.ch2):
                ch.apply_voltage(i_limit, nplc=0.01)
            self.smu.ch2.configure_pulse(width)
            for ch in (self.smu.ch1, self.smu.ch2):
                ch.output_enabled = True
        else:
            self.smu.apply_voltage(compliance_current=i_limit)
            self.smu.measure_current(nplc=0.01)
            self.smu.enable_source()
            self.gen = d["pulser"]
            self.gen.configure_single_pulse(1)
            self.gen.channels[1].output = True
            self.gen.fire(1, high=1.0, width=width, period=2 * width)
            self._high = 1.0
        self.v_read = None

    def select(self, row: int, col: int) -> None:
        self.board.row = row
        self.board.columns = [col]

    def read(self, v_read: float, v_gate: float, n: int) -> float:
        """Conductance (S): route, gate, then ``n`` single readings of the READ SMU, averaged."""
        if v_read != self.v_read:
            if self.b2900:
                self.smu.ch1.source_voltage = v_read
            else:
                self.smu.source_voltage = v_read
            self.v_read = v_read
        self.board.route = "READ"
        self.board.word_line_voltage = v_gate
        cur = (lambda: self.smu.ch1.current) if self.b2900 else (lambda: self.smu.current)
        return float(np.mean([cur() for _ in range(n)])) / v_read

    def pulse(self, amplitude: float, v_gate: float) -> None:
        self.board.word_line_voltage = v_gate
        self.board.route = "BL" if amplitude > 0 else "SL"
        if self.b2900:
            self.smu.ch2.fire_pulse(abs(amplitude))
        else:
            self.gen.fire(1, high=abs(amplitude) if abs(amplitude) != self._high else None)
            self._high = abs(amplitude)


class NaiveBenchLoop:
    """The per-cell loop through the Bench API (a bench without a per-line sense): each read and
    pulse is one cell's ``read_row`` / ``pulse_row``; settings the instruments hold are not
    re-sent (the roles cache them), which only flatters the naive figures."""

    def __init__(self, bench: hil.Bench, width: float):
        self.bench, self.width = bench, width

    def select(self, row: int, col: int) -> None:
        self.cell = (row, col)

    def read(self, v_read: float, v_gate: float, n: int) -> float:
        g = [self.bench.read_row(self.cell[0], [self.cell[1]], v_read, v_gate)[0] for _ in range(n)]
        return float(np.mean(g))

    def pulse(self, amplitude: float, v_gate: float) -> None:
        self.bench.pulse_row(self.cell[0], [self.cell[1]], amplitude, self.width, v_gate)


def naive_loop(bench: hil.Bench, width: float):
    return NaiveLoop(bench, width) if "board" in bench.station.drivers else NaiveBenchLoop(bench, width)


def naive_ispp(name: str, cal: LevelCalibration | None) -> dict:
    with open_named_bench(name) as bench:
        p = ispp_params(bench, BENCHES[name][1])
        g_t = targets(bench.rows, bench.cols)
        loop = naive_loop(bench, p.set_ladder.width)
        clock = bench.sim.clock
        start = clock.snapshot()
        status = []
        for r in range(NAIVE_ROWS):
            for c in range(bench.cols):
                sm = CellProgrammer(g_t[r, c:c + 1], p, cal)  # the protocol's tuning rule, one cell
                loop.select(r, c)
                while sm.active[0]:
                    need, pol, amp, gate = sm.decide([loop.read(p.v_read, p.read_gate, p.n_read)])
                    if need[0]:
                        loop.pulse(float(pol[0] * amp[0]), float(gate[0]))
                status.append(sm.status[0])
        spent = clock.since(start)
        scale = bench.rows / NAIVE_ROWS
        return {"round_trips": spent["round_trips"] * scale, "bench_time_s": spent["bench_time_s"] * scale,
                "converged": float(np.mean(np.array(status) == CONVERGED))}


def naive_scan(name: str) -> dict:
    with open_named_bench(name) as bench:
        sp = scan_params(bench, BENCHES[name][1])
        loop = naive_loop(bench, sp.set_width)
        clock = bench.sim.clock
        start = clock.snapshot()
        for r in range(NAIVE_ROWS):
            for c in range(bench.cols):
                loop.select(r, c)
                loop.read(sp.v_read, sp.read_gate, sp.n_read)
                loop.pulse(sp.set_amp, sp.set_gate)
                loop.read(sp.v_read, sp.read_gate, sp.n_read)
                loop.pulse(-sp.reset_amp, sp.reset_gate)
                loop.read(sp.v_read, sp.read_gate, sp.n_read)
        spent = clock.since(start)
        scale = bench.rows / NAIVE_ROWS
        return {"round_trips": spent["round_trips"] * scale, "bench_time_s": spent["bench_time_s"] * scale}


# --- records ----------------------------------------------------------------------------------------
def record(bench: str, protocol: str, fast: dict, naive: dict) -> dict:
    out = {"bench": bench, "protocol": protocol, "array": f"{fast['shape'][0]}x{fast['shape'][1]}",
           "source": "protocol run file", "round_trips": int(fast["round_trips"]),
           "bench_time_s": round(fast["bench_time_s"], 3),
           "naive_round_trips": int(round(naive["round_trips"])),
           "naive_bench_time_s": round(naive["bench_time_s"], 3),
           "round_trip_ratio": round(naive["round_trips"] / fast["round_trips"], 1),
           "bench_time_ratio": round(naive["bench_time_s"] / fast["bench_time_s"], 1),
           "fast_rows_measured": fast["shape"][0], "naive_rows_measured": NAIVE_ROWS,
           "naive_scaled_by_rows": True, "fast_time_share": fast["share"]}
    if "converged" in fast:
        out["converged_fraction"] = round(fast["converged"], 3)
        out["naive_converged_fraction"] = round(naive["converged"], 3)
        # the naive loop's rows hold other cells (and stuck devices) than the array as a whole
        out["converged_fraction_on_naive_rows"] = round(fast["converged_naive_rows"], 3)
        out["fast_status_counts"] = fast["counts"]
    return out


def show(r: dict) -> None:
    print(f"{r['bench']:<20} {r['protocol']:<5} {r['array']:>6}  round trips {r['round_trips']:>8} vs "
          f"{r['naive_round_trips']:>8} ({r['round_trip_ratio']:>6.1f}x)   bench time {r['bench_time_s']:>9.2f} s"
          f" vs {r['naive_bench_time_s']:>9.2f} s ({r['bench_time_ratio']:>5.1f}x)"
          + (f"   converged {r['converged_fraction']:.3f}"
             + (f" (on the naive rows {r['converged_fraction_on_naive_rows']:.3f})"
                if "converged_fraction_on_naive_rows" in r else "")
             + f" / {r['naive_converged_fraction']:.3f}" if "converged_fraction" in r else ""), flush=True)


def run_bench(name: str, workdir: Path) -> list[dict]:
    t0 = time.perf_counter()
    f_ispp, cal = fast_ispp(name, workdir)
    rec = record(name, "ispp", f_ispp, naive_ispp(name, cal))
    show(rec)
    rec2 = record(name, "scan", fast_scan(name, workdir), naive_scan(name))
    show(rec2)
    print(f"  ({time.perf_counter() - t0:.0f} s of host time)", flush=True)
    return [rec, rec2]


def run(which: list[str] | None = None) -> list[dict]:
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in which or list(BENCHES):
            if name not in BENCHES:
                raise SystemExit(f"unknown bench {name!r}; known: {', '.join(BENCHES)}")
            records += run_bench(name, Path(tmp))
    return records


def merge_into_results(recs: list[dict]) -> list[dict]:
    """The results file's records with those of the benches just measured replaced."""
    path = RESULTS / "bench_time.json"
    old = json.loads(path.read_text()) if path.exists() else []
    fresh = {r["bench"] for r in recs}
    return [r for r in old if r.get("bench") not in fresh] + recs


if __name__ == "__main__":
    recs = run(sys.argv[1:] or None)
    # naming benches re-measures those and keeps the other records of the results file
    print("written", write_results("bench_time", merge_into_results(recs) if len(sys.argv) > 1 else recs))
