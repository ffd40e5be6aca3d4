"""Keysight 81160A pulse generator (SCPI): pymeasure's driver plus a single-pulse set-up.

pymeasure's :class:`~pymeasure.instruments.keysight.Keysight81160A` covers levels,
width, period, edges, arming, trigger count and output state per channel; this module
adds :meth:`Keysight81160A.configure_single_pulse` (pulse shape, manually armed, one
pulse per ``*TRG``, high-impedance load, low level 0 V), :meth:`Keysight81160A.fire`
(changed settings, trigger, completion and error check in one round trip) and a strict
error check.
"""
from __future__ import annotations

from pymeasure.instruments.keysight import Keysight81160A as _PymeasureKeysight81160A
from pymeasure.instruments.keysight.keysight81160A import PULSE_WIDTH_RANGE, VOLTAGE_HIGH_RANGE
from pymeasure.instruments.validators import strict_range

from .errors import InstrumentError

HIGH_Z_LOAD = 1e6  # ohm, the largest load setting: the chip's lines are not 50 ohm
#: s; pulses run to 330 MHz (pymeasure's 2 ns lower bound is the sine limit, which the instrument refuses here)
PULSE_PERIOD_RANGE = [3.03e-9, 1e6]


class Keysight81160A(_PymeasureKeysight81160A):
    """Keysight 81160A pulse function arbitrary generator (two channels)."""

    def __init__(self, adapter, name="Keysight 81160A", **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    def configure_single_pulse(self, channel: int = 1) -> None:
        """Pulse shape, 0 V low level, high-Z load, manual arming, one pulse per trigger."""
        ch = self.channels[channel]
        ch.shape = "PULS"
        ch.output_load = HIGH_Z_LOAD
        ch.voltage_low = 0.0
        ch.trigger_mode = "MAN"
        ch.trigger_count = 1

    def set_polarity(self, channel: int = 1, inverted: bool = False) -> None:
        """Output polarity: inverted pulses go from 0 V down to minus the high level."""
        self.write(f":OUTP{int(channel)}:POL {'INV' if inverted else 'NORM'}")

    def fire(self, channel: int = 1, high: float | None = None, width: float | None = None,
             period: float | None = None, period_first: bool = True) -> None:
        """Trigger one pulse, first updating whichever of high level (V), width and period (s)
        are given, in one program message ending in ``*OPC?;:SYST:ERR?``: one round trip per
        pulse, and an :class:`InstrumentError` if the generator refused any part of it.

        ``period_first``: send the period before the width (when the period grows) or
        after it (when it shrinks), so the width never exceeds the period in between.
        """
        self._program(channel, high, width, period, period_first, ["*TRG"])

    def arm_external(self, channel: int = 1, high: float | None = None, width: float | None = None,
                     period: float | None = None, period_first: bool = True, arm: bool = True) -> None:
        """Arm ``channel`` to fire one pulse per edge on its trigger input (``:ARM:SOUR EXT``),
        first updating whichever of high level, width and period are given: one round trip
        ending in ``*OPC?;:SYST:ERR?``. ``arm=False`` when the channel is armed on EXT already."""
        self._program(channel, high, width, period, period_first, [f":ARM:SOUR{int(channel)} EXT"] if arm else [])

    def arm_manual(self, channel: int = 1) -> None:
        """Back to manual arming: a pulse per ``*TRG`` (:meth:`fire`)."""
        self._program(channel, None, None, None, True, [f":ARM:SOUR{int(channel)} MAN"])

    def _program(self, channel, high, width, period, period_first, tail: list[str]) -> None:
        parts = []
        if high is not None:
            parts.append(f":VOLT{channel}:HIGH {strict_range(high, VOLTAGE_HIGH_RANGE):f}")
        timing = []
        if period is not None:
            timing.append(f":PULS:PER{channel} {strict_range(period, PULSE_PERIOD_RANGE):e}")
        if width is not None:
            timing.append(f":PULS:WIDT{channel} {strict_range(width, PULSE_WIDTH_RANGE):e}")
        if not period_first:
            timing.reverse()
        reply = self.ask(";".join(parts + timing + tail + ["*OPC?", ":SYST:ERR?"]))
        done, _, error = reply.strip().partition(";")
        code, _, text = error.partition(",")
        if done != "1" or not code.lstrip("+-").isdigit():
            raise InstrumentError(self.name, f"unexpected reply {reply!r} to *OPC?;:SYST:ERR?")
        if int(code) != 0:
            errors = [(int(code), text.strip('"'))] + [(int(c), str(m)) for c, m in self.check_errors()]
            raise InstrumentError(self.name, errors)

    def shutdown(self) -> None:
        """Safe state: both outputs off, confirmed with ``*OPC?``."""
        for ch in (1, 2):
            self.channels[ch].output = False
        self.ask("*OPC?")
        super().shutdown()

    def raise_errors(self) -> None:
        """Drain the error queue; raise :class:`InstrumentError` if it held anything."""
        errors = self.check_errors()
        if errors:
            raise InstrumentError(self.name, [(int(e[0]), str(e[1])) for e in errors])
