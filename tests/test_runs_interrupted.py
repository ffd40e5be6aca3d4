"""Interrupting real commands on a served bench: SIGTERM / SIGHUP switch every output off, mark the
run file interrupted, lose no pulse record, and the same command resumes to the same result."""
import signal
import time

import h5py
import numpy as np
import pytest
import yaml

from benchmarks.served import ServedBench, hil_command, start
from hil.bench import simulated_bench_file
from hil.faultmap import FaultMap
from hil.runstore import read_run


def small_bench(tmp_path, n=8):
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": n, "cols": n}], "seed": 5,
                         "faults": {"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": 2}})
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _rows_done(path):
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f["cells/done"][()].all(axis=1).sum())
    except (OSError, KeyError):
        return -1


def _interrupt(proc, out, rows, sig):
    deadline = time.time() + 120
    while _rows_done(out) < rows and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr


@pytest.fixture
def served(tmp_path):
    sb = ServedBench(small_bench(tmp_path), tmp_path)
    yield sb
    sb.close()


def _pulse_records_match_the_chip(run, served):
    recorded = np.zeros(served.delivered.shape, np.int64)
    p = run["tables"]["pulses"]
    np.add.at(recorded, (p["row"], p["col"]), 1)
    sure = np.zeros_like(recorded)
    np.add.at(sure, (p["row"][p["delivered"]], p["col"][p["delivered"]]), 1)
    # every pulse the chip received is in the file; only records the kill left unconfirmed may be extra
    assert np.all(recorded >= served.delivered)
    assert np.all(sure <= served.delivered)


def test_sigterm_on_program_switches_outputs_off_and_resumes(served, tmp_path):
    n = served.array.shape[0]
    np.save(tmp_path / "t.npy", np.full((n, n), 150e-6))
    out = tmp_path / "p.h5"
    cmd = hil_command("program", "--bench", served.path, "--targets", tmp_path / "t.npy", "--out", out,
                      "--no-progress")
    rc, stderr = _interrupt(start(cmd), out, 2, signal.SIGTERM)
    assert rc == 143 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("Error: interrupted by SIGTERM: outputs switched off")
    assert served.outputs_on() == []
    mid = read_run(out)
    assert mid["status"] == "interrupted" and 2 <= mid["cells"]["done"].all(axis=1).sum() < n
    _pulse_records_match_the_chip(mid, served)
    proc = start(cmd)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    final = read_run(out)
    assert final["status"] == "complete" and [s.decode() for s in final["sessions"]["status"]] == \
        ["interrupted", "complete"]
    _pulse_records_match_the_chip(final, served)
    assert served.outputs_on() == []
    # the file's converged cells really are in the band on the chip
    from protocols.ispp import STANFORD_ISPP as p

    truth = served.array.read_all(p.v_read, p.read_gate, noisy=False) / p.v_read
    conv = final["cells"]["status"] == 1
    assert conv.sum() >= 0.7 * n * n
    assert np.all(np.abs(truth[conv] / 150e-6 - 1) <= 0.031)


def test_sighup_on_scan_switches_outputs_off_and_resume_gives_the_same_fault_map(served, tmp_path):
    out = tmp_path / "faults.h5"
    cmd = hil_command("scan", "--bench", served.path, "--out", out, "--no-progress")
    rc, stderr = _interrupt(start(cmd), tmp_path / "faults.run.h5", 3, signal.SIGHUP)
    assert rc == 129 and "Traceback" not in stderr
    assert served.outputs_on() == []
    assert read_run(tmp_path / "faults.run.h5")["status"] == "interrupted"
    proc = start(cmd)  # no extra flag: the scan resumes from its run file
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    run = read_run(tmp_path / "faults.run.h5")
    assert run["status"] == "complete" and len(run["sessions"]) == 2
    _pulse_records_match_the_chip(run, served)
    np.testing.assert_array_equal(FaultMap.load(out).export_codes(), served.array.true_fault_codes)
