"""The sparse crossbar solver: Kirchhoff's laws, ideal-wire limit, factorisation reuse, the array hook."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulated_bench.array import NO_VARIATION, SimulatedArray, default_cell
from simulated_bench.cell import solve_cell
from simulated_bench.crossbar import CrossbarSolver, WireParams, solve_crossbar
from simulated_bench.devices.stanford import StanfordGapModel

MODEL = StanfordGapModel()
P = MODEL.p


def cell_for(config="MOD"):
    return replace(default_cell(MODEL), config=config)


def random_case(rng, rows, cols):
    state = rng.uniform(P.g_min, P.g_max, (rows, cols))
    return state, rng.uniform(0.0, 0.2, rows), rng.uniform(1.5, 3.0, rows)


def kcl_residual(state, cell, wires, v_wl, v_bl, v_sl, sol):
    """Largest current imbalance (A) at any line node, from the returned node voltages alone."""
    u, w = sol.v_bl_node, sol.v_sl_node
    i_cell, _ = solve_cell(MODEL, cell, state, u, w, np.asarray(v_wl)[:, None])
    worst = 0.0
    if wires.r_bl > 0:
        # bit line j: driver at the last row, chain up to row 0
        ext = np.vstack([u, v_bl[None, :]])
        i_wire = (ext[1:] - ext[:-1]) / wires.r_bl  # current flowing toward row 0 in each segment
        inflow = i_wire - np.vstack([np.zeros((1, u.shape[1])), i_wire[:-1]])
        worst = max(worst, np.max(np.abs(inflow - i_cell)))
    if wires.r_sl > 0:
        ext = np.hstack([v_sl[:, None], w])
        i_wire = (ext[:, :-1] - ext[:, 1:]) / wires.r_sl  # current flowing away from the driver
        inflow = i_wire - np.hstack([i_wire[:, 1:], np.zeros((w.shape[0], 1))])
        worst = max(worst, np.max(np.abs(inflow + i_cell)))
    return worst


@pytest.mark.parametrize("config", ["MOD", "MOS"])
def test_kirchhoff_holds_at_every_node(config):
    rng = np.random.default_rng(1)
    state, v_in, v_wl = random_case(rng, 12, 9)
    wires = WireParams(3.0, 2.0, 5.0)
    v_bl = np.zeros(9)
    sol = solve_crossbar(MODEL, cell_for(config), state, wires, v_wl, v_bl, v_in)
    assert kcl_residual(state, cell_for(config), wires, v_wl, v_bl, v_in, sol) < 1e-12
    # the cells' currents are the 1T1R series solve at the node voltages
    i_ref, _ = solve_cell(MODEL, cell_for(config), state, sol.v_bl_node, sol.v_sl_node, v_wl[:, None])
    np.testing.assert_allclose(sol.cell_current, i_ref, rtol=1e-9, atol=1e-15)
    # charge is conserved: what bit-line drivers deliver the source-line drivers take back
    assert sol.i_bl.sum() == pytest.approx(-sol.i_sl.sum(), rel=1e-10)


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), seed=st.integers(0, 2**31),
       r_bl=st.sampled_from([0.0, 0.5, 20.0]), r_sl=st.sampled_from([0.0, 1.0, 50.0]),
       config=st.sampled_from(["MOD", "MOS"]))
def test_kirchhoff_property(rows, cols, seed, r_bl, r_sl, config):
    rng = np.random.default_rng(seed)
    state, v_in, v_wl = random_case(rng, rows, cols)
    v_bl = rng.uniform(0.0, 0.2, cols)
    wires = WireParams(0.0, r_bl, r_sl)
    sol = solve_crossbar(MODEL, cell_for(config), state, wires, v_wl, v_bl, v_in)
    assert kcl_residual(state, cell_for(config), wires, v_wl, v_bl, v_in, sol) < 1e-12
    assert np.all(np.isfinite(sol.cell_current))


def test_ideal_wires_equal_the_cell_solve():
    rng = np.random.default_rng(2)
    state, v_in, v_wl = random_case(rng, 8, 8)
    sol = solve_crossbar(MODEL, cell_for(), state, WireParams(), v_wl, np.zeros(8), v_in)
    ref, _ = solve_cell(MODEL, cell_for(), state, 0.0, v_in[:, None], v_wl[:, None])
    np.testing.assert_allclose(sol.cell_current, ref, rtol=1e-9)


def test_tiny_wire_resistance_approaches_ideal_and_larger_drops_more():
    state = np.full((16, 16), P.g_min)
    v_in = np.full(16, 0.1)
    ideal = solve_crossbar(MODEL, cell_for(), state, WireParams(), 3.0, np.zeros(16), v_in).i_bl
    currents = [solve_crossbar(MODEL, cell_for(), state, WireParams.uniform(r), 3.0, np.zeros(16), v_in).i_bl
                for r in (1e-6, 0.5, 2.0, 8.0)]
    np.testing.assert_allclose(currents[0], ideal, rtol=1e-5)
    mags = [np.abs(c) for c in currents]
    for a, b in zip(mags, mags[1:]):
        assert np.all(b < a)


def test_word_line_resistance_has_no_dc_effect():
    rng = np.random.default_rng(3)
    state, v_in, v_wl = random_case(rng, 6, 7)
    a = solve_crossbar(MODEL, cell_for(), state, WireParams(0.0, 2.0, 2.0), v_wl, np.zeros(7), v_in)
    b = solve_crossbar(MODEL, cell_for(), state, WireParams(100.0, 2.0, 2.0), v_wl, np.zeros(7), v_in)
    np.testing.assert_array_equal(a.i_bl, b.i_bl)


def test_batch_reuses_one_factorisation_and_matches_single_solves():
    rng = np.random.default_rng(4)
    state, _, v_wl = random_case(rng, 20, 20)
    solver = CrossbarSolver(MODEL, cell_for(), state, WireParams.uniform(2.0), v_wl)
    inputs = rng.uniform(0.0, 0.2, (5, 20))
    batch = solver.solve(np.zeros(20), inputs)
    assert batch.i_bl.shape == (5, 20) and batch.cell_current.shape == (5, 20, 20)
    single = [solver.solve(np.zeros(20), v).i_bl for v in inputs]
    np.testing.assert_allclose(batch.i_bl, np.array(single), rtol=1e-9)
    assert solver.factorisations == 1  # read-level drives never needed a new linearisation


def test_large_drive_still_converges():
    """SET-level voltages (transistor in saturation, exponential memristor) converge with damping."""
    rng = np.random.default_rng(5)
    state, _, _ = random_case(rng, 6, 6)
    wires = WireParams.uniform(2.0)
    v_bl = np.full(6, 1.8)
    sol = solve_crossbar(MODEL, cell_for(), state, wires, np.full(6, 1.5), v_bl, np.zeros(6))
    assert kcl_residual(state, cell_for(), wires, np.full(6, 1.5), v_bl, np.zeros(6), sol) < 1e-10


def test_rejects_bad_shapes_and_resistances():
    solver = CrossbarSolver(MODEL, cell_for(), np.full((3, 4), P.g_max), WireParams.uniform(1.0), 3.0)
    with pytest.raises(ValueError):
        solver.solve(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError):
        WireParams(r_bl=-1.0)


# the SimulatedArray hook -----------------------------------------------------------------------
def programmed(wires, seed=7):
    arr = SimulatedArray(10, 12, variation=NO_VARIATION, seed=seed, wires=wires)
    arr.state[:] = np.random.default_rng(seed).uniform(P.g_min, P.g_max, arr.shape)
    return arr


def test_array_default_and_ideal_wires_keep_todays_results():
    plain, zero = programmed(None), programmed(WireParams())
    v = np.linspace(0.0, 0.2, 10)
    np.testing.assert_array_equal(plain.vmm(v, 3.0), zero.vmm(v, 3.0))
    np.testing.assert_array_equal(plain.read_all(0.2, 3.0), zero.read_all(0.2, 3.0))
    ref, _ = solve_cell(MODEL, plain.cell, plain.state, 0.0, v[:, None], 3.0)
    np.testing.assert_allclose(plain.vmm(v, 3.0, noisy=False), -ref.sum(axis=0), rtol=1e-12)


def test_array_with_wires_uses_the_solver():
    wires = WireParams.uniform(2.0)
    arr = programmed(wires)
    v = np.linspace(0.0, 0.2, 10)
    out = arr.vmm(v, 3.0, noisy=False)
    sol = solve_crossbar(MODEL, arr.cell, arr.state, wires, 3.0, np.zeros(12), v)
    np.testing.assert_allclose(out, -sol.i_bl, rtol=1e-9)
    assert np.all(np.abs(out) < np.abs(programmed(None).vmm(v, 3.0, noisy=False)))
    # a row read: only that word line on, the selected bit lines at v_read
    row = arr.read_row(4, [1, 5], 0.2, 3.0, noisy=False)
    v_wl = np.zeros(10)
    v_wl[4] = 3.0
    v_bl = np.zeros(12)
    v_bl[[1, 5]] = 0.2
    ref = solve_crossbar(MODEL, arr.cell, arr.state, wires, v_wl, v_bl, np.zeros(10)).cell_current[4, [1, 5]]
    np.testing.assert_allclose(row, ref, rtol=1e-9)
    full = arr.read_all(0.2, 3.0, noisy=False)
    np.testing.assert_allclose(full[4, [1, 5]], arr.read_row(4, None, 0.2, 3.0, noisy=False)[[1, 5]], rtol=1e-9)
    # state changes invalidate the cached factorisation
    arr.pulse_row(0, None, 2.0, 1e-7, 1.5)
    sol2 = solve_crossbar(MODEL, arr.cell, arr.state, wires, 3.0, np.zeros(12), v)
    np.testing.assert_allclose(arr.vmm(v, 3.0, noisy=False), -sol2.i_bl, rtol=1e-9)
