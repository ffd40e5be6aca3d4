"""The seed-000 network in service: the corrector is kept while it holds, re-trained when the circuit changed."""
import numpy as np

from hil.networks.digits import load_digits_data, paper_split, train_digits_network
from hil.service.network import Calibration, check_corrector, fit_corrector, serve_network
from simulated_bench.window_array import WindowArray


def test_corrector_lifts_accuracy_is_kept_while_it_holds_and_retrained_after_unrepaired_damage():
    x, y = load_digits_data()
    tr, _ = paper_split(y, 0)
    net = train_digits_network(x[tr], y[tr], 0)
    arrays = {}

    def make(name, rows, cols, codes, seed):
        arrays[name] = WindowArray(rows, cols, fault_codes=codes, seed=seed)
        return arrays[name]

    sn = serve_network(net, 0.02, make, seed=1)
    idx = np.random.default_rng(2).permutation(tr)
    held = np.setdiff1d(np.arange(len(y)), idx[:800])
    cal = Calibration(x[idx[:600]], y[idx[:600]], x[idx[600:800]], y[idx[600:800]], seed=3)
    uncorrected = sn.accuracy(x[held], y[held], handle_alarms=False, corrected=False)
    assert sn.log == []
    fit_corrector(sn, cal)
    corrected = sn.accuracy(x[held], y[held], handle_alarms=False)
    # the write-and-verify error of every pair costs the raw circuit points the corrector wins back
    assert corrected > uncorrected + 0.005
    assert check_corrector(sn)["decision"] == "kept"
    # the last layer damaged behind the host's back (no repair): its validation falls, it is re-trained
    rng = np.random.default_rng(4)
    arr = arrays["L3"]
    for r, c in np.argwhere(rng.random(arr.shape) < 0.15):
        if arr.fault_codes[r, c] == 0:
            arr.stick(r, c, 2)
    rec = check_corrector(sn)
    assert rec["decision"] == "re-trained"
    assert rec["val_accuracy_after"] > rec["val_accuracy"]
    assert [e["event"] for e in sn.log] == ["corrector_trained", "corrector_check", "corrector_trained",
                                            "corrector_check"]
