"""The quadrature pulse engine against a fine reference integration of the stiff ODE.

The reference integrates ds/dt = f(s) with the 1T1R series solve inside, using
scipy's implicit Radau method at tight tolerances; the engine must agree within 1 %
of the state change for widths from 1 ns to 1 ms (issue 2).
"""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from simulated_bench import CuTeMultilevelModel, StanfordGapModel, default_cell, solve_cell
from simulated_bench.devices.stanford import NM
from simulated_bench.pulse import PulseEngine

WIDTHS = (1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)


def reference_states(model, cell, s0, v_bl, v_sl, v_wl, widths):
    lo, hi = sorted((model.state_on, model.state_off))

    def rhs(_t, s):
        s_c = np.clip(s, lo, hi)
        _, v_m = solve_cell(model, cell, s_c, v_bl, v_sl, v_wl)
        r = model.state_rate(s_c, v_m)
        # the state cannot leave the model's bounds
        r = np.where((s_c <= lo) & (r < 0) | (s_c >= hi) & (r > 0), 0.0, r)
        return r

    scale = hi - lo
    # one integration, read at every width
    sol = solve_ivp(rhs, (0.0, max(widths)), [s0], method="Radau", rtol=1e-9, atol=1e-9 * scale,
                    first_step=1e-13, t_eval=sorted(widths))
    return np.clip(sol.y[0], lo, hi)


CASES_STANFORD = [
    # (v_bl, v_sl, v_wl, s0): SET at three gate voltages (compliance), RESET at two
    (2.0, 0.0, 1.0, 1.7 * NM),
    (2.0, 0.0, 1.2, 1.5 * NM),
    (2.5, 0.0, 1.5, 1.7 * NM),
    (0.0, 2.0, 5.0, 0.2 * NM),
    (0.0, 2.5, 4.0, 0.4 * NM),
]


@pytest.mark.parametrize("case", CASES_STANFORD)
def test_stanford_pulse_matches_reference(case):
    model = StanfordGapModel()
    cell = default_cell(model)
    engine = PulseEngine(model, cell)
    v_bl, v_sl, v_wl, s0 = case
    refs = reference_states(model, cell, s0, v_bl, v_sl, v_wl, WIDTHS)
    for width, ref in zip(WIDTHS, refs):
        got = float(engine.apply(s0, v_bl, v_sl, v_wl, width))
        change = abs(ref - s0)
        # 1 % of the change, with a floor of 1e-4 nm for changes that are themselves tiny
        assert abs(got - ref) <= max(0.01 * change, 1e-4 * NM), (width, got / NM, ref / NM, s0 / NM)


@pytest.mark.parametrize("v_pulse,s0", [(1.2, 0.1), (1.6, 0.3), (-0.9, 0.9), (-1.6, 0.8)])
def test_cute_pulse_matches_reference(v_pulse, s0):
    model = CuTeMultilevelModel()
    cell = default_cell(model)
    engine = PulseEngine(model, cell)
    v_bl, v_sl = (v_pulse, 0.0) if v_pulse > 0 else (0.0, -v_pulse)
    widths = (1e-6, 1e-5, 1e-4, 1e-3)
    refs = reference_states(model, cell, s0, v_bl, v_sl, 3.0, widths)
    for width, ref in zip(widths, refs):
        got = float(engine.apply(s0, v_bl, v_sl, 3.0, width))
        assert abs(got - ref) <= max(0.01 * abs(ref - s0), 1e-6), (width, got, ref)


def test_many_cells_at_once_equal_one_at_a_time():
    model = StanfordGapModel()
    engine = PulseEngine(model, default_cell(model))
    s0 = np.linspace(0.6, 1.7, 50) * NM
    widths = np.geomspace(1e-9, 1e-5, 50)
    together = engine.apply(s0, 2.0, 0.0, 1.2, widths)
    alone = np.array([float(engine.apply(s, 2.0, 0.0, 1.2, w)) for s, w in zip(s0, widths)])
    np.testing.assert_array_equal(together, alone)


def test_longer_pulse_never_moves_less():
    model = StanfordGapModel()
    engine = PulseEngine(model, default_cell(model))
    w = np.geomspace(1e-9, 1e-3, 40)
    s = engine.apply(np.full(40, 1.7 * NM), 2.0, 0.0, 1.2, w)
    assert np.all(np.diff(s) <= 1e-18)  # SET: the gap only closes with width
