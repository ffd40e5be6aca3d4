"""Live view: page load, update latency from a row written to it being visible, and the writer's slowdown.

The writer is ``hil program`` (ISPP, 3 %) on a 16x16 simulated chip, in a process of its own
that logs the wall-clock time of every flush of its run file (one flush per row). The view is
``hil view`` started as ``--view`` starts it (its own process, lower priority), watched by a
headless Chromium; the page notes the browser's clock at every change of its progress line
(a listener on the Bokeh model, read out at the end, so the measurement adds no polling).

- ``page_load_s``: ``driver.get`` until the page shows the finished run's cells (median of 3);
- ``update_latency_s_*``: for every first-pass row, from the writer's flush to the first time
  the page shows at least that many cells done;
- ``writer_slowdown``: median over alternating pairs of the run's wall time with the view open
  (and a browser on it) divided by the same run without; ``writer_cpu_ratio`` the same for the
  writer's CPU time, which shows whether the view makes the writer do more work (locks, I/O)
  rather than only competing with it for a core;
- ``cells_equal_file``: the page's conductance, code and pulse maps equal the file's at the end.

The machine is shared (2 cores, other jobs): its load average is recorded with the figures.
Run: ``nice -n 10 python3 -m benchmarks.live_view`` -> ``benchmarks/results/live_view.json``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks._common import RESULTS, write_results
from hil.bench import simulated_bench_file
from hil.runstore import read_run
from hil.view.launch import ViewProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import chrome, page_state, record_progress, recorded_progress, wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N = 16
PAIRS = 3
_WRITER = """
import sys, time
import hil.runstore as rs
log = open(sys.argv[1], "w", buffering=1)
_flush = rs.RunStore.flush
def flush(self):
    _flush(self)
    log.write(f"{time.time():.6f} {int(self._f['cells/done'][()].sum())}\\n")
rs.RunStore.flush = flush
from hil.cli import cli
cli(sys.argv[2:])
"""


def _setup(tmp: Path) -> tuple[str, str]:
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": N, "cols": N}], "seed": 3,
                         "faults": {"kind": "random", "rate_off": 0.03, "rate_on": 0.03, "seed": 4}})
    bench = tmp / "bench.yaml"
    bench.write_text(yaml.safe_dump(spec))
    rng = np.random.default_rng(1)
    np.save(tmp / "t.npy", np.exp(rng.uniform(np.log(10e-6), np.log(1e-3), (N, N))))
    return str(bench), str(tmp / "t.npy")


def _writer(bench: str, targets: str, out: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", _WRITER, str(log), "program", "--bench", bench, "--targets", targets,
           "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _flushes(log: Path) -> list[tuple[float, int]]:
    return [(float(t), int(d)) for t, d in (line.split() for line in log.read_text().splitlines())]


def _first_pass(flushes: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """(time, cells done) of the flushes that finished rows of the first pass."""
    out, last = [], 0
    for t, d in flushes:
        if d < last:
            break  # the second pass re-opens cells: "done" is no longer a row counter
        if d > last:
            out.append((t, d))
            last = d
    return out


def _wait(proc: subprocess.Popen) -> float:
    """Wait for the writer; its CPU time (user + system, s), which the machine's load does not inflate."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read())
    return usage.ru_utime + usage.ru_stime


def run_plain(bench: str, targets: str, tmp: Path, k: int) -> tuple[float, float]:
    out, log = tmp / f"plain{k}.h5", tmp / f"plain{k}.log"
    t0 = time.perf_counter()
    cpu = _wait(_writer(bench, targets, out, log))
    return time.perf_counter() - t0, cpu


def run_viewed(bench: str, targets: str, tmp: Path, k: int, driver) -> dict:
    out, log = tmp / f"viewed{k}.h5", tmp / f"viewed{k}.log"
    with ViewProcess(out) as view:
        driver.get(view.url)
        wait_for(lambda: page_state(driver) is not None)
        record_progress(driver)
        t0 = time.perf_counter()
        cpu = _wait(_writer(bench, targets, out, log))
        wall = time.perf_counter() - t0
        final = wait_for(lambda: (s := page_state(driver, ("conductance", "codes", "pulses")))
                         and s["status"] == "complete" and s, timeout_s=60)
        seen = recorded_progress(driver)
        if k == 0:
            driver.save_screenshot(str(RESULTS / "live_view.png"))
        load = []
        for _ in range(3):
            t = time.perf_counter()
            driver.get(view.url)
            wait_for(lambda: (s := page_state(driver)) and s["status"] == "complete", every_s=0.01)
            load.append(time.perf_counter() - t)
    run = read_run(out)
    equal = (np.array_equal(final["conductance"], run["cells"]["g_final"] * 1e6, equal_nan=True)
             and np.array_equal(final["codes"], run["cells"]["status"])
             and np.array_equal(final["pulses"], run["cells"]["pulses"]))
    lat, rows = [], _first_pass(_flushes(log))
    for t_w, d_w in rows:
        shown = [t for t, d, st in seen if t >= t_w - 0.05 and d >= d_w]  # same clock; 50 ms of slack
        if shown:
            lat.append(max(shown[0] - t_w, 0.0))
    return {"wall": wall, "cpu": cpu, "latency": lat, "equal": bool(equal), "load": load,
            "rows_not_seen": len(rows) - len(lat)}


def main() -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        bench, targets = _setup(tmp)
        driver = chrome(1000, 1400)
        try:
            plain, viewed = [], []
            for k in range(PAIRS):  # alternating order, so a drift of the machine's load cancels
                if k % 2:
                    viewed.append(run_viewed(bench, targets, tmp, k, driver))
                    plain.append(run_plain(bench, targets, tmp, k))
                else:
                    plain.append(run_plain(bench, targets, tmp, k))
                    viewed.append(run_viewed(bench, targets, tmp, k, driver))
                print(f"pair {k}: without view {plain[-1][0]:.2f} s, with view {viewed[-1]['wall']:.2f} s, "
                      f"median latency {np.median(viewed[-1]['latency']):.3f} s", flush=True)
        finally:
            driver.quit()
    lat = np.concatenate([v["latency"] for v in viewed])
    res = {
        "page_load_s": float(np.median(np.concatenate([v["load"] for v in viewed]))),
        "update_latency_s_median": float(np.median(lat)),
        "update_latency_s_p95": float(np.percentile(lat, 95)),
        "writer_slowdown": float(np.median([v["wall"] / p[0] for v, p in zip(viewed, plain)])),
        "writer_cpu_ratio": float(np.median([v["cpu"] / p[1] for v, p in zip(viewed, plain)])),
        "cells_equal_file": all(v["equal"] for v in viewed),
        "rows_timed": int(lat.size),
        "rows_not_seen": int(sum(v["rows_not_seen"] for v in viewed)),
        "writer_wall_s_without_view": [p[0] for p in plain],
        "writer_wall_s_with_view": [v["wall"] for v in viewed],
        "writer_cpu_s_without_view": [p[1] for p in plain],
        "writer_cpu_s_with_view": [v["cpu"] for v in viewed],
        "array": f"{N}x{N}, hil program (ISPP 3 %) on the simulated bench",
        "poll_ms": 200,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "cpus": os.cpu_count(),
    }
    print({k: res[k] for k in ("page_load_s", "update_latency_s_median", "update_latency_s_p95", "writer_slowdown",
                               "cells_equal_file")})
    print(f"saved {write_results('live_view', res)}")


if __name__ == "__main__":
    main()
