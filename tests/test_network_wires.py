"""Wire resistance in seed 000's circuit: the crossbar-solver path and stuck-on vs stuck-off."""
import numpy as np
import pytest

from hil.corrector.defects import DefectConfig, DefectGeometry
from hil.networks.circuit import CircuitParams, NeuromorphicCircuit
from hil.networks.digits import load_digits_data, paper_split, train_digits_network
from hil.networks.wires import WiredCircuit
from simulated_bench.crossbar import WireParams

R_SEG = 1.0  # ohm per bit- and source-line segment


@pytest.fixture(scope="module")
def setup():
    x, y = load_digits_data()
    tr, te = paper_split(y, 0)
    net = train_digits_network(x[tr], y[tr], 0)
    circuit = NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=0.0))  # ideal I-V stage: wires only
    return circuit, x[te], y[te]


def codes(circuit, pattern, layer, size_index, kind):
    return DefectConfig(pattern, layer, size_index).codes(circuit.shapes[layer], DefectGeometry(kind=kind))


def accuracy(v, y):
    return float(np.mean(np.argmax(v, 1) == y))


def test_ideal_wires_reproduce_the_circuit_exactly(setup):
    circuit, x, _ = setup
    faults = {1: codes(circuit, "circle", 1, 2, "on")}
    for wires in (WireParams(), WireParams(r_wl=5.0)):  # word lines carry no DC current
        wired = WiredCircuit(circuit, wires)
        np.testing.assert_array_equal(wired.output_voltages(x), circuit.output_voltages(x))
        np.testing.assert_array_equal(wired.output_voltages(x, faults), circuit.output_voltages(x, faults))


def test_needs_an_ideal_load():
    x, y = load_digits_data()
    net = train_digits_network(x[:300], y[:300], 0)
    with pytest.raises(ValueError, match="r_in"):
        WiredCircuit(NeuromorphicCircuit(net, x[:300], CircuitParams(r_in=10.0)), WireParams.uniform(R_SEG))


def test_ideal_wires_stuck_on_equals_stuck_off(setup):
    """Seed 000 II.B: in an ideal differential read a stuck pair is w = 0, whatever its state."""
    circuit, x, y = setup
    wired = WiredCircuit(circuit, WireParams())
    rows = circuit.forward(x)
    for pattern, layer, size in (("circle", 0, 2), ("checkerboard", 1, 0), ("rows", 2, 3)):
        v_off = wired.outputs_from(layer, rows[layer], codes(circuit, pattern, layer, size, "off"))
        v_on = wired.outputs_from(layer, rows[layer], codes(circuit, pattern, layer, size, "on"))
        np.testing.assert_allclose(v_on, v_off, rtol=0, atol=1e-9)
        assert accuracy(v_on, y) == accuracy(v_off, y)


def test_wired_currents_match_the_full_crossbar_solve(setup):
    """The path adds the exact nonlinear IR-drop shift: only the circuit's I-V fit error remains."""
    circuit, x, _ = setup
    wired = WiredCircuit(circuit, WireParams(0.0, R_SEG, R_SEG))
    v0 = circuit.input_voltages(x[:12])
    fault = codes(circuit, "circle", 0, 2, "on")
    i_path = wired.layer_currents(0, v0, fault)
    i_full = wired.crossbar_currents(0, v0, fault)
    i_ideal = wired.crossbar_currents(0, v0, fault, ideal=True)
    scale = np.max(np.abs(i_ideal))  # the fit's error is relative to the ideal-wire currents it fits
    assert np.max(np.abs(i_path - i_full)) < 1e-5 * scale  # measured ~2e-6
    # the IR drop is large at 1 ohm per segment on a 65 x 100 array with a stuck-on circle
    assert np.max(np.abs(i_full - i_ideal)) > 0.3 * scale
    # and it only ever removes current from the columns (the lines drop voltage, never add)
    assert np.all(i_full.sum(axis=1) < i_ideal.sum(axis=1))


def test_wires_make_stuck_on_worse_than_stuck_off(setup):
    """Stuck-on pairs (~1.6 mS per cell) draw large currents: more IR drop along their lines."""
    circuit, x, y = setup
    wired = WiredCircuit(circuit, WireParams(0.0, R_SEG, R_SEG))
    rows = wired.forward(x)
    acc_clean = accuracy(rows[-1], y)
    for pattern, size in (("circle", 2), ("checkerboard", 0)):
        acc = {kind: accuracy(wired.outputs_from(0, rows[0], codes(circuit, pattern, 0, size, kind)), y)
               for kind in ("off", "on")}
        assert acc["on"] < acc["off"] - 0.1 and acc["off"] <= acc_clean
    # mechanism: the source lines sag further under stuck-on cells than under stuck-off ones
    v0 = rows[0][:20]
    sag = {}
    for kind in ("off", "on"):
        solver = wired.solvers(0, codes(circuit, "checkerboard", 0, 0, kind))[0]
        sol = solver.solve(np.zeros(solver.cols), v0)
        sag[kind] = float(np.mean(v0[:, :, None] - sol.v_sl_node))
    assert sag["on"] > 2 * sag["off"] > 0
