"""B2900 emulator: the pulsed list sweep programs the chip, compliance is read back, queries echo settings."""
import numpy as np
import pytest

from drivers.errors import InstrumentError
from drivers.keysightb2900 import KeysightB2900
from hil.transport import EmulatorAdapter
from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import SimulatedInstruments


def bench(array, model="B2902A"):
    sim = SimulatedInstruments({"A": array}, {"smu": "keysightb2900", "board": "rram-hil-ab64"},
                               {"read": "smu.1", "gate": "board"}, options={"smu": {"instrument_model": model}})
    board = sim.emulators["board"]
    assert board.feed(b"ROW 1\nCOL 2\nWL 1.5\nROUTE READ\n") == b"OK\n" * 4
    return sim, KeysightB2900(EmulatorAdapter(sim.emulators["smu"]), n_channels=2 if model == "B2902A" else 1)


def test_pulse_read_train_programs_the_cell_like_the_chip_itself():
    mine = SimulatedArray(4, 4, seed=9, variation=NO_VARIATION)
    twin = SimulatedArray(4, 4, seed=9, variation=NO_VARIATION)
    sim, smu = bench(mine)
    smu.ch1.apply_voltage(1e-3)
    smu.ch1.source_voltage = 0.2
    smu.ch1.output_enabled = True
    levels = [1.4, 1.6, 1.8, 2.0]
    readings = smu.ch1.pulse_read(levels, 100e-6, 0.2)
    expected = []
    for v in levels:
        twin.pulse_row(1, [2], v, 100e-6, 1.5)
        expected.append(twin.read_row(1, [2], 0.2, 1.5, noisy=False)[0])
    np.testing.assert_allclose(readings, expected, rtol=1e-5)
    assert readings[-1] > 5 * readings[0]
    smu.raise_errors()
    # after the train the channel is back at its DC read level
    assert smu.ch1.source_shape == "DC" and smu.ch1.source_voltage == pytest.approx(0.2)


def test_compliance_trip_is_read_from_the_instrument():
    cell = SimulatedArray(4, 4, seed=1, variation=NO_VARIATION, initial_state="on")
    sim, smu = bench(cell)
    smu.ch1.apply_voltage(1e-6)  # far below an ON cell's current at 0.5 V
    smu.ch1.source_voltage = 0.5
    smu.ch1.output_enabled = True
    assert smu.ch1.current == pytest.approx(1e-6)
    assert smu.ch1.compliance_tripped is True
    smu.ch1.compliance_current = 0.1
    smu.ch1.current
    assert smu.ch1.compliance_tripped is False


def test_unmodelled_features_go_to_the_error_queue():
    sim, smu = bench(SimulatedArray(4, 4, variation=NO_VARIATION), model="B2901A")
    smu.write(":FORM REAL,64")
    smu.write(":TRIG1:SOUR BUS;:INIT (@1)")
    smu.write(":SOUR2:VOLT 1")  # a B2901A has one channel
    smu.write(":SOUR1:LIST:VOLT " + ",".join(["0.1"] * 2501))
    with pytest.raises(InstrumentError) as info:
        smu.raise_errors()
    assert [c for c, _ in info.value.errors] == [-221, -221, -113, -223]
    assert "B2901A" in smu.id


def test_status_and_system_queries_frameworks_send_on_connect():
    sim, smu = bench(SimulatedArray(4, 4, variation=NO_VARIATION))
    assert int(smu.ask("*ESR?")) & 128  # power-on bit, read once
    assert int(smu.ask("*ESR?")) == 0
    assert smu.ask("*STB?").strip() == "0"
    smu.write(":NOT:A:COMMAND")
    assert int(smu.ask("*STB?")) & 4  # error queue not empty
    assert int(smu.ask("*ESR?")) & 32  # command error
    assert smu.ask(":SYST:ERR:ALL?").startswith("-113")
    assert smu.ask(":SYST:ERR?").strip() == '0,"No error"'
    assert smu.ask(":SYST:VERS?").strip() == "1999.0"
    smu.write("*ESE 60;*SRE 32")
    assert smu.ask("*ESE?;*SRE?").strip() == "60;32"
    assert smu.ask(':SENS1:FUNC?').strip() == '"VOLT","CURR"'
    assert smu.ask(":FORM:ELEM:SENS?").strip() == "VOLT,CURR,RES,TIME,STAT,SOUR"


def test_measure_with_both_channels_and_elements():
    sim, smu = bench(SimulatedArray(4, 4, variation=NO_VARIATION))
    smu.ch2.source_voltage = 1.0
    smu.ch2.output_enabled = True
    smu.write(":FORM:ELEM:SENS VOLT,CURR")
    values = smu.values(":MEAS? (@1:2)")
    assert len(values) == 4 and values[2] == pytest.approx(1.0)
    smu.write(":SOUR2:VOLT:MODE SWE;:SOUR2:VOLT:STAR 0;:SOUR2:VOLT:STOP 1;:SOUR2:VOLT:POIN 5;:TRIG2:COUN 5")
    smu.write(":INIT (@2)")
    assert smu.values(":FETC:ARR:SOUR? (@2)") == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    smu.raise_errors()
