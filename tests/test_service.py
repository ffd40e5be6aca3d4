"""Service loop pieces: checksum mapping, syndromes and CUSUM, drift vs fault, localisation, sparse repair."""
from dataclasses import replace

import numpy as np
import pytest

from hil.factorization import random_fault_codes
from hil.faultmap_versions import FaultMapVersions
from hil.service import (CheckParams, RefitParams, ServiceParams, ServiceSession, WindowEngine,
                         map_factorized, plan_full_remap, plan_repair,
                         stage_checksum_columns)
from hil.service.refit import allocate, cos_scale, finish_line, fit_write_sigma, line_path, residual_sq
from protocols.matrix import dft_parts
from simulated_bench.window_array import WindowArray

N = 16
G_MAX = 150e-6


@pytest.fixture(scope="module")
def mapped():
    m = dft_parts(N)[0]
    ca = random_fault_codes(N, N + 2, 0.05, rng=1)
    cb = random_fault_codes(N, N + 2, 0.05, rng=2)
    return m, ca, cb, map_factorized(m, N, ca, cb, rng=0)


def session_on(mapped, seed=3, kind="groups", **kw):
    m, ca, cb, mm0 = mapped
    mm = map_factorized(m, N, ca, cb, rng=0)
    arrays = {"A": WindowArray(N, N + 2, fault_codes=ca, seed=seed), "B": WindowArray(N, N + 2, fault_codes=cb,
                                                                                      seed=seed + 1)}
    s = ServiceSession(mm, WindowEngine(arrays), ServiceParams(checks=CheckParams(kind=kind, group_size=4), **kw))
    s.program()
    s.calibrate(0)
    return s, arrays


def test_checksum_columns_are_half_sums_that_keep_the_row_sign_and_fit_the_window():
    g_signed = np.array([[10e-6, 20e-6, 30e-6, 40e-6, 50e-6], [-5e-6, -5e-6, -60e-6, -1e-6, -2e-6]])
    cols, w, k = stage_checksum_columns(g_signed, G_MAX)
    assert cols.shape == (2, 2) and w.shape == (5, 2)
    assert np.array_equal(w, [[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]])  # two half sums: gain ~ half a full one
    assert np.allclose(cols * k, np.abs(g_signed) @ w)
    assert np.isclose(cols.max(), G_MAX) and np.all(cols >= 0)


def test_mapping_keeps_stuck_cells_and_row_signs(mapped):
    m, ca, cb, mm = mapped
    a, b = mm.stages
    assert a.shape == (N, N + 2) and b.shape == (N, N + 2) and mm.check_devices == 4 * N
    for st, codes in ((a, ca), (b, cb)):
        assert np.all(st.g_ref[codes == 1] == 0) and np.all(st.g_ref[codes == 2] == G_MAX)
        assert np.all((st.g_ref >= 0) & (st.g_ref <= G_MAX + 1e-18))
    # A's checksum columns: |MA| @ weights / gain, the signs shared along each row
    assert np.allclose((a.g_ref[:, :N] @ a.checksum_weights / a.checksum_gain)[ca[:, N:] == 0],
                       a.g_ref[:, N:][ca[:, N:] == 0])
    assert mm.one_minus_cos() < 1e-6


def test_fault_free_service_raises_no_alarm(mapped):
    s, _ = session_on(mapped)
    rng = np.random.default_rng(1)
    _, alarms = s.serve(rng.uniform(-1, 1, (3000, N)), handle_alarms=False)
    assert alarms == []


@pytest.mark.parametrize("stage,rank,code", [(0, 0, 1), (1, 3, 1), (1, -1, 2), (0, -5, 2)])
def test_new_stuck_device_is_detected_localised_and_repaired(mapped, stage, rank, code):
    s, arrays = session_on(mapped)
    arr = arrays["AB"[stage]]
    st = s.mm.stages[stage]
    # a working data cell far from where it sticks: high for stuck-OFF, low for stuck-ON
    work = np.argwhere(st.codes[:, :st.n_data] == 0)
    order = np.argsort(-st.g_ref[work[:, 0], work[:, 1]], kind="stable")
    cell = tuple(int(i) for i in work[order[rank]])
    g_before = arr.g[cell]
    arr.stick(*cell, code)
    assert abs(arr.g[cell] - g_before) > 0.2 * G_MAX
    rng = np.random.default_rng(7)
    for n in range(1, 20):
        _, alarms = s.serve(rng.uniform(-1, 1, (1, N)), handle_alarms=False)
        if alarms:
            break
    assert alarms and alarms[0].stage == stage and n < 20
    loc = s.localise(alarms[0])
    assert (loc.row, loc.col) == cell
    s.handle_alarm(alarms[0])
    events = [e["event"] for e in s.log]
    assert events[-4:] == ["localise", "scan", "faultmap_version", "repair"]
    assert s.mm.stages[stage].codes[cell] == code
    assert s.versions.latest.codes["AB"[stage]][cell] == code
    assert s.count.devices_reprogrammed < 0.1 * s.mm.devices


def test_analog_checksums_alone_detect_a_stuck_device_and_stay_quiet_without_one(mapped):
    s, arrays = session_on(mapped, seed=5, kind="checksum")
    assert not any(c.follows_gain.any() for c in s.checks)  # no digital reference on any stage
    rng = np.random.default_rng(2)
    _, alarms = s.serve(rng.uniform(-1, 1, (3000, N)), handle_alarms=False)
    assert alarms == []
    for stage, name in ((0, "A"), (1, "B")):
        st = s.mm.stages[stage]
        cell = np.unravel_index(np.argmax(np.where(st.codes == 0, st.g_ref, 0)[:, :st.n_data]),
                                (st.shape[0], st.n_data))
        g_old = arrays[name].g[cell]
        arrays[name].stick(*cell, 1)
        s.detector.reset()
        hit = None
        for n in range(1, 101):
            _, al = s.serve(rng.uniform(-1, 1, (1, N)), handle_alarms=False)
            if al:
                hit = n
                break
        assert hit is not None and al[0].stage == stage
        loc = s.localise(al[0])
        assert (loc.row, loc.col) == tuple(cell)
        arrays[name].fault_codes[cell] = 0  # healed: the next stage's injection starts from a clean chip
        arrays[name].g[cell] = g_old


def test_common_drift_is_compensated_without_writes(mapped):
    s, arrays = session_on(mapped)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (400, N))
    y0, _ = s.serve(x, handle_alarms=False)
    exact = x @ s.mm.target
    err0 = np.linalg.norm(y0 - exact)
    for arr in arrays.values():
        arr.g *= 1.02
    writes = s.count.pulses
    y_drift, alarms = s.serve(x, handle_alarms=False)
    y1, alarms2 = s.serve(x, handle_alarms=False)
    assert s.count.drift_events >= 1 and s.count.pulses == writes
    assert alarms == [] and alarms2 == []
    # both stages drifted: uncompensated outputs would be 1.02^2 = 4 % high
    assert np.allclose(s.detector.gains(), 0.02, atol=0.003)
    bias = np.sum(y1 * y0) / np.sum(y0 * y0) - 1.0
    assert abs(bias) < 0.005
    assert np.linalg.norm(y1 - exact) <= 1.1 * err0


def test_line_path_and_finish_move_few_devices_beyond_the_band():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (8, 30))  # a line with more devices than equations: many exact repairs exist
    x_true = rng.uniform(0.2, 0.8, 30)
    y = a @ x_true
    x0 = x_true.copy()
    x0[3] = 0.0  # stuck
    free = np.ones(30, bool)
    free[3] = False
    p = RefitParams(band=0.01, g_max=1.0, write_sigma=0.0, floor=0.0, min_gain=0.0)
    r_pre = 1e-3
    pa = line_path(0, 0, a, y, x0, free, r_pre, p)
    assert 3 not in pa.order and np.all(np.diff(pa.cost) < 0)  # every step the path takes cuts the residual
    size = allocate([pa], p, float(pa.cost[0]), r_pre ** 2)[0]
    assert pa.cost[size] <= r_pre ** 2
    x, moved = finish_line(pa, size, p)
    assert x[3] == 0.0 and 3 not in moved
    assert np.linalg.norm(a @ x - y) <= 1.2 * r_pre
    assert 1 <= len(moved) <= 8  # a basic solution moves at most as many devices as there are equations
    untouched = np.setdiff1d(np.arange(30), moved)
    assert np.all(x[untouched] == x0[untouched])
    assert np.all(np.abs(x[moved] - x0[moved]) > p.band)
    assert np.all((x >= 0) & (x <= 1))


def test_incremental_repair_writes_far_fewer_devices_than_a_full_remap(mapped):
    m, ca, cb, mm = mapped
    new = [ca.copy(), cb.copy()]
    rng = np.random.default_rng(4)
    for st, codes in zip(mm.stages, new):
        work = np.argwhere((codes[:, :N] == 0) & (st.g_ref[:, :N] > 0.3 * G_MAX))
        r, c = work[rng.integers(len(work))]
        codes[r, c] = 1
    plan = plan_repair(mm, new)
    _, full = plan_full_remap(mm, new, N, 1)
    assert 0 < plan.writes < full.writes / 4
    stuck = [np.where(c == 1, 0.0, st.g_ref) for c, st in zip(new, mm.stages)]
    after = [np.where(np.isfinite(t), t, g) for t, g in zip(plan.targets, stuck)]
    # an exact pre-fault mapping cannot be matched again by a few moves: the writes bought cut most of the error
    assert residual_sq(mm, after) < 0.2 * residual_sq(mm, stuck)


def test_one_percent_new_faults_repaired_to_pre_fault_fidelity_with_few_writes():
    """A burst of 1 % new stuck-OFF devices (+2) on a factorized Re(DFT32) at 10 % initial faults, known to the
    host: the repair (with its read-back polish rounds) ends within 1.1x the pre-fault 1 - cos, moving <= 8 %."""
    n = 32
    m = dft_parts(n)[0]
    ca = random_fault_codes(n, n + 2, 0.10, rng=5)
    cb = random_fault_codes(n, n + 2, 0.10, rng=6)
    mm = map_factorized(m, n, ca, cb, rng=0)
    arrays = {"A": WindowArray(n, n + 2, fault_codes=ca, seed=7), "B": WindowArray(n, n + 2, fault_codes=cb, seed=8)}
    s = ServiceSession(mm, WindowEngine(arrays))
    s.program()
    truth = [arrays[st.array].true_conductance for st in mm.stages]
    omc_before = mm.one_minus_cos([t() for t in truth])
    rng = np.random.default_rng(9)
    new = [st.codes.copy() for st in mm.stages]
    n_new = round(0.01 * mm.devices) + 2
    cells = [(i, r, c) for i, st in enumerate(mm.stages) for r, c in np.argwhere((st.codes[:, :st.n_data] == 0)
                                                                               & (st.g_ref[:, :st.n_data] > 40e-6))]
    for k in rng.choice(len(cells), n_new, replace=False):
        i, r, c = cells[k]
        arrays[mm.stages[i].array].stick(r, c, 1)
        new[i][r, c] = 1
    omc_fault = mm.one_minus_cos([t() for t in truth])
    rec = s.repair(new, [st.g_ref.copy() for st in mm.stages])
    omc_after = mm.one_minus_cos([t() for t in truth])
    assert omc_fault > 3 * omc_before
    assert omc_after <= 1.1 * omc_before
    assert 0 < s.count.devices_reprogrammed <= 0.08 * mm.devices
    assert 0 < rec["writes"] <= s.count.devices_reprogrammed  # distinct cells; a polish may write one twice


def test_repair_residual_at_cos_scale_is_one_minus_cos_linearised(mapped):
    """Against c = |P|^2/<P,M> the squared residual changes as (a|M|)^2 x tan^2 of the angle to M does (first
    order), so shrinking the product costs what it costs in 1 - cos; against the mapping's scale it does not."""
    m, ca, cb, mm0 = mapped
    rng = np.random.default_rng(11)
    gs = [st.g_ref + rng.normal(0, 5e-6, st.shape) for st in mm0.stages]  # a programmed, not exact, product

    def tan2(g):
        p = mm0.product(g)
        return float(np.sum(p * p) * np.sum(m * m) / np.sum(p * m) ** 2 - 1)

    c = cos_scale(mm0, gs)
    p0 = mm0.product(gs)
    weight = float(np.sum(p0 * m)) ** 2 / float(np.sum(m * m))  # (a |M|)^2
    moved = [gs[0] + rng.normal(0, 1e-8, gs[0].shape), gs[1]]
    d_res = residual_sq(mm0, moved, c) - residual_sq(mm0, gs, c)
    assert d_res == pytest.approx(weight * (tan2(moved) - tan2(gs)), rel=0.02)
    shrink = [0.999 * gs[0], gs[1]]  # the same angle: free in 1 - cos, second order against c
    assert tan2(shrink) == pytest.approx(tan2(gs), rel=1e-9)
    d_c = residual_sq(mm0, shrink, c) - residual_sq(mm0, gs, c)
    d_s = residual_sq(mm0, shrink) - residual_sq(mm0, gs)  # against the mapping's scale: first order
    assert abs(d_c) < 0.02 * abs(d_s)


def test_a_fault_on_ma_writes_only_its_row_of_ma_and_columns_of_mb(mapped):
    """Repairing only what the fault touches: a stuck device on row r of MA spoils row r of the product; rows
    of MA whose product row is intact are never written, columns of MB (which cross row r) may be."""
    m, ca, cb, mm0 = mapped
    mm = map_factorized(m, N, ca, cb, rng=0)
    rng = np.random.default_rng(12)
    mm.stages[0].g_ref = mm.stages[0].g_ref + np.where(ca == 0, rng.normal(0, 5e-6, ca.shape), 0.0)
    mm.stages[1].g_ref = mm.stages[1].g_ref + np.where(cb == 0, rng.normal(0, 5e-6, cb.shape), 0.0)
    new = [ca.copy(), cb.copy()]
    r, c = np.argwhere((ca[:, :N] == 0) & (mm.stages[0].g_ref[:, :N] > 0.4 * G_MAX))[0]
    new[0][r, c] = 1
    plan = plan_repair(mm, new, RefitParams(slack=1.0))  # back to the pre-fault residual
    written_rows = np.flatnonzero(np.isfinite(plan.targets[0]).any(axis=1))
    assert plan.writes > 0 and set(written_rows) <= {r}
    stuck = [np.where(new[0] == 1, 0.0, mm.stages[0].g_ref), mm.stages[1].g_ref]
    after = [np.where(np.isfinite(t), t, g) for t, g in zip(plan.targets, stuck)]
    pre, hit = mm.one_minus_cos(), mm.one_minus_cos(stuck)
    assert hit > 1.2 * pre and mm.one_minus_cos(after) <= 1.1 * pre  # planned: back within the aim


def test_fault_map_versions_store_diff_and_reload(tmp_path):
    path = tmp_path / "versions.h5"
    store = FaultMapVersions(path, chip_id="C1")
    c0 = np.zeros((4, 5), np.int8)
    store.commit({"A": c0}, "map", {"devices": 20})
    c1 = c0.copy()
    c1[1, 2] = 2
    store.commit({"A": c1}, "localise+scan", {"syndrome": [1.5, 2.0]}, time_s=3600.0, note="one new stuck-ON")
    again = FaultMapVersions(path)
    assert len(again) == 2 and again.chip_id == "C1"
    assert again.get(1).evidence == {"syndrome": [1.5, 2.0]} and again.get(1).parent == 0
    d = again.diff(0, 1)["A"]
    assert d["n_changed"] == 1 and d["transitions"] == {"working->stuck_on": 1}
    with pytest.raises(ValueError, match="shape"):
        again.commit({"A": np.zeros((3, 3), np.int8)}, "scan")
    with pytest.raises(ValueError):
        again.commit({"A": np.full((4, 5), 7, np.int8)}, "scan")
    with pytest.raises(LookupError):
        again.get(5)


def test_same_seed_replays_every_decision(mapped):
    logs = []
    for _ in range(2):
        s, arrays = session_on(mapped, seed=9)
        st = s.mm.stages[1]
        cell = np.unravel_index(np.argmax(np.where(st.codes == 0, st.g_ref, 0)[:, :N]), (N, N))
        arrays["B"].stick(*cell, 1)
        rng = np.random.default_rng(11)
        for _ in range(10):
            s.serve(rng.uniform(-1, 1, (5, N)))
        logs.append([{k: v for k, v in e.items()} for e in s.log])
    assert logs[0] == logs[1]
    assert any(e["event"] == "repair" for e in logs[0])


def test_tiled_service_repairs_only_the_touched_tile():
    from hil.service.tiles import serve_tiled, tile_shapes

    m = dft_parts(2 * N)[0]
    shapes = tile_shapes(m.shape, (N, N))
    assert len(shapes) == 8
    codes = {name: random_fault_codes(*shape, 0.05, rng=i) for i, (name, shape) in enumerate(sorted(shapes.items()))}
    arrays = {name: WindowArray(*shape, fault_codes=codes[name], seed=i)
              for i, (name, shape) in enumerate(sorted(shapes.items()))}
    versions = FaultMapVersions()
    ts = serve_tiled(m, (N, N), codes, WindowEngine(arrays), params=ServiceParams(checks=CheckParams(group_size=4)),
                     versions=versions)
    targets = {t: [st.g_target.copy() for st in s.mm.stages] for t, s in ts.sessions.items()}
    s01 = ts.sessions[(0, 1)]
    st = s01.mm.stages[1]
    cell = np.unravel_index(np.argmin(np.where(st.codes == 0, st.g_ref, np.inf)[:, :st.n_data]), st.shape)
    arrays["T01B"].stick(*cell, 2)  # its lowest working cell stuck-ON (at 150 uS); stuck-OFF can cost a tile 1.03x, within the slack
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (200, 2 * N))
    for b in range(10):
        ts.serve(x[20 * b:20 * b + 20])
    assert ts.repairs_by_tile() == {(0, 0): 0, (0, 1): 1, (1, 0): 0, (1, 1): 0}
    for t, s in ts.sessions.items():
        same = all(np.array_equal(a, st_.g_target) for a, st_ in zip(targets[t], s.mm.stages))
        assert same == (t != (0, 1))
    # the chip's fault map versions hold every array; the new one differs in that one cell
    d = versions.diff(0, -1)
    assert sorted(d) == sorted(shapes) and d["T01B"]["n_changed"] == 1
    assert sum(v["n_changed"] for v in d.values()) == 1
    assert ts.one_minus_cos() < 1.0


@pytest.mark.parametrize("layout", ["contiguous", "strided", "auto"])
def test_tiled_service_uses_the_factorization_tiling(layout):
    """Service tiles are the tiles of hil.factorization.tiling: each session serves the lines its group names,
    the assembled output is the represented matrix's, and auto takes choose_layout's pick (strided for Re(DFT))."""
    from hil.factorization import SolverParams
    from hil.factorization.tiling import choose_layout, tile_groups
    from hil.service.tiles import serve_tiled, tile_shapes

    m = dft_parts(N)[0]
    tile = (N // 2, N // 2)
    shapes = tile_shapes(m.shape, tile)
    codes = {name: random_fault_codes(*shape, 0.05, rng=i) for i, (name, shape) in enumerate(sorted(shapes.items()))}
    arrays = {name: WindowArray(*shape, fault_codes=codes[name], seed=i)
              for i, (name, shape) in enumerate(sorted(shapes.items()))}
    ts = serve_tiled(m, tile, codes, WindowEngine(arrays), params=ServiceParams(checks=CheckParams(group_size=4)),
                     layout=layout)
    want = choose_layout(m, tile, SolverParams().tol) if layout == "auto" else (layout, layout)
    assert ts.layout == want and (layout != "auto" or want == ("strided", "strided"))
    for axis, groups in enumerate((ts.row_groups, ts.col_groups)):
        ref = tile_groups(N, tile[axis], want[axis])
        assert all(np.array_equal(a, b) for a, b in zip(groups, ref))
    # each tile's planned conductances compute its block of M (the solver's fit), the chip's up to the write error
    planned = {st.array: st.g_target for s in ts.sessions.values() for st in s.mm.stages}
    assert ts.one_minus_cos(planned) < 1e-3 and ts.one_minus_cos() < 0.25
    x = np.random.default_rng(1).uniform(-1, 1, (64, N))
    y = ts.serve(x, handle_alarms=False)
    exact = x @ ts.represented()
    assert np.linalg.norm(y - exact) < 0.05 * np.linalg.norm(exact)


def test_tiled_service_leaves_an_all_zero_tile_without_a_session():
    from hil.service.tiles import serve_tiled, tile_shapes

    m = np.zeros((2 * N, 2 * N))
    m[:N, :N], m[N:, N:] = dft_parts(N)[0], dft_parts(N)[1]  # block-diagonal: two tiles compute nothing
    shapes = tile_shapes(m.shape, (N, N))
    codes = {name: random_fault_codes(*shape, 0.05, rng=i) for i, (name, shape) in enumerate(sorted(shapes.items()))}
    arrays = {name: WindowArray(*shape, fault_codes=codes[name], seed=i)
              for i, (name, shape) in enumerate(sorted(shapes.items()))}
    g0 = {name: a.g.copy() for name, a in arrays.items()}
    ts = serve_tiled(m, (N, N), codes, WindowEngine(arrays), params=ServiceParams(checks=CheckParams(group_size=4)),
                     layout="contiguous")
    assert sorted(ts.sessions) == [(0, 0), (1, 1)]
    for name in ("T01A", "T01B", "T10A", "T10B"):  # never programmed
        assert np.array_equal(arrays[name].g, g0[name])
    assert not np.array_equal(arrays["T00A"].g, g0["T00A"])
    x = np.random.default_rng(2).uniform(-1, 1, (16, 2 * N))
    y = ts.serve(x, handle_alarms=False)
    exact = x @ ts.represented()
    assert np.linalg.norm(y - exact) < 0.05 * np.linalg.norm(exact) and ts.one_minus_cos() < 0.25


def test_pair_repair_spreads_an_uncompensable_weight_over_correlated_inputs():
    """A stuck-OFF G+ under a positive weight cannot be compensated in its pair; with the served inputs'
    second moment known, a few other pairs of the column take up most of the output's error."""
    from hil.service.mapping import map_direct

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (9, 4))
    w[2, 1] = 1.0
    w[-1] = 0.1  # the bias row (input 1)
    mm = map_direct(w, np.zeros((18, 4), np.int8))
    base = rng.normal(size=(400, 1))
    x = np.hstack([base + 0.3 * rng.normal(size=(400, 8)), np.ones((400, 1))])  # correlated inputs + bias
    codes = mm.stages[0].codes.copy()
    codes[4, 1] = 1  # G+ of weight (2, 1) stuck OFF: the pair can at best make it 0

    def output_error(plan):
        st = mm.stages[0]
        g = np.where(codes == 1, 0.0, st.g_ref)
        g = np.where(np.isfinite(plan.targets[0]), plan.targets[0], g)
        return float(np.mean((x @ (st.logical(g)[:, :4] / mm.scale - w))[:, 1] ** 2))

    blind = plan_repair(mm, [codes])
    mm.observe(x)
    aware = plan_repair(mm, [codes])
    assert aware.writes <= blind.writes + 6
    assert output_error(aware) < 0.3 * output_error(blind)


def test_the_service_figure_counts_each_write_once():
    """A cell rewrite records its writes; the figure's write panel counted it a second time."""
    from hil.service.report import writes_over_time

    log = [{"event": "program", "chip_time_s": 0.0, "writes": 500},
           {"event": "rewrite_cell", "chip_time_s": 3600.0, "writes": 2},
           {"event": "alarm", "chip_time_s": 5400.0},
           {"event": "repair", "chip_time_s": 7200.0, "writes": 3, "restored": 1}]
    t, n = writes_over_time(log)
    assert list(t) == [1.0, 2.0] and list(n) == [2, 6]


def test_the_service_figure_draws_the_patched_devices_of_a_hybrid_run(tmp_path):
    """The digital side of a hybrid repair is a curve of its own (devices patched, not written), read from
    the repair and patch events' counts; an analog-only log has none and still draws."""
    from hil.service.report import patched_over_time, service_figure

    log = [{"event": "repair", "chip_time_s": 3600.0, "writes": 1, "patch": {"weights": 3, "installed": []}},
           {"event": "patch", "chip_time_s": 5400.0, "weights": 4},
           {"event": "repair", "chip_time_s": 7200.0, "writes": 0, "patch": {"weights": 2, "installed": []}}]
    t, n = patched_over_time(log)
    assert list(t) == [1.0, 1.5, 2.0] and list(n) == [3, 4, 2]
    analog = [{"event": "repair", "chip_time_s": 3600.0, "writes": 5}]
    assert patched_over_time(analog)[0].size == 0
    for name, events in (("hybrid", log), ("analog", analog)):
        png = service_figure([0.0, 1.0, 2.0], [0.01, 0.012, 0.011], events, str(tmp_path / f"{name}.png"))
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000 and png.endswith(".png")


def test_write_sigma_fit_recovers_an_absolute_and_a_relative_part():
    rng = np.random.default_rng(4)
    g = rng.uniform(0.0, G_MAX, 4000)
    sd = np.hypot(1e-6, 0.02 * (g + 5e-6))  # read noise, and a relative verify band above a 5 uS floor
    s_abs, s_rel = fit_write_sigma(g, g + rng.normal(0.0, sd), g_offset=5e-6)
    assert s_abs == pytest.approx(1e-6, rel=0.25) and s_rel == pytest.approx(0.02, rel=0.1)
    # too few cells for a fit: the RMS as an absolute sd; NaN (not written) cells are left out
    assert fit_write_sigma([1e-6, np.nan, 3e-6], [2e-6, 5.0, 3e-6]) == (pytest.approx(np.sqrt(0.5) * 1e-6), 0.0)


def test_a_relative_band_drops_small_moves_of_high_targets_only():
    p = RefitParams(band=0.0, band_rel=0.03, write_sigma=0.0, write_sigma_rel=0.01, g_offset=5e-6)
    assert p.band_at([0.0, 95e-6]) == pytest.approx([0.15e-6, 3e-6])
    assert p.sigma_at(95e-6) == pytest.approx(1e-6)
    # one line, two devices free: a 1 uS move at 10 uS is beyond its band, the same move at 100 uS is not
    a = np.eye(2)
    x0 = np.array([10e-6, 100e-6])
    pa = line_path(0, 0, a, x0 + 1e-6, x0, np.ones(2, bool), 1e-9, replace(p, min_gain=0.0, floor=0.0))
    x, moved = finish_line(pa, 2, p)
    assert moved.tolist() == [0] and x[1] == x0[1]


def test_the_session_plans_with_its_engines_write_model_and_records_it(mapped):
    s, arrays = session_on(mapped)
    prog = next(e for e in s.log if e["event"] == "program")
    wp = arrays["A"].params
    assert prog["write_model"] == {"band": wp.verify_band, "band_rel": 0.0, "write_sigma": wp.write_sigma,
                                   "write_sigma_rel": 0.0, "g_offset": 0.0}
    assert s.p.refit.band == wp.verify_band and s.p.refit.write_sigma == wp.write_sigma

    class OwnModel(WindowEngine):
        def write_model(self, targets, reads):
            err = np.concatenate([(reads[a] - targets[a])[np.isfinite(targets[a])] for a in targets])
            return {"band": 1e-6, "write_sigma": float(np.sqrt(np.mean(err ** 2)))}

    m, ca, cb, _ = mapped
    s2 = ServiceSession(map_factorized(m, N, ca, cb, rng=0), OwnModel(
        {"A": WindowArray(N, N + 2, fault_codes=ca, seed=3), "B": WindowArray(N, N + 2, fault_codes=cb, seed=4)}))
    s2.program()
    # the engine's fields replace the defaults; the window's own sd (5 uS) is what this run's read-back shows
    assert s2.p.refit.band == 1e-6 and 3e-6 < s2.p.refit.write_sigma < 7e-6
