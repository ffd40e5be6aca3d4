"""Seed 000's circuit: software network, differential mapping, and the 1T1R read physics."""
import numpy as np
import pytest

from hil.networks.circuit import (CircuitParams, NeuromorphicCircuit, column_currents, expand_pairs,
                                  reference_column_currents)
from hil.networks.digits import LAYER_SIZES, DigitsNetwork, load_digits_data, paper_split, split_images, \
    train_digits_network
from simulated_bench.faults import STUCK_OFF, STUCK_ON, pattern_fault_codes


@pytest.fixture(scope="module")
def digits():
    return load_digits_data()


@pytest.fixture(scope="module")
def trained(digits):
    x, y = digits
    tr, te = paper_split(y, 0)
    return train_digits_network(x[tr], y[tr], 0), tr, te


@pytest.fixture(scope="module")
def circuit(digits, trained):
    x, _ = digits
    net, tr, _ = trained
    return NeuromorphicCircuit(net, x[tr])


def test_dataset_and_splits(digits):
    x, y = digits
    assert x.shape == (1797, 64) and x.min() == 0 and x.max() == 1
    tr, te = paper_split(y, 0)
    assert (len(tr), len(te)) == (1617, 180) and not set(tr) & set(te)
    a, b, c = split_images(y, (0.6, 0.2, 0.2), 3)
    assert len(a) + len(b) + len(c) == 1797
    assert not (set(a) & set(b) or set(a) & set(c) or set(b) & set(c))
    # stratified: every class in every part
    assert all(len(np.unique(y[p])) == 10 for p in (a, b, c))


def test_software_network_reaches_paper_accuracy(digits, trained, tmp_path):
    x, y = digits
    net, _, te = trained
    assert net.n_params == 4528  # seed 000 II.A
    assert [W.shape for W in net.Ws] == list(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:]))
    assert net.accuracy(x[te], y[te]) >= 0.95
    path = str(tmp_path / "net.npz")
    net.save(path)
    again = DigitsNetwork.load(path)
    np.testing.assert_array_equal(again.predict(x), net.predict(x))


def test_mapping_inside_the_device_window(circuit):
    assert circuit.shapes == [(65, 50), (51, 20), (21, 8), (9, 10)]  # layer 0: 3250 pairs
    assert 4.0e-6 < circuit.g_lo < 5.0e-6 and 1.4e-3 < circuit.g_hi < 1.8e-3
    for L in circuit.layers:
        g = L.g_target
        assert g.shape == (L.weights.shape[0], 2 * L.weights.shape[1])
        assert g.min() >= circuit.g_lo * (1 - 1e-12) and g.max() <= circuit.g_hi * (1 + 1e-12)
        # differential encoding: G+ - G- = k w, and one of each pair sits at the window floor
        np.testing.assert_allclose(g[:, 0::2] - g[:, 1::2], L.k_siemens * L.weights, rtol=1e-9, atol=1e-15)
        assert np.allclose(np.minimum(g[:, 0::2], g[:, 1::2]), circuit.g_lo)
        lo, hi = sorted((circuit.model.state_on, circuit.model.state_off))
        assert np.all((L.states >= lo) & (L.states <= hi))


def test_fast_inference_matches_the_chip_array_and_direct_cell_solve(digits, trained):
    x, _ = digits
    net, tr, _ = trained
    for r_in in (0.0, 10.0):
        c = NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=r_in))
        arrays = c.arrays()
        rows = c.forward(x[:3])
        for layer in (2, 3):
            fast = column_currents(rows[layer], c.layers[layer].coef, c.v_span, r_in)
            ref = reference_column_currents(arrays[layer], rows[layer], c.params.v_gate, r_in)
            scale = np.abs(ref).max()
            # polynomial fit (~1e-6) and, with a load, the few-mV shift of the transistor's overdrive
            assert np.max(np.abs(fast - ref)) < (2e-5 if r_in == 0 else 2e-4) * scale
        if r_in == 0:
            vmm = arrays[0].vmm(rows[0][0], c.params.v_gate, noisy=False)
            np.testing.assert_allclose(column_currents(rows[0][:1], c.layers[0].coef, c.v_span, 0.0)[0], vmm,
                                       rtol=0, atol=2e-5 * vmm.max())


def test_circuit_reproduces_the_software_network(digits, trained, circuit):
    x, y = digits
    net, _, te = trained
    pred = circuit.predict(x)
    assert np.mean(pred == net.predict(x)) > 0.99
    assert np.mean(pred[te] == y[te]) >= 0.95
    v = circuit.output_voltages(x)
    assert v.shape == (1797, 10) and v.min() >= 0 and v.max() <= circuit.params.v_rail  # rectified, railed


def test_fault_injection_equals_pinned_chip_states(circuit, digits):
    x, _ = digits
    codes = pattern_fault_codes("circle", 9, 10, 0.3, "on")
    coef = circuit.faulty_coef(3, codes)
    arr = circuit.arrays({3: codes})[3]
    assert np.array_equal(arr.true_fault_codes, expand_pairs(codes))
    rows = circuit.forward(x[:1])[3]
    vmm = arr.vmm(rows[0], circuit.params.v_gate, noisy=False)
    fast = column_currents(rows, coef, circuit.v_span, 0.0)[0]
    np.testing.assert_allclose(fast, vmm, rtol=0, atol=2e-5 * vmm.max())


def test_stuck_on_and_off_differ_only_through_the_load(digits, trained):
    x, _ = digits
    net, tr, _ = trained
    # a circle leaves part of each hit column working (a whole stuck column pair cancels even with a load)
    off = pattern_fault_codes("circle", 51, 20, 0.3, "off")
    on = np.where(off == STUCK_OFF, STUCK_ON, 0)
    ideal = NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=0.0))
    v_off = ideal.output_voltages(x[:200], {1: off})
    v_on = ideal.output_voltages(x[:200], {1: on})
    # ideal differential read: both make w = 0 (seed 000 III.B)
    np.testing.assert_allclose(v_on, v_off, atol=1e-9)
    loaded = NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=10.0))
    rows = loaded.forward(x[:200])[1]
    i_off = column_currents(rows, loaded.faulty_coef(1, off), loaded.v_span, 10.0)
    i_on = column_currents(rows, loaded.faulty_coef(1, on), loaded.v_span, 10.0)
    stuck_cols = np.flatnonzero(expand_pairs(off).any(axis=0))
    ok_cols = np.flatnonzero(~expand_pairs(off).any(axis=0))
    # a column's current depends on its own cells only
    np.testing.assert_array_equal(i_on[:, ok_cols], i_off[:, ok_cols])
    # stuck-on cells add conductance to their columns, which raises the node voltage u = r_in I
    assert np.all(i_on[:, stuck_cols] > i_off[:, stuck_cols])
    # and then the pair no longer cancels: u+ != u- makes stuck-on visible at the outputs
    v_on_l = loaded.output_voltages(x[:200], {1: on})
    v_off_l = loaded.output_voltages(x[:200], {1: off})
    assert np.max(np.abs(v_on_l - v_off_l)) > 1e-3 * loaded.params.v_act


def test_column_current_load_solution_is_self_consistent(circuit, digits):
    x, _ = digits
    rows = circuit.forward(x[:50])[0]
    coef = circuit.layers[0].coef
    r_in = 25.0
    i = column_currents(rows, coef, circuit.v_span, r_in, taylor_order=3, newton_iters=6)
    i0 = column_currents(rows, coef, circuit.v_span, 0.0)
    # a finite input impedance only ever reduces a column's current (u > 0 lowers every cell's voltage)
    assert np.all(i <= i0 + 1e-15) and np.all(i > 0)
    # the linearised load is a good first guess: I ~ I0 / (1 + r_in * G_col)
    g_col = coef[1].sum(axis=0) / circuit.v_span
    approx = i0 / (1 + r_in * g_col)
    assert np.max(np.abs(i - approx) / i0) < 0.02
