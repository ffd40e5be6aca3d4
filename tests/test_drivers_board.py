"""AB64 addressing board driver: every command as a transcript, error replies, column specs."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from driver_contract import expected_protocol

from drivers.addressing_board import AddressingBoard, BoardError, format_columns
from simulated_bench.instruments.board import parse_columns


def test_every_setting_and_query():
    with expected_protocol(AddressingBoard, [
        ("*IDN?", "RRAM-HIL,AB64,SIM00001,1.2.0"),
        ("ARRAYS?", "MA:64x20,MB:8x64"),
        ("ARR MB", "OK"), ("ARR?", "MB"),
        ("ROW 5", "OK"), ("ROW?", "5"),
        ("COL 0-3,7,9-10", "OK"), ("COL?", "0-3,7,9-10"),
        ("WL 3.2500", "OK"), ("WL?", "3.2500"),
        ("ROUTE READ", "OK"), ("ROUTE?", "READ"),
        ("MEAS?", "1.0e-06,2.5e-06"),
        ("ROUTE VMM", "OK"),
        ("VMM? 0.1,0.2,-0.05,0,0,0,0,0", "3e-06,4e-06"),
        ("*RST", "OK"),
    ]) as board:
        assert board.id.startswith("RRAM-HIL,AB64")
        assert board.arrays == {"MA": (64, 20), "MB": (8, 64)}
        board.array = "MB"
        assert board.array == "MB"
        board.row = 5
        assert board.row == 5
        board.columns = [10, 0, 1, 2, 3, 7, 9]
        assert board.columns == "0-3,7,9-10"
        board.word_line_voltage = 3.25
        assert board.word_line_voltage == pytest.approx(3.25)
        board.route = "READ"
        assert board.route == "READ"
        assert board.measure() == [1e-6, 2.5e-6]
        board.route = "VMM"
        assert board.vmm([0.1, 0.2, -0.05, 0, 0, 0, 0, 0]) == [3e-6, 4e-6]
        board.reset()


def test_error_reply_raises_with_code():
    with expected_protocol(AddressingBoard, [("ROW 70", "ERR 4,70 outside 0..63"),
                                             ("MEAS?", "ERR 5,MEAS? needs ROUTE READ, route is BL")]) as board:
        with pytest.raises(BoardError, match="70 outside") as info:
            board.row = 70
        assert info.value.errors[0][0] == 4
        with pytest.raises(BoardError, match="ROUTE READ"):
            board.measure()


def test_validators_refuse_before_sending():
    with expected_protocol(AddressingBoard, []) as board:
        with pytest.raises(ValueError):
            board.word_line_voltage = 5.5
        with pytest.raises(ValueError):
            board.route = "SIDEWAYS"
        with pytest.raises(ValueError):
            board.columns = []
        with pytest.raises(ValueError):
            board.vmm([0.1, 3.5])


@settings(deadline=None)
@given(st.sets(st.integers(0, 63), min_size=1))
def test_column_spec_round_trips_through_the_board_parser(cols):
    spec = format_columns(sorted(cols))
    assert parse_columns(spec, 64).tolist() == sorted(cols)


def test_line_adapter_keeps_bytes_past_the_terminator_and_reports_silence():
    import serial

    from hil.transport import register_serial_endpoint, unregister_serial_endpoint
    from simulated_bench import SimulatedArray
    from simulated_bench.instruments import SimulatedInstruments

    sim = SimulatedInstruments({"A": SimulatedArray(4, 4)}, {"board": "rram-hil-ab64"}, {})
    url = register_serial_endpoint("board", sim.emulators["board"])
    try:
        board = AddressingBoard(serial.serial_for_url(url, timeout=0.1))
        board.adapter.write_bytes(b"ROW 1\nROW?\n")  # two replies arrive together
        assert board.read() == "OK"
        assert board.read() == "1"
        with pytest.raises(TimeoutError, match="no reply"):
            board.read()
        board.adapter.close()
    finally:
        unregister_serial_endpoint(url)


def test_shutdown_grounds_every_line():
    with expected_protocol(AddressingBoard, [("ROUTE OFF", "OK"), ("WL 0.0000", "OK")]) as board:
        board.shutdown()
        assert board.isShutdown


def test_batch_sends_settings_and_measure_in_one_transfer():
    with expected_protocol(AddressingBoard, [
        ("ROW 3\nCOL 0-2,5\nWL 3.0000\nROUTE READ\nMEAS?", "OK"), (None, "OK"), (None, "OK"), (None, "OK"),
        (None, "1e-06,2e-06,3e-06,4e-06"),
        ("COL 1\nROUTE BL", "OK"), (None, "OK"),
    ]) as board:
        assert board.batch(row=3, columns=[0, 1, 2, 5], word_line_voltage=3.0, route="READ",
                           measure=True) == [1e-6, 2e-6, 3e-6, 4e-6]
        assert board.batch(columns=[1], route="BL") is None
        assert board.batch() is None
        with pytest.raises(ValueError):
            board.batch(route="SIDEWAYS")


def test_batch_reads_every_reply_before_raising():
    with expected_protocol(AddressingBoard, [("ROW 99\nROUTE READ", "ERR 4,99 outside 0..63"),
                                             (None, "OK")]) as board:
        with pytest.raises(BoardError, match="99 outside"):
            board.batch(row=99, route="READ")


def test_settings_cache_sends_only_changes_and_rides_with_the_next_transfer():
    with expected_protocol(AddressingBoard, [
        ("ROW 3\nCOL 0-3\nWL 3.0000\nROUTE READ\nMEAS? 4", "OK"), (None, "OK"), (None, "OK"), (None, "OK"),
        (None, "1e-06,2e-06,3e-06,4e-06"),
        ("MEAS? 4", "1e-06,2e-06,3e-06,4e-06"),  # nothing changed: the measurement alone
        ("COL 2\nROUTE BL", "OK"), (None, "OK"),  # commit: the changed settings only
        ("MEAS?", "ERR 5,MEAS? needs ROUTE READ, route is BL"),
        ("ROW 3\nCOL 2\nWL 3.0000\nROUTE READ\nMEAS?", "OK"), (None, "OK"), (None, "OK"), (None, "OK"),
        (None, "1e-06"),  # after an error the cache is dropped: everything is sent again
    ]) as board:
        board.stage(row=3, columns=[3, 2, 1, 0], word_line_voltage=3.0, route="READ")
        assert board.measure_staged(4) == [1e-6, 2e-6, 3e-6, 4e-6]
        board.stage(row=3, columns=[0, 1, 2, 3], word_line_voltage=3.0, route="READ")
        assert board.measure_staged(4) == [1e-6, 2e-6, 3e-6, 4e-6]
        board.stage(row=3, columns=[2], route="BL")
        board.commit()
        board.commit()  # nothing staged: nothing sent
        with pytest.raises(BoardError, match="needs ROUTE READ"):
            board.measure_staged()
        board.stage(row=3, columns=[2], word_line_voltage=3.0, route="READ")
        assert board.measure_staged() == [1e-6]
        with pytest.raises(ValueError):
            board.measure_staged(0)


def test_sequence_is_one_transfer_and_its_last_step_stays_known():
    with expected_protocol(AddressingBoard, [
        ("ROW 1\nSEQ SL:4.0000:5;BL:1.2000:0-1;1.3000:7", "OK"), (None, "OK"),
        ("WL 3.0000\nROUTE READ\nMEAS?", "OK"), (None, "OK"), (None, "2e-06"),
    ]) as board:
        board.stage(row=1)
        board.sequence([("SL", 4.0, [5]), ("bl", 1.2, [1, 0]), ("BL", 1.3, [7])])
        board.stage(row=1, columns=[7], word_line_voltage=3.0, route="READ")  # row and columns known
        assert board.measure_staged() == [2e-6]
        board.sequence([])  # no steps: nothing sent
        with pytest.raises(ValueError):
            board.sequence([("READ", 3.0, [1])])  # a sequence pulses: BL or SL only
        with pytest.raises(ValueError):
            board.sequence([("BL", 6.0, [1])])  # beyond the word-line DAC


def test_long_sequences_split_into_lines_of_one_transfer():
    steps = [("BL", 1.0 + k / 1000, [k % 20]) for k in range(300)]
    body = [f"{1.0 + k / 1000:.4f}:{k % 20}" for k in range(300)]
    first = "SEQ BL:" + ";".join(body[:256])
    second = "SEQ BL:" + ";".join(body[256:])  # a new line names its route again
    with expected_protocol(AddressingBoard, [(first + "\n" + second, "OK"), (None, "OK")]) as board:
        board.sequence(steps)
