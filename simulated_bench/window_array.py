"""A crossbar at the level of its conductance window: fast enough for service studies of 1e5+ VMMs.

Where :class:`~simulated_bench.array.SimulatedArray` solves every cell's I-V and every
pulse's gap motion, a :class:`WindowArray` keeps each cell's conductance in the mapping
window 0..``g_max`` (seed 003 Methods: stuck-OFF at 0 S, stuck-ON at ``g_max``) and models
the three things a service loop sees:

* write-and-verify: a write lands within ``verify_band`` of its target (seed 003:
  +-15 uS), the residual Gaussian (sigma = band / 3) truncated to the band, after a number
  of ISPP pulses drawn around the measured mean (``benchmarks/results/ispp.json``: 3.3
  pulses per cell at 3 % tolerance on the Stanford cell);
* reads: each cell's current carries the device model's relative read noise at its
  conductance (above the Stanford HRS floor), independently per read;
* aging (:mod:`simulated_bench.aging`): drift of written cells in log time, new stuck
  devices per pulse and per hour, read disturb.

A VMM of a batch is exact in distribution: the noise of each output is the sum of
independent Gaussian cell noises, drawn as one Gaussian with their summed variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .aging import AgingClock, AgingParams, ChipAging, FaultEvent
from .devices.stanford import StanfordGapModel
from .faults import STUCK_OFF, STUCK_ON, WORKING, validate_codes


@dataclass(frozen=True)
class WindowParams:
    """Conductance window, write-and-verify and timing of a window-level array (SI units)."""

    g_max: float = 150e-6  #: S, top of the window (seed 003)
    verify_band: float = 15e-6  #: S, write-and-verify tolerance (seed 003: +-15 uS)
    g_floor: float = 4.45e-6  #: S, a RESET Stanford cell: the read-noise model is taken at floor + g
    pulses_mean: float = 3.3  #: ISPP pulses per written cell (benchmarks/results/ispp.json)
    t_pulse: float = 1e-6  #: s of chip time per pulse
    t_read: float = 1e-6  #: s of chip time per read or VMM
    read_noise_scale: float = 1.0  #: x the Stanford model's relative read noise

    def __post_init__(self) -> None:
        for name in ("g_max", "verify_band", "pulses_mean", "t_pulse", "t_read"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.pulses_mean < 1:
            raise ValueError("pulses_mean must be >= 1 (a write is at least one pulse)")

    @property
    def write_sigma(self) -> float:
        """S, sd of where a verified write lands: Gaussian, truncated to the band (3 sd)."""
        return self.verify_band / 3


class WindowArray(AgingClock):
    """rows x cols conductances in 0..g_max with write-and-verify, read noise, stuck devices and aging."""

    def __init__(self, rows: int, cols: int, params: WindowParams | None = None,
                 fault_codes: ArrayLike | None = None, aging: AgingParams | None = None,
                 seed: int | np.random.Generator | None = 0):
        if not all(isinstance(n, (int, np.integer)) and n > 0 for n in (rows, cols)):
            raise ValueError(f"rows and cols must be positive integers, got {rows!r}, {cols!r}")
        self.shape = (int(rows), int(cols))
        self.params = params or WindowParams()
        self.rng = np.random.default_rng(seed)
        self._model = StanfordGapModel()
        self.fault_codes = (np.zeros(self.shape, np.int8) if fault_codes is None
                            else validate_codes(fault_codes, self.shape))
        self.g = np.zeros(self.shape)
        self.time_s = 0.0
        self.pulse_count = 0
        self.read_count = 0
        self.aging = None if aging is None else ChipAging(aging, self.shape, self.rng.bit_generator.seed_seq.spawn(1)[0])
        self._pin_stuck()

    # ground truth --------------------------------------------------------------------------
    @property
    def true_fault_codes(self) -> NDArray[np.int8]:
        return self.fault_codes.copy()

    def true_conductance(self) -> NDArray[np.float64]:
        self._age()
        return self.g.copy()

    def _pin_stuck(self) -> None:
        self.g[self.fault_codes == STUCK_OFF] = 0.0
        self.g[self.fault_codes == STUCK_ON] = self.params.g_max

    # time ----------------------------------------------------------------------------------------
    def _age(self) -> list[FaultEvent]:
        if self.aging is None:
            return []
        events = self.aging.new_faults(self.fault_codes, self.time_s)
        written, g = self.aging.drifted_conductance(self.time_s)
        live = written & (self.fault_codes == WORKING)
        self.g[live] = np.clip(g[live], 0.0, self.params.g_max)
        self._pin_stuck()
        return events

    # operations ------------------------------------------------------------------------------------
    def write(self, targets: ArrayLike) -> tuple[int, NDArray[np.bool_]]:
        """Write-and-verify every cell whose target is finite (S); returns (pulses, cells that stuck in it).

        A stuck cell takes no pulse (its read-back tells the host it did not move).
        """
        p = self.params
        tgt = np.asarray(targets, float)
        if tgt.shape != self.shape:
            raise ValueError(f"targets have shape {tgt.shape}, the array {self.shape}")
        self._age()
        sel = np.isfinite(tgt) & (self.fault_codes == WORKING)
        n = int(sel.sum())
        if n == 0:
            return 0, np.zeros(self.shape, bool)
        pulses = 1 + self.rng.poisson(p.pulses_mean - 1, n)
        sigma = p.write_sigma
        err = self.rng.normal(0.0, sigma, n)
        bad = np.abs(err) > p.verify_band
        while bad.any():  # verify keeps pulsing until the read is inside the band
            err[bad] = self.rng.normal(0.0, sigma, int(bad.sum()))
            bad = np.abs(err) > p.verify_band
        idx = np.nonzero(sel)
        self.g[idx] = np.clip(np.clip(tgt[idx], 0.0, p.g_max) + err, 0.0, p.g_max)
        self.time_s += float(pulses.sum()) * (p.t_pulse + p.t_read)
        self.pulse_count += int(pulses.sum())
        before = self.fault_codes.copy()
        if self.aging is not None:
            hz = np.zeros(self.shape)
            hz[idx] = pulses
            self.aging.on_write(idx, self.g[idx], self.time_s)
            # on_write charged one pulse per cell; the rest of each cell's pulses too
            if self.aging.params.stuck is not None:
                self.aging.hazard += (hz - (hz > 0)) * self.aging.params.stuck.per_pulse
            self._age()
        return int(pulses.sum()), (self.fault_codes != before)

    def read(self, n_read: int = 1) -> NDArray[np.float64]:
        """Conductance map (S) read ``n_read`` times and averaged (read noise, read disturb)."""
        self._age()
        noise = self._sigma() / np.sqrt(max(int(n_read), 1))
        out = self.g * (1.0 + noise * self.rng.standard_normal(self.shape))
        self.time_s += n_read * self.shape[0] * self.params.t_read
        self.read_count += n_read * self.shape[0]
        if self.aging is not None:
            self.aging.on_read(None)
        return out

    def vmm(self, v_in: ArrayLike) -> NDArray[np.float64]:
        """Output currents (A) of a batch of input vectors (B, rows) in volts: sum_i v_i G_ij, read noise included."""
        v = np.atleast_2d(np.asarray(v_in, float))
        if v.shape[1] != self.shape[0] or not np.all(np.isfinite(v)):
            raise ValueError(f"inputs must be finite with {self.shape[0]} entries per vector, got shape {v.shape}")
        self._age()
        mean = v @ self.g
        var = (v * v) @ (self.g * self._sigma()) ** 2
        self.time_s += v.shape[0] * self.params.t_read
        self.read_count += v.shape[0]
        if self.aging is not None:
            self.aging.on_read(None)
        return mean + np.sqrt(var) * self.rng.standard_normal(mean.shape)

    def _sigma(self) -> NDArray[np.float64]:
        return self.params.read_noise_scale * self._model.read_noise_rel(self.g + self.params.g_floor)


__all__ = ["WindowArray", "WindowParams"]
