"""Keithley 2600B TSP driver: channel properties, pulses and the on-instrument pulse-read train."""
import pytest
from driver_contract import expected_protocol

from drivers.errors import InstrumentError
from drivers.keithley2600b import MAX_TUNE_PULSES, PLAIN_TUNE_RULE, PULSE_READ_LINES, TUNE_LINES, Keithley2600B


def test_channel_properties():
    with expected_protocol(Keithley2600B, [
        ("smua.source.func = 1", None),
        ("print(smua.source.func)", "1.00000e+00"),
        ("smua.source.levelv = 0.2", None),
        ("print(smua.source.levelv)", "2.00000e-01"),
        ("smub.source.limiti = 0.001", None),
        ("smub.source.output = 1", None),
        ("print(smub.source.output)", "1.00000e+00"),
        ("smua.measure.nplc = 0.01", None),
        ("print(smua.measure.i())", "1.23450e-06"),
        ("print(smua.measure.v())", "2.00000e-01"),
        ("smub.reset()", None),
    ]) as smu:
        smu.smua.source_function = "voltage"
        assert smu.smua.source_function == "voltage"
        smu.smua.source_voltage = 0.2
        assert smu.smua.source_voltage == pytest.approx(0.2)
        smu.smub.compliance_current = 1e-3
        smu.smub.output_enabled = True
        assert smu.smub.output_enabled is True
        smu.smua.measure_nplc = 0.01
        assert smu.smua.current == pytest.approx(1.2345e-6)
        assert smu.smua.voltage == pytest.approx(0.2)
        smu.smub.reset()


def test_a_reading_and_the_compliance_status_in_one_transfer():
    with expected_protocol(Keithley2600B, [
        ("print(smua.measure.i(), smua.source.compliance)", "1.00000e-04\ttrue"),
        ("print(smub.measure.i(), smub.source.compliance)", "2.50000e-05\tfalse"),
    ]) as smu:
        assert smu.smua.current_and_trip() == (pytest.approx(1e-4), True)
        assert smu.smub.current_and_trip() == (pytest.approx(2.5e-5), False)


def test_apply_voltage_sequence():
    with expected_protocol(Keithley2600B, [
        ("smua.source.func = 1", None),
        ("smua.source.autorangev = 1", None),
        ("smua.source.limiti = 0.0005", None),
        ("smua.measure.autorangei = 1", None),
        ("smua.measure.nplc = 0.01", None),
    ]) as smu:
        smu.smua.apply_voltage(5e-4, nplc=0.01)


def test_single_pulse_is_one_message_timed_on_the_instrument():
    with expected_protocol(Keithley2600B, [
        ("smub.source.levelv = 1.5 delay(0.0001) smub.source.levelv = 0", None),
    ]) as smu:
        smu.smub.pulse(1.5, 100e-6)


def test_out_of_range_refused_before_sending():
    with expected_protocol(Keithley2600B, []) as smu:
        with pytest.raises(ValueError):
            smu.smua.source_voltage = 250
        with pytest.raises(ValueError):
            smu.smua.compliance_current = 2.0
        with pytest.raises(ValueError):
            smu.smua.pulse(1.0, 0)


def test_pulse_read_loads_script_once_and_reads_buffer_in_one_transfer():
    load = [("\n".join(["loadscript hilPulseRead", *PULSE_READ_LINES, "endscript"]), None),
            ("hilPulseRead.run()", None), ("print(errorqueue.count)", "0.00000e+00")]
    train = [("hilPulseReadRun(smua, smua, {1,1.1,1.2}, 0.0001, 0.2, 0)", None),
             ("print(smua.nvbuffer1.n)", "3.00000e+00"),
             ("printbuffer(1, 3, smua.nvbuffer1.readings)", "1.00000e-06, 2.00000e-06, 3.00000e-06")]
    second = [("hilPulseReadRun(smua, smua, {1.3}, 0.0001, 0.2, 0)", None),
              ("print(smua.nvbuffer1.n)", "1.00000e+00"),
              ("printbuffer(1, 1, smua.nvbuffer1.readings)", "4.00000e-06")]
    with expected_protocol(Keithley2600B, load + train + second) as smu:
        assert smu.pulse_read([1.0, 1.1, 1.2], 100e-6, 0.2) == [1e-6, 2e-6, 3e-6]
        assert smu.pulse_read([1.3], 100e-6, 0.2) == [4e-6]


def test_errors_come_from_the_error_queue():
    with expected_protocol(Keithley2600B, [
        ("print(errorqueue.count)", "2.00000e+00"),
        ("print(errorqueue.next())", "-2.85000e+02\tTSP Syntax error at line 1: unexpected symbol\t3.00000e+01\t1.00000e+00"),
        ("print(errorqueue.next())", "-2.22000e+02\tsmua.source.levelv 500 outside -200 to 200\t3.00000e+01\t1.00000e+00"),
    ]) as smu:
        with pytest.raises(InstrumentError, match="-285") as info:
            smu.raise_errors()
        assert [c for c, _ in info.value.errors] == [-285, -222]


@pytest.mark.parametrize("prop,attr,value,sent,reply", [
    ("source_function", "source.func", "current", "0", "0.00000e+00"),
    ("source_voltage", "source.levelv", -1.5, "-1.5", "-1.50000e+00"),
    ("source_current", "source.leveli", 1e-4, "0.0001", "1.00000e-04"),
    ("compliance_current", "source.limiti", 2e-3, "0.002", "2.00000e-03"),
    ("compliance_voltage", "source.limitv", 5, "5", "5.00000e+00"),
    ("source_autorange_voltage", "source.autorangev", False, "0", "0.00000e+00"),
    ("output_enabled", "source.output", False, "0", "0.00000e+00"),
    ("measure_nplc", "measure.nplc", 0.1, "0.1", "1.00000e-01"),
    ("measure_autorange_current", "measure.autorangei", True, "1", "1.00000e+00"),
])
@pytest.mark.parametrize("ch", ["a", "b"])
def test_every_channel_property_sets_and_gets(prop, attr, value, sent, reply, ch):
    with expected_protocol(Keithley2600B, [(f"smu{ch}.{attr} = {sent}", None),
                                           (f"print(smu{ch}.{attr})", reply)]) as smu:
        channel = smu.channel(ch)
        setattr(channel, prop, value)
        got = getattr(channel, prop)
        assert got == (pytest.approx(value) if isinstance(value, float) else value)


def test_buffer_readings_and_identification():
    with expected_protocol(Keithley2600B, [
        ("print(smub.nvbuffer1.n)", "0.00000e+00"),
        ("smub.measure.i(smub.nvbuffer1) smub.measure.i(smub.nvbuffer1)", None),
        ("print(smub.nvbuffer1.n)", "2.00000e+00"),
        ("printbuffer(1, 2, smub.nvbuffer1.readings)", "1.00000e-06, 2.00000e-06"),
        ("*IDN?", "Keithley Instruments Inc., Model 2636B, 4469971, 4.0.4"),
        ("reset()", None),
        ("errorqueue.clear()", None),
    ]) as smu:
        assert smu.smub.buffer_readings() == []
        smu.write("smub.measure.i(smub.nvbuffer1) smub.measure.i(smub.nvbuffer1)")
        assert smu.smub.buffer_readings() == [1e-6, 2e-6]
        assert "2636B" in smu.id
        smu.reset()
        smu.clear_errors()


def test_shutdown_zeroes_and_switches_off_both_channels():
    with expected_protocol(Keithley2600B, [
        ("smua.source.levelv = 0 smua.source.output = 0 smub.source.levelv = 0 smub.source.output = 0", None),
        ("*OPC?", "1"),
    ]) as smu:
        smu.shutdown()
        assert smu.isShutdown


LOAD_TUNE = [("\n".join(["loadscript hilTune", *TUNE_LINES, "endscript"]), None), ("hilTune.run()", None),
             ("print(errorqueue.count)", "0.00000e+00")]


RULE = ("{tol_rel=0.03,tol_abs=0.0,accept_fraction=1.0,n_read=1.0,v_read=0.2,read_gate=3.0,width_up=0.0001,"
        "width_down=0.0001,step_growth=2.0,max_step_rungs=32.0,slow_fraction=0.3,stall_pulses=10001.0,stall_rel=0.05,"
        "response_rel=0.5,read_noise_rel=0.0,confirm_z=2.0,max_verify_reads=2.0}")


def test_tuning_is_loaded_once_and_a_row_is_one_query():
    """A row's write-and-verify is one query carrying the rule, per-device budgets, start rungs and spread;
    the reply holds each device's outcome and its per-read log."""
    with expected_protocol(Keithley2600B, LOAD_TUNE + [
        ("hilTuneLadder(1, {2,2}, {1,1.2})", None),
        ("hilTuneLadder(-1, {1,1.1}, {4,4})", None),
        ("print(errorqueue.count)", "0.00000e+00"),
        ('hilTuneRun(smua, smub, 2, {"1A01,1C09","1A02,1C09"}, {2e-05,4e-05}, {60,60}, {0,0}, {0,0}, '
         '{1e+300,1e+300}, {-1e+300,-1e+300}, ' + RULE + ')',
         "2.000000000e-05,1,1,0,1.0e-05,2.0e-05|1:1.0e-05;0:2.0e-05;0:2.0e-05/"
         "5.000000000e-05,60,2,1,4.5e-05,5.2e-05|-2:5.2e-05;0:5.0e-05"),
        ('hilSweepRun(smua, smub, 0, {"1A01"}, {{2,2},{-1.8,4}}, 0.05, 3, 0.0001, 1)',
         "1.000000e-06,3.000000e-05,2.000000e-06"),
        ('hilSweepRun(smua, smub, 0, {"1A01","1A02"}, {}, 0.2, 3, 0.0001, 2, true)',
         "1.000000e-04,1,2.000000e-05,0"),
    ]) as smu:
        smu.load_tuning(([2.0, 2.0], [1.0, 1.2]), ([1.0, 1.1], [4.0, 4.0]))
        assert smu.tune(["1A01,1C09", "1A02,1C09"], [20e-6, 40e-6], 0.03, 0.2, 3.0, 100e-6, 60, matrix_node=2) \
            == [(2e-5, 1, True), (5e-5, 60, False)]
        assert smu.sweep(["1A01"], [(2.0, 2.0), (-1.8, 4.0)], 0.05, 3.0, 100e-6) == [[1e-6, 3e-5, 2e-6]]
        # the compliance status read by the same script, with each reading
        assert smu.sweep(["1A01", "1A02"], [], 0.2, 3.0, 100e-6, n_read=2, trips=True) == \
            ([[1e-4], [2e-5]], [[True], [False]])
        with pytest.raises(ValueError):
            smu.tune(["1A01); os.exit("], [1e-5], 0.03, 0.2, 3.0, 1e-4, 60)  # routes are channel lists only
        with pytest.raises(ValueError):
            smu.tune(["1A01"], [1e-5, 2e-5], 0.03, 0.2, 3.0, 1e-4, 60)


def test_tune_cells_parses_the_log_and_refuses_hostile_arguments_before_sending():
    with expected_protocol(Keithley2600B, LOAD_TUNE + [
        ("hilTuneLadder(1, {2,2,2,2,2}, {1,1.1,1.2,1.3,1.4})", None),
        ("hilTuneLadder(-1, {1,1.1}, {4,4})", None),
        ("print(errorqueue.count)", "0.00000e+00"),
        ('hilTuneRun(smua, smub, 0, {"1A01"}, {2e-05}, {5}, {3}, {1}, {1e-06}, {3e-05}, ' + RULE + ')',
         "2.000000000e-05,1,1,0,1.0e-06,3.0e-05|4:1.0e-05;0:2.0e-05;0:2.0e-05"),
    ]) as smu:
        smu.load_tuning(([2.0] * 5, [1.0, 1.1, 1.2, 1.3, 1.4]), ([1.0, 1.1], [4.0, 4.0]))
        rule = {**PLAIN_TUNE_RULE, "stall_pulses": 10001}
        (dev,) = smu.tune_cells(["1A01"], [20e-6], rule, [5], [3], [1], [(1e-6, 3e-5)])
        assert (dev.reading, dev.pulses, dev.status, dev.reversals) == (2e-5, 1, 1, 0)
        assert dev.log == ((4, 1e-5), (0, 2e-5), (0, 2e-5))  # rung 3 of the up ladder after the first read
        for bad in ({**rule, "tol_rel": float("nan")}, {**rule, "v_read": 500.0}, {k: 1 for k in ("tol_rel",)}):
            with pytest.raises(ValueError):
                smu.tune_cells(["1A01"], [20e-6], bad, [5])
        with pytest.raises(ValueError):
            smu.tune_cells(["1A01"], [float("nan")], rule, [5])
        with pytest.raises(ValueError):
            smu.tune_cells(["1A01"], [20e-6], rule, [MAX_TUNE_PULSES + 1])
        with pytest.raises(ValueError):
            smu.sweep(["1A01"], [(2.0, float("inf"))], 0.05, 3.0, 1e-4)


def test_a_long_script_reply_is_awaited_for_its_worst_case_then_the_timeout_is_restored():
    from types import SimpleNamespace

    with expected_protocol(Keithley2600B, LOAD_TUNE + [
        ("hilTuneLadder(1, {2,2}, {1,1.2})", None),
        ("hilTuneLadder(-1, {1,1.1}, {4,4})", None),
        ("print(errorqueue.count)", "0.00000e+00"),
        ('hilTuneRun(smua, smub, 0, {"1A01"}, {2e-05}, {1000}, {0}, {0}, {1e+300}, {-1e+300}, ' + RULE + ')',
         "2.000000000e-05,0,1,0,2.0e-05,2.0e-05|0:2.0e-05;0:2.0e-05"),
    ]) as smu:
        smu.load_tuning(([2.0, 2.0], [1.0, 1.2]), ([1.0, 1.1], [4.0, 4.0]))
        smu.adapter.connection = SimpleNamespace(timeout=2000, close=lambda: None)  # ms, as PyVISA's
        seen = []
        ask = smu.ask
        smu.ask = lambda command: seen.append(smu.adapter.connection.timeout) or ask(command)
        smu.tune_cells(["1A01"], [20e-6], {**PLAIN_TUNE_RULE, "stall_pulses": 10001}, [1000])
        assert seen[0] > 1000 * 1000 * (1e-4 + 5e-3)  # 1000 pulses of 0.1 ms, each with its settling and read
        assert smu.adapter.connection.timeout == 2000


def test_tsplink_node_presence_is_one_query():
    with expected_protocol(Keithley2600B, [
        ("print(node[2] ~= nil and node[2].channel ~= nil)", "true"),
        ("print(node[5] ~= nil and node[5].channel ~= nil)", "false"),
    ]) as smu:
        assert smu.reaches_node(2) and not smu.reaches_node(5)
