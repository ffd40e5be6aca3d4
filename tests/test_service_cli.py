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
    ("name: x\nservice: {n_calibrate: 1000000}\n", r"n_calibrate is at most 100,000"),
    ("name: x\nservice: {n_probe: 100000}\n", r"n_probe is at most 4,096"),
    ("name: x\nservice: {settle_s: .nan}\n", r"settle_s"),
    ("name: x\nstream: {maintain_every_hours: .inf}\n", r"stream.maintain_every_hours"),
    ("name: x\nstream: {maintain_every_hours: 1.5}\n", r"whole number of hours"),
    ("name: x\nstream: {hours: -3}\n", r"stream.hours"),
    ("name: x\nstream: {workload: images}\n", r"stream.workload"),
    ("name: x\nmapping: {n: eight}\n", r"mapping.n"),
    ("name: x\n\tbench: a\n", r"not valid YAML"),
    ("name: lab\ninstruments: {smu: {model: keithley2450}}\nwiring: {read: smu}\n", r"this is a bench file"),
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
    # the hybrid repair's decisions are in the run file and the fault-map versions' evidence, and replayed
    patched = [c for e in events if e["event"] == "repair" for c in e["patch"]["installed"]]
    evidence = [[i, *cell] for v in range(1, len(store)) for i, cells in
                enumerate(store.get(v).evidence.get("patched", [])) for cell in cells]
    assert patched and all(c in evidence for c in patched)
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
    (tmp_path / "notes.h5").write_text("lab notes\n")  # not a run file: named, and left as it is
    res = run("service", wf, "--out", tmp_path / "notes.h5", "--no-progress")
    assert res.exit_code != 0 and "notes.h5 exists but is not a readable run file" in res.output
    assert (tmp_path / "notes.h5").read_text() == "lab notes\n"
    res = run("service", wf, "--out", tmp_path / "never.h5", "--replay")
    assert res.exit_code != 0 and "never.h5: no run file to replay" in res.output
    for option, path in (("--out", tmp_path / "none" / "r.h5"), ("--png", tmp_path / "none" / "r.png")):
        args = ("--out", path) if option == "--out" else ("--out", tmp_path / "r.h5", "--png", path)
        res = run("service", wf, *args, "--no-progress")  # refused at once, not after the run
        assert res.exit_code != 0 and f"{option} {path}: the folder {tmp_path / 'none'} does not exist" in res.output
        assert not (tmp_path / "r.h5").exists()
    wf.write_text(SMALL.replace("HOURS", "1").replace("n: 8, k: 8", "n: 12, k: 12"))
    res = run("service", wf, "--out", tmp_path / "big.h5", "--no-progress")
    assert res.exit_code != 0 and "array A is 8x10; the mapping needs at least 12x14" in res.output
    assert not (tmp_path / "big.h5").exists()
    wf.write_text(SMALL.replace("HOURS", "1").replace("bench: bench.yaml", "bench: nothere.yaml"))
    res = run("service", wf, "--out", tmp_path / "x.h5", "--no-progress")
    assert res.exit_code != 0 and "bench file" in res.output and "nothere.yaml not found" in res.output
    wf.write_text(SMALL.replace("HOURS", "1").replace("bench: bench.yaml\n", ""))
    res = run("service", wf, "--out", tmp_path / "x.h5", "--no-progress")
    assert res.exit_code != 0 and "no bench" in res.output
    wf.write_text(SMALL.replace("HOURS", "1").replace("n_vmm: 1", "n_vm: 1"))
    res = run("service", wf, "--out", tmp_path / "y.h5", "--no-progress")
    assert res.exit_code != 0 and "bench_io: unknown setting 'n_vm'" in res.output
    wf.write_text(SMALL.replace("HOURS", "1").replace("n_vmm: 1", "n_vmm: 1000000"))
    res = run("service", wf, "--out", tmp_path / "z.h5", "--no-progress")
    assert res.exit_code != 0 and "bench_io.n_vmm is at most 1000" in res.output


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The 4-hour small workflow run without interruption: (run file, its fault-map versions file)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    ref = tmp / "ref.h5"
    assert run("service", small(tmp, 4), "--out", ref, "--no-progress").exit_code == 0
    return ref, str(ref) + ".faults.h5"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_resumes_to_the_uninterrupted_run(tmp_path, sig, uninterrupted):
    """SIGTERM stops it cleanly; SIGKILL leaves it marked running. Either way the resume replays the hours
    done (each decision confirmed, none taken twice) and ends with the uninterrupted run's events, timeline
    and fault-map versions."""
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
            proc.send_signal(sig)
            break
    output = proc.communicate(timeout=300)[0]
    if sig == signal.SIGTERM:
        assert proc.returncode != 0 and "interrupted by SIGTERM" in output
    else:
        assert proc.returncode == -signal.SIGKILL
    rows, _, attrs = timeline(out)
    status = "interrupted" if sig == signal.SIGTERM else "running"  # a killed process cannot say
    assert attrs["status"] == status and len(rows) < hours
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
    assert [s["status"] for s in sessions] == [status.encode(), b"complete"] and b"replay:write" in phases
    rows_ref, events_ref, _ = timeline(uninterrupted[0])
    assert events == events_ref
    assert any(e["event"] == "repair" and e["patch"]["installed"] for e in events)  # the patches resumed too
    assert np.array_equal(rows, rows_ref)
    versions, versions_ref = (FaultMapVersions(p).versions for p in (str(out) + ".faults.h5", uninterrupted[1]))
    assert [(v.operation, v.parent, v.evidence) for v in versions] == [
        (v.operation, v.parent, v.evidence) for v in versions_ref]
    assert all(np.array_equal(v.codes[a], w.codes[a]) for v, w in zip(versions, versions_ref) for a in v.codes)


def test_a_resume_mends_a_timeline_a_kill_left_out_of_step_with_the_hours_done(tmp_path, uninterrupted):
    """A SIGKILL can land between an hour's timeline row and its done mark (flushed together, not atomically).
    Here both at once: hour 2 done without its row, hour 3's row kept but not done. The resume serves hour 3
    again and writes hour 2's row from its replay: one row per hour, as the uninterrupted run."""
    import shutil

    out = tmp_path / "run.h5"
    shutil.copy(uninterrupted[0], out)
    shutil.copy(uninterrupted[1], str(out) + ".faults.h5")
    (tmp_path / "bench.yaml").write_text(BENCH)
    wf = small(tmp_path, 4)
    with h5py.File(out, "a") as f:
        done = f["cells/done"][()]
        done[3] = False
        f["cells/done"][...] = done
        rows = f["tables/fidelity"][()]
        f["tables/fidelity"][2:] = rows[3:]
        f["tables/fidelity"].resize((3,))
        f.attrs["status"] = "running"
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    rows, events, attrs = timeline(out)
    rows_ref, events_ref, _ = timeline(uninterrupted[0])
    assert attrs["status"] == "complete" and list(rows["hour"]) == [0, 1, 2, 3]
    assert np.array_equal(rows, rows_ref) and events == events_ref


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


@pytest.mark.parametrize("script,expect", [("01_aging_chip.py", "new stuck devices in 168 h"),
                                           ("02_checksum_mapping.py", "zero while B holds its reference"),
                                           ("03_detect_and_localise.py", "localised to B("),
                                           ("04_repair.py", "a full re-map of the same arrays writes")])
def test_examples_run_as_they_stand(script, expect):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "service" / script)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert expect in res.stdout


def test_an_instrument_that_dies_mid_service_is_named_and_the_run_resumes(tmp_path, monkeypatch):
    """The board, served on a socket, is switched off at the wall as the stream starts: one error naming it,
    the run file closed and marked failed (its figures still render), and once the board answers again the
    same call resumes it (a lab bench: scan, map, program and verify again, then the hour not yet served)."""
    import hil
    import yaml
    from hil.bench import BenchConnectionError, served_bench_data, served_simulation
    from hil.benchfile import load_bench_file
    from hil.service.loop import ServiceLoop
    from hil.service.workflow import parse_workflow
    from protocols.service import run_service
    from simulated_bench.instruments.server import InstrumentServer

    (tmp_path / "sim.yaml").write_text(BENCH)
    spec = load_bench_file(tmp_path / "sim.yaml")
    sim, servers = served_simulation(spec)
    data = served_bench_data(spec, servers)  # a lab bench: instruments at addresses, no chip section
    for entry in data["instruments"].values():
        entry["timeout"] = 0.3  # s: a silent instrument is noticed quickly
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    # real time on a lab bench: one 1.1 s step, no settling wait after programming
    text = SMALL.replace("HOURS", "0.0003").replace("n_probe: 8}", "n_probe: 8, settle_s: 0}")
    wf = parse_workflow(text, tmp_path)
    out = str(tmp_path / "run.h5")
    serve_hour = ServiceLoop.serve_hour

    def board_dies(self, h):
        servers.servers["board"].close()
        return serve_hour(self, h)

    monkeypatch.setattr(ServiceLoop, "serve_hour", board_dies)
    try:
        with pytest.raises(BenchConnectionError, match=r"^board \(rram-hil-ab64 at socket://127.0.0.1:\d+\) did not "
                                                       r"answer .*outputs switched off on smu, pulser"):
            with hil.open_bench(wf.bench) as bench:
                run_service(bench, wf, text, out, echo=None)
        rows, events, attrs = timeline(out)
        assert attrs["status"] == "failed" and len(rows) == 0 and [e["event"] for e in events][-1] == "verify"
        assert not sim.emulators["smu"].output and not sim.emulators["pulser"].channels[1].output
        res = run("report", out, "--out", tmp_path / "report.html")  # the figures of a run that never served
        assert res.exit_code == 0 and (tmp_path / "report.html").stat().st_size > 0
        monkeypatch.setattr(ServiceLoop, "serve_hour", serve_hour)
        servers.servers["board"] = InstrumentServer(sim.emulators["board"], servers.servers["board"].port)
        with hil.open_bench(wf.bench) as bench:
            run_service(bench, wf, text, out, echo=None)
        rows, events, attrs = timeline(out)
        kinds = [e["event"] for e in events]
        assert attrs["status"] == "complete" and list(rows["hour"]) == [0] and kinds.count("resume") == 1
        assert kinds[kinds.index("resume") + 1:kinds.index("resume") + 4] == ["scan_array", "scan_array", "program"]
        assert kinds.count("hour") == 1
    finally:
        servers.close()
