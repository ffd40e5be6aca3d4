"""SCPI emulators (2450, 81160A): the instruments' syntax, error queues and pulse physics."""
import numpy as np
import pytest

from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import SimulatedInstruments
from simulated_bench.instruments.scpi import compile_header, split_units

INSTRUMENTS = {"smu": "keithley2450", "pulser": "keysight81160a", "board": "rram-hil-ab64"}
INPUTS = {"read": "smu", "pulse": "pulser.1", "gate": "board"}


def chip(seed=3):
    return {"A": SimulatedArray(8, 8, seed=seed, variation=NO_VARIATION)}


def send(emu, *lines):
    return [emu.feed((line + "\n").encode()).decode().strip() for line in lines]


@pytest.fixture
def sim():
    return SimulatedInstruments(chip(), INSTRUMENTS, INPUTS)


def test_idn_answers_as_the_real_models(sim):
    assert send(sim.emulators["smu"], "*IDN?") == ["KEITHLEY INSTRUMENTS,MODEL 2450,04455011,1.7.12b"]
    assert send(sim.emulators["pulser"], "*idn?")[0].split(",")[1] == "81160A"


def test_undefined_header_goes_to_error_queue_and_no_reply(sim):
    smu = sim.emulators["smu"]
    assert send(smu, ":SOUR:VOLTAGE:BANANA 1", ":FOO?") == ["", ""]
    assert send(smu, "SYST:ERR?") == ['-113,"Undefined header; :SOUR:VOLTAGE:BANANA"']
    assert send(smu, "SYST:ERR?") == ['-113,"Undefined header; :FOO?"']
    assert send(smu, "SYST:ERR?") == ['0,"No error"']


def test_parameter_errors(sim):
    smu = sim.emulators["smu"]
    send(smu, ":SOUR:VOLT:LEV 500", ":SOUR:VOLT:LEV", ":SOUR:FUNC BANANA", "OUTP MAYBE")
    codes = [int(send(smu, "SYST:ERR?")[0].split(",")[0]) for _ in range(4)]
    assert codes == [-222, -109, -224, -224]


def test_short_long_forms_and_relative_paths(sim):
    smu = sim.emulators["smu"]
    send(smu, ":SOURCE:VOLTAGE:LEVEL 0.15;ILIM 0.002")  # ILIM relative to :SOURCE:VOLTAGE:
    assert float(send(smu, ":sour:volt?")[0]) == pytest.approx(0.15)
    assert float(send(smu, "SOUR:VOLT:ILIM?")[0]) == pytest.approx(0.002)
    assert send(smu, "*OPC?;:SOUR:FUNC?") == ["1;VOLT"]


def test_header_compiler():
    rx = compile_header("[:SOURce#]:VOLTage#:HIGH")
    assert rx.fullmatch(":VOLT1:HIGH") and rx.fullmatch(":SOURCE2:VOLTAGE2:HIGH?")
    assert not rx.fullmatch(":VOLTA:HIGH")
    assert split_units(':SENS:FUNC "A;B";*OPC?') == [':SENS:FUNC "A;B"', "*OPC?"]


def test_smu_reads_the_routed_cell_and_respects_compliance():
    arrays = chip()
    sim = SimulatedInstruments(arrays, INSTRUMENTS, INPUTS)
    smu, board = sim.emulators["smu"], sim.emulators["board"]
    send(board, "WL 3", "ROW 2", "COL 5", "ROUTE READ")
    send(smu, ":SOUR:FUNC VOLT", ":SOUR:VOLT:ILIM 0.1", ":SOUR:VOLT 0.2")
    assert float(send(smu, ":READ?")[0]) == 0.0  # output off: relay open
    send(smu, "OUTP ON")
    i = float(send(smu, ":READ?")[0])
    assert i == pytest.approx(arrays["A"].read_row(2, [5], 0.2, 3.0, noisy=False)[0], rel=1e-6)
    send(smu, ":SOUR:VOLT:ILIM 1e-7")
    assert float(send(smu, ":READ?")[0]) == pytest.approx(1e-7)


def twin_pair(seed=5):
    return SimulatedArray(8, 8, seed=seed), SimulatedArray(8, 8, seed=seed)


@pytest.mark.parametrize("width,v_gate", [(1e-8, 1.5), (1e-6, 1.2), (1e-4, 2.0)])
def test_generator_pulse_reaches_cells_with_its_width_amplitude_and_the_gate(width, v_gate):
    mine, twin = twin_pair()
    sim = SimulatedInstruments({"A": mine}, INSTRUMENTS, INPUTS)
    gen, board = sim.emulators["pulser"], sim.emulators["board"]
    send(board, f"WL {v_gate}", "ROW 4", "COL 1,6", "ROUTE BL")
    send(gen, ":FUNC1 PULS", ":OUTP1:LOAD 1e6", ":VOLT1:LOW 0", ":VOLT1:HIGH 1.8", f":PULS:PER1 {3 * width}",
         f":PULS:WIDT1 {width}", ":ARM:SOUR1 MAN", "OUTP1 ON", "*TRG")
    twin.pulse_row(4, [1, 6], 1.8 * (1e6 + 50) / 1e6 * 1e6 / (1e6 + 50), width, v_gate)
    np.testing.assert_allclose(mine.state, twin.state, rtol=1e-12)
    assert mine.pulse_count == 1 and mine.time_s == pytest.approx(width)


def test_generator_left_at_50_ohm_delivers_twice_the_level_into_the_chip():
    mine, twin = twin_pair()
    sim = SimulatedInstruments({"A": mine}, INSTRUMENTS, INPUTS)
    gen, board = sim.emulators["pulser"], sim.emulators["board"]
    send(board, "WL 1.5", "ROW 0", "COL 0", "ROUTE BL")
    send(gen, ":FUNC1 PULS", ":VOLT1:LOW 0", ":VOLT1:HIGH 0.9", ":PULS:WIDT1 1e-7", ":ARM:SOUR1 MAN", "OUTP1 1", "*TRG")
    twin.pulse_row(0, [0], 0.9 * 2 * 1e6 / (1e6 + 50), 1e-7, 1.5)
    np.testing.assert_allclose(mine.state, twin.state, rtol=1e-12)


def test_generator_refuses_conflicting_settings():
    sim = SimulatedInstruments(chip(), INSTRUMENTS, INPUTS)
    gen = sim.emulators["pulser"]
    send(gen, ":VOLT1:LOW 1", ":VOLT1:HIGH 1.02")  # high must exceed low by 50 mV
    assert send(gen, "SYST:ERR?")[0].startswith("-221")
    send(gen, ":FUNC1 PULS", ":VOLT1:HIGH 1.5", ":PULS:PER1 1e-6", ":PULS:WIDT1 2e-6", ":ARM:SOUR1 MAN", "OUTP1 1",
         "*TRG")
    assert send(gen, "SYST:ERR?")[0].startswith("-221")
    assert sim.arrays["A"].pulse_count == 0


def test_no_pulse_without_output_or_arming():
    sim = SimulatedInstruments(chip(), INSTRUMENTS, INPUTS)
    gen, board = sim.emulators["pulser"], sim.emulators["board"]
    send(board, "WL 1.5", "ROW 0", "COL ALL", "ROUTE BL")
    send(gen, ":FUNC1 PULS", ":VOLT1:HIGH 2", ":ARM:SOUR1 MAN", "*TRG")  # output off
    send(gen, "OUTP1 ON", ":ARM:SOUR1 IMM", "*TRG")  # not armed for manual triggers
    assert sim.arrays["A"].pulse_count == 0


def test_settings_are_kept_per_header(sim):
    smu = sim.emulators["smu"]
    send(smu, ":SOUR:VOLT:RANG 2", ":SOUR:VOLT:DEL 0.01", ":SENS:CURR:RANG 1e-4", ":SENS:CURR:RANG:AUTO 0")
    assert [float(x) for x in send(smu, ":SOUR:VOLT:RANG?", ":SOUR:VOLT:DEL?", ":SENS:CURR:RANG?")] == [2, 0.01, 1e-4]
    assert send(smu, ":SENS:CURR:RANG:AUTO?", ":SENS:VOLT:RANG:AUTO?") == ["0", "1"]
    send(smu, ":SOUR:VOLT:RANG 300")
    assert send(smu, "SYST:ERR?")[0].startswith("-222")


def test_driver_reset_is_understood(sim):
    from drivers.keithley2450 import Keithley2450
    from hil.transport import EmulatorAdapter

    smu = Keithley2450(EmulatorAdapter(sim.emulators["smu"]))
    smu.source_voltage = 1.0
    smu.reset()  # "*RST;:stat:pres;:*CLS;"
    assert smu.source_voltage == 0.0
    smu.raise_errors()


@pytest.mark.parametrize("model", ["keithley2450", "keysight81160a", "keysightb2900"])
def test_status_and_error_queries_that_frameworks_send_on_connect(model):
    from simulated_bench import NO_VARIATION, SimulatedArray
    from simulated_bench.instruments import SimulatedInstruments

    emu = SimulatedInstruments({"A": SimulatedArray(2, 2, variation=NO_VARIATION)}, {"x": model}, {}).emulators["x"]

    def ask(line):
        return emu.feed(line.encode() + b"\n").decode().strip()

    assert int(ask("*ESR?")) == 128 and ask("*ESR?") == "0"  # power-on bit, cleared by reading
    assert ask("*STB?") == "0" and ask("*TST?") == "0" and ask("*OPT?") == "0"
    assert ask(":SYST:ERR?") == '0,"No error"' and ask(":SYST:ERR:COUN?") == "0"
    assert ask(":SYST:VERS?") == "1999.0"
    assert ask(":STAT:OPER?") == "0" and ask(":STAT:QUES:COND?") == "0"
    emu.feed(b":STAT:OPER:ENAB 512;*ESE 32;*SRE 32\n")
    assert ask(":STAT:OPER:ENAB?;*ESE?;*SRE?") == "512;32;32"
    emu.feed(b":NO:SUCH:HEADER 1\n")
    assert int(ask("*STB?")) & (4 | 32 | 64) == 4 | 32 | 64  # error queue, event summary, request
    assert ask(":SYST:ERR:ALL?").startswith("-113,")
    emu.feed(b"*CLS\n")
    assert ask("*ESR?") == "0" and ask("*STB?") == "0"
