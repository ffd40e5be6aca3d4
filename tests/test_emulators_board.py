"""AB64 board emulator: its line protocol, routing of the chip's lines, and a fuzzed parser."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import SimulatedInstruments
from simulated_bench.instruments.board import BoardError, format_columns, parse_columns
from simulated_bench.instruments.wiring import GATE, GND, PULSE, READ


def make(rows=6, cols=5, arrays=None):
    arrays = arrays or {"A": SimulatedArray(rows, cols, variation=NO_VARIATION)}
    sim = SimulatedInstruments(arrays, {"smu": "keithley2450", "board": "rram-hil-ab64"},
                               {"read": "smu", "gate": "board"})
    return sim, sim.emulators["board"]


def send(emu, *lines):
    return [emu.feed((line + "\n").encode()).decode().rstrip("\n") for line in lines]


def test_protocol_replies():
    sim, board = make()
    assert send(board, "*IDN?") == ["RRAM-HIL,AB64,SIM00001,1.2.0"]
    assert send(board, "ARRAYS?", "ROW 3", "ROW?", "COL 1-2,4", "COL?", "WL 2.5", "WL?", "ROUTE sl", "ROUTE?") == \
        ["A:6x5", "OK", "3", "OK", "1-2,4", "OK", "2.5000", "OK", "SL"]
    assert send(board, "FLY", "ROW", "ROW 6", "ROW 1.5", "COL 3-1", "WL 7", "ROUTE UP", "MEAS?") == [
        "ERR 1,unknown command 'FLY'", "ERR 2,missing argument", "ERR 4,6 outside 0..5",
        "ERR 3,row must be a whole number, got '1.5'", "ERR 3,descending range '3-1'", "ERR 4,7 outside 0..5",
        "ERR 3,route must be one of OFF/READ/BL/SL/VMM, got 'UP'", "ERR 5,MEAS? needs ROUTE READ, route is SL"]


def test_routes_connect_the_documented_lines():
    sim, board = make()
    w = sim.wiring
    send(board, "ROW 2", "COL 0,3", "ROUTE READ")
    assert w.bl.tolist() == [READ, GND, GND, READ, GND]
    assert w.wl.tolist() == [GND, GND, GATE, GND, GND, GND] and not w.sl.any()
    send(board, "ROUTE BL")
    assert w.bl.tolist() == [PULSE, GND, GND, PULSE, GND] and not w.sl.any()
    send(board, "ROUTE SL")  # source line driven, selected bit lines grounded, the others inhibited
    assert w.bl.tolist() == [GND, PULSE, PULSE, GND, PULSE]
    assert w.sl.tolist() == [GND, GND, PULSE, GND, GND, GND]
    send(board, "ROUTE VMM")
    assert (w.wl == GATE).all() and not w.bl.any()
    send(board, "ROUTE OFF")
    assert not (w.bl.any() or w.sl.any() or w.wl.any())


def test_meas_reads_each_selected_bit_line():
    sim, board = make()
    arr = sim.arrays["A"]
    arr.state[4] = np.linspace(arr.model.state_off, arr.model.state_on, 5)
    smu = sim.emulators["smu"]
    send(smu, ":SOUR:VOLT:ILIM 0.01", ":SOUR:VOLT 0.2", "OUTP ON")
    send(board, "WL 3", "ROW 4", "COL 1,2,4", "ROUTE READ")
    got = np.array(send(board, "MEAS?")[0].split(","), float)
    np.testing.assert_allclose(got, arr.read_row(4, [1, 2, 4], 0.2, 3.0, noisy=False), rtol=1e-6)


def test_arrays_are_selected_by_name():
    arrays = {"MA": SimulatedArray(3, 2, variation=NO_VARIATION), "MB": SimulatedArray(2, 7, variation=NO_VARIATION)}
    sim, board = make(arrays=arrays)
    assert send(board, "ARR?", "ARRAYS?") == ["MA", "MA:3x2,MB:2x7"]
    assert send(board, "ARR MB", "ARR?", "COL 6", "ROW 2") == ["OK", "MB", "OK", "ERR 4,2 outside 0..1"]
    assert send(board, "ARR MC")[0].startswith("ERR 4")


def test_vmm_checks_length_and_range():
    sim, board = make(rows=3, cols=2)
    send(board, "WL 3", "ROUTE VMM")
    assert send(board, "VMM? 0.1,0.2")[0].startswith("ERR 3")
    assert send(board, "VMM? 0.1,0.2,4")[0].startswith("ERR 4")
    got = np.array(send(board, "VMM? 0.1,0.2,0.3")[0].split(","), float)
    np.testing.assert_allclose(got, sim.arrays["A"].vmm([0.1, 0.2, 0.3], 3.0, noisy=False), rtol=1e-6)


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_line_gets_exactly_one_well_formed_reply(line):
    sim, board = make()
    data = line.replace("\n", " ").replace("\r", " ").encode("ascii", errors="replace")
    out = board.feed(data + b"\n").decode()
    if data.decode().strip():
        assert out.count("\n") == 1
        reply = out.strip()
        assert reply == "OK" or reply.startswith("ERR ") or reply[:1].isalnum() or reply[:1] == "-"
    else:
        assert out == ""


@given(st.text(alphabet="0123456789,- ALalx", max_size=30))
@settings(max_examples=300, deadline=None)
def test_column_parser_accepts_or_refuses_cleanly(spec):
    try:
        cols = parse_columns(spec, 16)
    except BoardError as err:
        assert err.reply.startswith(("ERR 3,", "ERR 4,"))
        return
    assert cols.size >= 1 and cols.min() >= 0 and cols.max() < 16
    assert np.all(np.diff(cols) > 0)
    assert parse_columns(format_columns(cols, 16), 16).tolist() == cols.tolist()


@given(st.lists(st.integers(0, 39), min_size=1, max_size=40, unique=True))
@settings(deadline=None)
def test_column_format_round_trip(cols):
    cols = np.array(sorted(cols))
    assert parse_columns(format_columns(cols, 40), 40).tolist() == cols.tolist()


def test_read_bus_in_compliance_settles_at_the_limit():
    sim, board = make(rows=2, cols=5)
    arr = sim.arrays["A"]
    arr.state[1] = arr.model.state_on  # five LRS cells on one row
    smu = sim.emulators["smu"]
    send(smu, ":SOUR:VOLT:ILIM 0.2", ":SOUR:VOLT 0.2", "OUTP ON")
    send(board, "WL 3", "ROW 1", "COL ALL", "ROUTE READ")
    free = np.array(send(board, "MEAS?")[0].split(","), float)
    limit = free.sum() / 3
    send(smu, f":SOUR:VOLT:ILIM {limit}")
    held = np.array(send(board, "MEAS?")[0].split(","), float)
    assert held.sum() == pytest.approx(limit, rel=1e-6)
    assert float(send(smu, ":READ?")[0]) == pytest.approx(limit, rel=1e-6)


def make_pulsed(rows=4, cols=6, arm="EXT"):
    """A board whose TRIG OUT reaches an 81160A on its PULSE input, armed on ``arm``."""
    arr = SimulatedArray(rows, cols, variation=NO_VARIATION)
    sim = SimulatedInstruments({"A": arr}, {"gen": "keysight81160a", "board": "rram-hil-ab64"},
                               {"pulse": "gen.1", "gate": "board"})
    send(sim.emulators["gen"], f":FUNC1 PULS;:OUTP1:LOAD INF;:VOLT1:LOW 0;:VOLT1:HIGH 2;:PULS:PER1 2e-6;"
                               f":PULS:WIDT1 1e-6;:ARM:SOUR1 {arm};:OUTP1 ON")
    return sim, sim.emulators["board"], arr


def test_seq_pulses_each_steps_cells_with_its_gate_and_nothing_else():
    sim, board, arr = make_pulsed()
    twin = SimulatedArray(4, 6, variation=NO_VARIATION)
    assert send(board, "ROW 2", "SEQ BL:1.2:0,3;2.0:5;SL:4:3") == ["OK", "OK"]
    # the same pulses applied one by one to a twin chip
    twin.pulse_row(2, [0, 3], 2.0, 1e-6, 1.2)
    twin.pulse_row(2, [5], 2.0, 1e-6, 2.0)
    twin.pulse_row(2, [3], -2.0, 1e-6, 4.0)
    np.testing.assert_allclose(arr.state, twin.state)
    # the last step's settings stay on the board
    assert send(board, "ROUTE?", "WL?", "COL?") == ["SL", "4.0000", "3"]
    w = sim.wiring
    assert w.sl.tolist() == [GND, GND, PULSE, GND]


def test_seq_checks_every_step_before_the_first_runs():
    sim, board, arr = make_pulsed()
    before = arr.state.copy()
    bad = {"SEQ": "ERR 2,missing argument",
           "SEQ 1.2:0": "ERR 3,a SEQ step is",  # the first step must name its route
           "SEQ BL:1.2:0;READ:3:1": "ERR 3,a SEQ step routes BL or SL",
           "SEQ BL:1.2:0;BL:7:1": "ERR 4,7 outside 0..5",
           "SEQ BL:1.2:0;BL:1.2:9": "ERR 4,column 9 outside 0..5",
           "SEQ BL:1.2:0;BL:x:1": "ERR 3,expected a number",
           "SEQ BL:1.2:0;;": "ERR 3,a SEQ step is",
           "SEQ BL:1.2:0:4": "ERR 3,a SEQ step is",
           "SEQ BL:" + ";".join(["1.2:0"] * 257): "ERR 4,a SEQ holds at most 256 steps"}
    for line, reply in bad.items():
        got = send(board, line)[0]
        assert got.startswith(reply), (line, got)
    np.testing.assert_array_equal(arr.state, before)  # no step of a refused SEQ ran
    assert send(board, "*IDN?")[0].startswith("RRAM-HIL,AB64")


def test_seq_without_an_armed_pulser_says_no_pulse_came_back():
    sim, board, arr = make_pulsed(arm="MAN")
    before = arr.state.copy()
    assert send(board, "SEQ BL:2:1")[0].startswith("ERR 5,step 0: no pulse came back")
    np.testing.assert_array_equal(arr.state, before)


def test_meas_averages_n_conversions_in_one_reply():
    sim, board = make()
    smu = sim.emulators["smu"]
    send(smu, ":SOUR:VOLT:ILIM 0.01", ":SOUR:VOLT 0.2", "OUTP ON")
    send(board, "WL 3", "ROW 1", "COL 0-2", "ROUTE READ")
    t0 = sim.clock.instruments["board"].busy_s
    one = np.array(send(board, "MEAS? 8")[0].split(","), float)
    assert one.size == 3
    assert sim.clock.instruments["board"].busy_s - t0 >= 8 * 200e-6  # eight conversions' time
    for arg, reply in (("0", "ERR 4,"), ("257", "ERR 4,"), ("2.5", "ERR 3,"), ("x", "ERR 3,")):
        assert send(board, f"MEAS? {arg}")[0].startswith(reply)


@given(st.text(alphabet=st.sampled_from("BLS:;,-0123456789. x"), max_size=60))
@settings(deadline=None, max_examples=150)
def test_seq_parser_answers_any_argument_with_one_reply(arg):
    sim, board, arr = make_pulsed()
    got = board.feed(f"SEQ {arg}\n".encode()).decode()
    assert got.count("\n") == 1 and (got == "OK\n" or got.startswith("ERR "))
    assert send(board, "ROW?") == ["0"]  # still answering
