"""Keithley 2600B System SourceMeter (2602B/2612B/2636B): two TSP channels that read,
supply word lines and time pulses on the instrument, including the pulse-then-read train."""
from __future__ import annotations

import numpy as np

from drivers.errors import InstrumentError
from drivers.keithley2600b import MAX_TUNE_PULSES, Keithley2600B

from ..roles import TUNE_LOG_DTYPE, TuneResult, TuneRule
from .base import InstrumentPlugin
from .smu import ChannelSource


class Keithley2600BSource(ChannelSource):
    can_pulse_read = True
    # pulses timed by the SMU itself (TSP delay): practical down to ~100 us
    pulse_width_range = (100e-6, 1.0)

    def _forget(self) -> None:
        super()._forget()
        self._ladders = self._linked = None  # the instrument's state is uncertain: load and look again

    def _tripped(self) -> bool:
        return self.driver.ask(f"print(smu{self.channel_name}.source.compliance)").strip().lower() == "true"

    def _pulse(self, level: float, width: float) -> None:
        self.ch.pulse(level, width, rest=0.0)
        self.driver.ask("*OPC?")

    def _pulse_read(self, levels, width, v_read):
        # one TSP function on the instrument; the channel rests at 0 V afterwards
        return self.driver.pulse_read(list(levels), width, v_read, pulse_channel=self.channel_name)

    # the row's write-and-verify and scan as one TSP call (drivers.keithley2600b.TUNE_LINES) -------
    can_tune = True
    max_tune_pulses = MAX_TUNE_PULSES

    def _gate_channel(self, gate) -> str:
        if gate.name != self.name or gate.channel_name == self.channel_name:
            raise ValueError("on-instrument tuning drives the word line from the other channel of the same 2600B")
        return gate.channel_name

    def tune_cells(self, gate, routes, link_node, g_target, rule: TuneRule, budgets, start_set, start_reset,
                   g_spread) -> TuneResult:
        self._check_link(link_node)
        v = rule.v_read
        ladders = ((rule.set_amps, rule.set_gates), (rule.reset_amps, rule.reset_gates))
        if getattr(self, "_ladders", None) != ladders:
            self.driver.load_tuning(*ladders)
            self._ladders = ladders
        driver_rule = {"tol_rel": rule.tol_rel, "tol_abs": rule.tol_abs * abs(v), "accept_fraction": rule.accept_fraction,
                       "n_read": rule.n_read, "v_read": v, "read_gate": rule.read_gate, "width_up": rule.set_width,
                       "width_down": rule.reset_width, "step_growth": rule.step_growth,
                       "max_step_rungs": rule.max_step_rungs, "slow_fraction": rule.slow_fraction,
                       "stall_pulses": rule.stall_pulses, "stall_rel": rule.stall_rel,
                       "response_rel": rule.response_rel, "read_noise_rel": rule.read_noise_rel,
                       "confirm_z": rule.confirm_z, "max_verify_reads": rule.max_verify_reads}
        spread = [(lo * v, hi * v) if np.isfinite(lo) and np.isfinite(hi) else (1e300, -1e300)
                  for lo, hi in np.asarray(g_spread, float)]
        with self.station.guard(self.name, f"tuning {len(routes)} cells on the instrument"):
            try:
                devices = self.driver.tune_cells(list(routes), list(np.asarray(g_target, float) * v), driver_rule,
                                                 list(budgets), list(start_set), list(start_reset), spread,
                                                 source=self.channel_name, gate=self._gate_channel(gate),
                                                 matrix_node=int(link_node))
            finally:  # the script leaves both channels at 0 V (or stopped somewhere unknown)
                self.assume_level(0.0)
                gate.assume_level(0.0)
        logs = []
        for d in devices:
            rec = np.zeros(len(d.log), TUNE_LOG_DTYPE)
            for j, (signed, reading) in enumerate(d.log):
                rec["g"][j] = reading / v
                if signed:
                    pol, k = (1, signed - 1) if signed > 0 else (-1, -signed - 1)
                    amps, gates = ladders[0] if pol > 0 else ladders[1]
                    rec["polarity"][j], rec["rung"][j], rec["amplitude"][j], rec["gate"][j] = pol, k, amps[k], gates[k]
                    rec["width"][j] = rule.set_width if pol > 0 else rule.reset_width
            logs.append(rec)
        with np.errstate(invalid="ignore"):
            lo = np.array([d.lowest for d in devices]) / v
            hi = np.array([d.highest for d in devices]) / v
        return TuneResult(np.array([d.reading for d in devices]) / v, np.array([d.pulses for d in devices], np.int32),
                          np.array([d.status for d in devices], np.int8),
                          np.array([d.reversals for d in devices], np.int32),
                          np.minimum(lo, hi), np.maximum(lo, hi), logs)

    def _check_link(self, link_node: int) -> None:
        """Once per session: the matrix the bench file puts on the TSP-Link must be there."""
        if getattr(self, "_linked", None) == link_node:
            return
        with self.station.guard(self.name, f"looking for TSP-Link node {link_node}"):
            if not self.driver.reaches_node(link_node):
                raise InstrumentError(self.station.describe(self.name),
                                      f"no switch matrix at TSP-Link node {link_node}: check the TSP-Link cable and "
                                      f"the 707B's node number, or wiring.matrix.tsplink_node in the bench file")
        self._linked = link_node

    def sweep_cells(self, gate, routes, link_node, steps, v_read, read_gate, n_read):
        self._check_link(link_node)
        with self.station.guard(self.name, f"sweeping {len(routes)} cells on the instrument"):
            try:
                reads, trips = self.driver.sweep(list(routes), [tuple(s) for s in steps], v_read, read_gate,
                                                 float(steps[0][2]) if steps else 1e-3, source=self.channel_name,
                                                 gate=self._gate_channel(gate), matrix_node=int(link_node),
                                                 n_read=n_read, trips=True)
            finally:
                self.assume_level(0.0)
                gate.assume_level(0.0)
        shape = (len(routes), len(steps) + 1)
        return np.asarray(reads, dtype=float).reshape(shape), np.asarray(trips, dtype=bool).reshape(shape)


class Plugin(InstrumentPlugin):
    model = "keithley2600b"
    description = "Keithley 2600B System SourceMeter (TSP), channels a and b"
    channels = ("a", "b")
    roles = frozenset({"read", "pulse", "gate"})
    idn_model = r"(MODEL )?26[0-3][0-9]B"
    v_range = (-200.0, 200.0)
    i_compliance_range = (1e-9, 1.5)
    pulse_width_range = Keithley2600BSource.pulse_width_range
    emulator = "simulated_bench.instruments.keithley2600b:Keithley2600BEmulator"

    @classmethod
    def driver_class(cls) -> type:
        return Keithley2600B

    @classmethod
    def source(cls, station, name, channel, i_compliance):
        return Keithley2600BSource(station, name, channel, i_compliance)
