"""Chip aging on the simulated bench: new stuck devices with use and time, log-time drift, read disturb."""
import numpy as np
import pytest

import hil
from hil.benchfile import BenchFileError
from simulated_bench import NO_VARIATION, SimulatedArray
from simulated_bench.aging import AgingParams, DriftParams, ReadDisturbParams, StuckParams

NO_DRIFT = dict(drift=None, read_disturb=None)


def programmed(aging, shape=(16, 16), seed=0):
    """An aging array with every cell written once by a SET pulse (mid-window)."""
    arr = SimulatedArray(*shape, variation=NO_VARIATION, aging=aging, seed=seed)
    for r in range(shape[0]):
        arr.pulse_row(r, None, 1.6, 1e-6, 1.5)
    return arr


def test_no_aging_leaves_the_chip_as_before():
    a = SimulatedArray(8, 8, seed=3)
    b = SimulatedArray(8, 8, seed=3, aging=None)
    for arr in (a, b):
        arr.pulse_row(2, None, 1.5, 1e-6, 2.0)
    assert np.array_equal(a.state, b.state)
    assert np.array_equal(a.read_all(0.05, 3.0), b.read_all(0.05, 3.0))


def test_drift_follows_log_time_and_is_fastest_right_after_the_write():
    d = DriftParams(nu_mean=-0.02, nu_sigma=0.0, t0=1e-3)
    arr = programmed(AgingParams(stuck=None, drift=d, read_disturb=None))
    g0 = arr.aging.g_written.copy()
    arr.advance(1 / 3600)  # 1 s after the last write
    g1 = arr.true_conductance()
    arr.advance(1.0)  # one more hour
    g2 = arr.true_conductance()
    # G = G_w (1 + nu log10(1 + dt / t0)), dt measured from each cell's own write
    dt = arr.time_s - arr.aging.t_written
    assert np.allclose(g2, g0 * (1 + d.nu_mean * np.log10(1 + dt / d.t0)), rtol=1e-9)
    first_second = np.median(g0 - g1)
    next_hour_per_s = np.median(g1 - g2) / 3600
    assert first_second > 0 and next_hour_per_s < first_second / 100


def test_drift_spread_is_device_to_device_and_rewriting_restarts_the_clock():
    arr = programmed(AgingParams(stuck=None, drift=DriftParams(nu_mean=0.0, nu_sigma=0.01), read_disturb=None))
    g0 = arr.aging.g_written.copy()
    arr.advance(24)
    rel = arr.true_conductance() / g0 - 1
    assert 0.02 < np.std(rel) < 0.1  # 1 % per decade over ~7.9 decades
    arr.pulse_row(0, None, 1.6, 1e-6, 1.5)
    assert np.all(arr.aging.t_written[0] == arr.time_s)


def test_stuck_devices_per_hour_reproducible_and_on_off_split():
    aging = AgingParams(stuck=StuckParams(per_pulse=0.0, per_hour=0.01, on_fraction=0.3), **NO_DRIFT)
    arrays = [SimulatedArray(64, 64, variation=NO_VARIATION, aging=aging, seed=5) for _ in range(2)]
    events = [arr.advance(10) for arr in arrays]
    n = len(events[0])
    expect = 64 * 64 * (1 - np.exp(-0.1))
    assert abs(n - expect) < 5 * np.sqrt(expect)
    assert [(e.row, e.col, e.code) for e in events[0]] == [(e.row, e.col, e.code) for e in events[1]]
    codes = arrays[0].true_fault_codes
    assert np.count_nonzero(codes) == n
    on = np.count_nonzero(codes == 2) / n
    assert 0.2 < on < 0.4
    # stuck cells sit at the model's bounds
    model = arrays[0].model
    assert np.all(arrays[0].state[codes == 2] == model.state_on)
    assert all(e.cause == "hours" for e in events[0])


def test_stuck_devices_from_pulses_hit_only_the_pulsed_row():
    aging = AgingParams(stuck=StuckParams(per_pulse=0.02, per_hour=0.0), **NO_DRIFT)
    arr = SimulatedArray(16, 16, variation=NO_VARIATION, aging=aging, seed=1)
    for _ in range(50):
        arr.pulse_row(3, None, 1.2, 1e-7, 2.0)
        arr.pulse_row(3, None, -1.8, 1e-7, 4.0)
    arr.advance(0)
    codes = arr.true_fault_codes
    assert np.count_nonzero(codes[3]) > 8  # 1 - exp(-2) of 16 cells ~ 14
    assert np.count_nonzero(np.delete(codes, 3, axis=0)) == 0
    assert {e.cause for e in arr.aging.events} == {"pulses"}


def test_clustered_faults_have_neighbours():
    stuck = StuckParams(per_pulse=0.0, per_hour=1e-3, cluster_fraction=1.0, cluster_radius=1.5,
                        cluster_neighbour_prob=1.0)
    arr = SimulatedArray(64, 64, variation=NO_VARIATION, aging=AgingParams(stuck=stuck, **NO_DRIFT), seed=2)
    ev = arr.advance(1)
    seeds = [e for e in ev if e.cause != "cluster"]
    assert seeds and len(ev) > 3 * len(seeds)
    codes = arr.true_fault_codes
    for e in seeds:
        block = codes[max(e.row - 1, 0):e.row + 2, max(e.col - 1, 0):e.col + 2]
        assert np.all(block != 0)


def test_read_disturb_is_small_and_counts_reads():
    arr = programmed(AgingParams(stuck=None, drift=None, read_disturb=ReadDisturbParams(per_read=1e-4)), (4, 4))
    g0 = arr.aging.g_written.copy()
    for _ in range(10):
        arr.read_row(1, None, 0.05, 3.0)
    ratio = arr.aging.g_written / g0
    assert np.allclose(ratio[1], (1 + 1e-4) ** 10) and np.allclose(np.delete(ratio, 1, axis=0), 1.0)


@pytest.mark.parametrize("bad", [
    {"stuck": {"per_hour": 2.0}}, {"stuck": {"per_hur": 1e-3}}, {"drift": {"t0": -1}}, {"wear": {}},
    {"drift": {"nu_mean": "fast"}},
])
def test_bench_file_aging_rejects_bad_values(bad):
    with pytest.raises(BenchFileError, match="chip.aging"):
        hil.open_bench(chip={"aging": bad, "arrays": [{"name": "A", "rows": 4, "cols": 4}]})


def test_bench_file_aging_and_fast_forward():
    bench = hil.open_bench(chip={"arrays": [{"name": "A", "rows": 8, "cols": 8}],
                                 "aging": {"stuck": {"per_hour": 0.05, "on_fraction": 0.0}, "drift": None}})
    try:
        arr = bench.sim.arrays["A"]
        assert arr.aging is not None and arr.aging.params.drift is None
        events = bench.sim.advance(24)
        assert len(events["A"]) > 10 and np.all(arr.true_fault_codes[arr.true_fault_codes != 0] == 1)
        assert arr.time_s >= 24 * 3600
    finally:
        bench.close()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(per_hour=st.floats(0, 0.05), on=st.floats(0, 1), cluster=st.floats(0, 1), hours=st.lists(
    st.floats(0, 48), min_size=1, max_size=4), seed=st.integers(0, 2 ** 16))
def test_stuck_devices_only_ever_accumulate(per_hour, on, cluster, hours, seed):
    from simulated_bench.window_array import WindowArray

    aging = AgingParams(stuck=StuckParams(per_pulse=0, per_hour=per_hour, on_fraction=on, cluster_fraction=cluster),
                        drift=None, read_disturb=None)
    arr = WindowArray(12, 9, aging=aging, seed=seed)
    prev = arr.true_fault_codes
    n_events = 0
    for h in hours:
        events = arr.advance(h)
        n_events += len(events)
        codes = arr.true_fault_codes
        assert np.all(codes[prev != 0] == prev[prev != 0])  # a stuck device never recovers
        assert np.isin(codes, (0, 1, 2)).all()
        prev = codes
    assert np.count_nonzero(prev) == n_events == len(arr.aging.events)
    g = arr.true_conductance()
    assert np.all(g[prev == 1] == 0) and np.all(g[prev == 2] == arr.params.g_max)
