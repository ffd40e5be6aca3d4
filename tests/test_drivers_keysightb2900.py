"""Keysight B2900 driver: properties, the on-instrument pulse-read train and shutdown, as transcripts
(each replayed into the B2900 emulator by driver_contract)."""
import pytest
from driver_contract import expected_protocol

from drivers.errors import InstrumentError
from drivers.keysightb2900 import KeysightB2900


@pytest.mark.parametrize("prop,cmd,value,sent,reply", [
    ("source_mode", ":SOUR{ch}:FUNC:MODE", "voltage", "VOLT", "VOLT"),
    ("source_shape", ":SOUR{ch}:FUNC:SHAP", "PULS", "PULS", "PULS"),
    ("source_voltage", ":SOUR{ch}:VOLT", -1.5, "-1.5", "-1.500000E+00"),
    ("source_voltage_triggered", ":SOUR{ch}:VOLT:TRIG", 2.0, "2", "+2.000000E+00"),
    ("source_voltage_mode", ":SOUR{ch}:VOLT:MODE", "LIST", "LIST", "LIST"),
    ("source_voltage_autorange", ":SOUR{ch}:VOLT:RANG:AUTO", False, "0", "0"),
    ("source_current", ":SOUR{ch}:CURR", 1e-4, "0.0001", "+1.000000E-04"),
    ("compliance_current", ":SENS{ch}:CURR:PROT", 2e-3, "0.002", "+2.000000E-03"),
    ("compliance_voltage", ":SENS{ch}:VOLT:PROT", 5, "5", "+5.000000E+00"),
    ("measure_nplc", ":SENS{ch}:CURR:NPLC", 0.1, "0.1", "+1.000000E-01"),
    ("measure_aperture", ":SENS{ch}:CURR:APER", 1e-3, "0.001", "+1.000000E-03"),
    ("measure_current_autorange", ":SENS{ch}:CURR:RANG:AUTO", True, "1", "1"),
    ("output_off_mode", ":OUTP{ch}:OFF:MODE", "HIZ", "HIZ", "HIZ"),
    ("pulse_width", ":SOUR{ch}:PULS:WIDT", 1e-4, "0.0001", "+1.000000E-04"),
    ("pulse_delay", ":SOUR{ch}:PULS:DEL", 0.0, "0", "+0.000000E+00"),
    ("trigger_count", ":TRIG{ch}:COUN", 10, "10", "10"),
    ("trigger_source", ":TRIG{ch}:SOUR", "TIM", "TIM", "TIM"),
    ("trigger_period", ":TRIG{ch}:TIM", 1e-3, "0.001", "+1.000000E-03"),
    ("acquire_delay", ":TRIG{ch}:ACQ:DEL", 1e-4, "0.0001", "+1.000000E-04"),
    ("transient_delay", ":TRIG{ch}:TRAN:DEL", 0.0, "0", "+0.000000E+00"),
])
@pytest.mark.parametrize("ch", [1, 2])
def test_every_channel_property_sets_and_gets(prop, cmd, value, sent, reply, ch):
    c = cmd.format(ch=ch)
    with expected_protocol(KeysightB2900, [(f"{c} {sent}", None), (f"{c}?", reply)]) as smu:
        channel = smu.channel(ch)
        setattr(channel, prop, value)
        got = getattr(channel, prop)
        assert got == (pytest.approx(value) if isinstance(value, float) else value)


def test_output_measurements_and_compliance_trip():
    with expected_protocol(KeysightB2900, [
        (":OUTP1 1", None), (":OUTP1?", "1"),
        (":MEAS:CURR? (@1)", "+1.234560E-05"),
        (":MEAS:VOLT? (@1)", "+2.000000E-01"),
        (":SENS1:CURR:PROT:TRIP?", "0"),
        (":SYST:LFR 60", None), (":SYST:LFR?", "60"),
    ]) as smu:
        smu.ch1.output_enabled = True
        assert smu.ch1.output_enabled is True
        assert smu.ch1.current == pytest.approx(1.23456e-5)
        assert smu.ch1.voltage == pytest.approx(0.2)
        assert smu.ch1.compliance_tripped is False
        smu.line_frequency = 60
        assert smu.line_frequency == 60


def test_a_current_and_its_compliance_status_in_one_transfer():
    with expected_protocol(KeysightB2900, [
        (":MEAS:CURR? (@2);:SENS2:CURR:PROT:TRIP?", "+1.000000E-04;1"),
        (":MEAS:CURR? (@1);:SENS1:CURR:PROT:TRIP?", "+2.500000E-05;0"),
    ]) as smu:
        assert smu.ch2.current_and_trip() == (pytest.approx(1e-4), True)
        assert smu.ch1.current_and_trip() == (pytest.approx(2.5e-5), False)


def test_apply_voltage_is_one_message():
    with expected_protocol(KeysightB2900, [
        (':SOUR2:FUNC:MODE VOLT;:SOUR2:FUNC:SHAP DC;:SOUR2:VOLT:MODE FIX;:SOUR2:VOLT:RANG:AUTO 1;'
         ':SENS2:FUNC "CURR";:SENS2:CURR:PROT 0.0005;:SENS2:CURR:RANG:AUTO 1;:SENS2:CURR:NPLC 0.01', None),
    ]) as smu:
        smu.ch2.apply_voltage(5e-4, nplc=0.01)


def test_voltage_list_round_trip_and_limits():
    with expected_protocol(KeysightB2900, [
        (":SOUR1:LIST:VOLT 0.5,1,1.5", None),
        (":SOUR1:LIST:VOLT?", "+5.000000E-01,+1.000000E+00,+1.500000E+00"),
        (":SOUR1:LIST:VOLT:POIN?", "3"),
    ]) as smu:
        smu.ch1.voltage_list = [0.5, 1.0, 1.5]
        assert smu.ch1.voltage_list == [0.5, 1.0, 1.5]
        assert smu.ch1.list_points == 3
        with pytest.raises(ValueError):
            smu.ch1.voltage_list = [0.0] * 2501
        with pytest.raises(ValueError):
            smu.ch1.voltage_list = [250.0]


def test_pulse_read_train_is_four_messages():
    setup = (":SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT 0.2;:SOUR1:VOLT:MODE LIST;:SOUR1:LIST:VOLT 1,1.1,1.2;"
             ":SOUR1:PULS:DEL 0;:SOUR1:PULS:WIDT 0.0001;:SENS1:CURR:APER 2e-05;:TRIG1:SOUR TIM;"
             ":TRIG1:TIM 0.00014;:TRIG1:COUN 3;:TRIG1:TRAN:DEL 0;:TRIG1:ACQ:DEL 0.00011")
    with expected_protocol(KeysightB2900, [
        (setup, None),
        (":INIT (@1)", None),
        (":FETC:ARR:CURR? (@1)", "+1.000000E-06,+2.000000E-06,+3.000000E-06"),
        (":SOUR1:FUNC:SHAP DC;:SOUR1:VOLT:MODE FIX;:TRIG1:SOUR AINT;:TRIG1:COUN 1", None),
    ]) as smu:
        assert smu.ch1.pulse_read([1.0, 1.1, 1.2], 100e-6, 0.2) == [1e-6, 2e-6, 3e-6]


def test_pulse_read_refuses_bad_trains_before_sending():
    with expected_protocol(KeysightB2900, []) as smu:
        with pytest.raises(ValueError):
            smu.ch1.pulse_read([1.0], 10e-6, 0.2)  # below the 50 us minimum pulse
        with pytest.raises(ValueError):
            smu.ch1.pulse_read([1.0] * 2501, 100e-6, 0.2)
        assert smu.ch1.pulse_read([], 100e-6, 0.2) == []


def test_single_channel_model_and_shutdown():
    with expected_protocol(KeysightB2900, [(":SOUR1:VOLT 0;:OUTP1 0", None), ("*OPC?", "1")], n_channels=1) as smu:
        with pytest.raises(ValueError):
            smu.channel(2)
        smu.shutdown()
    with expected_protocol(KeysightB2900, [(":SOUR1:VOLT 0;:OUTP1 0", None), (":SOUR2:VOLT 0;:OUTP2 0", None),
                                           ("*OPC?", "1")]) as smu:
        smu.shutdown()


def test_errors_are_raised_with_their_codes():
    with expected_protocol(KeysightB2900, [
        ("SYST:ERR?", '-113,"Undefined header"'),
        ("SYST:ERR?", '+0,"No error"'),
        ("*IDN?", "Keysight Technologies,B2902A,MY51141234,3.4.2011.5100"),
    ]) as smu:
        with pytest.raises(InstrumentError, match="-113"):
            smu.raise_errors()
        assert "B2902A" in smu.id


def test_single_pulses_are_one_round_trip_each():
    with expected_protocol(KeysightB2900, [
        (":SOUR2:FUNC:SHAP PULS;:SOUR2:VOLT:MODE FIX;:SOUR2:VOLT 0;:SOUR2:PULS:DEL 0;:SOUR2:PULS:WIDT 0.0001;"
         ":TRIG2:SOUR AINT;:TRIG2:COUN 1", None),
        (":SOUR2:VOLT:TRIG 1.5;:INIT (@2);*OPC?", "1"),
    ]) as smu:
        smu.ch2.configure_pulse(100e-6)
        smu.ch2.fire_pulse(1.5)
        with pytest.raises(ValueError):
            smu.ch2.configure_pulse(10e-6)


def test_a_pulse_list_armed_on_the_boards_trigger_is_one_round_trip():
    with expected_protocol(KeysightB2900, [
        (":SOUR2:FUNC:SHAP PULS;:SOUR2:VOLT 0;:SOUR2:VOLT:MODE LIST;:SOUR2:LIST:VOLT 2,1.5,1.504;"
         ":SOUR2:PULS:DEL 0;:SOUR2:PULS:WIDT 0.0001;:TRIG2:SOUR EXT1;:TRIG2:COUN 3;:TRIG2:TRAN:DEL 0;"
         ":TRIG2:ACQ:DEL 0;:INIT (@2);:SYST:ERR?", '+0,"No error"'),
    ]) as smu:
        smu.ch2.arm_pulses([2.0, 1.5, 1.504], 100e-6)
        with pytest.raises(ValueError):
            smu.ch2.arm_pulses([], 100e-6)
        with pytest.raises(ValueError):
            smu.ch2.arm_pulses([1.0], 100e-6, trigger="AINT")  # an armed list waits for the board's edges
