"""The simulated wiring: which instrument output reaches which chip line.

A real bench connects instrument outputs to an addresser's inputs (the board's READ and
PULSE inputs, a switch matrix's rows) and the addresser connects those to the chip's
lines. :class:`Wiring` is that picture for the simulated chip: every bit line, source
line and word line of the selected array is connected to one *input* (or grounded),
each input is fed by one instrument *endpoint* (``"smu"``, ``"pulser.1"``, ``"board"``),
and each emulator reports the level its endpoint drives. The physics then follows from
the line voltages through the array's 1T1R model, so emulators never talk to each other
and never know what a memristor is beyond the lines they touch.

Inputs: ``read`` (read bus, sensed per bit line by the board or as a total by the SMU),
``pulse`` (pulse bus), ``gate`` (word-line supply), ``gnd``. Lines nobody connects are
grounded: every route the addressers make drives every line of the selected row
explicitly, so a floating line never decides an outcome.
"""
from __future__ import annotations

import threading
from typing import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..array import SimulatedArray
from ..cell import solve_cell

INPUTS = ("gnd", "read", "pulse", "gate")
#: pulse steps one instrument command may ask of the chip model: beyond it the emulator refuses
#: (a served emulator must not let one message occupy the chip for hours)
MAX_STEPS_PER_COMMAND = 100_000
#: readings one instrument command may ask of the chip model (each solves the read bus)
MAX_READINGS_PER_COMMAND = 10_000
GND, READ, PULSE, GATE = range(4)
INPUT_CODE = {name: code for code, name in enumerate(INPUTS)}


class WiringError(RuntimeError):
    """A wiring the simulated bench cannot represent (unknown input or endpoint)."""


class Wiring:
    """Line connections of a simulated chip and the sources that feed them.

    Parameters
    ----------
    arrays : the chip's arrays by name (the first is selected at start).
    inputs : addresser input -> instrument endpoint, e.g. ``{"read": "smu", "pulse": "pulser.1",
        "gate": "board"}``.
    """

    def __init__(self, arrays: Mapping[str, SimulatedArray], inputs: Mapping[str, str]):
        if not arrays:
            raise WiringError("a simulated chip needs at least one array")
        self.arrays = dict(arrays)
        unknown = set(inputs) - set(INPUTS)
        if unknown:
            raise WiringError(f"unknown addresser inputs {sorted(unknown)}; known: {', '.join(INPUTS[1:])}")
        self.inputs = dict(inputs)
        self._input_of = {endpoint: INPUT_CODE[name] for name, endpoint in self.inputs.items()}
        self._levels: dict[str, Callable[[], float]] = {}
        self._compliance: dict[str, Callable[[], float]] = {}
        self._triggers: dict[str, Callable[[], float | None]] = {}
        # one lock for the whole chip: socket servers run each instrument in its own thread
        self.lock = threading.RLock()
        self.select_array(next(iter(self.arrays)))

    # sources ----------------------------------------------------------------------------
    def attach(self, endpoint: str, level: Callable[[], float],
               compliance: Callable[[], float] | None = None) -> None:
        """Register the function giving the voltage (V) an endpoint drives now (0 when off)."""
        self._levels[endpoint] = level
        if compliance is not None:
            self._compliance[endpoint] = compliance

    def on_trigger(self, endpoint: str, fire: Callable[[], float | None]) -> None:
        """Register what an endpoint does on a trigger from the addresser's TRIG OUT line: ``fire()``
        delivers its armed pulse and returns how long it took (s), or None when it is not armed
        for external triggers."""
        self._triggers[endpoint] = fire

    def trigger(self, input_name: str) -> float | None:
        """One trigger edge to the instrument feeding ``input_name``; the time its pulse took (s),
        None when nothing there answers external triggers."""
        fire = self._triggers.get(self.inputs.get(input_name, ""))
        return fire() if fire is not None else None

    def input_of(self, endpoint: str) -> int | None:
        return self._input_of.get(endpoint)

    def level(self, code: int) -> float:
        """Voltage on an addresser input (V); unfed inputs sit at 0 V."""
        if code == GND:
            return 0.0
        endpoint = self.inputs.get(INPUTS[code])
        getter = self._levels.get(endpoint) if endpoint is not None else None
        return float(getter()) if getter is not None else 0.0

    # routing (set by the addresser emulator) ---------------------------------------------
    @property
    def array(self) -> SimulatedArray:
        return self.arrays[self.array_name]

    def select_array(self, name: str) -> None:
        if name not in self.arrays:
            raise WiringError(f"no array {name!r} on this chip; arrays: {', '.join(self.arrays)}")
        self.array_name = name
        a = self.arrays[name]
        self.bl = np.zeros(a.cols, np.int8)
        self.sl = np.zeros(a.rows, np.int8)
        self.wl = np.zeros(a.rows, np.int8)

    def connect(self, bl: ArrayLike | None = None, sl: ArrayLike | None = None,
                wl: ArrayLike | None = None) -> None:
        """Set the input code of every bit, source and word line (arrays of codes)."""
        for name, new in (("bl", bl), ("sl", sl), ("wl", wl)):
            if new is not None:
                getattr(self, name)[:] = new

    # physics ----------------------------------------------------------------------------
    def _line_voltages(self, override: tuple[int, float] | None = None) -> tuple[NDArray, NDArray, NDArray]:
        levels = np.array([self.level(c) for c in range(len(INPUTS))])
        if override is not None:
            levels[override[0]] = override[1]
        return levels[self.wl], levels[self.bl], levels[self.sl]

    def _single_read_row(self) -> int | None:
        """The row index when exactly one word line is on and every source line is grounded."""
        on = np.flatnonzero(self.wl != GND)
        if on.size == 1 and self.sl[on[0]] == GND and not (self.sl != GND).any():
            return int(on[0])
        return None

    def bl_currents(self, v_read: float | None = None) -> NDArray[np.float64]:
        """Current (A) delivered into the array by every bit line on the READ input, in column order.

        Other bit lines report 0. Reads do not disturb the cells (read voltages sit far
        below the switching threshold of the device models).
        """
        a = self.array
        out = np.zeros(a.cols)
        on_read = np.flatnonzero(self.bl == READ)
        if on_read.size == 0:
            return out
        v = self.level(READ) if v_read is None else v_read
        row = self._single_read_row()
        if row is not None and not (self.bl == PULSE).any():
            out[on_read] = a.read_row(row, on_read, v, self.level(GATE))
            return out
        v_wl, v_bl, v_sl = self._line_voltages((READ, v))
        i = a.cell_currents(v_wl, v_bl, v_sl)
        a.time_s += a.timing.t_read
        a.read_count += 1
        out[on_read] = i.sum(axis=0)[on_read]
        return out

    def sense(self) -> NDArray[np.float64]:
        """Per-bit-line currents on the READ input, with the read source's compliance honoured.

        When the summed current would exceed the source's compliance the source leaves
        voltage regulation: the read bus settles where the total equals the limit.
        """
        endpoint = self.inputs.get("read")
        v = self.level(READ)
        limit_fn = self._compliance.get(endpoint) if endpoint else None
        i = self.bl_currents(v)
        if limit_fn is None or v == 0:
            return i
        limit = abs(float(limit_fn()))
        total = abs(i.sum())
        if total <= limit:
            return i
        lo, hi = 0.0, abs(v)
        for _ in range(30):  # bisection on the bus voltage (to ~1e-9 of it): total current rises with it
            mid = 0.5 * (lo + hi)
            if abs(self._quiet_total(np.sign(v) * mid)) > limit:
                hi = mid
            else:
                lo = mid
        return self.bl_currents(np.sign(v) * lo)

    def _quiet_total(self, v: float) -> float:
        """Noise-free total current into the READ bit lines with the bus at ``v`` (no time charged)."""
        a = self.array
        on_read = self.bl == READ
        row = self._single_read_row()
        if row is not None and not (self.bl == PULSE).any():
            i, _ = solve_cell(a.model, a.cell, a.state[row, on_read], v, 0.0, self.level(GATE))
            return float(i.sum())
        v_wl, v_bl, v_sl = self._line_voltages((READ, v))
        i, _ = solve_cell(a.model, a.cell, a.state, v_bl[None, :], v_sl[:, None], v_wl[:, None])
        return float(i[:, on_read].sum())

    def terminal_current(self, endpoint: str, v: float) -> float:
        """Current (A) an endpoint sources into the chip when it drives ``v`` volts."""
        code = self.input_of(endpoint)
        if code == READ:
            i = self.sense()
            return float(i.sum())
        if code == PULSE and (self.bl == PULSE).any():
            a = self.array
            v_wl, v_bl, v_sl = self._line_voltages((PULSE, v))
            return float(a.cell_currents(v_wl, v_bl, v_sl)[:, self.bl == PULSE].sum())
        return 0.0

    def apply(self, endpoint: str, amplitude: float, width: float, count: int = 1) -> None:
        """``count`` rectangular pulses of ``amplitude`` (V) and ``width`` (s) from an endpoint.

        Every other input stays at its present level; the cells respond through the 1T1R
        model with the present gate voltage.
        """
        code = self.input_of(endpoint)
        if code is None or code == GND:
            return
        if count > MAX_STEPS_PER_COMMAND:
            raise WiringError(f"{count} pulses in one command; the emulator takes at most {MAX_STEPS_PER_COMMAND}")
        v_wl, v_bl, v_sl = self._line_voltages((code, amplitude))
        for _ in range(int(count)):
            self.array.apply_lines(v_wl, v_bl, v_sl, width)

    def hold(self, width: float) -> None:
        """Let ``width`` seconds pass with every input at its present level (a DC source's pulse)."""
        v_wl, v_bl, v_sl = self._line_voltages()
        if np.any(v_bl != 0) or np.any(v_sl != 0):
            a = self.array
            t = a.timing
            # the chip's pulse engine covers its width range; longer holds are applied in pieces
            if width / t.max_pulse_width > MAX_STEPS_PER_COMMAND:
                raise WiringError(f"a {width:g} s hold is beyond what the emulator steps in one command")
            remaining = float(width)
            while remaining >= t.min_pulse_width:
                step = min(remaining, t.max_pulse_width)
                a.apply_lines(v_wl, v_bl, v_sl, step)
                remaining -= step

    def vmm(self, v_in: ArrayLike) -> NDArray[np.float64]:
        """Source lines at ``v_in`` (V), every word line at the gate, bit lines at virtual ground."""
        return self.array.vmm(np.asarray(v_in, float), self.level(GATE))
