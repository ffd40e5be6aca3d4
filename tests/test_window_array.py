"""Window-level simulated array: write-and-verify band, read noise, stuck devices, aging, VMM statistics."""
import numpy as np
import pytest

from simulated_bench.aging import AgingParams, DriftParams, StuckParams
from simulated_bench.window_array import WindowArray, WindowParams


def test_write_lands_in_the_verify_band_and_stuck_cells_do_not_move():
    codes = np.zeros((8, 8), np.int8)
    codes[1, 2], codes[3, 4] = 1, 2
    arr = WindowArray(8, 8, fault_codes=codes, seed=0)
    tgt = np.full((8, 8), 60e-6)
    tgt[0, 0] = np.nan
    pulses, stuck_now = arr.write(tgt)
    g = arr.true_conductance()
    p = arr.params
    work = (codes == 0) & np.isfinite(tgt)
    assert np.all(np.abs(g[work] - 60e-6) <= p.verify_band)
    assert g[1, 2] == 0 and g[3, 4] == p.g_max and g[0, 0] == 0
    assert pulses >= work.sum() and not stuck_now.any()


def test_vmm_mean_and_noise_follow_the_cells():
    arr = WindowArray(16, 4, seed=1)
    arr.write(np.full((16, 4), 100e-6))
    v = np.full((20000, 16), 0.1)
    out = arr.vmm(v)
    g = arr.true_conductance()
    assert np.allclose(out.mean(axis=0), v[0] @ g, rtol=1e-3)
    sigma = arr._sigma()
    assert np.allclose(out.std(axis=0), np.sqrt((v[0] ** 2) @ (g * sigma) ** 2), rtol=0.05)
    with pytest.raises(ValueError):
        arr.vmm(np.full((1, 15), 0.1))
    with pytest.raises(ValueError):
        arr.vmm(np.full((1, 16), np.nan))


def test_aging_drifts_written_cells_and_sticks_new_ones():
    aging = AgingParams(stuck=StuckParams(per_pulse=0, per_hour=0.01), drift=DriftParams(nu_mean=-0.01, nu_sigma=0),
                        read_disturb=None)
    arr = WindowArray(32, 32, aging=aging, seed=2)
    arr.write(np.full((32, 32), 100e-6))
    g0 = arr.true_conductance()
    events = arr.advance(5)
    g1 = arr.true_conductance()
    work = arr.fault_codes == 0
    assert np.all(g1[work] < g0[work])
    assert len(events) == np.count_nonzero(~work) > 0
    with pytest.raises(ValueError):
        arr.advance(-1)
    with pytest.raises(ValueError):
        WindowParams(verify_band=0)
