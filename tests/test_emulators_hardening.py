"""A served emulator is a network service: the TSP sandbox, hostile bytes, bounded input and connections."""
import socket
import time

import pytest

from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import SimulatedInstruments, base, server, tsp
from simulated_bench.instruments.server import InstrumentServer

MODELS = {"smu": "keithley2600b", "mx": "keithley707b", "smu2450": "keithley2450", "gen": "keysight81160a",
          "b29": "keysightb2900", "board": "rram-hil-ab64"}


@pytest.fixture
def sim(monkeypatch):
    # a small budget keeps run-away tests short; the mechanism is the same as with the default
    monkeypatch.setattr(tsp, "INSTRUCTION_BUDGET", 2_000_000)
    return SimulatedInstruments({"A": SimulatedArray(4, 4, variation=NO_VARIATION)}, MODELS,
                                {"read": "smu.a", "gate": "smu.b", "pulse": "gen.1"})


def send(emu, line):
    data = line if isinstance(line, bytes) else line.encode()
    return emu.feed(data + b"\n").decode()


def tsp_errors(emu):
    out = []
    while True:
        code, text, *_ = send(emu, "print(errorqueue.next())").split("\t")
        if float(code) == 0:
            return out
        out.append((int(float(code)), text))


def test_host_errors_reach_lua_as_strings_not_python_objects(sim, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host data")
    mx = sim.emulators["mx"]
    assert send(mx, "local ok, e = pcall(channel.close, 5) print(ok, type(e))") == "false\tstring\n"
    attack = ("local ok, e = pcall(channel.close, 5) "
              f"print(e.__traceback__.tb_frame.f_globals['__builtins__']['open']('{secret}').read())")
    assert "host data" not in send(mx, attack)
    target = tmp_path / "written.txt"
    send(mx, "local ok, e = pcall(channel.close, 5) "
             f"e.__traceback__.tb_frame.f_globals['__builtins__']['open']('{target}', 'w').write('x')")
    assert not target.exists()
    for expr in ("python", "io", "os", "debug", "load", "require", "dofile", "package", "collectgarbage"):
        assert send(mx, f"print({expr})") == "nil\n"
    smu = sim.emulators["smu"]  # the 2600B's host function (measure) is guarded the same way
    assert send(smu, "smua.source.func = 0 smua.source.output = 1 "
                     "local ok, e = pcall(smua.measure.i) print(ok, type(e), e)").startswith("false\tstring\t")


@pytest.mark.parametrize("runaway", [
    "while true do end",
    "while true do pcall(function() while true do end end) end",
    "local co = coroutine.wrap(function() while true do end end) co()",
    "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
    "xpcall(function() while true do end end, function() while true do end end)",
    "error(setmetatable({}, {__tostring = function() while true do end end}))",
    "for i = 1, 1e9 do smua.measure.i() end",
    "delay(1e9)",
])
def test_instruction_budget_cannot_be_escaped(sim, runaway):
    smu = sim.emulators["smu"]
    send(smu, runaway)
    (code, text), = tsp_errors(smu)
    assert code == -286 and "budget" in text
    assert send(smu, "print(1 + 1)") == "2.00000e+00\n"  # the instrument serves the next message


@pytest.mark.parametrize("attack,expected", [
    ("x = string.rep('x', 1e9)", "not enough memory"),
    ("local t = {} for i = 1, 1e8 do t[i] = string.rep('z', 1000) .. i end", "memory"),
    ("print(string.find(string.rep('a', 30000), string.rep('a*', 30) .. 'b'))", "pattern too complex"),
    ("setmetatable({}, {__gc = function() while true do end end})", "__gc"),
    ("local x <close> = setmetatable({}, {__close = function() while true do end end})", "to-be-closed"),
    ("for i = 1, 1e6 do print(string.rep('y', 100000)) end", "output queue full"),
])
def test_memory_and_work_outside_the_budget_are_capped(sim, attack, expected):
    smu = sim.emulators["smu"]
    send(smu, attack)
    errors = tsp_errors(smu)
    assert errors and expected in errors[0][1]
    assert send(smu, "print(2)") == "2.00000e+00\n"


def test_scripts_are_bounded(sim, monkeypatch):
    monkeypatch.setattr(tsp, "MAX_SCRIPT", 1000)
    smu = sim.emulators["smu"]
    send(smu, "loadscript big")
    for _ in range(50):
        send(smu, "x = 1 -- " + "#" * 40)
    (code, text), = tsp_errors(smu)
    assert code == -286 and "exceeds" in text
    assert send(smu, "print(3)") == "3.00000e+00\n"  # not stuck in script mode


@pytest.mark.parametrize("name,query", [("smu", "print(1)"), ("mx", "print(1)"), ("smu2450", "*IDN?"),
                                        ("gen", "*IDN?"), ("b29", "*IDN?")])
def test_a_non_ascii_byte_is_an_error_queue_entry(sim, name, query):
    emu = sim.emulators[name]
    assert send(emu, b"*IDN?\xff\xfe") == ""
    assert send(emu, "print('caf\\195\\169')" if name in ("smu", "mx") else query)  # still answers
    if name in ("smu", "mx"):
        assert send(emu, "print('\\255')") == "\\255\n"  # bytes the sandbox prints are escaped
        assert tsp_errors(emu)[0][0] == -101
    else:
        reply = send(emu, "SYST:ERR?")
        assert reply.startswith("-101") and reply.isascii()
        assert send(emu, "SYST:ERR?").startswith("0,")


def test_board_answers_bad_bytes_and_long_lines_with_an_error_reply(sim, monkeypatch):
    board = sim.emulators["board"]
    assert send(board, b"ROW \xff").startswith("ERR 3,")
    monkeypatch.setattr(board._lines, "max_line", 100)
    assert send(board, "COL " + "1," * 100).startswith("ERR 3,Input buffer overrun")
    assert send(board, "ROW?") == "0\n"


def test_an_over_long_line_is_dropped_up_to_its_terminator(sim):
    emu = sim.emulators["smu2450"]
    emu._lines.max_line = 64
    assert emu.feed(b":SOUR:VOLT " + b"9" * 100) == b""  # beyond the bound before its terminator
    assert emu.feed(b"9" * 10_000) == b""  # still the same line: discarded, not buffered
    assert emu._lines._buf == b""
    assert emu.feed(b"999\n*IDN?\n").startswith(b"KEITHLEY")
    assert send(emu, "SYST:ERR?").startswith("-363")
    assert send(emu, "SYST:ERR?").startswith("0,")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def ask(s, line):
    s.sendall(line.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf.decode()


def assert_a_place_frees(srv):
    """Once the server has noticed a closed connection, a new client is served (MAX_CONNECTIONS = 2)."""
    for _ in range(50):
        if srv.connections < 2:
            break
        time.sleep(0.02)
    again = connect(srv.port)
    assert ask(again, "*IDN?").startswith("KEITHLEY")
    again.close()


@pytest.fixture
def smu_server(sim, monkeypatch):
    """The 2450's emulator served on an ephemeral port, taking two clients at a time."""
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
    srv = InstrumentServer(sim.emulators["smu2450"])
    yield srv
    srv.close()


def test_served_instrument_caps_connections_and_input(smu_server, monkeypatch):
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 1024)
    srv = smu_server
    a, b = connect(srv.port), connect(srv.port)
    assert ask(a, "*IDN?").startswith("KEITHLEY") and ask(b, "*IDN?").startswith("KEITHLEY")
    c = connect(srv.port)
    with pytest.raises((ConnectionError, OSError)):
        ask(c, "*IDN?")  # refused: the server closes it
    c.close()
    a.sendall(b"X" * 5000)  # a flood without a terminator is dropped, not stored
    a.sendall(b"XX\n\xff\n")
    assert ask(a, "SYST:ERR?").startswith("-363")
    assert ask(a, "SYST:ERR?").startswith("-101")
    assert ask(a, "*IDN?").startswith("KEITHLEY")
    b.close()
    assert_a_place_frees(srv)  # a closed connection frees its place
    a.close()


def test_a_half_command_left_hanging_drops_its_connection_not_the_server(smu_server, monkeypatch):
    """A client that stalls mid-line loses its session; an idle one keeps it; the freed place is taken again."""
    monkeypatch.setattr(server, "PARTIAL_LINE_TIMEOUT_S", 0.2)
    idle, stalled = connect(smu_server.port), connect(smu_server.port)
    assert ask(idle, "*IDN?").startswith("KEITHLEY")
    stalled.sendall(b":SOUR:VOLT 0.")  # half a command, and nothing more
    assert stalled.recv(100) == b""  # the server closed it (the client's own timeout is 5 s)
    stalled.close()
    time.sleep(0.5)  # idle (no half line) for longer than the half-command limit: still served
    assert ask(idle, "*IDN?").startswith("KEITHLEY")
    assert_a_place_frees(smu_server)
    idle.close()


def test_one_command_cannot_occupy_the_chip_for_hours(sim):
    gen, b29 = sim.emulators["gen"], sim.emulators["b29"]
    send(gen, ":FUNC1 PULS;:OUTP1:LOAD 1e6;:VOLT1:LOW 0;:ARM:SOUR1 MAN;:TRIG1:COUN 2000000000;:OUTP1 ON")
    send(gen, "*TRG")
    assert send(gen, "SYST:ERR?").startswith("-221")
    send(b29, ":SOUR1:FUNC:SHAP PULS;:SOUR1:PULS:WIDT 100;:TRIG1:COUN 100000;:ARM1:COUN 100000;:INIT (@1)")
    assert send(b29, "SYST:ERR?").startswith("-221")
    assert send(b29, "*IDN?").startswith("Keysight")


def test_host_time_of_one_chunk_is_bounded(monkeypatch):
    monkeypatch.setattr(tsp, "MAX_CHUNK_S", 0.2)  # the instruction budget stays at its default
    smu = SimulatedInstruments({"A": SimulatedArray(4, 4, variation=NO_VARIATION)}, {"smu": "keithley2600b"},
                               {"read": "smu.a"}).emulators["smu"]
    t0 = time.monotonic()
    send(smu, "smua.source.output = 1 while true do pcall(smua.measure.i) end")
    (code, text), = tsp_errors(smu)
    assert code == -286 and "time budget" in text
    assert time.monotonic() - t0 < 10
    assert send(smu, "print(5)") == "5.00000e+00\n"


def test_reading_counts_beyond_what_the_emulator_runs_are_refused(sim):
    smu = sim.emulators["smu2450"]
    send(smu, ":COUN 300000")
    assert send(smu, ":READ?") == ""
    assert send(smu, "SYST:ERR?").startswith("-221")


def test_served_board_answers_hostile_sequences_with_error_replies(sim):
    """SEQ and MEAS? n over the socket: every malformed or oversized request gets one ERR reply,
    runs nothing, and the connection stays usable."""
    board = sim.emulators["board"]
    srv = InstrumentServer(board)
    try:
        s = connect(srv.port)
        before = sim.arrays["A"].state.copy()
        for line in ("SEQ BL:1:0;" + "2:1;" * 300, "SEQ " + "BL:" * 50, "SEQ BL:1e309:0", "SEQ BL:nan:0",
                     "SEQ SL:1:0-99", "MEAS? 1e9", "MEAS? -1", "SEQ BL:1:0\x01"):
            assert ask(s, line).startswith("ERR "), line
        assert (sim.arrays["A"].state == before).all()
        assert ask(s, "SEQ BL:1:" + "0," * 5000).startswith("ERR 3,line too long")  # beyond the board's line length
        assert ask(s, "*IDN?").startswith("RRAM-HIL,AB64")
    finally:
        srv.close()
