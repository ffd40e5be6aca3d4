"""``hil service WORKFLOW.yaml``: validation, a short run, replay, resume after SIGTERM, fault-map versions."""
import json
import os
import signal
import subprocess
import sys
import time
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
SMALL = """name: small
seed: 1
chip:
  initial_fault_rate: 0.05
  aging: {stuck: {per_hour: 2.0e-3}, drift: {}}
mapping: {target: dft_real, n: 16, k: 16}
stream: {workload: random, vectors_per_hour: 40, hours: HOURS}
"""


def run(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return res


@pytest.mark.parametrize("text,match", [
    ("name: x\nchip: {initial_fault_rate: 0.7}\n", r"chip.initial_fault_rate"),
    ("name: x\nmaping: {}\n", r"maping"),
    ("name: x\nchip: {aging: {stuck: {per_hur: 1}}}\n", r"per_hur"),
    ("name: x\nstream: {workload: digits}\n", r"digits"),
    ("name: x\nmapping: {target: file}\n", r"needs path"),
    ("- a list\n", r"mapping with name"),
])
def test_workflow_errors_name_the_field(text, match):
    with pytest.raises(WorkflowError, match=match):
        parse_workflow(text)


def test_service_run_replay_and_versions(tmp_path):
    wf = tmp_path / "wf.yaml"
    wf.write_text(SMALL.replace("HOURS", "4"))
    out = tmp_path / "run.h5"
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    assert "hour    4:" in res.output and (tmp_path / "run.png").exists()
    rows, events, attrs = timeline(out)
    assert attrs["status"] == "complete" and len(rows) == 4 and int(attrs["hours_done"]) == 4
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["scan_array", "scan_array"] and "program" in kinds and "verify" in kinds
    # an rram-hil run: the live view shows its fidelity, alarms and repairs
    from hil.view.figures import RunPage
    from hil.view.reader import read_snapshot

    snap = read_snapshot(out)
    assert snap.protocol == "service" and int(snap.done.sum()) == 4
    page = RunPage()
    page.update(snap)
    assert page.fig_fidelity.visible and page.fig_events.visible
    store = FaultMapVersions(str(out) + ".faults.h5")
    assert store.get(0).operation == "scan"
    assert len(store) == 1 + sum(e["event"] == "faultmap_version" for e in events)
    assert rows["faults_found"][-1] >= len(store) - 1 > 0  # the aging chip grew stuck devices and they were found
    repairs = [e for e in events if e["event"] == "repair"]
    assert repairs and all(e["writes"] < e["full_remap_writes"] for e in repairs)  # every repair beside a re-map
    res = run("faults", "diff", f"{out}.faults.h5@0", f"{out}.faults.h5@-1")
    assert res.exit_code == 0 and "[version 0 (scan)]" in res.output and "working->stuck_" in res.output
    res = run("faults", "history", f"{out}.faults.h5")
    assert res.output.splitlines()[0].startswith("v0") and len(res.output.splitlines()) == len(store)
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


def test_service_refuses_another_workflow_in_the_same_file(tmp_path):
    wf = tmp_path / "wf.yaml"
    wf.write_text(SMALL.replace("HOURS", "1"))
    out = tmp_path / "run.h5"
    assert run("service", wf, "--out", out, "--no-progress").exit_code == 0
    wf.write_text(SMALL.replace("HOURS", "2").replace("seed: 1", "seed: 2"))
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code != 0 and "other parameters" in res.output


def test_sigterm_then_resume_gives_the_uninterrupted_run(tmp_path):
    wf = tmp_path / "wf.yaml"
    wf.write_text(SMALL.replace("HOURS", "30"))
    out = tmp_path / "run.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hil", "service", str(wf), "--out", str(out), "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("hour    2:"):
            proc.send_signal(signal.SIGTERM)
            break
    proc.communicate(timeout=300)
    rows, _, attrs = timeline(out)
    assert attrs["status"] == "interrupted" and 2 <= len(rows) < 30
    with h5py.File(out, "r") as f:  # an rram-hil run: hours are its rows, for hil view
        assert f.attrs["protocol"] == "service" and f["cells/done"][()].sum() == len(rows)
    res = run("service", wf, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    rows, events, attrs = timeline(out)
    assert attrs["status"] == "complete" and list(rows["hour"]) == list(range(30))
    ref = tmp_path / "ref.h5"
    assert run("service", wf, "--out", ref, "--no-progress").exit_code == 0
    rows_ref, events_ref, _ = timeline(ref)
    assert events == events_ref
    assert np.array_equal(rows, rows_ref)


@pytest.mark.parametrize("script,expect", [("03_detect_and_localise.py", "localised to B("),
                                           ("04_repair.py", "a full re-map of the same arrays writes")])
def test_examples_run_as_they_stand(script, expect):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "service" / script)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert expect in res.stdout
