"""Multilevel model of seed 004's Cu:Te/TaOx/IGZO/Pt memristor.

Seed 004 (section 3.1, Fig. 2) shows a gradual device: a full SET at about +2 V, and
partial RESETs whose stop voltage between -0.5 V and -2 V picks one of many stable
levels between about 5.7 uS and 200 uS, with read noise (RSD) rising toward the low
levels (about 2 %). The model reproduces that behaviour phenomenologically.

State ``x`` in [0, 1] is the log-conductance fraction,
``G(x) = G_min * (G_max / G_min) ** x``. Under a voltage the state relaxes toward a
voltage-dependent stop level, at a rate that grows exponentially with |V|:

    SET   (V > 0): x_stop = clip((V - V_set_start) / (V_set_full - V_set_start), 0, 1),
                   dx/dt = k(V) * (x_stop - x)   only while x < x_stop
    RESET (V < 0): x_stop = clip(1 - (|V| - V_reset_start) / (V_reset_full - V_reset_start), 0, 1),
                   dx/dt = -k(V) * (x - x_stop) only while x > x_stop
    k(V) = k0 * exp(|V| / V_k)

so a RESET pulse of a given amplitude can only bring the device down to the level of
that amplitude (the "reset stop voltage" of Fig. 2A), and the read voltage (50 mV)
disturbs nothing. The I-V is mildly non-linear, ``I = G(x) * V_n * sinh(V / V_n)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .base import FloatArray, log_interp_noise


@dataclass(frozen=True)
class CuTeParams:
    """Parameters of the seed-004 Cu:Te multilevel device (SI units)."""

    G_min: float = 5.7e-6  # S, lowest level (seed 004 Fig. 2C)
    G_max: float = 200e-6  # S, highest level
    V_n: float = 0.5  # V, I-V non-linearity scale
    V_set_start: float = 0.6  # V, no SET below
    V_set_full: float = 1.8  # V, full SET at and above (seed 004 sets fully at 2 V)
    V_reset_start: float = 0.5  # V, first RESET stop level (seed 004: -0.5 V)
    V_reset_full: float = 2.0  # V, full RESET (seed 004: -2 V)
    k0: float = 55.0  # 1/s, relaxation rate prefactor
    V_k: float = 0.25  # V, voltage acceleration of the rate
    read_noise_at_g_min: float = 0.02  # seed 004 Fig. 2D: ~2 % RSD at the low levels
    read_noise_at_g_max: float = 0.012

    def __post_init__(self) -> None:
        if not 0 < self.G_min < self.G_max:
            raise ValueError(f"need 0 < G_min < G_max, got {self.G_min}, {self.G_max}")
        if not 0 < self.V_set_start < self.V_set_full:
            raise ValueError("need 0 < V_set_start < V_set_full")
        if not 0 < self.V_reset_start < self.V_reset_full:
            raise ValueError("need 0 < V_reset_start < V_reset_full")


class CuTeMultilevelModel:
    """Vectorised seed-004 multilevel model; state = log-conductance fraction in [0, 1]."""

    name = "cute_multilevel"

    def __init__(self, params: CuTeParams | None = None):
        self.p = params or CuTeParams()
        self.state_on = 1.0
        self.state_off = 0.0
        self._log_ratio = np.log(self.p.G_max / self.p.G_min)

    def conductance(self, state: ArrayLike) -> FloatArray:
        return self.p.G_min * np.exp(np.asarray(state, float) * self._log_ratio)

    def state_for_conductance(self, g: ArrayLike) -> FloatArray:
        x = np.log(np.asarray(g, float) / self.p.G_min) / self._log_ratio
        return np.clip(x, 0.0, 1.0)

    def current(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        vn = self.p.V_n
        return self.conductance(state) * vn * np.sinh(np.asarray(v, float) / vn)

    def voltage_for_current(self, state: ArrayLike, i: ArrayLike) -> FloatArray:
        vn = self.p.V_n
        return vn * np.arcsinh(np.asarray(i, float) / (self.conductance(state) * vn))

    def d_current_dv(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        return self.conductance(state) * np.cosh(np.asarray(v, float) / self.p.V_n)

    def read_noise_rel(self, g: ArrayLike) -> FloatArray:
        p = self.p
        return log_interp_noise(g, p.G_min, p.G_max, p.read_noise_at_g_min, p.read_noise_at_g_max)

    def stop_level(self, v: ArrayLike) -> FloatArray:
        """State the device relaxes toward under ``v`` (only reachable in the pulse's direction)."""
        p = self.p
        v = np.asarray(v, float)
        x_set = np.clip((v - p.V_set_start) / (p.V_set_full - p.V_set_start), 0.0, 1.0)
        x_reset = np.clip(1.0 - (-v - p.V_reset_start) / (p.V_reset_full - p.V_reset_start), 0.0, 1.0)
        return np.where(v >= 0, x_set, x_reset)

    def state_rate(self, state: ArrayLike, v: ArrayLike) -> FloatArray:
        p = self.p
        state = np.asarray(state, float)
        v = np.asarray(v, float)
        k = p.k0 * np.exp(np.abs(v) / p.V_k)
        drive = self.stop_level(v) - state
        moving = np.where(v >= 0, drive > 0, drive < 0)
        return np.where(moving, k * drive, 0.0)
