"""Keysight B2900 series SMU (B2901A/B2902A/B2911A/B2912A, SCPI): channels 1 and 2 read,
supply word lines and time pulses on the instrument's trigger system, including the
pulse-then-read train (a pulsed list sweep fetched in one transfer)."""
from __future__ import annotations

import re

from drivers.keysightb2900 import (COMPLIANCE_CURRENT_RANGE, LIST_MAX_POINTS, PULSE_WIDTH_RANGE, VOLTAGE_RANGE,
                                   KeysightB2900)

from .base import InstrumentPlugin
from .smu import ChannelSource


class KeysightB2900Source(ChannelSource):
    can_pulse_read = True
    pulse_width_range = tuple(PULSE_WIDTH_RANGE)
    #: the trigger input wired to the addressing board's TRIG OUT (digital I/O pin 1)
    armed_list_max = LIST_MAX_POINTS

    def _arm(self, levels, width) -> None:
        self.ch.arm_pulses(levels, width, 0.0, "EXT1")

    def _tripped(self) -> bool:
        return bool(self.ch.compliance_tripped)

    def _pulse(self, level: float, width: float) -> None:
        # a one-point pulsed list from a 0 V base; its reading (at 0 V) is discarded
        self.ch.pulse_read([level], width, 0.0)

    def _pulse_read(self, levels, width, v_read):
        readings = self.ch.pulse_read(list(levels), width, v_read)
        self._v = v_read  # the train leaves the output at its base level, the read voltage
        return readings


class Plugin(InstrumentPlugin):
    model = "keysightb2900"
    description = "Keysight B2900 series SMU (SCPI), channels 1 and 2 (B2901A/B2911A: channel 1 only)"
    channels = ("1", "2")
    roles = frozenset({"read", "pulse", "gate"})
    idn_model = r"B29[01][12][AB]?"
    v_range = tuple(VOLTAGE_RANGE)
    i_compliance_range = tuple(COMPLIANCE_CURRENT_RANGE)
    pulse_width_range = tuple(PULSE_WIDTH_RANGE)
    emulator = "simulated_bench.instruments.keysightb2900:KeysightB2900Emulator"

    @classmethod
    def driver_class(cls) -> type:
        return KeysightB2900

    @classmethod
    def adopt(cls, driver, identity, channels_used):
        if re.fullmatch(r"B29[01]1[AB]?", identity.model, re.IGNORECASE):  # B2901A / B2911A: one output
            if channels_used - {"1"}:
                return f"a {identity.model} has one channel, but the wiring uses channel(s) " \
                       f"{', '.join(sorted(channels_used - {'1'}))}"
            driver.n_channels = 1  # its safe state then touches channel 1 only
        return None

    @classmethod
    def source(cls, station, name, channel, i_compliance):
        return KeysightB2900Source(station, name, channel, i_compliance)
