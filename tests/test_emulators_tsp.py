"""TSP emulators (2600B, 707B): received TSP runs as Lua; the instruments' own errors."""
import numpy as np
import pytest

from drivers.keithley2600b import Keithley2600B
from hil.transport import EmulatorAdapter
from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import SimulatedInstruments

INSTRUMENTS = {"smu": "keithley2600b", "board": "rram-hil-ab64"}
INPUTS = {"read": "smu.a", "gate": "smu.b", "pulse": "board"}  # "pulse" fed by nothing that pulses


def send(emu, *lines):
    return [emu.feed((line + "\n").encode()).decode().rstrip("\n") for line in lines]


def errors(emu):
    out = []
    while True:
        code, text, *_ = send(emu, "print(errorqueue.next())")[0].split("\t")
        if float(code) == 0:
            return out
        out.append((int(float(code)), text))


@pytest.fixture
def smu():
    sim = SimulatedInstruments({"A": SimulatedArray(4, 4, variation=NO_VARIATION)}, INSTRUMENTS,
                               {"read": "smu.a", "gate": "smu.b"})
    return sim.emulators["smu"]


def test_idn_and_lua_really_runs(smu):
    assert send(smu, "*IDN?")[0].startswith("Keithley Instruments Inc., Model 2636B")
    assert send(smu, "x = 0 for i = 1, 10 do x = x + i * i end print(x)") == ["3.85000e+02"]
    assert send(smu, 'local t = {} for w in string.gmatch("a,b,c", "[^,]+") do t[#t + 1] = w end print(#t, t[3])') \
        == ["3.00000e+00\tc"]
    send(smu, "format.asciiprecision = 3")
    assert send(smu, "print(math.pi)") == ["3.14e+00"]


def test_syntax_runtime_and_parameter_errors(smu):
    send(smu, "smua.source.levelv = = 1", "smua.source.banana = 1", "smua.source.levelv = 500",
         "smua.trigger.initiate()", "display.clear()")
    codes = [c for c, _ in errors(smu)]
    assert codes == [-285, -286, -222, -286, -286]


def test_scripts_load_run_and_persist(smu):
    send(smu, "loadscript square", "function sq(x) return x * x end", "endscript")
    assert errors(smu) == []
    send(smu, "square.run()")
    assert send(smu, "print(sq(7))") == ["4.90000e+01"]
    send(smu, "loadandrunscript hello", "print('hi')", "endscript")
    assert send(smu, "hello()") == ["hi"]


def test_sandbox_has_no_host_access(smu):
    send(smu, "print(io.open('/etc/passwd'))", "os.exit()", "python.eval('1')", "require('os')")
    assert [c for c, _ in errors(smu)] == [-286] * 4


def test_runaway_script_is_stopped(smu):
    send(smu, "while true do end")
    (code, text), = errors(smu)
    assert code == -286 and "budget" in text
    assert send(smu, "print(1)") == ["1.00000e+00"]


def test_buffers_and_printbuffer(smu):
    send(smu, "smua.source.output = 1", "smua.nvbuffer1.clear()",
         "for i = 1, 4 do smua.measure.i(smua.nvbuffer1) end")
    assert send(smu, "print(smua.nvbuffer1.n)") == ["4.00000e+00"]
    assert send(smu, "printbuffer(1, 4, smua.nvbuffer1)") == [", ".join(["0.00000e+00"] * 4)]
    send(smu, "printbuffer(1, 9, smua.nvbuffer1)")
    assert errors(smu)[0][0] == -286


def test_pulse_read_train_runs_on_the_instrument_against_the_chip():
    """smub drives the word line, smua pulses and reads one cell routed by the board."""
    mine = SimulatedArray(4, 4, seed=9, variation=NO_VARIATION)
    twin = SimulatedArray(4, 4, seed=9, variation=NO_VARIATION)
    sim = SimulatedInstruments({"A": mine}, INSTRUMENTS, {"read": "smu.a", "gate": "smu.b"})
    board = sim.emulators["board"]
    assert send(board, "ROW 1", "COL 2", "ROUTE READ") == ["OK"] * 3
    smu = Keithley2600B(EmulatorAdapter(sim.emulators["smu"]))
    smu.smub.apply_voltage(1e-3)
    smu.smub.source_voltage = 1.5
    smu.smub.output_enabled = True
    smu.smua.apply_voltage(1e-3)
    smu.smua.output_enabled = True
    levels = [1.4, 1.6, 1.8, 2.0, 2.2]
    readings = smu.pulse_read(levels, 200e-6, 0.2)
    expected = []
    for v in levels:
        twin.pulse_row(1, [2], v, 200e-6, 1.5)
        expected.append(twin.read_row(1, [2], 0.2, 1.5, noisy=False)[0])
    np.testing.assert_allclose(readings, expected, rtol=1e-5)  # 6 printed digits
    assert readings[-1] > 5 * readings[0]  # the train programmed the cell
    np.testing.assert_allclose(mine.state, twin.state, rtol=1e-12)
    smu.raise_errors()


def test_matrix_routes_lines_from_crosspoints():
    mine = SimulatedArray(4, 4, seed=2, variation=NO_VARIATION)
    sim = SimulatedInstruments({"A": mine}, {"mx": "keithley707b", "smu": "keithley2600b"},
                               {"read": "smu.a", "gate": "smu.b"},
                               options={"mx": {"matrix": {"rows": {"A": "read", "B": "pulse", "C": "gate"}}}})
    mx, smu = sim.emulators["mx"], sim.emulators["smu"]
    # lines: BL0-3 = matrix columns 1-4, SL0-3 = 5-8, WL0-3 = 9-12 (card 1)
    send(mx, 'channel.exclusiveclose("1A02,1C11")')  # BL1 on READ, WL2 on the gate
    assert send(mx, 'print(channel.getclose("allslots"))') == ["1A02;1C11"]
    send(smu, "smub.source.levelv = 3 smub.source.output = 1 smua.source.levelv = 0.2 smua.source.output = 1")
    i = float(send(smu, "print(smua.measure.i())")[0])
    assert i == pytest.approx(mine.read_row(2, [1], 0.2, 3.0, noisy=False)[0], rel=1e-5)
    send(mx, 'channel.open("allslots")')
    assert float(send(smu, "print(smua.measure.i())")[0]) == 0.0
    send(mx, 'channel.close("1Z01")', 'channel.close("1A13")')
    assert [c for c, _ in errors(mx)] == [1115, 1115]


def test_tsplink_master_script_routes_the_matrix_and_tunes_cells_on_the_instrument():
    """A 2636B script reaches the 707B as node[2]; the tuning loop brings cells into their band."""
    from drivers.keithley2600b import Keithley2600B
    from protocols.ispp import STANFORD_ISPP

    mine = SimulatedArray(4, 4, seed=3, variation=NO_VARIATION)
    sim = SimulatedInstruments({"A": mine}, {"smu": "keithley2600b", "mx": "keithley707b"},
                               {"read": "smu.a", "gate": "smu.b"},
                               options={"smu": {"tsplink_node": 1}, "mx": {"tsplink_node": 2}})
    smu = Keithley2600B(EmulatorAdapter(sim.emulators["smu"]))
    for ch in (smu.smua, smu.smub):
        ch.apply_voltage(0.05, nplc=0.01)
        ch.output_enabled = True
    lad = STANFORD_ISPP
    smu.load_tuning((lad.set_ladder.amps, lad.set_ladder.gates), (lad.reset_ladder.amps, lad.reset_ladder.gates))
    # lines: BL0-3 = matrix columns 1-4, SL0-3 = 5-8, WL0-3 = 9-12; row A = read (smua), C = gate (smub)
    routes = [f"1A0{c + 1},1C{9 + 1:02d}" for c in range(4)]  # row 1
    i_target = np.array([10e-6, 20e-6, 40e-6, 80e-6])  # A at 0.2 V: 50 to 400 uS
    before = sim.clock.snapshot()
    result = smu.tune(routes, i_target, 0.03, 0.2, 3.0, 100e-6, 60, matrix_node=2)
    spent = sim.clock.since(before)
    assert spent["round_trips"] == 1  # the whole row in one query
    assert sum(n for _, n, _ in result) > 4 and any(ok for _, _, ok in result)
    for (i, n, ok), t in zip(result, i_target):
        assert (abs(i - t) <= 0.031 * t) == ok  # the last read is in the band exactly when reported so
    # and the chip agrees: noise-free, the tuned cells sit in their bands (read noise widens it a little)
    g_row = mine.read_row(1, None, 0.2, 3.0, noisy=False)
    done = np.array([ok for _, _, ok in result])
    np.testing.assert_allclose(g_row[done], i_target[done], rtol=0.06)
    assert spent["bench_time_s"] > sum(n for _, n, _ in result) * 100e-6  # pulses take their width
    smu.raise_errors()


def test_tsp_status_model_and_common_status_commands(smu):
    assert int(send(smu, "*ESR?")[0]) & 128  # power on
    assert send(smu, "*ESR?") == ["0"]
    send(smu, "smua.banana = 1")
    assert int(send(smu, "*STB?")[0]) & 4  # error available
    assert float(send(smu, "print(status.condition)")[0]) == 4
    assert int(send(smu, "*ESR?")[0]) & 16  # execution error
    send(smu, "*ESE 60", "*SRE 32")
    assert send(smu, "*ESE?", "*SRE?") == ["60", "32"]
    assert send(smu, "print(localnode.model, localnode.serialno)") == ["2636B\t4469971"]
    send(smu, "localnode.model = 'x'")
    assert [c for c, _ in errors(smu)][-1] == -286
