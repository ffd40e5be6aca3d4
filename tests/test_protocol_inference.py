"""On-bench inference (protocols.inference): seed 000's circuit through the drivers, with a corrector."""
import numpy as np
import pytest

import hil
from hil.corrector.models import CorrectorSpec
from hil.networks.circuit import CircuitParams, NeuromorphicCircuit, expand_pairs
from hil.networks.digits import DigitsNetwork, load_digits_data, paper_split
from hil.networks.mlp import MLP, TrainParams
from protocols.inference import evaluate, plan_from_circuit, program_network
from simulated_bench.faults import pattern_fault_codes


@pytest.fixture(scope="module")
def small_circuit():
    """A 64-4-10 network (two arrays, 620 cells) keeps the ISPP write short."""
    x, y = load_digits_data()
    tr, te = paper_split(y, 0)
    m = MLP.init(64, (4,), 10, rng=0).fit(x[tr], y[tr], TrainParams(epochs=40, batch=64, lr=3e-3,
                                                                       select_on_validation=False), rng=1)
    net = DigitsNetwork(m.Ws, m.bs, 0)
    # the bench's vector multiplier holds its bit lines at virtual ground: model it with r_in = 0
    return x, y, tr, te, NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=0.0))


def test_bench_inference_matches_the_circuit_model_and_the_corrector_helps(small_circuit, tmp_path):
    x, y, tr, te, circuit = small_circuit
    plan = plan_from_circuit(circuit)
    assert [(a["rows"], a["cols"]) for a in plan.chip_arrays()] == [(65, 8), (5, 20)]
    # a stuck-off column band on the output layer's array (both cells of each pair)
    codes = pattern_fault_codes("columns", 5, 10, 3, "off")
    np.save(tmp_path / "l1.npy", expand_pairs(codes))
    arrays = plan.chip_arrays()
    arrays[1]["faults"] = {"kind": "file", "path": str(tmp_path / "l1.npy")}
    # a corrector trained on the circuit model's voltages under that defect (training images only)
    v_train = circuit.output_voltages(x[tr], {1: codes})
    corrector = CorrectorSpec("Linear", (), "none", True, TrainParams(epochs=30, batch=128, lr=1e-2)).fit(
        v_train, y[tr], 0, v_train, y[tr])
    images = te[:40]
    with hil.open_bench(chip={"arrays": arrays, "variation": {"d2d_rate_sigma": 0.0, "d2d_bound_sigma": 0.0,
                                                              "c2c_rate_sigma": 0.0, "read_noise_scale": 0.0}}) as b:
        results = program_network(b, plan)
        assert all(r.summary()["in_band_rate"] > 0.5 for r in results)
        out = evaluate(b, plan, x[images], y[images], corrector)
    model_v = circuit.output_voltages(x[images], {1: codes})
    assert out["voltages"].shape == (40, 10)
    # the bench's argmax follows the model's for nearly every image (ISPP leaves a few % error)
    assert np.mean(np.argmax(out["voltages"], 1) == np.argmax(model_v, 1)) >= 0.9
    faulty_model_acc = np.mean(np.argmax(model_v, 1) == y[images])
    assert out["accuracy"] == pytest.approx(faulty_model_acc, abs=0.1)
    assert out["accuracy"] < 0.8  # three of ten output columns are dead
    # the corrector recovers part of the loss on the bench, as it does on the model
    assert out["accuracy_corrected"] >= out["accuracy"] + 0.05
    model_corrected = np.mean(corrector.predict(model_v) == y[images])
    assert out["accuracy_corrected"] == pytest.approx(model_corrected, abs=0.1)
