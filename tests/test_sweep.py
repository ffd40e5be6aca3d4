"""hil.sweep on real Dask clusters: a LocalCluster of processes, and a scheduler plus workers
started as separate processes on 127.0.0.1 reached through --scheduler tcp://...

Every sweep's table is compared with a serial run of the same spec: the same rows,
bit for bit (timings aside), whatever ran where and whoever died.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hil.sweep import SpecError, SweepSpec, TableMismatch, read_table, run_sweep, same_results

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
TIMINGS = ("cpu_s",)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def spec(tmp_path, name="t", **kw) -> SweepSpec:
    base = dict(function="sweep_studies:tiny_factorization", out=str(tmp_path / name),
                grid={"rate": [0.0, 0.2], "k": [6, 8]}, seeds=[0, 1])
    base.update(kw)
    return SweepSpec(**base)


@pytest.fixture(scope="module")
def serial_table(tmp_path_factory):
    s = spec(tmp_path_factory.mktemp("serial"))
    report = run_sweep(s, scheduler="serial", progress=False)
    assert report.complete and report.ran == 8
    return read_table(s.out)


@pytest.fixture(scope="module")
def local_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        yield client


# ---------------------------------------------------------------------------- spec files
def test_spec_expands_grid_points_and_seeds(tmp_path):
    s = SweepSpec.from_dict({"function": "m:f", "out": "o", "fixed": {"n": 3}, "grid": {"a": [1, 2]},
                             "points": [{"b": "x"}, {"b": "y"}], "seeds": 2}, str(tmp_path))
    pts = s.expand()
    assert len(pts) == 8
    assert pts[0] == {"n": 3, "b": "x", "a": 1, "seed": 0}
    assert s.out == str(tmp_path / "o")


@pytest.mark.parametrize("data, message", [
    ({"out": "o"}, "needs 'function'"),
    ({"function": "m:f", "out": "o", "gird": {}}, "unknown key"),
    ({"function": "m:f", "out": "o", "grid": {"a": []}}, "non-empty list"),
    ({"function": "m:f", "out": "o", "seeds": 0}, "positive count"),
    ({"function": "m:f", "out": "o", "seeds": 2, "fixed": {"seed": 1}}, "seeds either"),
    ({"function": "m:f", "out": "o", "points": [{"a": 1}, {"a": 1}]}, "more than once"),
    ({"function": "m:f", "out": "o", "grid": {"a": [1]}, "fixed": {"a": 2}}, "both fixed and swept"),
])
def test_bad_spec_is_refused(data, message):
    with pytest.raises(SpecError, match=message):
        SweepSpec.from_dict(data).expand()


def test_unknown_function_fails_before_running(tmp_path):
    with pytest.raises(SpecError, match="cannot import"):
        run_sweep(spec(tmp_path, function="sweep_studies:nope"), scheduler="serial", progress=False)


# ---------------------------------------------------------------------------- serial
def test_each_point_is_reproducible_alone(serial_table):
    import sweep_studies

    row = serial_table.iloc[5]
    again = sweep_studies.tiny_factorization(rate=row["rate"], k=int(row["k"]), seed=int(row["seed"]))
    assert again["one_minus_cos"] == row["one_minus_cos"]
    assert list(serial_table["_index"]) == list(range(8))
    # the physics: with no stuck device the rank-6/8 fit of Re(DFT8) is exact
    clean = serial_table[serial_table["rate"] == 0.0]
    assert (clean["stuck"] == 0).all() and (clean["one_minus_cos"] < 1e-9).all()


def test_table_opens_with_plain_pandas(serial_table, tmp_path):
    s = spec(tmp_path, function="sweep_studies:rows_per_seed", grid={}, seeds=[0, 1, 2])
    run_sweep(s, scheduler="serial", progress=False)
    df = pd.read_parquet(s.out)  # no hil needed to read the results
    assert len(df) == 9 and set(df["draw"]) == {0, 1, 2}
    assert json.loads(Path(s.out, "_sweep.json").read_text())["function"] == "sweep_studies:rows_per_seed"


def test_stopped_sweep_resumes_without_redoing_points(serial_table, tmp_path):
    s = spec(tmp_path)
    seen = []

    def stop_after_three(rows):
        seen.append(rows[0]["_point"])
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, scheduler="serial", progress=False, on_row=stop_after_three)
    assert len(read_table(s.out)) == 3  # what finished is on disk
    again = []
    report = run_sweep(s, scheduler="serial", progress=False, on_row=lambda rows: again.append(rows[0]["_point"]))
    assert report.skipped == 3 and report.ran == 5 and not set(again) & set(seen)
    assert same_results(read_table(s.out), serial_table, ignore=TIMINGS)


def test_failed_points_are_reported_and_retried(tmp_path):
    s = SweepSpec(function="sweep_studies:fails_on_odd", out=str(tmp_path / "f"), seeds=[0, 1, 2, 3])
    report = run_sweep(s, scheduler="serial", progress=False, log=lambda m: None)
    assert report.ran == 2 and len(report.failed) == 2 and not report.complete
    assert "seed 1 is odd" in "".join(report.failed.values())
    report = run_sweep(s, scheduler="serial", progress=False, log=lambda m: None)
    assert report.skipped == 2 and len(report.failed) == 2  # only the failed ones ran again


def test_table_of_another_function_is_not_mixed(serial_table, tmp_path):
    run_sweep(spec(tmp_path), scheduler="serial", progress=False)
    with pytest.raises(TableMismatch):
        run_sweep(spec(tmp_path, function="sweep_studies:rows_per_seed", grid={}), scheduler="serial",
                  progress=False)


# ---------------------------------------------------------------------------- LocalCluster
def test_local_cluster_matches_serial(serial_table, local_client, tmp_path):
    s = spec(tmp_path)
    report = run_sweep(s, client=local_client, progress=False)
    assert report.complete and report.ran == 8
    workers = set(local_client.run(os.getpid).values())
    assert len(workers) == 2 and os.getpid() not in workers
    assert same_results(read_table(s.out), serial_table, ignore=TIMINGS)


def test_worker_killed_mid_sweep_loses_nothing(serial_table, local_client, tmp_path):
    s = spec(tmp_path, fixed={"delay": 0.4})
    pids = list(local_client.run(os.getpid).values())
    killed = []

    def kill_one(rows):
        if not killed:  # after the first row lands, a worker dies mid-point
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    report = run_sweep(s, client=local_client, progress=False, on_row=kill_one)
    assert killed and report.complete and report.ran == 8
    got = read_table(s.out).drop(columns="delay")
    assert same_results(got, serial_table, ignore=TIMINGS + ("_point",))  # the key includes the delay
    assert pids[0] not in local_client.run(os.getpid).values()  # it really died (the nanny started a new one)


# ---------------------------------------------------------------------------- tcp://
@pytest.fixture
def tcp_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, on free ports."""
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
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        yield address, env
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_hil_sweep_on_a_tcp_scheduler(serial_table, tcp_cluster, tmp_path):
    address, env = tcp_cluster
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"function": "sweep_studies:tiny_factorization", "out": "table",
                                         "grid": {"rate": [0.0, 0.2], "k": [6, 8]}, "seeds": 2}, sort_keys=False))
    out = subprocess.run([sys.executable, "-m", "hil", "sweep", str(spec_file), "--scheduler", address,
                          "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"Dask scheduler {address}: 2 worker(s)" in out.stdout
    assert same_results(read_table(tmp_path / "table"), serial_table, ignore=TIMINGS)
    again = subprocess.run([sys.executable, "-m", "hil", "sweep", str(spec_file), "--scheduler", address,
                            "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "8 already in" in again.stdout and "0 point(s) run" in again.stdout


def test_hil_sweep_refuses_a_bad_scheduler_and_a_bad_file(tmp_path):
    from click.testing import CliRunner

    from hil.cli import cli

    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("function: sweep_studies:tiny_factorization\nout: t\nseeds: 1\n")
    out = CliRunner().invoke(cli, ["sweep", str(spec_file), "--scheduler", "tcp://nohost"])
    assert out.exit_code != 0 and "tcp://HOST:PORT" in out.output
    spec_file.write_text("function: sweep_studies:tiny_factorization\nout: t\nseeds: [1, 1.5]\n")
    out = CliRunner().invoke(cli, ["sweep", str(spec_file), "--scheduler", "serial"])
    assert out.exit_code != 0 and "seeds must be" in out.output
    spec_file.write_text("function: [unclosed\n")
    out = CliRunner().invoke(cli, ["sweep", str(spec_file), "--scheduler", "serial"])
    assert out.exit_code != 0 and "not valid YAML" in out.output


def test_unstorable_result_fails_that_point_only(tmp_path):
    s = SweepSpec(function="sweep_studies:returns_object", out=str(tmp_path / "o"), seeds=[0, 1])
    report = run_sweep(s, scheduler="serial", progress=False, log=lambda m: None)
    assert report.ran == 1 and len(report.failed) == 1 and "cannot store" in "".join(report.failed.values())


def test_example_sweep_file_is_valid():
    s = SweepSpec.load(ROOT / "examples" / "sweeps" / "fault_scan.yaml")
    assert len(s.expand()) == 12 and s.out == str(ROOT / "out" / "sweeps" / "example_fault_scan")


def test_killed_hil_sweep_resumes(serial_table, tmp_path):
    """``kill PID`` mid-sweep: the rows written survive, the same command finishes the rest."""
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"function": "sweep_studies:tiny_factorization", "out": "table",
                                         "grid": {"rate": [0.0, 0.2], "k": [6, 8]}, "seeds": 2,
                                         "fixed": {"delay": 0.3}}, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    cmd = [sys.executable, "-m", "hil", "sweep", str(spec_file), "--scheduler", "serial", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(read_table(tmp_path / "table")) < 2:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "finished points are in the table" in err, err  # 128 + SIGTERM
    n_first = len(read_table(tmp_path / "table"))
    assert 2 <= n_first < 8
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and f"{8 - n_first} point(s) run, {n_first} already done" in again.stdout
    got = read_table(tmp_path / "table").drop(columns="delay")
    assert same_results(got, serial_table, ignore=TIMINGS + ("_point",))


def test_finished_sweep_is_one_file_and_reads_the_same(tmp_path):
    from hil.sweep.table import ResultTable, compact

    s = spec(tmp_path, function="sweep_studies:rows_per_seed", grid={}, seeds=[0, 1, 2, 3])
    table = ResultTable(s.out, s.manifest())
    for seed in range(4):  # four parts, as a slow sweep writes them, one with a repeat of the first
        table.add([{"_point": f"p{seed}", "_index": seed, "_row": 0, "seed": seed, "v": [seed]}])
        table.flush()
    table.add([{"_point": "p0", "_index": 0, "_row": 0, "seed": 0, "v": [0]}])
    table.flush()
    before = read_table(s.out, decode=True)
    assert len(before) == 4 and before["v"].tolist() == [[0], [1], [2], [3]]
    assert compact(s.out) == 4
    assert len(list(Path(s.out).glob("part-*.parquet"))) == 1
    after = read_table(s.out, decode=True)
    assert same_results(before, after)
    assert len(pd.read_parquet(s.out)) == 4
