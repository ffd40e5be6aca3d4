"""benchmarks/factorize_frontier.py: part files merge into the main results file, newest record per key."""
import json

import numpy as np
import pytest

from benchmarks import factorize_frontier as ff
from hil.factorization import SolverParams, factorize, map_tiled, random_blocked_codes, random_tile_codes


def _rec(n, seed, cpu, finished=None, case="growth", rate=0.18):
    r = {"case": case, "matrix": "re_dft", "m": n, "n": n, "k": min(n, 64), "fault": "off", "rate": rate,
         "seed": seed, "one_minus_cos": 1e-11, "cpu_s": cpu, "exact_possible": True, "bound": 1e-10,
         "certificate": None}
    if finished is not None:
        r["finished"] = finished
    return r


def test_merge_keeps_the_newest_record_per_key_and_recomputes_growth(tmp_path):
    main_file, part_a, part_b = tmp_path / "main.json", tmp_path / "a.json", tmp_path / "b.json"
    # the main file: records from before records carried a finish time, and one newer than part b's
    main_file.write_text(json.dumps({"records": [_rec(32, 0, 1.0), _rec(64, 0, 8.0, finished=300.0)],
                                     "growth": {"stale": True}}))
    part_a.write_text(json.dumps({"records": [_rec(32, 0, 2.0, finished=100.0), _rec(128, 0, 32.0, finished=100.0)],
                                  "chip_128": {"r2": 0.9, "devices": 32768, "finished": 100.0}}))
    part_b.write_text(json.dumps({"records": [_rec(32, 0, 3.0, finished=50.0), _rec(64, 0, 9.0, finished=200.0),
                                              _rec(64, 0, 5.0, finished=10.0, case="growth_blocked")],
                                  "chip_128": {"r2": 0.5, "devices": 1, "finished": 90.0}}))
    ff.main(["--merge", str(part_a), str(part_b), "--out", str(main_file)])
    data = json.loads(main_file.read_text())
    got = {(r["case"], r["n"]): r["cpu_s"] for r in data["records"]}
    # (growth, 32): part a's (t=100) beats part b's (t=50) and main's undated one;
    # (growth, 64): main's t=300 beats part b's t=200; the blocked record has its own key
    assert got == {("growth", 32): 2.0, ("growth", 64): 8.0, ("growth", 128): 32.0, ("growth_blocked", 64): 5.0}
    assert data["chip_128"]["r2"] == 0.9 and data["chip_128"]["devices"] == 32768
    # cpu 2, 8, 32 at n = 32, 64, 128: exactly n^2
    assert data["growth"]["exponent_18"] == pytest.approx(2.0)
    assert data["growth"]["exponent_39"] is None and "stale" not in data["growth"]
    assert data["summary"]["re_dft_128x128_k64_off_0.18"]["trials"] == 1
    # merging the same part again changes nothing
    ff.main(["--merge", str(part_b), "--out", str(main_file)])
    assert json.loads(main_file.read_text())["records"] == data["records"]


def test_merge_refuses_a_missing_or_foreign_part(tmp_path):
    with pytest.raises(SystemExit):
        ff.main(["--merge", str(tmp_path / "nope.json"), "--out", str(tmp_path / "main.json")])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="no records list"):
        ff.main(["--merge", str(bad), "--out", str(tmp_path / "main.json")])
    assert not (tmp_path / "main.json").exists()


def test_a_foreign_out_file_is_refused_before_anything_runs(tmp_path, capsys):
    foreign = tmp_path / "reprogram.json"
    foreign.write_text(json.dumps({"detection": {}}))
    with pytest.raises(SystemExit):
        ff.main(["--cases", "matrices_30", "--seeds", "1", "--out", str(foreign)])
    assert "not a factorize_frontier results file" in capsys.readouterr().err
    assert json.loads(foreign.read_text()) == {"detection": {}}


def test_a_tiled_dft128_at_a_low_fault_rate_is_as_exact_as_one_joint_fit():
    """Re(DFT128) on 64 x 64 arrays at 5 % stuck-OFF: four independent tiles (k = 64 each) and
    the blocked joint fit (k = 128) over the same eight arrays both reach 1 - cos <= 1e-10."""
    m_ = ff.make_matrix("re_dft", 128, 128, 0)
    params = SolverParams(tol=1e-10)
    codes = random_tile_codes((128, 128), 64, (64, 64), 0.05, 0.0, np.random.default_rng(3))
    tiled = map_tiled(m_, 64, (64, 64), codes, seed=3, params=params, workers=1)
    assert len(tiled.tiles) == 4 and tiled.one_minus_cos(m_) <= 1e-10
    for (i, j), (ca, cb) in codes.items():
        assert np.all(tiled.tiles[(i, j)].ma[ca == 1] == 0) and np.all(tiled.tiles[(i, j)].mb[cb == 1] == 0)
    rng = np.random.default_rng(3)
    ca, cb = random_blocked_codes(128, 128, 128, (64, 64), 0.05, 0.0, rng)
    joint = factorize(m_, ca, cb, rng, params=params)
    assert joint.one_minus_cos <= 1e-10


def test_a_run_saving_stale_records_keeps_what_another_run_redid(tmp_path):
    out = tmp_path / "part.json"
    stale = _rec(64, 0, 8.0, finished=100.0)
    ff.save(out, {"records": [_rec(64, 0, 3.0, finished=200.0)]})  # another run's redo
    # a long run loaded the file before that redo and saves its own new record beside it
    written = ff.save(out, {"records": [stale, _rec(128, 0, 30.0, finished=300.0)],
                            "chip_128": {"r2": 0.99, "devices": 32768, "finished": 300.0}})
    assert {r["n"]: r["cpu_s"] for r in written["records"]} == {64: 3.0, 128: 30.0}
    assert written["chip_128"]["r2"] == 0.99
    # --redo drops the keys it recomputes even when the file's record is newer
    redone = ff.save(out, {"records": [stale], "_dropped": {ff.key(stale)}})
    assert {r["n"]: r["cpu_s"] for r in redone["records"]} == {64: 8.0, 128: 30.0}
