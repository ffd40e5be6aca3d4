"""1T1R cell: seed 004 Table 1 and the transistor sizing rule."""
import numpy as np
import pytest

from simulated_bench import (NO_VARIATION, STUCK_ON, CellConfig, CellParams, NmosParams, SimulatedArray,
                             StanfordGapModel, solve_cell, sized_for)
from simulated_bench.cell import max_memristor_voltage
from simulated_bench.devices.stanford import NM

V_DD = 1.5  # V, low enough that the HRS device carries little current


@pytest.mark.parametrize("config,polarity,expected", [
    # seed 004 Table 1: largest voltage reaching the memristor
    ("MOD", "set", V_DD), ("MOD", "reset", V_DD - 0.7),
    ("MOS", "set", V_DD - 0.7), ("MOS", "reset", V_DD),
])
def test_table_1_voltage_on_memristor(config, polarity, expected):
    model = StanfordGapModel()
    # seed 004's larger transistor (W/L 330) so the device current drops almost nothing
    cell = CellParams(config=config, nmos=NmosParams(v_th=0.7, w_over_l=330))
    v = max_memristor_voltage(model, cell, V_DD, V_DD, polarity)
    # at most the ceiling, and within the small overdrive the device's few-uA current needs
    assert expected - 0.05 <= v <= expected + 1e-9


def test_seed_004_transistor_on_resistance():
    # W/L = 65 gives about 120 ohm at 3 V (seed 004 section 3.2)
    assert NmosParams().on_resistance(3.0) == pytest.approx(120, rel=0.05)


def test_gate_voltage_acts_as_compliance():
    model = StanfordGapModel()
    cell = CellParams(nmos=NmosParams(w_over_l=65))
    gates = np.array([1.0, 1.2, 1.5, 2.0])
    i, _ = solve_cell(model, cell, 0.2 * NM, 2.0, 0.0, gates)
    i_sat = np.array([cell.nmos.saturation_current(g) for g in gates])
    # at LRS and 2 V the device alone would draw amperes; the gate caps it near I_sat
    assert np.all(i <= i_sat * (1 + cell.nmos.lambda_clm * 2.0) + 1e-12)
    assert np.all(np.diff(i) > 0)


def test_sizing_rule_keeps_the_window():
    """On-resistance ~10 % of R_LRS keeps ~90 % of the read window (seed 004 Fig. 4C)."""
    model = StanfordGapModel()
    r_lrs = 1 / float(model.conductance(0.2 * NM))
    v_read, v_gate = 0.1, 3.0
    bare = float(model.current(0.2 * NM, v_read) / model.current(1.7 * NM, v_read))
    retention = {}
    for ratio in (0.03, 0.1, 0.3, 1.0):
        cell = CellParams(nmos=sized_for(r_lrs, v_gate, ratio))
        i_on, _ = solve_cell(model, cell, 0.2 * NM, v_read, 0.0, v_gate)
        i_off, _ = solve_cell(model, cell, 1.7 * NM, v_read, 0.0, v_gate)
        retention[ratio] = float(i_on / i_off) / bare
    assert retention[0.1] == pytest.approx(1 / 1.1, abs=0.02)
    assert retention[0.1] >= 0.875  # seed 004: 87.5 % kept with 120 ohm against 1 kohm
    assert retention[1.0] < 0.6  # an undersized transistor eats the window
    assert retention[0.03] > retention[0.1] > retention[0.3] > retention[1.0]


@pytest.mark.parametrize("config", list(CellConfig))
def test_series_solution_satisfies_kirchhoff(config):
    from simulated_bench.transistor import drain_current
    model = StanfordGapModel()
    cell = CellParams(config=config)
    rng = np.random.default_rng(3)
    s = rng.uniform(0.2, 1.7, 200) * NM
    v_bl = rng.uniform(-2.5, 2.5, 200)
    v_sl = rng.uniform(-2.5, 2.5, 200)
    v_wl = rng.uniform(0.0, 5.0, 200)
    i, v_m = solve_cell(model, cell, s, v_bl, v_sl, v_wl)
    if config is CellConfig.MOD:
        x = v_bl - v_m
        i_n, _, _ = drain_current(cell.nmos, v_wl, x, v_sl)
    else:
        x = v_sl + v_m
        i_n, _, _ = drain_current(cell.nmos, v_wl, v_bl, x)
    np.testing.assert_allclose(i, i_n, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(i, model.current(s, v_m), rtol=1e-12)


def test_a_stuck_on_cell_reads_through_its_access_transistor_in_series():
    """Issue 14: a stuck-ON Stanford cell (gap 0.2 nm, ~1.8 mS, seed 000 II.B) on the simulated chip reads
    what its filament and its access transistor in series pass, and no more.

    * gate fully on (3-5 V, every read and VMM): the transistor is a triode resistor R_on = 1/(beta (V_ov -
      V_DS/2)) in series with the device, 56 ohm against 556 ohm, so the read loses ~9 % (1.80 -> 1.64 mS);
    * gate near threshold: the channel saturates and the read is clipped at I_sat;
    * the same transistor lets a working cell's SET with the gate fully on reach that level, so a device
      stuck in its LRS reads like a fully SET cell of this chip. Seed 003's G_max = 150 uS for stuck-ON is its own chip's SET-compliance ceiling; a read path that
      capped this chip's stuck-ON read at 150 uS would need R_on ~ 6 kohm, which reads a working 150 uS cell
      at about half its value."""
    model = StanfordGapModel()
    chip = SimulatedArray(1, 2, model=model, fault_codes=[[STUCK_ON, 0]], variation=NO_VARIATION, seed=0)
    nmos = chip.cell.nmos
    g_on = float(model.conductance(model.state_on))
    for v_gate in (2.0, 3.0, 5.0):
        for v_read in (0.01, 0.05):  # the read and VMM regime: the device nearly ohmic, the channel in triode
            i = chip.read_row(0, [0], v_read, v_gate, noisy=False)[0]
            r_mem = v_read / float(model.current(model.state_on, v_read))
            assert i == pytest.approx(v_read / (r_mem + nmos.on_resistance(v_gate)), rel=0.01)
            assert 0.8 * g_on < i / v_read < 0.97 * g_on
    # a gate 40 mV above threshold: saturation clips the stuck-ON cell's current
    v_gate = nmos.v_th + 0.04
    i = chip.read_row(0, [0], 0.2, v_gate, noisy=False)[0]
    assert i <= nmos.saturation_current(v_gate) * (1 + nmos.lambda_clm * 0.2)
    assert i < 0.1 * 0.2 * g_on
    # the transistor does not cap the LRS: a working neighbour SET with the gate fully on reads like the stuck
    # cell; with the scan's SET gate (2 V) its compliance stops the filament at ~0.7 mS, still ~5x g_max
    chip.pulse_row(0, [1], 2.0, 1e-6, 2.0)
    assert 3 * 150e-6 < chip.read_row(0, [1], 0.05, 3.0, noisy=False)[0] / 0.05 < 0.5 * g_on
    chip.pulse_row(0, [1], 2.0, 1e-6, 5.0)
    stuck, working = chip.read_row(0, [0, 1], 0.05, 3.0, noisy=False)
    assert working == pytest.approx(stuck, rel=0.01)
    # the transistor that would cap the stuck-ON read at 150 uS compresses the window it serves
    r_cap = 1 / 150e-6 - 1 / g_on
    capped = CellParams(nmos=sized_for(1 / g_on, 3.0, r_cap * g_on))
    i_stuck, _ = solve_cell(model, capped, model.state_on, 0.05, 0.0, 3.0)
    i_150, _ = solve_cell(model, capped, model.state_for_conductance(150e-6), 0.05, 0.0, 3.0)
    assert float(i_stuck) / 0.05 == pytest.approx(150e-6, rel=0.02)
    assert float(i_150) / 0.05 < 0.6 * 150e-6
