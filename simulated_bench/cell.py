"""The 1T1R cell: a memristor in series with an NMOS access transistor.

Line names follow the array: the bit line (BL) reaches the cell's top side, the source
line (SL) its bottom side, the word line (WL) drives the gate.

* MOD (memristor on drain):  BL -[TE memristor BE]- X -[NMOS]- SL
* MOS (memristor on source): BL -[NMOS]- X -[TE memristor BE]- SL

A positive BL-SL voltage SETs the memristor in both configurations. The internal node
X is solved from current continuity, so the gate voltage limits the current exactly as
the compliance does on a real chip, and the largest voltage that reaches the memristor
is VDD or VDD - V_th as seed 004 Table 1 states.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike

from .devices.base import DeviceModel, FloatArray
from .transistor import NmosParams, drain_current


class CellConfig(str, Enum):
    MOD = "MOD"  # memristor on the transistor's drain
    MOS = "MOS"  # memristor on the transistor's source


@dataclass(frozen=True)
class CellParams:
    """A 1T1R cell design: where the memristor sits and which transistor serves it."""

    config: CellConfig = CellConfig.MOD
    nmos: NmosParams = field(default_factory=NmosParams)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", CellConfig(self.config))


_NEWTON_MAX_ITER = 60
_V_TOL = 1e-12  # V, bracket width at which the node voltage is final


def solve_cell(model: DeviceModel, cell: CellParams, state: ArrayLike,
               v_bl: ArrayLike, v_sl: ArrayLike, v_wl: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Series current (BL -> SL, amperes) and memristor voltage (TE - BE, volts).

    All arguments broadcast against each other; the solve is a bracketed Newton
    iteration on the internal node, vectorised over every cell at once.
    """
    state, v_bl, v_sl, v_wl = np.broadcast_arrays(*(np.asarray(a, float) for a in (state, v_bl, v_sl, v_wl)))
    lo = np.minimum(v_bl, v_sl).copy()
    hi = np.maximum(v_bl, v_sl).copy()
    x = 0.5 * (lo + hi)
    nmos = cell.nmos
    mod = cell.config is CellConfig.MOD
    active = hi - lo > _V_TOL
    for _ in range(_NEWTON_MAX_ITER):
        if not active.any():
            break
        # Residual in volts: the memristor voltage the node implies minus the voltage
        # the memristor needs to carry the transistor's current. Written this way the
        # exponential I-V is inverted analytically and Newton converges in a few steps.
        if mod:
            i_n, di_dx, _ = drain_current(nmos, v_wl, x, v_sl)
            v_m = v_bl - x
            dvm_dx = -1.0
        else:
            i_n, _, di_dx = drain_current(nmos, v_wl, v_bl, x)
            v_m = x - v_sl
            dvm_dx = 1.0
        v_need = model.voltage_for_current(state, i_n)
        dvneed_dx = di_dx / model.d_current_dv(state, v_need)
        resid = (v_m - v_need) if mod else (v_need - v_m)
        dres = (dvm_dx - dvneed_dx) if mod else (dvneed_dx - dvm_dx)
        # residual falls with x: a positive residual means the root lies above x
        above = resid > 0
        lo = np.where(active & above, x, lo)
        hi = np.where(active & ~above, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_newton = x - resid / dres
        inside = np.isfinite(x_newton) & (x_newton > lo) & (x_newton < hi)
        x_new = np.where(inside, x_newton, 0.5 * (lo + hi))
        step = np.abs(x_new - x)
        x = np.where(active, x_new, x)
        active = active & (step > _V_TOL) & (hi - lo > _V_TOL)
    v_m = v_bl - x if mod else x - v_sl
    return model.current(state, v_m), v_m


def max_memristor_voltage(model: DeviceModel, cell: CellParams, v_dd: float, v_gate: float,
                          polarity: str, state: float | None = None) -> float:
    """|V| across the memristor when ``v_dd`` drives a SET or RESET at gate ``v_gate``.

    ``polarity`` is ``"set"`` (BL at v_dd, SL grounded) or ``"reset"`` (SL at v_dd, BL
    grounded). With the high-resistance state by default the transistor passes almost
    no current, so this is the configuration's ceiling of seed 004 Table 1.
    """
    if polarity not in ("set", "reset"):
        raise ValueError(f"polarity must be 'set' or 'reset', got {polarity!r}")
    state = model.state_off if state is None else state
    v_bl, v_sl = (v_dd, 0.0) if polarity == "set" else (0.0, v_dd)
    _, v_m = solve_cell(model, cell, state, v_bl, v_sl, v_gate)
    return float(abs(v_m))
