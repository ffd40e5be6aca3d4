"""``hil service WORKFLOW.yaml``: validation, a short run, replay, resume after SIGTERM, fault-map versions."""
import json
import re
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from hil.cli import cli
from hil.faultmap_versions import FaultMapVersions
from hil.service.workflow import WorkflowError, parse_workflow
from protocols.service import timeline

ROOT = Path(__file__).resolve().parents[1]
BENCH = (ROOT / "examples" / "service" / "aging_bench.yaml").read_text() \
    .replace("rows: 16, cols: 18", "rows: 8, cols: 10").replace("per_hour: 2.0e-3", "per_hour: 1.5e-2")
SMALL = """name: small
seed: 1
bench: bench.yaml
mapping: {target: dft_real, n: 8, k: 8}
stream: {workload: random, vectors_per_hour: 16, hours: HOURS}
service: {n_calibrate: 64, n_probe: 8}
bench_io: {n_vmm: 1, n_read: 2}
"""


def small(tmp_path, hours):
    """A Re(DFT8) service workflow on a simulated bench with two aging 8x10 arrays (in tmp_path)."""
    (tmp_path / "bench.yaml").write_text(BENCH)
    wf = tmp_path / "wf.yaml"
    wf.write_text(SMALL.replace("HOURS", str(hours)))
    return wf


def run(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return res


@pytest.mark.parametrize("text,match", [
    ("name: x\nchip: {initial_fault_rate: 0.7}\n", r"chip.initial_fault_rate"),
    ("name: x\nmaping: {}\n", r"maping"),
    ("name: x\nchip: {aging: {stuck: {per_hur: 1}}}\n", r"per_hur"),
    ("name: x\nstream: {workload: digits}\n", r"digits"),
    ("name: x\ncorrector: {fit_images: 100}\n", r"corrector: is the digits network's"),
    ("name: x\nmapping: {target: digits}\nstream: {workload: digits}\ncorrector: {fit_images: 1500}\n",
     r"corrector.*<= 1617"),
    ("name: x\nmapping: {target: file}\n", r"needs path"),
    ("- a list\n", r"mapping with name"),
    ("name: x\nbench: b.yaml\nchip: {initial_fault_rate: 0.1}\n", r"not both"),
    ("name: x\nservice: {n_calibrat: 10}\n", r"n_calibrat"),
    ("name: x\nservice: {settle_s: .nan}\n", r"settle_s"),
    ("name: x\nstream: {maintain_every_hours: .inf}\n", r"stream.maintain_every_hours"),
    ("name: x\nstream: {maintain_every_hours: 1.5}\n", r"whole number of hours"),
    ("name: x\nstream: {hours: -3}\n", r"stream.hours"),
    ("name: x\nstream: {workload: images}\n", r"stream.workload"),
    ("name: x\nmapping: {n: eight}\n", r"mapping.n"),
    ("name: x\n\tbench: a\n", r"not valid YAML"),
])
def test_workflow_errors_name_the_field(text, match):
    with pytest.raises(WorkflowError, match=match):
        parse_workflow(text)


@pytest.mark.parametrize("field,make,match", [
    ("stream", lambda p: np.save(p, np.ones((5, 7))), r"stream.path .*need vectors of 8 entries .*\(5, 7\)"),
    ("stream", lambda p: np.save(p, np.zeros((0, 8))), r"stream.path .*need vectors of 8 entries .*\(0, 8\)"),
    ("stream", lambda p: np.save(p, np.r_[np.ones((2, 8)), [[np.nan] * 8]]), r"stream.path .*NaN or inf .*row 2"),
    ("stream", lambda p: np.save(p, np.ones(8)), r"stream.path: .* shape \(8,\); a 2-D array is needed"),
    ("stream", lambda p: np.save(p, np.ones((2, 8)) * 1j), r"stream.path: .* complex128 values, not real numbers"),
    ("stream", lambda p: np.save(p, np.array([["a"] * 8])), r"stream.path: .* <U1 values, not real numbers"),
    ("stream", lambda p: p.write_text("1,2,3\n"), r"stream.path: cannot read .* as a .npy array"),
    ("stream", None, r"stream.path: .*absent.npy not found"),
    ("mapping", lambda p: np.save(p, np.array([[1, "a"]], object), allow_pickle=True), r"mapping.path: cannot read"),
    ("mapping", None, r"mapping.path: .*absent.npy not found"),
])
def test_a_bad_vector_or_matrix_file_is_refused_naming_the_field(tmp_path, field, make, match):
    """Empty, wrong width, NaN, not numbers, not a .npy, missing: one line naming the field, no run file."""
    wf = small(tmp_path, 1)
    data = tmp_path / ("data.npy" if make else "absent.npy")
    if make:
        make(data)
    text = wf.read_text()
    if field == "stream":
        text = text.replace("workload: random", f"workload: file, path: {data.name}")
    else:
        text = text.replace("target: dft_real, n: 8, k: 8", f"target: file, path: {data.name}")
    wf.write_text(text)
    res = run("service", wf, "--out", tmp_path / "run.h5", "--no-progress")
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert re.search(match, res.output), res.output
    assert not (tmp_path / "run.h5").exists() and not (tmp_path / "run.h5.faults.h5").exists()


def test_service_runs_through_the_bench_and_replays(tmp_path):
    """Scan, ISPP, reads and VMMs through the bench's drivers; every pulse recorded; the replay reproduces it."""
    wf = small(tmp_path, 2)
    out = tmp_path / "run.h5"
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    assert "hour    2:" in res.output and (tmp_path / "run.png").exists()
    assert re.search(r"bench clock: \d+ round trips, [\d.]+ s of estimated bench time", res.output)
    rows, events, attrs = timeline(out)
    assert attrs["status"] == "complete" and len(rows) == 2 and int(attrs["hours_done"]) == 2
    assert int(attrs["round_trips"]) > 1000 and float(attrs["bench_time_s"]) > 0  # the bench clock, in the file
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["scan_array", "scan_array"] and "program" in kinds and "verify" in kinds
    with h5py.File(out, "r") as f:
        pulses = f["tables/pulses"][()]
        ident = json.loads(f.attrs["identity"])
    # every pulse the loop sent went through the bench and was recorded (write-ahead) and delivered
    scan_pulses = sum(e["pulses"] for e in events if e["event"] == "scan_array")
    assert pulses.size >= scan_pulses + next(e["pulses"] for e in events if e["event"] == "program") > 0
    assert pulses["delivered"].all() and {b"setup:scan", b"setup:write"} <= set(pulses["phase"]) <= {
        b"setup:scan", b"setup:write", b"serve:scan", b"serve:write"}
    assert set(ident["instruments"]) == {"smu", "pulser", "board"} and ident["chip_id"] == "SIM-AGING-16"
    # the ground truth and the host's read-back estimate agree (the bench engine's units are right)
    assert np.all(np.abs(rows["fidelity"] - rows["fidelity_reference"]) < 0.5 * rows["fidelity"])
    from hil.view.figures import RunPage
    from hil.view.reader import read_snapshot

    snap = read_snapshot(out)
    assert snap.protocol == "service" and int(snap.done.sum()) == 2
    page = RunPage()
    page.update(snap)
    assert page.fig_fidelity.visible and page.fig_events.visible
    store = FaultMapVersions(str(out) + ".faults.h5")
    assert store.get(0).operation == "scan"
    assert len(store) == 1 + sum(e["event"] == "faultmap_version" for e in events)
    assert rows["faults_appeared"].sum() > 0  # the aging chip grew stuck devices
    res = run("service", wf, "--out", out, "--replay")
    assert res.exit_code == 0 and f"replayed {len(events)} decisions: identical" in res.output
    # a tampered record is caught by the replay
    with h5py.File(out, "a") as f:
        ev = f["tables/events"]
        i = kinds.index("verify")
        row = ev[i]
        rec = json.loads(row["record"])
        rec["fidelity"] += 1.0
        row["record"] = json.dumps(rec)
        ev[i] = row
    res = run("service", wf, "--out", out, "--replay")
    assert res.exit_code != 0 and "replay differs" in res.output and f"decision {i}" in res.output


def test_service_through_served_instruments(tmp_path):
    """The same workflow with the instruments served on 127.0.0.1 (pyvisa-py TCPIP and serial socket://)."""
    wf = small(tmp_path, 1)
    out = tmp_path / "sock.h5"
    res = run("service", wf, "--out", out, "--no-progress", "--transport", "socket")
    assert res.exit_code == 0, res.output
    ref = tmp_path / "inproc.h5"
    assert run("service", wf, "--out", ref, "--no-progress").exit_code == 0
    # the bytes are the same either way, so the seeded chip makes the same decisions
    assert timeline(out)[1] == timeline(ref)[1]
    assert "bench clock:" in res.output


def test_service_refuses_another_workflow_a_missing_array_and_no_bench(tmp_path):
    wf = small(tmp_path, 1)
    out = tmp_path / "run.h5"
    assert run("service", wf, "--out", out, "--no-progress").exit_code == 0
    events = timeline(out)[1]
    wf.write_text(SMALL.replace("HOURS", "1").replace("seed: 1", "seed: 2"))
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code != 0 and "was started with another workflow (line 2: 'seed: 1' -> 'seed: 2'" in res.output
    assert "--overwrite to start over" in res.output and timeline(out)[1] == events  # the run is left as it was
    # fault-map versions without their run file (it was moved away) are not appended to by another run
    (tmp_path / "run.h5").rename(tmp_path / "kept.h5")
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code != 0 and "run.h5.faults.h5 holds the fault-map versions of another run" in res.output
    versions = len(FaultMapVersions(str(out) + ".faults.h5"))
    res = run("service", wf, "--out", out, "--no-progress", "--overwrite")  # a deliberate restart: both start over
    assert res.exit_code == 0, res.output
    store = FaultMapVersions(str(out) + ".faults.h5")
    assert len(store) == 1 + sum(e["event"] == "faultmap_version" for e in timeline(out)[1])
    assert [v.operation for v in store.versions].count("scan") == 1 and versions >= 1
    wf.write_text(SMALL.replace("HOURS", "1").replace("n: 8, k: 8", "n: 12, k: 12"))
    res = run("service", wf, "--out", tmp_path / "big.h5", "--no-progress")
    assert res.exit_code != 0 and "array A is 8x10; the mapping needs at least 12x14" in res.output
    assert not (tmp_path / "big.h5").exists()
    wf.write_text(SMALL.replace("HOURS", "1").replace("bench: bench.yaml\n", ""))
    res = run("service", wf, "--out", tmp_path / "x.h5", "--no-progress")
    assert res.exit_code != 0 and "no bench" in res.output
    wf.write_text(SMALL.replace("HOURS", "1").replace("n_vmm: 1", "n_vm: 1"))
    res = run("service", wf, "--out", tmp_path / "y.h5", "--no-progress")
    assert res.exit_code != 0 and "bench_io: unknown setting 'n_vm'" in res.output


def test_sigterm_then_resume_gives_the_uninterrupted_run(tmp_path):
    hours = 4
    wf = small(tmp_path, hours)
    out = tmp_path / "run.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hil", "service", str(wf), "--out", str(out), "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("hour    1:"):
            # at once: an hour can take less than any fixed wait, so the signal lands in a later
            # hour, whichever, but well before the last
            proc.send_signal(signal.SIGTERM)
            break
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0 and "interrupted by SIGTERM" in output
    rows, _, attrs = timeline(out)
    assert attrs["status"] == "interrupted" and 1 <= len(rows) < hours
    with h5py.File(out, "r") as f:  # an rram-hil run: hours are its rows, for hil view
        assert f.attrs["protocol"] == "service" and f["cells/done"][()].sum() == len(rows)
        assert f["tables/pulses"].shape[0] > 0
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    rows, events, attrs = timeline(out)
    assert attrs["status"] == "complete" and list(rows["hour"]) == list(range(hours))
    with h5py.File(out, "r") as f:
        sessions = f["sessions"][()]
        phases = set(f["tables/pulses"]["phase"])
    assert [s["status"] for s in sessions] == [b"interrupted", b"complete"] and b"replay:write" in phases
    ref = tmp_path / "ref.h5"
    assert run("service", wf, "--out", ref, "--no-progress").exit_code == 0
    rows_ref, events_ref, _ = timeline(ref)
    assert events == events_ref
    assert np.array_equal(rows, rows_ref)


def test_service_pulses_are_recorded_before_they_are_sent(tmp_path, monkeypatch):
    """At the moment each pulse reaches the bench, the run file already holds it, marked not yet delivered."""
    import hil
    from hil.bench import Bench
    from hil.runstore import RunStore
    from hil.service.workflow import load_workflow
    from protocols.service import run_service

    stores, seen = [], []
    real_open, real_pulse = RunStore.open.__func__, Bench.pulse_row

    def open_(cls, *a, **k):
        stores.append(real_open(cls, *a, **k))
        return stores[-1]

    def pulse_row(self, row, cols, amplitude, width, v_gate):
        table = stores[-1]._f["tables/pulses"][()]
        pending = table[~table["delivered"] & (table["row"] == row) & (table["polarity"] == np.sign(amplitude))
                        & np.isclose(table["amplitude"], abs(amplitude), rtol=1e-6)]
        seen.append(set(np.atleast_1d(cols).tolist()) <= set(pending["col"].tolist()))
        return real_pulse(self, row, cols, amplitude, width, v_gate)

    monkeypatch.setattr(RunStore, "open", classmethod(open_))
    monkeypatch.setattr(Bench, "pulse_row", pulse_row)
    wf, text = load_workflow(small(tmp_path, 1))
    with hil.open_bench(wf.bench) as bench:
        run_service(bench, wf, text, str(tmp_path / "r.h5"), echo=None)
    assert len(seen) > 100 and all(seen)


@pytest.mark.parametrize("script,expect", [("03_detect_and_localise.py", "localised to B("),
                                           ("04_repair.py", "a full re-map of the same arrays writes")])
def test_examples_run_as_they_stand(script, expect):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "service" / script)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert expect in res.stdout
