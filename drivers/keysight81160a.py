"""Keysight 81160A pulse generator (SCPI): pymeasure's driver plus a single-pulse set-up.

pymeasure's :class:`~pymeasure.instruments.keysight.Keysight81160A` covers levels,
width, period, edges, arming, trigger count and output state per channel; this module
adds :meth:`Keysight81160A.configure_single_pulse` (pulse shape, manually armed, one
pulse per ``*TRG``, high-impedance load, low level 0 V) and a strict error check.
"""
from __future__ import annotations

from pymeasure.instruments.keysight import Keysight81160A as _PymeasureKeysight81160A

from .errors import InstrumentError

HIGH_Z_LOAD = 1e6  # ohm, the largest load setting: the chip's lines are not 50 ohm


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

    def raise_errors(self) -> None:
        """Drain the error queue; raise :class:`InstrumentError` if it held anything."""
        errors = self.check_errors()
        if errors:
            raise InstrumentError(self.name, [(int(e[0]), str(e[1])) for e in errors])
