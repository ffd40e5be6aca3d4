"""The hybrid repair: a digital patch of known stuck devices, absorbed by the analog refit where cheap.

Re(DFT16) (k = 16, checksum columns) on two window-level 16x18 arrays, and Re(DFT8) on two 8x10 arrays of the
emulated bench (examples/service/dft64_bench.yaml cut down), through the drivers.
"""
from dataclasses import replace

import numpy as np
import pytest

from hil.factorization import random_fault_codes
from hil.faultmap import STUCK_OFF, STUCK_ON
from hil.service import CheckParams, ServiceParams, ServiceSession, WindowEngine, map_factorized
from hil.service.workflow import WorkflowError, parse_workflow
from protocols.matrix import dft_parts
from simulated_bench.window_array import WindowArray, WindowParams

N = 16
G_MAX = 150e-6
QUIET = WindowParams(read_noise_scale=0.0)  # noise off: served outputs are exact


def session(patch=True, seed=3, params=QUIET, **kw):
    m = dft_parts(N)[0]
    ca = random_fault_codes(N, N + 2, 0.05, rng=1)
    cb = random_fault_codes(N, N + 2, 0.05, rng=2)
    mm = map_factorized(m, N, ca, cb, rng=0)
    arrays = {"A": WindowArray(N, N + 2, params, fault_codes=ca, seed=seed),
              "B": WindowArray(N, N + 2, params, fault_codes=cb, seed=seed + 1)}
    s = ServiceSession(mm, WindowEngine(arrays), ServiceParams(checks=CheckParams(kind="groups", group_size=4),
                                                               patch=patch, **kw))
    s.program()
    s.calibrate(0)
    return s, arrays


def stick_high(s, arrays, n, rng):
    """Stick ``n`` working data devices that hold >= 40 % of the window OFF (a large error each), on the chip
    and in the codes the host is told; returns the new codes."""
    new = [st.codes.copy() for st in s.mm.stages]
    cells = [(i, r, c) for i, st in enumerate(s.mm.stages)
             for r, c in np.argwhere((st.codes[:, :st.n_data] == 0) & (st.g_ref[:, :st.n_data] > 0.4 * G_MAX))]
    for k in rng.choice(len(cells), n, replace=False):
        i, r, c = cells[k]
        arrays["AB"[i]].stick(r, c, STUCK_OFF)
        new[i][r, c] = STUCK_OFF
    return new


def truth(s, arrays):
    return [arrays[st.array].true_conductance() for st in s.mm.stages]


def test_the_served_outputs_are_the_patched_operator_on_basis_inputs():
    """serve() adds the patch after the syndromes and the drift gain; product() holds the same patch: on the
    basis inputs (noise off) the served matrix is the product of the true conductances with the patch."""
    s, arrays = session()
    new = stick_high(s, arrays, 3, np.random.default_rng(1))
    s.repair(new, s.mm.effective())
    assert s.mm.patch_counts()["weights"] >= 1
    served, _ = s.serve(np.eye(N), handle_alarms=False)
    assert np.allclose(served * s.mm.scale, s.mm.product(truth(s, arrays)), rtol=1e-9, atol=1e-18)
    # the patch is what makes the difference: without it the same conductances serve another matrix
    off = s.mm.product(truth(s, arrays), patched=False)
    assert np.abs(off - served * s.mm.scale).max() > 0.1 * np.abs(off).max()


def test_a_hybrid_repair_restores_the_pre_fault_operator_without_the_writes_analog_needs():
    rng_seed = 4
    out = {}
    for patch in (True, False):
        s, arrays = session(patch, params=WindowParams())
        before = s.mm.one_minus_cos(truth(s, arrays))
        new = stick_high(s, arrays, 4, np.random.default_rng(rng_seed))
        fault = s.mm.one_minus_cos(truth(s, arrays))
        w0 = s.count.devices_reprogrammed
        rec = s.repair(new, s.mm.effective())
        out[patch] = (before, fault, s.mm.one_minus_cos(truth(s, arrays)), s.count.devices_reprogrammed - w0, rec)
    (b, f, a, w, rec), (_, _, a_analog, w_analog, rec_analog) = out[True], out[False]
    assert f > 2 * b and a <= 1.05 * b  # the patched operator is the pre-fault one (within the write noise)
    assert w <= w_analog and w_analog > 0 and "patch" not in rec_analog
    p = rec["patch"]
    retired = {(i, line) for i, line, _ in p["absorbed_lines"] + p["forced_lines"]}
    kept = [c for c in p["installed"] if (c[0], c[1] if c[0] == 0 else c[2]) not in retired]
    assert len(p["installed"]) == 4 and p["weights"] == len(kept)  # a retired line's patches are gone
    assert p["macs_per_vmm"] == p["weights"] and p["frac_of_macs"] == p["weights"] / (2 * N * N)
    assert rec["one_minus_cos_planned"] == pytest.approx(rec["one_minus_cos_aim"], rel=1e-9)


def test_cheap_patches_are_absorbed_within_the_write_budget_and_the_cap_forces_the_rest():
    rng = np.random.default_rng(5)
    # absorbing is free for a patch whose line is within its share of the aim without it: a budget of zero
    # writes retires only those
    s, arrays = session(patch_write_budget=0.0)
    rec = s.repair(stick_high(s, arrays, 4, rng), s.mm.effective())
    assert rec["writes"] == 0 and all(w == 0 for _, _, w in rec["patch"]["absorbed_lines"])
    # a cap of no patched MACs: every patched line goes to the analog refit, which writes what it must
    s, arrays = session(patch_max_frac=0.0)
    before = s.mm.one_minus_cos(truth(s, arrays))
    rec = s.repair(stick_high(s, arrays, 4, np.random.default_rng(5)), s.mm.effective())
    assert rec["patch"]["weights"] == 0 and rec["patch"]["forced_lines"] and rec["writes"] > 0
    assert s.mm.patch_counts()["weights"] == 0
    assert s.mm.one_minus_cos(truth(s, arrays)) < 3 * before


def test_a_found_stuck_device_is_patched_in_the_run_log_and_its_fault_map_version():
    s, arrays = session(seed=9)
    st = s.mm.stages[1]
    cell = np.unravel_index(np.argmax(np.where(st.codes == 0, st.g_ref, 0)[:, :N]), (N, N))
    arrays["B"].stick(*cell, STUCK_OFF)
    rng = np.random.default_rng(11)
    for _ in range(10):
        s.serve(rng.uniform(-1, 1, (5, N)))
    rep = next(e for e in s.log if e["event"] == "repair")
    assert [1, *map(int, cell)] in rep["patch"]["installed"]
    assert s.versions.latest.evidence["patched"][1] == [list(map(int, cell))]


def test_patch_values_cells_and_shapes_are_checked():
    s, _ = session()
    st = s.mm.stages[0]
    stuck = np.argwhere(st.codes[:, :N] != 0)[0]
    cells = np.zeros(st.shape, bool)
    cells[tuple(stuck)] = True
    with pytest.raises(ValueError, match=r"patch value of device \(%d, %d\) is nan" % tuple(stuck)):
        st.set_patch(cells, np.full(st.shape, np.nan))
    with pytest.raises(ValueError, match="must be"):
        st.set_patch(cells[:, :N], np.zeros((N, N)))
    with pytest.raises(ValueError, match=r"stage A: conductances must be \(16, 18\), got \(16, 16\)"):
        s.mm.product([st.g_ref[:, :N], s.mm.stages[1].g_ref])
    working = np.zeros(st.shape, bool)
    working[tuple(np.argwhere(st.codes[:, :N] == 0)[0])] = True
    with pytest.raises(ValueError, match="only stuck devices"):
        st.set_patch(working, np.zeros(st.shape))
    check = np.zeros(st.shape, bool)
    check[0, N] = True
    st.codes[0, N] = STUCK_OFF  # a stuck checksum device: the checks hold it in their reference, no patch
    with pytest.raises(ValueError, match="only stuck devices"):
        st.set_patch(check, np.zeros(st.shape))


def test_a_patched_device_found_working_again_or_re_stuck_keeps_the_served_operator_honest():
    s, arrays = session()
    new = stick_high(s, arrays, 2, np.random.default_rng(6))
    s.repair(new, s.mm.effective())
    i = next(k for k, st in enumerate(s.mm.stages) if st.patched.any())
    st = s.mm.stages[i]
    r, c = np.argwhere(st.patched)[0]
    g_patched = st.g_patch[r, c]
    served = st.g_ref[r, c] + st.patch[r, c]
    assert served == pytest.approx(g_patched)
    # re-stuck at the other rail: the host pins it anew and the patch still stands in for the same value
    st.codes[r, c] = STUCK_ON
    st.g_ref[r, c] = G_MAX
    assert st.g_ref[r, c] + st.patch[r, c] == pytest.approx(g_patched)
    # found working again: its patch is dropped (the device computes in analog again, no double count)
    st.codes[r, c] = 0
    assert not st.patched[r, c] and st.patch[r, c] == 0


def test_patch_off_is_the_analog_only_repair():
    s, arrays = session(patch=False)
    new = stick_high(s, arrays, 2, np.random.default_rng(7))
    rec = s.repair(new, s.mm.effective())
    assert rec["writes"] > 0 and s.mm.patch_counts()["weights"] == 0 and "patch" not in rec


@pytest.mark.parametrize("service,match", [("{pach: false}", "pach"), ("{patch: 2}", "patch must be a bool"),
                                           ("{patch_max_frac: 2.0}", "patch_max_frac"),
                                           ("{patch_write_budget: -0.1}", "patch_write_budget")])
def test_the_workflow_names_a_bad_patch_setting(service, match):
    with pytest.raises(WorkflowError, match=match):
        parse_workflow(f"name: x\nservice: {service}\n")
    assert parse_workflow("name: x\nservice: {patch: false}\n").service == {"patch": False}


def test_through_the_bench_the_served_outputs_are_the_patched_operator(tmp_path):
    """Re(DFT8) on the emulated bench: scan, map, ISPP program, then a known stuck device patched; the served
    outputs of the basis inputs are the true chip's product with the patch, within the bench's read noise, and
    far from it without the patch."""
    import hil
    from benchmarks.reprogram import REPAIR_BENCH_FILE
    from protocols.matrix import MatrixParams
    from protocols.service_engine import BenchEngine

    n = 8
    bench_file = tmp_path / "bench.yaml"
    bench_file.write_text(REPAIR_BENCH_FILE.read_text().replace("rows: 64, cols: 66", f"rows: {n}, cols: {n + 2}"))
    with hil.open_bench(bench_file) as bench:
        engine = BenchEngine(bench, {"A": (n, n + 2), "B": (n, n + 2)}, G_MAX, MatrixParams(n_vmm=4))
        codes = {k: engine.scan(k, np.arange(n), np.arange(n + 2), np.zeros((n, n + 2)))[0] for k in "AB"}
        mm = map_factorized(dft_parts(n)[0], n, codes["A"], codes["B"], rng=0)
        s = ServiceSession(mm, engine, ServiceParams(n_calibrate=32))
        s.program()
        s.calibrate(0)
        st = mm.stages[0]
        r, c = np.argwhere((st.codes[:, :n] == 0) & (st.g_ref[:, :n] > 0.4 * G_MAX))[0]
        bench.sim.arrays["A"].stick(r, c, STUCK_OFF)
        new = [x.codes.copy() for x in mm.stages]
        new[0][r, c] = STUCK_OFF
        rec = s.repair(new, mm.effective())
        assert [0, int(r), int(c)] in rec["patch"]["installed"]
        served, _ = s.serve(np.eye(n), handle_alarms=False)
        true = mm.product([engine.true_conductance(x.array) for x in mm.stages])
        unpatched = mm.product([engine.true_conductance(x.array) for x in mm.stages], patched=False)
    scale = np.abs(true).max()
    if mm.stages[0].patched[r, c]:
        assert np.abs(served * mm.scale - true).max() < 0.05 * scale
        assert np.abs(served * mm.scale - unpatched).max() > 0.1 * scale
    else:  # absorbed by a refit: the written line serves the operator without a patch
        assert np.abs(served * mm.scale - true).max() < 0.05 * scale


def test_a_plan_under_a_write_budget_moves_at_most_that_many_devices():
    from hil.service import RefitParams, plan_repair

    s, arrays = session(patch=False)
    new = stick_high(s, arrays, 3, np.random.default_rng(8))
    free = plan_repair(s.mm, new, RefitParams(slack=1.0))
    assert free.writes > 3
    for budget in (0, 3):
        assert plan_repair(s.mm, new, RefitParams(slack=1.0, write_budget=budget)).writes <= budget


def test_a_repairs_recorded_writes_include_the_repair_of_a_write_that_did_not_verify():
    """Analog repair: a device that sticks as it is written is scanned and repaired in turn; those writes are
    the repair's too, so the run's figure (writes_over_time) adds up to the session's count."""
    from hil.service.report import writes_over_time

    s, arrays = session(patch=False)
    new = stick_high(s, arrays, 2, np.random.default_rng(7))
    write, hit = s.engine.write, []

    def write_and_stick_one(array, targets):  # the first written device of the repair does not follow
        if not hit:
            r, c = np.argwhere(np.isfinite(targets) & (targets > 0.3 * G_MAX))[0]
            arrays[array].stick(r, c, STUCK_OFF)
            hit.append((array, r, c))
        return write(array, targets)

    s.engine.write = write_and_stick_one
    w0 = s.count.devices_reprogrammed
    rec = s.repair(new, s.mm.effective())
    array, r, c = hit[0]
    assert s.mm.stages["AB".index(array)].codes[r, c] == STUCK_OFF  # found by its write, and repaired around
    assert any(e["event"] == "faultmap_version" for e in s.log)
    assert rec["writes"] == s.count.devices_reprogrammed - w0 > 0
    assert writes_over_time(s.log)[1][-1] == s.count.devices_reprogrammed
