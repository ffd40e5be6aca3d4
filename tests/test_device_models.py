"""Compact-model physics: published values, inverses, and the direction of switching."""
import numpy as np
import pytest

from simulated_bench.devices.cute_multilevel import CuTeMultilevelModel, CuTeParams
from simulated_bench.devices.stanford import NM, StanfordGapModel, StanfordGapParams


def test_stanford_conductance_window_matches_seed_000():
    m = StanfordGapModel()
    g_on, g_off = m.conductance([0.2 * NM, 1.7 * NM])
    # seed 000 II.A: 0.2 nm ~1.8 mS, 1.7 nm ~4.4 uS (exact small-signal values 1.797 mS, 4.455 uS)
    assert g_on == pytest.approx(1.797e-3, rel=1e-3)
    assert g_off == pytest.approx(4.455e-6, rel=1e-3)


@pytest.mark.parametrize("model", [StanfordGapModel(), CuTeMultilevelModel()])
def test_current_inverse_and_derivative(model):
    lo, hi = sorted((model.state_on, model.state_off))
    s = np.linspace(lo, hi, 7)[:, None]
    v = np.linspace(-1.5, 1.5, 9)[None, :]
    i = model.current(s, v)
    np.testing.assert_allclose(model.voltage_for_current(s, i), np.broadcast_to(v, i.shape), atol=1e-12)
    h = 1e-6
    num = (model.current(s, v + h) - model.current(s, v - h)) / (2 * h)
    np.testing.assert_allclose(model.d_current_dv(s, v), num, rtol=1e-6)
    np.testing.assert_allclose(model.state_for_conductance(model.conductance(s)), np.broadcast_to(s, (7, 1)), atol=1e-15)


def test_stanford_switching_direction_and_field_threshold():
    m = StanfordGapModel()
    g = np.array([0.5, 1.0, 1.5]) * NM
    assert np.all(m.state_rate(g, 1.5) < 0)  # SET closes the gap
    assert np.all(m.state_rate(g, -1.5) > 0)  # RESET opens it
    # below F_min * tox / gamma no motion at all (about 1.05 V at the smallest gap)
    assert np.all(m.state_rate(g, 0.9) == 0)
    p = StanfordGapParams()
    v_edge = p.F_min * p.tox / m.gamma(1.0 * NM)
    assert m.state_rate(1.0 * NM, 0.999 * v_edge) == 0
    assert m.state_rate(1.0 * NM, 1.001 * v_edge) < 0


def test_cute_window_and_reset_stop_levels():
    m = CuTeMultilevelModel()
    assert m.conductance(0.0) == pytest.approx(5.7e-6)
    assert m.conductance(1.0) == pytest.approx(200e-6)
    # the read voltage (50 mV) moves nothing, whatever the state
    assert np.all(m.state_rate(np.linspace(0, 1, 11), 0.05) == 0)
    assert np.all(m.state_rate(np.linspace(0, 1, 11), -0.05) == 0)
    # a deeper reset stop voltage gives a lower level (seed 004 Fig. 2A)
    stops = m.stop_level(-np.linspace(0.5, 2.0, 23))
    assert np.all(np.diff(stops) < 0) and stops[0] == 1.0 and stops[-1] == 0.0
    # noise rises toward low conductance, to ~2 % (seed 004 Fig. 2D)
    assert m.read_noise_rel(5.7e-6) == pytest.approx(0.02)
    assert m.read_noise_rel(200e-6) < m.read_noise_rel(20e-6) < m.read_noise_rel(5.7e-6)


@pytest.mark.parametrize("kwargs", [dict(g_min=2e-9, g_max=1e-9), dict(I0=-1.0)])
def test_bad_stanford_params_raise(kwargs):
    with pytest.raises(ValueError):
        StanfordGapParams(**kwargs)


def test_bad_cute_params_raise():
    with pytest.raises(ValueError, match="G_min"):
        CuTeParams(G_min=1e-3)
