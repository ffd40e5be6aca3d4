"""The command line: scan, faults show/export/diff/merge, read, form, program; kill and resume a run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import yaml
from click.testing import CliRunner

from hil.bench import simulated_bench_file
from hil.cli import cli
from hil.faultmap import FaultMap
from hil.runstore import read_run

REPO = Path(__file__).resolve().parents[1]


def bench_file(tmp_path, n=12, faults=None, seed=3):
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": n, "cols": n}], "seed": seed,
                         "faults": faults or {"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": 4}})
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def run(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_scan_show_export_program_read(tmp_path):
    bench = bench_file(tmp_path)
    faults = tmp_path / "faults.h5"
    out = run("scan", "--bench", bench, "--out", faults, "--no-progress")
    assert "stuck_off 14" in out and "stuck_on 14" in out and "5.00 operations per cell" in out
    out = run("faults", "show", faults)
    assert "working      116" in out and (tmp_path / "faults.png").exists()
    run("faults", "export", faults, "--npy", tmp_path / "codes.npy")
    codes = np.load(tmp_path / "codes.npy")
    np.testing.assert_array_equal(codes, FaultMap.load(faults).export_codes())
    assert set(np.unique(codes)) <= {0, 1, 2, 3}
    # the exported codes name the fault map of another simulated bench file
    spec = yaml.safe_load(Path(bench).read_text())
    spec["chip"]["faults"] = {"kind": "file", "path": str(tmp_path / "codes.npy")}
    (tmp_path / "bench2.yaml").write_text(yaml.safe_dump(spec))
    run("scan", "--bench", tmp_path / "bench2.yaml", "--out", tmp_path / "f2.h5", "--no-progress")
    np.testing.assert_array_equal(FaultMap.load(tmp_path / "f2.h5").export_codes(), codes)
    out = run("faults", "diff", faults, tmp_path / "f2.h5")
    assert out.startswith("0 of 144 cells changed")
    run("faults", "merge", faults, tmp_path / "f2.h5", "--out", tmp_path / "m.h5")
    # program the working cells only, using the fault map
    np.save(tmp_path / "t.npy", np.full((12, 12), 150e-6))
    out = run("program", "--bench", bench, "--targets", tmp_path / "t.npy", "--faults", faults,
              "--out", tmp_path / "p.h5", "--no-progress")
    assert "converged 116" in out and "skipped 28" in out
    out = run("read", "--bench", bench, "--out", tmp_path / "r.h5", "--n-avg", 2, "--no-progress")
    assert (tmp_path / "r.png").exists() and "read 12x12 cells" in out
    out = run("form", "--bench", bench, "--out", tmp_path / "form.h5", "--no-progress")
    assert "never formed: 14" in out


def _done_rows(path):
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f["cells/done"][()].all(axis=1).sum())
    except (OSError, KeyError):
        return -1


def test_killed_run_leaves_a_readable_file_and_resumes(tmp_path):
    n = 14
    bench = bench_file(tmp_path, n=n, faults={"kind": "none"}, seed=8)
    rng = np.random.default_rng(1)
    np.save(tmp_path / "t.npy", np.exp(rng.uniform(np.log(10e-6), np.log(1e-3), (n, n))))
    out = tmp_path / "run.h5"
    cmd = [sys.executable, "-m", "hil", "program", "--bench", bench, "--targets", str(tmp_path / "t.npy"),
           "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while _done_rows(out) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    mid = read_run(out)  # the killed run's file opens and holds what it had flushed
    assert mid["status"] == "running"
    done = mid["cells"]["done"].all(axis=1)
    assert 3 <= done.sum() < n
    n_before = mid["tables"]["pulses"].size
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    final = read_run(out)
    assert final["status"] == "complete" and len(final["sessions"]) == 2
    assert np.all(final["cells"]["status"] == 1)
    new = final["tables"]["pulses"][n_before:]
    assert np.all(new["session"] == 1) and not np.any(new["phase"] == b"calibrate")  # calibration kept
    # this bench is simulated in-process: the resumed command built a fresh chip, so the cells the
    # file called converged read out of band and were programmed again instead of being counted
    assert np.isin(np.nonzero(done)[0], new["row"][new["pass"] == 1]).all()


def test_scan_picks_an_array_of_a_multi_array_chip(tmp_path):
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": 6, "cols": 6}, {"name": "B", "rows": 4, "cols": 5}],
                         "faults": {"kind": "none"}})
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(spec))
    run("scan", "--bench", path, "--array", "B", "--out", tmp_path / "fb.h5", "--no-progress")
    assert FaultMap.load(tmp_path / "fb.h5").shape == (4, 5)
    res = CliRunner().invoke(cli, ["scan", "--bench", str(path), "--array", "Z", "--out", str(tmp_path / "z.h5")])
    assert res.exit_code != 0 and "no array 'Z'" in res.output
