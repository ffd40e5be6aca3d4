"""ISPP's bench-free half: ladders, parameters and presets, level calibration data, the
per-cell state machine and the grouping of cells that need the same pulse.

Nothing here touches a bench; :mod:`protocols.ispp` runs it on one. The state machine
(:class:`CellProgrammer`) takes the reads of the active cells and returns which cells
to pulse with which polarity, amplitude and gate (seed 004 Fig. 5B, seed 003 Methods).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hil.roles import TUNE_CONVERGED, TUNE_EXHAUSTED, TUNE_PENDING, TUNE_UNRESPONSIVE, TuneResult, TuneRule

PENDING, CONVERGED, EXHAUSTED, UNRESPONSIVE = TUNE_PENDING, TUNE_CONVERGED, TUNE_EXHAUSTED, TUNE_UNRESPONSIVE
SKIPPED = 4
STATUS_NAMES = {PENDING: "pending", CONVERGED: "converged", EXHAUSTED: "exhausted",
                UNRESPONSIVE: "unresponsive", SKIPPED: "skipped"}
SET, RESET = 1, -1



@dataclass(frozen=True)
class Ladder:
    """Drive of one polarity as a table of rungs: rung k applies ``amps[k]`` V at gate ``gates[k]`` V.

    Amplitudes are magnitudes (RESET pulses are sent negative); rungs must not weaken
    the drive. Build one with :meth:`linear` (fixed increments, seed 004's Delta V) or
    :meth:`overdrive` (gate rungs geometric in V_G - V_th, so each rung moves a
    compliance-limited SET level by about the same fraction).
    """

    amps: tuple[float, ...]
    gates: tuple[float, ...]
    width: float = 1e-6  # s

    def __post_init__(self) -> None:
        amps = tuple(round(float(a), 6) for a in np.broadcast_to(self.amps, np.shape(self.gates) or np.shape(self.amps)))
        gates = tuple(round(float(g), 6) for g in np.broadcast_to(self.gates, (len(amps),)))
        object.__setattr__(self, "amps", amps)
        object.__setattr__(self, "gates", gates)
        a, g = np.array(amps), np.array(gates)
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(g)) and np.isfinite(self.width)):
            raise ValueError("ladder amplitudes, gate voltages and width must be finite numbers")
        if a.size < 2 or np.any(a <= 0) or np.any(g <= 0):
            raise ValueError("a ladder needs at least two rungs with positive amplitudes and gate voltages")
        if np.any(np.diff(a) < 0) or np.any(np.diff(g) < 0) or not np.all((np.diff(a) > 0) | (np.diff(g) > 0)):
            raise ValueError("every rung must strengthen the drive (amplitude or gate up, neither down)")
        if self.width <= 0:
            raise ValueError(f"pulse width must be positive, got {self.width}")

    @classmethod
    def linear(cls, amp_start: float, amp_step: float, amp_max: float, gate_start: float, gate_step: float = 0.0,
               gate_max: float | None = None, width: float = 1e-6) -> "Ladder":
        """Plain ISPP: amplitude (and optionally gate) up by fixed increments until their maxima."""
        gate_max = gate_start if gate_max is None else gate_max
        n_a = int(np.ceil((amp_max - amp_start) / amp_step - 1e-9)) if amp_step > 0 else 0
        n_g = int(np.ceil((gate_max - gate_start) / gate_step - 1e-9)) if gate_step > 0 else 0
        k = np.arange(max(n_a, n_g) + 1)
        return cls(tuple(np.minimum(amp_start + k * amp_step, amp_max)),
                   tuple(np.minimum(gate_start + k * gate_step, gate_max)), width)

    @classmethod
    def overdrive(cls, amp: float, gate_start: float, gate_max: float, v_th: float, ratio: float,
                  width: float = 1e-6) -> "Ladder":
        """Fixed amplitude, gate rungs with V_G - V_th growing by ``ratio`` per rung (compliance stepping)."""
        if not (gate_start > v_th and ratio > 1 and gate_max > gate_start):
            raise ValueError("need gate_max > gate_start > v_th and ratio > 1")
        n = int(np.ceil(np.log((gate_max - v_th) / (gate_start - v_th)) / np.log(ratio))) + 1
        gates = np.minimum(v_th + (gate_start - v_th) * ratio ** np.arange(n), gate_max)
        gates = np.unique(np.round(gates, 4))
        return cls(tuple(np.full(gates.size, amp)), tuple(gates), width)

    @property
    def n_rungs(self) -> int:
        return len(self.amps)

    def drive(self, k: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(amplitude, gate) of rung(s) ``k`` (clipped to the ladder)."""
        k = np.clip(np.asarray(k, dtype=np.intp), 0, self.n_rungs - 1)
        return np.asarray(self.amps)[k], np.asarray(self.gates)[k]

    def at_top(self, k: ArrayLike) -> NDArray[np.bool_]:
        return np.asarray(k) >= self.n_rungs - 1


@dataclass(frozen=True)
class ISPPParams:
    """Write-and-verify settings (SI units). Defaults: seed 003's 0.2 V read, a 3 % band."""

    set_ladder: Ladder
    reset_ladder: Ladder
    tol_rel: float = 0.03  # band half-width as a fraction of the target
    tol_abs: float = 0.0  # S, band half-width floor (seed 003: 15e-6)
    v_read: float = 0.2  # V
    read_gate: float = 3.0  # V on the word line while reading
    n_read: int = 1  # reads averaged per verify
    max_pulses: int = 60  # per cell and pass
    passes: int = 2  # array-level passes (the later ones re-program drifted / failed cells)
    step_growth: float = 2.0  # rung-step factor while pulses barely move a cell (1 = plain ISPP)
    max_step_rungs: int = 32
    slow_fraction: float = 0.3  # "barely moves": less than this fraction of the remaining log-distance
    stall_pulses: int = 3  # pulses at the top rung without change before giving up
    stall_rel: float = 0.05  # relative change counted as "no change" at the top rung
    response_rel: float = 0.5  # a cell whose reads never spread by this much has not responded at all
    start_margin: float = 2.0  # calibrated start aims this many tolerances short of the target
    accept_fraction: float = 1.0  # a cell stops inside this fraction of the band (guard band against read noise)
    #: relative sigma of one read of the device (its intrinsic noise). When set, a cell counts as
    #: converged only once the mean of its repeated verify reads lies in the acceptance band by
    #: ``confirm_z`` standard errors; 0 keeps the plain rule (two consecutive reads in the band)
    read_noise_rel: float = 0.0
    confirm_z: float = 2.0
    max_verify_reads: int = 6  # verify reads of one state before an undecided cell is pulsed
    #: the verify between passes re-reads every finished cell, also those an instrument confirmed in band
    #: during the pass itself (:meth:`hil.bench.Bench.tune_row`: two or more reads of one state, the last
    #: of them in the band, after the cell's last pulse). False: those cells stand on that confirmation,
    #: which saves a read and, on a switch matrix, a relay switch per cell; a check for drift or disturb
    #: after the confirmation is then left to a later read (a resumed run re-reads them too). Cells the
    #: host's row loop confirmed are always re-read.
    reread_instrument_confirmed: bool = False
    #: S, (low, high) read conductance the ladders can reach reliably; targets outside are refused
    #: (or clipped on request); None: no check
    g_window: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not np.isfinite(value):
                raise ValueError(f"ISPP parameter {f.name} must be a finite number, got {value!r}")
        if self.g_window is not None and not np.all(np.isfinite(self.g_window)):
            raise ValueError(f"g_window must hold finite conductances, got {self.g_window}")
        if self.tol_rel < 0 or self.tol_abs < 0 or (self.tol_rel == 0 and self.tol_abs == 0):
            raise ValueError("need a positive tolerance (tol_rel and/or tol_abs)")
        if self.tol_rel >= 1:
            raise ValueError(f"tol_rel must be below 1 (a band of +-100 % accepts any conductance), got {self.tol_rel}")
        if self.n_read < 1 or self.max_pulses < 1 or self.passes < 1 or self.stall_pulses < 1:
            raise ValueError("n_read, max_pulses, passes and stall_pulses must be >= 1")
        if self.step_growth < 1:
            raise ValueError("step_growth must be >= 1")
        if not 0 < self.accept_fraction <= 1:
            raise ValueError("accept_fraction must lie in (0, 1]")
        if self.read_noise_rel < 0 or self.confirm_z < 0 or self.max_verify_reads < 2:
            raise ValueError("need read_noise_rel >= 0, confirm_z >= 0 and max_verify_reads >= 2")
        if self.g_window is not None and not 0 <= self.g_window[0] < self.g_window[1]:
            raise ValueError(f"g_window must be (low, high) with 0 <= low < high, got {self.g_window}")

    def band(self, target: ArrayLike, fraction: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Tolerance band (S) around ``target``; ``fraction`` < 1 gives the narrower acceptance band."""
        t = np.asarray(target, dtype=float)
        half = fraction * np.maximum(self.tol_rel * t, self.tol_abs)
        return t - half, t + half

    def ladder(self, polarity: int) -> Ladder:
        return self.set_ladder if polarity == SET else self.reset_ladder

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def tune_rule(self) -> TuneRule:
        """These settings as the rule an instrument runs (:meth:`hil.bench.Bench.tune_row`): the same
        per-cell decisions as :class:`CellProgrammer` (``drivers.keithley2600b.TUNE_LINES`` is that
        rule in TSP; ``tests/test_on_instrument_tuning.py`` checks both reach the same outcome).

        What cannot be the same: the instrument tunes a row's cells one after another, each
        pulse from the read SMU through the read route (a cell's pulses are not shared with
        its row, and the SMU times widths from 100 us, with its current compliance); a RESET
        drives the bit line to -amplitude with the word line at gate - amplitude, the cell
        voltages of the host's source-line pulse (the access transistor's body sees another
        bias on a real chip); it decides on full-precision readings where the host sees the
        printed ones (7 digits); and a record's ``iteration`` counts the cell's own reads.
        """
        s, r = self.set_ladder, self.reset_ladder
        return TuneRule(s.amps, s.gates, s.width, r.amps, r.gates, r.width, self.v_read, self.read_gate, self.tol_rel,
                        self.tol_abs, self.accept_fraction, self.n_read, self.step_growth, self.max_step_rungs,
                        self.slow_fraction, self.stall_pulses, self.stall_rel, self.response_rel,
                        self.read_noise_rel, self.confirm_z, self.max_verify_reads)


#: Presets per device model (the bench file names the model of a simulated chip).
#: Stanford gap model in a 1T1R: the SET level follows the gate (compliance), the RESET
#: level the amplitude; both need fine rungs at low conductance.
STANFORD_ISPP = ISPPParams(
    set_ladder=Ladder.overdrive(amp=2.0, gate_start=0.85, gate_max=2.6, v_th=0.7, ratio=1.012, width=1e-6),
    reset_ladder=Ladder.linear(amp_start=1.0, amp_step=0.004, amp_max=2.0, gate_start=4.0, width=1e-6),
    # 50 mV reads (seed 004's read voltage) keep a row of high-conductance cells under the
    # read source's compliance; four reads per verify and stopping in the inner 80 % of the
    # band keep read noise from finishing a cell that is really outside it
    v_read=0.05, n_read=4, accept_fraction=0.8,
    # below ~10 uS the SET rungs overshoot and RESET is abrupt; above ~1 mS the gate ladder tops out
    g_window=(10e-6, 1e-3),
)
#: Seed 004's Cu:Te device: gate fixed at 3 V, amplitude in 10 mV rungs (its Delta V = 0.01 V).
CUTE_ISPP = ISPPParams(
    set_ladder=Ladder.linear(amp_start=0.6, amp_step=0.01, amp_max=2.0, gate_start=3.0, width=1e-3),
    reset_ladder=Ladder.linear(amp_start=0.5, amp_step=0.01, amp_max=2.0, gate_start=3.0, width=1e-3),
    # seed 004 Fig. 2: 5.7-200 uS, read through the W/L 65 transistor with each cell's own window
    g_window=(6e-6, 185e-6),
    # seed 004 section 3.2: the device's intrinsic noise is about 2 %
    read_noise_rel=0.02,
)
PRESETS = {"stanford_gap": STANFORD_ISPP, "cute_multilevel": CUTE_ISPP}


# --- calibration ----------------------------------------------------------------------------
@dataclass
class LevelCalibration:
    """Median level (S) a cell reads after rung k of each ladder, approached from the far end."""

    set_rungs: NDArray[np.float64]
    set_levels: NDArray[np.float64]
    reset_rungs: NDArray[np.float64]
    reset_levels: NDArray[np.float64]

    def start_rung(self, target: ArrayLike, polarity: int, margin_rel: float) -> NDArray[np.float64]:
        """Rung whose level lands ``margin_rel`` short of ``target`` (log-interpolated between measured rungs)."""
        t = np.atleast_1d(np.asarray(target, dtype=float))
        if polarity == SET:
            rungs, levels, aim = self.set_rungs, np.maximum.accumulate(self.set_levels), t * (1 - margin_rel)
        else:
            # RESET levels fall along the rungs: flip them so the interpolation sees a rising curve
            rungs, levels, aim = self.reset_rungs, np.minimum.accumulate(self.reset_levels), t * (1 + margin_rel)
            rungs, levels = rungs[::-1], levels[::-1]
        x = np.log(np.maximum(levels, 1e-15))
        k = np.interp(np.log(np.maximum(aim, 1e-15)), x, rungs)
        # round toward the weaker rung, so the first pulse stops short of the target
        return np.clip(np.floor(k), 0, rungs.max())

    def to_array(self) -> NDArray[np.float64]:
        n = max(len(self.set_rungs), len(self.reset_rungs))
        out = np.full((4, n), np.nan)
        for i, a in enumerate((self.set_rungs, self.set_levels, self.reset_rungs, self.reset_levels)):
            out[i, :len(a)] = a
        return out

    @classmethod
    def from_array(cls, arr: NDArray) -> "LevelCalibration":
        rows = [a[np.isfinite(a)] for a in np.asarray(arr, dtype=float)]
        return cls(*rows)



# --- the vectorised state machine -----------------------------------------------------------------
class CellProgrammer:
    """ISPP state of n cells; :meth:`decide` turns their reads into the next pulses.

    Pure bookkeeping (no bench): feed it the reads of the active cells, get back which
    cells to pulse with which polarity, amplitude and gate.
    """

    def __init__(self, targets: ArrayLike, p: ISPPParams, calibration: LevelCalibration | None = None):
        self.p = p
        self.target = np.asarray(targets, dtype=float).ravel()
        n = self.target.size
        self.lo, self.hi = p.band(self.target, p.accept_fraction)  # where a climb stops
        self.drift_lo, self.drift_hi = p.band(self.target)  # where a later pass leaves a cell alone
        self.status = np.where(np.isfinite(self.target), PENDING, SKIPPED).astype(np.int8)
        self.streak_n = np.zeros(n, np.int32)  # reads of the present state (no pulse since)
        self.streak_sum = np.zeros(n)
        self.last_pol = np.zeros(n, np.int8)  # polarity of the current ladder climb
        self.pulsed_last = np.zeros(n, bool)  # a pulse followed the previous read
        self.rung = np.zeros(n)
        self.step = np.ones(n)  # rungs per step
        self.pulses = np.zeros(n, np.int32)
        self.reversals = np.zeros(n, np.int32)
        self.stall = np.zeros(n, np.int32)
        self.g_prev = np.full(n, np.nan)
        self.g_last = np.full(n, np.nan)
        self.g_min = np.full(n, np.inf)
        self.g_max = np.full(n, -np.inf)
        margin = p.start_margin * p.tol_rel
        self.start = {pol: np.zeros(n) for pol in (SET, RESET)}
        if calibration is not None:
            safe = np.where(np.isfinite(self.target), self.target, 1.0)
            for pol in (SET, RESET):
                self.start[pol] = calibration.start_rung(safe, pol, margin)

    @property
    def active(self) -> NDArray[np.bool_]:
        return self.status == PENDING

    def new_pass(self, g: ArrayLike) -> NDArray[np.bool_]:
        """Re-open finished cells whose read ``g`` left the band (drift) or that failed; reset budgets."""
        g = np.asarray(g, dtype=float)
        out = np.isfinite(g) & ((g < self.drift_lo) | (g > self.drift_hi))
        reopen = ((self.status == CONVERGED) & out) | (self.status == EXHAUSTED)
        self.status[reopen] = PENDING
        self.streak_n[reopen] = 0
        self.streak_sum[reopen] = 0.0
        self.last_pol[reopen] = 0
        self.pulsed_last[reopen] = False
        self.stall[reopen] = 0
        self.budget_base = self.pulses.copy()
        self.g_last = np.where(np.isfinite(g), g, self.g_last)
        return reopen

    def budget_left(self, idx: NDArray[np.intp]) -> NDArray[np.int64]:
        """Pulses cells ``idx`` may still get in this pass."""
        base = getattr(self, "budget_base", np.zeros(self.target.size, np.int32))
        return np.maximum(self.p.max_pulses - (self.pulses[idx] - base[idx]), 0).astype(np.int64)

    def spread(self, idx: NDArray[np.intp]) -> NDArray[np.float64]:
        """(lowest, highest) read of cells ``idx`` so far (S; NaN: never read), shape (len(idx), 2)."""
        lo, hi = self.g_min[idx], self.g_max[idx]
        seen = np.isfinite(lo) & np.isfinite(hi)
        return np.stack([np.where(seen, lo, np.nan), np.where(seen, hi, np.nan)], axis=1)

    def absorb(self, idx: NDArray[np.intp], res: TuneResult) -> None:
        """Outcome of cells ``idx`` tuned elsewhere with this machine's rule (an instrument's
        :meth:`~hil.bench.Bench.tune_row`): their state continues as if :meth:`decide` had run them."""
        self.status[idx] = res.status
        self.pulses[idx] += res.pulses
        self.reversals[idx] += res.reversals
        self.g_last[idx] = res.g_final
        self.g_prev[idx] = res.g_final
        self.g_min[idx] = np.minimum(self.g_min[idx], res.g_min)
        self.g_max[idx] = np.maximum(self.g_max[idx], res.g_max)
        self.streak_n[idx] = 0
        self.streak_sum[idx] = 0.0
        self.last_pol[idx] = 0
        self.pulsed_last[idx] = False
        self.stall[idx] = 0

    def decide(self, g: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.int8], NDArray[np.float64], NDArray[np.float64]]:
        """Reads of the active cells (NaN elsewhere) -> (pulse?, polarity, amplitude V, gate V) per cell."""
        p = self.p
        g = np.asarray(g, dtype=float)
        a = self.active & np.isfinite(g)
        n = g.size
        self.g_last[a] = g[a]
        self.g_min[a] = np.minimum(self.g_min[a], g[a])
        self.g_max[a] = np.maximum(self.g_max[a], g[a])
        with np.errstate(divide="ignore", invalid="ignore"):
            moved = np.abs(np.log(g / self.g_prev))
            remaining = np.abs(np.log(self.g_prev / self.target))
        had_pulse = a & self.pulsed_last & np.isfinite(moved)

        # repeated reads of one state (no pulse between them) are pooled: read noise must
        # not finish a cell that is really outside the band
        fresh = a & self.pulsed_last
        self.streak_n[fresh] = 0
        self.streak_sum[fresh] = 0.0
        self.streak_n[a] += 1
        self.streak_sum[a] += g[a]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.streak_sum / self.streak_n
            sem = self.target * p.read_noise_rel / np.sqrt(p.n_read * self.streak_n)
        half = 0.5 * (self.hi - self.lo)
        inband = a & (g >= self.lo) & (g <= self.hi)
        mean_in = np.abs(mean - self.target) <= half
        confirmed = inband & (self.streak_n >= 2) & mean_in & (np.abs(mean - self.target) + p.confirm_z * sem <= half)
        self.status[confirmed] = CONVERGED
        # in the band (or pooling toward it) but not yet sure: read again without a pulse
        # with no noise model an out-of-band read is believed at once (the plain rule)
        pooling = mean_in & (self.streak_n >= 2) & (p.read_noise_rel > 0)
        undecided = a & ~confirmed & (inband | pooling) & (self.streak_n < p.max_verify_reads)
        need = a & ~confirmed & ~undecided
        below = np.where(inband | pooling, mean < self.target, g < self.lo)
        pol = np.where(below, SET, RESET).astype(np.int8)

        base = getattr(self, "budget_base", np.zeros(n, np.int32))
        broke = need & (self.pulses - base >= p.max_pulses)
        self.status[broke] = EXHAUSTED
        need &= ~broke

        rev = need & (pol != self.last_pol)
        cont = need & ~rev
        self.reversals += (rev & (self.last_pol != 0)).astype(np.int32)
        # the step grows while a climb barely moves the cell and shrinks back once it does
        slow = cont & had_pulse & (moved < p.slow_fraction * np.maximum(remaining, 1e-12))
        fast = cont & had_pulse & ~slow
        self.step[slow] = np.minimum(self.step[slow] * p.step_growth, p.max_step_rungs)
        self.step[fast] = np.maximum(self.step[fast] / p.step_growth, 1.0)
        # stall: already at the top rung and the last pulse changed nothing
        top = np.zeros(n, bool)
        for s in (SET, RESET):
            sel = cont & (pol == s)
            top[sel] = self.p.ladder(s).at_top(self.rung[sel])
        still = cont & top & had_pulse & (moved < p.stall_rel)
        self.stall[still] += 1
        self.stall[cont & ~still] = 0
        stuck = cont & (self.stall >= p.stall_pulses)
        with np.errstate(invalid="ignore"):
            responded = self.g_max / np.maximum(self.g_min, 1e-300) > 1 + p.response_rel
        self.status[stuck] = np.where(responded[stuck], EXHAUSTED, UNRESPONSIVE)
        need &= ~stuck
        cont &= ~stuck

        for s in (SET, RESET):
            r = rev & (pol == s)
            self.rung[r] = self.start[s][r]
            self.step[r] = 1.0
            self.stall[r] = 0
        self.rung[cont] = self.rung[cont] + np.floor(self.step[cont])
        amp = np.zeros(n)
        gate = np.zeros(n)
        for s in (SET, RESET):
            sel = need & (pol == s)
            lad = p.ladder(s)
            self.rung[sel] = np.minimum(self.rung[sel], lad.n_rungs - 1)
            amp[sel], gate[sel] = lad.drive(self.rung[sel])
        self.last_pol[need] = pol[need]
        self.pulsed_last = need.copy()
        self.g_prev = np.where(a, g, self.g_prev)
        self.pulses += need.astype(np.int32)
        return need, np.where(need, pol, 0).astype(np.int8), amp, gate


def group_pulses(need: NDArray[np.bool_], pol: NDArray, amp: NDArray, gate: NDArray) -> list[tuple[int, float, float, NDArray[np.intp]]]:
    """Cells needing the same pulse: list of (polarity, amplitude, gate, cell indices)."""
    idx = np.nonzero(need)[0]
    if idx.size == 0:
        return []
    keys = np.stack([pol[idx].astype(float), amp[idx], gate[idx]], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    return [(int(u[0]), float(u[1]), float(u[2]), idx[inv == k]) for k, u in enumerate(uniq)]



def check_window(targets: NDArray[np.float64], window: tuple[float, float] | None,
                 policy: str = "raise") -> NDArray[np.float64]:
    """Targets (S) checked against the programmable ``window``: refused, or clipped with ``policy="clip"``."""
    if policy not in ("raise", "clip"):
        raise ValueError(f"out_of_window must be 'raise' or 'clip', got {policy!r}")
    if np.any(np.isinf(targets)) or np.any(targets[np.isfinite(targets)] <= 0):
        raise ValueError("targets must be positive conductances in siemens (NaN leaves a cell alone)")
    if window is None:
        return targets
    lo, hi = window
    outside = np.isfinite(targets) & ((targets < lo) | (targets > hi))
    if not outside.any():
        return targets
    if policy == "clip":
        return np.where(outside, np.clip(targets, lo, hi), targets)
    r, c = np.argwhere(outside)[0]
    raise ValueError(f"{int(outside.sum())} target(s) outside the programmable window [{lo:.3g}, {hi:.3g}] S "
                     f"(first: {targets[r, c]:.3g} S at ({r}, {c})); map them into the window, "
                     f"or pass out_of_window='clip'")

