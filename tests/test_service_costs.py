"""The window engine's bench-time estimate is the emulated bench's charge for the same operations.

:class:`hil.service.engine.EngineParams`' per-operation times stand for the 2450 + 81160A + AB64 bench of
examples/service/dft64_bench.yaml; here they are re-measured on that bench's emulators with
:func:`protocols.service_engine.measure_op_costs` (the service engine's own VMM, read-back and
write-and-verify), so a change to the emulators' cost model, the drivers' messages or ISPP shows up here.
"""
from pathlib import Path

import numpy as np
import pytest

import hil
from hil.service import EngineParams, WindowEngine
from protocols.service_engine import BenchEngine, measure_op_costs
from simulated_bench.window_array import WindowArray, WindowParams

BENCH_FILE = Path(__file__).resolve().parents[1] / "examples" / "service" / "dft64_bench.yaml"


@pytest.fixture(scope="module")
def measured():
    with hil.open_bench(BENCH_FILE) as bench:
        return measure_op_costs(bench, (64, 66), WindowParams().g_max)


@pytest.mark.parametrize("op", ["t_vmm_op", "t_read_op", "t_pulse_op"])
def test_engine_times_equal_the_emulated_bench_charges(measured, op):
    # seeded chip and inputs: the measurement repeats; 3 % leaves room for the sign pattern of a VMM's values
    assert getattr(EngineParams(), op) == pytest.approx(measured[op], rel=0.03)


def test_the_serial_link_sets_a_vmm_not_the_sensing(measured):
    # one VMM? carries 64 inputs out and 66 currents back at 10 bits per byte on 115,200 baud: >1,000 bytes,
    # far more than the board's 200 us of sensing; a pulse of a repair costs less than a VMM read
    assert measured["t_vmm_op"] > 1000 * 10 / 115200
    assert measured["t_read_op"] < measured["t_vmm_op"] and measured["t_pulse_op"] < measured["t_vmm_op"]


def test_window_engine_charges_each_operation_its_time():
    p = EngineParams()
    codes = np.zeros((4, 5), np.int8)
    engine = WindowEngine({"A": WindowArray(4, 5, fault_codes=codes, seed=[0, 1])}, p)
    engine.vmm("A", np.ones((3, 4)))
    assert engine.bench_time_s == pytest.approx(3 * p.n_vmm * p.t_vmm_op)
    engine.read("A", np.arange(2))
    assert engine.bench_time_s == pytest.approx(3 * p.n_vmm * p.t_vmm_op + 2 * p.n_read * p.t_read_op)
    before = engine.bench_time_s
    pulses = engine.write("A", np.full((4, 5), 60e-6))
    assert pulses > 0 and engine.bench_time_s - before == pytest.approx(pulses * p.t_pulse_op)


def test_both_engines_skip_an_all_zero_vector_and_charge_only_the_others():
    """A VMM of zeros is not sent: output 0 exactly, no bench time, no read of the array (chip time, disturb)."""
    u = np.array([[0.0, 0.0, 0.0, 0.0], [0.5, -1.0, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0]])
    p = EngineParams()
    arr = WindowArray(4, 5, fault_codes=np.zeros((4, 5), np.int8), seed=[0, 1])
    window = WindowEngine({"A": arr}, p)
    window.write("A", np.full((4, 5), 60e-6))
    before, reads = window.bench_time_s, arr.read_count
    out = window.vmm("A", u)
    assert np.all(out[[0, 2]] == 0.0) and np.all(out[1] != 0.0)
    assert window.bench_time_s - before == pytest.approx(p.n_vmm * p.t_vmm_op) and arr.read_count - reads == p.n_vmm
    with hil.open_bench(BENCH_FILE) as bench:
        engine = BenchEngine(bench, {"A": (4, 5)}, WindowParams().g_max)
        engine.floor["A"] = np.zeros(4)  # no scan: the floor only shifts the numbers
        clock = bench.sim.clock.bench_time_s
        out = engine.vmm("A", u)
        assert np.all(out[[0, 2]] == 0.0)
        assert engine.spent["vmm"][0] == engine.p.n_vmm  # one vector sent, n_vmm times
        assert engine.spent["vmm"][1] == pytest.approx(bench.sim.clock.bench_time_s - clock)


@pytest.mark.parametrize("bad", [{"t_vmm_op": float("nan")}, {"t_pulse_op": -1e-3}, {"t_read_op": float("inf")}])
def test_engine_times_must_be_finite_and_not_negative(bad):
    with pytest.raises(ValueError, match="operation times"):
        EngineParams(**bad)


def test_a_bench_without_a_clock_has_nothing_to_measure():
    class RealBench:  # a real bench: no emulators, so no bench clock
        sim = None
    with pytest.raises(ValueError, match="simulated bench"):
        measure_op_costs(RealBench(), (4, 4), 150e-6)
