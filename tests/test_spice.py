"""ngspice against the numpy chip: 1T1R pulses, crossbar VMM with wire resistance, IR drop, SpiceArray."""
from dataclasses import replace

import numpy as np
import pytest

from simulated_bench.array import NO_VARIATION, SimulatedArray, default_cell
from simulated_bench.crossbar import CrossbarSolver, WireParams
from simulated_bench.devices.stanford import NM, StanfordGapModel
from simulated_bench.spice.netlist import (accuracy_options, cell_pulse_netlist, crossbar_netlist,
                                           driver_current_traces)
from simulated_bench.spice.runner import SpiceRunner, ngspice_available

pytestmark = [pytest.mark.spice,
              pytest.mark.skipif(not ngspice_available(), reason="ngspice is not installed (CI installs it)")]

MODEL = StanfordGapModel()
P = MODEL.p


def cell_for(config):
    return replace(default_cell(MODEL), config=config)


@pytest.fixture(scope="module")
def runner():
    with SpiceRunner() as r:
        yield r


# (config, gate V, line amplitude V (>0 SET on the bit line, <0 RESET on the source line), width s,
#  start gap m or None for the far bound)
PULSES = [
    ("MOD", 1.5, 2.0, 1e-7, None), ("MOD", 2.0, 2.0, 1e-7, None), ("MOD", 3.0, 2.0, 1e-7, None),
    ("MOS", 3.0, 2.0, 1e-7, None), ("MOS", 4.5, 2.0, 1e-7, None),
    ("MOD", 4.5, -2.0, 1e-7, None), ("MOD", 5.0, -2.0, 1e-8, None),
    ("MOS", 3.5, -2.0, 1e-8, None), ("MOS", 4.5, -2.0, 1e-8, None),
    # RESET from a partly SET cell whose table holds a still stretch near g_min: the
    # quadrature engine once lost all time resolution past it (tau ~ 1e30 s)
    ("MOD", 3.0, -2.0, 3e-9, 0.7557e-9), ("MOD", 3.0, -2.0, 1e-8, 0.7557e-9),
]


@pytest.mark.parametrize("config,v_gate,amplitude,width,start", PULSES)
def test_cell_pulse_final_gap_agrees_with_numpy(runner, config, v_gate, amplitude, width, start):
    cell = cell_for(config)
    g0 = start if start is not None else (P.g_max if amplitude > 0 else P.g_min)
    chip = SimulatedArray(1, 1, MODEL, cell, NO_VARIATION, initial_state=g0)
    chip.pulse_row(0, None, amplitude, width, v_gate)
    g_numpy = chip.state[0, 0]
    v_bl, v_sl = (amplitude, 0.0) if amplitude > 0 else (0.0, -amplitude)
    net = cell_pulse_netlist(P, cell, g0, v_bl, v_sl, v_gate, width)
    g_spice = runner.run(net, ["v(gap)"])["v(gap)"][-1] * NM
    change = g_numpy - g0
    # a real partial move in the pulse's direction, not a pinned bound
    assert abs(change) > 0.005 * NM and np.sign(change) == -np.sign(amplitude)
    assert P.g_min < g_numpy < P.g_max or abs(change) == pytest.approx(P.g_max - P.g_min)
    assert abs(g_spice - g_numpy) < 0.01 * abs(change)


def test_spice_editor_parameters_change_the_pulse(runner):
    """The netlist's line voltages are .param values a SpiceEditor run can change."""
    cell = cell_for("MOD")
    net = cell_pulse_netlist(P, cell, P.g_max, 2.0, 0.0, 3.0, 1e-7)
    low = runner.run(net, ["v(gap)"], params={"vwl": 1.5})["v(gap)"][-1] * NM
    chip = SimulatedArray(1, 1, MODEL, cell, NO_VARIATION)
    chip.pulse_row(0, None, 2.0, 1e-7, 1.5)
    assert abs(low - chip.state[0, 0]) < 0.01 * (P.g_max - chip.state[0, 0])


def spice_column_currents(runner, cell, state, v_gate, v_in, wires):
    n_rows, n_cols = state.shape
    traces = driver_current_traces(n_rows, n_cols)
    net = crossbar_netlist(P, cell, state, v_gate, 0.0, v_in, wires, analysis=f"{accuracy_options()}\n.op",
                           save=traces["bl"] + traces["sl"])
    out = runner.run(net, traces["bl"] + traces["sl"])
    # SPICE reports current into each driver; the solver reports current the driver delivers
    i_bl = -np.array([out[t][-1] for t in traces["bl"]])
    i_sl = -np.array([out[t][-1] for t in traces["sl"]])
    return i_bl, i_sl


@pytest.mark.parametrize("config,wires", [("MOD", WireParams.uniform(2.0)), ("MOS", WireParams(5.0, 1.0, 3.0))])
def test_crossbar_vmm_16x16_agrees_with_solver(runner, config, wires):
    rng = np.random.default_rng(16)
    cell = cell_for(config)
    state = rng.uniform(P.g_min, P.g_max, (16, 16))
    v_in = rng.uniform(0.0, 0.2, 16)
    v_gate = rng.uniform(2.0, 3.0, 16)  # a gate voltage per row
    i_bl, i_sl = spice_column_currents(runner, cell, state, v_gate, v_in, wires)
    sol = CrossbarSolver(MODEL, cell, state, wires, v_gate).solve(np.zeros(16), v_in)
    np.testing.assert_allclose(sol.i_bl, i_bl, rtol=1e-6, atol=0)
    np.testing.assert_allclose(sol.i_sl, i_sl, rtol=1e-6, atol=0)


def test_ir_drop_32x32_lrs_both_engines(runner):
    """Default LRS, 2 ohm per segment: column currents fall tens of percent below ideal wires."""
    cell = default_cell(MODEL)
    state = np.full((32, 32), P.g_min)
    v_in = np.full(32, 0.1)
    wires = WireParams.uniform(2.0)
    ideal = SimulatedArray(32, 32, MODEL, cell, NO_VARIATION, initial_state="on").vmm(v_in, 3.0)
    i_spice, _ = spice_column_currents(runner, cell, state, 3.0, v_in, wires)
    i_solver = -CrossbarSolver(MODEL, cell, state, wires, 3.0).solve(np.zeros(32), v_in).i_bl
    i_spice = -i_spice  # current each virtual ground sinks, as vmm returns
    np.testing.assert_allclose(i_solver, i_spice, rtol=1e-6)
    drop = 1 - i_spice / ideal
    assert np.all(drop > 0.2) and drop.mean() > 0.4
    # the far columns lose most: their source-line path is longest
    assert drop[-1] > drop[0]
    # and ngspice with ideal wires gives back the ideal currents
    i_ideal_spice, _ = spice_column_currents(runner, cell, state, 3.0, v_in, WireParams())
    np.testing.assert_allclose(-i_ideal_spice, ideal, rtol=1e-6)


def test_spice_array_matches_the_numpy_chip_with_wires(runner):
    """Same chip, both engines: VMM and line currents through resistive lines, then a pulse."""
    from simulated_bench.spice.engine import SpiceArray

    wires = WireParams(1.0, 2.0, 3.0)
    kwargs = dict(variation=NO_VARIATION, seed=3, wires=wires)
    ref = SimulatedArray(4, 5, **kwargs)
    spi = SpiceArray(4, 5, runner=runner, **kwargs)
    state = np.random.default_rng(3).uniform(P.g_min, P.g_max, (4, 5))
    ref.state[:], spi.state[:] = state, state
    v_in = np.array([0.1, 0.0, 0.2, 0.15])
    np.testing.assert_allclose(spi.vmm(v_in, 3.0), ref.vmm(v_in, 3.0), rtol=1e-6)
    np.testing.assert_allclose(spi.read_row(2, [0, 3], 0.2, 3.0), ref.read_row(2, [0, 3], 0.2, 3.0), rtol=1e-6)
    assert spi.time_s == ref.time_s and spi.read_count == ref.read_count
    # pulses: the SPICE engine keeps the wires, the numpy engine drives ideal lines, so
    # compare against ideal wires on both sides
    ideal = dict(variation=NO_VARIATION, seed=3)
    ref2, spi2 = SimulatedArray(2, 3, **ideal), SpiceArray(2, 3, runner=runner, **ideal)
    for chip in (ref2, spi2):
        chip.pulse_row(0, [1], 2.0, 1e-7, 2.0)
        chip.apply_lines([0.0, 1.5], [2.0, 0.0, 0.0], 0.0, 1e-7)
    change = ref2.state - P.g_max
    assert np.count_nonzero(change) == 2
    np.testing.assert_allclose(spi2.state, ref2.state, rtol=0, atol=0.01 * np.abs(change[change != 0]).min())


def test_spice_array_needs_the_stanford_model(runner):
    from simulated_bench.spice.engine import SpiceArray

    with pytest.raises(ValueError, match="Stanford"):
        SpiceArray(2, 2, model="cute_multilevel", runner=runner)
