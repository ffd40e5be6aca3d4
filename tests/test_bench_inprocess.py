"""The embedded simulated bench, in-process: real drivers, emulators, the chip's truth."""
import numpy as np
import pytest

import hil
from hil.bench import Bench

QUIET = {"variation": {"read_noise_scale": 0.0}}
V_READ, V_GATE = 0.2, 3.0


def small_chip(rows=32, cols=32, **extra):
    return {"arrays": [{"name": "A", "rows": rows, "cols": cols}], **extra}


def truth_map(array, v_read=V_READ, v_gate=V_GATE):
    """Noise-free read conductance of every cell: I(v_read) / v_read through its 1T1R cell."""
    return np.stack([array.read_row(r, None, v_read, v_gate, noisy=False) for r in range(array.rows)]) / v_read


def test_open_bench_default_is_64x64_stanford():
    with hil.open_bench() as bench:
        assert isinstance(bench, Bench)
        assert (bench.rows, bench.cols) == (64, 64)
        assert bench.arrays == {"A": (64, 64)}
        assert type(bench.sim.arrays["A"].model).__name__ == "StanfordGapModel"


def test_read_32x32_matches_truth_within_read_noise():
    with hil.open_bench(chip=small_chip(initial_state="off")) as bench:
        arr = bench.sim.arrays["A"]
        # program a pattern so the map is not flat: SET every third cell of each row
        for r in range(32):
            bench.pulse_row(r, list(range(r % 3, 32, 3)), 2.0, 1e-6, 1.5)
        g = bench.read_array(V_READ, V_GATE)
        truth = truth_map(arr)
    assert g.shape == (32, 32)
    rel = np.abs(g / truth - 1)
    sigma = arr.model.read_noise_rel(arr.true_conductance())
    assert np.all(rel < 6 * sigma)
    assert truth.max() / truth.min() > 20  # both states present


def test_read_is_exact_without_noise():
    with hil.open_bench(chip=small_chip(16, 16, **QUIET)) as bench:
        g = bench.read_array(V_READ, V_GATE)
        np.testing.assert_allclose(g, truth_map(bench.sim.arrays["A"]), rtol=1e-6)


def test_set_and_reset_pulses_reach_only_selected_cells():
    with hil.open_bench(chip=small_chip(8, 8, **QUIET)) as bench:
        arr = bench.sim.arrays["A"]
        before = arr.true_conductance().copy()
        bench.pulse_row(2, [1, 4], 2.0, 1e-6, 1.5)
        after_set = arr.true_conductance().copy()
        changed = np.argwhere(~np.isclose(after_set, before))
        assert {tuple(x) for x in changed} == {(2, 1), (2, 4)}
        assert np.all(after_set[2, [1, 4]] > 10 * before[2, [1, 4]])
        bench.pulse_row(2, [1], -2.5, 1e-6, 4.5)
        after_reset = arr.true_conductance()
        assert after_reset[2, 1] < after_set[2, 1] / 10
        assert after_reset[2, 4] == pytest.approx(after_set[2, 4])  # inhibited


def test_vmm_is_sum_of_conductance_times_input():
    with hil.open_bench(chip=small_chip(8, 8, **QUIET)) as bench:
        for r in range(8):
            bench.pulse_row(r, [r], 2.0, 1e-6, 1.5)
        v = np.linspace(0.05, 0.2, 8)
        i = bench.vmm(v, 3.0)
        arr = bench.sim.arrays["A"]
        truth = -arr.cell_currents(3.0, 0.0, v, noisy=False).sum(axis=0)  # each cell at its row's input
        np.testing.assert_allclose(i, truth, rtol=1e-5)
        g_small = arr.true_conductance()
        np.testing.assert_allclose(i, (v[:, None] * g_small).sum(axis=0), rtol=0.3)  # ~ sum_i G_ij v_i
        assert np.argmax(i) == 7


def test_multi_array_chip_selects_by_name():
    chip = {"arrays": [{"name": "MA", "rows": 8, "cols": 4}, {"name": "MB", "rows": 4, "cols": 8}], **QUIET}
    with hil.open_bench(chip=chip) as bench:
        assert bench.arrays == {"MA": (8, 4), "MB": (4, 8)}
        assert (bench.array, bench.rows, bench.cols) == ("MA", 8, 4)
        bench.use_array("MB")
        assert (bench.rows, bench.cols) == (4, 8)
        bench.pulse_row(1, [6], 2.0, 1e-6, 1.5)
        g = bench.read_array(V_READ, V_GATE)
        assert g.shape == (4, 8)
        assert np.unravel_index(np.argmax(g), g.shape) == (1, 6)
        assert np.all(bench.sim.arrays["MA"].true_conductance() < 1e-5)  # MA untouched
        with pytest.raises(KeyError):
            bench.use_array("MC")


def test_switch_matrix_bench_with_2600b_reads_and_programs_through_the_same_roles():
    """707B addresser, 2636B (read on smua column by column, gate on smub), 81160A pulses."""
    with hil.open_bench("examples/benches/simulated_matrix.yaml", chip={"variation": {"read_noise_scale": 0.0}}) as b:
        arr = b.sim.arrays["A"]
        assert (b.rows, b.cols, b.vector) == (16, 16, None)
        b.pulse_row(3, [2, 9], 2.0, 1e-4, 1.5)
        g = b.read_array(V_READ, V_GATE, rows=[2, 3])
        truth = truth_map(arr)[[2, 3]]
        np.testing.assert_allclose(g, truth, rtol=1e-5)  # the 2636B prints six digits
        assert set(np.flatnonzero(g[1] > 10 * g[0].max())) == {2, 9}
        b.pulse_row(3, [9], -2.5, 1e-4, 4.5)
        after = b.read_row(3, None, V_READ, V_GATE)
        assert after[9] < g[1, 9] / 10 and after[2] == pytest.approx(g[1, 2], rel=1e-5)
        with pytest.raises(RuntimeError, match="no vector multiplier"):
            b.vmm(np.zeros(16), 3.0)
        sim = b.sim
    e = sim.emulators
    assert not e["matrix"].closed.any() and e["smu"].state["a"].output == 0 and e["smu"].state["b"].output == 0


def test_bench_without_per_line_sense_reads_column_by_column(tmp_path):
    import yaml

    data = yaml.safe_load(hil.bench.simulated_bench_file().read_text())
    data["wiring"]["sense"] = "read"  # the 2450 reads each selected column through the board
    data["chip"].update(arrays=[{"name": "A", "rows": 4, "cols": 6}], variation={"read_noise_scale": 0.0})
    path = tmp_path / "scan.yaml"
    path.write_text(yaml.safe_dump(data))
    with hil.open_bench(path) as bench:
        bench.pulse_row(1, [0, 4], 2.0, 1e-6, 1.5)
        emu = bench.sim.emulators["smu"]
        with emu.recording() as sent:
            g = bench.read_row(1, [0, 2, 4], V_READ, V_GATE)
        np.testing.assert_allclose(g, truth_map(bench.sim.arrays["A"])[1, [0, 2, 4]], rtol=1e-6)
        # one message per column: the reading and the current-limit status in the same transfer
        assert sent.count(":READ?;:SOUR:VOLT:ILIM:TRIP?") == 3 and not any(line == ":READ?" for line in sent)
        assert not bench.read_tripped()


def test_read_row_returns_columns_in_the_order_asked():
    with hil.open_bench(chip=small_chip(4, 8, **QUIET)) as bench:
        bench.pulse_row(2, [6], 2.0, 1e-6, 1.5)
        g = bench.read_row(2, [6, 1, 6, 3], V_READ, V_GATE)
        ref = truth_map(bench.sim.arrays["A"])[2]
        np.testing.assert_allclose(g, ref[[6, 1, 6, 3]], rtol=1e-6)


def test_smu_timed_pulses_on_the_board_bench(tmp_path):
    """A 2636B channel on the PULSE input: pulses timed on the instrument reach the cells."""
    import yaml

    data = yaml.safe_load(hil.bench.simulated_bench_file().read_text())
    data["instruments"]["pulser"] = {"model": "keithley2600b", "address": "sim://pulser"}
    data["wiring"]["pulse"] = "pulser.b"
    data["wiring"].pop("pulse_trigger", None)  # the board's TRIG OUT cable goes to a pulse generator, not here
    data["limits"]["pulse_width_min"] = 1e-4
    data["chip"].update(arrays=[{"name": "A", "rows": 4, "cols": 4}], variation={"read_noise_scale": 0.0,
                                                                                  "c2c_rate_sigma": 0.0})
    path = tmp_path / "smu_pulse.yaml"
    path.write_text(yaml.safe_dump(data))
    with hil.open_bench(path) as bench:
        arr = bench.sim.arrays["A"]
        twin_state = arr.state.copy()
        bench.pulse_row(1, [2], 1.6, 2e-4, 1.5)
        assert arr.state[1, 2] != twin_state[1, 2] and np.all(np.delete(arr.state.ravel(), 6) ==
                                                              np.delete(twin_state.ravel(), 6))
        g = bench.read_row(1, [2, 3], V_READ, V_GATE)
        assert g[0] > 10 * g[1]
        with pytest.raises(hil.LimitError):
            bench.pulse_row(1, [2], 1.6, 1e-5, 1.5)  # shorter than the SMU can time
        sim = bench.sim
    assert sim.emulators["pulser"].state["b"].output == 0
