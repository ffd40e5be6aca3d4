"""Keithley 2600B System SourceMeter (2602B/2612B/2636B): two TSP channels that read,
supply word lines and time pulses on the instrument, including the pulse-then-read train."""
from __future__ import annotations

from drivers.keithley2600b import Keithley2600B

from .base import InstrumentPlugin
from .smu import ChannelSource


class Keithley2600BSource(ChannelSource):
    can_pulse_read = True
    # pulses timed by the SMU itself (TSP delay): practical down to ~100 us
    pulse_width_range = (100e-6, 1.0)

    def _tripped(self) -> bool:
        return self.driver.ask(f"print(smu{self.channel_name}.source.compliance)").strip().lower() == "true"

    def _pulse(self, level: float, width: float) -> None:
        self.ch.pulse(level, width, rest=0.0)
        self.driver.ask("*OPC?")

    def _pulse_read(self, levels, width, v_read):
        # one TSP function on the instrument; the channel rests at 0 V afterwards
        return self.driver.pulse_read(list(levels), width, v_read, pulse_channel=self.channel_name)


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
