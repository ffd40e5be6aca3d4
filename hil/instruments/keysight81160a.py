"""Keysight 81160A pulse generator: two channels of single, manually triggered pulses (SCPI)."""
from __future__ import annotations

from drivers.keysight81160a import PULSE_WIDTH_RANGE, VOLTAGE_HIGH_RANGE, Keysight81160A

from ..roles import LimitError, Pulser
from .base import InstrumentPlugin

AMPLITUDE_MIN = 0.05  # V, the smallest high level the 81160A makes into high impedance


class GeneratorPulser(Pulser):
    """One channel: levels and width cached, one round trip per pulse; or armed on its trigger
    input (``EXT``), one pulse per edge from the addressing board's TRIG OUT."""

    can_trigger = True

    def __init__(self, station, name: str, channel: int):
        self.station, self.name, self.channel_no = station, name, channel
        self.gen: Keysight81160A = station.drivers[name]
        self.ch = self.gen.channels[channel]
        station.cached(self._forget)
        self._forget()

    def _forget(self) -> None:
        self._ready = False
        self._high = self._width = self._period = None
        self._external: bool | None = None  # armed on EXT (True), MAN (False) or not known

    def check(self, amplitudes, widths) -> None:
        low = amplitudes[(amplitudes > 0) & (amplitudes < AMPLITUDE_MIN)]
        if low.size:
            raise LimitError(f"pulse amplitude {low.min():g} V is below the 81160A's {AMPLITUDE_MIN * 1e3:g} mV "
                             f"minimum; raise the smallest amplitude")

    def pulse(self, amplitude: float, width: float) -> None:
        if amplitude < AMPLITUDE_MIN:
            raise ValueError(f"pulse amplitude {amplitude:g} V is below the 81160A's {AMPLITUDE_MIN * 1e3:g} mV minimum")
        with self.station.guard(self.name, f"firing a {amplitude:g} V, {width:g} s pulse"):
            self._setup()
            if self._external is not False:
                self.gen.arm_manual(self.channel_no)
                self._external = False
            self.gen.fire(self.channel_no, **self._changes(amplitude, width))
            self._commit(amplitude, width)

    def arm(self, amplitudes, width: float) -> None:
        """One pulse of the (single) amplitude in ``amplitudes`` (V), ``width`` s, per trigger edge;
        nothing is sent when the channel is armed with these settings already."""
        if len(set(map(float, amplitudes))) != 1:
            raise ValueError("the 81160A gives every triggered pulse the same level: arm one amplitude at a time")
        amplitude = float(amplitudes[0])
        if amplitude < AMPLITUDE_MIN:
            raise ValueError(f"pulse amplitude {amplitude:g} V is below the 81160A's {AMPLITUDE_MIN * 1e3:g} mV minimum")
        with self.station.guard(self.name, f"arming a {amplitude:g} V, {width:g} s pulse on external triggers"):
            self._setup()
            changes = self._changes(amplitude, width)
            if self._external is not True or any(v is not None for k, v in changes.items() if k != "period_first"):
                self.gen.arm_external(self.channel_no, arm=self._external is not True, **changes)
                self._external = True
            self._commit(amplitude, width)

    def _setup(self) -> None:
        if not self._ready:
            self.gen.configure_single_pulse(self.channel_no)
            self.ch.output = True
            self.gen.raise_errors()
            self._ready, self._external = True, False  # configured for manual arming

    def _changes(self, amplitude: float, width: float) -> dict:
        period = max(2.0 * width, width + 100e-9)
        new_width = width != self._width
        return {"high": amplitude if amplitude != self._high else None, "width": width if new_width else None,
                "period": period if new_width else None,
                "period_first": self._period is None or period > self._period}

    def _commit(self, amplitude: float, width: float) -> None:
        self._high = amplitude
        if width != self._width:
            self._width, self._period = width, max(2.0 * width, width + 100e-9)


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
