"""Roles every source-measure unit serves the same way: a voltage source with current
compliance (configured on first use, levels sent only when they change), the word-line
supply and pulser built on it, and the column-by-column reader of benches without a
per-line sense. A model's plug-in supplies the few instrument-specific steps by
subclassing :class:`VoltageSource`.
"""
from __future__ import annotations

import abc
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from drivers.errors import InstrumentError

from ..roles import GateSupply, LimitError, Pulser, Reader, Selector, TuneResult, TuneRule


#: a column reading at or above this fraction of the compliance has its trip status read
TRIP_CHECK_FRACTION = 0.5


class VoltageSource(abc.ABC):
    """One SMU output used as a voltage source with current compliance ``i_compliance`` (A)."""

    #: True when the instrument runs pulse-then-read trains itself (:meth:`pulse_read`)
    can_pulse_read: bool = False
    #: s, (shortest, longest) pulse the SMU times; None when it times none
    pulse_width_range: tuple[float, float] | None = None
    #: most pulses :meth:`arm` takes in one list on the addresser's triggers; 0 when it takes none
    armed_list_max: int = 0
    #: True when the instrument runs a row's write-and-verify and scan itself, routing each cell
    #: through a selector it reaches over its own link (:meth:`tune_cells`, :meth:`sweep_cells`)
    can_tune: bool = False
    #: pulses one cell may be given in one on-instrument tuning call
    max_tune_pulses: int = 0

    def __init__(self, station, name: str, channel: str, i_compliance: float):
        self.station, self.name, self.channel_name = station, name, channel
        self.driver: Any = station.drivers[name]
        self.i_compliance = i_compliance
        station.cached(self._forget)
        self._forget()

    def _forget(self) -> None:
        self._ready = False
        self._v: float | None = None

    # model-specific steps ------------------------------------------------------------------
    @abc.abstractmethod
    def _configure(self, v: float) -> None:
        """Voltage source, compliance, fast integration, level ``v``, output on; errors raised."""

    @abc.abstractmethod
    def _set_level(self, v: float) -> None:
        """New level, confirmed in place before returning (other instruments act next)."""

    @abc.abstractmethod
    def _measure_current(self) -> float:
        """One current reading (A)."""

    @abc.abstractmethod
    def _tripped(self) -> bool:
        """The instrument's compliance (trip) status for the last measurement."""

    def _measure_current_and_trip(self) -> tuple[float, bool | None]:
        """One current reading (A) and, where the command set returns it in the same transfer, the
        compliance status with it (None: not that way)."""
        return self._measure_current(), None

    def _pulse(self, level: float, width: float) -> None:
        raise InstrumentError(self.station.describe(self.name), "this SMU cannot time pulses on this bench")

    # the role ---------------------------------------------------------------------------------
    def source(self, v: float) -> None:
        """Drive ``v`` volts (output on); returns once the level is in place."""
        if self._ready and v == self._v:
            return
        with self.station.guard(self.name, f"sourcing {v:g} V"):
            if not self._ready:
                self._configure(v)
                self._ready = True
            else:
                self._set_level(v)
            self._v = v

    def current(self) -> float:
        with self.station.guard(self.name, "measuring current"):
            return float(self._measure_current())

    def current_and_trip(self) -> tuple[float, bool | None]:
        """One current reading (A) and the compliance status that came in the same transfer (None
        where the instrument's command set does not return it so: ask :meth:`tripped`)."""
        with self.station.guard(self.name, "measuring current"):
            i, trip = self._measure_current_and_trip()
        return float(i), None if trip is None else bool(trip)

    def tripped(self) -> bool:
        """True when the output is in current compliance, as the instrument reports it."""
        with self.station.guard(self.name, "reading the compliance status"):
            return bool(self._tripped())

    def pulse(self, level: float, width: float) -> None:
        """A pulse timed by the SMU, back to 0 V after."""
        self.source(0.0)
        with self.station.guard(self.name, f"pulsing {level:g} V for {width:g} s"):
            self._pulse(level, width)

    def _arm(self, levels: Sequence[float], width: float) -> None:
        raise InstrumentError(self.station.describe(self.name), "this SMU takes no external triggers on this bench")

    def arm(self, levels: Sequence[float], width: float) -> None:
        """A pulsed list armed on the trigger input the addresser drives: per trigger edge one pulse
        from 0 V to the next of ``levels`` (V) for ``width`` s."""
        self.source(0.0)
        with self.station.guard(self.name, f"arming {len(levels)} pulses on external triggers"):
            self._arm(levels, width)

    def _pulse_read(self, levels: Sequence[float], width: float, v_read: float) -> Sequence[float]:
        raise InstrumentError(self.station.describe(self.name), "this SMU has no on-instrument pulse-read train")

    def pulse_read(self, levels: Sequence[float], width: float, v_read: float) -> NDArray[np.float64]:
        """Pulse-then-read train run on the instrument: per level one pulse of ``width`` s, then
        one current reading (A) at ``v_read``; the readings come back in one transfer."""
        self.source(0.0)
        with self.station.guard(self.name, f"running a {len(levels)}-pulse pulse-read train"):
            out = np.asarray(self._pulse_read(levels, width, v_read), dtype=float)
        if out.shape != (len(levels),):
            raise InstrumentError(self.station.describe(self.name),
                                  f"returned {out.size} readings for {len(levels)} pulses")
        return out


    def tune_cells(self, gate: "VoltageSource", routes: Sequence[str], link_node: int,
                   g_target: NDArray[np.float64], rule: TuneRule, budgets: NDArray, start_set: NDArray,
                   start_reset: NDArray, g_spread: NDArray) -> TuneResult:
        """Write-and-verify of cells on the instrument, one after another, each reached by
        ``routes[k]`` on the selector at TSP-Link node ``link_node``; the word line from ``gate``
        (a channel of the same instrument). Arguments in S; see :meth:`hil.bench.Bench.tune_row`."""
        raise InstrumentError(self.station.describe(self.name), "this SMU cannot run write-and-verify itself")

    def sweep_cells(self, gate: "VoltageSource", routes: Sequence[str], link_node: int,
                    steps: Sequence[tuple[float, float, float]], v_read: float, read_gate: float,
                    n_read: int) -> NDArray[np.float64]:
        """Per cell: a read, then per (signed amplitude V, gate V, width s) step a pulse and a read,
        run on the instrument; returns the reads in A and whether the source was in compliance at
        each (read by the same script), both of shape (cells, len(steps) + 1)."""
        raise InstrumentError(self.station.describe(self.name), "this SMU cannot run pulse sweeps itself")

    def assume_level(self, v: float) -> None:
        """The instrument left this output (configured, on) at ``v`` volts by itself."""
        if self._ready:
            self._v = v


class ChannelSource(VoltageSource):
    """A source on one channel of a multi-channel SMU whose driver offers pymeasure-style
    ``channel(name)`` objects (``apply_voltage``, ``source_voltage``, ``output_enabled``, ``current``)."""

    def __init__(self, station, name, channel, i_compliance):
        super().__init__(station, name, channel, i_compliance)
        self.ch = self.driver.channel(channel)

    def _configure(self, v: float) -> None:
        self.ch.apply_voltage(self.i_compliance, nplc=0.01)
        self.ch.source_voltage = v
        self.ch.output_enabled = True
        self.driver.raise_errors()

    def _set_level(self, v: float) -> None:
        self.ch.source_voltage = v
        self.driver.ask("*OPC?")

    def _measure_current(self) -> float:
        return self.ch.current

    def _measure_current_and_trip(self) -> tuple[float, bool]:
        return self.ch.current_and_trip()


class SourceGate(GateSupply):
    """Word lines from an SMU output."""

    def __init__(self, source: VoltageSource):
        self.src = source

    def set_gate(self, v_gate: float) -> None:
        self.src.source(v_gate)


class SmuPulser(Pulser):
    """Pulses timed on an SMU (on the PULSE input)."""

    def __init__(self, source: VoltageSource):
        self.src = source

    def check(self, amplitudes, widths) -> None:
        shortest, longest = self.src.pulse_width_range or (0.0, np.inf)
        bad = widths[(widths < shortest) | (widths > longest)]
        if bad.size:
            raise LimitError(f"pulse width {bad[0]:g} s is outside what the SMU times ({shortest:g} to {longest:g} s)")

    def pulse(self, amplitude: float, width: float) -> None:
        self.src.pulse(amplitude, width)

    level_per_trigger = True

    @property
    def can_trigger(self) -> bool:
        return self.src.armed_list_max > 0

    @property
    def max_armed(self) -> int:
        return self.src.armed_list_max

    def arm(self, amplitudes, width: float) -> None:
        self.src.arm([float(a) for a in amplitudes], width)


class ScanReader(Reader):
    """No per-line sense: the read SMU reads the selected columns one at a time."""

    def __init__(self, source: VoltageSource, selector: Selector):
        self.source, self.selector = source, selector
        self._tripped = False

    def read(self, v_read: float, n_cols: int) -> NDArray[np.float64]:
        row, cols = self.selector.row, self.selector.cols
        if row is None or cols is None or len(cols) != n_cols:
            raise RuntimeError("select the cells before reading them")
        self.source.source(v_read)
        out = np.empty(n_cols)
        tripped = False
        near = TRIP_CHECK_FRACTION * self.source.i_compliance
        for k, col in enumerate(cols):
            self.selector.select(row, [col], "read")
            out[k], trip = self.source.current_and_trip()
            # the status came with the reading where the command set allows; else a source in
            # compliance reads (about) its limit: ask the instrument only then
            if trip is None and abs(out[k]) >= near:
                trip = self.source.tripped()
            tripped = bool(trip) or tripped
        self._tripped = tripped
        self.selector.select(row, cols, "read")
        return out

    def tripped(self) -> bool:
        return self._tripped


__all__ = ["VoltageSource", "SourceGate", "SmuPulser", "ScanReader"]
