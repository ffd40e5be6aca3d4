"""NMOS access transistor: long-channel square law, symmetric in drain and source.

The terminal at the lower potential acts as the source, so the same function serves
both current directions of a 1T1R cell (SET and RESET, MOD and MOS).
Defaults follow seed 004's ETRI 500 nm NMOS: W/L = 65 gives an on-resistance of
about 120 ohm at V_GS = 3 V and small V_DS (seed 004 section 3.2).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from .devices.base import FloatArray


@dataclass(frozen=True)
class NmosParams:
    """Square-law NMOS parameters (SI units)."""

    k_prime: float = 55e-6  # A/V^2, process transconductance mu_n * C_ox
    w_over_l: float = 65.0  # seed 004's chosen size
    v_th: float = 0.7  # V, threshold voltage
    lambda_clm: float = 0.02  # 1/V, channel-length modulation in saturation
    g_off: float = 1e-12  # S, off-state leakage (keeps a cut-off cell solvable)

    def __post_init__(self) -> None:
        if self.k_prime <= 0 or self.w_over_l <= 0:
            raise ValueError(f"k_prime and w_over_l must be positive, got {self.k_prime}, {self.w_over_l}")
        if self.v_th < 0:
            raise ValueError(f"v_th must be >= 0 V, got {self.v_th}")

    @property
    def beta(self) -> float:
        """k' * W/L in A/V^2."""
        return self.k_prime * self.w_over_l

    def on_resistance(self, v_gs: float) -> float:
        """Triode resistance at V_DS -> 0, in ohms."""
        v_ov = v_gs - self.v_th
        if v_ov <= 0:
            raise ValueError(f"transistor is off at V_GS={v_gs} V (V_th={self.v_th} V)")
        return 1.0 / (self.beta * v_ov)

    def saturation_current(self, v_gs: float) -> float:
        """Drain current at the edge of saturation, V_DS = V_ov (the cell's compliance), in amperes."""
        v_ov = max(v_gs - self.v_th, 0.0)
        return 0.5 * self.beta * v_ov**2 * (1.0 + self.lambda_clm * v_ov)


def sized_for(r_lrs: float, v_gate: float, ratio: float = 0.1, base: NmosParams | None = None) -> NmosParams:
    """Transistor whose on-resistance is ``ratio`` times ``r_lrs`` at ``v_gate`` (seed 004 sizing rule)."""
    base = base or NmosParams()
    w_over_l = 1.0 / (ratio * r_lrs * base.k_prime * (v_gate - base.v_th))
    return replace(base, w_over_l=w_over_l)


def drain_current(p: NmosParams, v_g: ArrayLike, v_a: ArrayLike, v_b: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Current from terminal a to terminal b, and its derivatives d/dv_a and d/dv_b.

    Whichever of a and b is lower is the source. Returns ``(i, di_dva, di_dvb)`` in
    amperes and siemens.
    """
    v_g = np.asarray(v_g, float)
    v_a = np.asarray(v_a, float)
    v_b = np.asarray(v_b, float)
    sign = np.where(v_a >= v_b, 1.0, -1.0)
    v_s = np.minimum(v_a, v_b)
    v_ds = np.abs(v_a - v_b)
    v_ov = np.maximum(v_g - v_s - p.v_th, 0.0)
    triode = v_ds < v_ov
    # channel-length modulation multiplies both regions (as SPICE level 1), which keeps
    # the current continuous at the triode/saturation boundary
    clm = 1.0 + p.lambda_clm * v_ds
    core = np.where(triode, p.beta * (v_ov * v_ds - 0.5 * v_ds**2), 0.5 * p.beta * v_ov**2)
    i_mag = core * clm + p.g_off * v_ds
    # partial derivatives of |i| w.r.t. v_ds and v_ov (v_ov falls as the source rises)
    on = v_ov > 0
    dcore_dvds = np.where(triode, p.beta * (v_ov - v_ds), 0.0)
    dcore_dvov = np.where(triode, p.beta * v_ds, p.beta * v_ov) * on
    d_vds = dcore_dvds * clm + core * p.lambda_clm + p.g_off
    d_vs = -dcore_dvov * clm
    # v_ds = sign*(v_a - v_b); v_s is v_b when sign > 0 else v_a
    a_is_source = sign < 0
    di_dva = sign * (d_vds * sign + np.where(a_is_source, d_vs, 0.0))
    di_dvb = sign * (-d_vds * sign + np.where(a_is_source, 0.0, d_vs))
    return sign * i_mag, di_dva, di_dvb
