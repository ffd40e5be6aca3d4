"""``hil program-matrix`` of a matrix larger than one array: one (A, B) array pair per tile."""
from __future__ import annotations

import json

import h5py
import numpy as np
import yaml
from click.testing import CliRunner

from hil.cli import cli
from protocols.matrix import dft_parts


def _bench(tmp_path, n_arrays, rate_off=0.05):
    raw = yaml.safe_load(open("hil/benches/factorization.yaml"))
    raw["chip"]["arrays"] = [{"name": f"{'AB'[i % 2]}{i // 2 + 1}", "rows": 8, "cols": 8} for i in range(n_arrays)]
    raw["chip"]["faults"] = {"kind": "random", "rate_off": rate_off}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_a_matrix_twice_an_array_is_tiled_over_two_array_pairs(tmp_path):
    c, _ = dft_parts(16)
    m_ = c[:, :8]  # 16 x 8 on 8 x 8 arrays: two row tiles
    np.save(tmp_path / "m.npy", m_)
    out = tmp_path / "r.h5"
    res = CliRunner().invoke(cli, ["program-matrix", str(tmp_path / "m.npy"), "--bench", _bench(tmp_path, 4),
                                   "--k", "8", "--random-inputs", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "factorized tiled" in res.output
    with h5py.File(out) as f:
        assert f.attrs["tiles"] == 2 and f.attrs["devices"] == 2 * (8 * 8 + 8 * 8)
        assert f["measured"].shape == (16, 8)
        assert f.attrs["one_minus_cos"] < 5e-3 and f.attrs["r2"] > 0.99
        rows = [list(f[f"tiles/{i}_0"].attrs["rows"]) for i in (0, 1)]
        assert sorted(rows[0] + rows[1]) == list(range(16)) and len(rows[0]) == 8  # a partition of M's rows
        assert list(f.attrs["layout"]) in (["contiguous", "contiguous"], ["strided", "contiguous"])
        assert f["tiles/0_0/stages/0/layers/0"].attrs["array"] == "A1"
        assert f["tiles/1_0/stages/1/layers/0"].attrs["array"] == "B2"


def test_too_few_arrays_for_the_tiles_is_refused(tmp_path):
    np.save(tmp_path / "m.npy", np.ones((16, 16)))
    run = lambda *a: CliRunner().invoke(cli, ["program-matrix", str(tmp_path / "m.npy"), "--bench",  # noqa: E731
                                              _bench(tmp_path, 4), "--k", "8", "--out", str(tmp_path / "r.h5"), *a])
    res = run()
    assert res.exit_code != 0 and "needs 4 tiles of 8 x 8" in res.output
    assert "takes no compensation layers" in run("--layers", "2").output
    assert "no array Z9" in run("--arrays-a", "Z9").output


def test_each_tile_gets_an_exactness_verdict_and_a_dead_inner_line_is_proved_impossible(tmp_path):
    # A1 (MA of the first tile) has a dead inner line: column 0 all stuck-OFF; the rest of
    # the chip is fault-free. Each 8 x 8 block of a dense random matrix has rank 8 = k, so
    # the tile on A1 has 7 usable inner lines for a rank-8 block: no exact fit (``lines``)
    codes = np.zeros((8, 8), np.int8)
    codes[:, 0] = 1
    np.save(tmp_path / "a1.npy", codes)
    bench = yaml.safe_load(open(_bench(tmp_path, 4)))
    bench["chip"]["faults"] = {"kind": "none"}
    bench["chip"]["arrays"][0]["faults"] = {"kind": "file", "path": str(tmp_path / "a1.npy")}
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(bench))
    np.save(tmp_path / "m.npy", np.random.default_rng(3).standard_normal((16, 8)))
    out = tmp_path / "r.h5"
    res = CliRunner().invoke(cli, ["program-matrix", str(tmp_path / "m.npy"), "--bench", str(tmp_path / "bench.yaml"),
                                   "--k", "8", "--random-inputs", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 of 2 tiles fit exactly, 1 proved impossible, 0 unresolved" in res.output
    assert "EXACT FIT IMPOSSIBLE" in res.output and "only 7 of 8 inner lines" in res.output
    with h5py.File(out) as f:
        whole = json.loads(f.attrs["exact_fit"])
        assert whole["exact_possible"] is False and whole["tol"] == 1e-10
        on_a1 = [t for t in ("0_0", "1_0") if f[f"tiles/{t}/stages/0/layers/0"].attrs["array"] == "A1"]
        assert whole["impossible_tiles"] == on_a1 and len(whole["exact_tiles"]) == 1
        dead = json.loads(f[f"tiles/{on_a1[0]}"].attrs["exact_fit"])
        assert dead["exact_possible"] is False and dead["certificate"]["kind"] == "lines"
        bound = dead["certificate"]["omc_lower_bound"]  # Eckart-Young: the fit reaches it to rounding
        assert bound > 0 and dead["one_minus_cos"] >= bound * (1 - 1e-9)
        assert "k_suggested" in dead
        ok = json.loads(f[f"tiles/{whole['exact_tiles'][0]}"].attrs["exact_fit"])
        assert ok["exact_possible"] is True and ok["one_minus_cos"] <= 1e-10
        # the scan found the dead line the verdict rests on
        assert np.all(f[f"tiles/{on_a1[0]}/stages/0/layers/0/codes"][:, 0] == 1)


def test_an_all_zero_tile_is_left_unprogrammed_and_its_outputs_stay_zero(tmp_path):
    rng = np.random.default_rng(0)
    m_ = np.zeros((16, 8))
    m_[:8] = rng.standard_normal((8, 8))  # the second row tile is all zero
    np.save(tmp_path / "m.npy", m_)
    out = tmp_path / "r.h5"
    res = CliRunner().invoke(cli, ["program-matrix", str(tmp_path / "m.npy"), "--bench", _bench(tmp_path, 4),
                                   "--k", "8", "--random-inputs", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with h5py.File(out) as f:
        assert f.attrs["tiles"] == 1 and f.attrs["devices"] == 8 * 8 + 8 * 8
        assert "tiles/1_0" not in f and "tiles/0_0" in f and json.loads(f.attrs["zero_tiles"]) == [[1, 0]]
        measured = f["measured"][()]
        assert np.all(measured[8:] == 0) and f.attrs["r2"] > 0.99
