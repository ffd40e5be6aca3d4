"""Keysight B2900 series precision source/measure units (B2901A, B2902A, B2911A, B2912A), SCPI.

pymeasure (0.16) has no B2900 driver, so this is ours, in its style: one
:class:`KeysightB2900Channel` per output with declarative, validated properties
(``:SOURce{ch}:...``, ``:SENSe{ch}:...``, ``:TRIGger{ch}:...``), measurements addressed to
the channel with a channel list ``(@{ch})``, and :meth:`KeysightB2900Channel.pulse_read`,
which runs a whole pulse-then-read train on the instrument's trigger system (pulsed list
sweep, base level = read voltage, one measurement after each pulse) and fetches the
readings in one transfer.

Ranges (B2900A/B2910A data sheets): source +-210 V and +-3.03 A (B2901A/B2902A: pulsed
+-10.5 A not exposed here), measurement integration 4e-4 to 100 PLC or 8 us to 2 s,
pulse width 50 us to 100 s, trigger timer 10 us to 100000 s, list sweeps of up to 2500
points, trigger counts up to 100000.
"""
from __future__ import annotations

from typing import Sequence

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.generic_types import SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import InstrumentError

VOLTAGE_RANGE = [-210.0, 210.0]  # V, source and limit
CURRENT_RANGE = [-3.03, 3.03]  # A, DC source
COMPLIANCE_CURRENT_RANGE = [1e-9, 3.03]  # A
COMPLIANCE_VOLTAGE_RANGE = [0.0, 210.0]  # V
NPLC_RANGE = [4e-4, 100.0]  # power-line cycles (50 Hz; 4.8e-4 to 120 at 60 Hz)
APERTURE_RANGE = [8e-6, 2.0]  # s
PULSE_WIDTH_RANGE = [50e-6, 100.0]  # s
PULSE_DELAY_RANGE = [0.0, 99999.9]  # s
TRIGGER_DELAY_RANGE = [0.0, 100000.0]  # s
TRIGGER_TIMER_RANGE = [10e-6, 100000.0]  # s
TRIGGER_COUNT_RANGE = [1, 100000]
LIST_MAX_POINTS = 2500
TRIGGER_SOURCES = ("AINT", "BUS", "TIM", "INT1", "INT2", "LAN", "EXT1")
#: what ``:OUTPut:OFF:MODE`` takes: ZERO (0 V, then off), HIZ (relay open), NORMal
OFF_MODES = ("ZERO", "HIZ", "NORM")


def _bool(v) -> bool:
    return bool(int(float(v)))


class KeysightB2900Channel(Channel):
    """One output of a B2900 (``1`` or ``2``)."""

    source_mode = Channel.control(
        ":SOUR{ch}:FUNC:MODE?", ":SOUR{ch}:FUNC:MODE %s",
        """Control (str) the source function, 'voltage' or 'current'.""",
        validator=strict_discrete_set, values={"voltage": "VOLT", "current": "CURR"}, map_values=True)

    source_shape = Channel.control(
        ":SOUR{ch}:FUNC:SHAP?", ":SOUR{ch}:FUNC:SHAP %s",
        """Control (str) the output shape, 'DC' or 'PULS' (triggered pulses from the base level).""",
        validator=strict_discrete_set, values=("DC", "PULS"))

    source_voltage = Channel.control(
        ":SOUR{ch}:VOLT?", ":SOUR{ch}:VOLT %g",
        """Control (float) the immediate output voltage in V (the base level in pulse mode), -210 to 210.""",
        validator=strict_range, values=VOLTAGE_RANGE)

    source_voltage_triggered = Channel.control(
        ":SOUR{ch}:VOLT:TRIG?", ":SOUR{ch}:VOLT:TRIG %g",
        """Control (float) the level (V) a trigger sets in fixed mode (the pulse peak in pulse mode).""",
        validator=strict_range, values=VOLTAGE_RANGE)

    source_voltage_mode = Channel.control(
        ":SOUR{ch}:VOLT:MODE?", ":SOUR{ch}:VOLT:MODE %s",
        """Control (str) what a trigger sources: 'FIX' (the triggered level), 'LIST' or 'SWE'.""",
        validator=strict_discrete_set, values=("FIX", "LIST", "SWE"))

    source_voltage_autorange = Channel.control(
        ":SOUR{ch}:VOLT:RANG:AUTO?", ":SOUR{ch}:VOLT:RANG:AUTO %d",
        """Control (bool) voltage source autoranging.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    source_current = Channel.control(
        ":SOUR{ch}:CURR?", ":SOUR{ch}:CURR %g",
        """Control (float) the output current in A, -3.03 to 3.03.""",
        validator=strict_range, values=CURRENT_RANGE)

    compliance_current = Channel.control(
        ":SENS{ch}:CURR:PROT?", ":SENS{ch}:CURR:PROT %g",
        """Control (float) the current limit (A) while sourcing voltage, 1 nA to 3.03 A.""",
        validator=strict_range, values=COMPLIANCE_CURRENT_RANGE)

    compliance_voltage = Channel.control(
        ":SENS{ch}:VOLT:PROT?", ":SENS{ch}:VOLT:PROT %g",
        """Control (float) the voltage limit (V) while sourcing current, 0 to 210.""",
        validator=strict_range, values=COMPLIANCE_VOLTAGE_RANGE)

    compliance_tripped = Channel.measurement(
        ":SENS{ch}:CURR:PROT:TRIP?",
        """Get (bool) whether the output is limited by the current compliance now.""", cast=_bool)

    measure_nplc = Channel.control(
        ":SENS{ch}:CURR:NPLC?", ":SENS{ch}:CURR:NPLC %g",
        """Control (float) the current integration time in power-line cycles, 4e-4 to 100.""",
        validator=strict_range, values=NPLC_RANGE)

    measure_aperture = Channel.control(
        ":SENS{ch}:CURR:APER?", ":SENS{ch}:CURR:APER %g",
        """Control (float) the current integration time in s, 8 us to 2 s.""",
        validator=strict_range, values=APERTURE_RANGE)

    measure_current_autorange = Channel.control(
        ":SENS{ch}:CURR:RANG:AUTO?", ":SENS{ch}:CURR:RANG:AUTO %d",
        """Control (bool) current measurement autoranging.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    output_enabled = Channel.control(
        ":OUTP{ch}?", ":OUTP{ch} %d", """Control (bool) the output state.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    output_off_mode = Channel.control(
        ":OUTP{ch}:OFF:MODE?", ":OUTP{ch}:OFF:MODE %s",
        """Control (str) what 'output off' does: 'ZERO', 'HIZ' or 'NORM'.""",
        validator=strict_discrete_set, values=OFF_MODES)

    pulse_width = Channel.control(
        ":SOUR{ch}:PULS:WIDT?", ":SOUR{ch}:PULS:WIDT %g",
        """Control (float) the pulse width in s, 50 us to 100 s.""",
        validator=strict_range, values=PULSE_WIDTH_RANGE)

    pulse_delay = Channel.control(
        ":SOUR{ch}:PULS:DEL?", ":SOUR{ch}:PULS:DEL %g",
        """Control (float) the delay from the trigger to the pulse in s, 0 to 99999.9.""",
        validator=strict_range, values=PULSE_DELAY_RANGE)

    trigger_count = Channel.control(
        ":TRIG{ch}:COUN?", ":TRIG{ch}:COUN %d",
        """Control (int) the triggers (source steps and measurements) per initiate, 1 to 100000.""",
        validator=strict_range, values=TRIGGER_COUNT_RANGE, cast=int)

    trigger_source = Channel.control(
        ":TRIG{ch}:SOUR?", ":TRIG{ch}:SOUR %s",
        """Control (str) the trigger source: AINT (automatic), BUS, TIM (timer), ...""",
        validator=strict_discrete_set, values=TRIGGER_SOURCES)

    trigger_period = Channel.control(
        ":TRIG{ch}:TIM?", ":TRIG{ch}:TIM %g",
        """Control (float) the timer trigger period in s, 10 us to 100000 s.""",
        validator=strict_range, values=TRIGGER_TIMER_RANGE)

    acquire_delay = Channel.control(
        ":TRIG{ch}:ACQ:DEL?", ":TRIG{ch}:ACQ:DEL %g",
        """Control (float) the delay from a trigger to its measurement in s.""",
        validator=strict_range, values=TRIGGER_DELAY_RANGE)

    transient_delay = Channel.control(
        ":TRIG{ch}:TRAN:DEL?", ":TRIG{ch}:TRAN:DEL %g",
        """Control (float) the delay from a trigger to its source step in s.""",
        validator=strict_range, values=TRIGGER_DELAY_RANGE)

    list_points = Channel.measurement(
        ":SOUR{ch}:LIST:VOLT:POIN?", """Get (int) the number of points in the voltage list.""",
        cast=lambda v: int(float(v)))

    current = Channel.measurement(
        ":MEAS:CURR? (@{ch})", """Measure (float) one current in A (spot measurement).""")

    def current_and_trip(self) -> tuple[float, bool]:
        """One current (A, spot measurement) and whether the output is held at its current
        compliance (``:SENS:CURR:PROT:TRIP?``), both in one transfer."""
        reading, _, trip = self.ask(":MEAS:CURR? (@{ch});:SENS{ch}:CURR:PROT:TRIP?").strip().partition(";")
        return float(reading), _bool(trip)

    voltage = Channel.measurement(
        ":MEAS:VOLT? (@{ch})", """Measure (float) one voltage in V (spot measurement).""")

    @property
    def voltage_list(self) -> list[float]:
        """Control (list of float) the voltage list a LIST-mode sweep steps through, up to 2500 points."""
        return self.values(":SOUR{ch}:LIST:VOLT?")

    @voltage_list.setter
    def voltage_list(self, levels: Sequence[float]) -> None:
        levels = [float(strict_range(x, VOLTAGE_RANGE)) for x in levels]
        if not 1 <= len(levels) <= LIST_MAX_POINTS:
            raise ValueError(f"a list holds 1 to {LIST_MAX_POINTS} points, got {len(levels)}")
        self.write(":SOUR{ch}:LIST:VOLT " + ",".join(f"{x:.6g}" for x in levels))

    def apply_voltage(self, compliance_current: float, nplc: float = 0.01) -> None:
        """Source volts (DC, autoranging) with a current limit; measure current over ``nplc`` PLC."""
        self.write(f':SOUR{{ch}}:FUNC:MODE VOLT;:SOUR{{ch}}:FUNC:SHAP DC;:SOUR{{ch}}:VOLT:MODE FIX;'
                   f':SOUR{{ch}}:VOLT:RANG:AUTO 1;:SENS{{ch}}:FUNC "CURR";'
                   f':SENS{{ch}}:CURR:PROT {strict_range(compliance_current, COMPLIANCE_CURRENT_RANGE):g};'
                   f':SENS{{ch}}:CURR:RANG:AUTO 1;:SENS{{ch}}:CURR:NPLC {strict_range(nplc, NPLC_RANGE):g}')

    def initiate(self) -> None:
        """Start the trigger system of this channel (``:INIT (@ch)``)."""
        self.write(":INIT (@{ch})")

    def fetch_currents(self) -> list[float]:
        """Every current the last initiate measured, in one transfer (``:FETC:ARR:CURR?``)."""
        return self.values(":FETC:ARR:CURR? (@{ch})")

    def pulse_read(self, levels: Sequence[float], width: float, v_read: float, aperture: float = 20e-6,
                   settle: float = 10e-6) -> list[float]:
        """Pulse-then-read train run on the instrument; one current (A) per pulse.

        A pulsed list sweep: the base level is ``v_read``, each trigger pulses to the next
        of ``levels`` for ``width`` s and measures ``settle`` s after the pulse ends, back
        at ``v_read``, integrating over ``aperture`` s. Set-up, run and fetch are three
        messages (the set-up only changes when the train's shape does), then the
        readings come back in one transfer.
        """
        levels = [float(strict_range(x, VOLTAGE_RANGE)) for x in levels]
        if not levels:
            return []
        if len(levels) > LIST_MAX_POINTS:
            raise ValueError(f"a train holds at most {LIST_MAX_POINTS} pulses, got {len(levels)}")
        strict_range(width, PULSE_WIDTH_RANGE)
        strict_range(v_read, VOLTAGE_RANGE)
        strict_range(aperture, APERTURE_RANGE)
        acq = width + settle
        period = max(TRIGGER_TIMER_RANGE[0], acq + aperture + settle)
        self.write(f":SOUR{{ch}}:FUNC:SHAP PULS;:SOUR{{ch}}:VOLT {v_read:.6g};:SOUR{{ch}}:VOLT:MODE LIST;"
                   f":SOUR{{ch}}:LIST:VOLT {','.join(f'{x:.6g}' for x in levels)};"
                   f":SOUR{{ch}}:PULS:DEL 0;:SOUR{{ch}}:PULS:WIDT {width:.6g};:SENS{{ch}}:CURR:APER {aperture:.6g};"
                   f":TRIG{{ch}}:SOUR TIM;:TRIG{{ch}}:TIM {period:.6g};:TRIG{{ch}}:COUN {len(levels)};"
                   f":TRIG{{ch}}:TRAN:DEL 0;:TRIG{{ch}}:ACQ:DEL {acq:.6g}")
        self.write(":INIT (@{ch})")
        readings = self.values(":FETC:ARR:CURR? (@{ch})")
        self.write(f":SOUR{{ch}}:FUNC:SHAP DC;:SOUR{{ch}}:VOLT:MODE FIX;:TRIG{{ch}}:SOUR AINT;:TRIG{{ch}}:COUN 1")
        if len(readings) != len(levels):
            self.parent.raise_errors()
            raise InstrumentError(self.parent.name, f"pulse train returned {len(readings)} readings for "
                                                    f"{len(levels)} pulses")
        return readings

    def arm_pulses(self, levels: Sequence[float], width: float, base: float = 0.0, trigger: str = "EXT1") -> None:
        """Arm a pulsed list on ``trigger`` (a digital I/O pin wired to the addressing board's TRIG
        OUT): each edge pulses from ``base`` to the next of ``levels`` for ``width`` s. One round
        trip, confirmed by the error query (``*OPC?`` would wait for the edges)."""
        levels = [float(strict_range(x, VOLTAGE_RANGE)) for x in levels]
        if not 1 <= len(levels) <= LIST_MAX_POINTS:
            raise ValueError(f"an armed list holds 1 to {LIST_MAX_POINTS} pulses, got {len(levels)}")
        trigger = strict_discrete_set(trigger, [t for t in TRIGGER_SOURCES if t.startswith("EXT")])
        reply = self.ask(f":SOUR{{ch}}:FUNC:SHAP PULS;:SOUR{{ch}}:VOLT {strict_range(base, VOLTAGE_RANGE):.6g};"
                         f":SOUR{{ch}}:VOLT:MODE LIST;:SOUR{{ch}}:LIST:VOLT {','.join(f'{x:.6g}' for x in levels)};"
                         f":SOUR{{ch}}:PULS:DEL 0;:SOUR{{ch}}:PULS:WIDT {strict_range(width, PULSE_WIDTH_RANGE):.6g};"
                         f":TRIG{{ch}}:SOUR {trigger};:TRIG{{ch}}:COUN {len(levels)};:TRIG{{ch}}:TRAN:DEL 0;"
                         f":TRIG{{ch}}:ACQ:DEL 0;:INIT (@{{ch}});:SYST:ERR?")
        code, _, text = reply.strip().partition(",")
        if not code.lstrip("+-").isdigit():
            raise InstrumentError(self.parent.name, f"unexpected reply {reply!r} to :SYST:ERR?")
        if int(code) != 0:
            raise InstrumentError(self.parent.name, [(int(code), text.strip('"'))])

    def configure_pulse(self, width: float, base: float = 0.0) -> None:
        """Single pulses from ``base`` V, ``width`` s wide, one per :meth:`fire_pulse` (one message)."""
        self.write(f":SOUR{{ch}}:FUNC:SHAP PULS;:SOUR{{ch}}:VOLT:MODE FIX;"
                   f":SOUR{{ch}}:VOLT {strict_range(base, VOLTAGE_RANGE):.6g};"
                   f":SOUR{{ch}}:PULS:DEL 0;:SOUR{{ch}}:PULS:WIDT {strict_range(width, PULSE_WIDTH_RANGE):.6g};"
                   f":TRIG{{ch}}:SOUR AINT;:TRIG{{ch}}:COUN 1")

    def fire_pulse(self, level: float) -> None:
        """One pulse to ``level`` V (after :meth:`configure_pulse`), waited for: one round trip."""
        reply = self.ask(f":SOUR{{ch}}:VOLT:TRIG {strict_range(level, VOLTAGE_RANGE):.6g};:INIT (@{{ch}});*OPC?")
        if reply.strip() != "1":
            raise InstrumentError(self.parent.name, f"unexpected reply {reply!r} to *OPC?")

    def shutdown(self) -> None:
        """Safe state: 0 V, output off."""
        self.write(":SOUR{ch}:VOLT 0;:OUTP{ch} 0")


class KeysightB2900(SCPIMixin, Instrument):
    """Keysight B2900 series SMU (B2901A/B2911A: one channel, pass ``n_channels=1``; B2902A/B2912A: two).

    .. code-block:: python

        smu = KeysightB2900("USB0::0x0957::0x8C18::MY51141234::INSTR")
        smu.ch1.apply_voltage(compliance_current=1e-3)
        smu.ch1.source_voltage = 0.2
        smu.ch1.output_enabled = True
        print(smu.ch1.current, smu.ch1.compliance_tripped)
        readings = smu.ch1.pulse_read([1.0, 1.1, 1.2], width=100e-6, v_read=0.2)
        smu.shutdown()
    """

    ch1 = Instrument.ChannelCreator(KeysightB2900Channel, 1)
    ch2 = Instrument.ChannelCreator(KeysightB2900Channel, 2)

    def __init__(self, adapter, name="Keysight B2900 SMU", n_channels: int = 2, **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)
        if n_channels not in (1, 2):
            raise ValueError(f"a B2900 has 1 or 2 channels, not {n_channels!r}")
        self.n_channels = n_channels

    def channel(self, ch: int | str) -> KeysightB2900Channel:
        """Channel ``1`` or ``2`` (``2`` only on the two-channel models)."""
        if str(ch) not in [str(k) for k in range(1, self.n_channels + 1)]:
            raise ValueError(f"this B2900 has channels 1..{self.n_channels}, not {ch!r}")
        return self.ch1 if str(ch) == "1" else self.ch2

    line_frequency = Instrument.control(
        ":SYST:LFR?", ":SYST:LFR %d", """Control (int) the power-line frequency in Hz, 50 or 60.""",
        validator=strict_discrete_set, values=(50, 60), cast=int)

    def raise_errors(self) -> None:
        """Drain the error queue; raise :class:`InstrumentError` if it held anything."""
        errors = self.check_errors()
        if errors:
            raise InstrumentError(self.name, [(int(e[0]), str(e[1])) for e in errors])

    def shutdown(self) -> None:
        """Safe state: every output at 0 V and off, confirmed with ``*OPC?``."""
        for ch in range(1, self.n_channels + 1):
            self.channel(ch).shutdown()
        self.ask("*OPC?")
        super().shutdown()
