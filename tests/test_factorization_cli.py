"""``hil map`` round trip and input errors, through click's CliRunner."""
import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from hil.cli import cli

G_MAX = 150e-6


def re_dft(n):
    j = np.arange(n)
    return np.cos(2 * np.pi * np.outer(j, j) / n)


@pytest.fixture
def files(tmp_path):
    m = re_dft(16)
    rng = np.random.default_rng(0)
    fa = (rng.random((16, 12)) < 0.1).astype(np.int8)
    fb = np.where(rng.random((12, 16)) < 0.1, 2, 0).astype(np.int8)
    paths = {name: tmp_path / f"{name}.npy" for name in ("m", "fa", "fb")}
    np.save(paths["m"], m)
    np.save(paths["fa"], fa)
    np.save(paths["fb"], fb)
    return tmp_path, paths, m, fa, fb


def run(*args):
    return CliRunner().invoke(cli, ["map", *map(str, args)])


def test_round_trip_with_fault_files(files):
    tmp, p, m, fa, fb = files
    out = tmp / "r.json"
    res = run(p["m"], "--k", 12, "--faults-a", p["fa"], "--faults-b", p["fb"], "--out", out)
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    ma, mb = np.array(d["ma_siemens"]), np.array(d["mb_siemens"])
    sa, sb = np.array(d["sign_a"]), np.array(d["sign_b"])
    assert ma.shape == (16, 12) and mb.shape == (12, 16)
    assert np.all(ma * sa[:, None] >= 0) and np.all(mb * sb[:, None] >= 0)
    assert np.abs(ma).max() <= G_MAX and np.abs(mb).max() <= G_MAX
    assert np.all(ma[fa == 1] == 0) and np.all(mb[fb == 2] == G_MAX * sb[np.nonzero(fb == 2)[0]])
    p_ = ma @ mb
    cos = (p_ * m).sum() / np.linalg.norm(p_) / np.linalg.norm(m)
    assert d["one_minus_cos"] == pytest.approx(1 - cos, abs=1e-13)
    assert d["one_minus_cos"] <= 1e-6
    assert np.linalg.norm(p_ - d["scale"] * m) <= 1e-2 * np.linalg.norm(p_)
    assert d["fault_codes_a"] == fa.tolist()


def test_round_trip_with_random_faults(files):
    tmp, p, m, _, _ = files
    out = tmp / "r.json"
    res = run(p["m"], "--k", 16, "--fault-rate", 0.2, "--fault-kind", "off", "--seed", 3,
              "--g-max", 100e-6, "--out", out)
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["one_minus_cos"] <= 1e-10
    assert np.abs(np.array(d["ma_siemens"])).max() == pytest.approx(100e-6)
    assert (np.array(d["fault_codes_a"]) == 1).sum() == int(0.2 * 16 * 16)


def test_inner_option_chooses_between_rank_lines_and_all(tmp_path):
    j = np.arange(16)
    m = np.cos(2 * np.pi * np.outer(j, j) / 16)          # Re(DFT16): rank 9
    np.save(tmp_path / "m.npy", m)
    used = {}
    for inner in ("auto", "all"):
        out = tmp_path / f"{inner}.json"
        res = run(tmp_path / "m.npy", "--k", 16, "--fault-rate", 0.05, "--seed", 1,
                  "--tol", 1e-10, "--inner", inner, "--out", out)
        assert res.exit_code == 0, res.output
        d = json.loads(out.read_text())
        assert d["one_minus_cos"] <= 1e-10 and d["inner"] == inner
        assert f"({d['inner_lines_used']} inner lines used)" in res.output
        used[inner] = d["inner_lines_used"]
    assert used["auto"] == 9 and used["all"] > 9


@pytest.mark.parametrize("extra,msg", [
    (("--k", 8), "rank 9"),
    (("--k", 0), "'--k'"),
    (("--k", 12, "--faults-a", "FA"), "go together"),
    (("--k", 12, "--faults-a", "FA", "--faults-b", "FB", "--fault-rate", 0.1), "not both"),
    (("--k", 12, "--fault-rate", 1.5), "'--fault-rate': 1.5 is above 1"),
    (("--k", 12, "--g-max", -1), "g-max"),
])
def test_bad_options(files, extra, msg):
    tmp, p, *_ = files
    extra = [p["fa"] if e == "FA" else p["fb"] if e == "FB" else e for e in extra]
    res = run(p["m"], *extra, "--out", tmp / "r.json")
    assert res.exit_code != 0
    assert msg in res.output
    assert not (tmp / "r.json").exists()


def test_bad_fault_files(files):
    tmp, p, m, fa, fb = files
    bad = fa.copy()
    bad[0, 0] = 3
    np.save(tmp / "bad.npy", bad)
    res = run(p["m"], "--k", 12, "--faults-a", tmp / "bad.npy", "--faults-b", p["fb"], "--out", tmp / "r.json")
    assert res.exit_code != 0 and "outside 0" in res.output
    np.save(tmp / "wrong.npy", fa[:, :10])
    res = run(p["m"], "--k", 12, "--faults-a", tmp / "wrong.npy", "--faults-b", p["fb"], "--out", tmp / "r.json")
    assert res.exit_code != 0 and "shape" in res.output


def test_bad_matrix_files(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(5.0))
    res = run(tmp_path / "v.npy", "--k", 2, "--out", tmp_path / "r.json")
    assert res.exit_code != 0 and "2-D" in res.output
    np.save(tmp_path / "obj.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    res = run(tmp_path / "obj.npy", "--k", 2, "--out", tmp_path / "r.json")
    assert res.exit_code != 0 and "no pickles" in res.output
    (tmp_path / "p.npy").write_bytes(pickle.dumps([1, 2]))
    res = run(tmp_path / "p.npy", "--k", 2, "--out", tmp_path / "r.json")
    assert res.exit_code != 0
    np.save(tmp_path / "z.npy", np.zeros((3, 3)))
    res = run(tmp_path / "z.npy", "--k", 2, "--out", tmp_path / "r.json")
    assert res.exit_code != 0 and "not all zero" in res.output
