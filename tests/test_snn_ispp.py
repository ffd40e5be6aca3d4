"""The SNN's weights programmed with the real ISPP protocol on a simulated cute_multilevel bench."""
import numpy as np
import pytest

from benchmarks.snn import program_weights_ispp
from hil.snn.array_inference import ArraySynapses
from hil.snn.coding import LatencyCoding, load_split
from hil.snn.network import TrainConfig, quantize, snn_predict, train_snn


@pytest.fixture(scope="module")
def network():
    d = load_split()
    lc = LatencyCoding()
    w = train_snn(lc.encode(d.x_train[:600]), d.y_train[:600], cfg=TrainConfig(epochs=6, batch_size=32, lr=0.02))
    return quantize(w, 3), lc.encode(d.x_test), d.y_test


@pytest.mark.slow
def test_ispp_programmed_chip_runs_the_network(network):
    w, raster, y = network
    syn, info = program_weights_ispp(w, 0.03, chip_seed=1)
    # every cell converged, and the tuning error the protocol leaves is about its band
    assert info["converged"] == info["cells"] == w.size
    assert info["mean_pulses"] <= 60  # seed 004: within 60 pulses at 3 %
    assert 0.005 < info["tuning_error_rms"] < 0.03
    assert info["tuning_error_max"] < 0.06  # band 3 %, plus read noise at the verify
    # the chip holds the weights: effective weights near the targets (3 % of a weight-1 current ~ 0.03)
    dev = syn.effective_weights() - w
    assert np.abs(dev).max() < 0.08 and np.sqrt(np.mean(dev**2)) < 0.03
    # the programmed chip classifies like the ideal 3-bit network
    ideal = snn_predict(raster, w)
    pred = syn.predict(raster)
    assert np.mean(pred == ideal) > 0.9
    assert np.mean(pred == y) > np.mean(ideal == y) - 0.04
    assert isinstance(syn, ArraySynapses) and syn.array.model.name == "cute_multilevel"
