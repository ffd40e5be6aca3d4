"""FaultMap: file layout round trip, merge, diff, masks and stuck values, plots, scoring."""
import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hil.faultmap import (NOT_SCANNED, STUCK_OFF, STUCK_ON, UNRELIABLE, WORKING, FaultMap, load_codes,
                          precision_recall)
from hil.plots import faultmap_heatmap


def _map(seed=0, shape=(6, 5)):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, shape).astype(np.int8)
    ev = {"g_initial": rng.uniform(1e-6, 1e-3, shape), "g_after_set": rng.uniform(1e-6, 1e-3, shape)}
    return FaultMap(codes, ev, chip_id="CHIP-7", bench_file="name: sim")


def test_save_load_round_trip_and_layout(tmp_path):
    fm = _map()
    fm.save(tmp_path / "f.h5")
    with h5py.File(tmp_path / "f.h5") as f:  # the documented layout
        g = f["faultmap"]
        assert g.attrs["format"] == "rram-hil-faultmap" and g.attrs["chip_id"] == "CHIP-7"
        assert g["codes"].dtype == np.int8 and set(g["evidence"]) == {"g_initial", "g_after_set"}
    back = FaultMap.load(tmp_path / "f.h5")
    np.testing.assert_array_equal(back.codes, fm.codes)
    np.testing.assert_array_equal(back.evidence["g_initial"], fm.evidence["g_initial"])
    assert (back.chip_id, back.date, back.bench_file) == (fm.chip_id, fm.date, fm.bench_file)
    np.testing.assert_array_equal(load_codes(tmp_path / "f.h5"), fm.codes)


def test_merge_takes_newer_scanned_cells_only():
    old = _map(1)
    new_codes = np.full(old.shape, NOT_SCANNED, np.int8)
    new_codes[0, :] = STUCK_ON
    newer = FaultMap(new_codes, {"g_initial": np.full(old.shape, 7e-4)}, chip_id="CHIP-7", date="2030-01-01")
    m = old.merge(newer)
    assert np.all(m.codes[0] == STUCK_ON)
    np.testing.assert_array_equal(m.codes[1:], old.codes[1:])
    assert np.all(m.evidence["g_initial"][0] == 7e-4)
    np.testing.assert_array_equal(m.evidence["g_initial"][1:], old.evidence["g_initial"][1:])
    assert all(d == b"2030-01-01" for d in m.date_scanned[0]) and m.date == "2030-01-01"
    with pytest.raises(ValueError, match="different chips"):
        old.merge(FaultMap(new_codes, chip_id="OTHER"))


def test_diff_lists_changed_cells():
    a = FaultMap(np.zeros((3, 3), np.int8))
    codes = np.zeros((3, 3), np.int8)
    codes[1, 2] = STUCK_OFF
    codes[2, 0] = NOT_SCANNED
    d = a.diff(FaultMap(codes))
    assert d["n_changed"] == 1 and d["n_compared"] == 8
    assert d["positions"].tolist() == [[1, 2]] and d["transitions"] == {"working->stuck_off": 1}


def test_masks_and_stuck_values_for_mapping():
    codes = np.array([[WORKING, STUCK_OFF], [STUCK_ON, UNRELIABLE]], np.int8)
    ev = {"g_initial": np.array([[1e-4, 4e-6], [1.8e-3, 5e-5]]), "g_after_set": np.array([[8e-4, 6e-6], [1.7e-3, 6e-5]])}
    fm = FaultMap(codes, ev)
    m = fm.masks()
    assert m["stuck_off"].tolist() == [[False, True], [False, False]]
    assert m["faulty"].tolist() == [[False, True], [True, True]]
    assert not fm.masks(unreliable_as_faulty=False)["faulty"][1, 1]
    v = fm.stuck_values()
    assert v[0, 1] == pytest.approx(5e-6) and v[1, 0] == pytest.approx(1.75e-3) and np.isnan(v[0, 0])
    v2 = fm.stuck_values(g_off=0.0, g_on=150e-6)  # seed 003's model of stuck devices
    assert v2[0, 1] == 0.0 and v2[1, 0] == 150e-6


def test_export_codes_and_heatmap(tmp_path):
    codes = np.array([[0, 1, 2, 3, -1]], np.int8)
    fm = FaultMap(codes)
    assert fm.export_codes().tolist() == [[0, 1, 2, 3, 0]]
    assert fm.counts() == {"working": 1, "stuck_off": 1, "stuck_on": 1, "unreliable": 1, "not_scanned": 1}
    png = faultmap_heatmap(fm, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000 and png.endswith("f.png")


def test_bad_codes_and_shapes_are_refused():
    with pytest.raises(ValueError, match="fault code 7"):
        FaultMap(np.array([[0, 7]]))
    with pytest.raises(ValueError, match="shape"):
        FaultMap(np.zeros((2, 2), np.int8), {"g": np.zeros(3)})


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int8, (5, 4), elements=st.integers(0, 2)), hnp.arrays(np.int8, (5, 4), elements=st.integers(0, 3)))
def test_precision_recall_properties(truth, found):
    p, r = precision_recall(found, truth)
    assert 0 <= p <= 1 and 0 <= r <= 1
    assert precision_recall(truth, truth) == (1.0, 1.0)
    # flagging every working cell as unreliable costs precision, never recall
    noisy = np.where(truth == 0, UNRELIABLE, truth)
    assert precision_recall(noisy, truth)[1] == 1.0
    if (truth == 0).any() and (truth != 0).any():
        assert precision_recall(noisy, truth)[0] < 1.0
