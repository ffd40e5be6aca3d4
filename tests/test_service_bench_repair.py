"""One new stuck device through the bench: ``hil service``'s page finds, re-scans and repairs it, and the
figures of ``benchmarks/reprogram.py --only repair-bench`` come from the bench clock and the run file.

Re(DFT8), k = 8, checksum columns, on examples/service/dft64_bench.yaml cut to two 8x10 arrays (10 %
stuck-OFF, drifting, no stuck devices of its own), through the embedded emulators and the drivers.
"""
import numpy as np
import pytest

from benchmarks.reprogram import REPAIR_BENCH_FILE, repair_bench

SMALL = "service: {n_calibrate: 64, n_probe: 8, patch: PATCH}\nbench_io: {n_vmm: 1, n_read: 2}\n"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    bench = tmp_path_factory.mktemp("repair") / "bench.yaml"
    bench.write_text(REPAIR_BENCH_FILE.read_text().replace("rows: 64, cols: 66", "rows: 8, cols: 10"))
    # seed 1 injects a stuck-ON device (the harder case: it reads ~11x g_max)
    # the analog-only repair (the hybrid one patches the device and writes nothing: test_the_hybrid_repair_...)
    return repair_bench(one_percent=False, vectors_per_hour=16, seed=1, bench_file=bench, n=8, k=8,
                        workflow_extra=SMALL.replace("PATCH", "false"))


def test_the_hybrid_repair_patches_the_device_through_the_bench_and_writes_no_more(result, tmp_path):
    """The same case and injected cell with the digital patch on: the device is patched at once, the analog
    refit retires the patch only if that is cheap, and the episode ends at its pre-fault fidelity."""
    bench = tmp_path / "bench.yaml"
    bench.write_text(REPAIR_BENCH_FILE.read_text().replace("rows: 64, cols: 66", "rows: 8, cols: 10"))
    cells = {"one_fault": [tuple(c) for c in result["one_fault"]["cells"]]}
    hybrid = repair_bench(one_percent=False, vectors_per_hour=16, seed=1, bench_file=bench, n=8, k=8,
                          workflow_extra=SMALL.replace("PATCH", "true"), cells=cells)
    one, analog = hybrid["one_fault"], result["one_fault"]
    assert one["cells"] == analog["cells"] and one["faults_found"] == 1
    rep = one["repair_log"][0]
    assert rep["patched"] + rep["absorbed_lines"] >= 1  # patched, or its line absorbed by a refit
    assert one["repair_writes"] <= analog["repair_writes"]
    # the patch gives the pre-fault operator back as the repair ends (8x10 arrays: 0.5 % of 160 devices leaves
    # the refit no writes, so the two hours of drift until the episode ends stay; the DFT64 benchmark's budget
    # rewrites part of them)
    assert one["one_minus_cos_as_last_repair_ended"] <= 1.02 * one["one_minus_cos_before"]
    assert one["digital_patch"]["weights"] == rep["patched"] <= 1


def test_the_injected_stuck_device_is_found_and_repaired_through_the_bench(result):
    one = result["one_fault"]
    assert result["scan_matches_chip"] and result["mapped_devices"] == 160
    (stage, array, row, col, code), = one["cells"]
    assert array == "AB"[stage] and code == 2
    # the loop put exactly that device, with that code, in its fault map, and repaired around it
    assert one["faults_found"] == 1 and one["new_stuck_found"] == 1 and one["repairs"] >= 1
    assert one["alarms"] >= 1 and one["alarms_handled"] >= 1
    # a stuck device spoils one line of the product: the repair writes that line and a few devices of the lines
    # crossing it, not the array (with the bench's write model, ~1 uS, a line alone cannot get back to the
    # bench's precision: k = n leaves it over-determined, so crossing lines take moves too; 15 of 160 here)
    assert 1 <= one["repair_writes"] <= 20 and one["reprogrammed_frac"] < 0.2
    assert one["one_minus_cos_after_fault"] > one["one_minus_cos_before"]
    assert one["one_minus_cos_after_repair"] < one["one_minus_cos_after_fault"]
    # a stuck-ON cell reads ~11x g_max; the engine subtracts its scanned excess, so on the true chip it stands
    # at the window's g_max, as the host's references and the window chip hold it
    so = one["stuck_on"]
    assert so["injected"] == so["found_stuck_on"] == int(code == 2)
    if code == 2:
        assert abs(so["true_minus_g_max_uS"]["median"]) < 15
    assert so["one_minus_cos_after_repair_stuck_at_rails"] == pytest.approx(one["one_minus_cos_after_repair"],
                                                                              rel=0.2)


def test_repair_figures_come_from_the_run_file_and_the_bench_clock(result):
    one, run = result["one_fault"], result["run_file"]
    # the episode's pulses are the run file's, recorded under its own phase; the fault-free hour wrote none
    assert one["pulses"] == one["pulses_run_file"] == run["pulses_by_phase"]["one"] > 0
    assert run["pulses_by_phase"].get("serve", 0) == 0
    assert run["pulses"] == sum(run["pulses_by_phase"].values())
    # bench time: the episode holds the handling of its alarms, and the whole run holds both
    assert 0 < one["alarm_handling_bench_time_s"] < one["bench_time_s"] < run["bench_time_s"]
    assert 0 < one["alarm_handling_round_trips"] < one["round_trips"] < run["round_trips"]
    assert result["fault_free_hour"]["bench_time_s"] > 0
    # the true chip's 1 - cos was taken as the repair ended: the repair brought it down from the fault's
    assert one["one_minus_cos_as_last_repair_ended"] < one["one_minus_cos_after_fault"]


def test_the_same_case_on_the_conductance_level_chip(result):
    w = result["window_engine"]
    assert w["same_mapping"]  # the same fault maps, scanned, give the same factorization
    assert w["one_fault"]["faults_found"] == 1 and w["one_fault"]["repairs"] >= 1
    assert np.isfinite(w["one_fault"]["one_minus_cos_after_repair"])
    # the window chip's write-and-verify lands within +-15 uS, the bench's ISPP within its 3 % tolerance
    assert result["write_error_after_programming"]["rms_uS"] < w["write_error_after_programming"]["rms_uS"]


def test_the_repairs_plan_with_the_benchs_write_model_from_its_run_file(result):
    from protocols.ispp import STANFORD_ISPP
    from simulated_bench.window_array import WindowParams

    wm, ww = result["write_model"], result["window_engine"]["write_model"]
    # the band is the bench's ISPP acceptance band, relative to what a cell reads (its floor + target) ...
    assert wm["band_rel"] == pytest.approx(STANFORD_ISPP.accept_fraction * STANFORD_ISPP.tol_rel)
    assert wm["band"] == STANFORD_ISPP.accept_fraction * STANFORD_ISPP.tol_abs and 0 < wm["g_offset"] < 20e-6
    # ... and the sd of where writes land is the programming run's: at a mid-window target it is within a factor
    # of two of the true chip's RMS write error, finer than the window chip's (+-15 uS band / 3)
    sd_mid = np.hypot(wm["write_sigma"], wm["write_sigma_rel"] * (75e-6 + wm["g_offset"]))
    assert 0.5 < sd_mid * 1e6 / result["write_error_after_programming"]["rms_uS"] < 2.0
    assert sd_mid < WindowParams().write_sigma
    # the conductance-level chip keeps its own
    assert ww == {"band": WindowParams().verify_band, "band_rel": 0.0, "write_sigma": WindowParams().write_sigma,
                  "write_sigma_rel": 0.0, "g_offset": 0.0}
    # the episode's anatomy: each repair's aim, plan and outcome, and what the write error cost
    rep = result["one_fault"]["repair_log"][0]
    assert rep["new_stuck_off"] + rep["new_stuck_on"] == 1 and rep["one_minus_cos_true"] is not None
    an = result["one_fault"]["anatomy"]
    assert an["faults_missed"] == [] and an["devices_written"] >= 1
    assert an["one_minus_cos_if_writes_exact"] > 0


def test_the_bench_clock_is_split_by_operation(result):
    ops, run = result["cost_per_operation"], result["run_file"]
    # every service operation ran and was charged; together they are part of the run's bench time (the rest
    # is the runner's pre-flight, calibration VMMs and the like)
    assert all(ops[op]["units"] > 0 and ops[op]["bench_time_s"] > 0 for op in ("vmm", "read", "write", "scan"))
    assert sum(o["bench_time_s"] for o in ops.values()) < run["bench_time_s"]
    # 8 inputs and 10 currents per VMM? here, not the 64 and 66 the window engine's VMM time stands for
    assert ops["vmm"]["window_over_bench"] > 1 and ops["scan"]["window_engine_per_unit_s"] is None


def test_a_stuck_on_cells_excess_is_measured_as_a_vmm_sees_it(tmp_path):
    """A stuck-ON cell carries ~11x g_max; the engine subtracts its part above g_max from every VMM, so an
    error in that excess is an error on the cell. Measured with its source line alone at v_in (16 VMMs), the
    true chip's stuck cells stand at g_max within ~1 uS; from the scan's bit-line-driven reads they stood
    ~4 uS low (the other polarity's bias on the access transistor, 3 uS, and one read's noise)."""
    import hil
    from protocols.matrix import MatrixParams
    from protocols.service_engine import BenchEngine

    bench_file = tmp_path / "bench.yaml"
    bench_file.write_text(REPAIR_BENCH_FILE.read_text().replace("rows: 64, cols: 66", "rows: 8, cols: 10"))
    with hil.open_bench(bench_file) as bench:
        chip = bench.sim.arrays["A"]
        stuck = [(r, c) for r, c in ((r, (3 * r + 1) % 10) for r in range(8)) if chip.fault_codes[r, c] == 0]
        for r, c in stuck:
            chip.stick(r, c, 2)
        engine = BenchEngine(bench, {"A": (8, 10)}, 150e-6, MatrixParams(n_vmm=16))
        codes, _ = engine.scan("A", np.arange(8), np.arange(10), np.zeros((8, 10)))
        assert len(stuck) >= 6 and all(codes[r, c] == 2 for r, c in stuck)
        g = engine.true_conductance("A")  # noise-free, at the VMM's bias, minus the floor and the excess
        off = np.array([g[r, c] - 150e-6 for r, c in stuck])
        assert abs(off.mean()) < 1.5e-6 and np.sqrt(np.mean(off ** 2)) < 2e-6
        # a working cell is not touched by the excess
        assert np.count_nonzero(engine.excess["A"]) == len(stuck)
