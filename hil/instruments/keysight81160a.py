"""Keysight 81160A pulse generator: two channels of single, manually triggered pulses (SCPI)."""
from __future__ import annotations

from drivers.keysight81160a import PULSE_WIDTH_RANGE, VOLTAGE_HIGH_RANGE, Keysight81160A

from ..roles import LimitError, Pulser
from .base import InstrumentPlugin

AMPLITUDE_MIN = 0.05  # V, the smallest high level the 81160A makes into high impedance


class GeneratorPulser(Pulser):
    """One channel: levels and width cached, one round trip per pulse."""

    def __init__(self, station, name: str, channel: int):
        self.station, self.name, self.channel_no = station, name, channel
        self.gen: Keysight81160A = station.drivers[name]
        self.ch = self.gen.channels[channel]
        station.cached(self._forget)
        self._forget()

    def _forget(self) -> None:
        self._ready = False
        self._high = self._width = self._period = None

    def check(self, amplitudes, widths) -> None:
        low = amplitudes[(amplitudes > 0) & (amplitudes < AMPLITUDE_MIN)]
        if low.size:
            raise LimitError(f"pulse amplitude {low.min():g} V is below the 81160A's {AMPLITUDE_MIN * 1e3:g} mV "
                             f"minimum; raise the smallest amplitude")

    def pulse(self, amplitude: float, width: float) -> None:
        if amplitude < AMPLITUDE_MIN:
            raise ValueError(f"pulse amplitude {amplitude:g} V is below the 81160A's {AMPLITUDE_MIN * 1e3:g} mV minimum")
        with self.station.guard(self.name, f"firing a {amplitude:g} V, {width:g} s pulse"):
            if not self._ready:
                self.gen.configure_single_pulse(self.channel_no)
                self.ch.output = True
                self.gen.raise_errors()
                self._ready = True
            period = max(2.0 * width, width + 100e-9)
            new_width = width != self._width
            self.gen.fire(self.channel_no,
                          high=amplitude if amplitude != self._high else None,
                          width=width if new_width else None,
                          period=period if new_width else None,
                          period_first=self._period is None or period > self._period)
            self._high = amplitude
            if new_width:
                self._width, self._period = width, period


class Plugin(InstrumentPlugin):
    model = "keysight81160a"
    description = "Keysight 81160A pulse function arbitrary generator (SCPI), channels 1 and 2"
    channels = ("1", "2")
    roles = frozenset({"pulse"})
    idn_model = r"81160A"
    v_range = tuple(VOLTAGE_HIGH_RANGE)
    pulse_width_range = tuple(PULSE_WIDTH_RANGE)
    emulator = "simulated_bench.instruments.keysight81160a:Keysight81160AEmulator"

    @classmethod
    def driver_class(cls) -> type:
        return Keysight81160A

    @classmethod
    def pulser(cls, station, name, channel):
        return GeneratorPulser(station, name, int(channel))
