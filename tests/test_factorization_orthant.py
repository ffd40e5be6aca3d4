"""The column-orthant certificate (hil/factorization/orthant.py): tall targets at k = rank(M),
where MA's columns must share one orthant inside col(M)."""
import numpy as np

from hil.factorization import SolverParams, factorize, random_fault_codes
from hil.factorization.feasibility import exact_fit_obstruction, exactness_report
from hil.factorization.orthant import column_orthant, column_orthant_exact, orthant_sign_search, signs_pass

from test_factorization_feasibility import hil_map

OFF = 1

# col(M) = span{v = (0, 1, 1, 1), w = (1, 0, 1, -1)}. MA's column 0 is stuck-OFF at row 0,
# so it is a multiple of v; column 1 is stuck-OFF at row 1, so a multiple of w. Rows 2, 3
# carry v's signs (+, +) or (-, -) and w's (+, -) or (-, +): no shared orthant, no exact fit.
TWO_LINES = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
CA_TWO = np.array([[OFF, 0], [0, OFF], [0, 0], [0, 0]], np.int8)
CB_TWO = np.zeros((2, 2), np.int8)


def test_columns_that_need_different_orthants_are_proved_impossible_exactly():
    ob = exact_fit_obstruction(TWO_LINES, CA_TWO, CB_TWO)
    assert ob.kind == "column_orthant" and ob.exact and "col(M)" in ob.reason
    assert column_orthant(TWO_LINES, CA_TWO, CB_TWO, 30).status == "infeasible"  # HiGHS agrees
    res = factorize(TWO_LINES, CA_TWO, CB_TWO, np.random.default_rng(0), params=SolverParams(tol=1e-12))
    assert res.one_minus_cos > 1e-3
    # swap w's signs on rows 2, 3 to (+, +): the orthant (+, +, +, +) holds both columns, and
    # the fit is exact (MA = M, MB = I up to scale)
    m_ok = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assert exact_fit_obstruction(m_ok, CA_TWO, CB_TWO) is None
    assert column_orthant(m_ok, CA_TWO, CB_TWO, 30).status == "feasible"
    assert factorize(m_ok, CA_TWO, CB_TWO, np.random.default_rng(0),
                     params=SolverParams(tol=1e-12)).one_minus_cos <= 1e-12


def test_planted_fits_are_never_called_impossible():
    """Soundness: M = MA0 @ MB0 built on the fault maps with random row signs has an exact fit,
    so neither the exact enumeration nor HiGHS may refuse it; its signs pass the relaxation."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        m, r = 8, 3
        ca = random_fault_codes(m, r, 0.4, 0, rng)
        cb = np.zeros((r, r), np.int8)
        sa = rng.choice([-1.0, 1.0], m)
        ma0 = sa[:, None] * rng.uniform(0.1, 1, (m, r)) * (ca != OFF)
        mb0 = rng.choice([-1.0, 1.0], r)[:, None] * rng.uniform(0.1, 1, (r, r))
        m_ = ma0 @ mb0
        assert column_orthant_exact(m_, ca, cb)[0] == "feasible"
        assert column_orthant(m_, ca, cb, 30).status == "feasible"
        assert signs_pass(m_, ca, cb, sa)
        assert exact_fit_obstruction(m_, ca, cb) is None


def test_exact_enumeration_and_highs_agree_on_random_tall_targets():
    verdicts = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        m_ = np.round(rng.standard_normal((8, 3)) * 4) / 4
        ca, cb = random_fault_codes(8, 3, 0.2, 0, rng), np.zeros((3, 3), np.int8)
        exact, _ = column_orthant_exact(m_, ca, cb)
        if exact == "not_applicable":
            continue
        assert column_orthant(m_, ca, cb, 30).status == exact, seed
        verdicts.append(exact)
    assert {"feasible", "infeasible"} <= set(verdicts)  # both outcomes occur on these draws


def test_not_applicable_when_lines_exceed_the_rank_or_the_target_is_wide():
    ca3, cb3 = np.zeros((4, 3), np.int8), np.zeros((3, 2), np.int8)
    ca3[0, 0] = ca3[1, 1] = OFF
    assert column_orthant_exact(TWO_LINES, ca3, cb3)[0] == "not_applicable"  # 3 lines > rank 2
    assert column_orthant(TWO_LINES, ca3, cb3, 1).status == "not_applicable"
    assert column_orthant(TWO_LINES.T, np.zeros((2, 2), np.int8), np.zeros((2, 4), np.int8), 1).status \
        == "not_applicable"  # rank(M) = m: col(M) is everything


def test_the_milp_verdict_is_only_used_when_asked_and_is_marked_inexact():
    """Beyond ENUMERATE_MAX_ROWS only the MILP can decide; it runs only with milp_seconds > 0,
    and its certificate says it is a solver's proof."""
    m_ = np.kron(np.ones((4, 1)), TWO_LINES)  # 16 x 2, rank 2: too many rows to enumerate
    ca = np.kron(np.ones((4, 1), np.int8), CA_TWO)
    assert column_orthant_exact(m_, ca, CB_TWO)[0] == "not_applicable"
    assert exact_fit_obstruction(m_, ca, CB_TWO) is None
    ob = exact_fit_obstruction(m_, ca, CB_TWO, milp_seconds=30)
    assert ob.kind == "column_orthant_milp" and not ob.exact and "not checked in exact arithmetic" in ob.reason
    info, line = exactness_report(m_, ca, CB_TWO, 0.1, 1e-10, milp_seconds=30)
    assert info["exact_possible"] is False and info["certificate"]["exact"] is False
    assert "by a solver with tolerances" in line


def test_hil_map_reports_the_column_orthant_certificate(tmp_path):
    res, rec = hil_map(tmp_path, TWO_LINES, 2, CA_TWO, CB_TWO)
    assert res.exit_code == 0, res.output
    assert "EXACT FIT IMPOSSIBLE on these crossbars:" in res.output
    cert = rec["exact_fit"]["certificate"]
    assert rec["exact_fit"]["exact_possible"] is False and cert["kind"] == "column_orthant" and cert["exact"]
    # the MILP on request, on a target too tall to enumerate
    m_ = np.kron(np.ones((4, 1)), TWO_LINES)
    ca = np.kron(np.ones((4, 1), np.int8), CA_TWO)
    res, rec = hil_map(tmp_path, m_, 2, ca, CB_TWO, "--orthant-seconds", "30")
    assert res.exit_code == 0, res.output
    assert rec["exact_fit"]["certificate"]["kind"] == "column_orthant_milp"
    assert rec["exact_fit"]["certificate"]["exact"] is False
    res, _ = hil_map(tmp_path, m_, 2, ca, CB_TWO, "--orthant-seconds", "-1")
    assert res.exit_code != 0 and "below 0" in res.output


def test_sign_search_recovers_signs_that_pass_from_a_wrong_start():
    """A planted fit's row signs pass; from them with rows flipped, the local search gets back
    to signs that pass (the search that showed the 64 x 40 relaxation holds)."""
    rng = np.random.default_rng(3)
    m, r = 12, 3
    ca = random_fault_codes(m, r, 0.3, 0, rng)
    sa = rng.choice([-1.0, 1.0], m)
    m_ = (sa[:, None] * rng.uniform(0.1, 1, (m, r)) * (ca != OFF)) @ rng.standard_normal((r, r))
    cb = np.zeros((r, r), np.int8)
    assert signs_pass(m_, ca, cb, sa)
    flipped = sa.copy()
    flipped[np.flatnonzero(ca[:, 0] != OFF)[:3]] *= -1
    given, found, met = orthant_sign_search(m_, ca, cb, flipped, rng)
    assert met == r and signs_pass(m_, ca, cb, found)
    assert given < r  # the start misses columns
