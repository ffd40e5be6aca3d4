"""``hil program-matrix`` of a matrix larger than one array: one (A, B) array pair per tile."""
from __future__ import annotations

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
