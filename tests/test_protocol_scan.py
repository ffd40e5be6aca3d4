"""Stuck-device scan on the simulated chip through the drivers: classes, evidence, restore, resume."""
import dataclasses

import numpy as np
import pytest

import hil
from hil.faultmap import STUCK_OFF, STUCK_ON, UNRELIABLE, WORKING, FaultMap, precision_recall
from hil.runstore import read_run
from protocols.scan import STANFORD_SCAN, classify, scan

N = 16


def chip(faults, seed=0, n=N):
    return {"arrays": [{"name": "A", "rows": n, "cols": n}], "seed": seed, "faults": faults}


@pytest.mark.parametrize("rate", [0.05, 0.18, 0.39])
def test_random_faults_found_exactly(rate):
    faults = {"kind": "random", "rate_off": rate / 2, "rate_on": rate / 2, "seed": 11}
    with hil.open_bench(chip=chip(faults, seed=1)) as bench:
        truth = bench.sim.arrays["A"].true_fault_codes
        res = scan(bench)
    assert precision_recall(res.faultmap.codes, truth) == (1.0, 1.0)
    assert res.ops_per_cell == 5.0  # read, SET, read, RESET, read


@pytest.mark.parametrize("pattern", ["circle", "ring", "circle_complement", "rows", "columns", "checkerboard"])
def test_seed000_patterns_found_exactly(pattern):
    stuck = "on" if pattern in ("ring", "rows") else "off"
    with hil.open_bench(chip=chip({"kind": "pattern", "pattern": pattern, "stuck": stuck}, seed=2)) as bench:
        truth = bench.sim.arrays["A"].true_fault_codes
        fm = scan(bench).faultmap
    assert precision_recall(fm.codes, truth) == (1.0, 1.0)
    assert np.all(fm.codes[truth != 0] == (STUCK_ON if stuck == "on" else STUCK_OFF))


def test_evidence_is_kept_and_classes_follow_it():
    faults = {"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": 5}
    with hil.open_bench(chip=chip(faults, seed=3)) as bench:
        fm = scan(bench).faultmap
    ev = fm.evidence
    w, on, off = fm.codes == WORKING, fm.codes == STUCK_ON, fm.codes == STUCK_OFF
    assert np.all(ev["on_off_ratio"][w] >= 2) and np.all(ev["on_off_ratio_max"][on | off] < 1.3)
    assert ev["g_after_set"][on].min() > ev["g_after_reset"][w].max()  # stuck-ON sits high
    assert ev["g_initial"][off].max() < ev["g_after_set"][w].min()
    assert fm.chip_id == "SIM-STANFORD-64" and "device_model" in fm.bench_file


def test_classify_mixed_evidence_is_unreliable():
    p = dataclasses.replace(STANFORD_SCAN, n_cycles=2)
    g_set = np.array([[800e-6, 5e-6, 1.8e-3, 800e-6, 300e-6], [790e-6, 5e-6, 1.8e-3, 6e-6, 300e-6]])
    g_reset = np.array([[5e-6, 5e-6, 1.8e-3, 5e-6, 200e-6], [5e-6, 5.1e-6, 1.79e-3, 5e-6, 200e-6]])
    codes = classify(g_set, g_reset, p)
    # working, stuck-OFF, stuck-ON, switched once then not (unreliable), weak response (unreliable)
    assert codes.tolist() == [WORKING, STUCK_OFF, STUCK_ON, UNRELIABLE, UNRELIABLE]


def test_non_destructive_scan_restores_working_cells():
    faults = {"kind": "random", "rate_off": 0.05, "rate_on": 0.05, "seed": 7}
    n = 10
    with hil.open_bench(chip=chip(faults, seed=4, n=n)) as bench:
        arr = bench.sim.arrays["A"]
        rng = np.random.default_rng(0)
        for r in range(n):  # assorted prior states, as a used chip would have
            bench.pulse_row(r, None, 2.0, 1e-6, float(rng.uniform(1.0, 1.6)))
        before = arr.true_conductance()
        res = scan(bench, restore=True)
        after = arr.true_conductance()
        truth = arr.true_fault_codes
    assert precision_recall(res.faultmap.codes, truth) == (1.0, 1.0)
    w = truth == 0
    assert np.all(np.abs(after[w] / before[w] - 1) < 0.1)
    assert np.all(res.faultmap.evidence["restore_status"][w] == 1)
    assert res.ops_per_cell > 5


def test_scan_run_file_resumes_after_interruption(tmp_path):
    faults = {"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": 9}
    out = str(tmp_path / "scan.h5")
    with hil.open_bench(chip=chip(faults, seed=5)) as bench:
        real, calls = bench.pulse_row, {"n": 0}

        def flaky(*a, **k):
            calls["n"] += 1
            if calls["n"] == 13:  # the 7th row's SET
                raise KeyboardInterrupt
            return real(*a, **k)

        bench.pulse_row = flaky
        with pytest.raises(KeyboardInterrupt):
            scan(bench, out=out)
        mid = read_run(out)
        assert mid["status"] == "interrupted" and mid["cells"]["done"].all(axis=1).sum() == 6
        bench.pulse_row = real
        res = scan(bench, out=out)
        truth = bench.sim.arrays["A"].true_fault_codes
    assert precision_recall(res.faultmap.codes, truth) == (1.0, 1.0)
    final = read_run(out)
    assert final["status"] == "complete" and len(final["sessions"]) == 2
    np.testing.assert_array_equal(final["cells"]["g_initial"][:6], mid["cells"]["g_initial"][:6])


def test_region_scan_merges_into_older_map():
    faults = {"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": 1}
    with hil.open_bench(chip=chip(faults, seed=6)) as bench:
        full = scan(bench).faultmap
        arr = bench.sim.arrays["A"]
        codes = arr.true_fault_codes
        codes[3, 4] = STUCK_OFF if codes[3, 4] != STUCK_OFF else WORKING  # the chip changes
        arr.set_fault_codes(codes)
        part = scan(bench, rows=[2, 3, 4], cols=range(N)).faultmap
    assert np.all(part.codes[[0, 1, 5]] == -1)
    merged = full.merge(part)
    np.testing.assert_array_equal(merged.codes, codes)
    d = full.diff(merged)
    assert d["n_changed"] == 1 and d["positions"].tolist() == [[3, 4]]
    assert isinstance(merged, FaultMap)
