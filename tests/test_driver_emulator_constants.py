"""Constants the drivers and the emulators must share: checked against each other.

drivers/ and simulated_bench/ may not import each other, so each keeps its own copy of an
instrument's routes and ranges; these tests keep the copies equal, or, where a range lives
in the emulator's Lua, check the emulator accepts the driver's bounds and refuses beyond.
"""
import pytest

import drivers.addressing_board as board_driver
import drivers.keithley707b as mx_driver
import drivers.keithley2600b as k2600_driver
import drivers.keysight81160a as gen_driver
import drivers.keysightb2900 as b2900_driver
import simulated_bench.instruments.board as board_emu
import simulated_bench.instruments.keithley707b as mx_emu
import simulated_bench.instruments.keysight81160a as gen_emu
import simulated_bench.instruments.keysightb2900 as b2900_emu
from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import SimulatedInstruments


def test_board_routes_and_ranges():
    assert tuple(board_driver.ROUTES) == tuple(board_emu.ROUTES)
    assert tuple(board_driver.WL_RANGE) == tuple(board_emu.WL_RANGE)
    assert tuple(board_driver.VMM_RANGE) == tuple(board_emu.VMM_RANGE)
    # the pulse sequences and averaged reads the driver sends must fit what the board takes
    assert tuple(board_driver.SEQ_ROUTES) == tuple(board_emu.SEQ_ROUTES)
    assert board_driver.MAX_SEQ_STEPS == board_emu.MAX_SEQ_STEPS
    assert board_driver.MAX_AVERAGE == board_emu.MAX_AVERAGE
    assert board_driver.MAX_LINE == board_emu.MAX_LINE


def test_b2900_takes_the_boards_trigger_on_the_pins_the_driver_arms():
    external = [t for t in b2900_driver.TRIGGER_SOURCES if t.startswith("EXT")]
    assert external and set(external) <= set(b2900_emu.EXTERNAL_TRIGGERS)


def test_b2900_ranges():
    assert b2900_driver.VOLTAGE_RANGE == [-b2900_emu.V_MAX, b2900_emu.V_MAX]
    assert b2900_driver.CURRENT_RANGE == [-b2900_emu.I_MAX, b2900_emu.I_MAX]
    assert b2900_driver.COMPLIANCE_CURRENT_RANGE[1] == b2900_emu.I_MAX
    for name in ("NPLC_RANGE", "APERTURE_RANGE", "PULSE_WIDTH_RANGE", "PULSE_DELAY_RANGE"):
        assert tuple(getattr(b2900_driver, name)) == tuple(getattr(b2900_emu, name)), name
    assert tuple(b2900_driver.TRIGGER_TIMER_RANGE) == b2900_emu.TIMER_RANGE
    assert tuple(b2900_driver.TRIGGER_COUNT_RANGE) == b2900_emu.COUNT_RANGE
    assert b2900_driver.LIST_MAX_POINTS == b2900_emu.LIST_MAX
    assert set(b2900_driver.TRIGGER_SOURCES) <= set(b2900_emu.TRIGGER_SOURCES.values())


def test_81160a_ranges():
    assert tuple(gen_driver.PULSE_WIDTH_RANGE) == gen_emu.WIDTH_RANGE
    assert tuple(gen_driver.PULSE_PERIOD_RANGE) == gen_emu.PERIOD_RANGE
    lo, hi = gen_driver.VOLTAGE_HIGH_RANGE  # the high level may sit 50 mV above the lowest low level
    assert hi == gen_emu.LEVEL_RANGE[1] and lo == pytest.approx(gen_emu.LEVEL_RANGE[0] + gen_emu.AMPLITUDE_MIN)


@pytest.mark.parametrize("name", ["1A01", "6H12", "3c07", "1A00", "1A13", "7A01", "1I01"])
def test_707b_channel_names(name):
    assert bool(mx_driver.CHANNEL_RE.fullmatch(name.upper())) == \
        bool(mx_emu.CHANNEL_RE.fullmatch(name) and 1 <= int(name[2:]) <= mx_emu.COLS)


@pytest.mark.parametrize("attr,bounds", [
    ("source.levelv", k2600_driver.LEVEL_V_RANGE), ("source.leveli", k2600_driver.LEVEL_I_RANGE),
    ("source.limiti", k2600_driver.LIMIT_I_RANGE), ("source.limitv", k2600_driver.LIMIT_V_RANGE),
    ("measure.nplc", k2600_driver.NPLC_RANGE)])
def test_2600b_ranges_match_the_emulator_attributes(attr, bounds):
    sim = SimulatedInstruments({"A": SimulatedArray(2, 2, variation=NO_VARIATION)}, {"smu": "keithley2600b"}, {})
    smu = sim.emulators["smu"]
    lo, hi = bounds
    for v in (lo, hi):
        smu.feed(f"smua.{attr} = {v!r}\n".encode())
    assert not smu.errors, f"the emulator refused a value the driver allows: {list(smu.errors)}"
    for v in (lo - abs(lo) * 0.01 - 1e-12, hi * 1.01):
        smu.feed(f"smua.{attr} = {v!r}\n".encode())
    assert [code for code, _ in smu.errors] == [-222, -222]
