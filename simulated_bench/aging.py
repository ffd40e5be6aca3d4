"""Chip aging: devices that get stuck with use, conductances that drift after programming, read disturb.

A :class:`ChipAging` attaches to one :class:`~simulated_bench.array.SimulatedArray` and is
told about every operation (pulses, reads) and every passage of time; the array applies
its effects to the cell states before it computes a read. Everything random is drawn
from the aging's own generator, so a seeded chip ages the same way every run.

Three effects, parameters as data:

* new stuck devices (:class:`StuckParams`): a hazard per programming pulse a cell
  receives (endurance) and per hour of operation; a new fault sticks ON or OFF and may
  pull neighbours with it (spatially clustered failures);
* conductance relaxation / drift (:class:`DriftParams`): after a cell is written its
  conductance moves in log time, ``G(t) = G_w * (1 + nu * log10(1 + (t - t_w) / t0))``,
  with ``nu`` drawn per cell and per write (device-to-device and cycle-to-cycle spread).
  Log time makes the change fastest right after write-and-verify stops;
* read disturb (:class:`ReadDisturbParams`): each read nudges the read cells' written
  conductance by a tiny relative amount.

Simulated time is the array's ``time_s`` (advanced by every operation and by
:meth:`SimulatedArray.advance`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

from .faults import STUCK_OFF, STUCK_ON, WORKING

HOUR = 3600.0


@dataclass(frozen=True)
class StuckParams:
    """New stuck devices appearing with use.

    Defaults: HfOx 1T1R cells reach ~1e6-1e9 SET/RESET cycles before they stick
    (Wong et al., "Metal-oxide RRAM", Proc. IEEE 100, 1951 (2012), Table/Fig. on
    endurance), so a per-pulse hazard of 1e-8 makes a fault in ~1e8 pulses; the
    per-hour rate (default 0: off) models field-driven failures of idle devices and is
    what service studies set. About half of end-of-life failures stick in the LRS
    (stuck-ON, oxygen-vacancy filament that no longer ruptures) and half in the HRS
    (Chen et al., "Balancing SET/RESET pulse for >1e10 endurance in HfO2/Hf 1T1R bipolar
    RRAM", IEEE TED 59, 3243 (2012)).
    """

    per_pulse: float = 1e-8  #: probability a working cell sticks per programming pulse it receives
    per_hour: float = 0.0  #: probability a working cell sticks per hour of operation
    on_fraction: float = 0.5  #: fraction of new faults that stick ON (the rest OFF)
    cluster_fraction: float = 0.0  #: fraction of new faults that also hit neighbours
    cluster_radius: float = 1.5  #: cells, neighbours within this distance may follow
    cluster_neighbour_prob: float = 0.5  #: probability each such neighbour sticks too

    def __post_init__(self) -> None:
        for name in ("per_pulse", "per_hour", "on_fraction", "cluster_fraction", "cluster_neighbour_prob"):
            v = getattr(self, name)
            if not (np.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"stuck.{name} must lie in [0, 1], got {v!r}")
        if not (np.isfinite(self.cluster_radius) and self.cluster_radius >= 0):
            raise ValueError(f"stuck.cluster_radius must be >= 0 cells, got {self.cluster_radius!r}")


@dataclass(frozen=True)
class DriftParams:
    """Log-time conductance relaxation after a write.

    Filamentary HfO2 1T1R cells relax by a few per cent per decade of time after
    write-and-verify, most in the first seconds, with a broad device-to-device spread
    of direction and size (Zhao et al., "Investigation of statistical retention of
    filamentary analog RRAM for neuromorphic computing", IEDM 2017; Esmanhotto et al.,
    "High-density 3D monolithically integrated multiple 1T1R multi-level-cell for neural
    networks", IEDM 2020, relaxation within 1 s - 1 h of programming). Defaults: a mean
    relative change of -0.3 % per decade (towards the HRS) with 0.5 % spread, from t0 = 10 ms
    (a week after a write is ~7.8 decades: -2.3 % mean, 3.9 % spread).
    """

    nu_mean: float = -0.003  #: mean relative conductance change per decade of time
    nu_sigma: float = 0.005  #: device-to-device (and write-to-write) spread of it
    t0: float = 1e-2  #: s, onset of the log-time regime after the last pulse

    def __post_init__(self) -> None:
        if not (np.isfinite(self.nu_mean) and abs(self.nu_mean) < 1):
            raise ValueError(f"drift.nu_mean must be a finite fraction per decade, got {self.nu_mean!r}")
        if not (np.isfinite(self.nu_sigma) and 0 <= self.nu_sigma < 1):
            raise ValueError(f"drift.nu_sigma must lie in [0, 1), got {self.nu_sigma!r}")
        if not (np.isfinite(self.t0) and self.t0 > 0):
            raise ValueError(f"drift.t0 must be > 0 s, got {self.t0!r}")


@dataclass(frozen=True)
class ReadDisturbParams:
    """Relative conductance change per read of a cell (default: +1e-8, i.e. 1 % after 1e6 reads).

    Read disturb at 0.1-0.2 V is negligible below ~1e6 reads for HfOx cells (Wong et al.
    2012, as above); the default keeps it small but present.
    """

    per_read: float = 1e-8

    def __post_init__(self) -> None:
        if not (np.isfinite(self.per_read) and abs(self.per_read) < 1e-3):
            raise ValueError(f"read_disturb.per_read must be a small fraction, got {self.per_read!r}")


@dataclass(frozen=True)
class AgingParams:
    """All aging effects of one chip; each can be switched off with ``None``."""

    stuck: StuckParams | None = field(default_factory=StuckParams)
    drift: DriftParams | None = field(default_factory=DriftParams)
    read_disturb: ReadDisturbParams | None = field(default_factory=ReadDisturbParams)

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> "AgingParams":
        """From a bench file's ``chip.aging`` section: ``{stuck: {...}, drift: {...} | null, read_disturb: ...}``."""
        parts = {"stuck": StuckParams, "drift": DriftParams, "read_disturb": ReadDisturbParams}
        unknown = set(spec) - set(parts)
        if unknown:
            raise ValueError(f"unknown aging section(s) {sorted(unknown)}; known: {', '.join(parts)}")
        kwargs = {}
        for name, klass in parts.items():
            if name not in spec:
                continue
            sub = spec[name]
            if sub is None or sub is False:
                kwargs[name] = None
                continue
            if not isinstance(sub, Mapping):
                raise ValueError(f"aging.{name} must be a mapping of {', '.join(KEYS[name])} or null")
            bad = set(sub) - set(KEYS[name])
            if bad:
                raise ValueError(f"aging.{name}: unknown key(s) {sorted(bad)}; known: {', '.join(KEYS[name])}")
            kwargs[name] = klass(**{k: float(v) for k, v in sub.items()})
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return {k: (asdict(v) if v is not None else None) for k, v in
                (("stuck", self.stuck), ("drift", self.drift), ("read_disturb", self.read_disturb))}


#: bench-file keys of each section, defined once from the dataclasses
KEYS = {"stuck": tuple(f.name for f in fields(StuckParams)), "drift": tuple(f.name for f in fields(DriftParams)),
        "read_disturb": tuple(f.name for f in fields(ReadDisturbParams))}


@dataclass
class FaultEvent:
    """A device that got stuck: where, when (simulated s), how, and what caused it."""

    time_s: float
    row: int
    col: int
    code: int
    cause: str  # "pulses" | "hours" | "cluster" | "injected"


class ChipAging:
    """Aging state of one array (shape ``(rows, cols)``): write times, drift rates, hazards, events."""

    def __init__(self, params: AgingParams, shape: tuple[int, int], rng: np.random.Generator | int | None = 0):
        self.params = params
        self.shape = tuple(shape)
        self.rng = np.random.default_rng(rng)
        self.g_written = np.full(self.shape, np.nan)  # S, conductance at the end of the last write
        self.t_written = np.zeros(self.shape)  # s
        self.nu = np.zeros(self.shape)  # relative change per decade since the last write
        self.hazard = np.zeros(self.shape)  # accumulated, not yet drawn
        self.events: list[FaultEvent] = []
        self._last_time = 0.0

    # bookkeeping called by the array ----------------------------------------------------
    def on_write(self, idx: tuple[NDArray, NDArray], g_new: NDArray, time_s: float) -> None:
        """Cells ``idx`` just received a pulse and now hold ``g_new`` (S)."""
        self.g_written[idx] = g_new
        self.t_written[idx] = time_s
        d = self.params.drift
        if d is not None:
            self.nu[idx] = d.nu_mean + d.nu_sigma * self.rng.standard_normal(len(idx[0]))
        s = self.params.stuck
        if s is not None and s.per_pulse > 0:
            np.add.at(self.hazard, idx, s.per_pulse)

    def on_read(self, idx: tuple[NDArray, NDArray] | None) -> None:
        """A read of cells ``idx`` (None: the whole array)."""
        rd = self.params.read_disturb
        if rd is None or rd.per_read == 0:
            return
        sel = np.isfinite(self.g_written) if idx is None else None
        if idx is None:
            self.g_written[sel] *= 1.0 + rd.per_read
        else:
            self.g_written[idx] *= 1.0 + rd.per_read

    def drifted_conductance(self, time_s: float) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        """Cells that were ever written and the conductance (S) they have drifted to by ``time_s``."""
        written = np.isfinite(self.g_written)
        if self.params.drift is None:
            return written, self.g_written
        dt = np.maximum(time_s - self.t_written, 0.0)
        factor = 1.0 + self.nu * np.log10(1.0 + dt / self.params.drift.t0)
        return written, self.g_written * np.maximum(factor, 0.0)

    def new_faults(self, codes: NDArray[np.int8], time_s: float) -> list[FaultEvent]:
        """Draw the stuck devices the accumulated hazard (pulses + elapsed hours) produced; updates ``codes``."""
        s = self.params.stuck
        hours = max(time_s - self._last_time, 0.0) / HOUR
        self._last_time = max(time_s, self._last_time)
        if s is None:
            return []
        from_pulses = self.hazard > s.per_hour * hours  # the dominant cause, for the record
        h = self.hazard + s.per_hour * hours
        self.hazard = np.zeros(self.shape)
        working = codes == WORKING
        p = 1.0 - np.exp(-h)
        hit = working & (self.rng.random(self.shape) < p)
        if not hit.any():
            return []
        cells = np.argwhere(hit)
        stick_on = self.rng.random(len(cells)) < s.on_fraction
        events = []
        for (r, c), on, pulsed in zip(cells, stick_on, from_pulses[hit]):
            code = STUCK_ON if on else STUCK_OFF
            codes[r, c] = code
            events.append(FaultEvent(time_s, int(r), int(c), code, "pulses" if pulsed else "hours"))
        if s.cluster_fraction > 0:
            events += self._clusters(codes, cells, stick_on, time_s)
        self.events += events
        return events

    def _clusters(self, codes, cells, stick_on, time_s) -> list[FaultEvent]:
        s = self.params.stuck
        rows, cols = self.shape
        rad = int(np.ceil(s.cluster_radius))
        out = []
        seeds = self.rng.random(len(cells)) < s.cluster_fraction
        offs = np.array([(dr, dc) for dr in range(-rad, rad + 1) for dc in range(-rad, rad + 1)
                         if (dr, dc) != (0, 0) and np.hypot(dr, dc) <= s.cluster_radius], dtype=int).reshape(-1, 2)
        for (r, c), on, seeded in zip(cells, stick_on, seeds):
            if not seeded or not len(offs):
                continue
            nb = offs + (r, c)
            nb = nb[(nb[:, 0] >= 0) & (nb[:, 0] < rows) & (nb[:, 1] >= 0) & (nb[:, 1] < cols)]
            take = self.rng.random(len(nb)) < s.cluster_neighbour_prob
            for rr, cc in nb[take]:
                if codes[rr, cc] == WORKING:
                    codes[rr, cc] = STUCK_ON if on else STUCK_OFF
                    out.append(FaultEvent(time_s, int(rr), int(cc), int(codes[rr, cc]), "cluster"))
        return out


class AgingClock:
    """Simulated time for an array that ages: ``time_s`` (s) and :meth:`advance`; the array's
    ``_age`` brings its cells up to the present and returns the faults that appeared, its
    ``_pin_stuck`` holds the stuck cells of ``fault_codes`` at their rail."""

    def stick(self, row: int, col: int, code: int) -> None:
        """Make one device stuck now (fault injection for studies, benchmarks and tests); recorded
        among the aging's events (cause ``injected``) when the array ages."""
        if code not in (STUCK_OFF, STUCK_ON):
            raise ValueError(f"code must be {STUCK_OFF} (stuck-OFF) or {STUCK_ON} (stuck-ON), got {code!r}")
        rows, cols = self.fault_codes.shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(f"cell ({row}, {col}) is outside the {rows}x{cols} array")
        self.fault_codes[row, col] = code
        if self.aging is not None:
            self.aging.events.append(FaultEvent(self.time_s, int(row), int(col), int(code), "injected"))
        self._pin_stuck()

    def advance(self, hours: float) -> list[FaultEvent]:
        """Let ``hours`` of idle time pass (drift, new stuck devices); returns the faults that appeared."""
        if not (np.isfinite(hours) and hours >= 0):
            raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
        self.time_s += float(hours) * 3600.0
        return self._age()


__all__ = ["AgingParams", "StuckParams", "DriftParams", "ReadDisturbParams", "ChipAging", "AgingClock", "FaultEvent", "HOUR", "KEYS"]

