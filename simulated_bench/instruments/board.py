"""Emulated RRAM-HIL AB64 addressing board (line protocol over a serial port).

The board routes the bench's READ and PULSE inputs to the chip's lines, drives the word
lines from its own DAC, senses every bit line on its own channel (a transimpedance
amplifier and ADC per bit line, as on seed 003's multi-channel board) and runs
vector-matrix products with a DAC per source line. Its protocol (also documented in
``drivers/addressing_board.py``, the driver that speaks it):

ASCII, LF-terminated, one command per line, exactly one reply line per command:
the value for queries, ``OK`` for settings, ``ERR <code>,<text>`` on failure.

=====================  =========================================================
``*IDN?``              ``RRAM-HIL,AB64,<serial>,<firmware>``
``*RST``               all switches open, lines grounded, WL DAC 0 V, first array
``ARRAYS?``            ``NAME:ROWSxCOLS,...``
``ARR <name>`` / ``?``  select the array routes act on (grounds everything first)
``ROW <i>`` / ``?``    row (word line + source line) the routes act on
``COL <spec>`` / ``?`` selected bit lines: ``ALL``, ``i``, ``i-j`` or a comma list
``WL <V>`` / ``?``     word-line DAC, 0..5 V, on the selected row (every row in VMM)
``ROUTE <r>`` / ``?``  ``OFF`` every line grounded; ``READ`` selected BLs to READ via
                       the sense channels, row SL grounded; ``BL`` selected BLs to
                       PULSE, row SL grounded (SET); ``SL`` row SL driven from PULSE,
                       selected BLs grounded, other BLs to PULSE (inhibit) (RESET);
                       ``VMM`` SLs on their DACs, all WLs on, BLs at virtual ground
``MEAS? [n]``          currents (A) of the selected bit lines in ``COL`` order (READ),
                       each the mean of ``n`` conversions (1..256, default 1)
``SEQ <step>;...``     pulse sequence on the selected row, up to 256 steps: each step
                       ``<route>:<WL V>:<col spec>`` (route ``BL`` or ``SL``; left out,
                       ``<WL V>:<col spec>``, it is the previous step's) sets the
                       columns, word lines and route, then sends one edge on TRIG OUT
                       (wired to the pulser's trigger input) and waits for its pulse;
                       the last step's settings stay. Every step is checked before the
                       first one runs
``VMM? v0,...``        one voltage per row in, every bit line's current out (VMM)
=====================  =========================================================

Error codes: 1 unknown command, 2 missing argument, 3 bad argument, 4 out of range,
5 wrong route for the request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .base import Emulator
from .wiring import GATE, GND, PULSE, READ, Wiring

WL_RANGE = (0.0, 5.0)  # V, word-line DAC
VMM_RANGE = (-3.0, 3.0)  # V, source-line DACs
ROUTES = ("OFF", "READ", "BL", "SL", "VMM")
MAX_LINE = 4096  # characters; longer lines are refused
MAX_AVERAGE = 256  # conversions one MEAS? may average
MAX_SEQ_STEPS = 256  # steps one SEQ may hold
SEQ_ROUTES = ("BL", "SL")


@dataclass(frozen=True)
class BoardTiming:
    """Execution times of the AB64 (its firmware's figures; configurable per bench)."""

    command_s: float = 20e-6  # parse and act on one line
    switch_settle_s: float = 10e-6  # analog switches and the WL DAC after a route, row, column or level change
    sense_s: float = 200e-6  # one MEAS? / VMM?: every sense channel integrates and converts in parallel
    trigger_s: float = 1e-6  # TRIG OUT edge to the pulser, and its end-of-pulse strobe back


class BoardError(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(code, text)
        self.reply = f"ERR {code},{text}"


def parse_columns(spec: str, n_cols: int) -> np.ndarray:
    """Column spec (``ALL``, ``5``, ``2-9``, ``0,3,7-9``) to sorted unique indices.

    Raises :class:`BoardError` 3 for malformed specs and 4 for indices outside 0..n_cols-1.
    """
    text = spec.strip().upper()
    if text == "ALL":
        return np.arange(n_cols)
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise BoardError(3, f"bad column spec {spec!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise BoardError(3, f"descending range {part.strip()!r}")
        if hi >= n_cols:
            raise BoardError(4, f"column {hi} outside 0..{n_cols - 1}")
        out.extend(range(lo, hi + 1))
    return np.unique(np.array(out, dtype=int))


def format_columns(cols: np.ndarray, n_cols: int) -> str:
    """Compact spec for sorted unique indices (inverse of :func:`parse_columns`)."""
    cols = np.asarray(cols, dtype=int)
    if cols.size == n_cols and n_cols > 0 and cols[0] == 0 and cols[-1] == n_cols - 1:
        return "ALL"
    parts, start = [], None
    for k, c in enumerate(cols):
        if start is None:
            start = c
        if k + 1 == cols.size or cols[k + 1] != c + 1:
            parts.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ",".join(parts)


class AddressingBoardEmulator(Emulator):
    idn = "RRAM-HIL,AB64,SIM00001,1.2.0"
    model = "rram-hil-ab64"

    default_transport = "serial"

    def __init__(self, wiring: Wiring, name: str, lock=None, timing: BoardTiming | None = None):
        super().__init__(lock if lock is not None else wiring.lock)
        self.timing = timing or BoardTiming()
        self.wiring, self.name = wiring, name
        wiring.attach(name, lambda: self.wl)
        self.reset()
        self._handlers = {
            "*IDN?": lambda arg: self.idn,
            "*RST": lambda arg: self.reset(),
            "ARRAYS?": lambda arg: ",".join(f"{n}:{a.rows}x{a.cols}" for n, a in self.wiring.arrays.items()),
            "ARR": self._arr, "ARR?": lambda arg: self.wiring.array_name,
            "ROW": self._set_row, "ROW?": lambda arg: str(self.row),
            "COL": self._set_cols, "COL?": lambda arg: format_columns(self.cols, self.wiring.array.cols),
            "WL": self._set_wl, "WL?": lambda arg: f"{self.wl:.4f}",
            "ROUTE": self._set_route, "ROUTE?": lambda arg: self.route,
            "MEAS?": self._measure,
            "SEQ": self._sequence,
            "VMM?": self._vmm,
        }

    def reset(self) -> None:
        self.wiring.select_array(next(iter(self.wiring.arrays)))
        self.row = 0
        self.cols = np.arange(self.wiring.array.cols)
        self.wl = 0.0
        self.route = "OFF"
        self._apply_route()

    def outputs_off(self) -> None:
        self.wl = 0.0
        self.route = "OFF"
        self._apply_route()

    def input_error(self, code: int, text: str) -> str:
        """Malformed input (over-long line, non-ASCII byte) is a bad argument: one ``ERR 3`` reply."""
        return BoardError(3, text).reply

    def handle_line(self, line: str) -> str | None:
        text = line.strip()
        if not text:
            return None
        head, _, arg = text.partition(" ")
        handler = self._handlers.get(head.upper())
        self.busy(self.timing.command_s)
        try:
            if len(text) > MAX_LINE:
                raise BoardError(3, "line too long")
            if handler is None:
                raise BoardError(1, f"unknown command {head!r}")
            reply = handler(arg.strip())
        except BoardError as err:
            return err.reply
        return "OK" if reply is None else reply

    # helpers -------------------------------------------------------------------------
    @staticmethod
    def _need(arg: str) -> str:
        if not arg:
            raise BoardError(2, "missing argument")
        return arg

    @staticmethod
    def _number(arg: str, lo: float, hi: float) -> float:
        try:
            value = float(arg)
        except ValueError:
            raise BoardError(3, f"expected a number, got {arg!r}") from None
        if not (lo <= value <= hi):
            raise BoardError(4, f"{value:g} outside {lo:g}..{hi:g}")
        return value

    def _apply_route(self) -> None:
        self.busy(self.timing.switch_settle_s)
        w, a = self.wiring, self.wiring.array
        bl = np.full(a.cols, GND, np.int8)
        sl = np.full(a.rows, GND, np.int8)
        wl = np.full(a.rows, GND, np.int8)
        if self.route == "READ":
            bl[self.cols] = READ
            wl[self.row] = GATE
        elif self.route == "BL":
            bl[self.cols] = PULSE
            wl[self.row] = GATE
        elif self.route == "SL":
            bl[:] = PULSE
            bl[self.cols] = GND
            sl[self.row] = PULSE
            wl[self.row] = GATE
        elif self.route == "VMM":
            wl[:] = GATE
        w.connect(bl, sl, wl)

    # commands --------------------------------------------------------------------------
    def _arr(self, arg):
        name = self._need(arg)
        if name not in self.wiring.arrays:
            raise BoardError(4, f"no array {name!r}; arrays: {','.join(self.wiring.arrays)}")
        self.wiring.select_array(name)
        self.row = 0
        self.cols = np.arange(self.wiring.array.cols)
        self.route = "OFF"
        self._apply_route()

    def _set_row(self, arg):
        row = self._number(self._need(arg), 0, self.wiring.array.rows - 1)
        if row != int(row):
            raise BoardError(3, f"row must be a whole number, got {arg!r}")
        self.row = int(row)
        self._apply_route()

    def _set_cols(self, arg):
        self.cols = parse_columns(self._need(arg), self.wiring.array.cols)
        self._apply_route()

    def _set_wl(self, arg):
        self.wl = self._number(self._need(arg), *WL_RANGE)

    def _set_route(self, arg):
        route = self._need(arg).upper()
        if route not in ROUTES:
            raise BoardError(3, f"route must be one of {'/'.join(ROUTES)}, got {arg!r}")
        self.route = route
        self._apply_route()

    def _measure(self, arg):
        n = 1
        if arg:
            n = self._number(arg, 1, MAX_AVERAGE)
            if n != int(n):
                raise BoardError(3, f"conversions must be a whole number, got {arg!r}")
            n = int(n)
        if self.route != "READ":
            raise BoardError(5, f"MEAS? needs ROUTE READ, route is {self.route}")
        self.busy(n * self.timing.sense_s)
        i = np.mean([self.wiring.sense()[self.cols] for _ in range(n)], axis=0)
        return ",".join(f"{x:.6e}" for x in i)

    def _sequence(self, arg):
        steps = []
        route = None
        for part in self._need(arg).split(";"):
            fields = part.split(":")
            if len(fields) == 3:
                route = fields.pop(0).strip().upper()
                if route not in SEQ_ROUTES:
                    raise BoardError(3, f"a SEQ step routes BL or SL, got {route!r}")
            elif len(fields) != 2 or route is None:
                raise BoardError(3, f"a SEQ step is <route>:<WL V>:<columns> (the route may be left out after the "
                                    f"first step), got {part.strip()!r}")
            steps.append((route, self._number(self._need(fields[0].strip()), *WL_RANGE),
                          parse_columns(self._need(fields[1]), self.wiring.array.cols)))
            if len(steps) > MAX_SEQ_STEPS:
                raise BoardError(4, f"a SEQ holds at most {MAX_SEQ_STEPS} steps")
        for k, (route, wl, cols) in enumerate(steps):
            self.cols, self.wl, self.route = cols, wl, route
            self._apply_route()
            took = self.wiring.trigger("pulse")
            if took is None:
                raise BoardError(5, f"step {k}: no pulse came back from the PULSE input (arm it for external "
                                    f"triggers)")
            self.busy(self.timing.trigger_s + took)

    def _vmm(self, arg):
        if self.route != "VMM":
            raise BoardError(5, f"VMM? needs ROUTE VMM, route is {self.route}")
        parts = [p for p in self._need(arg).split(",")]
        rows = self.wiring.array.rows
        if len(parts) != rows:
            raise BoardError(3, f"VMM? needs {rows} voltages, got {len(parts)}")
        v = np.array([self._number(p.strip(), *VMM_RANGE) for p in parts])
        self.busy(self.timing.sense_s)
        return ",".join(f"{x:.6e}" for x in self.wiring.vmm(v))
