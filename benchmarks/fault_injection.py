"""Fault injection: interrupt ``hil program`` and ``hil scan`` on a served bench, kill or hang an
instrument, and fuzz the command line; write benchmarks/results/fault_injection.json.

Every trial gets a fresh served chip (the same seed): the instruments are served on loopback
ports in this process by the servers ``hil sim serve`` uses, and the command runs in a
subprocess that reaches them over TCP, as on a real bench. This process sees the chip: which
outputs are on, and every pulse each cell received, which the run file's pulse records are
compared with (``lost_pulse_records``: pulses the chip received that the file lacks;
``duplicate_records``: records confirmed as delivered beyond what the chip received;
``unconfirmed_records``: write-ahead records of the pulse(s) in flight when a SIGKILL
landed). Each interrupted run is resumed by the same command and compared with an
uninterrupted run on a fresh chip (same converged cells for program, same fault map for scan).

The chip is 6x6 (program) or 24x24 (scan) with 10 % stuck-OFF and 10 % stuck-ON cells and no read noise or
cycle-to-cycle variation, so a difference from the uninterrupted run can only come from
the interruption. Run: ``nice -n 10 python3 -m benchmarks.fault_injection [--trials 10]``.
"""
from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.served import ServedBench, hil_command, start
from hil.bench import simulated_bench_file
from hil.runstore import read_run

RESULTS = Path(__file__).resolve().parent / "results"
#: chip size per protocol: a scan is quick per row, so its chip is larger (a longer window to interrupt)
SIZES = {"program": 6, "scan": 24}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def chip_file(tmp: Path, n: int) -> Path:
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": n, "cols": n}], "seed": 5,
                         "faults": {"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": 2},
                         "variation": {"d2d_rate_sigma": 0.3, "d2d_bound_sigma": 0.01, "c2c_rate_sigma": 0.0,
                                       "read_noise_scale": 0.0}})
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def command(protocol: str, bench: Path, tmp: Path) -> tuple[list[str], Path]:
    if protocol == "program":
        n = SIZES[protocol]
        np.save(tmp / "t.npy", np.full((n, n), 150e-6))
        out = tmp / "p.h5"
        return hil_command("program", "--bench", bench, "--targets", tmp / "t.npy", "--out", out, "--no-progress"), out
    out = tmp / "faults.h5"
    return hil_command("scan", "--bench", bench, "--out", out, "--no-progress"), tmp / "faults.run.h5"


def outcome(protocol: str, tmp: Path, run_file: Path):
    """What a finished run produced: the converged mask (program) or the fault codes (scan)."""
    if protocol == "program":
        return read_run(run_file)["cells"]["status"] == 1
    from hil.faultmap import FaultMap

    return FaultMap.load(tmp / "faults.h5").export_codes()


def record_check(run_file: Path, served: ServedBench) -> dict:
    p = read_run(run_file)["tables"]["pulses"]
    recorded = np.zeros(served.delivered.shape, np.int64)
    np.add.at(recorded, (p["row"], p["col"]), 1)
    sure = np.zeros_like(recorded)
    np.add.at(sure, (p["row"][p["delivered"]], p["col"][p["delivered"]]), 1)
    return {"lost_pulse_records": int(np.maximum(served.delivered - recorded, 0).sum()),
            "duplicate_records": int(np.maximum(sure - served.delivered, 0).sum()),
            "unconfirmed_records": int((~p["delivered"]).sum())}


def _status_now(run_file: Path) -> str | None:
    """The status of a run file another process is writing (None while it cannot be read)."""
    import h5py

    try:
        with h5py.File(run_file, "r", locking=False) as f:
            return str(f.attrs.get("status", ""))
    except (OSError, KeyError):
        return None


def status_of(run_file: Path) -> str:
    if not run_file.exists():
        return "no file"
    try:
        return str(read_run(run_file)["status"])
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"


def reference(protocol: str, root: Path) -> tuple[float, float, object]:
    """Uninterrupted run: (s until its run file appeared, s until the run was complete, its outcome)."""
    tmp = Path(tempfile.mkdtemp(dir=root))
    served = ServedBench(chip_file(tmp, SIZES[protocol]), tmp)
    try:
        cmd, run_file = command(protocol, served.path, tmp)
        t0 = time.perf_counter()
        proc = start(cmd)
        t_file = t_done = None
        while proc.poll() is None:
            now = time.perf_counter() - t0
            if t_file is None and run_file.exists():
                t_file = now
            elif t_file is not None and t_done is None and _status_now(run_file) not in ("running", None):
                t_done = now
            time.sleep(0.02)  # a light poll: the served instruments share this process
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"uninterrupted {protocol} failed: {err}")
        t_end = time.perf_counter() - t0
        return t_file or 0.0, t_done or t_end, outcome(protocol, tmp, run_file)
    finally:
        served.close()


def trial(protocol: str, signame: str, at_s: float, ref, root: Path) -> dict | None:
    tmp = Path(tempfile.mkdtemp(dir=root))
    served = ServedBench(chip_file(tmp, SIZES[protocol]), tmp)
    try:
        cmd, run_file = command(protocol, served.path, tmp)
        t0 = time.perf_counter()
        proc = start(cmd)
        # the moment drawn, but never before the run has begun (its run file exists)
        while (time.perf_counter() - t0 < at_s or not run_file.exists()) and proc.poll() is None:
            time.sleep(0.002)
        if proc.poll() is not None:
            proc.communicate()
            return None  # finished before the moment drawn: draw again
        at_s = time.perf_counter() - t0
        proc.send_signal(SIGNALS[signame])
        _, err = proc.communicate(timeout=120)
        row = {"protocol": protocol, "signal": signame, "at_s": round(at_s, 3), "exit_code": proc.returncode,
               "traceback": "Traceback" in err}
        on = served.outputs_on()
        row["outputs_on_after_signal"] = len(on)
        row["status_after"] = status_of(run_file)
        if signame == "SIGKILL":
            # nothing runs after kill -9: what matters is the state after the next open of the bench
            import warnings

            import hil

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                bench = hil.open_bench(served.path)
            row["next_open_warned_unclean"] = any("ended without closing" in str(w.message) for w in caught)
            row["outputs_left_on"] = len(served.outputs_on())
            bench.close()
        else:
            row["outputs_left_on"] = len(on)
        resumed = start(cmd)
        _, err = resumed.communicate(timeout=600)
        row["resume_exit_code"] = resumed.returncode
        if resumed.returncode == 0:
            row.update(record_check(run_file, served))
            got = outcome(protocol, tmp, run_file)
            row["resume_equal_to_uninterrupted"] = bool(np.array_equal(got, ref))
            if not row["resume_equal_to_uninterrupted"]:
                row["cells_differing"] = int(np.sum(got != ref))
            row["status_after_resume"] = read_run(run_file)["status"]
        else:
            row.update({"resume_equal_to_uninterrupted": False, "resume_error": err.strip().splitlines()[-1:]})
        return row
    finally:
        served.close()


def instrument_fault(kind: str, root: Path) -> dict:
    """Kill (``dead``) or silence (``hung``) one instrument in the middle of ``hil program``."""
    tmp = Path(tempfile.mkdtemp(dir=root))
    served = ServedBench(chip_file(tmp, SIZES["program"]), tmp)
    try:
        cmd, run_file = command("program", served.path, tmp)
        timeout_s = max(i.timeout for i in served.spec.instruments.values())
        proc = start(cmd)
        deadline = time.perf_counter() + 60
        while not run_file.exists() and time.perf_counter() < deadline:
            time.sleep(0.01)
        # in the middle of programming: as soon as the run file grows (pulse records are being written)
        size0 = run_file.stat().st_size if run_file.exists() else 0
        while time.perf_counter() < deadline and proc.poll() is None:
            if run_file.exists() and run_file.stat().st_size > size0:
                break
            time.sleep(0.005)
        name = "board" if kind == "dead" else "smu"
        if kind == "dead":
            served.served.servers[name].close()
        else:
            served.sim.emulators[name].feed_lines = lambda lines, overruns=0: b""  # takes every line, never answers
        t_fault = time.perf_counter()
        try:
            _, err = proc.communicate(timeout=120)
        except Exception:  # noqa: BLE001 - a command that never ends is the finding
            proc.kill()
            _, err = proc.communicate()
        exit_s = time.perf_counter() - t_fault
        lines = err.strip().splitlines()
        on = served.outputs_on()
        return {"instrument": name, "timeout_s": timeout_s, "exit_s": round(exit_s, 2),
                "exit_within_2x_timeout_plus_2s": exit_s <= 2 * timeout_s + 2, "exit_code": proc.returncode,
                "outputs_left_on": len(on), "outputs_left_on_detail": on, "traceback": "Traceback" in err,
                "stderr_lines": len(lines), "last_line": lines[-1] if lines else "",
                "status_after": status_of(run_file)}
    finally:
        served.close()


# --- fuzz ------------------------------------------------------------------------------------------
def fuzz(n_inputs: int, root: Path, seed: int = 0) -> dict:
    """Random careless inputs to read / form / program / map on a 4x4 chip, in-process (CliRunner)."""
    from click.testing import CliRunner

    from hil.cli import cli

    rng = np.random.default_rng(seed)
    tmp = Path(tempfile.mkdtemp(dir=root))
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": 4, "cols": 4}], "faults": {"kind": "none"}})
    bench = tmp / "bench.yaml"
    bench.write_text(yaml.safe_dump(spec))
    np.save(tmp / "m.npy", rng.normal(size=(6, 5)))
    pool = ["nan", "inf", "-inf", "1e300", "-1e300", "0", "-1", "1e-300", "abc", "", "0.03", "0.5", "2.5", "4",
            "1", "3", "1e-4", "2e-3", "20000000"]
    region = ["", "0:2", "1,1", "5", "-1", "2:1", "a", "0,3", "1:"]

    def num(x):
        try:
            v = float(x)
        except ValueError:
            return None
        return v if np.isfinite(v) else None

    tried = tracebacks = silent = refused_valid = 0
    examples = []
    for i in range(n_inputs):
        kind = ("tol", "form", "read", "targets", "faults", "map")[i % 6]
        out = tmp / f"o{i}.h5"
        if kind == "tol":
            x = str(rng.choice(pool))
            np.save(tmp / "t.npy", np.full((4, 4), 150e-6))
            args = ["program", "--bench", bench, "--targets", tmp / "t.npy", "--out", out, "--tol", x,
                    "--passes", 1, "--max-pulses", 3]
            v = num(x)
            valid = v is not None and 0 < v < 1
        elif kind == "form":
            a, g = str(rng.choice(pool)), str(rng.choice(pool))
            args = ["form", "--bench", bench, "--out", out, "--v-max", a, "--gate", g, "--rows", "0"]
            va, vg = num(a), num(g)
            valid = va is not None and vg is not None and 1.0 <= va <= 3.0 and 0 < vg <= 5.0
        elif kind == "read":
            v, r = str(rng.choice(pool)), str(rng.choice(region))
            args = ["read", "--bench", bench, "--out", out, "--v-read", v, "--rows", r]
            vv = num(v)
            valid = vv is not None and vv != 0 and abs(vv) <= 3.0 and r in ("", "0:2", "0,3", "1:")
        elif kind == "targets":
            shape = [(4, 4), (2, 4), (4,), (5, 4)][rng.integers(4)]
            odd = [150e-6, np.nan, -1e-6, 0.0, np.inf, 1e300, 2e-3][rng.integers(7)]
            t = np.full(shape, 150e-6)
            t.flat[rng.integers(t.size)] = odd
            np.save(tmp / f"t{i}.npy", t)
            args = ["program", "--bench", bench, "--targets", tmp / f"t{i}.npy", "--out", out, "--passes", 1,
                    "--max-pulses", 3]
            valid = shape == (4, 4) and (np.isnan(odd) or 10e-6 <= odd <= 1e-3)
        elif kind == "faults":
            shape = [(4, 4), (8, 8), (4,)][rng.integers(3)]
            odd = [0, 1, 2, 3, -1, 0.6, 257, np.nan][rng.integers(8)]
            c = np.zeros(shape)
            c.flat[rng.integers(c.size)] = odd
            np.save(tmp / f"c{i}.npy", c)
            np.save(tmp / "t.npy", np.full((4, 4), 150e-6))
            args = ["program", "--bench", bench, "--targets", tmp / "t.npy", "--faults", tmp / f"c{i}.npy",
                    "--out", out, "--passes", 1, "--max-pulses", 3]
            valid = shape == (4, 4) and odd in (0, 1, 2, 3)
        else:
            t, g, k = str(rng.choice(pool)), str(rng.choice(pool)), str(rng.choice(pool + ["5", "8"]))
            args = ["map", tmp / "m.npy", "--k", k, "--tol", t, "--g-max", g, "--fault-rate", "0.05",
                    "--out", tmp / f"m{i}.json"]
            vt, vg, vk = num(t), num(g), num(k)
            valid = (vt is not None and 0 <= vt <= 1 and vg is not None and 0 < vg <= 1 and vk is not None
                     and k.isdigit() and 5 <= int(k) <= 1_000_000)
        if kind != "map":
            args.append("--no-progress")
        res = CliRunner().invoke(cli, [str(a) for a in args])
        tried += 1
        crashed = res.exit_code != 0 and not isinstance(res.exception, SystemExit)
        crashed |= "Traceback" in res.output
        tracebacks += crashed
        if res.exit_code == 0 and not valid:
            silent += 1
            examples.append({"accepted": [str(a) for a in args]})
        if res.exit_code != 0 and valid and kind != "map":
            refused_valid += 1
            examples.append({"refused": [str(a) for a in args], "output": res.output.strip().splitlines()[-1:]})
        if crashed:
            examples.append({"traceback": [str(a) for a in args], "exception": repr(res.exception)})
    return {"inputs_tried": tried, "tracebacks": tracebacks, "accepted_silently": silent,
            "valid_inputs_refused": refused_valid, "examples": examples[:10]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=10, help="interruptions per protocol and signal")
    ap.add_argument("--fuzz", type=int, default=120, help="fuzzed command lines")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--instruments-only", action="store_true",
                    help="re-measure only the dead and hung instrument, keeping the rest of the saved results")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    root = Path(tempfile.mkdtemp(prefix="fault_injection_"))
    if args.instruments_only:
        path = RESULTS / "fault_injection.json"
        saved = json.loads(path.read_text())
        for kind in ("dead", "hung"):
            saved[f"{kind}_instrument"] = got = instrument_fault(kind, root)
            print(f"{kind} instrument: exit after {got['exit_s']} s (timeout {got['timeout_s']} s), outputs left on "
                  f"{got['outputs_left_on']}: {got['last_line']}")
        path.write_text(json.dumps(saved, indent=1))
        print(f"updated {path}")
        return
    t_start = time.perf_counter()
    runs = []
    for protocol in ("program", "scan"):
        t_file, t_done, ref = reference(protocol, root)
        print(f"{protocol}: uninterrupted run from {t_file:.1f} s to {t_done:.1f} s after the command started")
        for signame in SIGNALS:
            k = 0
            while k < args.trials:
                at_s = float(rng.uniform(t_file, t_done))  # while the run runs
                row = trial(protocol, signame, at_s, ref, root)
                if row is None:
                    continue
                runs.append(row)
                k += 1
                print(f"  {signame:8s} at {at_s:5.2f} s: outputs left on {row['outputs_left_on']}, "
                      f"lost {row.get('lost_pulse_records')}, duplicate {row.get('duplicate_records')}, "
                      f"equal {row['resume_equal_to_uninterrupted']}, status {row['status_after']}")
    dead = instrument_fault("dead", root)
    print(f"dead instrument: exit after {dead['exit_s']} s (timeout {dead['timeout_s']} s), outputs left on "
          f"{dead['outputs_left_on']}: {dead['last_line']}")
    hung = instrument_fault("hung", root)
    print(f"hung instrument: exit after {hung['exit_s']} s (timeout {hung['timeout_s']} s), outputs left on "
          f"{hung['outputs_left_on']}: {hung['last_line']}")
    fz = fuzz(args.fuzz, root, args.seed)
    print(f"fuzz: {fz['inputs_tried']} inputs, {fz['tracebacks']} tracebacks, {fz['accepted_silently']} accepted "
          f"silently, {fz['valid_inputs_refused']} valid inputs refused")

    def total(key, sig=None):
        return sum(r.get(key, 0) or 0 for r in runs if sig is None or r["signal"] == sig)

    summary = {sig: {"runs": sum(r["signal"] == sig for r in runs), "outputs_left_on": total("outputs_left_on", sig),
                     "lost_pulse_records": total("lost_pulse_records", sig),
                     "duplicate_records": total("duplicate_records", sig),
                     "resumes_equal": sum(bool(r["resume_equal_to_uninterrupted"]) for r in runs if r["signal"] == sig)}
               for sig in SIGNALS}
    for sig, s in summary.items():
        print(f"{sig}: {s}")
    result = {"chip": f"simulated, {SIZES['program']}x{SIZES['program']} (program) and {SIZES['scan']}x"
                      f"{SIZES['scan']} (scan), 10 % stuck-OFF + 10 % stuck-ON, no read noise / c2c variation",
              "trials_per_protocol_and_signal": args.trials, "seed": args.seed, "summary": summary,
              "runs": runs, "dead_instrument": dead, "hung_instrument": hung, "fuzz": fz,
              "wall_s": round(time.perf_counter() - t_start, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fault_injection.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {RESULTS / 'fault_injection.json'} in {result['wall_s']} s")


if __name__ == "__main__":
    main()
