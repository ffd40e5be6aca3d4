"""Keithley 2450 driver: every command the bench sends, as command/response transcripts."""
import pytest
from driver_contract import expected_protocol

from drivers.errors import InstrumentError
from drivers.keithley2450 import Keithley2450

NO_ERROR = ("SYST:ERR?", '0,"No error"')


def test_apply_voltage_with_compliance():
    with expected_protocol(Keithley2450, [
        (":SOUR:FUNC VOLT", None),
        (":SOUR:FUNC?", "VOLT"),
        (":SOUR:VOLT:RANG:AUTO 1", None),
        (":SOUR:VOLT:ILIM 0.001", None),
        NO_ERROR,
    ]) as smu:
        smu.apply_voltage(compliance_current=1e-3)


def test_measure_current_configuration():
    with expected_protocol(Keithley2450, [
        (":SENS:FUNC 'CURR';:SENS:CURR:NPLC 0.010000;", None),
        (":SENS:CURR:RANG:AUTO 1;", None),
        NO_ERROR,
    ]) as smu:
        smu.measure_current(nplc=0.01)


def test_source_level_output_and_reading():
    with expected_protocol(Keithley2450, [
        (":SOUR:VOLT:LEV 0.2", None),
        ("OUTPUT ON", None),
        (":READ?", "1.234560e-05"),
        ("OUTPUT OFF", None),
        ("*OPC?", "1"),
    ]) as smu:
        smu.source_voltage = 0.2
        smu.enable_source()
        assert smu.current == pytest.approx(1.23456e-5)
        smu.disable_source()
        assert smu.complete == "1"


def test_a_reading_and_the_current_limit_status_in_one_transfer():
    with expected_protocol(Keithley2450, [
        (":READ?;:SOUR:VOLT:ILIM:TRIP?", "1.000000e-04;1"),
        (":READ?;:SOUR:VOLT:ILIM:TRIP?", "2.500000e-05;0"),
    ]) as smu:
        assert smu.current_and_trip() == (pytest.approx(1e-4), True)
        assert smu.current_and_trip() == (pytest.approx(2.5e-5), False)


def test_reading_count_and_buffer():
    with expected_protocol(Keithley2450, [
        (":COUN 3", None),
        (":COUN?", "3"),
        (":TRAC:CLE", None),
        (":INIT", None),
        (":TRAC:ACT?", "3"),
        (':TRAC:DATA? 1, 3, "defbuffer1", READ', "1e-6,2e-6,3e-6"),
    ]) as smu:
        smu.reading_count = 3
        assert smu.reading_count == 3
        smu.clear_readings()
        smu.take_readings()
        assert smu.buffer_count == 3
        assert smu.buffer_readings(1, 3) == [1e-6, 2e-6, 3e-6]


def test_reading_count_validated_before_sending():
    with expected_protocol(Keithley2450, []) as smu:
        with pytest.raises(ValueError):
            smu.reading_count = 0


def test_raise_errors_drains_queue_and_raises():
    with expected_protocol(Keithley2450, [
        ("SYST:ERR?", '-113,"Undefined header"'),
        ("SYST:ERR?", '-222,"Data out of range"'),
        NO_ERROR,
    ]) as smu:
        with pytest.raises(InstrumentError, match="-113") as info:
            smu.raise_errors()
        assert [code for code, _ in info.value.errors] == [-113, -222]


def test_identification():
    with expected_protocol(Keithley2450, [("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,04455011,1.7.12b")]) as smu:
        assert "MODEL 2450" in smu.id


def test_shutdown_is_immediate_safe_state():
    with expected_protocol(Keithley2450, [(":SOUR:VOLT:LEV 0", None), ("OUTPUT OFF", None), ("*OPC?", "1")]) as smu:
        smu.shutdown()
        assert smu.isShutdown
