"""SPICE check of seed 004's neuron-synapse-neuron unit (Fig. 6/7) against the PyTorch model."""
import numpy as np
import pytest

from hil.snn.coding import LatencyCoding, load_split
from hil.snn.network import TrainConfig, quantize, train_snn
from hil.snn.spice_nsn import NsnCircuit, compare, ngspice_available, spice_network
from simulated_bench.spice.netlist import CHANNEL_LENGTH, num

pytestmark = [pytest.mark.spice,
              pytest.mark.skipif(not ngspice_available(), reason="ngspice is not installed (spicelib finds no executable)")]


def test_netlist_carries_the_seed_values():
    text = NsnCircuit().netlist()
    assert "level=1" in text and f"w={num(65 * CHANNEL_LENGTH)} l={num(CHANNEL_LENGTH)}" in text  # seed 004: W/L 65
    assert "VREAD te 0 DC 0.05" in text
    assert "CR vr 0 2.6e-10" in text and "CF vf 0 2.6e-10" in text  # C_syn 260 pF
    assert "CM vmem 0 2.6e-07" in text  # C_mem 260 nF
    for start in ("0.01 0 0.0101 3.0", "0.11 0 0.1101 3.0", "0.15 0 0.1501 3.0", "0.2 0 0.2001 3.0"):
        assert start in text  # 3 V spikes at 10, 110, 150, 200 ms, 100 us edges


def test_unit_matches_pytorch():
    r = compare()
    # the 1T1R cell in ngspice (level-1 NMOS, device I-V) carries the project's solve_cell current
    assert r["cell_current_spice"] == pytest.approx(r["cell_current"], rel=1e-3)
    assert r["i_peak_rel_err"] < 0.03
    assert r["v_peak_rel_err"] < 0.03  # seed 004: about 2 %
    # without matching the 1 ms sampling of the 0.5 ms rise, torch undercounts one spike's charge
    assert 0.03 < r["v_peak_rel_err_unmatched"] < 0.15
    # four spikes: the membrane peaks after the close pair at 110 and 150 ms, and decays between
    t, v = r["time"], r["v_spice"]
    assert v[(t > 0.09) & (t < 0.1)].max() < 0.1 * v.max()
    assert v[(t > 0.15) & (t < 0.2)].max() == pytest.approx(v.max(), rel=0.05)


def test_whole_network_in_spice_matches_the_array_path():
    d = load_split()
    lc = LatencyCoding()
    w = quantize(train_snn(lc.encode(d.x_train[:400]), d.y_train[:400], cfg=TrainConfig(epochs=4, batch_size=32, lr=0.02)), 3)
    out = spice_network(w, lc.encode(d.x_test[:2]))
    assert out["agreement"] == 1.0
    assert out["score_rel_err"] < 0.03
    # every output membrane rises to a level of the same order in both
    np.testing.assert_allclose(out["spice_scores"], out["torch_scores"], rtol=0.1)
