"""The interface every memristor compact model offers the simulated chip.

A device model describes one memristor by a single scalar internal state per cell
(the gap of a filament, a filament fraction, ...). The chip never looks inside the
state: it asks the model for the current at a voltage, for the rate of change of the
state under a voltage, for the state's bounds and for the read noise. That keeps the
cell, array and bench code free of any one model.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@runtime_checkable
class DeviceModel(Protocol):
    """A two-terminal memristor with one internal state variable.

    Sign convention: ``v`` is the top-electrode minus bottom-electrode voltage; a
    positive voltage SETs (raises conductance), a negative one RESETs.
    """

    #: human-readable model name (used in bench files and run metadata)
    name: str
    #: state at the lowest resistance the model allows (fully SET)
    state_on: float
    #: state at the highest resistance the model allows (fully RESET)
    state_off: float

    def current(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        """Device current in amperes at state ``state`` and voltage ``v`` (V)."""
        ...

    def d_current_dv(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        """Derivative of :meth:`current` with respect to ``v`` (siemens)."""
        ...

    def state_rate(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        """d(state)/dt in state units per second at ``state`` under ``v``."""
        ...

    def voltage_for_current(self, state: ArrayLike, i: ArrayLike) -> FloatArray:
        """Inverse of :meth:`current` in ``v``: the voltage (V) that drives current ``i`` (A)."""
        ...

    def conductance(self, state: ArrayLike) -> FloatArray:
        """Small-signal conductance dI/dV at 0 V, in siemens."""
        ...

    def state_for_conductance(self, g: ArrayLike) -> FloatArray:
        """Inverse of :meth:`conductance` (clipped to the state bounds)."""
        ...

    def read_noise_rel(self, g: ArrayLike) -> FloatArray:
        """Relative standard deviation of one read at conductance ``g`` (S)."""
        ...


def state_bounds(model: DeviceModel) -> tuple[float, float]:
    """(low, high) of the model's state range, whichever of on/off is smaller."""
    return (min(model.state_on, model.state_off), max(model.state_on, model.state_off))


def log_interp_noise(g: ArrayLike, g_low: float, g_high: float,
                     rel_at_low: float, rel_at_high: float) -> FloatArray:
    """Relative read noise rising log-linearly from ``g_high`` down to ``g_low``.

    Both of the project's device models show the same trend (seed 004 Fig. 2D:
    fewer filaments at low conductance, more telegraph noise), so they share it.
    """
    g = np.asarray(g, dtype=float)
    frac = np.log(np.clip(g, g_low, g_high) / g_high) / np.log(g_low / g_high)
    return rel_at_high + (rel_at_low - rel_at_high) * frac
