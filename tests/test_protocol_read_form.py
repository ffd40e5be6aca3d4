"""Read-all (compliance-safe, averaged, saved, resumable) and forming (ramp, compliance, never-formed cells)."""
import numpy as np

import hil
from hil.runstore import read_run
from protocols.forming import FormParams, form
from protocols.read import ReadParams, read_all, read_cells

QUIET = {"variation": {"d2d_rate_sigma": 0.0, "d2d_bound_sigma": 0.0, "c2c_rate_sigma": 0.0, "read_noise_scale": 0.0}}


def chip(n, **extra):
    return {"arrays": [{"name": "A", "rows": n, "cols": n}], **extra}


def test_read_all_matches_the_chip_and_is_saved_with_a_heatmap(tmp_path):
    with hil.open_bench(chip=chip(8, seed=1, faults={"kind": "random", "rate_off": 0.1, "rate_on": 0.2, "seed": 3},
                                  **QUIET)) as bench:
        arr = bench.sim.arrays["A"]
        res = read_all(bench, ReadParams(v_read=0.2, n_avg=3), out=str(tmp_path / "r.h5"),
                       heatmap=str(tmp_path / "r.png"), rows=[1, 2, 5])
        truth = arr.read_all(0.2, 3.0, noisy=False)[[1, 2, 5]] / 0.2
    np.testing.assert_allclose(res.g, truth, rtol=1e-6)
    run = read_run(tmp_path / "r.h5")
    np.testing.assert_allclose(run["cells"]["g"], res.g)
    assert run["parameters"]["n_avg"] == 3 and run["chip_id"] == "SIM-STANFORD-64"
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_a_row_beyond_the_read_compliance_is_read_in_groups():
    n = 16
    # a read source with a 1 mA compliance, as a 2450 protecting small devices would have
    with hil.open_bench(chip=chip(n, seed=2, initial_state="on", **QUIET), limits={"i_compliance": 1e-3}) as bench:
        arr = bench.sim.arrays["A"]
        truth = arr.read_all(0.2, 3.0, noisy=False)[0] / 0.2
        assert truth.sum() * 0.2 > 3 * bench.limits.i_compliance  # one read of the row would be limited
        whole = bench.read_row(0, None, 0.2, 3.0)
        assert whole.sum() * 0.2 <= bench.limits.i_compliance * 1.001  # ... and reads low
        g, n_reads = read_cells(bench, 0, np.arange(n), 0.2, 3.0)
    np.testing.assert_allclose(g, truth, rtol=1e-6)
    assert n_reads > 3


def _count_trip_queries(bench):
    asked = []
    original = bench.read_tripped

    def read_tripped():
        asked.append(original())
        return asked[-1]
    bench.read_tripped = read_tripped
    return asked


def test_trip_status_is_asked_only_near_the_compliance_and_a_tripped_group_is_split():
    n = 16
    with hil.open_bench(chip=chip(n, seed=2, initial_state="on", **QUIET), limits={"i_compliance": 1e-3}) as bench:
        arr = bench.sim.arrays["A"]
        arr.state[1] = arr.state_hi[1]  # row 1 fully OFF (widest gap): far below the compliance
        truth = arr.read_all(0.2, 3.0, noisy=False)[:2] / 0.2
        asked = _count_trip_queries(bench)
        g_low, n_low = read_cells(bench, 1, np.arange(n), 0.2, 3.0)
        assert asked == [] and n_low == 1  # one parallel read, no status query: it cannot have tripped
        g_on, n_on = read_cells(bench, 0, np.arange(n), 0.2, 3.0)  # no hint: the whole row trips first
        assert asked[0] is True and n_on > 1  # the instrument said so, and the group was split
        assert len(asked) < n_on  # groups well under the limit were not asked about
        # with the last reads as hints the groups are formed under the limit: nothing trips
        asked.clear()
        g_again, n_again = read_cells(bench, 0, np.arange(n), 0.2, 3.0, g_hint=g_on)
        assert True not in asked and n_again < n_on
    np.testing.assert_allclose(g_low, truth[1], rtol=1e-6)
    np.testing.assert_allclose(g_on, truth[0], rtol=1e-6)
    np.testing.assert_allclose(g_again, truth[0], rtol=1e-6)


def test_averaging_reduces_read_noise():
    with hil.open_bench(chip=chip(4, seed=3)) as bench:
        one = np.array([bench.read_row(0, None, 0.05, 3.0, n_avg=1) for _ in range(40)])
        avg = np.array([bench.read_row(0, None, 0.05, 3.0, n_avg=16) for _ in range(40)])
    assert avg.std(axis=0).mean() < 0.5 * one.std(axis=0).mean()


def test_forming_reports_never_formed_cells(tmp_path):
    faults = {"kind": "random", "rate_off": 0.1, "rate_on": 0.05, "seed": 2}
    with hil.open_bench(chip=chip(10, seed=4, faults=faults)) as bench:
        codes = bench.sim.arrays["A"].true_fault_codes
        p = FormParams(v_start=1.0, v_step=0.1, v_max=2.5, gate=1.2, r_target=20e3)
        res = form(bench, p, out=str(tmp_path / "form.h5"))
    assert sorted(res.never_formed) == sorted(map(tuple, np.argwhere(codes == 1).tolist()))
    assert np.all(res.r_final[codes == 0] <= 20e3)
    assert np.all(res.v_form[codes == 2] == 0.0)  # stuck-ON cells read formed before any pulse
    formed_v = res.v_form[codes == 0]
    assert np.all((formed_v >= 1.0) & (formed_v <= 2.5))
    # the gate caps the formed level: a lower gate (compliance) gives a higher resistance
    with hil.open_bench(chip=chip(4, seed=4)) as bench:
        low = form(bench, FormParams(gate=1.0, r_target=60e3), rows=[0])
        high = form(bench, FormParams(gate=1.5, r_target=60e3), rows=[1])
    assert np.median(low.r_final) > 2 * np.median(high.r_final)
    run = read_run(tmp_path / "form.h5")
    assert run["status"] == "complete" and np.isnan(run["cells"]["v_form"][codes == 1]).all()
