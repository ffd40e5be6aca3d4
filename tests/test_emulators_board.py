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
