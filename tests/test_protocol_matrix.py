"""Programming matrices onto the simulated chip: direct (differential pairs) vs fault-aware
factorization (seed 003), measured through the chip by VMM; the 2D-DFT image workload."""
from __future__ import annotations

import numpy as np
import pytest

import hil
from hil.factorization import one_minus_cos
from hil.faultmap import STUCK_OFF
from protocols.matrix import (ChipLayer, MatrixParams, Placement, apply, block_dft2, block_idft2, dft_parts,
                              evaluate, measure_matrix, program_direct, program_factorized, r_squared,
                              region_codes, scan_arrays, snr_db)

N = 16
K = 9  # rank of Re(DFT16)
C, S = dft_parts(N)


def _image() -> np.ndarray:
    yy, xx = np.mgrid[0:2 * N, 0:2 * N] / (2 * N)
    return 0.5 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy) + 0.2 * (xx > 0.5)


@pytest.fixture(scope="module")
def chip():
    bench = hil.open_bench(chip={"seed": 4, "arrays": [{"name": n, "rows": 32, "cols": 32}
                                                       for n in ("A1", "B1", "A2", "B2")],
                                 "faults": {"kind": "random", "rate_off": 0.08}})
    fms = scan_arrays(bench)
    yield bench, fms
    bench.close()


@pytest.fixture(scope="module")
def direct(chip):
    bench, fms = chip
    cms = [program_direct(bench, C, fms, [Placement("A1")]), program_direct(bench, S, fms, [Placement("A2")])]
    ev = evaluate(bench, cms[0], C, rng=1, n_random=32)
    img = block_idft2(block_dft2(_image(), lambda u: apply(bench, cms[0], u), lambda u: apply(bench, cms[1], u), N), N)
    return cms, ev, snr_db(_image(), img)


@pytest.fixture(scope="module")
def factorized(chip, direct):  # runs after `direct`: it re-programs the same arrays
    bench, fms = chip
    cms = [program_factorized(bench, C, K, fms, [Placement("A1")], [Placement("B1")], rng=0),
           program_factorized(bench, S, K, fms, [Placement("A2")], [Placement("B2")], rng=0)]
    ev = evaluate(bench, cms[0], C, rng=1, n_random=32)
    img = block_idft2(block_dft2(_image(), lambda u: apply(bench, cms[0], u), lambda u: apply(bench, cms[1], u), N), N)
    return cms, ev, snr_db(_image(), img)


def test_scan_finds_the_chips_stuck_devices(chip):
    bench, fms = chip
    for name, fm in fms.items():
        truth = bench.sim.arrays[name].true_fault_codes
        assert np.array_equal(fm.codes == STUCK_OFF, truth == STUCK_OFF)
        assert fm.counts()["stuck_off"] == int(0.08 * 32 * 32)


def test_factorized_beats_direct_with_fewer_devices(direct, factorized):
    _, ev_d, _ = direct
    _, ev_f, _ = factorized
    assert ev_f["devices"] == 2 * N * K < ev_d["devices"] == 2 * N * N
    # stuck-OFF devices break the differential pairs; the factorization routes around them
    assert ev_d["one_minus_cos"] > 0.02
    assert ev_f["one_minus_cos"] < ev_d["one_minus_cos"] / 10
    assert ev_f["r2"] > 0.99 > ev_d["r2"]
    # what the VMMs measure agrees with the read-back conductances
    assert ev_f["one_minus_cos"] < 5 * ev_f["one_minus_cos_readback"] + 2e-3


def test_image_snr_factorized_above_direct(direct, factorized):
    snr_d, snr_f = direct[2], factorized[2]
    assert snr_f > snr_d + 10.0


def test_layout_signs_floor_and_linearity(chip, factorized):
    bench, fms = chip
    cm = factorized[0][0]
    a, b = cm.stages[0].layers[0], cm.stages[1].layers[0]
    # one sign per row, a +-1 vector, the bridge's sign register on B
    assert set(np.unique(a.row_sign)) <= {-1.0, 1.0} and set(np.unique(b.row_sign)) <= {-1.0, 1.0}
    # the floor (RESET level) is a few uS; stuck-OFF cells read as ~0 above it
    assert np.all((a.floor > 1e-6) & (a.floor < 10e-6))
    stuck = a.codes == STUCK_OFF
    assert np.all(np.abs(a.effective()[stuck]) < 1.5e-6)
    # signed inputs: the chip computes a linear map
    x = np.random.default_rng(3).uniform(-1, 1, size=(4, N))
    y = apply(bench, cm, x)
    y_neg = apply(bench, cm, -3.0 * x)
    # (the two differ by read noise only: each output averages 4 VMMs of ~0.3-1.5 % noise per cell)
    assert np.linalg.norm(y_neg + 3.0 * y) < 0.05 * np.linalg.norm(3.0 * y)
    assert one_minus_cos(y, x @ C) < 5e-3


def test_compensation_layer_improves_the_factorized_readback(chip):
    bench, fms = chip
    cm = program_factorized(bench, C, K, fms, [Placement("A1"), Placement("A2")], [Placement("B1"), Placement("B2")],
                            rng=0)
    per_layer = cm.meta["readback_one_minus_cos_per_layer"]
    assert per_layer[1] < per_layer[0] / 10
    one = one_minus_cos(measure_matrix(bench, cm.truncated(1)), C)
    both = one_minus_cos(measure_matrix(bench, cm), C)
    assert both < one
    assert cm.devices == 2 * (2 * N * K)


def test_region_codes_and_pairs():
    from hil.faultmap import FaultMap, UNRELIABLE

    codes = np.zeros((4, 4), np.int8)
    codes[1, 2] = UNRELIABLE
    fm = FaultMap(codes)
    sub = region_codes(fm, Placement("X", 1, 1), (2, 3))
    assert sub.shape == (2, 3) and sub[0, 1] == STUCK_OFF  # unreliable: left alone like stuck-OFF
    with pytest.raises(ValueError):
        region_codes(fm, Placement("X", 3, 3), (2, 2))
    # a differential pair layer: rows 2i / 2i+1 drive +u_i / -u_i
    g = np.array([[5e-6, 3e-6], [2e-6, 1e-6], [4e-6, 0.0], [0.0, 4e-6]])
    layer = ChipLayer(Placement("X"), np.repeat(np.arange(2), 2), np.tile([1.0, -1.0], 2), 1.0, np.zeros(4), g,
                      np.zeros((4, 2), np.int8))
    assert np.allclose(layer.signed(2), [[3e-6, 2e-6], [4e-6, -4e-6]])


def test_block_dft2_matches_fft_and_inverts():
    rng = np.random.default_rng(0)
    img = rng.uniform(size=(2 * N, 3 * N))
    spec = block_dft2(img, lambda u: u @ C, lambda u: u @ S, N)
    assert np.allclose(spec[:N, N:2 * N], np.fft.fft2(img[:N, N:2 * N]))
    assert np.allclose(block_idft2(spec, N), img)
    assert snr_db(img, img) == float("inf")
    assert r_squared([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    with pytest.raises(ValueError):
        block_dft2(img[:, :-1], lambda u: u @ C, lambda u: u @ S, N)


def test_params_window():
    p = MatrixParams(g_max=300e-6)
    assert p.window().g_max == 300e-6
