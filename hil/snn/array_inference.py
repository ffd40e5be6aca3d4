"""The trained network on a simulated 1T1R array of seed-004 devices.

Mapping. A weight w in [0, 1] becomes a target conductance of the Cu:Te device in its
MOD cell (W/L 65) such that the *cell* current read at 50 mV through the fully-on
access transistor is linear in w between the cell currents at ``g_low`` (w = 0) and
``g_high`` (w = 1). The periphery subtracts the w = 0 current of each spiking row (a
reference cell at ``g_low``), so the synapse sees ``(I_cell - I_ref) / (I_high - I_ref)``,
the network's own weight units. The default window 10..160 uS sits inside the device's
5.7..200 uS so that a +-20 % tuning error never runs into the device's limits.

Programming is a callable ``program(g_target) -> g_programmed`` (siemens, any shape):
the bench's ISPP write-and-verify on a real or simulated chip, or, for the study,
:func:`tolerance_programmer`, which leaves each cell a relative error inside the
tolerance band (uniform: ISPP stops at the first read inside the band, so the residual
is spread over the band; or Gaussian with sigma = tol / 2 truncated to the band).

Inference. The input spikes gate the access transistors (word line at ``v_gate`` while
the input spikes, 0 V otherwise), every bit line is held at ``v_read`` and the source
lines at ground; the column currents are the synaptic drive of eq. 2-3. Each spike's
cell current carries the device's read noise: the model's intrinsic level
(``read_noise=None``) or a fixed relative sigma (the study's 0-7 %).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from numpy.typing import NDArray

from simulated_bench.array import NO_VARIATION, SimulatedArray
from simulated_bench.cell import CellParams, solve_cell
from simulated_bench.devices.cute_multilevel import CuTeMultilevelModel

from .network import SnnParams, readout, run_lif

Programmer = Callable[[NDArray], NDArray]


@dataclass(frozen=True)
class ArrayMapping:
    """Weight -> conductance window and read conditions (SI units)."""

    g_low: float = 10e-6  # S, conductance of weight 0
    g_high: float = 160e-6  # S, conductance of weight 1
    v_read: float = 0.05  # V on the bit lines (seed 004: 50 mV)
    v_gate: float = 3.0  # V on the word line of a spiking input (seed 004: 3 V)
    model: CuTeMultilevelModel = field(default_factory=CuTeMultilevelModel)
    cell: CellParams = field(default_factory=CellParams)  # MOD, W/L 65

    def __post_init__(self) -> None:
        p = self.model.p
        if not p.G_min <= self.g_low < self.g_high <= p.G_max:
            raise ValueError(f"window {self.g_low:g}..{self.g_high:g} S outside the device's {p.G_min:g}..{p.G_max:g} S")

    def cell_current(self, g: NDArray, v_wl: float | NDArray | None = None) -> NDArray:
        """Read current (A) of cells whose memristor has conductance ``g`` (S)."""
        state = self.model.state_for_conductance(g)
        i, _ = solve_cell(self.model, self.cell, state, self.v_read, 0.0, self.v_gate if v_wl is None else v_wl)
        return i

    @property
    def i_ref(self) -> float:
        """Cell current of weight 0, subtracted per spiking row (A)."""
        return float(self.cell_current(np.array(self.g_low)))

    @property
    def i_unit(self) -> float:
        """Cell current of weight 1 minus that of weight 0 (A)."""
        return float(self.cell_current(np.array(self.g_high))) - self.i_ref

    def read_conductance(self, g: NDArray) -> NDArray:
        """What a verify read at ``v_read`` / ``v_gate`` reports for memristor conductance ``g``: I_cell / v_read (S)."""
        return self.cell_current(g) / self.v_read

    def conductance_for_weight(self, w: NDArray) -> NDArray:
        """Memristor conductance (S) whose cell current is linear in ``w`` in [0, 1]."""
        w = np.clip(np.asarray(w, float), 0.0, 1.0)
        grid = np.geomspace(self.g_low, self.g_high, 2049)
        i_grid = self.cell_current(grid)
        # the cell current rises monotonically with g, so the inverse is an interpolation;
        # interpolate log g for accuracy over the 16x window
        return np.exp(np.interp(self.i_ref + w * self.i_unit, i_grid, np.log(grid)))


def tolerance_programmer(tolerance: float, seed: int | np.random.Generator = 0,
                         distribution: str = "uniform",
                         model: CuTeMultilevelModel | None = None) -> Programmer:
    """Programming model: each cell ends at g_target * (1 + e), |e| <= ``tolerance``.

    ``uniform``: e ~ U(-tol, tol); ``gaussian``: e ~ N(0, tol / 2) clipped to +-tol.
    Results are clipped to the device's conductance range.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if distribution not in ("uniform", "gaussian"):
        raise ValueError(f"distribution must be 'uniform' or 'gaussian', got {distribution!r}")
    rng = np.random.default_rng(seed)
    p = (model or CuTeMultilevelModel()).p

    def program(g_target: NDArray) -> NDArray:
        g_target = np.asarray(g_target, float)
        if distribution == "uniform":
            e = rng.uniform(-tolerance, tolerance, g_target.shape)
        else:
            e = np.clip(rng.normal(0.0, tolerance / 2, g_target.shape), -tolerance, tolerance)
        return np.clip(g_target * (1.0 + e), p.G_min, p.G_max)

    return program


class ArraySynapses:
    """Synapses held by a rows x cols simulated 1T1R array (inputs on rows), and inference on it.

    ``array`` is any :class:`SimulatedArray` of the mapping's device and cell: one built
    from programmed conductances (:meth:`from_conductances`) or the chip of a simulated
    bench after the ISPP protocol programmed it. Its ground-truth state is what the
    cells hold; the read noise is drawn here per spike.
    """

    def __init__(self, array: SimulatedArray, mapping: ArrayMapping | None = None, seed: int = 0,
                 noise_scale: float = 1.0):
        self.mapping = m = mapping or ArrayMapping()
        self.array = array
        self.rng = np.random.default_rng(seed)
        rows = array.rows
        self.i_on = array.cell_currents(np.full(rows, m.v_gate), m.v_read, 0.0, noisy=False)
        self.i_off = array.cell_currents(np.zeros(rows), m.v_read, 0.0, noisy=False)
        self.noise_intrinsic = noise_scale * m.model.read_noise_rel(array.true_conductance())

    @classmethod
    def from_conductances(cls, g_programmed: NDArray, mapping: ArrayMapping | None = None,
                          seed: int = 0) -> "ArraySynapses":
        """An array whose memristors hold ``g_programmed`` (S), without further variation."""
        m = mapping or ArrayMapping()
        g = np.asarray(g_programmed, float)
        # variation is off: the programmed conductances already carry the tuning error
        array = SimulatedArray(g.shape[0], g.shape[1], m.model, m.cell, NO_VARIATION, seed=seed,
                               initial_state=m.model.state_for_conductance(g))
        return cls(array, m, seed)

    @classmethod
    def from_weights(cls, weights: NDArray, program: Programmer, mapping: ArrayMapping | None = None,
                     seed: int = 0) -> "ArraySynapses":
        """Map ``weights`` to conductances, ``program`` them, and hold the result."""
        m = mapping or ArrayMapping()
        return cls.from_conductances(program(m.conductance_for_weight(weights)), m, seed)

    def effective_weights(self) -> NDArray:
        """Noise-free weights the array delivers, (I_on - I_ref) / I_unit."""
        m = self.mapping
        return (self.i_on - m.i_ref) / m.i_unit

    def drive(self, raster: NDArray, read_noise: float | None = None) -> torch.Tensor:
        """Synaptic drive (N, T, O) in weight units for spike rasters (N, T, I).

        Each input spikes at most once under latency coding, so one noise draw per
        (image, input, column) is one draw per spike.
        """
        m = self.mapping
        s = torch.as_tensor(raster, dtype=torch.float64)
        n = s.shape[0]
        sigma = self.noise_intrinsic if read_noise is None else np.full(self.i_on.shape, float(read_noise))
        noise = 1.0 + sigma[None] * self.rng.standard_normal((n,) + self.i_on.shape)
        w_on = torch.as_tensor((self.i_on[None] * noise - self.i_off[None] - m.i_ref) / m.i_unit)
        # gated-off rows still leak through the off transistor: a tiny constant per column
        leak = torch.as_tensor(self.i_off.sum(axis=0) / m.i_unit)
        return torch.einsum("nti,nio->nto", s, w_on) + leak

    def drive_stepwise(self, raster_one: NDArray, noisy: bool = False) -> NDArray:
        """Drive (T, O) of one image by gating the array's word lines step by step (the reference path)."""
        m = self.mapping
        out = np.empty((raster_one.shape[0], self.array.cols))
        for t, s in enumerate(np.asarray(raster_one)):
            i = self.array.cell_currents(m.v_gate * s, m.v_read, 0.0, noisy=noisy)
            out[t] = (i.sum(axis=0) - m.i_ref * s.sum()) / m.i_unit
        return out

    def scores(self, raster: NDArray, p: SnnParams | None = None, read_noise: float | None = None) -> NDArray:
        """Max-membrane readout (N, O) of the output neurons driven by the array."""
        with torch.no_grad():
            v, _, _ = run_lif(self.drive(raster, read_noise), p or SnnParams())
        return readout(v).numpy()

    def predict(self, raster: NDArray, p: SnnParams | None = None, read_noise: float | None = None) -> NDArray:
        return self.scores(raster, p, read_noise).argmax(axis=1)
