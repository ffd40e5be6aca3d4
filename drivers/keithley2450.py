"""Keithley 2450 SourceMeter (SCPI): pymeasure's driver plus a strict error check.

pymeasure's :class:`~pymeasure.instruments.keithley.Keithley2450` is sound for what a
bench needs (voltage source with current limit, current readings through ``:READ?``,
output on/off); this subclass adds the native-2450 reading count and buffer read-back,
and :meth:`raise_errors`, which drains the error queue and raises instead of logging.
"""
from __future__ import annotations

from pymeasure.instruments import Instrument
from pymeasure.instruments.keithley import Keithley2450 as _PymeasureKeithley2450
from pymeasure.instruments.validators import strict_range

from .errors import InstrumentError


class Keithley2450(_PymeasureKeithley2450):
    """Keithley 2450 SourceMeter.

    .. code-block:: python

        smu = Keithley2450("TCPIP0::127.0.0.1::5025::SOCKET", read_termination="\\n")
        smu.apply_voltage(compliance_current=1e-3)
        smu.measure_current(nplc=0.1)
        smu.source_voltage = 0.2
        smu.enable_source()
        print(smu.current)
    """

    def __init__(self, adapter, name="Keithley 2450 SourceMeter", **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    reading_count = Instrument.control(
        ":COUN?", ":COUN %d",
        """Control (int) the number of readings one ``:READ?`` or ``:INIT`` takes, 1 to 300000.""",
        validator=strict_range, values=[1, 300000], cast=int)

    buffer_count = Instrument.measurement(
        ":TRAC:ACT?", """Get (int) the number of readings in the default buffer.""", cast=int)

    def current_and_trip(self) -> tuple[float, bool]:
        """One current reading (A) and whether the source is held at its current limit
        (``:SOUR:VOLT:ILIM:TRIP?``), both in one transfer."""
        reading, _, trip = self.ask(":READ?;:SOUR:VOLT:ILIM:TRIP?").strip().partition(";")
        return float(reading), bool(int(float(trip)))

    def clear_readings(self) -> None:
        """Empty the default reading buffer."""
        self.write(":TRAC:CLE")

    def take_readings(self) -> None:
        """Take ``reading_count`` readings into the buffer (``:INIT``)."""
        self.write(":INIT")

    def buffer_readings(self, start: int, end: int) -> list[float]:
        """Readings ``start``..``end`` (1-based, inclusive) of the default buffer in one transfer."""
        return self.values(f':TRAC:DATA? {int(start)}, {int(end)}, "defbuffer1", READ')

    def shutdown(self) -> None:
        """Safe state at once (pymeasure's version ramps in 0.6 s steps): 0 V, output off, confirmed."""
        self.source_voltage = 0.0
        self.disable_source()
        self.ask("*OPC?")
        Instrument.shutdown(self)

    def raise_errors(self) -> None:
        """Drain the error queue; raise :class:`InstrumentError` if it held anything."""
        errors = self.check_errors()
        if errors:
            raise InstrumentError(self.name, [(int(e[0]), str(e[1])) for e in errors])
