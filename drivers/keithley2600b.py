"""Keithley 2600B System SourceMeter (TSP, channels ``smua`` and ``smub``), our driver.

pymeasure's Keithley2600 is a legacy driver; this one follows the TSP attribute model
directly: each channel is a :class:`Keithley2600BChannel` with declarative properties
(``source_voltage`` -> ``smuX.source.levelv``, ``compliance_current`` ->
``smuX.source.limiti``, ...). :meth:`Keithley2600B.pulse_read` runs a whole
pulse-then-read train as a TSP function on the instrument and reads the buffer back in
one transfer, so a train of N pulses costs two messages instead of N round trips.
"""
from __future__ import annotations

from typing import Sequence

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import InstrumentError
from .tsp import TspInstrument

PULSE_READ_SCRIPT = "hilPulseRead"
#: runs on the instrument: pulse on ``src`` at each level for ``width`` s, then read the
#: current at ``vread`` on ``meas`` into its nvbuffer1; both rest at ``rest`` V afterwards
PULSE_READ_LINES = (
    "function hilPulseReadRun(src, meas, levels, width, vread, rest)",
    "  meas.nvbuffer1.clear()",
    "  for k = 1, #levels do",
    "    src.source.levelv = levels[k]",
    "    delay(width)",
    "    src.source.levelv = rest",
    "    meas.source.levelv = vread",
    "    meas.measure.i(meas.nvbuffer1)",
    "    meas.source.levelv = rest",
    "  end",
    "end",
)


class Keithley2600BChannel(Channel):
    """One SMU channel (``smua`` or ``smub``) of a 2600B."""

    source_function = Channel.control(
        "print(smu{ch}.source.func)", "smu{ch}.source.func = %d",
        """Control (str) the source function, 'voltage' or 'current'.""",
        validator=strict_discrete_set, values={"current": 0, "voltage": 1}, map_values=True)

    source_voltage = Channel.control(
        "print(smu{ch}.source.levelv)", "smu{ch}.source.levelv = %g",
        """Control (float) the source voltage in V, -200 to 200.""",
        validator=strict_range, values=[-200, 200])

    source_current = Channel.control(
        "print(smu{ch}.source.leveli)", "smu{ch}.source.leveli = %g",
        """Control (float) the source current in A, -1.5 to 1.5.""",
        validator=strict_range, values=[-1.5, 1.5])

    compliance_current = Channel.control(
        "print(smu{ch}.source.limiti)", "smu{ch}.source.limiti = %g",
        """Control (float) the current limit in A while sourcing voltage, 1 nA to 1.5 A.""",
        validator=strict_range, values=[1e-9, 1.5])

    compliance_voltage = Channel.control(
        "print(smu{ch}.source.limitv)", "smu{ch}.source.limitv = %g",
        """Control (float) the voltage limit in V while sourcing current, 20 mV to 200 V.""",
        validator=strict_range, values=[0.02, 200])

    source_autorange_voltage = Channel.control(
        "print(smu{ch}.source.autorangev)", "smu{ch}.source.autorangev = %d",
        """Control (bool) source voltage autoranging.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    output_enabled = Channel.control(
        "print(smu{ch}.source.output)", "smu{ch}.source.output = %d",
        """Control (bool) the output state.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    measure_nplc = Channel.control(
        "print(smu{ch}.measure.nplc)", "smu{ch}.measure.nplc = %g",
        """Control (float) the integration time in power-line cycles, 0.001 to 25.""",
        validator=strict_range, values=[0.001, 25])

    measure_autorange_current = Channel.control(
        "print(smu{ch}.measure.autorangei)", "smu{ch}.measure.autorangei = %d",
        """Control (bool) current measurement autoranging.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    current = Channel.measurement("print(smu{ch}.measure.i())", """Measure the current in A (float).""")

    voltage = Channel.measurement("print(smu{ch}.measure.v())", """Measure the voltage in V (float).""")

    buffer_count = Channel.measurement(
        "print(smu{ch}.nvbuffer1.n)", """Get (int) the number of readings in nvbuffer1.""",
        cast=lambda v: int(float(v)))

    def reset(self) -> None:
        """This channel to its power-on state (output off, 0 V)."""
        self.write("smu{ch}.reset()")

    def apply_voltage(self, compliance_current: float, nplc: float = 0.01) -> None:
        """Source volts with a current limit; autoranging; ``nplc`` integration."""
        self.source_function = "voltage"
        self.source_autorange_voltage = True
        self.compliance_current = compliance_current
        self.measure_autorange_current = True
        self.measure_nplc = nplc

    def pulse(self, level: float, width: float, rest: float = 0.0) -> None:
        """One pulse to ``level`` V for ``width`` s, timed on the instrument (one message)."""
        strict_range(level, [-200, 200])
        if not width > 0:
            raise ValueError(f"pulse width must be positive, got {width!r}")
        self.write(f"smu{{ch}}.source.levelv = {level:.6g} delay({width:.6g}) smu{{ch}}.source.levelv = {rest:.6g}")

    def buffer_readings(self) -> list[float]:
        """All readings of nvbuffer1 in one transfer."""
        n = self.buffer_count
        if n == 0:
            return []
        return self.values(f"printbuffer(1, {n}, smu{{ch}}.nvbuffer1.readings)")


class Keithley2600B(TspInstrument):
    """Keithley 2600B dual-channel SourceMeter (2602B / 2612B / 2636B).

    .. code-block:: python

        smu = Keithley2600B("TCPIP0::192.168.0.20::INSTR")
        smu.smua.apply_voltage(compliance_current=1e-3)
        smu.smua.source_voltage = 0.2
        smu.smua.output_enabled = True
        print(smu.smua.current)
        readings = smu.pulse_read([1.0, 1.1, 1.2], width=100e-6, v_read=0.2)
    """

    smua = Instrument.ChannelCreator(Keithley2600BChannel, "a")
    smub = Instrument.ChannelCreator(Keithley2600BChannel, "b")

    def __init__(self, adapter, name="Keithley 2600B SourceMeter", **kwargs):
        super().__init__(adapter, name, **kwargs)

    def shutdown(self) -> None:
        """Safe state: both channels at 0 V with outputs off, confirmed with ``*OPC?``."""
        self.write("smua.source.levelv = 0 smua.source.output = 0 smub.source.levelv = 0 smub.source.output = 0")
        self.ask("*OPC?")
        super().shutdown()

    def channel(self, ch: str) -> Keithley2600BChannel:
        if ch not in ("a", "b"):
            raise ValueError(f"2600B channels are 'a' and 'b', not {ch!r}")
        return self.smua if ch == "a" else self.smub

    def pulse_read(self, levels: Sequence[float], width: float, v_read: float, pulse_channel: str = "a",
                   read_channel: str | None = None, rest: float = 0.0) -> list[float]:
        """Pulse-then-read train run on the instrument; returns one current (A) per pulse.

        For each level: ``pulse_channel`` goes to the level for ``width`` s and back to
        ``rest``; then ``read_channel`` (default: the same channel) reads the current at
        ``v_read`` into its nvbuffer1. The buffer comes back in a single ``printbuffer``.
        """
        levels = [float(x) for x in levels]
        if not levels:
            return []
        for x in (*levels, v_read, rest):
            strict_range(x, [-200, 200])
        if not width > 0:
            raise ValueError(f"pulse width must be positive, got {width!r}")
        read_channel = read_channel or pulse_channel
        self.channel(pulse_channel), self.channel(read_channel)
        if PULSE_READ_SCRIPT not in self._scripts:
            self.load_script(PULSE_READ_SCRIPT, PULSE_READ_LINES)
        table = "{" + ",".join(f"{x:.6g}" for x in levels) + "}"
        self.write(f"hilPulseReadRun(smu{pulse_channel}, smu{read_channel}, {table}, {width:.6g}, "
                   f"{v_read:.6g}, {rest:.6g})")
        readings = self.channel(read_channel).buffer_readings()
        if len(readings) != len(levels):
            self.raise_errors()
            raise InstrumentError(self.name, f"pulse train returned {len(readings)} readings for "
                                             f"{len(levels)} pulses")
        return readings
