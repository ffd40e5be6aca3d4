"""Bench clock: round trips and estimated bench time charged by the emulators."""
import pytest

from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import GPIB, LAN, SERIAL, USBTMC, SimulatedInstruments, transport_for


def sim_with(instruments, inputs=None, options=None):
    return SimulatedInstruments({"A": SimulatedArray(8, 8, variation=NO_VARIATION)}, instruments, inputs or {},
                                options=options)


def feed(emu, *lines):
    return [emu.feed(line.encode() + b"\n") for line in lines]


def test_each_message_costs_its_transport_and_queries_their_reply():
    sim = sim_with({"smu": "keithley2450"}, options={"smu": {"transport": "gpib"}})
    feed(sim.emulators["smu"], ":SOUR:VOLT 0.1", "*IDN?")
    t = sim.bench_time()["instruments"]["smu"]
    assert t["round_trips"] == 2 and t["replies"] == 1
    n_bytes = t["bytes"]
    assert t["transport_s"] == pytest.approx(2 * GPIB.message_latency_s + GPIB.reply_latency_s
                                             + n_bytes * GPIB.byte_time_s)
    assert sim.clock.round_trips == 2


def test_integration_time_follows_nplc():
    sim = sim_with({"smu": "keithley2450"})
    smu = sim.emulators["smu"]
    feed(smu, ":SENS:CURR:NPLC 1", ":COUN 5")
    before = sim.clock.snapshot()["instruments"]["smu"]["busy_s"]
    feed(smu, ":READ?")
    busy = sim.clock.snapshot()["instruments"]["smu"]["busy_s"] - before
    assert busy == pytest.approx(5 * (1 / 50 + smu.timing.reading_overhead_s))
    feed(smu, ":SENS:CURR:NPLC 0.01")
    before = sim.clock.snapshot()["instruments"]["smu"]["busy_s"]
    feed(smu, ":READ?")
    assert sim.clock.snapshot()["instruments"]["smu"]["busy_s"] - before < busy / 10


def test_relays_cost_their_settling_only_when_they_move():
    sim = sim_with({"mx": "keithley707b"})
    mx = sim.emulators["mx"]
    feed(mx, 'channel.close("1A01")')
    first = sim.clock.instruments["mx"].busy_s
    assert first >= mx.relay_settle_s
    feed(mx, 'channel.close("1A01")')  # already closed: nothing moves
    assert sim.clock.instruments["mx"].busy_s - first < mx.relay_settle_s / 10


def test_pulses_cost_their_period_and_tsp_scripts_their_instructions():
    sim = sim_with({"gen": "keysight81160a", "smu": "keithley2600b"})
    gen, smu = sim.emulators["gen"], sim.emulators["smu"]
    feed(gen, ":FUNC1 PULS;:PULS:PER1 1e-3;:PULS:WIDT1 1e-4;:TRIG1:COUN 10;:ARM:SOUR1 MAN;:OUTP1 ON")
    before = sim.clock.instruments["gen"].busy_s
    feed(gen, "*TRG")
    assert sim.clock.instruments["gen"].busy_s - before == pytest.approx(10 * 1e-3 + gen.timing.rearm_s)
    feed(smu, "x = 0 for i = 1, 200000 do x = x + i end")
    assert sim.clock.instruments["smu"].busy_s > 100_000 * smu.tsp_instruction_s
    feed(smu, "delay(0.25)")
    assert sim.clock.instruments["smu"].busy_s > 0.25


def test_serial_board_pays_per_byte_and_the_snapshot_api():
    sim = sim_with({"board": "rram-hil-ab64"})
    board = sim.emulators["board"]
    assert board.transport == SERIAL
    start = sim.clock.snapshot()
    feed(board, "COL ALL", "ROUTE READ", "MEAS?")
    spent = sim.clock.since(start)
    assert spent["round_trips"] == 3
    # each reply line of the board travels at 115200 baud, 10 bits a byte
    assert spent["bench_time_s"] > 3 * SERIAL.message_latency_s
    sim.clock.reset()
    assert sim.bench_time() == {"round_trips": 0, "bench_time_s": 0.0, "instruments": {}}


def test_transport_specs():
    assert transport_for("usbtmc") is USBTMC and transport_for(LAN) is LAN
    custom = transport_for({"name": "lan", "message_latency_s": 2e-3})
    assert custom.message_latency_s == 2e-3 and custom.byte_time_s == LAN.byte_time_s
    with pytest.raises(ValueError, match="unknown transport"):
        transport_for("carrier-pigeon")
