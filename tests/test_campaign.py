"""Multi-bench campaigns: three simulated benches as Dask workers with bench resources.

Each chip runs only on a bench and one at a time per bench; a pinned chip runs on its
station; results equal a serial run of the same steps; a bench whose worker dies leaves
its chip unfinished with its run file marked, and a re-run finishes only that chip.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from hil.commands.campaign_cmd import STEPS, scan_step
from hil.faultmap import FaultMap
from hil.sweep import SpecError
from hil.sweep.campaign import LEASE, CampaignSpec, bench_workers, local_benches, run_campaign

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
BENCHES = ["station-1", "station-2", "station-3"]


def chip_sim(seed: int) -> dict:
    return {"seed": seed, "arrays": [{"name": "A", "rows": 8, "cols": 8}],
            "faults": {"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": seed}}


def campaign_dict(out, n_chips=6, steps=None, pin=None) -> dict:
    chips = [{"id": f"D{i:02d}", "sim": chip_sim(i)} for i in range(n_chips)]
    if pin:
        chips[0]["bench"] = pin
    return {"name": "lot", "out": str(out), "benches": BENCHES, "chips": chips,
            "steps": steps or [{"protocol": "scan"}, {"protocol": "read", "params": {"n_avg": 1}}]}


@pytest.fixture(scope="module")
def benches():
    from distributed import Client

    # station-2 opens a bench file (a simulated one), the others the embedded simulated bench
    with local_benches(BENCHES, {"station-2": str(ROOT / "examples" / "benches" / "simulated.yaml")}) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(3, timeout=60)
        yield cluster, client


# ------------------------------------------------------------------------ the file
@pytest.mark.parametrize("change, message", [
    ({"steps": [{"protocol": "scna"}]}, "unknown protocol 'scna'"),
    ({"steps": [{"protocol": "scan"}, {"protocol": "scan"}]}, "names must differ"),
    ({"chips": [{"id": "A"}, {"id": "A"}]}, "unique"),
    ({"chips": [{"id": "../x"}]}, "cannot name a folder"),
    ({"chips": [{"id": "A", "wafer": 3}]}, "unknown key"),
    ({"stpes": []}, "unknown key"),
])
def test_bad_campaign_file_is_refused(tmp_path, change, message):
    data = {**campaign_dict(tmp_path), **change}
    with pytest.raises(SpecError, match=message):
        CampaignSpec.from_dict(data, catalog=STEPS)


# ------------------------------------------------------------------------ three benches
def test_three_benches_run_each_chip_once_one_at_a_time(benches, tmp_path):
    cluster, client = benches
    assert sorted(bench_workers(client)) == BENCHES
    spec = CampaignSpec.from_dict(campaign_dict(tmp_path / "lot", pin="station-3"), catalog=STEPS)
    report = run_campaign(spec, client, progress=False, log=lambda m: None)
    assert report.complete, report.unfinished
    steps = [s for r in report.chips.values() for s in r["steps"]]
    used = {s["bench"] for s in steps}
    assert used <= set(BENCHES) and len(used) >= 2  # the lot was shared out
    assert report.chips["D00"]["bench"] == "station-3"  # pinned chip on its station
    for b in used:  # one chip at a time per bench: a bench's chips never overlap in time
        spans = sorted((min(s["started"] for s in r["steps"]), max(s["ended"] for s in r["steps"]))
                       for r in report.chips.values() if r["bench"] == b)
        assert all(a[1] <= c[0] for a, c in zip(spans, spans[1:]))
    # identical to a serial run of the same step on the same chips, in this process
    import hil

    for i in range(6):
        with hil.open_bench(chip=chip_sim(i)) as bench:
            ref = scan_step(bench, out=str(tmp_path / f"ref{i}.h5"), chip_id=f"D{i:02d}")
        got = report.chips[f"D{i:02d}"]["steps"][0]
        assert np.array_equal(FaultMap.load(got["summary"]["faultmap"]).codes, FaultMap.load(ref["faultmap"]).codes)
        assert {k: v for k, v in got["summary"].items() if k != "faultmap"} == \
               {k: v for k, v in ref.items() if k != "faultmap"}
        with h5py.File(got["run_file"]) as f:
            assert f.attrs["status"] == "complete" and f.attrs["chip_id"] == f"D{i:02d}"
    # the physics: the scan finds the chip's stuck devices (20 % of 64 cells drawn stuck)
    assert all(10 <= r["steps"][0]["summary"]["stuck_off"] + r["steps"][0]["summary"]["stuck_on"] <= 30
               for r in report.chips.values())
    # a second run has nothing left to do
    again = run_campaign(spec, client, progress=False, log=lambda m: None)
    assert again.complete and all(r.get("skipped") for r in again.chips.values())


def test_bench_worker_killed_mid_step_leaves_chip_unfinished_then_rerun_finishes_it(benches, tmp_path):
    cluster, client = benches
    out = tmp_path / "lot"
    steps = [{"name": "slow", "protocol": "sweep_studies:slow_read_step", "params": {"delay": 0.15}}]
    spec = CampaignSpec.from_dict(campaign_dict(out, n_chips=4, steps=steps, pin="station-2"), catalog=STEPS)
    victim = bench_workers(client)["station-2"]
    pid = client.run(os.getpid, workers=[victim])[victim]
    killed = []

    def kill_when_station2_is_mid_step():
        lease = out / "D00" / LEASE
        deadline = time.time() + 60
        while time.time() < deadline:
            run_file = out / "D00" / "00_slow.h5"
            if lease.exists() and run_file.exists():
                time.sleep(0.4)  # a few rows in
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.02)

    t = threading.Thread(target=kill_when_station2_is_mid_step)
    t.start()
    report = run_campaign(spec, client, progress=False, log=lambda m: None, grace_s=30)
    t.join()
    assert killed
    assert report.unfinished == ["D00"], report.chips
    assert "station-2" in report.chips["D00"]["error"]
    with h5py.File(out / "D00" / "00_slow.h5") as f:  # marked, with the rows it had finished
        assert f.attrs["status"] == "interrupted"
        rows_before = int(f["cells/done"][()].all(axis=1).sum())
    assert 0 < rows_before < 8
    assert not (out / "D00" / LEASE).exists()
    nanny = next(w for w in cluster.workers.values() if getattr(w, "bench_name", None) == "station-2")
    assert any("station-2: outputs switched off" in m for m in nanny.stops)  # the nanny made the bench safe
    summary = json.loads((out / "campaign.json").read_text())
    assert summary["unfinished"] == ["D00"]
    client.wait_for_workers(3, timeout=60)  # the nanny brought station-2 back
    again = run_campaign(spec, client, progress=False, log=lambda m: None)
    assert again.complete
    assert [c for c, r in again.chips.items() if not r.get("skipped")] == ["D00"]  # only the unfinished chip
    step = again.chips["D00"]["steps"][0]
    assert step["bench"] == "station-2" and step["summary"]["rows_resumed"] == rows_before
    with h5py.File(out / "D00" / "00_slow.h5") as f:
        assert f.attrs["status"] == "complete" and f["cells/done"][()].all()


def test_chip_pinned_to_an_absent_bench_is_reported(benches, tmp_path):
    _, client = benches
    spec = CampaignSpec.from_dict(campaign_dict(tmp_path / "lot", n_chips=1, pin="station-9"), catalog=STEPS)
    report = run_campaign(spec, client, progress=False, log=lambda m: None)
    assert report.unfinished == ["D00"] and "station-9" in report.chips["D00"]["error"]


# ------------------------------------------------------------------------ the command line, over tcp://
def test_hil_campaign_over_tcp_with_bench_workers(tmp_path):
    """``hil bench-worker`` processes on 127.0.0.1 serve ``hil campaign --scheduler tcp://...``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--dashboard-address", ":0", "--scheduler-file", str(sched_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for name in BENCHES[:2]:
            procs.append(subprocess.Popen([sys.executable, "-m", "hil", "bench-worker", "--scheduler", address,
                                           "--name", name], env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
            assert sorted(bench_workers(c)) == BENCHES[:2]
        path = tmp_path / "campaign.yaml"
        path.write_text(yaml.safe_dump(campaign_dict("lot", n_chips=3)))
        run = subprocess.run([sys.executable, "-m", "hil", "campaign", str(path), "--scheduler", address,
                              "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "3/3 chips complete" in run.stdout
        summary = json.loads((tmp_path / "lot" / "campaign.json").read_text())
        assert summary["unfinished"] == [] and len(summary["chips"]) == 3
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_example_campaign_file_is_valid():
    spec = CampaignSpec.load(ROOT / "examples" / "campaigns" / "wafer_lot.yaml", STEPS)
    assert [s.name for s in spec.steps] == ["scan", "read"] and len(spec.chips) == 6
    assert spec.chips[-1].bench == "station-3" and spec.steps[0].function == STEPS["scan"]


def test_step_adapters_run_the_protocols(tmp_path):
    """Every catalog step runs its protocol with a run file and returns a JSON-able summary."""
    import hil
    from hil.commands.campaign_cmd import form_step, program_step, read_step

    with hil.open_bench(chip={"seed": 3, "arrays": [{"name": "A", "rows": 4, "cols": 4}]}) as bench:
        formed = form_step(bench, out=str(tmp_path / "form.h5"), chip_id="X")
        read = read_step(bench, out=str(tmp_path / "read.h5"), chip_id="X", n_avg=1)
        prog = program_step(bench, out=str(tmp_path / "prog.h5"), chip_id="X", g_target=50e-6)
        with pytest.raises(ValueError, match="unknown parameter"):
            read_step(bench, out=str(tmp_path / "r2.h5"), chip_id="X", n_avgs=2)
    assert formed["formed"] + formed["never_formed"] == 16
    assert 0 < read["g_median_S"] <= read["g_max_S"]
    assert prog["cells"] == 16 and prog["converged"] >= 14  # ISPP reaches 50 uS on a fault-free chip
    json.dumps([formed, read, prog])
    for name in ("form", "read", "prog"):
        with h5py.File(tmp_path / f"{name}.h5") as f:
            assert f.attrs["status"] == "complete" and f.attrs["chip_id"] == "X"
