"""Driver/emulator contract: every driver transcript is also replayed into the model's emulator.

Driver tests use :func:`expected_protocol` from here instead of pymeasure's: it checks the
driver against the transcript exactly as pymeasure's does, then feeds the transcript's
commands to a fresh emulator of the same model and fails if the emulator did not
understand one of them: a query it left unanswered, a setting it answered, an entry in
its error queue (SCPI, TSP) or an ``ERR`` reply the transcript did not expect (the
board). So a command a driver learns and the emulator does not fails a test at once.
"""
from __future__ import annotations

import contextlib

from pymeasure.test import expected_protocol as _pymeasure_expected_protocol

from drivers.addressing_board import AddressingBoard
from drivers.keithley707b import Keithley707B
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600b import Keithley2600B
from drivers.keysight81160a import Keysight81160A
from drivers.keysightb2900 import KeysightB2900
from hil.instruments import emulator_of
from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.instruments import SimulatedInstruments
from simulated_bench.instruments.scpi import ScpiEmulator
from simulated_bench.instruments.tsp import TspEmulator

#: driver class -> model name (its plug-in in hil.instruments names the emulator)
MODEL_OF = {
    Keithley2450: "keithley2450",
    Keysight81160A: "keysight81160a",
    AddressingBoard: "rram-hil-ab64",
    Keithley2600B: "keithley2600b",
    Keithley707B: "keithley707b",
    KeysightB2900: "keysightb2900",
}
#: the chip every replay runs against (the board transcripts select these arrays)
CHIP = {"MA": (64, 20), "MB": (8, 64)}


def emulator_for(driver_cls):
    """A fresh emulator of the driver's model; a 2600B gets a 707B as TSP-Link node 2 (its scripts route through it)."""
    model = MODEL_OF[driver_cls]
    arrays = {name: SimulatedArray(r, c, seed=0, variation=NO_VARIATION) for name, (r, c) in CHIP.items()}
    instruments, options, inputs = {"dut": model}, {}, {}
    if model == "keithley2600b":
        instruments["mx"] = "keithley707b"
        options = {"dut": {"tsplink_node": 1}, "mx": {"tsplink_node": 2}}
    if model == "rram-hil-ab64":  # the board's TRIG OUT fires an 81160A armed on its trigger input (SEQ)
        instruments["gen"], inputs = "keysight81160a", {"pulse": "gen.1"}
    classes = {name: emulator_of(m) for name, m in instruments.items()}  # the plug-ins name their emulators
    sim = SimulatedInstruments(arrays, classes, inputs, options=options)
    if "gen" in sim.emulators:
        sim.emulators["gen"].feed(b":FUNC1 PULS;:OUTP1:LOAD INF;:VOLT1:LOW 0;:VOLT1:HIGH 1;:ARM:SOUR1 EXT;:OUTP1 ON\n")
    return sim.emulators["dut"]


def queued_errors(emu) -> list:
    if isinstance(emu, (ScpiEmulator, TspEmulator)):
        return list(emu.errors)
    return []


def replay(driver_cls, comm_pairs, allow_errors: tuple[int, ...] = ()) -> None:
    """Feed the transcript's commands to a fresh emulator; assert it understood every one."""
    emu = emulator_for(driver_cls)
    pairs = list(comm_pairs)
    for k, (command, expected) in enumerate(pairs):
        if command is None:
            continue
        text = command.decode() if isinstance(command, bytes) else command
        got = emu.feed(text.encode("ascii") + emu.terminator).decode("ascii")
        if expected is None:
            assert got == "", f"{driver_cls.__name__}: emulator answered the setting {text!r} with {got!r}"
        else:
            assert got.endswith("\n"), f"{driver_cls.__name__}: emulator left the query {text!r} unanswered"
            # a batched write is answered by one reply per line: this pair's and the (None, reply) pairs after it
            expected_replies = [expected]
            for more, reply in pairs[k + 1:]:
                if more is not None:
                    break
                expected_replies.append(reply)
            for line, exp in zip(got.splitlines(), expected_replies):
                exp = exp.decode() if isinstance(exp, bytes) else str(exp)
                if line.startswith("ERR") and not exp.startswith("ERR"):
                    raise AssertionError(f"{driver_cls.__name__}: emulator refused {text!r}: {line.strip()}")
        errors = queued_errors(emu)
        codes = [int(str(e[0] if isinstance(e, tuple) else e).split(",")[0]) for e in errors]
        unexpected = [e for e, c in zip(errors, codes) if c not in allow_errors]
        assert not unexpected, f"{driver_cls.__name__}: emulator did not accept {text!r}: {unexpected}"


@contextlib.contextmanager
def expected_protocol(instrument_cls, comm_pairs, *, allow_emulator_errors: tuple[int, ...] = (), **kwargs):
    """pymeasure's ``expected_protocol``, then the same transcript replayed into the emulator."""
    with _pymeasure_expected_protocol(instrument_cls, comm_pairs, **kwargs) as inst:
        yield inst
    replay(instrument_cls, comm_pairs, allow_emulator_errors)
