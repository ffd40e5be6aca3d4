"""Stanford-PKU RRAM gap model (Jiang & Wong, nanoHUB release v1.0.0).

The compact model seed 000 simulates its arrays with. The state is the tunnelling gap
``g`` between the filament tip and the electrode, in metres:

    I      = I0 * exp(-g / g0) * sinh(V / V0)
    dg/dt  = -v0 * exp(-q Ea / (k T)) * sinh(gamma * a0 / tox * q V / (k T))
    gamma  = gamma0 - beta * (g / 1 nm)^3
    T      = T0 + |V I| * Rth            (steady-state self-heating)

and no gap motion while the enhanced field ``gamma * |V| / tox`` is below ``F_min``.
The gap is confined to [g_min, g_max] = [0.2, 1.7] nm, which gives the small-signal
conductances seed 000 quotes (about 1.8 mS and 4.4 uS).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .base import FloatArray, log_interp_noise

Q_E = 1.602176634e-19  # C
K_B = 1.380649e-23  # J/K
NM = 1e-9


@dataclass(frozen=True)
class StanfordGapParams:
    """Published defaults of the Stanford-PKU model v1.0.0 (SI units)."""

    g0: float = 0.25 * NM  # m, current decay length
    V0: float = 0.25  # V
    I0: float = 1e-3  # A
    v0: float = 10.0  # m/s, gap velocity prefactor
    Ea: float = 0.6  # eV, activation energy
    a0: float = 0.25 * NM  # m, atomic hopping distance
    gamma0: float = 16.0  # local field enhancement
    beta: float = 0.8  # enhancement roll-off with gap
    tox: float = 12 * NM  # m, oxide thickness
    T0: float = 298.0  # K, ambient
    Rth: float = 2.1e3  # K/W, thermal resistance
    F_min: float = 1.4e9  # V/m, no switching below this enhanced field
    g_min: float = 0.2 * NM  # m, gap of the fully SET device
    g_max: float = 1.7 * NM  # m, gap of the fully RESET device
    # Read noise: relative sigma of one read, rising toward the high-resistance state.
    read_noise_at_g_min: float = 0.003
    read_noise_at_g_max: float = 0.015

    def __post_init__(self) -> None:
        if not 0 < self.g_min < self.g_max:
            raise ValueError(f"need 0 < g_min < g_max, got g_min={self.g_min}, g_max={self.g_max}")
        for name in ("g0", "V0", "I0", "v0", "a0", "tox", "T0"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


class StanfordGapModel:
    """Vectorised Stanford-PKU gap model; state = gap in metres."""

    name = "stanford_gap"

    def __init__(self, params: StanfordGapParams | None = None):
        self.p = params or StanfordGapParams()
        self.state_on = self.p.g_min
        self.state_off = self.p.g_max

    # electrical -----------------------------------------------------------------
    def current(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        p = self.p
        return p.I0 * np.exp(-np.asarray(state, float) / p.g0) * np.sinh(np.asarray(v, float) / p.V0)

    def d_current_dv(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        p = self.p
        return p.I0 / p.V0 * np.exp(-np.asarray(state, float) / p.g0) * np.cosh(np.asarray(v, float) / p.V0)

    def voltage_for_current(self, state: ArrayLike, i: ArrayLike) -> FloatArray:
        p = self.p
        return p.V0 * np.arcsinh(np.asarray(i, float) / (p.I0 * np.exp(-np.asarray(state, float) / p.g0)))

    def conductance(self, state: ArrayLike) -> FloatArray:
        p = self.p
        return p.I0 / p.V0 * np.exp(-np.asarray(state, float) / p.g0)

    def state_for_conductance(self, g: ArrayLike) -> FloatArray:
        p = self.p
        gap = -p.g0 * np.log(np.asarray(g, float) * p.V0 / p.I0)
        return np.clip(gap, p.g_min, p.g_max)

    def read_noise_rel(self, g: ArrayLike) -> FloatArray:
        p = self.p
        return log_interp_noise(g, float(self.conductance(p.g_max)), float(self.conductance(p.g_min)),
                                p.read_noise_at_g_max, p.read_noise_at_g_min)

    # dynamics -------------------------------------------------------------------
    def gamma(self, state: ArrayLike) -> FloatArray:
        p = self.p
        return p.gamma0 - p.beta * (np.asarray(state, float) / NM) ** 3

    def state_rate(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        """dg/dt in m/s; zero where the enhanced field is below ``F_min``."""
        p = self.p
        state = np.asarray(state, float)
        v = np.asarray(v, float)
        gamma = self.gamma(state)
        temp = p.T0 + np.abs(v * self.current(state, v)) * p.Rth
        kt = K_B * temp
        rate = -p.v0 * np.exp(-Q_E * p.Ea / kt) * np.sinh(gamma * p.a0 / p.tox * Q_E * v / kt)
        return np.where(gamma * np.abs(v) / p.tox < p.F_min, 0.0, rate)
