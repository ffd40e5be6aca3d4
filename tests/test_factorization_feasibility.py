"""Certificates that no exact fit exists, the tolerance-aware rank check, and ``hil map``'s verdict."""
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from hil.cli import cli
from hil.factorization import RankError, SolverParams, factorize, random_fault_codes
from hil.factorization.feasibility import (HINT_MARGIN, exact_fit_obstruction, exactness_report, freedom_margin,
                                          one_sign_in_row_space)
from hil.factorization.rank import rank_k_floor, tolerance_rank

OFF, ON = 1, 2


def re_dft(n):
    j = np.arange(n)
    return np.cos(2 * np.pi * np.outer(j, j) / n)


def solve(m_, ca, cb, seed=0):
    return factorize(m_, ca, cb, np.random.default_rng(seed), params=SolverParams(tol=1e-12, max_iter=3000))


def hil_map(tmp_path, m_, k, fa=None, fb=None, *extra):
    """``hil map`` on ``m_`` (and fault maps when given) at ``k``: the result and its JSON record."""
    args = ["map", str(tmp_path / "m.npy"), "--k", str(k), "--out", str(tmp_path / "r.json"), *map(str, extra)]
    np.save(tmp_path / "m.npy", m_)
    for name, arr in (("fa", fa), ("fb", fb)):
        if arr is not None:
            np.save(tmp_path / f"{name}.npy", arr)
            args += [f"--faults-{name[1]}", str(tmp_path / f"{name}.npy")]
    res = CliRunner().invoke(cli, args)
    return res, (json.loads((tmp_path / "r.json").read_text()) if res.exit_code == 0 else None)


def test_dead_inner_lines_bound_every_fit():
    m_ = re_dft(8)  # rank 5
    ca = np.zeros((8, 6), np.int8)
    cb = np.zeros((6, 8), np.int8)
    ca[:, :2] = OFF  # two lines dead in A, one in B: 3 usable < 5
    cb[5, :] = OFF
    ob = exact_fit_obstruction(m_, ca, cb)
    assert ob.kind == "lines" and "3 of 6" in ob.reason
    s2 = np.linalg.svd(m_, compute_uv=False) ** 2
    assert ob.omc_lower_bound == pytest.approx(1 - np.sqrt(s2[:3].sum() / s2.sum()))
    assert solve(m_, ca, cb).one_minus_cos >= ob.omc_lower_bound * (1 - 1e-9)


def test_entries_without_a_path_bound_every_fit():
    rng = np.random.default_rng(1)
    m_ = rng.standard_normal((6, 6))
    ca = np.zeros((6, 6), np.int8)
    cb = np.zeros((6, 6), np.int8)
    ca[2, :3] = OFF  # row 2 reaches only lines 3..5
    cb[3:, 4] = OFF  # ... which never reach column 4
    ob = exact_fit_obstruction(m_, ca, cb)
    assert ob.kind == "support" and "row 2, column 4" in ob.reason
    e = m_[2, 4] ** 2 / (m_ ** 2).sum()
    assert ob.omc_lower_bound == pytest.approx(1 - np.sqrt(1 - e))
    res = solve(m_, ca, cb)
    assert res.one_minus_cos >= ob.omc_lower_bound * (1 - 1e-9)
    assert res.ma[2] @ res.mb[:, 4] == 0.0


def test_single_path_signs_that_contradict_each_other():
    # A diagonal: row i of P is sa_i sb_i |B_i|, one sign per row -- [1, -1] cannot be a row
    m_ = np.array([[1.0, 1.0], [1.0, -1.0]])
    ca = np.array([[0, OFF], [OFF, 0]], np.int8)
    cb = np.zeros((2, 2), np.int8)
    ob = exact_fit_obstruction(m_, ca, cb)
    assert ob.kind == "sign_parity"
    assert solve(m_, ca, cb).one_minus_cos > 0.1
    # the same masks with a row of one sign: no obstruction, and the solver fits it
    ok = np.array([[1.0, 1.0], [-1.0, -2.0]])
    assert exact_fit_obstruction(ok, ca, cb) is None
    assert solve(ok, ca, cb).one_minus_cos <= 1e-12


def test_stuck_on_products_that_cannot_cancel():
    m_ = np.array([[0.0, 1.0], [1.0, 1.0]])
    ca = np.array([[ON, OFF], [0, 0]], np.int8)  # entry (0, 0): one path, both stuck-ON
    cb = np.array([[ON, 0], [0, 0]], np.int8)
    ob = exact_fit_obstruction(m_, ca, cb)
    assert ob.kind == "sign_parity" and "stuck-ON" in ob.reason
    # three such paths: +-1 +-1 +-1 is odd, never 0
    ca3 = np.array([[ON, ON, ON], [0, 0, 0]], np.int8)
    cb3 = np.array([[ON, 0], [ON, 0], [ON, 0]], np.int8)
    assert exact_fit_obstruction(m_, ca3, cb3).kind == "stuck_on_parity"
    # two can cancel (+1 - 1): no proof
    assert exact_fit_obstruction(m_, ca3[:, :2], cb3[:2]) is None


def test_certificates_never_contradict_a_fit_found():
    """Wherever the solver reaches 1e-10, no certificate may claim the fit is impossible,
    and a certificate's bound is never beaten (small random instances, both fault kinds)."""
    found = certified = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        m, n, k = rng.integers(2, 5, size=3)
        m_ = rng.standard_normal((m, n))
        rate = rng.uniform(0.1, 0.6)
        on = seed % 2 == 1
        ca = random_fault_codes(m, k, 0 if on else rate, rate / 3 if on else 0, rng)
        cb = random_fault_codes(k, n, 0 if on else rate, rate / 3 if on else 0, rng)
        ob = exact_fit_obstruction(m_, ca, cb)
        try:
            res = factorize(m_, ca, cb, rng, params=SolverParams(tol=1e-10, max_iter=2000, restarts=1))
        except RankError:
            continue
        if res.one_minus_cos <= 1e-10:
            found += 1
            assert ob is None, (seed, ob)
        if ob is not None:
            certified += 1
            assert res.one_minus_cos >= ob.omc_lower_bound * (1 - 1e-9)
    assert found >= 5 and certified >= 5  # both sides exercised


def test_freedom_margin_counts_devices_against_the_rank_set():
    m_ = np.ones((4, 6))
    ca, cb = np.zeros((4, 3), np.int8), np.zeros((3, 6), np.int8)
    # 12 + 18 working, 3 gauge scalings; rank-3 4x6 products: 3 * 10 - 9 = 21
    assert freedom_margin(m_, ca, cb) == pytest.approx(27 / 21)
    cb[0, 0] = ON  # a stuck-ON device is no parameter, and it fixes its line's scale
    assert freedom_margin(m_, ca, cb) == pytest.approx((29 - 2) / 21)
    cb[1, :] = OFF  # a dead line: its A devices move nothing; rank-2 products
    assert freedom_margin(m_, ca, cb) == pytest.approx((8 + 11 - 1) / (2 * 10 - 4))


def test_rank_check_counts_only_directions_that_matter_at_tol():
    blk = re_dft(256)[:64, :64]  # numerical rank 44, but 37 directions leave < 1e-11
    assert tolerance_rank(blk, 1e-10) == 37
    assert rank_k_floor(blk, 37) <= 1e-11 < rank_k_floor(blk, 30)
    rng = np.random.default_rng(0)
    ca, cb = random_fault_codes(64, 40, 0, 0, rng), random_fault_codes(40, 64, 0, 0, rng)
    res = factorize(blk, ca, cb, rng, params=SolverParams(tol=1e-6, max_iter=500))
    assert res.one_minus_cos <= 1e-6
    with pytest.raises(RankError, match="best rank-30"):
        factorize(blk, ca[:, :30], cb[:30], rng, params=SolverParams(tol=1e-10))
    with pytest.raises(RankError, match="rank 33"):
        factorize(re_dft(64), np.zeros((64, 32)), np.zeros((32, 64)), rng)


def test_exactness_report_states_each_verdict():
    m_ = re_dft(4)
    ok = np.zeros((4, 4), np.int8)
    assert exactness_report(m_, ok, ok, 1e-13, 1e-12)[0]["exact_possible"] is True
    dead = ok.copy()
    dead[0, :] = OFF
    info, line = exactness_report(m_, dead, ok, 0.3, 1e-12)
    assert info["exact_possible"] is False and line.startswith("EXACT FIT IMPOSSIBLE")
    assert info["certificate"]["omc_lower_bound"] > 0
    info, line = exactness_report(m_, ok, ok, 1e-3, 1e-12)
    assert info["exact_possible"] is None and "no proof" in line


def test_hil_map_says_when_an_exact_fit_is_impossible(tmp_path):
    m_ = re_dft(8)
    fa = np.zeros((8, 8), np.int8)
    fa[3, :] = OFF  # row 3 of M (non-zero) has no device left in A
    fb = np.zeros((8, 8), np.int8)
    res, rec = hil_map(tmp_path, m_, 8, fa, fb)
    assert res.exit_code == 0, res.output
    assert "EXACT FIT IMPOSSIBLE" in res.output and "row 3" in res.output
    assert rec["exact_fit"]["exact_possible"] is False
    assert rec["one_minus_cos"] >= rec["exact_fit"]["certificate"]["omc_lower_bound"] * (1 - 1e-9)
    res, rec = hil_map(tmp_path, m_, 8)
    assert "fit reaches tol" in res.output
    assert rec["exact_fit"]["exact_possible"] is True


def test_no_fresh_starts_once_an_exact_fit_is_out_of_reach():
    m_ = re_dft(8)
    ok = np.zeros((8, 8), np.int8)
    dead = ok.copy()
    dead[3, :] = OFF  # proved impossible: one attempt
    res = factorize(m_, dead, ok, np.random.default_rng(0), params=SolverParams(tol=1e-12, restarts=3))
    assert res.attempts == 1 and res.one_minus_cos > 1e-3
    # a fit within reach that misses tol in its budget still gets its fresh starts
    rng = np.random.default_rng(1)
    ca, cb = random_fault_codes(8, 8, 0.3, 0, rng), random_fault_codes(8, 8, 0.3, 0, rng)
    assert freedom_margin(m_, ca, cb) > 1 and exact_fit_obstruction(m_, ca, cb) is None
    res = factorize(m_, ca, cb, rng, params=SolverParams(tol=0.0, max_iter=5, restarts=2, inner="all"))
    assert res.attempts == 3


def test_wide_target_at_k_equal_to_its_rank_certified_by_the_row_cone():
    # row(M) = span{(1, 0, 0), (0, 1, -1)}: its only vectors with a 0 in column 0 are
    # t (0, 1, -1), never of one sign, so MB row 0 (stuck-OFF at column 0) has no value
    m_ = np.array([[1.0, 1.0, -1.0], [1.0, 2.0, -2.0]])
    ca, cb = np.zeros((2, 2), np.int8), np.zeros((2, 3), np.int8)
    cb[0, 0] = OFF
    ob = exact_fit_obstruction(m_, ca, cb)
    assert ob.kind == "row_cone" and "MB row 0" in ob.reason
    res = factorize(m_, ca, cb, np.random.default_rng(0), params=SolverParams(tol=1e-12))
    assert res.one_minus_cos > 1e-3 and res.attempts == 1  # proved: no fresh starts
    # one inner line more than rank(M): MB's rows may leave row(M), and the fit is exact
    ca3, cb3 = np.zeros((2, 3), np.int8), np.zeros((3, 3), np.int8)
    cb3[0, 0] = OFF
    assert exact_fit_obstruction(m_, ca3, cb3) is None
    assert solve(m_, ca3, cb3).one_minus_cos <= 1e-12


def test_the_costly_certificate_waits_for_a_miss_and_then_ends_the_restarts(monkeypatch):
    import hil.factorization.solver as solver
    asked = []
    real = solver.exact_fit_obstruction

    def counted(*args, expensive=True):
        asked.append(expensive)
        return real(*args, expensive=expensive)
    monkeypatch.setattr(solver, "exact_fit_obstruction", counted)
    m_ = np.array([[1.0, 1.0, -1.0], [1.0, 2.0, -2.0]])  # the row-cone case above
    ca, cb = np.zeros((2, 2), np.int8), np.zeros((2, 3), np.int8)
    cb[0, 0] = OFF
    res = factorize(m_, ca, cb, np.random.default_rng(0), params=SolverParams(tol=1e-12, restarts=3))
    # counting and parity first (none applies), the row cone once the first attempt missed
    assert asked == [False, True] and res.attempts == 1
    assert res.extra["obstruction"].kind == "row_cone"
    info, line = exactness_report(m_, ca, cb, res.one_minus_cos, 1e-12, res.extra["obstruction"])
    assert asked == [False, True] and info["certificate"]["kind"] == "row_cone"  # not worked out again
    asked.clear()
    ca3, cb3 = np.zeros((2, 3), np.int8), np.zeros((3, 3), np.int8)
    cb3[0, 0] = OFF
    res = factorize(m_, ca3, cb3, np.random.default_rng(0), params=SolverParams(tol=1e-12))
    assert res.one_minus_cos <= 1e-12 and asked == [False] and "obstruction" not in res.extra  # a fit asks no more


def test_random_wide_targets_are_certified_at_k_equal_rank_and_fit_with_more_lines():
    """12 x 16 Gaussian targets, 30 % stuck-OFF: at k = 12 = rank the row cone proves no
    exact fit; the same targets on k = 16 inner lines fit to 1e-10."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        m_ = rng.standard_normal((12, 16))
        ca, cb = random_fault_codes(12, 12, 0.3, 0, rng), random_fault_codes(12, 16, 0.3, 0, rng)
        assert exact_fit_obstruction(m_, ca, cb).kind == "row_cone"
        ca, cb = random_fault_codes(12, 16, 0.3, 0, rng), random_fault_codes(16, 16, 0.3, 0, rng)
        assert factorize(m_, ca, cb, rng, params=SolverParams(tol=1e-10)).one_minus_cos <= 1e-10


def test_one_sign_row_space_decides_the_rank_sized_probe():
    # Re(DFT n)'s row space holds the all-ones row; a Gaussian rank-4 one in R^16 holds no
    # vector of one sign, so a fit through 4 inner lines is impossible whatever the faults
    assert one_sign_in_row_space(np.linalg.svd(re_dft(16))[2][:9])
    rng = np.random.default_rng(0)
    low = rng.standard_normal((16, 4)) @ rng.standard_normal((4, 16))
    assert not one_sign_in_row_space(np.linalg.svd(low)[2][:4])
    assert factorize(low, np.zeros((16, 8)), np.zeros((8, 16)), rng,
                     params=SolverParams(tol=1e-8)).attempts == 1  # no probe, one full fit


def test_low_rank_target_fits_with_the_k_the_count_suggests(tmp_path):
    """Rank 8 of 32 x 32 at 30 % stuck-OFF: k = 16 is short of freedoms (a fit through
    one sign per row was never found there); ``hil map`` says so and names a k that fits."""
    rng = np.random.default_rng(3)
    m_ = rng.standard_normal((32, 8)) @ rng.standard_normal((8, 32))
    rate = ("--fault-rate", "0.3", "--tol", "1e-8")
    res, rec = hil_map(tmp_path, m_, 16, None, None, *rate)
    assert res.exit_code == 0, res.output
    assert "WARNING" in res.output and "below 1" in res.output
    k_more = rec["exact_fit"]["k_suggested"]
    assert 16 < k_more < 32 and f"k >= {k_more}" in res.output
    # and the k where the count reaches 1, near which such fits begin (freedom_margin's notes)
    k_one = re.search(r"k >= (\d+) reach 1", res.output)
    assert k_one and 16 < int(k_one.group(1)) < k_more, res.output
    res, rec = hil_map(tmp_path, m_, k_more, None, None, *rate)
    assert res.exit_code == 0 and "fit reaches tol 1e-08" in res.output, res.output
    assert rec["one_minus_cos"] <= 1e-8


def test_hil_map_prints_the_row_cone_verdict(tmp_path):
    res, rec = hil_map(tmp_path, np.array([[1.0, 1.0, -1.0], [1.0, 2.0, -2.0]]), 2, np.zeros((2, 2), np.int8),
                       np.array([[OFF, 0, 0], [0, 0, 0]], np.int8))
    assert res.exit_code == 0, res.output
    assert "EXACT FIT IMPOSSIBLE" in res.output and "row space of M" in res.output
    assert rec["exact_fit"]["certificate"]["kind"] == "row_cone"


def _best_1x2(ca, cb, m_):
    """Best 1 - cos of P = s |a| (|b0|, |b1|) by enumeration: a is 0 (OFF) or positive, each
    |b_j| is 0 (OFF), 1 (ON, in Gmax units) or in [0, 1], and cos is extremal at 0 or 1."""
    if ca == OFF:
        return 1.0
    best = 1.0
    for s in (1.0, -1.0):
        for b0 in ({OFF: [0.0], ON: [1.0]}.get(cb[0], [0.0, 1.0])):
            for b1 in ({OFF: [0.0], ON: [1.0]}.get(cb[1], [0.0, 1.0])):
                p = s * np.array([b0, b1])
                if p.any():
                    best = min(best, 1.0 - float(p @ m_[0]) / (np.linalg.norm(p) * np.linalg.norm(m_)))
    return best


def test_one_by_two_target_reaches_its_best_partial_fit_on_every_fault_pattern():
    """M = [[1, -1]], k = 1: the two entries tie sa * sb to both signs (no exact fit), yet
    1 - cos = 1 - 1/sqrt(2) is reachable whenever a path and a free sign remain. With a
    stuck-ON device the scale-free sin^2 objective once led the product to -M (1 - cos ~ 1.5)."""
    m_ = np.array([[1.0, -1.0]])
    for ca in (0, OFF, ON):
        for cb0 in (0, OFF, ON):
            for cb1 in (0, OFF, ON):
                res = factorize(m_, np.array([[ca]]), np.array([[cb0, cb1]]), np.random.default_rng(0),
                                params=SolverParams(tol=1e-12, max_iter=500))
                assert res.one_minus_cos <= _best_1x2(ca, (cb0, cb1), m_) + 1e-9, (ca, cb0, cb1)
                assert res.one_minus_cos <= 1.0 + 1e-12


def test_hil_map_of_a_one_by_two_target_uses_its_line(tmp_path):
    for seed in ("0", "1"):
        res, rec = hil_map(tmp_path, np.array([[1.0, -1.0]]), 1, None, None, "--seed", seed)
        assert res.exit_code == 0, res.output
        assert rec["inner_lines_used"] == 1 and abs(rec["one_minus_cos"] - (1 - 2 ** -0.5)) < 1e-9
        assert "EXACT FIT IMPOSSIBLE" in res.output


def test_a_proved_miss_also_names_a_larger_k():
    """A row-cone proof at k = rank(M) comes with the k that gives HINT_MARGIN free devices
    per needed one (the cure is more inner lines); an unresolved miss names it too."""
    rng = np.random.default_rng(0)
    m_ = rng.standard_normal((12, 16))
    ca, cb = random_fault_codes(12, 12, 0.3, 0, rng), random_fault_codes(12, 16, 0.3, 0, rng)
    info, line = exactness_report(m_, ca, cb, 1e-3, 1e-10)
    assert info["exact_possible"] is False and info["certificate"]["kind"] == "row_cone"
    assert info["k_suggested"] > 12 and f"k >= {info['k_suggested']}" in line
    assert freedom_margin(m_, ca, cb) < HINT_MARGIN
    # at or above the margin nothing is suggested
    ok = np.zeros((12, 16), np.int8)
    info, line = exactness_report(m_, ok[:, :16], np.zeros((16, 16), np.int8), 1e-3, 1e-10)
    assert info["k_suggested"] is None and "k >=" not in line
