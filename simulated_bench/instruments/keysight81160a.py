"""Emulated Keysight 81160A pulse function arbitrary generator (SCPI, two channels).

Pulse mode as the instrument does it: shape ``PULS``, high/low levels (or amplitude and
offset), width, period, edges, manual arming and a trigger count; ``*TRG`` fires the
burst on every armed channel whose output is on. Levels are programmed for the expected
load (``:OUTP#:LOAD``, 50 ohm at power-on); the chip's lines are a high-impedance load,
so a generator left at 50 ohm delivers about twice the programmed voltage, as the real
one does. Unknown headers go to the error queue as -113.
"""
from __future__ import annotations

from dataclasses import dataclass

from .scpi import ScpiEmulator, ScpiError, parse_bool, parse_float
from .wiring import Wiring, WiringError

R_SOURCE = 50.0  # ohm, output impedance
R_CHIP = 1e6  # ohm, the chip's line as a load (high impedance next to 50 ohm)
SHAPES = {"SIN": "SIN", "SINUSOID": "SIN", "SQU": "SQU", "SQUARE": "SQU", "RAMP": "RAMP", "PULS": "PULS",
          "PULSE": "PULS", "NOIS": "NOIS", "NOISE": "NOIS", "DC": "DC", "USER": "USER"}
ARM_SOURCES = {"IMM": "IMM", "IMMEDIATE": "IMM", "INT2": "INT2", "EXT": "EXT", "EXTERNAL": "EXT",
               "MAN": "MAN", "MANUAL": "MAN", "BUS": "MAN"}
WIDTH_RANGE = (1.5e-9, 1e6)
PERIOD_RANGE = (3.03e-9, 1e6)
TRANSITION_RANGE = (1e-9, 1e3)
LEVEL_RANGE = (-5.0, 5.0)
AMPLITUDE_MIN = 0.05


@dataclass(frozen=True)
class PulserTiming:
    """Execution times of the 81160A (typical; configurable per bench)."""

    rearm_s: float = 1e-6  # trigger-to-output delay and re-arm after a burst
    setting_s: float = 1e-3  # firmware recomputes the waveform after a level or timing change


@dataclass
class PulseChannel:
    shape: str = "SIN"
    high: float = 0.25
    low: float = -0.25
    width: float = 100e-9
    period: float = 1e-6
    lead: float = 2.5e-9
    trail: float = 2.5e-9
    load: float = 50.0
    arm: str = "IMM"
    count: int = 1
    output: bool = False
    inverted: bool = False  # :OUTPut:POLarity INVerted: the output is the negative of the programmed levels


class Keysight81160AEmulator(ScpiEmulator):
    idn = "Agilent Technologies,81160A,MY52100123,2.0.0.0-2.6"
    model = "keysight81160a"
    default_transport = "gpib"

    def __init__(self, wiring: Wiring, name: str, lock=None, timing: PulserTiming | None = None):
        super().__init__(lock if lock is not None else wiring.lock)
        self.timing = timing or PulserTiming()
        self.wiring, self.name = wiring, name
        self.reset()
        for ch in (1, 2):
            wiring.attach(f"{name}.{ch}", lambda ch=ch: self.idle_level(ch))
            wiring.on_trigger(f"{name}.{ch}", lambda ch=ch: self._external_trigger(ch))
        a = self.add
        num = lambda attr: lambda ch: f"{getattr(ch, attr):+.6e}"  # noqa: E731
        a("[:SOURce#]:FUNCtion#[:SHAPe]", self._setting(lambda ch: ch.shape, self._set_shape))
        a("[:SOURce#]:VOLTage#:HIGH", self._setting(num("high"), self._set_level("high")))
        a("[:SOURce#]:VOLTage#:LOW", self._setting(num("low"), self._set_level("low")))
        a("[:SOURce#]:VOLTage#[:LEVel][:IMMediate][:AMPLitude]",
          self._setting(lambda ch: f"{ch.high - ch.low:+.6e}", self._set_amplitude))
        a("[:SOURce#]:VOLTage#:OFFSet", self._setting(lambda ch: f"{0.5 * (ch.high + ch.low):+.6e}", self._set_offset))
        for header, attr, bounds in (("[:SOURce#]:PULSe:WIDTh#", "width", WIDTH_RANGE),
                                     ("[:SOURce#]:PULSe:PERiod#", "period", PERIOD_RANGE),
                                     ("[:SOURce#]:PULSe:TRANsition#[:LEADing]", "lead", TRANSITION_RANGE),
                                     ("[:SOURce#]:PULSe:TRANsition#:TRAiling", "trail", TRANSITION_RANGE)):
            a(header, self._setting(num(attr), self._set_float(attr, bounds)))
        a("[:SOURce#]:FUNCtion#:PULSe:TRANsition", self._setting(num("lead"), self._set_transition))
        a("OUTPut#[:STATe]", self._setting(lambda ch: "1" if ch.output else "0",
                                            lambda ch, arg: setattr(ch, "output", parse_bool(arg))))
        a("OUTPut#:LOAD", self._setting(num("load"), self._set_load))
        a("OUTPut#:POLarity", self._setting(lambda ch: "INV" if ch.inverted else "NORM", self._set_polarity))
        a(":ARM:SOURce#", self._setting(lambda ch: ch.arm, self._set_arm))
        a(":TRIGger#:COUNt", self._setting(lambda ch: str(ch.count),
                                            lambda ch, arg: setattr(ch, "count", int(parse_float(arg, 1, 2147483647)))))
        a("*TRG", self._trigger)

    def reset(self) -> None:
        super().reset()
        self.channels = {1: PulseChannel(), 2: PulseChannel()}

    def outputs_off(self) -> None:
        for ch in self.channels.values():
            ch.output = False

    def _ch(self, s) -> PulseChannel:
        n = next((int(x) for x in s if x), 1)
        if n not in self.channels:
            raise ScpiError(-113, f"channel {n}")
        return self.channels[n]

    def delivered(self, ch: PulseChannel, v: float) -> float:
        """Voltage (V) on the chip line for a level programmed into the expected load."""
        emf_per_volt = (ch.load + R_SOURCE) / ch.load
        sign = -1.0 if ch.inverted else 1.0
        return sign * v * emf_per_volt * R_CHIP / (R_CHIP + R_SOURCE)

    def idle_level(self, n: int) -> float:
        ch = self.channels[n]
        return self.delivered(ch, ch.low) if ch.output else 0.0

    # handlers ------------------------------------------------------------------------------
    def _setting(self, show, store):
        """Handler of a per-channel setting: ``show(ch)`` answers the query, ``store(ch, arg)`` sets it."""
        def handler(s, args):
            ch = self._ch(s)
            if self.query:
                return show(ch)
            if not args:
                raise ScpiError(-109)
            store(ch, args[0])
            self.busy(self.timing.setting_s)
            return None
        return handler

    @staticmethod
    def _set_shape(ch: PulseChannel, arg: str) -> None:
        shape = SHAPES.get(arg.upper())
        if shape is None:
            raise ScpiError(-224, arg)
        ch.shape = shape

    @staticmethod
    def _set_level(attr: str):
        def store(ch: PulseChannel, arg: str) -> None:
            v = parse_float(arg, *LEVEL_RANGE)
            high, low = (v, ch.low) if attr == "high" else (ch.high, v)
            if high - low < AMPLITUDE_MIN - 1e-12:
                raise ScpiError(-221, f"high level must exceed low level by at least {AMPLITUDE_MIN} V")
            setattr(ch, attr, v)
        return store

    @staticmethod
    def _set_amplitude(ch: PulseChannel, arg: str) -> None:
        amp = parse_float(arg, AMPLITUDE_MIN, 2 * LEVEL_RANGE[1])
        mid = 0.5 * (ch.high + ch.low)
        ch.high, ch.low = mid + amp / 2, mid - amp / 2

    @staticmethod
    def _set_offset(ch: PulseChannel, arg: str) -> None:
        off = parse_float(arg, *LEVEL_RANGE)
        half = 0.5 * (ch.high - ch.low)
        ch.high, ch.low = off + half, off - half

    @staticmethod
    def _set_float(attr: str, bounds: tuple[float, float]):
        return lambda ch, arg: setattr(ch, attr, parse_float(arg, *bounds))

    @staticmethod
    def _set_transition(ch: PulseChannel, arg: str) -> None:
        ch.lead = ch.trail = parse_float(arg, *TRANSITION_RANGE)

    @staticmethod
    def _set_load(ch: PulseChannel, arg: str) -> None:
        a = arg.upper()
        ch.load = 1e6 if a in ("INF", "INFINITY", "MAX", "MAXIMUM") else parse_float(a, 0.3, 1e6)

    @staticmethod
    def _set_polarity(ch: PulseChannel, arg: str) -> None:
        a = arg.upper()
        if a not in ("NORM", "NORMAL", "INV", "INVERTED"):
            raise ScpiError(-224, arg)
        ch.inverted = a.startswith("INV")

    @staticmethod
    def _set_arm(ch: PulseChannel, arg: str) -> None:
        if arg.upper() not in ARM_SOURCES:
            raise ScpiError(-224, arg)
        ch.arm = ARM_SOURCES[arg.upper()]

    def _trigger(self, s, args):
        for n, ch in self.channels.items():
            if ch.output and ch.arm == "MAN":
                self.busy(self._burst(n, ch))
        return None

    def _burst(self, n: int, ch: PulseChannel) -> float:
        """Deliver one armed burst of channel ``n``; the time it takes (s)."""
        if ch.shape != "PULS":
            raise ScpiError(-221, f"channel {n} is not in pulse mode")
        if ch.width + 0.5 * (ch.lead + ch.trail) >= ch.period:
            raise ScpiError(-221, f"channel {n}: width and edges exceed the period")
        # the pulse rises from the low level by (high - low); width is measured at 50 %
        amplitude = self.delivered(ch, ch.high)
        try:
            self.wiring.apply(f"{self.name}.{n}", amplitude, ch.width, ch.count)
        except WiringError as err:
            raise ScpiError(-221, str(err)) from None
        return ch.count * ch.period + self.timing.rearm_s

    def _external_trigger(self, n: int) -> float | None:
        """A TRIG IN edge (the addressing board's TRIG OUT): a channel armed on EXT fires its burst.

        The time is the caller's (the board waits for the burst before its next step); a
        channel not armed for external triggers, off or not in a valid pulse set-up ignores
        the edge (None), and the error lands in this instrument's error queue.
        """
        ch = self.channels[n]
        if not (ch.output and ch.arm == "EXT"):
            return None
        try:
            return self._burst(n, ch)
        except ScpiError as err:
            self.push_error(err)
            return None
