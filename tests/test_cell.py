"""1T1R cell: seed 004 Table 1 and the transistor sizing rule."""
import numpy as np
import pytest

from simulated_bench import CellConfig, CellParams, NmosParams, StanfordGapModel, solve_cell, sized_for
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
