"""A simulated array whose physics runs in SPICE: the bench's slow engine for small arrays.

:class:`SpiceArray` keeps everything of :class:`SimulatedArray` that is bookkeeping
(states, variation draws, fault codes, read noise, simulated time and counters) and
hands the electrical work to the simulator: every read and line-current measurement is
a DC operating point of the whole crossbar netlist (frozen gaps, cell currents from
sense sources), every pulse a transient of the whole crossbar with a gap state node per
cell. Wire resistance, when set, is in both (the numpy engine ignores it for pulses).
Only the Stanford gap model has a SPICE netlist.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..array import SimulatedArray
from ..devices.base import FloatArray
from ..devices.stanford import NM, StanfordGapModel
from ..faults import WORKING
from .netlist import (EDGE_FRACTION, accuracy_options, cell_current_traces, crossbar_netlist, gap_traces,
                      transient_cards)
from .runner import SpiceRunner


class SpiceArray(SimulatedArray):
    """:class:`SimulatedArray` with reads, line currents, VMM and pulses simulated by SPICE.

    Takes the arguments of :class:`SimulatedArray` plus ``simulator`` ("ngspice" or
    "ltspice") and an optional ``runner``. Meant for arrays of a few dozen cells: each
    call is one simulator run (a full-array read is one run per row).
    """

    def __init__(self, rows: int, cols: int, *args: object, simulator: str = "ngspice",
                 runner: SpiceRunner | None = None, **kwargs: object):
        super().__init__(rows, cols, *args, **kwargs)
        if not isinstance(self.model, StanfordGapModel):
            raise ValueError(f"the SPICE engine has a netlist for the Stanford gap model only, not {self.model.name!r}")
        self.runner = runner or SpiceRunner(simulator)

    def close(self) -> None:
        """Remove the runner's work files."""
        self.runner.close()

    # electrical runs ------------------------------------------------------------------------
    def _op_cell_currents(self, v_wl: FloatArray, v_bl: FloatArray, v_sl: FloatArray) -> FloatArray:
        traces = cell_current_traces(self.rows, self.cols)
        net = crossbar_netlist(self.model.p, self.cell, self.state, v_wl, v_bl, v_sl, self.wires,
                               analysis=f"{accuracy_options()}\n.op", sense=True, save=traces,
                               title="SpiceArray read")
        out = self.runner.run(net, traces, name="read")
        return np.array([out[t][-1] for t in traces]).reshape(self.shape)

    def _transient(self, v_wl: FloatArray, v_bl: FloatArray, v_sl: FloatArray, width: float,
                   movable: NDArray[np.bool_]) -> None:
        """Hold the line voltages for ``width`` s; only ``movable`` cells may change state."""
        factor = np.zeros(self.shape)
        n = int(movable.sum())
        if n == 0:
            return
        eff = self.rate_factor[movable]
        sigma = self.variation.c2c_rate_sigma
        if sigma > 0:
            eff = eff * np.exp(sigma * self.rng.standard_normal(n))
        factor[movable] = eff
        edge = width * EDGE_FRACTION
        traces = gap_traces(self.rows, self.cols)
        net = crossbar_netlist(self.model.p, self.cell, self.state, v_wl, v_bl, v_sl, self.wires,
                               analysis=transient_cards(width, edge), dynamic=True, pulse=(width, edge),
                               rate_factor=factor, save=traces, title="SpiceArray pulse")
        out = self.runner.run(net, traces, name="pulse")
        new = np.array([out[t][-1] for t in traces]).reshape(self.shape) * NM
        self.state[movable] = np.clip(new[movable], self.state_lo[movable], self.state_hi[movable])

    # SimulatedArray interface ----------------------------------------------------------------
    def cell_currents(self, v_wl: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike, noisy: bool = True) -> FloatArray:
        """Current of every cell from its BL to its SL (A), shape (rows, cols), from a SPICE operating point."""
        v_wl, v_bl, v_sl = self._line_arrays(v_wl, v_bl, v_sl)
        i = self._op_cell_currents(v_wl, v_bl, v_sl)
        if noisy:
            i = i * self._noise_factor(self.state)
        return i

    def _row_currents(self, row: int, cols: NDArray[np.intp], v_read: float, v_gate: float) -> FloatArray:
        return self._op_cell_currents(*self.row_read_lines(row, cols, v_read, v_gate))[row, cols]

    def read_all(self, v_read: float, v_gate: float, noisy: bool = True) -> FloatArray:
        """Current map (A) of the whole array, one row after another (one SPICE run per row)."""
        all_cols = np.arange(self.cols)
        i = np.stack([self._row_currents(r, all_cols, v_read, v_gate) for r in range(self.rows)])
        if noisy:
            i = i * self._noise_factor(self.state)
        self.time_s += self.rows * self.timing.t_read
        self.read_count += self.rows
        return i

    def apply_lines(self, v_wl: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike, width: float) -> None:
        """Hold the line voltages (V) for ``width`` seconds: a transient of the whole crossbar."""
        self.check_pulse_width(width)
        v_wl, v_bl, v_sl = self._line_arrays(v_wl, v_bl, v_sl)
        self.time_s += width
        self.pulse_count += 1
        self._transient(v_wl, v_bl, v_sl, width, self.fault_codes == WORKING)

    def pulse_row(self, row: int, cols: int | Sequence[int] | slice | None, amplitude: float,
                  width: float, v_gate: float) -> None:
        """One SET (amplitude > 0, bit lines driven) or RESET (< 0, source line driven, inhibit) pulse."""
        self.check_pulse_width(width)
        row = self._row(row)
        cols = self._cols(cols)
        self.time_s += width
        self.pulse_count += 1
        cols = cols[self.fault_codes[row, cols] == WORKING]
        if cols.size == 0 or amplitude == 0:
            return
        v_wl = np.zeros(self.rows)
        v_wl[row] = v_gate
        v_sl = np.zeros(self.rows)
        if amplitude > 0:
            v_bl = np.zeros(self.cols)
            v_bl[cols] = amplitude
        else:
            v_sl[row] = -amplitude
            v_bl = np.full(self.cols, -amplitude)  # unselected bit lines inhibit
            v_bl[cols] = 0.0
        movable = np.zeros(self.shape, bool)
        movable[row, cols] = True
        self._transient(v_wl, v_bl, v_sl, width, movable)
