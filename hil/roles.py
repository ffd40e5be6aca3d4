"""Bench roles: the parts a :class:`~hil.bench.Bench` is composed of, and its hard limits.

A bench is built from four role objects (selection, gate supply, reader, pulser, and
optionally a vector multiplier) that the instrument plug-ins (``hil/instruments/``) make
from drivers. The bench enforces :class:`Limits` *before* any role is asked to act.

Conventions: SI units; ``row`` is a word line / source line index, ``cols`` bit line
indices; a positive pulse amplitude drives the selected bit lines (SET), a negative
one drives the row's source line (RESET) with the selected bit lines grounded.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

Route = Literal["read", "bl", "sl", "vmm"]


class RoleNotServed(TypeError):
    """A bench asked a model for a role, or a role for a capability, it does not serve (the bench-file
    schema refuses such wiring on load, from each plug-in's ``roles``; this guards code that builds roles
    directly)."""


class LimitError(ValueError):
    """A request beyond the bench file's hard limits; raised before anything is sent."""


@dataclass(frozen=True)
class Limits:
    """Hard limits from the bench file (absolute values, SI units)."""

    v_line_max: float = 3.0  # V, largest |V| on any bit or source line
    v_gate_max: float = 5.0  # V, largest word-line (gate) voltage
    i_compliance: float = 10e-3  # A, SMU current compliance
    pulse_width_max: float = 1e-3  # s, longest pulse
    pulse_width_min: float = 1e-9  # s, shortest pulse the pulser can make

    def __post_init__(self) -> None:
        for name in ("v_line_max", "v_gate_max", "i_compliance", "pulse_width_max", "pulse_width_min"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"limit {name} must be a positive number, got {value!r}")
        if self.pulse_width_min > self.pulse_width_max:
            raise ValueError("limit pulse_width_min exceeds pulse_width_max")

    def check_line(self, v: float | ArrayLike, what: str = "line voltage") -> None:
        v_abs = float(np.max(np.abs(v))) if np.size(v) else 0.0
        if not np.isfinite(v_abs) or v_abs > self.v_line_max:
            raise LimitError(f"{what} {v_abs:g} V exceeds the bench limit v_line_max = {self.v_line_max:g} V")

    def check_gate(self, v_gate: float) -> None:
        if not np.isfinite(v_gate) or abs(v_gate) > self.v_gate_max:
            raise LimitError(f"gate voltage {v_gate:g} V exceeds the bench limit v_gate_max = {self.v_gate_max:g} V")

    def check_width(self, width: float) -> None:
        if not np.isfinite(width) or width > self.pulse_width_max:
            raise LimitError(f"pulse width {width:g} s exceeds the bench limit pulse_width_max = {self.pulse_width_max:g} s")
        if width < self.pulse_width_min:
            raise LimitError(f"pulse width {width:g} s is below pulse_width_min = {self.pulse_width_min:g} s")


class Selector(abc.ABC):
    """Routes instruments to chip lines (an addressing board or a switch matrix)."""

    @abc.abstractmethod
    def select(self, row: int, cols: Sequence[int], route: Route) -> None:
        """Connect word line ``row`` and bit lines ``cols`` for a read or a BL/SL pulse.

        ``route="vmm"`` turns every word line on and connects all source lines to the
        vector source and all bit lines to the current sense (row and cols ignored).
        """

    @abc.abstractmethod
    def deselect(self) -> None:
        """Open every switch and ground every line."""

    def use_array(self, name: str) -> None:
        """Route to array ``name`` of a multi-array chip; a single-array selector has nothing to do."""

    #: TSP-Link node number an on-instrument script reaches this selector by (None: it cannot)
    link_node: int | None = None

    def cell_routes(self, row: int, cols: Sequence[int]) -> list[str]:
        """The read route of each cell alone, in the selector's own command language, for a script
        that runs on another instrument (:attr:`link_node`)."""
        raise RoleNotServed(f"{type(self).__name__} cannot be driven by another instrument's script (no link_node)")

    def forget(self) -> None:
        """Another instrument changed the routes: the next selection is sent whatever was closed before."""


class GateSupply(abc.ABC):
    @abc.abstractmethod
    def set_gate(self, v_gate: float) -> None:
        """Word-line voltage (V) applied to the selected row(s)."""


class Reader(abc.ABC):
    #: True when :meth:`read` takes ``n_avg`` and averages on the instrument (one transfer)
    averages: bool = False

    @abc.abstractmethod
    def read(self, v_read: float, n_cols: int) -> NDArray[np.float64]:
        """Apply ``v_read`` to the selected bit lines and return their currents (A)."""

    @abc.abstractmethod
    def tripped(self) -> bool:
        """True when the read source was in current compliance during the last read (its own status)."""


class Pulser(abc.ABC):
    #: True when :meth:`arm` readies the pulser for pulses triggered by the addresser (its TRIG OUT)
    can_trigger: bool = False
    #: True when an armed pulser steps through a list, one level per trigger; False when every
    #: trigger of one arming gives the same pulse
    level_per_trigger: bool = False
    #: most triggers one arming serves (a list's length)
    max_armed: int = 1 << 30

    @abc.abstractmethod
    def pulse(self, amplitude: float, width: float) -> None:
        """One rectangular pulse of ``amplitude`` (V, >= 0) and ``width`` (s) on the routed lines."""

    def arm(self, amplitudes: Sequence[float], width: float) -> None:
        """Ready one pulse per trigger from the addresser: ``amplitudes[k]`` (V, >= 0) for the k-th,
        all ``width`` s (without :attr:`level_per_trigger` every amplitude must be the same)."""
        raise RoleNotServed(f"{type(self).__name__} takes no external triggers (can_trigger is False)")

    def check(self, amplitudes: NDArray[np.float64], widths: NDArray[np.float64]) -> None:
        """Raise :class:`LimitError` for any pulse (|amplitude| V, width s) the instrument cannot make."""


#: outcome codes of a cell's write-and-verify (the ISPP state machine and on-instrument tuning share them)
TUNE_PENDING, TUNE_CONVERGED, TUNE_EXHAUSTED, TUNE_UNRESPONSIVE = 0, 1, 2, 3


@dataclass(frozen=True)
class TuneRule:
    """The write-and-verify rule of one cell, as an instrument runs it (:meth:`~hil.bench.Bench.tune_row`).

    The same rule as ``protocols.ispp_machine.CellProgrammer`` (build one with
    ``ISPPParams.tune_rule()``): conductances in S, voltages in V, times in s. Ladder rung k
    SETs with ``set_amps[k]`` on the bit line at gate ``set_gates[k]``, RESETs with
    ``reset_amps[k]`` (magnitude) at gate ``reset_gates[k]``.
    """

    set_amps: tuple[float, ...]
    set_gates: tuple[float, ...]
    set_width: float
    reset_amps: tuple[float, ...]
    reset_gates: tuple[float, ...]
    reset_width: float
    v_read: float
    read_gate: float
    tol_rel: float
    tol_abs: float = 0.0  # S
    accept_fraction: float = 1.0
    n_read: int = 1
    step_growth: float = 2.0
    max_step_rungs: int = 32
    slow_fraction: float = 0.3
    stall_pulses: int = 3
    stall_rel: float = 0.05
    response_rel: float = 0.5
    read_noise_rel: float = 0.0
    confirm_z: float = 2.0
    max_verify_reads: int = 6

    def pulse_plan(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Every pulse the rule may send: signed amplitudes (V), gates (V), widths (s)."""
        amps = np.concatenate([np.asarray(self.set_amps, float), -np.asarray(self.reset_amps, float)])
        gates = np.concatenate([np.asarray(self.set_gates, float), np.asarray(self.reset_gates, float)])
        widths = np.concatenate([np.full(len(self.set_amps), self.set_width),
                                 np.full(len(self.reset_amps), self.reset_width)])
        return amps, gates, widths


@dataclass
class TuneResult:
    """Per cell of :meth:`~hil.bench.Bench.tune_row` (in the order of the ``cols`` given)."""

    g_final: NDArray[np.float64]  # S, the last read
    pulses: NDArray[np.int32]  # pulses sent in this call
    status: NDArray[np.int8]  # TUNE_CONVERGED, TUNE_EXHAUSTED or TUNE_UNRESPONSIVE
    reversals: NDArray[np.int32]
    g_min: NDArray[np.float64]  # S, lowest and highest read so far (the spread passed in included)
    g_max: NDArray[np.float64]
    #: per cell, one record per read: polarity of the pulse that followed (+1 SET, -1 RESET, 0 none),
    #: its rung, amplitude (V, magnitude), gate (V), width (s), and the read g (S) that decided it
    log: list[NDArray]


#: one read of an on-instrument tuning and the pulse that followed it (polarity 0: none)
TUNE_LOG_DTYPE = np.dtype([("polarity", "i1"), ("rung", "i4"), ("amplitude", "f8"), ("gate", "f8"),
                           ("width", "f8"), ("g", "f8")])


class VectorMultiplier(abc.ABC):
    @abc.abstractmethod
    def vmm(self, v_in: NDArray[np.float64]) -> NDArray[np.float64]:
        """Source-line voltages in (V), bit-line currents out (A), with routing set to "vmm"."""
