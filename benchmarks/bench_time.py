"""Estimated bench time: the fast instrument primitives against the naive per-cell lab loop.

On a real bench a protocol's time is set by round trips, integration, relay switching and
pulse widths. The emulators charge all of that to the simulated bench's clock
(``simulated_bench.instruments.clock``); this script runs, through the real drivers, an
ISPP write-and-verify of the whole array to 3 % and a full stuck-device scan on three
benches, twice each:

* **fast**: what the drivers offer a protocol -- rows read in parallel by the board's sense
  channels in one batched transfer, pulses shared by every cell that needs the same one,
  and on the 2636B bench the whole write-and-verify of a row (and a row's scan) run on the
  instrument as one TSP call that routes each cell through the 707B over TSP-Link;
* **naive**: the usual lab script (ArC ONE ConvergeToState style): for each cell, in a
  Python loop, one command per query -- route, pulse, route back, read.

Both use the same tuning rule (a ladder per polarity, restarted after a reversal, its step
doubling while a pulse barely moves the cell; done after two reads in the band or 60
pulses; the Stanford preset's ladders) on the same chip (seeded, with 2 % stuck-OFF and
1 % stuck-ON devices). Emulating every pulse of a whole 64x64 array takes the host tens of
minutes, so both are measured on a few rows (``FAST_ROWS``, ``NAIVE_ROWS``, recorded) and
scaled to the array by row count: rows are programmed independently, one after another,
so a run's cost is the sum of its rows'.

Benches: ``2450+81160A+AB64`` (64x64; 2450 on USB-TMC, 81160A on GPIB, board on 115200 Bd
serial, 1 us pulses), ``2636B+81160A+707B`` (24x24, what six 12-column matrix cards
address: 24 bit + 24 source + 24 word lines; LAN; 100 us pulses from the SMU, since only
an on-instrument loop can keep the cell routed while it pulses and reads), ``B2902A+AB64``
(64x64; B2902A on USB-TMC, 100 us pulses: its minimum is 50 us).

Prints a table and writes ``benchmarks/results/bench_time.json``: a list of records
``{"bench", "protocol": "ispp" | "scan", "round_trips", "bench_time_s", "naive_round_trips",
"naive_bench_time_s", ...}`` with the speed-ups and the fraction of cells each run
converged.

Run: ``PYTHONPATH=$PWD nice -n 10 python benchmarks/bench_time.py``
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from benchmarks._common import write_results
from drivers.addressing_board import AddressingBoard
from drivers.keithley707b import Keithley707B
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600b import Keithley2600B
from drivers.keysight81160a import Keysight81160A
from drivers.keysightb2900 import KeysightB2900
from hil.transport import EmulatorAdapter, register_serial_endpoint
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
NAIVE_ROWS = 1  # rows the naive loop is measured on (then scaled to the array)
FAST_ROWS = 2  # rows the fast path is measured on (then scaled to the array)
UP = (STANFORD_ISPP.set_ladder.amps, STANFORD_ISPP.set_ladder.gates)
DOWN = (STANFORD_ISPP.reset_ladder.amps, STANFORD_ISPP.reset_ladder.gates)
SCAN = STANFORD_SCAN


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


# --- benches with the AB64 board (2450 + 81160A, or a B2902A) ------------------------------------
class BoardBench:
    """Board routes and senses; ``read`` source on READ, pulses on PULSE (81160A or B2900 channel 2)."""

    def __init__(self, kind: str, rows: int = 64, cols: int = 64):
        self.kind, self.rows, self.cols = kind, rows, cols
        self.array = chip(rows, cols)
        if kind == "2450":
            inst = {"smu": "keithley2450", "gen": "keysight81160a", "board": "rram-hil-ab64"}
            inputs = {"read": "smu", "pulse": "gen.1", "gate": "board"}
            self.width = 1e-6
        else:
            inst = {"smu": "keysightb2900", "board": "rram-hil-ab64"}
            inputs = {"read": "smu.1", "pulse": "smu.2", "gate": "board"}
            self.width = 100e-6
        self.sim = SimulatedInstruments({"A": self.array}, inst, inputs)
        self.board = AddressingBoard(register_serial_endpoint("board", self.sim.emulators["board"]))
        if kind == "2450":
            self.smu = Keithley2450(EmulatorAdapter(self.sim.emulators["smu"]))
            self.smu.apply_voltage(compliance_current=0.05)
            self.smu.measure_current(nplc=0.01)
            self.smu.source_voltage = V_READ
            self.smu.enable_source()
            self.gen = Keysight81160A(EmulatorAdapter(self.sim.emulators["gen"]))
            self.gen.configure_single_pulse(1)
            self.gen.channels[1].output = True
            self._high = None
            self.gen.fire(1, high=1.0, width=self.width, period=2 * self.width)
        else:
            self.smu = KeysightB2900(EmulatorAdapter(self.sim.emulators["smu"]))
            for ch in (self.smu.ch1, self.smu.ch2):
                ch.apply_voltage(0.05, nplc=0.01)
            self.smu.ch1.source_voltage = V_READ
            self.smu.ch2.configure_pulse(self.width)
            for ch in (self.smu.ch1, self.smu.ch2):
                ch.output_enabled = True
        self.sim.clock.reset()

    # primitives -----------------------------------------------------------------------------
    def fire(self, amp: float) -> None:
        if self.kind == "2450":
            self.gen.fire(1, high=amp if amp != self._high else None)
            self._high = amp
        else:
            self.smu.ch2.fire_pulse(amp)

    def smu_current(self) -> float:
        return float(self.smu.current if self.kind == "2450" else self.smu.ch1.current)

    # fast: a row's reads in one batched transfer, a pulse per distinct drive; settings the board
    # already holds are not sent again (as the bench roles cache them)
    def _set(self, **wanted) -> dict:
        state = self.__dict__.setdefault("_board_state", {})
        out = {}
        for key, value in wanted.items():
            norm = tuple(int(c) for c in value) if key == "columns" else value
            if state.get(key) != norm:
                out[key] = value
                state[key] = norm
        return out

    def fast_read(self, row: int, cols: np.ndarray) -> np.ndarray:
        changes = self._set(row=row, columns=cols, word_line_voltage=READ_GATE, route="READ")
        return np.asarray(self.board.batch(**changes, measure=True))

    def fast_pulse(self, row: int, cols: np.ndarray, pol: int, amp: float, gate: float) -> None:
        changes = self._set(columns=cols, word_line_voltage=gate, route="BL" if pol > 0 else "SL")
        if changes:
            self.board.batch(**changes)
        self.fire(amp)

    # naive: one command per query, one cell at a time --------------------------------------------
    def naive_select(self, row: int, col: int) -> None:
        self.board.row = row
        self.board.columns = [col]

    def naive_read(self) -> float:
        self.board.route = "READ"
        self.board.word_line_voltage = READ_GATE
        return self.smu_current()

    def naive_pulse(self, pol: int, amp: float, gate: float) -> None:
        self.board.word_line_voltage = gate
        self.board.route = "BL" if pol > 0 else "SL"
        self.fire(amp)


def ispp_fast_board(b: BoardBench, i_t: np.ndarray, rows: int) -> Outcome:
    cv = Converge(i_t.ravel())
    for r in range(rows):
        cells = r * b.cols + np.arange(b.cols)
        while not cv.done[cells].all():
            act = cells[~cv.done[cells]]
            cols = act - r * b.cols
            i = b.fast_read(r, cols)
            c, pol, k = cv.decide(i, act)
            groups: dict[tuple[int, int], list[int]] = {}
            for cell, p_, k_ in zip(c, pol, k):
                groups.setdefault((int(p_), int(k_)), []).append(int(cell - r * b.cols))
            for (p_, k_), gcols in sorted(groups.items()):
                amp, gate = drive(p_, k_)
                b.fast_pulse(r, np.array(gcols), p_, amp, gate)
    return Outcome(b.sim.clock.round_trips, b.sim.clock.bench_time_s, float(np.mean(cv.ok[: rows * b.cols] >= 2)),
                   b.sim.bench_time()["instruments"])


def ispp_naive_board(b: BoardBench, i_t: np.ndarray, rows: int) -> Outcome:
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


def scan_fast_board(b: BoardBench, rows: int) -> Outcome:
    cols = np.arange(b.cols)
    for r in range(rows):
        b.fast_read(r, cols)
        b.fast_pulse(r, cols, +1, SCAN.set_amp, SCAN.set_gate)
        b.fast_read(r, cols)
        b.fast_pulse(r, cols, -1, SCAN.reset_amp, SCAN.reset_gate)
        b.fast_read(r, cols)
    return Outcome(b.sim.clock.round_trips, b.sim.clock.bench_time_s)


def scan_naive_board(b: BoardBench, rows: int) -> Outcome:
    for r in range(rows):
        for col in range(b.cols):
            b.naive_select(r, col)
            b.naive_read()
            b.naive_pulse(+1, SCAN.set_amp, SCAN.set_gate)
            b.naive_read()
            b.naive_pulse(-1, SCAN.reset_amp, SCAN.reset_gate)
            b.naive_read()
    return Outcome(b.sim.clock.round_trips, b.sim.clock.bench_time_s)


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


# --- driver ---------------------------------------------------------------------------------------
def record(bench: str, protocol: str, size: tuple[int, int], fast: Outcome, naive: Outcome) -> dict:
    f_rt, f_t = fast.round_trips * size[0] / FAST_ROWS, fast.bench_time_s * size[0] / FAST_ROWS
    n_rt, n_t = naive.round_trips * size[0] / NAIVE_ROWS, naive.bench_time_s * size[0] / NAIVE_ROWS
    out = {"bench": bench, "protocol": protocol, "array": f"{size[0]}x{size[1]}",
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


def run(which: list[str] | None = None) -> list[dict]:
    records = []
    for name in which or ["2450+81160A+AB64", "2636B+81160A+707B", "B2902A+AB64"]:
        t0 = time.perf_counter()
        if name == "2636B+81160A+707B":
            make, size = MatrixBench, (24, 24)
            fast_ispp, naive_ispp, fast_scan, naive_scan = ispp_fast_matrix, ispp_naive_matrix, scan_fast_matrix, \
                scan_naive_matrix
        else:
            kind = "2450" if name.startswith("2450") else "b2900"
            make, size = (lambda kind=kind: BoardBench(kind)), (64, 64)
            fast_ispp, naive_ispp, fast_scan, naive_scan = ispp_fast_board, ispp_naive_board, scan_fast_board, \
                scan_naive_board
        i_t = targets(*size)
        rec = record(name, "ispp", size, fast_ispp(make(), i_t, FAST_ROWS), naive_ispp(make(), i_t, NAIVE_ROWS))
        records.append(rec)
        rec2 = record(name, "scan", size, fast_scan(make(), FAST_ROWS), naive_scan(make(), NAIVE_ROWS))
        records.append(rec2)
        for r in (rec, rec2):
            print(f"{r['bench']:<20} {r['protocol']:<5} {r['array']:>6}  round trips {r['round_trips']:>8} vs "
                  f"{r['naive_round_trips']:>8} ({r['round_trip_ratio']:>6.1f}x)   bench time {r['bench_time_s']:>9.2f} s"
                  f" vs {r['naive_bench_time_s']:>9.2f} s ({r['bench_time_ratio']:>5.1f}x)"
                  + (f"   converged {r['converged_fraction']:.2f} / {r['naive_converged_fraction']:.2f}"
                     if "converged_fraction" in r else ""), flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s of host time)", flush=True)
    return records


if __name__ == "__main__":
    recs = run(sys.argv[1:] or None)
    if len(sys.argv) == 1:
        print("written", write_results("bench_time", recs))
