"""The simulated array: determinism, stuck devices, reads, pulses, VMM, bad inputs."""
import numpy as np
import pytest

from simulated_bench import (NO_VARIATION, STUCK_OFF, STUCK_ON, ChipTiming, SimulatedArray, VariationParams,
                             random_fault_codes, pattern_fault_codes)
from simulated_bench.devices.stanford import NM


def make(seed=7, **kw):
    return SimulatedArray(16, 16, fault_codes=random_fault_codes(16, 16, 0.1, 0.05, rng=seed), seed=seed, **kw)


def run_script(chip):
    chip.pulse_row(3, [1, 2, 5], 2.0, 1e-7, 1.2)
    chip.apply_lines(1.0, 2.0, 0.0, 1e-8)
    chip.pulse_row(3, [2], -2.0, 1e-8, 5.0)
    return chip.read_all(0.2, 3.0)


def test_same_seed_same_chip_and_same_run():
    a, b = make(), make()
    np.testing.assert_array_equal(a.rate_factor, b.rate_factor)
    np.testing.assert_array_equal(run_script(a), run_script(b))
    np.testing.assert_array_equal(a.state, b.state)
    c = make(seed=8)
    assert not np.array_equal(a.rate_factor, c.rate_factor)


def test_stuck_devices_ignore_pulses_and_read_stuck():
    codes = np.zeros((8, 8), np.int8)
    codes[1, 2] = STUCK_OFF
    codes[4, 4] = STUCK_ON
    chip = SimulatedArray(8, 8, fault_codes=codes, variation=NO_VARIATION, seed=0, initial_state="off")
    g_before = chip.true_conductance().copy()
    chip.apply_lines(1.5, 2.5, 0.0, 1e-6)  # SET everything
    chip.pulse_row(4, None, -2.5, 1e-6, 5.0)  # RESET row 4
    g = chip.true_conductance()
    assert g[1, 2] == g_before[1, 2] == pytest.approx(chip.model.conductance(chip.model.state_off))
    assert g[4, 4] == pytest.approx(chip.model.conductance(chip.model.state_on))
    working = codes == 0
    assert np.all(g[working & (np.arange(8)[:, None] != 4)] > 10 * g_before[1, 2])
    np.testing.assert_array_equal(chip.true_fault_codes, codes)


def test_pulse_reaches_only_selected_cells():
    chip = SimulatedArray(8, 8, variation=NO_VARIATION, seed=0, initial_state="on")
    before = chip.state.copy()
    chip.pulse_row(2, [3, 5], -2.5, 1e-6, 5.0)  # RESET with the other bit lines inhibited
    moved = chip.state != before
    expected = np.zeros((8, 8), bool)
    expected[2, [3, 5]] = True
    np.testing.assert_array_equal(moved, expected)
    assert np.all(chip.state[2, [3, 5]] > before[2, [3, 5]])


def test_gate_below_threshold_blocks_switching():
    chip = SimulatedArray(4, 4, variation=NO_VARIATION, seed=0)
    chip.pulse_row(0, None, 2.5, 1e-3, 0.5)  # gate under V_th
    assert np.all(chip.state == chip.model.state_off)


def test_read_noise_scales_with_conductance():
    var = VariationParams(read_noise_scale=1.0)
    chip = SimulatedArray(1, 2, variation=var, seed=1, initial_state=[[0.2 * NM, 1.7 * NM]])
    reads = np.array([chip.read_row(0, None, 0.2, 3.0) for _ in range(2000)])
    rel = reads.std(axis=0) / reads.mean(axis=0)
    expected = chip.model.read_noise_rel(chip.true_conductance()[0])
    np.testing.assert_allclose(rel, expected, rtol=0.12)
    assert rel[1] > rel[0]  # noisier at high resistance


def test_vmm_is_the_sum_of_cell_currents():
    chip = make(variation=NO_VARIATION)
    chip.apply_lines(1.2, 2.0, 0.0, 1e-8)
    v_in = np.linspace(0.05, 0.2, 16)
    out = chip.vmm(v_in, 3.0, noisy=False)
    # row by row: only row r's source line driven, the others grounded
    per_row = np.array([chip.cell_currents(3.0, 0.0, np.where(np.arange(16) == r, v, 0.0), noisy=False)[r]
                        for r, v in enumerate(v_in)])
    np.testing.assert_allclose(out, -per_row.sum(axis=0), rtol=1e-9)
    g = chip.true_conductance()
    # close to the ideal product; the transistor and the sinh I-V make it differ a little
    np.testing.assert_allclose(out, v_in @ g, rtol=0.15)


def test_time_accounting():
    chip = SimulatedArray(4, 4, seed=0, timing=ChipTiming(t_read=2e-6))
    chip.read_all(0.2, 3.0)
    chip.pulse_row(0, 1, 2.0, 5e-8, 1.2)
    assert chip.time_s == pytest.approx(4 * 2e-6 + 5e-8)
    assert chip.pulse_count == 1


@pytest.mark.parametrize("width", [1.0, 0.0, -1e-9, float("nan")])
def test_pulse_width_outside_range_raises(width):
    chip = SimulatedArray(4, 4, seed=0)
    with pytest.raises(ValueError, match="pulse width"):
        chip.pulse_row(0, 0, 2.0, width, 1.2)


def test_bad_construction_raises():
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        SimulatedArray(-1, 4)
    with pytest.raises(ValueError, match="unknown device model 'memristor9000'"):
        SimulatedArray(4, 4, model="memristor9000")
    with pytest.raises(ValueError, match="does not match"):
        SimulatedArray(4, 4, fault_codes=np.zeros((3, 3)))
    with pytest.raises(IndexError, match="row 9"):
        SimulatedArray(4, 4).pulse_row(9, 0, 2.0, 1e-8, 1.2)


def test_pattern_faults_on_array():
    codes = pattern_fault_codes("ring", 32, 32, 0.3, kind="on")
    chip = SimulatedArray(32, 32, fault_codes=codes, seed=0)
    g = chip.true_conductance()
    assert np.all(g[codes == STUCK_ON] == g.max())
