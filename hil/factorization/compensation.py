"""Compensation layers (seed 003 Methods, Fig. 3b-e).

M = (sum_i kA_i CA_i) @ (sum_i kB_i CB_i). Layer 1 is the fault-aware factorization; each
later layer i, on its own crossbars with its own faults, is fitted against what layers
1..i-1 actually programmed (read back, or simulated), with the row signs of layer 1 kept
so the layers share input voltages, and with gain k_i = layer_gain**(i-1) so its largest
value stays a fixed ratio below the previous layer's. Every layer but the last is
programmed ``delta_g`` below target: a same-sign layer can only add magnitude, so it is
better to undershoot and let the next layer fill in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ._threads import single_blas_thread
from .faults import STUCK_OFF, STUCK_ON, validate_codes
from .metrics import one_minus_cos
from .params import DeviceWindow, SolverParams
from .solver import Factorization, _Problem, factorize, lbfgs_fit

Programmer = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class CompensationParams:
    """Layer gain ratio and the undershoot of non-final layers (seed 003: 3 sigma)."""

    layer_gain: float = 0.25   #: k_i / k_(i-1)
    delta_g: float = 15e-6     #: S, subtracted from non-final layer targets
    enforce_stuck: bool = True  #: simulated programming: stuck devices keep their value


@dataclass
class CompensatedMapping:
    """Programmed layers and the effective matrices MA = sum kA_i CA_i, MB = sum kB_i CB_i."""

    ma: np.ndarray
    mb: np.ndarray
    sign_a: np.ndarray
    sign_b: np.ndarray
    gains: list[float]
    layers_a: list[np.ndarray]       #: programmed magnitudes per layer, S
    layers_b: list[np.ndarray]
    scale: float                     #: alpha in MA @ MB ~ alpha * M, S^2
    one_minus_cos: float             #: of the programmed result
    one_minus_cos_per_layer: list[float] = field(default_factory=list)
    first: Factorization | None = None

    def represented(self) -> np.ndarray:
        return (self.ma @ self.mb) / self.scale


def _program(target_mag, codes, program, rng, window, enforce):
    g = np.asarray(program(target_mag, rng), dtype=np.float64)
    if g.shape != target_mag.shape:
        raise ValueError(f"programmer returned shape {g.shape}, expected {target_mag.shape}")
    if enforce:
        g = np.where(codes == STUCK_OFF, 0.0, np.where(codes == STUCK_ON, window.g_max, g))
    return g


@single_blas_thread
def compensate(matrix: np.ndarray, codes_a: Sequence[np.ndarray], codes_b: Sequence[np.ndarray],
               program: Programmer, rng: np.random.Generator,
               window: DeviceWindow = DeviceWindow(), params: SolverParams = SolverParams(),
               comp: CompensationParams = CompensationParams()) -> CompensatedMapping:
    """Map ``matrix`` with len(codes_a) layers; ``program`` writes each layer's magnitudes.

    codes_a[i] (m x k) and codes_b[i] (k x n) are the fault codes of layer i's crossbars.
    """
    if len(codes_a) != len(codes_b) or not len(codes_a):
        raise ValueError("need one (codes_a, codes_b) pair per layer, at least one layer")
    m_ = np.asarray(matrix, dtype=np.float64)
    n_layers = len(codes_a)
    gmax = window.g_max
    first = factorize(m_, codes_a[0], codes_b[0], rng, window, params)
    sa, sb = first.sign_a.astype(float), first.sign_b.astype(float)
    alpha = first.scale
    m, k = first.ma.shape
    n = first.mb.shape[1]

    def backoff(mag, final):
        return mag if final else np.maximum(mag - comp.delta_g, 0.0)

    final = n_layers == 1
    ca0 = validate_codes(codes_a[0], (m, k), "codes_a[0]")
    cb0 = validate_codes(codes_b[0], (k, n), "codes_b[0]")
    ga = _program(backoff(np.abs(first.ma), final), ca0, program, rng, window, comp.enforce_stuck)
    gb = _program(backoff(np.abs(first.mb), final), cb0, program, rng, window, comp.enforce_stuck)
    acc_a, acc_b = sa[:, None] * ga, sb[:, None] * gb
    layers_a, layers_b, gains = [ga], [gb], [1.0]
    per_layer = [one_minus_cos(acc_a @ acc_b, m_)]
    target = alpha * m_ / gmax ** 2          # the product to reach, in Gmax units
    for i in range(1, n_layers):
        gain = comp.layer_gain ** i
        ca = validate_codes(codes_a[i], (m, k), f"codes_a[{i}]")
        cb = validate_codes(codes_b[i], (k, n), f"codes_b[{i}]")
        on_a, on_b = (ca == STUCK_ON).astype(float), (cb == STUCK_ON).astype(float)
        prob = _Problem(acc_a / gmax + gain * sa[:, None] * on_a,
                        acc_b / gmax + gain * sb[:, None] * on_b,
                        ca == 0, cb == 0, sa, sb, gain, gain)
        x0 = np.zeros(prob.na + prob.ib.size)
        x, _ = lbfgs_fit(prob, x0, np.ones_like(x0), target, "ls", params.max_iter,
                         params.tol, params.memory)
        xa = np.zeros(m * k)
        xa[prob.ia] = x[:prob.na]
        xb = np.zeros(k * n)
        xb[prob.ib] = x[prob.na:]
        final = i == n_layers - 1
        ga = _program(backoff(gmax * xa.reshape(m, k), final), ca, program, rng, window,
                      comp.enforce_stuck)
        gb = _program(backoff(gmax * xb.reshape(k, n), final), cb, program, rng, window,
                      comp.enforce_stuck)
        acc_a = acc_a + gain * sa[:, None] * ga
        acc_b = acc_b + gain * sb[:, None] * gb
        layers_a.append(ga)
        layers_b.append(gb)
        gains.append(gain)
        per_layer.append(one_minus_cos(acc_a @ acc_b, m_))
    prod = acc_a @ acc_b
    scale = float((prod * m_).sum() / (m_ * m_).sum())
    return CompensatedMapping(ma=acc_a, mb=acc_b, sign_a=first.sign_a, sign_b=first.sign_b,
                              gains=gains, layers_a=layers_a, layers_b=layers_b, scale=scale,
                              one_minus_cos=per_layer[-1], one_minus_cos_per_layer=per_layer,
                              first=first)
