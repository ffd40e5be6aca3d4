"""What the service loop needs from a chip: VMMs, writes, reads, a local scan, and the clock.

The loop speaks only to this interface. :class:`WindowEngine` runs it on window-level
simulated arrays (:class:`simulated_bench.window_array.WindowArray`), fast enough for
studies of 1e5+ VMMs and a simulated week. The local re-scan is the scan protocol's
procedure (one SET to the top of the window, read, one RESET, read, classify, restore
the working cells) expressed with the same write and read primitives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from numpy.typing import NDArray

from simulated_bench.aging import AgingParams
from simulated_bench.window_array import WindowArray, WindowParams

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class EngineParams:
    """Input range and read averaging (SI units), and what a bench operation costs in bench time.

    The times are an estimate for one bench: the 2450 SMU on READ, the 81160A on PULSE and the
    AB64 board (115,200-baud serial) routing them, sensing every bit line and running the VMMs
    (``examples/service/dft64_bench.yaml``, the through-bench service figures' bench). They are
    what that bench's instrument emulators charge their bench clock
    (:mod:`simulated_bench.instruments.clock`: link latency and bytes, sensing, settling,
    pulses) for exactly what :class:`protocols.service_engine.BenchEngine` sends, measured by
    :func:`protocols.service_engine.measure_op_costs` on a 64 x 66 block (``g_max`` 150 uS);
    ``tests/test_service_costs.py`` re-measures them, so the two cannot drift apart:

    * a VMM read is one ``VMM?`` with 64 inputs and 66 currents, about 1,560 bytes on the serial
      link, so the transfer (not the 200 us of sensing) sets it: 0.140 s (0.1375-0.1427 s with
      the signs of the values);
    * a row read is the 2450's reading of one row through the board, ``n_read`` averaged, per read;
    * a pulse is one pulse of a repair-like write (a few cells per row) with its share of ISPP's
      verify reads and the 81160A's set-up; a full-array write is cheaper per pulse (~7 ms).

    Another bench (a B2902A, the 2636B + 707B matrix) costs differently: measure it with
    ``measure_op_costs`` and pass the result.
    """

    v_in: float = 0.2  #: V, largest input on a source line
    n_read: int = 4  #: reads averaged for a read-back
    n_vmm: int = 4  #: reads averaged per VMM (protocols.matrix.MatrixParams.n_vmm)
    t_pulse_op: float = 12.4e-3  #: s of bench time per ISPP pulse (with its share of verify reads)
    t_read_op: float = 19.8e-3  #: s of bench time per row read (one of n_read)
    t_vmm_op: float = 0.140  #: s of bench time per VMM read (one parallel read of all bit lines)

    def __post_init__(self) -> None:
        if self.v_in <= 0 or self.n_read < 1 or self.n_vmm < 1:
            raise ValueError("v_in > 0, n_read >= 1 and n_vmm >= 1 required")
        times = (self.t_pulse_op, self.t_read_op, self.t_vmm_op)
        if not all(np.isfinite(t) and t >= 0 for t in times):
            raise ValueError(f"operation times must be finite and >= 0 s, got {times}")


class WindowEngine:
    """Named window-level arrays behind the engine interface; counts pulses and bench time."""

    def __init__(self, arrays: Mapping[str, WindowArray], params: EngineParams | None = None):
        self.arrays = dict(arrays)
        self.p = params or EngineParams()
        self.pulses = 0
        self.bench_time_s = 0.0

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """Array name -> (rows, cols)."""
        return {name: a.shape for name, a in self.arrays.items()}

    def true_conductance(self, array: str) -> FloatArray:
        """The simulated chip's noise-free conductances of ``array`` (S): ground truth for figures only."""
        return self.arrays[array].true_conductance()

    def faults_appeared(self) -> int:
        """Stuck devices the aging chip grew so far, every array."""
        return sum(len(a.aging.events) for a in self.arrays.values() if a.aging is not None)

    @property
    def g_max(self) -> float:
        return next(iter(self.arrays.values())).params.g_max

    def write_model(self, targets: Mapping[str, FloatArray], reads: Mapping[str, FloatArray]) -> dict[str, float]:
        """The repair's write model (:class:`hil.service.refit.RefitParams` fields): the window arrays' own
        physics, a write landing within +-``verify_band`` (Gaussian, sd band / 3, truncated); the programming
        run (``targets``, ``reads``) is not needed to know it."""
        wp = next(iter(self.arrays.values())).params
        return {"band": wp.verify_band, "band_rel": 0.0, "write_sigma": wp.write_sigma, "write_sigma_rel": 0.0,
                "g_offset": 0.0}

    @property
    def time_s(self) -> float:
        return max(a.time_s for a in self.arrays.values())

    def advance(self, hours: float) -> None:
        # one clock for the chip: every array reaches the same time
        t = self.time_s + hours * 3600.0
        for a in self.arrays.values():
            a.advance((t - a.time_s) / 3600.0)

    def vmm(self, array: str, u: FloatArray) -> FloatArray:
        """Signed inputs (B, rows) in any unit -> outputs (B, cols) in the same unit x S (scaled to v_in and back).

        An all-zero vector is not sent: its output is 0 exactly, it costs no bench time and does not read
        (age, disturb) the array, as :class:`protocols.service_engine.BenchEngine` skips it on a bench."""
        u = np.atleast_2d(np.asarray(u, float))
        peak = np.abs(u).max(axis=1)
        live = peak > 0
        out = np.zeros((u.shape[0], self.arrays[array].shape[1]))
        if live.any():
            c = self.p.v_in / peak[live, None]  # volts per input unit
            arr = self.arrays[array]
            out[live] = np.mean([arr.vmm(u[live] * c) for _ in range(self.p.n_vmm)], axis=0) / c
        self.bench_time_s += int(live.sum()) * self.p.n_vmm * self.p.t_vmm_op
        return out

    def write(self, array: str, targets: FloatArray) -> int:
        """Write-and-verify the finite targets (S); NaN cells are left alone. Returns pulses."""
        pulses, _ = self.arrays[array].write(targets)
        self.pulses += pulses
        self.bench_time_s += pulses * self.p.t_pulse_op
        return pulses

    def read(self, array: str, rows: NDArray[np.intp] | None = None) -> FloatArray:
        """Read-back conductances (S) of the array, averaged over n_read reads."""
        arr = self.arrays[array]
        g = arr.read(self.p.n_read)
        n_rows = arr.shape[0] if rows is None else len(rows)
        self.bench_time_s += n_rows * self.p.n_read * self.p.t_read_op
        return g

    def scan(self, array: str, rows: NDArray[np.intp], cols: NDArray[np.intp], restore: FloatArray
             ) -> tuple[NDArray[np.int8], int]:
        """Local stuck-device scan of a window, restoring working cells to ``restore`` (S). Returns codes, pulses."""
        arr = self.arrays[array]
        g_max = arr.params.g_max
        shape = arr.shape
        sel = np.zeros(shape, bool)
        sel[np.ix_(rows, cols)] = True
        pulses = self.write(array, np.where(sel, g_max, np.nan))
        g_set = self.read(array, rows)[np.ix_(rows, cols)]
        pulses += self.write(array, np.where(sel, 0.0, np.nan))
        g_reset = self.read(array, rows)[np.ix_(rows, cols)]
        moved = (g_set - g_reset) > 0.5 * g_max
        codes = np.where(moved, 0, np.where((g_set + g_reset) / 2 > 0.5 * g_max, 2, 1)).astype(np.int8)
        back = np.full(shape, np.nan)
        win = np.asarray(restore, float)[np.ix_(rows, cols)]
        back[np.ix_(rows, cols)] = np.where(codes == 0, win, np.nan)
        pulses += self.write(array, back)
        return codes, pulses


def window_chip(shapes: Mapping[str, tuple[int, int]], fault_rate: float, aging: AgingParams | None, seed: int,
                read_noise_scale: float = 1.0) -> dict[str, WindowArray]:
    """A simulated window-level chip: one array per name, ``fault_rate`` of its devices stuck-OFF, seeded."""
    params = WindowParams(read_noise_scale=read_noise_scale)
    arrays = {}
    for i, (name, shape) in enumerate(shapes.items()):
        rng = np.random.default_rng([seed, i, 7])
        codes = (rng.random(shape) < fault_rate).astype(np.int8)  # stuck-OFF
        arrays[name] = WindowArray(*shape, params, codes, aging, seed=[seed, i])
    return arrays


__all__ = ["EngineParams", "WindowEngine", "window_chip"]
