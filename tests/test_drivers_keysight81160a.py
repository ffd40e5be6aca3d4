"""Keysight 81160A driver: the pulse set-up and trigger the bench sends, as transcripts."""
import pytest
from driver_contract import expected_protocol

from drivers.errors import InstrumentError
from drivers.keysight81160a import Keysight81160A


def test_configure_single_pulse():
    with expected_protocol(Keysight81160A, [
        (":FUNC1 PULS", None),
        (":OUTP1:LOAD 1.000000e+06", None),
        (":VOLT1:LOW 0.000000", None),
        (":ARM:SOUR1 MAN", None),
        (":TRIG1:COUN 1", None),
    ]) as gen:
        gen.configure_single_pulse(1)


def test_pulse_levels_width_period_trigger():
    with expected_protocol(Keysight81160A, [
        (":PULS:PER1 2.000000e-06", None),
        (":PULS:WIDT1 1.000000e-06", None),
        (":VOLT1:HIGH 1.500000", None),
        ("OUTP1 1", None),
        ("*TRG;*WAI", None),
        ("*OPC?", "1"),
        (":PULS:WIDT2?", "+1.000000e-07"),
    ]) as gen:
        ch = gen.channels[1]
        ch.pulse_period = 2e-6
        ch.pulse_width = 1e-6
        ch.voltage_high = 1.5
        ch.output = True
        gen.trigger()
        assert gen.complete == "1"
        assert gen.channels[2].pulse_width == pytest.approx(1e-7)


def test_width_below_instrument_minimum_is_refused_unsent():
    with expected_protocol(Keysight81160A, []) as gen:
        with pytest.raises(ValueError):
            gen.channels[1].pulse_width = 1e-9


def test_edges():
    with expected_protocol(Keysight81160A, [(":FUNC1:PULS:TRAN 5.000000e-09", None)]) as gen:
        gen.channels[1].pulse_transition = 5e-9


def test_fire_updates_changed_settings_and_triggers_in_one_round_trip():
    with expected_protocol(Keysight81160A, [
        (':VOLT1:HIGH 1.200000;:PULS:PER1 2.000000e-06;:PULS:WIDT1 1.000000e-06;*TRG;*OPC?;:SYST:ERR?',
         '1;0,"No error"'),
        (':PULS:WIDT1 1.000000e-07;:PULS:PER1 2.000000e-07;*TRG;*OPC?;:SYST:ERR?', '1;+0,"No error"'),
        ('*TRG;*OPC?;:SYST:ERR?', '1;0,"No error"'),
    ]) as gen:
        gen.fire(1, high=1.2, width=1e-6, period=2e-6)
        gen.fire(1, width=1e-7, period=2e-7, period_first=False)
        gen.fire(1)


def test_fire_raises_what_the_generator_refused():
    with expected_protocol(Keysight81160A, [
        ('*TRG;*OPC?;:SYST:ERR?', '1;-221,"Settings conflict"'),
        ("SYST:ERR?", '0,"No error"'),
    ]) as gen:
        with pytest.raises(InstrumentError, match="-221"):
            gen.fire(1)


def test_fire_validates_before_sending():
    with expected_protocol(Keysight81160A, []) as gen:
        with pytest.raises(ValueError):
            gen.fire(1, high=7.0)
        with pytest.raises(ValueError):
            gen.fire(1, width=1e-10)


def test_shutdown_switches_both_outputs_off():
    with expected_protocol(Keysight81160A, [("OUTP1 0", None), ("OUTP2 0", None), ("*OPC?", "1")]) as gen:
        gen.shutdown()
        assert gen.isShutdown


def test_polarity_inversion():
    with expected_protocol(Keysight81160A, [(":OUTP1:POL INV", None), (":OUTP1:POL NORM", None)]) as gen:
        gen.set_polarity(1, inverted=True)
        gen.set_polarity(1, inverted=False)


def test_arming_on_the_trigger_input_and_back_to_manual_are_one_round_trip_each():
    with expected_protocol(Keysight81160A, [
        (':VOLT1:HIGH 2.000000;:PULS:PER1 2.000000e-06;:PULS:WIDT1 1.000000e-06;:ARM:SOUR1 EXT;*OPC?;:SYST:ERR?',
         '1;0,"No error"'),
        (':VOLT1:HIGH 1.500000;*OPC?;:SYST:ERR?', '1;0,"No error"'),  # armed already: the new level only
        (':ARM:SOUR1 MAN;*OPC?;:SYST:ERR?', '1;0,"No error"'),
    ]) as gen:
        gen.arm_external(1, high=2.0, width=1e-6, period=2e-6)
        gen.arm_external(1, high=1.5, arm=False)
        gen.arm_manual(1)
