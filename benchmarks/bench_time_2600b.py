"""The 2636B + 81160A + 707B record of ``benchmarks/bench_time.py``, measured as in session 3.

Until the 2600B bench offers the ISPP page its on-instrument row loop, the protocols on
this bench run the host loop; this record measures what the 2600B driver offers instead:
the whole write-and-verify of a row (and a row's scan) as one TSP call (``tune`` /
``sweep``) that routes each cell through the 707B over TSP-Link, against the naive
per-cell loop with the same rule (:class:`Converge`, the host mirror of
``drivers.keithley2600b.TUNE_LINES``, not the ISPP page's rule). 24x24 (six 12-column
matrix cards: 24 bit + 24 source + 24 word lines), LAN, 100 us pulses from the SMU; both
measured on a few rows and scaled by the row count (``fast_rows_measured``,
``naive_rows_measured``). Records carry ``"source": "driver primitives"``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.keithley707b import Keithley707B
from drivers.keithley2600b import Keithley2600B
from drivers.keysight81160a import Keysight81160A
from hil.transport import EmulatorAdapter
from protocols.ispp import STANFORD_ISPP
from protocols.scan import STANFORD_SCAN
from simulated_bench import SimulatedArray, VariationParams
from simulated_bench.faults import random_fault_codes
from simulated_bench.instruments import SimulatedInstruments

SEED = 0
TOL_REL = 0.03
V_READ = 0.2  # V
READ_GATE = 3.0  # V
MAX_PULSES = 60
G_TARGET = (20e-6, 500e-6)  # S, targets log-uniform in this window
NAIVE_ROWS = 1
FAST_ROWS = 2
UP = (STANFORD_ISPP.set_ladder.amps, STANFORD_ISPP.set_ladder.gates)
DOWN = (STANFORD_ISPP.reset_ladder.amps, STANFORD_ISPP.reset_ladder.gates)
SCAN = STANFORD_SCAN
BENCH = "2636B+81160A+707B"

# --- the tuning rule (mirrors drivers.keithley2600b.TUNE_LINES, vectorized over cells) -----------
class Converge:
    """Per-cell tuning state; :meth:`decide` turns reads (A) into the next pulses."""

    def __init__(self, i_target: np.ndarray):
        self.t = np.asarray(i_target, float)
        n = self.t.size
        self.lo, self.hi = self.t * (1 - TOL_REL), self.t * (1 + TOL_REL)
        self.k = np.zeros(n, int)
        self.step = np.ones(n)
        self.last = np.zeros(n, int)
        self.ok = np.zeros(n, int)
        self.n = np.zeros(n, int)
        self.prev = np.full(n, np.nan)
        self.done = np.zeros(n, bool)

    def decide(self, i: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reads of ``cells`` -> (cells to pulse, polarity +1/-1, rung) for them."""
        t, lo, hi = self.t[cells], self.lo[cells], self.hi[cells]
        inb = (i >= lo) & (i <= hi)
        self.ok[cells] = np.where(inb, self.ok[cells] + 1, 0)
        self.done[cells] |= self.ok[cells] >= 2
        out = ~inb & (self.n[cells] >= MAX_PULSES)
        self.done[cells] |= out
        act = ~inb & ~out
        c = cells[act]
        pol = np.where(i[act] > hi[act], -1, 1)
        rev = pol != self.last[c]
        with np.errstate(divide="ignore", invalid="ignore"):
            moved = np.abs(np.log(i[act] / self.prev[c]))
            rem = np.abs(np.log(self.prev[c] / t[act]))
        slow = moved < 0.3 * rem
        step = np.where(slow, np.minimum(self.step[c] * 2, 32), np.maximum(self.step[c] / 2, 1))
        self.step[c] = np.where(rev, 1.0, step)
        k = np.where(rev, 0, self.k[c] + np.floor(self.step[c]).astype(int))
        top = np.where(pol > 0, len(UP[0]), len(DOWN[0])) - 1
        self.k[c] = np.minimum(k, top)
        self.last[c] = pol
        self.n[c] += 1
        self.prev[cells] = i
        return c, pol, self.k[c]


def drive(pol: int, k: int) -> tuple[float, float]:
    amps, gates = UP if pol > 0 else DOWN
    return float(amps[k]), float(gates[k])


def chip(rows: int, cols: int) -> SimulatedArray:
    codes = random_fault_codes(rows, cols, 0.02, 0.01, rng=SEED)
    return SimulatedArray(rows, cols, seed=SEED, variation=VariationParams(), fault_codes=codes)


def targets(rows: int, cols: int) -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    return V_READ * np.exp(rng.uniform(*np.log(G_TARGET), (rows, cols)))  # A


@dataclass
class Outcome:
    round_trips: int
    bench_time_s: float
    converged: float | None = None
    instruments: dict | None = None  # the clock's per-instrument breakdown


# --- the 2636B + 707B bench ------------------------------------------------------------------
MATRIX_ROWS = {"A": "read", "B": "pulse", "C": "gate", "D": "gnd"}


def crosspoint(line: int, letter: str) -> str:
    return f"{line // 12 + 1}{letter}{line % 12 + 1:02d}"


class MatrixBench:
    """smua on the matrix's READ row, the 81160A on its PULSE row, smub on the GATE row.

    The on-instrument loop pulses with smua (the cell stays routed); the naive loop pulses
    with the 81160A as the bench's pulser, so it re-routes the bit line for every pulse and
    read (inverted polarity for the negative, RESET, pulses: the same voltages on the cell).
    """

    def __init__(self, n: int = 24):
        self.rows = self.cols = n
        self.width = 100e-6
        self.array = chip(n, n)
        self.sim = SimulatedInstruments(
            {"A": self.array}, {"smu": "keithley2600b", "mx": "keithley707b", "gen": "keysight81160a"},
            {"read": "smu.a", "gate": "smu.b", "pulse": "gen.1"},
            options={"smu": {"tsplink_node": 1}, "mx": {"tsplink_node": 2, "matrix": {"rows": MATRIX_ROWS}}})
        self.smu = Keithley2600B(EmulatorAdapter(self.sim.emulators["smu"]))
        self.mx = Keithley707B(EmulatorAdapter(self.sim.emulators["mx"]))
        for ch in (self.smu.smua, self.smu.smub):
            ch.apply_voltage(0.05, nplc=0.01)
            ch.output_enabled = True
        self.smu.load_tuning(UP, DOWN)
        self.gen = Keysight81160A(EmulatorAdapter(self.sim.emulators["gen"]))
        self.gen.configure_single_pulse(1)
        self.gen.channels[1].output = True
        self.gen.fire(1, high=1.0, width=self.width, period=2 * self.width)
        self._high, self._inverted, self._routed = 1.0, False, None
        self.sim.clock.reset()

    def route(self, row: int, col: int, bit_line_to: str = "A") -> str:
        # bit line on READ (or PULSE), word line on GATE; the source line, closed to nothing, is grounded
        return f"{crosspoint(col, bit_line_to)},{crosspoint(2 * self.rows + row, 'C')}"

    def naive_select(self, row: int, col: int) -> None:
        self.cell = (row, col)
        self.mx.exclusive_close(self.route(row, col))

    def naive_read(self) -> float:
        self.mx.exclusive_close(self.route(*self.cell))
        self.smu.smub.source_voltage = READ_GATE
        self.smu.smua.source_voltage = V_READ
        return float(self.smu.smua.current)

    def naive_pulse(self, pol: int, amp: float, gate: float) -> None:
        self.mx.exclusive_close(self.route(*self.cell, bit_line_to="B"))
        if (pol < 0) != self._inverted:
            self._inverted = pol < 0
            self.gen.set_polarity(1, self._inverted)
        self.smu.smub.source_voltage = gate
        self.gen.fire(1, high=amp if amp != self._high else None)
        self._high = amp


def ispp_fast_matrix(b: MatrixBench, i_t: np.ndarray, rows: int) -> Outcome:
    done = []
    for r in range(rows):
        res = b.smu.tune([b.route(r, c) for c in range(b.cols)], i_t[r], TOL_REL, V_READ, READ_GATE, b.width,
                         MAX_PULSES, matrix_node=2)
        done.extend(ok for _, _, ok in res)
    return Outcome(b.sim.clock.round_trips, b.sim.clock.bench_time_s, float(np.mean(done)),
                   b.sim.bench_time()["instruments"])


def ispp_naive_matrix(b: MatrixBench, i_t: np.ndarray, rows: int) -> Outcome:
    cv = Converge(i_t.ravel())
    for r in range(rows):
        for col in range(b.cols):
            cell = np.array([r * b.cols + col])
            b.naive_select(r, col)
            while not cv.done[cell[0]]:
                c, pol, k = cv.decide(np.array([b.naive_read()]), cell)
                if c.size:
                    b.naive_pulse(int(pol[0]), *drive(int(pol[0]), int(k[0])))
    return Outcome(b.sim.clock.round_trips, b.sim.clock.bench_time_s,
                   float(np.mean(cv.ok[: rows * b.cols] >= 2)))


SCAN_STEPS = [(SCAN.set_amp, SCAN.set_gate), (-SCAN.reset_amp, SCAN.reset_gate)]


def scan_fast_matrix(b: MatrixBench, rows: int) -> Outcome:
    for r in range(rows):
        b.smu.sweep([b.route(r, c) for c in range(b.cols)], SCAN_STEPS, V_READ, READ_GATE, b.width, matrix_node=2)
    return Outcome(b.sim.clock.round_trips, b.sim.clock.bench_time_s)


def scan_naive_matrix(b: MatrixBench, rows: int) -> Outcome:
    for r in range(rows):
        for col in range(b.cols):
            b.naive_select(r, col)
            b.naive_read()
            for amp, gate in SCAN_STEPS:
                b.naive_pulse(int(np.sign(amp)), abs(amp), gate)
                b.naive_read()
    return Outcome(b.sim.clock.round_trips, b.sim.clock.bench_time_s)


def record(bench: str, protocol: str, size: tuple[int, int], fast: Outcome, naive: Outcome) -> dict:
    f_rt, f_t = fast.round_trips * size[0] / FAST_ROWS, fast.bench_time_s * size[0] / FAST_ROWS
    n_rt, n_t = naive.round_trips * size[0] / NAIVE_ROWS, naive.bench_time_s * size[0] / NAIVE_ROWS
    out = {"bench": bench, "protocol": protocol, "array": f"{size[0]}x{size[1]}", "source": "driver primitives",
           "round_trips": int(round(f_rt)), "bench_time_s": round(f_t, 3),
           "naive_round_trips": int(round(n_rt)), "naive_bench_time_s": round(n_t, 3),
           "round_trip_ratio": round(n_rt / f_rt, 1), "bench_time_ratio": round(n_t / f_t, 1),
           "fast_rows_measured": FAST_ROWS, "naive_rows_measured": NAIVE_ROWS}
    if fast.instruments:
        # where the fast run's bench time goes, per instrument, as fractions
        out["fast_time_share"] = {n: {"transport": round(t["transport_s"] / fast.bench_time_s, 3),
                                      "busy": round(t["busy_s"] / fast.bench_time_s, 3)}
                                  for n, t in fast.instruments.items()}
    if fast.converged is not None:
        out["converged_fraction"] = round(fast.converged, 3)
        out["naive_converged_fraction"] = round(naive.converged, 3)
    return out




def run() -> list[dict]:
    n = 24
    i_t = targets(n, n)
    return [record(BENCH, "ispp", (n, n), ispp_fast_matrix(MatrixBench(n), i_t, FAST_ROWS),
                   ispp_naive_matrix(MatrixBench(n), i_t, NAIVE_ROWS)),
            record(BENCH, "scan", (n, n), scan_fast_matrix(MatrixBench(n), FAST_ROWS),
                   scan_naive_matrix(MatrixBench(n), NAIVE_ROWS))]
