"""A simulated 1T1R crossbar: rows x cols cells with variation, noise and stuck devices.

Orientation (DESIGN.md): row i = word line WL_i (gates) and source line SL_i (inputs),
column j = bit line BL_j (outputs). Cell (i, j) sits between BL_j and SL_i with its
gate on WL_i. Every operation is expressed as line voltages, exactly what instruments
and the addressing board impose; the convenience methods (read a row, pulse cells,
vector-matrix multiply) build those line voltages and work on whole rows or the
whole array per call.

The ground truth (states, fault codes) is public on this object for tests and
benchmarks; protocols only reach the chip through bench roles and never see it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .aging import AgingClock, AgingParams, ChipAging, FaultEvent
from .cell import CellParams, solve_cell
from .crossbar import CrossbarSolver, WireParams
from .devices.base import DeviceModel, FloatArray, state_bounds
from .devices.cute_multilevel import CuTeMultilevelModel
from .devices.stanford import StanfordGapModel
from .faults import STUCK_OFF, STUCK_ON, validate_codes
from .pulse import PulseEngine
from .transistor import NmosParams, sized_for

DEVICE_MODELS = {"stanford_gap": StanfordGapModel, "cute_multilevel": CuTeMultilevelModel}


def make_model(name: str) -> DeviceModel:
    """Device model by name (``stanford_gap`` or ``cute_multilevel``) with published defaults."""
    try:
        return DEVICE_MODELS[name]()
    except KeyError:
        raise ValueError(f"unknown device model {name!r}; choose one of {', '.join(DEVICE_MODELS)}") from None


def default_cell(model: DeviceModel, v_gate: float = 3.0) -> CellParams:
    """Default MOD cell for a model.

    The seed-004 device gets seed 004's own design (W/L = 65, about 120 ohm at 3 V);
    other models get a transistor with 10 % of their LRS resistance at ``v_gate``
    (seed 004's sizing rule).
    """
    if isinstance(model, CuTeMultilevelModel):
        return CellParams()
    r_lrs = 1.0 / float(model.conductance(model.state_on))
    return CellParams(nmos=sized_for(r_lrs, v_gate, 0.1, NmosParams()))


@dataclass(frozen=True)
class VariationParams:
    """Device-to-device and cycle-to-cycle variation.

    d2d: each cell gets a log-normal switching-rate factor and its own state bounds
    (its own LRS/HRS), drawn once. c2c: each pulse on each cell gets a log-normal
    factor on its effective duration (stochastic ion hopping). Read noise follows the
    device model's conductance-dependent relative sigma times ``read_noise_scale``.
    """

    d2d_rate_sigma: float = 0.3
    d2d_bound_sigma: float = 0.01  # fraction of the state range
    c2c_rate_sigma: float = 0.15
    read_noise_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("d2d_rate_sigma", "d2d_bound_sigma", "c2c_rate_sigma", "read_noise_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


NO_VARIATION = VariationParams(0.0, 0.0, 0.0, 0.0)
#: crossbar solvers (one factorisation each) kept per distinct gate-voltage set
_SOLVER_CACHE = 8


@dataclass(frozen=True)
class ChipTiming:
    """Simulated time charged per operation, seconds, and the pulse-width range the chip accepts."""

    t_read: float = 1e-6  # one read of a row (all selected columns in parallel)
    min_pulse_width: float = 1e-10
    max_pulse_width: float = 1e-2


class SimulatedArray(AgingClock):
    """One rows x cols 1T1R array of a simulated chip.

    Parameters
    ----------
    rows, cols : array size.
    model : device model instance or name (default: Stanford gap model).
    cell : 1T1R cell design (default: MOD, transistor sized to 10 % of R_LRS at 3 V).
    variation : variation parameters (default: :class:`VariationParams`).
    fault_codes : (rows, cols) codes 0 working / 1 stuck-OFF / 2 stuck-ON, or None.
    seed : int or Generator; everything random about the chip derives from it.
    initial_state : "off", "on" or an array of states.
    wires : segment resistances of the lines (:class:`WireParams`); None (default) means
        ideal wires. When set, reads, line currents and VMM solve the whole crossbar
        with its IR drop (``simulated_bench.crossbar``); pulses still see ideal lines.
    aging : :class:`~simulated_bench.aging.AgingParams` (new stuck devices, drift, read
        disturb), or None (default) for a chip that does not age.
    """

    def __init__(self, rows: int, cols: int, model: DeviceModel | str | None = None,
                 cell: CellParams | None = None, variation: VariationParams | None = None,
                 fault_codes: ArrayLike | None = None, seed: int | np.random.Generator | None = 0,
                 initial_state: str | ArrayLike = "off", timing: ChipTiming | None = None,
                 wires: WireParams | None = None, aging: AgingParams | None = None):
        for name, n in (("rows", rows), ("cols", cols)):
            if not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"{name} must be a positive integer, got {n!r}")
        self.rows, self.cols = int(rows), int(cols)
        self.model = make_model(model) if isinstance(model, str) else (model or StanfordGapModel())
        self.cell = cell or default_cell(self.model)
        self.variation = variation or VariationParams()
        self.timing = timing or ChipTiming()
        self.wires = wires
        self._solvers: dict[bytes, CrossbarSolver] = {}
        self.rng = np.random.default_rng(seed)
        self.engine = PulseEngine(self.model, self.cell)
        shape = (self.rows, self.cols)
        v = self.variation
        lo, hi = state_bounds(self.model)
        span = hi - lo
        self.rate_factor = np.exp(v.d2d_rate_sigma * self.rng.standard_normal(shape))
        # per-cell bounds shrink the window inward only, so a cell never exceeds the model's range
        self.state_lo = lo + span * np.abs(v.d2d_bound_sigma * self.rng.standard_normal(shape))
        self.state_hi = hi - span * np.abs(v.d2d_bound_sigma * self.rng.standard_normal(shape))
        self.fault_codes = (np.zeros(shape, np.int8) if fault_codes is None
                            else validate_codes(fault_codes, shape))
        if isinstance(initial_state, str):
            if initial_state not in ("off", "on"):
                raise ValueError(f"initial_state must be 'off', 'on' or an array, got {initial_state!r}")
            s0 = self.model.state_off if initial_state == "off" else self.model.state_on
            self.state = np.full(shape, s0, dtype=float)
        else:
            self.state = np.array(np.broadcast_to(np.asarray(initial_state, float), shape))
        self.state = np.clip(self.state, self.state_lo, self.state_hi)
        self._pin_stuck()
        self.time_s = 0.0
        self.pulse_count = 0
        self.read_count = 0
        # aging draws from its own stream, so it does not shift the chip's other draws
        self.aging = None if aging is None else ChipAging(aging, shape, self.rng.bit_generator.seed_seq.spawn(1)[0])

    # time and aging ------------------------------------------------------------------------
    def _age(self) -> list[FaultEvent]:
        """Bring the cells up to the present time: new stuck devices, then drift of the written cells."""
        if self.aging is None:
            return []
        events = self.aging.new_faults(self.fault_codes, self.time_s)
        if events:
            self._pin_stuck()
        written, g = self.aging.drifted_conductance(self.time_s)
        live = written & (self.fault_codes == 0)
        if live.any():
            s = self.model.state_for_conductance(np.maximum(g[live], 1e-12))
            self.state[live] = np.clip(s, self.state_lo[live], self.state_hi[live])
        return events

    # ground truth ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def true_fault_codes(self) -> NDArray[np.int8]:
        """The chip's real fault map (tests and benchmarks only)."""
        return self.fault_codes.copy()

    def true_conductance(self) -> FloatArray:
        """Small-signal conductance of every memristor (S), without transistor or noise."""
        return self.model.conductance(self.state)

    def vmm_conductance(self, v_in: float, v_gate: float) -> FloatArray:
        """What each cell contributes to a VMM, noise-free: |I| / v_in with ``v_in`` on its source line, the
        bit line at ground, ``v_gate`` on its word line (S, transistor included; ideal wires). Ground
        truth for figures: no time passes, nothing is read or disturbed."""
        i, _ = solve_cell(self.model, self.cell, self.state, 0.0, v_in, v_gate)
        return np.abs(i) / abs(v_in)

    def set_fault_codes(self, codes: ArrayLike) -> None:
        """Replace the fault map (e.g. a device that failed during a run)."""
        self.fault_codes = validate_codes(codes, self.shape)
        self._pin_stuck()

    def _pin_stuck(self) -> None:
        """Stuck-OFF cells sit at the model's HRS bound, stuck-ON at its LRS bound (seed 000 II.B: gap 0.2 nm,
        ~1.8 mS). Every read and VMM sees a stuck-ON cell through its access transistor in series (the default
        cell: ~1.64 mS at V_G = 3 V, V_read = 50 mV); a fully-on gate cannot cap it near the mapping's window
        without eating that window. Seed 003's G_max = 150 uS for stuck-ON is its chip's SET-compliance
        ceiling, a SET gate near 1.3 V on this chip, whose ISPP climbs to 2.6 V (tests/test_cell.py)."""
        self.state[self.fault_codes == STUCK_OFF] = self.model.state_off
        self.state[self.fault_codes == STUCK_ON] = self.model.state_on

    # line-level physics ----------------------------------------------------------------
    def _line_arrays(self, v_wl: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        v_wl = np.broadcast_to(np.asarray(v_wl, float), (self.rows,))
        v_bl = np.broadcast_to(np.asarray(v_bl, float), (self.cols,))
        v_sl = np.broadcast_to(np.asarray(v_sl, float), (self.rows,))
        return v_wl, v_bl, v_sl

    def _wired(self) -> bool:
        return self.wires is not None and not self.wires.ideal

    def _crossbar_solver(self, v_wl: FloatArray) -> CrossbarSolver:
        """Solver for the present states at these gate voltages (its factorisation is reused)."""
        key = np.asarray(v_wl, float).tobytes()
        solver = self._solvers.get(key)
        if solver is None or not np.array_equal(solver.state, self.state):
            if solver is None and len(self._solvers) >= _SOLVER_CACHE:
                self._solvers.pop(next(iter(self._solvers)))
            solver = CrossbarSolver(self.model, self.cell, self.state, self.wires, v_wl)
            self._solvers[key] = solver
        return solver

    def cell_currents(self, v_wl: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike, noisy: bool = True) -> FloatArray:
        """Current of every cell from its BL to its SL (A), shape (rows, cols)."""
        v_wl, v_bl, v_sl = self._line_arrays(v_wl, v_bl, v_sl)
        self._age()
        if self.aging is not None:
            self.aging.on_read(None)
        if self._wired():
            i = self._crossbar_solver(v_wl).solve(v_bl, v_sl).cell_current
        else:
            i, _ = solve_cell(self.model, self.cell, self.state, v_bl[None, :], v_sl[:, None], v_wl[:, None])
        if noisy:
            i = i * self._noise_factor(self.state)
        return i

    def line_currents(self, v_wl: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike,
                      noisy: bool = True) -> tuple[FloatArray, FloatArray]:
        """Currents (A) delivered by each bit-line driver into the array and drawn by each source line."""
        i = self.cell_currents(v_wl, v_bl, v_sl, noisy)
        self.time_s += self.timing.t_read
        self.read_count += 1
        return i.sum(axis=0), i.sum(axis=1)

    def _noise_factor(self, state: FloatArray) -> FloatArray:
        scale = self.variation.read_noise_scale
        if scale == 0:
            return np.ones_like(state)
        sigma = scale * self.model.read_noise_rel(self.model.conductance(state))
        return 1.0 + sigma * self.rng.standard_normal(np.shape(state))

    def check_pulse_width(self, width: float) -> None:
        t = self.timing
        if not (np.isfinite(width) and t.min_pulse_width <= width <= t.max_pulse_width):
            raise ValueError(f"pulse width {width!r} s outside the chip's range "
                             f"[{t.min_pulse_width:g}, {t.max_pulse_width:g}] s")

    def apply_lines(self, v_wl: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike, width: float) -> None:
        """Hold the given line voltages (V) for ``width`` seconds and let every cell respond."""
        self.check_pulse_width(width)
        v_wl, v_bl, v_sl = self._line_arrays(v_wl, v_bl, v_sl)
        vbl = np.broadcast_to(v_bl[None, :], self.shape)
        vsl = np.broadcast_to(v_sl[:, None], self.shape)
        vwl = np.broadcast_to(v_wl[:, None], self.shape)
        # a cell whose gate cannot exceed the lower line by V_th carries no current
        live = (vbl != vsl) & (vwl - np.minimum(vbl, vsl) > self.cell.nmos.v_th) & (self.fault_codes == 0)
        self.time_s += width
        self.pulse_count += 1
        if live.any():
            idx = np.nonzero(live)
            self._advance(idx, vbl[idx], vsl[idx], vwl[idx], width)

    def _advance(self, idx: tuple[NDArray, NDArray], v_bl: ArrayLike, v_sl: ArrayLike, v_wl: ArrayLike,
                 width: float) -> None:
        if self.aging is not None:
            self._age()  # the pulse acts on the drifted state, and not on a cell that just stuck
            keep = self.fault_codes[idx] == 0
            if not keep.all():
                idx = (idx[0][keep], idx[1][keep])
                v_bl, v_sl, v_wl = (np.broadcast_to(np.asarray(v, float), keep.shape)[keep] for v in (v_bl, v_sl, v_wl))
        n = len(idx[0])
        sigma = self.variation.c2c_rate_sigma
        eff = width * self.rate_factor[idx]
        if sigma > 0:
            eff = eff * np.exp(sigma * self.rng.standard_normal(n))
        new = self.engine.apply(self.state[idx], v_bl, v_sl, v_wl, eff)
        self.state[idx] = np.clip(new, self.state_lo[idx], self.state_hi[idx])
        if self.aging is not None:
            self.aging.on_write(idx, self.model.conductance(self.state[idx]), self.time_s)

    # row-level operations ----------------------------------------------------------------
    def _cols(self, cols: int | Sequence[int] | slice | None) -> NDArray[np.intp]:
        all_cols = np.arange(self.cols)
        sel = all_cols if cols is None else np.atleast_1d(all_cols[cols])
        return sel

    def _row(self, row: int) -> int:
        if not 0 <= int(row) < self.rows:
            raise IndexError(f"row {row} outside 0..{self.rows - 1}")
        return int(row)

    def read_row(self, row: int, cols: int | Sequence[int] | slice | None, v_read: float,
                 v_gate: float, noisy: bool = True) -> FloatArray:
        """Currents (A) of the selected cells of one row, read in parallel at ``v_read`` on their BLs."""
        row = self._row(row)
        cols = self._cols(cols)
        self._age()
        if self.aging is not None:
            self.aging.on_read((np.full(cols.size, row), cols))
        i = self._row_currents(row, cols, v_read, v_gate)
        if noisy:
            i = i * self._noise_factor(self.state[row, cols])
        self.time_s += self.timing.t_read
        self.read_count += 1
        return i

    def read_all(self, v_read: float, v_gate: float, noisy: bool = True) -> FloatArray:
        """Current map (A) of the whole array, one row after another (charged as rows reads)."""
        self._age()
        if self.aging is not None:
            self.aging.on_read(None)
        if self._wired():
            i = np.stack([self._wired_row_read(r, np.arange(self.cols), v_read, v_gate) for r in range(self.rows)])
        else:
            i, _ = solve_cell(self.model, self.cell, self.state, v_read, 0.0, v_gate)
        if noisy:
            i = i * self._noise_factor(self.state)
        self.time_s += self.rows * self.timing.t_read
        self.read_count += self.rows
        return i

    def row_read_lines(self, row: int, cols: NDArray[np.intp], v_read: float,
                       v_gate: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Line voltages (WL, BL, SL) of a row read: only this word line on, selected bit lines at v_read."""
        v_wl = np.zeros(self.rows)
        v_wl[row] = v_gate
        v_bl = np.zeros(self.cols)
        v_bl[cols] = v_read
        return v_wl, v_bl, np.zeros(self.rows)

    def _row_currents(self, row: int, cols: NDArray[np.intp], v_read: float, v_gate: float) -> FloatArray:
        """Noise-free currents (A) of a row read; engines other than numpy override this one method."""
        if self._wired():
            return self._wired_row_read(row, cols, v_read, v_gate)
        i, _ = solve_cell(self.model, self.cell, self.state[row, cols], v_read, 0.0, v_gate)
        return i

    def _wired_row_read(self, row: int, cols: NDArray[np.intp], v_read: float, v_gate: float) -> FloatArray:
        """Row read through resistive lines."""
        v_wl, v_bl, v_sl = self.row_read_lines(row, cols, v_read, v_gate)
        return self._crossbar_solver(v_wl).solve(v_bl, v_sl).cell_current[row, cols]

    def pulse_row(self, row: int, cols: int | Sequence[int] | slice | None, amplitude: float,
                  width: float, v_gate: float) -> None:
        """One pulse on the selected cells of a row.

        ``amplitude`` > 0 drives the selected bit lines (SET); < 0 drives the row's source
        line at |amplitude| with the selected bit lines grounded and the others held at
        |amplitude| (inhibit), which RESETs only the selected cells.
        """
        self.check_pulse_width(width)
        row = self._row(row)
        cols = self._cols(cols)
        self.time_s += width
        self.pulse_count += 1
        working = self.fault_codes[row, cols] == 0
        cols = cols[working]
        if cols.size == 0 or amplitude == 0:
            return
        v_bl, v_sl = (amplitude, 0.0) if amplitude > 0 else (0.0, -amplitude)
        if v_gate - min(v_bl, v_sl) <= self.cell.nmos.v_th:
            return
        rows_idx = np.full(cols.size, row)
        self._advance((rows_idx, cols), v_bl, v_sl, v_gate, width)

    def vmm(self, v_in: ArrayLike, v_gate: float, noisy: bool = True) -> FloatArray:
        """Vector-matrix multiply: ``v_in`` (V) on the source lines, bit lines at virtual ground.

        Returns the current (A) each column's virtual ground sinks, about sum_i G_ij v_in_i.
        """
        v_in = np.asarray(v_in, float)
        if v_in.shape != (self.rows,):
            raise ValueError(f"v_in must have shape ({self.rows},), got {v_in.shape}")
        i_bl, _ = self.line_currents(v_gate, 0.0, v_in, noisy)
        return -i_bl
