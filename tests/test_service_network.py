"""The seed-000 network in service: the corrector is kept while a paired test finds its circuit unchanged, and
fine-tuned on the lab's calibration images once the circuit moved (hil/service/network.py)."""
import numpy as np
import pytest

from hil.networks.digits import load_digits_data, paper_split, train_digits_network
from hil.service.network import Calibration, check_corrector, digital_patch, fit_corrector, serve_network
from simulated_bench.window_array import WindowArray


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits_data()
    tr, _ = paper_split(y, 0)
    return x, y, tr, train_digits_network(x[tr], y[tr], 0)


def served(digits, seed=1):
    x, y, tr, net = digits
    arrays = {}

    def make(name, rows, cols, codes, aseed):
        arrays[name] = WindowArray(rows, cols, fault_codes=codes, seed=aseed)
        return arrays[name]

    sn = serve_network(net, 0.02, make, seed=seed)
    idx = np.random.default_rng(2).permutation(tr)
    cal = Calibration(x[idx[:600]], y[idx[:600]], x[idx[600:800]], y[idx[600:800]], seed=3)
    return sn, arrays, cal, np.setdiff1d(np.arange(len(y)), idx[:800])


def test_corrector_lifts_accuracy_is_kept_on_an_unchanged_circuit_and_fine_tuned_after_unrepaired_damage(digits):
    x, y, _, _ = digits
    sn, arrays, cal, held = served(digits)
    uncorrected = sn.accuracy(x[held], y[held], handle_alarms=False, corrected=False)
    assert sn.log == []
    fit_corrector(sn, cal)
    corrected = sn.accuracy(x[held], y[held], handle_alarms=False)
    # the write-and-verify error of every pair costs the raw circuit points the corrector wins back
    assert corrected > uncorrected + 0.005
    assert len(sn.ref_losses) == len(cal.y_fit) + len(cal.y_val)  # every calibration image is a test pair
    rec = check_corrector(sn)
    assert rec["decision"] == "kept" and rec["p_value"] >= cal.alpha
    # the last layer damaged behind the host's back (no repair): the paired test fires, the warm-started
    # candidate is adopted only because its loss on the validation images (never trained on) is lower
    rng = np.random.default_rng(4)
    arr = arrays["L3"]
    for r, c in np.argwhere(rng.random(arr.shape) < 0.15):
        if arr.fault_codes[r, c] == 0:
            arr.stick(r, c, 2)
    damaged = sn.accuracy(x[held], y[held], handle_alarms=False)
    corrector_before = sn.corrector
    rec = check_corrector(sn)
    assert rec["p_value"] < cal.alpha and rec["loss_all"] > rec["loss_all_reference"]
    assert rec["decision"] == "fine-tuned"
    assert rec["candidate_val_loss"] < rec["val_loss"] and sn.corrector is not corrector_before
    # on images neither the fine-tune nor the decision saw, the circuit's damage is partly won back
    assert sn.accuracy(x[held], y[held], handle_alarms=False) > damaged
    # the new reference is the fine-tuned corrector's: the same circuit now passes the test
    assert check_corrector(sn)["decision"] == "kept"
    assert [e["event"] for e in sn.log] == ["corrector_trained"] + ["corrector_check"] * 3


def test_a_check_after_repairs_wrote_devices_fine_tunes_without_waiting_for_the_test(digits):
    sn, arrays, cal, _ = served(digits, seed=7)
    fit_corrector(sn, cal)
    assert check_corrector(sn)["writes_since"] == 0 and sn.writes == 0
    # devices of the first layer stick ON behind the host's back; the maintenance read-back finds them and the
    # repair re-writes their partners (write-and-verify error the corrector never learned)
    arr, st = arrays["L0"], sn.sessions[0].mm.stages[0]
    low = np.argwhere((arr.fault_codes == 0) & (st.g_ref < 20e-6))
    for r, c in low[np.random.default_rng(8).choice(len(low), 6, replace=False)]:
        arr.stick(r, c, 2)
    for s in sn.sessions:
        s.maintain()
    assert sn.writes > 0
    rec = check_corrector(sn)
    assert rec["writes_since"] == sn.writes and rec["decision"] in ("fine-tuned", "kept (fine-tune no better)")
    assert "candidate_val_loss" in rec  # a candidate was trained and judged, whatever the test said
    # those writes are seen: the next check, with none since, follows the paired test alone
    rec = check_corrector(sn)
    assert rec["writes_since"] == 0 and (rec["decision"] == "kept") == (rec["p_value"] >= cal.alpha)


def test_the_digital_patch_adds_exactly_the_weights_stuck_pairs_cannot_hold(digits):
    x, y, _, _ = digits
    sn, _, _, held = served(digits, seed=9)
    for s in sn.sessions:
        st, p = s.mm.stages[0], digital_patch(s)
        stuck_pair = (st.codes[0::2] != 0) | (st.codes[1::2] != 0)
        assert p.shape == s.mm.target.shape and not p[~stuck_pair].any()  # fault-free pairs: nothing digital
        assert np.all(np.abs(p[p != 0]) * s.mm.scale > s.p.refit.band)  # only errors beyond the write band
        # where patched, the layer computes its target weight (up to the reference's read noise)
        g = np.where(st.codes == 1, 0.0, np.where(st.codes == 2, s.p.refit.g_max, st.g_ref))
        w = st.logical(g) / s.mm.scale + p
        assert np.allclose(w[p != 0], s.mm.target[p != 0])
    # 2 % stuck-OFF: a G+ stuck under a positive weight costs the raw circuit points the patch wins back
    assert sn.patch  # the default
    patched = sn.accuracy(x[held], y[held], handle_alarms=False, corrected=False)
    sn.patch = False
    assert patched > sn.accuracy(x[held], y[held], handle_alarms=False, corrected=False) + 0.02


def test_paired_test_false_triggers_stay_near_its_level_on_an_unchanged_circuit(digits):
    """Under H0 (no aging, no faults: only read noise differs between passes) the test rarely fires. Every check
    is paired with the same reference, so the p-values of one run are correlated (not 20 independent uniforms)."""
    sn, _, cal, _ = served(digits, seed=5)
    fit_corrector(sn, cal)
    p = np.array([check_corrector(sn)["p_value"] for _ in range(20)])
    assert (p < 0.01).sum() <= 1
    assert (p < 0.05).sum() <= 4
    assert p.max() > 0.5


def test_calibration_refuses_a_test_it_cannot_run(digits):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match="alpha"):
        Calibration(x[:100], y[:100], x[100:200], y[100:200], alpha=0.0)
    with pytest.raises(ValueError, match="one label each"):
        Calibration(x[:100], y[:99], x[100:200], y[100:200])
    bad = x[100:200].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="validation images must be finite"):
        Calibration(x[:100], y[:100], bad, y[100:200])
    with pytest.raises(ValueError, match="ref_passes"):
        Calibration(x[:100], y[:100], x[100:200], y[100:200], ref_passes=0)
    with pytest.raises(ValueError, match="20 validation images"):
        Calibration(x[:100], y[:100], x[100:110], y[100:110])
    sn, _, cal, _ = served(digits, seed=6)
    with pytest.raises(RuntimeError, match="fit_corrector"):
        check_corrector(sn)
