"""``hil program-matrix`` on small simulated chips."""
from __future__ import annotations

import json

import h5py
import numpy as np
import yaml
from click.testing import CliRunner

from hil.cli import cli
from protocols.matrix import dft_parts


def _bench(tmp_path, arrays):
    raw = yaml.safe_load(open("hil/benches/factorization.yaml"))
    raw["chip"]["arrays"] = [{"name": n, "rows": 16, "cols": 16} for n in arrays]
    raw["chip"]["faults"] = {"kind": "random", "rate_off": 0.1}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_program_matrix_factorized_writes_the_measured_matrix(tmp_path):
    c, _ = dft_parts(8)  # rank 5; k = 7 leaves the solver room around the stuck devices
    np.save(tmp_path / "m.npy", c)
    out = tmp_path / "r.h5"
    res = CliRunner().invoke(cli, ["program-matrix", str(tmp_path / "m.npy"), "--bench", _bench(tmp_path, ["A", "B"]),
                                   "--k", "7", "--random-inputs", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "scanning A, B" in res.output
    with h5py.File(out) as f:
        assert f.attrs["mapping"] == "factorized" and f.attrs["devices"] == 2 * 8 * 7
        assert f.attrs["one_minus_cos"] < 5e-3 and f.attrs["r2"] > 0.99
        assert f["measured"].shape == (8, 8)
        assert f["stages/1/layers/0"].attrs["array"] == "B"
        assert set(np.unique(f["stages/0/layers/0/row_sign"][()])) <= {-1.0, 1.0}
        # hil map's verdict on the solver's fit, one array pair = one tile
        verdict = json.loads(f.attrs["exact_fit"])
        tile = verdict["tiles"]["0_0"]
        assert verdict["exact_possible"] is tile["exact_possible"]
        assert (tile["exact_possible"] is True) == (tile["one_minus_cos"] <= verdict["tol"])
    said = {True: "fit reaches tol", False: "EXACT FIT IMPOSSIBLE", None: "no proof that an exact fit"}
    assert said[tile["exact_possible"]] in res.output and "tiles fit exactly" not in res.output


def test_program_matrix_refuses_bad_requests(tmp_path):
    np.save(tmp_path / "m.npy", np.eye(4))
    bench = _bench(tmp_path, ["A"])
    run = lambda *a: CliRunner().invoke(cli, ["program-matrix", str(tmp_path / "m.npy"), "--bench", bench,  # noqa: E731
                                              "--out", str(tmp_path / "r.h5"), *a])
    assert "--k is required" in run().output
    assert "no arrays for MB" in run("--k", "4").output  # factorized needs an MB array
    assert "ARRAY=FILE" in run("--mapping", "direct", "--faults", "Z=x.h5").output
