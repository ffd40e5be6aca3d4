"""Stuck-device maps: seed 003's random generator, seed 000's spatial patterns, explicit maps."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simulated_bench.faults import (PATTERN_SIZES, STUCK_OFF, STUCK_ON, PatternGeometry, coverage,
                                    pattern_fault_codes, pattern_mask, random_fault_codes, validate_codes)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), r_off=st.floats(0, 0.6), r_on=st.floats(0, 0.4),
       seed=st.integers(0, 2**32 - 1))
def test_random_faults_exact_counts(rows, cols, r_off, r_on, seed):
    codes = random_fault_codes(rows, cols, r_off, r_on, seed)
    n = rows * cols
    assert codes.shape == (rows, cols)
    assert np.count_nonzero(codes == STUCK_OFF) == int(np.floor(r_off * n))
    assert np.count_nonzero(codes == STUCK_ON) == int(np.floor(r_on * n))
    np.testing.assert_array_equal(codes, random_fault_codes(rows, cols, r_off, r_on, seed))


@pytest.mark.parametrize("rate", [1.5, -0.1])
def test_rate_outside_unit_interval_raises(rate):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        random_fault_codes(8, 8, rate)


def test_rates_summing_over_one_raise():
    with pytest.raises(ValueError, match="exceed 1"):
        random_fault_codes(8, 8, 0.7, 0.4)


@pytest.mark.parametrize("rows,cols", [(0, 4), (-3, 4), (4, 2.5)])
def test_bad_shape_raises(rows, cols):
    with pytest.raises(ValueError, match="positive integer"):
        random_fault_codes(rows, cols, 0.1)


def test_unknown_pattern_names_the_choices():
    with pytest.raises(ValueError, match="unknown pattern 'donut'.*circle"):
        pattern_mask("donut", 8, 8)


def test_circle_coverage_follows_area():
    # on a large square array the counted coverage approaches pi r^2 (seed 000 Table I footnote)
    for r in PATTERN_SIZES["circle"]:
        cov = coverage(pattern_mask("circle", 400, 400, r))
        assert cov == pytest.approx(np.pi * r**2, rel=0.02)


def test_ring_and_complement_geometry():
    ring = pattern_mask("ring", 400, 400, 0.28)
    assert coverage(ring) == pytest.approx(np.pi * (0.5**2 - 0.28**2), rel=0.02)
    comp = pattern_mask("circle_complement", 400, 400, 0.2)
    np.testing.assert_array_equal(comp, ~pattern_mask("circle", 400, 400, 0.2))
    assert not comp[200, 200] and comp[0, 0]


def test_row_and_column_bands_are_centred():
    m = pattern_mask("rows", 65, 100, 4)
    rows_hit = np.nonzero(m.any(axis=1))[0]
    assert len(rows_hit) == 4 and m[rows_hit].all()
    assert abs(rows_hit.mean() - 32) <= 1
    c = pattern_mask("columns", 20, 50, 3)
    cols_hit = np.nonzero(c.any(axis=0))[0]
    assert len(cols_hit) == 3 and np.all(np.diff(cols_hit) == 1)
    assert abs(cols_hit.mean() + 0.5 - 25) <= 0.5  # centred within half a cell


def test_checkerboard_is_half():
    m = pattern_mask("checkerboard", 64, 64)
    assert coverage(m) == 0.5
    assert m[0, 0] != m[0, 1] and m[0, 0] == m[1, 1]


def test_geometry_choices_differ_on_non_square_arrays():
    width = pattern_mask("circle", 65, 100, 0.3, PatternGeometry("width"))
    min_dim = pattern_mask("circle", 65, 100, 0.3, PatternGeometry("min_dim"))
    ellipse = pattern_mask("circle", 65, 100, 0.3, PatternGeometry("per_axis"))
    assert coverage(width) > coverage(min_dim)
    assert len({coverage(width), coverage(min_dim), coverage(ellipse)}) == 3
    with pytest.raises(ValueError, match="radius_reference"):
        PatternGeometry("diagonal")


def test_pattern_codes_kind():
    on = pattern_fault_codes("circle", 16, 16, 0.3, kind="on")
    assert set(np.unique(on)) == {0, STUCK_ON}
    with pytest.raises(ValueError, match="kind"):
        pattern_fault_codes("circle", 16, 16, 0.3, kind="sideways")


def test_explicit_map_validation():
    ok = validate_codes([[0, 1], [2, 0]], (2, 2))
    assert ok.dtype == np.int8
    with pytest.raises(ValueError, match="code 7 at \\(1, 0\\)"):
        validate_codes([[0, 1], [7, 0]])
    with pytest.raises(ValueError, match="does not match"):
        validate_codes(np.zeros((3, 3)), (2, 2))


def test_a_chip_level_fault_seed_gives_each_array_its_own_map():
    """One ``faults: {seed: s}`` for the chip must not copy one map onto every array: array k
    draws with seed s + k (array 0 keeps seed s), and a per-array spec is taken as written."""
    from simulated_bench.instruments.chip import build_arrays

    spec = {"kind": "random", "rate_off": 0.2, "seed": 7}
    chip = {"faults": spec, "arrays": [{"name": n, "rows": 8, "cols": 8} for n in "ABC"]
            + [{"name": "D", "rows": 8, "cols": 8, "faults": spec}]}
    codes = {n: a.fault_codes for n, a in build_arrays(chip).items()}
    for k, n in enumerate("ABC"):
        np.testing.assert_array_equal(codes[n], random_fault_codes(8, 8, 0.2, rng=7 + k))
    assert not np.array_equal(codes["A"], codes["B"]) and not np.array_equal(codes["B"], codes["C"])
    np.testing.assert_array_equal(codes["D"], codes["A"])
