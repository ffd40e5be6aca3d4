"""Programming models: how a target conductance array ends up on the chip.

A programmer is any callable ``program(G_target, rng) -> G_programmed`` acting on an array
of non-negative conductances in siemens. The on-chip path plugs in ISPP write-and-verify
with read-back; simulations use the Gaussian model below.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import DeviceWindow


@dataclass(frozen=True)
class GaussianProgramming:
    """Write-and-verify residual error as Gaussian noise, clipped to the device window.

    sigma default 5 uS: seed 003 programs to within +-15 uS, taken here as 3 sigma.
    """

    sigma: float = 5e-6
    window: DeviceWindow = DeviceWindow()

    def __call__(self, g_target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        g = np.asarray(g_target, dtype=np.float64)
        noisy = g + rng.normal(0.0, self.sigma, size=g.shape)
        return np.clip(noisy, 0.0, self.window.g_max)


def ideal_programming(g_target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exact programming (no error): the reference for noise-free checks."""
    return np.asarray(g_target, dtype=np.float64).copy()
